/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>
#include <unistd.h>

#include "lib/common.h"
#include "daemon/registry-internal.h"

#ifndef SQLITE_OPEN_NOFOLLOW /* SQLite < 3.31; open() with O_NOFOLLOW below still checks */
#define SQLITE_OPEN_NOFOLLOW 0
#endif

#define REGISTRY_FILE "registry.db"
#define REGISTRY_BUSY_TIMEOUT_MS 5000

_Static_assert(sizeof(vss_id) == sizeof(sd_id128_t), "vss_id and sd_id128_t must share a layout");


/* Schema migrations: migrations[i] takes user_version i to i + 1. Never edit a released step,
 * append a new one. */
static const char *const migrations[] = {
        "CREATE TABLE snapshot_sets ("
        "        set_id TEXT PRIMARY KEY NOT NULL,"
        "        context INTEGER NOT NULL,"
        "        created_usec INTEGER NOT NULL,"
        "        state TEXT NOT NULL CHECK (state IN ('creating', 'committed'))"
        ");"
        "CREATE TABLE shadows ("
        "        shadow_id TEXT PRIMARY KEY NOT NULL,"
        "        set_id TEXT NOT NULL REFERENCES snapshot_sets(set_id) ON DELETE CASCADE,"
        "        original_path TEXT NOT NULL,"
        "        shadow_path TEXT NOT NULL,"
        "        provider TEXT NOT NULL,"
        "        created_usec INTEGER NOT NULL,"
        "        attributes INTEGER NOT NULL"
        ");"
        "CREATE INDEX shadows_by_set ON shadows(set_id);",
        /* 2: filesystems vssd froze (flush-and-hold), so a restart can thaw what a crash left. */
        "CREATE TABLE frozen ("
        "        mount_point TEXT PRIMARY KEY NOT NULL,"
        "        set_id TEXT NOT NULL"
        ");",
        /* 3: where shadows are exposed (mounted read-only). */
        "CREATE TABLE exposures ("
        "        at TEXT PRIMARY KEY NOT NULL,"
        "        shadow_id TEXT NOT NULL"
        ");",
        /* 4: writer class ids and the uid each is bound to, so a restart cannot free them for the
         * first comer. */
        "CREATE TABLE writer_classes ("
        "        class_id TEXT PRIMARY KEY NOT NULL,"
        "        uid INTEGER NOT NULL"
        ");",
        /* 5: a shadow whose data is being deleted: never listed again, and a restart finishes it. */
        "ALTER TABLE shadows ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;",
        /* 6: OpenVSS's own attributes move out of Microsoft's range (0x00010000 -> 0x20000000,
         * 0x00020000 -> 0x40000000: Microsoft's HARDWARE_ASSISTED and DIFFERENTIAL). */
        "UPDATE shadows SET attributes = (attributes & ~196608) | ((attributes & 196608) * 8192);",
        /* 7: which mount an exposure is (statx's mount ids and the boot they belong to; zeros:
         * recorded before), so it is found and detached also where a rename of a directory above
         * it has moved it. */
        "ALTER TABLE exposures ADD COLUMN mount_id INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE exposures ADD COLUMN mount_unique INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE exposures ADD COLUMN boot_id TEXT NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';",
};
#define REGISTRY_SCHEMA_VERSION ((int) ELEMENTSOF(migrations))

#define SHADOW_COLUMNS \
        "sh.shadow_id, sh.set_id, sh.original_path, sh.shadow_path, sh.provider, sh.created_usec, sh.attributes"

/* Reads a row of SHADOW_COLUMNS. */
static int read_shadow(Registry *r, sqlite3_stmt *s, void *ret) {
        ShadowRecord rec = {};
        int k;

        if ((k = column_id(r, s, 0, &rec.shadow_id)) < 0 || (k = column_id(r, s, 1, &rec.set_id)) < 0 ||
            (k = column_strdup(r, s, 2, &rec.original_path)) < 0 ||
            (k = column_strdup(r, s, 3, &rec.shadow_path)) < 0 || (k = column_strdup(r, s, 4, &rec.provider)) < 0) {
                shadow_record_done(&rec);
                return k;
        }
        rec.created_usec = (uint64_t) sqlite3_column_int64(s, 5);
        rec.attributes = (uint32_t) sqlite3_column_int64(s, 6);

        *(ShadowRecord *) ret = rec;
        return 0;
}

static void shadow_array_free(void *a, size_t n) {
        shadow_records_free(a, n);
}

/* The shadows a query of SHADOW_COLUMNS returns (?1 bound to id when set). */
static int collect_shadows(Registry *r, const char *sql, const vss_id *id, ShadowRecord **ret, size_t *ret_n) {
        return collect_rows(r, sql, id, sizeof(ShadowRecord), read_shadow, shadow_array_free, (void **) ret, ret_n);
}

void shadow_record_done(ShadowRecord *s) {
        if (!s)
                return;
        free(s->original_path);
        free(s->shadow_path);
        free(s->provider);
        s->original_path = s->shadow_path = s->provider = NULL;
}

void shadow_records_free(ShadowRecord *a, size_t n) {
        if (!a)
                return;
        for (size_t i = 0; i < n; i++)
                shadow_record_done(&a[i]);
        free(a);
}

/* ---- open ---- */

static int get_user_version(Registry *r, int *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        k = prepare(r, "PRAGMA user_version", &s);
        if (k < 0)
                return k;
        k = step_row(s);
        if (k < 0)
                return k;
        if (k == 0)
                return -EIO;
        *ret = sqlite3_column_int(s, 0);
        return 0;
}

static int migrate_locked(Registry *r) {
        char sql[64];
        int v, k;

        /* Read again under the write lock: another opener may have migrated meanwhile. */
        k = get_user_version(r, &v);
        if (k < 0)
                return k;
        if (v > REGISTRY_SCHEMA_VERSION || v < 0)
                return -EPROTONOSUPPORT;
        if (v == REGISTRY_SCHEMA_VERSION)
                return 0;

        for (; v < REGISTRY_SCHEMA_VERSION; v++) {
                k = exec(r, migrations[v]);
                if (k < 0)
                        return k;
        }
        /* PRAGMA takes no bound parameters; v is our own integer. */
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v);
        return exec(r, sql);
}

static int migrate(Registry *r) {
        int v, k;

        k = get_user_version(r, &v);
        if (k < 0)
                return k;
        if (v == REGISTRY_SCHEMA_VERSION)
                return 0;
        if (v > REGISTRY_SCHEMA_VERSION || v < 0)
                return -EPROTONOSUPPORT;

        return IN_TRANSACTION(r, true, migrate_locked(r));
}

static int registry_open_path(const char *path, Registry **ret);

static int set_wal(Registry *r) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        const char *mode;
        int k;

        /* Readers never block the writer, and a crash cannot tear a transaction. */
        k = prepare(r, "PRAGMA journal_mode = WAL", &s);
        if (k < 0)
                return k;
        k = step_row(s);
        if (k < 0)
                return k;
        mode = (const char *) sqlite3_column_text(s, 0);
        if (k == 0 || !mode || strcasecmp(mode, "wal") != 0)
                return -EIO; /* the filesystem cannot do WAL (no shared memory) */
        return 0;
}

int registry_open(const char *state_dir, Registry **ret) {
        return registry_open_full(state_dir, ret, NULL, 0);
}

int registry_open_full(const char *state_dir, Registry **ret, char *errbuf, size_t errlen) {
        _cleanup_free_ char *path = NULL;
        int k;

        if (isempty(state_dir) || !ret)
                return -EINVAL;
        if (asprintf(&path, "%s/" REGISTRY_FILE, state_dir) < 0)
                return -ENOMEM;
        k = registry_check_file(state_dir, path, REGISTRY_SCHEMA_VERSION, errbuf, errlen);
        if (k < 0)
                return k;
        k = registry_open_path(path, ret);
        if (k < 0 && errbuf && errlen > 0) {
                if (k == -ENOSPC)
                        snprintf(errbuf, errlen, "%s cannot be written: the state directory %s is full. Free space "
                                 "there and start vssd again.", path, state_dir);
                else
                        snprintf(errbuf, errlen, "%s cannot be opened: %s", path, strerror(-k));
        }
        return k;
}

/* The connection: SQLite loaded, the file opened, its settings (per connection) made. */
int registry_connect(Registry *r) {
        int rc, k;

        if (r->db)
                return 0;
        k = registry_sqlite_load();
        if (k < 0)
                return k;
        rc = sqlite3_open_v2(r->path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc != SQLITE_OK) {
                k = sql_errno(rc);
                goto fail;
        }
        rc = sqlite3_extended_result_codes(r->db, 1);
        if (rc == SQLITE_OK)
                rc = sqlite3_busy_timeout(r->db, REGISTRY_BUSY_TIMEOUT_MS);
        if (rc != SQLITE_OK) {
                k = sql_errno(rc);
                goto fail;
        }
        /* The WAL file is kept when the registry closes (vssd unloads SQLite when idle), and
         * checkpointed every 64 pages (~6 sets) rather than 1000: a commit then overwrites blocks
         * the file already has, whose fdatasync is a flush, where one that grows the file also
         * commits the filesystem's journal (2.0 against 1.3 ms on a loop XFS here; a set makes
         * two). The file stays as large as the largest transaction made it. */
        int persist = 1;
        (void) sqlite3_file_control(r->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
        k = set_wal(r);
        /* foreign_keys is per connection and a no-op inside a transaction: set it here. FULL, so a
         * committed set survives power loss, not just a crash (only what need not, the frozen
         * journal and a location said during the cut, is committed NORMAL:
         * IN_TRANSACTION_CRASH_SAFE). */
        if (k >= 0)
                k = exec(r, "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 64");
        if (k >= 0)
                return 0;
fail:
        (void) sqlite3_close(r->db); /* a handle even on failure, unless out of memory */
        r->db = NULL;
        registry_sqlite_unload();
        return k;
}

static int registry_open_path(const char *path, Registry **ret) {
        _cleanup_(registry_freep) Registry *r = NULL;
        struct stat st;
        int fd, k;

        /* Create the file ourselves, as SQLite would make it 0644; its -wal/-shm files copy the mode.
         * Closed again before SQLite opens it: closing any fd of the file would drop SQLite's
         * POSIX locks. */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0600);
        if (fd < 0)
                return -errno;
        k = fstat(fd, &st) < 0 ? -errno : S_ISREG(st.st_mode) ? 0 : -EBADF;
        (void) close(fd);
        if (k < 0)
                return k;

        r = calloc(1, sizeof(Registry));
        if (!r || !(r->path = strdup(path)))
                return -ENOMEM;
        k = registry_connect(r);
        if (k < 0)
                return k;
        k = migrate(r);
        if (k < 0)
                return k;

        *ret = TAKE_PTR(r);
        return 0;
}

void registry_release(Registry *r) {
        /* Not inside a transaction; a statement still prepared (none is, between calls) keeps
         * the connection (SQLITE_BUSY). */
        if (!r || !r->db || !sqlite3_get_autocommit(r->db) || sqlite3_close(r->db) != SQLITE_OK)
                return;
        r->db = NULL;
        registry_sqlite_unload();
}

Registry *registry_free(Registry *r) {
        if (!r)
                return NULL;
        /* All statements are finalized by the functions that prepared them. */
        if (r->db) {
                (void) sqlite3_close(r->db);
                registry_sqlite_unload();
        }
        free(r->path);
        free(r);
        return NULL;
}

/* ---- writes ---- */

static int add_set_locked(Registry *r, const vss_id *set_id, uint32_t context, uint64_t created_usec) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        k = prepare(r,
                    "INSERT INTO snapshot_sets (set_id, context, created_usec, state) "
                    "VALUES (?1, ?2, ?3, 'creating')",
                    &s);
        if (k < 0)
                return k;
        if ((k = bind_id(s, 1, set_id)) < 0 || (k = bind_u64(s, 2, context)) < 0 ||
            (k = bind_u64(s, 3, created_usec)) < 0)
                return k;

        rc = sqlite3_step(s);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                return -EEXIST;
        return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

int registry_add_set(Registry *r, const vss_id *set_id, uint32_t context, uint64_t created_usec) {
        if (!r || !set_id)
                return -EINVAL;
        if (created_usec > INT64_MAX)
                return -ERANGE;
        return IN_TRANSACTION(r, true, add_set_locked(r, set_id, context, created_usec));
}

static int get_set_state(Registry *r, const vss_id *set_id, bool *ret_committed) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        const char *state;
        int k;

        k = query_row(r, "SELECT state FROM snapshot_sets WHERE set_id = ?1", set_id, &s);
        if (k < 0)
                return k;
        state = (const char *) sqlite3_column_text(s, 0);
        if (!state)
                return column_error(r);
        if (ret_committed)
                *ret_committed = streq(state, "committed");
        return 0;
}

static int add_shadow_locked(Registry *r, const ShadowRecord *sr) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        k = get_set_state(r, &sr->set_id, NULL);
        if (k < 0)
                return k;

        k = prepare(r,
                    "INSERT INTO shadows (shadow_id, set_id, original_path, shadow_path, provider, "
                    "created_usec, attributes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &s);
        if (k < 0)
                return k;
        if ((k = bind_id(s, 1, &sr->shadow_id)) < 0 || (k = bind_id(s, 2, &sr->set_id)) < 0 ||
            (k = bind_text(s, 3, sr->original_path)) < 0 || (k = bind_text(s, 4, sr->shadow_path)) < 0 ||
            (k = bind_text(s, 5, sr->provider)) < 0 || (k = bind_u64(s, 6, sr->created_usec)) < 0 ||
            (k = bind_u64(s, 7, sr->attributes)) < 0)
                return k;

        rc = sqlite3_step(s);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                return -EEXIST;
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
                return -ENOENT;
        return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

int registry_add_shadow(Registry *r, const ShadowRecord *s) {
        if (!r || !s || !s->original_path || !s->shadow_path || !s->provider)
                return -EINVAL;
        if (s->created_usec > INT64_MAX)
                return -ERANGE;
        return IN_TRANSACTION(r, true, add_shadow_locked(r, s));
}

static int add_set_shadows_locked(Registry *r, const vss_id *set_id, uint32_t context, uint64_t created_usec,
                                  const ShadowRecord *shadows, size_t n) {
        int k = add_set_locked(r, set_id, context, created_usec);
        for (size_t i = 0; k >= 0 && i < n; i++)
                k = add_shadow_locked(r, &shadows[i]);
        return k;
}

int registry_add_set_shadows(Registry *r, const vss_id *set_id, uint32_t context, uint64_t created_usec,
                             const ShadowRecord *shadows, size_t n) {
        if (!r || !set_id || (n > 0 && !shadows))
                return -EINVAL;
        if (created_usec > INT64_MAX)
                return -ERANGE;
        for (size_t i = 0; i < n; i++) {
                if (!shadows[i].original_path || !shadows[i].shadow_path || !shadows[i].provider)
                        return -EINVAL;
                if (shadows[i].created_usec > INT64_MAX)
                        return -ERANGE;
        }
        /* Durable (FULL): the 'creating' record is what the next start cleans up after a crash of
         * vssd or a power loss; a provider's cut (a btrfs snapshot is durable at once) must not
         * outlive a record lost with the power. vssd writes it while the writers handle
         * PrepareForSnapshot, so its fsync is neither in the freeze window nor added to the set. */
        return IN_TRANSACTION(r, true, add_set_shadows_locked(r, set_id, context, created_usec, shadows, n));
}

int registry_commit_set(Registry *r, const vss_id *set_id) {
        if (!r || !set_id)
                return -EINVAL;
        return IN_TRANSACTION(r, true,
                              exec_on_id(r, "UPDATE snapshot_sets SET state = 'committed' WHERE set_id = ?1", set_id));
}

static int remove_set_locked(Registry *r, const vss_id *set_id) {
        int k;

        /* Explicitly rather than by ON DELETE CASCADE, which depends on foreign_keys being on. */
        k = exec_on_id(r, "DELETE FROM shadows WHERE set_id = ?1", set_id);
        if (k < 0 && k != -ENOENT) /* a set without shadows is fine */
                return k;
        return exec_on_id(r, "DELETE FROM snapshot_sets WHERE set_id = ?1", set_id);
}

int registry_remove_set(Registry *r, const vss_id *set_id) {
        if (!r || !set_id)
                return -EINVAL;
        return IN_TRANSACTION(r, true, remove_set_locked(r, set_id));
}

static int remove_shadow_locked(Registry *r, const vss_id *shadow_id) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        vss_id set_id;
        int k;

        k = query_row(r, "SELECT set_id FROM shadows WHERE shadow_id = ?1", shadow_id, &s);
        if (k < 0)
                return k;
        k = column_id(r, s, 0, &set_id);
        if (k < 0)
                return k;

        k = exec_on_id(r, "DELETE FROM shadows WHERE shadow_id = ?1", shadow_id);
        if (k < 0)
                return k;
        k = exec_on_id(r,
                       "DELETE FROM snapshot_sets WHERE set_id = ?1 "
                       "AND NOT EXISTS (SELECT 1 FROM shadows WHERE set_id = ?1)",
                       &set_id);
        return k == -ENOENT ? 0 : k; /* the set still has other shadows */
}

int registry_remove_shadow(Registry *r, const vss_id *shadow_id) {
        if (!r || !shadow_id)
                return -EINVAL;
        return IN_TRANSACTION(r, true, remove_shadow_locked(r, shadow_id));
}

/* ---- reads ---- */

int registry_get_shadow(Registry *r, const vss_id *shadow_id, ShadowRecord *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        if (!r || !shadow_id || !ret)
                return -EINVAL;

        k = query_row(r,
                      "SELECT " SHADOW_COLUMNS " FROM shadows sh "
                      "JOIN snapshot_sets ss ON ss.set_id = sh.set_id "
                      "WHERE sh.shadow_id = ?1 AND ss.state = 'committed' AND sh.deleting = 0",
                      shadow_id, &s);
        if (k < 0)
                return k;
        return read_shadow(r, s, ret);
}

/* The shadows registry_list_shadows() lists, and registry_count_volume_shadows() counts. */
#define LISTED_SHADOWS                                                  \
        "FROM shadows sh JOIN snapshot_sets ss ON ss.set_id = sh.set_id " \
        "WHERE ss.state = 'committed' AND sh.deleting = 0"

int registry_list_shadows(Registry *r, ShadowRecord **ret, size_t *ret_n) {
        if (!r || !ret || !ret_n)
                return -EINVAL;
        return collect_shadows(r, "SELECT " SHADOW_COLUMNS " " LISTED_SHADOWS " ORDER BY sh.created_usec, sh.shadow_id",
                               NULL, ret, ret_n);
}

int registry_count_volume_shadows(Registry *r, const char *original_path, unsigned *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        if (!r || !original_path || !ret)
                return -EINVAL;
        int k = prepare(r, "SELECT COUNT(*) " LISTED_SHADOWS " AND sh.original_path = ?1", &s);
        if (k < 0)
                return k;
        if (sqlite3_bind_text(s, 1, original_path, -1, SQLITE_TRANSIENT) != SQLITE_OK)
                return -ENOMEM;
        k = step_row(s);
        if (k < 0)
                return k;
        *ret = k > 0 ? (unsigned) sqlite3_column_int(s, 0) : 0;
        return 0;
}

static int list_set_shadows_locked(Registry *r, const vss_id *set_id, bool include_creating, ShadowRecord **ret,
                                   size_t *ret_n) {
        bool committed;
        int k = get_set_state(r, set_id, &committed);
        if (k < 0)
                return k;
        if (!committed && !include_creating)
                return -ENOENT;
        return collect_shadows(r,
                               "SELECT " SHADOW_COLUMNS " FROM shadows sh WHERE sh.set_id = ?1 "
                               "ORDER BY sh.created_usec, sh.shadow_id",
                               set_id, ret, ret_n);
}

int registry_list_set_shadows(Registry *r, const vss_id *set_id, bool include_creating, ShadowRecord **ret,
                              size_t *ret_n) {
        ShadowRecord *a = NULL;
        size_t n = 0;
        int k;

        if (!r || !set_id || !ret || !ret_n)
                return -EINVAL;

        /* One read transaction, so the state and the shadows are from the same moment. */
        k = tx_begin(r, false);
        if (k < 0)
                return k;
        k = tx_end(r, list_set_shadows_locked(r, set_id, include_creating, &a, &n));
        if (k < 0) {
                shadow_records_free(a, n);
                return k;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* The ids of the first column of a query's rows. */
static int read_id(Registry *r, sqlite3_stmt *s, void *ret) {
        return column_id(r, s, 0, ret);
}

static int list_ids(Registry *r, const char *sql, vss_id **ret, size_t *ret_n) {
        if (!r || !ret || !ret_n)
                return -EINVAL;
        return collect_rows(r, sql, NULL, sizeof(vss_id), read_id, array_free, (void **) ret, ret_n);
}

int registry_list_creating_sets(Registry *r, vss_id **ret, size_t *ret_n) {
        return list_ids(r, "SELECT set_id FROM snapshot_sets WHERE state = 'creating' ORDER BY created_usec, set_id",
                        ret, ret_n);
}

int registry_set_deleting(Registry *r, const vss_id *shadow_id, bool deleting) {
        if (!r || !shadow_id)
                return -EINVAL;
        return IN_TRANSACTION(r, true, exec_on_id(r,
                                    deleting ? "UPDATE shadows SET deleting = 1 WHERE shadow_id = ?1"
                                             : "UPDATE shadows SET deleting = 0 WHERE shadow_id = ?1",
                                    shadow_id));
}

int registry_list_deleting(Registry *r, ShadowRecord **ret, size_t *ret_n) {
        if (!r || !ret || !ret_n)
                return -EINVAL;
        return collect_shadows(r, "SELECT " SHADOW_COLUMNS " FROM shadows sh WHERE sh.deleting = 1 "
                                  "ORDER BY sh.created_usec, sh.shadow_id", NULL, ret, ret_n);
}

static int set_shadow_path_locked(Registry *r, const vss_id *shadow_id, const char *shadow_path) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        k = prepare(r, "UPDATE shadows SET shadow_path = ?2 WHERE shadow_id = ?1", &s);
        if (k < 0)
                return k;
        if ((k = bind_id(s, 1, shadow_id)) < 0)
                return k;
        if (sqlite3_bind_text(s, 2, shadow_path, -1, SQLITE_TRANSIENT) != SQLITE_OK)
                return -ENOMEM;
        k = step_done(s);
        if (k < 0)
                return k;
        return sqlite3_changes(r->db) > 0 ? 0 : -ENOENT;
}

int registry_set_shadow_path(Registry *r, const vss_id *shadow_id, const char *shadow_path) {
        if (!r || !shadow_id || !shadow_path)
                return -EINVAL;
        /* Said by the provider inside the freeze window: like the 'creating' record it belongs
         * to, it must survive a crash of vssd (to delete that shadow), not a power loss. */
        return IN_TRANSACTION_CRASH_SAFE(r, set_shadow_path_locked(r, shadow_id, shadow_path));
}

int registry_list_frozen_sets(Registry *r, vss_id **ret, size_t *ret_n) {
        return list_ids(r, "SELECT DISTINCT set_id FROM frozen ORDER BY set_id", ret, ret_n);
}
