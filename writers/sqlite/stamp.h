/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sqlite3.h>
#include <stddef.h>

/* The backup stamp of the main database of db, read through db's own file handles while db holds
 * the write lock (never through a descriptor of our own: closing it would drop every POSIX lock
 * this process holds on the file). Rollback-journal modes: "change-counter:N", the header's file
 * change counter. WAL mode, where that counter stands still: "wal:SALTS:FRAMES", the log's salts
 * and its number of valid frames from the wal-index header; a commit adds frames, a log restart
 * draws new salts. Returns an SQLite code. */
int sqlite_stamp(sqlite3 *db, char *buf, size_t size);
