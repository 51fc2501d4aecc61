/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>

#include "lib/basic/macro.h"
#include "lib/basic/path-util.h"

const char *path_under(const char *path, const char *dir) {
        size_t n = strlen(dir);

        while (n > 0 && dir[n - 1] == '/')
                n--;
        if (n == 0) /* "/" */
                return path[0] == '/' ? path + strspn(path, "/") : NULL;
        if (strncmp(path, dir, n) != 0)
                return NULL;
        if (path[n] == 0)
                return path + n;
        return path[n] == '/' ? path + n + 1 : NULL;
}

bool path_within(const char *path, const char *dir) {
        return path_under(path, dir) != NULL;
}

int path_normalize(const char *path, char *buf, size_t size) {
        size_t n = 0;

        if (!path || path[0] != '/')
                return -EINVAL;
        if (size < 2)
                return -ENAMETOOLONG;
        buf[n++] = '/';
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                size_t len = strcspn(p, "/");
                if (len == 0 || (len == 1 && p[0] == '.')) {
                        /* nothing, or "." */
                } else if (len == 2 && p[0] == '.' && p[1] == '.') {
                        /* Back to the previous '/', but never above the root. */
                        while (n > 1 && buf[n - 1] != '/')
                                n--;
                        if (n > 1)
                                n--;
                } else {
                        if (n + (n > 1) + len >= size)
                                return -ENAMETOOLONG;
                        if (n > 1)
                                buf[n++] = '/';
                        memcpy(buf + n, p, len);
                        n += len;
                }
                p += len;
        }
        buf[n] = 0;
        return 0;
}

bool path_overlaps(const char *a, const char *b) {
        /* Declared paths are at most a few KiB; realpath() results at most PATH_MAX. */
        char na[PATH_MAX + 2], nb[PATH_MAX + 2];
        if (path_normalize(a, na, sizeof(na)) < 0 || path_normalize(b, nb, sizeof(nb)) < 0)
                return false;
        return path_within(na, nb) || path_within(nb, na);
}

char *path_join(const char *a, const char *b) {
        char *p;

        if (isempty(b))
                return strdup(a);
        if (asprintf(&p, "%s%s%s", a, a[0] && a[strlen(a) - 1] == '/' ? "" : "/", b) < 0)
                return NULL;
        return p;
}
