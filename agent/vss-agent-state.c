/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The agent's own record of the cluster sets this host took part in, one small file each, so a
 * restarted agent knows which local shadows belong to which cluster set and reconciles them with
 * the decisions in etcd (DESIGN: abort or a delete marker: deleted; complete: kept; no answer from
 * etcd: in doubt). Written before the shadows can exist, removed once they are gone. */

#include <dirent.h>
#include <fcntl.h>

#include <vss/admin.h>

#include "agent/vss-agent.h"
#include "lib/basic/log.h"
#include "lib/basic/fd-util.h"
#include "lib/common.h"
#include "lib/jsonv.h"

static const char *const local_names[] = { [LOCAL_STARTED] = "started", [LOCAL_COMMITTED] = "committed",
                                           [LOCAL_COMPLETE] = "complete" };

static void state_path(Agent *a, const char *set_id, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s.%s.json", a->state_dir, a->cluster, set_id);
}

int agent_state_write(Agent *a, const char *set_id, const vss_id *local_set, LocalState st) {
        char path[4096], tmp[4200], lid[VSS_ID_STRING_MAX];
        state_path(a, set_id, path, sizeof(path));
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "cluster_set_id", json_object_new_string(set_id));
        json_object_object_add(o, "local_set_id", json_object_new_string(vss_id_to_string(local_set, lid)));
        json_object_object_add(o, "state", json_object_new_string(local_names[st]));
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r = fd < 0 ? -errno : 0;
        if (r >= 0)
                r = write_all(fd, text, strlen(text));
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (fd >= 0)
                close(fd);
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        json_object_put(o);
        if (r < 0)
                log_msg("cannot write %s: %s (a restart could not reconcile this set)", path, strerror(-r));
        return r;
}

void agent_state_remove(Agent *a, const char *set_id) {
        char path[4096];
        state_path(a, set_id, path, sizeof(path));
        if (unlink(path) < 0 && errno != ENOENT)
                log_msg("cannot remove %s: %m", path);
}

/* Reads a state file: the local set id and the state. */
static int state_read(Agent *a, const char *set_id, vss_id *ret_local, LocalState *ret_state) {
        static const char *const keys[] = { "cluster_set_id", "local_set_id", "state", NULL };
        char path[4096], err[600];
        _cleanup_free_ char *text = NULL;
        size_t len;
        JsonReader v = {};
        state_path(a, set_id, path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int r = fd < 0 ? -errno : read_all(fd, 4096, &text, &len);
        if (fd >= 0)
                close(fd);
        if (r < 0)
                return r;
        json_object *o = jv_parse(&v, text, 4096, path);
        if (o) {
                jv_only_keys(&v, o, keys);
                if (vss_id_from_string(jv_string(&v, o, "local_set_id", 63, true), ret_local) < 0 && !jv_failed(&v))
                        jv_fail(&v, "local_set_id", "%s", "not an id");
                const char *st = jv_string(&v, o, "state", 15, true);
                *ret_state = streq(st, "complete") ? LOCAL_COMPLETE : streq(st, "committed") ? LOCAL_COMMITTED : LOCAL_STARTED;
        }
        json_object_put(o);
        if (jv_error(&v, err, sizeof(err)) < 0) {
                log_msg("%s", err);
                return -EINVAL;
        }
        return 0;
}

int agent_state_delete_shadows(Agent *a, const char *set_id) {
        vss_id local;
        LocalState st;
        vss_admin *adm = NULL;
        int r = state_read(a, set_id, &local, &st);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = vss_admin_new(&adm);
        if (r >= 0)
                r = vss_admin_connect(adm, a->socket);
        if (r >= 0)
                r = vss_admin_delete_shadows(adm, VSS_ADMIN_DELETE_SET, &local, NULL);
        if (r == VSS_E_OBJECT_NOT_FOUND)
                r = 0; /* vssd never kept it (the session ended before the commit) */
        if (r < 0)
                log_msg("cluster set %s: deleting local set failed: %s", set_id, adm ? vss_admin_errmsg(adm) : "");
        vss_admin_free(adm);
        if (r >= 0)
                agent_state_remove(a, set_id);
        return r;
}

/* The set ids of this cluster's state files; NULL-terminated, caller frees. */
static char **state_sets(Agent *a) {
        DIR *d = opendir(a->state_dir);
        size_t n = 0, plen = strlen(a->cluster);
        char **l = calloc(1, sizeof(char *));
        struct dirent *de;
        while (d && l && (de = readdir(d))) {
                const char *name = de->d_name, *dot;
                if (strncmp(name, a->cluster, plen) != 0 || name[plen] != '.' || !(dot = strstr(name + plen + 1, ".json")) ||
                    dot[5] != 0)
                        continue;
                char **nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl)
                        break;
                l = nl;
                l[n++] = strndup(name + plen + 1, (size_t) (dot - (name + plen + 1)));
                l[n] = NULL;
        }
        if (d)
                closedir(d);
        return l;
}

static void strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
}

/* One local set against etcd; -errno when etcd cannot tell (the set stays in doubt). */
static int reconcile_one(Agent *a, const char *set_id) {
        char key[CLUSTER_KEY_MAX];
        etcd_kvs kvs = {};
        Decision d;
        vss_id local;
        LocalState st;
        if (a->set && streq(a->set->plan.set_id, set_id))
                return 0; /* the set in flight */
        int r = etcd_get(a->e, cluster_key(key, a->cluster, "sets/%s/delete", set_id), &kvs);
        if (r < 0)
                return r;
        bool marker = kvs.n > 0;
        etcd_kvs_clear(&kvs);
        if (marker) {
                log_msg("cluster set %s: a delete marker: deleting its local shadows", set_id);
                if (agent_state_delete_shadows(a, set_id) >= 0)
                        (void) agent_put_record(a, set_id, PHASE_DELETED, NULL, NULL, 0, NULL, -1, NULL, 0);
                return 0;
        }
        r = cluster_get_decision(a->e, a->cluster, set_id, &d, NULL);
        if (r < 0)
                return r;
        if (d != DECISION_COMPLETE && d != DECISION_ABORT) {
                /* Undecided, and the session that made our part is gone: the set cannot complete. */
                r = cluster_abort_decision(a->e, a->cluster, set_id, 0, &d);
                if (r < 0)
                        return r;
        }
        if (d == DECISION_COMPLETE) {
                if (state_read(a, set_id, &local, &st) >= 0 && st != LOCAL_COMPLETE)
                        (void) agent_state_write(a, set_id, &local, LOCAL_COMPLETE);
                return 0;
        }
        log_msg("cluster set %s: the decision is abort: deleting its local shadows", set_id);
        if (agent_state_delete_shadows(a, set_id) >= 0)
                (void) agent_put_record(a, set_id, PHASE_ABORTED, NULL, NULL, VSS_E_ABORT,
                                        "aborted: this host lost its part of the set (its agent restarted, or etcd could not be reached) "
                                        "before the decision", -1, NULL, 0);
        return 0;
}

void agent_reconcile(Agent *a) {
        char **sets = state_sets(a);
        bool doubt = false;
        for (size_t i = 0; sets && sets[i]; i++)
                if (reconcile_one(a, sets[i]) < 0) {
                        if (!a->in_doubt)
                                log_msg("cluster set %s: etcd cannot be reached: its local shadows are in doubt "
                                        "(kept, not exposed) until the decision can be read", sets[i]);
                        doubt = true;
                }
        strv_free(sets);
        a->in_doubt = doubt;
}

json_object *agent_in_doubt_json(Agent *a) {
        json_object *arr = json_object_new_array();
        char **sets = state_sets(a);
        for (size_t i = 0; sets && sets[i]; i++) {
                vss_id local;
                LocalState st;
                if ((a->set && streq(a->set->plan.set_id, sets[i])) || state_read(a, sets[i], &local, &st) < 0 ||
                    st != LOCAL_COMMITTED)
                        continue;
                json_object_array_add(arr, json_object_new_string(sets[i]));
        }
        strv_free(sets);
        return arr;
}
