/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/basic/fd-util.h"
#include "lib/basic/macro.h"

int write_all(int fd, const void *buf, size_t n) {
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int read_all(int fd, size_t max, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, size = 0;

        for (;;) {
                if (len == size) {
                        if (size > max)
                                return -EFBIG;
                        /* Room for one byte past max, to tell a file of max bytes from a longer one. */
                        size_t want = size ? size * 2 : 4096;
                        if (want > max + 1)
                                want = max + 1;
                        char *b = realloc(buf, want + 1);
                        if (!b)
                                return -ENOMEM;
                        buf = b;
                        size = want;
                }
                ssize_t k = read(fd, buf + len, size - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int stat_trusted(const struct stat *st, uid_t uid, bool sticky_ok, const char *name, char *why, size_t size) {
        if (st->st_uid != 0 && st->st_uid != uid) {
                if (why)
                        snprintf(why, size, "%s belongs to uid %u", name, (unsigned) st->st_uid);
                return -EPERM;
        }
        if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(sticky_ok && (st->st_mode & S_ISVTX))) {
                if (why)
                        snprintf(why, size, "%s may be written by others (mode %04o)", name,
                                 (unsigned) (st->st_mode & 07777));
                return -EPERM;
        }
        return 0;
}

int dir_chain_trusted(int fd, const char *path, uid_t uid, char *why, size_t size) {
        char shown[PATH_MAX];
        int cur = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        struct stat st;
        int r = cur < 0 ? -errno : 0;
        snprintf(shown, sizeof(shown), "%s", path);
        while (r == 0) {
                if (fstat(cur, &st) < 0) {
                        r = -errno;
                        break;
                }
                r = stat_trusted(&st, uid, true, shown, why, size);
                if (r < 0)
                        break;
                /* Up by "..", from the fd; "/" is its own parent. */
                int parent = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
                struct stat pst;
                if (parent < 0 || fstat(parent, &pst) < 0) {
                        r = -errno;
                        if (parent >= 0)
                                close(parent);
                        break;
                }
                close(cur);
                cur = parent;
                if (pst.st_dev == st.st_dev && pst.st_ino == st.st_ino)
                        break;
                char *slash = strrchr(shown, '/'); /* the path only says which, for why */
                if (slash)
                        slash[slash == shown] = 0;
        }
        if (cur >= 0)
                close(cur);
        return r;
}
