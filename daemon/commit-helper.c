/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The commit child as a program of its own: `vssd --commit-helper`, started by posix_spawn while
 * vssd is idle (the spare, below) or at StartSnapshotSet, waiting loaded for its job (sent at
 * DoSnapshotSet) and told to go at the commit. A forked copy of vssd shares its pages copy-on-write until it exits: with 1000 writers
 * connected, each page vssd then writes (answers to Freeze, or Thaw after a fork at the commit)
 * costs a fault, ~100 ms per batch measured. The helper gets what commit_child() reads as a job on
 * COMMIT_FD_JOB: NUL-separated key, value pairs.
 */

#include <inttypes.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include "daemon/commit-helper.h"
#include "daemon/commit.h"
#include "daemon/helper-job.h"
#include "daemon/hold.h"
#include "daemon/manager.h"
#include "daemon/session-internal.h"
#include "daemon/timer.h"
#include "lib/basic/fd-util.h"
#include "lib/basic/parse-util.h"
#include "lib/basic/time-util.h"
#include "providers/mountinfo.h"

/* What every job starts with: vssd, its directories, settings and exec providers. */
static void job_head(FILE *f, Manager *m, const vss_id *set_id) {
        char id[VSS_ID_STRING_MAX];
        job_put_u64(f, "parent", (uint64_t) getpid());
        job_put(f, "set", vss_id_to_string(set_id, id));
        job_put(f, "state_dir", m->state_dir);
        job_put(f, "shadow_dir", m->shadow_dir);
        if (m->config.file_storage_dir)
                job_put(f, "storage_dir", m->config.file_storage_dir);
        job_put_u64(f, "hold_ms", m->config.hold_window_ms);
        job_put_u64(f, "budget", m->config.file_budget_bytes);
        job_put_u64(f, "hold_memory", m->config.file_hold_memory_bytes);
        job_put_exec(f, &m->providers);
}

/* The job of the session's set, in *ret (free()) of *ret_len bytes. */
static int job_make(Session *s, const int *index_slot, char **ret, size_t *ret_len) {
        char id[VSS_ID_STRING_MAX];
        FILE *f = open_memstream(ret, ret_len);
        if (!f)
                return -ENOMEM;
        job_head(f, s->manager, &s->set_id);
        for (size_t i = 0; i < s->n_volumes; i++) {
                const Volume *v = &s->volumes[i];
                char flags[8];
                snprintf(flags, sizeof(flags), "%c%c%c", v->held ? 'h' : '-', v->storage_shared ? 's' : '-',
                         v->precopied ? 'p' : '-');
                job_put(f, "volume", v->provider->name);
                job_put(f, "path", v->path);
                job_put(f, "shadow_path", v->shadow_path);
                job_put(f, "shadow_id", vss_id_to_string(&v->shadow_id, id));
                job_put(f, "flags", flags);
                if (index_slot[i] >= 0)
                        job_put_u64(f, "index_fd", (uint64_t) index_slot[i]);
        }
        return job_close(f, ret);
}

static char *helper_argv[] = { (char *) "vssd", (char *) COMMIT_HELPER_ARG, NULL };
static char *helper_argv_mounts[] = { (char *) "vssd", (char *) COMMIT_HELPER_ARG, (char *) COMMIT_HELPER_MOUNTS_ARG,
                                      NULL };

/* A helper loads libmount before it reports itself loaded when the configuration may have it look
 * up a mount during the cut (filesystems to hold, exec providers' devices); otherwise it stays
 * without (a set of btrfs or unheld file shadows needs none, and a helper started for a set
 * reports itself loaded sooner). */
static char **helper_argv_for(const Manager *m) {
        bool mounts = m->config.hold_all || m->config.n_hold_filesystems > 0 || m->providers.n_exec > 0;
        return mounts ? helper_argv_mounts : helper_argv;
}

/* The spare: a helper started while vssd is idle, waiting for the next set's job, so that set
 * does not wait for a helper's exec and loading (5-10 ms on a 2-core machine, more than the
 * requester's calls before DoSnapshotSet take). Started with vssd and again a moment after a set
 * ended (not at once: its start would compete with the end of that set's sequence; nor while the
 * next set is being made: that set has its own helper by then). One that dies
 * waiting is replaced at the next set's end; a set that finds none starts its own. */
#define SPARE_DELAY_USEC (50 * USEC_PER_MSEC)

/* A spare gets no job, so it reports nothing: ready here means it died waiting (commit_gone()
 * ran; the next set's end starts another). */
static void spare_ready(void *userdata) {
}

static void spare_location(void *userdata, size_t index, const char *location) {
}

static const CommitOps spare_ops = { .location = spare_location, .ready = spare_ready };

void commit_helper_spare_start(Manager *m) {
        const char *why;
        if (m->stopping)
                return;
        if (!m->spare) {
                m->spare = malloc(sizeof(*m->spare));
                if (!m->spare)
                        return;
                commit_init(m->spare);
        }
        if (m->spare->pid > 0)
                return;
        commit_done(m->spare); /* what a spare that died left */
        commit_init(m->spare);
        /* Failing, a set starts its own helper as without a spare. */
        (void) commit_spawn_early(m->spare, m->event, helper_argv_for(m), &spare_ops, m, &why);
}

static int on_spare_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        /* A set began meanwhile (it started its own helper): a spare's start would compete with
         * its freeze window. Its end arms the timer again. */
        if (!m->creating)
                commit_helper_spare_start(m);
        return 0;
}

void commit_helper_spare_later(Manager *m) {
        if (!m->stopping && !(m->spare && m->spare->pid > 0))
                (void) timer_later(m->event, &m->spare_timer, SPARE_DELAY_USEC, 10 * USEC_PER_MSEC, on_spare_timer, m);
}

void commit_helper_spare_free(Manager *m) {
        m->spare_timer = sd_event_source_disable_unref(m->spare_timer);
        if (!m->spare)
                return;
        (void) commit_abandon(m->spare); /* killed and reaped */
        commit_done(m->spare);
        free(m->spare);
        m->spare = NULL;
}

int commit_helper_spawn_early(Session *s, const CommitOps *ops, const char **ret_why) {
        Commit *spare = s->manager->spare;
        *ret_why = "cannot start the provider";
        if (s->commit.pid > 0) /* one per session: it is this set's already */
                return 0;
        if (spare && commit_prepared(spare) && spare->job_fd >= 0) {
                commit_move(&s->commit, spare, ops, s);
                return 0;
        }
        return commit_spawn_early(&s->commit, s->manager->event, helper_argv_for(s->manager), ops, s, ret_why);
}

/* The set's job, and the descriptors its helper keeps (the copy-ahead indexes), at
 * COMMIT_FD_KEEP on. */
typedef struct SetJob {
        int keep[VSS_MAX_VOLUMES];
        size_t n_keep;
        char *buf;
        size_t len;
} SetJob;

static int set_job_make(Session *s, SetJob *j) {
        int slot[VSS_MAX_VOLUMES];
        for (size_t i = 0; i < s->n_volumes; i++) {
                slot[i] = -1;
                if (s->volumes[i].index_fd >= 0) {
                        slot[i] = COMMIT_FD_KEEP + (int) j->n_keep;
                        j->keep[j->n_keep++] = s->volumes[i].index_fd;
                }
        }
        return job_make(s, slot, &j->buf, &j->len);
}

/* A helper with the set's job in a memfd, as argv. */
static int set_job_spawn(Session *s, const SetJob *j, char **argv, const CommitOps *ops, const char **ret_why) {
        int job = job_memfd(j->buf, j->len);
        if (job < 0)
                return job;
        int r = commit_spawn(&s->commit, s->manager->event, argv, job, j->keep, j->n_keep, ops, s, ret_why);
        close(job);
        return r;
}

int commit_helper_prepare(Session *s, const CommitOps *ops, const char **ret_why) {
        SetJob j = {};
        *ret_why = "cannot start the provider";
        int r = set_job_make(s, &j);
        if (r >= 0 && commit_prepared(&s->commit)) {
                if (s->commit.job_fd < 0) /* it has its job */
                        goto out;
                /* The early helper (commit_helper_spawn_early()) gets its job now. It cannot have
                 * the copy-ahead's indexes, which did not exist when it started: a new one does. */
                if (j.n_keep == 0 && commit_send_job(&s->commit, j.buf, j.len) >= 0)
                        goto out;
                /* Gone, or the job did not fit: quietly, as a helper not wanted any more. */
                (void) commit_cancel(&s->commit);
        }
        if (r >= 0)
                r = set_job_spawn(s, &j, helper_argv_for(s->manager), ops, ret_why);
out:
        free(j.buf);
        return r;
}

static char *precopy_argv[] = { (char *) "vssd", (char *) COMMIT_HELPER_ARG, (char *) COMMIT_HELPER_PRECOPY_ARG, NULL };

int commit_helper_precopy(Session *s, const CommitOps *ops, const char **ret_why) {
        SetJob j = {};
        *ret_why = "cannot start the provider";
        int r = set_job_make(s, &j);
        if (r >= 0)
                r = set_job_spawn(s, &j, precopy_argv, ops, ret_why);
        free(j.buf);
        /* Nothing to wait for: it copies as soon as it has read its job. */
        if (r >= 0 && (r = commit_go(&s->commit)) < 0)
                *ret_why = "cannot start the provider";
        return r;
}

/* In the helper. */

typedef struct Job {
        Manager m;
        Session s;
        pid_t parent;
} Job;

static int parse_u64(const char *v, uint64_t max, uint64_t *ret) {
        return parse_uint(v, max, ret);
}

/* One key, value pair into the job; -EINVAL for what makes no sense. */
static int job_set(void *userdata, const char *k, const char *v) {
        Job *j = userdata;
        Manager *m = &j->m;
        Session *s = &j->s;
        Volume *last = s->n_volumes > 0 ? &s->volumes[s->n_volumes - 1] : NULL;
        uint64_t u;
        if (streq(k, "parent"))
                return parse_u64(v, INT32_MAX, &u) < 0 ? -EINVAL : (j->parent = (pid_t) u, 0);
        if (streq(k, "set"))
                return vss_id_from_string(v, &s->set_id) < 0 ? -EINVAL : 0;
        if (streq(k, "state_dir"))
                return (m->state_dir = strdup(v)) ? 0 : -ENOMEM;
        if (streq(k, "shadow_dir"))
                return (m->shadow_dir = strdup(v)) ? 0 : -ENOMEM;
        if (streq(k, "storage_dir"))
                return (m->config.file_storage_dir = strdup(v)) ? 0 : -ENOMEM;
        if (streq(k, "hold_ms"))
                return parse_u64(v, UINT32_MAX, &u) < 0 ? -EINVAL : (m->config.hold_window_ms = (uint32_t) u, 0);
        if (streq(k, "budget"))
                return parse_u64(v, UINT64_MAX, &m->config.file_budget_bytes) < 0 ? -EINVAL : 0;
        if (streq(k, "hold_memory"))
                return parse_u64(v, UINT64_MAX, &m->config.file_hold_memory_bytes) < 0 ? -EINVAL : 0;
        int r = job_set_exec(&m->providers, k, v);
        if (r != 0)
                return r < 0 ? r : 0;
        if (streq(k, "volume")) {
                if (s->n_volumes >= VSS_MAX_VOLUMES)
                        return -E2BIG;
                const Provider *p = provider_find(&m->providers, v);
                if (!p)
                        return -ENOENT;
                s->volumes[s->n_volumes++] = (Volume) { .provider = p, .index_fd = -EBADF };
                return 0;
        }
        if (!last)
                return -EINVAL;
        if (streq(k, "path"))
                return (last->path = strdup(v)) ? 0 : -ENOMEM;
        if (streq(k, "shadow_path"))
                return (last->shadow_path = strdup(v)) ? 0 : -ENOMEM;
        if (streq(k, "shadow_id"))
                return vss_id_from_string(v, &last->shadow_id) < 0 ? -EINVAL : 0;
        if (streq(k, "flags")) {
                last->held = strchr(v, 'h');
                last->storage_shared = strchr(v, 's');
                last->precopied = strchr(v, 'p');
                return 0;
        }
        if (streq(k, "index_fd"))
                return parse_u64(v, INT32_MAX, &u) < 0 ? -EINVAL : (last->index_fd = (int) u, 0);
        return -EINVAL;
}

static int job_read(Job *j, int fd) {
        j->s.manager = &j->m;
        int r = job_parse(fd, job_set, j);
        if (r >= 0 && (!j->m.state_dir || !j->m.shadow_dir || j->parent <= 0))
                r = -EINVAL;
        return r;
}

_Noreturn int commit_helper_main(bool load_mounts, bool precopy) {
        static Job j; /* lives until the exit */
        /* Waiting, it goes with vssd; a vssd gone already is noticed below. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* libmount too, when finding the filesystems to hold (or an exec provider's device) may need
         * it: loading it and what it pulls in takes milliseconds, which the window would hold. A
         * failure to load shows where a lookup needs it. */
        if (load_mounts)
                (void) mountinfo_load();
        /* Started and loaded: what is left before the cut (reading the job, a few microseconds of
         * CPU) need not hold back the first Freeze, whenever the job comes. */
        dprintf(COMMIT_FD_REPORT, "L\t\n");
        int r = job_read(&j, COMMIT_FD_JOB);
        close(COMMIT_FD_JOB);
        if (r < 0) {
                dprintf(COMMIT_FD_REPORT, "E\tthe commit helper cannot read its job: %s\n", strerror(-r));
                _exit(COMMIT_FAILED);
        }
        /* The freeze helper too, waiting to freeze: the window holds its FIFREEZE, not its start. */
        FreezeLease *lease = precopy ? NULL : commit_child_prepare(&j.s, COMMIT_FD_REPORT);
        /* Loaded and ready: vssd sends the first Freeze now, so none of our start is in the window. */
        dprintf(COMMIT_FD_REPORT, "R\t\n");
        if (getppid() != j.parent || !commit_wait_go(COMMIT_FD_GO))
                _exit(COMMIT_FAILED); /* the freeze helper, never told to freeze, goes with us */
        close(COMMIT_FD_GO);
        if (precopy)
                hold_precopy_child(&j.s, COMMIT_FD_REPORT);
        commit_child(&j.s, COMMIT_FD_REPORT, lease);
}
