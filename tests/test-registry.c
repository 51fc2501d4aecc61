/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The SQLite shadow registry in a scratch state directory. TAP output. */

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include <signal.h>
#include <sys/wait.h>

#include "daemon/registry-internal.h"
#include "tests/tap.h"

static char tmp[] = "/tmp/test-registry-XXXXXX";

static vss_id new_id(void) {
        sd_id128_t id;
        vss_id v;

        if (sd_id128_randomize(&id) < 0)
                abort();
        memcpy(v.bytes, id.bytes, sizeof v.bytes);
        return v;
}

static bool id_eq(const vss_id *a, const vss_id *b) {
        return memcmp(a->bytes, b->bytes, sizeof a->bytes) == 0;
}

static ShadowRecord shadow(const vss_id *set, uint64_t created, const char *orig) {
        return (ShadowRecord) {
                .shadow_id = new_id(),
                .set_id = *set,
                .original_path = (char *) orig,
                .shadow_path = (char *) "/var/lib/openvss/shadows/x",
                .provider = (char *) "file",
                .created_usec = created,
                .attributes = 0x1d,
        };
}

static bool record_eq(const ShadowRecord *a, const ShadowRecord *b) {
        return id_eq(&a->shadow_id, &b->shadow_id) && id_eq(&a->set_id, &b->set_id) &&
               !strcmp(a->original_path, b->original_path) && !strcmp(a->shadow_path, b->shadow_path) &&
               !strcmp(a->provider, b->provider) && a->created_usec == b->created_usec &&
               a->attributes == b->attributes;
}

/* Direct SQLite access, to look at what the registry left on disk. */
static int db_query_int(const char *sql, long long *ret) {
        char path[sizeof tmp + 32];
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        int rc;

        snprintf(path, sizeof path, "%s/registry.db", tmp);
        if (registry_sqlite_load() < 0) /* SQLite is vssd's only while a registry needs it */
                return -ELIBACC;
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(s);
                if (rc == SQLITE_ROW) {
                        *ret = sqlite3_column_int64(s, 0);
                        rc = SQLITE_OK;
                } else if (rc == SQLITE_DONE) {
                        *ret = 0;
                        rc = SQLITE_OK;
                }
        }
        sqlite3_finalize(s);
        sqlite3_close(db);
        registry_sqlite_unload();
        return rc == SQLITE_OK ? 0 : -EIO;
}

static int db_text(const char *sql, char *buf, size_t n) {
        char path[sizeof tmp + 32];
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        int rc;

        snprintf(path, sizeof path, "%s/registry.db", tmp);
        if (registry_sqlite_load() < 0)
                return -ELIBACC;
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
        if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)) {
                snprintf(buf, n, "%s", (const char *) sqlite3_column_text(s, 0));
                rc = SQLITE_OK;
        } else
                rc = SQLITE_ERROR;
        sqlite3_finalize(s);
        sqlite3_close(db);
        registry_sqlite_unload();
        return rc == SQLITE_OK ? 0 : -EIO;
}

static int rm_tmp(void) {
        DIR *d = opendir(tmp);
        struct dirent *de;
        int r = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    unlinkat(dirfd(d), de->d_name, 0) < 0)
                        r = -errno;
        closedir(d);
        if (rmdir(tmp) < 0 && r == 0)
                r = -errno;
        return r;
}

/* The connection's PRAGMA synchronous (2: FULL). */
static long long sync_mode(Registry *r) {
        sqlite3_stmt *s = NULL;
        long long v = -1;
        if (sqlite3_prepare_v2(r->db, "PRAGMA synchronous", -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
                v = sqlite3_column_int64(s, 0);
        sqlite3_finalize(s);
        return v;
}

/* The frozen journal and a location said in the window are committed without an fsync (NORMAL),
 * every other write (the 'creating' record too) stays FULL, and what they wrote survives vssd
 * killed right after. */
static void test_crash_safe(void) {
        Registry *r = NULL;
        vss_id set = new_id();
        ShadowRecord sh = shadow(&set, 10, "/srv/crash");
        const char *mounts[] = { "/mnt/crash" };
        CHECK(registry_open(tmp, &r) == 0 && sync_mode(r) == 2, "synchronous is FULL");
        if (!r)
                return;
        CHECK(registry_add_set_shadows(r, &set, 0, 10, &sh, 1) == 0 && sync_mode(r) == 2,
              "FULL again after the 'creating' record");
        CHECK(registry_add_set_shadows(r, &set, 0, 10, &sh, 1) == -EEXIST && sync_mode(r) == 2,
              "FULL again after a failed one");
        CHECK(registry_journal_frozen(r, &set, mounts, 1) == 0 && sync_mode(r) == 2, "FULL again after the frozen journal");
        CHECK(registry_set_shadow_path(r, &sh.shadow_id, "/srv/crash.shadow") == 0 && sync_mode(r) == 2,
              "FULL again after a location said in the window");
        CHECK(registry_remove_set(r, &set) == 0 && registry_clear_frozen(r) == 0, "cleared");
        r = registry_free(r);

        pid_t pid = fork();
        if (pid == 0) {
                /* vssd records a set and journals a freeze, and is killed before anything else. */
                if (registry_open(tmp, &r) < 0 || registry_add_set_shadows(r, &set, 0, 10, &sh, 1) < 0 ||
                    registry_journal_frozen(r, &set, mounts, 1) < 0 ||
                    registry_set_shadow_path(r, &sh.shadow_id, "/srv/crash.shadow") < 0)
                        _exit(1);
                raise(SIGKILL);
        }
        int st = 0;
        CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
              "recorded, then killed");
        vss_id *ids = NULL;
        char **mnts = NULL;
        size_t n = 0, nm = 0;
        CHECK(registry_open(tmp, &r) == 0, "reopen after the kill");
        if (!r)
                return;
        CHECK(registry_list_creating_sets(r, &ids, &n) == 0 && n == 1 && id_eq(&ids[0], &set),
              "the 'creating' record survived the kill");
        free(ids);
        CHECK(registry_list_frozen_of(r, &set, &mnts, &nm) == 0 && nm == 1 && !strcmp(mnts[0], "/mnt/crash"),
              "the frozen journal survived the kill");
        for (size_t i = 0; i < nm; i++)
                free(mnts[i]);
        free(mnts);
        ShadowRecord *recs = NULL;
        CHECK(registry_list_set_shadows(r, &set, true, &recs, &n) == 0 && n == 1 &&
                      !strcmp(recs[0].shadow_path, "/srv/crash.shadow"),
              "the location said in the window survived the kill");
        shadow_records_free(recs, n);
        CHECK(registry_remove_set(r, &set) == 0 && registry_clear_frozen(r) == 0, "cleared");
        registry_free(r);
}

int main(void) {
        Registry *r = NULL;
        vss_id s1 = new_id(), s2 = new_id(), s3 = new_id(), unknown = new_id();
        ShadowRecord a, b, c, d, e, got = {}, *list = NULL;
        vss_id *ids = NULL;
        size_t n = 0;
        struct stat st;
        char path[sizeof tmp + 32], text[64];
        long long v;
        int k;

        if (!mkdtemp(tmp)) {
                printf("Bail out! mkdtemp: %m\n");
                return 1;
        }
        snprintf(path, sizeof path, "%s/registry.db", tmp);

        CHECK(registry_free(NULL) == NULL, "registry_free(NULL)");
        CHECK(registry_open("/nonexistent/state", &r) == -ENOENT && !r, "missing state dir gives -ENOENT");

        k = registry_open(tmp, &r);
        CHECK(k == 0 && r, "open");
        if (!r) {
                printf("Bail out! cannot open registry: %s\n", strerror(-k));
                rm_tmp();
                return 1;
        }
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "database file is 0600");
        CHECK(db_text("PRAGMA journal_mode", text, sizeof text) == 0 && !strcmp(text, "wal"), "WAL mode");
        CHECK(db_query_int("PRAGMA user_version", &v) == 0 && v == 7,
              "schema version 7 (sets and shadows; frozen journal; exposures; writer classes; deleting; "
              "OpenVSS's attributes moved; exposures' mount identity)");

        /* Set 1, creating, with two shadows. */
        CHECK(registry_add_set(r, &s1, 0x1d, 1000) == 0, "add set");
        CHECK(registry_add_set(r, &s1, 0x1d, 1000) == -EEXIST, "duplicate set gives -EEXIST");
        a = shadow(&s1, 2000, "/srv/a");
        b = shadow(&s1, 1500, "/srv/b");
        CHECK(registry_add_shadow(r, &a) == 0, "add shadow a");
        CHECK(registry_add_shadow(r, &b) == 0, "add shadow b");
        CHECK(registry_add_shadow(r, &a) == -EEXIST, "duplicate shadow gives -EEXIST");
        {
                ShadowRecord x = shadow(&unknown, 1, "/x");
                CHECK(registry_add_shadow(r, &x) == -ENOENT, "shadow of an unknown set gives -ENOENT");
                x.set_id = s1;
                x.provider = NULL;
                CHECK(registry_add_shadow(r, &x) == -EINVAL, "shadow without provider gives -EINVAL");
                x = shadow(&s2, 1, "/x");
                x.shadow_id = a.shadow_id;
                CHECK(registry_add_set(r, &s2, 0, 900) == 0 && registry_add_shadow(r, &x) == -EEXIST,
                      "shadow id taken by another set gives -EEXIST");
        }

        /* Not visible before commit. */
        k = registry_list_shadows(r, &list, &n);
        CHECK(k == 0 && n == 0 && !list, "creating set not listed");
        CHECK(registry_get_shadow(r, &a.shadow_id, &got) == -ENOENT, "creating shadow not found by get");
        list = (ShadowRecord *) 1;
        CHECK(registry_list_set_shadows(r, &s1, false, &list, &n) == -ENOENT && list == (ShadowRecord *) 1,
              "creating set hidden without include_creating, output untouched");
        list = NULL;
        k = registry_list_set_shadows(r, &s1, true, &list, &n);
        CHECK(k == 0 && n == 2 && record_eq(&list[0], &b) && record_eq(&list[1], &a),
              "creating set listed with include_creating, ordered by creation");
        shadow_records_free(list, n);
        list = NULL;

        k = registry_list_creating_sets(r, &ids, &n);
        CHECK(k == 0 && n == 2 && id_eq(&ids[0], &s2) && id_eq(&ids[1], &s1), "creating sets listed, oldest first");
        free(ids);
        ids = NULL;

        /* Commit. */
        CHECK(registry_commit_set(r, &s1) == 0, "commit set");
        CHECK(registry_commit_set(r, &s1) == 0, "commit again is fine");
        CHECK(registry_commit_set(r, &unknown) == -ENOENT, "commit unknown gives -ENOENT");
        k = registry_list_shadows(r, &list, &n);
        CHECK(k == 0 && n == 2 && record_eq(&list[0], &b) && record_eq(&list[1], &a), "committed shadows listed in order");
        shadow_records_free(list, n);
        list = NULL;
        k = registry_get_shadow(r, &a.shadow_id, &got);
        CHECK(k == 0 && record_eq(&got, &a), "get shadow");
        shadow_record_done(&got);
        CHECK(!got.original_path && !got.shadow_path && !got.provider, "shadow_record_done clears strings");
        CHECK(registry_get_shadow(r, &unknown, &got) == -ENOENT, "get unknown gives -ENOENT");
        k = registry_list_creating_sets(r, &ids, &n);
        CHECK(k == 0 && n == 1 && id_eq(&ids[0], &s2), "committed set no longer creating");
        free(ids);
        ids = NULL;

        /* Set 2 stays creating with a shadow; set 3 committed, same timestamps: ordered by id. */
        c = shadow(&s2, 3000, "/srv/c");
        CHECK(registry_add_shadow(r, &c) == 0, "add shadow to second set");
        d = shadow(&s3, 5000, "/srv/d");
        e = shadow(&s3, 5000, "/srv/e");
        e.created_usec = d.created_usec = UINT64_MAX - 5;
        CHECK(registry_add_set(r, &s3, 0, UINT64_MAX) == -ERANGE && registry_add_shadow(r, &d) == -ERANGE,
              "timestamps beyond INT64_MAX give -ERANGE");
        e.created_usec = d.created_usec = INT64_MAX; /* the largest the signed column takes */
        e.attributes = UINT32_MAX;
        CHECK(registry_add_set(r, &s3, 0, 4000) == 0 && registry_add_shadow(r, &d) == 0 &&
              registry_add_shadow(r, &e) == 0 && registry_commit_set(r, &s3) == 0,
              "third set committed");
        k = registry_list_set_shadows(r, &s3, false, &list, &n);
        {
                bool d_first = memcmp(&d.shadow_id, &e.shadow_id, sizeof(vss_id)) < 0;
                CHECK(k == 0 && n == 2 && record_eq(&list[0], d_first ? &d : &e) &&
                      record_eq(&list[1], d_first ? &e : &d),
                      "same creation time ordered by id; extreme values round-trip");
        }
        shadow_records_free(list, n);
        list = NULL;

        /* Removing shadows: the set goes with its last one. */
        CHECK(registry_remove_shadow(r, &b.shadow_id) == 0, "remove shadow");
        CHECK(registry_remove_shadow(r, &b.shadow_id) == -ENOENT, "remove it again gives -ENOENT");
        k = registry_list_set_shadows(r, &s1, false, &list, &n);
        CHECK(k == 0 && n == 1 && record_eq(&list[0], &a), "set keeps its other shadow");
        shadow_records_free(list, n);
        list = NULL;
        CHECK(registry_remove_shadow(r, &a.shadow_id) == 0, "remove last shadow of a set");
        CHECK(registry_list_set_shadows(r, &s1, true, &list, &n) == -ENOENT, "set removed with its last shadow");
        CHECK(registry_remove_set(r, &s1) == -ENOENT, "remove removed set gives -ENOENT");
        CHECK(registry_remove_set(r, &unknown) == -ENOENT, "remove unknown set gives -ENOENT");
        CHECK(registry_remove_shadow(r, &unknown) == -ENOENT, "remove unknown shadow gives -ENOENT");

        /* Many shadows, to exercise the list growth. */
        {
                vss_id s4 = new_id();
                bool ok = registry_add_set(r, &s4, 0, 6000) == 0;

                for (unsigned i = 0; ok && i < 100; i++) {
                        ShadowRecord x = shadow(&s4, 10000 + i, "/srv/many");
                        ok = registry_add_shadow(r, &x) == 0;
                }
                ok = ok && registry_commit_set(r, &s4) == 0;
                k = registry_list_shadows(r, &list, &n);
                ok = ok && k == 0 && n == 102;
                for (size_t i = 1; ok && i < n; i++)
                        ok = list[i - 1].created_usec <= list[i].created_usec;
                CHECK(ok, "100 more shadows listed in order");
                shadow_records_free(list, n);
                list = NULL;
                /* Counted as listed: committed only, of that volume, not those being deleted. */
                unsigned cnt = 0;
                ShadowRecord y = shadow(&s2, 20000, "/srv/many"); /* s2 is creating */
                CHECK(registry_add_shadow(r, &y) == 0, "a creating shadow of the volume");
                CHECK(registry_count_volume_shadows(r, "/srv/many", &cnt) == 0 && cnt == 100, "100 shadows of /srv/many counted");
                CHECK(registry_count_volume_shadows(r, "/srv/none", &cnt) == 0 && cnt == 0, "none of another volume");
                k = registry_list_set_shadows(r, &s4, false, &list, &n);
                CHECK(k == 0 && n == 100 && registry_set_deleting(r, &list[0].shadow_id, true) == 0, "one marked deleting");
                shadow_records_free(list, n);
                list = NULL;
                CHECK(registry_count_volume_shadows(r, "/srv/many", &cnt) == 0 && cnt == 99, "99 counted then");
                CHECK(registry_remove_shadow(r, &y.shadow_id) == 0, "the creating one removed");
                CHECK(registry_remove_set(r, &s4) == 0, "remove a set with 100 shadows");
                CHECK(db_query_int("SELECT COUNT(*) FROM shadows", &v) == 0 && v == 3, "its shadows are gone");
        }

        /* Exposures keep their mount's identity, every bit of it. */
        {
                Exposure ex = {};
                const MountIdentity mi = { .id = 4711, .unique = UINT64_MAX - 1, .boot = s2 };
                CHECK(registry_add_exposure(r, &a.shadow_id, "/mnt/x", &mi) == 0, "add an exposure");
                CHECK(registry_add_exposure(r, &a.shadow_id, "/mnt/x", &mi) == -EEXIST, "the same place again: -EEXIST");
                CHECK(registry_get_exposure(r, "/mnt/x", &ex) == 0 && ex.at && !strcmp(ex.at, "/mnt/x") &&
                              id_eq(&ex.shadow_id, &a.shadow_id) && ex.mount.id == 4711 &&
                              ex.mount.unique == UINT64_MAX - 1 && id_eq(&ex.mount.boot, &s2),
                      "read back with its mount identity");
                free(ex.at);
                CHECK(registry_get_exposure(r, "/mnt/y", &ex) == -ENOENT, "none elsewhere: -ENOENT");
                CHECK(registry_remove_exposure(r, "/mnt/x") == 0 && registry_get_exposure(r, "/mnt/x", &ex) == -ENOENT,
                      "removed");
        }

        /* Persistence. */
        r = registry_free(r);
        CHECK(!r, "registry_free returns NULL");
        CHECK(registry_open(tmp, &r) == 0, "reopen");
        k = registry_list_creating_sets(r, &ids, &n);
        CHECK(k == 0 && n == 1 && id_eq(&ids[0], &s2), "creating set persisted");
        free(ids);
        ids = NULL;
        k = registry_list_shadows(r, &list, &n);
        CHECK(k == 0 && n == 2 && id_eq(&list[0].set_id, &s3) && id_eq(&list[1].set_id, &s3),
              "committed shadows persisted");
        shadow_records_free(list, n);
        list = NULL;
        k = registry_list_set_shadows(r, &s2, true, &list, &n);
        CHECK(k == 0 && n == 1 && record_eq(&list[0], &c), "creating set's shadow persisted");
        shadow_records_free(list, n);
        list = NULL;
        {
                char buf[VSS_ID_STRING_MAX], sql[128];
                const uint8_t *x = c.shadow_id.bytes;

                snprintf(buf, sizeof buf,
                         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", x[0], x[1], x[2],
                         x[3], x[4], x[5], x[6], x[7], x[8], x[9], x[10], x[11], x[12], x[13], x[14], x[15]);
                snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM shadows WHERE shadow_id = '%s'", buf);
                CHECK(db_query_int(sql, &v) == 0 && v == 1, "ids stored as lowercase uuid text");
        }

        /* A second connection (say, a tool) sees and makes changes; WAL and the busy timeout
         * make that safe. */
        {
                Registry *r2 = NULL;
                vss_id s5 = new_id();

                CHECK(registry_open(tmp, &r2) == 0, "second connection");
                CHECK(registry_add_set(r2, &s5, 0, 7000) == 0, "write through the second connection");
                k = registry_list_creating_sets(r, &ids, &n);
                CHECK(k == 0 && n == 2 && id_eq(&ids[1], &s5), "first connection sees it");
                free(ids);
                ids = NULL;
                CHECK(registry_remove_set(r, &s5) == 0, "and removes it");
                registry_free(r2);
        }

        /* Released (an idle vssd): SQLite is unloaded, and the next call opens it again. */
        registry_release(r);
        CHECK(!dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_NOLOAD), "SQLite unloaded while released");
        /* Kept, so the next commits overwrite its blocks rather than grow a new file. */
        {
                char wal[sizeof tmp + 32];
                snprintf(wal, sizeof(wal), "%s/registry.db-wal", tmp);
                CHECK(stat(wal, &st) == 0 && S_ISREG(st.st_mode), "the WAL file stays while released");
        }
        k = registry_list_creating_sets(r, &ids, &n);
        CHECK(k == 0 && n == 1, "a released registry reopens at the next call");
        free(ids);
        ids = NULL;

        /* Crash recovery: drop the creating set. */
        CHECK(registry_remove_set(r, &s2) == 0, "remove creating set");
        k = registry_list_creating_sets(r, &ids, &n);
        CHECK(k == 0 && n == 0 && !ids, "no creating sets left");
        CHECK(db_query_int("SELECT COUNT(*) FROM shadows WHERE set_id NOT IN (SELECT set_id FROM snapshot_sets)", &v) == 0 &&
              v == 0, "no orphan shadows");
        /* A shadow marked deleting is listed nowhere but in the list of deletes to finish. */
        {
                vss_id set = new_id();
                ShadowRecord sh = shadow(&set, 8000, "/data/deleting"), *recs = NULL, gotd = {};
                size_t nr = 0, before = 0;
                CHECK(registry_list_shadows(r, &recs, &before) == 0, "list before");
                shadow_records_free(recs, before);
                CHECK(registry_add_set(r, &set, 0, 8000) == 0 && registry_add_shadow(r, &sh) == 0 &&
                      registry_commit_set(r, &set) == 0, "a committed shadow");
                CHECK(registry_set_deleting(r, &sh.shadow_id, true) == 0, "mark it deleting");
                CHECK(registry_get_shadow(r, &sh.shadow_id, &gotd) == -ENOENT, "not found while deleting");
                CHECK(registry_list_shadows(r, &recs, &nr) == 0 && nr == before, "not listed while deleting");
                shadow_records_free(recs, nr);
                CHECK(registry_list_deleting(r, &recs, &nr) == 0 && nr == 1 && id_eq(&recs[0].shadow_id, &sh.shadow_id),
                      "listed as a delete to finish");
                shadow_records_free(recs, nr);
                CHECK(registry_set_deleting(r, &sh.shadow_id, false) == 0 && registry_get_shadow(r, &sh.shadow_id, &gotd) == 0,
                      "unmarked: found again");
                shadow_record_done(&gotd);
                CHECK(registry_list_deleting(r, &recs, &nr) == 0 && nr == 0, "no delete to finish");
                free(recs);
                vss_id nobody = new_id();
                CHECK(registry_set_deleting(r, &nobody, true) == -ENOENT, "unknown shadow: -ENOENT");
                CHECK(registry_remove_set(r, &set) == 0, "remove it");
        }
        /* The frozen-filesystem journal: written, listed, cleared. */
        {
                const char *mounts[] = { "/mnt/a", "/mnt/b" };
                char **mnts = NULL;
                size_t nm = 0;
                vss_id set = {};
                set.bytes[0] = 7;
                CHECK(registry_journal_frozen(r, &set, mounts, 2) == 0, "journal two frozen mounts");
                CHECK(registry_list_frozen(r, &mnts, &nm) == 0 && nm == 2 && !strcmp(mnts[0], "/mnt/a") &&
                      !strcmp(mnts[1], "/mnt/b"), "list frozen mounts");
                for (size_t i = 0; i < nm; i++)
                        free(mnts[i]);
                free(mnts);
                CHECK(registry_clear_frozen(r) == 0 && registry_list_frozen(r, &mnts, &nm) == 0 && nm == 0,
                      "clear frozen journal");
                free(mnts);
        }
        {
                /* Per set: the sets, one set's mounts, clearing one set leaves the other. */
                const char *ma[] = { "/mnt/a" }, *mb[] = { "/mnt/b" };
                char **mnts = NULL;
                vss_id set1 = {}, set2 = {}, *sets = NULL;
                size_t nm = 0, ns = 0;
                set1.bytes[0] = 1;
                set2.bytes[0] = 2;
                CHECK(registry_journal_frozen(r, &set1, ma, 1) == 0 && registry_journal_frozen(r, &set2, mb, 1) == 0,
                      "journal two sets");
                CHECK(registry_list_frozen_sets(r, &sets, &ns) == 0 && ns == 2, "list frozen sets");
                free(sets);
                CHECK(registry_list_frozen_of(r, &set2, &mnts, &nm) == 0 && nm == 1 && !strcmp(mnts[0], "/mnt/b"),
                      "list one set's frozen mounts");
                for (size_t i = 0; i < nm; i++)
                        free(mnts[i]);
                free(mnts);
                CHECK(registry_clear_frozen_of(r, &set1) == 0 && registry_list_frozen(r, &mnts, &nm) == 0 && nm == 1 &&
                      !strcmp(mnts[0], "/mnt/b"), "clearing one set keeps the other");
                for (size_t i = 0; i < nm; i++)
                        free(mnts[i]);
                free(mnts);
                CHECK(registry_clear_frozen_of(r, &set1) == 0, "clearing a set without rows is fine");
                CHECK(registry_clear_frozen(r) == 0, "clear all");
        }
        {
                /* Writer class bindings. */
                vss_id c1 = {}, c2 = {};
                ClassRecord *cr = NULL;
                size_t nc = 0;
                c1.bytes[0] = 0xc1;
                c2.bytes[0] = 0xc2;
                CHECK(registry_bind_class(r, &c1, 1001) == 0 && registry_bind_class(r, &c2, 1002) == 0, "bind classes");
                CHECK(registry_bind_class(r, &c1, 1003) == -EEXIST, "a bound class gives -EEXIST");
                CHECK(registry_list_classes(r, &cr, &nc) == 0 && nc == 2 && vss_id_equal(&cr[0].class_id, &c1) &&
                      cr[0].uid == 1001 && cr[1].uid == 1002, "list class bindings");
                free(cr);
        }
        r = registry_free(r);
        test_crash_safe();

        /* A registry of version 5: OpenVSS's attributes in Microsoft's range move out of it. */
        CHECK(db_query_int("INSERT INTO snapshot_sets VALUES ('00000000-0000-4000-8000-0000000000a5', 0, 1, "
                           "'committed')", &v) == 0 &&
                      db_query_int("INSERT INTO shadows (shadow_id, set_id, original_path, shadow_path, provider, "
                                   "created_usec, attributes) VALUES ('00000000-0000-4000-8000-0000000000b5', "
                                   "'00000000-0000-4000-8000-0000000000a5', '/v5', '/v5.shadow', 'file', 1, 196617)",
                                   &v) == 0 &&
                      db_query_int("INSERT INTO exposures (at, shadow_id) VALUES ('/v5.at', "
                                   "'00000000-0000-4000-8000-0000000000b5')", &v) == 0 &&
                      db_query_int("ALTER TABLE exposures DROP COLUMN mount_id", &v) == 0 &&
                      db_query_int("ALTER TABLE exposures DROP COLUMN mount_unique", &v) == 0 &&
                      db_query_int("ALTER TABLE exposures DROP COLUMN boot_id", &v) == 0 &&
                      db_query_int("PRAGMA user_version = 5", &v) == 0,
              "a version 5 registry with attributes 0x00030009 and an exposure");
        CHECK(registry_open(tmp, &r) == 0 && r, "migrated to version 7");
        CHECK(db_query_int("PRAGMA user_version", &v) == 0 && v == 7, "version 7");
        CHECK(db_query_int("SELECT attributes FROM shadows WHERE shadow_id = '00000000-0000-4000-8000-0000000000b5'",
                           &v) == 0 && v == 0x60000009LL, "attributes 0x60000009");
        {
                Exposure ex = {};
                CHECK(r && registry_get_exposure(r, "/v5.at", &ex) == 0 && ex.mount.id == 0 && ex.mount.unique == 0 &&
                              vss_id_is_null(&ex.mount.boot),
                      "the exposure kept, its mount not known");
                free(ex.at);
        }
        r = registry_free(r);

        /* A database from the future is refused. */
        CHECK(db_query_int("PRAGMA user_version = 99", &v) == 0, "bump schema version");
        CHECK(registry_open(tmp, &r) == -EPROTONOSUPPORT && !r, "newer schema gives -EPROTONOSUPPORT");

        /* Not a database at all. */
        {
                char junk[4096];
                int fd;

                memset(junk, 'x', sizeof junk);
                fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
                CHECK(fd >= 0 && write(fd, junk, sizeof junk) == (ssize_t) sizeof junk && close(fd) == 0,
                      "overwrite database with junk");
                CHECK(registry_open(tmp, &r) == -EBADMSG && !r, "junk gives -EBADMSG");
        }

        CHECK(rm_tmp() == 0 && stat(tmp, &st) < 0, "clean up");

        printf("1..%u\n", n_tests);
        return n_failed > 0;
}
