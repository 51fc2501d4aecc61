/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Hosts of a cluster on one machine for tests (issue 16): one real etcd (tests/etcd-harness.h),
 * and per host its own vssd (socket, state directory: tests/harness.h), real vss-writer-exec
 * writers, a data directory and a real vss-agent registered under the host's name. Writers log
 * CLOCK_MONOTONIC stamps of the events they enter (a hook that runs before the test hook) so a
 * test can check that no host thawed before every host froze. AGENT_WRAPPER (e.g. "valgrind -q
 * --leak-check=full --error-exitcode=99") runs the agents under a wrapper.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/etcd.h"
#include "tests/etcd-harness.h"
#include "tests/harness.h"

#define CLUSTER_HOSTS_MAX 32
#define CLUSTER_NAME "t"

typedef struct ClusterHost {
        Harness *h;
        char name[16];
        char writer[16];        /* its one writer: "w0", "w1", ... */
        char data[512];         /* the path it shadows */
        pid_t agent;
        int lease_ttl;
        pid_t link;             /* the relay standing for its network link, when it has one */
        pid_t light;            /* CLUSTER_LIGHT_WRITERS: its in-process stamp writer */
        int link_port;
} ClusterHost;

typedef struct Cluster {
        EtcdHarness *etcd;
        etcd *e;                /* the test's own client */
        ClusterHost hosts[CLUSTER_HOSTS_MAX];
        size_t n;
        int lease_ttl;
} Cluster;

/* n hosts "host0".."hostN-1", each with writer "wI" and data, agents registered. Exits 77 (skip)
 * when etcd is not installed. With CLUSTER_LIGHT_WRITERS=1 in the environment (the benchmark) the
 * writers are tests/cluster-stamp-writer (libvss, in-process stamps, no hooks) instead of
 * vss-writer-exec with hook scripts; harness_set() and the event log then do not apply. */
Cluster *cluster_new(size_t n, int lease_ttl);
/* The same with an etcd of etcd_members members (up to 3), over HTTPS with client certificates
 * when tls. */
Cluster *cluster_new_with(size_t n, int lease_ttl, size_t etcd_members, bool tls);
void cluster_free(Cluster *c);
/* Starts host i's agent and waits for its READY=1. */
void cluster_start_agent(Cluster *c, size_t i);
/* Gives host i a link of its own to etcd: a relay process the agent then reaches etcd through
 * (restart the agent after). Cutting the link blackholes it: nothing passes either way and new
 * connections are not answered, as when a cable is pulled; restoring it drops the connections
 * that were cut (they would have timed out) and lets new ones through. */
void cluster_link_start(Cluster *c, size_t i);
void cluster_link_cut(Cluster *c, size_t i);
void cluster_link_restore(Cluster *c, size_t i);
/* SIGKILLs host i's agent. */
void cluster_kill_agent(Cluster *c, size_t i);
/* "--etcd URLS --cluster t" and, with TLS, "--cacert ... --cert ... --key ..." */
const char *cluster_args(Cluster *c);
/* "--for host0:PATH --for host1:PATH ..." for every host. */
const char *cluster_fors(Cluster *c);

/* Runs vssadmin (in host 0's harness) in the background with stdout to a file; returns its pid. */
pid_t cluster_spawn(Cluster *c, const char *out_path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The value of KEY under /openvss/t/ (caller frees), or NULL. */
char *cluster_get(Cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Waits (up to 30 s) until some set's record of host i has phase; returns the set id (static). */
const char *cluster_wait_phase(Cluster *c, size_t i, const char *phase);
/* Waits (up to 30 s) until the file NAME.EVENT.started of host i's writer exists. */
bool cluster_wait_started(Cluster *c, size_t i, const char *event);

/* Stamps (ns, CLOCK_MONOTONIC) host i's writer logged for event, in order; returns how many. */
size_t cluster_stamps(Cluster *c, size_t i, const char *event, uint64_t *ret, size_t max);
void cluster_clear_stamps(Cluster *c);
/* Number of local shadows of host i (vssadmin list shadows on its own vssd). */
int cluster_local_shadows(Cluster *c, size_t i);
/* Whether host i's writer logged an event (from its harness log). */
bool cluster_writer_saw(Cluster *c, size_t i, const char *event);
