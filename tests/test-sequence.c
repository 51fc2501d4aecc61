/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for the sequence state machine and the writer status table (no bus, no daemon). */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/sequence.h"
#include "lib/common.h"
#include "tests/check.h"

int test_failures;

static int32_t check(SessionPhase p, SeqCall c) {
        SeqFacts f = { .phase = p, .n_volumes = 1, .component_mode = true };
        return seq_check(&f, c, NULL);
}

static void test_backup_walk(void) {
        /* The documented order is valid step by step, and each step moves the phase on. */
        static const SeqCall order[] = { CALL_INITIALIZE_FOR_BACKUP, CALL_GATHER_WRITER_METADATA, CALL_START_SNAPSHOT_SET,
                                         CALL_PREPARE_FOR_BACKUP, CALL_DO_SNAPSHOT_SET, CALL_BACKUP_COMPLETE };
        static const SessionPhase after[] = { PHASE_BACKUP_INIT, PHASE_METADATA, PHASE_SET_STARTED,
                                              PHASE_PREPARED, PHASE_SNAPSHOT_DONE, PHASE_COMPLETED };
        SessionPhase p = PHASE_NEW;
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                CHECK(check(p, order[i]) == 0);
                /* No later step may be taken early. */
                for (size_t j = i + 1; j < ELEMENTSOF(order); j++)
                        CHECK(check(p, order[j]) == VSS_E_BAD_STATE);
                p = seq_next(p, order[i]);
                CHECK(p == after[i]);
        }
        /* One backup per session: after completion or an abort, nothing but status, the document
         * and AbortBackup (which is then ignored, as Windows does). */
        for (SeqCall c = 0; c < _CALL_MAX; c++) {
                bool ok = c == CALL_GATHER_WRITER_STATUS || c == CALL_SAVE_AS_DOCUMENT || c == CALL_ABORT_BACKUP;
                CHECK(check(PHASE_COMPLETED, c) == (ok ? 0 : VSS_E_BAD_STATE));
                CHECK(check(PHASE_ABORTED, c) == (ok ? 0 : VSS_E_BAD_STATE));
        }
}

static void test_rules(void) {
        const char *why = NULL;
        SeqFacts f = { .phase = PHASE_PREPARED, .busy = true, .n_volumes = 1 };
        /* While an operation runs only status and abort are accepted. */
        CHECK(seq_check(&f, CALL_DO_SNAPSHOT_SET, &why) == VSS_E_BAD_STATE && why && strstr(why, "in progress"));
        CHECK(seq_check(&f, CALL_GATHER_WRITER_STATUS, NULL) == 0);
        CHECK(seq_check(&f, CALL_ABORT_BACKUP, NULL) == 0);
        /* An empty set cannot be made. */
        f = (SeqFacts) { .phase = PHASE_PREPARED };
        CHECK(seq_check(&f, CALL_DO_SNAPSHOT_SET, NULL) == VSS_E_BAD_STATE);
        /* Components only in component mode. */
        f = (SeqFacts) { .phase = PHASE_METADATA };
        CHECK(seq_check(&f, CALL_ADD_COMPONENT, NULL) == VSS_E_BAD_STATE);
        f.component_mode = true;
        CHECK(seq_check(&f, CALL_ADD_COMPONENT, NULL) == 0);
        /* A backup session needs metadata before status; a restore session does not. */
        f = (SeqFacts) { .phase = PHASE_BACKUP_INIT };
        CHECK(seq_check(&f, CALL_GATHER_WRITER_STATUS, NULL) == VSS_E_BAD_STATE);
        f = (SeqFacts) { .phase = PHASE_RESTORE_INIT, .restore = true };
        CHECK(seq_check(&f, CALL_GATHER_WRITER_STATUS, NULL) == 0);
        CHECK(seq_check(&f, CALL_PRE_RESTORE, NULL) == 0);
        CHECK(seq_check(&f, CALL_POST_RESTORE, NULL) == VSS_E_BAD_STATE);
        f.phase = PHASE_METADATA;
        CHECK(seq_check(&f, CALL_START_SNAPSHOT_SET, NULL) == VSS_E_BAD_STATE);
        f = (SeqFacts) { .phase = PHASE_METADATA };
        CHECK(seq_check(&f, CALL_PRE_RESTORE, NULL) == VSS_E_BAD_STATE);
        /* AbortBackup is refused only before the session is initialized (Windows' one
         * VSS_E_BAD_STATE); anywhere else it is accepted, if only to be ignored. */
        CHECK(seq_check(&(SeqFacts) { .phase = PHASE_NEW }, CALL_ABORT_BACKUP, NULL) == VSS_E_BAD_STATE);
        for (SessionPhase p = PHASE_BACKUP_INIT; p < _PHASE_MAX; p++)
                CHECK(seq_check(&(SeqFacts) { .phase = p }, CALL_ABORT_BACKUP, NULL) == 0);
        /* The gather after backup-complete closes status. */
        f = (SeqFacts) { .phase = PHASE_COMPLETED, .status_closed = true };
        CHECK(seq_check(&f, CALL_GATHER_WRITER_STATUS, &why) == VSS_E_BAD_STATE && strstr(why, "closed"));
        /* Out-of-range input is refused, not trusted. */
        f = (SeqFacts) { .phase = (SessionPhase) 99 };
        CHECK(seq_check(&f, CALL_INITIALIZE_FOR_BACKUP, NULL) == VSS_E_BAD_STATE);
        CHECK(seq_check(&(SeqFacts) { .phase = PHASE_NEW }, (SeqCall) 99, NULL) == VSS_E_BAD_STATE);
}

static void test_states(void) {
        CHECK(state_after_success(VSS_EVENT_PREPARE_SNAPSHOT, VSS_WS_STABLE) == VSS_WS_WAITING_FOR_FREEZE);
        CHECK(state_after_success(VSS_EVENT_FREEZE, VSS_WS_WAITING_FOR_FREEZE) == VSS_WS_WAITING_FOR_THAW);
        CHECK(state_after_success(VSS_EVENT_THAW, VSS_WS_WAITING_FOR_THAW) == VSS_WS_WAITING_FOR_POST_SNAPSHOT);
        CHECK(state_after_success(VSS_EVENT_POST_SNAPSHOT, 0) == VSS_WS_WAITING_FOR_BACKUP_COMPLETE);
        CHECK(state_after_success(VSS_EVENT_BACKUP_COMPLETE, 0) == VSS_WS_STABLE);
        /* Identify never changes the operation state. */
        CHECK(state_after_success(VSS_EVENT_IDENTIFY, VSS_WS_WAITING_FOR_THAW) == VSS_WS_WAITING_FOR_THAW);
        CHECK(state_after_success(VSS_EVENT_IDENTIFY, VSS_WS_UNKNOWN) == VSS_WS_STABLE);

        static const struct { vss_event e; vss_writer_state s; const char *name; } failed[] = {
                { VSS_EVENT_IDENTIFY, 6, "FailedAtIdentify" },
                { VSS_EVENT_PREPARE_BACKUP, 7, "FailedAtPrepareBackup" },
                { VSS_EVENT_PREPARE_SNAPSHOT, 8, "FailedAtPrepareSnapshot" },
                { VSS_EVENT_FREEZE, 9, "FailedAtFreeze" },
                { VSS_EVENT_THAW, 10, "FailedAtThaw" },
                { VSS_EVENT_POST_SNAPSHOT, 11, "FailedAtPostSnapshot" },
                { VSS_EVENT_BACKUP_COMPLETE, 12, "FailedAtBackupComplete" },
                { VSS_EVENT_PRE_RESTORE, 13, "FailedAtPreRestore" },
                { VSS_EVENT_POST_RESTORE, 14, "FailedAtPostRestore" },
                { VSS_EVENT_BACKUP_SHUTDOWN, 15, "FailedAtBackupShutdown" },
        };
        for (size_t i = 0; i < ELEMENTSOF(failed); i++) {
                CHECK(state_failed_at(failed[i].e) == failed[i].s);
                CHECK(strcmp(vss_writer_state_name(failed[i].s), failed[i].name) == 0);
                CHECK(state_is_failed(failed[i].s));
        }
        CHECK(!state_is_failed(VSS_WS_WAITING_FOR_BACKUP_COMPLETE));
        CHECK(vss_writer_state_name(16) == NULL);
}

static void test_status_apply(void) {
        StatusSlot s = { .state = VSS_WS_STABLE };
        CHECK(!status_apply(&s, VSS_EVENT_PREPARE_SNAPSHOT, 0, 0, NULL));
        CHECK(s.state == VSS_WS_WAITING_FOR_FREEZE);
        CHECK(status_apply(&s, VSS_EVENT_FREEZE, VSS_E_WRITERERROR_RETRYABLE, 75, "busy"));
        CHECK(s.state == VSS_WS_FAILED_AT_FREEZE && s.failure == VSS_E_WRITERERROR_RETRYABLE &&
              s.application_code == 75 && strcmp(s.application_message, "busy") == 0);
        /* The writer that caused the abort keeps its failure through Abort. */
        CHECK(!status_apply(&s, VSS_EVENT_ABORT, 0, 0, NULL));
        CHECK(s.state == VSS_WS_FAILED_AT_FREEZE && s.failure == VSS_E_WRITERERROR_RETRYABLE && !s.aborted);
        /* An innocent writer goes back to Stable with no error, noted as aborted. */
        StatusSlot t = { .state = VSS_WS_WAITING_FOR_THAW };
        CHECK(!status_apply(&t, VSS_EVENT_ABORT, 0, 0, NULL));
        CHECK(t.state == VSS_WS_STABLE && t.failure == 0 && t.aborted);
        /* A failing Abort is logged, not a new state. */
        StatusSlot u = { .state = VSS_WS_WAITING_FOR_THAW };
        CHECK(!status_apply(&u, VSS_EVENT_ABORT, VSS_E_WRITERERROR_NONRETRYABLE, 1, "x"));
        CHECK(u.state == VSS_WS_STABLE && u.failure == 0);
        /* No answer to Abort at all: not responding, failed in the phase it was in. */
        StatusSlot nr = { .state = VSS_WS_WAITING_FOR_THAW };
        CHECK(!status_apply(&nr, VSS_EVENT_ABORT, VSS_E_WRITER_NOT_RESPONDING, 0, "no answer"));
        CHECK(nr.state == VSS_WS_FAILED_AT_FREEZE && nr.failure == VSS_E_WRITER_NOT_RESPONDING);
        StatusSlot x = { .state = VSS_WS_WAITING_FOR_FREEZE };
        status_apply(&x, VSS_EVENT_ABORT, VSS_E_WRITER_NOT_RESPONDING, 0, "gone");
        CHECK(x.state == VSS_WS_FAILED_AT_PREPARE_SNAPSHOT);
        /* Messages are cut to fit at a character boundary and made valid UTF-8. */
        char big[3000];
        memset(big, 'x', sizeof(big) - 3);
        strcpy(big + sizeof(big) - 3, "\xc3\xa9");
        StatusSlot v = { .state = VSS_WS_STABLE };
        status_apply(&v, VSS_EVENT_PREPARE_BACKUP, VSS_E_WRITERERROR_RETRYABLE, 1, big);
        CHECK(strlen(v.application_message) == sizeof(v.application_message) - 1);
        StatusSlot w = { .state = VSS_WS_STABLE };
        status_apply(&w, VSS_EVENT_PREPARE_BACKUP, VSS_E_WRITERERROR_RETRYABLE, 1, "bad \xff byte, cut \xe2\x82");
        CHECK(strcmp(w.application_message, "bad ? byte, cut ??") == 0);
}

static void test_timeouts(void) {
        const Timeouts *t = &timeouts_default;
        CHECK(event_timeout_ms(t, VSS_EVENT_IDENTIFY, 0) == 10000);
        CHECK(event_timeout_ms(t, VSS_EVENT_PREPARE_SNAPSHOT, 0) == 120000);
        CHECK(event_timeout_ms(t, VSS_EVENT_FREEZE, 0) == 60000);
        CHECK(event_timeout_ms(t, VSS_EVENT_FREEZE, 5000) == 5000);
        /* A writer cannot ask for more than the cap. */
        CHECK(event_timeout_ms(t, VSS_EVENT_THAW, 3600000) == 600000);
        CHECK(event_timeout_ms(t, VSS_EVENT_BACKUP_SHUTDOWN, 0) == 30000);
        CHECK(event_timeout_ms(t, VSS_EVENT_PRE_RESTORE, 0) == 600000);
}

static void test_names(void) {
        CHECK(strcmp(vss_error_name(VSS_E_BAD_STATE), "VSS_E_BAD_STATE") == 0);
        CHECK(vss_error_from_name("VSS_E_SNAPSHOT_SET_IN_PROGRESS") == VSS_E_SNAPSHOT_SET_IN_PROGRESS);
        CHECK((uint32_t) VSS_E_WRITER_NOT_RESPONDING == 0x80042319u);
        CHECK(strcmp(vss_error_name(0), "S_OK") == 0);
        CHECK(vss_error_name(0x12345) == NULL);
        CHECK(vss_event_from_name("post-snapshot") == VSS_EVENT_POST_SNAPSHOT);
        CHECK(vss_event_from_name("nope") == -1);
        vss_id a, b;
        char s[VSS_ID_STRING_MAX];
        CHECK(vss_id_new(&a) == 0);
        CHECK(vss_id_from_string(vss_id_to_string(&a, s), &b) == 0 && vss_id_equal(&a, &b));
        CHECK(vss_id_from_string("{6A3BD1A8-6F0E-4C5E-9D3B-0B7C1F4E2A10}", &b) == 0);
        CHECK(strcmp(vss_id_to_string(&b, s), "6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10") == 0);
        CHECK(vss_id_from_string("6a3bd1a86f0e4c5e9d3b0b7c1f4e2a10", &b) == VSS_E_INVALIDARG);
        CHECK(vss_id_from_string("not an id", &b) == VSS_E_INVALIDARG);
}

static void test_paths(void) {
        char buf[64];
        static const struct { const char *in, *out; } norm[] = {
                { "/", "/" }, { "//", "/" }, { "/srv/", "/srv" }, { "/srv//data/./x", "/srv/data/x" },
                { "/srv/data/../y", "/srv/y" }, { "/../..", "/" }, { "/a/b/../../..", "/" }, { "/a/.b/..c", "/a/.b/..c" },
        };
        for (size_t i = 0; i < ELEMENTSOF(norm); i++) {
                CHECK(path_normalize(norm[i].in, buf, sizeof(buf)) == 0);
                CHECK_STR(buf, norm[i].out);
        }
        CHECK(path_normalize("srv", buf, sizeof(buf)) == -EINVAL);
        CHECK(path_normalize("", buf, sizeof(buf)) == -EINVAL);
        CHECK(path_normalize("/abcdefgh", buf, 8) == -ENAMETOOLONG);
        CHECK(path_normalize("/abcdef", buf, 8) == 0);

        /* On, under and above, at component boundaries. */
        CHECK(path_overlaps("/srv", "/srv"));
        CHECK(path_overlaps("/srv/db", "/srv"));
        CHECK(path_overlaps("/srv", "/srv/db"));
        CHECK(path_overlaps("/", "/srv"));
        CHECK(path_overlaps("/srv/", "/srv"));
        CHECK(path_overlaps("/srv//./db/", "/srv/db"));
        CHECK(path_overlaps("/home/../srv/db", "/srv"));
        CHECK(!path_overlaps("/srv2", "/srv"));
        CHECK(!path_overlaps("/srv", "/srv2"));
        CHECK(!path_overlaps("/srv2/db", "/srv"));
        CHECK(!path_overlaps("/srv/../home/bob", "/srv"));
        CHECK(!path_overlaps("/home/bob", "/srv"));
        CHECK(!path_overlaps("srv/db", "/srv"));
}

static void test_participation(void) {
        const char *set[] = { "/mnt/a", "/srv" };
        vss_file_desc under = { .path = "/srv/db", .filespec = "*" }, on = { .path = "/srv/", .filespec = "*" },
                      above = { .path = "/", .filespec = "*" }, other = { .path = "/srv2/db", .filespec = "*" },
                      home = { .path = "/home/bob", .filespec = "*" };
        vss_component_info c = { .name = "c", .n_files = 1 };
        vss_writer_metadata md = { .name = "w", .n_components = 1, .components = &c };
        WriterFacts w = { .metadata = &md };

        /* A component's files on, under or above a volume of the set: takes part, root's or not. */
        c.files = &under;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        c.files = &on;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        c.files = &above;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        /* Unrelated paths: left out, root's too. */
        c.files = &other;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        w.root = true;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        /* One matching file group among others is enough. */
        vss_file_desc two[] = { home, under };
        c.files = two;
        c.n_files = 2;
        w.root = false;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        CHECK(!writer_takes_part(&w, set, 1));
        /* A component without files claims no path. */
        c.n_files = 0;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));

        /* No component at all: a system-wide quiesce when root's, nothing of the set when a user's. */
        md.n_components = 0;
        w.root = true;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        w.root = false;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        w.metadata = NULL;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        w.root = true;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));

        /* Component mode: the selection alone decides, whatever the paths and the owner. */
        md.n_components = 1;
        c.n_files = 1;
        c.files = &home;
        w = (WriterFacts) { .component_mode = true, .selected = true, .metadata = &md };
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        w.selected = false;
        c.files = &under;
        w.root = true;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        md.n_components = 0;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
}

int main(void) {
        test_backup_walk();
        test_rules();
        test_states();
        test_status_apply();
        test_timeouts();
        test_names();
        test_paths();
        test_participation();
        printf("%s - sequence\n", test_failures ? "not ok" : "ok");
        return test_failures ? 1 : 0;
}
