/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An LD_PRELOAD shim for the fault matrix, preloaded into vssd (and so into its commit helper):
 * - fsync() and syncfs() of any descriptor whose path contains $FAIL_FSYNC_UNDER fail with EIO;
 *   every other call goes to the kernel. It makes the file provider's durable step, which runs
 *   after the cut (writers already thawing), fail for real.
 * - With $FAIL_SYNC_ARMED_BY set to "TEXT:FILE", the next fsync() or fdatasync() of a descriptor
 *   whose path contains TEXT once FILE exists fails with EIO, once (the shim removes FILE): a
 *   transient I/O error, armed by the case once vssd is up (its registry's first commits are
 *   durable too), say for the registry's WAL.
 * - With $FAIL_COMMIT_HELPER set, `vssd --commit-helper` exits at once, as one that cannot start;
 *   set to "hang", it never gets ready (and goes when vssd does); set to "slow-job", it starts,
 *   then is slow to read its job and its go (below).
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static bool slow_job; /* this is a helper whose job comes slowly */

__attribute__((constructor)) static void fail_helper(void) {
        char cmd[4096];
        if (!getenv("FAIL_COMMIT_HELPER"))
                return;
        FILE *f = fopen("/proc/self/cmdline", "re");
        size_t n = f ? fread(cmd, 1, sizeof(cmd) - 1, f) : 0;
        if (f)
                fclose(f);
        cmd[n] = 0;
        /* argv[1], after argv[0]'s NUL. */
        size_t a0 = strnlen(cmd, n);
        if (a0 >= n || strcmp(cmd + a0 + 1, "--commit-helper") != 0)
                return;
        if (strcmp(getenv("FAIL_COMMIT_HELPER"), "slow-job") == 0) {
                slow_job = true;
                return;
        }
        if (strcmp(getenv("FAIL_COMMIT_HELPER"), "hang") != 0)
                _exit(1);
        /* A vssd gone before the death signal was set sends none: this one would hang for ever. */
        pid_t parent = getppid();
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (parent == 1 || getppid() != parent)
                _exit(1);
        for (;;)
                pause();
}

/* Whether descriptor fd's path contains text. */
static int fd_path_has(int fd, const char *text) {
        char link[64], path[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof(path) - 1);
        if (n <= 0)
                return 0;
        path[n] = 0;
        return strstr(path, text) != NULL;
}

static int failing(int fd) {
        const char *under = getenv("FAIL_FSYNC_UNDER");
        return under && *under && fd_path_has(fd, under);
}

/* $FAIL_SYNC_ARMED_BY: TEXT in the descriptor's path, FILE there (and removed: once). */
static int armed_failing(int fd) {
        const char *spec = getenv("FAIL_SYNC_ARMED_BY");
        const char *colon = spec ? strchr(spec, ':') : NULL;
        char text[PATH_MAX];
        if (!colon || colon == spec || (size_t) (colon - spec) >= sizeof(text) || access(colon + 1, F_OK) < 0)
                return 0;
        memcpy(text, spec, (size_t) (colon - spec));
        text[colon - spec] = 0;
        return fd_path_has(fd, text) && unlink(colon + 1) == 0;
}

__attribute__((visibility("default"))) int fdatasync(int fd) {
        if (armed_failing(fd)) {
                errno = EIO;
                return -1;
        }
        return (int) syscall(SYS_fdatasync, fd);
}

__attribute__((visibility("default"))) int fsync(int fd) {
        if (failing(fd) || armed_failing(fd)) {
                errno = EIO;
                return -1;
        }
        return (int) syscall(SYS_fsync, fd);
}

__attribute__((visibility("default"))) int syncfs(int fd) {
        if (failing(fd)) {
                errno = EIO;
                return -1;
        }
        return (int) syscall(SYS_syncfs, fd);
}

/* In a slow-job helper, the first read of its job (descriptor 5, COMMIT_FD_JOB) waits 200 ms, so
 * it says it is ready after it was told to go, and the read of that go (descriptor 4,
 * COMMIT_FD_GO) 600 ms more: its commit outlasts a freeze window of 500 ms. */
static bool waited_job, waited_go;

static void wait_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

__attribute__((visibility("default"))) ssize_t read(int fd, void *buf, size_t n) {
        if (slow_job && fd == 5 && !waited_job) {
                waited_job = true;
                wait_ms(200);
        } else if (slow_job && fd == 4 && !waited_go) {
                waited_go = true;
                wait_ms(600);
        }
        return (ssize_t) syscall(SYS_read, fd, buf, n);
}
