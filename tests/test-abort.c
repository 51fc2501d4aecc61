/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* AbortBackup, the Abort event and IVssAsync::Cancel as Microsoft documents them, against the
 * real vssd with real vss-writer-exec writers (issue 12, item 2). */

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/client.h"
#include "tests/harness.h"

static const char *const front[] = { "--app-level", "front-end", NULL };
static const char *const back[] = { "--app-level", "back-end", NULL };

static void prepare(vss_backup *b, const char *data) {
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
}

static void check_status(vss_backup *b, const char *name, vss_writer_state state, const char *note) {
        vss_writer_status st;
        if (!status_of(b, name, &st)) {
                fprintf(stderr, "no status for writer '%s'\n", name);
                test_failures++;
                return;
        }
        CHECK(st.state == state);
        CHECK(st.failure == 0);
        CHECK_STR(st.note, note);
}

static void check_events(Harness *h, const char *writer, const char *want) {
        char *got = harness_events(h, writer);
        CHECK_STR(got, want);
        free(got);
}

/* Counts the occurrences of " EVENT" words in a writer's events. */
static int count_event(Harness *h, const char *writer, const char *event) {
        char *ev = harness_events(h, writer);
        int n = 0;
        size_t len = strlen(event);
        for (const char *p = ev; (p = strstr(p, event)); p += len)
                if ((p == ev || p[-1] == ' ') && (p[len] == ' ' || p[len] == 0))
                        n++;
        free(ev);
        return n;
}

/* Waits (polling, at most timeout_ms) until the writer has seen the event n times. */
static bool wait_count(Harness *h, const char *writer, const char *event, int n, int timeout_ms) {
        for (int i = 0; i < timeout_ms / 10; i++) {
                if (count_event(h, writer, event) >= n)
                        return true;
                usleep(10000);
        }
        return count_event(h, writer, event) >= n;
}

static void test_abort_after_failed_dss(void) {
        /* A writer vetoes Freeze: do-snapshot-set fails, and the requester must then call
         * AbortBackup, which succeeds (also twice). After it, only status, the document and
         * release are accepted. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        harness_set(h, "be", "freeze", "fail 1 no freeze today");
        vss_backup *b = harness_session(h);
        prepare(b, data);
        CHECK(vss_backup_do_snapshot_set_sync(b) == VSS_E_WRITERERROR_NONRETRYABLE);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        /* The writers had their Abort with the failed set; AbortBackup sends no second one. */
        CHECK(count_event(h, "fe", "abort") == 1);
        CHECK(count_event(h, "be", "abort") == 1);
        CHECK_HR(vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_backup_complete_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_STABLE, "aborted");
        char *doc = NULL;
        CHECK_HR(vss_backup_save_as_document(b, &doc), 0);
        CHECK(doc != NULL);
        free(doc);
        vss_backup_release(b);
        CHECK(harness_count_shadow_files(h) == 0);
}

static void test_abort_after_prepare(void) {
        /* AbortBackup after PrepareForBackup: every writer that took part handles Abort and is
         * Stable again, with the note "aborted"; the session is then over. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        vss_backup *b = harness_session(h);
        prepare(b, data);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        /* The call returns once they handled it. */
        check_events(h, "fe", "identify prepare-backup abort");
        check_events(h, "be", "identify prepare-backup abort");
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_STABLE, "aborted");
        check_status(b, "be", VSS_WS_STABLE, "aborted");
        CHECK_HR(vss_backup_abort_backup(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE);
        vss_backup_release(b);
        check_events(h, "fe", "identify prepare-backup abort backup-shutdown");
        check_events(h, "be", "identify prepare-backup abort backup-shutdown");
        CHECK(harness_count_shadow_files(h) == 0);
        /* The machine-wide set slot is free again. */
        vss_backup *b2 = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b2, NULL), 0);
        vss_backup_release(b2);
}

static void test_abort_after_prepare_unanswered(void) {
        /* A writer that lets AbortBackup's Abort go unanswered, prepared for backup and nothing
         * more: failed where it was (FailedAtPrepareBackup), not at a Freeze it never had. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static const char *const quick[] = { "--app-level", "front-end", "--freeze-timeout", "500", NULL };
        harness_writer(h, "fe", quick);
        harness_set(h, "fe", "abort", "block 3");
        vss_backup *b = harness_session(h);
        prepare(b, data);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        vss_writer_status st;
        CHECK(status_of(b, "fe", &st));
        CHECK(st.state == VSS_WS_FAILED_AT_PREPARE_BACKUP);
        CHECK(st.failure == VSS_E_WRITER_NOT_RESPONDING);
        vss_backup_release(b);
}

static void test_abort_after_snapshot(void) {
        /* After a successful do-snapshot-set the writers had PostSnapshot, the end of their part in
         * the shadow copy: AbortBackup deletes the set, and sends them no Abort (OnAbort is never
         * called after OnPostSnapshot). A writer left out of the set gets no Abort either. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char away[4096 + 8];
        snprintf(away, sizeof away, "away=%s", harness_make_data(h, "elsewhere"));
        const char *const away_args[] = { "--component", away, NULL };
        harness_writer(h, "fe", front);
        harness_writer(h, "away", away_args);
        vss_backup *b = harness_session(h);
        prepare(b, data);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK(harness_count_shadow_files(h) > 0);
        char *doc = NULL;
        CHECK_HR(vss_backup_save_as_document(b, &doc), 0);
        CHECK(doc && strstr(doc, "shadow_path") != NULL);
        free(doc);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        CHECK(harness_count_shadow_files(h) == 0);
        /* The document names no deleted shadow. */
        doc = NULL;
        CHECK_HR(vss_backup_save_as_document(b, &doc), 0);
        CHECK(doc && strstr(doc, "shadow_path") == NULL);
        free(doc);
        CHECK_HR(vss_backup_backup_complete_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, "");
        vss_backup_release(b);
        check_events(h, "fe", "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-shutdown");
        check_events(h, "away", "identify prepare-backup backup-shutdown");
}

static void test_abort_during_prepare(void) {
        /* AbortBackup while PrepareForBackup runs: S_OK at once; PrepareForBackup ends as it
         * would, then every writer that took part gets Abort. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        harness_set(h, "be", "prepare-backup", "wait");
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup(b, &a), 0);
        CHECK(harness_wait_started(h, "be", "prepare-backup"));
        CHECK_HR(vss_backup_abort_backup(b), 0);
        harness_go(h, "be", "prepare-backup");
        CHECK_HR(vss_async_wait(a, 20000), 0);
        vss_async_unref(a);
        CHECK(wait_count(h, "fe", "abort", 1, 20000) && wait_count(h, "be", "abort", 1, 20000));
        /* The session is aborted: no snapshot set any more (status waits for the Abort to end). */
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE);
        vss_backup_release(b);
        check_events(h, "fe", "identify prepare-backup abort backup-shutdown");
        check_events(h, "be", "identify prepare-backup abort backup-shutdown");
}

static void test_abort_nothing_under_way(void) {
        /* Just after InitializeForBackup (and after metadata) AbortBackup is ignored: the session
         * goes on as if it had not been called, to a whole backup. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_abort_backup(b), VSS_E_BAD_STATE); /* not initialized */
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        CHECK_HR(vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        prepare(b, data);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        /* After BackupComplete nothing is under way either. */
        CHECK_HR(vss_backup_abort_backup(b), 0);
        vss_backup_release(b);
        check_events(h, "fe",
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        /* Nor is any backup under way in a restore session. */
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_restore(b, NULL), 0);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        vss_backup_release(b);
}

static void test_cancel_codes(void) {
        /* IVssAsync::Cancel: S_OK when it cancels, VSS_S_ASYNC_CANCELLED when cancelled before,
         * VSS_S_ASYNC_FINISHED when the operation had succeeded. */
        CHECK(VSS_S_ASYNC_PENDING == 0x00042309 && VSS_S_ASYNC_FINISHED == 0x0004230A &&
              VSS_S_ASYNC_CANCELLED == 0x0004230B);
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup(b, &a), 0);
        CHECK_HR(vss_async_wait(a, -1), 0);
        CHECK_HR(vss_async_cancel(a), VSS_S_ASYNC_FINISHED);
        CHECK_HR(vss_async_cancel(a), VSS_S_ASYNC_FINISHED);
        vss_async_unref(a);

        harness_set(h, "be", "freeze", "wait");
        CHECK_HR(vss_backup_do_snapshot_set(b, &a), 0);
        CHECK(harness_wait_started(h, "be", "freeze"));
        CHECK_HR(vss_async_cancel(a), 0);
        CHECK_HR(vss_async_cancel(a), VSS_S_ASYNC_CANCELLED);
        harness_go(h, "be", "freeze");
        CHECK_HR(vss_async_wait(a, 20000), VSS_S_ASYNC_CANCELLED);
        CHECK_HR(vss_async_cancel(a), VSS_S_ASYNC_CANCELLED);
        vss_async_unref(a);
        vss_backup_release(b);
        /* One that cannot be cancelled (anything but a do-snapshot-set) is waited for: Cancel says
         * how it ended, never that it was cancelled. */
        vss_backup *b2 = harness_session(h);
        harness_set(h, "fe", "prepare-backup", "block 1");
        CHECK_HR(vss_backup_start_snapshot_set(b2, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup(b2, &a), 0);
        CHECK(harness_wait_started(h, "fe", "prepare-backup"));
        CHECK_HR(vss_async_cancel(a), VSS_S_ASYNC_FINISHED);
        CHECK_HR(vss_async_query(a), VSS_S_ASYNC_FINISHED);
        vss_async_unref(a);
        vss_backup_release(b2);
}

static void test_cancel_after_failure(void) {
        /* Cancel on an operation that failed returns the failure. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "be", back);
        harness_set(h, "be", "freeze", "fail 1 no");
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        prepare(b, data);
        CHECK_HR(vss_backup_do_snapshot_set(b, &a), 0);
        CHECK_HR(vss_async_wait(a, -1), VSS_E_WRITERERROR_NONRETRYABLE);
        CHECK_HR(vss_async_cancel(a), VSS_E_WRITERERROR_NONRETRYABLE);
        vss_async_unref(a);
        vss_backup_release(b);
}

/* The points of a two-level freeze where the requester is killed: a writer's hook is held there
 * ("wait") until the test lets it go. fe is front-end (frozen first, thawed last), be back-end. */
static const struct {
        const char *writer, *event;
} points[] = {
        { "fe", "prepare-snapshot" },
        { "fe", "freeze" },
        { "be", "freeze" },
        { "be", "thaw" },
        { "fe", "thaw" },
};

static void requester(Harness *h, const char *data) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        vss_backup *b = harness_session(h);
        vss_backup_start_snapshot_set(b, NULL);
        vss_backup_add_to_snapshot_set(b, data, NULL, NULL);
        vss_backup_prepare_for_backup_sync(b);
        vss_backup_do_snapshot_set_sync(b);
        pause(); /* killed by the test */
        _exit(0);
}

/* Whether the writer is left frozen: a freeze in its events not followed by thaw or abort. */
static bool left_frozen(Harness *h, const char *writer) {
        char *ev = harness_events(h, writer);
        char *f = NULL;
        for (char *p = ev; (p = strstr(p, "freeze")); p++)
                f = p;
        bool frozen = f && !strstr(f, "thaw") && !strstr(f, "abort");
        free(ev);
        return frozen;
}

/* One kill at point k; returns false on the first failed expectation (already counted). */
static bool kill_at(Harness *h, const char *data, size_t k) {
        const char *held = points[k].writer, *event = points[k].event;
        const char *other = streq(held, "fe") ? "be" : "fe";
        int failures = test_failures;
        char path[600];

        harness_clear_log(h);
        snprintf(path, sizeof(path), "%s/ctl/%s.%s.started", harness_dir(h), held, event);
        (void) unlink(path);
        harness_set(h, held, event, "wait");
        pid_t pid = fork();
        if (pid == 0)
                requester(h, data);
        CHECK(harness_wait_started(h, held, event));
        CHECK(kill(pid, SIGKILL) == 0);
        CHECK(waitpid(pid, NULL, 0) == pid);

        /* While the held writer is still busy, the other one, if it got PrepareForSnapshot, has
         * Abort at once: nobody waits for the slowest writer of the batch. */
        if (count_event(h, other, "prepare-snapshot") > 0 && !wait_count(h, other, "abort", 1, 10000)) {
                fprintf(stderr, "kill at %s %s: %s got no Abort while %s was busy\n", held, event, other, held);
                test_failures++;
        }
        /* Once the held writer answers, it gets Abort at once too, never Thaw after the abort. */
        harness_go(h, held, event);
        if (!wait_count(h, held, "abort", 1, 10000)) {
                fprintf(stderr, "kill at %s %s: %s got no Abort after answering\n", held, event, held);
                test_failures++;
        }
        CHECK(wait_count(h, "fe", "backup-shutdown", 1, 20000) && wait_count(h, "be", "backup-shutdown", 1, 20000));
        CHECK(!left_frozen(h, "fe") && !left_frozen(h, "be"));
        CHECK(count_event(h, "fe", "abort") == 1 && count_event(h, "be", "abort") == 1);
        harness_set(h, held, event, "none");
        if (test_failures != failures) {
                char *log = harness_log(h);
                fprintf(stderr, "log: %s\n", log);
                free(log);
        }
        return test_failures == failures;
}

static void test_kill_requester_every_freeze_point(void) {
        /* The requester is killed at every point of a two-level freeze, many times: every writer
         * that took part gets Abort as soon as it is not busy, none stays frozen past the abort,
         * nothing of the set is left. */
        const char *full = getenv("OPENVSS_CHECK_FULL");
        int rounds = full && *full && !streq(full, "0") ? 50 : 4;
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        for (int r = 0; r < rounds; r++)
                for (size_t k = 0; k < ELEMENTSOF(points); k++)
                        if (!kill_at(h, data, k))
                                return;
        CHECK(harness_count_shadow_files(h) == 0);
        /* The machine-wide set slot is free again. */
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        vss_backup_release(b);
}

static const TestCase cases[] = {
        { "abort-after-failed-dss", test_abort_after_failed_dss },
        { "abort-after-prepare", test_abort_after_prepare },
        { "abort-after-prepare-unanswered", test_abort_after_prepare_unanswered },
        { "abort-after-snapshot", test_abort_after_snapshot },
        { "abort-during-prepare", test_abort_during_prepare },
        { "abort-nothing-under-way", test_abort_nothing_under_way },
        { "cancel-codes", test_cancel_codes },
        { "cancel-after-failure", test_cancel_after_failure },
        { "kill-requester-every-freeze-point", test_kill_requester_every_freeze_point },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
