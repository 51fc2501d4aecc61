/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry's smaller tables: the frozen journal (filesystems a set froze, so a restart can
 * thaw what a crash left), exposures, and writer class bindings. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/registry-internal.h"

int registry_journal_frozen(Registry *r, const vss_id *set_id, const char *const *mounts, size_t n) {
        int k;

        if (!r || !set_id || (n && !mounts))
                return -EINVAL;
        /* Crash-safe, not power-safe (no fsync before the first Freeze): a freeze does not survive
         * a reboot, so after a power loss there is nothing for the journal to thaw; it is needed
         * only when vssd (and the lease helper) die, and a kill -9 loses no WAL frame written. */
        k = tx_begin_crash_safe(r);
        if (k < 0)
                return k;
        for (size_t i = 0; k >= 0 && i < n; i++) {
                _cleanup_stmt_ sqlite3_stmt *s = NULL;
                k = prepare(r, "INSERT OR REPLACE INTO frozen (mount_point, set_id) VALUES (?1, ?2)", &s);
                if (k >= 0 && sqlite3_bind_text(s, 1, mounts[i], -1, SQLITE_TRANSIENT) != SQLITE_OK)
                        k = -ENOMEM;
                if (k >= 0)
                        k = bind_id(s, 2, set_id);
                if (k >= 0)
                        k = step_done(s);
        }
        return tx_end_crash_safe(r, k);
}

int registry_clear_frozen(Registry *r) {
        if (!r)
                return -EINVAL;
        return exec(r, "DELETE FROM frozen");
}

int registry_list_frozen(Registry *r, char ***ret, size_t *ret_n) {
        if (!r || !ret || !ret_n)
                return -EINVAL;
        return collect_strings(r, "SELECT mount_point FROM frozen ORDER BY mount_point", NULL, ret, ret_n);
}

#define EXPOSURE_COLUMNS "at, shadow_id, mount_id, mount_unique, boot_id"

int registry_add_exposure(Registry *r, const vss_id *shadow_id, const char *at, const MountIdentity *mount) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        if (!r || !shadow_id || !at || !mount)
                return -EINVAL;
        k = prepare(r, "INSERT INTO exposures (" EXPOSURE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5)", &s);
        if (k < 0)
                return k;
        if (sqlite3_bind_text(s, 1, at, -1, SQLITE_TRANSIENT) != SQLITE_OK)
                return -ENOMEM;
        if ((k = bind_id(s, 2, shadow_id)) < 0)
                return k;
        if ((k = bind_u64(s, 3, mount->id)) < 0 || (k = bind_u64(s, 4, mount->unique)) < 0 ||
            (k = bind_id(s, 5, &mount->boot)) < 0)
                return k;
        int rc = sqlite3_step(s);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                return -EEXIST;
        return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

int registry_remove_exposure(Registry *r, const char *at) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        if (!r || !at)
                return -EINVAL;
        k = prepare(r, "DELETE FROM exposures WHERE at = ?1", &s);
        if (k < 0)
                return k;
        if (sqlite3_bind_text(s, 1, at, -1, SQLITE_TRANSIENT) != SQLITE_OK)
                return -ENOMEM;
        k = step_done(s);
        if (k < 0)
                return k;
        return sqlite3_changes(r->db) > 0 ? 0 : -ENOENT;
}

static int read_exposure(Registry *r, sqlite3_stmt *s, void *ret) {
        Exposure *e = ret;
        int k = column_strdup(r, s, 0, &e->at);
        if (k >= 0 && ((k = column_id(r, s, 1, &e->shadow_id)) < 0 || (k = column_id(r, s, 4, &e->mount.boot)) < 0)) {
                free(e->at);
                e->at = NULL;
        }
        e->mount.id = (uint64_t) sqlite3_column_int64(s, 2);
        e->mount.unique = (uint64_t) sqlite3_column_int64(s, 3);
        return k;
}

static void exposure_array_free(void *a, size_t n) {
        exposures_free(a, n);
}

int registry_list_exposures(Registry *r, Exposure **ret, size_t *ret_n) {
        if (!r || !ret || !ret_n)
                return -EINVAL;
        return collect_rows(r, "SELECT " EXPOSURE_COLUMNS " FROM exposures ORDER BY at", NULL, sizeof(Exposure),
                            read_exposure, exposure_array_free, (void **) ret, ret_n);
}

int registry_get_exposure(Registry *r, const char *at, Exposure *ret) {
        Exposure *ex = NULL;
        size_t n = 0;
        if (!r || !at || !ret)
                return -EINVAL;
        int k = registry_list_exposures(r, &ex, &n);
        if (k < 0)
                return k;
        k = -ENOENT;
        for (size_t i = 0; i < n && k == -ENOENT; i++)
                if (streq(ex[i].at, at)) {
                        *ret = ex[i];
                        ex[i].at = NULL;
                        k = 0;
                }
        exposures_free(ex, n);
        return k;
}

void exposures_free(Exposure *a, size_t n) {
        for (size_t i = 0; a && i < n; i++)
                free(a[i].at);
        free(a);
}

static int bind_class_sql(Registry *r, const char *sql, const vss_id *class_id, uint32_t uid) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k, rc;

        if (!r || !class_id)
                return -EINVAL;
        k = prepare(r, sql, &s);
        if (k < 0)
                return k;
        if ((k = bind_id(s, 1, class_id)) < 0 || (k = bind_u64(s, 2, uid)) < 0)
                return k;
        rc = sqlite3_step(s);
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                return -EEXIST;
        return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

int registry_bind_class(Registry *r, const vss_id *class_id, uint32_t uid) {
        return bind_class_sql(r, "INSERT INTO writer_classes (class_id, uid) VALUES (?1, ?2)", class_id, uid);
}

int registry_rebind_class(Registry *r, const vss_id *class_id, uint32_t uid) {
        return bind_class_sql(r, "INSERT INTO writer_classes (class_id, uid) VALUES (?1, ?2) "
                                 "ON CONFLICT (class_id) DO UPDATE SET uid = excluded.uid", class_id, uid);
}

static int read_class(Registry *r, sqlite3_stmt *s, void *ret) {
        ClassRecord *c = ret;
        sqlite3_int64 uid = sqlite3_column_int64(s, 1);
        int k = column_id(r, s, 0, &c->class_id);
        if (k >= 0 && (uid < 0 || uid > UINT32_MAX))
                k = -EIO; /* not a uid we stored */
        c->uid = (uint32_t) uid;
        return k;
}

int registry_list_classes(Registry *r, ClassRecord **ret, size_t *ret_n) {
        if (!r || !ret || !ret_n)
                return -EINVAL;
        return collect_rows(r, "SELECT class_id, uid FROM writer_classes ORDER BY class_id", NULL, sizeof(ClassRecord),
                            read_class, array_free, (void **) ret, ret_n);
}


int registry_list_frozen_of(Registry *r, const vss_id *set_id, char ***ret, size_t *ret_n) {
        if (!r || !set_id || !ret || !ret_n)
                return -EINVAL;
        return collect_strings(r, "SELECT mount_point FROM frozen WHERE set_id = ?1 ORDER BY mount_point", set_id, ret,
                               ret_n);
}

int registry_clear_frozen_of(Registry *r, const vss_id *set_id) {
        int k;

        if (!r || !set_id)
                return -EINVAL;
        k = exec_on_id(r, "DELETE FROM frozen WHERE set_id = ?1", set_id);
        return k == -ENOENT ? 0 : k;
}
