/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cluster freeze window against host count (issue 16): for each N given, N hosts on this machine
 * (vssd + one trivial writer + vss-agent each, one etcd), SETS cluster sets, each measured from
 * the writers' CLOCK_MONOTONIC stamps as first Freeze entered to last Thaw entered across hosts;
 * beside it, in the same run, SETS local sets on host 0 alone (vssadmin create shadow) measured
 * the same way. Prints the medians, their difference and its growth per host.
 *   bench-cluster [-s SETS] N...      e.g. bench-cluster 1 3 10 */

#include <stdlib.h>
#include <unistd.h>

#include "lib/common.h"
#include "tests/cluster-harness.h"

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
        return n ? (double) v[n / 2] / 1e6 : 0;
}

/* First Freeze to last Thaw over hosts [0, n) of the stamps now logged; 0 when one is missing. */
static uint64_t window(Cluster *c, size_t n) {
        uint64_t first = UINT64_MAX, last = 0, t;
        for (size_t i = 0; i < n; i++) {
                if (cluster_stamps(c, i, "freeze", &t, 1) != 1)
                        return 0;
                first = t < first ? t : first;
                if (cluster_stamps(c, i, "thaw", &t, 1) != 1)
                        return 0;
                last = t > last ? t : last;
        }
        return last > first ? last - first : 0;
}

/* BENCH_VERBOSE: the agents' and the coordinator's steps (VSS_CLUSTER_TRACE) from decision
 * 'freeze' on, as offsets from the first Freeze; then the trace is emptied for the next set. */
static char trace_path[64];

static void print_trace(uint64_t f0) {
        char who[64], what[64];
        unsigned long long ns;
        FILE *f = fopen(trace_path, "re");
        bool on = false;
        while (f && fscanf(f, "%63s %63s %llu", who, what, &ns) == 3) {
                on |= streq(what, "decided-freeze");
                if (on)
                        printf("      %+8.1f ms  %s %s\n", ((double) ns - (double) f0) / 1e6, who, what);
        }
        if (f)
                fclose(f);
        (void) truncate(trace_path, 0);
}

int main(int argc, char *argv[]) {
        size_t sets = 5;
        int opt;
        while ((opt = getopt(argc, argv, "s:")) >= 0)
                if (opt == 's')
                        sets = strtoul(optarg, NULL, 10);
        double prev_diff = 0, prev_n = 0;
        if (getenv("BENCH_VERBOSE")) {
                /* Inherited by the agents and vssadmin the harness starts. */
                snprintf(trace_path, sizeof(trace_path), "/tmp/openvss-cluster-trace.%d", (int) getpid());
                setenv("VSS_CLUSTER_TRACE", trace_path, 1);
        }
        printf("%6s %14s %14s %12s %14s\n", "hosts", "cluster_ms", "single_ms", "added_ms", "growth_ms/host");
        for (int a = optind; a < argc; a++) {
                size_t n = strtoul(argv[a], NULL, 10);
                if (n == 0 || n > CLUSTER_HOSTS_MAX)
                        return fprintf(stderr, "1 to %d hosts\n", CLUSTER_HOSTS_MAX), 2;
                Cluster *c = cluster_new(n, 5);
                uint64_t cw[64], sw[64];
                size_t nc = 0, ns = 0;
                for (size_t k = 0; k < sets && k < 64; k++) {
                        cluster_clear_stamps(c);
                        if (harness_sh(c->hosts[0].h, NULL, "vssadmin cluster create shadow %s%s --json", cluster_args(c),
                                       cluster_fors(c)) == 0 && (cw[nc] = window(c, n)))
                                nc++;
                        if (getenv("BENCH_VERBOSE")) {
                                /* Where the window goes: each host's Freeze and Thaw from the first Freeze. */
                                uint64_t f0 = UINT64_MAX, t;
                                for (size_t i = 0; i < n; i++)
                                        if (cluster_stamps(c, i, "freeze", &t, 1) == 1 && t < f0)
                                                f0 = t;
                                for (size_t i = 0; i < n; i++) {
                                        uint64_t f = 0, th = 0;
                                        cluster_stamps(c, i, "freeze", &f, 1);
                                        cluster_stamps(c, i, "thaw", &th, 1);
                                        printf("   %s: freeze +%.1f ms, thaw +%.1f ms\n", c->hosts[i].name,
                                               (double) (f - f0) / 1e6, (double) (th - f0) / 1e6);
                                }
                                print_trace(f0);
                        }
                        cluster_clear_stamps(c);
                        if (harness_sh(c->hosts[0].h, NULL, "vssadmin --socket %s create shadow --for %s --json",
                                       harness_socket(c->hosts[0].h), c->hosts[0].data) == 0 && (sw[ns] = window(c, 1)))
                                ns++;
                }
                double cm = median_ms(cw, nc), sm = median_ms(sw, ns), diff = cm - sm;
                printf("%6zu %14.1f %14.1f %12.1f", n, cm, sm, diff);
                if (prev_n)
                        printf(" %14.2f", (diff - prev_diff) / ((double) n - prev_n));
                printf("   (%zu/%zu cluster sets, %zu/%zu local)\n", nc, sets, ns, sets);
                fflush(stdout);
                prev_diff = diff;
                prev_n = (double) n;
                cluster_free(c);
        }
        if (*trace_path)
                unlink(trace_path);
        return 0;
}
