/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec's hooks run from its main loop (issue 14): hooks of separate writers overlap,
 * a writer answers status queries and Abort while a hook runs (an Abort during Freeze stops the
 * freeze hook), and a hook's timeout ends its whole process group. Proved with events the hooks
 * leave (files, log lines), never with timing. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"

/* A session whose snapshot set of data is made (DoSnapshotSet returned S_OK). */
static vss_backup *snapshot_of(Harness *h, const char *data) {
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        return b;
}

/* A session whose snapshot set of data is under way (DoSnapshotSet begun, *a its answer). */
static vss_backup *set_begun(Harness *h, const char *data, vss_async **a) {
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set(b, a), 0);
        return b;
}

/* Waits up to 30 s for the file harness_dir/name to exist. */
static bool wait_file(Harness *h, const char *name) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", harness_dir(h), name);
        for (int i = 0; i < 3000; i++) {
                if (access(path, F_OK) == 0)
                        return true;
                usleep(10000);
        }
        fprintf(stderr, "%s never appeared\n", path);
        return false;
}

/* The pid written to harness_dir/name, or -1. The shell makes the file before it writes the pid
 * (`echo $$ > FILE`): an empty file is waited on. */
static pid_t read_pid(Harness *h, const char *name) {
        char path[4096];
        long pid = -1;
        snprintf(path, sizeof path, "%s/%s", harness_dir(h), name);
        for (int i = 0; i < 3000 && pid <= 0; i++) {
                FILE *f = fopen(path, "re");
                if (f) {
                        if (fscanf(f, "%ld", &pid) != 1)
                                pid = -1;
                        fclose(f);
                }
                if (pid <= 0)
                        usleep(10000);
        }
        return (pid_t) pid;
}

/* Whether the process is gone (no such process, or a zombie nobody reaped yet). */
static bool pid_gone(pid_t pid) {
        char path[64], buf[512];
        if (kill(pid, 0) < 0 && errno == ESRCH)
                return true;
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return true;
        bool zombie = fgets(buf, sizeof buf, f) && strrchr(buf, ')') && strrchr(buf, ')')[2] == 'Z';
        fclose(f);
        return zombie;
}

/* Waits up to 30 s for the process to be gone. */
static bool wait_gone(pid_t pid) {
        for (int i = 0; pid > 0 && i < 3000; i++) {
                if (pid_gone(pid))
                        return true;
                usleep(10000);
        }
        return false;
}

static void check_status(vss_backup *b, const char *name, vss_writer_state state, int32_t failure) {
        vss_writer_status st;
        if (!status_of(b, name, &st)) {
                fprintf(stderr, "no status for writer '%s'\n", name);
                test_failures++;
                return;
        }
        if (st.state != state || st.failure != failure) {
                fprintf(stderr, "writer '%s': state %s, failure 0x%08x (%s); expected %s, 0x%08x\n", name,
                        vss_writer_state_name(st.state), (uint32_t) st.failure, st.application_message,
                        vss_writer_state_name(state), (uint32_t) failure);
                test_failures++;
        }
}

/* Each writer's freeze hook waits for the one of the other writer: the set succeeds only when
 * both run at the same time. */
static void test_hooks_overlap(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static const char *const level[] = { "--app-level", "back-end", "--hook-timeout", "60000", NULL };
        harness_writer(h, "a", level);
        harness_writer(h, "b", level);
        harness_hook(h, "20-overlap",
                     "#!/bin/sh\n"
                     "[ \"$1\" = freeze ] || exit 0\n"
                     "d=\"$HARNESS_DIR\"; other=a; [ \"$VSS_WRITER_NAME\" = a ] && other=b\n"
                     "touch \"$d/overlap.$VSS_WRITER_NAME\"\n"
                     "i=0\n"
                     "while [ ! -e \"$d/overlap.$other\" ]; do\n"
                     "  i=$((i+1)); [ $i -gt 600 ] && { echo \"$other's hook never ran beside mine\" >&2; exit 1; }\n"
                     "  sleep 0.05\n"
                     "done\n"
                     "echo \"$VSS_WRITER_NAME saw-$other\" >> \"$d/log\"\n");
        vss_backup *b = snapshot_of(h, data);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "a", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        check_status(b, "b", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        vss_backup_release(b);
        char *ea = harness_events(h, "a"), *eb = harness_events(h, "b");
        CHECK(strstr(ea, "freeze saw-b thaw"));
        CHECK(strstr(eb, "freeze saw-a thaw"));
        free(ea);
        free(eb);
        harness_free(h);
}

/* A Freeze hook that would run for a minute: meanwhile the writer answers another session's
 * status query; vssd gives up on the Freeze (the writer's 2 s window) and sends Abort, which
 * stops the hook (SIGTERM to its group) and runs the abort hooks after it. */
static void test_status_abort_during_freeze(void) {
        Harness *h = harness_new("{\"timeouts\": {\"status_ms\": 3000}}");
        char *data = harness_make_data(h, "data");
        static const char *const args[] = { "--freeze-timeout", "2000", "--hook-timeout", "60000", NULL };
        harness_writer(h, "w", args);
        harness_hook(h, "20-slow-freeze",
                     "#!/bin/sh\n"
                     "[ \"$1\" = freeze ] || exit 0\n"
                     "d=\"$HARNESS_DIR\"\n"
                     "trap 'echo \"$VSS_WRITER_NAME freeze-hook-terminated\" >> \"$d/log\"; exit 143' TERM\n"
                     "echo $$ > \"$d/freeze-hook.pid\"\n"
                     "i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
                     "echo \"$VSS_WRITER_NAME freeze-hook-finished\" >> \"$d/log\"\n");
        vss_async *a = NULL;
        vss_backup *b = set_begun(h, data, &a);
        CHECK(wait_file(h, "freeze-hook.pid"));
        pid_t hook = read_pid(h, "freeze-hook.pid");
        CHECK(hook > 0);

        /* A status query of another session (a restore's, which pings every writer) is
         * answered while the hook runs. */
        vss_backup *r = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &r), 0);
        CHECK_HR(vss_backup_initialize_for_restore(r, NULL), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(r), 0);
        CHECK(vss_backup_writer_status_count(r) == 1);
        check_status(r, "w", VSS_WS_STABLE, 0);
        vss_backup_release(r);
        CHECK(!pid_gone(hook)); /* the hook still ran: the answer did not wait for it */

        /* vssd gives up on the Freeze and sends Abort: the hook is stopped, then aborted. */
        CHECK_HR(a ? vss_async_wait(a, 30000) : -1, VSS_E_WRITER_NOT_RESPONDING);
        vss_async_unref(a);
        CHECK(harness_wait_event(h, "w", "abort", 30000));
        CHECK(wait_gone(hook));
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze freeze-hook-terminated abort");
        free(ev);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "w", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITER_NOT_RESPONDING);
        CHECK(harness_count_shadow_files(h) == 0);
        vss_backup_release(b);

        /* The writer is whole afterwards: the next set succeeds (without the slow hook). */
        CHECK(harness_sh(h, NULL, "rm '%s/hooks/20-slow-freeze'", harness_dir(h)) == 0);
        b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        vss_backup_release(b);
        harness_free(h);
}

/* A hook past its timeout: SIGTERM to its process group; a member ignoring SIGTERM is killed
 * 2 s later, and the event fails with a timeout. */
static void test_hook_timeout_kills_group(void) {
        Harness *h = harness_new(NULL);
        static const char *const args[] = { "--hook-timeout", "500", NULL };
        harness_writer(h, "w", args);
        harness_hook(h, "20-stuck",
                     "#!/bin/sh\n"
                     "[ \"$1\" = prepare-backup ] || exit 0\n"
                     "d=\"$HARNESS_DIR\"\n"
                     "sh -c 'trap \"\" TERM; echo $$ > \"$1/child.pid\"; while :; do sleep 0.05; done' sh \"$d\" &\n"
                     "echo $$ > \"$d/hook.pid\"\n"
                     "while :; do sleep 0.05; done\n");
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, harness_make_data(h, "data"), NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0); /* a writer's failure is its status */
        pid_t hook = read_pid(h, "hook.pid"), child = read_pid(h, "child.pid");
        CHECK(hook > 0 && child > 0);
        /* Answered only once the group is gone: nothing of it is left. */
        CHECK(hook > 0 && pid_gone(hook));
        CHECK(child > 0 && pid_gone(child));
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "w", VSS_WS_FAILED_AT_PREPARE_BACKUP, VSS_E_WRITERERROR_TIMEOUT);
        vss_writer_status st;
        CHECK(status_of(b, "w", &st) && strstr(st.application_message, "hook 20-stuck timed out after 500 ms"));
        vss_backup_release(b);
        harness_free(h);
}

/* A component named through a symlink (/var/lib/mysql -> /srv/mysql, say) is the directory it
 * names: the writer takes part in a set of that directory. */
static void test_component_through_symlink(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char link[4096], comp[4200];
        snprintf(link, sizeof link, "%s/link", harness_dir(h));
        CHECK(symlink(data, link) == 0);
        snprintf(comp, sizeof comp, "db=%s", link);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "w", args);
        vss_backup *b = snapshot_of(h, data);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        free(ev);
        harness_free(h);
}

/* exec-hooks-trusted: a hook runs as the writer's user, so vss-writer-exec runs only what nobody
 * else may change. A hooks directory of another uid's (or on the way to one) stops it at start;
 * a hook of another uid's, or one others may write, fails the event it would run for, and does
 * not run. */
static void test_hooks_trusted(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *out = NULL;
        char marker[4096];
        snprintf(marker, sizeof marker, "%s/foreign-ran", harness_dir(h));
        /* Another uid's hooks directory: refused at start, exit status 2. */
        CHECK(harness_sh(h, &out, "mkdir -p %s/theirs && chown 4242 %s/theirs && "
                                  "vss-writer-exec --name x --hooks %s/theirs 2>&1; echo \"exit $?\"",
                         harness_dir(h), harness_dir(h), harness_dir(h)) == 0);
        CHECK(out && strstr(out, "belongs to uid 4242") && strstr(out, "exit 2"));
        free(out);
        /* A group-writable one: the same. */
        CHECK(harness_sh(h, &out, "mkdir -p %s/shared && chmod 775 %s/shared && "
                                  "vss-writer-exec --name x --hooks %s/shared 2>&1; echo \"exit $?\"",
                         harness_dir(h), harness_dir(h), harness_dir(h)) == 0);
        CHECK(out && strstr(out, "may be written by others") && strstr(out, "exit 2"));
        free(out);
        /* Sticky does not help the hooks directory itself: anyone may still add a hook. */
        CHECK(harness_sh(h, &out, "chmod 1777 %s/shared && vss-writer-exec --name x --hooks %s/shared 2>&1; "
                                  "echo \"exit $?\"", harness_dir(h), harness_dir(h)) == 0);
        CHECK(out && strstr(out, "may be written by others") && strstr(out, "exit 2"));
        free(out);

        harness_writer(h, "w", NULL);
        /* A symlink to a script in a directory another user may change: not run either. */
        char theirs[4200];
        snprintf(theirs, sizeof theirs, "#!/bin/sh\ntouch %s\n", marker);
        CHECK(harness_sh(h, NULL, "mkdir -p %s/pub && chmod 777 %s/pub && printf '%%s' '%s' > %s/pub/s && "
                                  "chmod 755 %s/pub/s && ln -s %s/pub/s %s/hooks/15-link",
                         harness_dir(h), harness_dir(h), theirs, harness_dir(h), harness_dir(h), harness_dir(h),
                         harness_dir(h)) == 0);
        vss_backup_release(harness_session(h));
        CHECK(access(marker, F_OK) < 0);
        CHECK(harness_sh(h, &out, "vssadmin list writers") == 0);
        CHECK(out && strstr(out, "a directory another user could change"));
        free(out);
        CHECK(harness_sh(h, NULL, "rm %s/hooks/15-link", harness_dir(h)) == 0);
        char hook[4200];
        snprintf(hook, sizeof hook, "#!/bin/sh\ntouch %s\n", marker);
        harness_hook(h, "20-foreign", hook);
        CHECK(harness_sh(h, NULL, "chown 4242 %s/hooks/20-foreign", harness_dir(h)) == 0);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK(vss_backup_prepare_for_backup_sync(b) < 0 || vss_backup_do_snapshot_set_sync(b) < 0 ||
              access(marker, F_OK) < 0);
        vss_backup_release(b);
        CHECK(access(marker, F_OK) < 0);
        CHECK(harness_sh(h, &out, "vssadmin list writers") == 0);
        CHECK(out && strstr(out, "belongs to uid 4242"));
        if (out && !strstr(out, "belongs to uid 4242"))
                fprintf(stderr, "list writers said: %s\n", out);
        free(out);

        /* Made root's but group-writable: still not run. */
        CHECK(harness_sh(h, NULL, "chown 0 %s/hooks/20-foreign && chmod 775 %s/hooks/20-foreign", harness_dir(h),
                         harness_dir(h)) == 0);
        b = harness_session(h);
        vss_backup_release(b);
        CHECK(access(marker, F_OK) < 0);
        CHECK(harness_sh(h, &out, "vssadmin list writers") == 0);
        CHECK(out && strstr(out, "may be written by others"));
        free(out);
        harness_free(h);
}

/* Writer "w" (hooks may take a minute) with the hook name added: its pid. */
static pid_t writer_with_hook(Harness *h, const char *name, const char *script) {
        static const char *const args[] = { "--hook-timeout", "60000", NULL };
        pid_t w = harness_writer(h, "w", args);
        harness_hook(h, name, script);
        return w;
}

/* The writer is stopped (SIGTERM, as systemctl stop) while a freeze hook runs: the hook is
 * stopped and the abort hooks run before the writer ends, so nothing a freeze hook began (an
 * fsfreeze, say) is left behind. */
static void test_stop_during_freeze(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        pid_t w = writer_with_hook(h, "20-slow-freeze",
                     "#!/bin/sh\n"
                     "d=\"$HARNESS_DIR\"\n"
                     "[ \"$1\" = abort ] && echo \"20-abort\" >> \"$d/undo\"\n"
                     "[ \"$1\" = freeze ] || exit 0\n"
                     "echo $$ > \"$d/freeze-hook.pid\"\n"
                     "i=0; while [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n");
        vss_async *a = NULL;
        vss_backup *b = set_begun(h, data, &a);
        CHECK(wait_file(h, "freeze-hook.pid"));
        pid_t hook = read_pid(h, "freeze-hook.pid");
        CHECK(kill(w, SIGTERM) == 0);
        CHECK(wait_gone(w));
        CHECK(hook > 0 && pid_gone(hook));
        char *undo = harness_read(h, "undo"), *ev = harness_events(h, "w");
        CHECK_STR(undo, "20-abort\n");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze abort");
        free(undo);
        free(ev);
        CHECK_HR(a ? vss_async_wait(a, 30000) : -1, VSS_E_WRITER_NOT_RESPONDING);
        vss_async_unref(a);
        CHECK(harness_count_shadow_files(h) == 0);
        vss_backup_release(b);
        harness_free(h);
}

/* Stopped while a thaw hook runs: that hook ends as it would, and the thaw hooks after it still
 * run, before the writer ends. */
static void test_stop_during_thaw(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        pid_t w = writer_with_hook(h, "20-slow-thaw",
                     "#!/bin/sh\n"
                     "d=\"$HARNESS_DIR\"\n"
                     "[ \"$1\" = thaw ] || exit 0\n"
                     "touch \"$d/thaw-began\"\n"
                     "i=0; while [ ! -e \"$d/go\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
                     "echo \"20-thaw-done\" >> \"$d/undo\"\n");
        vss_async *a = NULL;
        vss_backup *b = set_begun(h, data, &a);
        CHECK(wait_file(h, "thaw-began"));
        CHECK(kill(w, SIGTERM) == 0);
        CHECK(!pid_gone(w)); /* still running its thaw hooks */
        CHECK(harness_sh(h, NULL, "touch %s/go", harness_dir(h)) == 0);
        CHECK(wait_gone(w));
        char *undo = harness_read(h, "undo"), *ev = harness_events(h, "w");
        CHECK_STR(undo, "20-thaw-done\n");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze thaw");
        free(undo);
        free(ev);
        if (a)
                (void) vss_async_wait(a, 30000);
        vss_async_unref(a);
        vss_backup_release(b);
        harness_free(h);
}

static const TestCase cases[] = {
        { "exec-stop-during-freeze", test_stop_during_freeze },
        { "exec-stop-during-thaw", test_stop_during_thaw },
        { "exec-hooks-trusted", test_hooks_trusted },
        { "exec-component-through-symlink", test_component_through_symlink },
        { "exec-hooks-overlap", test_hooks_overlap },
        { "exec-status-abort-during-freeze", test_status_abort_during_freeze },
        { "exec-hook-timeout-kills-group", test_hook_timeout_kills_group },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
