/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The backup sequence against the real vssd with real vss-writer-exec writers. */

#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib/client.h"
#include "tests/harness.h"

static const char *const front[] = { "--app-level", "front-end", NULL };
static const char *const back[] = { "--app-level", "back-end", NULL };

/* Start set, add data, prepare for backup. */
static void prepare(Harness *h, vss_backup *b, const char *data, vss_id *ret_shadow) {
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, ret_shadow), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
}

static void check_status(vss_backup *b, const char *name, vss_writer_state state, int32_t failure) {
        vss_writer_status st;
        if (!status_of(b, name, &st)) {
                fprintf(stderr, "no status for writer '%s'\n", name);
                test_failures++;
                return;
        }
        if (st.state != state || st.failure != failure) {
                fprintf(stderr, "writer '%s': state %s (%d), failure 0x%08x; expected %s (%d), 0x%08x\n", name,
                        vss_writer_state_name(st.state), st.state, (uint32_t) st.failure, vss_writer_state_name(state),
                        state, (uint32_t) failure);
                test_failures++;
        }
}

static void check_events(Harness *h, const char *writer, const char *want) {
        char *got = harness_events(h, writer);
        CHECK_STR(got, want);
        free(got);
}

static void test_full_sequence(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        vss_id shadow;
        vss_snapshot_prop p;
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);

        vss_backup *b = harness_session(h);
        CHECK(vss_backup_metadata_count(b) == 2);
        prepare(h, b, data, &shadow);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        CHECK(vss_backup_writer_status_count(b) == 2);
        check_status(b, "fe", VSS_WS_STABLE, 0);
        check_status(b, "be", VSS_WS_STABLE, 0);

        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        check_status(b, "be", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);

        /* The shadow is a faithful copy, out of reach of anyone but root. */
        CHECK_HR(vss_backup_get_snapshot_properties(b, &shadow, &p), 0);
        CHECK_STR(p.provider, "file");
        CHECK_STR(p.original_path, data);
        /* Its data lives on the machine's own filesystem, which tests never hold: said, not hidden. */
        CHECK(p.attributes == (VSS_CTX_BACKUP | OPENVSS_ATTR_NOT_POINT_IN_TIME));
        CHECK(harness_sh(h, NULL, "diff -r '%s' '%s'", data, p.shadow_path) == 0);
        struct stat st, orig, shadows;
        char shadows_dir[PATH_MAX];
        snprintf(shadows_dir, sizeof(shadows_dir), "%s/shadows", harness_state_dir(h));
        CHECK(stat(p.shadow_path, &st) == 0 && stat(data, &orig) == 0 && st.st_mode == orig.st_mode);
        CHECK(stat(shadows_dir, &shadows) == 0 && (shadows.st_mode & 07777) == 0700 && shadows.st_uid == 0);

        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_STABLE, 0);
        check_status(b, "be", VSS_WS_STABLE, 0);
        /* That gather closed the slots: a later one (a requester logging, say) gets that status
         * again, the writers not asked (they may be in another session by now). */
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_STABLE, 0);
        check_status(b, "be", VSS_WS_STABLE, 0);

        vss_backup_release(b);
        /* Freeze front-end first, back-end next; thaw in reverse. */
        char *log = harness_log(h);
        CHECK(strstr(log, "fe freeze, be freeze, be thaw, fe thaw") != NULL);
        free(log);
        const char *all = "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown";
        check_events(h, "fe", all);
        check_events(h, "be", all);
        /* Auto-release (VSS_CTX_BACKUP): the shadow went with the session. */
        CHECK(access(p.shadow_path, F_OK) < 0);
        CHECK(harness_count_shadow_files(h) == 0);
}

static void test_identify_failure(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "good", NULL);
        harness_writer(h, "bad", NULL);
        harness_set(h, "bad", "identify", "fail 3 cannot describe myself");

        vss_backup *b = harness_session(h);
        CHECK(vss_backup_metadata_count(b) == 1);
        CHECK_STR(vss_backup_metadata_get(b, 0)->name, "good");
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        /* No metadata, no status. */
        CHECK(vss_backup_writer_status_count(b) == 1);
        vss_writer_status st;
        CHECK(status_of(b, "bad", &st) == NULL);
        vss_backup_release(b);
        check_events(h, "bad", "identify");
        /* The admin view says why it took no part. */
        int rc;
        json_object *out = harness_json(h, &rc, "vssadmin list writers --json"), *ws = NULL, *bad = NULL;
        CHECK(rc == 0 && out && json_object_object_get_ex(out, "writers", &ws));
        for (size_t i = 0; ws && i < json_object_array_length(ws); i++)
                if (streq(json_str(json_object_array_get_idx(ws, i), "name"), "bad"))
                        bad = json_object_array_get_idx(ws, i);
        CHECK_STR(json_str(bad, "state_name"), "FailedAtIdentify");
        CHECK_STR(json_str(bad, "failure_name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        CHECK_STR(json_str(bad, "application_message"), "cannot describe myself");
        json_object_put(out);
}

/* A writer vetoes one event: its FailedAt state, code and message; who gets Abort. */
static void veto_case(const char *event, vss_writer_state want_state, bool aborts, int32_t want_dss) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        harness_set(h, "be", event, "fail 75 database busy, try later");

        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), want_dss);
        if (want_dss == 0 && streq(event, "backup-complete"))
                CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        CHECK(vss_backup_writer_status_count(b) == 2);
        vss_writer_status st;
        CHECK(status_of(b, "be", &st) != NULL);
        if (status_of(b, "be", &st)) {
                CHECK(st.state == want_state);
                CHECK_HR(st.failure, VSS_E_WRITERERROR_RETRYABLE);
                CHECK(st.application_code == 75);
                CHECK_STR(st.application_message, "database busy, try later");
        }
        if (aborts) {
                /* The innocent writer was aborted and is back to Stable, without error. */
                check_status(b, "fe", VSS_WS_STABLE, 0);
                if (status_of(b, "fe", &st))
                        CHECK_STR(st.note, "aborted");
                CHECK(harness_count_shadow_files(h) == 0);
        }
        vss_backup_release(b);
        char *fe = harness_events(h, "fe"), *be = harness_events(h, "be");
        CHECK((strstr(fe, "abort") != NULL) == aborts);
        CHECK((strstr(be, "abort") != NULL) == aborts);
        CHECK(strstr(fe, "backup-shutdown") != NULL);
        free(fe);
        free(be);
}

static void test_veto_prepare_backup(void) {
        veto_case("prepare-backup", VSS_WS_FAILED_AT_PREPARE_BACKUP, false, 0);
}
static void test_veto_prepare_snapshot(void) {
        veto_case("prepare-snapshot", VSS_WS_FAILED_AT_PREPARE_SNAPSHOT, false, 0);
}
static void test_veto_freeze(void) {
        veto_case("freeze", VSS_WS_FAILED_AT_FREEZE, true, VSS_E_WRITERERROR_RETRYABLE);
}
static void test_veto_thaw(void) {
        veto_case("thaw", VSS_WS_FAILED_AT_THAW, true, VSS_E_WRITERERROR_RETRYABLE);
}
static void test_veto_post_snapshot(void) {
        veto_case("post-snapshot", VSS_WS_FAILED_AT_POST_SNAPSHOT, false, 0);
}
static void test_veto_backup_complete(void) {
        veto_case("backup-complete", VSS_WS_FAILED_AT_BACKUP_COMPLETE, false, 0);
}

static void test_veto_nonretryable(void) {
        /* Any exit status other than 0 and 75 is non-retryable, and the code is the status. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "w", NULL);
        harness_set(h, "w", "freeze", "fail 3 disk on fire");
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_WRITERERROR_NONRETRYABLE);
        CHECK(strstr(vss_backup_errmsg(b), "disk on fire") != NULL);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        vss_writer_status st;
        CHECK(status_of(b, "w", &st) && st.state == VSS_WS_FAILED_AT_FREEZE && st.application_code == 3);
        CHECK_HR(st.failure, VSS_E_WRITERERROR_NONRETRYABLE);
        vss_backup_release(b);
}

/* Writers ok and slow (whose PrepareForBackup does what behaviour says) with 700 ms for it, a
 * session prepared for a backup of data: slow is not responding, ok Stable. */
static vss_backup *slow_prepare_backup(Harness **ret_h, const char *behaviour) {
        Harness *h = harness_new("{\"timeouts\": {\"prepare_backup_ms\": 700}}");
        char *data = harness_make_data(h, "data");
        harness_writer(h, "ok", NULL);
        harness_writer(h, "slow", NULL);
        harness_set(h, "slow", "prepare-backup", behaviour);
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "slow", VSS_WS_FAILED_AT_PREPARE_BACKUP, VSS_E_WRITER_NOT_RESPONDING);
        check_status(b, "ok", VSS_WS_STABLE, 0);
        *ret_h = h;
        return b;
}

static void test_hang_prepare_backup(void) {
        Harness *h;
        vss_backup *b = slow_prepare_backup(&h, "hang");
        /* The sequence goes on without it. */
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "ok", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        check_status(b, "slow", VSS_WS_FAILED_AT_PREPARE_BACKUP, VSS_E_WRITER_NOT_RESPONDING);
        vss_backup_release(b);
}

/* A writer that answers PrepareForBackup after its deadline is not responding in that session,
 * and the release does not wait on it again; but it is sent BackupShutdown all the same (VSS sends
 * it to every writer of a released backup), so it can clean up what it set up. */
static void test_late_writer_gets_shutdown(void) {
        Harness *h;
        vss_backup *b = slow_prepare_backup(&h, "block 2");
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        check_events(h, "ok", "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        CHECK(harness_wait_event(h, "slow", "backup-shutdown", 30000));
        check_events(h, "slow", "identify prepare-backup backup-shutdown");
}

static void test_hang_freeze(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static const char *const stuck_args[] = { "--app-level", "back-end", "--freeze-timeout", "800", NULL };
        harness_writer(h, "fe", front);
        harness_writer(h, "stuck", stuck_args);
        harness_set(h, "stuck", "freeze", "hang");
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_WRITER_NOT_RESPONDING);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "stuck", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITER_NOT_RESPONDING);
        check_status(b, "fe", VSS_WS_STABLE, 0);
        CHECK(harness_count_shadow_files(h) == 0);
        vss_backup_release(b);
        check_events(h, "fe", "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
}

static void test_status_in_progress(void) {
        /* Status gathered while a writer is busy: its last settled state and a note. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "slow", NULL);
        harness_set(h, "slow", "prepare-snapshot", "block 2");
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        vss_async *a = NULL;
        CHECK_HR(vss_backup_do_snapshot_set(b, &a), 0);
        CHECK(harness_wait_started(h, "slow", "prepare-snapshot"));
        CHECK_HR(vss_async_query(a), VSS_S_ASYNC_PENDING);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        vss_writer_status st;
        CHECK(status_of(b, "slow", &st) && st.state == VSS_WS_STABLE && st.failure == 0);
        CHECK(strncmp(st.note, "in progress: prepare-snapshot since ", 36) == 0);
        CHECK_HR(vss_async_wait(a, 0), VSS_S_ASYNC_PENDING);
        CHECK_HR(vss_async_wait(a, -1), 0);
        CHECK_HR(vss_async_query(a), VSS_S_ASYNC_FINISHED);
        vss_async_unref(a);
        vss_backup_release(b);
}

/* Waits up to 5 s for a writer to have seen an event. */
static bool wait_event(Harness *h, const char *writer, const char *event) {
        for (int i = 0; i < 500; i++) {
                char *ev = harness_events(h, writer);
                bool seen = strstr(ev, event) != NULL;
                free(ev);
                if (seen)
                        return true;
                usleep(10000);
        }
        return false;
}

/* The moment every mid-freeze test starts from: "fe" (front-end) is frozen, "be" (back-end) is
 * inside its Freeze hook for `block` seconds, and do-snapshot-set is in flight. */
typedef struct MidFreeze {
        Harness *h;
        vss_backup *b;
        vss_async *a;
        pid_t fe, be;
} MidFreeze;

static MidFreeze mid_freeze(const char *block) {
        MidFreeze f = { .h = harness_new(NULL) };
        char behaviour[32], *data = harness_make_data(f.h, "data");
        f.fe = harness_writer(f.h, "fe", front);
        f.be = harness_writer(f.h, "be", back);
        snprintf(behaviour, sizeof(behaviour), "block %s", block);
        harness_set(f.h, "be", "freeze", behaviour);
        f.b = harness_session(f.h);
        prepare(f.h, f.b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set(f.b, &f.a), 0);
        CHECK(harness_wait_started(f.h, "be", "freeze"));
        return f;
}

static void test_writer_killed_mid_freeze(void) {
        MidFreeze f = mid_freeze("30");
        kill(f.be, SIGKILL);
        CHECK_HR(vss_async_wait(f.a, 20000), VSS_E_WRITER_NOT_RESPONDING);
        vss_async_unref(f.a);
        CHECK_HR(vss_backup_gather_writer_status_sync(f.b), 0);
        check_status(f.b, "be", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITER_NOT_RESPONDING);
        check_status(f.b, "fe", VSS_WS_STABLE, 0);
        CHECK(harness_count_shadow_files(f.h) == 0);
        vss_backup_release(f.b);
        check_events(f.h, "fe", "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
}

static void test_frozen_writer_lost_seen_by_status(void) {
        /* A frozen writer dies while a later level still freezes, and the requester's status
         * query is what notices: the set must abort, never commit. */
        MidFreeze f = mid_freeze("2");
        kill(f.fe, SIGKILL);
        usleep(200 * 1000);
        CHECK_HR(vss_backup_gather_writer_status_sync(f.b), 0);
        check_status(f.b, "fe", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITER_NOT_RESPONDING);
        CHECK_HR(vss_async_wait(f.a, 20000), VSS_E_WRITER_NOT_RESPONDING);
        vss_async_unref(f.a);
        CHECK(harness_count_shadow_files(f.h) == 0);
        vss_backup_release(f.b);
        check_events(f.h, "be", "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
}

static void test_requester_killed_mid_freeze(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        harness_set(h, "be", "freeze", "wait");
        pid_t pid = fork();
        if (pid == 0) {
                /* The requester: runs into DoSnapshotSet and is killed there. */
                vss_backup *b = harness_session(h);
                vss_backup_start_snapshot_set(b, NULL);
                vss_backup_add_to_snapshot_set(b, data, NULL, NULL);
                vss_backup_prepare_for_backup_sync(b);
                vss_backup_do_snapshot_set_sync(b);
                _exit(0);
        }
        CHECK(harness_wait_started(h, "be", "freeze"));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        /* The frozen fe gets Abort at once, while be is still in its Freeze; be gets it when its
         * Freeze returns. Then BackupShutdown reaches both writers, and nothing is left. */
        CHECK(wait_event(h, "fe", "abort"));
        harness_go(h, "be", "freeze");
        CHECK(wait_event(h, "fe", "backup-shutdown") && wait_event(h, "be", "backup-shutdown"));
        check_events(h, "fe", "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
        check_events(h, "be", "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
        char *log = harness_log(h);
        CHECK(strstr(log, "fe abort, be abort") != NULL);
        free(log);
        CHECK(harness_count_shadow_files(h) == 0);
        char *out = NULL;
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && strstr(out, "\"shadows\":[\n  ]") != NULL);
        free(out);
        /* The machine-wide set slot is free again. */
        vss_backup *b2 = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b2, NULL), 0);
        vss_backup_release(b2);
}

static void test_cancel_mid_freeze(void) {
        /* Cancelling do-snapshot-set while writers are frozen aborts the set. */
        MidFreeze f = mid_freeze("1");
        CHECK_HR(vss_async_cancel(f.a), 0);
        CHECK_HR(vss_async_wait(f.a, 20000), VSS_S_ASYNC_CANCELLED);
        CHECK_HR(vss_async_query(f.a), VSS_S_ASYNC_CANCELLED);
        vss_async_unref(f.a);
        CHECK_HR(vss_backup_gather_writer_status_sync(f.b), 0);
        check_status(f.b, "fe", VSS_WS_STABLE, 0);
        check_status(f.b, "be", VSS_WS_STABLE, 0);
        CHECK(harness_count_shadow_files(f.h) == 0);
        /* The session is over: aborted. */
        CHECK_HR(vss_backup_backup_complete_sync(f.b), VSS_E_BAD_STATE);
        vss_backup_release(f.b);
        check_events(f.h, "fe", "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
        check_events(f.h, "be", "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
}

static void test_concurrent_sets(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "w", NULL);
        vss_backup *a = harness_session(h), *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(a, NULL), 0);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_SNAPSHOT_SET_IN_PROGRESS);
        CHECK(strstr(vss_backup_errmsg(b), "VSS_E_SNAPSHOT_SET_IN_PROGRESS") != NULL);
        CHECK_HR(vss_backup_add_to_snapshot_set(a, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(a), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(a), 0);
        /* Once do-snapshot-set returned, the next set may start. */
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        vss_backup_release(a);
        vss_backup_release(b);
}

static void test_bad_state(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "w", NULL);
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), VSS_E_BAD_STATE);
        CHECK(strstr(vss_backup_errmsg(b), "PrepareForBackup") != NULL);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE); /* not prepared */
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        /* A session is used for one backup only. */
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), VSS_E_BAD_STATE);
        /* Nothing under way any more: AbortBackup is ignored (as Windows does). */
        CHECK_HR(vss_backup_abort_backup(b), 0);
        vss_backup_release(b);
}

/* SetContext: once per session, a context or a context with NO_AUTORECOVERY; a context without
 * writers (VSS_CTX_FILE_SHARE_BACKUP) involves no writer in the set, and, as VSS says ("Shadow Copy
 * Creation Details"), needs neither GatherWriterMetadata nor PrepareForBackup and refuses
 * AddComponent, PrepareForBackup and BackupComplete. */
static void test_context(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "w", NULL);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_APP_ROLLBACK | VSS_VOLSNAP_ATTR_NO_AUTORECOVERY), 0);
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_BACKUP), VSS_E_BAD_STATE);
        vss_backup_release(b);

        b = harness_session(h);
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_FILE_SHARE_BACKUP), 0);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), VSS_E_BAD_STATE);
        vss_id iid = {}, wid = {};
        CHECK_HR(vss_backup_add_component(b, &iid, &wid, "", "x"), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        vss_writer_status st;
        CHECK(status_of(b, "w", &st) && st.state == VSS_WS_STABLE);
        CHECK_HR(vss_backup_backup_complete_sync(b), VSS_E_BAD_STATE);
        vss_backup_release(b);
        /* Without GatherWriterMetadata either: the writers hear nothing. */
        b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_FILE_SHARE_BACKUP), 0);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        vss_backup_release(b);
        check_events(h, "w", "identify backup-shutdown identify backup-shutdown");
}

/* A snapshot set with no volumes, with writers: VSS calls it acceptable. The writers quiesce
 * (Freeze, Thaw) and nothing is cut. */
static void test_empty_set(void) {
        Harness *h = harness_new(NULL);
        harness_writer(h, "w", NULL);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        check_events(h, "w", "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        CHECK(harness_count_shadow_files(h) == 0);
}

/* VSS_CTX_ALL: SetContext takes it, as in VSS; no set is made in it, and the session still
 * gathers status. */
static void check_context_all(Harness *h) {
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_ALL), 0);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_BAD_STATE);
        CHECK(strstr(vss_backup_errmsg(b), "VSS_CTX_ALL") != NULL);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        vss_backup_release(b);
}

static void test_bad_input(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char path[600];
        check_context_all(h);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_set_context(b, 0x1234), VSS_E_INVALIDARG);
        /* Transportable shadows are not made (README, deviations). */
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_BACKUP | 0x20), VSS_E_INVALIDARG);
        CHECK(strstr(vss_backup_errmsg(b), "transportable") != NULL);
        CHECK_HR(vss_backup_set_backup_state(b, false, false, (vss_backup_type) 99, false), VSS_E_INVALIDARG);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, "relative/path", NULL, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, "/nonexistent/openvss", NULL, NULL), VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, harness_state_dir(h), NULL, NULL), VSS_E_VOLUME_NOT_SUPPORTED);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, harness_dir(h), NULL, NULL), VSS_E_VOLUME_NOT_SUPPORTED);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, "no-such-provider", NULL), VSS_E_OBJECT_NOT_FOUND);
        /* A provider named that cannot take the volume (data is not on btrfs). */
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, "btrfs", NULL), VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, "file", NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), VSS_E_OBJECT_ALREADY_EXISTS);
        for (int i = 1; i < 64; i++) {
                snprintf(path, sizeof(path), "%s/vol%d", harness_dir(h), i);
                mkdir(path, 0755);
                CHECK_HR(vss_backup_add_to_snapshot_set(b, path, NULL, NULL), 0);
        }
        snprintf(path, sizeof(path), "%s/sub", data);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, path, NULL, NULL), VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED);
        vss_id unknown;
        vss_id_new(&unknown);
        vss_snapshot_prop p;
        CHECK_HR(vss_backup_get_snapshot_properties(b, &unknown, &p), VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_backup_add_component(b, &unknown, &unknown, "", "x"), VSS_E_BAD_STATE); /* not component mode */
        vss_backup_release(b);

        /* A bad configuration is refused with a clear error. */
        char *out = NULL;
        CHECK(harness_sh(h, &out, "echo '{\"timeouts\": {\"freeze_ms\": 5}}' > %s/bad.json; %s --config %s/bad.json "
                                  "--socket %s/x.sock --state-dir %s/x 2>&1",
                         harness_dir(h), VSSD_PATH, harness_dir(h), harness_dir(h), harness_dir(h)) == 2);
        CHECK(out && strstr(out, "unknown key timeouts.freeze_ms") != NULL);
        free(out);
        CHECK(harness_sh(h, &out, "echo '{\"hold_window_ms\": 0}' > %s/bad.json; %s --config %s/bad.json "
                                  "--socket %s/x.sock --state-dir %s/x 2>&1",
                         harness_dir(h), VSSD_PATH, harness_dir(h), harness_dir(h), harness_dir(h)) == 2);
        CHECK(out && strstr(out, "hold_window_ms: must be an integer from 1 to 600000") != NULL);
        free(out);
}

static void test_session_isolation(void) {
        Harness *h = harness_new(NULL);
        harness_writer(h, "w", NULL);
        harness_set(h, "w", "prepare-backup", "fail 75 only for session A");
        char *data = harness_make_data(h, "data");
        vss_backup *a = harness_session(h), *b = harness_session(h);
        vss_id aid;
        char ids[VSS_ID_STRING_MAX];
        vss_backup_get_session_id(a, &aid);
        vss_id_to_string(&aid, ids);
        prepare(h, a, data, NULL);
        CHECK_HR(vss_backup_gather_writer_status_sync(a), 0);
        check_status(a, "w", VSS_WS_FAILED_AT_PREPARE_BACKUP, VSS_E_WRITERERROR_RETRYABLE);
        /* B's view is its own: the failure in A does not show. */
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "w", VSS_WS_STABLE, 0);

        /* Another connection naming A's session id can neither read nor drive it. */
        sd_bus *other = NULL;
        CHECK(vss_connect(harness_socket(h), &other) >= 0);
        static const char *const methods[] = { "GatherWriterStatus", "AbortBackup", "DoSnapshotSet", "WaitPaused",
                                               "ContinueSnapshotSet", "ReleaseSession" };
        for (size_t i = 0; other && i < ELEMENTSOF(methods); i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                CHECK(sd_bus_call_method(other, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, methods[i], &e, NULL, "s", ids) < 0);
                CHECK(sd_bus_error_has_name(&e, VSS_ERROR_PREFIX "VSS_E_OBJECT_NOT_FOUND"));
                CHECK(e.message && strstr(e.message, "no session") != NULL);
                sd_bus_error_free(&e);
        }
        sd_bus_flush_close_unref(other);
        /* A is untouched: still prepared, its snapshot set can proceed. */
        CHECK_HR(vss_backup_do_snapshot_set_sync(a), 0);
        vss_backup_release(a);
        vss_backup_release(b);
}

static void test_restore_status_direct(void) {
        Harness *h = harness_new(NULL);
        harness_writer(h, "one", NULL);
        harness_writer(h, "two", NULL);
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_restore(b, NULL), 0);
        /* No metadata gathered: the status lists the writers that run and answer now. */
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        CHECK(vss_backup_metadata_count(b) == 0);
        CHECK(vss_backup_writer_status_count(b) == 2);
        check_status(b, "one", VSS_WS_STABLE, 0);
        check_status(b, "two", VSS_WS_STABLE, 0);
        CHECK_HR(vss_backup_pre_restore_sync(b), 0);
        CHECK_HR(vss_backup_post_restore_sync(b), 0);
        vss_backup_release(b);
        check_events(h, "one", "pre-restore post-restore");
}

static void test_restore_veto(void) {
        Harness *h = harness_new(NULL);
        harness_writer(h, "w", NULL);
        harness_set(h, "w", "post-restore", "fail 9 recovery failed");
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_restore(b, NULL), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        CHECK_HR(vss_backup_pre_restore_sync(b), 0);
        CHECK_HR(vss_backup_post_restore_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "w", VSS_WS_FAILED_AT_POST_RESTORE, VSS_E_WRITERERROR_NONRETRYABLE);
        vss_backup_release(b);
        check_events(h, "w", "identify pre-restore post-restore");
}

static void test_component_mode(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[700];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "chosen", args);
        harness_writer(h, "other", NULL);
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_set_backup_state(b, true, false, VSS_BT_FULL, false), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        const vss_writer_metadata *md = NULL;
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++)
                if (streq(vss_backup_metadata_get(b, i)->name, "chosen"))
                        md = vss_backup_metadata_get(b, i);
        CHECK(md && md->n_components == 1);
        if (md && md->n_components == 1) {
                CHECK_STR(md->components[0].name, "db");
                CHECK(md->components[0].n_files == 1);
                CHECK_STR(md->components[0].files[0].path, data);
                CHECK_HR(vss_backup_add_component(b, &md->instance_id, &md->writer_id, "", "nope"), VSS_E_OBJECT_NOT_FOUND);
                CHECK_HR(vss_backup_add_component(b, &md->instance_id, &md->writer_id, "", "db"), 0);
                CHECK_HR(vss_backup_add_component(b, &md->instance_id, &md->writer_id, "", "db"),
                         VSS_E_OBJECT_ALREADY_EXISTS);
        }
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        if (md)
                CHECK_HR(vss_backup_set_backup_succeeded(b, &md->instance_id, &md->writer_id, "", "db", true), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        check_events(h, "chosen",
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        /* Not selected: prepared for the backup, so told it ended (VSS: BackupShutdown to every
         * writer of the backup), nothing between. */
        check_events(h, "other", "identify prepare-backup backup-shutdown");
}

/* BackupShutdown names the session's set only if it was made (VSS: "If no shadow copy has been
 * successfully performed, the value of SnapshotSetId will be NULL"): after a made set (auto-release,
 * so deleted by then), a vetoed one, one aborted after PrepareForBackup and one made empty. */
static void test_shutdown_names_made_set(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char ids[600], want[VSS_ID_STRING_MAX + 8];
        snprintf(ids, sizeof(ids), "%s/shutdown-ids", harness_dir(h));
        harness_hook(h, "20-set-id",
                     "#!/bin/sh\n"
                     "[ \"$1\" = backup-shutdown ] && echo \"[$VSS_SNAPSHOT_SET_ID]\" >> \"$HARNESS_DIR/shutdown-ids\"\n"
                     "exit 0\n");
        harness_writer(h, "fe", front);

        vss_id set, none = {};
        char sid[VSS_ID_STRING_MAX];
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, &set), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        CHECK(!vss_id_equal(&set, &none));
        snprintf(want, sizeof(want), "[%s]\n", vss_id_to_string(&set, sid));
        char *got = harness_read(h, "shutdown-ids");
        CHECK_STR(got, want);
        free(got);

        harness_set(h, "fe", "freeze", "fail 75 not now");
        b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_WRITERERROR_RETRYABLE);
        vss_backup_release(b);

        b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        vss_backup_release(b);

        /* A set made with no volume in it: no shadow copy was made. */
        harness_set(h, "fe", "freeze", "ok");
        b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);

        snprintf(ids, sizeof(ids), "%s[]\n[]\n[]\n", want);
        got = harness_read(h, "shutdown-ids");
        CHECK_STR(got, ids);
        free(got);
        check_events(h, "fe", "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete "
                               "backup-shutdown identify prepare-backup prepare-snapshot freeze abort backup-shutdown "
                               "identify prepare-backup abort backup-shutdown "
                               "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete "
                               "backup-shutdown");
}

static void test_freeze_window_expired(void) {
        /* A later level's Freeze may not outlast the window of a writer already frozen: at the
         * quick one's window the set aborts. The quick one failed (VSS: FailedAtFreeze,
         * VSS_E_WRITERERROR_TIMEOUT, which requesters retry); the slow one, within its own
         * window, is aborted with the set, not blamed. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static const char *const quick[] = { "--app-level", "front-end", "--freeze-timeout", "400", NULL };
        harness_writer(h, "quick", quick);
        harness_writer(h, "slow", back);
        harness_set(h, "slow", "freeze", "block 3");
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_WRITERERROR_TIMEOUT);
        CHECK(strstr(vss_backup_errmsg(b), "window ran out while writer 'slow' (a later level) was still freezing") != NULL);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "quick", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_TIMEOUT);
        check_status(b, "slow", VSS_WS_STABLE, 0);
        CHECK(harness_count_shadow_files(h) == 0);
        vss_backup_release(b);
        char *ev = harness_events(h, "quick");
        CHECK(strncmp(ev, "identify prepare-backup prepare-snapshot freeze abort", 53) == 0);
        CHECK(strstr(ev, "thaw") == NULL);
        free(ev);
}

/* The same, the later writer also letting the Abort go unanswered (still in its Freeze, past
 * its own window): it failed at Freeze, where it was, not at PrepareForSnapshot. */
static void test_freeze_window_expired_abort_unanswered(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static const char *const quick[] = { "--app-level", "front-end", "--freeze-timeout", "400", NULL };
        static const char *const slow[] = { "--app-level", "back-end", "--freeze-timeout", "1000", NULL };
        harness_writer(h, "quick", quick);
        harness_writer(h, "slow", slow);
        harness_set(h, "slow", "freeze", "block 3");
        harness_set(h, "slow", "abort", "block 3"); /* past its 1 s: the Abort goes unanswered */
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_WRITERERROR_TIMEOUT);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "quick", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_TIMEOUT);
        check_status(b, "slow", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITER_NOT_RESPONDING);
        CHECK(harness_count_shadow_files(h) == 0);
        vss_backup_release(b);
}

static void test_freeze_window_per_writer(void) {
        /* Each writer's Freeze→Thaw window runs from its own Freeze: the back-end writer, frozen
         * once the front-end took 3 s to freeze, still has its 4 s when the system writer takes
         * 1.5 s (a window counted from the first Freeze would have cut the system writer off). */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static const char *const be[] = { "--app-level", "back-end", "--freeze-timeout", "4000", NULL };
        static const char *const sys[] = { "--app-level", "system", NULL };
        harness_writer(h, "fe", front);
        harness_writer(h, "be", be);
        harness_writer(h, "sy", sys);
        harness_set(h, "fe", "freeze", "block 3");
        harness_set(h, "sy", "freeze", "block 1.5");
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        check_status(b, "be", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        check_status(b, "sy", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        vss_backup_release(b);
}

static void test_vssd_killed_writer_thaws(void) {
        /* fe is frozen; vssd dies. fe must thaw itself at once. */
        MidFreeze f = mid_freeze("3");
        harness_kill_vssd(f.h);
        CHECK(wait_event(f.h, "fe", "abort"));
        check_events(f.h, "fe", "identify prepare-backup prepare-snapshot freeze abort");
        CHECK_HR(vss_async_wait(f.a, 5000), VSS_E_WRITER_INFRASTRUCTURE);
        vss_async_unref(f.a);
        vss_backup_release(f.b);
        /* A restarted vssd leaves nothing of the unfinished set behind. */
        harness_restart_vssd(f.h);
        CHECK(harness_count_shadow_files(f.h) == 0);
}

static void test_provider_failure(void) {
        /* The state directory is a tiny tmpfs: the copy runs out of space mid-commit. */
        Harness *h = harness_new(NULL);
        char data[600];
        snprintf(data, sizeof(data), "%s/big", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -p %s && head -c 2000000 /dev/urandom > %s/blob", data, data) == 0);
        harness_state_on_tmpfs(h, "256k");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        vss_backup *b = harness_session(h);
        prepare(h, b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_INSUFFICIENT_STORAGE);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "fe", VSS_WS_STABLE, 0);
        check_status(b, "be", VSS_WS_STABLE, 0);
        vss_backup_release(b);
        /* Frozen writers got Abort in reverse order; nothing half-made is left. */
        char *log = harness_log(h);
        CHECK(strstr(log, "be abort, fe abort") != NULL);
        CHECK(strstr(log, "thaw") == NULL);
        free(log);
        CHECK(harness_count_shadow_files(h) == 0);
        char *out = NULL;
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && strstr(out, "\"shadows\":[\n  ]") != NULL);
        free(out);
}

static void test_persistent_survives_restart(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        vss_id shadow;
        char sid[VSS_ID_STRING_MAX], *out = NULL;
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_APP_ROLLBACK), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        prepare(h, b, data, &shadow);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        harness_restart_vssd(h);
        vss_id_to_string(&shadow, sid);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && strstr(out, sid) != NULL);
        free(out);
        CHECK(harness_sh(h, &out, "vssadmin delete shadows --shadow %s", sid) == 0);
        CHECK(out && strstr(out, "Deleted 1 shadow copies") != NULL);
        free(out);
        CHECK(harness_count_shadow_files(h) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --shadow %s 2>/dev/null", sid) == 1);
}

/* The control file is made when a hook is about to run, not for every event: a writer whose
 * TMPDIR cannot take one still goes through a whole set when it has no hook, and one with hooks
 * fails the first event that runs one, saying why. */
static void test_control_file_for_hooks_only(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char empty[PATH_MAX], gone[PATH_MAX];
        vss_id shadow;
        snprintf(empty, sizeof(empty), "%s/no-hooks", harness_dir(h));
        snprintf(gone, sizeof(gone), "%s/no-such-dir", harness_dir(h));
        CHECK(mkdir(empty, 0755) == 0);
        const char *const bare[] = { "--hooks", empty, NULL }; /* the last --hooks counts */
        CHECK(setenv("TMPDIR", gone, 1) == 0);
        harness_writer(h, "bare", bare);

        vss_backup *b = harness_session(h);
        prepare(h, b, data, &shadow);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "bare", VSS_WS_STABLE, 0);
        vss_backup_release(b);

        harness_writer(h, "hooked", NULL);
        CHECK(unsetenv("TMPDIR") == 0);
        b = harness_session(h);
        prepare(h, b, data, &shadow);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "bare", VSS_WS_STABLE, 0);
        check_status(b, "hooked", VSS_WS_FAILED_AT_PREPARE_BACKUP, VSS_E_WRITERERROR_NONRETRYABLE);
        vss_writer_status st;
        CHECK(status_of(b, "hooked", &st) && strstr(st.application_message, "VSS_CONTROL") != NULL);
        check_events(h, "hooked", "identify");
        CHECK_HR(vss_backup_abort_backup(b), 0);
        vss_backup_release(b);
        CHECK(access(gone, F_OK) < 0);
}

/* Thaw undoes a freeze whatever else fails: with no control file to be had (its TMPDIR removed
 * by the freeze hook), the thaw hooks still run, without VSS_CONTROL, and the writer says why it
 * failed at Thaw. */
static void test_control_file_thaw_runs_hooks(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char tmp[PATH_MAX];
        vss_id shadow;
        snprintf(tmp, sizeof(tmp), "%s/writer-tmp", harness_dir(h));
        CHECK(mkdir(tmp, 0755) == 0);
        harness_hook(h, "20-rmtmp", "#!/bin/sh\n"
                                    "[ \"$VSS_EVENT\" = freeze ] && rm -rf \"$TMPDIR\"\n"
                                    "[ \"$VSS_EVENT\" = thaw ] && echo \"control=${VSS_CONTROL-unset}\" > \"$HARNESS_DIR/thaw-env\"\n"
                                    "exit 0\n");
        CHECK(setenv("TMPDIR", tmp, 1) == 0);
        harness_writer(h, "w", NULL);
        CHECK(unsetenv("TMPDIR") == 0);

        vss_backup *b = harness_session(h);
        prepare(h, b, data, &shadow);
        /* A writer that failed Thaw makes the set inconsistent: it is aborted, nothing kept. */
        CHECK(vss_backup_do_snapshot_set_sync(b) < 0);
        CHECK(harness_count_shadow_files(h) == 0);
        CHECK(access(tmp, F_OK) < 0);
        check_events(h, "w", "identify prepare-backup prepare-snapshot freeze thaw abort");
        char *env = NULL;
        CHECK(harness_sh(h, &env, "cat %s/thaw-env", harness_dir(h)) == 0 && env && streq(env, "control=unset\n"));
        free(env);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_status(b, "w", VSS_WS_FAILED_AT_THAW, VSS_E_WRITERERROR_NONRETRYABLE);
        vss_writer_status st;
        CHECK(status_of(b, "w", &st) && strstr(st.application_message, "VSS_CONTROL") != NULL);
        vss_backup_release(b);
}

/* A hook that copies ctl/NAME.EVENT.control into $VSS_CONTROL and records what the writer was
 * told in env.NAME.EVENT: the document as the writer sees it. */
static void document_hook(Harness *h) {
        harness_hook(h, "60-doc",
                     "#!/bin/sh\n"
                     "d=\"$HARNESS_DIR\"\n"
                     "c=\"$d/ctl/$VSS_WRITER_NAME.$1.control\"\n"
                     "[ -f \"$c\" ] && cat \"$c\" >> \"$VSS_CONTROL\"\n"
                     "echo \"comps=$VSS_COMPONENTS prev=$VSS_PREVIOUS_BACKUP_STAMPS opts=$VSS_BACKUP_OPTIONS "
                     "status=$VSS_RESTORE_STATUS dirs=$VSS_RESTORE_TARGET_DIRS\" > \"$d/env.$VSS_WRITER_NAME.$1\"\n"
                     "exit 0\n");
}

static void control(Harness *h, const char *writer, const char *event, const char *lines) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/ctl/%s.%s.control", harness_dir(h), writer, event);
        FILE *f = fopen(p, "we");
        CHECK(f && fputs(lines, f) >= 0 && fclose(f) == 0);
}

static char *seen(Harness *h, const char *writer, const char *event) {
        char *out = NULL;
        if (harness_sh(h, &out, "cat %s/env.%s.%s 2>/dev/null", harness_dir(h), writer, event) != 0) {
                free(out);
                return strdup("(event not seen)");
        }
        return out;
}

/* A restore refused before anything is written (a backup several users could have written, in
 * place) tells the writer VSS_RS_NONE, not FAILED: its files on disk are as they were. */
static void test_restore_status_none(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[PATH_MAX + 8], backup[PATH_MAX];
        snprintf(comp, sizeof(comp), "c=%s", data);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        document_hook(h);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "w", args);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", backup) == 0);
        /* 4242's store (read with 4242's rights), whose documents 4343 could have written. */
        CHECK(harness_sh(h, NULL, "chown -R 4242 %s && chown 4343 %s/openvss/* && chmod a+r %s/openvss/*", backup,
                         backup, backup) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --quiet 2>/dev/null", backup) != 0);
        _cleanup_free_ char *post = seen(h, "w", "post-restore");
        CHECK(post && strstr(post, "status=c=none") != NULL);
        if (post && !strstr(post, "status=c=none"))
                fprintf(stderr, "post-restore saw: %s", post);
}

static const vss_writer_metadata *metadata_named(vss_backup *b, const char *name) {
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++)
                if (streq(vss_backup_metadata_get(b, i)->name, name))
                        return vss_backup_metadata_get(b, i);
        return NULL;
}

/* The backup components document in a backup: requester fields set when allowed, writer stamps
 * taken from PrepareForBackup through PostSnapshot and refused from BackupComplete on. */
static void test_document_backup(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        char comp[700];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        document_hook(h);
        harness_writer(h, "w", args);
        control(h, "w", "post-snapshot", "backup-stamp db lsn:42\n");
        control(h, "w", "backup-complete", "backup-stamp db too-late\n");
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_set_backup_state(b, true, false, VSS_BT_INCREMENTAL, false), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        const vss_writer_metadata *md = metadata_named(b, "w");
        CHECK(md != NULL);
        if (!md) {
                vss_backup_release(b);
                return;
        }
        /* Component mode: nothing can be set on a component that was not added. */
        CHECK_HR(vss_backup_set_backup_options(b, &md->instance_id, &md->writer_id, "", "db", "x"), VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_backup_add_component(b, &md->instance_id, &md->writer_id, "", "db"), 0);
        CHECK_HR(vss_backup_set_backup_options(b, &md->instance_id, &md->writer_id, "", "db", "verify=yes"), 0);
        CHECK_HR(vss_backup_set_previous_backup_stamp(b, &md->instance_id, &md->writer_id, "", "db", "lsn:7"), 0);
        /* Restore fields belong to restores. */
        CHECK_HR(vss_backup_set_selected_for_restore(b, &md->instance_id, &md->writer_id, "", "db", true), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_set_file_restore_status(b, &md->instance_id, &md->writer_id, "", "db", VSS_RS_ALL),
                 VSS_E_BAD_STATE);
        prepare(h, b, data, NULL);
        /* Too late for the requester's backup fields once PrepareForBackup went out. */
        CHECK_HR(vss_backup_set_backup_options(b, &md->instance_id, &md->writer_id, "", "db", "late"), VSS_E_BAD_STATE);
        _cleanup_free_ char *pb = seen(h, "w", "prepare-backup");
        CHECK_STR(pb, "comps=db prev=db=lsn:7 opts=db=verify=yes status= dirs=\n");
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_set_backup_succeeded(b, &md->instance_id, &md->writer_id, "", "db", true), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);

        vss_backup_document *d = NULL;
        CHECK_HR(vss_backup_get_document(b, &d), 0);
        if (d) {
                CHECK(d->backup_type == VSS_BT_INCREMENTAL && d->component_mode && d->n_shadows == 1 &&
                      !vss_id_is_null(&d->snapshot_set_id) && d->created_usec > 0);
                CHECK(d->n_writers == 1 && streq(d->writers[0]->name, "w"));
                const vss_bc_component *c = vss_backup_document_find(d, &md->writer_id, &md->instance_id, "", "db");
                CHECK(c && c->backup_succeeded);
                /* The stamp of PostSnapshot stands; BackupComplete's was refused. */
                CHECK(c && streq(c->backup_stamp, "lsn:42") && streq(c->previous_backup_stamp, "lsn:7") &&
                      streq(c->backup_options, "verify=yes"));
                CHECK(d->n_shadows == 1 && streq(d->shadows[0].original_path, data));
        }
        vss_backup_document_free(d);
        vss_backup_release(b);
        harness_free(h);
}

/* The restore sequence from a saved document: only writers with a component selected for restore
 * take part; writers set restore targets in PreRestore and see the file restore status in
 * PostRestore; a bad document is refused naming the field. */
static void test_document_restore(void) {
        Harness *h = harness_new(NULL);
        char *da = harness_make_data(h, "a"), ca[700];
        snprintf(ca, sizeof(ca), "ca=%s", da);
        char *db = harness_make_data(h, "b"), cb[700];
        snprintf(cb, sizeof(cb), "cb=%s", db);
        const char *const aa[] = { "--component", ca, NULL };
        const char *const ba[] = { "--component", cb, NULL };
        document_hook(h);
        harness_writer(h, "wa", aa);
        harness_writer(h, "wb", ba);
        control(h, "wa", "pre-restore", "restore-target ca alternate\n");
        control(h, "wa", "post-restore", "failure-message ca replayed 3 logs\n");

        /* A backup of both, in component mode. */
        vss_backup *b = NULL;
        char *doc = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_set_backup_state(b, true, false, VSS_BT_FULL, false), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        const vss_writer_metadata *ma = metadata_named(b, "wa"), *mb = metadata_named(b, "wb");
        CHECK(ma && mb);
        if (!ma || !mb)
                return;
        vss_id a_iid = ma->instance_id, a_wid = ma->writer_id;
        CHECK_HR(vss_backup_add_component(b, &ma->instance_id, &ma->writer_id, "", "ca"), 0);
        CHECK_HR(vss_backup_add_component(b, &mb->instance_id, &mb->writer_id, "", "cb"), 0);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, da, NULL, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, db, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        CHECK_HR(vss_backup_save_as_document(b, &doc), 0);
        vss_backup_release(b);
        if (!doc)
                return;

        /* A bad document: refused before anything is sent, naming the field. */
        b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        _cleanup_free_ char *bad = strdup(doc);
        char *at = strstr(bad, "\"file_restore_status\":0");
        CHECK(at != NULL);
        if (at)
                memcpy(at, "\"file_restore_status\":9", strlen("\"file_restore_status\":9"));
        CHECK_HR(vss_backup_initialize_for_restore(b, bad), VSS_E_INVALID_XML_DOCUMENT);
        CHECK(strstr(vss_backup_errmsg(b), "components[0].file_restore_status"));
        CHECK_HR(vss_backup_initialize_for_restore(b, "{not json"), VSS_E_INVALID_XML_DOCUMENT);
        /* The same session is still new: a good document is taken. */
        CHECK_HR(vss_backup_initialize_for_restore(b, doc), 0);
        /* Only writer a's component is restored, to a new place. */
        CHECK_HR(vss_backup_set_selected_for_restore(b, &a_iid, &a_wid, "", "ca", true), 0);
        CHECK_HR(vss_backup_add_new_target(b, &a_iid, &a_wid, "", "ca", da, "*", true, "/srv/alt"), 0);
        CHECK_HR(vss_backup_add_new_target(b, &a_iid, &a_wid, "", "ca", "relative", "*", true, "/x"), VSS_E_INVALIDARG);
        /* Only one of the component's own file sets, exactly (VSS: VSS_E_OBJECT_NOT_FOUND otherwise). */
        CHECK_HR(vss_backup_add_new_target(b, &a_iid, &a_wid, "", "ca", "/etc", "passwd", false, "/tmp/x"),
                 VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_backup_add_new_target(b, &a_iid, &a_wid, "", "ca", da, "*", false, "/srv/alt"), VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_backup_set_selected_for_restore(b, &a_iid, &a_wid, "", "nope", true), VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_backup_set_file_restore_status(b, &a_iid, &a_wid, "", "ca", VSS_RS_ALL), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_set_backup_options(b, &a_iid, &a_wid, "", "ca", "x"), VSS_E_BAD_STATE);
        harness_clear_log(h);
        CHECK_HR(vss_backup_pre_restore_sync(b), 0);
        CHECK_HR(vss_backup_set_selected_for_restore(b, &a_iid, &a_wid, "", "ca", false), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_set_file_restore_status(b, &a_iid, &a_wid, "", "ca", VSS_RS_ALL), 0);
        CHECK_HR(vss_backup_post_restore_sync(b), 0);
        check_events(h, "wa", "pre-restore post-restore");
        check_events(h, "wb", "");
        _cleanup_free_ char *pre = seen(h, "wa", "pre-restore");
        CHECK_STR(pre, "comps=ca prev= opts= status=ca=undefined dirs=ca=/srv/alt\n");
        _cleanup_free_ char *post = seen(h, "wa", "post-restore");
        CHECK_STR(post, "comps=ca prev= opts= status=ca=all dirs=ca=/srv/alt\n");
        vss_backup_document *d = NULL;
        CHECK_HR(vss_backup_get_document(b, &d), 0);
        const vss_bc_component *c = d ? vss_backup_document_find(d, &a_wid, NULL, "", "ca") : NULL;
        CHECK(c && c->selected_for_restore && c->restore_target == VSS_RT_ALTERNATE &&
              c->file_restore_status == VSS_RS_ALL && streq(c->post_restore_failure_msg, "replayed 3 logs") &&
              c->n_new_targets == 1 && streq(c->new_targets[0].destination, "/srv/alt"));
        vss_backup_document_free(d);
        vss_backup_release(b);
        free(doc);
        harness_free(h);
}

static const TestCase cases[] = {
        { "document-backup", test_document_backup },
        { "control-file-for-hooks-only", test_control_file_for_hooks_only },
        { "control-file-thaw-runs-hooks", test_control_file_thaw_runs_hooks },
        { "document-restore", test_document_restore },
        { "full-sequence", test_full_sequence },
        { "identify-failure", test_identify_failure },
        { "veto-prepare-backup", test_veto_prepare_backup },
        { "veto-prepare-snapshot", test_veto_prepare_snapshot },
        { "veto-freeze", test_veto_freeze },
        { "veto-thaw", test_veto_thaw },
        { "veto-post-snapshot", test_veto_post_snapshot },
        { "veto-backup-complete", test_veto_backup_complete },
        { "veto-nonretryable", test_veto_nonretryable },
        { "hang-prepare-backup", test_hang_prepare_backup },
        { "hang-freeze", test_hang_freeze },
        { "late-writer-gets-shutdown", test_late_writer_gets_shutdown },
        { "status-in-progress", test_status_in_progress },
        { "writer-killed-mid-freeze", test_writer_killed_mid_freeze },
        { "requester-killed-mid-freeze", test_requester_killed_mid_freeze },
        { "frozen-writer-lost-seen-by-status", test_frozen_writer_lost_seen_by_status },
        { "cancel-mid-freeze", test_cancel_mid_freeze },
        { "concurrent-sets", test_concurrent_sets },
        { "bad-state", test_bad_state },
        { "bad-input", test_bad_input },
        { "session-isolation", test_session_isolation },
        { "restore-status-direct", test_restore_status_direct },
        { "restore-veto", test_restore_veto },
        { "component-mode", test_component_mode },
        { "freeze-window-expired", test_freeze_window_expired },
        { "freeze-window-expired-abort-unanswered", test_freeze_window_expired_abort_unanswered },
        { "shutdown-names-made-set", test_shutdown_names_made_set },
        { "context", test_context },
        { "empty-set", test_empty_set },
        { "restore-status-none", test_restore_status_none },
        { "freeze-window-per-writer", test_freeze_window_per_writer },
        { "vssd-killed-writer-thaws", test_vssd_killed_writer_thaws },
        { "provider-failure", test_provider_failure },
        { "persistent-survives-restart", test_persistent_survives_restart },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
