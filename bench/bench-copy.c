/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The file provider's tree copy on its own, against cp -a --reflink=always, interleaved in one run
 * (issue 14): bench-copy SRC WORKDIR [ROUNDS]. WORKDIR must be on SRC's filesystem for reflinks.
 * Times copy_tree_deferred() (what the commit child does while writers are frozen; the sync comes
 * after Thaw and is not timed) and cp -a, each round removing the copy again; prints the medians.
 * BENCH_COPY_ONLY=1 times the copy alone (for a profiler). Not a test: timings on a shared machine vary.
 */
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "providers/file/copy.h"

extern char **environ;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t) n, sizeof(*v), cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int run_cp(const char *src, const char *dst) {
        char *argv[] = { "cp", "-a", "--reflink=always", (char *) src, (char *) dst, NULL };
        pid_t pid;
        int status;
        if (posix_spawnp(&pid, "cp", NULL, NULL, argv, environ) != 0 || waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: bench-copy SRC WORKDIR [ROUNDS]\n");
                return 2;
        }
        int rounds = argc > 3 ? atoi(argv[3]) : 10;
        if (rounds < 1 || rounds > 1000)
                return 2;
        char dst[4096];
        snprintf(dst, sizeof(dst), "%s/bench-copy-dst", argv[2]);
        double *tv = calloc((size_t) rounds, sizeof(double)), *tc = calloc((size_t) rounds, sizeof(double));
        if (!tv || !tc)
                return 1;
        bool copy_only = getenv("BENCH_COPY_ONLY");
        (void) remove_tree(dst);
        for (int i = -1; i < rounds; i++) { /* round -1: warm-up */
                CopySync *sync = NULL;
                CopyStats st;
                double t0 = now_ms();
                int r = copy_tree_deferred(argv[1], dst, NULL, &st, &sync);
                double t1 = now_ms();
                if (r < 0) {
                        fprintf(stderr, "copy_tree_deferred: %s\n", strerror(-r));
                        return 1;
                }
                if (copy_sync_finish(sync) < 0 || remove_tree(dst) < 0)
                        return 1;
                if (i >= 0)
                        tv[i] = t1 - t0;
                if (i == 0)
                        printf("files %llu dirs %llu bytes %llu reflinked %llu\n", (unsigned long long) st.files,
                               (unsigned long long) st.dirs, (unsigned long long) st.bytes,
                               (unsigned long long) st.reflinked_files);
                double t2 = now_ms();
                if (copy_only) /* BENCH_COPY_ONLY=1: for a profiler, without cp's processes */
                        continue;
                if (run_cp(argv[1], dst) < 0) {
                        fprintf(stderr, "cp -a --reflink=always failed\n");
                        return 1;
                }
                double t3 = now_ms();
                if (remove_tree(dst) < 0)
                        return 1;
                if (i >= 0)
                        tc[i] = t3 - t2;
        }
        double mv = median(tv, rounds), mc = median(tc, rounds);
        if (copy_only)
                printf("copy_tree_deferred median %.2f ms (%d rounds)\n", mv, rounds);
        else
                printf("copy_tree_deferred median %.2f ms, cp -a --reflink=always median %.2f ms, ratio %.2fx (%d rounds)\n",
                       mv, mc, mv / mc, rounds);
        free(tv);
        free(tc);
        return 0;
}
