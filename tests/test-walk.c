/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/basic/walk.c: the one tree walker, on a scratch tree. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "lib/basic/macro.h"
#include "lib/basic/walk.h"
#include "tests/check.h"

int test_failures;

static char tmp[] = "/tmp/test-walk-XXXXXX";

/* What a walk saw, in order: "E path", "D+ path", "D- path". */
typedef struct Trace {
        char lines[64][PATH_MAX + 4];
        size_t n;
        const char *skip;   /* WALK_SKIP at this path's WALK_ENTRY */
        const char *fail;   /* -EIO at this path's WALK_ENTRY */
        int user_fds[16];   /* what WALK_DIR_ENTER handed the walker to close */
        size_t n_user_fds;
        bool dtype_unstatted_ok;
} Trace;

static int trace_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        static const char *const tags[] = { [WALK_ENTRY] = "E", [WALK_DIR_ENTER] = "D+", [WALK_DIR_LEAVE] = "D-" };
        Trace *t = userdata;

        if (t->n < ELEMENTSOF(t->lines))
                snprintf(t->lines[t->n++], sizeof(t->lines[0]), "%s %s", tags[event], e->path ? e->path : "?");
        if (event == WALK_ENTRY && !e->stat_done && (S_ISDIR(e->st.st_mode) || e->st.st_mode == 0))
                t->dtype_unstatted_ok = false; /* only non-directories go unstatted, with their type */
        if (event == WALK_ENTRY && t->skip && e->path && streq(e->path, t->skip))
                return WALK_SKIP;
        if (event == WALK_ENTRY && t->fail && e->path && streq(e->path, t->fail))
                return -EIO;
        if (event == WALK_DIR_ENTER && t->n_user_fds < ELEMENTSOF(t->user_fds)) {
                e->user_fd = fcntl(e->fd, F_DUPFD_CLOEXEC, 3);
                t->user_fds[t->n_user_fds++] = e->user_fd;
        }
        return 0;
}

static ssize_t trace_find(const Trace *t, const char *line) {
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->lines[i], line))
                        return (ssize_t) i;
        return -1;
}

static void make_tree(void) {
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(mkdirat(fd, "d", 0755) == 0 && mkdirat(fd, "d/e", 0755) == 0);
        CHECK(close(openat(fd, "a", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) == 0);
        CHECK(close(openat(fd, "d/b", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) == 0);
        CHECK(close(openat(fd, "d/e/c", O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) == 0);
        CHECK(symlinkat("a", fd, "l") == 0);
        CHECK(symlinkat("d", fd, "ldir") == 0); /* never followed */
        close(fd);
}

static void test_order(void) {
        Trace t = { .dtype_unstatted_ok = true };

        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS | WALK_VERIFY, 16, trace_walk, &t) == 0);
        CHECK(t.n == 8 + 3 * 2); /* 8 entries, 3 directories entered and left */
        CHECK(trace_find(&t, "E ") == 0 && trace_find(&t, "D+ ") == 1 && trace_find(&t, "D- ") == (ssize_t) t.n - 1);
        CHECK(trace_find(&t, "E ldir") >= 0 && trace_find(&t, "D+ ldir") < 0 && trace_find(&t, "E ldir/b") < 0);
        CHECK(trace_find(&t, "E l") >= 0 && trace_find(&t, "E a") >= 0);
        /* Pre-order in, post-order out. */
        CHECK(trace_find(&t, "E d") < trace_find(&t, "D+ d"));
        CHECK(trace_find(&t, "D+ d") < trace_find(&t, "E d/b"));
        CHECK(trace_find(&t, "E d/e/c") < trace_find(&t, "D- d/e"));
        CHECK(trace_find(&t, "D- d/e") < trace_find(&t, "D- d"));
        CHECK(trace_find(&t, "E d/b") < trace_find(&t, "D- d"));
        /* The walker closed what the callback gave it. */
        CHECK(t.n_user_fds == 3);
        for (size_t i = 0; i < t.n_user_fds; i++)
                CHECK(t.user_fds[i] >= 0 && fcntl(t.user_fds[i], F_GETFD) < 0 && errno == EBADF);

        /* d_type instead of a stat for non-directories: the same entries. */
        Trace u = { .dtype_unstatted_ok = true };
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS | WALK_DTYPE, 16, trace_walk, &u) == 0);
        CHECK(u.n == t.n && u.dtype_unstatted_ok);
}

static void test_top_by_fd(void) {
        Trace t = { .dtype_unstatted_ok = true };
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        /* "" is the fd's directory; twice, since each walk opens its own description. */
        CHECK(walk_tree(fd, "", WALK_PATHS, 16, trace_walk, &t) == 0 && t.n == 14);
        t.n = t.n_user_fds = 0;
        CHECK(walk_tree(fd, "", WALK_PATHS, 16, trace_walk, &t) == 0 && t.n == 14);
        CHECK(trace_find(&t, "E d/e/c") >= 0);
        close(fd);
}

static void test_skip_and_errors(void) {
        Trace t = { .skip = "d" };
        char missing[sizeof(tmp) + 8];

        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS, 16, trace_walk, &t) == 0);
        CHECK(trace_find(&t, "E d") >= 0 && trace_find(&t, "D+ d") < 0 && trace_find(&t, "E d/b") < 0);

        /* An error stops the walk, and the directories around it are not left (no WALK_DIR_LEAVE). */
        t = (Trace) { .fail = "d/e" };
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS, 16, trace_walk, &t) == -EIO);
        CHECK(trace_find(&t, "E d/e/c") < 0 && trace_find(&t, "D- d") < 0 && trace_find(&t, "D- ") < 0);
        for (size_t i = 0; i < t.n_user_fds; i++)
                CHECK(fcntl(t.user_fds[i], F_GETFD) < 0);

        /* Going on: everything else is seen, every directory entered is left, the first error returned. */
        t = (Trace) { .fail = "d/e" };
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS | WALK_KEEP_GOING, 16, trace_walk, &t) == -EIO);
        CHECK(trace_find(&t, "E d/b") >= 0 && trace_find(&t, "E a") >= 0 && trace_find(&t, "D- d") >= 0 &&
              trace_find(&t, "D- ") >= 0 && trace_find(&t, "D+ d/e") < 0);

        /* Depth: the top is 0, so d/e (2) is too deep for 1, and is not opened. */
        t = (Trace) {};
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS, 1, trace_walk, &t) == -ELOOP);
        t = (Trace) {};
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS | WALK_KEEP_GOING, 1, trace_walk, &t) == -ELOOP);
        CHECK(trace_find(&t, "E d/e") < 0 && trace_find(&t, "E d/b") >= 0 && trace_find(&t, "D- d") >= 0);
        t = (Trace) {};
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_PATHS, 2, trace_walk, &t) == 0);

        snprintf(missing, sizeof(missing), "%s/none", tmp);
        CHECK(walk_tree(AT_FDCWD, missing, 0, 16, trace_walk, &t) == -ENOENT);
        CHECK(walk_tree(AT_FDCWD, tmp, 0, 16, NULL, NULL) == -EINVAL);
}

static void test_long_path(void) {
        char name[201], top[sizeof(tmp) + 8];
        Trace t = {};
        int fd;

        /* Deeper than PATH_MAX by name lengths, not by depth: made by fd, walked with paths. */
        snprintf(top, sizeof(top), "%s/long", tmp);
        memset(name, 'x', sizeof(name) - 1);
        name[sizeof(name) - 1] = 0;
        CHECK(mkdir(top, 0755) == 0);
        fd = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        for (unsigned i = 0; fd >= 0 && i < PATH_MAX / 200 + 1; i++) {
                int nfd;
                CHECK(mkdirat(fd, name, 0755) == 0);
                nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = nfd;
        }
        if (fd >= 0)
                close(fd);
        CHECK(walk_tree(AT_FDCWD, top, WALK_PATHS, 64, trace_walk, &t) == -ENAMETOOLONG);
        t = (Trace) {};
        CHECK(walk_tree(AT_FDCWD, top, 0, 64, trace_walk, &t) == 0); /* without paths, no limit */
}

static int mount_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        unsigned *seen = userdata;

        if (event == WALK_ENTRY && e->other_mount)
                seen[0]++;
        if (event == WALK_ENTRY && streq(e->name, "in"))
                seen[1]++; /* the file inside the mount */
        return 0;
}

static void test_one_fs(void) {
        char m[sizeof(tmp) + 8], f[sizeof(tmp) + 16];
        unsigned seen[2] = {};

        snprintf(m, sizeof(m), "%s/mnt", tmp);
        snprintf(f, sizeof(f), "%s/mnt/in", tmp);
        CHECK(mkdir(m, 0755) == 0);
        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount("tmpfs", m, "tmpfs", 0, NULL) < 0) {
                fprintf(stderr, "# one-filesystem test skipped: needs root and mounts\n");
                return;
        }
        CHECK(close(open(f, O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) == 0);
        /* The mount's own top bounds a walk from it. */
        CHECK(walk_tree(AT_FDCWD, m, WALK_ONE_FS, 16, mount_walk, seen) == 0 && seen[0] == 0 && seen[1] == 1);
        memset(seen, 0, sizeof(seen)); /* from the top's filesystem: the mount point, not its file */
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_ONE_FS, 64, mount_walk, seen) == 0 && seen[0] == 1 && seen[1] == 0);
        memset(seen, 0, sizeof(seen));
        CHECK(walk_tree(AT_FDCWD, tmp, 0, 64, mount_walk, seen) == 0 && seen[0] == 0 && seen[1] == 1);
        CHECK(umount2(m, MNT_DETACH) == 0);
}

static void test_helpers(void) {
        struct stat a, b;
        uint64_t ma, mb;
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        CHECK(walk_statx(AT_FDCWD, tmp, 0, &a, &ma) == 0 && S_ISDIR(a.st_mode));
        CHECK(walk_statx(fd, "l", 0, &b, &mb) == 0 && S_ISLNK(b.st_mode)); /* not followed */
        CHECK(walk_same_mount(&a, ma, &b, mb));
        CHECK(walk_fd_verify(fd, &a, ma) == 0);
        CHECK(walk_statx(fd, "d", 0, &b, NULL) == 0 && walk_fd_verify(fd, &b, 0) == -EBUSY);
        CHECK(walk_statx(fd, "none", 0, &b, NULL) == -ENOENT);
        close(fd);
}

static int rm_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        if (event == WALK_ENTRY && !S_ISDIR(e->st.st_mode))
                return unlinkat(e->dfd, e->name, 0) < 0 ? -errno : 0;
        if (event == WALK_DIR_LEAVE)
                return unlinkat(e->dfd, e->name, AT_REMOVEDIR) < 0 ? -errno : 0;
        return 0;
}

int main(void) {
        if (!mkdtemp(tmp))
                return 1;
        make_tree();
        test_order();
        test_top_by_fd();
        test_skip_and_errors();
        test_helpers();
        test_long_path();
        test_one_fs();
        CHECK(walk_tree(AT_FDCWD, tmp, WALK_DTYPE, 64, rm_walk, NULL) == 0 && access(tmp, F_OK) < 0);
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
