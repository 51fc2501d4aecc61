/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spawn-wait: how long one fork+exec+wait of a command takes, the reference for the freeze window
 * of vss-writer-exec writers (bench/run-exec-bench.sh).
 *
 *   spawn-wait ROUNDS COMMAND [ARG]...
 *
 * Runs COMMAND ROUNDS times (after one untimed warm-up), each time fork(), execv() in the child
 * with stdin from /dev/null, waitpid() in the parent, timed with CLOCK_MONOTONIC from before the
 * fork to the wait's return. Prints the median in milliseconds. Exit status 1 when a run failed
 * (the command exited non-zero, or could not be run), 2 on a usage error.
 */

#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* One run; its duration in microseconds, or 0 on failure. */
static uint64_t run(char **argv) {
        uint64_t t0 = now_usec();
        pid_t pid = fork();
        if (pid < 0)
                return 0;
        if (pid == 0) {
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd >= 0)
                        dup2(fd, STDIN_FILENO);
                execv(argv[0], argv);
                _exit(127);
        }
        int st;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return 0;
        uint64_t t = now_usec() - t0;
        return t ? t : 1;
}

/* Starts argv with stdin from /dev/null the cheapest way (posix_spawn: no copy of our page
 * tables, as vss-writer-exec starts hooks), so that the floors are floors. */
static pid_t start_cheap(char **argv) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        if (posix_spawn_file_actions_init(&fa) != 0)
                return -1;
        int r = posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        if (r == 0)
                r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        return r == 0 ? pid : -1;
}

/* N copies of argv at once, then waits for them all; false when one failed. */
static bool run_parallel(long n, char **argv) {
        bool ok = true;
        for (long i = 0; i < n; i++)
                if (start_cheap(argv) < 0)
                        return false;
        for (long i = 0; i < n; i++) {
                int st;
                if (wait(&st) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        ok = false;
        }
        return ok;
}

/* Each command with arg, one after the other; false when one failed. */
static bool run_in_order(char **cmds, int n, char *arg) {
        for (int i = 0; i < n; i++) {
                char *a[] = { cmds[i], arg, NULL };
                pid_t pid = start_cheap(a);
                int st;
                if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                        return false;
        }
        return true;
}

int main(int argc, char *argv[]) {
        char *end;
        if (argc >= 5 && strcmp(argv[1], "--in-order") == 0)
                return run_in_order(argv + 4, argc - 4, argv[2]) && run_in_order(argv + 4, argc - 4, argv[3]) ? 0 : 1;
        if (argc == 6 && strcmp(argv[1], "--parallel") == 0) {
                long n = strtol(argv[2], &end, 10);
                if (*end || n < 1 || n > 10000) {
                        fprintf(stderr, "Usage: spawn-wait --parallel N COMMAND ARG1 ARG2\n");
                        return 2;
                }
                char *first[] = { argv[3], argv[4], NULL }, *second[] = { argv[3], argv[5], NULL };
                return run_parallel(n, first) && run_parallel(n, second) ? 0 : 1;
        }
        long rounds = argc >= 3 ? strtol(argv[1], &end, 10) : 0;
        if (argc < 3 || *end || rounds < 1 || rounds > 100000) {
                fprintf(stderr, "Usage: spawn-wait ROUNDS COMMAND [ARG]...\n");
                return 2;
        }
        uint64_t *v = calloc((size_t) rounds, sizeof(*v));
        if (!v || !run(argv + 2)) {
                fprintf(stderr, "spawn-wait: %s failed\n", argv[2]);
                return 1;
        }
        for (long i = 0; i < rounds; i++)
                if (!(v[i] = run(argv + 2))) {
                        fprintf(stderr, "spawn-wait: %s failed\n", argv[2]);
                        return 1;
                }
        qsort(v, (size_t) rounds, sizeof(*v), cmp_u64);
        size_t n = (size_t) rounds;
        double m = n % 2 ? (double) v[n / 2] : ((double) v[n / 2 - 1] + (double) v[n / 2]) / 2.0;
        printf("%.3f\n", m / 1000.0);
        free(v);
        return 0;
}
