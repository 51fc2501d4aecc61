/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/basic/path-util.h"
#include "tools/in-use.h"

/* What a link's file is checked against: path (resolved), its filesystem, and whether the walk
 * of its tree (tree_has()) has found inode ino. */
typedef struct Target {
        const char *path;
        dev_t dev;
} Target;

static ino_t want_ino;
static int want_found(const char *fpath, const struct stat *st, int type, struct FTW *ftw) {
        return st->st_ino == want_ino && (type == FTW_F || type == FTW_D || type == FTW_SL || type == FTW_DP) ? 1 : 0;
}

/* Whether the tree at path (its filesystem only, symlinks not followed) has inode ino. */
static bool tree_has(const char *path, ino_t ino) {
        want_ino = ino;
        return nftw(path, want_found, 32, FTW_PHYS | FTW_MOUNT) == 1;
}

/* Whether the link name in dirfd (/proc/PID/fd/N, cwd, map_files/...) is a file at or below
 * t->path; what it points at in held. By the name the kernel shows first; a file on t's
 * filesystem that name does not lead to in our view (a process in a container, which sees the
 * tree at another path) by its inode in the tree. A file deleted since counts by its name
 * (" (deleted)": the process writes to what was there). */
static bool link_within(int dirfd, const char *name, const Target *t, char *held, size_t held_size) {
        char s[PATH_MAX + 16];
        struct stat st, here;
        ssize_t n = readlinkat(dirfd, name, s, sizeof(s) - 1);
        if (n <= 0 || s[0] != '/')
                return false;
        s[n] = 0;
        char *del = strstr(s, " (deleted)");
        bool deleted = del && del[strlen(" (deleted)")] == 0;
        if (deleted)
                *del = 0;
        bool within = path_within(s, t->path);
        if (!within && !deleted && fstatat(dirfd, name, &st, 0) == 0 && st.st_dev == t->dev &&
            !(stat(s, &here) == 0 && here.st_dev == st.st_dev && here.st_ino == st.st_ino))
                within = tree_has(t->path, st.st_ino);
        if (within)
                snprintf(held, held_size, "%s", s);
        return within;
}

/* Whether a link of the directory sub of the process (fd, map_files) is within t. */
static bool links_within(int pfd, const char *sub, const Target *t, char *held, size_t held_size) {
        int fd = openat(pfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        bool used = false;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return false;
        }
        for (struct dirent *e; !used && (e = readdir(d));)
                used = e->d_name[0] != '.' && link_within(dirfd(d), e->d_name, t, held, held_size);
        closedir(d);
        return used;
}

static bool process_uses(int pfd, const Target *t, char *held, size_t held_size) {
        return link_within(pfd, "cwd", t, held, held_size) || links_within(pfd, "fd", t, held, held_size) ||
               links_within(pfd, "map_files", t, held, held_size);
}

/* Names from a process are its to choose: printed to root's terminal without control characters. */
static void printable(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        *s = '?';
}

pid_t path_in_use(const char *path, char *comm, size_t comm_size, char *held, size_t held_size) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(path, real) || stat(real, &st) < 0)
                return 0; /* nothing there to use */
        Target t = { real, st.st_dev };
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
                if (process_uses(pfd, &t, held, held_size)) {
                        found = (pid_t) pid;
                        int cfd = openat(pfd, "comm", O_RDONLY | O_CLOEXEC);
                        ssize_t n = cfd >= 0 ? read(cfd, comm, comm_size - 1) : -1;
                        comm[n > 0 ? n : 0] = 0;
                        comm[strcspn(comm, "\n")] = 0;
                        if (cfd >= 0)
                                close(cfd);
                        printable(comm);
                        printable(held);
                }
                close(pfd);
        }
        closedir(proc);
        return found;
}
