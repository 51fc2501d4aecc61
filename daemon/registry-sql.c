/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry's statement helpers: errors as errnos, binding, stepping, reading columns,
 * transactions, and reading every row of a query into an array. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-id128.h>

#include "daemon/registry-internal.h"

int sql_errno(int rc) {
        switch (rc & 0xff) { /* the primary code of an extended one */
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        default:
                return -EIO;
        }
}

/* Makes room for one more element of size in *array (n used of *allocated). */
static int grow(void **array, size_t n, size_t *allocated, size_t size) {
        if (n < *allocated)
                return 0;
        size_t m = *allocated ? *allocated * 2 : 8;
        if (m > SIZE_MAX / size)
                return -ENOMEM;
        void *b = realloc(*array, m * size);
        if (!b)
                return -ENOMEM;
        *array = b;
        *allocated = m;
        return 0;
}

int prepare(Registry *r, const char *sql, sqlite3_stmt **ret) {
        sqlite3_stmt *s = NULL;
        int rc, k = registry_connect(r);

        if (k < 0)
                return k;
        rc = sqlite3_prepare_v2(r->db, sql, -1, &s, NULL);
        if (rc != SQLITE_OK)
                return sql_errno(rc);
        *ret = s;
        return 0;
}

int exec(Registry *r, const char *sql) {
        int k = registry_connect(r);
        if (k < 0)
                return k;
        int rc = sqlite3_exec(r->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : sql_errno(rc);
}

int bind_id(sqlite3_stmt *s, int idx, const vss_id *id) {
        char buf[VSS_ID_STRING_MAX];
        int rc;

        rc = sqlite3_bind_text(s, idx, vss_id_to_string(id, buf), -1, SQLITE_TRANSIENT);
        return rc == SQLITE_OK ? 0 : sql_errno(rc);
}

int bind_text(sqlite3_stmt *s, int idx, const char *t) {
        int rc = sqlite3_bind_text(s, idx, t, -1, SQLITE_STATIC);
        return rc == SQLITE_OK ? 0 : sql_errno(rc);
}

int bind_u64(sqlite3_stmt *s, int idx, uint64_t v) {
        int rc;

        /* Callers keep v <= INT64_MAX, so SQLite's signed integers sort it right. */
        rc = sqlite3_bind_int64(s, idx, (sqlite3_int64) v);
        return rc == SQLITE_OK ? 0 : sql_errno(rc);
}

/* Steps a statement that returns no rows. */
int step_done(sqlite3_stmt *s) {
        int rc = sqlite3_step(s);
        return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

/* Steps a query: 1 for a row, 0 when done. */
int step_row(sqlite3_stmt *s) {
        int rc = sqlite3_step(s);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return sql_errno(rc);
}

/* A NULL where the schema says NOT NULL: SQLite ran out of memory converting the value, or the
 * database is not what we wrote. */
int column_error(Registry *r) {
        return sqlite3_errcode(r->db) == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

int column_strdup(Registry *r, sqlite3_stmt *s, int col, char **ret) {
        const unsigned char *t;
        char *d;

        t = sqlite3_column_text(s, col);
        if (!t)
                return column_error(r);
        d = strdup((const char *) t);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

int column_id(Registry *r, sqlite3_stmt *s, int col, vss_id *ret) {
        const char *t;
        sd_id128_t id;

        t = (const char *) sqlite3_column_text(s, col);
        if (!t)
                return column_error(r);
        if (strlen(t) != VSS_ID_STRING_MAX - 1 || sd_id128_from_string(t, &id) < 0)
                return -EIO; /* not an id we stored */
        memcpy(ret->bytes, id.bytes, sizeof(ret->bytes));
        return 0;
}

/* BEGIN IMMEDIATE for writes, so the write lock is taken (and waited for) up front rather than
 * failing later on a lock upgrade. */
int tx_begin(Registry *r, bool write) {
        return exec(r, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

/* Commits when the body (whose result is ret) succeeded, rolls back otherwise. */
int tx_end(Registry *r, int ret) {
        if (ret >= 0) {
                ret = exec(r, "COMMIT");
                if (ret >= 0)
                        return 0;
        }
        /* A failed COMMIT can leave the transaction open; never leave it dangling. */
        if (!sqlite3_get_autocommit(r->db))
                (void) sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        return ret;
}

int tx_begin_crash_safe(Registry *r) {
        /* Not settable inside a transaction: switched around it, and back to FULL after. */
        int k = exec(r, "PRAGMA synchronous = NORMAL");
        if (k >= 0 && (k = tx_begin(r, true)) < 0)
                (void) exec(r, "PRAGMA synchronous = FULL");
        return k;
}

int tx_end_crash_safe(Registry *r, int ret) {
        ret = tx_end(r, ret);
        /* Every later commit is FULL again; one that cannot be (out of memory) fails the caller,
         * rather than leaving the registry less durable than it says. */
        int k = exec(r, "PRAGMA synchronous = FULL");
        return ret < 0 ? ret : k;
}

int exec_on_id(Registry *r, const char *sql, const vss_id *id) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k;

        k = prepare(r, sql, &s);
        if (k < 0)
                return k;
        if (id && (k = bind_id(s, 1, id)) < 0)
                return k;
        k = step_done(s);
        if (k < 0)
                return k;
        return sqlite3_changes(r->db) > 0 ? 0 : -ENOENT;
}

int collect_rows(Registry *r, const char *sql, const vss_id *id, size_t size, RowRead read,
                 void (*free_array)(void *a, size_t n), void **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        void *a = NULL;
        size_t n = 0, allocated = 0;
        int k = prepare(r, sql, &s);
        if (k >= 0 && id)
                k = bind_id(s, 1, id);
        while (k >= 0 && (k = step_row(s)) > 0) {
                k = grow(&a, n, &allocated, size);
                if (k >= 0)
                        k = read(r, s, (char *) a + n * size);
                if (k < 0)
                        break;
                n++;
        }
        if (k < 0) {
                free_array(a, n);
                return k;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

static int read_string(Registry *r, sqlite3_stmt *s, void *ret) {
        return column_strdup(r, s, 0, ret);
}

static void strings_free(void *a, size_t n) {
        char **l = a;
        for (size_t i = 0; l && i < n; i++)
                free(l[i]);
        free(l);
}

int collect_strings(Registry *r, const char *sql, const vss_id *id, char ***ret, size_t *ret_n) {
        return collect_rows(r, sql, id, sizeof(char *), read_string, strings_free, (void **) ret, ret_n);
}

int query_row(Registry *r, const char *sql, const vss_id *id, sqlite3_stmt **ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k = prepare(r, sql, &s);
        if (k >= 0)
                k = bind_id(s, 1, id);
        if (k >= 0)
                k = step_row(s);
        if (k < 0)
                return k;
        if (k == 0)
                return -ENOENT;
        *ret = TAKE_PTR(s);
        return 0;
}

void array_free(void *a, size_t n) {
        free(a);
}
