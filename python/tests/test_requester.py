# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python requester runs a full backup of a Python writer's component (copying the shadow),
then a restore from the saved backup components document."""

import filecmp
import json
import os
import shutil
import sys

import openvss
from vssd_harness import Checks, Vssd, make_data


def same_tree(a, b):
    c = filecmp.dircmp(a, b)
    if c.left_only or c.right_only or c.diff_files or c.funny_files:
        return False
    return all(same_tree(os.path.join(a, d), os.path.join(b, d)) for d in c.common_dirs)


def events(log, name):
    with open(log) as f:
        return [line.split(None, 1)[1].strip() for line in f if line.split()[0] == name]


def backup(check, h, data, store):
    with openvss.Backup(h.socket) as b:
        b.initialize_for_backup()
        b.set_backup_state(select_components=True, backup_type=openvss.VSS_BT_FULL)
        md = [m for m in b.gather_writer_metadata() if m.name == "pyw"]
        if not check.eq(len(md), 1, "metadata of pyw"):
            return None
        m = md[0]
        check.eq(m.writer_id, openvss.writer_class_id("pyw"), "class id in the metadata")
        check.eq([c["name"] for c in m.components], ["data"], "components")
        check.eq(m.components[0]["files"][0]["path"], data, "file group path")
        b.add_component(m, "data")
        set_id = b.start_snapshot_set()
        shadow = b.add_to_snapshot_set(data)
        b.prepare_for_backup()
        b.do_snapshot_set()
        st = {s.name: s for s in b.gather_writer_status()}
        check.eq(st["pyw"].state_name, "WaitingForBackupComplete", "status after the snapshot")
        p = b.get_snapshot_properties(shadow)
        check.eq(p["original_path"], data, "original path")
        check.eq(p["snapshot_set_id"], set_id, "set id")
        shutil.copytree(p["shadow_path"], store)
        check(same_tree(data, store), "the copy from the shadow equals the data")
        b.set_backup_succeeded(m, "data", True)
        b.backup_complete()
        st = {s.name: s for s in b.gather_writer_status()}
        check.eq((st["pyw"].state_name, st["pyw"].failure_name), ("Stable", "S_OK"), "status after backup-complete")
        doc = b.save_as_document()
        comp = b.document()["components"][0]
        check.eq(comp.get("backup_stamp"), "stamp-1", "the writer's backup stamp in the document")
        # Requester errors are VssError with the code.
        try:
            b.do_snapshot_set()
            check(False, "do_snapshot_set after backup-complete must fail")
        except openvss.VssError as e:
            check.eq(e.name, "VSS_E_BAD_STATE", "error after backup-complete")
        return doc, m, set_id


def restore(check, h, data, store, doc, m, set_id):
    with openvss.Backup(h.socket) as r:
        r.initialize_for_restore(doc)
        # What to restore, from the saved document's records.
        records = [c for c in json.loads(doc)["components"] if c["name"] == "data"]
        check.eq(len(records), 1, "the component's record in the document")
        r.set_selected_for_restore(records[0], "data", True)
        r.pre_restore()
        shutil.rmtree(data)
        shutil.copytree(store, data)
        r.set_file_restore_status(m, "data", openvss.VSS_RS_ALL)
        r.post_restore()
        st = {s.name: s for s in r.gather_writer_status()}
        check.eq(st["pyw"].failure_name, "S_OK", "restore status")


def main():
    check = Checks()
    h = Vssd()
    data = make_data(h, "data")
    log = os.path.join(h.dir, "events")
    store = os.path.join(h.dir, "store")
    h.python_writer("writer.py", "pyw", data, log)

    r = backup(check, h, data, store)
    if r:
        ev = events(log, "pyw")
        check.eq([e.split()[0] for e in ev], ["identify", "prepare-backup", "prepare-snapshot", "freeze", "thaw",
                                              "post-snapshot", "backup-complete", "backup-shutdown"], "backup events")
        check.eq(ev[2:4], ["prepare-snapshot %s" % r[2], "freeze %s" % r[2]], "the set id in the events")
        check.eq(ev[1:2], ["prepare-backup %d data" % openvss.VSS_BT_FULL], "prepare-backup saw the component")
        check.eq(ev[6:7], ["backup-complete stamp-1 True"], "backup-complete saw its stamp and the success")
        original = os.path.join(h.dir, "original")
        shutil.copytree(data, original)
        # Damage the data, then restore it.
        os.unlink(os.path.join(data, "a.txt"))
        with open(os.path.join(data, "sub", "b.txt"), "w") as f:
            f.write("changed\n")
        open(log, "w").close()
        restore(check, h, data, store, *r)
        check(same_tree(data, original), "restored data equals the original")
        check.eq(events(log, "pyw")[:2], ["pre-restore data", "post-restore %d" % openvss.VSS_RS_ALL], "restore events")
    h.close()
    if check.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
