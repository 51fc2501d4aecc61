# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python requester takes a snapshot set that pauses before Freeze and before the commit,
reading the Python writer's status at each pause, and continues it; a second one it aborts while
the writer is frozen: the writer gets Abort, no Thaw, and no shadow stays."""

import os
import sys

import openvss
from vssd_harness import Checks, Vssd, make_data


def events(log, name):
    with open(log) as f:
        return [line.split()[1] for line in f if line.split()[0] == name]


def prepared(h, data):
    b = openvss.Backup(h.socket)
    b.initialize_for_backup()
    b.set_backup_state()
    b.gather_writer_metadata()
    b.start_snapshot_set()
    shadow = b.add_to_snapshot_set(data)
    b.prepare_for_backup()
    return b, shadow


def state(b):
    return {s.name: s.state_name for s in b.gather_writer_status()}["pyw"]


def main():
    check = Checks()
    h = Vssd()
    data = make_data(h, "data")
    log = os.path.join(h.dir, "events")
    h.python_writer("writer.py", "pyw", data, log)

    b, shadow = prepared(h, data)
    with b:
        op = b.begin_snapshot_set_paused()
        check.eq(b.wait_paused(20), (openvss.PAUSE_BEFORE_FREEZE, None), "paused before Freeze")
        check.eq(state(b), "WaitingForFreeze", "status before Freeze")
        b.continue_snapshot_set()
        point, left = b.wait_paused(20)
        check.eq(point, openvss.PAUSE_BEFORE_COMMIT, "paused before the commit")
        check(left is not None and 0 < left <= 60, "the freeze window runs: %r s left" % left)
        check.eq(state(b), "WaitingForThaw", "status before the commit")
        try:
            b.continue_snapshot_set()
            b.continue_snapshot_set()
            check(False, "continue when not paused must fail")
        except openvss.VssError as e:
            check.eq(e.name, "VSS_E_BAD_STATE", "continue when not paused")
        check.eq(op.wait(20), True, "the set is made")
        check.eq(b.wait_paused(0), (0, None), "ended")
        check.eq(b.get_snapshot_properties(shadow)["original_path"], data, "the shadow is kept")
    check.eq(events(log, "pyw"), ["identify", "prepare-backup", "prepare-snapshot", "freeze", "thaw",
                                  "post-snapshot", "backup-shutdown"], "events of the set")

    open(log, "w").close()
    b, shadow = prepared(h, data)
    with b:
        op = b.begin_snapshot_set_paused(openvss.PAUSE_BEFORE_COMMIT)
        check.eq(b.wait_paused(20)[0], openvss.PAUSE_BEFORE_COMMIT, "paused before the commit alone")
        b.abort_backup()
        try:
            op.wait(20)
            check(False, "an aborted set must fail")
        except openvss.VssError as e:
            check.eq(e.name, "E_ABORT", "the aborted set")
        check.eq(state(b), "Stable", "status after the abort")
    check.eq(events(log, "pyw"), ["identify", "prepare-backup", "prepare-snapshot", "freeze", "abort",
                                  "backup-shutdown"], "events of the aborted set")
    rc, out = h.vssadmin("list", "shadows", "--json")
    check('"shadows":[\n  ]' in out, "nothing kept: %s" % out)
    h.close()
    if check.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
