/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An LD_PRELOAD shim for the fault matrix: fsync() and syncfs() of any descriptor whose path
 * contains $FAIL_FSYNC_UNDER fail with EIO; every other call goes to the kernel. It makes the file
 * provider's durable step, which runs after the cut (writers already thawing), fail for real.
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

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
