# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Python writer for the tests: python3 writer.py NAME DATA LOG

Owns one component, "data", the files of DATA; appends "NAME EVENT" (and what it read of the
backup components document) to LOG for each event. Its Freeze does what LOG.freeze says, read
at each Freeze: "veto" raises WriterFailure(VSS_E_WRITERERROR_RETRYABLE, 42, "disk busy"),
"raise" raises ValueError("boom"), "false" returns False, "set" calls
set_failure(VSS_E_WRITERERROR_OUTOFRESOURCES, 7, "no memory") and returns normally (Microsoft's
documented veto), "sleep" takes 3 s; otherwise it succeeds."""

import os

import sys
import time

import openvss


class TestWriter(openvss.Writer):
    def __init__(self, name, data, log):
        super().__init__(name, usage_type=openvss.VSS_UT_USERDATA, source_type=openvss.VSS_ST_OTHER)
        self.data, self.log = data, log

    def note(self, *words):
        with open(self.log, "a") as f:
            f.write(" ".join([self.name, *map(str, words)]) + "\n")

    def identify(self, md):
        self.note("identify")
        md.add_component("data", caption="test data")
        md.add_files("data", self.data)
        md.set_restore_method(openvss.VSS_RME_RESTORE_IF_CAN_REPLACE)

    def prepare_backup(self, info):
        self.note("prepare-backup", info.backup_type, ",".join(info.components))
        if "data" in info.components:
            self.set_backup_stamp("data", "stamp-1")

    def prepare_snapshot(self, info):
        self.note("prepare-snapshot", info.snapshot_set_id)

    def freeze(self, info):
        self.note("freeze", info.snapshot_set_id)
        what = ""
        if os.path.exists(self.log + ".freeze"):
            with open(self.log + ".freeze") as f:
                what = f.read().strip()
        if what == "veto":
            raise openvss.WriterFailure(openvss.VSS_E_WRITERERROR_RETRYABLE, 42, "disk busy")
        if what == "sleep":
            time.sleep(3)
        if what == "raise":
            raise ValueError("boom")
        if what == "set":
            self.set_failure(openvss.VSS_E_WRITERERROR_OUTOFRESOURCES, 7, "no memory")
            return None
        return what != "false"

    def thaw(self, info):
        self.note("thaw")

    def post_snapshot(self, info):
        self.note("post-snapshot")

    def abort(self, info):
        self.note("abort")

    def backup_complete(self, info):
        c = self.get_component("data")
        self.note("backup-complete", c["backup_stamp"] if c else None, c["backup_succeeded"] if c else None)

    def backup_shutdown(self, info):
        self.note("backup-shutdown")

    def pre_restore(self, info):
        self.note("pre-restore", ",".join(info.components))
        self.set_restore_target("data", openvss.VSS_RT_ORIGINAL)

    def post_restore(self, info):
        c = self.get_component("data")
        self.note("post-restore", c["file_restore_status"] if c else None)


if __name__ == "__main__":
    name, data, log = sys.argv[1:4]
    w = TestWriter(name, data, log)
    sys.exit(w.main())
