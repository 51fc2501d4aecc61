/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SQLite, loaded with dlopen() while the registry is open and unloaded while it is not
 * (registry_release()): an idle vssd keeps no page of libsqlite3 and libm mapped (~1.5 MiB of
 * its RSS), as systemd loads its optional libraries. Inside registry*.c only: the sqlite3_*
 * calls below go through the table. */

#include <sqlite3.h>

typedef struct SqliteApi {
        int (*open_v2)(const char *, sqlite3 **, int, const char *);
        int (*close)(sqlite3 *);
        int (*shutdown)(void);
        int (*exec)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *, char **);
        int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
        int (*step)(sqlite3_stmt *);
        int (*finalize)(sqlite3_stmt *);
        int (*bind_text)(sqlite3_stmt *, int, const char *, int, void (*)(void *));
        int (*bind_int64)(sqlite3_stmt *, int, sqlite3_int64);
        const unsigned char *(*column_text)(sqlite3_stmt *, int);
        int (*column_int)(sqlite3_stmt *, int);
        sqlite3_int64 (*column_int64)(sqlite3_stmt *, int);
        int (*changes)(sqlite3 *);
        int (*get_autocommit)(sqlite3 *);
        int (*extended_result_codes)(sqlite3 *, int);
        int (*busy_timeout)(sqlite3 *, int);
        const char *(*errstr)(int);
        const char *(*errmsg)(sqlite3 *);
        int (*errcode)(sqlite3 *);
        int (*file_control)(sqlite3 *, const char *, int, void *);
} SqliteApi;

extern SqliteApi registry_sqlite;

/* Loads libsqlite3, or takes another reference to it: 0, or -ELIBACC (the reason in
 * registry_sqlite_error()). */
int registry_sqlite_load(void);
const char *registry_sqlite_error(void);
/* Drops a reference; the last unloads it (no handle of it may be open then). */
void registry_sqlite_unload(void);

#define sqlite3_open_v2(...) registry_sqlite.open_v2(__VA_ARGS__)
#define sqlite3_close(...) registry_sqlite.close(__VA_ARGS__)
#define sqlite3_exec(...) registry_sqlite.exec(__VA_ARGS__)
#define sqlite3_prepare_v2(...) registry_sqlite.prepare_v2(__VA_ARGS__)
#define sqlite3_step(...) registry_sqlite.step(__VA_ARGS__)
#define sqlite3_finalize(...) registry_sqlite.finalize(__VA_ARGS__)
#define sqlite3_bind_text(...) registry_sqlite.bind_text(__VA_ARGS__)
#define sqlite3_bind_int64(...) registry_sqlite.bind_int64(__VA_ARGS__)
#define sqlite3_column_text(...) registry_sqlite.column_text(__VA_ARGS__)
#define sqlite3_column_int(...) registry_sqlite.column_int(__VA_ARGS__)
#define sqlite3_column_int64(...) registry_sqlite.column_int64(__VA_ARGS__)
#define sqlite3_changes(...) registry_sqlite.changes(__VA_ARGS__)
#define sqlite3_get_autocommit(...) registry_sqlite.get_autocommit(__VA_ARGS__)
#define sqlite3_extended_result_codes(...) registry_sqlite.extended_result_codes(__VA_ARGS__)
#define sqlite3_busy_timeout(...) registry_sqlite.busy_timeout(__VA_ARGS__)
#define sqlite3_errstr(...) registry_sqlite.errstr(__VA_ARGS__)
#define sqlite3_errmsg(...) registry_sqlite.errmsg(__VA_ARGS__)
#define sqlite3_errcode(...) registry_sqlite.errcode(__VA_ARGS__)
#define sqlite3_file_control(...) registry_sqlite.file_control(__VA_ARGS__)
