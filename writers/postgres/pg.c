/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-postgres: the connection to the server, and its errors as the event's failure. */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

/* libpq messages end in newlines and may span lines: one line, trimmed, for the status. */
static char *trim(char *s) {
        size_t n;

        s += strspn(s, " \t\r\n");
        n = strlen(s);
        while (n > 0 && strchr(" \t\r\n", s[n - 1]))
                s[--n] = '\0';
        for (char *p = s; *p; p++)
                if (*p == '\n' || *p == '\t')
                        *p = ' ';
        return s;
}

static void trim_copy(char *dst, size_t size, const char *src) {
        _cleanup_free_ char *t = strdup(src ? src : "");
        snprintf(dst, size, "%s", t ? trim(t) : "out of memory");
}

/* Server notices ("WAL archiving is not enabled ...") go to our log, tagged like the rest. */
static void on_notice(void *userdata, const char *message) {
        char msg[MSG_MAX + 1];

        trim_copy(msg, sizeof msg, message);
        log_msg("server: %s", msg);
}

PGconn *pg_connect(void) {
        /* The DSN comes last so that its settings override ours. */
        const char *const keys[] = { "connect_timeout", "fallback_application_name", "dbname", NULL };
        const char *const values[] = { "10", "vss-writer-postgres", arg_dsn, NULL };
        PGconn *c = PQconnectdbParams(keys, values, 1);

        if (c)
                PQsetNoticeProcessor(c, on_notice, NULL);
        return c;
}

/* Fails the event for a connection that could not be made: retryable, the server may come back. */
bool fail_connect(vss_writer *w, PGconn *c, const char *what) {
        char msg[MSG_MAX + 1];

        trim_copy(msg, sizeof msg, c ? PQerrorMessage(c) : "out of memory");
        return writer_fail(w, VSS_E_WRITERERROR_RETRYABLE, 0, "%s: cannot connect to PostgreSQL: %s", what, msg);
}

/* The SQLSTATE as a number: its five characters read as a base-36 numeral ("42501" → 6818257;
 * Python: int("42501", 36), back with numpy.base_repr(n, 36).zfill(5)). 0 when there is none. */
static int32_t sqlstate_code(const char *state) {
        int32_t n = 0;

        if (!state || strlen(state) != 5)
                return 0;
        for (const char *p = state; *p; p++) {
                int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'A' && *p <= 'Z' ? *p - 'A' + 10 : -1;
                if (d < 0)
                        return 0;
                n = n * 36 + d;
        }
        return n;
}

/* Runs a query expecting rows (or a command); on failure reports it and returns NULL. */
PGresult *query(vss_writer *w, PGconn *c, const char *what, const char *sql) {
        PGresult *res = PQexec(c, sql);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        const char *state;
        char msg[MSG_MAX + 1];
        int32_t hr;

        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                return res;
        state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        trim_copy(msg, sizeof msg, res ? PQresultErrorMessage(res) : PQerrorMessage(c));
        if (!*msg)
                trim_copy(msg, sizeof msg, PQerrorMessage(c));
        if (!state || PQstatus(c) != CONNECTION_OK || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
                hr = VSS_E_WRITERERROR_RETRYABLE; /* connection lost, server shutting down: try again */
        else if (strncmp(state, "53", 2) == 0)
                hr = VSS_E_WRITERERROR_OUTOFRESOURCES; /* out of memory, disk full, too many connections */
        else
                hr = VSS_E_WRITERERROR_NONRETRYABLE; /* 42501 insufficient privilege and the rest */
        if (state)
                writer_fail(w, hr, sqlstate_code(state), "%s: %s (SQLSTATE %s)", what, msg, state);
        else
                writer_fail(w, hr, 0, "%s: %s", what, msg);
        PQclear(res);
        return NULL;
}

