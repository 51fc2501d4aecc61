# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python writer vetoing Freeze: `vssadmin create shadow --json` shows FailedAtFreeze with the
writer's failure, application code and message, and no shadow stays. A Freeze raising another
exception, or returning False, fails as VSS_E_WRITERERROR_NONRETRYABLE; one that calls set_failure()
and returns normally fails with what it set. A requester cancels a
snapshot set held up by a slow Freeze."""

import json
import os
import sys

import openvss
from vssd_harness import Checks, Vssd, find, make_data


def create_vetoed(check, h, data, failure, code, message):
    rc, out = h.vssadmin("create", "shadow", "--for", data, "--json")
    check.eq(rc, 1, "vssadmin create shadow exit status")
    root = json.loads(out)
    check.eq(root.get("result"), "failed", "result")
    err = root.get("error", {})
    check.eq(err.get("name"), failure, "error name")
    check(message in err.get("message", ""), "the error names the writer's message %r: %r" % (message, err))
    check.eq(root.get("shadows"), [], "no shadows")
    dss = find(root.get("phases", []), "phase", "do-snapshot-set")
    w = find(dss.get("writers", []) if dss else [], "name", "pyveto")
    if check(w is not None, "pyveto in the do-snapshot-set phase"):
        check.eq(w.get("state_name"), "FailedAtFreeze", "state_name")
        check.eq(w.get("state"), openvss.VSS_WS_FAILED_AT_FREEZE, "state")
        check.eq(w.get("failure_name"), failure, "failure_name")
        check.eq(w.get("application_code"), code, "application_code")
        check.eq(w.get("application_message"), message, "application_message")
    return err


def main():
    check = Checks()
    h = Vssd()
    data = make_data(h, "data")
    log = os.path.join(h.dir, "events")
    with open(log + ".freeze", "w") as f:
        f.write("veto\n")
    h.python_writer("writer.py", "pyveto", data, log)

    # vssd knows it under the class id derived from its name, as any language derives it.
    listed = h.writer("pyveto")
    check.eq(listed.get("writer_id"), str(openvss.writer_class_id("pyveto")), "writer_id of an unnamed class")

    err = create_vetoed(check, h, data, "VSS_E_WRITERERROR_RETRYABLE", 42, "disk busy")
    check.eq(err.get("code"), "0x800423f3", "error code")
    # The writer's status stays for `vssadmin list writers`.
    listed = h.writer("pyveto")
    check.eq(listed.get("state_name"), "FailedAtFreeze", "listed state")
    check.eq(listed.get("application_code"), 42, "listed code")
    check.eq(listed.get("application_message"), "disk busy", "listed message")
    with open(log) as f:
        events = [line.split()[1] for line in f]
    check(events[:4] == ["identify", "prepare-backup", "prepare-snapshot", "freeze"], "events %r" % events)
    check("abort" in events and "thaw" not in events, "a vetoed freeze is aborted, not thawed: %r" % events)

    # Any other exception, and False, fail the event too.
    with open(log + ".freeze", "w") as f:
        f.write("raise\n")
    create_vetoed(check, h, data, "VSS_E_WRITERERROR_NONRETRYABLE", 0, "ValueError: boom")
    with open(log + ".freeze", "w") as f:
        f.write("false\n")
    create_vetoed(check, h, data, "VSS_E_WRITERERROR_NONRETRYABLE", 0, "")
    with open(log + ".freeze", "w") as f:
        f.write("set\n")
    create_vetoed(check, h, data, "VSS_E_WRITERERROR_OUTOFRESOURCES", 7, "no memory")

    # A requester cancels a snapshot set held up by a slow Freeze.
    with open(log + ".freeze", "w") as f:
        f.write("sleep\n")
    with openvss.Backup(h.socket) as b:
        b.initialize_for_backup()
        b.set_backup_state()
        b.gather_writer_metadata()
        b.start_snapshot_set()
        b.add_to_snapshot_set(data)
        b.prepare_for_backup()
        op = b.begin("do_snapshot_set")
        check(op.wait(0.5) is False, "do_snapshot_set pending during a slow freeze")
        check.eq(op.cancel(), 0, "cancel")
        try:
            op.wait()
            check(False, "a cancelled do_snapshot_set must fail")
        except openvss.VssError as e:
            check.eq((e.code, e.name), (openvss.VSS_E_ABORT, "E_ABORT"), "a cancelled do_snapshot_set")
        check.eq(op.query(), openvss.VSS_S_ASYNC_CANCELLED, "query after cancel")
    h.close()
    if check.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
