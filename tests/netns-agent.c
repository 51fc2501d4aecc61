/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs vss-agent in its host's network namespace, for the cluster fault tests: the cluster
 * harness starts "vss-agent ... --host hostI --etcd http://127.0.0.1:PORT,..."; with
 * OVSS_NETNS_PREFIX (namespace names without I) and OVSS_NETNS_GATEWAY set, this enters namespace
 * PREFIXI and points --etcd at the gateway (tests/netns.h forwards its ports to etcd on loopback),
 * so the agent's etcd traffic crosses the host's link. Same pid, same arguments otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/netns.h"

int main(int argc, char *argv[]) {
        const char *prefix = getenv("OVSS_NETNS_PREFIX"), *gw = getenv("OVSS_NETNS_GATEWAY");
        static char etcd[2048];
        int host = -1;
        for (int i = 1; i + 1 < argc; i++) {
                if (strcmp(argv[i], "--host") == 0 && sscanf(argv[i + 1], "host%d", &host) != 1)
                        host = -1;
                if (strcmp(argv[i], "--etcd") == 0 && gw) {
                        size_t k = 0;
                        for (const char *p = argv[i + 1]; *p && k + 32 < sizeof(etcd);)
                                if (strncmp(p, "127.0.0.1", 9) == 0) {
                                        k += (size_t) snprintf(etcd + k, sizeof(etcd) - k, "%s", gw);
                                        p += 9;
                                } else
                                        etcd[k++] = *p++;
                        etcd[k] = 0;
                        argv[i + 1] = etcd;
                }
        }
        if (prefix && gw && host >= 0) {
                char name[64];
                snprintf(name, sizeof(name), "%s%d", prefix, host);
                if (netns_enter(name) < 0) {
                        fprintf(stderr, "netns-agent: cannot enter %s: %m\n", name);
                        return 126;
                }
        }
        execv(REAL_AGENT_PATH, argv);
        fprintf(stderr, "netns-agent: cannot run " REAL_AGENT_PATH ": %m\n");
        return 127;
}
