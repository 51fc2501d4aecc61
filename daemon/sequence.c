/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "daemon/sequence.h"
#include "lib/common.h"

static const char *const phase_names[_PHASE_MAX] = {
        [PHASE_NEW] = "new",
        [PHASE_BACKUP_INIT] = "initialized for backup",
        [PHASE_RESTORE_INIT] = "initialized for restore",
        [PHASE_METADATA] = "metadata gathered",
        [PHASE_SET_STARTED] = "snapshot set started",
        [PHASE_PREPARED] = "prepared for backup",
        [PHASE_SNAPSHOT_DONE] = "snapshot set done",
        [PHASE_COMPLETED] = "backup complete",
        [PHASE_PRE_RESTORED] = "pre-restore done",
        [PHASE_RESTORED] = "post-restore done",
        [PHASE_ABORTED] = "aborted",
};

static const char *const call_names[_CALL_MAX] = {
        [CALL_INITIALIZE_FOR_BACKUP] = "InitializeForBackup",
        [CALL_INITIALIZE_FOR_RESTORE] = "InitializeForRestore",
        [CALL_SET_CONTEXT] = "SetContext",
        [CALL_SET_BACKUP_STATE] = "SetBackupState",
        [CALL_GATHER_WRITER_METADATA] = "GatherWriterMetadata",
        [CALL_ADD_COMPONENT] = "AddComponent",
        [CALL_START_SNAPSHOT_SET] = "StartSnapshotSet",
        [CALL_ADD_TO_SNAPSHOT_SET] = "AddToSnapshotSet",
        [CALL_PREPARE_FOR_BACKUP] = "PrepareForBackup",
        [CALL_DO_SNAPSHOT_SET] = "DoSnapshotSet",
        [CALL_SET_BACKUP_SUCCEEDED] = "SetBackupSucceeded",
        [CALL_BACKUP_COMPLETE] = "BackupComplete",
        [CALL_ABORT_BACKUP] = "AbortBackup",
        [CALL_PRE_RESTORE] = "PreRestore",
        [CALL_POST_RESTORE] = "PostRestore",
        [CALL_GATHER_WRITER_STATUS] = "GatherWriterStatus",
        [CALL_SET_COMPONENT_PROPERTY] = "SetComponentProperty",
        [CALL_SAVE_AS_DOCUMENT] = "SaveAsDocument",
        [CALL_WAIT_PAUSED] = "WaitPaused",
        [CALL_CONTINUE_SNAPSHOT_SET] = "ContinueSnapshotSet",
};

const char *session_phase_name(SessionPhase p) {
        return (unsigned) p < _PHASE_MAX ? phase_names[p] : "?";
}

const char *seq_call_name(SeqCall c) {
        return (unsigned) c < _CALL_MAX ? call_names[c] : "?";
}

#define PH(p) (1u << (p))

/* The phases in which each call is valid. */
static const unsigned valid_in[_CALL_MAX] = {
        [CALL_INITIALIZE_FOR_BACKUP] = PH(PHASE_NEW),
        [CALL_INITIALIZE_FOR_RESTORE] = PH(PHASE_NEW),
        [CALL_SET_CONTEXT] = PH(PHASE_BACKUP_INIT) | PH(PHASE_METADATA),
        [CALL_SET_BACKUP_STATE] = PH(PHASE_BACKUP_INIT) | PH(PHASE_METADATA) | PH(PHASE_SET_STARTED),
        [CALL_GATHER_WRITER_METADATA] = PH(PHASE_BACKUP_INIT) | PH(PHASE_RESTORE_INIT),
        [CALL_ADD_COMPONENT] = PH(PHASE_METADATA) | PH(PHASE_SET_STARTED),
        [CALL_START_SNAPSHOT_SET] = PH(PHASE_METADATA),
        [CALL_ADD_TO_SNAPSHOT_SET] = PH(PHASE_SET_STARTED) | PH(PHASE_PREPARED),
        [CALL_PREPARE_FOR_BACKUP] = PH(PHASE_SET_STARTED),
        [CALL_DO_SNAPSHOT_SET] = PH(PHASE_PREPARED),
        [CALL_SET_BACKUP_SUCCEEDED] = PH(PHASE_SNAPSHOT_DONE),
        [CALL_BACKUP_COMPLETE] = PH(PHASE_SNAPSHOT_DONE),
        /* Anywhere once initialized; what it does depends on the phase (abort_backup_action()):
         * with no backup under way, a restore session's included, it is ignored. */
        [CALL_ABORT_BACKUP] = PH(PHASE_BACKUP_INIT) | PH(PHASE_METADATA) | PH(PHASE_SET_STARTED) |
                              PH(PHASE_PREPARED) | PH(PHASE_SNAPSHOT_DONE) | PH(PHASE_COMPLETED) |
                              PH(PHASE_ABORTED) | PH(PHASE_RESTORE_INIT) | PH(PHASE_PRE_RESTORED) |
                              PH(PHASE_RESTORED),
        [CALL_PRE_RESTORE] = PH(PHASE_RESTORE_INIT) | PH(PHASE_METADATA),
        [CALL_POST_RESTORE] = PH(PHASE_PRE_RESTORED),
        [CALL_GATHER_WRITER_STATUS] = PH(PHASE_RESTORE_INIT) | PH(PHASE_METADATA) | PH(PHASE_SET_STARTED) |
                                      PH(PHASE_PREPARED) | PH(PHASE_SNAPSHOT_DONE) | PH(PHASE_COMPLETED) |
                                      PH(PHASE_PRE_RESTORED) | PH(PHASE_RESTORED) | PH(PHASE_ABORTED),
        /* Which property when is checked by the method: backup options before PrepareForBackup,
         * restore selections before PreRestore, the file restore status before PostRestore. */
        [CALL_SET_COMPONENT_PROPERTY] = PH(PHASE_METADATA) | PH(PHASE_SET_STARTED) | PH(PHASE_RESTORE_INIT) |
                                        PH(PHASE_PRE_RESTORED),
        [CALL_SAVE_AS_DOCUMENT] = PH(PHASE_METADATA) | PH(PHASE_SET_STARTED) | PH(PHASE_PREPARED) |
                                  PH(PHASE_SNAPSHOT_DONE) | PH(PHASE_COMPLETED) | PH(PHASE_RESTORE_INIT) |
                                  PH(PHASE_PRE_RESTORED) | PH(PHASE_RESTORED) | PH(PHASE_ABORTED),
        /* While a set with pause points is in flight (and, answered "ended" at once, after it);
         * continuing only while it is paused (seq_check). */
        [CALL_WAIT_PAUSED] = PH(PHASE_PREPARED) | PH(PHASE_SNAPSHOT_DONE) | PH(PHASE_COMPLETED) | PH(PHASE_ABORTED),
        [CALL_CONTINUE_SNAPSHOT_SET] = PH(PHASE_PREPARED),
};

/* A context without writers needs neither GatherWriterMetadata nor PrepareForBackup (VSS: "Shadow
 * Copy Creation Details"): StartSnapshotSet right after initialization, DoSnapshotSet right after
 * StartSnapshotSet. */
static bool no_writers_shortcut(const SeqFacts *f, SeqCall call) {
        return f->no_writers && ((call == CALL_START_SNAPSHOT_SET && f->phase == PHASE_BACKUP_INIT) ||
                                 (call == CALL_DO_SNAPSHOT_SET && f->phase == PHASE_SET_STARTED));
}

int32_t seq_check(const SeqFacts *f, SeqCall call, const char **ret_why) {
        const char *why = NULL;

        if ((unsigned) call >= _CALL_MAX || (unsigned) f->phase >= _PHASE_MAX)
                why = "unknown call or phase";
        else if (f->busy && call != CALL_GATHER_WRITER_STATUS && call != CALL_ABORT_BACKUP &&
                 call != CALL_WAIT_PAUSED && call != CALL_CONTINUE_SNAPSHOT_SET)
                why = "another operation of this session is in progress";
        else if (call == CALL_WAIT_PAUSED && !f->pausable)
                why = "no do-snapshot-set with pause points was started in this session";
        else if (call == CALL_CONTINUE_SNAPSHOT_SET && !f->paused)
                why = "the snapshot set is not paused";
        else if (f->no_writers &&
                 (call == CALL_ADD_COMPONENT || call == CALL_PREPARE_FOR_BACKUP || call == CALL_BACKUP_COMPLETE))
                why = "not valid in a context without writers";
        else if (!(valid_in[call] & PH(f->phase)) && !no_writers_shortcut(f, call))
                why = "not valid in this phase of the session";
        /* VSS: AddComponent and SetBackupState return VSS_E_BAD_STATE "called during a restore
         * operation": a restore's components and backup type are its document's. */
        else if ((call == CALL_START_SNAPSHOT_SET || call == CALL_SET_CONTEXT || call == CALL_SET_BACKUP_STATE ||
                  call == CALL_ADD_COMPONENT) && f->restore)
                why = "not valid in a restore session";
        else if (call == CALL_ADD_COMPONENT && !f->component_mode)
                why = "components can only be added in component mode (SetBackupState)";
        /* With writers an empty set is fine (VSS: they quiesce, nothing is cut); without, it
         * would make nothing at all. */
        else if (call == CALL_DO_SNAPSHOT_SET && f->n_volumes == 0 && f->no_writers)
                why = "the snapshot set has no volumes";
        else if (call == CALL_PRE_RESTORE && !f->restore)
                why = "not valid in a backup session";

        if (why) {
                if (ret_why)
                        *ret_why = why;
                return VSS_E_BAD_STATE;
        }
        return 0;
}

SessionPhase seq_next(SessionPhase p, SeqCall call) {
        switch (call) {
        case CALL_INITIALIZE_FOR_BACKUP: return PHASE_BACKUP_INIT;
        case CALL_INITIALIZE_FOR_RESTORE: return PHASE_RESTORE_INIT;
        case CALL_GATHER_WRITER_METADATA: return PHASE_METADATA;
        case CALL_START_SNAPSHOT_SET: return PHASE_SET_STARTED;
        case CALL_PREPARE_FOR_BACKUP: return PHASE_PREPARED;
        case CALL_DO_SNAPSHOT_SET: return PHASE_SNAPSHOT_DONE;
        case CALL_BACKUP_COMPLETE: return PHASE_COMPLETED;
        case CALL_ABORT_BACKUP: return PHASE_ABORTED;
        case CALL_PRE_RESTORE: return PHASE_PRE_RESTORED;
        case CALL_POST_RESTORE: return PHASE_RESTORED;
        default: return p;
        }
}

vss_writer_state state_after_success(vss_event e, vss_writer_state current) {
        switch (e) {
        case VSS_EVENT_IDENTIFY:
                /* Identify may come at any time and must not change the operation state. */
                return current == VSS_WS_UNKNOWN ? VSS_WS_STABLE : current;
        case VSS_EVENT_PREPARE_SNAPSHOT: return VSS_WS_WAITING_FOR_FREEZE;
        case VSS_EVENT_FREEZE: return VSS_WS_WAITING_FOR_THAW;
        case VSS_EVENT_THAW: return VSS_WS_WAITING_FOR_POST_SNAPSHOT;
        case VSS_EVENT_POST_SNAPSHOT: return VSS_WS_WAITING_FOR_BACKUP_COMPLETE;
        case VSS_EVENT_BACKUP_SHUTDOWN: return current;
        default: return VSS_WS_STABLE;
        }
}

vss_writer_state state_failed_at(vss_event e) {
        switch (e) {
        case VSS_EVENT_IDENTIFY: return VSS_WS_FAILED_AT_IDENTIFY;
        case VSS_EVENT_PREPARE_BACKUP: return VSS_WS_FAILED_AT_PREPARE_BACKUP;
        case VSS_EVENT_PREPARE_SNAPSHOT: return VSS_WS_FAILED_AT_PREPARE_SNAPSHOT;
        case VSS_EVENT_FREEZE: return VSS_WS_FAILED_AT_FREEZE;
        case VSS_EVENT_THAW: return VSS_WS_FAILED_AT_THAW;
        case VSS_EVENT_POST_SNAPSHOT: return VSS_WS_FAILED_AT_POST_SNAPSHOT;
        case VSS_EVENT_BACKUP_COMPLETE: return VSS_WS_FAILED_AT_BACKUP_COMPLETE;
        case VSS_EVENT_PRE_RESTORE: return VSS_WS_FAILED_AT_PRE_RESTORE;
        case VSS_EVENT_POST_RESTORE: return VSS_WS_FAILED_AT_POST_RESTORE;
        case VSS_EVENT_BACKUP_SHUTDOWN: return VSS_WS_FAILED_AT_BACKUP_SHUTDOWN;
        default: return VSS_WS_UNKNOWN;
        }
}

bool state_is_failed(vss_writer_state s) {
        return s >= VSS_WS_FAILED_AT_IDENTIFY && s <= VSS_WS_FAILED_AT_BACKUP_SHUTDOWN;
}

const Timeouts timeouts_default = {
        .identify_ms = 10 * 1000,
        .prepare_backup_ms = 60 * 1000,
        .prepare_snapshot_ms = 120 * 1000,
        .freeze_window_ms = 60 * 1000,
        .post_snapshot_ms = 60 * 1000,
        .backup_complete_ms = 60 * 1000,
        .backup_shutdown_ms = 30 * 1000,
        .restore_ms = 10 * 60 * 1000,
        .status_ms = 5 * 1000,
        .max_freeze_window_ms = 10 * 60 * 1000,
};

uint32_t event_timeout_ms(const Timeouts *t, vss_event e, uint32_t writer_window_ms) {
        switch (e) {
        case VSS_EVENT_IDENTIFY: return t->identify_ms;
        case VSS_EVENT_PREPARE_BACKUP: return t->prepare_backup_ms;
        case VSS_EVENT_PREPARE_SNAPSHOT: return t->prepare_snapshot_ms;
        case VSS_EVENT_FREEZE:
        case VSS_EVENT_THAW:
        case VSS_EVENT_ABORT:
                if (writer_window_ms == 0)
                        return t->freeze_window_ms;
                return writer_window_ms < t->max_freeze_window_ms ? writer_window_ms : t->max_freeze_window_ms;
        case VSS_EVENT_POST_SNAPSHOT: return t->post_snapshot_ms;
        case VSS_EVENT_BACKUP_COMPLETE: return t->backup_complete_ms;
        case VSS_EVENT_BACKUP_SHUTDOWN: return t->backup_shutdown_ms;
        case VSS_EVENT_PRE_RESTORE:
        case VSS_EVENT_POST_RESTORE: return t->restore_ms;
        default: return t->status_ms;
        }
}

bool writer_failure_valid(int32_t failure) {
        switch (failure) {
        case VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT:
        case VSS_E_WRITERERROR_OUTOFRESOURCES:
        case VSS_E_WRITERERROR_TIMEOUT:
        case VSS_E_WRITERERROR_RETRYABLE:
        case VSS_E_WRITERERROR_NONRETRYABLE:
        case VSS_E_WRITERERROR_RECOVERY_FAILED:
        case VSS_E_WRITERERROR_PARTIAL_FAILURE:
                return true;
        default:
                return false;
        }
}

bool status_apply(StatusSlot *s, vss_event e, int32_t failure, int32_t app_code, const char *app_msg) {
        /* A failed writer keeps its FailedAt state, code and message: it caused what followed. */
        if (state_is_failed(s->state))
                return false;
        if (e == VSS_EVENT_ABORT && failure == VSS_E_WRITER_NOT_RESPONDING) {
                /* No answer to Abort: nobody knows the writer let go, so it is not Stable. VSS has no
                 * FailedAtAbort: it failed in the phase it was in when the snapshot was aborted
                 * (Stable: prepared for backup, nothing more, when AbortBackup came). */
                s->state = s->state == VSS_WS_STABLE ? VSS_WS_FAILED_AT_PREPARE_BACKUP
                         : s->state == VSS_WS_WAITING_FOR_FREEZE ? VSS_WS_FAILED_AT_PREPARE_SNAPSHOT
                         : s->state == VSS_WS_WAITING_FOR_POST_SNAPSHOT ? VSS_WS_FAILED_AT_THAW
                                                                        : VSS_WS_FAILED_AT_FREEZE;
                s->failure = failure;
                s->application_code = app_code;
                utf8_copy(s->application_message, sizeof(s->application_message), app_msg);
                s->aborted = true;
                return false; /* the abort is under way already */
        }
        if (failure == 0 || e == VSS_EVENT_ABORT) {
                /* Abort is best effort cleanup: a writer's own failure in it is logged, never a new
                 * state. */
                s->state = state_after_success(e, s->state);
                if (e == VSS_EVENT_ABORT)
                        s->aborted = true;
                return false;
        }
        s->state = state_failed_at(e);
        s->failure = failure;
        s->application_code = app_code;
        utf8_copy(s->application_message, sizeof(s->application_message), app_msg);
        return true;
}

bool writer_takes_part(const WriterFacts *w, const char *const *set_paths, size_t n_set_paths) {
        if (w->component_mode)
                return w->selected;
        const vss_writer_metadata *m = w->metadata;
        if (!m || m->n_components == 0)
                return w->root;
        /* As path_overlaps(), normalized once: a user's writer needs the deeper of the two. */
        char nc[PATH_MAX + 2], nv[PATH_MAX + 2];
        for (size_t i = 0; i < m->n_components; i++)
                for (size_t f = 0; f < m->components[i].n_files; f++) {
                        if (path_normalize(m->components[i].files[f].path, nc, sizeof(nc)) < 0)
                                continue;
                        for (size_t v = 0; v < n_set_paths; v++) {
                                if (path_normalize(set_paths[v], nv, sizeof(nv)) < 0)
                                        continue;
                                bool c_deeper = path_within(nc, nv);
                                if (!c_deeper && !path_within(nv, nc))
                                        continue;
                                if (w->root || (w->owns && w->owns(c_deeper ? nc : nv, w->uid)))
                                        return true;
                        }
                }
        return false;
}

bool writer_gets_event(vss_event e, const SlotFacts *f, int level) {
        bool failed = state_is_failed(f->state), same_level = f->level == level;
        bool active = f->selected && !f->left_out && !failed;
        switch (e) {
        case VSS_EVENT_IDENTIFY: return true;
        case VSS_EVENT_PREPARE_BACKUP: return !failed && !f->unheard;
        case VSS_EVENT_PREPARE_SNAPSHOT:
        case VSS_EVENT_PRE_RESTORE:
        case VSS_EVENT_POST_RESTORE: return active;
        case VSS_EVENT_FREEZE: return active && same_level && f->state == VSS_WS_WAITING_FOR_FREEZE;
        case VSS_EVENT_THAW: return f->got_freeze && same_level && f->state == VSS_WS_WAITING_FOR_THAW;
        case VSS_EVENT_POST_SNAPSHOT: return f->state == VSS_WS_WAITING_FOR_POST_SNAPSHOT;
        case VSS_EVENT_ABORT: return f->got_prepare_snapshot && !f->got_abort && same_level;
        case VSS_EVENT_BACKUP_COMPLETE: return f->selected && f->state == VSS_WS_WAITING_FOR_BACKUP_COMPLETE;
        /* Whoever was told of the backup hears its end, selected or not. */
        case VSS_EVENT_BACKUP_SHUTDOWN: return (f->selected || f->got_prepare_backup) && !f->not_responding;
        default: return false;
        }
}

bool writer_told_shutdown_unawaited(const SlotFacts *f) {
        return (f->selected || f->got_prepare_backup) && f->not_responding;
}

bool writer_gets_status_query(const SlotFacts *f) {
        return !f->inflight && !f->unheard && !state_is_failed(f->state);
}

AbortAction abort_backup_action(SessionPhase phase, bool busy, SeqCall op) {
        if (busy)
                switch (op) {
                case CALL_DO_SNAPSHOT_SET: return ABORT_SET_IN_FLIGHT;
                case CALL_ABORT_BACKUP: return ABORT_IGNORE; /* already aborting: idempotent */
                case CALL_PREPARE_FOR_BACKUP: return ABORT_AFTER_OP;
                /* Metadata, BackupComplete, a restore step: no backup is under way after them. */
                default: return ABORT_IGNORE;
                }
        switch (phase) {
        case PHASE_SET_STARTED:
                return ABORT_SESSION;
        case PHASE_PREPARED:
        case PHASE_SNAPSHOT_DONE:
                return ABORT_WRITERS;
        default:
                /* Before a set is started, after BackupComplete, after an abort (a failed
                 * DoSnapshotSet aborted the set already): nothing is under way. Windows ignores
                 * AbortBackup then, and so do we. */
                return ABORT_IGNORE;
        }
}

bool abort_backup_wants(const SlotFacts *f) {
        /* Only who takes part: a writer left out of the set, or with no selected component, gets
         * nothing after PrepareForBackup (README, "Which writers take part"). */
        return f->got_prepare_backup && f->selected && !f->left_out && !f->got_post_snapshot && !f->got_abort;
}

bool abort_due(const SlotFacts *f, bool aborting) {
        return aborting && f->got_prepare_snapshot && !f->got_abort && !f->inflight;
}
