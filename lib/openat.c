/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Opening a path without following symlinks: openat2(), or where the kernel (or valgrind) has
 * none, the same rules walked one component at a time from an fd. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/common.h"
#include "lib/openat.h"

/* openat()'s error for name in cur as openat2 gives it: ELOOP for a symlink (where O_DIRECTORY
 * said ENOTDIR). */
static int link_error(int cur, const char *name, int r) {
        struct stat st;
        if (r == -ENOTDIR && fstatat(cur, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        return r;
}

/* One directory component, never a symlink: ELOOP for a symlink, as openat2 says. */
static int step_dir(int cur, const char *name) {
        int fd = openat(cur, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd >= 0 ? fd : link_error(cur, name, -errno);
}

static int walk(int dirfd, const char *path, int flags, mode_t mode, bool beneath) {
        _cleanup_close_ int cur = -EBADF;
        char comp[NAME_MAX + 1];
        const char *p = path;

        if (path[0] == '/') {
                if (beneath)
                        return -EXDEV;
                cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        } else
                cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        for (;;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                size_t n = (size_t) (e - p);
                const char *rest = e;
                while (*rest == '/')
                        rest++;
                if (n == 0 || (n == 1 && p[0] == '.')) {
                        if (*rest) {
                                p = rest;
                                continue;
                        }
                        /* The directory reached itself. */
                        int fd = openat(cur, ".", flags | O_CLOEXEC, mode);
                        return fd < 0 ? -errno : fd;
                }
                if (n > NAME_MAX)
                        return -ENAMETOOLONG;
                if (n == 2 && p[0] == '.' && p[1] == '.')
                        return -EXDEV; /* never above where it started, nor a way around a check */
                memcpy(comp, p, n);
                comp[n] = 0;
                if (!*rest) {
                        int fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
                        if (fd < 0)
                                return link_error(cur, comp, -errno);
                        struct stat st;
                        if ((flags & O_PATH) && (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode))) {
                                close(fd); /* O_PATH opens the symlink itself: as openat2, refuse it */
                                return -ELOOP;
                        }
                        return fd;
                }
                int next = step_dir(cur, comp);
                if (next < 0)
                        return next;
                close(cur);
                cur = next;
                p = rest;
        }
}

int open_no_symlinks(int dirfd, const char *path, int flags, mode_t mode, bool beneath) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_CLOEXEC),
                .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | (beneath ? RESOLVE_BENEATH : 0),
        };
        long fd;

        do
                fd = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
        while (fd < 0 && errno == EAGAIN);
        if (fd >= 0)
                return (int) fd;
        if (errno != ENOSYS)
                return -errno;
        return walk(dirfd, path, flags, (flags & (O_CREAT | O_TMPFILE)) ? mode : 0, beneath);
}
