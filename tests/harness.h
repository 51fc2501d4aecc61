/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Integration test harness: starts the real vssd (built binary) on a private socket and state
 * directory, and real vss-writer-exec writers whose hooks are test scripts. Every child gets
 * PR_SET_PDEATHSIG, and harness_free() (also run at exit) kills and reaps them and removes the
 * directory. Readiness is awaited (sd_notify, subscription), never slept for.
 *
 * Writer hooks log "NAME EVENT" lines to one shared log, in the order events arrive. A test
 * steers a writer's answer to an event with harness_set():
 *   fail  CODE MESSAGE   exit with CODE after printing MESSAGE on stderr
 *   hang                 sleep "forever" (the coordinator's deadline must act)
 *   block SECONDS        touch NAME.EVENT.started, then sleep SECONDS and succeed
 *
 * HARNESS_DUMP=1 in the environment prints vssd's log and the event log at the end even when
 * the test passed; HARNESS_WRAPPER runs vssd and the writers under a wrapper (valgrind, strace).
 *   wait                 touch NAME.EVENT.started, then succeed once harness_go() (at most 60 s)
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <vss/backup.h>

typedef struct Harness Harness;

/* config: vssd's JSON config text, or NULL. */
Harness *harness_new(const char *config);
void harness_free(Harness *h);
const char *harness_socket(Harness *h);
const char *harness_dir(Harness *h);
const char *harness_state_dir(Harness *h);

/* Starts a writer; extra: NULL-terminated extra vss-writer-exec arguments. Waits until vssd lists it. */
pid_t harness_writer(Harness *h, const char *name, const char *const *extra);
void harness_set(Harness *h, const char *writer, const char *event, const char *behaviour);
/* Adds an executable hook NAME (after 10-test in name order) to every harness writer's hooks. */
void harness_hook(Harness *h, const char *name, const char *script);
/* Lets a writer's hook held by "wait" go on. */
void harness_go(Harness *h, const char *writer, const char *event);
/* Waits (up to 20 s) for the file NAME.EVENT.started. */
bool harness_wait_started(Harness *h, const char *writer, const char *event);
/* Events of one writer, space separated ("identify prepare-backup ..."). Caller frees. */
char *harness_events(Harness *h, const char *writer);
/* Waits up to timeout_ms for the writer to have seen event (a word of its events); whether it did. */
bool harness_wait_event(Harness *h, const char *writer, const char *event, int timeout_ms);
/* The whole log, "NAME EVENT" lines joined by ", ". Caller frees. */
char *harness_log(Harness *h);
/* A file in the harness directory (hooks may write there), whole; "" when missing. */
char *harness_read(Harness *h, const char *name);
void harness_clear_log(Harness *h);
pid_t harness_vssd_pid(Harness *h);
/* A child of vssd whose command line (NUL-separated, as in /proc/PID/cmdline) starts with the len
 * bytes of cmdline, waited for up to 10 s; -1 when none came. */
pid_t harness_vssd_child(Harness *h, const char *cmdline, size_t len);
/* SIGTERM vssd and wait up to 10 s for it (then SIGKILL): returns the microseconds from the signal
 * to its end (UINT64_MAX when it had to be killed) and, in ret_status, its wait status. */
uint64_t harness_stop_vssd(Harness *h, int *ret_status);
/* SIGKILL vssd (a crash, as far as everyone else can tell). */
void harness_kill_vssd(Harness *h);
/* SIGKILL vssd and start a new one on the same socket and state. */
void harness_restart_vssd(Harness *h);
/* Restarts vssd with its state directory on a fresh tmpfs of that size ("256k"); unmounted at free. */
void harness_state_on_tmpfs(Harness *h, const char *size);
/* A filesystem of its own on a loop device ("mkfs.btrfs -q", "256M"), mounted under the harness
 * dir; unmounted and detached at free, also after a failure. Returns the mount point. */
char *harness_loop_fs(Harness *h, const char *mkfs, const char *size);
/* Restarts vssd with its state directory at state_dir (on a filesystem a test made). */
void harness_restart_vssd_at(Harness *h, const char *state_dir);
/* Number of entries in the state directory's shadows/ tree (sets and shadows). */
int harness_count_shadow_files(Harness *h);
/* Runs a shell command with VSS_SOCKET set; returns its exit status and, if out, its stdout. */
int harness_sh(Harness *h, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Makes a directory with a few files under the harness dir; returns its path (static buffer per call). */
char *harness_make_data(Harness *h, const char *name);
/* A session initialized for backup with metadata gathered. */
vss_backup *harness_session(Harness *h);

#include "tests/check.h"

typedef struct TestCase {
        const char *name;
        void (*fn)(void);
} TestCase;

/* main() for a file of test cases: runs the case named by argv[1], or all. */
int test_main(int argc, char *argv[], const TestCase *cases);

/* Tools' --json output. harness_json runs a command like harness_sh whose stdout must be one JSON
 * object (else a counted failure and NULL; free with json_object_put). json_str: a string member
 * or "(missing)". json_phase: the status of writer name after phase in a vssadmin/vssbackup
 * result ({"phases": [{"phase", "writers": [...]}]}), or NULL. */
struct json_object;
struct json_object *harness_json(Harness *h, int *ret_status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *json_str(struct json_object *o, const char *key);
struct json_object *json_phase(struct json_object *out, const char *phase, const char *name);

/* Find a writer's status by name in the session's gathered status; NULL if absent. */
const vss_writer_status *status_of(vss_backup *b, const char *name, vss_writer_status *buf);
