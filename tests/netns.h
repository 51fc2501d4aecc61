/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Network namespaces for the cluster fault tests (issue 16): n "hosts", each a namespace
 * ovss-PID-I with a veth pair whose root end is a port of a bridge ovPID-br. The bridge holds the
 * gateway 10.231.X.1/24 (X picked free per run), host I has 10.231.X.(I+2). A host's link is cut
 * by setting its root end down (its packets are dropped, its connections hang: a cable pulled)
 * and restored by setting it up. Services of the root namespace that listen on loopback (etcd of
 * tests/etcd-harness.h) are reached through netns_forward(): socat on the gateway address.
 *
 * Everything made is removed by netns_free(), at exit, and on SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGABRT;
 * namespaces left by a run that was SIGKILLed (its PID gone) are removed by the next netns_new().
 * Needs root (CAP_NET_ADMIN), iproute2 and socat: netns_new() returns NULL with the reason on
 * stderr otherwise, and tests skip (77).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define NETNS_MAX 8
#define NETNS_FORWARDS_MAX 8

typedef struct NetNs {
        size_t n;
        char bridge[16];
        char gateway[16];                       /* the bridge's address, in the root namespace */
        char name[NETNS_MAX][16];               /* namespace names, ovss-PID-I */
        char veth[NETNS_MAX][16];               /* root ends (cut here) */
        char addr[NETNS_MAX][16];               /* each host's address */
        pid_t forward[NETNS_FORWARDS_MAX];
        int forward_port[NETNS_FORWARDS_MAX];
        size_t n_forward;
} NetNs;

NetNs *netns_new(size_t n);
NetNs *netns_free(NetNs *ns);

/* Whether the tools are there and namespaces can be made (a test skips otherwise). */
bool netns_available(void);

/* Moves the calling process (thread) into a namespace by name: setns(). 0 or -errno. */
int netns_enter(const char *name);
/* Forks a child that enters host i's namespace and execs argv (with PR_SET_PDEATHSIG). */
pid_t netns_spawn(NetNs *ns, size_t i, char *const argv[]);

/* Cuts (up=false) or restores host i's link. 0 or -1 (with a message). */
int netns_link(NetNs *ns, size_t i, bool up);
/* Whether host i's end of the link has a carrier, as the namespace sees it. */
bool netns_carrier(NetNs *ns, size_t i);

/* Forwards gateway:port to 127.0.0.1:port (TCP) and waits until it listens. 0 or -1. */
int netns_forward(NetNs *ns, int port);

/* Runs `ip ARGS...` (words split at spaces); returns its exit status, its stdout in *out if out. */
int netns_ip(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
