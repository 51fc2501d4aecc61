/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Real unprivileged users for tests (needs root). The users are made when absent and left in
 * place for later runs:
 *   vsstest-alice   in the backup group vsstest-backup
 *   vsstest-carol   in the backup group vsstest-backup
 *   vsstest-bob     in no group of ours
 * Clients run in forked children that dropped to a user (initgroups, setgid, setuid); their
 * CHECKs count there and come back as the child's exit status. Raw calls keep the exact code and
 * the error message (last_msg) for checks of refusals.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>

#include "tests/harness.h"

#define GROUP "vsstest-backup"
#define ALICE "vsstest-alice"
#define BOB "vsstest-bob"
#define CAROL "vsstest-carol"
#define CONFIG_BASE "{\"backup_group\": \"" GROUP "\""

#define SHADOW_SIG "(sssssttu)"
#define WRITER_SIG "(sssuiissst)"

void ensure_users(void);
uid_t uid_of(const char *user);
/* vssd as root (config as for harness_new), reachable by the test users: they may traverse the
 * harness directory and their writers' hooks append to the shared log. */
Harness *harness_for_users(const char *config);
/* Becomes user for good (no way back); _exit(99) when that fails. */
void drop_to(const char *user);

typedef void (*UserFn)(Harness *h, void *userdata);
/* Runs fn as user in a child (PR_SET_PDEATHSIG); returns its pid. */
pid_t spawn_as(const char *user, UserFn fn, Harness *h, void *userdata);
/* Waits for pid; a failure counts, naming what. */
void wait_ok(pid_t pid, const char *what);
void run_as(const char *user, UserFn fn, Harness *h, void *userdata, const char *what);

/* Raw calls: return the HRESULT; last_msg holds the error message. */
extern char last_msg[1024];
int32_t call(sd_bus *bus, const char *method, const char *types, ...);
/* A call whose reply is one string (a session id, ...), copied to out. */
int32_t call_s(sd_bus *bus, char *out, size_t size, const char *method, const char *types, ...);
/* A call without arguments, keeping its reply. */
int32_t call_reply(sd_bus *bus, sd_bus_message **reply, const char *method);
/* Number of entries of a listing (ListShadows, ListWriters); -1 on error. */
int count_listed(sd_bus *bus, const char *method, const char *sig);
sd_bus *connect_or_die(Harness *h);
int count_as_root(Harness *h, const char *method, const char *sig);
bool writer_listed(Harness *h, const char *name);
void stop_writer(pid_t pid);
/* "CLASS-ID:component" for vssbackup --component: a user's writer answers to its writer id, not to
 * its name (class id null: derived from the name, as libvss does). Returns buf. */
char *id_spec(char *buf, size_t size, const char *writer, const char *component);
/* vss-writer-exec run by user, with the harness hooks (and class_id, if not NULL); waits until
 * vssd lists it. */
pid_t writer_as(Harness *h, const char *user, const char *name, const char *class_id);
/* The same with extra vss-writer-exec arguments (NULL-terminated, or NULL). */
pid_t writer_as_args(Harness *h, const char *user, const char *name, const char *class_id, const char *const *extra);
