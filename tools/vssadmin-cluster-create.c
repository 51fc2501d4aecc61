/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `vssadmin cluster create shadow`: the coordinator of a cluster set (DESIGN "Cluster snapshot
 * sets"). It writes the plan under its own lease, waits for every host to reach each phase, and
 * moves the decision forward by compare-and-swap, each swap also requiring its leased key: a
 * coordinator whose lease ended decides nothing. After each phase it prints every host's writer
 * status. Any failure moves the decision to abort, which every agent follows. */

#include <poll.h>
#include <stdarg.h>

#include "lib/common.h"
#include "tools/report.h"
#include "tools/vssadmin-cluster.h"

#define USEC(s) ((uint64_t) (s) * USEC_PER_SEC)
#define ABORT_WAIT_USEC (15 * USEC_PER_SEC)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

typedef struct HostState {
        Record rec;             /* the last record seen (phase NONE before the first) */
        bool gone;              /* its agent's hosts/HOST key was deleted */
        uint64_t seen_usec;     /* when the record arrived */
        json_object *out;       /* {"host", "shadows", "phases": [...]} */
} HostState;

typedef struct Coord {
        const ClusterArgs *args;
        etcd *e;
        etcd_watch *w;
        Plan plan;
        HostState *hosts;
        int64_t lease;
        uint64_t next_keepalive;
        Decision decision;
        bool lease_lost;
        int32_t error_hr;
        char error[2048];
} Coord;

_printf_(3, 4) static void coord_fail(Coord *c, int32_t hr, const char *fmt, ...) {
        va_list ap;
        if (c->error_hr)
                return;
        c->error_hr = hr ? hr : VSS_E_UNEXPECTED;
        va_start(ap, fmt);
        vsnprintf(c->error, sizeof(c->error), fmt, ap);
        va_end(ap);
}

static HostState *host_of(Coord *c, const char *name) {
        for (size_t i = 0; i < c->plan.n_hosts; i++)
                if (streq(c->plan.hosts[i].host, name))
                        return &c->hosts[i];
        return NULL;
}

/* The plan from the --for options: hosts in the order first named, their paths in order. */
static int make_plan(Coord *c) {
        const ClusterArgs *a = c->args;
        Plan *p = &c->plan;
        vss_id id;
        char hostname[256] = "?";
        if (vss_id_new(&id) < 0)
                return -ENOMEM;
        vss_id_to_string(&id, p->set_id);
        (void) gethostname(hostname, sizeof(hostname) - 1);
        if (asprintf(&p->coordinator, "%s pid %d", hostname, (int) getpid()) < 0)
                return -ENOMEM;
        p->job = a->job ? strdup(a->job) : NULL;
        p->prepared_s = a->prepared_s;
        p->ready_s = a->ready_s;
        p->complete_s = a->complete_s;
        p->frozen_margin_ms = a->frozen_margin_ms;
        p->hosts = calloc(a->n_fors, sizeof(PlanHost));
        if (!p->hosts)
                return -ENOMEM;
        for (size_t i = 0; i < a->n_fors; i++) {
                PlanHost *h = (PlanHost *) cluster_plan_host(p, a->fors[i].host);
                char norm[4096];
                if (path_normalize(a->fors[i].path, norm, sizeof(norm)) < 0)
                        return -EINVAL;
                if (!h) {
                        h = &p->hosts[p->n_hosts++];
                        h->host = strdup(a->fors[i].host);
                        h->paths = calloc(a->n_fors, sizeof(char *));
                        if (!h->host || !h->paths)
                                return -ENOMEM;
                }
                h->paths[h->n_paths++] = strdup(norm);
        }
        c->hosts = calloc(p->n_hosts, sizeof(HostState));
        if (!c->hosts)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_hosts; i++) {
                c->hosts[i].out = json_object_new_object();
                json_object_object_add(c->hosts[i].out, "host", json_object_new_string(p->hosts[i].host));
                json_object_object_add(c->hosts[i].out, "shadows", json_object_new_array());
                json_object_object_add(c->hosts[i].out, "phases", json_object_new_array());
        }
        return 0;
}

/* Every planned host must be registered (alive) now; returns the store's revision. */
static int check_hosts(Coord *c, int64_t *ret_revision) {
        char prefix[CLUSTER_KEY_MAX], key[CLUSTER_KEY_MAX];
        etcd_kvs kvs = {};
        int r = etcd_get_prefix(c->e, cluster_key(prefix, c->args->cluster, "hosts/"), &kvs);
        if (r < 0) {
                coord_fail(c, VSS_E_UNEXPECTED, "cannot read %s from etcd at %s: %s", prefix, c->args->etcd.endpoints,
                           etcd_errmsg(c->e));
                return r;
        }
        for (size_t i = 0; i < c->plan.n_hosts && !c->error_hr; i++) {
                bool found = false;
                cluster_key(key, c->args->cluster, "hosts/%s", c->plan.hosts[i].host);
                for (size_t k = 0; k < kvs.n && !found; k++)
                        found = streq(kvs.kvs[k].key, key);
                if (!found)
                        coord_fail(c, VSS_E_OBJECT_NOT_FOUND,
                                   "host '%s' is not registered in cluster '%s' (is its vss-agent running? "
                                   "vssadmin cluster list hosts shows those that are)",
                                   c->plan.hosts[i].host, c->args->cluster);
        }
        *ret_revision = kvs.revision;
        etcd_kvs_clear(&kvs);
        return c->error_hr ? -ENOENT : 0;
}

/* The lease, the coordinator key under it and the plan, in one transaction. */
static int publish(Coord *c) {
        char ckey[CLUSTER_KEY_MAX], pkey[CLUSTER_KEY_MAX], who[300];
        bool ok = false;
        int r = etcd_lease_grant(c->e, c->args->lease_ttl_s, &c->lease);
        if (r < 0) {
                coord_fail(c, VSS_E_UNEXPECTED, "cannot get a lease from etcd: %s", etcd_errmsg(c->e));
                return r;
        }
        c->next_keepalive = now_monotonic_usec() + USEC(c->args->lease_ttl_s) / 3;
        json_object *plan = cluster_plan_to_json(&c->plan);
        snprintf(who, sizeof(who), "{\"coordinator\": \"%s\"}", c->plan.coordinator);
        cluster_key(ckey, c->args->cluster, "sets/%s/coordinator", c->plan.set_id);
        cluster_key(pkey, c->args->cluster, "sets/%s/plan", c->plan.set_id);
        const etcd_cmp cmp = { .key = ckey, .target = ETCD_CMP_CREATE_REVISION, .result = ETCD_CMP_EQUAL, .number = 0 };
        const etcd_op ops[] = {
                { .type = ETCD_OP_PUT, .key = ckey, .value = who, .lease = c->lease },
                { .type = ETCD_OP_PUT, .key = pkey, .value = json_object_to_json_string_ext(plan, JSON_C_TO_STRING_PLAIN) },
        };
        r = etcd_txn(c->e, &cmp, 1, ops, 2, NULL, 0, &ok, NULL);
        json_object_put(plan);
        if (r < 0 || !ok) {
                coord_fail(c, VSS_E_UNEXPECTED, "cannot write the plan: %s", r < 0 ? etcd_errmsg(c->e) : "the set id is taken");
                return r < 0 ? r : -EEXIST;
        }
        return 0;
}

static void keepalive(Coord *c) {
        int64_t ttl = 0;
        if (now_monotonic_usec() < c->next_keepalive || c->lease_lost)
                return;
        c->next_keepalive = now_monotonic_usec() + USEC(c->args->lease_ttl_s) / 3;
        int r = etcd_lease_keepalive(c->e, c->lease, &ttl);
        if (r == -ENOENT || (r >= 0 && ttl <= 0)) {
                c->lease_lost = true;
                coord_fail(c, VSS_E_ABORT, "this coordinator's lease ended: it can decide nothing, and the hosts abort");
        }
        /* Other failures: etcd is away for now; the lease tells whether it was for too long. */
}

static void on_event(Coord *c, const etcd_event *ev) {
        char set_id[64], key[CLUSTER_KEY_MAX], err[512];
        const char *rest = cluster_set_key_rest(ev->kv.key, c->args->cluster, set_id);
        size_t hl = strlen(cluster_key(key, c->args->cluster, "hosts/"));
        if (!rest && strncmp(ev->kv.key, key, hl) == 0 && ev->deleted) {
                HostState *h = host_of(c, ev->kv.key + hl);
                if (h)
                        h->gone = true;
                return;
        }
        if (!rest || !streq(set_id, c->plan.set_id))
                return;
        if (streq(rest, "decision") && !ev->deleted)
                c->decision = decision_from_name(ev->kv.value);
        else if (streq(rest, "coordinator") && ev->deleted && !c->lease_lost) {
                c->lease_lost = true;
                coord_fail(c, VSS_E_ABORT, "this coordinator's lease ended: it can decide nothing, and the hosts abort");
        } else if (strncmp(rest, "hosts/", 6) == 0 && !ev->deleted) {
                HostState *h = host_of(c, rest + 6);
                Record r = {};
                if (!h)
                        return;
                if (cluster_record_parse(ev->kv.value, &r, err, sizeof(err)) < 0) {
                        coord_fail(c, VSS_E_UNEXPECTED, "host %s wrote a record that does not parse: %s", rest + 6, err);
                        return;
                }
                cluster_record_done(&h->rec);
                h->rec = r;
                h->seen_usec = now_monotonic_usec();
                snprintf(err, sizeof(err), "got-%s-%s", rest + 6, phase_name(r.phase));
                cluster_trace("coordinator", err);
        }
}

/* Checks after events: a failed host, a host gone, the decision moved to abort by a host. */
static void check_failures(Coord *c, Phase target) {
        for (size_t i = 0; i < c->plan.n_hosts && !c->error_hr; i++) {
                HostState *h = &c->hosts[i];
                if (h->rec.phase == PHASE_FAILED || h->rec.phase == PHASE_ABORTED)
                        coord_fail(c, h->rec.error_code, "host %s: %s", c->plan.hosts[i].host,
                                   *h->rec.error ? h->rec.error : phase_name(h->rec.phase));
                else if (h->gone && (h->rec.phase < target || c->decision < DECISION_COMPLETE))
                        /* Its session went with it: vssd aborted its part, whatever it had reported. */
                        coord_fail(c, VSS_E_WRITER_INFRASTRUCTURE, "host %s: its agent is gone (its lease ended) before %s",
                                   c->plan.hosts[i].host, c->decision < DECISION_COMPLETE ? "the set completed" : phase_name(target));
        }
        if (!c->error_hr && c->decision == DECISION_ABORT)
                coord_fail(c, VSS_E_ABORT, "%s", "a host moved the decision to abort");
}

static bool all_at(Coord *c, Phase target) {
        for (size_t i = 0; i < c->plan.n_hosts; i++)
                if (c->hosts[i].rec.phase != target)
                        return false;
        return true;
}

static int turn(Coord *c, uint64_t deadline) {
        etcd_event *ev = NULL;
        uint64_t now = now_monotonic_usec(), until = MIN(deadline, c->next_keepalive);
        int timeout = until > now ? (int) MIN((until - now) / USEC_PER_MSEC + 1, 1000u) : 0;
        int n = etcd_watch_next(c->w, timeout, NULL, 0, &ev);
        if (n < 0)
                return n;
        for (int i = 0; i < n; i++)
                on_event(c, &ev[i]);
        etcd_events_free(ev, (size_t) n);
        keepalive(c);
        return 0;
}

/* The frozen deadline: the first freeze window to end, as the hosts reported it, less the margin. */
static uint64_t frozen_deadline(Coord *c) {
        uint64_t d = UINT64_MAX;
        for (size_t i = 0; i < c->plan.n_hosts; i++)
                if (c->hosts[i].rec.usec_left >= 0)
                        d = MIN(d, c->hosts[i].seen_usec + (uint64_t) c->hosts[i].rec.usec_left);
        uint64_t margin = (uint64_t) c->plan.frozen_margin_ms * USEC_PER_MSEC;
        return d == UINT64_MAX ? UINT64_MAX : d > margin ? d - margin : 0;
}

/* Waits until every host reports target, or a failure, or the deadline. While hosts freeze, the
 * first of them to freeze bounds the wait too: its window must not end before the commit. */
static bool wait_all(Coord *c, Phase target, uint64_t deadline) {
        for (;;) {
                check_failures(c, target);
                if (c->error_hr)
                        return false;
                if (all_at(c, target)) {
                        char what[64];
                        snprintf(what, sizeof(what), "all-%s", phase_name(target));
                        cluster_trace("coordinator", what);
                        return true;
                }
                if (target == PHASE_FROZEN && now_monotonic_usec() >= frozen_deadline(c)) {
                        coord_fail(c, VSS_E_WRITERERROR_TIMEOUT,
                                   "the first freeze window would end (less the margin of %u ms) before every host froze",
                                   c->plan.frozen_margin_ms);
                        return false;
                }
                if (now_monotonic_usec() >= deadline) {
                        char late[1024] = "";
                        for (size_t i = 0; i < c->plan.n_hosts; i++)
                                if (c->hosts[i].rec.phase != target)
                                        snprintf(late + strlen(late), sizeof(late) - strlen(late), "%s%s (%s)",
                                                 *late ? ", " : "", c->plan.hosts[i].host,
                                                 c->hosts[i].rec.phase ? phase_name(c->hosts[i].rec.phase) : "no report");
                        coord_fail(c, VSS_E_WRITERERROR_TIMEOUT, "deadline passed waiting for every host to be %s: %s",
                                   phase_name(target), late);
                        return false;
                }
                if (turn(c, target == PHASE_FROZEN ? MIN(deadline, frozen_deadline(c)) : deadline) < 0)
                        (void) 0; /* the watch reconnects; the deadline and the lease decide */
        }
}

/* Every host's writer status after a phase: text now, JSON at the end. */
static void print_phase(Coord *c, const char *phase) {
        if (!c->args->json)
                printf("Writer status after %s:\n", phase);
        for (size_t i = 0; i < c->plan.n_hosts; i++) {
                HostState *h = &c->hosts[i];
                json_object *p = json_object_new_object();
                json_object_object_add(p, "phase", json_object_new_string(phase));
                json_object_object_add(p, "writers", h->rec.writers ? json_object_get(h->rec.writers) : json_object_new_array());
                json_object_array_add(json_object_object_get(h->out, "phases"), p);
                if (c->args->json)
                        continue;
                printf("Host: %s\n", c->plan.hosts[i].host);
                cluster_print_writers(h->rec.writers, "   ");
        }
        if (!c->args->json)
                printf("\n");
        fflush(stdout);
}

static bool decide(Coord *c, Decision from, Decision to) {
        Decision now = DECISION_NONE;
        int r = cluster_move_decision(c->e, c->args->cluster, c->plan.set_id, from, to, c->lease, &now);
        if (r < 0)
                coord_fail(c, VSS_E_UNEXPECTED, "cannot move the decision to %s: %s", decision_name(to), etcd_errmsg(c->e));
        else if (r == 0 && now == DECISION_ABORT)
                coord_fail(c, VSS_E_ABORT, "%s", "a host moved the decision to abort");
        else if (r == 0)
                coord_fail(c, VSS_E_ABORT, "the decision could not move to %s: this coordinator's lease ended",
                           decision_name(to));
        if (r > 0) {
                char what[64];
                snprintf(what, sizeof(what), "decided-%s", decision_name(to));
                cluster_trace("coordinator", what);
                c->decision = to;
        }
        return r > 0;
}

/* Prepared, ready, frozen, committed, done: each phase awaited, shown, and decided on. */
static bool run_sequence(Coord *c) {
        static const struct {
                Phase phase;
                Decision next;
        } steps[] = {
                { PHASE_PREPARED, DECISION_SNAPSHOT }, { PHASE_READY, DECISION_FREEZE },
                { PHASE_FROZEN, DECISION_COMMIT },     { PHASE_COMMITTED, DECISION_COMPLETE },
        };
        uint64_t deadline = now_monotonic_usec() + USEC(c->plan.prepared_s);
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                if (!wait_all(c, steps[i].phase, deadline))
                        return false;
                print_phase(c, phase_name(steps[i].phase));
                if (steps[i].phase == PHASE_FROZEN && now_monotonic_usec() >= frozen_deadline(c)) {
                        coord_fail(c, VSS_E_WRITERERROR_TIMEOUT,
                                   "every host froze, but too late: the first freeze window ends within the margin of %u ms",
                                   c->plan.frozen_margin_ms);
                        return false;
                }
                if (!decide(c, steps[i].next - 1, steps[i].next))
                        return false;
                uint64_t now = now_monotonic_usec();
                deadline = steps[i].phase == PHASE_PREPARED ? now + USEC(c->plan.ready_s)
                         : steps[i].phase == PHASE_READY    ? now + USEC(c->plan.ready_s)
                                                            : now + USEC(c->plan.complete_s);
        }
        /* The set is complete: the shadows are kept whatever follows; a host that does not report
         * done in time is named, not undone. */
        if (!wait_all(c, PHASE_DONE, deadline))
                return false;
        print_phase(c, phase_name(PHASE_DONE));
        return true;
}

/* After a failure: the decision to abort, then every host's last status once each has ended its
 * part (or the wait ran out). */
static void abort_set(Coord *c) {
        Decision now = DECISION_NONE;
        if (c->decision == DECISION_COMPLETE)
                return;
        if (!c->lease_lost && c->decision != DECISION_ABORT) {
                int r = cluster_abort_decision(c->e, c->args->cluster, c->plan.set_id, c->lease, &now);
                if (r < 0 && r != -ENOENT)
                        fprintf(stderr, "vssadmin: cannot move the decision to abort (%s); the hosts abort when this "
                                        "coordinator's lease ends\n", etcd_errmsg(c->e));
        }
        uint64_t until = now_monotonic_usec() + ABORT_WAIT_USEC;
        for (;;) {
                bool ended = true;
                for (size_t i = 0; i < c->plan.n_hosts; i++) {
                        Phase p = c->hosts[i].rec.phase;
                        ended &= p == PHASE_ABORTED || p == PHASE_FAILED || p == PHASE_NONE || c->hosts[i].gone;
                }
                if (ended || now_monotonic_usec() >= until || turn(c, until) < 0)
                        break;
        }
        print_phase(c, "abort");
        /* A host that failed, else one that aborted on its own, says why better than the abort. */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < c->plan.n_hosts && c->error_hr == VSS_E_ABORT; i++) {
                        const Record *r = &c->hosts[i].rec;
                        if (r->phase == (pass == 0 ? PHASE_FAILED : PHASE_ABORTED) && *r->error &&
                            !streq(r->error, "the decision is abort")) {
                                c->error_hr = 0;
                                coord_fail(c, r->error_code, "host %s: %s", c->plan.hosts[i].host, r->error);
                        }
                }
}

static int finish(Coord *c, bool ok) {
        json_object *out = json_object_new_object(), *hosts = json_object_new_array();
        bool job_failed = false;
        json_object_object_add(out, "result", json_object_new_string(ok ? "ok" : "failed"));
        json_object *e = NULL;
        if (!ok) {
                Report rep = { .error_hr = c->error_hr };
                snprintf(rep.error_msg, sizeof(rep.error_msg), "%s", c->error);
                e = report_error_json(&rep);
        }
        json_object_object_add(out, "error", e);
        json_object_object_add(out, "cluster_set_id", json_object_new_string(c->plan.set_id));
        for (size_t i = 0; i < c->plan.n_hosts; i++) {
                HostState *h = &c->hosts[i];
                if (ok && h->rec.shadows)
                        json_object_object_add(h->out, "shadows", json_object_get(h->rec.shadows));
                if (ok && *h->rec.job) {
                        json_object *j = json_object_new_object();
                        json_object_object_add(j, "name", json_object_new_string(h->rec.job));
                        json_object_object_add(j, "exit_status", json_object_new_int(h->rec.job_status));
                        json_object_object_add(h->out, "job", j);
                        job_failed |= h->rec.job_status != 0;
                }
                json_object_array_add(hosts, json_object_get(h->out));
                if (c->args->json || !ok)
                        continue;
                printf("Host: %s\n", c->plan.hosts[i].host);
                json_object *sh = h->rec.shadows;
                for (size_t k = 0; sh && k < json_object_array_length(sh); k++) {
                        json_object *x = json_object_array_get_idx(sh, k);
                        printf("Successfully created shadow copy for '%s'\n    Shadow Copy ID: {%s}\n"
                               "    Shadow Copy Set ID: {%s}\n    Shadow Copy Volume Name: %s\n    Provider: '%s'\n",
                               json_object_get_string(json_object_object_get(x, "original_path")),
                               json_object_get_string(json_object_object_get(x, "shadow_id")),
                               json_object_get_string(json_object_object_get(x, "snapshot_set_id")),
                               json_object_get_string(json_object_object_get(x, "shadow_path")),
                               json_object_get_string(json_object_object_get(x, "provider")));
                }
                if (*h->rec.job)
                        printf("Job '%s' exited with status %d; its shadows were then deleted\n", h->rec.job, h->rec.job_status);
        }
        json_object_object_add(out, "hosts", hosts);
        if (c->args->json)
                print_json(out);
        else if (ok)
                printf("Cluster shadow copy set ID: {%s}\n", c->plan.set_id);
        json_object_put(out);
        if (!ok)
                fprintf(stderr, "vssadmin: cluster create shadow failed: %s (0x%08x): %s\n",
                        strempty(vss_error_name(c->error_hr)), (uint32_t) c->error_hr, c->error);
        else if (job_failed)
                fprintf(stderr, "vssadmin: cluster create shadow: a job failed on some host\n");
        return ok && !job_failed ? 0 : 1;
}

int cluster_create_shadow(const ClusterArgs *args) {
        char prefix[CLUSTER_KEY_MAX];
        Coord c = { .args = args };
        int64_t rev = 0;
        if (make_plan(&c) < 0)
                return cluster_fail(args, VSS_E_OUTOFMEMORY, "%s", "cannot make the plan");
        char err[1200];
        if (cluster_etcd_open(&args->etcd, 0, &c.e, err, sizeof(err)) < 0)
                return cluster_fail(args, VSS_E_INVALIDARG, "%s", err);
        bool ok = false, published = false;
        if (check_hosts(&c, &rev) >= 0 &&
            etcd_watch_new(c.e, cluster_key(prefix, args->cluster, "%s", ""), rev + 1, &c.w) >= 0 && publish(&c) >= 0) {
                published = true;
                ok = run_sequence(&c);
        } else if (!c.error_hr)
                coord_fail(&c, VSS_E_UNEXPECTED, "cannot watch %s: %s", prefix, etcd_errmsg(c.e));
        if (!ok && published)
                abort_set(&c);
        int ret = published || args->json ? finish(&c, ok) : cluster_fail(args, c.error_hr, "%s", c.error);
        if (c.lease)
                (void) etcd_lease_revoke(c.e, c.lease);
        for (size_t i = 0; i < c.plan.n_hosts; i++) {
                cluster_record_done(&c.hosts[i].rec);
                json_object_put(c.hosts[i].out);
        }
        free(c.hosts);
        cluster_plan_done(&c.plan);
        etcd_watch_free(c.w);
        etcd_free(c.e);
        return ret;
}
