/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* copy_tree() of trees big enough to start its worker threads (providers/file/copy-pool.c): the
 * copy equals the source (content, modes, owners, ns times, hard links, xattrs), the stats are
 * exact, reports come through once each, and a worker's failure (ENOSPC on a small tmpfs) fails
 * the copy as without threads, leaving no copy, thread or fd behind. Each case runs with all
 * CPUs and again on one CPU (no threads), which must give the same result. TAP output. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "providers/file/copy.h"
#include "tests/tap.h"

#define N_FILES 100U
#define N_SUB 20U

static char tmp[] = "/tmp/test-copy-pool-XXXXXX";

static char *join(const char *a, const char *b) {
        char *p;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static unsigned count_dir(const char *path) {
        DIR *d = opendir(path);
        unsigned n = 0;
        if (!d)
                return 0;
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

/* Threads and fds of this process: the copy must leave both as they were. */
static unsigned n_threads(void) {
        return count_dir("/proc/self/task");
}

static unsigned n_fds(void) {
        return count_dir("/proc/self/fd");
}

static bool exists(const char *p) {
        struct stat st;
        return lstat(p, &st) == 0;
}

/* size bytes of a pattern that differs per file. */
static int make_file(const char *path, size_t size, unsigned seed, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        char buf[4096];
        if (fd < 0)
                return -errno;
        for (size_t off = 0; off < size;) {
                size_t n = size - off < sizeof(buf) ? size - off : sizeof(buf);
                for (size_t i = 0; i < n; i++)
                        buf[i] = (char) ((off + i) * 31 + seed * 7 + (off + i) / 4096);
                if (write(fd, buf, n) != (ssize_t) n) {
                        close(fd);
                        return -EIO;
                }
                off += n;
        }
        if (fchmod(fd, mode) < 0 || close(fd) < 0)
                return -errno;
        return 0;
}

static int set_times(const char *path, unsigned seed) {
        struct timespec ts[2] = { { 1600000000 + seed, 123456789 }, { 1500000000 + seed * 3, 987654321 - seed } };
        return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* A directory of n files of varied sizes (0 to 300 KiB, past the copy buffer), modes, times and
 * user xattrs (when the filesystem takes them); every tenth file has a second name, two a third
 * in the same directory. */
static int make_files(const char *dir, unsigned n, unsigned base, bool *xattrs) {
        for (unsigned i = 0; i < n; i++) {
                char name[32], *p;
                int r;
                snprintf(name, sizeof(name), "f%03u", i);
                p = join(dir, name);
                r = make_file(p, (size_t) (i % 7) * (i % 5 == 0 ? 50000 : 700) + (i == 3 ? 300 * 1024 : 0),
                              base + i, i % 3 == 0 ? 0640 : 0644);
                if (r >= 0 && setxattr(p, "user.pool", name, strlen(name), 0) < 0)
                        *xattrs = false;
                if (r >= 0 && i % 10 == 0) {
                        char *l;
                        if (asprintf(&l, "%s/link%03u", dir, i) < 0)
                                abort();
                        r = link(p, l) < 0 ? -errno : 0;
                        free(l);
                        if (r >= 0 && i % 20 == 0) {
                                if (asprintf(&l, "%s/zlink%03u", dir, i) < 0)
                                        abort();
                                r = link(p, l) < 0 ? -errno : 0;
                                free(l);
                        }
                }
                if (r >= 0)
                        r = set_times(p, base + i);
                free(p);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int build_tree(const char *top, bool *xattrs) {
        char *sub = join(top, "sub"), *l = join(top, "symlink");
        int r = mkdir(top, 0755) < 0 ? -errno : 0;
        *xattrs = true;
        if (r >= 0)
                r = make_files(top, N_FILES, 0, xattrs);
        if (r >= 0)
                r = mkdir(sub, 0750) < 0 ? -errno : 0;
        if (r >= 0)
                r = make_files(sub, N_SUB, 1000, xattrs);
        if (r >= 0)
                r = symlink("f001", l) < 0 ? -errno : 0;
        /* Directories' times last: creating their entries changed them. */
        if (r >= 0)
                r = set_times(sub, 7);
        if (r >= 0)
                r = set_times(top, 8);
        free(sub);
        free(l);
        return r;
}

static bool same_xattrs(const char *a, const char *b) {
        char la[4096], lb[4096], va[256], vb[256];
        ssize_t na = llistxattr(a, la, sizeof(la)), nb = llistxattr(b, lb, sizeof(lb));
        if (na < 0 || nb < 0 || na != nb || memcmp(la, lb, (size_t) na) != 0)
                return false;
        for (char *k = la; k < la + na; k += strlen(k) + 1) {
                ssize_t x = lgetxattr(a, k, va, sizeof(va)), y = lgetxattr(b, k, vb, sizeof(vb));
                if (x < 0 || x != y || memcmp(va, vb, (size_t) x) != 0)
                        return false;
        }
        return true;
}

static bool same_content(const char *a, const char *b) {
        char ba[8192], bb[8192];
        /* O_NOATIME: reading a source file must not change the atime its other names are compared by. */
        int fa = open(a, O_RDONLY | O_CLOEXEC | O_NOATIME), fb = open(b, O_RDONLY | O_CLOEXEC | O_NOATIME);
        bool ok = fa >= 0 && fb >= 0;
        while (ok) {
                ssize_t x = read(fa, ba, sizeof(ba)), y = read(fb, bb, sizeof(bb));
                ok = x >= 0 && x == y && memcmp(ba, bb, (size_t) x) == 0;
                if (x <= 0)
                        break;
        }
        if (fa >= 0)
                close(fa);
        if (fb >= 0)
                close(fb);
        return ok;
}

/* Source inode -> copy inode, so hard links are checked both ways. */
static struct { ino_t s, d; } inodes[2 * (N_FILES + N_SUB)];
static size_t n_inodes;

static bool same_links(const struct stat *s, const struct stat *d) {
        for (size_t i = 0; i < n_inodes; i++)
                if (inodes[i].s == s->st_ino || inodes[i].d == d->st_ino)
                        return inodes[i].s == s->st_ino && inodes[i].d == d->st_ino;
        if (n_inodes == sizeof(inodes) / sizeof(inodes[0]))
                return false;
        inodes[n_inodes].s = s->st_ino;
        inodes[n_inodes++].d = d->st_ino;
        return s->st_nlink == d->st_nlink;
}

/* Every entry of a in b, the same; counts what a copy of a must count (entries are checked by
 * name in a, and b has no more than a). */
static bool same_tree(const char *a, const char *b, bool xattrs, CopyStats *want) {
        struct stat sa, sb;
        bool ok = lstat(a, &sa) == 0 && lstat(b, &sb) == 0 && (sa.st_mode & S_IFMT) == (sb.st_mode & S_IFMT);
        if (!ok)
                return printf("#   %s: missing or another type\n", b), false;
        ok = sa.st_uid == sb.st_uid && sa.st_gid == sb.st_gid;
        if (!S_ISLNK(sa.st_mode))
                ok = ok && (sa.st_mode & 07777) == (sb.st_mode & 07777) && sa.st_mtim.tv_sec == sb.st_mtim.tv_sec &&
                     sa.st_mtim.tv_nsec == sb.st_mtim.tv_nsec && sa.st_atim.tv_nsec == sb.st_atim.tv_nsec &&
                     (!xattrs || same_xattrs(a, b));
        if (S_ISREG(sa.st_mode)) {
                bool first = true;
                for (size_t i = 0; i < n_inodes; i++)
                        first = first && inodes[i].s != sa.st_ino;
                ok = ok && sa.st_size == sb.st_size && same_content(a, b) && same_links(&sa, &sb);
                want->files++;
                want->bytes += first ? (uint64_t) sa.st_size : 0;
        } else if (!S_ISDIR(sa.st_mode))
                want->files++;
        if (!ok)
                printf("#   %s differs from %s\n", b, a);
        if (!ok || !S_ISDIR(sa.st_mode))
                return ok;
        want->dirs++;
        ok = count_dir(a) == count_dir(b);
        DIR *d = opendir(a);
        for (struct dirent *de; ok && d && (de = readdir(d));) {
                if (de->d_name[0] == '.')
                        continue;
                char *x = join(a, de->d_name), *y = join(b, de->d_name);
                ok = same_tree(x, y, xattrs, want);
                free(x);
                free(y);
        }
        if (d)
                closedir(d);
        return ok && d;
}

/* Runs on one CPU or on all that the test started with. */
static cpu_set_t all_cpus;
static void use_cpus(bool one) {
        cpu_set_t set = all_cpus;
        if (one) {
                CPU_ZERO(&set);
                for (int i = 0; i < CPU_SETSIZE; i++)
                        if (CPU_ISSET(i, &all_cpus)) {
                                CPU_SET(i, &set);
                                break;
                        }
        }
        (void) sched_setaffinity(0, sizeof(set), &set);
}

/* Reports, and whether any came from another thread than the caller's. */
static pthread_t main_thread;
static unsigned n_reported, n_from_workers;
static void lost(const char *path, const char *what, int error, void *userdata) {
        (void) path, (void) what, (void) error, (void) userdata;
        n_reported++;
        n_from_workers += !pthread_equal(pthread_self(), main_thread);
}

static void test_exact(const char *src, bool one_cpu, bool xattrs) {
        char *dst = join(tmp, one_cpu ? "copy1" : "copy");
        CopyStats got = {}, want = {};
        unsigned threads = n_threads(), fds = n_fds();
        int r;

        use_cpus(one_cpu);
        n_inodes = 0;
        r = copy_tree(src, dst, &got);
        use_cpus(false);
        CHECK(r == 0, one_cpu ? "copy on one CPU" : "copy with workers");
        CHECK(same_tree(src, dst, xattrs, &want), "the copy equals the source: content, modes, owners, times, links, xattrs");
        CHECK(got.files == want.files && got.dirs == want.dirs && got.bytes == want.bytes &&
                      got.reflinked_files <= want.files,
              "stats exact");
        printf("#   files %llu/%llu dirs %llu/%llu bytes %llu/%llu reflinked %llu\n", (unsigned long long) got.files,
               (unsigned long long) want.files, (unsigned long long) got.dirs, (unsigned long long) want.dirs,
               (unsigned long long) got.bytes, (unsigned long long) want.bytes,
               (unsigned long long) got.reflinked_files);
        CHECK(n_threads() == threads && n_fds() == fds, "no thread or fd left behind");
        CHECK(remove_tree(dst) == 0, "remove the copy");
        free(dst);
}

/* A tmpfs of its own: in a private mount namespace, so nothing outlives the test. */
static bool mount_tmpfs(const char *path, const char *opts) {
        if (mkdir(path, 0755) < 0 || mount("tmpfs", path, "tmpfs", 0, opts) < 0) {
                printf("ok %u - # SKIP cannot mount a tmpfs: %m\n", ++n_tests);
                return false;
        }
        return true;
}

/* The source's files carry chattr +S, which tmpfs cannot keep: each is reported once, by the
 * thread that finished the file. */
static void test_reports(const char *src) {
        char *mnt = join(tmp, "tmpfs"), *dst = join(mnt, "copy");
        unsigned flagged = 0;
        DIR *d = opendir(src);

        for (struct dirent *de; d && (de = readdir(d));) {
                if (de->d_type != DT_REG)
                        continue;
                int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC), f = 0;
                /* Each inode once (by its f name): a linked one is copied once, by the walker. */
                if (fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &f) == 0 && (f |= FS_SYNC_FL) &&
                    ioctl(fd, FS_IOC_SETFLAGS, &f) == 0 && de->d_name[0] == 'f')
                        flagged++;
                if (fd >= 0)
                        close(fd);
        }
        if (d)
                closedir(d);
        if (flagged == 0) {
                printf("ok %u - # SKIP the source's filesystem has no chattr +S\n", ++n_tests);
                goto out;
        }
        if (!mount_tmpfs(mnt, "size=64m"))
                goto out;
        for (int one = 0; one < 2; one++) {
                MetaReport report = { .lost = lost };
                n_reported = n_from_workers = 0;
                use_cpus(one);
                int r = copy_tree_report(src, dst, &report, NULL);
                use_cpus(false);
                CHECK(r == 0, "copy to a tmpfs");
                CHECK(report.n_lost == flagged && n_reported == flagged, "each file's lost flag reported once");
                printf("#   %u reports, %u from workers, %u files flagged\n", n_reported, n_from_workers, flagged);
                if (one || CPU_COUNT(&all_cpus) < 2)
                        CHECK(n_from_workers == 0, "one CPU: no worker threads");
                else
                        CHECK(n_from_workers > 0, "workers finished files");
                CHECK(remove_tree(dst) == 0, "remove the tmpfs copy");
        }
        CHECK(umount(mnt) == 0, "unmount the tmpfs");
out:
        for (d = opendir(src); d;) {
                struct dirent *de = readdir(d);
                if (!de)
                        break;
                int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), f = 0;
                if (fd >= 0 && de->d_type == DT_REG && ioctl(fd, FS_IOC_GETFLAGS, &f) == 0 && (f & FS_SYNC_FL)) {
                        f &= ~FS_SYNC_FL;
                        (void) ioctl(fd, FS_IOC_SETFLAGS, &f);
                }
                if (fd >= 0)
                        close(fd);
        }
        if (d)
                closedir(d);
        (void) rmdir(mnt);
        free(dst);
        free(mnt);
}

/* A tmpfs of 1 MiB for 100 files of 32 KiB: the data of about the 32nd file does not fit, so with
 * more than one CPU the failure is a worker's (the pool takes files from the 8th on). */
static void test_no_space(void) {
        char *src = join(tmp, "nospace"), *mnt = join(tmp, "small"), *dst = join(mnt, "copy");
        int r = mkdir(src, 0755) < 0 ? -errno : 0;

        for (unsigned i = 0; r >= 0 && i < N_FILES; i++) {
                char name[16], *p;
                snprintf(name, sizeof(name), "n%03u", i);
                p = join(src, name);
                r = make_file(p, 32 * 1024, i, 0644);
                free(p);
        }
        CHECK(r >= 0, "a source of 100 files of 32 KiB");
        if (!mount_tmpfs(mnt, "size=1m"))
                goto out;
        for (int one = 0; one < 2; one++) {
                unsigned threads = n_threads(), fds = n_fds();
                use_cpus(one);
                r = copy_tree(src, dst, NULL);
                use_cpus(false);
                printf("#   %s: %s\n", one ? "one CPU" : "workers", strerror(-r));
                CHECK(r == -ENOSPC, one ? "no space on one CPU: -ENOSPC" : "no space in a worker: -ENOSPC");
                CHECK(!exists(dst) && count_dir(mnt) == 0, "nothing left of the failed copy");
                CHECK(n_threads() == threads && n_fds() == fds, "no thread or fd left behind after the failure");
        }
        CHECK(umount(mnt) == 0, "unmount the small tmpfs");
out:
        (void) rmdir(mnt);
        CHECK(remove_tree(src) == 0, "remove the 32 KiB files");
        free(src);
        free(dst);
        free(mnt);
}

int main(void) {
        char *src;
        bool xattrs;

        main_thread = pthread_self();
        if (sched_getaffinity(0, sizeof(all_cpus), &all_cpus) < 0)
                CPU_ZERO(&all_cpus);
        umask(022);
        if (!mkdtemp(tmp)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        src = join(tmp, "src");
        CHECK(build_tree(src, &xattrs) == 0, "build a source tree of 120 files, hard links, xattrs");
        if (!xattrs)
                printf("#   no user xattrs on this filesystem: not compared\n");
        printf("#   %d CPUs\n", CPU_COUNT(&all_cpus));

        test_exact(src, false, xattrs);
        test_exact(src, true, xattrs);

        if (geteuid() == 0 && unshare(CLONE_NEWNS) == 0 && mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == 0) {
                test_reports(src);
                test_no_space();
        } else
                printf("ok %u - # SKIP tmpfs cases need root and a mount namespace\n", ++n_tests);

        CHECK(remove_tree(tmp) == 0, "clean up");
        free(src);
        printf("1..%u\n", n_tests);
        return n_failed > 0;
}
