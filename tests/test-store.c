/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* tools/store.c: backups as a directory and as tar archives (plain, zstd, gzip, xz): round trips
 * with all metadata, documents, no-overwrite restores, incrementals with prune, and bad input
 * (truncated, garbage, escaping entries). Runs as root (chown, xattrs); no daemon. */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "lib/common.h"
#include "tests/check.h"
#include "tools/store.h"

#define BIG_SIZE (2U * 1024U * 1024U + 12345U)
#define SPARSE_SIZE (8U * 1024U * 1024U)
#define MIB (1024U * 1024U)

int test_failures;
static char tmp[] = "/tmp/test-store-XXXXXX";
static bool have_xattrs;

/* A store call whose last argument is &err, expected to succeed: the message is shown if not. */
#define OK(call)                                                                                         \
        ({                                                                                               \
                char *err = NULL;                                                                        \
                int _r = (call);                                                                         \
                if (_r < 0)                                                                              \
                        fprintf(stderr, "%s:%d: %s: %s (%s)\n", __FILE__, __LINE__, #call, strerror(-_r), \
                                strempty(err));                                                          \
                CHECK(_r >= 0);                                                                          \
                free(err);                                                                               \
                _r;                                                                                      \
        })
/* Expected to fail with want (any error if 0), with a message containing text. */
#define FAILS(call, want, text)                                                                              \
        do {                                                                                                 \
                char *err = NULL;                                                                            \
                int _r = (call);                                                                             \
                if (_r >= 0 || ((want) != 0 && _r != (want)) || !err || !strstr(err, (text))) {              \
                        fprintf(stderr, "%s:%d: %s = %d (%s), expected %d with \"%s\"\n", __FILE__, __LINE__, \
                                #call, _r, strempty(err), (want), (text));                                   \
                        test_failures++;                                                                     \
                } else                                                                                       \
                        printf("#   as expected: %s\n", err);                                                \
                free(err);                                                                                   \
        } while (0)

static char *join(const char *a, const char *b) {
        char *p;

        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static int write_file(const char *path, const void *data, size_t n, mode_t mode) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        if (fd < 0)
                return -errno;
        for (const char *p = data; n > 0; ) {
                ssize_t k = write(fd, p, n);
                if (k < 0)
                        return -errno;
                p += k;
                n -= (size_t) k;
        }
        return fchmod(fd, mode) < 0 ? -errno : 0;
}

static int count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        if (!d)
                return -1;
        while ((de = readdir(d)))
                n += !streq(de->d_name, ".") && !streq(de->d_name, "..");
        closedir(d);
        return n;
}

static bool exists(const char *p) {
        struct stat st;
        return lstat(p, &st) == 0;
}

/* The content of a small file, or NULL. */
static char *slurp(const char *path) {
        static char buf[4096];
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t k;

        if (fd < 0 || (k = read(fd, buf, sizeof buf - 1)) < 0)
                return NULL;
        buf[k] = 0;
        return buf;
}

static bool same_content(const char *a, const char *b) {
        static char ba[65536], bb[65536];
        /* O_NOATIME: comparing must not change the atimes being compared. */
        _cleanup_close_ int fa = open(a, O_RDONLY | O_CLOEXEC | O_NOATIME);
        _cleanup_close_ int fb = open(b, O_RDONLY | O_CLOEXEC | O_NOATIME);

        if (fa < 0 || fb < 0)
                return false;
        for (;;) {
                ssize_t ka = read(fa, ba, sizeof ba), kb = 0, k;

                if (ka < 0)
                        return false;
                while (kb < ka && (k = read(fb, bb + kb, (size_t) (ka - kb))) > 0)
                        kb += k;
                if (ka != kb || memcmp(ba, bb, (size_t) ka) != 0)
                        return false;
                if (ka == 0)
                        return read(fb, bb, 1) == 0;
        }
}

/* Type, mode, owner, size, mtime (and atime for non-directories) to the nanosecond, content, link target. */
static bool same_file(const char *a, const char *b) {
        struct stat sa, sb;

        if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0) {
                printf("#   %s / %s: %m\n", a, b);
                return false;
        }
        if (sa.st_mode != sb.st_mode || sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid) {
                printf("#   %s: mode/owner %o %u:%u, expected %o %u:%u\n", b, sb.st_mode, sb.st_uid, sb.st_gid,
                       sa.st_mode, sa.st_uid, sa.st_gid);
                return false;
        }
        if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec) {
                printf("#   %s: mtime %lld.%09ld, expected %lld.%09ld\n", b, (long long) sb.st_mtim.tv_sec,
                       sb.st_mtim.tv_nsec, (long long) sa.st_mtim.tv_sec, sa.st_mtim.tv_nsec);
                return false;
        }
        /* Not for symlinks: readlink() sets the source's atime, the backup keeps the one before. */
        if (!S_ISDIR(sa.st_mode) && !S_ISLNK(sa.st_mode) &&
            (sa.st_atim.tv_sec != sb.st_atim.tv_sec || sa.st_atim.tv_nsec != sb.st_atim.tv_nsec)) {
                printf("#   %s: atime %lld.%09ld, expected %lld.%09ld\n", b, (long long) sb.st_atim.tv_sec,
                       sb.st_atim.tv_nsec, (long long) sa.st_atim.tv_sec, sa.st_atim.tv_nsec);
                return false;
        }
        if (S_ISREG(sa.st_mode) && (sa.st_size != sb.st_size || !same_content(a, b))) {
                printf("#   %s: content differs\n", b);
                return false;
        }
        if (S_ISLNK(sa.st_mode)) {
                char ta[PATH_MAX], tb[PATH_MAX];
                ssize_t ka = readlink(a, ta, sizeof ta), kb = readlink(b, tb, sizeof tb);
                if (ka < 0 || ka != kb || memcmp(ta, tb, (size_t) ka) != 0) {
                        printf("#   %s: link target differs\n", b);
                        return false;
                }
        }
        return true;
}

static int set_times(const char *p, time_t sec) {
        const struct timespec ts[2] = { { sec - 5000, 111 }, { sec, 123456789 } };
        return utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Everything a backup of the groups below keeps; relative to the tree. */
static const char *const stored_names[] = {
        "empty", "small.txt", "big.bin", "exec.sh", "suid", "owned", "hard1", "hard2", "sparse", "xattr.txt",
        "caf\xc3\xa9", "link", "dangling", "top.db", "sub/a.db", "sub/deeper/b.db",
        "sub/deeper", "sub", /* directories last: their times are compared after their contents */
};
#define N_STORED_FILES 16
/* In the tree, left out: an exclude, a filespec. */
static const char *const absent_names[] = { "skip.tmp", "sub/notes.txt" };

static int build_tree(const char *s) {
        _cleanup_free_ char *big = malloc(BIG_SIZE);
        static const char *const files[][2] = {
                { "empty", "" }, { "small.txt", "hello\n" }, { "exec.sh", "#!/bin/sh\n" }, { "suid", "x" },
                { "owned", "mine\n" }, { "hard1", "linked\n" }, { "xattr.txt", "attr\n" }, { "skip.tmp", "tmp\n" },
                { "caf\xc3\xa9", "non-ASCII name\n" }, { "top.db", "db\n" }, { "sub/a.db", "a\n" },
                { "sub/notes.txt", "notes\n" }, { "sub/deeper/b.db", "b\n" },
        };
        static const mode_t modes[] = { 0600, 0644, 0755, 04755, 0640, 0644, 0644, 0644, 0644, 0644, 0644, 0644, 0600 };
        char block[4096];
        time_t t = 1100000000;
        int fd;

#define MK(expr)                                                               \
        do {                                                                   \
                if ((expr) < 0) {                                              \
                        printf("#   %s: %s\n", #expr, strerror(errno));      \
                        return -1;                                             \
                }                                                              \
        } while (0)
        MK(mkdir(s, 0751));
        MK(chdir(s));
        MK(mkdir("sub", 0750));
        MK(mkdir("sub/deeper", 0700));
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                MK(write_file(files[i][0], files[i][1], strlen(files[i][1]), modes[i]));
        MK(chown("owned", 1234, 5678));
        MK(chmod("owned", 0640));
        MK(link("hard1", "hard2"));
        MK(symlink("small.txt", "link"));
        MK(symlink("does/not/exist", "dangling"));

        if (!big)
                return -1;
        for (size_t off = 0; off < BIG_SIZE; ) {
                ssize_t k = getrandom(big + off, BIG_SIZE - off, 0);
                MK(k);
                off += (size_t) k;
        }
        MK(write_file("big.bin", big, BIG_SIZE, 0644));

        /* 8 MiB with two 4 KiB extents of data, the rest holes. */
        fd = open("sparse", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        MK(fd);
        memset(block, 'A', sizeof block);
        MK(pwrite(fd, block, sizeof block, 1 * MIB));
        memset(block, 'B', sizeof block);
        MK(pwrite(fd, block, sizeof block, 6 * MIB));
        MK(ftruncate(fd, SPARSE_SIZE));
        close(fd);

        have_xattrs = setxattr("xattr.txt", "user.test", "value", 5, 0) == 0;
        if (!have_xattrs && errno != ENOTSUP)
                MK(-1);

        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                MK(set_times(files[i][0], t += 1000));
        MK(set_times("hard2", t));
        MK(set_times("big.bin", t += 1000));
        MK(set_times("sparse", t += 1000));
        MK(set_times("link", t += 1000));
        MK(set_times("dangling", t += 1000));
        MK(set_times("sub/deeper", t += 1000));
        MK(set_times("sub", t += 1000));
        MK(set_times(".", t += 1000));
        MK(chdir("/"));
#undef MK
        return 0;
}

static uint64_t progress_files;
static void on_progress(uint64_t files, uint64_t bytes, const char *current, void *userdata) {
        progress_files = files;
}

/* The groups of one backup: top-level files, an overlapping filespec, a recursive one with a filespec. */
static int make_backup(const char *dest, const char *orig, const char *shadow, uint64_t since) {
        _cleanup_free_ char *sub = join(orig, "sub"), *missing = join(orig, "missing");
        const StoreFileGroup groups[] = {
                { .path = orig },
                { .path = orig, .filespec = "*.txt" },
                { .path = sub, .filespec = "*.db", .recursive = true },
                { .path = missing, .recursive = true },
        };
        const StoreFileGroup excludes[] = { { .path = orig, .filespec = "*.tmp", .recursive = true } };
        const char *writers = "{\"writers\":[]}";
        Store *st = NULL;
        int r;

        r = OK(store_create(dest, &st, &err));
        if (r < 0)
                return r;
        store_set_progress(st, on_progress, NULL);
        progress_files = 0;
        OK(store_put_document(st, "backup.json", "{\"a\":1}", 7, &err));
        OK(store_put_document(st, "writers.json", writers, strlen(writers), &err));
        FAILS(store_put_document(st, "writers.json", "x", 1, &err), -EEXIST, "already stored");
        FAILS(store_put_document(st, "../x", "x", 1, &err), -EINVAL, "invalid document name");
        FAILS(store_put_document(st, "index", "x", 1, &err), -EINVAL, "invalid document name");
        FAILS(store_put_document(st, "", "x", 1, &err), -EINVAL, "invalid document name");
        for (size_t i = 0; i < ELEMENTSOF(groups); i++)
                OK(store_add_files(st, shadow, orig, &groups[i], excludes, ELEMENTSOF(excludes), since, &err));
        CHECK(store_index_has(st, orig));
        return OK(store_finish(st, &err));
}

/* Each name of a tar archive once; one of hard1/hard2 a hard link without data; the sparse file's holes not stored. */
static void check_archive_layout(const char *path, const char *orig) {
        _cleanup_free_ char *hard1 = NULL, *hard2 = NULL;
        struct archive *a = archive_read_new();
        struct archive_entry *e;
        char *names[256];
        size_t n = 0;
        bool hardlink_seen = false, dup = false;
        struct stat st;

        if (asprintf(&hard1, "data%s/hard1", orig) < 0 || asprintf(&hard2, "data%s/hard2", orig) < 0)
                abort();
        archive_read_support_format_tar(a);
        archive_read_support_filter_all(a);
        CHECK(archive_read_open_filename(a, path, 65536) == ARCHIVE_OK);
        while (archive_read_next_header(a, &e) == ARCHIVE_OK && n < ELEMENTSOF(names)) {
                for (size_t i = 0; i < n; i++)
                        dup = dup || streq(names[i], archive_entry_pathname(e));
                names[n++] = strdup(archive_entry_pathname(e));
                /* Which of the two comes first (with the data) depends on readdir(). */
                if ((streq(archive_entry_pathname(e), hard1) || streq(archive_entry_pathname(e), hard2)) &&
                    archive_entry_hardlink(e))
                        hardlink_seen = archive_entry_size(e) == 0;
        }
        CHECK(!dup);
        CHECK(hardlink_seen);
        CHECK(n > 20 && n < 40);
        archive_read_free(a);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        if (endswith(path, ".tar"))
                CHECK(stat(path, &st) == 0 && (uint64_t) st.st_size < BIG_SIZE + MIB);
}

static void test_kind(const char *kind) {
        _cleanup_free_ char *base = join(tmp, kind[0] == '.' ? kind + 1 : kind);
        _cleanup_free_ char *orig = join(base, "orig"), *shadow = join(base, "shadow");
        _cleanup_free_ char *b1 = NULL, *b2 = NULL, *r1 = join(base, "r1"), *r2 = join(base, "r2"), *r3 = join(base, "r3");
        _cleanup_free_ char *evil = join(base, "evil"), *sub = join(orig, "sub");
        char *data = NULL;
        size_t len = 0;
        Store *st = NULL;
        uint64_t since;
        int r;

        printf("# %s\n", kind);
        if (asprintf(&b1, "%s/backup1%s", base, streq(kind, "dir") ? "" : kind) < 0 ||
            asprintf(&b2, "%s/backup2%s", base, streq(kind, "dir") ? "" : kind) < 0)
                abort();
        CHECK(mkdir(base, 0755) == 0);
        /* "orig" never exists: it is the original path, which "shadow" stands for. */
        if (build_tree(shadow) < 0) {
                CHECK(!"building the source tree");
                return;
        }
        sleep_ms(30); /* ctimes are coarse: make them all clearly older than `since` */
        since = now_usec();
        sleep_ms(30);

        /* Full backup. */
        if (make_backup(b1, orig, shadow, 0) < 0)
                return;
        CHECK(progress_files == N_STORED_FILES);
        if (!streq(kind, "dir"))
                check_archive_layout(b1, orig);
        else {
                _cleanup_free_ char *idx = join(b1, "openvss/index"), *d = join(b1, "data");
                struct stat s;
                CHECK(exists(idx));
                CHECK(stat(d, &s) == 0 && (s.st_mode & 07777) == 0700);
        }

        /* Opened once: a backup renamed and replaced by a symlink after it was opened (its owner
         * checked) is still the one read, not what the symlink names. */
        {
                Store *pinned = NULL;
                _cleanup_free_ char *moved = NULL;
                if (asprintf(&moved, "%s.moved", b1) < 0)
                        abort();
                if (OK(store_open(b1, &pinned, &err)) >= 0) {
                        CHECK(rename(b1, moved) == 0 && symlink("/nonexistent-backup", b1) == 0);
                        OK(store_get_document(pinned, "backup.json", 1024, &data, &len, &err));
                        CHECK(data && streq(data, "{\"a\":1}"));
                        free(data);
                        data = NULL;
                        CHECK(unlink(b1) == 0 && rename(moved, b1) == 0);
                        store_close(pinned);
                }
        }
        /* Named as "." of the current directory, or with a trailing slash: the same store. As root,
         * a symlink another user may have made on the way is not followed. */
        struct stat b1st;
        if (geteuid() == 0 && stat(b1, &b1st) == 0 && S_ISDIR(b1st.st_mode)) {
                Store *o = NULL;
                int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                _cleanup_free_ char *slash = NULL, *link = join(tmp, "their-link");
                CHECK(cwd >= 0 && chdir(b1) == 0);
                if (OK(store_open(".", &o, &err)) >= 0)
                        CHECK(o != NULL);
                store_close(o);
                o = NULL;
                CHECK(cwd >= 0 && fchdir(cwd) == 0);
                if (cwd >= 0)
                        close(cwd);
                if (asprintf(&slash, "%s/", b1) < 0)
                        abort();
                if (OK(store_open(slash, &o, &err)) >= 0)
                        CHECK(o != NULL);
                store_close(o);
                o = NULL;
                CHECK(symlink(b1, link) == 0 && lchown(link, 4242, 4242) == 0);
                FAILS(store_open(link, &o, &err), -ELOOP, "may have made or replaced");
                CHECK(unlink(link) == 0);
        }
        if (OK(store_open(b1, &st, &err)) < 0)
                return;
        OK(store_get_document(st, "backup.json", 1024, &data, &len, &err));
        CHECK(data && len == 7 && streq(data, "{\"a\":1}"));
        free(data);
        data = NULL;
        OK(store_get_document(st, "writers.json", 1024, &data, &len, &err));
        CHECK(data && streq(data, "{\"writers\":[]}"));
        free(data);
        data = NULL;
        FAILS(store_get_document(st, "nope.json", 1024, &data, &len, &err), -ENOENT, "nope.json");
        FAILS(store_get_document(st, "backup.json", 3, &data, &len, &err), -EFBIG, "larger than 3 bytes");
        CHECK(!data);
        /* Exactly as large as allowed: read. */
        OK(store_get_document(st, "backup.json", 7, &data, &len, &err));
        CHECK(data && len == 7);
        free(data);
        data = NULL;

        /* The index: everything present in the groups, not what was excluded or outside them. */
        for (size_t i = 0; i < ELEMENTSOF(stored_names); i++) {
                _cleanup_free_ char *p = join(orig, stored_names[i]);
                CHECK(store_index_has(st, p));
        }
        for (size_t i = 0; i < ELEMENTSOF(absent_names); i++) {
                _cleanup_free_ char *p = join(orig, absent_names[i]);
                CHECK(!store_index_has(st, p));
        }
        CHECK(store_index_has(st, orig));

        /* Restore to another place: everything as it was. */
        {
                const StoreRestoreRule rules[] = { { .from = { .path = orig, .recursive = true }, .to = r1 } };
                struct stat a, b;

                r = OK(store_restore(st, rules, 1, false, &err));
                CHECK(r == N_STORED_FILES);
                for (size_t i = 0; i < ELEMENTSOF(stored_names); i++) {
                        _cleanup_free_ char *s = join(shadow, stored_names[i]), *d = join(r1, stored_names[i]);
                        if (!same_file(s, d))
                                CHECK(!"restored file differs");
                }
                for (size_t i = 0; i < ELEMENTSOF(absent_names); i++) {
                        _cleanup_free_ char *d = join(r1, absent_names[i]);
                        CHECK(!exists(d));
                }
                CHECK(same_file(shadow, r1)); /* the group's own directory */
                {
                        _cleanup_free_ char *h1 = join(r1, "hard1"), *h2 = join(r1, "hard2");
                        CHECK(stat(h1, &a) == 0 && stat(h2, &b) == 0 && a.st_ino == b.st_ino && a.st_nlink == 2);
                }
                {
                        _cleanup_free_ char *sp = join(r1, "sparse");
                        CHECK(stat(sp, &a) == 0 && a.st_size == SPARSE_SIZE && (uint64_t) a.st_blocks * 512U < MIB);
                }
                {
                        _cleanup_free_ char *x = join(r1, "xattr.txt");
                        char v[16] = {};
                        if (have_xattrs)
                                CHECK(getxattr(x, "user.test", v, sizeof v) == 5 && streq(v, "value"));
                        else
                                printf("# SKIP user xattrs: not supported on the filesystem of /tmp\n");
                }
        }

        /* No overwrite: a changed file stays changed, a missing one comes back. */
        {
                const StoreRestoreRule rules[] = {
                        { .from = { .path = orig, .recursive = true }, .to = r1, .no_overwrite = true },
                };
                _cleanup_free_ char *small = join(r1, "small.txt"), *ex = join(r1, "exec.sh"), *sex = join(shadow, "exec.sh");

                CHECK(write_file(small, "changed\n", 8, 0644) == 0);
                CHECK(unlink(ex) == 0);
                r = OK(store_restore(st, rules, 1, false, &err));
                CHECK(r == 1);
                CHECK(streq(strempty(slurp(small)), "changed\n"));
                CHECK(same_file(sex, ex));
        }

        /* First matching rule wins; a hard link whose data no rule takes gets the data itself. */
        {
                _cleanup_free_ char *ra = join(base, "ra"), *rb = join(base, "rb"), *rc = join(base, "rc");
                const StoreRestoreRule rules[] = {
                        { .from = { .path = sub, .recursive = true }, .to = ra },
                        { .from = { .path = orig, .recursive = true }, .to = rb },
                };
                const StoreRestoreRule only1[] = { { .from = { .path = orig, .filespec = "hard1" }, .to = ra } };
                const StoreRestoreRule only2[] = { { .from = { .path = orig, .filespec = "hard2" }, .to = rc } };
                _cleanup_free_ char *adb = join(ra, "a.db"), *badb = join(rb, "sub/a.db"), *sadb = join(shadow, "sub/a.db");
                _cleanup_free_ char *h1 = join(ra, "hard1"), *h2 = join(rc, "hard2"), *sh1 = join(shadow, "hard1");

                r = OK(store_restore(st, rules, ELEMENTSOF(rules), false, &err));
                CHECK(r == N_STORED_FILES);
                CHECK(same_file(sadb, adb));
                CHECK(!exists(badb));
                /* One of the two is the hard link entry, whose data comes from a second pass. */
                CHECK(OK(store_restore(st, only1, 1, false, &err)) == 1);
                CHECK(OK(store_restore(st, only2, 1, false, &err)) == 1);
                CHECK(same_file(sh1, h1));
                CHECK(same_file(sh1, h2));
                CHECK(OK(store_restore(st, NULL, 0, false, &err)) == 0);
                /* The two names of one inode to two places in one restore: each gets the data. */
                {
                        _cleanup_free_ char *rd = join(base, "rd"), *re = join(base, "re");
                        _cleanup_free_ char *d1 = join(rd, "hard1"), *d2 = join(re, "hard2");
                        const StoreRestoreRule split[] = {
                                { .from = { .path = orig, .filespec = "hard1" }, .to = rd },
                                { .from = { .path = orig, .filespec = "hard2" }, .to = re },
                        };
                        CHECK(OK(store_restore(st, split, ELEMENTSOF(split), false, &err)) == 2);
                        CHECK(same_file(sh1, d1));
                        CHECK(same_file(sh1, d2));
                }
        }

        /* In place: the missing original directory is recreated with its metadata. Then a symlink
         * where a directory was is not followed. */
        {
                const StoreRestoreRule rules[] = { { .from = { .path = sub, .recursive = true } } };
                const StoreRestoreRule keep[] = { { .from = { .path = sub, .recursive = true }, .no_overwrite = true } };
                _cleanup_free_ char *deeper = join(sub, "deeper"), *sdeeper = join(shadow, "sub/deeper");
                _cleanup_free_ char *bdb = join(deeper, "b.db"), *sbdb = join(sdeeper, "b.db"), *ebdb = join(evil, "b.db");

                r = OK(store_restore(st, rules, 1, false, &err));
                CHECK(r == 2);
                CHECK(same_file(shadow, orig));
                CHECK(same_file(sbdb, bdb));

                CHECK(mkdir(evil, 0755) == 0);
                CHECK(unlink(bdb) == 0 && rmdir(deeper) == 0 && symlink(evil, deeper) == 0);
                FAILS(store_restore(st, keep, 1, false, &err), 0, "symlink");
                CHECK(!exists(ebdb));
                r = OK(store_restore(st, rules, 1, false, &err)); /* replaces the symlink itself */
                CHECK(!exists(ebdb));
                CHECK(same_file(sbdb, bdb));
        }
        store_close(st);
        st = NULL;

        /* Incremental: change, add and delete a file. */
        {
                _cleanup_free_ char *small = join(shadow, "small.txt"), *nw = join(shadow, "new.txt");
                _cleanup_free_ char *ex = join(shadow, "exec.sh");
                CHECK(write_file(small, "hello again\n", 12, 0644) == 0);
                CHECK(write_file(nw, "new\n", 4, 0644) == 0);
                CHECK(unlink(ex) == 0);
        }
        if (make_backup(b2, orig, shadow, since) < 0)
                return;
        if (OK(store_open(b2, &st, &err)) < 0)
                return;
        {
                _cleanup_free_ char *big = join(orig, "big.bin"), *ex = join(orig, "exec.sh"), *nw = join(orig, "new.txt");
                CHECK(store_index_has(st, big));
                CHECK(!store_index_has(st, ex));
                CHECK(store_index_has(st, nw));
        }
        {
                /* Alone, it holds only what changed. */
                const StoreRestoreRule rules[] = { { .from = { .path = orig, .recursive = true }, .to = r2 } };
                _cleanup_free_ char *small = join(r2, "small.txt"), *big = join(r2, "big.bin"), *nw = join(r2, "new.txt");
                _cleanup_free_ char *adb = join(r2, "sub/a.db");

                OK(store_restore(st, rules, 1, false, &err));
                CHECK(streq(strempty(slurp(small)), "hello again\n"));
                CHECK(exists(nw));
                CHECK(!exists(big));
                CHECK(!exists(adb));
        }
        {
                /* The chain with prune: what was deleted goes, what was excluded stays. */
                const StoreRestoreRule rules[] = { { .from = { .path = orig, .recursive = true }, .to = r3 } };
                _cleanup_free_ char *small = join(r3, "small.txt"), *big = join(r3, "big.bin"), *nw = join(r3, "new.txt");
                _cleanup_free_ char *ex = join(r3, "exec.sh"), *junk = join(r3, "junk.tmp"), *stale = join(r3, "sub/stale.db");
                _cleanup_free_ char *sbig = join(shadow, "big.bin");
                Store *full = NULL;

                if (OK(store_open(b1, &full, &err)) >= 0) {
                        OK(store_restore(full, rules, 1, true, &err));
                        store_close(full);
                }
                CHECK(exists(ex));
                CHECK(write_file(junk, "j", 1, 0644) == 0);
                CHECK(write_file(stale, "s", 1, 0644) == 0);
                OK(store_restore(st, rules, 1, true, &err));
                CHECK(!exists(ex));
                CHECK(!exists(stale));
                CHECK(exists(junk));
                CHECK(exists(nw));
                CHECK(streq(strempty(slurp(small)), "hello again\n"));
                CHECK(same_file(sbig, big));
        }
        store_close(st);
}

/* ---- bad input ---- */

static struct archive *craft_begin(const char *path) {
        struct archive *a = archive_write_new();

        archive_write_set_format_pax(a);
        if (endswith(path, ".zst"))
                archive_write_add_filter_zstd(a);
        if (archive_write_open_filename(a, path) != ARCHIVE_OK)
                abort();
        return a;
}

static void craft(struct archive *a, const char *name, mode_t type, const char *data, const char *symlink_to,
                  const char *hardlink_to) {
        struct archive_entry *e = archive_entry_new();

        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
        if (symlink_to)
                archive_entry_set_symlink(e, symlink_to);
        if (hardlink_to)
                archive_entry_set_hardlink(e, hardlink_to);
        archive_entry_set_size(e, data ? (la_int64_t) strlen(data) : 0);
        CHECK(archive_write_header(a, e) == ARCHIVE_OK);
        if (data)
                archive_write_data(a, data, strlen(data));
        archive_entry_free(e);
}

static void craft_index(struct archive *a, const char *paths, size_t len) {
        struct archive_entry *e = archive_entry_new();

        archive_entry_set_pathname(e, "openvss/index");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0600);
        archive_entry_set_size(e, (la_int64_t) len);
        CHECK(archive_write_header(a, e) == ARCHIVE_OK);
        archive_write_data(a, paths, len);
        archive_entry_free(e);
}

static void craft_end(struct archive *a) {
        CHECK(archive_write_free(a) == ARCHIVE_OK);
}

static int copy_prefix(const char *from, const char *to, off_t n) {
        _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC), out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        char buf[65536];

        if (in < 0 || out < 0)
                return -1;
        while (n > 0) {
                ssize_t k = read(in, buf, n < (off_t) sizeof buf ? (size_t) n : sizeof buf);
                if (k <= 0 || write(out, buf, (size_t) k) != k)
                        return -1;
                n -= k;
        }
        return 0;
}

static void test_bad_input(void) {
        _cleanup_free_ char *base = join(tmp, "bad"), *outside = join(tmp, "outside"), *r = join(tmp, "bad/r");
        _cleanup_free_ char *big = NULL;
        char *p, *q;
        Store *st = NULL;
        struct stat s;

        printf("# bad input\n");
        CHECK(mkdir(base, 0755) == 0 && mkdir(outside, 0755) == 0);
        p = join(base, "file");
        CHECK(write_file(p, "x", 1, 0644) == 0);
        free(p);

        /* Existing destinations are refused and left alone. */
        p = join(base, "exists.tar");
        CHECK(write_file(p, "x", 1, 0644) == 0);
        FAILS(store_create(p, &st, &err), -EEXIST, "already exists");
        CHECK(exists(p));
        free(p);
        p = join(base, "full");
        q = join(p, "file");
        CHECK(mkdir(p, 0755) == 0 && write_file(q, "x", 1, 0644) == 0);
        FAILS(store_create(p, &st, &err), -ENOTEMPTY, "not empty");
        CHECK(exists(q));
        free(p);
        free(q);

        /* Aborting removes what was written; a missing group path stores nothing; a missing
         * source root is an error; an oversized document is refused. */
        p = join(base, "aborted.tar.zst");
        q = join(base, "aborted-dir");
        {
                _cleanup_free_ char *file = join(base, "file");
                const StoreFileGroup g = { .path = file }, missing = { .path = "/nonexistent/x" };
                Store *d = NULL;

                if (OK(store_create(p, &st, &err)) >= 0) {
                        OK(store_add_files(st, "", "", &g, NULL, 0, 0, &err));
                        CHECK(OK(store_add_files(st, "", "", &missing, NULL, 0, 0, &err)) == 0);
                        CHECK(!store_index_has(st, "/nonexistent"));
                        FAILS(store_add_files(st, "/nonexistent-root", "/", &g, NULL, 0, 0, &err), -ENOENT,
                              "source root");
                        big = calloc(1, STORE_DOCUMENT_MAX + 1);
                        FAILS(store_put_document(st, "big.json", big, STORE_DOCUMENT_MAX + 1, &err), -EFBIG,
                              "larger than");
                        store_abort(st);
                        CHECK(!exists(p));
                }
                if (OK(store_create(q, &d, &err)) >= 0) {
                        OK(store_add_files(d, "", "", &g, NULL, 0, 0, &err));
                        store_abort(d);
                        CHECK(!exists(q));
                }
        }
        free(p);
        free(q);

        /* Files another user hands over: every one must be that user's, checked on what is read,
         * so a tree with someone else's file in it, or a path through a symlink to someone else's
         * directory, stores nothing of theirs. */
        p = join(base, "handed.tar");
        {
                _cleanup_free_ char *tree = join(base, "handed"), *mine = join(tree, "mine"),
                                    *theirs = join(tree, "theirs"), *rootdir = join(base, "root-dir"),
                                    *sub = join(rootdir, "sub"), *secret = join(sub, "secret"),
                                    *link = join(base, "link"), *via = join(link, "sub");
                const StoreFileGroup g = { .path = "/app/handed", .filespec = "*", .recursive = true };
                const uid_t user = 4242;
                CHECK(mkdir(tree, 0755) == 0 && chown(tree, user, user) == 0);
                CHECK(write_file(mine, "mine", 4, 0644) == 0 && chown(mine, user, user) == 0);
                CHECK(write_file(theirs, "theirs", 6, 0644) == 0);
                CHECK(mkdir(rootdir, 0755) == 0 && mkdir(sub, 0755) == 0 && write_file(secret, "secret", 6, 0600) == 0);
                CHECK(symlink(rootdir, link) == 0);
                if (OK(store_create(p, &st, &err)) >= 0) {
                        FAILS(store_add_owned_files(st, tree, "/app/handed", &g, user, &err), -EPERM,
                              "not to uid 4242");
                        CHECK(!store_index_has(st, "/app/handed/theirs"));
                        FAILS(store_add_owned_files(st, via, "/app/handed", &g, user, &err), -EPERM,
                              "not to uid 4242");
                        CHECK(!store_index_has(st, "/app/handed/secret"));
                        store_abort(st);
                }
                CHECK(unlink(theirs) == 0);
                if (OK(store_create(p, &st, &err)) >= 0) {
                        OK(store_add_owned_files(st, tree, "/app/handed", &g, user, &err));
                        CHECK(store_index_has(st, "/app/handed/mine"));
                        store_abort(st);
                }
        }
        free(p);

        /* Garbage, and a backup cut in half (plain and compressed). */
        p = join(base, "garbage.tar");
        {
                char junk[65536];
                CHECK(getrandom(junk, sizeof junk, 0) == (ssize_t) sizeof junk);
                CHECK(write_file(p, junk, sizeof junk, 0644) == 0);
        }
        FAILS(store_open(p, &st, &err), 0, "garbage.tar");
        free(p);
        for (size_t i = 0; i < 2; i++) {
                const char *full = i == 0 ? "tar/backup1.tar" : "tar.zst/backup1.tar.zst";
                _cleanup_free_ char *src = join(tmp, full), *cut = NULL;

                if (asprintf(&cut, "%s/cut-%zu%s", base, i, i == 0 ? ".tar" : ".tar.zst") < 0)
                        abort();
                CHECK(stat(src, &s) == 0 && copy_prefix(src, cut, s.st_size / 2) == 0);
                FAILS(store_open(cut, &st, &err), 0, "cut-");
        }

        /* A name with "..": refused when opened, nothing written anywhere. */
        p = join(base, "dotdot.tar");
        {
                struct archive *a = craft_begin(p);
                craft(a, "data/../../../outside/escape.txt", AE_IFREG, "x", NULL, NULL);
                craft_index(a, "/x", 3);
                craft_end(a);
        }
        FAILS(store_open(p, &st, &err), -EBADMSG, "unsafe or invalid name");
        free(p);
        q = join(outside, "escape.txt");
        CHECK(!exists(q));
        free(q);

        /* A hard link to outside the backup's data. */
        p = join(base, "hardlink.tar");
        {
                struct archive *a = craft_begin(p);
                craft(a, "data/a", AE_IFREG, NULL, NULL, "/etc/passwd");
                craft_index(a, "/a", 3);
                craft_end(a);
        }
        FAILS(store_open(p, &st, &err), -EBADMSG, "outside the backup's data");
        free(p);

        /* No index: not a backup (or an unfinished one). */
        p = join(base, "noindex.tar");
        {
                struct archive *a = craft_begin(p);
                craft(a, "data/a", AE_IFREG, "x", NULL, NULL);
                craft_end(a);
        }
        FAILS(store_open(p, &st, &err), -EBADMSG, "no openvss/index");
        free(p);

        /* An index larger than the limit (zeros, compressed to almost nothing): refused before reading. */
        p = join(base, "bigindex.tar.zst");
        {
                struct archive *a = craft_begin(p);
                struct archive_entry *e = archive_entry_new();
                archive_entry_set_pathname(e, "openvss/index");
                archive_entry_set_filetype(e, AE_IFREG);
                archive_entry_set_perm(e, 0600);
                archive_entry_set_size(e, (la_int64_t) STORE_INDEX_MAX + 1);
                CHECK(archive_write_header(a, e) == ARCHIVE_OK);
                archive_entry_free(e);
                craft_end(a); /* pads the entry with zeros */
        }
        FAILS(store_open(p, &st, &err), -EFBIG, "openvss/index is larger than 268435456 bytes");
        free(p);

        /* A symlink to outside, then a file through it: the file is not written there. */
        p = join(base, "through.tar");
        {
                struct archive *a = craft_begin(p);
                craft(a, "data/t", AE_IFDIR, NULL, NULL, NULL);
                craft(a, "data/t/link", AE_IFLNK, NULL, outside, NULL);
                craft(a, "data/t/link/pwned", AE_IFREG, "pwned\n", NULL, NULL);
                craft_index(a, "/t\0/t/link\0/t/link/pwned", 25);
                craft_end(a);
        }
        /* Refused when opened, before anything is written. */
        FAILS(store_open(p, &st, &err), -EBADMSG, "which is not a directory");
        free(p);

        /* A hard link to nothing earlier in the archive: refused when opened too. */
        p = join(base, "dangling-link.tar");
        {
                struct archive *a = craft_begin(p);
                craft(a, "data/t", AE_IFDIR, NULL, NULL, NULL);
                craft(a, "data/t/h", AE_IFREG, NULL, NULL, "data/t/later");
                craft(a, "data/t/later", AE_IFREG, "x\n", NULL, NULL);
                craft_index(a, "/t\0/t/h\0/t/later", 17);
                craft_end(a);
        }
        FAILS(store_open(p, &st, &err), -EBADMSG, "no earlier file");
        free(p);

        /* What moving into place would run into stops the restore before anything is moved. */
        p = join(base, "conflict.tar");
        {
                struct archive *a = craft_begin(p);
                craft(a, "data/t", AE_IFDIR, NULL, NULL, NULL);
                craft(a, "data/t/a", AE_IFREG, "a\n", NULL, NULL);
                craft(a, "data/t/x", AE_IFREG, "x\n", NULL, NULL);
                craft_index(a, "/t\0/t/a\0/t/x", 13);
                craft_end(a);
        }
        if (OK(store_open(p, &st, &err)) >= 0) {
                _cleanup_free_ char *dest = join(base, "conflict"), *x = join(dest, "x"), *a = join(dest, "a");
                const StoreRestoreRule rules[] = { { .from = { .path = "/t", .recursive = true }, .to = dest } };
                CHECK(mkdir(dest, 0755) == 0 && mkdir(x, 0755) == 0);
                FAILS(store_restore(st, rules, 1, false, &err), -EISDIR, "is a directory");
                CHECK(!exists(a));
                CHECK(count_entries(dest) == 1); /* x alone: no staging directory left either */
                store_close(st);
        }
        free(p);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

int main(void) {
        static const char *const kinds[] = { "dir", ".tar", ".tar.zst", ".tar.gz", ".tar.xz" };

        if (geteuid() != 0) {
                printf("ok - store # SKIP needs root (chown, ownership restore)\n");
                return 77;
        }
        if (!mkdtemp(tmp)) {
                perror("mkdtemp");
                return 1;
        }
        umask(022);
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++)
                test_kind(kinds[i]);
        test_bad_input();

        if (test_failures == 0)
                nftw(tmp, rm_entry, 64, FTW_DEPTH | FTW_PHYS);
        else
                printf("# left for inspection: %s\n", tmp);
        printf("%s - store\n", test_failures ? "not ok" : "ok");
        return test_failures ? 1 : 0;
}
