/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <vss/writer.h> — the writer face of libvss, for applications that take part in shadow copies.
 *
 * A writer describes what it owns (Identify), quiesces on Freeze, resumes on Thaw and reports how
 * each step went with vss_writer_set_failure(). Callbacks run on the thread that calls
 * vss_writer_run() or vss_writer_dispatch(); a callback returns true when the event succeeded,
 * false when it failed (the failure then is what the callback set with vss_writer_set_failure(),
 * or VSS_E_WRITERERROR_NONRETRYABLE when it set none). A failure set is reported even when the
 * callback returns true: that is how Microsoft documents a writer's veto (SetWriterFailure, then
 * return TRUE). Identify is the exception (VSS forbids SetWriterFailure there): only false fails it. A Freeze callback that returned true counts as frozen all the same: it is thawed
 * by Abort, or by itself as below.
 *
 * Safety: a writer that got Freeze and has not got Thaw calls its Abort callback by itself when
 * its connection to vssd drops or its Freeze→Thaw window expires, with the id of the snapshot set
 * it was frozen for in info->snapshot_set_id; a later Thaw then fails with
 * VSS_E_WRITERERROR_TIMEOUT, so the set is never reported consistent, and the Abort of that set
 * that follows is answered without calling the callback again (OnAbort once per set).
 *
 * No privilege is needed; the socket is $VSS_SOCKET or /run/openvss/vssd.sock.
 *
 * Errors, lifetime and caller-filled structures as in <vss/types.h>. A writer handle is used
 * from one thread at a time.
 */

#include <vss/document.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vss_writer vss_writer;
typedef struct vss_metadata_builder vss_metadata_builder;

typedef enum vss_event {
        VSS_EVENT_IDENTIFY,
        VSS_EVENT_PREPARE_BACKUP,
        VSS_EVENT_PREPARE_SNAPSHOT,
        VSS_EVENT_FREEZE,
        VSS_EVENT_THAW,
        VSS_EVENT_POST_SNAPSHOT,
        VSS_EVENT_ABORT,
        VSS_EVENT_BACKUP_COMPLETE,
        VSS_EVENT_BACKUP_SHUTDOWN,
        VSS_EVENT_PRE_RESTORE,
        VSS_EVENT_POST_RESTORE,
        _VSS_EVENT_MAX,
} vss_event;

/* "identify", "prepare-backup", "prepare-snapshot", "freeze", "thaw", "post-snapshot", "abort",
 * "backup-complete", "backup-shutdown", "pre-restore", "post-restore"; NULL when out of range
 * (the only failure). */
VSS_EXPORT const char *vss_event_name(vss_event e);
/* The event for a name above, or -1 for any other name or NULL (the only failure). */
VSS_EXPORT int vss_event_from_name(const char *name);

/* What an event callback may read about the request that caused it. Valid during the callback. */
typedef struct vss_event_info {
        vss_event event;
        vss_id snapshot_set_id;           /* null for Identify and restore events, and for
                                           * BackupShutdown when no set was made */
        vss_backup_type backup_type;
        bool component_mode;
        size_t n_components;              /* selected components of this writer (component mode) */
        const char *const *components;    /* their logical paths, "path/name" or "name" */
        /* Since 0.4, from a vssd of 0.4 or later (false, 0 and NULL from an older one), in the
         * events of a backup from PrepareForBackup to BackupShutdown, and in PreRestore and
         * PostRestore (those of the backup restored, from its document; no volumes): */
        bool partial_file_support;        /* the requester's SetBackupState settings */
        bool bootable_system_state;
        size_t n_volumes;                 /* from PrepareForSnapshot: the set's paths (a user's */
        const char *const *volumes;       /* writer: those its components meet) */
        uint32_t context;                 /* the requester's VSS_CTX_* with its attributes
                                           * (CVssWriter::GetContext) */
        vss_id session_id;                /* the requester's session, in every event but Identify
                                           * (CVssWriterEx2::GetSessionId: for diagnostics) */
} vss_event_info;

/* Since 0.4: whether path (absolute), or something below it, is in the snapshot set of info
 * (one of info->volumes, or below one, or above one): CVssWriter::IsPathAffected. */
VSS_EXPORT bool vss_event_is_path_affected(const vss_event_info *info, const char *path);

typedef bool (*vss_writer_event_fn)(vss_writer *w, const vss_event_info *info, void *userdata);
typedef bool (*vss_writer_identify_fn)(vss_writer *w, vss_metadata_builder *md, void *userdata);

typedef struct vss_writer_callbacks {
        vss_writer_identify_fn identify;        /* NULL: no components, succeeds */
        vss_writer_event_fn prepare_backup;     /* any NULL callback succeeds */
        vss_writer_event_fn prepare_snapshot;
        vss_writer_event_fn freeze;
        vss_writer_event_fn thaw;
        vss_writer_event_fn post_snapshot;
        vss_writer_event_fn abort;
        vss_writer_event_fn backup_complete;
        vss_writer_event_fn backup_shutdown;
        vss_writer_event_fn pre_restore;
        vss_writer_event_fn post_restore;
        size_t size;                            /* 0 or sizeof(vss_writer_callbacks) */
} vss_writer_callbacks;

typedef struct vss_writer_options {
        vss_id class_id;            /* the writer's kind; null: derived from name */
        vss_id instance_id;         /* this instance; null: random */
        const char *name;           /* required, at most 255 bytes */
        const char *instance_name;  /* optional */
        vss_usage_type usage_type;
        vss_source_type source_type;
        vss_app_level app_level;
        uint32_t freeze_window_ms;  /* Freeze→Thaw window; 0: vssd's default (60 s); at most 10 min */
        /* false (the default): the writer ends with its connection (vss_writer_run() returns,
         * vss_writer_main() returns 1), and subscribing fails when vssd cannot be reached.
         * true: it outlives vssd. Subscribing while vssd cannot be reached succeeds and the
         * writer waits for vssd; when the connection drops (vssd restarted, say) it thaws itself
         * as always, then reconnects with backoff (50 ms doubling up to 5 s) and subscribes again
         * under the same class id with a new random instance id (vss_writer_get_options() shows
         * it), which it logs on stderr. It stops only when vssd refuses its identity
         * (VSS_E_INVALIDARG, VSS_E_ACCESSDENIED): the connection is then lost as without it.
         * Waiting and reconnecting happen on the writer's event loop: keep dispatching. */
        bool reconnect;
        size_t size;                /* 0 or sizeof(vss_writer_options) */
} vss_writer_options;

/* Creates a writer (opts and cb are copied; cb NULL: every event succeeds); nothing is sent until
 * vss_writer_subscribe(). Errors: VSS_E_INVALIDARG (opts or ret NULL, name empty or longer than
 * 255 bytes, instance_name longer, app_level or freeze_window_ms out of range, a size field that
 * is neither 0 nor at least the size of this version's structure, or larger with fields this
 * version does not know set), VSS_E_OUTOFMEMORY. */
VSS_EXPORT int vss_writer_new(const vss_writer_options *opts, const vss_writer_callbacks *cb, void *userdata,
                              vss_writer **ret);
/* Unsubscribes (if subscribed), thaws itself through Abort if frozen, frees. Accepts NULL;
 * returns NULL. */
VSS_EXPORT vss_writer *vss_writer_free(vss_writer *w);
/* The name before 0.2: the same function as vss_writer_free(). */
VSS_EXPORT vss_writer *vss_writer_unref(vss_writer *w);

/* Connects to vssd at socket_path (NULL: $VSS_SOCKET or the default) and registers. Errors:
 * VSS_E_INVALIDARG (w NULL, or vssd refused the identity), VSS_E_BAD_STATE (subscribed already),
 * VSS_E_WRITER_INFRASTRUCTURE (vssd cannot be reached, the socket's listener is neither root nor
 * this user, or vssd's writer limits are reached; with opts.reconnect, vssd not listening is no
 * error: the writer waits for it), VSS_E_OBJECT_ALREADY_EXISTS (this instance id
 * is subscribed already), VSS_E_ACCESSDENIED (the class id belongs to another user),
 * VSS_E_INSUFFICIENT_STORAGE, VSS_E_OUTOFMEMORY. */
VSS_EXPORT int vss_writer_subscribe(vss_writer *w, const char *socket_path);
/* Aborts a freeze in progress (Abort callback), tells vssd and disconnects. Errors:
 * VSS_E_BAD_STATE (w NULL or not subscribed). */
VSS_EXPORT int vss_writer_unsubscribe(vss_writer *w);

/* Blocking loop: dispatches events until vss_writer_exit() (returns 0) or the connection is lost
 * (never, with opts.reconnect, unless vssd refuses the writer for good).
 * Errors: VSS_E_BAD_STATE (w NULL or not subscribed), VSS_E_WRITER_INFRASTRUCTURE (the
 * connection was lost, after aborting a freeze, or the event loop failed). */
VSS_EXPORT int vss_writer_run(vss_writer *w);
/* Makes vss_writer_run() return after the current event. Accepts NULL; no errors. */
VSS_EXPORT void vss_writer_exit(vss_writer *w);

/* The main loop of a writer program: subscribes (socket_path NULL: $VSS_SOCKET or the default)
 * and dispatches events until SIGTERM or SIGINT, returning exit status 0, or until vssd cannot be
 * reached or the connection is lost (with opts.reconnect: it waits for vssd instead), returning 1
 * after a message on stderr prefixed with prog.
 * It blocks SIGTERM and SIGINT and handles them on the writer's event loop (the one attached, or
 * the thread's default). Free the writer afterwards: a freeze in progress is then aborted.
 * Returns an exit status, not an HRESULT: 1 also for w NULL or subscribed already. */
VSS_EXPORT int vss_writer_main(vss_writer *w, const char *socket_path, const char *prog);

/* Embedding: poll the fd for POLLIN (it is an epoll fd covering the connection and the writer's
 * timers), then call vss_writer_dispatch(), which never blocks. Call vss_writer_dispatch() once
 * right after subscribing, before the first poll: what vssd sent while the writer subscribed
 * (Identify, often) may already be read and queued, and the fd shows no input for it.
 * get_fd returns the fd (>= 0);
 * errors: VSS_E_BAD_STATE (w NULL, or no event loop yet: subscribe or attach one first).
 * dispatch errors: VSS_E_BAD_STATE (the same), VSS_E_WRITER_INFRASTRUCTURE (the connection was
 * lost, after aborting a freeze, or the loop failed). */
VSS_EXPORT int vss_writer_get_fd(vss_writer *w);
VSS_EXPORT int vss_writer_dispatch(vss_writer *w);

/* Embedding into an sd-event loop of the application's own (pass an sd_event *). Call before
 * vss_writer_subscribe(); the writer then takes a reference on the loop. Errors:
 * VSS_E_BAD_STATE (w or the loop NULL, or subscribed already). */
VSS_EXPORT int vss_writer_attach_event(vss_writer *w, void *sd_event_loop);

/*
 * Answering an event later. An event callback (any but Identify) that starts work it cannot
 * finish at once (a script, say) calls vss_writer_defer() and returns; its return value is then
 * ignored and vssd gets no answer yet. The writer goes on dispatching meanwhile: it answers vssd's
 * status queries (GatherWriterStatus), and the next event runs its callback as usual (Abort while
 * a deferred Freeze runs, when vssd gave up waiting for it). When the work is done, from the
 * application's event loop (not from a callback): optionally vss_writer_resume() (then
 * vss_writer_set_failure() and the component functions below act on the deferred event), then
 * vss_writer_complete() with ok as a callback would return it; no dispatching in between.
 * A Freeze completed with ok after an Abort came (or the connection dropped) leaves the writer
 * thawed: it calls its Abort callback at once, as a self-abort. Handles not completed are freed
 * with the writer, unanswered.
 *
 * vss_writer_defer: the handle (the same one when called twice in a callback); NULL for w NULL,
 * outside a callback, in Identify, between resume and complete, or out of memory.
 * vss_writer_resume, vss_writer_complete errors: VSS_E_BAD_STATE (w NULL, d not a pending
 * handle of w's, inside a callback, or another handle resumed), and for complete
 * VSS_E_WRITER_INFRASTRUCTURE (the answer could not be sent: the connection is gone); the handle
 * is freed either way.
 */
typedef struct vss_writer_deferred vss_writer_deferred;
VSS_EXPORT vss_writer_deferred *vss_writer_defer(vss_writer *w);
VSS_EXPORT int vss_writer_resume(vss_writer *w, vss_writer_deferred *d);
VSS_EXPORT int vss_writer_complete(vss_writer *w, vss_writer_deferred *d, bool ok);

/* Sets the failure reported for the current event (Identify aside), whatever the callback returns: a
 * VSS_E_WRITERERROR_* code (VSS_S_OK clears it), the application's own code and a message
 * (copied, at most 1023 bytes kept). Errors: VSS_E_INVALIDARG (w NULL). */
VSS_EXPORT int vss_writer_set_failure(vss_writer *w, int32_t failure, int32_t application_code,
                                      const char *application_message);

/* The writer's options as it uses them (ids filled in); the writer's. Its size field is this
 * library's sizeof(vss_writer_options): fields past it are not there. NULL for w NULL. */
VSS_EXPORT const vss_writer_options *vss_writer_get_options(vss_writer *w);
/* Whether it got Freeze and has not thawed yet; false for w NULL. */
VSS_EXPORT bool vss_writer_is_frozen(vss_writer *w);
/* The last failure's message ("" after none); never NULL ("no writer" for w NULL). */
VSS_EXPORT const char *vss_writer_errmsg(vss_writer *w);

/* The metadata builder handed to the Identify callback; valid during the callback. Strings are
 * copied. Limits: names 255 bytes, paths and captions 4096, 1024 components, file groups per
 * component, excludes and mappings. As in VSS, a component's name holds no separator ('/'), a
 * file group's path no wildcard and its filespec no '/'. Errors of every builder function:
 * VSS_E_INVALIDARG (md NULL, a value empty where required, too long, a relative path, out of
 * range, past a limit, or one of those), VSS_E_OUTOFMEMORY; add_component also
 * VSS_E_OBJECT_ALREADY_EXISTS (the same logical path and name twice); add_files also
 * VSS_E_OBJECT_NOT_FOUND. */
VSS_EXPORT int vss_metadata_add_component(vss_metadata_builder *md, const char *logical_path, const char *name,
                                          const char *caption, bool selectable_for_backup,
                                          bool selectable_for_restore);
/* Adds a file group to the component (logical_path, name), which must have been added
 * (VSS_E_OBJECT_NOT_FOUND otherwise). filespec NULL: "*". */
VSS_EXPORT int vss_metadata_add_files(vss_metadata_builder *md, const char *logical_path, const char *name,
                                      const char *path, const char *filespec, bool recursive);
/* Files of the writer's that no backup should copy. */
VSS_EXPORT int vss_metadata_add_exclude_files(vss_metadata_builder *md, const char *path, const char *filespec,
                                              bool recursive);
VSS_EXPORT int vss_metadata_set_restore_method(vss_metadata_builder *md, vss_restore_method method,
                                               const char *service, bool reboot_required);
VSS_EXPORT int vss_metadata_set_writer_restore(vss_metadata_builder *md, vss_writer_restore writer_restore);
/* Where files of the writer go when they cannot be restored in place. */
VSS_EXPORT int vss_metadata_add_alternate_location_mapping(vss_metadata_builder *md, const char *path,
                                                           const char *filespec, bool recursive,
                                                           const char *destination);

/*
 * The backup components document, seen from an event callback. A writer reads its selected
 * components' records (options and the previous backup stamp the requester set, the file restore
 * status in PostRestore, ...) and annotates them: the backup stamp from PrepareForBackup through
 * PostSnapshot, the restore target and a pre-restore failure message in PreRestore, a
 * post-restore failure message in PostRestore. The document is read-only from BackupComplete on:
 * setters then fail with VSS_E_BAD_STATE, as they do outside a callback.
 *
 * Errors of the setters: VSS_E_BAD_STATE (w NULL, outside a callback, or an event that does not
 * allow this field), VSS_E_OBJECT_NOT_FOUND ((logical_path, name) is not one of this event's
 * components), VSS_E_INVALIDARG (a value too long: 4096 bytes for stamps, 1023 for messages; a
 * target out of range), VSS_E_OUTOFMEMORY.
 */
/* NULL outside a callback or when (logical_path, name) is not one of this event's components. */
VSS_EXPORT const vss_bc_component *vss_writer_get_component(vss_writer *w, const char *logical_path,
                                                            const char *name);
VSS_EXPORT int vss_writer_set_backup_stamp(vss_writer *w, const char *logical_path, const char *name,
                                           const char *stamp);
/* Adds files the writer made for this backup after the shadows were cut (in PostSnapshot, say: a
 * database's log up to the end of its base backup). The requester stores the files at path
 * (filespec, recursive: as in a file group), read where they are now, as if they were at
 * stored_as: as files of the component there, in place of the shadow's copies of the same names,
 * restored with the component's other files. stored_as must lie within one of the component's
 * file groups (vssbackup fails the component otherwise); a writer that is not root's may hand
 * over only its owner's files, and not to where another user's writer has files. The record's writer_files; at most 64.
 * From PrepareForBackup through PostSnapshot; VSS_E_INVALIDARG also for relative paths and past
 * 64 file groups. */
VSS_EXPORT int vss_writer_add_backup_files(vss_writer *w, const char *logical_path, const char *name, const char *path,
                                           const char *filespec, bool recursive, const char *stored_as);
VSS_EXPORT int vss_writer_set_restore_target(vss_writer *w, const char *logical_path, const char *name,
                                             vss_restore_target target);
VSS_EXPORT int vss_writer_set_pre_restore_failure_msg(vss_writer *w, const char *logical_path, const char *name,
                                                      const char *message);
VSS_EXPORT int vss_writer_set_post_restore_failure_msg(vss_writer *w, const char *logical_path, const char *name,
                                                       const char *message);

#ifdef __cplusplus
}
#endif
