/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Restore writes only where the caller said (issue 10, items 1-4), against the real vssd,
 * vss-writer-exec writers (some run by real unprivileged users) and root's vssbackup:
 *   trust-restore-writer-target   a user's writer cannot make root's restore write into (or chown)
 *                                 a directory the user does not own
 *   trust-restore-to-wins         with --to DIR, new targets planted in a backup's document (a
 *                                 chain's too, whose deletions would follow them) stay beneath DIR
 *   trust-restore-no-symlink      a symlink a user planted below DIR is not followed
 *   trust-restore-in-place-symlink-above  nor, in place, one a user planted above a root writer's
 *                                 component (root's own symlinks are)
 *   trust-backup-dest             root's backup is written only where nobody else can move it
 *   trust-restore-to-swapped      nor is --to DIR followed through a symlink a user made there,
 *                                 before the restore or during its PreRestore
 *   trust-restore-to-private-parents  directories a restore --to DIR makes above a component are
 *                                 private
 *   trust-restore-user-store-rights  a directory store a user could change is read with that
 *                                 user's rights; one of root's that others may change is refused
 *   trust-restore-class-squatted  a user's writer that took the class id of root's writer first gets
 *                                 none of root's restore records
 *   trust-restore-chain-foreign-base  a user's backup based on root's is refused
 *   trust-restore-forged-document  a user with the restore right reaches only their own writers
 *   trust-restore-refused-archive a tar-slip archive leaves nothing behind
 *   trust-restore-user-backup     a backup a user could have written restores in place only where
 *                                 that user may write, whatever its document says
 *   trust-writer-files-owner      a user's writer hands root's backup only files its owner owns
 *   trust-writer-files-foreign    ... and stores them neither outside its own component nor where
 *                                 another user's writer has files
 *   trust-writer-files-chain      ... nor reach another writer's restore through a backup of a
 *                                 chain that did not back that writer's component up
 * The places a restore must not reach are root-owned directories the test makes outside DIR.
 */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/common.h"
#include "tests/users.h"

static void make_dir(const char *p, mode_t mode, uid_t uid) {
        CHECK(mkdir(p, mode) == 0 && chmod(p, mode) == 0 && chown(p, uid, uid == 0 ? 0 : (gid_t) -1) == 0);
}

static void make_file(const char *dir, const char *name, const char *content, uid_t uid) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && write(fd, content, strlen(content)) == (ssize_t) strlen(content) && fchown(fd, uid, (gid_t) -1) == 0);
        if (fd >= 0)
                close(fd);
}

/* Number of entries in dir (not . and ..); -1 if it cannot be read. */
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

static bool lexists(const char *fmt, ...) _printf_(1, 2);
static bool lexists(const char *fmt, ...) {
        char p[2 * PATH_MAX];
        struct stat st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p, sizeof(p), fmt, ap);
        va_end(ap);
        return lstat(p, &st) == 0;
}

static json_object *component_result(json_object *out, const char *writer) {
        json_object *cs, *w;
        if (!out || !json_object_object_get_ex(out, "components", &cs))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(cs); i++) {
                json_object *c = json_object_array_get_idx(cs, i);
                if (json_object_object_get_ex(c, "writer", &w) && streq(json_object_get_string(w), writer))
                        return c;
        }
        return NULL;
}

static bool component_succeeded(json_object *out, const char *writer) {
        json_object *c = component_result(out, writer), *s;
        return c && json_object_object_get_ex(c, "succeeded", &s) && json_object_get_boolean(s);
}

static const char *error_field(json_object *out, const char *key) {
        json_object *e;
        return out && json_object_object_get_ex(out, "error", &e) ? json_str(e, key) : "(none)";
}

/* Item 1: vsstest-bob's writer asks for an alternate location in a root-owned directory (refused:
 * VSS_E_WRITERERROR_NONRETRYABLE, nothing written, the directory's owner and mode as they were)
 * and one in a directory of his own (honoured). */
static void test_writer_target(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char data[PATH_MAX], mine[PATH_MAX], theirs[PATH_MAX], alt_bad[2 * PATH_MAX + 32], alt_good[2 * PATH_MAX + 32];
        char comp_bad[PATH_MAX + 16], comp_good[PATH_MAX + 16], backup[PATH_MAX];
        snprintf(data, sizeof(data), "%s/bob-data", harness_dir(h));
        snprintf(mine, sizeof(mine), "%s/bob-alt", harness_dir(h));
        snprintf(theirs, sizeof(theirs), "%s/root-only", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        make_dir(data, 0755, bob);
        make_file(data, "app.db", "bob's rows\n", bob);
        make_dir(mine, 0700, bob);
        make_dir(theirs, 0755, 0);
        snprintf(comp_bad, sizeof(comp_bad), "app=%s", data);
        snprintf(comp_good, sizeof(comp_good), "app=%s", data);
        snprintf(alt_bad, sizeof(alt_bad), "%s=%s", data, theirs);
        snprintf(alt_good, sizeof(alt_good), "%s=%s/restored", data, mine);
        const char *const bad[] = { "--component", comp_bad, "--restore-method", "restore-to-alternate-location",
                                    "--alternate-location", alt_bad, NULL };
        const char *const good[] = { "--component", comp_good, "--restore-method", "restore-to-alternate-location",
                                     "--alternate-location", alt_good, NULL };
        /* And one restored in place, among his own directories. */
        char home[PATH_MAX], comp_home[PATH_MAX + 16];
        snprintf(home, sizeof(home), "%s/bob-home", harness_dir(h));
        make_dir(home, 0755, bob);
        make_file(home, "notes.txt", "bob's notes\n", bob);
        snprintf(comp_home, sizeof(comp_home), "notes=%s", home);
        const char *const in_place[] = { "--component", comp_home, NULL };
        pid_t w1 = writer_as_args(h, BOB, "bob-bad", NULL, bad);
        pid_t w2 = writer_as_args(h, BOB, "bob-good", NULL, good);
        pid_t w3 = writer_as_args(h, BOB, "bob-home", NULL, in_place);

        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", backup);
        CHECK(st == 0);
        json_object_put(out);
        /* The owner vssd saw is in the document. */
        _cleanup_free_ char *doc = NULL;
        char want[64];
        snprintf(want, sizeof(want), "\"owner_uid\":%u", (unsigned) bob);
        CHECK(harness_sh(h, &doc, "cat %s/openvss/backup-components.json", backup) == 0 && doc && strstr(doc, want));

        char notes[PATH_MAX + 16];
        snprintf(notes, sizeof(notes), "%s/notes.txt", home);
        CHECK(unlink(notes) == 0);
        out = harness_json(h, &st, "vssbackup restore --from %s --json", backup);
        CHECK(st == 1);
        CHECK_STR(json_str(out, "result"), "failed");
        CHECK_STR(error_field(out, "name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        /* The message names the path and the rule. */
        CHECK(strstr(error_field(out, "message"), theirs) != NULL);
        CHECK(strstr(error_field(out, "message"), "may only send files where that uid may write itself") != NULL);
        CHECK(!component_succeeded(out, "bob-bad"));
        CHECK(component_succeeded(out, "bob-good"));
        CHECK(component_succeeded(out, "bob-home"));
        json_object_put(out);

        /* The same backup, as bob could hand it over: his copy, with the writers' owner forged
         * to root. Not believed: the document is only as good as whoever could write it. */
        char forged[PATH_MAX];
        snprintf(forged, sizeof(forged), "%s/forged", harness_dir(h));
        CHECK(harness_sh(h, NULL, "cp -a %s %s && sed -i 's/\"owner_uid\":%u/\"owner_uid\":0/g' "
                         "%s/openvss/backup-components.json && chown -R %u %s", backup, forged, (unsigned) bob, forged,
                         (unsigned) bob, forged) == 0);
        _cleanup_free_ char *fdoc = NULL;
        CHECK(harness_sh(h, &fdoc, "cat %s/openvss/backup-components.json", forged) == 0 && fdoc &&
              !strstr(fdoc, want) && strstr(fdoc, "\"owner_uid\":0"));
        out = harness_json(h, &st, "vssbackup restore --from %s --component bob-bad:app --json", forged);
        CHECK(st == 1);
        CHECK_STR(error_field(out, "name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        CHECK(!component_succeeded(out, "bob-bad"));
        json_object_put(out);

        struct stat s;
        CHECK(count_entries(theirs) == 0);
        CHECK(stat(theirs, &s) == 0 && s.st_uid == 0 && s.st_gid == 0 && (s.st_mode & 07777) == 0755);
        /* The user's own directory: honoured, and left as it was. */
        CHECK(lexists("%s/restored/%s", mine, "app.db"));
        CHECK(stat(mine, &s) == 0 && s.st_uid == bob && (s.st_mode & 07777) == 0700);
        CHECK(stat(notes, &s) == 0 && s.st_uid == bob);
        stop_writer(w1);
        stop_writer(w2);
        stop_writer(w3);
        harness_free(h);
}

/* The backup's document, parsed; NULL on failure (counted). */
static json_object *read_document(const char *backup) {
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/openvss/backup-components.json", backup);
        json_object *o = json_object_from_file(p);
        CHECK(o != NULL);
        return o;
}

/* Plants a new target sending path's files to dest in every component of a directory backup. */
static void plant_new_target(const char *backup, const char *path, const char *dest) {
        char p[PATH_MAX + 64];
        json_object *o = read_document(backup), *cs;
        if (!o)
                return;
        CHECK(json_object_object_get_ex(o, "components", &cs));
        for (size_t i = 0; cs && i < json_object_array_length(cs); i++) {
                json_object *t = json_object_new_object(), *arr = json_object_new_array();
                json_object_object_add(t, "path", json_object_new_string(path));
                json_object_object_add(t, "filespec", json_object_new_string("*"));
                json_object_object_add(t, "recursive", json_object_new_boolean(true));
                json_object_object_add(t, "destination", json_object_new_string(dest));
                json_object_array_add(arr, t);
                json_object_object_add(json_object_array_get_idx(cs, i), "new_targets", arr);
        }
        snprintf(p, sizeof(p), "%s/openvss/backup-components.json", backup);
        CHECK(json_object_to_file_ext(p, o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) == 0);
        json_object_put(o);
}

/* Item 2: a full backup and an incremental on it, both with a new target planted to a root-owned
 * directory outside DIR that holds a file the incremental's prune would delete there. */
static void test_to_wins(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 16], full[PATH_MAX], incr[PATH_MAX], to[PATH_MAX], outside[PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        snprintf(full, sizeof(full), "%s/full", harness_dir(h));
        snprintf(incr, sizeof(incr), "%s/incr", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        snprintf(outside, sizeof(outside), "%s/outside", harness_dir(h));
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
        make_dir(outside, 0755, 0);
        make_file(outside, "victim.txt", "must stay\n", 0);

        int st;
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s", full) == 0);
        make_file(data, "later.txt", "after the full backup\n", 0);
        CHECK(harness_sh(h, NULL, "vssbackup backup --type incremental --base %s --to %s", full, incr) == 0);
        plant_new_target(full, data, outside);
        plant_new_target(incr, data, outside);

        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", incr, to);
        CHECK(st == 0);
        json_object_put(out);
        /* Nothing arrived outside DIR and nothing was deleted there. */
        CHECK(count_entries(outside) == 1);
        CHECK(lexists("%s/%s", outside, "victim.txt"));
        /* The planted target, too, is taken beneath DIR. */
        char under[2 * PATH_MAX];
        snprintf(under, sizeof(under), "%s%s", to, outside);
        CHECK(lexists("%s/%s", under, "later.txt"));
        harness_free(h);
}

typedef struct Plant {
        char link[PATH_MAX];
        char target[PATH_MAX];
} Plant;

static void plant_symlink(Harness *h, void *userdata) {
        Plant *p = userdata;
        CHECK(symlink(p->target, p->link) == 0);
}

/* Item 3: vsstest-bob owns DIR and makes DIR/<first component of the data's path> a symlink to a
 * root-owned directory outside DIR; root's restore --to DIR must not write there. */
static void test_no_symlink(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 16], backup[PATH_MAX], to[PATH_MAX], victim[PATH_MAX];
        Plant plant;
        snprintf(comp, sizeof(comp), "db=%s", data);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        snprintf(victim, sizeof(victim), "%s/root-only", harness_dir(h));
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
        make_dir(to, 0755, uid_of(BOB));
        make_dir(victim, 0755, 0);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s", backup) == 0);

        const char *slash = strchr(data + 1, '/');
        snprintf(plant.link, sizeof(plant.link), "%s/%.*s", to, (int) (slash ? slash - data - 1 : (long) strlen(data + 1)),
                 data + 1);
        snprintf(plant.target, sizeof(plant.target), "%s", victim);
        run_as(BOB, plant_symlink, h, &plant, "bob plants a symlink below DIR");

        int st;
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", backup, to);
        CHECK(st == 1);
        CHECK(strstr(error_field(out, "message"), "symlink") != NULL);
        json_object_put(out);
        CHECK(count_entries(victim) == 0);
        struct stat s;
        CHECK(lstat(plant.link, &s) == 0 && S_ISLNK(s.st_mode));
        harness_free(h);
}

typedef struct Swap {
        char dir[PATH_MAX];    /* renamed away... */
        char away[PATH_MAX];
        char target[PATH_MAX]; /* ...and made a symlink to this */
} Swap;

static void swap_for_symlink(Harness *h, void *userdata) {
        Swap *w = userdata;
        CHECK(rename(w->dir, w->away) == 0 && symlink(w->target, w->dir) == 0);
}

/* Root's writer has its component in DIR/app/data, where DIR is vsstest-bob's: after the backup bob
 * makes DIR/app a symlink to a root-owned directory. Root's restore in place does not follow it
 * (nothing written there, nothing of it deleted, with stop-restore-start either), nor one to an
 * alternate location in DIR/alt swapped the same way; a symlink of root's own in a directory
 * only root may write, above another component, is followed. */
static void test_in_place_symlink_above(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char bob[PATH_MAX], app[PATH_MAX + 8], data[PATH_MAX + 16], comp[PATH_MAX + 32], victim[PATH_MAX + 8];
        char backup[PATH_MAX], real[PATH_MAX + 8], moved[PATH_MAX + 8], rdata[PATH_MAX + 16], rcomp[PATH_MAX + 32];
        snprintf(bob, sizeof(bob), "%s/bob", harness_dir(h));
        snprintf(app, sizeof(app), "%s/app", bob);
        snprintf(data, sizeof(data), "%s/data", app);
        snprintf(victim, sizeof(victim), "%s/victim", harness_dir(h));
        snprintf(real, sizeof(real), "%s/real", harness_dir(h));
        snprintf(moved, sizeof(moved), "%s/real2", harness_dir(h));
        snprintf(rdata, sizeof(rdata), "%s/data", real);
        make_dir(bob, 0755, uid_of(BOB));
        make_dir(app, 0755, 0);
        make_dir(data, 0755, 0);
        make_file(data, "app.conf", "backed up\n", 0);
        make_dir(victim, 0755, 0);
        char vdata[PATH_MAX + 16];
        snprintf(vdata, sizeof(vdata), "%s/data", victim);
        make_dir(vdata, 0755, 0);
        make_file(vdata, "important", "root's\n", 0);
        make_dir(real, 0755, 0);
        make_dir(rdata, 0755, 0);
        make_file(rdata, "r.conf", "backed up\n", 0);
        snprintf(comp, sizeof(comp), "app=%s", data);
        snprintf(rcomp, sizeof(rcomp), "real=%s", rdata);
        const char *const args[] = { "--component", comp, "--restore-method", "stop-restore-start", NULL };
        const char *const rargs[] = { "--component", rcomp, NULL };
        harness_writer(h, "app", args);
        harness_writer(h, "real", rargs);
        /* And root's writer whose alternate location is in DIR/alt, which bob swaps too. */
        char src[PATH_MAX + 8], alt[PATH_MAX + 8], acomp[PATH_MAX + 32], aloc[3 * PATH_MAX];
        snprintf(src, sizeof(src), "%s/src", harness_dir(h));
        snprintf(alt, sizeof(alt), "%s/alt", bob);
        make_dir(src, 0755, 0);
        make_file(src, "a.conf", "backed up\n", 0);
        make_dir(alt, 0755, 0);
        snprintf(acomp, sizeof(acomp), "alt=%s", src);
        snprintf(aloc, sizeof(aloc), "%s=%s/data", src, alt);
        const char *const aargs[] = { "--component", acomp, "--restore-method", "restore-to-alternate-location",
                                      "--alternate-location", aloc, NULL };
        harness_writer(h, "alt", aargs);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s", backup) == 0);

        Swap w;
        snprintf(w.dir, sizeof(w.dir), "%s", app);
        snprintf(w.away, sizeof(w.away), "%s/app.old", bob);
        snprintf(w.target, sizeof(w.target), "%s", victim);
        run_as(BOB, swap_for_symlink, h, &w, "bob swaps DIR/app for a symlink");
        snprintf(w.dir, sizeof(w.dir), "%s", alt);
        snprintf(w.away, sizeof(w.away), "%s/alt.old", bob);
        run_as(BOB, swap_for_symlink, h, &w, "bob swaps DIR/alt for a symlink");
        /* The admin moves root's directory and leaves a symlink of root's in its place. */
        CHECK(rename(real, moved) == 0 && symlink(moved, real) == 0);

        int st;
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --component app:app --json", backup);
        CHECK(st == 1);
        CHECK(strstr(error_field(out, "message"), "symlink") != NULL);
        json_object_put(out);
        CHECK(lexists("%s/important", vdata) && !lexists("%s/app.conf", vdata));
        out = harness_json(h, &st, "vssbackup restore --from %s --component alt:alt --json", backup);
        CHECK(st == 1);
        CHECK(strstr(error_field(out, "message"), "symlink") != NULL);
        json_object_put(out);
        CHECK(lexists("%s/important", vdata) && !lexists("%s/a.conf", vdata));
        out = harness_json(h, &st, "vssbackup restore --from %s --component real:real --json", backup);
        CHECK(st == 0);
        json_object_put(out);
        CHECK(lexists("%s/data/r.conf", moved));
        harness_free(h);
}

static void tar_add(struct archive *a, const char *name, mode_t type, const char *data, const char *symlink_to) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_filetype(e, type);
        archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
        if (symlink_to)
                archive_entry_set_symlink(e, symlink_to);
        archive_entry_set_size(e, data ? (la_int64_t) strlen(data) : 0);
        CHECK(archive_write_header(a, e) == ARCHIVE_OK);
        if (data)
                CHECK(archive_write_data(a, data, strlen(data)) == (la_ssize_t) strlen(data));
        archive_entry_free(e);
}

static void tar_add_file(struct archive *a, const char *name, const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        FILE *f = fopen(path, "re");
        CHECK(f != NULL);
        if (!f)
                return;
        FILE *m = open_memstream(&text, &len);
        char buf[4096];
        size_t k;
        while ((k = fread(buf, 1, sizeof(buf), f)) > 0)
                fwrite(buf, 1, k, m);
        fclose(f);
        fclose(m);
        tar_add(a, name, AE_IFREG, text, NULL);
}

/* Item 4: an archive with a real backup's documents whose data holds a symlink to a root-owned
 * directory outside DIR and then a file through it. Refused, with nothing left in DIR. */
static void test_refused_archive(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 16], backup[PATH_MAX], tar[PATH_MAX], to[PATH_MAX], outside[PATH_MAX];
        char name[2 * PATH_MAX], p[2 * PATH_MAX];
        snprintf(comp, sizeof(comp), "db=%s", data);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        snprintf(tar, sizeof(tar), "%s/slip.tar", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        snprintf(outside, sizeof(outside), "%s/outside", harness_dir(h));
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "db", args);
        make_dir(outside, 0755, 0);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s", backup) == 0);

        struct archive *a = archive_write_new();
        archive_write_set_format_pax(a);
        CHECK(archive_write_open_filename(a, tar) == ARCHIVE_OK);
        const char *docs[] = { "backup-components.json", "vssbackup.json" };
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                snprintf(name, sizeof(name), "openvss/%s", docs[i]);
                snprintf(p, sizeof(p), "%s/openvss/%s", backup, docs[i]);
                tar_add_file(a, name, p);
        }
        snprintf(name, sizeof(name), "data%s", data);
        tar_add(a, name, AE_IFDIR, NULL, NULL);
        snprintf(name, sizeof(name), "data%s/link", data);
        tar_add(a, name, AE_IFLNK, NULL, outside);
        snprintf(name, sizeof(name), "data%s/link/pwned", data);
        tar_add(a, name, AE_IFREG, "pwned\n", NULL);
        _cleanup_free_ char *index = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&index, &len);
        fprintf(m, "%s%c%s/link%c%s/link/pwned%c", data, 0, data, 0, data, 0);
        fclose(m);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, "openvss/index");
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0600);
        archive_entry_set_size(e, (la_int64_t) len);
        CHECK(archive_write_header(a, e) == ARCHIVE_OK && archive_write_data(a, index, len) == (la_ssize_t) len);
        archive_entry_free(e);
        CHECK(archive_write_free(a) == ARCHIVE_OK);

        int st;
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", tar, to);
        CHECK(st == 1);
        CHECK_STR(json_str(out, "result"), "failed");
        json_object_put(out);
        CHECK(count_entries(outside) == 0);
        /* Nothing of it stays beneath DIR: not the symlink, not the directory it was in. */
        CHECK(!lexists("%s%s/link", to, data));
        CHECK(!lexists("%s%s", to, data));
        harness_free(h);
}

/* trust-writer-files-owner: a user's in-process writer hands root's vssbackup "writer files"
 * (vss_writer_add_backup_files) made after the cut. Its own files are stored; a root-only file is
 * refused, the component fails and nothing of the file reaches the backup. */
typedef struct FilesWriter {
        const char *data, *file;
        const char *group, *stored_as; /* the component's files and where the file goes: data and
                                        * data/handed-over when NULL */
} FilesWriter;

static bool files_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        const FilesWriter *fw = userdata;
        return vss_metadata_add_component(md, "", "app", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "app", fw->group ? fw->group : fw->data, "*", true) >= 0;
}

static bool files_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        const FilesWriter *fw = userdata;
        char stored_as[PATH_MAX];
        if (!fw->file)
                return true;
        if (fw->stored_as)
                snprintf(stored_as, sizeof(stored_as), "%s", fw->stored_as);
        else
                snprintf(stored_as, sizeof(stored_as), "%s/handed-over", fw->data);
        return vss_writer_add_backup_files(w, "", "app", fw->file, "*", false, stored_as) >= 0;
}

static void files_writer_as_bob(Harness *h, void *userdata) {
        const FilesWriter *fw = userdata;
        vss_writer_options o = { .name = "bob-files" };
        vss_writer_callbacks cb = { .identify = files_identify, .post_snapshot = files_post_snapshot };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, &cb, (void *) fw, &w), 0);
        if (w)
                CHECK(vss_writer_main(w, harness_socket(h), "bob-files") == 0);
        vss_writer_unref(w);
}

/* fn run as bob (spawn_as()), returned once vssd lists the writer name it subscribes. */
static pid_t bob_writer_listed(Harness *h, UserFn fn, void *userdata, const char *name) {
        pid_t w = spawn_as(BOB, fn, h, userdata);
        for (int i = 0; i < 2000 && !writer_listed(h, name); i++)
                usleep(10 * 1000);
        CHECK(writer_listed(h, name));
        return w;
}

/* A backup by root with bob's writer handing over fw's file (options: more vssbackup options): it
 * succeeds, or fails with a message holding want_msg and fw->file. */
static void files_backup_with(Harness *h, FilesWriter *fw, const char *backup, const char *options,
                              const char *want_msg) {
        const char *file = fw->file;
        bool want_ok = want_msg == NULL;
        pid_t w = bob_writer_listed(h, files_writer_as_bob, fw, "bob-files");
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --retries 0 --json %s", backup, options);
        CHECK(st == (want_ok ? 0 : 1));
        if (!want_ok) {
                CHECK_STR(error_field(out, "name"), "VSS_E_WRITERERROR_NONRETRYABLE");
                CHECK(strstr(error_field(out, "message"), want_msg) != NULL);
                CHECK(strstr(error_field(out, "message"), file) != NULL);
        }
        json_object_put(out);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
}

static void files_backup(Harness *h, const char *file, const char *backup, bool want_ok) {
        char data[PATH_MAX];
        snprintf(data, sizeof(data), "%s/bob-data", harness_dir(h));
        FilesWriter fw = { data, file, NULL, NULL };
        files_backup_with(h, &fw, backup, "", want_ok ? NULL : "does not belong to the writer's owner");
}

/* The places of the writer-files cases: shared (root's) holds bob-data (bob's, with evil, his
 * file) and victim (root's, with passwd, target); rootw_comp names victim as "app". */
typedef struct Planted {
        char shared[PATH_MAX], data[PATH_MAX + 16], victim[PATH_MAX + 16], evil[PATH_MAX + 32];
        char target[PATH_MAX + 32], rootw_comp[PATH_MAX + 32];
} Planted;

static void planted_make(Harness *h, Planted *p) {
        uid_t bob = uid_of(BOB);
        snprintf(p->shared, sizeof(p->shared), "%s/shared", harness_dir(h));
        snprintf(p->data, sizeof(p->data), "%s/bob-data", p->shared);
        snprintf(p->victim, sizeof(p->victim), "%s/victim", p->shared);
        snprintf(p->evil, sizeof(p->evil), "%s/evil", p->data);
        snprintf(p->target, sizeof(p->target), "%s/passwd", p->victim);
        snprintf(p->rootw_comp, sizeof(p->rootw_comp), "app=%s", p->victim);
        make_dir(p->shared, 0755, 0);
        make_dir(p->victim, 0755, 0);
        make_file(p->victim, "passwd", "root's passwd\n", 0);
        make_dir(p->data, 0755, bob);
        make_file(p->data, "evil", "pwned\n", bob);
}

/* trust-writer-files-foreign: bob's writer hands over a file of his own to be stored where root's
 * writer has files (its component's restore would take bob's file there, as root): refused when
 * that place is outside bob's component, and when bob's component covers it too. Nothing of bob's
 * file reaches either backup, and a root restore of the refused backups has nothing to write. */
static void test_writer_files_foreign(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        Planted pl;
        char outside[PATH_MAX], covered[PATH_MAX];
        planted_make(h, &pl);
        snprintf(outside, sizeof(outside), "%s/backup-outside", harness_dir(h));
        snprintf(covered, sizeof(covered), "%s/backup-covered", harness_dir(h));
        const char *rootw[] = { "--component", pl.rootw_comp, NULL };
        harness_writer(h, "rootw", rootw);

        /* Outside bob's own component: refused whoever has files there. */
        FilesWriter fw = { pl.data, pl.evil, NULL, pl.target };
        files_backup_with(h, &fw, outside, "", "not within the component's own files");
        /* Within bob's component (he may name any path as his; root names it, since a component of
         * paths not bob's is not taken by default), but root's writer has files there. */
        fw.group = pl.shared;
        char spec[128], specs[256];
        snprintf(specs, sizeof(specs), "--component %s --component rootw:app", id_spec(spec, sizeof(spec), "bob-files", "app"));
        files_backup_with(h, &fw, covered, specs, "where component 'app' of writer 'rootw' has files");
        _cleanup_free_ char *found = NULL;
        CHECK(harness_sh(h, &found, "grep -rl pwned %s %s 2>/dev/null; true", outside, covered) == 0);
        CHECK(found && found[0] == 0);
        /* The place is as it was. */
        _cleanup_free_ char *now = NULL;
        CHECK(harness_sh(h, &now, "cat %s", pl.target) == 0 && now && streq(now, "root's passwd\n"));
        struct stat st;
        CHECK(stat(pl.target, &st) == 0 && st.st_uid == 0);

        /* A root writer covering all of shared: bob's file stored in a directory of his own below
         * it is what bob could write there anyway, and is taken. */
        char all[PATH_MAX + 16], own[PATH_MAX];
        snprintf(all, sizeof(all), "all=%s", pl.shared);
        const char *rootall[] = { "--component", all, NULL };
        harness_writer(h, "rootall", rootall);
        snprintf(own, sizeof(own), "%s/backup-own", harness_dir(h));
        FilesWriter mine = { pl.data, pl.evil, NULL, NULL };
        files_backup_with(h, &mine, own, "", NULL);
        CHECK(lexists("%s/data%s/handed-over", own, pl.data));
        harness_free(h);
}

static void test_writer_files_owner(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char data[PATH_MAX], secret_dir[PATH_MAX], secret[PATH_MAX + 16], own[PATH_MAX + 16];
        char refused[PATH_MAX], kept[PATH_MAX];
        snprintf(data, sizeof(data), "%s/bob-data", harness_dir(h));
        snprintf(secret_dir, sizeof(secret_dir), "%s/root-secrets", harness_dir(h));
        snprintf(refused, sizeof(refused), "%s/backup-refused", harness_dir(h));
        snprintf(kept, sizeof(kept), "%s/backup-kept", harness_dir(h));
        make_dir(data, 0755, bob);
        make_file(data, "app.db", "bob's rows\n", bob);
        make_dir(secret_dir, 0755, 0);
        make_file(secret_dir, "shadow", "root's secret\n", 0);
        snprintf(secret, sizeof(secret), "%s/shadow", secret_dir);
        CHECK(chmod(secret, 0600) == 0);
        make_file(data, "label", "bob's label\n", bob);
        snprintf(own, sizeof(own), "%s/label", data);

        files_backup(h, secret, refused, false);
        _cleanup_free_ char *found = NULL;
        CHECK(harness_sh(h, &found, "grep -rl \"root's secret\" %s 2>/dev/null; true", refused) == 0);
        CHECK(found && found[0] == 0);

        files_backup(h, own, kept, true);
        CHECK(lexists("%s/data%s/handed-over", kept, data));
        harness_free(h);
}

/* trust-participation-symlink: bob's writer names as its component a symlink of his own to a
 * directory of root's: root's plain backup takes the component as the directory it names (root's),
 * so it leaves it out. */
static void test_participation_symlink(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        Planted pl;
        char link[PATH_MAX + 32], backup[PATH_MAX];
        planted_make(h, &pl);
        snprintf(link, sizeof(link), "%s/link", pl.data);
        CHECK(symlink(pl.victim, link) == 0 && lchown(link, uid_of(BOB), (gid_t) -1) == 0);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        FilesWriter fw = { pl.data, NULL, link, NULL };
        pid_t w = bob_writer_listed(h, files_writer_as_bob, &fw, "bob-files");
        char *o = NULL;
        CHECK(harness_sh(h, &o, "vssbackup backup --to %s --retries 0 2>&1", backup) != 0 ||
              (o && strstr(o, "left out")));
        CHECK(o && strstr(o, "component 'app' of writer 'bob-files' left out"));
        free(o);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        harness_free(h);
}

/* trust-backup-symlink-swap: bob's writer names S/bob/l/data (his, checked on the live tree) and,
 * at PrepareForSnapshot, swaps l for a symlink to S: along it, root's S/data/secret. Root's
 * backup of S reads bob's component in the shadow copy along its own path only: it fails, and
 * nothing of root's file is stored. */
static char swap_root[PATH_MAX];
static bool swap_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/bob/l/data", swap_root);
        return vss_metadata_add_component(md, "", "app", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "app", p, "*", true) >= 0;
}
static bool swap_prepare_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        char l[PATH_MAX + 8], old[PATH_MAX + 16];
        snprintf(l, sizeof(l), "%s/bob/l", swap_root);
        snprintf(old, sizeof(old), "%s/bob/l.old", swap_root);
        return rename(l, old) == 0 && symlink(swap_root, l) == 0;
}
/* An in-process writer of bob's (spawn_as()), named name, with callbacks cb. */
typedef struct BobWriter {
        const char *name;
        vss_writer_callbacks cb;
} BobWriter;
static void bob_writer_main(Harness *h, void *userdata) {
        const BobWriter *bw = userdata;
        vss_writer_options o = { .name = bw->name };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, &bw->cb, NULL, &w), 0);
        if (w)
                CHECK(vss_writer_main(w, harness_socket(h), bw->name) == 0);
        vss_writer_unref(w);
}

static void test_backup_symlink_swap(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char p[PATH_MAX + 32], backup[PATH_MAX];
        snprintf(swap_root, sizeof(swap_root), "%s/shared", harness_dir(h));
        make_dir(swap_root, 0755, 0);
        snprintf(p, sizeof(p), "%s/data", swap_root);
        make_dir(p, 0700, 0);
        make_file(p, "secret", "root's secret\n", 0);
        snprintf(p, sizeof(p), "%s/bob", swap_root);
        make_dir(p, 0755, bob);
        snprintf(p, sizeof(p), "%s/bob/l", swap_root);
        make_dir(p, 0755, bob);
        snprintf(p, sizeof(p), "%s/bob/l/data", swap_root);
        make_dir(p, 0755, bob);
        make_file(p, "mine", "bob's\n", bob);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        BobWriter bw = { "bob-swap", { .identify = swap_identify, .prepare_snapshot = swap_prepare_snapshot } };
        pid_t w = bob_writer_listed(h, bob_writer_main, &bw, "bob-swap");
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --for %s --retries 0 --json", backup, swap_root);
        CHECK(st == 1 && !component_succeeded(out, "bob-swap"));
        CHECK(strstr(error_field(out, "message"), "symlink on the way") != NULL);
        json_object_put(out);
        CHECK(harness_sh(h, NULL, "! grep -rq \"root's secret\" %s", backup) == 0);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        harness_free(h);
}

/* trust-exec-mount-swap: bob's writer names S/bob/db (his) and, once the copy is cut
 * (PostSnapshot), swaps db for a symlink to root's S/victim. Root's `vssbackup exec --at-original`
 * would mount bob's shadow copy over S/victim in COMMAND's namespace (and over /etc as well):
 * it refuses, and COMMAND does not run. */
static bool mswap_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/bob/db", swap_root);
        return vss_metadata_add_component(md, "", "db", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "db", p, "*", true) >= 0;
}
static bool mswap_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        char db[PATH_MAX + 8], old[PATH_MAX + 16], victim[PATH_MAX + 8];
        snprintf(db, sizeof(db), "%s/bob/db", swap_root);
        snprintf(old, sizeof(old), "%s/bob/db.real", swap_root);
        snprintf(victim, sizeof(victim), "%s/victim", swap_root);
        return rename(db, old) == 0 && symlink(victim, db) == 0;
}

static void test_exec_mount_swap(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char p[PATH_MAX + 32], marker[PATH_MAX];
        snprintf(swap_root, sizeof(swap_root), "%s/shared", harness_dir(h));
        snprintf(marker, sizeof(marker), "%s/command-ran", harness_dir(h));
        make_dir(swap_root, 0755, 0);
        snprintf(p, sizeof(p), "%s/victim", swap_root);
        make_dir(p, 0755, 0);
        make_file(p, "rootfile", "root's\n", 0);
        snprintf(p, sizeof(p), "%s/bob", swap_root);
        make_dir(p, 0755, bob);
        snprintf(p, sizeof(p), "%s/bob/db", swap_root);
        make_dir(p, 0755, bob);
        make_file(p, "evil", "bob's\n", bob);
        BobWriter bw = { "bob-mswap", { .identify = mswap_identify, .post_snapshot = mswap_post_snapshot } };
        pid_t w = bob_writer_listed(h, bob_writer_main, &bw, "bob-mswap");
        _cleanup_free_ char *o = NULL;
        CHECK(harness_sh(h, &o, "vssbackup exec --at-original --retries 0 -- sh -c 'ls %s/victim; touch %s' 2>&1", swap_root,
                         marker) != 0);
        CHECK(o && strstr(o, "changed since") != NULL);
        if (o && !strstr(o, "changed since"))
                fprintf(stderr, "vssbackup exec said: %s\n", o);
        CHECK(access(marker, F_OK) < 0);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        harness_free(h);
}

/* trust-writer-files-chain: the same, across a chain of backups. While root's writer is not
 * running, bob's writer stores its file at root's writer's path (nobody else has files there then);
 * root's later restore of root's writer's component from a later incremental takes nothing from
 * that backup, which did not back the component up. */
static void wait_unlisted(Harness *h, const char *name) {
        for (int i = 0; i < 2000 && writer_listed(h, name); i++)
                usleep(10 * 1000);
        CHECK(!writer_listed(h, name));
}

static void test_writer_files_chain(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        Planted pl;
        char base[PATH_MAX], inc1[PATH_MAX], inc2[PATH_MAX];
        planted_make(h, &pl);
        snprintf(base, sizeof(base), "%s/backup-base", harness_dir(h));
        snprintf(inc1, sizeof(inc1), "%s/backup-inc1", harness_dir(h));
        snprintf(inc2, sizeof(inc2), "%s/backup-inc2", harness_dir(h));
        const char *rootw[] = { "--component", pl.rootw_comp, NULL };
        int st;

        pid_t rw = harness_writer(h, "rootw", rootw);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --type full --quiet", base) == 0);
        kill(rw, SIGTERM);
        waitpid(rw, NULL, 0);
        wait_unlisted(h, "rootw");

        /* bob's component covers root's writer's directory too; root's writer is not there to
         * object, so bob's file is stored at its path, as bob's component's. */
        FilesWriter fw = { pl.data, pl.evil, pl.shared, pl.target };
        pid_t bw = bob_writer_listed(h, files_writer_as_bob, &fw, "bob-files");
        char spec[128];
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --type incremental --base %s --component %s --quiet", inc1, base,
                         id_spec(spec, sizeof(spec), "bob-files", "app")) == 0);
        kill(bw, SIGTERM);
        waitpid(bw, NULL, 0);
        wait_unlisted(h, "bob-files");

        rw = harness_writer(h, "rootw", rootw);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --type incremental --base %s --quiet", inc2, inc1) == 0);
        make_file(pl.victim, "passwd", "changed since\n", 0);
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --component rootw:app --json", inc2);
        CHECK(st == 0 && component_succeeded(out, "rootw"));
        json_object_put(out);
        _cleanup_free_ char *now = NULL;
        CHECK(harness_sh(h, &now, "cat %s", pl.target) == 0 && now && streq(now, "root's passwd\n"));
        struct stat sb;
        CHECK(stat(pl.target, &sb) == 0 && sb.st_uid == 0);
        harness_free(h);
}

/* trust-restore-user-backup: a backup bob could have written (he owns it: he may have made it,
 * copied it or edited its document) restores in place only where bob may write, whatever writer
 * its document names: root's writer's component, backed up by root and handed over as bob's,
 * does not go back into root's directory; with --to DIR it goes beneath DIR. */
static void test_user_backup(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char rootonly[PATH_MAX], target[PATH_MAX + 16], comp[PATH_MAX + 16], backup[PATH_MAX], to[PATH_MAX];
        snprintf(rootonly, sizeof(rootonly), "%s/rootonly", harness_dir(h));
        snprintf(target, sizeof(target), "%s/x", rootonly);
        snprintf(backup, sizeof(backup), "%s/bobs-backup", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        make_dir(rootonly, 0755, 0);
        make_file(rootonly, "x", "root's\n", 0);
        snprintf(comp, sizeof(comp), "app=%s", rootonly);
        const char *rootw[] = { "--component", comp, NULL };
        harness_writer(h, "rootw", rootw);
        int st;
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", backup) == 0);
        CHECK(harness_sh(h, NULL, "chown -R %u %s", (unsigned) bob, backup) == 0);
        make_file(rootonly, "x", "changed since\n", 0);

        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --json", backup);
        CHECK(st == 1 && !component_succeeded(out, "rootw"));
        CHECK_STR(error_field(out, "name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        json_object_put(out);
        _cleanup_free_ char *now = NULL;
        CHECK(harness_sh(h, &now, "cat %s", target) == 0 && now && streq(now, "changed since\n"));

        make_dir(to, 0700, 0);
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", backup, to);
        CHECK(st == 0 && component_succeeded(out, "rootw"));
        json_object_put(out);
        CHECK(lexists("%s%s/x", to, rootonly));
        harness_free(h);
}

/* trust-restore-user-privilege: a backup bob could have written (his directory store) holds, in
 * his writer's component, a setuid-root file with a file capability: restored (in place, and with
 * --to) it is bob's, without the setuid bit or the capability. With a device node in it, the
 * restore fails and writes nothing. */
static void test_user_privilege(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char data[PATH_MAX], comp[PATH_MAX + 16], backup[PATH_MAX], to[PATH_MAX];
        snprintf(data, sizeof(data), "%s/bob-app", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/bobs-backup", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        make_dir(data, 0755, bob);
        make_file(data, "db", "bob's rows\n", bob);
        snprintf(comp, sizeof(comp), "app=%s", data);
        const char *args[] = { "--component", comp, NULL };
        pid_t w = writer_as_args(h, BOB, "bobw", NULL, args);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", backup) == 0);
        /* bob's backup, into which "he" planted root's setuid binary with a capability. */
        CHECK(harness_sh(h, NULL,
                         "chown -R %u %s && cp /bin/true %s/data%s/rootid && chown 0:0 %s/data%s/rootid && "
                         "chmod 6755 %s/data%s/rootid && setcap cap_setuid+ep %s/data%s/rootid && "
                         "printf '%%s\\0' %s/rootid >> %s/openvss/index",
                         (unsigned) bob, backup, backup, data, backup, data, backup, data, backup, data, data,
                         backup) == 0);
        int st;
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --json", backup);
        CHECK(st == 0 && component_succeeded(out, "bobw"));
        json_object_put(out);
        make_dir(to, 0700, 0);
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", backup, to);
        CHECK(st == 0 && component_succeeded(out, "bobw"));
        json_object_put(out);
        char where[2][2 * PATH_MAX];
        snprintf(where[0], sizeof(where[0]), "%s/rootid", data);
        snprintf(where[1], sizeof(where[1]), "%s%s/rootid", to, data);
        for (size_t i = 0; i < 2; i++) {
                struct stat s;
                CHECK(lstat(where[i], &s) == 0 && S_ISREG(s.st_mode));
                CHECK(s.st_uid == bob && s.st_gid == getpwuid(bob)->pw_gid);
                CHECK((s.st_mode & (S_ISUID | S_ISGID)) == 0 && (s.st_mode & 0777) == 0755);
                CHECK(lgetxattr(where[i], "security.capability", NULL, 0) < 0 && errno == ENODATA);
        }
        /* A device node: refused, and nothing of the restore is written. */
        CHECK(harness_sh(h, NULL, "rm -f %s/rootid && mknod %s/data%s/raw b 7 0 && printf '%%s\\0' %s/raw >> "
                                  "%s/openvss/index",
                         data, backup, data, data, backup) == 0);
        out = harness_json(h, &st, "vssbackup restore --from %s --json", backup);
        CHECK(st == 1 && !component_succeeded(out, "bobw"));
        CHECK(strstr(error_field(out, "message"), "device node") != NULL);
        json_object_put(out);
        CHECK(!lexists("%s/raw", data) && !lexists("%s/rootid", data));
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        harness_free(h);
}

/* trust-backup-dest: root's backup goes only where nobody else can move or swap what it writes.
 * A directory store is written by path (libarchive), so every directory on the way must be root's
 * (or sticky, /tmp) and an existing one root's alone; an archive is one fd, so only a symlink
 * someone else made on the way is refused. Each refusal names why and writes nothing. */
static void backup_refused(Harness *h, const char *data, const char *to, const char *why) {
        int st = -1;
        json_object *out = harness_json(h, &st, "vssbackup backup --to '%s' --for '%s' --json", to, data);
        CHECK(st == 1);
        CHECK(strstr(error_field(out, "message"), why) != NULL);
        if (!strstr(error_field(out, "message"), why))
                fprintf(stderr, "   backup --to %s said: %s\n", to, error_field(out, "message"));
        json_object_put(out);
}

static void test_backup_dest(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char data[PATH_MAX], bobs[PATH_MAX], pub[PATH_MAX], root_only[PATH_MAX], shared[PATH_MAX], empty[PATH_MAX];
        char to[2 * PATH_MAX];
        snprintf(data, sizeof(data), "%s/data", harness_dir(h));
        snprintf(bobs, sizeof(bobs), "%s/bobs", harness_dir(h));
        snprintf(pub, sizeof(pub), "%s/pub", harness_dir(h));
        snprintf(root_only, sizeof(root_only), "%s/root-only", harness_dir(h));
        snprintf(shared, sizeof(shared), "%s/shared", harness_dir(h));
        snprintf(empty, sizeof(empty), "%s/bobs-empty", harness_dir(h));
        make_dir(data, 0700, 0);
        make_file(data, "secret", "root's secret\n", 0);
        make_dir(bobs, 0755, bob);
        make_dir(pub, 01777, 0);
        make_dir(root_only, 0755, 0);
        make_dir(shared, 0775, 0);
        make_dir(empty, 0700, bob);
        snprintf(to, sizeof(to), "%s/link", bobs);
        CHECK(symlink(root_only, to) == 0 && lchown(to, bob, (gid_t) -1) == 0);

        snprintf(to, sizeof(to), "%s/bk", bobs);
        backup_refused(h, data, to, "belongs to uid");
        backup_refused(h, data, empty, "belongs to another user");
        snprintf(to, sizeof(to), "%s/bk", shared);
        backup_refused(h, data, to, "may be written by others");
        snprintf(to, sizeof(to), "%s/link/bk", bobs);
        backup_refused(h, data, to, "symlink");
        snprintf(to, sizeof(to), "%s/link/bk.tar", bobs);
        backup_refused(h, data, to, "symlink");
        CHECK(count_entries(bobs) == 1 && count_entries(empty) == 0 && count_entries(root_only) == 0 &&
              count_entries(shared) == 0);

        /* A sticky directory (/tmp) is fine for a directory store; an archive anywhere real. */
        int st = -1;
        snprintf(to, sizeof(to), "%s/bk", pub);
        json_object_put(harness_json(h, &st, "vssbackup backup --to '%s' --for '%s' --json", to, data));
        CHECK(st == 0 && lexists("%s/openvss/index", to));
        snprintf(to, sizeof(to), "%s/bk.tar", bobs);
        json_object_put(harness_json(h, &st, "vssbackup backup --to '%s' --for '%s' --json", to, data));
        CHECK(st == 0 && lexists("%s", to));
        /* Named as the current directory, and restored into one the same way. */
        snprintf(to, sizeof(to), "%s/here", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -m 700 %s && cd %s && vssbackup backup --to . --for '%s' --quiet", to, to,
                         data) == 0);
        CHECK(lexists("%s/openvss/index", to));
        /* (A volume's backup has no component to restore: that it gets so far shows '.' opened.) */
        _cleanup_free_ char *said = NULL;
        CHECK(harness_sh(h, &said, "cd %s && vssbackup restore --from . --to . 2>&1", to) != 0);
        CHECK(said && strstr(said, "no component to restore"));
        harness_free(h);
}

/* trust-restore-to-swapped: root restores bob's component --to a directory of bob's. Bob made it
 * a symlink to a directory of root's beforehand, or his writer does so in PreRestore, after the
 * restore resolved it: either way the restore refuses, naming the symlink, and root's directory
 * stays empty. */
static char swapto_dir[PATH_MAX], swapto_data[PATH_MAX], swapto_victim[PATH_MAX];
static bool swapto_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        return vss_metadata_add_component(md, "", "app", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "app", swapto_data, "*", true) >= 0;
}
static bool swapto_pre_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        char old[PATH_MAX + 8];
        snprintf(old, sizeof(old), "%s.old", swapto_dir);
        return rename(swapto_dir, old) == 0 && symlink(swapto_victim, swapto_dir) == 0;
}

static void test_restore_to_swapped(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char bobs[PATH_MAX], backup[PATH_MAX], link[2 * PATH_MAX];
        snprintf(bobs, sizeof(bobs), "%s/bobs", harness_dir(h));
        snprintf(swapto_data, sizeof(swapto_data), "%s/data", bobs);
        snprintf(swapto_dir, sizeof(swapto_dir), "%s/restore", bobs);
        snprintf(swapto_victim, sizeof(swapto_victim), "%s/victim", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        make_dir(bobs, 0755, bob);
        make_dir(swapto_data, 0755, bob);
        make_file(swapto_data, "index", "bob's index\n", bob);
        make_dir(swapto_dir, 0755, bob);
        make_dir(swapto_victim, 0755, 0);
        BobWriter bw = { "bob-swapto", { .identify = swapto_identify, .pre_restore = swapto_pre_restore } };
        pid_t w = bob_writer_listed(h, bob_writer_main, &bw, "bob-swapto");
        int st = -1;
        json_object_put(harness_json(h, &st, "vssbackup backup --to %s --json", backup));
        CHECK(st == 0);

        /* Planted before the restore. */
        snprintf(link, sizeof(link), "%s/planted", bobs);
        CHECK(symlink(swapto_victim, link) == 0 && lchown(link, bob, (gid_t) -1) == 0);
        char spec[128];
        id_spec(spec, sizeof(spec), "bob-swapto", "app");
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --component %s --to %s --json", backup, spec,
                                        link);
        CHECK(st == 1 && strstr(error_field(out, "message"), "symlink") != NULL);
        json_object_put(out);
        CHECK(count_entries(swapto_victim) == 0);

        /* Swapped by the writer in PreRestore. */
        out = harness_json(h, &st, "vssbackup restore --from %s --component %s --to %s --json", backup, spec, swapto_dir);
        CHECK(st == 1 && strstr(error_field(out, "message"), "symlink") != NULL);
        if (!strstr(error_field(out, "message"), "symlink"))
                fprintf(stderr, "   restore said: %s\n", error_field(out, "message"));
        json_object_put(out);
        CHECK(lexists("%s.old", swapto_dir));
        CHECK(count_entries(swapto_victim) == 0);
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
        harness_free(h);
}

/* trust-restore-to-private-parents: root's component below a 0700 directory of root's, restored
 * --to DIR: the directories above it that the restore makes below DIR come back as the backup
 * holds them (the 0700 one private), so nobody reads through them what nobody could read where it
 * came from. */
static void test_restore_to_private_parents(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char priv[PATH_MAX], app[PATH_MAX + 8], comp[PATH_MAX + 16], backup[PATH_MAX], out[PATH_MAX], p[3 * PATH_MAX];
        snprintf(priv, sizeof(priv), "%s/private", harness_dir(h));
        snprintf(app, sizeof(app), "%s/app", priv);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        snprintf(out, sizeof(out), "%s/out", harness_dir(h));
        make_dir(priv, 0700, 0);
        make_dir(app, 0755, 0);
        make_file(app, "conf", "root's settings\n", 0);
        snprintf(comp, sizeof(comp), "app=%s", app);
        pid_t w = harness_writer(h, "rootapp", (const char *const[]) { "--component", comp, NULL });
        int st = -1;
        json_object_put(harness_json(h, &st, "vssbackup backup --to %s --json", backup));
        CHECK(st == 0);
        json_object_put(harness_json(h, &st, "vssbackup restore --from %s --component rootapp:app --to %s --json",
                                     backup, out));
        CHECK(st == 0);
        struct stat s, o;
        snprintf(p, sizeof(p), "%s%s/conf", out, app);
        CHECK(lstat(p, &s) == 0 && S_ISREG(s.st_mode));
        /* Every directory made between DIR and the component: as where it came from (the 0700
         * one private), not opened up. */
        snprintf(p, sizeof(p), "%s%s", out, priv);
        for (char *slash = p + strlen(out); slash; slash = strchr(slash + 1, '/')) {
                char c = slash[0];
                slash[0] = 0;
                if (strlen(p) > strlen(out))
                        CHECK(stat(p, &s) == 0 && stat(p + strlen(out), &o) == 0 && s.st_mode == o.st_mode &&
                              s.st_uid == o.st_uid);
                slash[0] = c;
        }
        CHECK(stat(p, &s) == 0 && (s.st_mode & 07777) == 0700);
        stop_writer(w);
        harness_free(h);
}

/* trust-restore-user-store-rights: a directory store bob could change is read with bob's rights.
 * A file there that bob could not read (what a symlink he swaps in mid-restore would lead to: a
 * root-only file) is not restored, and its content goes nowhere. A store of root's that others
 * may change (data/ opened up) is refused. */
static void test_user_store_rights(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char data[PATH_MAX], comp[PATH_MAX + 16], backup[PATH_MAX], to[PATH_MAX], rootb[PATH_MAX];
        snprintf(data, sizeof(data), "%s/bob-app", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/bobs-backup", harness_dir(h));
        snprintf(rootb, sizeof(rootb), "%s/roots-backup", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        make_dir(data, 0755, bob);
        make_file(data, "db", "bob's rows\n", bob);
        snprintf(comp, sizeof(comp), "app=%s", data);
        pid_t w = writer_as_args(h, BOB, "bobw", NULL, (const char *const[]) { "--component", comp, NULL });
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet && cp -a %s %s", backup, backup, rootb) == 0);
        CHECK(harness_sh(h, NULL,
                         "chown -R %u %s && printf 'ROOT-ONLY\\n' > %s/data%s/secret && chmod 600 %s/data%s/secret && "
                         "printf '%%s\\0' %s/secret >> %s/openvss/index",
                         (unsigned) bob, backup, backup, data, backup, data, data, backup) == 0);
        int st = -1;
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", backup, to);
        CHECK(st == 1 && !component_succeeded(out, "bobw"));
        json_object_put(out);
        CHECK(harness_sh(h, NULL, "! grep -rq ROOT-ONLY %s", to) == 0);

        /* root's own store, but data/ opened to others: refused before anything is read. */
        CHECK(harness_sh(h, NULL, "chmod 755 %s/data", rootb) == 0);
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s/2 --json", rootb, to);
        CHECK(st == 1 && strstr(error_field(out, "message"), "others may change it") != NULL);
        json_object_put(out);
        CHECK(!lexists("%s/2%s/db", to, data));
        /* Made root's alone again, it restores. */
        CHECK(harness_sh(h, NULL, "chmod 700 %s/data", rootb) == 0);
        json_object_put(harness_json(h, &st, "vssbackup restore --from %s --to %s/3 --json", rootb, to));
        CHECK(st == 0 && lexists("%s/3%s/db", to, data));
        stop_writer(w);
        harness_free(h);
}

/* trust-restore-class-squatted: bob's writer subscribes first with the class id of root's writer
 * 'rootdb' (a name's UUID, which anyone can compute). Root's writer still subscribes, and the
 * class is root's from then on (bob may not subscribe with it again). Root's restore of its
 * component gives bob's writer none of root's records: it hears no PreRestore of them and cannot
 * veto or redirect the restore. */
static char squat_marker[PATH_MAX];
static bool squat_pre_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        int fd = open(squat_marker, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                dprintf(fd, "pre-restore with %zu components\n", info->n_components);
                close(fd);
        }
        for (size_t i = 0; i < info->n_components; i++)
                (void) vss_writer_set_pre_restore_failure_msg(w, "", info->components[i], "hijacked by bob");
        return info->n_components == 0;
}

static void test_class_squatted(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char bobs[PATH_MAX], db[PATH_MAX], comp[PATH_MAX + 16], backup[PATH_MAX], to[PATH_MAX];
        snprintf(bobs, sizeof(bobs), "%s/bobs", harness_dir(h));
        snprintf(db, sizeof(db), "%s/rootdb", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        snprintf(squat_marker, sizeof(squat_marker), "%s/events", bobs);
        make_dir(bobs, 0755, bob);
        make_dir(db, 0700, 0);
        make_file(db, "rows", "root's rows\n", 0);
        BobWriter bw = { "rootdb", { .pre_restore = squat_pre_restore } };
        pid_t wb = bob_writer_listed(h, bob_writer_main, &bw, "rootdb");
        snprintf(comp, sizeof(comp), "db=%s", db);
        pid_t wr = harness_writer(h, "rootdb", (const char *const[]) { "--component", comp, NULL });
        /* Bob's writer is listed by that name already: wait for root's to have subscribed too. */
        bool both = false;
        for (int i = 0; i < 1000 && !both; i++) {
                both = harness_sh(h, NULL, "[ $(grep -c \"writer 'rootdb' .* subscribed\" %s/vssd.log) -ge 2 ]",
                                  harness_dir(h)) == 0;
                if (!both)
                        usleep(10 * 1000);
        }
        CHECK(both);
        CHECK(harness_sh(h, NULL, "grep -q 'is root.s from now on' %s/vssd.log", harness_dir(h)) == 0);

        int st = -1;
        json_object_put(harness_json(h, &st, "vssbackup backup --to %s --json", backup));
        CHECK(st == 0);
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --component rootdb:db --to %s --json",
                                        backup, to);
        CHECK(st == 0);
        if (st != 0)
                fprintf(stderr, "   restore said: %s\n", error_field(out, "message"));
        json_object_put(out);
        CHECK(lexists("%s%s/rows", to, db));
        CHECK(!lexists("%s", squat_marker) || harness_sh(h, NULL, "! grep -v 'with 0 components' %s", squat_marker) == 0);
        kill(wb, SIGTERM);
        waitpid(wb, NULL, 0);
        stop_writer(wr);
        harness_free(h);
}

/* trust-restore-chain-foreign-base: bob's backup (his store) names root's full backup as its
 * base. Restored, bob would get root's files as his: refused, nothing written. */
static void test_chain_foreign_base(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uid_t bob = uid_of(BOB);
        char db[PATH_MAX], comp[PATH_MAX + 16], full[PATH_MAX], inc[PATH_MAX], to[PATH_MAX];
        snprintf(db, sizeof(db), "%s/rootdb", harness_dir(h));
        snprintf(full, sizeof(full), "%s/full", harness_dir(h));
        snprintf(inc, sizeof(inc), "%s/bobs-inc", harness_dir(h));
        snprintf(to, sizeof(to), "%s/to", harness_dir(h));
        make_dir(db, 0700, 0);
        make_file(db, "secret", "root's secret\n", 0);
        snprintf(comp, sizeof(comp), "db=%s", db);
        pid_t w = harness_writer(h, "rootw", (const char *const[]) { "--component", comp, NULL });
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", full) == 0);
        /* "His" incremental on it: a copy made his, its manifest pointing at root's backup. */
        CHECK(harness_sh(h, NULL,
                         "cp -a %s %s && u=$(jq .created_usec %s/openvss/vssbackup.json) && "
                         "jq --arg b %s --argjson u \"$u\" '.type = \"incremental\" | .base = $b | "
                         ".base_created_usec = $u | .created_usec = ($u + 1)' %s/openvss/vssbackup.json > %s/m && "
                         "mv %s/m %s/openvss/vssbackup.json && chown -R %u %s",
                         full, inc, full, full, full, harness_dir(h), harness_dir(h), inc, (unsigned) bob, inc) == 0);
        int st = -1;
        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", inc, to);
        CHECK(st == 1 && strstr(error_field(out, "message"), "not the same user's") != NULL);
        if (!strstr(error_field(out, "message"), "not the same user's"))
                fprintf(stderr, "   restore said: %s\n", error_field(out, "message"));
        json_object_put(out);
        CHECK(harness_sh(h, NULL, "! grep -rq \"root's secret\" %s 2>/dev/null", to) == 0);
        stop_writer(w);
        harness_free(h);
}

/* trust-restore-forged-document: bob holds the restore right. He takes root's backup document,
 * drops its writers (and with them the owners it records) and adds a component root's writer
 * never declared, and runs a restore with it. Root's writer hears nothing of it: a user's
 * restore reaches only that user's writers, and only components they declare. */
static void bob_restores_with(Harness *h, void *userdata) {
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        if (!b)
                return;
        CHECK_HR(vss_backup_initialize_for_restore(b, userdata), 0);
        (void) vss_backup_gather_writer_metadata_sync(b);
        (void) vss_backup_pre_restore_sync(b);
        (void) vss_backup_post_restore_sync(b);
        vss_backup_release(b);
}

static void test_restore_forged_document(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"rights\": {\"restore\": [\"" BOB "\"]}}");
        char data[PATH_MAX], comp[PATH_MAX + 16], backup[PATH_MAX];
        snprintf(data, sizeof(data), "%s/rootdata", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        make_dir(data, 0700, 0);
        make_file(data, "secret", "root's\n", 0);
        snprintf(comp, sizeof(comp), "data=%s", data);
        harness_writer(h, "rootapp", (const char *const[]) { "--component", comp, NULL });
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", backup) == 0);
        char *doc = NULL;
        CHECK(harness_sh(h, &doc, "jq -c '.writers = [] | .components += [(.components[0] | .name = \"x y=/etc\")]' "
                                  "%s/openvss/backup-components.json", backup) == 0);
        CHECK(doc && strstr(doc, "x y=/etc"));
        char *before = harness_events(h, "rootapp");
        run_as(BOB, bob_restores_with, h, doc, "bob restoring with a forged document");
        char *after = harness_events(h, "rootapp");
        /* Identify goes to every writer (bob's gather); no pre-restore, no post-restore. */
        CHECK(before && after && strlen(after) >= strlen(before) && !strstr(after + strlen(before), "restore"));
        if (before && after && strlen(after) >= strlen(before) && strstr(after + strlen(before), "restore"))
                fprintf(stderr, "   root's writer saw: %s\n", after + strlen(before));
        free(before);
        free(after);
        /* Nor with no document at all, or one without components (a restore addressed to the
         * writers running now): those are bob's own writers only. */
        pid_t bw = writer_as_args(h, BOB, "bobapp", NULL, NULL);
        char *empty = NULL;
        CHECK(harness_sh(h, &empty, "jq -c '.components = []' %s/openvss/backup-components.json", backup) == 0);
        const char *const docs[] = { "", empty ? empty : "" };
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                harness_clear_log(h);
                run_as(BOB, bob_restores_with, h, (void *) docs[i], "bob restoring with no components");
                after = harness_events(h, "rootapp");
                CHECK(after && !strstr(after, "restore"));
                if (after && strstr(after, "restore"))
                        fprintf(stderr, "   root's writer saw (document '%s'): %s\n", docs[i], after);
                free(after);
                after = harness_events(h, "bobapp");
                CHECK(after && strstr(after, "pre-restore") && strstr(after, "post-restore"));
                free(after);
        }
        stop_writer(bw);
        free(empty);
        free(doc);
        harness_free(h);
}

int main(int argc, char *argv[]) {
        if (geteuid() != 0) {
                fprintf(stderr, "test-restore-trust: needs root (it makes users, starts vssd and restores as root)\n");
                return 77;
        }
        static const TestCase cases[] = {
                { "trust-restore-writer-target", test_writer_target },
                { "trust-restore-to-wins", test_to_wins },
                { "trust-restore-no-symlink", test_no_symlink },
                { "trust-restore-refused-archive", test_refused_archive },
                { "trust-writer-files-owner", test_writer_files_owner },
                { "trust-writer-files-foreign", test_writer_files_foreign },
                { "trust-writer-files-chain", test_writer_files_chain },
                { "trust-restore-user-backup", test_user_backup },
                { "trust-participation-symlink", test_participation_symlink },
                { "trust-restore-user-privilege", test_user_privilege },
                { "trust-backup-symlink-swap", test_backup_symlink_swap },
                { "trust-exec-mount-swap", test_exec_mount_swap },
                { "trust-restore-in-place-symlink-above", test_in_place_symlink_above },
                { "trust-backup-dest", test_backup_dest },
                { "trust-restore-to-swapped", test_restore_to_swapped },
                { "trust-restore-to-private-parents", test_restore_to_private_parents },
                { "trust-restore-user-store-rights", test_user_store_rights },
                { "trust-restore-class-squatted", test_class_squatted },
                { "trust-restore-chain-foreign-base", test_chain_foreign_base },
                { "trust-restore-forged-document", test_restore_forged_document },
                {},
        };
        return test_main(argc, argv, cases);
}
