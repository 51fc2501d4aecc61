/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "daemon/abort-rules.h"

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

bool abort_backup_wants(bool got_prepare_backup, bool got_post_snapshot, bool got_abort) {
        return got_prepare_backup && !got_post_snapshot && !got_abort;
}

bool abort_due(const AbortFacts *f) {
        return f->aborting && f->took_part && !f->abort_sent && !f->inflight;
}
