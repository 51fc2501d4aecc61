/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The backup and restore sequence as pure logic: which requester call is valid in which session
 * phase, which writer state follows which event, and how a status slot changes. No bus, no I/O,
 * so it is unit-tested on its own (tests/test-sequence.c).
 */

#include <vss/types.h>
#include <vss/document.h>
#include <vss/writer.h>

#include "lib/basic/path-util.h"

typedef enum SessionPhase {
        PHASE_NEW,
        PHASE_BACKUP_INIT,      /* initialized for backup */
        PHASE_RESTORE_INIT,     /* initialized for restore */
        PHASE_METADATA,         /* writer metadata gathered */
        PHASE_SET_STARTED,      /* snapshot set started (volumes may be added) */
        PHASE_PREPARED,         /* PrepareForBackup done */
        PHASE_SNAPSHOT_DONE,    /* DoSnapshotSet succeeded */
        PHASE_COMPLETED,        /* BackupComplete done */
        PHASE_PRE_RESTORED,     /* PreRestore done */
        PHASE_RESTORED,         /* PostRestore done */
        PHASE_ABORTED,          /* aborted, by the requester or by a failure */
        _PHASE_MAX,
} SessionPhase;

typedef enum SeqCall {
        CALL_INITIALIZE_FOR_BACKUP,
        CALL_INITIALIZE_FOR_RESTORE,
        CALL_SET_CONTEXT,
        CALL_SET_BACKUP_STATE,
        CALL_GATHER_WRITER_METADATA,
        CALL_ADD_COMPONENT,
        CALL_START_SNAPSHOT_SET,
        CALL_ADD_TO_SNAPSHOT_SET,
        CALL_PREPARE_FOR_BACKUP,
        CALL_DO_SNAPSHOT_SET,
        CALL_SET_BACKUP_SUCCEEDED,
        CALL_BACKUP_COMPLETE,
        CALL_ABORT_BACKUP,
        CALL_PRE_RESTORE,
        CALL_POST_RESTORE,
        CALL_GATHER_WRITER_STATUS,
        CALL_SET_COMPONENT_PROPERTY,
        CALL_SAVE_AS_DOCUMENT,
        CALL_WAIT_PAUSED,           /* DoSnapshotSetPaused's pause points */
        CALL_CONTINUE_SNAPSHOT_SET,
        _CALL_MAX,
} SeqCall;

const char *session_phase_name(SessionPhase p);
const char *seq_call_name(SeqCall c);

/* What the check needs to know of a session besides its phase. */
typedef struct SeqFacts {
        SessionPhase phase;
        bool busy;               /* an operation of this session is in flight */
        bool component_mode;     /* set_backup_state(select_components = true) */
        bool restore;            /* initialized for restore */
        bool status_closed;      /* the gather after backup-complete/post-restore happened: later
                                  * gathers return that status */
        unsigned n_volumes;
        bool no_writers;         /* the context has VSS_VOLSNAP_ATTR_NO_WRITERS */
        bool pausable;           /* a DoSnapshotSet with pause points was started */
        bool paused;             /* and is paused now */
} SeqFacts;

/* 0 when the call is valid now, else VSS_E_BAD_STATE with *ret_why (static) saying why. */
int32_t seq_check(const SeqFacts *f, SeqCall call, const char **ret_why);
/* The phase after the call succeeded (a failed DoSnapshotSet goes to PHASE_ABORTED instead). */
SessionPhase seq_next(SessionPhase p, SeqCall call);

/* Writer states. */
vss_writer_state state_after_success(vss_event e, vss_writer_state current);
vss_writer_state state_failed_at(vss_event e);
bool state_is_failed(vss_writer_state s);

/* The deadline of an event, from configuration. */
typedef struct Timeouts {
        uint32_t identify_ms, prepare_backup_ms, prepare_snapshot_ms, freeze_window_ms, post_snapshot_ms,
                backup_complete_ms, backup_shutdown_ms, restore_ms, status_ms, max_freeze_window_ms;
} Timeouts;

extern const Timeouts timeouts_default;
/* Freeze, Thaw and Abort use the writer's window (0: the default, capped). */
uint32_t event_timeout_ms(const Timeouts *t, vss_event e, uint32_t writer_window_ms);

/* One writer's status in one session. */
typedef struct StatusSlot {
        vss_writer_state state;
        int32_t failure;
        int32_t application_code;
        char application_message[1023 + 1];
        bool aborted;            /* went back to Stable because of someone else's failure */
} StatusSlot;

/* Whether a writer may report this failure code (the VSS_E_WRITERERROR_* family). */
bool writer_failure_valid(int32_t failure);

/* Applies a writer's answer to an event. Abort and BackupShutdown never clear a failure, and a
 * failed writer stays failed. Returns true when the event counts as failed for the sequence. */
bool status_apply(StatusSlot *s, vss_event e, int32_t failure, int32_t app_code, const char *app_msg);

/* path_normalize and path_overlaps: lib/basic/path-util.h */

/* What decides a writer's part in a snapshot set. */
typedef struct WriterFacts {
        bool component_mode;                 /* the requester selects components */
        bool selected;                       /* component mode: one of its components is selected */
        bool root;                           /* the writer runs as root (or as vssd itself) */
        const vss_writer_metadata *metadata; /* its components and their files; NULL: none */
        uint32_t uid;                        /* a user's writer: its owner */
        bool (*owns)(const char *path, uint32_t uid); /* path exists and belongs to uid */
} WriterFacts;

/* Whether a writer takes part in a snapshot set of these paths (PrepareForSnapshot onwards). In
 * component mode, when one of its components is selected. Otherwise when a path of one of its
 * components' files lies on, under or above a path of the set (for a user's writer, only when the
 * deeper of the two exists and is the user's: what the set and the component share is theirs),
 * or when it is root's and declares no component (a system-wide quiesce): a user's writer cannot
 * hold up a backup of what it does not own (a component of "/" claims nothing), and a requester
 * that wants every writer selects all components. */
bool writer_takes_part(const WriterFacts *w, const char *const *set_paths, size_t n_set_paths);

/* Who gets which event. Each batch of the sequence goes to the writers whose slot facts the rule of
 * its event picks; the rules follow Microsoft VSS (README: "The backup sequence", "Which writers
 * take part in a snapshot set", "AbortBackup"). */
typedef struct SlotFacts {
        bool identified;          /* answered Identify with metadata of its own */
        bool selected;            /* takes part past PrepareForBackup (component mode: a component of
                                   * it is selected; a restore: it may restore) */
        bool left_out;            /* not involved in the snapshot set (writer_takes_part) */
        bool unheard;             /* a user's writer not involved in the backup: hears nothing of it */
        bool got_prepare_backup, got_prepare_snapshot, got_freeze, got_post_snapshot, got_abort;
        bool inflight;            /* an event to it awaits its answer */
        bool not_responding;      /* declared VSS_E_WRITER_NOT_RESPONDING in this session */
        vss_writer_state state;   /* its status in the session: failed is a FailedAt state */
        int level;                /* its application level (vss_app_level) */
} SlotFacts;

/* Whether the writer gets e from the sequence's batch at level. Freeze, Thaw and the set's Abort
 * go level by level (level is the batch's); the others are sent at once to every level:
 *  - Identify: every writer;
 *  - PrepareForBackup: every writer not failed, but a user's writer not involved (unheard);
 *  - PrepareForSnapshot, PreRestore, PostRestore: selected, involved, not failed;
 *  - Freeze: the same, waiting for Freeze;
 *  - Thaw: got Freeze and waits for Thaw (a failed Freeze is aborted, not thawed);
 *  - PostSnapshot: waiting for PostSnapshot;
 *  - Abort (of a set being aborted): got PrepareForSnapshot and no Abort yet;
 *  - BackupComplete: selected, waiting for BackupComplete;
 *  - BackupShutdown: selected, not declared not responding (nobody waits on a hung writer twice). */
bool writer_gets_event(vss_event e, const SlotFacts *f, int level);
/* Whether the writer is sent BackupShutdown without its answer being waited for: selected, and
 * declared not responding (VSS sends BackupShutdown to every writer of a released backup, so
 * that one alive after all can clean up). */
bool writer_told_shutdown_unawaited(const SlotFacts *f);

/* Whether a status query (GatherWriterStatus) pings the writer: a writer busy with an event is
 * reported as it is, and a failed one keeps its failure, so neither is asked. */
bool writer_gets_status_query(const SlotFacts *f);

/* When a backup is aborted. What AbortBackup does in each phase of a session: */
typedef enum AbortAction {
        ABORT_IGNORE,        /* nothing under way (or aborted already): S_OK, the session is unchanged */
        ABORT_SET_IN_FLIGHT, /* the snapshot set in creation aborts; its DoSnapshotSet returns E_ABORT */
        ABORT_SESSION,       /* no writer took part yet: drop the set, the session is aborted */
        ABORT_WRITERS,       /* Abort to every writer that took part, then the session is aborted */
        ABORT_AFTER_OP,      /* PrepareForBackup in flight: S_OK now, Abort to the writers once it ends */
} AbortAction;

/* What AbortBackup does now. op is the operation in flight when busy. */
AbortAction abort_backup_action(SessionPhase phase, bool busy, SeqCall op);

/* Whether AbortBackup sends Abort to a writer: to every one that took part (got PrepareForBackup),
 * except one that had PostSnapshot (the end of its shadow copy: CVssWriter::OnAbort is never
 * called after OnPostSnapshot) or had Abort already. */
bool abort_backup_wants(const SlotFacts *f);

/* Whether the writer must get Abort now, while the set is aborting: as soon as a set is being
 * aborted, every writer that took part (got PrepareForSnapshot) and is not busy with another event
 * gets it at once, without waiting for the slowest writer of the batch; one busy with an event (a
 * Freeze that outlasts the abort) gets it the moment it answers. Nobody gets it twice. */
bool abort_due(const SlotFacts *f, bool aborting);
