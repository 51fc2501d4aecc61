/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A real etcd (Debian's etcd-server) for tests: one member or a cluster of up to 3, on loopback
 * ports picked at start, data and logs in a temporary directory, optionally HTTPS with a CA, a
 * server certificate for 127.0.0.1 and a client certificate made with openssl. Members are
 * started with PR_SET_PDEATHSIG, so a test that dies takes them along; etcd_harness_free() (also
 * run at exit) kills them and removes the directory, and a test that dies any other way (a
 * sanitizer, a timeout) leaves it to the directory's reaper (tests/reaper.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define ETCD_HARNESS_MAX 3

typedef struct EtcdMember {
        char name[16];
        int client_port, peer_port;
        char client_url[64], peer_url[64];
        char data_dir[4096];
        pid_t pid;              /* 0 while stopped */
} EtcdMember;

typedef struct EtcdHarness {
        char dir[4096];         /* everything of this harness lives here */
        bool tls;
        size_t n;
        EtcdMember m[ETCD_HARNESS_MAX];
        char endpoints[256];    /* every member's client URL, comma-separated */
        /* With tls: PEM files in dir. The client certificate's CN is "client". */
        char cacert[4200], server_cert[4200], server_key[4200], client_cert[4200], client_key[4200];
        int reaper;             /* tests/reaper.h: removes dir if the test dies without freeing this */
} EtcdHarness;

/* Whether /usr/bin/etcd and etcdctl are installed (tests skip with 77 otherwise). */
bool etcd_harness_available(void);

/* Makes certificates (tls), starts n members and waits until each answers /health. NULL (with a
 * message on stderr) on failure, after cleaning up what it made. */
EtcdHarness *etcd_harness_new(size_t n, bool tls);
EtcdHarness *etcd_harness_free(EtcdHarness *h);

/* Stops member i (SIGTERM, waits for its exit); starts it again on its data dir and ports and
 * waits for /health (with a quorum, so start a cluster's members before waiting: wait=false). */
int etcd_harness_stop(EtcdHarness *h, size_t i);
int etcd_harness_kill(EtcdHarness *h, size_t i, int sig);      /* SIGSTOP/SIGCONT/SIGKILL */
int etcd_harness_start(EtcdHarness *h, size_t i, bool wait);
int etcd_harness_wait_healthy(EtcdHarness *h, size_t i);

/* Runs etcdctl against the harness's endpoints (and its TLS files) with the given arguments
 * appended, e.g. "user add root:pw"; returns its exit status, its output in *out if out. */
int etcd_harness_ctl(EtcdHarness *h, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A loopback TCP port free right now. */
int etcd_harness_free_port(void);
