/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * When a backup is aborted, as pure rules (unit-tested in tests/test-abort-rules.c): what
 * AbortBackup does in each phase of a session, and which writer must get Abort, and when.
 */

#include <stdbool.h>

#include "daemon/sequence.h"

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
bool abort_backup_wants(bool got_prepare_backup, bool got_post_snapshot, bool got_abort);

/* What the rule below needs to know of one writer. */
typedef struct AbortFacts {
        bool aborting;        /* the session aborts writers: a set being aborted, or AbortBackup */
        bool took_part;       /* got PrepareForSnapshot (or, for AbortBackup, PrepareForBackup) */
        bool abort_sent;      /* already got Abort */
        bool inflight;        /* an event to it awaits its answer */
} AbortFacts;

/* Whether the writer must get Abort now: as soon as a set is being aborted, every writer that
 * took part and is not busy with another event gets it at once, without waiting for the slowest
 * writer of the batch; one busy with an event (a Freeze that outlasts the abort) gets it the
 * moment it answers. Nobody gets it twice. */
bool abort_due(const AbortFacts *f);
