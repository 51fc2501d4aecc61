/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <vss/backup.h> — the requester face of libvss: the IVssBackupComponents role with C names.
 *
 * One vss_backup is one session in vssd, used for one backup (or one restore). The session
 * belongs to this handle's connection: nobody else can see or drive it, and when the handle is
 * released (or the process dies) vssd ends it: frozen writers get Abort, every writer of the
 * session gets BackupShutdown, auto-release shadows are deleted.
 *
 * Every function returns >= 0 on success or a negative HRESULT (see <vss/types.h>, also for
 * lifetimes), and keeps a readable message for the last failure in vss_backup_errmsg(). Long
 * operations return a vss_async handle; the *_sync wrappers wait for it.
 *
 * Errors common to every call that reaches vssd ("the session errors" below):
 *   VSS_E_INVALIDARG            b or a required argument NULL, or a value vssd refuses (too long,
 *                               not absolute, out of range, past a count limit; nothing changed)
 *   VSS_E_BAD_STATE             not allowed in the session's phase (order of IVssBackupComponents)
 *   VSS_E_OBJECT_NOT_FOUND      the session, a writer or component named, or a shadow is unknown
 *   VSS_E_ACCESSDENIED          the caller lacks the right (create, restore, list)
 *   VSS_E_OUTOFMEMORY           memory, or one of vssd's per-client quotas
 *   VSS_E_WRITER_INFRASTRUCTURE the connection to vssd failed or was lost
 *
 * Privilege: root or a member of vssd's backup group (default "vss-backup").
 */

#include <vss/document.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vss_backup vss_backup;
typedef struct vss_async vss_async;

/* One writer's status in this session. Strings are owned by the vss_backup until
 * vss_backup_free_writer_status() or the next gather. */
typedef struct vss_writer_status {
        vss_id instance_id;
        vss_id writer_id;
        const char *name;
        vss_writer_state state;
        int32_t failure;            /* VSS_S_OK or a VSS_E_WRITER* code */
        int32_t application_code;
        const char *application_message;
        const char *note;           /* "" or e.g. "in progress: freeze since 2026-…", "aborted" */
} vss_writer_status;

typedef struct vss_snapshot_prop {
        vss_id shadow_id;
        vss_id snapshot_set_id;
        char original_path[4096];
        char shadow_path[4096];
        char provider[64];
        uint64_t created_usec;      /* CLOCK_REALTIME */
        uint32_t attributes;        /* VSS_VOLSNAP_ATTR_* */
} vss_snapshot_prop;

/* Connects to vssd (socket_path NULL: $VSS_SOCKET or /run/openvss/vssd.sock) and opens a session.
 * Errors: VSS_E_INVALIDARG (ret NULL), VSS_E_OUTOFMEMORY, VSS_E_WRITER_INFRASTRUCTURE (vssd
 * cannot be reached, or the socket's listener is neither root nor this user), VSS_E_ACCESSDENIED
 * (neither the create nor the restore right), VSS_E_OUTOFMEMORY (too many sessions). */
VSS_EXPORT int vss_backup_new(const char *socket_path, vss_backup **ret);
/* Releases the session (BackupShutdown to its writers; returns once they answered, bounded by
 * vssd) and frees, with all it returned; operations still open end with VSS_E_ABORT. Accepts
 * NULL; returns NULL. */
VSS_EXPORT vss_backup *vss_backup_free(vss_backup *b);
/* The name before 0.2: the same function as vss_backup_free(). */
VSS_EXPORT vss_backup *vss_backup_release(vss_backup *b);
/* The last failure's message ("" after none); never NULL ("no session" for b NULL). */
VSS_EXPORT const char *vss_backup_errmsg(vss_backup *b);
/* The session's id. Errors: VSS_E_INVALIDARG. */
VSS_EXPORT int vss_backup_get_session_id(vss_backup *b, vss_id *ret);

/* Starts a backup (first call of a session). Errors: the session errors. */
VSS_EXPORT int vss_backup_initialize_for_backup(vss_backup *b);
/* Starts a restore. document: the backup components document saved by the backup being
 * restored, or NULL to address the writers that run now without one (checked here first: a bad
 * one fails with VSS_E_INVALID_XML_DOCUMENT, as in VSS, its message naming the field, and
 * nothing is sent). A restore session refuses SetBackupState and AddComponent (VSS_E_BAD_STATE):
 * its backup type and components are the document's. Errors: the session
 * errors. */
VSS_EXPORT int vss_backup_initialize_for_restore(vss_backup *b, const char *document);
/* The session's backup components document as JSON (malloc'd, the caller frees): after
 * gathering metadata in a backup, any time in a restore. Save it with the backup's data.
 * Errors: the session errors; VSS_E_UNEXPECTED (vssd's answer was malformed). */
VSS_EXPORT int vss_backup_save_as_document(vss_backup *b, char **ret);
/* The same, parsed (the caller's: vss_backup_document_free()). Errors: as save_as_document. */
VSS_EXPORT int vss_backup_get_document(vss_backup *b, vss_backup_document **ret);
/* VSS_CTX_*; default VSS_CTX_BACKUP (auto-release shadows). Before start_snapshot_set, once. A
 * context without writers (VSS_CTX_FILE_SHARE_BACKUP, _NAS_ROLLBACK, _CLIENT_ACCESSIBLE) needs no
 * gather_writer_metadata or prepare_for_backup (start_snapshot_set right after initialization,
 * do_snapshot_set right after adding volumes) and refuses add_component, prepare_for_backup and
 * backup_complete with VSS_E_BAD_STATE, as VSS does. With writers a set may have no volumes: the
 * writers quiesce and nothing is cut. Errors: the session errors. */
VSS_EXPORT int vss_backup_set_context(vss_backup *b, uint32_t context);
/* Component mode, bootable system state, backup type, partial files. Errors: the session errors. */
VSS_EXPORT int vss_backup_set_backup_state(vss_backup *b, bool select_components, bool bootable_system_state,
                                           vss_backup_type type, bool partial_file_support);

/* Asynchronous operations and their *_sync forms. Starting fails with VSS_E_INVALIDARG (b or ret
 * NULL), VSS_E_BAD_STATE (eight operation handles open) or VSS_E_OUTOFMEMORY; the operation's
 * result (vss_async_wait(), the _sync form) is 0 or the session errors, a writer's or provider's
 * failure where the operation says, VSS_E_ABORT when it was cancelled or the handle released. */

/* Identify every subscribed writer. Afterwards the metadata of those that answered. */
VSS_EXPORT int vss_backup_gather_writer_metadata(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_gather_writer_metadata_sync(vss_backup *b);
/* The metadata gathered (the handle's, until the next gather); 0 and NULL past the end or for b
 * NULL (no other failure). */
VSS_EXPORT size_t vss_backup_metadata_count(vss_backup *b);
VSS_EXPORT const vss_writer_metadata *vss_backup_metadata_get(vss_backup *b, size_t i);

/* Component mode: select a component of a writer for this backup. Errors: the session errors. */
VSS_EXPORT int vss_backup_add_component(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                        const char *logical_path, const char *name);

/* Starts the snapshot set; its id in *ret_set_id (optional). Errors: the session errors;
 * VSS_E_SNAPSHOT_SET_IN_PROGRESS. */
VSS_EXPORT int vss_backup_start_snapshot_set(vss_backup *b, vss_id *ret_set_id);
/* provider: a name from `vssadmin list providers`, or NULL to choose by the path. The shadow's id
 * in *ret_shadow_id (optional). Errors: the session errors; VSS_E_VOLUME_NOT_SUPPORTED (no
 * provider for the path), VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED (64), VSS_E_OBJECT_NOT_FOUND
 * (no such path or provider). */
VSS_EXPORT int vss_backup_add_to_snapshot_set(vss_backup *b, const char *path, const char *provider,
                                              vss_id *ret_shadow_id);

/* PrepareForBackup to the writers; a writer's veto is its failure code. */
VSS_EXPORT int vss_backup_prepare_for_backup(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_prepare_for_backup_sync(vss_backup *b);
/* PrepareForSnapshot, Freeze, the shadows, Thaw, PostSnapshot. Results besides the session
 * errors: a writer's failure, VSS_E_PROVIDER_VETO, VSS_E_UNEXPECTED_PROVIDER_ERROR,
 * VSS_E_INSUFFICIENT_STORAGE, VSS_E_FLUSH_WRITES_TIMEOUT, VSS_E_HOLD_WRITES_TIMEOUT,
 * VSS_E_WRITERERROR_TIMEOUT; a failed set is aborted (nothing kept). */
VSS_EXPORT int vss_backup_do_snapshot_set(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_do_snapshot_set_sync(vss_backup *b);

/* A snapshot set that pauses (0.3), so that a requester can line up the cut with others (a
 * cluster set: every writer on every host frozen at one instant). The set stops at each point
 * named in flags, and goes on only when the requester continues it:
 *   wait_paused     ... the set is paused at VSS_PAUSE_BEFORE_FREEZE
 *   (gather status: writers WaitingForFreeze)  continue_snapshot_set
 *   wait_paused     ... the set is paused at VSS_PAUSE_BEFORE_COMMIT
 *   (gather status: writers WaitingForThaw)    continue_snapshot_set
 *   wait_paused     ... 0: the set ended; vss_async_wait() gives its result.
 * While paused, vss_backup_abort_backup() or vss_async_cancel() aborts the set: Abort to every
 * writer that got PrepareForSnapshot, nothing kept, the do-snapshot-set's result VSS_E_ABORT (or
 * VSS_S_ASYNC_CANCELLED for the cancelled handle). The freeze windows keep running while paused
 * before the commit: a set paused past the smallest window of its frozen writers aborts as a
 * window exceeded during the commit does (VSS_E_WRITERERROR_TIMEOUT, the writer FailedAtFreeze).
 * A frozen writer lost while paused aborts the set at once. A requester that dies (or frees the
 * handle) while paused ends the session as at any other time: Abort, nothing kept. */

/* Pause points of a snapshot set (flags of vss_backup_do_snapshot_set_paused). */
#define VSS_PAUSE_BEFORE_FREEZE 0x1u /* PrepareForSnapshot done (and the file provider's copy-ahead), no Freeze sent yet */
#define VSS_PAUSE_BEFORE_COMMIT 0x2u /* every writer frozen, no provider commit yet; freeze windows keep running */

/* As vss_backup_do_snapshot_set(), pausing at each point named in flags (0 = no pause = the
 * plain call). Errors: as do_snapshot_set; VSS_E_INVALIDARG for unknown flag bits. */
VSS_EXPORT int vss_backup_do_snapshot_set_paused(vss_backup *b, uint32_t flags, vss_async **ret);
/* Waits up to timeout_ms (<0: forever) until the set in flight has paused: *ret_point is the point
 * (VSS_PAUSE_*), *ret_usec_left (optional) the microseconds until the first running freeze window
 * of a writer of the set expires (UINT64_MAX when none runs). Returns 0 with *ret_point 0 when the
 * operation ended without pausing again (its result: vss_async_wait()). VSS_S_ASYNC_PENDING when
 * the timeout passed first. Errors: the session errors; VSS_E_BAD_STATE (no paused-capable
 * do-snapshot-set in flight). */
VSS_EXPORT int vss_backup_wait_paused(vss_backup *b, int timeout_ms, uint32_t *ret_point, uint64_t *ret_usec_left);
/* Continues a paused set to its next pause point or its end. Errors: the session errors;
 * VSS_E_BAD_STATE (not paused). */
VSS_EXPORT int vss_backup_continue_snapshot_set(vss_backup *b);
/* For a requester that waits on more than vssd (poll(2) beside its other fds, an event loop)
 * (0.3): returns the descriptor of b's connection to vssd, with the poll(2) events to wait for in
 * *ret_events and, in *ret_timeout_ms, how long at most to wait before calling into libvss again
 * (0: something has arrived already and waits to be taken; -1: no limit). Once it is ready (or the
 * timeout passed), vss_async_wait(a, 0), vss_async_query() or vss_backup_wait_paused(b, 0, ...)
 * take what vssd sent without blocking (vss_backup_wait_paused(b, 0, ...) first asks vssd, so call
 * it once before the first wait). Ask again before every wait: the events and the timeout
 * change with what is in flight. The descriptor stays b's: never read, write or close it. Errors:
 * VSS_E_INVALIDARG; VSS_E_WRITER_INFRASTRUCTURE when the connection is gone. */
VSS_EXPORT int vss_backup_get_fd(vss_backup *b, short *ret_events, int *ret_timeout_ms);
/* A shadow copy of this set (or, with the list right, any). Errors: the session errors
 * (VSS_E_OBJECT_NOT_FOUND: no such shadow copy), VSS_E_UNEXPECTED. */
VSS_EXPORT int vss_backup_get_snapshot_properties(vss_backup *b, const vss_id *shadow_id, vss_snapshot_prop *ret);

/* Records whether the requester stored a component's data. Errors: the session errors. */
VSS_EXPORT int vss_backup_set_backup_succeeded(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                               const char *logical_path, const char *name, bool succeeded);
/* BackupComplete to the writers. */
VSS_EXPORT int vss_backup_backup_complete(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_backup_complete_sync(vss_backup *b);
/* Per-component settings of the document. Backup (after gathering metadata, before PrepareForBackup):
 * backup options and the previous backup's stamp, which writers read. Restore (before PreRestore):
 * selected for restore, restore options, additional restores and new targets. Between PreRestore and
 * PostRestore: the file restore status. Other times fail with VSS_E_BAD_STATE. Errors: the
 * session errors. */
VSS_EXPORT int vss_backup_set_backup_options(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                             const char *logical_path, const char *name, const char *options);
VSS_EXPORT int vss_backup_set_previous_backup_stamp(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                    const char *logical_path, const char *name, const char *stamp);
VSS_EXPORT int vss_backup_set_selected_for_restore(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                   const char *logical_path, const char *name, bool selected);
VSS_EXPORT int vss_backup_set_restore_options(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                              const char *logical_path, const char *name, const char *options);
VSS_EXPORT int vss_backup_set_additional_restores(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                  const char *logical_path, const char *name, bool additional);
VSS_EXPORT int vss_backup_add_new_target(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                         const char *logical_path, const char *name, const char *path,
                                         const char *filespec, bool recursive, const char *destination);
VSS_EXPORT int vss_backup_set_file_restore_status(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                  const char *logical_path, const char *name,
                                                  vss_file_restore_status status);

/* Aborts the backup, as IVssBackupComponents::AbortBackup. Returns 0 in every phase after
 * initialization, VSS_E_BAD_STATE only before it. With nothing under way (before a snapshot set
 * is started, after BackupComplete, in a restore, or after a failed do-snapshot-set, which
 * aborted the set already) it is ignored. Otherwise the set's shadows are deleted and every
 * writer that took part gets Abort (returns once they answered; none that had PostSnapshot); a
 * do-snapshot-set in flight is aborted at once and returns VSS_E_ABORT; during
 * prepare-for-backup the Abort follows its end. Afterwards the session accepts only status,
 * save-as-document and release. Errors: VSS_E_BAD_STATE (before initialization), the session
 * errors otherwise (VSS_E_INVALIDARG for b NULL, a lost connection). */
VSS_EXPORT int vss_backup_abort_backup(vss_backup *b);

/* Restore: PreRestore and PostRestore to the session's writers; a writer's veto is its failure. */
VSS_EXPORT int vss_backup_pre_restore(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_pre_restore_sync(vss_backup *b);
VSS_EXPORT int vss_backup_post_restore(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_post_restore_sync(vss_backup *b);

/* Each writer's status in this session. */
VSS_EXPORT int vss_backup_gather_writer_status(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_gather_writer_status_sync(vss_backup *b);
/* The status gathered; 0 for b NULL. */
VSS_EXPORT size_t vss_backup_writer_status_count(vss_backup *b);
/* Copies status i into *ret (its strings stay the handle's). Errors: VSS_E_INVALIDARG,
 * VSS_E_OBJECT_NOT_FOUND (i past the end). */
VSS_EXPORT int vss_backup_writer_status_get(vss_backup *b, size_t i, vss_writer_status *ret);
/* Forgets the status gathered (its strings), before the handle's _free would. Accepts NULL. */
VSS_EXPORT void vss_backup_writer_status_clear(vss_backup *b);
/* The name before 0.2: the same function as vss_backup_writer_status_clear(). */
VSS_EXPORT void vss_backup_free_writer_status(vss_backup *b);

/* Asynchronous operations. wait: timeout_ms < 0 waits forever; returns the operation's result,
 * or VSS_S_ASYNC_PENDING when the timeout passed first. query: VSS_S_ASYNC_PENDING,
 * VSS_S_ASYNC_FINISHED, VSS_S_ASYNC_CANCELLED or the failure. cancel: a do-snapshot-set in
 * flight is aborted and cancel returns 0; VSS_S_ASYNC_CANCELLED when it was cancelled before,
 * VSS_S_ASYNC_FINISHED when it had already succeeded, its error when it had already failed. Any
 * other operation cannot be cancelled: cancel waits for its end (bounded by the events'
 * deadlines) and returns VSS_S_ASYNC_FINISHED or its error. Only one operation per session at a time. Errors of all three:
 * VSS_E_INVALIDARG (a NULL; cancel also after its vss_backup was freed); wait also VSS_E_ABORT
 * (the vss_backup was freed) and VSS_E_WRITER_INFRASTRUCTURE (connection lost); cancel also the
 * session errors of vssd's Cancel. */
VSS_EXPORT int vss_async_wait(vss_async *a, int timeout_ms);
VSS_EXPORT int vss_async_query(vss_async *a);
VSS_EXPORT int vss_async_cancel(vss_async *a);
/* Frees the handle (the operation goes on; its result is then not seen). Accepts NULL; returns
 * NULL. */
VSS_EXPORT vss_async *vss_async_free(vss_async *a);
/* The name before 0.2: the same function as vss_async_free(). */
VSS_EXPORT vss_async *vss_async_unref(vss_async *a);

#ifdef __cplusplus
}
#endif
