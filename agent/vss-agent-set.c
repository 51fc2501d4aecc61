/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* This host's part of a cluster set: the local vssd driven through DESIGN's sequence, one step
 * per decision, never waiting on vssd: the loop waits on vssd's connection beside the watch, and
 * calls in here when either has something, so the lease and the watch keep going.
 * Anything but the decision moving forward in time aborts here: nothing is kept, and the
 * decision is moved to abort so every other host aborts too. */

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "agent/vss-agent.h"
#include "lib/basic/log.h"
#include "lib/common.h"
#include "tools/report.h"

#define USEC(s) ((uint64_t) (s) * USEC_PER_SEC)

static const char *const step_waits[] = {
        [STEP_PREPARING] = "PrepareForBackup", [STEP_PREPARED] = "the decision 'snapshot'",
        [STEP_SNAPSHOTTING] = "PrepareForSnapshot", [STEP_READY] = "the decision 'freeze'",
        [STEP_FREEZING] = "Freeze", [STEP_FROZEN] = "the decision 'commit'", [STEP_COMMITTING] = "the commit",
        [STEP_COMMITTED] = "the decision 'complete'", [STEP_COMPLETING] = "BackupComplete", [STEP_JOB] = "the job",
        [STEP_ENDED] = "nothing",
};

static void set_free(AgentSet *s) {
        if (!s)
                return;
        vss_async_free(s->op);
        vss_backup_free(s->b);
        if (s->job_running)
                spawn_terminate(&s->job, 5 * USEC_PER_SEC, NULL);
        spawned_done(&s->job);
        for (size_t i = 0; s->job_paths && s->job_paths[i]; i++)
                free(s->job_paths[i]);
        free(s->job_paths);
        cluster_plan_done(&s->plan);
        free(s);
}

/* The writers' status now (JSON), with the first failed writer described in veto. */
static json_object *status_now(AgentSet *s, char *veto, size_t vetosize, int32_t *ret_hr) {
        if (ret_hr)
                *ret_hr = 0;
        if (!s->b || vss_backup_gather_writer_status_sync(s->b) < 0)
                return json_object_new_array();
        return cluster_writers_json(s->b, veto, vetosize, ret_hr);
}

/* Deletes the local shadows of the set (none is fine). */
static void delete_local(Agent *a, AgentSet *s) {
        if (vss_id_is_null(&s->local_set))
                return;
        if (agent_state_delete_shadows(a, s->plan.set_id) < 0)
                log_msg("cluster set %s: could not delete its local shadows; they stay listed in %s",
                        s->plan.set_id, a->state_dir);
}

/* Ends the set here with nothing kept: Abort to the writers, shadows deleted, the record says
 * phase (failed: this host could not; aborted: told to), the decision moves to abort. */
static void set_end_abort(Agent *a, Phase phase, int32_t hr, const char *why) {
        AgentSet *s = a->set;
        Decision now = DECISION_NONE;
        log_msg("cluster set %s: %s here: %s", s->plan.set_id, phase_name(phase), why);
        if (s->b && s->step < STEP_COMMITTED) {
                (void) vss_backup_abort_backup(s->b);
                if (s->op)
                        (void) vss_async_wait(s->op, 30000); /* the Abort is quick; the commit may not be */
        }
        json_object *writers = status_now(s, NULL, 0, NULL);
        /* The others must abort too. Before the commit the record goes first, so the coordinator
         * learns why before it sees the abort; after it the swap goes first: a decision already
         * complete (a coordinator that saw our commit won the race) keeps the set. */
        bool want_cas = a->etcd_down_since == 0 && s->decision != DECISION_ABORT;
        if (want_cas && s->step >= STEP_COMMITTED) {
                want_cas = false;
                int r = cluster_abort_decision(a->e, a->cluster, s->plan.set_id, 0, &now);
                if (r < 0)
                        agent_etcd_failed(a, r, "moving the decision to abort");
                else if (now == DECISION_COMPLETE) {
                        json_object_put(writers);
                        s->decision = DECISION_COMPLETE;
                        return;
                }
        }
        delete_local(a, s);
        (void) agent_put_record(a, s->plan.set_id, phase, writers, NULL, hr, why, -1, NULL, 0);
        if (want_cas) {
                int r = cluster_abort_decision(a->e, a->cluster, s->plan.set_id, 0, &now);
                if (r < 0)
                        agent_etcd_failed(a, r, "moving the decision to abort");
        }
        set_free(s);
        a->set = NULL;
        (void) agent_register(a);
}

/* etcd has not answered for longer than the lease: before the commit nothing is kept; after it
 * the shadows stay in doubt until the decision can be read (never exposed meanwhile). */
static void set_end_unreachable(Agent *a) {
        AgentSet *s = a->set;
        if (s->step < STEP_COMMITTED) {
                /* Nothing is kept; the record and the swap to abort wait for etcd: the set's state
                 * file stays, and reconciling (once etcd answers) reports it and deletes it. */
                log_msg("cluster set %s: etcd cannot be reached before the commit: aborted here", s->plan.set_id);
                if (s->b) {
                        (void) vss_backup_abort_backup(s->b);
                        if (s->op)
                                (void) vss_async_wait(s->op, 30000);
                }
        } else
                log_msg("cluster set %s: etcd cannot be reached after the commit: its shadows are in doubt until the "
                        "decision can be read", s->plan.set_id);
        a->in_doubt = true;
        set_free(s);
        a->set = NULL;
}

static void set_fail(Agent *a, int32_t hr, const char *why) {
        set_end_abort(a, PHASE_FAILED, hr, why);
}

static void set_fail_vss(Agent *a, int32_t hr, const char *what) {
        char msg[1200];
        snprintf(msg, sizeof(msg), "%s failed: %s (0x%08x): %s", what, strempty(vss_error_name(hr)), (uint32_t) hr,
                 error_cause(vss_backup_errmsg(a->set->b)));
        set_fail(a, hr, msg);
}

/* Reports phase with the writers' status; a failed writer fails the host instead. */
static bool report(Agent *a, Phase phase, json_object *shadows, int64_t usec_left) {
        AgentSet *s = a->set;
        char veto[1200] = "";
        int32_t hr = 0;
        char what[64];
        json_object *writers = status_now(s, veto, sizeof(veto), &hr);
        snprintf(what, sizeof(what), "gathered-%s", phase_name(phase));
        cluster_trace(a->host, what);
        if (hr) {
                json_object_put(writers);
                json_object_put(shadows);
                set_fail(a, hr, veto);
                return false;
        }
        if (agent_put_record(a, s->plan.set_id, phase, writers, shadows, 0, NULL, usec_left, NULL, 0) < 0)
                return true; /* etcd trouble: the loop decides what it means */
        snprintf(what, sizeof(what), "put-%s", phase_name(phase));
        cluster_trace(a->host, what);
        return true;
}

static int open_session(Agent *a, AgentSet *s) {
        int r = vss_backup_new(a->socket, &s->b);
        if (r < 0)
                return r;
        if ((r = vss_backup_initialize_for_backup(s->b)) < 0 ||
            (r = vss_backup_set_context(s->b, VSS_CTX_CLIENT_ACCESSIBLE_WRITERS)) < 0 ||
            (r = vss_backup_set_backup_state(s->b, false, false, VSS_BT_FULL, false)) < 0 ||
            (r = vss_backup_gather_writer_metadata_sync(s->b)) < 0 ||
            (r = vss_backup_start_snapshot_set(s->b, &s->local_set)) < 0)
                return r;
        (void) agent_state_write(a, s->plan.set_id, &s->local_set, LOCAL_STARTED);
        for (size_t i = 0; i < s->me->n_paths; i++)
                if ((r = vss_backup_add_to_snapshot_set(s->b, s->me->paths[i], NULL, &s->shadow_ids[s->n_shadows++])) < 0)
                        return r;
        return vss_backup_prepare_for_backup(s->b, &s->op);
}

/* What this host's config refuses in the plan, or NULL. */
/* Checks the plan against this agent's config. Each path is resolved first and then checked, and
 * vssd gets the resolved one: a symlink below a configured path (a user's, say) must not lead
 * the shadow copy, and the job run on it, to a filesystem the config does not name. */
static const char *plan_refused(Agent *a, AgentSet *s, char *buf, size_t size) {
        PlanHost *me = (PlanHost *) s->me; /* our own copy of the plan */
        for (size_t i = 0; i < me->n_paths; i++) {
                char real[PATH_MAX];
                if (!realpath(me->paths[i], real)) {
                        snprintf(buf, size, "path %s cannot be resolved: %s", me->paths[i], strerror(errno));
                        return buf;
                }
                if (!agent_config_allows_path(&a->config, real)) {
                        snprintf(buf, size, "path %s%s%s is not in this agent's config (\"paths\")", me->paths[i],
                                 streq(real, me->paths[i]) ? "" : ", really ", streq(real, me->paths[i]) ? "" : real);
                        return buf;
                }
                char *copy = strdup(real);
                if (!copy) {
                        snprintf(buf, size, "out of memory");
                        return buf;
                }
                free(me->paths[i]);
                me->paths[i] = copy;
        }
        if (s->plan.job && !agent_config_job(&a->config, s->plan.job)) {
                snprintf(buf, size, "job '%s' is not in this agent's config (\"jobs\")", s->plan.job);
                return buf;
        }
        return NULL;
}

void agent_set_plan(Agent *a, const char *set_id, const char *text, const char *busy_with) {
        char err[1200], key[CLUSTER_KEY_MAX];
        AgentSet *s = calloc(1, sizeof(*s));
        etcd_kvs kvs = {};
        if (!s)
                return;
        s->job = SPAWNED_NONE;
        if (cluster_plan_parse(text, &s->plan, err, sizeof(err)) < 0 || !streq(s->plan.set_id, set_id)) {
                log_msg("cluster set %s: ignoring a plan that does not parse: %s", set_id, err);
                set_free(s);
                return;
        }
        s->me = cluster_plan_host(&s->plan, a->host);
        if (!s->me) {
                set_free(s);
                return;
        }
        if (a->set || busy_with) {
                snprintf(err, sizeof(err), "this host is busy with cluster set %s", a->set ? a->set->plan.set_id : busy_with);
                (void) agent_put_record(a, set_id, PHASE_FAILED, NULL, NULL, VSS_E_SNAPSHOT_SET_IN_PROGRESS, err, -1,
                                        NULL, 0);
                (void) cluster_abort_decision(a->e, a->cluster, set_id, 0, NULL);
                set_free(s);
                return;
        }
        a->set = s;
        log_msg("cluster set %s: preparing (plan of %s)", set_id, strempty(s->plan.coordinator));
        if (plan_refused(a, s, err, sizeof(err))) {
                set_fail(a, VSS_E_ACCESSDENIED, err);
                return;
        }
        /* A plan whose coordinator is already gone is not worth starting. */
        int r = etcd_get(a->e, cluster_key(key, a->cluster, "sets/%s/coordinator", set_id), &kvs);
        bool gone = r >= 0 && kvs.n == 0;
        etcd_kvs_clear(&kvs);
        if (gone) {
                set_fail(a, VSS_E_UNEXPECTED, "the coordinator is gone");
                return;
        }
        s->step = STEP_PREPARING;
        s->deadline = now_monotonic_usec() + USEC(s->plan.prepared_s);
        r = open_session(a, s);
        if (r < 0) {
                if (!s->b) {
                        char why[1024];
                        set_fail(a, r, vssd_failure_text(a->socket, r, why, sizeof(why)));
                } else
                        set_fail_vss(a, r, "preparing the local set");
        }
}

/* Collects the shadows' properties (JSON, and their paths for a job). */
static json_object *shadows_now(AgentSet *s) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; s->job_paths && s->job_paths[i]; i++)
                free(s->job_paths[i]);
        free(s->job_paths);
        s->job_paths = calloc(s->n_shadows + 1, sizeof(char *));
        for (size_t i = 0, k = 0; i < s->n_shadows; i++) {
                vss_snapshot_prop p;
                if (vss_backup_get_snapshot_properties(s->b, &s->shadow_ids[i], &p) < 0)
                        continue;
                json_object_array_add(arr, shadow_prop_json(&p));
                if (s->job_paths)
                        s->job_paths[k++] = strdup(p.shadow_path);
        }
        return arr;
}

static void set_done(Agent *a, const char *job, int job_status) {
        AgentSet *s = a->set;
        json_object *writers = status_now(s, NULL, 0, NULL);
        (void) agent_put_record(a, s->plan.set_id, PHASE_DONE, writers, shadows_now(s), 0, NULL, -1, job, job_status);
        if (job)
                delete_local(a, s); /* a job's set is taken to serve the job only */
        log_msg("cluster set %s: done", s->plan.set_id);
        set_free(s);
        a->set = NULL;
        (void) agent_register(a);
}

static void start_job(Agent *a) {
        AgentSet *s = a->set;
        const AgentJob *j = agent_config_job(&a->config, s->plan.job);
        size_t n = 0;
        while (s->job_paths && s->job_paths[n])
                n++;
        char **argv = j ? agent_job_argv(j, s->plan.set_id, s->job_paths, n) : NULL;
        char *path = NULL;
        int r = -ENOMEM;
        if (argv) {
                /* A bare command name is looked up in $PATH, as a shell would. */
                path = strchr(argv[0], '/') ? strdup(argv[0]) : NULL;
                const char *envpath = getenv("PATH");
                _cleanup_free_ char *dirs = strdup(envpath ? envpath : "/usr/sbin:/usr/bin:/sbin:/bin");
                for (char *save = NULL, *d = dirs ? strtok_r(dirs, ":", &save) : NULL; !path && d;
                     d = strtok_r(NULL, ":", &save)) {
                        char *c = path_join(d, argv[0]);
                        if (c && access(c, X_OK) == 0)
                                path = c;
                        else
                                free(c);
                }
                SpawnOptions o = { .path = path ? path : argv[0], .argv = argv, .stdin_fd = SPAWN_NULL,
                                   .stdout_fd = SPAWN_INHERIT, .stderr_fd = SPAWN_INHERIT, .death_signal = SIGTERM };
                r = spawn_start(&o, &s->job);
        }
        for (size_t i = 0; argv && argv[i]; i++)
                free(argv[i]);
        free(argv);
        free(path);
        if (r < 0) {
                log_msg("cluster set %s: cannot start job '%s': %s", s->plan.set_id, s->plan.job, strerror(-r));
                set_done(a, s->plan.job, 127);
                return;
        }
        s->job_running = true;
        s->step = STEP_JOB;
}

/* A paused or ended do-snapshot-set, seen in steps SNAPSHOTTING, FREEZING and COMMITTING. */
static void step_snapshot(Agent *a) {
        AgentSet *s = a->set;
        uint32_t point = 0;
        uint64_t left = UINT64_MAX;
        int r = vss_backup_wait_paused(s->b, 0, &point, &left);
        if (r == VSS_S_ASYNC_PENDING)
                return;
        if (r < 0)
                return set_fail_vss(a, r, "DoSnapshotSet");
        cluster_trace(a->host, point == VSS_PAUSE_BEFORE_FREEZE   ? "paused-before-freeze"
                               : point == VSS_PAUSE_BEFORE_COMMIT ? "paused-before-commit"
                                                                  : "dss-ended");
        if (point == VSS_PAUSE_BEFORE_FREEZE && s->step == STEP_SNAPSHOTTING) {
                if (report(a, PHASE_READY, NULL, -1)) {
                        s->step = STEP_READY;
                        s->deadline = now_monotonic_usec() + USEC(s->plan.ready_s);
                }
        } else if (point == VSS_PAUSE_BEFORE_COMMIT && s->step == STEP_FREEZING) {
                if (report(a, PHASE_FROZEN, NULL, left == UINT64_MAX ? -1 : (int64_t) left)) {
                        s->step = STEP_FROZEN;
                        /* vssd aborts at the window's end itself; this bounds the wait without one. */
                        s->deadline = now_monotonic_usec() + (left == UINT64_MAX ? USEC(s->plan.ready_s) : left);
                }
        } else if (point == 0) {
                r = vss_async_wait(s->op, 0);
                s->op = vss_async_free(s->op);
                if (r < 0)
                        return set_fail_vss(a, r, "DoSnapshotSet");
                if (s->step != STEP_COMMITTING)
                        return set_fail(a, VSS_E_UNEXPECTED, "DoSnapshotSet ended before the decision to commit");
                (void) agent_state_write(a, s->plan.set_id, &s->local_set, LOCAL_COMMITTED);
                s->step = STEP_COMMITTED;
                s->deadline = now_monotonic_usec() + USEC(s->plan.complete_s);
                (void) report(a, PHASE_COMMITTED, shadows_now(s), -1);
        } else
                set_fail(a, VSS_E_UNEXPECTED, "DoSnapshotSet paused where it was not asked to");
}

/* Whether an abort condition holds (then the set has been ended). */
static bool check_abort(Agent *a) {
        AgentSet *s = a->set;
        char msg[200];
        if (s->step >= STEP_COMPLETING)
                return false; /* the decision is complete: nothing aborts it any more */
        if (s->decision == DECISION_ABORT) {
                set_end_abort(a, PHASE_ABORTED, VSS_E_ABORT, "the decision is abort");
                return true;
        }
        if (a->etcd_down_since && now_monotonic_usec() - a->etcd_down_since > USEC(a->lease_ttl_s)) {
                set_end_unreachable(a);
                return true;
        }
        if (s->coordinator_gone && s->decision != DECISION_COMPLETE) {
                set_end_abort(a, PHASE_ABORTED, VSS_E_ABORT, "the coordinator is gone (its lease ended)");
                return a->set == NULL;
        }
        if (s->deadline && now_monotonic_usec() > s->deadline) {
                snprintf(msg, sizeof(msg), "deadline passed waiting for %s", step_waits[s->step]);
                set_end_abort(a, PHASE_ABORTED, VSS_E_WRITERERROR_TIMEOUT, msg);
                return a->set == NULL;
        }
        return false;
}

static void step_decided(Agent *a) {
        AgentSet *s = a->set;
        int r;
        if (s->step == STEP_PREPARED && s->decision == DECISION_SNAPSHOT) {
                r = vss_backup_do_snapshot_set_paused(s->b, VSS_PAUSE_BEFORE_FREEZE | VSS_PAUSE_BEFORE_COMMIT, &s->op);
                if (r < 0)
                        return set_fail_vss(a, r, "DoSnapshotSet");
                s->step = STEP_SNAPSHOTTING;
                s->deadline = now_monotonic_usec() + USEC(s->plan.ready_s);
        } else if ((s->step == STEP_READY && s->decision == DECISION_FREEZE) ||
                   (s->step == STEP_FROZEN && s->decision == DECISION_COMMIT)) {
                r = vss_backup_continue_snapshot_set(s->b);
                if (r < 0)
                        return set_fail_vss(a, r, s->step == STEP_READY ? "continuing to Freeze" : "continuing to the commit");
                cluster_trace(a->host, s->step == STEP_READY ? "continued-to-freeze" : "continued-to-commit");
                s->step = s->step == STEP_READY ? STEP_FREEZING : STEP_COMMITTING;
        } else if (s->step == STEP_COMMITTED && s->decision == DECISION_COMPLETE) {
                (void) agent_state_write(a, s->plan.set_id, &s->local_set, LOCAL_COMPLETE);
                r = vss_backup_backup_complete(s->b, &s->op);
                if (r < 0) {
                        /* The set is kept everywhere: a failed BackupComplete is reported, not undone. */
                        log_msg("cluster set %s: BackupComplete failed: %s", s->plan.set_id, vss_backup_errmsg(s->b));
                        return set_done(a, NULL, 0);
                }
                s->step = STEP_COMPLETING;
                s->deadline = 0;
        }
}

static void step_once(Agent *a) {
        AgentSet *s = a->set;
        int r;
        if (!s || check_abort(a))
                return;
        switch (s->step) {
        case STEP_PREPARING:
                r = vss_async_wait(s->op, 0);
                if (r == VSS_S_ASYNC_PENDING)
                        return;
                s->op = vss_async_free(s->op);
                if (r < 0)
                        return set_fail_vss(a, r, "PrepareForBackup");
                if (report(a, PHASE_PREPARED, NULL, -1)) {
                        s->step = STEP_PREPARED;
                        s->deadline = now_monotonic_usec() + USEC(s->plan.prepared_s);
                }
                return;
        case STEP_SNAPSHOTTING:
        case STEP_FREEZING:
        case STEP_COMMITTING:
                return step_snapshot(a);
        case STEP_COMPLETING:
                r = vss_async_wait(s->op, 0);
                if (r == VSS_S_ASYNC_PENDING)
                        return;
                s->op = vss_async_free(s->op);
                if (r < 0)
                        log_msg("cluster set %s: BackupComplete failed: %s", s->plan.set_id, vss_backup_errmsg(s->b));
                if (s->plan.job)
                        return start_job(a);
                return set_done(a, NULL, 0);
        case STEP_JOB:
                if (!spawn_try_reap(&s->job))
                        return;
                s->job_running = false;
                return set_done(a, s->plan.job,
                                WIFEXITED(s->job.status) ? WEXITSTATUS(s->job.status) : 128 + WTERMSIG(s->job.status));
        default:
                return step_decided(a);
        }
}

void agent_set_step(Agent *a) {
        /* A step that moved on goes on at once: what it waits for next (vssd's pause, an answer)
         * is asked for now, not a turn later, and a decision already seen is acted on. */
        for (;;) {
                AgentSet *s = a->set;
                SetStep was = s ? s->step : STEP_ENDED;
                step_once(a);
                if (!s || a->set != s || s->step == was)
                        return;
        }
}

int agent_set_wait(const Agent *a, struct pollfd *ret_vssd) {
        AgentSet *s = a->set;
        SetStep st = s ? s->step : STEP_ENDED;
        uint64_t now = now_monotonic_usec();
        /* A job is looked at every 50 ms; the deadline is checked when it comes. */
        int64_t ms = st == STEP_JOB ? 50 : 1000;
        if (s && s->deadline)
                ms = MIN(ms, s->deadline > now ? (int64_t) ((s->deadline - now) / USEC_PER_MSEC + 1) : 0);
        *ret_vssd = (struct pollfd) { .fd = -1 };
        /* Paused, vssd has nothing to say until we continue (a window expiry is seen at the
         * deadline, well inside the frozen margin); otherwise vssd works for us and we wait on its
         * answer itself. */
        if (s && s->b && (st == STEP_PREPARING || st == STEP_SNAPSHOTTING || st == STEP_FREEZING ||
                          st == STEP_COMMITTING || st == STEP_COMPLETING)) {
                int t = -1;
                int fd = vss_backup_get_fd(s->b, &ret_vssd->events, &t);
                if (fd < 0)
                        return 0; /* the connection is gone: the step says so at once */
                ret_vssd->fd = fd;
                if (t >= 0)
                        ms = MIN(ms, t);
        }
        return (int) ms;
}

void agent_set_abort(Agent *a, const char *why) {
        if (!a->set)
                return;
        if (a->set->step >= STEP_COMPLETING) {
                set_free(a->set); /* the set is kept; only the job (if any) is stopped */
                a->set = NULL;
                return;
        }
        set_end_abort(a, PHASE_ABORTED, VSS_E_ABORT, why);
}
