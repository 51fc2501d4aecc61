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
 * Every function returns >= 0 on success or a negative HRESULT (see <vss/types.h>), and keeps a
 * readable message for the last failure in vss_backup_errmsg(). Long operations return a
 * vss_async handle; the *_sync wrappers wait for it.
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

/* Connects to vssd (socket_path NULL: $VSS_SOCKET or /run/openvss/vssd.sock) and opens a session. */
VSS_EXPORT int vss_backup_new(const char *socket_path, vss_backup **ret);
/* Releases the session (BackupShutdown to its writers) and frees. Accepts NULL. */
VSS_EXPORT vss_backup *vss_backup_release(vss_backup *b);
VSS_EXPORT const char *vss_backup_errmsg(vss_backup *b);
VSS_EXPORT int vss_backup_get_session_id(vss_backup *b, vss_id *ret);

VSS_EXPORT int vss_backup_initialize_for_backup(vss_backup *b);
/* document: the backup components document saved by the backup being restored, or NULL to address
 * the writers that run now without one (checked here
 * first: a bad one fails with VSS_E_INVALIDARG naming the field, and nothing is sent). */
VSS_EXPORT int vss_backup_initialize_for_restore(vss_backup *b, const char *document);
/* The session's backup components document as JSON (malloc'd, the caller frees): after
 * gathering metadata in a backup, any time in a restore. Save it with the backup's data. */
VSS_EXPORT int vss_backup_save_as_document(vss_backup *b, char **ret);
/* The same, parsed. */
VSS_EXPORT int vss_backup_get_document(vss_backup *b, vss_backup_document **ret);
/* VSS_CTX_*; default VSS_CTX_BACKUP (auto-release shadows). Before start_snapshot_set. */
VSS_EXPORT int vss_backup_set_context(vss_backup *b, uint32_t context);
VSS_EXPORT int vss_backup_set_backup_state(vss_backup *b, bool select_components, bool bootable_system_state,
                                           vss_backup_type type, bool partial_file_support);

/* Identify every subscribed writer. Afterwards the metadata of those that answered. */
VSS_EXPORT int vss_backup_gather_writer_metadata(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_gather_writer_metadata_sync(vss_backup *b);
VSS_EXPORT size_t vss_backup_metadata_count(vss_backup *b);
VSS_EXPORT const vss_writer_metadata *vss_backup_metadata_get(vss_backup *b, size_t i);

/* Component mode: select a component of a writer for this backup. */
VSS_EXPORT int vss_backup_add_component(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                        const char *logical_path, const char *name);

VSS_EXPORT int vss_backup_start_snapshot_set(vss_backup *b, vss_id *ret_set_id);
/* provider: a name from `vssadmin list providers`, or NULL to choose by the path. */
VSS_EXPORT int vss_backup_add_to_snapshot_set(vss_backup *b, const char *path, const char *provider,
                                              vss_id *ret_shadow_id);

VSS_EXPORT int vss_backup_prepare_for_backup(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_prepare_for_backup_sync(vss_backup *b);
VSS_EXPORT int vss_backup_do_snapshot_set(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_do_snapshot_set_sync(vss_backup *b);
VSS_EXPORT int vss_backup_get_snapshot_properties(vss_backup *b, const vss_id *shadow_id, vss_snapshot_prop *ret);

VSS_EXPORT int vss_backup_set_backup_succeeded(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                               const char *logical_path, const char *name, bool succeeded);
VSS_EXPORT int vss_backup_backup_complete(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_backup_complete_sync(vss_backup *b);
/* Per-component settings of the document. Backup (after gathering metadata, before PrepareForBackup):
 * backup options and the previous backup's stamp, which writers read. Restore (before PreRestore):
 * selected for restore, restore options, additional restores and new targets. Between PreRestore and
 * PostRestore: the file restore status. Other times fail with VSS_E_BAD_STATE. */
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
 * save-as-document and release. */
VSS_EXPORT int vss_backup_abort_backup(vss_backup *b);

/* Restore: PreRestore and PostRestore to the session's writers. */
VSS_EXPORT int vss_backup_pre_restore(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_pre_restore_sync(vss_backup *b);
VSS_EXPORT int vss_backup_post_restore(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_post_restore_sync(vss_backup *b);

VSS_EXPORT int vss_backup_gather_writer_status(vss_backup *b, vss_async **ret);
VSS_EXPORT int vss_backup_gather_writer_status_sync(vss_backup *b);
VSS_EXPORT size_t vss_backup_writer_status_count(vss_backup *b);
VSS_EXPORT int vss_backup_writer_status_get(vss_backup *b, size_t i, vss_writer_status *ret);
VSS_EXPORT void vss_backup_free_writer_status(vss_backup *b);

/* Asynchronous operations. wait: timeout_ms < 0 waits forever; returns the operation's result,
 * or VSS_S_ASYNC_PENDING when the timeout passed first. query: VSS_S_ASYNC_PENDING,
 * VSS_S_ASYNC_FINISHED, VSS_S_ASYNC_CANCELLED or the failure. cancel: asks vssd to stop the
 * operation (an in-flight snapshot set is aborted) and returns 0; VSS_S_ASYNC_CANCELLED when it
 * was cancelled before, VSS_S_ASYNC_FINISHED when it had already succeeded, its error when it had
 * already failed. Only one operation per session at a time. */
VSS_EXPORT int vss_async_wait(vss_async *a, int timeout_ms);
VSS_EXPORT int vss_async_query(vss_async *a);
VSS_EXPORT int vss_async_cancel(vss_async *a);
VSS_EXPORT vss_async *vss_async_unref(vss_async *a);

#ifdef __cplusplus
}
#endif
