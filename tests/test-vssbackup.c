/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssbackup against the real vssd and real vss-writer-exec writers: back up, change, restore and
 * compare every property of the files; restore vetoed by a writer; incremental and differential
 * chains driven by backup stamps; bad backups refused; exec against a consistent shadow copy. */

#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/common.h"
#include "tests/harness.h"

/* A tree as text: one sorted line per entry with everything a restore must bring back. Hard links
 * show as the first path of their inode; directories' times are left out (creating files in them
 * changes them). */
static char **tree_lines;
static size_t tree_n;
static const char *tree_root;
static struct { dev_t dev; ino_t ino; char path[256]; } tree_inodes[256];
static size_t tree_n_inodes;

static uint64_t file_hash(const char *path) {
        uint64_t h = 1469598103934665603ULL;
        char buf[65536];
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t k;
        if (fd < 0)
                return 0;
        while ((k = read(fd, buf, sizeof(buf))) > 0)
                for (ssize_t i = 0; i < k; i++)
                        h = (h ^ (unsigned char) buf[i]) * 1099511628211ULL;
        close(fd);
        return h;
}

static int tree_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        const char *rel = path + strlen(tree_root);
        char extra[PATH_MAX + 64] = "", *line = NULL;
        if (!*rel)
                rel = "/";
        if (S_ISLNK(st->st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(path, target, sizeof(target) - 1);
                target[n > 0 ? n : 0] = 0;
                snprintf(extra, sizeof(extra), "-> %s", target);
        } else if (S_ISREG(st->st_mode)) {
                const char *first = NULL;
                for (size_t i = 0; i < tree_n_inodes; i++)
                        if (tree_inodes[i].ino == st->st_ino && tree_inodes[i].dev == st->st_dev)
                                first = tree_inodes[i].path;
                if (!first && tree_n_inodes < ELEMENTSOF(tree_inodes)) {
                        tree_inodes[tree_n_inodes].dev = st->st_dev;
                        tree_inodes[tree_n_inodes].ino = st->st_ino;
                        snprintf(tree_inodes[tree_n_inodes++].path, 256, "%s", rel);
                }
                /* Sparse: a big file with few blocks stays that way. */
                bool sparse = st->st_size > (1 << 20) && (uint64_t) st->st_blocks * 512 < (uint64_t) st->st_size / 4;
                snprintf(extra, sizeof(extra), "size=%lld hash=%016llx mtime=%lld.%09ld nlink=%lu%s%s%s",
                         (long long) st->st_size, (unsigned long long) file_hash(path), (long long) st->st_mtim.tv_sec,
                         st->st_mtim.tv_nsec, (unsigned long) st->st_nlink, sparse ? " sparse" : "",
                         first ? " link-of=" : "", first ? first : "");
        }
        if (asprintf(&line, "%s mode=%o uid=%u gid=%u %s", rel, (unsigned) st->st_mode, (unsigned) st->st_uid,
                     (unsigned) st->st_gid, extra) < 0)
                return -1;
        tree_lines = realloc(tree_lines, (tree_n + 1) * sizeof(char *));
        tree_lines[tree_n++] = line;
        return 0;
}

static int cmp_lines(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The tree under dir as text (sorted; caller frees). */
static char *tree_text(const char *dir) {
        tree_root = dir;
        tree_n = tree_n_inodes = 0;
        tree_lines = NULL;
        if (nftw(dir, tree_entry, 16, FTW_PHYS) != 0)
                return strdup("(unreadable)");
        qsort(tree_lines, tree_n, sizeof(char *), cmp_lines);
        size_t len = 1;
        for (size_t i = 0; i < tree_n; i++)
                len += strlen(tree_lines[i]) + 1;
        char *s = calloc(1, len);
        for (size_t i = 0; i < tree_n; i++) {
                strcat(s, tree_lines[i]);
                strcat(s, "\n");
                free(tree_lines[i]);
        }
        free(tree_lines);
        return s;
}

static void check_trees_equal(const char *want, const char *got, const char *what) {
        if (!streq(want, got)) {
                fprintf(stderr, "%s: trees differ\n--- expected\n%s--- got\n%s", what, want, got);
                test_failures++;
        }
}

static void write_file(const char *dir, const char *name, const char *content, mode_t mode) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        CHECK(fd >= 0 && write(fd, content, strlen(content)) == (ssize_t) strlen(content));
        if (fd >= 0) {
                CHECK(fchmod(fd, mode) == 0);
                close(fd);
        }
}

static void set_mtime(const char *dir, const char *name, time_t t) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        struct timespec ts[2] = { { t, 123456789 }, { t, 987654321 } };
        CHECK(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW) == 0);
}

/* Everything a restore must bring back: contents, modes (setuid too), owners, times, hard
 * links, symlinks (dangling too), a sparse file, an empty file, a subdirectory. */
static char *make_rich_tree(Harness *h, const char *name) {
        static char dir[PATH_MAX];
        char p[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", harness_dir(h), name);
        CHECK(mkdir(dir, 0750) == 0);
        write_file(dir, "plain.txt", "hello, world\n", 0644);
        write_file(dir, "secret", "key\n", 0600);
        write_file(dir, "tool", "#!/bin/sh\n", 04755);
        write_file(dir, "empty", "", 0640);
        write_file(dir, "owned", "someone else's\n", 0644);
        snprintf(p, sizeof(p), "%s/owned", dir);
        CHECK(chown(p, 1234, 5678) == 0);
        snprintf(p, sizeof(p), "%s/sub", dir);
        CHECK(mkdir(p, 0700) == 0);
        write_file(dir, "sub/deep.db", "rows\n", 0600);
        char a[PATH_MAX], b[PATH_MAX];
        snprintf(a, sizeof(a), "%s/plain.txt", dir);
        snprintf(b, sizeof(b), "%s/sub/hardlink", dir);
        CHECK(link(a, b) == 0);
        snprintf(p, sizeof(p), "%s/rel-link", dir);
        CHECK(symlink("plain.txt", p) == 0);
        snprintf(p, sizeof(p), "%s/dangling", dir);
        CHECK(symlink("/nonexistent/target", p) == 0);
        snprintf(p, sizeof(p), "%s/sparse.img", dir);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && ftruncate(fd, 16 << 20) == 0 && pwrite(fd, "head", 4, 0) == 4 &&
              pwrite(fd, "tail", 4, (12 << 20)) == 4);
        if (fd >= 0)
                close(fd);
        const char *timed[] = { "plain.txt", "secret", "tool", "empty", "owned", "sub/deep.db", "sparse.img", "rel-link" };
        for (size_t i = 0; i < ELEMENTSOF(timed); i++)
                set_mtime(dir, timed[i], 1700000000 + (time_t) i * 1000);
        return dir;
}

static void change_tree(const char *dir) {
        char p[PATH_MAX];
        write_file(dir, "plain.txt", "overwritten after the backup\n", 0666);
        snprintf(p, sizeof(p), "%s/secret", dir);
        CHECK(unlink(p) == 0);
        snprintf(p, sizeof(p), "%s/tool", dir);
        CHECK(chmod(p, 0700) == 0);
        snprintf(p, sizeof(p), "%s/owned", dir);
        CHECK(chown(p, 0, 0) == 0);
        snprintf(p, sizeof(p), "%s/sub/deep.db", dir);
        CHECK(truncate(p, 1) == 0);
}

static void roundtrip(const char *dest_name, bool alternate) {
        Harness *h = harness_new(NULL);
        char *data = make_rich_tree(h, "data");
        char comp[PATH_MAX + 16], dest[PATH_MAX], alt[PATH_MAX], altdata[2 * PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
        harness_writer(h, "bystander", NULL);
        snprintf(dest, sizeof(dest), "%s/%s", harness_dir(h), dest_name);
        _cleanup_free_ char *before = tree_text(data);

        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json%s", dest, "");
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK_STR(json_str(out, "type"), "full");
        CHECK_STR(json_str(json_phase(out, "do-snapshot-set", "db"), "state_name"), "WaitingForBackupComplete");
        CHECK_STR(json_str(json_phase(out, "backup-complete", "db"), "state_name"), "Stable");
        json_object_put(out);

        change_tree(data);
        harness_clear_log(h);
        if (alternate) {
                snprintf(alt, sizeof(alt), "%s/alt", harness_dir(h));
                out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", dest, alt);
                snprintf(altdata, sizeof(altdata), "%s%s", alt, data);
        } else
                out = harness_json(h, &st, "vssbackup restore --from %s --json%s", dest, "");
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK_STR(json_str(json_phase(out, "pre-restore", "db"), "state_name"), "Stable");
        CHECK_STR(json_str(json_phase(out, "post-restore", "db"), "state_name"), "Stable");
        json_object_put(out);
        /* The writers saw PreRestore, then PostRestore, in that order. */
        _cleanup_free_ char *ev = harness_events(h, "db");
        CHECK_STR(ev, "identify pre-restore post-restore");

        if (alternate) {
                _cleanup_free_ char *got = tree_text(altdata);
                check_trees_equal(before, got, "restored to an alternate location");
                /* The original stays as it was changed. */
                char p[PATH_MAX];
                snprintf(p, sizeof(p), "%s/secret", data);
                CHECK(access(p, F_OK) < 0);
        } else {
                _cleanup_free_ char *got = tree_text(data);
                check_trees_equal(before, got, "restored in place");
        }
        harness_free(h);
}

static void test_roundtrip_dir(void) {
        roundtrip("backup", false);
}

static void test_roundtrip_archive(void) {
        roundtrip("backup.tar.zst", true);
}

static void test_prerestore_veto(void) {
        Harness *h = harness_new(NULL);
        char *data = make_rich_tree(h, "data");
        char comp[PATH_MAX + 16], comp2[PATH_MAX + 16], dest[PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
        /* And a writer that does not veto: it still hears PostRestore. */
        char *other = harness_make_data(h, "other");
        snprintf(comp2, sizeof(comp2), "app=%s", other);
        const char *const args2[] = { "--component", comp2, NULL };
        harness_writer(h, "app", args2);
        snprintf(dest, sizeof(dest), "%s/backup.tar", harness_dir(h));
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json%s", dest, "");
        CHECK(st == 0);
        json_object_put(out);

        change_tree(data);
        _cleanup_free_ char *changed = tree_text(data);
        harness_set(h, "db", "pre-restore", "fail 3 the database is still running");
        out = harness_json(h, &st, "vssbackup restore --from %s --json%s", dest, "");
        CHECK(st == 1);
        CHECK_STR(json_str(out, "result"), "failed");
        json_object *w = json_phase(out, "pre-restore", "db");
        CHECK_STR(json_str(w, "state_name"), "FailedAtPreRestore");
        CHECK_STR(json_str(w, "failure_name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        CHECK_STR(json_str(w, "application_message"), "the database is still running");
        json_object *code = NULL;
        CHECK(w && json_object_object_get_ex(w, "application_code", &code) && json_object_get_int(code) == 3);
        json_object_put(out);
        /* Nothing was written. */
        _cleanup_free_ char *after = tree_text(data);
        check_trees_equal(changed, after, "after a vetoed restore");
        /* The writer that took part and did not veto is told the restore is over. */
        char *ev = harness_events(h, "app");
        CHECK(ev && strstr(ev, "pre-restore post-restore"));
        if (ev && !strstr(ev, "pre-restore post-restore"))
                fprintf(stderr, "app saw: %s\n", ev);
        free(ev);
        harness_free(h);
}

/* A component on a filesystem mounted below the --for path (a database on its own mount): the
 * --for path's shadow holds the mount point only as an empty directory, so the component's path
 * gets a shadow of its own, and its files are in the backup. A filesystem below a component that
 * the set does not have is warned of. */
/* data/db, a tmpfs of its own holding app.db ("rows"), and writer "db" whose component is that file. */
static void nested_mount_make(Harness *h, const char *data, char db[PATH_MAX + 8]) {
        char comp[PATH_MAX + 16];
        snprintf(db, PATH_MAX + 8, "%s/db", data);
        CHECK(mkdir(db, 0755) == 0);
        CHECK(harness_sh(h, NULL, "mount -t tmpfs -o size=4m openvss-test '%s' && echo rows > '%s/app.db'", db, db) == 0);
        snprintf(comp, sizeof(comp), "db=%s/app.db", db);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
}

/* A filesystem of its own (a loop ext4) at data/cache holding t: what a nested mount the set does
 * not have looks like (tmpfs would not do: vssbackup does not warn of pseudo filesystems). */
static void other_fs_make(Harness *h, const char *data, char cache[PATH_MAX + 8]) {
        char *loop = harness_loop_fs(h, "mkfs.ext4 -q", "16M");
        snprintf(cache, PATH_MAX + 8, "%s/cache", data);
        CHECK(loop && mkdir(cache, 0755) == 0);
        CHECK(harness_sh(h, NULL, "mount --bind '%s' '%s' && echo t > '%s/t'", loop, cache, cache) == 0);
}

/* Writer NAME (root's) with all of dir as its component, then `vssbackup backup --to dest
 * --json`: it succeeds with no warning (VSS: a requester follows the mount points of a recursive
 * file group and shadow copies the volumes there). */
static void backup_checked(Harness *h, const char *name, const char *dir, const char *dest, const char *warned) {
        char comp[PATH_MAX + 16];
        snprintf(comp, sizeof(comp), "%s=%s", name, dir);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, name, args);
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", dest);
        CHECK(st == 0);
        json_object *w = out ? json_object_object_get(out, "warnings") : NULL;
        size_t n = w ? json_object_array_length(w) : 0;
        const char *path = n > 0 ? json_str(json_object_array_get_idx(w, 0), "path") : NULL;
        CHECK(warned ? n == 1 && path && strstr(path, warned) : n == 0);
        if (warned ? n != 1 : n != 0)
                fprintf(stderr, "warnings: %s\n", w ? json_object_to_json_string(w) : "none");
        json_object_put(out);
}

static void backup_follows(Harness *h, const char *name, const char *dir, const char *dest) {
        backup_checked(h, name, dir, dest, NULL);
}

/* The same, with one warning, of a path ending in warned (a filesystem not followed). */
static void backup_warns_of(Harness *h, const char *name, const char *dir, const char *dest, const char *warned) {
        backup_checked(h, name, dir, dest, warned);
}

static void test_nested_mount(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char db[PATH_MAX + 8], dest[PATH_MAX], stored[2 * PATH_MAX];
        nested_mount_make(h, data, db);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --for %s --json", dest, data);
        CHECK(st == 0);
        json_object_put(out);
        snprintf(stored, sizeof(stored), "%s/data%s/app.db", dest, db);
        _cleanup_free_ char *got = NULL;
        CHECK(harness_sh(h, &got, "cat '%s'", stored) == 0 && got && streq(got, "rows\n"));

        /* A writer whose component is all of data: data/db is in the set (the db component's),
         * and data/cache, a filesystem no component has, joins it: the mount is followed, its
         * files are in the backup from its own shadow copy, and nothing is warned of. */
        char cache[PATH_MAX + 8], dest2[PATH_MAX];
        other_fs_make(h, data, cache);
        snprintf(dest2, sizeof(dest2), "%s/backup2", harness_dir(h));
        backup_follows(h, "all", data, dest2);
        snprintf(stored, sizeof(stored), "%s/data%s/t", dest2, cache);
        _cleanup_free_ char *t = NULL, *db2 = NULL;
        CHECK(harness_sh(h, &t, "cat '%s'", stored) == 0 && t && streq(t, "t\n"));
        snprintf(stored, sizeof(stored), "%s/data%s/app.db", dest2, db);
        CHECK(harness_sh(h, &db2, "cat '%s'", stored) == 0 && db2 && streq(db2, "rows\n"));
        /* Back in place, into both filesystems below data (each staged on its own: a rename
         * never crosses one). */
        _cleanup_free_ char *t2 = NULL, *said = NULL;
        CHECK(harness_sh(h, NULL, "echo changed > '%s/t' && echo changed > '%s/app.db'", cache, db) == 0);
        CHECK(harness_sh(h, &said, "vssbackup restore --from %s 2>&1", dest2) == 0);
        if (said && strstr(said, "failed"))
                fprintf(stderr, "vssbackup said: %s", said);
        CHECK(harness_sh(h, &t2, "cat '%s/t' '%s/app.db'", cache, db) == 0 && t2 && streq(t2, "t\nrows\n"));
        CHECK(harness_sh(h, NULL, "umount '%s' && umount '%s'", cache, db) == 0);
        harness_free(h);
}

/* What a backup follows and what it leaves, for a root writer restored whole
 * (stop-restore-start, which prunes): a mount inside a followed mount (data/m1/m2) is followed
 * too and restored in place, deepest first; a tmpfs (data/run) and a read-only tmpfs (data/ro)
 * are not followed, and the restore neither prunes the tmpfs's live file nor needs to write into
 * the read-only one. */
static void test_nested_follow_rules(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char *l1 = harness_loop_fs(h, "mkfs.ext4 -q", "16M"), *l2 = harness_loop_fs(h, "mkfs.ext4 -q", "16M");
        char comp[PATH_MAX + 16], dest[PATH_MAX];
        snprintf(comp, sizeof(comp), "app=%s", data);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        CHECK(l1 && l2 && harness_sh(h, NULL, "cd '%s' && mkdir m1 run ro && mount --bind '%s' m1 && mkdir m1/m2 && "
                                              "mount --bind '%s' m1/m2 && echo one > m1/one && echo two > m1/m2/two && "
                                              "mount -t tmpfs -o size=1m openvss-test run && "
                                              "mount -t tmpfs -o size=1m,ro openvss-test ro && "
                                              "mkdir run2 && echo old > run2/old.pid",
                                     data, l1, l2) == 0);
        const char *const args[] = { "--component", comp, "--restore-method", "stop-restore-start", NULL };
        harness_writer(h, "app", args);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", dest) == 0);
        _cleanup_free_ char *got = NULL;
        /* A tmpfs mounted since over run2 (which held old.pid then): what the backup holds goes
         * back into it, and nothing of what it holds now is removed. */
        CHECK(harness_sh(h, NULL, "cd '%s' && echo changed > m1/one && echo changed > m1/m2/two && echo live > run/app.pid "
                                  "&& mount -t tmpfs -o size=1m openvss-test run2 && echo live > run2/app.pid",
                         data) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet", dest) == 0);
        CHECK(harness_sh(h, &got, "cd '%s' && cat m1/one m1/m2/two run/app.pid run2/app.pid run2/old.pid", data) == 0 &&
              got && streq(got, "one\ntwo\nlive\nlive\nold\n"));
        if (got && !streq(got, "one\ntwo\nlive\nlive\nold\n"))
                fprintf(stderr, "after the restore: %s", got);
        CHECK(harness_sh(h, NULL, "cd '%s' && umount run2 ro run m1/m2 m1", data) == 0);
        harness_free(h);
}

/* A filesystem below a root writer's group that is not root's (its root directory a user's) is
 * not followed, but another writer's component there stores files in the same backup: restoring
 * the outer component in place would have to move them into that filesystem, which no rename
 * does. Refused before anything moves, nothing written; the inner component restores by itself. */
static void test_nested_other_fs_refused(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char *loop = harness_loop_fs(h, "mkfs.ext4 -q", "16M");
        char outer[PATH_MAX + 16], inner[PATH_MAX + 16], dest[PATH_MAX];
        snprintf(outer, sizeof(outer), "all=%s", data);
        snprintf(inner, sizeof(inner), "x=%s/x", data);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        CHECK(loop && harness_sh(h, NULL, "cd '%s' && echo a > a && mkdir x && mount --bind '%s' x && chown 65534 x && "
                                          "echo f > x/f", data, loop) == 0);
        const char *const a1[] = { "--component", outer, NULL }, *const a2[] = { "--component", inner, NULL };
        harness_writer(h, "all", a1);
        harness_writer(h, "x", a2);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", dest) == 0);
        CHECK(harness_sh(h, NULL, "cd '%s' && echo changed > a && echo changed > x/f", data) == 0);
        _cleanup_free_ char *said = NULL, *got = NULL, *got2 = NULL;
        CHECK(harness_sh(h, &said, "vssbackup restore --from %s --component all:all 2>&1", dest) != 0);
        CHECK(said && strstr(said, "is a filesystem of its own"));
        if (said && !strstr(said, "is a filesystem of its own"))
                fprintf(stderr, "vssbackup said: %s", said);
        CHECK(harness_sh(h, &got, "cd '%s' && cat a x/f", data) == 0 && got && streq(got, "changed\nchanged\n"));
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --component x:x --quiet", dest) == 0);
        CHECK(harness_sh(h, &got2, "cat '%s/x/f'", data) == 0 && got2 && streq(got2, "f\n"));
        /* From a chain whose incremental alone holds files there: refused before the full
         * backup is put back, so nothing at all is written. */
        _cleanup_free_ char *said2 = NULL, *got3 = NULL;
        char full[PATH_MAX + 8], inc[PATH_MAX + 8];
        snprintf(full, sizeof(full), "%s/full", harness_dir(h));
        snprintf(inc, sizeof(inc), "%s/inc", harness_dir(h));
        CHECK(harness_sh(h, NULL, "rm -f '%s/x/f' && vssbackup backup --to %s --quiet && echo g > '%s/x/g' && "
                                  "vssbackup backup --type incremental --base %s --to %s --quiet && echo changed > '%s/a'",
                         data, full, data, full, inc, data) == 0);
        CHECK(harness_sh(h, &said2, "vssbackup restore --from %s --component all:all 2>&1", inc) != 0);
        CHECK(said2 && strstr(said2, "is a filesystem of its own"));
        CHECK(harness_sh(h, &got3, "cat '%s/a'", data) == 0 && got3 && streq(got3, "changed\n"));
        CHECK(harness_sh(h, NULL, "umount '%s/x'", data) == 0);
        harness_free(h);
}

/* A btrfs subvolume nested in a component's directory, no mount point: the directory's shadow
 * copy holds it as an empty directory, so the subvolume joins the set with a shadow copy of its
 * own, and its files are in the backup (and restored), without a warning. */
static void test_nested_subvolume(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "256M");
        char data[PATH_MAX], sub[PATH_MAX + 8], dest[PATH_MAX], stored[3 * PATH_MAX];
        snprintf(data, sizeof(data), "%s/data", mnt);
        snprintf(sub, sizeof(sub), "%s/sub", data);
        CHECK(mkdir(data, 0755) == 0);
        CHECK(harness_sh(h, NULL, "echo a > '%s/a' && btrfs -q subvolume create '%s' && echo t > '%s/t'", data, sub,
                         sub) == 0);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        /* One a user made where they may write (data/pub, 1777) is not followed: warned of. */
        CHECK(chmod(harness_dir(h), 0755) == 0 && chmod(mnt, 0755) == 0 && chmod(data, 0755) == 0);
        CHECK(harness_sh(h, NULL, "mkdir -m 1777 '%s/pub' && setpriv --reuid=65534 --regid=65534 --clear-groups "
                                  "btrfs -q subvolume create '%s/pub/mine' && setpriv --reuid=65534 --regid=65534 "
                                  "--clear-groups sh -c 'echo u > %s/pub/mine/u'", data, data, data) == 0);
        backup_warns_of(h, "app", data, dest, "pub/mine");
        snprintf(stored, sizeof(stored), "%s/data%s/pub/mine/u", dest, data);
        CHECK(access(stored, F_OK) < 0);
        snprintf(stored, sizeof(stored), "%s/data%s/a", dest, data);
        CHECK(access(stored, F_OK) == 0);
        snprintf(stored, sizeof(stored), "%s/data%s/t", dest, sub);
        CHECK(access(stored, F_OK) == 0);
        /* With --provider btrfs, an ext4 mounted below is followed too, shadowed by the provider
         * vssd chooses for it (btrfs cannot). */
        char *loop = harness_loop_fs(h, "mkfs.ext4 -q", "16M"), dest3[PATH_MAX + 8];
        snprintf(dest3, sizeof(dest3), "%s/backup3", harness_dir(h));
        CHECK(loop && harness_sh(h, NULL, "mkdir '%s/ext' && mount --bind '%s' '%s/ext' && echo e > '%s/ext/e'", data, loop,
                                 data, data) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --provider btrfs --quiet", dest3) == 0);
        snprintf(stored, sizeof(stored), "%s/data%s/ext/e", dest3, data);
        CHECK(access(stored, F_OK) == 0);
        CHECK(harness_sh(h, NULL, "umount '%s/ext'", data) == 0);
        /* Back in place: the subvolume's file too. */
        _cleanup_free_ char *t = NULL;
        CHECK(harness_sh(h, NULL, "echo changed > '%s/t'", sub) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet", dest) == 0);
        CHECK(harness_sh(h, &t, "cat '%s/t'", sub) == 0 && t && streq(t, "t\n"));
        harness_free(h);
}

/* vssbackup exec --for a directory with a writer's component on a mount below it: COMMAND sees
 * the mount's own shadow copy in place in {}'s tree, and over its original path with
 * --at-original (the outer shadow copy mounted first, not over it). */
static void test_exec_nested_mount(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char db[PATH_MAX + 8];
        nested_mount_make(h, data, db);
        _cleanup_free_ char *got = NULL, *orig = NULL, *paths = NULL;
        CHECK(harness_sh(h, &got, "vssbackup exec --quiet --for %s -- sh -c 'cat {}/db/app.db'", data) == 0);
        CHECK_STR(got, "rows\n");
        /* Over the original path, the copy is read (read-only): not the live mount, not an empty directory. */
        CHECK(harness_sh(h, &orig, "vssbackup exec --quiet --at-original --for %s -- sh -c "
                                   "'cat %s/app.db; ! touch %s/app.db 2>/dev/null && echo read-only'", data, db, db) == 0);
        CHECK_STR(orig, "rows\nread-only\n");
        /* Two shadow copies, the mount's after the directory's; the host's mounts are untouched. */
        CHECK(harness_sh(h, &paths, "vssbackup exec --quiet --for %s -- sh -c 'echo \"$VSS_ORIGINAL_PATHS\"'", data) == 0);
        char want[3 * PATH_MAX];
        snprintf(want, sizeof(want), "%s\n%s\n", data, db);
        CHECK_STR(paths, want);
        /* A filesystem below the --for path that the set does not have: COMMAND sees an empty
         * directory there, and is told so. */
        char cache[PATH_MAX + 8], want_w[3 * PATH_MAX];
        _cleanup_free_ char *warned = NULL;
        other_fs_make(h, data, cache);
        CHECK(harness_sh(h, &warned, "vssbackup exec --quiet --for %s -- sh -c 'test ! -e {}/cache/t' 2>&1", data) == 0);
        snprintf(want_w, sizeof(want_w), "vssbackup: warning: %s: the files of the filesystem mounted there not kept: "
                                         "COMMAND sees this mount point as an empty directory", cache);
        CHECK(warned && strstr(warned, want_w) != NULL);
        CHECK(harness_sh(h, NULL, "umount '%s'", cache) == 0);
        CHECK(harness_sh(h, NULL, "echo live > '%s/app.db' && umount '%s'", db, db) == 0);
        CHECK(harness_sh(h, NULL, "! grep -q ' %s/\\.' /proc/self/mountinfo", data) == 0);
        harness_free(h);
}

/* vssbackup exec --for a btrfs directory holding a nested subvolume (no mount point; one more
 * nested in it): COMMAND sees an empty directory there and is told so, once; named with --for
 * too, the subvolume's own shadow copy is in place and nothing is said. */
static void test_exec_nested_subvolume(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "256M");
        char data[PATH_MAX], sub[PATH_MAX + 8];
        snprintf(data, sizeof(data), "%s/data", mnt);
        snprintf(sub, sizeof(sub), "%s/sub", data);
        CHECK(mkdir(data, 0755) == 0);
        CHECK(harness_sh(h, NULL, "echo a > '%s/a' && btrfs -q subvolume create '%s' && echo t > '%s/t' && "
                                  "btrfs -q subvolume create '%s/deeper'", data, sub, sub, sub) == 0);
        int st;
        json_object *out = harness_json(h, &st,
                                        "vssbackup exec --json --json-fd 3 --for %s -- sh -c 'test -e {}/a && test ! -e {}/sub/t' "
                                        "3>&1 >/dev/null 2>&1", data);
        CHECK(st == 0);
        json_object *w = out ? json_object_object_get(out, "warnings") : NULL;
        CHECK(w && json_object_array_length(w) == 1);
        CHECK_STR(w ? json_str(json_object_array_get_idx(w, 0), "path") : NULL, sub);
        json_object_put(out);
        _cleanup_free_ char *said = NULL, *got = NULL;
        CHECK(harness_sh(h, &said, "vssbackup exec --quiet --for %s -- true 2>&1", data) == 0);
        char want[3 * PATH_MAX];
        snprintf(want, sizeof(want), "vssbackup: warning: %s: the files of the filesystem there (a btrfs subvolume) not "
                                     "kept: COMMAND sees this subvolume as an empty directory", sub);
        CHECK(said && strstr(said, want) != NULL);
        CHECK(harness_sh(h, &got, "vssbackup exec --quiet --for %s --for %s -- cat {}/sub/t", data, sub) == 0);
        CHECK_STR(got, "t\n");
        harness_free(h);
}

/* A writer whose component (data) gets a file made after the cut (label, to go to data/label), in
 * a child, as vss-writer-postgres hands over backup_label. */
static const char *late_data, *late_file;
static bool late_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        return vss_metadata_add_component(md, "", "db", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "db", late_data, "*", true) >= 0;
}
static bool late_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        char dest[PATH_MAX + 8];
        snprintf(dest, sizeof(dest), "%s/label", late_data);
        return vss_writer_add_backup_files(w, "", "db", late_file, "*", false, dest) >= 0;
}

/* vssbackup exec refuses a component with files its writer made after the cut (COMMAND would
 * copy the data without them) and does not run COMMAND; vssbackup backup stores them. */
static void test_exec_writer_files(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char file[PATH_MAX], marker[PATH_MAX], dest[PATH_MAX], stored[2 * PATH_MAX];
        snprintf(file, sizeof(file), "%s/label-made-late", harness_dir(h));
        snprintf(marker, sizeof(marker), "%s/command-ran", harness_dir(h));
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "echo 'START WAL LOCATION' > '%s'", file) == 0);
        late_data = data;
        late_file = file;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                vss_writer_options o = { .name = "late" };
                vss_writer_callbacks cb = { .identify = late_identify, .post_snapshot = late_post_snapshot };
                vss_writer *w = NULL;
                _exit(vss_writer_new(&o, &cb, NULL, &w) < 0 || vss_writer_main(w, harness_socket(h), "late") < 0);
        }
        for (int i = 0; i < 2000 && harness_sh(h, NULL, "vssadmin list writers | grep -q \"^Writer name: 'late'\"") != 0; i++)
                usleep(10 * 1000);
        _cleanup_free_ char *err = NULL;
        CHECK(harness_sh(h, &err, "vssbackup exec --for %s -- touch '%s' 2>&1", data, marker) != 0);
        CHECK(err && strstr(err, "made after the cut") && strstr(err, file));
        CHECK(access(marker, F_OK) < 0);
        CHECK(harness_sh(h, NULL, "vssbackup backup --quiet --to %s --for %s", dest, data) == 0);
        snprintf(stored, sizeof(stored), "%s/data%s/label", dest, data);
        CHECK(access(stored, F_OK) == 0);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        harness_free(h);
}

/* A writer of one component naming an exact file (dir/state.db, not recursive), in a child. */
static const char *exact_dir;
static bool exact_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        return vss_metadata_add_component(md, "", "state", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "state", exact_dir, "state.db", false) >= 0;
}

/* Until vssd lists the writer named name (listed), or no longer does (it was stopped). */
static void wait_listed(Harness *h, const char *name, bool listed) {
        for (int i = 0; i < 2000 &&
                        (harness_sh(h, NULL, "vssadmin list writers | grep -q \"^Writer name: '%s'\"", name) == 0) != listed;
             i++)
                usleep(10 * 1000);
}

/* A writer of this process's (forked) named name, answering Identify with identify; returned once
 * vssd lists it. */
static pid_t in_process_writer(Harness *h, const char *name, vss_writer_identify_fn identify) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                vss_writer_options o = { .name = name };
                vss_writer_callbacks cb = { .identify = identify };
                vss_writer *w = NULL;
                _exit(vss_writer_new(&o, &cb, NULL, &w) < 0 || vss_writer_main(w, harness_socket(h), name) < 0);
        }
        wait_listed(h, name, true);
        return pid;
}

static pid_t exact_writer(Harness *h, const char *dir) {
        exact_dir = dir;
        return in_process_writer(h, "exact", exact_identify);
}

/* cmd, a shell command whose process opens a file as its fd 3 and sleeps, started in the
 * background: its pid once it holds the file. */
static pid_t holding(Harness *h, const char *cmd) {
        _cleanup_free_ char *holder = NULL;
        CHECK(harness_sh(h, &holder, "%s >/dev/null 2>&1 & echo $!", cmd) == 0);
        pid_t app = holder ? (pid_t) atol(holder) : 0;
        CHECK(app > 0);
        char fd3[64];
        snprintf(fd3, sizeof(fd3), "/proc/%d/fd/3", (int) app);
        for (int i = 0; i < 3000 && app > 0 && access(fd3, F_OK) < 0; i++)
                usleep(10 * 1000);
        return app;
}

/* A process holding path open (until it does), its pid. */
static pid_t hold_open(Harness *h, const char *path) {
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "(exec 3<'%s'; exec sleep 600)", path);
        return holding(h, cmd);
}

/* Kills hold_open()'s process and waits until it lets go (a zombie holds nothing). */
static void hold_release(pid_t app) {
        char fd3[64];
        if (app <= 0)
                return;
        snprintf(fd3, sizeof(fd3), "/proc/%d/fd/3", (int) app);
        kill(app, SIGKILL);
        for (int i = 0; i < 3000 && access(fd3, F_OK) == 0; i++)
                usleep(10 * 1000);
}

/* A component whose writer is not running cannot be selected for restore (VSS:
 * VSS_E_OBJECT_NOT_FOUND); vssbackup restore then puts its files back without the writer, and
 * says so, but not in place while a process has one of them open (the application, running
 * without its writer, would go on over the files restored under it): refused, nothing written. */
static void test_restore_writer_not_running(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char dir[PATH_MAX + 8], db[PATH_MAX + 32], dest[PATH_MAX], docpath[PATH_MAX + 64];
        snprintf(dir, sizeof(dir), "%s/state", data);
        CHECK(mkdir(dir, 0755) == 0);
        snprintf(db, sizeof(db), "%s/state.db", dir);
        CHECK(harness_sh(h, NULL, "echo v1 > '%s'", db) == 0);
        pid_t w = exact_writer(h, dir);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", dest) == 0);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        wait_listed(h, "exact", false);
        CHECK(harness_sh(h, NULL, "echo v2 > '%s'", db) == 0);

        _cleanup_free_ char *text = NULL;
        snprintf(docpath, sizeof(docpath), "cat %s/openvss/backup-components.json", dest);
        CHECK(harness_sh(h, &text, "%s", docpath) == 0);
        vss_backup_document *doc = NULL;
        CHECK_HR(vss_backup_document_parse(text, &doc, NULL, 0), 0);
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_restore(b, text), 0);
        if (doc && doc->n_components == 1) {
                const vss_bc_component *c = &doc->components[0];
                CHECK_HR(vss_backup_set_selected_for_restore(b, &c->instance_id, &c->writer_id, c->logical_path, c->name, true),
                         VSS_E_OBJECT_NOT_FOUND);
                CHECK(strstr(vss_backup_errmsg(b), "not running") != NULL);
        } else
                CHECK(!"one component in the backup");
        vss_backup_release(b);
        vss_backup_document_free(doc);

        _cleanup_free_ char *said = NULL, *got = NULL;
        CHECK(harness_sh(h, &said, "vssbackup restore --from %s 2>&1", dest) == 0);
        CHECK(said && strstr(said, "not running") && strstr(said, "restored without it"));
        CHECK(harness_sh(h, &got, "cat '%s'", db) == 0 && got && streq(got, "v1\n"));

        _cleanup_free_ char *refused = NULL, *kept = NULL, *again = NULL;
        CHECK(harness_sh(h, NULL, "echo v3 > '%s'", db) == 0);
        pid_t app = hold_open(h, db);
        CHECK(harness_sh(h, &refused, "vssbackup restore --from %s 2>&1", dest) != 0);
        CHECK(refused && strstr(refused, "in use by process") && strstr(refused, db));
        if (refused && !strstr(refused, "in use by process"))
                fprintf(stderr, "vssbackup said: %s", refused);
        CHECK(harness_sh(h, &kept, "cat '%s'", db) == 0 && kept && streq(kept, "v3\n"));
        hold_release(app);
        /* Held through another view of the tree (a container's bind mount, in a mount namespace
         * of its own): found by the file's identity, not its name there. */
        _cleanup_free_ char *refused2 = NULL;
        char cmd[3 * PATH_MAX + 128];
        CHECK(harness_sh(h, NULL, "mkdir -p %s/view && echo v4 > '%s'", harness_dir(h), db) == 0);
        snprintf(cmd, sizeof(cmd), "unshare -m --propagation private sh -c \"mount --bind '%s' '%s/view' && "
                 "exec 3<'%s/view/state/state.db' && exec sleep 600\"", data, harness_dir(h), harness_dir(h));
        pid_t app2 = holding(h, cmd);
        CHECK(harness_sh(h, &refused2, "vssbackup restore --from %s 2>&1", dest) != 0);
        CHECK(refused2 && strstr(refused2, "in use by process"));
        hold_release(app2);
        /* What is not the component's (its group names state.db alone, not recursively) blocks
         * nothing: a process working in the directory with another file of it open. */
        snprintf(cmd, sizeof(cmd), "cd '%s' && echo o > other && (exec 3<other; exec sleep 600)", dir);
        pid_t app3 = holding(h, cmd);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet", dest) == 0);
        CHECK(harness_sh(h, &again, "cat '%s'", db) == 0 && again && streq(again, "v1\n"));
        hold_release(app3);
        harness_free(h);
}

/* restore-if-not-there is about the whole component (VSS): with any of its files on disk, none is
 * restored (not the ones missing beside the ones kept: a mix of two times); with none on disk,
 * all are. */
static void test_restore_if_not_there(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 8], dest[PATH_MAX];
        snprintf(comp, sizeof(comp), "c=%s", data);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -p %s/sub && echo old > %s/a.txt && echo b > %s/sub/b.txt", data, data, data) == 0);
        const char *const args[] = { "--component", comp, "--restore-method", "restore-if-not-there", NULL };
        harness_writer(h, "w", args);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", dest) == 0);
        CHECK(harness_sh(h, NULL, "echo new > %s/a.txt && rm %s/sub/b.txt", data, data) == 0);
        _cleanup_free_ char *said = NULL, *a = NULL, *a2 = NULL;
        CHECK(harness_sh(h, &said, "vssbackup restore --from %s 2>&1", dest) == 0);
        CHECK(harness_sh(h, &a, "cat %s/a.txt", data) == 0 && a && streq(a, "new\n"));
        CHECK(harness_sh(h, NULL, "test ! -e %s/sub/b.txt", data) == 0);
        CHECK(said && strstr(said, "restore-if-not-there"));
        /* A dotfile of the component is one of its files too (the store matches names so). */
        CHECK(harness_sh(h, NULL, "rm -r %s/* && touch %s/.lock && vssbackup restore --from %s --quiet && test ! -e %s/a.txt",
                         data, data, dest, data) == 0);
        CHECK(harness_sh(h, NULL, "rm -r %s/a.txt %s/sub %s/*.txt %s/.lock 2>/dev/null; true", data, data, data, data) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet", dest) == 0);
        CHECK(harness_sh(h, &a2, "cat %s/a.txt %s/sub/b.txt", data, data) == 0 && a2 && strstr(a2, "old\nb\n"));
        harness_free(h);
}

/* restore-if-can-replace is about the whole component too (VSS): a file of it that cannot be
 * overwritten (immutable, or open in a process) keeps all of it from being restored, and the
 * restore fails saying which; once nothing holds them, all are replaced. */
static void test_restore_if_can_replace(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char data[PATH_MAX], comp[PATH_MAX + 8], dest[PATH_MAX];
        snprintf(data, sizeof(data), "%s/data", mnt);
        snprintf(comp, sizeof(comp), "c=%s", data);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -p %s && echo old > %s/a.txt && echo old > %s/b.txt", data, data, data) == 0);
        harness_writer(h, "w", (const char *const[]) { "--component", comp, "--restore-method", "restore-if-can-replace",
                                                        NULL });
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", dest) == 0);
        CHECK(harness_sh(h, NULL, "echo new > %s/a.txt && echo new > %s/b.txt && chattr +i %s/b.txt", data, data, data) == 0);
        _cleanup_free_ char *said = NULL, *got = NULL, *said2 = NULL, *got2 = NULL;
        CHECK(harness_sh(h, &said, "vssbackup restore --from %s 2>&1", dest) != 0);
        CHECK(said && strstr(said, "b.txt is immutable (restore-if-can-replace)"));
        CHECK(harness_sh(h, &got, "cat %s/a.txt %s/b.txt", data, data) == 0 && got && streq(got, "new\nnew\n"));
        CHECK(harness_sh(h, NULL, "chattr -i %s/b.txt", data) == 0);
        /* Open in a process: the same. */
        char a_txt[PATH_MAX + 8];
        snprintf(a_txt, sizeof(a_txt), "%s/a.txt", data);
        pid_t app = hold_open(h, a_txt);
        CHECK(harness_sh(h, &said2, "vssbackup restore --from %s 2>&1", dest) != 0);
        CHECK(said2 && strstr(said2, "in use by process") && strstr(said2, "restore-if-can-replace"));
        hold_release(app);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet", dest) == 0);
        CHECK(harness_sh(h, &got2, "cat %s/a.txt %s/b.txt", data, data) == 0 && got2 && streq(got2, "old\nold\n"));
        harness_free(h);
}

/* A backup that holds none of a component's exact files (the file did not exist then) restores in
 * place without removing the file that exists now; one that holds it removes what it does not
 * hold beside it. */
static void test_restore_exact_absent(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char dir[PATH_MAX + 8], db[PATH_MAX + 32], dest[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/state", data);
        CHECK(mkdir(dir, 0755) == 0);
        snprintf(db, sizeof(db), "%s/state.db", dir);
        pid_t w = exact_writer(h, dir);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", dest) == 0);
        CHECK(harness_sh(h, NULL, "echo live > '%s'", db) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet", dest) == 0);
        _cleanup_free_ char *got = NULL;
        CHECK(harness_sh(h, &got, "cat '%s'", db) == 0 && got && streq(got, "live\n"));
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        harness_free(h);
}

/* A component the base did not back up is stored whole in the incremental, so its restore from
 * the chain has its unchanged files too. */
static void test_incremental_new_component(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char db[PATH_MAX + 8], c1[PATH_MAX + 16], c2[PATH_MAX + 16], full[PATH_MAX], inc[PATH_MAX];
        snprintf(db, sizeof(db), "%s/db", data);
        CHECK(mkdir(db, 0755) == 0 && harness_sh(h, NULL, "echo rows > '%s/t'", db) == 0);
        snprintf(c1, sizeof(c1), "fs=%s", data);
        snprintf(c2, sizeof(c2), "db=%s", db);
        const char *const a1[] = { "--component", c1, NULL }, *const a2[] = { "--component", c2, NULL };
        harness_writer(h, "fs", a1);
        snprintf(full, sizeof(full), "%s/full", harness_dir(h));
        snprintf(inc, sizeof(inc), "%s/inc", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", full) == 0);
        harness_writer(h, "db", a2);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --type incremental --base %s --quiet", inc, full) == 0);
        CHECK(harness_sh(h, NULL, "rm '%s/t'", db) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --component db:db --quiet", inc) == 0);
        _cleanup_free_ char *got = NULL;
        CHECK(harness_sh(h, &got, "cat '%s/t'", db) == 0 && got && streq(got, "rows\n"));
        harness_free(h);
}

/* vssbackup-restore-stop-start-in-use: a stop-restore-start writer whose PreRestore lets its
 * application run (the service is the admin's to stop): restored in place while a process holds
 * one of its files, the component is refused, naming the process, and nothing is written; once
 * it is stopped, restored. */
static void test_restore_stop_start_in_use(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 16], bk[PATH_MAX], db[PATH_MAX + 8];
        snprintf(db, sizeof(db), "%s/db", data);
        CHECK(harness_sh(h, NULL, "echo v1 > '%s'", db) == 0);
        snprintf(comp, sizeof(comp), "db=%s", data);
        harness_writer(h, "app", (const char *const[]) { "--component", comp, "--restore-method", "stop-restore-start", NULL });
        snprintf(bk, sizeof(bk), "%s/bk", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", bk) == 0);
        CHECK(harness_sh(h, NULL, "echo v2 > '%s'", db) == 0);
        pid_t app = hold_open(h, db);
        _cleanup_free_ char *refused = NULL, *kept = NULL, *got = NULL;
        CHECK(harness_sh(h, &refused, "vssbackup restore --from %s 2>&1", bk) != 0);
        CHECK(refused && strstr(refused, "in use by process") && strstr(refused, "stop-restore-start"));
        if (refused && !strstr(refused, "in use by process"))
                fprintf(stderr, "vssbackup said: %s", refused);
        CHECK(harness_sh(h, &kept, "cat '%s'", db) == 0 && kept && streq(kept, "v2\n"));
        hold_release(app);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet", bk) == 0);
        CHECK(harness_sh(h, &got, "cat '%s'", db) == 0 && got && streq(got, "v1\n"));
        harness_free(h);
}

/* vssbackup-restore-vssd-gone: vssd is gone while the writers handle PostRestore: the files were
 * put back, the restore fails, and it says not to start what was restored (a writer may not have
 * finished it). */
static void test_restore_vssd_gone(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 16], bk[PATH_MAX], to[PATH_MAX], out[PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        harness_writer(h, "app", (const char *const[]) { "--component", comp, NULL });
        snprintf(bk, sizeof(bk), "%s/bk", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        snprintf(out, sizeof(out), "%s/restore.out", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", bk) == 0);
        harness_set(h, "app", "post-restore", "wait");
        _cleanup_free_ char *pid_text = NULL;
        CHECK(harness_sh(h, &pid_text, "(exec vssbackup restore --from %s --to %s >%s 2>&1) & echo $!", bk, to, out) == 0);
        pid_t req = pid_text ? (pid_t) atol(pid_text) : 0;
        CHECK(req > 0 && harness_wait_started(h, "app", "post-restore"));
        harness_kill_vssd(h);
        CHECK(harness_sh(h, NULL, "while kill -0 %d 2>/dev/null; do sleep 0.01; done", (int) req) == 0);
        harness_go(h, "app", "post-restore");
        _cleanup_free_ char *said = NULL;
        CHECK(harness_sh(h, &said, "cat %s", out) == 0);
        CHECK(said && strstr(said, "PostRestore did not complete") && strstr(said, "do not start what was restored"));
        if (said && !strstr(said, "PostRestore did not complete"))
                fprintf(stderr, "vssbackup said: %s", said);
        CHECK(harness_sh(h, NULL, "test -f '%s%s/a.txt'", to, data) == 0);
        harness_free(h);
}

/* vssbackup-incremental-renamed-dir: a directory renamed since the base keeps its files' times,
 * but the base holds them at the old path only: the incremental and the differential store them
 * at the new one, and their chains restore them there. */
static void test_incremental_renamed_dir(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 16], full[PATH_MAX], bk[PATH_MAX], to[PATH_MAX];
        CHECK(harness_sh(h, NULL, "mkdir -p '%s/uploads/2026-11' && echo invoice > '%s/uploads/2026-11/invoice.pdf'", data,
                         data) == 0);
        snprintf(comp, sizeof(comp), "web=%s", data);
        harness_writer(h, "web", (const char *const[]) { "--component", comp, NULL });
        snprintf(full, sizeof(full), "%s/full", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", full) == 0);
        CHECK(harness_sh(h, NULL, "mv '%s/uploads/2026-11' '%s/uploads/archive-2026-11'", data, data) == 0);
        const char *const types[] = { "incremental", "differential" };
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                snprintf(bk, sizeof(bk), "%s/%s", harness_dir(h), types[i]);
                snprintf(to, sizeof(to), "%s/to-%s", harness_dir(h), types[i]);
                CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --type %s --base %s --quiet", bk, types[i], full) == 0);
                CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --to %s --quiet", bk, to) == 0);
                CHECK(harness_sh(h, NULL, "grep -q invoice '%s%s/uploads/archive-2026-11/invoice.pdf' && "
                                          "test ! -e '%s%s/uploads/2026-11/invoice.pdf'", to, data, to, data) == 0);
        }
        harness_free(h);
}

/* Writes the writer's backup stamp at PostSnapshot and records the previous stamps it was given. */
static void stamp_hook(Harness *h) {
        harness_hook(h, "50-stamp",
                     "#!/bin/sh\n"
                     "d=\"$HARNESS_DIR\"\n"
                     "[ \"$1\" = prepare-backup ] && echo \"$VSS_PREVIOUS_BACKUP_STAMPS\" >> \"$d/previous-stamps\"\n"
                     "if [ \"$1\" = post-snapshot ]; then\n"
                     "  n=$(cat \"$d/generation\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$d/generation\"\n"
                     "  echo \"backup-stamp db gen-$n\" >> \"$VSS_CONTROL\"\n"
                     "fi\n"
                     "exit 0\n");
}

static void test_incremental(void) {
        Harness *h = harness_new(NULL);
        char *data = make_rich_tree(h, "data");
        char comp[PATH_MAX + 16], full[PATH_MAX], inc[PATH_MAX], diff[PATH_MAX], alt[PATH_MAX], p[PATH_MAX];
        char altdata[2 * PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        stamp_hook(h);
        harness_writer(h, "db", args);
        snprintf(full, sizeof(full), "%s/full", harness_dir(h));
        snprintf(inc, sizeof(inc), "%s/inc.tar.gz", harness_dir(h));
        snprintf(diff, sizeof(diff), "%s/diff", harness_dir(h));

        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json%s", full, "");
        CHECK(st == 0);
        json_object_put(out);
        /* Changes: one file rewritten, one deleted, one added. */
        write_file(data, "plain.txt", "changed for the incremental\n", 0644);
        snprintf(p, sizeof(p), "%s/empty", data);
        CHECK(unlink(p) == 0);
        write_file(data, "new-file", "added\n", 0644);
        _cleanup_free_ char *at_inc = tree_text(data);
        out = harness_json(h, &st, "vssbackup backup --type incremental --base %s --to %s --json", full, inc);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "type"), "incremental");
        json_object_put(out);
        /* More changes, then a differential against the full backup. */
        write_file(data, "new-file", "changed again\n", 0644);
        snprintf(p, sizeof(p), "%s/sub/deep.db", data);
        CHECK(unlink(p) == 0);
        _cleanup_free_ char *at_diff = tree_text(data);
        out = harness_json(h, &st, "vssbackup backup --type differential --base %s --to %s --json", full, diff);
        CHECK(st == 0);
        json_object_put(out);
        /* A differential must be based on a full backup. */
        CHECK(harness_sh(h, NULL, "vssbackup backup --type differential --base %s --to %s/bad 2>/dev/null", inc,
                         harness_dir(h)) == 1);

        /* The writer got its own stamps back as previous stamps: gen-1 (the full) each time. */
        snprintf(p, sizeof(p), "%s/previous-stamps", harness_dir(h));
        _cleanup_free_ char *stamps = NULL;
        CHECK(harness_sh(h, &stamps, "cat %s", p) == 0);
        CHECK_STR(stamps, "\ndb=gen-1\ndb=gen-1\n");
        /* The differential stores only what changed since the full: not the untouched tool. */
        snprintf(p, sizeof(p), "%s/data%s/tool", diff, data);
        CHECK(access(p, F_OK) < 0);
        snprintf(p, sizeof(p), "%s/data%s/new-file", diff, data);
        CHECK(access(p, F_OK) == 0);

        /* Each restores to the state it was taken in, the chain followed from the backup named. */
        snprintf(alt, sizeof(alt), "%s/alt-inc", harness_dir(h));
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", inc, alt);
        CHECK(st == 0);
        json_object_put(out);
        snprintf(altdata, sizeof(altdata), "%s%s", alt, data);
        _cleanup_free_ char *got_inc = tree_text(altdata);
        check_trees_equal(at_inc, got_inc, "incremental restored");
        snprintf(alt, sizeof(alt), "%s/alt-diff", harness_dir(h));
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", diff, alt);
        CHECK(st == 0);
        json_object_put(out);
        snprintf(altdata, sizeof(altdata), "%s%s", alt, data);
        _cleanup_free_ char *got_diff = tree_text(altdata);
        check_trees_equal(at_diff, got_diff, "differential restored");
        harness_free(h);
}

static void test_bad_backups(void) {
        Harness *h = harness_new(NULL);
        char *data = make_rich_tree(h, "data");
        char comp[PATH_MAX + 16], dest[PATH_MAX], tar[PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        snprintf(tar, sizeof(tar), "%s/backup.tar", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s >/dev/null && vssbackup backup --to %s >/dev/null", dest,
                         tar) == 0);
        _cleanup_free_ char *before = tree_text(data);
        char *err = NULL;

        /* A document with a bad field: refused, naming it, nothing restored. */
        CHECK(harness_sh(h, NULL, "sed -i 's/\"restore_target\":[0-9]*/\"restore_target\":99/' %s/openvss/backup-components.json",
                         dest) == 0);
        CHECK(harness_sh(h, &err, "vssbackup restore --from %s 2>&1", dest) == 1);
        CHECK(err && strstr(err, "components[0].restore_target"));
        free(err);
        /* Oversized. */
        CHECK(harness_sh(h, NULL, "head -c 17000000 /dev/zero | tr '\\0' ' ' >> %s/openvss/backup-components.json",
                         dest) == 0);
        CHECK(harness_sh(h, &err, "vssbackup restore --from %s 2>&1", dest) == 1);
        CHECK(err && strstr(err, "larger than"));
        free(err);
        /* A truncated archive. */
        CHECK(harness_sh(h, NULL, "truncate -s 3000 %s", tar) == 0);
        CHECK(harness_sh(h, &err, "vssbackup restore --from %s 2>&1", tar) == 1);
        CHECK(err && strstr(err, "vssbackup: restore failed"));
        free(err);
        /* Garbage. */
        CHECK(harness_sh(h, NULL, "head -c 100000 /dev/urandom > %s", tar) == 0);
        CHECK(harness_sh(h, &err, "vssbackup restore --from %s 2>&1", tar) == 1);
        CHECK(err && strstr(err, "vssbackup: restore failed"));
        free(err);
        _cleanup_free_ char *after = tree_text(data);
        check_trees_equal(before, after, "after refused restores");

        /* Usage errors: exit 2, no session opened. */
        CHECK(harness_sh(h, NULL, "vssbackup 2>/dev/null") == 2);
        CHECK(harness_sh(h, NULL, "vssbackup backup 2>/dev/null") == 2);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s/x --component nocolon 2>/dev/null", harness_dir(h)) == 2);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s/x --type weekly 2>/dev/null", harness_dir(h)) == 2);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s/x --type incremental 2>/dev/null", harness_dir(h)) == 2);
        CHECK(harness_sh(h, NULL, "vssbackup restore --to /tmp 2>/dev/null") == 2);
        CHECK(harness_sh(h, NULL, "vssbackup exec --for relative -- true 2>/dev/null") == 2);
        CHECK(harness_sh(h, NULL, "vssbackup frobnicate 2>/dev/null") == 2);
        /* A non-empty destination or an existing archive is refused. */
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s 2>/dev/null", dest) == 1);
        /* A component nobody has. */
        CHECK(harness_sh(h, &err, "vssbackup backup --to %s/y --component db:nope 2>&1", harness_dir(h)) == 1);
        CHECK(err && strstr(err, "db:nope"));
        free(err);
        harness_free(h);
}

/* A manifest (openvss/vssbackup.json) is read through the strict JSON layer: one with a key given
 * twice, or nested deeper than it allows, is refused with the reason, from a directory and from
 * an archive, before any writer is asked and without a file written. */
static void test_bad_manifest(void) {
        static const struct {
                const char *sed; /* what makes the manifest bad */
                const char *why; /* in the message */
        } bad[] = {
                { "s/^{/{\"type\":\"copy\",/", "repeated key" },
                { "s/^{/{\"version\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]],/", "nesting too deep" },
        };
        Harness *h = harness_new(NULL);
        char *data = make_rich_tree(h, "data");
        char comp[PATH_MAX + 16], dest[PATH_MAX], tar[PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        snprintf(tar, sizeof(tar), "%s/backup.tar", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s >/dev/null", dest) == 0);
        _cleanup_free_ char *before = tree_text(data);
        /* Any restore that got through would undo this. */
        change_tree(data);
        _cleanup_free_ char *changed = tree_text(data);

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *err = NULL;
                CHECK(harness_sh(h, NULL, "cp %s/openvss/vssbackup.json %s/good.json && sed -i '%s' %s/openvss/vssbackup.json",
                                 dest, harness_dir(h), bad[i].sed, dest) == 0);
                CHECK(harness_sh(h, &err, "vssbackup restore --from %s 2>&1", dest) == 1);
                CHECK(err && strstr(err, "missing or bad vssbackup.json") && strstr(err, bad[i].why));
                free(err);
                /* The same backup as an archive. */
                CHECK(harness_sh(h, NULL, "rm -f %s && cd %s && tar --format=pax -cf %s openvss/* data", tar, dest, tar) == 0);
                CHECK(harness_sh(h, &err, "vssbackup restore --from %s 2>&1", tar) == 1);
                CHECK(err && strstr(err, "missing or bad vssbackup.json") && strstr(err, bad[i].why));
                free(err);
                CHECK(harness_sh(h, NULL, "mv %s/good.json %s/openvss/vssbackup.json", harness_dir(h), dest) == 0);
        }
        _cleanup_free_ char *after = tree_text(data);
        check_trees_equal(changed, after, "after refused restores");
        /* The manifest was all that stood in the way. */
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s >/dev/null", dest) == 0);
        _cleanup_free_ char *restored = tree_text(data);
        check_trees_equal(before, restored, "restored with the good manifest");
        harness_free(h);
}

/* An application that writes two files as one transaction, and a writer that quiesces it: the
 * freeze hook asks for a pause and waits until the application stands between transactions. */
static const char app_script[] =
        "#!/bin/sh\n"
        "d=\"$1\"; i=0\n"
        "while [ ! -e \"$d/stop\" ]; do\n"
        "  if [ -e \"$d/pause\" ]; then touch \"$d/paused\"; while [ -e \"$d/pause\" ]; do sleep 0.01; done; rm -f \"$d/paused\"; fi\n"
        "  i=$((i+1)); echo $i > \"$d/data/a\"; echo $i > \"$d/data/b\"\n"
        "done\n";
static const char quiesce_hook[] =
        "#!/bin/sh\n"
        "d=\"$APP_DIR\"\n"
        "case \"$1\" in\n"
        "freeze) touch \"$d/pause\"; while [ ! -e \"$d/paused\" ] && [ ! -e \"$d/stop\" ]; do sleep 0.01; done;;\n"
        "thaw|abort) rm -f \"$d/pause\";;\n"
        "esac\n"
        "exit 0\n";

static void test_exec(void) {
        Harness *h = harness_new(NULL);
        char app[PATH_MAX], hooks[PATH_MAX], p[PATH_MAX], env[PATH_MAX + 16], out[PATH_MAX];
        snprintf(app, sizeof(app), "%s/app", harness_dir(h));
        snprintf(hooks, sizeof(hooks), "%s/app-hooks", harness_dir(h));
        snprintf(p, sizeof(p), "%s/data", app);
        CHECK(mkdir(app, 0755) == 0 && mkdir(hooks, 0755) == 0 && mkdir(p, 0755) == 0);
        snprintf(p, sizeof(p), "%s/app.sh", app);
        FILE *f = fopen(p, "we");
        CHECK(f && fputs(app_script, f) >= 0 && fclose(f) == 0);
        snprintf(p, sizeof(p), "%s/10-quiesce", hooks);
        f = fopen(p, "we");
        CHECK(f && fputs(quiesce_hook, f) >= 0 && fclose(f) == 0);
        CHECK(chmod(p, 0755) == 0);
        snprintf(env, sizeof(env), "APP_DIR=%s", app);
        CHECK(putenv(env) == 0);
        char comp[PATH_MAX + 16];
        snprintf(comp, sizeof(comp), "app=%s/data", app);
        const char *const args[] = { "--hooks", hooks, "--component", comp, NULL };
        harness_writer(h, "app", args);

        /* The application writes all along; every copy must hold one whole transaction. */
        pid_t pid = fork();
        if (pid == 0) {
                char script[PATH_MAX];
                snprintf(script, sizeof(script), "%s/app.sh", app);
                execl("/bin/sh", "sh", script, app, (char *) NULL);
                _exit(127);
        }
        for (int round = 0; round < 3; round++) {
                snprintf(out, sizeof(out), "%s/copy%d", harness_dir(h), round);
                char *o = NULL;
                int st = harness_sh(h, &o, "vssbackup exec --for %s/data -- sh -c 'mkdir %s && cp -a {}/. %s/ && "
                                           "test \"$VSS_SHADOW_PATH\" != %s/data && echo \"$VSS_ORIGINAL_PATHS\"'",
                                    app, out, out, app);
                CHECK(st == 0);
                char want[PATH_MAX + 8];
                snprintf(want, sizeof(want), "%s/data\n", app);
                CHECK_STR(o, want);
                free(o);
                char *a = NULL, *b = NULL;
                CHECK(harness_sh(h, &a, "cat %s/a", out) == 0 && harness_sh(h, &b, "cat %s/b", out) == 0);
                CHECK(a && b && *a && streq(a, b));
                free(a);
                free(b);
        }
        snprintf(p, sizeof(p), "%s/stop", app);
        close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        waitpid(pid, NULL, 0);
        /* The command's exit status is vssbackup's; its shadow copies are gone afterwards. */
        CHECK(harness_sh(h, NULL, "vssbackup exec --for %s/data -- sh -c 'exit 7' 2>/dev/null", app) == 7);
        CHECK(harness_sh(h, NULL, "vssbackup exec --for %s/data -- /nonexistent/tool 2>/dev/null", app) == 127);
        CHECK(harness_count_shadow_files(h) == 0);
        char *shadows = NULL;
        CHECK(harness_sh(h, &shadows, "vssadmin list shadows --json") == 0);
        CHECK(shadows && !strstr(shadows, "shadow_id"));
        free(shadows);
        harness_free(h);
}

/* The writer of vssbackup-component-sets: "set" (selectable) with "set/sub" below it (not
 * selectable: only with its set), "exe" (required: not selectable, in no set), "other"
 * (selectable), each with a directory of its own under sets_dir. */
static const char *sets_dir;
static bool sets_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        static const struct { const char *lp, *name; bool selectable; } c[] = {
                { "", "set", true }, { "set", "sub", false }, { "", "exe", false }, { "", "other", true },
        };
        char p[PATH_MAX];
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                snprintf(p, sizeof(p), "%s/%s", sets_dir, c[i].name);
                if (vss_metadata_add_component(md, c[i].lp, c[i].name, NULL, c[i].selectable, true) < 0 ||
                    vss_metadata_add_files(md, c[i].lp, c[i].name, p, "*", true) < 0)
                        return false;
        }
        return true;
}

/* vssbackup-component-sets: --component names a component and gets its set (the components below
 * it, VSS's component sets) and its writer's required components (not selectable for backup, in
 * no set), said so; not the other selectable one. A restore of the set restores the one below. */
static void test_component_sets(void) {
        Harness *h = harness_new(NULL);
        char top[PATH_MAX], dir[PATH_MAX + 4], bk[PATH_MAX + 8];
        CHECK(realpath(harness_make_data(h, "sets"), top) != NULL);
        snprintf(dir, sizeof(dir), "%s/w", top);
        sets_dir = dir;
        CHECK(harness_sh(h, NULL, "mkdir '%s' && cd '%s' && for c in set sub exe other; do mkdir $c && echo $c > $c/f; done",
                         dir, dir) == 0);
        pid_t pid = in_process_writer(h, "sets", sets_identify);
        snprintf(bk, sizeof(bk), "%s/bk", harness_dir(h));
        _cleanup_free_ char *said = NULL;
        CHECK(harness_sh(h, &said, "vssbackup backup --to '%s' --component sets:set 2>&1", bk) == 0);
        CHECK(said && strstr(said, "component 'exe' of writer 'sets' is backed up too: its writer requires it"));
        CHECK(harness_sh(h, NULL, "jq -e '[.components[].name] | sort == [\"exe\", \"set\", \"sub\"]' "
                                  "'%s/openvss/backup-components.json' >/dev/null", bk) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from '%s' --to '%s/to' --component sets:set --quiet", bk,
                         harness_dir(h)) == 0);
        CHECK(harness_sh(h, NULL, "test -f '%s/to%s/set/f' && test -f '%s/to%s/sub/f' && test ! -e '%s/to%s/other'",
                         harness_dir(h), dir, harness_dir(h), dir, harness_dir(h), dir) == 0);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
}

/* vssbackup-restore-links-back: restored with --to while its writer is not running, a component
 * holding an absolute symlink into its own original places (a database's WAL or tablespace link)
 * would have the copy use, and write into, the live files, with no PostRestore to point it at the
 * copy: refused, naming the link, nothing written. With the writer running it is restored. */
static void test_restore_links_back(void) {
        Harness *h = harness_new(NULL);
        char data[PATH_MAX], comp[PATH_MAX + 8], bk[PATH_MAX + 8];
        CHECK(realpath(harness_make_data(h, "app"), data) != NULL);
        CHECK(harness_sh(h, NULL, "mkdir '%s/live' && echo live > '%s/live/f' && ln -s '%s/live' '%s/link' && "
                                  "ln -s live '%s/rel'", data, data, data, data, data) == 0);
        snprintf(comp, sizeof(comp), "app=%s", data);
        snprintf(bk, sizeof(bk), "%s/bk", harness_dir(h));
        pid_t w = harness_writer(h, "linker", (const char *const[]) { "--component", comp, NULL });
        CHECK(harness_sh(h, NULL, "vssbackup backup --to '%s' --quiet", bk) == 0);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        wait_listed(h, "linker", false);

        _cleanup_free_ char *said = NULL;
        char want[2 * PATH_MAX];
        CHECK(harness_sh(h, &said, "vssbackup restore --from '%s' --to '%s/to' 2>&1", bk, harness_dir(h)) != 0);
        snprintf(want, sizeof(want), "would be a symlink to %s/live, the original place", data);
        CHECK(said && strstr(said, want) && strstr(said, "start the writer"));
        if (said && !strstr(said, want))
                fprintf(stderr, "vssbackup said: %s", said);
        CHECK(harness_sh(h, NULL, "test -z \"$(find '%s/to' -type f -o -type l 2>/dev/null)\"", harness_dir(h)) == 0);

        w = harness_writer(h, "linker", (const char *const[]) { "--component", comp, NULL });
        CHECK(harness_sh(h, NULL, "vssbackup restore --from '%s' --to '%s/to2' --quiet", bk, harness_dir(h)) == 0);
        CHECK(harness_sh(h, NULL, "test -f '%s/to2%s/live/f' && test -L '%s/to2%s/rel'", harness_dir(h), data,
                         harness_dir(h), data) == 0);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
}

static const TestCase cases[] = {
        { "vssbackup-restore-links-back", test_restore_links_back },
        { "vssbackup-component-sets", test_component_sets },
        { "vssbackup-restore-if-can-replace", test_restore_if_can_replace },
        { "vssbackup-roundtrip-dir", test_roundtrip_dir },
        { "vssbackup-roundtrip-archive", test_roundtrip_archive },
        { "vssbackup-prerestore-veto", test_prerestore_veto },
        { "vssbackup-incremental", test_incremental },
        { "vssbackup-bad-backups", test_bad_backups },
        { "vssbackup-bad-manifest", test_bad_manifest },
        { "vssbackup-exec", test_exec },
        { "vssbackup-nested-mount", test_nested_mount },
        { "vssbackup-nested-subvolume", test_nested_subvolume },
        { "vssbackup-nested-follow-rules", test_nested_follow_rules },
        { "vssbackup-nested-other-fs-refused", test_nested_other_fs_refused },
        { "vssbackup-exec-nested-mount", test_exec_nested_mount },
        { "vssbackup-exec-nested-subvolume", test_exec_nested_subvolume },
        { "vssbackup-exec-writer-files", test_exec_writer_files },
        { "vssbackup-restore-writer-not-running", test_restore_writer_not_running },
        { "vssbackup-restore-if-not-there", test_restore_if_not_there },
        { "vssbackup-restore-exact-absent", test_restore_exact_absent },
        { "vssbackup-incremental-new-component", test_incremental_new_component },
        { "vssbackup-incremental-renamed-dir", test_incremental_renamed_dir },
        { "vssbackup-restore-stop-start-in-use", test_restore_stop_start_in_use },
        { "vssbackup-restore-vssd-gone", test_restore_vssd_gone },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
