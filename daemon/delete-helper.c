/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `vssd --delete-helper`: one shadow removed by its provider (delete-helper.h). */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "daemon/delete-helper.h"
#include "daemon/helper-job.h"
#include "daemon/log.h"
#include "lib/basic/parse-util.h"
#include "lib/common.h"

static char *delete_argv[] = { (char *) "vssd", (char *) DELETE_HELPER_ARG, NULL };

int delete_helper_spawn(Children *c, const Providers *ps, const ShadowRecord *rec, ChildDone done,
                        void (*cancel)(void *userdata), void *userdata) {
        char id[VSS_ID_STRING_MAX];
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        job_put_u64(f, "parent", (uint64_t) getpid());
        job_put_exec(f, ps);
        job_put(f, "provider", rec->provider);
        job_put(f, "set", vss_id_to_string(&rec->set_id, id));
        job_put(f, "shadow_id", vss_id_to_string(&rec->shadow_id, id));
        job_put(f, "shadow_path", rec->shadow_path);
        int r = job_close(f, &buf);
        if (r < 0)
                return r;
        int job = job_memfd(buf, len);
        if (job < 0)
                return job;
        r = child_spawn(c, "shadow delete", delete_argv, job, done, cancel, userdata);
        close(job);
        return r;
}

/* In the helper. */

typedef struct DeleteJob {
        pid_t parent;
        Providers providers;
        char *provider, *shadow_path;
        vss_id set_id, shadow_id;
        bool has_set, has_shadow;
} DeleteJob;

static int job_set(void *userdata, const char *k, const char *v) {
        DeleteJob *j = userdata;
        uint64_t u;
        int r = job_set_exec(&j->providers, k, v);
        if (r != 0)
                return r < 0 ? r : 0;
        if (streq(k, "parent"))
                return parse_uint(v, INT32_MAX, &u) < 0 ? -EINVAL : (j->parent = (pid_t) u, 0);
        if (streq(k, "provider"))
                return (j->provider = strdup(v)) ? 0 : -ENOMEM;
        if (streq(k, "shadow_path"))
                return (j->shadow_path = strdup(v)) ? 0 : -ENOMEM;
        if (streq(k, "set"))
                return vss_id_from_string(v, &j->set_id) < 0 ? -EINVAL : (j->has_set = true, 0);
        if (streq(k, "shadow_id"))
                return vss_id_from_string(v, &j->shadow_id) < 0 ? -EINVAL : (j->has_shadow = true, 0);
        return -EINVAL;
}

static int delete_run(void *arg) {
        DeleteJob *j = arg;
        const Provider *p = provider_find(&j->providers, j->provider);
        char set[VSS_ID_STRING_MAX], shadow[VSS_ID_STRING_MAX];
        return p ? p->remove(p, vss_id_to_string(&j->set_id, set), vss_id_to_string(&j->shadow_id, shadow),
                             j->shadow_path)
                 : -EOPNOTSUPP;
}

_Noreturn int delete_helper_main(void) {
        static DeleteJob j; /* lives until the exit */
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        int r = job_parse(CHILD_FD_JOB, job_set, &j);
        close(CHILD_FD_JOB);
        if (r >= 0 && (j.parent <= 0 || !j.provider || !j.shadow_path || !j.has_set || !j.has_shadow))
                r = -EINVAL;
        if (r < 0) {
                log_err("the delete helper cannot read its job: %s", strerror(-r));
                _exit(-r < 255 ? -r : 255);
        }
        child_main(j.parent, delete_run, &j);
}
