/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for the abort rules: what AbortBackup does in each phase, who gets Abort when. */

#include <stdio.h>

#include "daemon/abort-rules.h"
#include "tests/check.h"

int test_failures;

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
        CHECK(abort_backup_wants(true, false, false));
        CHECK(!abort_backup_wants(false, false, false));
        CHECK(!abort_backup_wants(true, true, false));
        CHECK(!abort_backup_wants(true, false, true));
}

static void test_abort_due(void) {
        /* Every combination: only an idle writer of an aborting set that took part and has not had
         * Abort yet gets it now. */
        for (unsigned m = 0; m < 16; m++) {
                AbortFacts f = { .aborting = m & 1, .took_part = m & 2, .abort_sent = m & 4, .inflight = m & 8 };
                CHECK(abort_due(&f) == (m == 3));
        }
        /* The left-frozen race: a writer still in Freeze when the set is abandoned is not sent
         * Abort beside it, but as soon as it answers (in flight no more). */
        AbortFacts slow = { .aborting = true, .took_part = true, .inflight = true };
        CHECK(!abort_due(&slow));
        slow.inflight = false;
        CHECK(abort_due(&slow));
        slow.abort_sent = true;
        CHECK(!abort_due(&slow));
}

int main(void) {
        test_abort_backup_action();
        test_abort_backup_wants();
        test_abort_due();
        printf("%s - abort-rules\n", test_failures ? "not ok" : "ok");
        return test_failures ? 1 : 0;
}
