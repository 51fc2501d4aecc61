/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vss-agent's parts: its config (vss-agent-config.c), its host's part of a cluster set
 * (vss-agent-set.c), the local record of sets it took part in and their reconciliation
 * (vss-agent-state.c), and the daemon around them (vss-agent.c). */

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include <vss/backup.h>

#include "agent/cluster.h"
#include "lib/basic/spawn.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

typedef struct AgentJob {
        char *name;
        char **argv;            /* NULL-terminated */
} AgentJob;

typedef struct AgentConfig {
        char **paths;           /* normalized, absolute */
        size_t n_paths;
        AgentJob *jobs;
        size_t n_jobs;
} AgentConfig;

/* Strict: {"paths": [ABSOLUTE...], "jobs": {"NAME": [ARGV0, ARG...]}}. -EINVAL with the message. */
int agent_config_load(const char *path, AgentConfig *ret, char *err, size_t errsize);
void agent_config_done(AgentConfig *c);
bool agent_config_allows_path(const AgentConfig *c, const char *path);
const AgentJob *agent_config_job(const AgentConfig *c, const char *name);
/* The job's argv with "{set}" replaced inside arguments and an argument "{paths}" replaced by the
 * paths, one argument each. NULL-terminated, malloc'd strings; NULL when out of memory. */
char **agent_job_argv(const AgentJob *j, const char *set_id, char *const *paths, size_t n_paths);

typedef enum SetStep {
        STEP_PREPARING,         /* PrepareForBackup in flight */
        STEP_PREPARED,          /* waiting for "snapshot" */
        STEP_SNAPSHOTTING,      /* DoSnapshotSet running to its first pause */
        STEP_READY,             /* paused before Freeze, waiting for "freeze" */
        STEP_FREEZING,
        STEP_FROZEN,            /* paused before the commit, waiting for "commit" */
        STEP_COMMITTING,
        STEP_COMMITTED,         /* waiting for "complete" */
        STEP_COMPLETING,        /* BackupComplete in flight */
        STEP_JOB,               /* the job runs */
        STEP_ENDED,
} SetStep;

typedef struct AgentSet {
        Plan plan;
        const PlanHost *me;
        SetStep step;
        Decision decision;
        bool coordinator_gone;
        vss_backup *b;
        vss_async *op;
        vss_id local_set;
        vss_id shadow_ids[64];
        size_t n_shadows;
        uint64_t deadline;      /* CLOCK_MONOTONIC usec for the step we wait in; 0: none */
        Spawned job;
        bool job_running;
        char **job_paths;       /* the shadows' paths, for "{paths}" */
} AgentSet;

typedef struct Agent {
        const char *cluster, *host, *socket, *state_dir;
        int64_t lease_ttl_s;
        AgentConfig config;
        etcd *e;
        int64_t lease;
        uint64_t next_keepalive, next_refresh;
        uint64_t etcd_down_since;   /* CLOCK_MONOTONIC usec; 0: etcd answers */
        bool in_doubt;              /* some local set waits for a decision we could not read */
        AgentSet *set;              /* the one set in flight, or NULL */
        /* The watch: every set's keys (sets/) while idle; during a set only its own keys but the
         * hosts' records (sets/SET/coordinator, decision, delete), so the hosts' records of a set
         * do not wake every agent (N hosts: N x N wakeups a phase). Back to sets/ after the set,
         * from where the wide watch was left: what it missed is replayed then. */
        etcd_watch *watch;
        bool narrow;                /* watching set narrow_set only */
        char narrow_set[64];
        int64_t wide_rev;           /* where the wide watch goes on */
        int64_t busy_until_rev;     /* plans before this revision came while narrow_set ran */
        int64_t last_put_rev;       /* the store's revision at this host's last record */
} Agent;

/* vss-agent.c */
/* Publishes hosts/HOST (writers, providers, in-doubt sets) under the lease. */
int agent_register(Agent *a);
/* Writes sets/SET/hosts/HOST. Takes writers and shadows. */
int agent_put_record(Agent *a, const char *set_id, Phase phase, json_object *writers, json_object *shadows,
                     int32_t error_code, const char *error, int64_t usec_left, const char *job, int job_status);
/* An etcd call failed: remembers since when etcd has been unreachable. */
void agent_etcd_failed(Agent *a, int r, const char *what);

/* vss-agent-set.c */
/* A plan was seen: starts this host's part when it names the host; fails it as busy when a set is
 * in flight, or when busy_with (not NULL) names the set that was in flight when it came. */
void agent_set_plan(Agent *a, const char *set_id, const char *text, const char *busy_with);
/* Moves the set in flight on (called on every turn of the loop and after every event). */
void agent_set_step(Agent *a);
/* What the loop waits for beside the watch: *ret_vssd the connection to vssd while vssd works for
 * the set in flight (fd -1 otherwise), and the timeout returned (ms) until the set's deadline or
 * its next look at a job. */
int agent_set_wait(const Agent *a, struct pollfd *ret_vssd);
/* Stop: the set in flight is aborted here (and the decision moved to abort). */
void agent_set_abort(Agent *a, const char *why);

/* vss-agent-state.c: one file per cluster set this host took part in, STATE_DIR/CLUSTER.SET. */
typedef enum { LOCAL_STARTED, LOCAL_COMMITTED, LOCAL_COMPLETE } LocalState;
int agent_state_write(Agent *a, const char *set_id, const vss_id *local_set, LocalState st);
void agent_state_remove(Agent *a, const char *set_id);
/* Deletes the local shadows of a set (by its local set id), then its state file. */
int agent_state_delete_shadows(Agent *a, const char *set_id);
/* Reconciles every local set with the decisions in etcd (DESIGN): abort or delete marker: deleted;
 * complete: kept; undecided: aborted (the session that made it is gone); etcd unreachable: in
 * doubt, kept and tried again later. */
void agent_reconcile(Agent *a);
/* The ids of sets in doubt, as JSON strings. */
json_object *agent_in_doubt_json(Agent *a);
