/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/basic/path-util.h"
#include "tools/in-use.h"

/* Whether the link name in dirfd points at or below path; what it points at in held. A file
 * deleted since still counts (" (deleted)": the process writes to what was there). */
static bool link_within(int dirfd, const char *name, const char *path, char *held, size_t held_size) {
        char t[PATH_MAX + 16];
        ssize_t n = readlinkat(dirfd, name, t, sizeof(t) - 1);
        if (n <= 0 || t[0] != '/')
                return false;
        t[n] = 0;
        char *del = strstr(t, " (deleted)");
        if (del && del[strlen(" (deleted)")] == 0)
                *del = 0;
        if (!path_within(t, path))
                return false;
        snprintf(held, held_size, "%s", t);
        return true;
}

static bool process_uses(int pfd, const char *path, char *held, size_t held_size) {
        if (link_within(pfd, "cwd", path, held, held_size))
                return true;
        int fd = openat(pfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        bool used = false;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return false;
        }
        for (struct dirent *e; !used && (e = readdir(d));)
                used = e->d_name[0] != '.' && link_within(dirfd(d), e->d_name, path, held, held_size);
        closedir(d);
        return used;
}

pid_t path_in_use(const char *path, char *comm, size_t comm_size, char *held, size_t held_size) {
        char real[PATH_MAX];
        if (!realpath(path, real))
                return 0; /* nothing there to use */
        DIR *proc = opendir("/proc");
        pid_t found = 0;
        if (!proc)
                return 0;
        for (struct dirent *e; !found && (e = readdir(proc));) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (pid <= 0 || *end || pid == getpid())
                        continue;
                int pfd = openat(dirfd(proc), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (pfd < 0)
                        continue;
                if (process_uses(pfd, real, held, held_size)) {
                        found = (pid_t) pid;
                        int cfd = openat(pfd, "comm", O_RDONLY | O_CLOEXEC);
                        ssize_t n = cfd >= 0 ? read(cfd, comm, comm_size - 1) : -1;
                        comm[n > 0 ? n : 0] = 0;
                        comm[strcspn(comm, "\n")] = 0;
                        if (cfd >= 0)
                                close(cfd);
                }
                close(pfd);
        }
        closedir(proc);
        return found;
}
