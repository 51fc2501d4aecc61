/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `vssadmin cluster`: its command line, the lists (hosts, writers, shadows of cluster sets, read
 * from etcd) and delete markers. Creating a set is vssadmin-cluster-create.c. */

#include <getopt.h>
#include <stdarg.h>

#include "lib/basic/parse-util.h"
#include "lib/common.h"
#include "tools/report.h"
#include "tools/vssadmin-cluster.h"

#define DELETE_WAIT_USEC (10 * USEC_PER_SEC)

int cluster_fail(const ClusterArgs *args, int32_t hr, const char *fmt, ...) {
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "vssadmin: %s\n", msg);
        if (args->json) {
                json_object *o = failure_json(hr, msg);
                print_json(o);
                json_object_put(o);
        }
        return 1;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

static int64_t jint(json_object *o, const char *key) {
        json_object *v = NULL;
        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* What etcd holds is whatever anyone who may write there put: every string shown to a terminal
 * is one line of text, its control characters (escapes that would drive the terminal) spaces. */
static void json_one_line(json_object *o);

/* v made one line: a new string for a string (NULL when it cannot be), else v's own done in place. */
static json_object *one_line_value(json_object *v) {
        if (!json_object_is_type(v, json_type_string)) {
                json_one_line(v);
                return NULL;
        }
        _cleanup_free_ char *t = strdup(json_object_get_string(v));
        return t ? json_object_new_string(one_line(t)) : NULL;
}

static void json_one_line(json_object *o) {
        json_object *n;
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if ((n = one_line_value(json_object_array_get_idx(o, i))))
                                json_object_array_put_idx(o, i, n);
        } else if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, key, v)
                        if ((n = one_line_value(v)))
                                json_object_object_add(o, key, n);
        }
}

void cluster_print_writers(json_object *writers, const char *indent) {
        size_t n = writers ? json_object_array_length(writers) : 0;
        json_one_line(writers);
        for (size_t i = 0; i < n; i++) {
                json_object *w = json_object_array_get_idx(writers, i), *asof = NULL;
                status_text(stdout, indent, jstr(w, "name"), jstr(w, "writer_id"), jstr(w, "instance_id"),
                            (uint32_t) jint(w, "state"), (int32_t) strtoul(jstr(w, "failure"), NULL, 16),
                            (int32_t) jint(w, "application_code"), jstr(w, "application_message"), jstr(w, "note"));
                if (json_object_object_get_ex(w, "as_of", &asof) && asof) {
                        const char *s = jstr(asof, "session");
                        if (*s)
                                printf("%s   As of: session {%s} at %s\n", indent, s, jstr(asof, "time"));
                        else
                                printf("%s   As of: subscription at %s (no session yet)\n", indent, jstr(asof, "time"));
                }
        }
        if (n == 0)
                printf("%s(no writers)\n", indent);
}

static int open_etcd(const ClusterArgs *args, etcd **ret) {
        char err[1200];
        if (cluster_etcd_open(&args->etcd, 0, ret, err, sizeof(err)) < 0)
                return cluster_fail(args, VSS_E_INVALIDARG, "%s", err);
        return 0;
}

/* Every key under /openvss/CLUSTER/ + rest. */
static int get_all(const ClusterArgs *args, etcd *e, const char *rest, etcd_kvs *ret) {
        char prefix[CLUSTER_KEY_MAX];
        int r = etcd_get_prefix(e, cluster_key(prefix, args->cluster, "%s", rest), ret);
        if (r < 0)
                return cluster_fail(args, VSS_E_UNEXPECTED, "cannot read %s from etcd at %s: %s", prefix,
                                    args->etcd.endpoints, etcd_errmsg(e));
        return 0;
}

/* hosts/HOST records as JSON ({"host", "writers", "providers", "in_doubt"}); bad ones skipped. */
static json_object *host_records(const ClusterArgs *args, const etcd_kvs *kvs) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < kvs->n; i++) {
                json_object *o = json_tokener_parse(kvs->kvs[i].value); /* our agents' output, shown only */
                if (o && json_object_is_type(o, json_type_object) && cluster_name_valid(jstr(o, "host")))
                        json_object_array_add(arr, o);
                else
                        json_object_put(o);
        }
        return arr;
}

static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return json_object_new_array();
        return json_object_get(v);
}

/* Hosts named in plans (sets/SET/plan) that are not registered now: known, not alive. */
static void add_dead_hosts(const etcd_kvs *sets, json_object *recs, const char *cluster) {
        char set_id[64];
        for (size_t i = 0; i < sets->n; i++) {
                const char *rest = cluster_set_key_rest(sets->kvs[i].key, cluster, set_id);
                Plan p = {};
                char err[256];
                if (!rest || !streq(rest, "plan") || cluster_plan_parse(sets->kvs[i].value, &p, err, sizeof(err)) < 0)
                        continue;
                for (size_t h = 0; h < p.n_hosts; h++) {
                        bool known = false;
                        for (size_t k = 0; !known && k < json_object_array_length(recs); k++)
                                known = streq(jstr(json_object_array_get_idx(recs, k), "host"), p.hosts[h].host);
                        if (known)
                                continue;
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "host", json_object_new_string(p.hosts[h].host));
                        json_object_object_add(o, "alive", json_object_new_boolean(false));
                        json_object_array_add(recs, o);
                }
                cluster_plan_done(&p);
        }
}

static void print_host_text(json_object *r, bool writers_only) {
        json_object *alive = NULL;
        json_one_line(r); /* text only: JSON output escapes what it holds */
        bool up = !json_object_object_get_ex(r, "alive", &alive);
        printf("Host: %s\n", jstr(r, "host"));
        if (writers_only) {
                cluster_print_writers(json_object_object_get(r, "writers"), "   ");
                printf("\n");
                return;
        }
        json_object *p = member(r, "providers"), *d = member(r, "in_doubt"), *w = member(r, "writers");
        printf("   Alive: %s\n   Providers:", up ? "yes (registered under its lease)" : "no (named in a plan, not registered now)");
        for (size_t k = 0; k < json_object_array_length(p); k++)
                printf(" %s", json_object_get_string(json_object_array_get_idx(p, k)));
        printf("%s\n   Writers: %zu\n", json_object_array_length(p) ? "" : " (unknown)", json_object_array_length(w));
        for (size_t k = 0; k < json_object_array_length(d); k++)
                printf("   In doubt: cluster set {%s}\n", json_object_get_string(json_object_array_get_idx(d, k)));
        printf("\n");
        json_object_put(p);
        json_object_put(d);
        json_object_put(w);
}

static int list_hosts(const ClusterArgs *args, bool writers_only) {
        _cleanup_(etcd_freep) etcd *e = NULL;
        etcd_kvs kvs = {}, sets = {};
        if (open_etcd(args, &e) || get_all(args, e, "hosts/", &kvs) || (!writers_only && get_all(args, e, "sets/", &sets))) {
                etcd_kvs_clear(&kvs);
                return 1;
        }
        json_object *recs = host_records(args, &kvs), *out = json_object_new_array();
        etcd_kvs_clear(&kvs);
        if (!writers_only)
                add_dead_hosts(&sets, recs, args->cluster);
        etcd_kvs_clear(&sets);
        for (size_t i = 0; i < json_object_array_length(recs); i++) {
                json_object *r = json_object_array_get_idx(recs, i), *h = json_object_new_object(), *alive = NULL;
                json_object_object_add(h, "host", json_object_new_string(jstr(r, "host")));
                if (!writers_only)
                        json_object_object_add(h, "alive", json_object_new_boolean(!json_object_object_get_ex(r, "alive", &alive)));
                json_object_object_add(h, "writers", member(r, "writers"));
                if (!writers_only)
                        json_object_object_add(h, "providers", member(r, "providers"));
                json_object_array_add(out, h);
                if (!args->json)
                        print_host_text(r, writers_only);
        }
        if (!args->json && json_object_array_length(recs) == 0)
                printf("No host of cluster '%s' is registered (is vss-agent running there?).\n", args->cluster);
        json_object_put(recs);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "hosts", out);
        if (args->json)
                print_json(o);
        json_object_put(o);
        return 0;
}

/* What a host holds of a set, from its record, the decision and a delete marker. */
static const char *host_state(const Record *r, Decision d, bool marker, bool job) {
        if (r->phase == PHASE_DELETED)
                return "deleted";
        bool has = r->phase == PHASE_COMMITTED || r->phase == PHASE_DONE;
        if (!has)
                return phase_name(r->phase);
        if (marker)
                return "delete pending (applied when the host returns)";
        if (d == DECISION_COMPLETE)
                return job && r->phase == PHASE_DONE ? "deleted after its job" : "kept";
        if (d == DECISION_ABORT)
                return "to be deleted (the decision is abort)";
        return "in doubt (kept, never exposed, until the host reads the decision)";
}

/* One set's keys (all of sets/SET/, sorted) as JSON; *i moves past them. */
static json_object *set_json(const ClusterArgs *args, const etcd_kvs *kvs, size_t *i) {
        char set_id[64], other[64], err[512];
        const char *rest = cluster_set_key_rest(kvs->kvs[*i].key, args->cluster, set_id);
        Decision d = DECISION_NONE;
        bool marker = false, have_plan = false;
        Plan plan = {};
        size_t start = *i;
        for (; *i < kvs->n; (*i)++) {
                rest = cluster_set_key_rest(kvs->kvs[*i].key, args->cluster, other);
                if (!rest || !streq(other, set_id))
                        break;
                if (streq(rest, "decision"))
                        d = decision_from_name(kvs->kvs[*i].value);
                else if (streq(rest, "delete"))
                        marker = true;
                else if (streq(rest, "plan"))
                        have_plan = cluster_plan_parse(kvs->kvs[*i].value, &plan, err, sizeof(err)) >= 0;
        }
        json_object *o = json_object_new_object(), *hosts = json_object_new_array();
        json_object_object_add(o, "cluster_set_id", json_object_new_string(set_id));
        json_object_object_add(o, "decision", d == DECISION_NONE ? NULL : json_object_new_string(decision_name(d)));
        json_object_object_add(o, "delete_requested", json_object_new_boolean(marker));
        for (size_t k = start; k < *i; k++) {
                rest = cluster_set_key_rest(kvs->kvs[k].key, args->cluster, other);
                Record r = {};
                if (strncmp(rest, "hosts/", 6) != 0 || !cluster_name_valid(rest + 6) ||
                    cluster_record_parse(kvs->kvs[k].value, &r, err, sizeof(err)) < 0)
                        continue;
                json_object *h = json_object_new_object();
                json_object_object_add(h, "host", json_object_new_string(rest + 6));
                json_object_object_add(h, "phase", json_object_new_string(phase_name(r.phase)));
                json_object_object_add(h, "state", json_object_new_string(host_state(&r, d, marker, have_plan && plan.job)));
                json_object_object_add(h, "shadows", json_object_get(r.shadows));
                json_object_array_add(hosts, h);
                cluster_record_done(&r);
        }
        json_object_object_add(o, "hosts", hosts);
        cluster_plan_done(&plan);
        return o;
}

static void print_set_text(json_object *s) {
        json_object *hosts = json_object_object_get(s, "hosts");
        json_one_line(s); /* text only: JSON output escapes what it holds */
        printf("Cluster shadow copy set ID: {%s}\n   Decision: %s%s\n", jstr(s, "cluster_set_id"),
               *jstr(s, "decision") ? jstr(s, "decision") : "(none yet)",
               json_object_get_boolean(json_object_object_get(s, "delete_requested")) ? " (delete requested)" : "");
        for (size_t i = 0; i < json_object_array_length(hosts); i++) {
                json_object *h = json_object_array_get_idx(hosts, i), *sh = json_object_object_get(h, "shadows");
                printf("   Host: %s: %s\n", jstr(h, "host"), jstr(h, "state"));
                for (size_t k = 0; k < json_object_array_length(sh); k++) {
                        json_object *x = json_object_array_get_idx(sh, k);
                        printf("      Shadow Copy ID: {%s}\n         Original Volume: %s\n         Shadow Copy Volume: %s\n"
                               "         Local set ID: {%s}\n",
                               jstr(x, "shadow_id"), jstr(x, "original_path"), jstr(x, "shadow_path"),
                               jstr(x, "snapshot_set_id"));
                }
        }
        printf("\n");
}

static int list_shadows(const ClusterArgs *args) {
        _cleanup_(etcd_freep) etcd *e = NULL;
        etcd_kvs kvs = {};
        char set_id[64];
        if (open_etcd(args, &e) || get_all(args, e, "sets/", &kvs))
                return 1;
        json_object *sets = json_object_new_array();
        for (size_t i = 0; i < kvs.n;) {
                if (!cluster_set_key_rest(kvs.kvs[i].key, args->cluster, set_id)) {
                        i++;
                        continue;
                }
                json_object *s = set_json(args, &kvs, &i);
                if (!args->json)
                        print_set_text(s);
                json_object_array_add(sets, s);
        }
        etcd_kvs_clear(&kvs);
        if (!args->json && json_object_array_length(sets) == 0)
                printf("No cluster set of cluster '%s' is recorded.\n", args->cluster);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "sets", sets);
        if (args->json)
                print_json(o);
        json_object_put(o);
        return 0;
}

/* Hosts of the set that hold shadows of it (committed or done, not deleted), into a JSON array. */
static json_object *holders(const ClusterArgs *args, etcd *e, const char *set_id, bool *ret_plan) {
        char prefix[CLUSTER_KEY_MAX], err[512], other[64];
        etcd_kvs kvs = {};
        json_object *arr = json_object_new_array();
        *ret_plan = false;
        if (etcd_get_prefix(e, cluster_key(prefix, args->cluster, "sets/%s/", set_id), &kvs) < 0) {
                json_object_put(arr);
                return NULL;
        }
        for (size_t i = 0; i < kvs.n; i++) {
                const char *rest = cluster_set_key_rest(kvs.kvs[i].key, args->cluster, other);
                Record r = {};
                *ret_plan |= rest && streq(rest, "plan");
                if (!rest || strncmp(rest, "hosts/", 6) != 0 || cluster_record_parse(kvs.kvs[i].value, &r, err, sizeof(err)) < 0)
                        continue;
                if (r.phase == PHASE_COMMITTED || r.phase == PHASE_DONE)
                        json_object_array_add(arr, json_object_new_string(rest + 6));
                cluster_record_done(&r);
        }
        etcd_kvs_clear(&kvs);
        return arr;
}

/* Writes the delete marker, then waits a little for the hosts that hold shadows to apply it; the
 * others apply it when they return. */
static int delete_shadows(const ClusterArgs *args) {
        _cleanup_(etcd_freep) etcd *e = NULL;
        char key[CLUSTER_KEY_MAX], ts[32];
        bool plan = false;
        vss_id id;
        if (vss_id_from_string(args->set, &id) < 0)
                return vssadmin_usage("'%s' is not an id", args->set);
        if (open_etcd(args, &e))
                return 1;
        json_object *left = holders(args, e, args->set, &plan);
        if (!left)
                return cluster_fail(args, VSS_E_UNEXPECTED, "cannot read the set from etcd: %s", etcd_errmsg(e));
        if (!plan) {
                json_object_put(left);
                return cluster_fail(args, VSS_E_OBJECT_NOT_FOUND, "no cluster set {%s} in cluster '%s' (vssadmin cluster list shadows shows them)",
                                    args->set, args->cluster);
        }
        if (etcd_put(e, cluster_key(key, args->cluster, "sets/%s/delete", args->set),
                     format_timestamp(now_realtime_usec(), ts), 0, NULL) < 0) {
                json_object_put(left);
                return cluster_fail(args, VSS_E_UNEXPECTED, "cannot write the delete marker: %s", etcd_errmsg(e));
        }
        uint64_t until = now_monotonic_usec() + DELETE_WAIT_USEC;
        while (json_object_array_length(left) > 0 && now_monotonic_usec() < until) {
                json_object_put(left);
                struct timespec t = { 0, 50 * 1000 * 1000 };
                nanosleep(&t, NULL); /* a short poll of etcd: a watch is not worth it for ten seconds */
                left = holders(args, e, args->set, &plan);
                if (!left)
                        break;
        }
        size_t n = left ? json_object_array_length(left) : 0;
        if (args->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "result", json_object_new_string("ok"));
                json_object_object_add(o, "cluster_set_id", json_object_new_string(args->set));
                json_object_object_add(o, "pending_hosts", left ? json_object_get(left) : json_object_new_array());
                print_json(o);
                json_object_put(o);
        } else if (n == 0)
                printf("Deleted the shadows of cluster set {%s} on every host.\n", args->set);
        else {
                printf("Delete marker written for cluster set {%s}; hosts that have not applied it yet (they do when they "
                       "return):", args->set);
                for (size_t i = 0; i < n; i++)
                        printf(" %s", json_object_get_string(json_object_array_get_idx(left, i)));
                printf("\n");
        }
        json_object_put(left);
        return 0;
}

static int parse_for(ClusterArgs *a, const char *arg) {
        const char *colon = strchr(arg, ':');
        if (!colon || colon == arg || colon[1] != '/')
                return vssadmin_usage("--for takes HOST:PATH with an absolute PATH, not '%s'", arg);
        if (a->n_fors >= ELEMENTSOF(a->fors))
                return vssadmin_usage("at most %zu --for", ELEMENTSOF(a->fors));
        char *host = strndup(arg, (size_t) (colon - arg));
        if (!host || !cluster_name_valid(host)) {
                free(host);
                return vssadmin_usage("'%.*s' is not a host name ([A-Za-z0-9._-], at most 63)", (int) (colon - arg), arg);
        }
        a->fors[a->n_fors++] = (ClusterFor) { .host = host, .path = (char *) colon + 1 };
        return 0;
}

static int parse_seconds(const char *opt, const char *arg, uint64_t max, uint32_t *ret) {
        uint64_t v;
        if (parse_uint(arg, max, &v) < 0 || v == 0)
                return vssadmin_usage("%s takes a number from 1 to %" PRIu64 ", not '%s'", opt, max, arg);
        *ret = (uint32_t) v;
        return 0;
}

static int parse_args(int argc, char *argv[], ClusterArgs *a) {
        enum { OPT_ETCD = 0x100, OPT_CLUSTER, OPT_FOR, OPT_JOB, OPT_TTL, OPT_SET, OPT_JSON, OPT_CACERT, OPT_CERT, OPT_KEY,
               OPT_USER, OPT_PASSWORD_FILE, OPT_PREPARED, OPT_READY, OPT_COMPLETE, OPT_MARGIN };
        static const struct option options[] = {
                { "etcd", required_argument, NULL, OPT_ETCD },      { "cluster", required_argument, NULL, OPT_CLUSTER },
                { "for", required_argument, NULL, OPT_FOR },        { "job", required_argument, NULL, OPT_JOB },
                { "lease-ttl", required_argument, NULL, OPT_TTL },  { "set", required_argument, NULL, OPT_SET },
                { "json", no_argument, NULL, OPT_JSON },            { "cacert", required_argument, NULL, OPT_CACERT },
                { "cert", required_argument, NULL, OPT_CERT },      { "key", required_argument, NULL, OPT_KEY },
                { "user", required_argument, NULL, OPT_USER },      { "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
                { "prepared-deadline", required_argument, NULL, OPT_PREPARED },
                { "ready-deadline", required_argument, NULL, OPT_READY },
                { "complete-deadline", required_argument, NULL, OPT_COMPLETE },
                { "frozen-margin", required_argument, NULL, OPT_MARGIN },
                {},
        };
        uint32_t ttl = CLUSTER_LEASE_TTL_S;
        char buf[256];
        int c, r = 0;
        opterr = 0;
        optind = 1;
        while (r == 0 && (c = getopt_long(argc, argv, ":", options, NULL)) >= 0) {
                switch (c) {
                case OPT_ETCD: a->etcd.endpoints = optarg; break;
                case OPT_CLUSTER: a->cluster = optarg; break;
                case OPT_FOR: r = parse_for(a, optarg); break;
                case OPT_JOB:
                        if (!cluster_name_valid(optarg))
                                return vssadmin_usage("'%s' is not a job name ([A-Za-z0-9._-], at most 63)", optarg);
                        a->job = optarg;
                        break;
                case OPT_TTL:
                        r = parse_seconds("--lease-ttl", optarg, 3600, &ttl);
                        if (r == 0 && ttl < 2)
                                return vssadmin_usage("%s", "--lease-ttl must be at least 2 seconds");
                        break;
                case OPT_SET: a->set = optarg; break;
                case OPT_JSON: a->json = true; break;
                case OPT_CACERT: a->etcd.cacert = optarg; break;
                case OPT_CERT: a->etcd.cert = optarg; break;
                case OPT_KEY: a->etcd.key = optarg; break;
                case OPT_USER: a->etcd.user = optarg; break;
                case OPT_PASSWORD_FILE: a->etcd.password_file = optarg; break;
                case OPT_PREPARED: r = parse_seconds("--prepared-deadline", optarg, 86400, &a->prepared_s); break;
                case OPT_READY: r = parse_seconds("--ready-deadline", optarg, 86400, &a->ready_s); break;
                case OPT_COMPLETE: r = parse_seconds("--complete-deadline", optarg, 86400, &a->complete_s); break;
                case OPT_MARGIN: r = parse_seconds("--frozen-margin", optarg, 3600000, &a->frozen_margin_ms); break;
                default: return vssadmin_usage("%s", bad_option_text(argc, argv, c, buf, sizeof(buf)));
                }
        }
        a->lease_ttl_s = ttl;
        if (r)
                return r;
        if (!a->etcd.endpoints || !a->cluster)
                return vssadmin_usage("%s", "vssadmin cluster needs --etcd URL[,URL...] and --cluster NAME");
        if (!cluster_name_valid(a->cluster))
                return vssadmin_usage("'%s' is not a cluster name ([A-Za-z0-9._-], at most 63)", a->cluster);
        if (!!a->etcd.cert != !!a->etcd.key || !!a->etcd.user != !!a->etcd.password_file)
                return vssadmin_usage("%s", "--cert goes with --key, --user with --password-file");
        return 0;
}

int vssadmin_cluster(int argc, char *argv[]) {
        static const char *const what = "cluster list hosts|writers|shadows, cluster create shadow, cluster delete shadows";
        ClusterArgs *a = calloc(1, sizeof(*a));
        int r;
        if (!a)
                return 1;
        a->prepared_s = CLUSTER_PREPARED_S;
        a->ready_s = CLUSTER_READY_S;
        a->complete_s = CLUSTER_COMPLETE_S;
        a->frozen_margin_ms = CLUSTER_FROZEN_MARGIN_MS;
        r = parse_args(argc, argv, a);
        const char *verb = optind < argc ? argv[optind] : NULL, *noun = optind + 1 < argc ? argv[optind + 1] : NULL;
        bool create_opts = a->n_fors || a->job;
        if (r)
                ;
        else if (!verb || !noun)
                r = vssadmin_usage("missing command: %s", what);
        else if (optind + 2 < argc)
                r = vssadmin_usage("too many arguments: '%s'", argv[optind + 2]);
        else if (streq(verb, "list") && (create_opts || a->set))
                r = vssadmin_usage("%s", "cluster list takes --etcd, --cluster, the TLS and auth options and --json");
        else if (streq(verb, "list") && (streq(noun, "hosts") || streq(noun, "writers")))
                r = list_hosts(a, streq(noun, "writers"));
        else if (streq(verb, "list") && streq(noun, "shadows"))
                r = list_shadows(a);
        else if (streq(verb, "create") && streq(noun, "shadow")) {
                if (a->n_fors == 0 || a->set)
                        r = vssadmin_usage("%s", "cluster create shadow needs --for HOST:PATH (and takes no --set)");
                else
                        r = cluster_create_shadow(a);
        } else if (streq(verb, "delete") && streq(noun, "shadows")) {
                if (!a->set || create_opts)
                        r = vssadmin_usage("%s", "cluster delete shadows needs --set ID (and takes no --for or --job)");
                else
                        r = delete_shadows(a);
        } else
                r = vssadmin_usage("unknown command 'cluster %s %s' (%s)", verb, noun, what);
        for (size_t i = 0; i < a->n_fors; i++)
                free(a->fors[i].host);
        free(a);
        return r;
}

/* vssadmin-cluster, run by `vssadmin cluster ...` with argv[0] "cluster". */
int main(int argc, char *argv[]) {
        return vssadmin_cluster(argc, argv);
}
