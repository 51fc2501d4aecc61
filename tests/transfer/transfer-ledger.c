/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ledgers of the transfer service and the conservation checker. */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "transfer.h"

bool ledger_exec(sqlite3 *db, const char *sql) {
        char *err = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK)
                return true;
        fprintf(stderr, "transfer: %s: %s\n", sql, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return false;
}

long long ledger_int(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st = NULL;
        long long v = -1;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        else
                fprintf(stderr, "transfer: %s: %s\n", sql, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return v;
}

sqlite3 *ledger_open(const char *path, bool readonly) {
        sqlite3 *db = NULL;
        int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
        if (sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
                fprintf(stderr, "transfer: %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
                sqlite3_close(db);
                return NULL;
        }
        sqlite3_busy_timeout(db, 10000);
        return db;
}

int ledger_init(const char *path, Role role, long long balance) {
        sqlite3 *db = NULL;
        char sql[512];
        /* A new ledger only: initial balances over a used one would make up money. */
        if (access(path, F_OK) == 0) {
                fprintf(stderr, "transfer: %s already exists\n", path);
                return -1;
        }
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK) {
                fprintf(stderr, "transfer: %s: %s\n", path, db ? sqlite3_errmsg(db) : "out of memory");
                sqlite3_close(db);
                return -1;
        }
        /* A rollback journal: a copy of the files with no transaction open is the whole ledger. */
        bool ok = ledger_exec(db, "PRAGMA journal_mode=DELETE") && ledger_exec(db, "BEGIN") &&
                  ledger_exec(db, "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)") &&
                  ledger_exec(db, "CREATE TABLE accounts (id INTEGER PRIMARY KEY, bal INTEGER NOT NULL)") &&
                  ledger_exec(db, role == ROLE_SENDER
                                          /* AUTOINCREMENT: a transfer id is never used twice. */
                                          ? "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                                            "account INTEGER NOT NULL, amount INTEGER NOT NULL)"
                                          : "CREATE TABLE applied (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)");
        for (int i = 1; ok && i <= TRANSFER_ACCOUNTS; i++) {
                snprintf(sql, sizeof(sql), "INSERT INTO accounts VALUES (%d, %lld)", i, balance);
                ok = ledger_exec(db, sql);
        }
        snprintf(sql, sizeof(sql), "INSERT INTO meta VALUES ('initial', %lld), ('role', %d)",
                 balance * TRANSFER_ACCOUNTS, (int) role);
        ok = ok && ledger_exec(db, sql) && ledger_exec(db, "COMMIT");
        sqlite3_close(db);
        return ok ? 0 : -1;
}

typedef struct Sums {
        long long a, b, pending, pending_rows, acked_late, initial;
} Sums;

static bool sums(sqlite3 *db, Sums *s) {
        s->a = ledger_int(db, "SELECT sum(bal) FROM main.accounts");
        s->b = ledger_int(db, "SELECT sum(bal) FROM b.accounts");
        /* Transfers debited on A that B has not applied: still A's money, in its outbox. */
        s->pending = ledger_int(db, "SELECT coalesce(sum(amount), 0) FROM main.outbox "
                                    "WHERE id NOT IN (SELECT id FROM b.applied)");
        s->pending_rows = ledger_int(db, "SELECT count(*) FROM main.outbox WHERE id NOT IN (SELECT id FROM b.applied)");
        /* Applied on B, ack not yet seen by A: counted once, on B. */
        s->acked_late = ledger_int(db, "SELECT count(*) FROM main.outbox WHERE id IN (SELECT id FROM b.applied)");
        s->initial = ledger_int(db, "SELECT (SELECT value FROM main.meta WHERE key = 'initial') + "
                                    "(SELECT value FROM b.meta WHERE key = 'initial')");
        return s->a >= 0 && s->b >= 0 && s->pending >= 0 && s->pending_rows >= 0 && s->acked_late >= 0 && s->initial >= 0;
}

int ledger_check(const char *a, const char *b, bool json) {
        /* Read-write, as the application would open a restored copy: a hot journal is rolled back. */
        sqlite3 *db = ledger_open(a, false);
        Sums s = {};
        if (!db)
                return 2;
        sqlite3_stmt *st = NULL;
        bool ok = sqlite3_prepare_v2(db, "ATTACH DATABASE ? AS b", -1, &st, NULL) == SQLITE_OK &&
                  sqlite3_bind_text(st, 1, b, -1, SQLITE_STATIC) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
        if (!ok)
                fprintf(stderr, "transfer: attach %s: %s\n", b, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        ok = ok && sums(db, &s);
        sqlite3_close(db);
        if (!ok)
                return 2;
        long long got = s.a + s.b + s.pending;
        bool conserved = got == s.initial;
        if (json)
                printf("{\"conserved\": %s, \"a\": %lld, \"b\": %lld, \"unapplied\": %lld, \"unapplied_rows\": %lld, "
                       "\"applied_unacked_rows\": %lld, \"sum\": %lld, \"initial\": %lld}\n",
                       conserved ? "true" : "false", s.a, s.b, s.pending, s.pending_rows, s.acked_late, got, s.initial);
        else
                printf("%s: A %lld + B %lld + unapplied outbox %lld (%lld rows; %lld applied, ack not seen) = %lld, "
                       "initial total %lld%s\n",
                       conserved ? "conserved" : "NOT conserved", s.a, s.b, s.pending, s.pending_rows, s.acked_late, got,
                       s.initial, conserved ? "" : " (off)");
        return conserved ? 0 : 1;
}
