/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <vss/types.h> — the vocabulary shared by the faces of libvss: ids, writer states, failure and
 * error codes, backup types and snapshot contexts. Numbers are Microsoft VSS's, so documentation
 * and habits from Windows carry over.
 *
 * Conventions of every libvss header (<vss/writer.h>, <vss/backup.h>, <vss/document.h>,
 * <vss/admin.h>):
 *
 * Errors. A function returning int returns >= 0 on success and a negative HRESULT on failure
 * (VSS codes such as VSS_E_BAD_STATE are 0x8004xxxx, negative as int32_t; never -errno).
 * vss_strerror() names them; each function's comment lists the codes it returns, and handles
 * keep a message for the last failure (vss_writer_errmsg(), vss_backup_errmsg(),
 * vss_admin_errmsg()). A NULL handle or required argument is VSS_E_INVALIDARG unless the
 * function's comment says otherwise. System errors become HRESULTs: ENOMEM VSS_E_OUTOFMEMORY,
 * EACCES/EPERM VSS_E_ACCESSDENIED, ENOENT VSS_E_OBJECT_NOT_FOUND, ENOSPC
 * VSS_E_INSUFFICIENT_STORAGE, a lost connection VSS_E_WRITER_INFRASTRUCTURE, others
 * VSS_E_UNEXPECTED.
 *
 * Lifetime. An object the caller owns is made by vss_<object>_new() (documents: _parse()) into
 * its last argument, ret, which is set only on success, and given back with vss_<object>_free(),
 * which accepts NULL and returns NULL (p = vss_backup_free(p);). What a handle returns by pointer
 * (const: metadata, status, lists, messages) is the handle's, valid until the call that renews
 * it or the handle's _free. A char ** result (vss_backup_save_as_document()) is the caller's, for
 * free(). What is added or set (_add_*, _set_*, options) is copied: the caller's strings are not
 * kept. Names from before 0.2 stay as aliases of the same functions: vss_writer_unref() is
 * vss_writer_free(), vss_backup_release() vss_backup_free(), vss_async_unref() vss_async_free(),
 * vss_backup_free_writer_status() vss_backup_writer_status_clear().
 *
 * Structures. One the caller fills in (vss_writer_options, vss_writer_callbacks) ends with a
 * size field: 0 or sizeof(the structure). Zero-initialize it ({0} or designated initializers):
 * size 0 means the fields of this version, so later versions can append fields without breaking
 * callers. Structures libvss fills in are never grown: a later version adds a new function.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VSS_EXPORT __attribute__((visibility("default")))

/* A 128-bit id, printed as a lowercase UUID without braces. */
typedef struct vss_id {
        uint8_t bytes[16];
} vss_id;

#define VSS_ID_STRING_MAX 37 /* 36 characters and the NUL */

/* Whether id is all zeros (or NULL). No errors. */
VSS_EXPORT bool vss_id_is_null(const vss_id *id);
/* Whether a and b (neither NULL) are the same id. No errors. */
VSS_EXPORT bool vss_id_equal(const vss_id *a, const vss_id *b);
/* Writes "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" into buf (at least VSS_ID_STRING_MAX bytes);
 * returns buf. No errors. */
VSS_EXPORT char *vss_id_to_string(const vss_id *id, char buf[VSS_ID_STRING_MAX]);
/* Accepts a UUID with or without braces, any case. Errors: VSS_E_INVALIDARG (s NULL or not a
 * UUID). */
VSS_EXPORT int vss_id_from_string(const char *s, vss_id *ret);
/* A new random (version 4) id. Errors: the system's random source failing, as an HRESULT
 * (VSS_E_UNEXPECTED, VSS_E_OUTOFMEMORY). */
VSS_EXPORT int vss_id_new(vss_id *ret);

/* Writer states (VSS_WRITER_STATE). */
typedef enum vss_writer_state {
        VSS_WS_UNKNOWN = 0,
        VSS_WS_STABLE = 1,
        VSS_WS_WAITING_FOR_FREEZE = 2,
        VSS_WS_WAITING_FOR_THAW = 3,
        VSS_WS_WAITING_FOR_POST_SNAPSHOT = 4,
        VSS_WS_WAITING_FOR_BACKUP_COMPLETE = 5,
        VSS_WS_FAILED_AT_IDENTIFY = 6,
        VSS_WS_FAILED_AT_PREPARE_BACKUP = 7,
        VSS_WS_FAILED_AT_PREPARE_SNAPSHOT = 8,
        VSS_WS_FAILED_AT_FREEZE = 9,
        VSS_WS_FAILED_AT_THAW = 10,
        VSS_WS_FAILED_AT_POST_SNAPSHOT = 11,
        VSS_WS_FAILED_AT_BACKUP_COMPLETE = 12,
        VSS_WS_FAILED_AT_PRE_RESTORE = 13,
        VSS_WS_FAILED_AT_POST_RESTORE = 14,
        VSS_WS_FAILED_AT_BACKUP_SHUTDOWN = 15,
        _VSS_WS_MAX,
} vss_writer_state;

/* "Stable", "FailedAtFreeze", …; NULL when out of range (the only failure). */
VSS_EXPORT const char *vss_writer_state_name(vss_writer_state s);

/* Success and generic COM codes. */
#define VSS_S_OK 0x00000000
#define VSS_S_ASYNC_PENDING 0x00042309
#define VSS_S_ASYNC_FINISHED 0x0004230A
#define VSS_S_ASYNC_CANCELLED 0x0004230B
#define VSS_E_UNEXPECTED ((int32_t)0x8000FFFF)
#define VSS_E_ABORT ((int32_t)0x80004004)
#define VSS_E_ACCESSDENIED ((int32_t)0x80070005)
#define VSS_E_OUTOFMEMORY ((int32_t)0x8007000E)
#define VSS_E_INVALIDARG ((int32_t)0x80070057)

/* Writer failures (set by writers or by the coordinator). */
#define VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT ((int32_t)0x800423F0)
#define VSS_E_WRITERERROR_OUTOFRESOURCES ((int32_t)0x800423F1)
#define VSS_E_WRITERERROR_TIMEOUT ((int32_t)0x800423F2)
#define VSS_E_WRITERERROR_RETRYABLE ((int32_t)0x800423F3)
#define VSS_E_WRITERERROR_NONRETRYABLE ((int32_t)0x800423F4)
#define VSS_E_WRITERERROR_RECOVERY_FAILED ((int32_t)0x800423F5)
#define VSS_E_WRITERERROR_PARTIAL_FAILURE ((int32_t)0x80042336)
#define VSS_E_WRITER_NOT_RESPONDING ((int32_t)0x80042319)
#define VSS_E_WRITER_STATUS_NOT_AVAILABLE ((int32_t)0x80042409)

/* Requester-visible errors. */
#define VSS_E_BAD_STATE ((int32_t)0x80042301)
#define VSS_E_PROVIDER_VETO ((int32_t)0x80042306)
#define VSS_E_OBJECT_NOT_FOUND ((int32_t)0x80042308)
#define VSS_E_VOLUME_NOT_SUPPORTED ((int32_t)0x8004230C)
#define VSS_E_OBJECT_ALREADY_EXISTS ((int32_t)0x8004230D)
#define VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER ((int32_t)0x8004230E)
#define VSS_E_UNEXPECTED_PROVIDER_ERROR ((int32_t)0x8004230F)
#define VSS_E_INVALID_XML_DOCUMENT ((int32_t)0x80042311)
#define VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED ((int32_t)0x80042312)
#define VSS_E_FLUSH_WRITES_TIMEOUT ((int32_t)0x80042313)
#define VSS_E_HOLD_WRITES_TIMEOUT ((int32_t)0x80042314)
#define VSS_E_SNAPSHOT_SET_IN_PROGRESS ((int32_t)0x80042316)
#define VSS_E_WRITER_INFRASTRUCTURE ((int32_t)0x80042318)
#define VSS_E_INSUFFICIENT_STORAGE ((int32_t)0x8004231F)
#define VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED ((int32_t)0x80042317)

/* "VSS_E_BAD_STATE", "S_OK", …; NULL for a code libvss does not know (the only failure). */
VSS_EXPORT const char *vss_error_name(int32_t hr);
/* A readable sentence for a code; never NULL, no errors ("Unknown error"). */
VSS_EXPORT const char *vss_strerror(int32_t hr);
/* The code for a name returned by vss_error_name(), or 0 when unknown or NULL (no errors). */
VSS_EXPORT int32_t vss_error_from_name(const char *name);

/* Backup types (VSS_BACKUP_TYPE). */
typedef enum vss_backup_type {
        VSS_BT_UNDEFINED = 0,
        VSS_BT_FULL = 1,
        VSS_BT_INCREMENTAL = 2,
        VSS_BT_DIFFERENTIAL = 3,
        VSS_BT_LOG = 4,
        VSS_BT_COPY = 5,
        VSS_BT_OTHER = 6,
} vss_backup_type;

/* "full", "incremental", …; NULL when out of range (the only failure). */
VSS_EXPORT const char *vss_backup_type_name(vss_backup_type t);

/* Snapshot attributes (VSS_VOLUME_SNAPSHOT_ATTRIBUTES) and contexts (VSS_SNAPSHOT_CONTEXT). */
#define VSS_VOLSNAP_ATTR_PERSISTENT 0x00000001u
#define VSS_VOLSNAP_ATTR_NO_AUTORECOVERY 0x00000002u
#define VSS_VOLSNAP_ATTR_CLIENT_ACCESSIBLE 0x00000004u
#define VSS_VOLSNAP_ATTR_NO_AUTO_RELEASE 0x00000008u
#define VSS_VOLSNAP_ATTR_NO_WRITERS 0x00000010u
/* OpenVSS's own attributes lie where VSS_VOLUME_SNAPSHOT_ATTRIBUTES defines none (Microsoft's
 * end at VSS_VOLSNAP_ATTR_FILE_SHARE, 0x04000000). They were 0x00010000 and 0x00020000,
 * Microsoft's HARDWARE_ASSISTED and DIFFERENTIAL, until vssd's registry version 6 moved them. */
/* The set's volumes were not cut at one instant (each was cut while writers were frozen, but the
 * provider copies volume by volume). */
#define OPENVSS_ATTR_NOT_ATOMIC 0x20000000u
/* The shadow is not one instant: its filesystem was not held frozen while it was copied (it
 * cannot be frozen, or the configuration excludes it), so writes not stopped by a writer may
 * show half-made in it. */
#define OPENVSS_ATTR_NOT_POINT_IN_TIME 0x40000000u

#define VSS_CTX_BACKUP 0x00000000u
#define VSS_CTX_FILE_SHARE_BACKUP 0x00000010u
#define VSS_CTX_NAS_ROLLBACK 0x00000019u
#define VSS_CTX_APP_ROLLBACK 0x00000009u
#define VSS_CTX_CLIENT_ACCESSIBLE 0x0000001du
#define VSS_CTX_CLIENT_ACCESSIBLE_WRITERS 0x0000000du
/* Every context: valid for SetContext, not for making a set (StartSnapshotSet: VSS_E_BAD_STATE). */
#define VSS_CTX_ALL 0xffffffffu

/* Application level: the order of Freeze (front-end first) and of Thaw/Abort (reverse). Unlike the
 * rest of this file, these numbers are OpenVSS's own, in Freeze order (VSS_APPLICATION_LEVEL numbers
 * system 1, back-end 2, front-end 3). */
typedef enum vss_app_level {
        VSS_APP_FRONT_END = 0,
        VSS_APP_BACK_END = 1,
        VSS_APP_SYSTEM = 2,
        _VSS_APP_LEVEL_MAX,
} vss_app_level;

/* Restore methods (VSS_RESTOREMETHOD_ENUM). */
typedef enum vss_restore_method {
        VSS_RME_UNDEFINED = 0,
        VSS_RME_RESTORE_IF_NOT_THERE = 1,
        VSS_RME_RESTORE_IF_CAN_REPLACE = 2,
        VSS_RME_STOP_RESTORE_START = 3,
        VSS_RME_RESTORE_TO_ALTERNATE_LOCATION = 4,
        VSS_RME_RESTORE_AT_REBOOT = 5,
        VSS_RME_RESTORE_AT_REBOOT_IF_CANNOT_REPLACE = 6,
        VSS_RME_CUSTOM = 7,
        VSS_RME_RESTORE_STOP_START = 8,
} vss_restore_method;

/* Usage and source types (VSS_USAGE_TYPE, VSS_SOURCE_TYPE). */
typedef enum vss_usage_type {
        VSS_UT_UNDEFINED = 0,
        VSS_UT_BOOTABLESYSTEMSTATE = 1,
        VSS_UT_SYSTEMSERVICE = 2,
        VSS_UT_USERDATA = 3,
        VSS_UT_OTHER = 4,
} vss_usage_type;

typedef enum vss_source_type {
        VSS_ST_UNDEFINED = 0,
        VSS_ST_TRANSACTEDDB = 1,
        VSS_ST_NONTRANSACTEDDB = 2,
        VSS_ST_OTHER = 3,
} vss_source_type;

/* Where a component is restored (VSS_RESTORE_TARGET), set by a writer in PreRestore. */
typedef enum vss_restore_target {
        VSS_RT_UNDEFINED = 0,
        VSS_RT_ORIGINAL = 1,
        VSS_RT_ALTERNATE = 2,
        VSS_RT_DIRECTED = 3,
        VSS_RT_ORIGINAL_LOCATION = 4,
} vss_restore_target;

/* How the requester's file restore went (VSS_FILE_RESTORE_STATUS), told to writers in PostRestore. */
typedef enum vss_file_restore_status {
        VSS_RS_UNDEFINED = 0,
        VSS_RS_NONE = 1,
        VSS_RS_ALL = 2,
        VSS_RS_FAILED = 3,
} vss_file_restore_status;

/* Whether a writer takes part in restores (VSS_WRITERRESTORE_ENUM). */
typedef enum vss_writer_restore {
        VSS_WRE_UNDEFINED = 0,
        VSS_WRE_NEVER = 1,
        VSS_WRE_IF_REPLACE_FAILS = 2,
        VSS_WRE_ALWAYS = 3,
} vss_writer_restore;

#ifdef __cplusplus
}
#endif
