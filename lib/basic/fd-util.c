/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

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
