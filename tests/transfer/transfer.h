/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A transfer service that spans two hosts (issue 16): amounts move from a SQLite ledger on host A
 * (the sender) to one on host B (the receiver) over TCP. Neither host is ever half-applied:
 *   A: debit + outbox row, one transaction; send "T ID AMOUNT"; on "A ID" delete the outbox row;
 *      on (re)connect resend every outbox row.
 *   B: "T ID AMOUNT" is applied in one transaction keyed by ID (a repeat only gets its ack again);
 *      then "A ID".
 * So at any moment sum(A) + sum(B) + (A's outbox rows B has not applied) is the initial total.
 * Each host runs its own libvss writer (public API only): at Freeze A stops starting transfers
 * and waits (bounded) for the acks of those in flight; B applies what has arrived and tells A it
 * holds ("H"; "R" when it resumes), so A neither starts transfers nor waits for acks then. Both
 * hold until Thaw or Abort. Restored shadows conserve the total only when they were cut while
 * both hosts were frozen at one instant (a cluster set); two local sets a moment apart miss the
 * transfers that moved between the two cuts.
 */

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#define TRANSFER_ACCOUNTS 10

typedef enum Role { ROLE_SENDER, ROLE_RECEIVER } Role;

typedef struct ServiceOptions {
        Role role;
        const char *ledger;
        const char *socket;     /* vssd's; NULL: $VSS_SOCKET or the default */
        const char *name;       /* the writer's name */
        int peer_port;          /* sender: the receiver's port on 127.0.0.1 */
        int port;               /* receiver: the port to listen on (0: any) */
        const char *port_file;  /* receiver: where to write the port once listening */
        int interval_ms;        /* sender: pause between transfers */
        int drain_ms;           /* sender: the bound on waiting for acks at Freeze */
} ServiceOptions;

/* Creates a ledger of TRANSFER_ACCOUNTS accounts of balance each (sender: with an outbox;
 * receiver: with the applied transfers). 0, or -1 after a message on stderr. */
int ledger_init(const char *path, Role role, long long balance);
/* Opens a ledger with a busy timeout. NULL after a message on stderr. */
sqlite3 *ledger_open(const char *path, bool readonly);
/* Runs SQL without results; false after a message on stderr. */
bool ledger_exec(sqlite3 *db, const char *sql);
/* The first column of the first row of a query, or -1 (after a message) on errors. */
long long ledger_int(sqlite3 *db, const char *sql);
/* The checker: exit status 0 when a's and b's ledgers conserve the initial total, 1 when not, 2 on
 * errors; one line (or a JSON object) on stdout either way. */
int ledger_check(const char *a, const char *b, bool json);

/* Runs the service until SIGTERM/SIGINT: exit status. */
int service_run(const ServiceOptions *o);
