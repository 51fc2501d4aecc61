/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* copy_tree(), remove_tree() on a scratch tree, and a read-only pass over it with lib/basic/walk.h
 * (what a read-only shadow looks like to remove_tree). TAP output. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/basic/walk.h"
#include "providers/file/copy.h"
#include "tests/tap.h"

#define BIG_SIZE (3U * 1024U * 1024U)
#define SPARSE_OFFSET (4U * 1024U * 1024U)
#define DEEP_LEVELS (COPY_DEPTH_MAX + 8U)
#define NOBODY 65534

static char tmp[] = "/tmp/test-copy-XXXXXX";
/* Globals, so the forked child's exit under valgrind does not report them as lost. */
static char *t_src, *t_dst, *dst2, *single, *inner, *deep, *deep2, *deepcopy, *chain, *chaincopy, *pub, *nob;

static char *path_join(const char *a, const char *b) {
        char *p;

        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static int write_file(const char *path, const void *data, size_t n, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        const char *p = data;

        if (fd < 0)
                return -errno;
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        int r = -errno;
                        close(fd);
                        return r;
                }
                p += k;
                n -= (size_t) k;
        }
        if (fchmod(fd, mode) < 0 || close(fd) < 0)
                return -errno;
        return 0;
}

static bool same_content(const char *a, const char *b) {
        char ba[65536], bb[65536];
        int fa, fb;
        bool ok = false;

        fa = open(a, O_RDONLY | O_CLOEXEC);
        fb = open(b, O_RDONLY | O_CLOEXEC);
        if (fa < 0 || fb < 0)
                goto done;
        for (;;) {
                ssize_t ka = read(fa, ba, sizeof ba), kb;
                size_t got = 0;

                if (ka < 0)
                        goto done;
                /* read b to the same length so short reads do not cause false mismatches */
                while (got < (size_t) ka) {
                        kb = read(fb, bb + got, (size_t) ka - got);
                        if (kb <= 0)
                                goto done;
                        got += (size_t) kb;
                }
                if (ka == 0) {
                        ok = read(fb, bb, 1) == 0;
                        goto done;
                }
                if (memcmp(ba, bb, (size_t) ka) != 0)
                        goto done;
        }
done:
        if (fa >= 0)
                close(fa);
        if (fb >= 0)
                close(fb);
        return ok;
}

/* Recursively compares two trees: types, modes, owners, mtimes, sizes, contents, link targets,
 * device numbers; dst must have exactly the entries src has, minus sockets. */
static bool trees_equal(const char *a, const char *b, bool check_modes) {
        struct stat sa, sb;

        if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0) {
                printf("#   stat %s / %s: %m\n", a, b);
                return false;
        }
        if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT) || (check_modes && sa.st_mode != sb.st_mode) ||
            sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid) {
                printf("#   %s: mode/owner %o %u:%u vs %o %u:%u\n", b, sa.st_mode, sa.st_uid, sa.st_gid, sb.st_mode,
                       sb.st_uid, sb.st_gid);
                return false;
        }
        if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec) {
                printf("#   %s: mtime differs\n", b);
                return false;
        }

        if (S_ISREG(sa.st_mode)) {
                if (sa.st_size != sb.st_size || !same_content(a, b)) {
                        printf("#   %s: content differs\n", b);
                        return false;
                }
        } else if (S_ISLNK(sa.st_mode)) {
                char ta[4096], tb[4096];
                ssize_t ka = readlink(a, ta, sizeof ta), kb = readlink(b, tb, sizeof tb);

                if (ka < 0 || ka != kb || memcmp(ta, tb, (size_t) ka) != 0) {
                        printf("#   %s: link target differs\n", b);
                        return false;
                }
        } else if (S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) {
                if (sa.st_rdev != sb.st_rdev)
                        return false;
        } else if (S_ISDIR(sa.st_mode)) {
                DIR *d;
                struct dirent *de;
                unsigned na = 0, nb = 0;
                bool ok = true;

                d = opendir(a);
                if (!d)
                        return false;
                while (ok && (de = readdir(d))) {
                        char *pa, *pb;
                        struct stat st;

                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                                continue;
                        pa = path_join(a, de->d_name);
                        pb = path_join(b, de->d_name);
                        if (lstat(pa, &st) == 0 && S_ISSOCK(st.st_mode)) {
                                if (lstat(pb, &st) == 0) {
                                        printf("#   %s: socket was copied\n", pb);
                                        ok = false;
                                }
                        } else {
                                na++;
                                ok = trees_equal(pa, pb, check_modes);
                        }
                        free(pa);
                        free(pb);
                }
                closedir(d);
                if (!ok)
                        return false;

                d = opendir(b);
                if (!d)
                        return false;
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                                nb++;
                closedir(d);
                if (na != nb) {
                        printf("#   %s: %u entries, expected %u\n", b, nb, na);
                        return false;
                }
        }
        return true;
}

/* Removes the write bits from every entry (symlinks excepted) on the top's mount; a directory's
 * after its entries. */
static int readonly_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        if (S_ISLNK(e->st.st_mode) || e->other_mount || !(e->st.st_mode & 0222))
                return 0;
        if (event == WALK_DIR_LEAVE)
                return fchmod(e->fd, e->st.st_mode & 07555) < 0 ? -errno : 0;
        if (event == WALK_ENTRY && !S_ISDIR(e->st.st_mode))
                return fchmodat(e->dfd, e->name, e->st.st_mode & 07555, 0) < 0 ? -errno : 0;
        return 0;
}

static int tree_make_readonly(const char *path) {
        return walk_tree(AT_FDCWD, path, WALK_ONE_FS | WALK_KEEP_GOING | WALK_VERIFY, COPY_DEPTH_MAX, readonly_walk, NULL);
}

static bool tree_is_readonly(const char *p) {
        struct stat st;
        bool ok = true;

        if (lstat(p, &st) < 0)
                return false;
        if (S_ISLNK(st.st_mode))
                return true;
        if (st.st_mode & 0222) {
                printf("#   %s still has mode %o\n", p, st.st_mode & 07777);
                return false;
        }
        if (S_ISDIR(st.st_mode)) {
                DIR *d = opendir(p);
                struct dirent *de;

                if (!d)
                        return false;
                while (ok && (de = readdir(d))) {
                        char *c;

                        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                                continue;
                        c = path_join(p, de->d_name);
                        ok = tree_is_readonly(c);
                        free(c);
                }
                closedir(d);
        }
        return ok;
}

static bool exists(const char *p) {
        struct stat st;
        return lstat(p, &st) == 0;
}

static int set_times(const char *p, time_t sec) {
        const struct timespec ts[2] = { { sec, 111 }, { sec, 123456789 } };
        return utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int build_source(const char *src, bool root) {
        _Alignas(8) static char big[BIG_SIZE];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char *p;
        int r = 0, fd;

        if (mkdir(src, 0755) < 0)
                return -errno;

#define MK(expr) do { if ((expr) < 0) { printf("#   %s: %m\n", #expr); return -1; } } while (0)
        p = path_join(src, "a");           MK(mkdir(p, 0750)); free(p);
        p = path_join(src, "a/b");         MK(mkdir(p, 0700)); free(p);
        p = path_join(src, "a/b/c");       MK(mkdir(p, 0755)); free(p);
        p = path_join(src, "a/b/c/deep");  MK(write_file(p, "deep\n", 5, 0644)); MK(set_times(p, 1000000000)); free(p);
        p = path_join(src, "a/b/c");       MK(set_times(p, 1100000000)); free(p);

        for (size_t off = 0; off < sizeof big; ) {
                ssize_t k = getrandom(big + off, sizeof big - off, 0);
                MK(k);
                off += (size_t) k;
        }
        p = path_join(src, "big.bin");     MK(write_file(p, big, sizeof big, 0644)); free(p);
        p = path_join(src, "empty");       MK(write_file(p, "", 0, 0600)); free(p);
        p = path_join(src, "secret");      MK(write_file(p, "s3cr3t", 6, 0640)); free(p);
        p = path_join(src, "setgid");      MK(write_file(p, "x", 1, 02755)); free(p);
        p = path_join(src, "link");        MK(symlink("a/b/c/deep", p)); MK(set_times(p, 1200000000)); free(p);
        p = path_join(src, "dangling");    MK(symlink("/nonexistent/target", p)); free(p);
        p = path_join(src, "fifo");        MK(mkfifo(p, 0620)); free(p);
        p = path_join(src, "rodir");       MK(mkdir(p, 0755)); free(p);
        p = path_join(src, "rodir/f");     MK(write_file(p, "ro", 2, 0444)); free(p);
        p = path_join(src, "rodir");       MK(chmod(p, 0555)); free(p);

        /* 4 MiB hole, 6 bytes of data, then a trailing hole to 8 MiB. */
        p = path_join(src, "sparse");
        fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        MK(fd);
        MK(pwrite(fd, "sparse", 6, SPARSE_OFFSET));
        MK(ftruncate(fd, 2 * SPARSE_OFFSET));
        close(fd);
        free(p);

        /* A socket, which must not be copied. */
        p = path_join(src, "sock");
        if (strlen(p) < sizeof sa.sun_path) {
                strcpy(sa.sun_path, p);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                MK(fd);
                MK(bind(fd, (struct sockaddr *) &sa, sizeof sa));
                close(fd);
        }
        free(p);

        if (root) {
                p = path_join(src, "null");   MK(mknod(p, S_IFCHR | 0666, makedev(1, 3))); free(p);
                p = path_join(src, "owned");  MK(write_file(p, "o", 1, 0644)); MK(chown(p, NOBODY, NOBODY)); free(p);
                p = path_join(src, "a/b");    MK(chown(p, 1234, 5678)); free(p);
                p = path_join(src, "link");   MK(lchown(p, 4321, 8765)); MK(set_times(p, 1200000000)); free(p);
        }
        MK(set_times(src, 1300000000));
#undef MK
        return r;
}

/* Makes a chain base/d/d/d/... of the given depth. */
static int make_chain(const char *base, unsigned levels) {
        int fd, nfd;

        if (mkdir(base, 0755) < 0)
                return -errno;
        fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (unsigned i = 0; i < levels; i++) {
                if (mkdirat(fd, "d", 0755) < 0)
                        break;
                nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = nfd;
                if (fd < 0)
                        return -errno;
        }
        close(fd);
        return 0;
}

/* Moves the part of the chain below `levels` levels up to `to`, so both halves fit the limit. */
static int split_chain(const char *base, unsigned levels, const char *to) {
        int fd, nfd, r = 0;

        fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (unsigned i = 0; i < levels; i++) {
                nfd = openat(fd, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                close(fd);
                fd = nfd;
                if (fd < 0)
                        return -errno;
        }
        if (renameat(fd, "d", AT_FDCWD, to) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Mount points inside the tree: a tmpfs (other st_dev) and a bind mount (same st_dev, other
 * mount id). Runs in a private mount namespace so nothing outlives the test. */
static void test_mounts(void) {
        char *m = path_join(tmp, "msrc"), *mc = path_join(tmp, "mcopy"), *bs = path_join(tmp, "bindsrc");
        char *mt = path_join(m, "tmpfs"), *mb = path_join(m, "bind"), *p, *q;
        CopyStats s = {};
        bool ok;

        if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0) {
                printf("ok %u - # SKIP no mount namespace: %m\n", ++n_tests);
                goto out;
        }

        ok = mkdir(m, 0755) == 0 && mkdir(mt, 0755) == 0 && mkdir(mb, 0755) == 0 && mkdir(bs, 0755) == 0;
        p = path_join(m, "file");
        ok = ok && write_file(p, "f", 1, 0644) == 0;
        free(p);
        p = path_join(bs, "bound");
        ok = ok && write_file(p, "b", 1, 0644) == 0;
        free(p);
        if (!ok || mount("tmpfs", mt, "tmpfs", 0, "mode=0711") < 0 || mount(bs, mb, "none", MS_BIND, NULL) < 0) {
                printf("ok %u - # SKIP cannot mount: %m\n", ++n_tests);
                goto cleanup;
        }
        p = path_join(mt, "inside");
        ok = write_file(p, "i", 1, 0644) == 0;
        free(p);
        CHECK(ok, "prepare mounts");

        CHECK(copy_tree(m, mc, &s) == 0, "copy a tree with mount points");
        CHECK(s.files == 1 && s.dirs == 3, "mount contents not copied");
        p = path_join(mc, "tmpfs");
        q = path_join(mc, "bind");
        {
                struct stat st;
                char *i = path_join(p, "inside"), *b = path_join(q, "bound");
                CHECK(lstat(p, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0711 && !exists(i),
                      "tmpfs mount point reproduced empty, with the mounted root's mode");
                CHECK(lstat(q, &st) == 0 && S_ISDIR(st.st_mode) && !exists(b), "bind mount point reproduced empty");
                free(i);
                free(b);
        }
        free(p);
        free(q);

        CHECK(tree_make_readonly(m) == 0, "tree_make_readonly with mount points");
        {
                struct stat st;
                p = path_join(bs, "bound");
                CHECK(stat(p, &st) == 0 && (st.st_mode & 0200), "tree_make_readonly does not cross a bind mount");
                free(p);
        }

        CHECK(remove_tree(m) == -EBUSY, "remove_tree stops at mount points with -EBUSY");
        p = path_join(mt, "inside");
        q = path_join(bs, "bound");
        CHECK(exists(p) && exists(q), "mounted contents survive remove_tree");
        free(p);
        free(q);

cleanup:
        (void) umount2(mt, MNT_DETACH);
        (void) umount2(mb, MNT_DETACH);
        CHECK(remove_tree(m) == 0 && remove_tree(mc) == 0 && remove_tree(bs) == 0, "remove mount test dirs");
out:
        free(m);
        free(mc);
        free(bs);
        free(mt);
        free(mb);
}

static int run_as_nobody(const char *src, const char *dir) {
        pid_t pid;
        int status;

        fflush(stdout); /* or the child would print our buffer again */
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                char *copy = path_join(dir, "copy");
                int r;

                if (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 ||
                    setresuid(NOBODY, NOBODY, NOBODY) < 0)
                        _exit(10);
                /* Owners we may not give away are dropped silently when unprivileged. */
                r = copy_tree(src, copy, NULL);
                if (r < 0) {
                        printf("#   copy as nobody: %s\n", strerror(-r));
                        _exit(11);
                }
                r = tree_make_readonly(copy);
                if (r < 0)
                        _exit(12);
                r = remove_tree(copy);
                if (r < 0) {
                        printf("#   remove as nobody: %s\n", strerror(-r));
                        _exit(13);
                }
                r = exists(copy) ? 14 : 0;
                free(copy);
                _exit(r);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

int main(void) {
        bool root = geteuid() == 0;
        CopyStats stats = {};
        struct rlimit rl;
        struct stat st;
        int r;

        /* The depth test keeps two fds per level open. */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        umask(022);

        if (!mkdtemp(tmp)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        t_src = path_join(tmp, "src");
        t_dst = path_join(tmp, "dst");
        dst2 = path_join(tmp, "dst2");
        single = path_join(tmp, "single");
        inner = path_join(t_src, "inner");
        deep = path_join(tmp, "deep");
        deep2 = path_join(tmp, "deep2");
        deepcopy = path_join(tmp, "deepcopy");
        chain = path_join(tmp, "chain");
        chaincopy = path_join(tmp, "chaincopy");

        r = build_source(t_src, root);
        CHECK(r == 0, "build source tree");

        r = copy_tree(t_src, t_dst, &stats);
        CHECK(r == 0, "copy_tree succeeds");
        printf("#   files=%llu dirs=%llu bytes=%llu reflinked=%llu\n", (unsigned long long) stats.files,
               (unsigned long long) stats.dirs, (unsigned long long) stats.bytes,
               (unsigned long long) stats.reflinked_files);
        CHECK(stats.dirs == 5, "stats count directories");
        CHECK(stats.files == (root ? 12u : 10u), "stats count files, sockets skipped");
        CHECK(stats.bytes == BIG_SIZE + 5 + 6 + 1 + 2 + 2 * SPARSE_OFFSET + (root ? 1 : 0), "stats count bytes");
        CHECK(trees_equal(t_src, t_dst, true), "copy equals source (content, modes, owners, mtimes, links)");

        {
                char *p = path_join(t_dst, "sparse");
                CHECK(stat(p, &st) == 0 && (uint64_t) st.st_blocks * 512 < SPARSE_OFFSET,
                      "holes stay holes");
                free(p);
                p = path_join(t_dst, "secret");
                CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0640, "mode 0640 preserved");
                free(p);
                p = path_join(t_dst, "link");
                {
                        char t[64] = {};
                        CHECK(readlink(p, t, sizeof t - 1) > 0 && !strcmp(t, "a/b/c/deep"), "symlink target preserved");
                }
                free(p);
                p = path_join(t_dst, "fifo");
                CHECK(lstat(p, &st) == 0 && S_ISFIFO(st.st_mode), "fifo reproduced");
                free(p);
                p = path_join(t_dst, "sock");
                CHECK(!exists(p), "socket skipped");
                free(p);
        }

        r = copy_tree(t_src, t_dst, NULL);
        CHECK(r == -EEXIST, "copy to an existing dst fails with -EEXIST");
        CHECK(trees_equal(t_src, t_dst, true), "existing dst left alone");

        {
                char *p = path_join(tmp, "no/such/parent");
                CHECK(copy_tree(t_src, p, NULL) == -ENOENT, "missing dst parent gives -ENOENT");
                free(p);
                p = path_join(tmp, "nonexistent");
                CHECK(copy_tree(p, dst2, NULL) == -ENOENT && !exists(dst2), "missing src gives -ENOENT");
                free(p);
                /* A symlink on the way to the source is not followed (a directory of a volume's path
                 * swapped for one since the path was resolved). */
                char *via = path_join(tmp, "via"), *through = path_join(via, "src");
                CHECK(symlink(tmp, via) == 0, "make a symlink to the scratch dir");
                CHECK(copy_tree(through, dst2, NULL) == -ELOOP && !exists(dst2), "a symlink on the way to src gives -ELOOP");
                (void) unlink(via);
                free(through);
                free(via);
        }

        {
                char *p = path_join(t_src, "big.bin");
                CopyStats s1 = {};
                r = copy_tree(p, single, &s1);
                CHECK(r == 0 && s1.files == 1 && s1.dirs == 0 && s1.bytes == BIG_SIZE, "copy of a single file");
                CHECK(trees_equal(p, single, true), "single file equals source");
                free(p);
        }

        r = tree_make_readonly(t_dst);
        CHECK(r == 0, "tree_make_readonly succeeds");
        CHECK(tree_is_readonly(t_dst), "no write bits left in the copy");
        CHECK(trees_equal(t_src, t_dst, false), "read-only copy still equals source");

        r = remove_tree(t_dst);
        CHECK(r == 0 && !exists(t_dst), "remove_tree removes the read-only copy");
        CHECK(remove_tree(t_dst) == 0, "remove_tree on a missing path returns 0");
        CHECK(remove_tree("/") == -EINVAL && remove_tree(".") == -EINVAL && remove_tree("") == -EINVAL,
              "remove_tree refuses / . and empty");
        r = remove_tree(single);
        CHECK(r == 0 && !exists(single), "remove_tree removes a single file");

        {
                /* remove_tree must not follow a symlink, not even with a trailing slash. */
                char *l = path_join(tmp, "tosrc"), *ls;
                CHECK(symlink(t_src, l) == 0, "make symlink to source");
                if (asprintf(&ls, "%s/", l) < 0)
                        abort();
                r = remove_tree(ls);
                CHECK(r == 0 && !exists(l) && exists(t_src), "remove_tree unlinks symlinks, not targets");
                free(ls);
                free(l);
        }

        /* Copying into the source must not recurse into the new copy. */
        r = copy_tree(t_src, inner, &stats);
        {
                char *p = path_join(inner, "inner");
                CHECK(r == 0 && exists(inner) && !exists(p), "dst inside src is not copied into itself");
                free(p);
        }
        CHECK(remove_tree(inner) == 0 && !exists(inner), "remove copy inside source");

        /* Depth limit: ELOOP, and nothing left behind. */
        r = make_chain(deep, DEEP_LEVELS);
        CHECK(r == 0, "make chain deeper than the limit");
        r = copy_tree(deep, deepcopy, NULL);
        CHECK(r == -ELOOP, "too deep a tree gives -ELOOP");
        CHECK(!exists(deepcopy), "failed copy is cleaned up");
        CHECK(remove_tree(deep) == -ELOOP, "remove_tree of too deep a tree gives -ELOOP");
        r = split_chain(deep, 2000, deep2);
        CHECK(r == 0 && remove_tree(deep) == 0 && remove_tree(deep2) == 0 && !exists(deep) && !exists(deep2),
              "remove deep chain in two halves");

        r = make_chain(chain, 1000);
        CHECK(r == 0 && copy_tree(chain, chaincopy, &stats) == 0 && stats.dirs == 1001, "1000 levels copy fine");
        CHECK(remove_tree(chain) == 0 && remove_tree(chaincopy) == 0, "remove 1000 levels");

        if (root)
                test_mounts();
        else
                printf("ok %u - # SKIP mount test needs root\n", ++n_tests);

        if (root) {
                /* Unprivileged: foreign owners are dropped, a read-only copy can still be removed. */
                char *p;

                pub = path_join(tmp, "pub");
                nob = path_join(tmp, "nobody");

                r = mkdir(pub, 0755);
                p = path_join(pub, "f");
                r = r < 0 ? r : write_file(p, "public", 6, 0644);
                free(p);
                p = path_join(pub, "sub");
                r = r < 0 ? r : mkdir(p, 0755);
                free(p);
                r = r < 0 ? r : mkdir(nob, 0755);
                r = r < 0 ? r : chown(nob, NOBODY, NOBODY);
                r = r < 0 ? r : chmod(tmp, 0755);
                CHECK(r == 0, "prepare unprivileged test");
                r = run_as_nobody(pub, nob);
                CHECK(r == 0, "unprivileged copy, make_readonly, remove");
                if (r != 0)
                        printf("#   child exit %d\n", r);
                CHECK(remove_tree(pub) == 0 && remove_tree(nob) == 0, "remove unprivileged test dirs");
        } else
                printf("ok %u - # SKIP unprivileged test needs root\n", ++n_tests);

        CHECK(remove_tree(t_src) == 0 && remove_tree(tmp) == 0 && !exists(tmp), "clean up");

        free(t_src);
        free(t_dst);
        free(dst2);
        free(single);
        free(inner);
        free(deep);
        free(deep2);
        free(deepcopy);
        free(chain);
        free(chaincopy);
        free(pub);
        free(nob);

        printf("1..%u\n", n_tests);
        return n_failed > 0;
}
