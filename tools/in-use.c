/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/basic/path-util.h"
#include "tools/in-use.h"
#include "tools/vssbackup.h"

/* A file on the group's filesystem held by a process in another mount namespace, whose name
 * there does not lead to it here: looked up by inode, all of them in one walk of the tree. */
typedef struct Candidate {
        dev_t dev;
        ino_t ino;
        pid_t pid;
} Candidate;

#define CANDIDATES_MAX 65536

typedef struct Scan {
        const char *path; /* resolved */
        const char *filespec;
        bool recursive;
        dev_t devs[64]; /* the tree's filesystems: its own and those mounted below it */
        size_t n_devs;
        ino_t self_ns;
        Candidate *cand;
        size_t n_cand;
        bool overflow;  /* more candidates than CANDIDATES_MAX: cannot tell */
} Scan;

static bool dev_in_tree(const Scan *g, dev_t dev) {
        for (size_t i = 0; i < g->n_devs; i++)
                if (g->devs[i] == dev)
                        return true;
        return false;
}

static bool dev_add(const FsBelow *fs, void *userdata) {
        Scan *g = userdata;
        if (!dev_in_tree(g, fs->dev) && g->n_devs < ELEMENTSOF(g->devs))
                g->devs[g->n_devs++] = fs->dev;
        return true;
}

/* Whether name s (a file, or a directory: a working directory) belongs to the group. */
static bool in_group(const Scan *g, const char *s, bool dir) {
        if (g->recursive)
                return path_within(s, g->path);
        const char *rel = path_under(s, g->path);
        return !dir && rel && *rel && !strchr(rel, '/') && fnmatch(g->filespec, rel, 0) == 0;
}

static void candidate_add(Scan *g, dev_t dev, ino_t ino, pid_t pid) {
        /* The same file again (dup(), another map of it): one is enough. */
        for (size_t i = g->n_cand; i > 0 && g->cand[i - 1].pid == pid; i--)
                if (g->cand[i - 1].dev == dev && g->cand[i - 1].ino == ino)
                        return;
        Candidate *c = g->n_cand < CANDIDATES_MAX ? reallocarray(g->cand, g->n_cand + 1, sizeof(*c)) : NULL;
        if (!c) {
                g->overflow = true;
                return;
        }
        g->cand = c;
        c[g->n_cand++] = (Candidate) { dev, ino, pid };
}

/* Whether the link name in dirfd (/proc/PID/fd/N, cwd, map_files/...) is a file of the group, by
 * the name the kernel shows; what it points at in held. A file deleted since counts by its name
 * (" (deleted)": the process writes to what was there). One of a process in another mount
 * namespace on the group's filesystem that the name does not lead to here: a candidate. */
static bool link_within(Scan *g, int dirfd, const char *name, bool dir, bool other_ns, pid_t pid, char *held,
                        size_t held_size) {
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
        if (in_group(g, s, dir)) {
                snprintf(held, held_size, "%s", s);
                return true;
        }
        if (other_ns && !deleted && fstatat(dirfd, name, &st, 0) == 0 && dev_in_tree(g, st.st_dev) &&
            !(stat(s, &here) == 0 && here.st_dev == st.st_dev && here.st_ino == st.st_ino))
                candidate_add(g, st.st_dev, st.st_ino, pid);
        return false;
}

static bool links_within(Scan *g, int pfd, const char *sub, bool other_ns, pid_t pid, char *held, size_t held_size) {
        int fd = openat(pfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        bool used = false;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return false;
        }
        for (struct dirent *e; !used && (e = readdir(d));)
                used = e->d_name[0] != '.' && link_within(g, dirfd(d), e->d_name, false, other_ns, pid, held, held_size);
        closedir(d);
        return used;
}

static ino_t ns_of(int pfd) {
        struct stat st;
        return fstatat(pfd, "ns/mnt", &st, 0) == 0 ? st.st_ino : 0;
}

static bool process_uses(Scan *g, int pfd, pid_t pid, char *held, size_t held_size) {
        bool other_ns = ns_of(pfd) != g->self_ns;
        /* A working directory is in a tree, not in a list of names. */
        return (g->recursive && link_within(g, pfd, "cwd", true, other_ns, pid, held, held_size)) ||
               links_within(g, pfd, "fd", other_ns, pid, held, held_size) ||
               links_within(g, pfd, "map_files", other_ns, pid, held, held_size);
}

static int cmp_ino(const void *a, const void *b) {
        const Candidate *x = a, *y = b;
        return x->dev != y->dev ? (x->dev < y->dev ? -1 : 1) : x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* nftw() has no user data: the candidates of the walk under way. */
static const Scan *walking;
static pid_t walk_found;
static char walk_held[PATH_MAX];

static int walk_one(const char *fpath, const struct stat *st, int type, struct FTW *ftw) {
        Candidate key = { st->st_dev, st->st_ino, 0 };
        const Candidate *c = type == FTW_NS ? NULL
                                            : bsearch(&key, walking->cand, walking->n_cand, sizeof(key), cmp_ino);
        if (!c || !in_group(walking, fpath, type == FTW_D))
                return 0;
        walk_found = c->pid;
        snprintf(walk_held, sizeof(walk_held), "%s", fpath);
        return 1;
}

/* Names from a process are its to choose: printed to root's terminal without control characters. */
static void printable(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        *s = '?';
}

static void describe(pid_t pid, char *comm, size_t comm_size, uid_t *ret_uid) {
        char p[64];
        struct stat st;
        snprintf(p, sizeof(p), "/proc/%d", (int) pid);
        *ret_uid = stat(p, &st) == 0 ? st.st_uid : (uid_t) -1;
        snprintf(p, sizeof(p), "/proc/%d/comm", (int) pid);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, comm, comm_size - 1) : -1;
        comm[n > 0 ? n : 0] = 0;
        comm[strcspn(comm, "\n")] = 0;
        if (fd >= 0)
                close(fd);
        printable(comm);
}

pid_t path_in_use(const char *path, const char *filespec, bool recursive, char *comm, size_t comm_size, uid_t *ret_uid,
                  char *held, size_t held_size) {
        char real[PATH_MAX];
        struct stat st, self;
        if (!realpath(path, real) || stat(real, &st) < 0)
                return 0; /* nothing there to use */
        /* A path that is a file is that file alone: path_within() of it. */
        Scan g = { .path = real, .filespec = filespec && *filespec ? filespec : "*",
                   .recursive = recursive || !S_ISDIR(st.st_mode), .devs = { st.st_dev }, .n_devs = 1,
                   .self_ns = stat("/proc/self/ns/mnt", &self) == 0 ? self.st_ino : 0 };
        if (S_ISDIR(st.st_mode))
                (void) filesystems_below(real, true, dev_add, &g);
        DIR *proc = opendir("/proc");
        pid_t found = 0;
        for (struct dirent *e; proc && !found && (e = readdir(proc));) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (pid <= 0 || *end || pid == getpid())
                        continue;
                int pfd = openat(dirfd(proc), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (pfd < 0)
                        continue;
                if (process_uses(&g, pfd, (pid_t) pid, held, held_size))
                        found = (pid_t) pid;
                close(pfd);
        }
        if (proc)
                closedir(proc);
        if (!found && g.n_cand > 0) {
                qsort(g.cand, g.n_cand, sizeof(*g.cand), cmp_ino);
                walking = &g;
                walk_found = 0;
                if (nftw(real, walk_one, 32, FTW_PHYS) == 1) {
                        found = walk_found;
                        snprintf(held, held_size, "%s", walk_held);
                }
                walking = NULL;
        }
        free(g.cand);
        if (!found && g.overflow) {
                snprintf(held, held_size, "%s", real);
                snprintf(comm, comm_size, "too many files held in other mount namespaces to tell");
                *ret_uid = (uid_t) -1;
                printable(held);
                return -1;
        }
        if (found) {
                describe(found, comm, comm_size, ret_uid);
                printable(held);
        }
        return found;
}
