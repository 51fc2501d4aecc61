# SPDX-License-Identifier: LGPL-2.1-or-later
"""OpenVSS for Python: writers and requesters over libvss.

A writer subclasses Writer and overrides the events it cares about:

    class MyWriter(openvss.Writer):
        def identify(self, md):
            md.add_component("db", caption="the database")
            md.add_files("db", "/srv/db")
        def freeze(self, info):
            if busy():
                raise openvss.WriterFailure(openvss.VSS_E_WRITERERROR_RETRYABLE, 42, "busy")

    MyWriter("my-writer").main()

A requester drives a Backup session: see Backup and Backup.simple_backup().
"""

import json
import os
import sys
import uuid

from . import _vss
from ._vss import VssError

__all__ = ["Writer", "WriterFailure", "VssError", "Backup", "WriterMetadata", "WriterStatus", "EventInfo",
           "writer_class_id", "WRITER_CLASS_NAMESPACE", "error_name", "strerror", "writer_state_name"]

# Writer class ids derived from names are uuid5(WRITER_CLASS_NAMESPACE, name), the namespace
# being uuid5(NAMESPACE_URL, "urn:openvss:writer-class"): libvss computes the same in C.
WRITER_CLASS_NAMESPACE = uuid.UUID("e2466cdd-02d9-58bb-a306-d2cf7a0ac02d")


def writer_class_id(name):
    """The class id libvss gives a writer named name that sets none (a uuid.UUID)."""
    return uuid.uuid5(WRITER_CLASS_NAMESPACE, name)


error_name = _vss.error_name
strerror = _vss.strerror
writer_state_name = _vss.writer_state_name


def _s32(x):
    return x - (1 << 32) if x & 0x80000000 else x


# Codes (<vss/types.h>), as negative int32 like libvss returns them.
VSS_S_OK = 0
VSS_E_UNEXPECTED = _s32(0x8000FFFF)
VSS_E_ABORT = _s32(0x80004004)
VSS_E_ACCESSDENIED = _s32(0x80070005)
VSS_E_OUTOFMEMORY = _s32(0x8007000E)
VSS_E_INVALIDARG = _s32(0x80070057)
VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT = _s32(0x800423F0)
VSS_E_WRITERERROR_OUTOFRESOURCES = _s32(0x800423F1)
VSS_E_WRITERERROR_TIMEOUT = _s32(0x800423F2)
VSS_E_WRITERERROR_RETRYABLE = _s32(0x800423F3)
VSS_E_WRITERERROR_NONRETRYABLE = _s32(0x800423F4)
VSS_E_WRITERERROR_RECOVERY_FAILED = _s32(0x800423F5)
VSS_E_WRITERERROR_PARTIAL_FAILURE = _s32(0x80042336)
VSS_E_WRITER_NOT_RESPONDING = _s32(0x80042319)
VSS_E_BAD_STATE = _s32(0x80042301)
VSS_E_PROVIDER_VETO = _s32(0x80042306)
VSS_E_OBJECT_NOT_FOUND = _s32(0x80042308)
VSS_E_VOLUME_NOT_SUPPORTED = _s32(0x8004230C)
VSS_E_OBJECT_ALREADY_EXISTS = _s32(0x8004230D)
VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER = _s32(0x8004230E)
VSS_E_INVALID_XML_DOCUMENT = _s32(0x80042311)
VSS_E_SNAPSHOT_SET_IN_PROGRESS = _s32(0x80042316)
VSS_E_WRITER_INFRASTRUCTURE = _s32(0x80042318)
VSS_E_INSUFFICIENT_STORAGE = _s32(0x8004231F)

# Writer states.
(VSS_WS_UNKNOWN, VSS_WS_STABLE, VSS_WS_WAITING_FOR_FREEZE, VSS_WS_WAITING_FOR_THAW,
 VSS_WS_WAITING_FOR_POST_SNAPSHOT, VSS_WS_WAITING_FOR_BACKUP_COMPLETE, VSS_WS_FAILED_AT_IDENTIFY,
 VSS_WS_FAILED_AT_PREPARE_BACKUP, VSS_WS_FAILED_AT_PREPARE_SNAPSHOT, VSS_WS_FAILED_AT_FREEZE,
 VSS_WS_FAILED_AT_THAW, VSS_WS_FAILED_AT_POST_SNAPSHOT, VSS_WS_FAILED_AT_BACKUP_COMPLETE,
 VSS_WS_FAILED_AT_PRE_RESTORE, VSS_WS_FAILED_AT_POST_RESTORE, VSS_WS_FAILED_AT_BACKUP_SHUTDOWN) = range(16)
# Backup types, application levels, usage and source types, restore methods and targets, file
# restore status, writer restore.
(VSS_BT_UNDEFINED, VSS_BT_FULL, VSS_BT_INCREMENTAL, VSS_BT_DIFFERENTIAL, VSS_BT_LOG, VSS_BT_COPY,
 VSS_BT_OTHER) = range(7)
VSS_APP_FRONT_END, VSS_APP_BACK_END, VSS_APP_SYSTEM = range(3)
VSS_UT_UNDEFINED, VSS_UT_BOOTABLESYSTEMSTATE, VSS_UT_SYSTEMSERVICE, VSS_UT_USERDATA, VSS_UT_OTHER = range(5)
VSS_ST_UNDEFINED, VSS_ST_TRANSACTEDDB, VSS_ST_NONTRANSACTEDDB, VSS_ST_OTHER = range(4)
(VSS_RME_UNDEFINED, VSS_RME_RESTORE_IF_NOT_THERE, VSS_RME_RESTORE_IF_CAN_REPLACE, VSS_RME_STOP_RESTORE_START,
 VSS_RME_RESTORE_TO_ALTERNATE_LOCATION, VSS_RME_RESTORE_AT_REBOOT, VSS_RME_RESTORE_AT_REBOOT_IF_CANNOT_REPLACE,
 VSS_RME_CUSTOM, VSS_RME_RESTORE_STOP_START) = range(9)
VSS_RT_UNDEFINED, VSS_RT_ORIGINAL, VSS_RT_ALTERNATE, VSS_RT_DIRECTED, VSS_RT_ORIGINAL_LOCATION = range(5)
VSS_RS_UNDEFINED, VSS_RS_NONE, VSS_RS_ALL, VSS_RS_FAILED = range(4)
VSS_WRE_UNDEFINED, VSS_WRE_NEVER, VSS_WRE_IF_REPLACE_FAILS, VSS_WRE_ALWAYS = range(4)
# Snapshot contexts and attributes.
VSS_CTX_BACKUP = 0x00
VSS_CTX_FILE_SHARE_BACKUP = 0x10
VSS_CTX_NAS_ROLLBACK = 0x19
VSS_CTX_APP_ROLLBACK = 0x09
VSS_CTX_CLIENT_ACCESSIBLE = 0x1d
VSS_CTX_CLIENT_ACCESSIBLE_WRITERS = 0x0d
VSS_CTX_ALL = 0xffffffff
VSS_VOLSNAP_ATTR_PERSISTENT = 0x1
OPENVSS_ATTR_NOT_ATOMIC = 0x20000000
OPENVSS_ATTR_NOT_POINT_IN_TIME = 0x40000000


class WriterFailure(Exception):
    """Raise (or return) from a writer event to fail it: failure is a VSS_E_WRITERERROR_* code,
    code and message the application's own, shown to requesters and in `vssadmin list writers`."""

    def __init__(self, failure=VSS_E_WRITERERROR_NONRETRYABLE, code=0, message=""):
        super().__init__(failure, code, message)
        self.failure, self.code, self.message = failure, code, message

    def __str__(self):
        return "%s (%d): %s" % (error_name(self.failure) or hex(self.failure & 0xffffffff), self.code, self.message)


class EventInfo:
    """What a writer event may read about the request: event ("freeze", ...), snapshot_set_id
    (uuid.UUID or None), backup_type, component_mode, components (logical paths selected);
    in a backup's events, partial_file_support and bootable_system_state (the requester's
    settings), context (its VSS_CTX_* with attributes: CVssWriter::GetContext), session_id
    (uuid.UUID, None in identify: for diagnostics) and, from prepare-snapshot, volumes (the set's
    paths the writer may see)."""

    def __init__(self, d):
        self.event = d["event"]
        self.snapshot_set_id = uuid.UUID(d["snapshot_set_id"]) if d["snapshot_set_id"] else None
        self.backup_type = d["backup_type"]
        self.component_mode = d["component_mode"]
        self.components = d["components"]
        self.partial_file_support = d["partial_file_support"]
        self.bootable_system_state = d["bootable_system_state"]
        self.context = d["context"]
        self.session_id = uuid.UUID(d["session_id"]) if d["session_id"] else None
        self.volumes = d["volumes"]

    def is_path_affected(self, path):
        """Whether path (absolute), or something below it, is in the snapshot set:
        CVssWriter::IsPathAffected."""
        p = os.path.normpath(path)
        for v in self.volumes:
            v = os.path.normpath(v)
            if p == v or p.startswith(v.rstrip("/") + "/") or v.startswith(p.rstrip("/") + "/"):
                return True
        return False

    def __repr__(self):
        return "EventInfo(%r, set=%s, components=%r)" % (self.event, self.snapshot_set_id, self.components)


_EVENT_METHODS = {
    "prepare-backup": "prepare_backup", "prepare-snapshot": "prepare_snapshot", "freeze": "freeze", "thaw": "thaw",
    "post-snapshot": "post_snapshot", "abort": "abort", "backup-complete": "backup_complete",
    "backup-shutdown": "backup_shutdown", "pre-restore": "pre_restore", "post-restore": "post_restore",
}


class _Handle:
    """close() and `with` for the classes over a _vss handle."""

    def close(self):
        """Frees the handle: a writer unsubscribes (aborting a freeze in progress), a session ends."""
        self._h.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Writer(_Handle):
    """A writer: subclass it and override identify(md) and the event methods, each taking an
    EventInfo: prepare_backup, prepare_snapshot, freeze, thaw, post_snapshot, abort,
    backup_complete, backup_shutdown, pre_restore, post_restore. An event succeeds unless its
    method raises (WriterFailure: that failure; any other exception: NONRETRYABLE with the
    exception as message), returns False or a WriterFailure, or calls set_failure().

    Events run on the thread calling run(), main() or dispatch()."""

    def __init__(self, name, class_id=None, instance_id=None, instance_name=None,
                 usage_type=VSS_UT_UNDEFINED, source_type=VSS_ST_UNDEFINED, app_level=VSS_APP_FRONT_END,
                 freeze_window_ms=0):
        self._h = _vss.WriterHandle(self, name, class_id, instance_id, instance_name, usage_type, source_type,
                                    app_level, freeze_window_ms)
        opts = self._h.options()
        self.name = name
        self.class_id = uuid.UUID(opts["class_id"])
        self.instance_id = uuid.UUID(opts["instance_id"])

    # Events: override these.
    def identify(self, md):
        pass

    # The callbacks of _vss.WriterHandle.
    def _on_identify(self, md):
        return self._call(self.identify, md)

    def _on_event(self, event, info):
        method = getattr(self, _EVENT_METHODS[event], None)
        return self._call(method, EventInfo(info)) if method else True

    def _call(self, method, arg):
        try:
            r = method(arg)
        except WriterFailure as f:
            r = f
        except Exception as e:  # a writer must answer: any error fails the event, said
            print("%s: %s failed: %r" % (self.name, getattr(method, "__name__", "event"), e), file=sys.stderr)
            r = WriterFailure(VSS_E_WRITERERROR_NONRETRYABLE, 0, "%s: %s" % (type(e).__name__, e))
        if isinstance(r, WriterFailure):
            self._h.set_failure(r.failure, r.code, r.message)
            return False
        return r is not False

    # Running.
    def subscribe(self, socket=None):
        """Connects to vssd (socket None: $VSS_SOCKET or /run/openvss/vssd.sock) and registers."""
        self._h.subscribe(socket)

    def unsubscribe(self):
        self._h.unsubscribe()

    def run(self):
        """Dispatches events until exit() (from an event method) or the connection is lost
        (VssError). Signals wait until it returns: a program uses main(), which ends on
        SIGTERM and SIGINT."""
        self._h.run()

    def main(self, socket=None, prog=None):
        """The main loop of a writer program: subscribes and dispatches until SIGTERM/SIGINT;
        returns an exit status (0, or 1 when vssd cannot be reached or the connection is lost)."""
        return self._h.main(socket, prog or self.name)

    def exit(self):
        """Makes run() return after the current event."""
        self._h.exit()

    def fileno(self):
        """For embedding in a loop of one's own: after subscribe(), call dispatch() once (the fd
        shows nothing before), then poll this fd for input with a timeout and call dispatch()
        after each wake-up, the timeout's too (it also runs the writer's timers)."""
        return self._h.get_fd()

    def dispatch(self):
        """Handles what is pending, runs due events' methods; never blocks."""
        self._h.dispatch()

    @property
    def frozen(self):
        return self._h.is_frozen()

    def set_failure(self, failure, code=0, message=None):
        """The failure of the current event, whatever the method returns (an alternative to
        raising WriterFailure)."""
        self._h.set_failure(failure, code, message)

    # The backup components document, during an event.
    def get_component(self, name, logical_path=""):
        """The record of a selected component (a dict), or None."""
        return self._h.get_component(logical_path, name)

    def set_backup_stamp(self, name, stamp, logical_path=""):
        self._h.set_backup_stamp(logical_path, name, stamp)

    def add_backup_files(self, name, path, stored_as, filespec=None, recursive=True, logical_path=""):
        self._h.add_backup_files(logical_path, name, path, filespec, recursive, stored_as)

    def set_restore_target(self, name, target, logical_path=""):
        self._h.set_restore_target(logical_path, name, target)

    def set_pre_restore_failure_msg(self, name, message, logical_path=""):
        self._h.set_pre_restore_failure_msg(logical_path, name, message)

    def set_post_restore_failure_msg(self, name, message, logical_path=""):
        self._h.set_post_restore_failure_msg(logical_path, name, message)


class WriterMetadata:
    """A writer's metadata document (docs/writer-metadata-document.md): .document is the parsed
    JSON; name, writer_id, instance_id and components are at hand."""

    def __init__(self, text):
        self.text = text
        self.document = json.loads(text)
        self.name = self.document["name"]
        self.writer_id = uuid.UUID(self.document["writer_id"])
        self.instance_id = uuid.UUID(self.document["instance_id"])
        self.components = self.document.get("components", [])

    def __repr__(self):
        return "WriterMetadata(%r, %s)" % (self.name, self.instance_id)


class WriterStatus:
    """One writer's status in a session."""

    def __init__(self, d):
        self.name = d["name"]
        self.writer_id = uuid.UUID(d["writer_id"])
        self.instance_id = uuid.UUID(d["instance_id"])
        self.state = d["state"]
        self.state_name = writer_state_name(self.state)
        self.failure = d["failure"]
        self.failure_name = error_name(self.failure)
        self.application_code = d["application_code"]
        self.application_message = d["application_message"]
        self.note = d["note"]

    def __repr__(self):
        return "WriterStatus(%r, %s, %s, %d, %r)" % (self.name, self.state_name, self.failure_name,
                                                      self.application_code, self.application_message)


def _component(writer, name, logical_path):
    """The ids of writer: a WriterMetadata, a record of a document's "components" (a dict with
    "instance_id" and "writer_id"), or a pair (instance_id, writer_id)."""
    if isinstance(writer, WriterMetadata):
        return (str(writer.instance_id), str(writer.writer_id), logical_path, name)
    if isinstance(writer, dict):
        return (str(writer["instance_id"]), str(writer["writer_id"]), logical_path, name)
    iid, wid = writer
    return (str(iid), str(wid), logical_path, name)


class Operation:
    """A long operation of a Backup under way (Backup.begin()): wait(), query(), cancel()."""

    def __init__(self, handle):
        self._a = handle

    def wait(self, timeout=None):
        """True once finished, False when timeout (seconds) passed first. Raises VssError for
        its failure, VSS_E_ABORT when it was cancelled."""
        return self._a.wait(-1 if timeout is None else int(timeout * 1000))

    def query(self):
        """VSS_S_ASYNC_PENDING, VSS_S_ASYNC_FINISHED, VSS_S_ASYNC_CANCELLED or the failure."""
        return self._a.query()

    def cancel(self):
        """An in-flight snapshot set is aborted: 0 (VSS_S_ASYNC_CANCELLED when cancelled before).
        Any other operation cannot be cancelled: this waits for its end. VSS_S_ASYNC_FINISHED or
        its failure when it was over (or is now)."""
        return self._a.cancel()


VSS_S_ASYNC_PENDING = 0x00042309
VSS_S_ASYNC_FINISHED = 0x0004230A
VSS_S_ASYNC_CANCELLED = 0x0004230B

# Pause points of Backup.begin_snapshot_set_paused() (<vss/backup.h> VSS_PAUSE_*).
PAUSE_BEFORE_FREEZE = 0x1
PAUSE_BEFORE_COMMIT = 0x2


class Backup(_Handle):
    """A requester's session in vssd (the IVssBackupComponents role), for one backup or one
    restore. Failures raise VssError (.code, .name, .message). Close it (or use `with`): vssd
    then ends the session, deleting auto-release shadows.

    The long operations (gather_writer_metadata, prepare_for_backup, do_snapshot_set,
    backup_complete, pre_restore, post_restore, gather_writer_status) block; Ctrl-C
    (KeyboardInterrupt) cancels them first. begin(NAME) starts one without waiting (an Operation).

    Backup: initialize_for_backup, set_backup_state, gather_writer_metadata, (add_component),
    start_snapshot_set, add_to_snapshot_set, prepare_for_backup, do_snapshot_set (or
    begin_snapshot_set_paused, wait_paused, continue_snapshot_set), get_snapshot_properties
    (copy the shadows' files), set_backup_succeeded, backup_complete, save_as_document.
    Restore: initialize_for_restore(document), set_selected_for_restore, pre_restore (copy the
    files back), set_file_restore_status, post_restore. Any time: gather_writer_status /
    writer_status."""

    def __init__(self, socket=None):
        self._h = _vss.BackupHandle(socket)

    def begin(self, operation):
        """Starts a long operation by name ("do_snapshot_set", ...); returns its Operation."""
        return Operation(self._h.begin(operation))

    def _run(self, operation):
        op = self._h.begin(operation)
        try:
            # In slices, so a signal (Ctrl-C) is seen while vssd works.
            while not op.wait(200):
                pass
        except KeyboardInterrupt:
            op.cancel()
            try:
                op.wait(-1)
            except VssError:
                pass
            raise

    @property
    def session_id(self):
        return uuid.UUID(self._h.session_id())

    def initialize_for_backup(self):
        self._h.initialize_for_backup()

    def initialize_for_restore(self, document=None):
        """document: the text save_as_document() returned for the backup restored."""
        self._h.initialize_for_restore(document)

    def save_as_document(self):
        """The backup components document (JSON text): store it with the backup."""
        return self._h.save_as_document()

    def document(self):
        return json.loads(self._h.save_as_document())

    def set_context(self, context):
        self._h.set_context(context)

    def set_backup_state(self, select_components=False, bootable_system_state=False, backup_type=VSS_BT_FULL,
                         partial_file_support=False):
        self._h.set_backup_state(select_components, bootable_system_state, backup_type, partial_file_support)

    def gather_writer_metadata(self):
        """Identify to every writer; returns their WriterMetadata list."""
        self._run("gather_writer_metadata")
        return self.metadata

    @property
    def metadata(self):
        return [WriterMetadata(t) for t in self._h.metadata()]

    def add_component(self, writer, name, logical_path=""):
        self._h.add_component(*_component(writer, name, logical_path))

    def start_snapshot_set(self):
        return uuid.UUID(self._h.start_snapshot_set())

    def add_to_snapshot_set(self, path, provider=None):
        return uuid.UUID(self._h.add_to_snapshot_set(path, provider))

    def prepare_for_backup(self):
        self._run("prepare_for_backup")

    def do_snapshot_set(self):
        self._run("do_snapshot_set")

    def begin_snapshot_set_paused(self, flags=PAUSE_BEFORE_FREEZE | PAUSE_BEFORE_COMMIT):
        """do_snapshot_set pausing at each point in flags: PAUSE_BEFORE_FREEZE (PrepareForSnapshot
        done, no Freeze yet), PAUSE_BEFORE_COMMIT (every writer frozen, no provider commit yet; the
        freeze windows keep running, and a set paused past one aborts). Returns its Operation.
        wait_paused() learns each pause, continue_snapshot_set() goes on, abort_backup() (or the
        Operation's cancel()) aborts: Abort to the writers, nothing kept."""
        return Operation(self._h.begin_paused(flags))

    def wait_paused(self, timeout=None):
        """Once the set is paused: (point, seconds_left), point a PAUSE_* and seconds_left what
        is left of the first running freeze window (None when none runs). (0, None) when the set
        ended without pausing again (its result: the Operation's wait()). None when timeout
        (seconds) passed first."""
        if timeout is None:
            # In slices, so a signal (Ctrl-C) is seen while the set runs.
            while (r := self._h.wait_paused(200)) is None:
                pass
        else:
            r = self._h.wait_paused(int(timeout * 1000))
        if r is None:
            return None
        point, left = r
        return point, (None if left == 2**64 - 1 else left / 1e6)

    def continue_snapshot_set(self):
        """The paused set goes on to its next pause point or its end."""
        self._h.continue_snapshot_set()

    def get_snapshot_properties(self, shadow_id):
        p = self._h.get_snapshot_properties(str(shadow_id))
        for k in ("shadow_id", "snapshot_set_id"):
            p[k] = uuid.UUID(p[k])
        return p

    def set_backup_succeeded(self, writer, name, succeeded=True, logical_path=""):
        self._h.set_backup_succeeded(*_component(writer, name, logical_path), succeeded)

    def backup_complete(self):
        self._run("backup_complete")

    def abort_backup(self):
        self._h.abort_backup()

    def set_backup_options(self, writer, name, options, logical_path=""):
        self._h.set_backup_options(*_component(writer, name, logical_path), options)

    def set_previous_backup_stamp(self, writer, name, stamp, logical_path=""):
        self._h.set_previous_backup_stamp(*_component(writer, name, logical_path), stamp)

    def set_selected_for_restore(self, writer, name, selected=True, logical_path=""):
        self._h.set_selected_for_restore(*_component(writer, name, logical_path), selected)

    def set_restore_options(self, writer, name, options, logical_path=""):
        self._h.set_restore_options(*_component(writer, name, logical_path), options)

    def set_additional_restores(self, writer, name, additional, logical_path=""):
        self._h.set_additional_restores(*_component(writer, name, logical_path), additional)

    def add_new_target(self, writer, name, path, destination, filespec=None, recursive=True, logical_path=""):
        self._h.add_new_target(*_component(writer, name, logical_path), path, filespec, recursive, destination)

    def set_file_restore_status(self, writer, name, status, logical_path=""):
        self._h.set_file_restore_status(*_component(writer, name, logical_path), status)

    def pre_restore(self):
        self._run("pre_restore")

    def post_restore(self):
        self._run("post_restore")

    def gather_writer_status(self):
        """Each writer's status in this session (a list of WriterStatus)."""
        self._run("gather_writer_status")
        return self.writer_status

    @property
    def writer_status(self):
        return [WriterStatus(d) for d in self._h.writer_status()]
