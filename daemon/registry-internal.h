/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Inside the registry (registry*.c only): the SQLite handle and the statement helpers. Every
 * helper returns 0 (1 for a row) or a negative errno, as registry.h promises its callers. */

#include "daemon/registry-sqlite.h"
#include <stdbool.h>
#include <stddef.h>

#include "daemon/registry.h"
#include "lib/common.h"

struct Registry {
        sqlite3 *db;    /* NULL while released (registry_release()): the next statement reopens it */
        char *path;
};

/* Opens the connection of a released registry (loading SQLite): 0, or <0. */
int registry_connect(Registry *r);

static inline void stmt_finalizep(sqlite3_stmt **s) {
        if (*s)
                sqlite3_finalize(*s);
}
#define _cleanup_stmt_ _cleanup_(stmt_finalizep)

int sql_errno(int rc);
int prepare(Registry *r, const char *sql, sqlite3_stmt **ret);
int exec(Registry *r, const char *sql);
int bind_id(sqlite3_stmt *s, int idx, const vss_id *id);
int bind_text(sqlite3_stmt *s, int idx, const char *t);
int bind_u64(sqlite3_stmt *s, int idx, uint64_t v);
/* Steps a statement that returns no rows. */
int step_done(sqlite3_stmt *s);
/* Steps a query: 1 for a row, 0 when done. */
int step_row(sqlite3_stmt *s);
/* A NULL where the schema says NOT NULL: -ENOMEM or -EIO. */
int column_error(Registry *r);
int column_strdup(Registry *r, sqlite3_stmt *s, int col, char **ret);
int column_id(Registry *r, sqlite3_stmt *s, int col, vss_id *ret);
/* BEGIN IMMEDIATE for writes, BEGIN for reads; tx_end() commits when ret >= 0, else rolls back. */
int tx_begin(Registry *r, bool write);
int tx_end(Registry *r, int ret);
/* expr (an int: 0 or a negative errno) inside a transaction, committed only when it succeeded. */
#define IN_TRANSACTION(r, write, expr)                                 \
        __extension__({                                                \
                int _k = tx_begin((r), (write));                       \
                _k < 0 ? _k : tx_end((r), (expr));                     \
        })
/* A write transaction that must survive a crash of vssd (kill -9) but not a power loss: committed
 * with synchronous = NORMAL, which in WAL mode appends the frames to the WAL without an fsync (the
 * kernel has them; a crashed process loses nothing it wrote). The next FULL commit's fsync of the
 * WAL makes them durable too, in order. Every other transaction stays FULL. */
int tx_begin_crash_safe(Registry *r);
int tx_end_crash_safe(Registry *r, int ret);
#define IN_TRANSACTION_CRASH_SAFE(r, expr)                             \
        __extension__({                                                \
                int _k = tx_begin_crash_safe(r);                       \
                _k < 0 ? _k : tx_end_crash_safe((r), (expr));          \
        })
/* Runs a statement with ?1 bound to id (when id is set); -ENOENT when it changed no row. */
int exec_on_id(Registry *r, const char *sql, const vss_id *id);

/* Prepares sql with ?1 bound to id and steps to its first row (to read from *ret): -ENOENT when
 * there is none. */
int query_row(Registry *r, const char *sql, const vss_id *id, sqlite3_stmt **ret);

/* Every row of a query (?1 bound to id when id is set) into a new array of elements of size
 * bytes, each read by read(); on failure read() leaves its element empty and free_array(a, n)
 * frees those read before. */
typedef int (*RowRead)(Registry *r, sqlite3_stmt *s, void *ret);
int collect_rows(Registry *r, const char *sql, const vss_id *id, size_t size, RowRead read,
                 void (*free_array)(void *a, size_t n), void **ret, size_t *ret_n);
/* The strings of the first column. */
int collect_strings(Registry *r, const char *sql, const vss_id *id, char ***ret, size_t *ret_n);
/* free(a), for arrays whose elements own nothing. */
void array_free(void *a, size_t n);
