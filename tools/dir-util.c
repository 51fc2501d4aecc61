/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "lib/basic/macro.h"
#include "lib/basic/path-util.h"
#include "tools/dir-util.h"

void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

DIR *opendir_at(int dirfd) {
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;

        if (fd < 0)
                return NULL;
        d = fdopendir(fd);
        if (!d)
                close(fd);
        return d;
}

int dir_next(DIR *d, struct dirent **ret) {
        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de)
                        return errno > 0 ? -errno : 0;
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        *ret = de;
                        return 1;
                }
        }
}

int dir_foreach(int fd, const char *path, dir_entry_fn fn, void *userdata) {
        _cleanup_(closedirp) DIR *d = opendir_at(fd);
        struct dirent *de;
        int r;

        if (!d)
                return -errno;
        while ((r = dir_next(d, &de)) > 0) {
                _cleanup_free_ char *child = path_join(path, de->d_name);
                DirEntry e = { .dfd = dirfd(d), .name = de->d_name, .path = child };

                if (!child)
                        return -ENOMEM;
                if (fstatat(e.dfd, e.name, &e.st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        e.stat_error = -errno;
                }
                r = fn(&e, userdata);
                if (r < 0)
                        return r;
        }
        return r;
}
