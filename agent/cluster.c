/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys, decisions, phases, plans and records of cluster snapshot sets: the one definition both
 * vss-agent and `vssadmin cluster` use. */

#include <fcntl.h>
#include <stdarg.h>

#include "agent/cluster.h"
#include "lib/common.h"
#include "lib/jsonv.h"
#include "tools/report.h"

void cluster_trace(const char *who, const char *what) {
        static int fd = -2;
        char line[256];
        if (fd == -2) {
                const char *p = getenv("VSS_CLUSTER_TRACE");
                fd = p && *p ? open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
        }
        if (fd < 0)
                return;
        int n = snprintf(line, sizeof(line), "%s %s %" PRIu64 "\n", who, what, now_monotonic_nsec());
        if (n > 0 && (size_t) n < sizeof(line))
                (void) !write(fd, line, (size_t) n);
}

bool cluster_name_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > CLUSTER_NAME_MAX || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '.' || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

char *cluster_key(char buf[static CLUSTER_KEY_MAX], const char *cluster, const char *fmt, ...) {
        va_list ap;
        int n = snprintf(buf, CLUSTER_KEY_MAX, "/openvss/%s/", cluster);
        va_start(ap, fmt);
        if (n > 0 && n < CLUSTER_KEY_MAX)
                vsnprintf(buf + n, CLUSTER_KEY_MAX - (size_t) n, fmt, ap);
        va_end(ap);
        return buf;
}

const char *cluster_set_key_rest(const char *key, const char *cluster, char set_id[static 64]) {
        char prefix[CLUSTER_KEY_MAX];
        cluster_key(prefix, cluster, "sets/");
        size_t n = strlen(prefix);
        if (strncmp(key, prefix, n) != 0)
                return NULL;
        const char *slash = strchr(key + n, '/');
        if (!slash || slash == key + n || (size_t) (slash - (key + n)) >= 64)
                return NULL;
        memcpy(set_id, key + n, (size_t) (slash - (key + n)));
        set_id[slash - (key + n)] = 0;
        return slash + 1;
}

static const char *const decision_names[] = {
        [DECISION_NONE] = "", [DECISION_SNAPSHOT] = "snapshot", [DECISION_FREEZE] = "freeze",
        [DECISION_COMMIT] = "commit", [DECISION_COMPLETE] = "complete", [DECISION_ABORT] = "abort",
};

const char *decision_name(Decision d) {
        return d < DECISION_INVALID ? decision_names[d] : "invalid";
}

Decision decision_from_name(const char *s) {
        for (Decision d = DECISION_NONE; d < DECISION_INVALID; d++)
                if (streq(s, decision_names[d]))
                        return d;
        return DECISION_INVALID;
}

bool decision_may_move(Decision from, Decision to) {
        if (from >= DECISION_COMPLETE || to == DECISION_NONE || to >= DECISION_INVALID)
                return false;
        return to == DECISION_ABORT || to == from + 1;
}

static const char *const phase_names[] = {
        [PHASE_NONE] = "", [PHASE_PREPARED] = "prepared", [PHASE_READY] = "ready", [PHASE_FROZEN] = "frozen",
        [PHASE_COMMITTED] = "committed", [PHASE_DONE] = "done", [PHASE_FAILED] = "failed",
        [PHASE_ABORTED] = "aborted", [PHASE_DELETED] = "deleted",
};

const char *phase_name(Phase p) {
        return p < PHASE_INVALID ? phase_names[p] : "invalid";
}

Phase phase_from_name(const char *s) {
        for (Phase p = PHASE_NONE; p < PHASE_INVALID; p++)
                if (streq(s, phase_names[p]))
                        return p;
        return PHASE_INVALID;
}

/* ---- plans ---- */

void cluster_plan_done(Plan *p) {
        for (size_t i = 0; p->hosts && i < p->n_hosts; i++) {
                for (size_t j = 0; j < p->hosts[i].n_paths; j++)
                        free(p->hosts[i].paths[j]);
                free(p->hosts[i].paths);
                free(p->hosts[i].host);
        }
        free(p->hosts);
        free(p->coordinator);
        free(p->job);
        *p = (Plan) {};
}

const PlanHost *cluster_plan_host(const Plan *p, const char *host) {
        for (size_t i = 0; i < p->n_hosts; i++)
                if (streq(p->hosts[i].host, host))
                        return &p->hosts[i];
        return NULL;
}

json_object *cluster_plan_to_json(const Plan *p) {
        json_object *o = json_object_new_object(), *hosts = json_object_new_array(), *d = json_object_new_object();
        json_object_object_add(o, "cluster_set_id", json_object_new_string(p->set_id));
        json_object_object_add(o, "coordinator", json_object_new_string(strempty(p->coordinator)));
        json_object_object_add(o, "job", p->job ? json_object_new_string(p->job) : NULL);
        for (size_t i = 0; i < p->n_hosts; i++) {
                json_object *h = json_object_new_object(), *paths = json_object_new_array();
                for (size_t j = 0; j < p->hosts[i].n_paths; j++)
                        json_object_array_add(paths, json_object_new_string(p->hosts[i].paths[j]));
                json_object_object_add(h, "host", json_object_new_string(p->hosts[i].host));
                json_object_object_add(h, "paths", paths);
                json_object_array_add(hosts, h);
        }
        json_object_object_add(o, "hosts", hosts);
        json_object_object_add(d, "prepared_s", json_object_new_int64(p->prepared_s));
        json_object_object_add(d, "ready_s", json_object_new_int64(p->ready_s));
        json_object_object_add(d, "frozen_margin_ms", json_object_new_int64(p->frozen_margin_ms));
        json_object_object_add(d, "complete_s", json_object_new_int64(p->complete_s));
        json_object_object_add(o, "deadlines", d);
        return o;
}

static void plan_read_host(JsonReader *v, json_object *h, PlanHost *ret) {
        static const char *const keys[] = { "host", "paths", NULL };
        jv_only_keys(v, h, keys);
        const char *name = jv_string(v, h, "host", CLUSTER_NAME_MAX, true);
        if (!jv_failed(v) && !cluster_name_valid(name))
                jv_fail(v, "host", "'%s' is not a host name ([A-Za-z0-9._-], at most 63)", name);
        ret->host = jv_dup(v, name);
        json_object *paths = jv_array(v, h, "paths", VSS_MAX_VOLUMES, true);
        size_t n = paths ? json_object_array_length(paths) : 0;
        if (!jv_failed(v) && n == 0)
                jv_fail(v, "paths", "%s", "a host needs at least one path");
        ret->paths = calloc(n ? n : 1, sizeof(char *));
        for (size_t j = 0; ret->paths && !jv_failed(v) && j < n; j++) {
                json_object *s = json_object_array_get_idx(paths, j);
                char norm[4096];
                if (!json_object_is_type(s, json_type_string) ||
                    path_normalize(json_object_get_string(s), norm, sizeof(norm)) < 0) {
                        jv_fail(v, "paths", "element %zu: expected an absolute path", j);
                        break;
                }
                ret->paths[ret->n_paths++] = jv_dup(v, norm);
        }
}

int cluster_plan_parse(const char *text, Plan *ret, char *err, size_t errsize) {
        static const char *const keys[] = { "cluster_set_id", "coordinator", "job", "hosts", "deadlines", NULL };
        static const char *const dkeys[] = { "prepared_s", "ready_s", "frozen_margin_ms", "complete_s", NULL };
        JsonReader v = {};
        Plan p = {};
        vss_id id;
        json_object *o = jv_parse(&v, text, CLUSTER_MAX_RECORD, "plan");
        if (o) {
                jv_only_keys(&v, o, keys);
                const char *sid = jv_string(&v, o, "cluster_set_id", 63, true);
                if (!jv_failed(&v) && vss_id_from_string(sid, &id) < 0)
                        jv_fail(&v, "cluster_set_id", "'%s' is not an id", sid);
                snprintf(p.set_id, sizeof(p.set_id), "%s", sid);
                p.coordinator = jv_dup(&v, jv_string(&v, o, "coordinator", 255, false));
                json_object *job = NULL;
                if (json_object_object_get_ex(o, "job", &job) && job)
                        p.job = jv_dup(&v, jv_string(&v, o, "job", 63, true));
                json_object *d = jv_object(&v, o, "deadlines", true);
                if (d) {
                        size_t len = jv_enter_key(&v, "deadlines");
                        jv_only_keys(&v, d, dkeys);
                        p.prepared_s = (uint32_t) jv_int(&v, d, "prepared_s", 1, 86400, CLUSTER_PREPARED_S);
                        p.ready_s = (uint32_t) jv_int(&v, d, "ready_s", 1, 86400, CLUSTER_READY_S);
                        p.frozen_margin_ms = (uint32_t) jv_int(&v, d, "frozen_margin_ms", 0, 3600000, CLUSTER_FROZEN_MARGIN_MS);
                        p.complete_s = (uint32_t) jv_int(&v, d, "complete_s", 1, 86400, CLUSTER_COMPLETE_S);
                        jv_leave(&v, len);
                }
                json_object *hosts = jv_array(&v, o, "hosts", CLUSTER_MAX_HOSTS, true);
                size_t n = hosts ? json_object_array_length(hosts) : 0;
                p.hosts = calloc(n ? n : 1, sizeof(PlanHost));
                for (size_t i = 0; p.hosts && !jv_failed(&v) && i < n; i++) {
                        size_t len = jv_enter_key(&v, "hosts");
                        jv_enter_index(&v, i);
                        json_object *h = jv_element_object(&v, hosts, i);
                        if (h)
                                plan_read_host(&v, h, &p.hosts[p.n_hosts++]);
                        jv_leave(&v, len);
                        for (size_t k = 0; !jv_failed(&v) && k + 1 < p.n_hosts; k++)
                                if (streq(p.hosts[k].host, p.hosts[p.n_hosts - 1].host))
                                        jv_fail(&v, "hosts", "host '%s' named twice", p.hosts[k].host);
                }
                if (!jv_failed(&v) && n == 0)
                        jv_fail(&v, "hosts", "%s", "a plan needs at least one host");
        }
        json_object_put(o);
        if (jv_error(&v, err, errsize) < 0 || !p.hosts) {
                cluster_plan_done(&p);
                return -EINVAL;
        }
        *ret = p;
        return 0;
}

/* ---- records ---- */

json_object *cluster_record_to_json(const char *host, Phase phase, json_object *writers, json_object *shadows,
                                    int32_t error_code, const char *error, int64_t usec_left, const char *job,
                                    int job_status) {
        char hex[16];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "host", json_object_new_string(host));
        json_object_object_add(o, "phase", json_object_new_string(phase_name(phase)));
        json_object_object_add(o, "writers", writers ? writers : json_object_new_array());
        json_object_object_add(o, "shadows", shadows ? shadows : json_object_new_array());
        json_object *e = NULL;
        if (error_code || !isempty(error)) {
                e = json_object_new_object();
                json_object_object_add(e, "code", json_object_new_string(hex32(error_code, hex)));
                json_object_object_add(e, "name", json_object_new_string(strempty(vss_error_name(error_code))));
                json_object_object_add(e, "message", json_object_new_string(strempty(error)));
        }
        json_object_object_add(o, "error", e);
        json_object_object_add(o, "usec_left", usec_left >= 0 ? json_object_new_int64(usec_left) : NULL);
        json_object *j = NULL;
        if (!isempty(job)) {
                j = json_object_new_object();
                json_object_object_add(j, "name", json_object_new_string(job));
                json_object_object_add(j, "exit_status", json_object_new_int(job_status));
        }
        json_object_object_add(o, "job", j);
        return o;
}

void cluster_record_done(Record *r) {
        json_object_put(r->root);
        *r = (Record) {};
}

static void record_read_error(JsonReader *v, json_object *o, Record *r) {
        static const char *const ekeys[] = { "code", "name", "message", NULL };
        json_object *e = NULL;
        if (!json_object_object_get_ex(o, "error", &e) || !e)
                return;
        e = jv_object(v, o, "error", true);
        if (!e)
                return;
        jv_only_keys(v, e, ekeys);
        snprintf(r->error_name, sizeof(r->error_name), "%s", jv_string(v, e, "name", 63, true));
        snprintf(r->error, sizeof(r->error), "%s", jv_string(v, e, "message", sizeof(r->error) - 1, true));
        r->error_code = (int32_t) strtoul(jv_string(v, e, "code", 15, true), NULL, 16);
}

int cluster_record_parse(const char *text, Record *ret, char *err, size_t errsize) {
        static const char *const keys[] = { "host", "phase", "writers", "shadows", "error", "usec_left", "job", NULL };
        JsonReader v = {};
        Record r = { .usec_left = -1 };
        json_object *o = jv_parse(&v, text, CLUSTER_MAX_RECORD, "host record");
        if (o) {
                jv_only_keys(&v, o, keys);
                (void) jv_string(&v, o, "host", CLUSTER_NAME_MAX, true);
                r.phase = phase_from_name(jv_string(&v, o, "phase", 31, true));
                if (!jv_failed(&v) && (r.phase == PHASE_INVALID || r.phase == PHASE_NONE))
                        jv_fail(&v, "phase", "%s", "unknown phase");
                r.writers = jv_array(&v, o, "writers", VSS_MAX_WRITERS, true);
                r.shadows = jv_array(&v, o, "shadows", VSS_MAX_VOLUMES, true);
                record_read_error(&v, o, &r);
                json_object *x = NULL;
                if (json_object_object_get_ex(o, "usec_left", &x) && x)
                        r.usec_left = jv_int(&v, o, "usec_left", 0, INT64_MAX, -1);
                if (json_object_object_get_ex(o, "job", &x) && x) {
                        json_object *j = jv_object(&v, o, "job", true);
                        if (j) {
                                snprintf(r.job, sizeof(r.job), "%s", jv_string(&v, j, "name", 63, true));
                                r.job_status = (int) jv_int(&v, j, "exit_status", -1, 255, -1);
                        }
                }
        }
        if (jv_error(&v, err, errsize) < 0) {
                json_object_put(o);
                return -EINVAL;
        }
        r.root = o;
        *ret = r;
        return 0;
}

json_object *cluster_writers_json(vss_backup *b, char *veto, size_t vetosize, int32_t *ret_veto_hr) {
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX];
        json_object *arr = json_object_new_array();
        if (ret_veto_hr)
                *ret_veto_hr = 0;
        for (size_t i = 0; i < vss_backup_writer_status_count(b); i++) {
                vss_writer_status st;
                if (vss_backup_writer_status_get(b, i, &st) < 0)
                        continue;
                json_object_array_add(arr, status_json(st.name, id_string(&st.writer_id, wid), id_string(&st.instance_id, iid),
                                                       st.state, st.failure, st.application_code,
                                                       st.application_message, st.note));
                bool failed = st.failure != 0 ||
                              (st.state >= VSS_WS_FAILED_AT_IDENTIFY && st.state <= VSS_WS_FAILED_AT_BACKUP_SHUTDOWN);
                if (failed && ret_veto_hr && *ret_veto_hr == 0) {
                        *ret_veto_hr = st.failure ? st.failure : VSS_E_WRITERERROR_NONRETRYABLE;
                        if (veto)
                                snprintf(veto, vetosize, "writer '%s' is %s: %s%s%s", st.name,
                                         vss_writer_state_name(st.state), strempty(vss_error_name(st.failure)),
                                         isempty(st.application_message) ? "" : ": ", st.application_message);
                }
        }
        return arr;
}

/* ---- etcd ---- */

int cluster_etcd_open(const ClusterEtcdArgs *a, int timeout_ms, etcd **ret, char *err, size_t errsize) {
        char password[512] = "";
        if (a->password_file) {
                FILE *f = fopen(a->password_file, "re");
                if (!f || !fgets(password, sizeof(password), f)) {
                        int r = f ? -EINVAL : -errno;
                        snprintf(err, errsize, "cannot read the password file %s: %s", a->password_file,
                                 f ? "it is empty" : strerror(-r));
                        if (f)
                                fclose(f);
                        return r;
                }
                fclose(f);
                password[strcspn(password, "\r\n")] = 0;
        }
        etcd_options o = {
                .endpoints = a->endpoints, .cacert = a->cacert, .cert = a->cert, .key = a->key,
                .user = a->user, .password = a->user ? password : NULL, .timeout_ms = timeout_ms,
        };
        int r = etcd_new(&o, ret);
        explicit_bzero(password, sizeof(password));
        if (r < 0)
                snprintf(err, errsize, "cannot use etcd at %s: %s", a->endpoints, strerror(-r));
        return r;
}

int cluster_get_decision(etcd *e, const char *cluster, const char *set_id, Decision *ret, int64_t *ret_revision) {
        char key[CLUSTER_KEY_MAX];
        etcd_kvs kvs = {};
        int r = etcd_get(e, cluster_key(key, cluster, "sets/%s/decision", set_id), &kvs);
        if (r < 0)
                return r;
        *ret = kvs.n ? decision_from_name(kvs.kvs[0].value) : DECISION_NONE;
        if (ret_revision)
                *ret_revision = kvs.revision;
        etcd_kvs_clear(&kvs);
        return 0;
}

int cluster_move_decision(etcd *e, const char *cluster, const char *set_id, Decision from, Decision to,
                          int64_t coordinator_lease, Decision *ret_now) {
        char key[CLUSTER_KEY_MAX], ckey[CLUSTER_KEY_MAX];
        etcd_cmp cmp[2];
        size_t n = 0;
        bool ok = false;
        etcd_kvs got = {};
        cluster_key(key, cluster, "sets/%s/decision", set_id);
        if (!decision_may_move(from, to))
                return -EINVAL;
        if (from == DECISION_NONE)
                cmp[n++] = (etcd_cmp) { .key = key, .target = ETCD_CMP_VERSION, .result = ETCD_CMP_EQUAL, .number = 0 };
        else
                cmp[n++] = (etcd_cmp) { .key = key, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL,
                                        .value = decision_name(from) };
        if (coordinator_lease)
                cmp[n++] = (etcd_cmp) { .key = cluster_key(ckey, cluster, "sets/%s/coordinator", set_id),
                                        .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL, .number = coordinator_lease };
        const etcd_op then = { .type = ETCD_OP_PUT, .key = key, .value = decision_name(to) };
        const etcd_op els = { .type = ETCD_OP_GET, .key = key };
        int r = etcd_txn(e, cmp, n, &then, 1, &els, 1, &ok, &got);
        if (r < 0)
                return r;
        if (ret_now)
                *ret_now = ok ? to : got.n ? decision_from_name(got.kvs[0].value) : DECISION_NONE;
        etcd_kvs_clear(&got);
        return ok ? 1 : 0;
}

int cluster_abort_decision(etcd *e, const char *cluster, const char *set_id, int64_t coordinator_lease,
                           Decision *ret_now) {
        Decision now = DECISION_NONE;
        int r = cluster_get_decision(e, cluster, set_id, &now, NULL);
        /* Each failed swap learns the value that beat it; the decision moves at most five times. */
        for (int i = 0; r >= 0 && i < 8 && now != DECISION_ABORT && now != DECISION_COMPLETE; i++) {
                Decision from = now;
                if (from == DECISION_INVALID)
                        return -EPROTO;
                r = cluster_move_decision(e, cluster, set_id, from, DECISION_ABORT, coordinator_lease, &now);
                if (r == 0 && coordinator_lease && now == from)
                        return -ENOENT; /* the decision did not change: our own key is gone */
        }
        if (r < 0)
                return r;
        if (ret_now)
                *ret_now = now;
        return 0;
}
