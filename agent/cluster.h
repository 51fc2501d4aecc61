/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What vss-agent and `vssadmin cluster` share (DESIGN "Cluster snapshot sets"): the etcd keys under
 * /openvss/CLUSTER/, the decision that moves only forward, a host's phases, the plan and the
 * records both sides write, and the etcd connection options.
 *
 * Keys:  hosts/HOST                 leased by the agent: {"host", "writers", "providers", "in_doubt"}
 *        sets/SET/coordinator       leased by the coordinator: {"pid", "host"}
 *        sets/SET/plan              durable: the plan (cluster_plan_to_json)
 *        sets/SET/decision          durable: "snapshot" | "freeze" | "commit" | "complete" | "abort"
 *        sets/SET/hosts/HOST        durable: that host's part (cluster_record_*)
 *        sets/SET/delete            durable: a delete marker, applied by hosts when they return
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include <vss/admin.h>
#include <vss/backup.h>

#include "agent/etcd.h"
#include "lib/basic/macro.h"

#define CLUSTER_KEY_MAX 512
#define CLUSTER_NAME_MAX 63
#define CLUSTER_MAX_HOSTS 1024
#define CLUSTER_MAX_RECORD (1024 * 1024)

/* Defaults of the deadlines and leases (README "Cluster", vssadmin(8)). */
#define CLUSTER_LEASE_TTL_S 5
#define CLUSTER_PREPARED_S 60
#define CLUSTER_READY_S 120
#define CLUSTER_COMPLETE_S 60
#define CLUSTER_FROZEN_MARGIN_MS 1000

/* A cluster or host name: 1..63 of [A-Za-z0-9._-], not starting with '.' (it is a key part). */
bool cluster_name_valid(const char *s);

/* "/openvss/CLUSTER/" + the formatted rest, into buf. */
char *cluster_key(char buf[static CLUSTER_KEY_MAX], const char *cluster, const char *fmt, ...) _printf_(3, 4);
/* The part of key after "/openvss/CLUSTER/sets/SET/" when key is of that form (SET copied into
 * set_id), else NULL. */
const char *cluster_set_key_rest(const char *key, const char *cluster, char set_id[static 64]);

typedef enum Decision {
        DECISION_NONE,          /* no decision key yet: hosts prepare */
        DECISION_SNAPSHOT,
        DECISION_FREEZE,
        DECISION_COMMIT,
        DECISION_COMPLETE,
        DECISION_ABORT,
        DECISION_INVALID,
} Decision;
const char *decision_name(Decision d);
Decision decision_from_name(const char *s);
/* Forward only: snapshot -> freeze -> commit -> complete, each in turn, or to abort before
 * complete. */
bool decision_may_move(Decision from, Decision to);

/* What a host reports in sets/SET/hosts/HOST. */
typedef enum Phase {
        PHASE_NONE,
        PHASE_PREPARED,         /* PrepareForBackup done, set started */
        PHASE_READY,            /* PrepareForSnapshot done, paused before Freeze */
        PHASE_FROZEN,           /* every writer frozen, paused before the commit */
        PHASE_COMMITTED,        /* shadows made, writers thawed */
        PHASE_DONE,             /* BackupComplete (and the job) done */
        PHASE_FAILED,           /* this host could not do its part */
        PHASE_ABORTED,          /* the set was aborted here: nothing kept */
        PHASE_DELETED,          /* a delete marker was applied */
        PHASE_INVALID,
} Phase;
const char *phase_name(Phase p);
Phase phase_from_name(const char *s);

typedef struct PlanHost {
        char *host;
        char **paths;
        size_t n_paths;
} PlanHost;

typedef struct Plan {
        char set_id[64];
        char *coordinator;      /* "HOST pid N": for messages */
        char *job;              /* NULL: none */
        PlanHost *hosts;
        size_t n_hosts;
        uint32_t prepared_s, ready_s, complete_s, frozen_margin_ms;
} Plan;

/* Strict: unknown keys, bad names, relative paths and repeated hosts are errors (-EINVAL, message
 * in err). */
int cluster_plan_parse(const char *text, Plan *ret, char *err, size_t errsize);
json_object *cluster_plan_to_json(const Plan *p);
const PlanHost *cluster_plan_host(const Plan *p, const char *host);
void cluster_plan_done(Plan *p);

/* A host's record of its part of a set. */
typedef struct Record {
        Phase phase;
        json_object *writers;   /* [status] as `vssadmin list writers --json` has them (no as_of) */
        json_object *shadows;   /* [shadow] as `vssadmin list shadows --json` has them */
        char error_name[64];    /* "" when none */
        int32_t error_code;
        char error[1024];
        int64_t usec_left;      /* frozen: until the first writer's freeze window ends; -1: none */
        char job[64];           /* done: the job run ("" none) and its exit status */
        int job_status;
        json_object *root;      /* owns writers and shadows */
} Record;
json_object *cluster_record_to_json(const char *host, Phase phase, json_object *writers, json_object *shadows,
                                    int32_t error_code, const char *error, int64_t usec_left, const char *job,
                                    int job_status);
int cluster_record_parse(const char *text, Record *ret, char *err, size_t errsize);
void cluster_record_done(Record *r);

/* The writers' status of the last GatherWriterStatus of b, as JSON (report.c's status_json). When
 * a writer failed and veto is given, the first such writer is described there and its failure
 * code returned in *ret_veto_hr (else 0). */
json_object *cluster_writers_json(vss_backup *b, char *veto, size_t vetosize, int32_t *ret_veto_hr);

static inline void etcd_freep(etcd **e) {
        etcd_free(*e);
}

/* Options every etcd client of ours takes. */
typedef struct ClusterEtcdArgs {
        const char *endpoints, *cacert, *cert, *key, *user, *password_file;
} ClusterEtcdArgs;
/* Reads the password file (first line) when there is one. -errno with a message in err. */
int cluster_etcd_open(const ClusterEtcdArgs *a, int timeout_ms, etcd **ret, char *err, size_t errsize);

/* A benchmark's aid (bench/bench-cluster, BENCH_VERBOSE): with VSS_CLUSTER_TRACE=FILE in the
 * environment, appends "WHO WHAT NSEC" (CLOCK_MONOTONIC) to FILE, one write per line, so the steps
 * of every host and of the coordinator can be laid beside the writers' stamps. Else nothing. */
void cluster_trace(const char *who, const char *what);

/* Reads the decision of a set: DECISION_NONE when there is none. */
int cluster_get_decision(etcd *e, const char *cluster, const char *set_id, Decision *ret, int64_t *ret_revision);
/* Moves the decision of a set from `from` to `to` by compare-and-swap, also requiring
 * coordinator_lease (when not 0) to be the lease of sets/SET/coordinator. *ret_now is the decision
 * after the call (to on success, what it was found to be otherwise). >0 moved, 0 not moved. */
int cluster_move_decision(etcd *e, const char *cluster, const char *set_id, Decision from, Decision to,
                          int64_t coordinator_lease, Decision *ret_now);
/* As cluster_move_decision(), retried from whatever the decision is now, unless it is complete or
 * abort. *ret_now: abort or complete. */
int cluster_abort_decision(etcd *e, const char *cluster, const char *set_id, int64_t coordinator_lease,
                           Decision *ret_now);
