/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for the sequence state machine, the writer status table, who gets which event and
 * the abort rules (no bus, no daemon). */

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
        /* An empty set is fine with writers (they quiesce), not without. */
        f = (SeqFacts) { .phase = PHASE_PREPARED };
        CHECK(seq_check(&f, CALL_DO_SNAPSHOT_SET, NULL) == 0);
        f.no_writers = true;
        CHECK(seq_check(&f, CALL_DO_SNAPSHOT_SET, NULL) == VSS_E_BAD_STATE);
        /* Without writers: no metadata or PrepareForBackup needed, and they are refused. */
        f = (SeqFacts) { .phase = PHASE_BACKUP_INIT, .no_writers = true };
        CHECK(seq_check(&f, CALL_START_SNAPSHOT_SET, NULL) == 0);
        f = (SeqFacts) { .phase = PHASE_SET_STARTED, .no_writers = true, .n_volumes = 1 };
        CHECK(seq_check(&f, CALL_DO_SNAPSHOT_SET, NULL) == 0);
        CHECK(seq_check(&f, CALL_PREPARE_FOR_BACKUP, NULL) == VSS_E_BAD_STATE);
        f = (SeqFacts) { .phase = PHASE_SNAPSHOT_DONE, .no_writers = true };
        CHECK(seq_check(&f, CALL_BACKUP_COMPLETE, NULL) == VSS_E_BAD_STATE);
        f.no_writers = false;
        CHECK(seq_check(&f, CALL_BACKUP_COMPLETE, NULL) == 0);
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
        /* A restore's components and backup type are its document's. */
        f.component_mode = true;
        CHECK(seq_check(&f, CALL_SET_BACKUP_STATE, &why) == VSS_E_BAD_STATE && strstr(why, "restore session"));
        CHECK(seq_check(&f, CALL_ADD_COMPONENT, &why) == VSS_E_BAD_STATE && strstr(why, "restore session"));
        CHECK(seq_check(&f, CALL_SET_COMPONENT_PROPERTY, NULL) == 0);
        f = (SeqFacts) { .phase = PHASE_METADATA };
        CHECK(seq_check(&f, CALL_PRE_RESTORE, NULL) == VSS_E_BAD_STATE);
        /* AbortBackup is refused only before the session is initialized (Windows' one
         * VSS_E_BAD_STATE); anywhere else it is accepted, if only to be ignored. */
        CHECK(seq_check(&(SeqFacts) { .phase = PHASE_NEW }, CALL_ABORT_BACKUP, NULL) == VSS_E_BAD_STATE);
        for (SessionPhase p = PHASE_BACKUP_INIT; p < _PHASE_MAX; p++)
                CHECK(seq_check(&(SeqFacts) { .phase = p }, CALL_ABORT_BACKUP, NULL) == 0);
        /* The gather after backup-complete closes status; later gathers are answered (with it). */
        f = (SeqFacts) { .phase = PHASE_COMPLETED, .status_closed = true };
        CHECK(seq_check(&f, CALL_GATHER_WRITER_STATUS, &why) == 0);
        /* The pause points of a set: WaitPaused once one with pause points was started (also
         * while it runs, and after it ended); ContinueSnapshotSet only while it is paused. */
        f = (SeqFacts) { .phase = PHASE_PREPARED, .busy = true, .n_volumes = 1 };
        CHECK(seq_check(&f, CALL_WAIT_PAUSED, &why) == VSS_E_BAD_STATE && strstr(why, "pause points"));
        CHECK(seq_check(&f, CALL_CONTINUE_SNAPSHOT_SET, &why) == VSS_E_BAD_STATE && strstr(why, "not paused"));
        f.pausable = true;
        CHECK(seq_check(&f, CALL_WAIT_PAUSED, NULL) == 0);
        CHECK(seq_check(&f, CALL_CONTINUE_SNAPSHOT_SET, NULL) == VSS_E_BAD_STATE);
        f.paused = true;
        CHECK(seq_check(&f, CALL_CONTINUE_SNAPSHOT_SET, NULL) == 0);
        CHECK(seq_check(&f, CALL_BACKUP_COMPLETE, NULL) == VSS_E_BAD_STATE);
        f = (SeqFacts) { .phase = PHASE_ABORTED, .pausable = true };
        CHECK(seq_check(&f, CALL_WAIT_PAUSED, NULL) == 0);
        CHECK(seq_check(&f, CALL_CONTINUE_SNAPSHOT_SET, NULL) == VSS_E_BAD_STATE);
        f = (SeqFacts) { .phase = PHASE_METADATA, .pausable = true };
        CHECK(seq_check(&f, CALL_WAIT_PAUSED, NULL) == VSS_E_BAD_STATE);
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
        /* Prepared for backup, nothing more (AbortBackup then): failed there, not at Freeze. */
        StatusSlot pb = { .state = VSS_WS_STABLE };
        status_apply(&pb, VSS_EVENT_ABORT, VSS_E_WRITER_NOT_RESPONDING, 0, "gone");
        CHECK(pb.state == VSS_WS_FAILED_AT_PREPARE_BACKUP && pb.failure == VSS_E_WRITER_NOT_RESPONDING);
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

/* The fake filesystem of test_participation: uid 1000 owns /srv/db and /home/bob. */
static bool fake_owns(const char *path, uint32_t uid) {
        return uid == 1000 && (streq(path, "/srv/db") || streq(path, "/home/bob"));
}

static void test_participation(void) {
        const char *set[] = { "/mnt/a", "/srv" };
        vss_file_desc under = { .path = "/srv/db", .filespec = "*" }, on = { .path = "/srv/", .filespec = "*" },
                      above = { .path = "/", .filespec = "*" }, other = { .path = "/srv2/db", .filespec = "*" },
                      home = { .path = "/home/bob", .filespec = "*" };
        vss_component_info c = { .name = "c", .n_files = 1 };
        vss_writer_metadata md = { .name = "w", .n_components = 1, .components = &c };
        WriterFacts w = { .metadata = &md, .root = true };

        /* A component's files on, under or above a volume of the set: root's writer takes part. */
        c.files = &under;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        c.files = &on;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        c.files = &above;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        /* A user's, only where the deeper path is the user's: /srv/db (under /srv) is; /srv (on, or
         * below "/") is not: a component of "/" claims nothing. */
        w = (WriterFacts) { .metadata = &md, .uid = 1000, .owns = fake_owns };
        c.files = &under;
        CHECK(writer_takes_part(&w, set, ELEMENTSOF(set)));
        c.files = &on;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        c.files = &above;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        const char *homes[] = { "/home/bob" };
        CHECK(writer_takes_part(&w, homes, 1));
        w.uid = 1001;
        c.files = &under;
        CHECK(!writer_takes_part(&w, set, ELEMENTSOF(set)));
        w.uid = 1000;
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

/* Who gets which event: every event, against every combination of the slot facts, every writer
 * state and its level, compared with the rules written as a table. The rules are those of README
 * ("The backup sequence", "Which writers take part in a snapshot set", "AbortBackup"), after
 * Microsoft VSS: Identify, PrepareForBackup and BackupShutdown go to every writer; a writer left
 * out of the set, or not selected in component mode, gets nothing of the set; Thaw only after a
 * Freeze that succeeded; Abort only to who got PrepareForSnapshot, never twice; OnAbort never
 * follows OnPostSnapshot; nobody waits on a writer declared not responding again. */

enum {
        F_IDENTIFIED = 1 << 0,
        F_SELECTED = 1 << 1,
        F_LEFT_OUT = 1 << 2,
        F_GOT_PREPARE_BACKUP = 1 << 3,
        F_GOT_PREPARE_SNAPSHOT = 1 << 4,
        F_GOT_FREEZE = 1 << 5,
        F_GOT_POST_SNAPSHOT = 1 << 6,
        F_GOT_ABORT = 1 << 7,
        F_INFLIGHT = 1 << 8,
        F_NOT_RESPONDING = 1 << 9,
        _F_COMBINATIONS = 1 << 10,
};

#define ST(s) (1u << (s))
#define ANY_STATE ((1u << _VSS_WS_MAX) - 1)
#define NOT_FAILED (ST(VSS_WS_UNKNOWN) | ST(VSS_WS_STABLE) | ST(VSS_WS_WAITING_FOR_FREEZE) | ST(VSS_WS_WAITING_FOR_THAW) | \
                    ST(VSS_WS_WAITING_FOR_POST_SNAPSHOT) | ST(VSS_WS_WAITING_FOR_BACKUP_COMPLETE))

typedef struct Rule {
        vss_event event;
        unsigned need, refuse; /* facts that must hold, facts that must not */
        unsigned states;       /* the writer states in which it gets the event */
        bool by_level;         /* only writers of the batch's application level */
        unsigned any;          /* facts of which at least one must hold (0: none asked) */
} Rule;

static const Rule rules[] = {
        { VSS_EVENT_IDENTIFY, 0, 0, ANY_STATE, false, 0 },
        /* Selection decides from PrepareForSnapshot on: unselected writers get PrepareForBackup. */
        { VSS_EVENT_PREPARE_BACKUP, 0, 0, NOT_FAILED, false, 0 },
        { VSS_EVENT_PREPARE_SNAPSHOT, F_SELECTED, F_LEFT_OUT, NOT_FAILED, false, 0 },
        { VSS_EVENT_FREEZE, F_SELECTED, F_LEFT_OUT, ST(VSS_WS_WAITING_FOR_FREEZE), true, 0 },
        { VSS_EVENT_THAW, F_GOT_FREEZE, 0, ST(VSS_WS_WAITING_FOR_THAW), true, 0 },
        { VSS_EVENT_POST_SNAPSHOT, 0, 0, ST(VSS_WS_WAITING_FOR_POST_SNAPSHOT), false, 0 },
        /* The set's Abort, level by level: a failed writer that took part gets it too. */
        { VSS_EVENT_ABORT, F_GOT_PREPARE_SNAPSHOT, F_GOT_ABORT, ANY_STATE, true, 0 },
        { VSS_EVENT_BACKUP_COMPLETE, F_SELECTED, 0, ST(VSS_WS_WAITING_FOR_BACKUP_COMPLETE), false, 0 },
        /* Whoever was told of the backup (selected, or given PrepareForBackup) hears its end. */
        { VSS_EVENT_BACKUP_SHUTDOWN, 0, F_NOT_RESPONDING, ANY_STATE, false, F_SELECTED | F_GOT_PREPARE_BACKUP },
        { VSS_EVENT_PRE_RESTORE, F_SELECTED, F_LEFT_OUT, NOT_FAILED, false, 0 },
        { VSS_EVENT_POST_RESTORE, F_SELECTED, F_LEFT_OUT, NOT_FAILED, false, 0 },
};

/* AbortBackup's Abort, to every level at once: who took part (selected, not left out of the set)
 * and got PrepareForBackup, never after PostSnapshot, never twice. */
static const Rule abort_backup_rule = { VSS_EVENT_ABORT, F_GOT_PREPARE_BACKUP | F_SELECTED,
                                        F_LEFT_OUT | F_GOT_POST_SNAPSHOT | F_GOT_ABORT, ANY_STATE, false, 0 };
/* GatherWriterStatus pings who is neither busy nor failed. */
static const Rule status_query_rule = { VSS_EVENT_IDENTIFY, 0, F_INFLIGHT, NOT_FAILED, false, 0 };
/* Abort at once, while a set aborts: who took part, had no Abort and is not busy. */
static const Rule abort_due_rule = { VSS_EVENT_ABORT, F_GOT_PREPARE_SNAPSHOT, F_GOT_ABORT | F_INFLIGHT, ANY_STATE,
                                     false, 0 };

static bool rule_holds(const Rule *r, unsigned facts, vss_writer_state state, bool same_level) {
        return (facts & r->need) == r->need && !(facts & r->refuse) && (r->states & ST(state)) &&
               (!r->by_level || same_level) && (!r->any || (facts & r->any));
}

static SlotFacts slot_facts_of(unsigned facts, vss_writer_state state, int level) {
        return (SlotFacts) {
                .identified = facts & F_IDENTIFIED,
                .selected = facts & F_SELECTED,
                .left_out = facts & F_LEFT_OUT,
                .got_prepare_backup = facts & F_GOT_PREPARE_BACKUP,
                .got_prepare_snapshot = facts & F_GOT_PREPARE_SNAPSHOT,
                .got_freeze = facts & F_GOT_FREEZE,
                .got_post_snapshot = facts & F_GOT_POST_SNAPSHOT,
                .got_abort = facts & F_GOT_ABORT,
                .inflight = facts & F_INFLIGHT,
                .not_responding = facts & F_NOT_RESPONDING,
                .state = state,
                .level = level,
        };
}

static unsigned mismatches;

static void expect(const char *what, bool got, bool want, unsigned facts, vss_writer_state state, int level) {
        if (got == want)
                return;
        test_failures++;
        if (mismatches++ < 20)
                fprintf(stderr, "%s: facts 0x%03x, state %s, level %d: got %d, expected %d\n", what, facts,
                        vss_writer_state_name(state), level, got, want);
}

static void test_who_gets_what(void) {
        const int batch_level = 1;
        /* The table has one rule per event. */
        for (vss_event e = 0; e < _VSS_EVENT_MAX; e++) {
                unsigned n = 0;
                for (size_t i = 0; i < ELEMENTSOF(rules); i++)
                        n += rules[i].event == e;
                CHECK(n == 1);
        }
        for (unsigned facts = 0; facts < _F_COMBINATIONS; facts++)
                for (vss_writer_state st = 0; st < _VSS_WS_MAX; st++)
                        for (int level = 0; level < _VSS_APP_LEVEL_MAX; level++) {
                                SlotFacts f = slot_facts_of(facts, st, level);
                                bool same = level == batch_level;
                                for (size_t i = 0; i < ELEMENTSOF(rules); i++)
                                        expect(vss_event_name(rules[i].event),
                                               writer_gets_event(rules[i].event, &f, batch_level),
                                               rule_holds(&rules[i], facts, st, same), facts, st, level);
                                expect("AbortBackup", abort_backup_wants(&f), rule_holds(&abort_backup_rule, facts, st, same),
                                       facts, st, level);
                                expect("status query", writer_gets_status_query(&f),
                                       rule_holds(&status_query_rule, facts, st, same), facts, st, level);
                                expect("abort due", abort_due(&f, true), rule_holds(&abort_due_rule, facts, st, same), facts,
                                       st, level);
                                expect("abort due, not aborting", abort_due(&f, false), false, facts, st, level);
                        }
        /* Out of range: nobody. */
        SlotFacts all = slot_facts_of(_F_COMBINATIONS - 1, VSS_WS_STABLE, 0);
        CHECK(!writer_gets_event(_VSS_EVENT_MAX, &all, 0));
}

/* The same rules told as stories, one writer through a sequence. */
static void test_who_gets_what_stories(void) {
        /* Left out of the set: PrepareForBackup and BackupShutdown, nothing of the set itself. */
        SlotFacts out = { .selected = true, .left_out = true, .got_prepare_backup = true, .state = VSS_WS_STABLE };
        CHECK(writer_gets_event(VSS_EVENT_BACKUP_SHUTDOWN, &out, 0));
        for (vss_event e = VSS_EVENT_PREPARE_SNAPSHOT; e <= VSS_EVENT_BACKUP_COMPLETE; e++)
                CHECK(!writer_gets_event(e, &out, 0));
        /* Not selected in component mode: PrepareForBackup, then nothing but the BackupShutdown
         * that tells it the backup it was prepared for ended. */
        SlotFacts unselected = { .state = VSS_WS_STABLE };
        CHECK(writer_gets_event(VSS_EVENT_PREPARE_BACKUP, &unselected, 0));
        CHECK(!writer_gets_event(VSS_EVENT_BACKUP_SHUTDOWN, &unselected, 0));
        unselected.got_prepare_backup = true;
        for (vss_event e = VSS_EVENT_PREPARE_SNAPSHOT; e < _VSS_EVENT_MAX; e++)
                CHECK(writer_gets_event(e, &unselected, 0) == (e == VSS_EVENT_BACKUP_SHUTDOWN));
        /* A failed Freeze: no Thaw, the set's Abort instead. */
        SlotFacts frozen_failed = { .selected = true, .got_prepare_backup = true, .got_prepare_snapshot = true,
                                    .got_freeze = true, .state = VSS_WS_FAILED_AT_FREEZE, .level = 2 };
        CHECK(!writer_gets_event(VSS_EVENT_THAW, &frozen_failed, 2));
        CHECK(writer_gets_event(VSS_EVENT_ABORT, &frozen_failed, 2));
        CHECK(!writer_gets_event(VSS_EVENT_ABORT, &frozen_failed, 1)); /* its level's batch only */
        /* Frozen and waiting: Thaw at its level; Freeze never twice. */
        SlotFacts frozen = frozen_failed;
        frozen.state = VSS_WS_WAITING_FOR_THAW;
        CHECK(writer_gets_event(VSS_EVENT_THAW, &frozen, 2) && !writer_gets_event(VSS_EVENT_THAW, &frozen, 0));
        CHECK(!writer_gets_event(VSS_EVENT_FREEZE, &frozen, 2));
        /* After PostSnapshot: BackupComplete, and AbortBackup sends no Abort (no OnAbort after
         * OnPostSnapshot). */
        SlotFacts done = frozen;
        done.got_post_snapshot = true;
        done.state = VSS_WS_WAITING_FOR_BACKUP_COMPLETE;
        CHECK(writer_gets_event(VSS_EVENT_BACKUP_COMPLETE, &done, 0));
        CHECK(!abort_backup_wants(&done));
        /* Not responding once: no BackupShutdown to wait on. */
        done.not_responding = true;
        CHECK(!writer_gets_event(VSS_EVENT_BACKUP_SHUTDOWN, &done, 0));
}

static void test_abort_backup_action(void) {
        /* Nothing under way: ignored, the session stays usable (Windows ignores it too). */
        CHECK(abort_backup_action(PHASE_BACKUP_INIT, false, 0) == ABORT_IGNORE);
        CHECK(abort_backup_action(PHASE_METADATA, false, 0) == ABORT_IGNORE);
        CHECK(abort_backup_action(PHASE_COMPLETED, false, 0) == ABORT_IGNORE);
        CHECK(abort_backup_action(PHASE_RESTORE_INIT, false, 0) == ABORT_IGNORE);
        CHECK(abort_backup_action(PHASE_RESTORED, false, 0) == ABORT_IGNORE);
        CHECK(abort_backup_action(PHASE_PRE_RESTORED, true, CALL_POST_RESTORE) == ABORT_IGNORE);
        /* After a failed DoSnapshotSet, where a requester must call it: S_OK, nothing more to do. */
        CHECK(abort_backup_action(PHASE_ABORTED, false, 0) == ABORT_IGNORE);
        /* A set started, no writer involved yet. */
        CHECK(abort_backup_action(PHASE_SET_STARTED, false, 0) == ABORT_SESSION);
        /* Writers took part: they get Abort. */
        CHECK(abort_backup_action(PHASE_PREPARED, false, 0) == ABORT_WRITERS);
        CHECK(abort_backup_action(PHASE_SNAPSHOT_DONE, false, 0) == ABORT_WRITERS);
        /* In flight. */
        CHECK(abort_backup_action(PHASE_PREPARED, true, CALL_DO_SNAPSHOT_SET) == ABORT_SET_IN_FLIGHT);
        CHECK(abort_backup_action(PHASE_PREPARED, true, CALL_ABORT_BACKUP) == ABORT_IGNORE);
        /* PrepareForBackup in flight: its writers get Abort once it ends. Other operations
         * leave nothing under way behind them. */
        CHECK(abort_backup_action(PHASE_SET_STARTED, true, CALL_PREPARE_FOR_BACKUP) == ABORT_AFTER_OP);
        CHECK(abort_backup_action(PHASE_BACKUP_INIT, true, CALL_GATHER_WRITER_METADATA) == ABORT_IGNORE);
        CHECK(abort_backup_action(PHASE_SNAPSHOT_DONE, true, CALL_BACKUP_COMPLETE) == ABORT_IGNORE);
}

static void test_abort_backup_wants(void) {
        /* Writers that took part get Abort, but never after PostSnapshot (OnAbort is not called
         * after OnPostSnapshot) and never twice. */
        CHECK(abort_backup_wants(&(SlotFacts) { .got_prepare_backup = true, .selected = true }));
        CHECK(!abort_backup_wants(&(SlotFacts) {}));
        /* Left out of the set, or no component selected: nothing after PrepareForBackup. */
        CHECK(!abort_backup_wants(&(SlotFacts) { .got_prepare_backup = true }));
        CHECK(!abort_backup_wants(&(SlotFacts) { .got_prepare_backup = true, .selected = true, .left_out = true }));
        CHECK(!abort_backup_wants(&(SlotFacts) { .got_prepare_backup = true, .selected = true, .got_post_snapshot = true }));
        CHECK(!abort_backup_wants(&(SlotFacts) { .got_prepare_backup = true, .selected = true, .got_abort = true }));
}

static void test_abort_due(void) {
        /* Every combination: only an idle writer of an aborting set that took part and has not had
         * Abort yet gets it now. */
        for (unsigned m = 0; m < 16; m++) {
                SlotFacts f = { .got_prepare_snapshot = m & 2, .got_abort = m & 4, .inflight = m & 8 };
                CHECK(abort_due(&f, m & 1) == (m == 3));
        }
        /* The left-frozen race: a writer still in Freeze when the set is abandoned is not sent
         * Abort beside it, but as soon as it answers (in flight no more). */
        SlotFacts slow = { .got_prepare_snapshot = true, .inflight = true };
        CHECK(!abort_due(&slow, true));
        slow.inflight = false;
        CHECK(abort_due(&slow, true));
        slow.got_abort = true;
        CHECK(!abort_due(&slow, true));
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
        test_who_gets_what();
        test_who_gets_what_stories();
        test_abort_backup_action();
        test_abort_backup_wants();
        test_abort_due();
        printf("%s - sequence\n", test_failures ? "not ok" : "ok");
        return test_failures ? 1 : 0;
}
