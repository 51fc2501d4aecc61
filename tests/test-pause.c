/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The snapshot set that pauses (issue 16, part 1): vss_backup_do_snapshot_set_paused, wait_paused
 * and continue_snapshot_set against the real vssd with real vss-writer-exec writers. fe is a
 * front-end writer, be a back-end one: each pause shows both in their real state; continuing
 * makes the set; aborting, a window running out, a frozen writer lost or the requester dying
 * while paused leaves nothing kept and every writer thawed. */

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/client.h"
#include "tests/harness.h"
#include "tests/users.h"

static const char *const front[] = { "--app-level", "front-end", NULL };
static const char *const back[] = { "--app-level", "back-end", NULL };

#define BOTH (VSS_PAUSE_BEFORE_FREEZE | VSS_PAUSE_BEFORE_COMMIT)

static void prepare(vss_backup *b, const char *data, vss_id *ret_shadow) {
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, ret_shadow), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
}

static void check_state(vss_backup *b, const char *name, vss_writer_state state, int32_t failure) {
        vss_writer_status st;
        if (!status_of(b, name, &st)) {
                fprintf(stderr, "no status for writer '%s'\n", name);
                test_failures++;
                return;
        }
        if (st.state != state || st.failure != failure) {
                fprintf(stderr, "writer '%s': state %d failure 0x%08x (want %d 0x%08x) %s\n", name, st.state,
                        (uint32_t) st.failure, state, (uint32_t) failure, st.application_message);
                test_failures++;
        }
}

static void check_events(Harness *h, const char *writer, const char *want) {
        char *got = harness_events(h, writer);
        CHECK_STR(got, want);
        free(got);
}

/* Whether the writer's events begin with prefix. */
static bool events_begin(Harness *h, const char *writer, const char *prefix) {
        char *ev = harness_events(h, writer);
        bool ok = strncmp(ev, prefix, strlen(prefix)) == 0;
        if (!ok)
                fprintf(stderr, "writer '%s': events '%s', want them to begin '%s'\n", writer, ev, prefix);
        free(ev);
        return ok;
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

/* The set pauses at point: wait_paused says so, within 20 s. Returns the window left. */
static uint64_t expect_pause(vss_backup *b, uint32_t point) {
        uint32_t got = 99;
        uint64_t left = 0;
        CHECK_HR(vss_backup_wait_paused(b, 20000, &got, &left), 0);
        if (got != point) {
                fprintf(stderr, "paused at 0x%x, want 0x%x (%s)\n", got, point, vss_backup_errmsg(b));
                test_failures++;
        }
        return left;
}

/* Nothing of any set is left, and the machine-wide set slot is free again. */
static void check_nothing_kept(Harness *h) {
        CHECK(harness_count_shadow_files(h) == 0);
        char *out = NULL;
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && strstr(out, "\"shadows\":[\n  ]") != NULL);
        free(out);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        vss_backup_release(b);
}

static void test_pause_continue(void) {
        /* Paused before Freeze: PrepareForSnapshot answered, no Freeze, writers WaitingForFreeze,
         * no window running. Paused before the commit: both frozen, WaitingForThaw, the window
         * running. Continued: the set is made and kept. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        vss_id shadow;
        prepare(b, data, &shadow);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, BOTH, &a), 0);

        CHECK(expect_pause(b, VSS_PAUSE_BEFORE_FREEZE) == UINT64_MAX);
        /* Asked again while paused, the answer is the same. */
        CHECK(expect_pause(b, VSS_PAUSE_BEFORE_FREEZE) == UINT64_MAX);
        CHECK_HR(vss_async_query(a), VSS_S_ASYNC_PENDING);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_state(b, "fe", VSS_WS_WAITING_FOR_FREEZE, 0);
        check_state(b, "be", VSS_WS_WAITING_FOR_FREEZE, 0);
        check_events(h, "fe", "identify prepare-backup prepare-snapshot");
        check_events(h, "be", "identify prepare-backup prepare-snapshot");
        /* Other steps wait for the set's end. */
        CHECK_HR(vss_backup_backup_complete_sync(b), VSS_E_BAD_STATE);

        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        uint64_t left = expect_pause(b, VSS_PAUSE_BEFORE_COMMIT);
        CHECK(left > 0 && left <= 60 * 1000000ull); /* the default window, running */
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_state(b, "fe", VSS_WS_WAITING_FOR_THAW, 0);
        check_state(b, "be", VSS_WS_WAITING_FOR_THAW, 0);
        check_events(h, "fe", "identify prepare-backup prepare-snapshot freeze");
        check_events(h, "be", "identify prepare-backup prepare-snapshot freeze");
        vss_snapshot_prop p;
        CHECK_HR(vss_backup_get_snapshot_properties(b, &shadow, &p), VSS_E_OBJECT_NOT_FOUND); /* not made yet */

        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        uint32_t point = 99;
        CHECK_HR(vss_backup_wait_paused(b, 20000, &point, NULL), 0);
        CHECK(point == 0); /* it ended */
        CHECK_HR(vss_async_wait(a, 20000), 0);
        vss_async_free(a);
        CHECK_HR(vss_backup_wait_paused(b, 0, &point, NULL), 0);
        CHECK(point == 0);
        CHECK_HR(vss_backup_continue_snapshot_set(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_get_snapshot_properties(b, &shadow, &p), 0);
        CHECK(harness_count_shadow_files(h) > 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_state(b, "fe", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        check_state(b, "be", VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        check_events(h, "fe",
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        check_events(h, "be",
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
}

static void test_pause_one_point(void) {
        /* Only the point asked for pauses: before the commit alone, then before Freeze alone. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        static const uint32_t points[] = { VSS_PAUSE_BEFORE_COMMIT, VSS_PAUSE_BEFORE_FREEZE };
        for (size_t i = 0; i < ELEMENTSOF(points); i++) {
                vss_backup *b = harness_session(h);
                vss_async *a = NULL;
                prepare(b, data, NULL);
                CHECK_HR(vss_backup_do_snapshot_set_paused(b, points[i], &a), 0);
                expect_pause(b, points[i]);
                CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
                CHECK_HR(vss_async_wait(a, 20000), 0);
                vss_async_free(a);
                uint32_t point = 99;
                CHECK_HR(vss_backup_wait_paused(b, 20000, &point, NULL), 0);
                CHECK(point == 0);
                vss_backup_release(b);
        }
        check_events(h, "fe",
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-shutdown "
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-shutdown");
}

static void test_pause_not_paused(void) {
        /* wait_paused with a timeout while the set runs, and continue when it is not paused:
         * while PrepareForSnapshot runs, and with no set with pause points at all. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        harness_set(h, "be", "prepare-snapshot", "wait");
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        uint32_t point = 99;
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_wait_paused(b, 0, &point, NULL), VSS_E_BAD_STATE); /* none started */
        CHECK_HR(vss_backup_continue_snapshot_set(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, BOTH, &a), 0);
        CHECK(harness_wait_started(h, "be", "prepare-snapshot"));
        CHECK_HR(vss_backup_wait_paused(b, 0, &point, NULL), VSS_S_ASYNC_PENDING);
        CHECK_HR(vss_backup_wait_paused(b, 100, &point, NULL), VSS_S_ASYNC_PENDING);
        CHECK_HR(vss_backup_continue_snapshot_set(b), VSS_E_BAD_STATE);
        CHECK(strstr(vss_backup_errmsg(b), "not paused") != NULL);
        harness_go(h, "be", "prepare-snapshot");
        /* The WaitPaused left in flight by the timeouts gives the pause. */
        expect_pause(b, VSS_PAUSE_BEFORE_FREEZE);
        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        /* What was answered before the continue does not come back as a pause. */
        expect_pause(b, VSS_PAUSE_BEFORE_COMMIT);
        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        CHECK_HR(vss_async_wait(a, 20000), 0);
        vss_async_free(a);
        vss_backup_release(b);

        /* flags 0 is the plain call: it never pauses, and there is nothing to wait for. */
        b = harness_session(h);
        harness_set(h, "be", "prepare-snapshot", "none");
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, 0, &a), 0);
        CHECK_HR(vss_async_wait(a, 20000), 0);
        vss_async_free(a);
        CHECK_HR(vss_backup_wait_paused(b, 0, &point, NULL), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_continue_snapshot_set(b), VSS_E_BAD_STATE);
        vss_backup_release(b);
}

static void test_pause_bad_flags(void) {
        /* Unknown flag bits: E_INVALIDARG, from libvss and from vssd (a raw call), and nothing
         * starts: the session is still prepared and makes its set afterwards. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, 0x4, &a), VSS_E_INVALIDARG);
        CHECK(strstr(vss_backup_errmsg(b), "0x4") != NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(NULL, 1, &a), VSS_E_INVALIDARG);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, 1, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_backup_wait_paused(b, 0, NULL, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_backup_continue_snapshot_set(NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        vss_backup_release(b);

        sd_bus *bus = connect_or_die(h);
        char sid[64] = "", setid[64] = "", shid[64] = "";
        CHECK_HR(call_s(bus, sid, sizeof sid, "CreateSession", NULL), 0);
        CHECK_HR(call(bus, "InitializeForBackup", "s", sid), 0);
        CHECK_HR(call(bus, "GatherWriterMetadata", "s", sid), 0);
        CHECK_HR(call_s(bus, setid, sizeof setid, "StartSnapshotSet", "s", sid), 0);
        CHECK_HR(call_s(bus, shid, sizeof shid, "AddToSnapshotSet", "sss", sid, data, ""), 0);
        CHECK_HR(call(bus, "PrepareForBackup", "s", sid), 0);
        CHECK_HR(call(bus, "WaitPaused", "s", sid), VSS_E_BAD_STATE);
        CHECK_HR(call(bus, "ContinueSnapshotSet", "s", sid), VSS_E_BAD_STATE);
        CHECK_HR(call(bus, "DoSnapshotSetPaused", "su", sid, (uint32_t) 0x80000002), VSS_E_INVALIDARG);
        CHECK(strstr(last_msg, "unknown pause flags 0x80000000") != NULL);
        /* Nothing started: the set is made afterwards, and then WaitPaused says it ended. */
        CHECK_HR(call(bus, "DoSnapshotSetPaused", "su", sid, (uint32_t) 0), 0);
        CHECK_HR(call(bus, "WaitPaused", "s", sid), VSS_E_BAD_STATE); /* flags 0: nothing to wait for */
        CHECK_HR(call(bus, "ReleaseSession", "s", sid), 0);
        sd_bus_flush_close_unref(bus);
        check_events(h, "fe",
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-shutdown "
                     "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-shutdown");
}

/* Paused at point, the requester aborts (AbortBackup, or cancel): Abort to both writers, no
 * Thaw, nothing kept, the set's result E_ABORT. */
static void abort_at(uint32_t point, bool cancel) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, BOTH, &a), 0);
        expect_pause(b, VSS_PAUSE_BEFORE_FREEZE);
        if (point == VSS_PAUSE_BEFORE_COMMIT) {
                CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
                expect_pause(b, VSS_PAUSE_BEFORE_COMMIT);
        }
        if (cancel) {
                CHECK_HR(vss_async_cancel(a), 0);
                CHECK_HR(vss_async_wait(a, 20000), VSS_S_ASYNC_CANCELLED);
        } else {
                CHECK_HR(vss_backup_abort_backup(b), 0);
                CHECK_HR(vss_async_wait(a, 20000), VSS_E_ABORT);
        }
        vss_async_free(a);
        uint32_t got = 99;
        CHECK_HR(vss_backup_wait_paused(b, 20000, &got, NULL), 0);
        CHECK(got == 0);
        CHECK_HR(vss_backup_continue_snapshot_set(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_state(b, "fe", VSS_WS_STABLE, 0);
        check_state(b, "be", VSS_WS_STABLE, 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), VSS_E_BAD_STATE); /* the session is aborted */
        const char *want = point == VSS_PAUSE_BEFORE_FREEZE ? "identify prepare-backup prepare-snapshot abort"
                                                           : "identify prepare-backup prepare-snapshot freeze abort";
        check_events(h, "fe", want);
        check_events(h, "be", want);
        CHECK(!left_frozen(h, "fe") && !left_frozen(h, "be"));
        CHECK(harness_count_shadow_files(h) == 0);
        vss_backup_release(b);
        check_nothing_kept(h);
}

static void test_pause_abort_before_freeze(void) {
        abort_at(VSS_PAUSE_BEFORE_FREEZE, false);
}

static void test_pause_abort_before_commit(void) {
        abort_at(VSS_PAUSE_BEFORE_COMMIT, false);
}

static void test_pause_cancel_before_commit(void) {
        abort_at(VSS_PAUSE_BEFORE_COMMIT, true);
}

static void test_pause_window_expiry(void) {
        /* Paused before the commit past the window of "quick" (1 s): the set aborts as a commit
         * outlasting a window does, E_WRITERERROR_TIMEOUT, quick FailedAtFreeze (VSS: KB 915331); both writers are
         * aborted, nothing is kept. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static const char *const quick[] = { "--app-level", "front-end", "--freeze-timeout", "1000", NULL };
        harness_writer(h, "quick", quick);
        harness_writer(h, "be", back);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, VSS_PAUSE_BEFORE_COMMIT, &a), 0);
        uint64_t left = expect_pause(b, VSS_PAUSE_BEFORE_COMMIT);
        CHECK(left <= 1000000);
        /* Nobody continues: the window ends the set. */
        CHECK_HR(vss_async_wait(a, 20000), VSS_E_WRITERERROR_TIMEOUT);
        CHECK(strstr(vss_backup_errmsg(b), "paused") != NULL);
        vss_async_free(a);
        uint32_t got = 99;
        CHECK_HR(vss_backup_wait_paused(b, 20000, &got, NULL), 0);
        CHECK(got == 0);
        CHECK_HR(vss_backup_continue_snapshot_set(b), VSS_E_BAD_STATE);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_state(b, "quick", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_TIMEOUT);
        check_state(b, "be", VSS_WS_STABLE, 0);
        CHECK(events_begin(h, "quick", "identify prepare-backup prepare-snapshot freeze abort"));
        check_events(h, "be", "identify prepare-backup prepare-snapshot freeze abort");
        char *ev = harness_events(h, "quick");
        CHECK(strstr(ev, "thaw") == NULL);
        free(ev);
        CHECK(!left_frozen(h, "quick") && !left_frozen(h, "be"));
        vss_backup_release(b);
        check_nothing_kept(h);
}

static void test_pause_writer_lost(void) {
        /* A frozen writer dies while the set is paused before the commit: it thawed itself, so
         * the set aborts at once (not at its Thaw), and the other writer gets Abort. */
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        pid_t be = harness_writer(h, "be", back);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, VSS_PAUSE_BEFORE_COMMIT, &a), 0);
        expect_pause(b, VSS_PAUSE_BEFORE_COMMIT);
        CHECK(kill(be, SIGKILL) == 0);
        CHECK_HR(vss_async_wait(a, 20000), VSS_E_WRITER_NOT_RESPONDING);
        vss_async_free(a);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        check_state(b, "be", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITER_NOT_RESPONDING);
        check_state(b, "fe", VSS_WS_STABLE, 0);
        check_events(h, "fe", "identify prepare-backup prepare-snapshot freeze abort");
        vss_backup_release(b);
        check_nothing_kept(h);
}

static void test_pause_after_copy_ahead(void) {
        /* A volume the file provider holds (a loop filesystem of the test): at the pause before
         * Freeze its copy-ahead is done; nothing is held while paused, not even before the commit
         * (writes go on); the cut is the commit's, so what was written while paused is in the
         * shadow. Aborted at the first pause, the copied-ahead files go with the set. */
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char data[600], *out = NULL;
        snprintf(data, sizeof data, "%s/data", mnt);
        CHECK(harness_sh(h, NULL, "mkdir %s && for i in 1 2 3; do echo file$i > %s/f$i; done", data, data) == 0);
        harness_writer(h, "fe", front);

        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        vss_id shadow;
        prepare(b, data, &shadow);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, BOTH, &a), 0);
        expect_pause(b, VSS_PAUSE_BEFORE_FREEZE);
        CHECK(harness_sh(h, &out, "cat $(find %s/shadows -type f -name f2)", harness_state_dir(h)) == 0);
        CHECK_STR(out, "file2\n");
        free(out);
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo early > %s/early && sync -f %s/early'", data, data) == 0);
        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        expect_pause(b, VSS_PAUSE_BEFORE_COMMIT);
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo late > %s/late && sync -f %s/late'", data, data) == 0);
        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        CHECK_HR(vss_async_wait(a, 20000), 0);
        vss_async_free(a);
        vss_snapshot_prop p;
        CHECK_HR(vss_backup_get_snapshot_properties(b, &shadow, &p), 0);
        out = NULL;
        CHECK(harness_sh(h, &out, "cat %s/f1 %s/early %s/late", p.shadow_path, p.shadow_path, p.shadow_path) == 0);
        CHECK_STR(out, "file1\nearly\nlate\n");
        free(out);
        vss_backup_release(b);
        CHECK(harness_count_shadow_files(h) == 0); /* auto-release */

        b = harness_session(h);
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, BOTH, &a), 0);
        expect_pause(b, VSS_PAUSE_BEFORE_FREEZE);
        CHECK(harness_count_shadow_files(h) > 0); /* copied ahead */
        CHECK_HR(vss_backup_abort_backup(b), 0);
        CHECK_HR(vss_async_wait(a, 20000), VSS_E_ABORT);
        vss_async_free(a);
        CHECK(harness_count_shadow_files(h) == 0);
        vss_backup_release(b);
        check_nothing_kept(h);
}

/* The requester in a child: it takes the set to point, says so on fd, and waits to be killed. */
static _Noreturn void paused_requester(Harness *h, const char *data, uint32_t point, int fd) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        uint32_t got = 0;
        vss_backup_start_snapshot_set(b, NULL);
        vss_backup_add_to_snapshot_set(b, data, NULL, NULL);
        vss_backup_prepare_for_backup_sync(b);
        vss_backup_do_snapshot_set_paused(b, BOTH, &a);
        while (vss_backup_wait_paused(b, -1, &got, NULL) == 0 && got != 0 && got != point)
                vss_backup_continue_snapshot_set(b);
        char c = got == point ? 'p' : 'x';
        (void) !write(fd, &c, 1);
        pause(); /* killed by the test */
        _exit(0);
}

/* The requester dies paused at point: vssd aborts the set; Abort and BackupShutdown reach both
 * writers, none stays frozen, nothing is kept. */
static void requester_killed_at(uint32_t point) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        harness_writer(h, "be", back);
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                paused_requester(h, data, point, p[1]);
        }
        close(p[1]);
        char c = 0;
        CHECK(read(p[0], &c, 1) == 1 && c == 'p');
        close(p[0]);
        CHECK(kill(pid, SIGKILL) == 0);
        CHECK(waitpid(pid, NULL, 0) == pid);
        CHECK(harness_wait_event(h, "fe", "backup-shutdown", 20000) &&
              harness_wait_event(h, "be", "backup-shutdown", 20000));
        const char *want = point == VSS_PAUSE_BEFORE_FREEZE
                                   ? "identify prepare-backup prepare-snapshot abort backup-shutdown"
                                   : "identify prepare-backup prepare-snapshot freeze abort backup-shutdown";
        check_events(h, "fe", want);
        check_events(h, "be", want);
        CHECK(!left_frozen(h, "fe") && !left_frozen(h, "be"));
        check_nothing_kept(h);
}

static void test_pause_requester_killed_before_freeze(void) {
        requester_killed_at(VSS_PAUSE_BEFORE_FREEZE);
}

static void test_pause_requester_killed_before_commit(void) {
        requester_killed_at(VSS_PAUSE_BEFORE_COMMIT);
}

/* Waits with poll(2) on what vss_backup_get_fd() gives until the set pauses or ends, never
 * blocking in libvss: how an agent waits on vssd beside its other fds. Returns the point (0: the
 * set ended). */
static uint32_t poll_until_paused(vss_backup *b) {
        for (int i = 0; i < 20000; i++) {
                /* The first call asks vssd (WaitPaused); later ones take its answer once it came. */
                uint32_t point = 99;
                int r = vss_backup_wait_paused(b, 0, &point, NULL);
                if (r == 0)
                        return point;
                if (r != VSS_S_ASYNC_PENDING) {
                        fprintf(stderr, "wait_paused: 0x%08x %s\n", (uint32_t) r, vss_backup_errmsg(b));
                        test_failures++;
                        return 99;
                }
                short events = 0;
                int timeout = -2;
                int fd = vss_backup_get_fd(b, &events, &timeout);
                if (fd < 0 || events == 0 || timeout < -1) {
                        fprintf(stderr, "get_fd: %d events 0x%x timeout %d\n", fd, events, timeout);
                        test_failures++;
                        return 99;
                }
                struct pollfd p = { .fd = fd, .events = events };
                /* 20 s stands for "no limit": the set pauses well before; a hang fails the test. */
                if (poll(&p, 1, timeout < 0 || timeout > 20000 ? 20000 : timeout) == 0) {
                        fprintf(stderr, "get_fd: nothing came in 20 s\n");
                        test_failures++;
                        return 99;
                }
        }
        return 99;
}

static void test_pause_poll_fd(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", front);
        vss_backup *b = harness_session(h);
        short events;
        int timeout;
        CHECK_HR(vss_backup_get_fd(NULL, &events, &timeout), VSS_E_INVALIDARG);
        CHECK_HR(vss_backup_get_fd(b, NULL, &timeout), VSS_E_INVALIDARG);
        vss_async *a = NULL;
        prepare(b, data, NULL);
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, BOTH, &a), 0);
        CHECK(poll_until_paused(b) == VSS_PAUSE_BEFORE_FREEZE);
        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        CHECK(poll_until_paused(b) == VSS_PAUSE_BEFORE_COMMIT);
        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        CHECK(poll_until_paused(b) == 0);
        CHECK_HR(vss_async_wait(a, 0), 0);
        check_events(h, "fe", "identify prepare-backup prepare-snapshot freeze thaw post-snapshot");
        vss_async_free(a);
        vss_backup_release(b);
}

static const TestCase cases[] = {
        { "pause-continue", test_pause_continue },
        { "pause-one-point", test_pause_one_point },
        { "pause-not-paused", test_pause_not_paused },
        { "pause-bad-flags", test_pause_bad_flags },
        { "pause-abort-before-freeze", test_pause_abort_before_freeze },
        { "pause-abort-before-commit", test_pause_abort_before_commit },
        { "pause-cancel-before-commit", test_pause_cancel_before_commit },
        { "pause-window-expiry", test_pause_window_expiry },
        { "pause-writer-lost", test_pause_writer_lost },
        { "pause-after-copy-ahead", test_pause_after_copy_ahead },
        { "pause-requester-killed-before-freeze", test_pause_requester_killed_before_freeze },
        { "pause-requester-killed-before-commit", test_pause_requester_killed_before_commit },
        { "pause-poll-fd", test_pause_poll_fd },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
