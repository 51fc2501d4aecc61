# SPDX-License-Identifier: LGPL-2.1-or-later
"""A writer and a requester in one Python process: the writer embedded in a thread's own poll
loop (fileno() and dispatch()), the requester in the main thread. Neither holds the GIL while
it waits, so a backup goes through."""

import os
import select
import sys
import threading

import openvss
from vssd_harness import Checks, Vssd, make_data


class Embedded(openvss.Writer):
    def __init__(self, data):
        super().__init__("embedded", app_level=openvss.VSS_APP_BACK_END)
        self.data, self.events, self.thread = data, [], threading.current_thread()

    def identify(self, md):
        self.seen("identify")
        md.add_component("data")
        md.add_files("data", self.data)

    def seen(self, event):
        self.events.append((event, threading.current_thread().name))

    def freeze(self, info):
        self.seen("freeze")
        # The requester's settings and the set's volumes (IsPathAffected).
        self.freeze_info = (info.partial_file_support, info.bootable_system_state, info.volumes,
                            info.is_path_affected(os.path.join(self.data, "x")), info.is_path_affected("/elsewhere"),
                            info.context)
        self.session_id = info.session_id

    def thaw(self, info):
        self.seen("thaw")


def loop(w, stop):
    # As <vss/writer.h> embeds: poll (with a timeout), then dispatch, which never blocks.
    while not stop.is_set():
        select.select([w.fileno()], [], [], 0.05)
        w.dispatch()


def main():
    check = Checks()
    h = Vssd()
    data = make_data(h, "data")
    w = Embedded(data)
    w.subscribe(h.socket)
    stop = threading.Event()
    t = threading.Thread(target=loop, args=(w, stop), name="writer-loop")
    t.start()
    try:
        with openvss.Backup(h.socket) as b:
            b.initialize_for_backup()
            b.set_backup_state(partial_file_support=True)
            b.set_context(openvss.VSS_CTX_APP_ROLLBACK)
            check.eq([m.name for m in b.gather_writer_metadata()], ["embedded"], "metadata")
            b.start_snapshot_set()
            b.add_to_snapshot_set(data)
            b.prepare_for_backup()
            b.do_snapshot_set()
            b.backup_complete()
            st = b.gather_writer_status()
            check.eq([(s.name, s.state_name) for s in st], [("embedded", "Stable")], "status")
            session = b.session_id
    finally:
        stop.set()
        t.join()
    check.eq(w.events, [("identify", "writer-loop"), ("freeze", "writer-loop"), ("thaw", "writer-loop")],
             "events, on the writer's thread")
    check.eq(w.freeze_info, (True, False, [os.path.realpath(data)], True, False, openvss.VSS_CTX_APP_ROLLBACK), "settings and volumes at freeze")
    check.eq(w.session_id, session, "the requester's session id at freeze")
    w.close()
    h.close()
    if check.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
