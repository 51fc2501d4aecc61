/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An LD_PRELOAD shim for the fault matrix, preloaded into vssd (and so into its commit helper):
 * - fsync() and syncfs() of any descriptor whose path contains $FAIL_FSYNC_UNDER fail with EIO;
 *   every other call goes to the kernel. It makes the file provider's durable step, which runs
 *   after the cut (writers already thawing), fail for real.
 * - With $FAIL_COMMIT_HELPER set, `vssd --commit-helper` exits at once, as one that cannot start;
 *   set to "hang", it never gets ready (and goes when vssd does).
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

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

static int failing(int fd) {
        const char *under = getenv("FAIL_FSYNC_UNDER");
        char link[64], path[PATH_MAX];
        if (!under || !*under)
                return 0;
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof(path) - 1);
        if (n <= 0)
                return 0;
        path[n] = 0;
        return strstr(path, under) != NULL;
}

__attribute__((visibility("default"))) int fsync(int fd) {
        if (failing(fd)) {
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
