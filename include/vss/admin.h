/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <vss/admin.h> — the admin face of libvss, what `vssadmin` does: list the subscribed writers,
 * the providers and the shadow copies, delete shadow copies, expose one (mount it read-only) and
 * unexpose it. Making shadow copies is the requester face's job (<vss/backup.h>).
 *
 * Use: vss_admin_new(), vss_admin_connect(), any calls, vss_admin_free(). One vss_admin is one
 * connection to vssd; calls are synchronous and not thread-safe on one handle.
 *
 * Errors: every int function returns 0 (or a count, where said) on success, or a negative HRESULT
 * (<vss/types.h>), and keeps a readable message in vss_admin_errmsg(): vssd's own message when
 * vssd refused, else the system's. Common to all calls that reach vssd:
 *   VSS_E_INVALIDARG            a NULL handle or a bad argument (checked before anything is sent)
 *   VSS_E_BAD_STATE             the handle is not connected
 *   VSS_E_ACCESSDENIED          the caller lacks the right (see each call)
 *   VSS_E_OUTOFMEMORY           memory, or one of vssd's per-client quotas
 *   VSS_E_WRITER_INFRASTRUCTURE the connection failed or vssd's answer was malformed
 *
 * Lifetime (as everywhere in libvss): what a call returns by pointer belongs to the handle and
 * stays valid until the next call of the same kind on it, or vss_admin_free(); arguments are
 * copied or used only during the call.
 *
 * Rights (vssd's config "rights"; root holds all): listing needs "list" (default: the backup
 * group, "vss-backup"), deleting "delete" (default: root only); expose and unexpose are root's.
 */

#include <vss/backup.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vss_admin vss_admin;

/* A subscribed writer and its last known status. */
typedef struct vss_admin_writer {
        vss_writer_status status; /* name, class and instance id, state, failure, message, note */
        vss_id session_id;        /* the session the status comes from; null: none since subscribing */
        uint64_t as_of_usec;      /* when the status was set (CLOCK_REALTIME, µs) */
} vss_admin_writer;

/* A provider compiled into vssd (or configured: exec providers). */
typedef struct vss_admin_provider {
        const char *name;        /* what vss_backup_add_to_snapshot_set() takes */
        vss_id provider_id;
        const char *type;
        const char *description;
        const char *supports;    /* what it can shadow, in words */
        bool atomic;             /* cuts a multi-volume set at one instant */
} vss_admin_provider;

/* Whether shadow copies of a path will be one instant, and why not when not. */
typedef struct vss_admin_volume {
        const char *provider;    /* the provider vssd would choose for the path */
        bool point_in_time;
        const char *why;
} vss_admin_volume;

/* A shadow copy in vssd's registry. */
typedef struct vss_admin_shadow {
        vss_id shadow_id;
        vss_id snapshot_set_id;
        const char *original_path;
        const char *shadow_path;
        const char *provider;
        uint64_t created_usec;   /* CLOCK_REALTIME, µs */
        uint32_t attributes;     /* VSS_VOLSNAP_ATTR_*, OPENVSS_ATTR_* */
        const char *exposed_at;  /* where it is exposed, "" when it is not */
} vss_admin_shadow;

/* What vss_admin_delete_shadows() deletes. */
typedef enum vss_admin_delete {
        VSS_ADMIN_DELETE_SHADOW = 0, /* one shadow copy, by id */
        VSS_ADMIN_DELETE_SET = 1,    /* every shadow copy of a snapshot set, by set id */
        VSS_ADMIN_DELETE_ALL = 2,    /* every shadow copy (id NULL) */
} vss_admin_delete;

/* A handle, not yet connected. Errors: VSS_E_INVALIDARG (ret NULL), VSS_E_OUTOFMEMORY. */
VSS_EXPORT int vss_admin_new(vss_admin **ret);
/* Connects to vssd at socket_path (NULL: $VSS_SOCKET, else /run/openvss/vssd.sock). The listener
 * must be root or this user. Errors: VSS_E_INVALIDARG, VSS_E_BAD_STATE (connected already),
 * VSS_E_WRITER_INFRASTRUCTURE (cannot connect; the message is "cannot connect to vssd: " and the
 * system's reason). */
VSS_EXPORT int vss_admin_connect(vss_admin *a, const char *socket_path);
/* Closes the connection and frees the handle and all it returned. Accepts NULL; returns NULL. */
VSS_EXPORT vss_admin *vss_admin_free(vss_admin *a);
/* The last failure's message ("" after none); never NULL ("no handle" for NULL). */
VSS_EXPORT const char *vss_admin_errmsg(vss_admin *a);

/* Lists (right "list"). Each fetches afresh, sets *ret_n (optional) to the count and keeps the
 * result in the handle; the _get functions return its entries (NULL past the end) until the
 * next list of the same kind. Errors: the common ones. */
VSS_EXPORT int vss_admin_list_writers(vss_admin *a, size_t *ret_n);
VSS_EXPORT const vss_admin_writer *vss_admin_writer_get(vss_admin *a, size_t i);
VSS_EXPORT int vss_admin_list_providers(vss_admin *a, size_t *ret_n);
VSS_EXPORT const vss_admin_provider *vss_admin_provider_get(vss_admin *a, size_t i);
/* Every shadow copy, by snapshot set, with where each is exposed. */
VSS_EXPORT int vss_admin_list_shadows(vss_admin *a, size_t *ret_n);
VSS_EXPORT const vss_admin_shadow *vss_admin_shadow_get(vss_admin *a, size_t i);

/* How shadow copies of path would be made (right "list"); *ret is valid until the next call.
 * Errors: the common ones; VSS_E_OBJECT_NOT_FOUND (path cannot be resolved),
 * VSS_E_VOLUME_NOT_SUPPORTED (no provider supports it). */
VSS_EXPORT int vss_admin_explain_volume(vss_admin *a, const char *path, const vss_admin_volume **ret);

/* Deletes shadow copies (right "delete"), unexposing them first; a set still in use by a
 * session is left alone. id: the shadow or set id, NULL for VSS_ADMIN_DELETE_ALL. *ret_deleted
 * (optional): how many were deleted. Errors: the common ones; VSS_E_OBJECT_NOT_FOUND when the id
 * names no shadow copy or set (deleting all of none is no error); VSS_E_UNEXPECTED when vssd
 * cannot read its registry; a provider's failure to delete (the record is then kept). */
VSS_EXPORT int vss_admin_delete_shadows(vss_admin *a, vss_admin_delete kind, const vss_id *id, uint32_t *ret_deleted);

/* Mounts a shadow copy read-only at at, an existing empty directory owned by root, named without
 * symbolic links (root only). *ret_where (optional): the canonical path, valid until the next
 * expose. Errors: the common ones; VSS_E_OBJECT_NOT_FOUND (no such shadow copy),
 * VSS_E_OBJECT_ALREADY_EXISTS (something is exposed at at already), VSS_E_INVALIDARG (at is not
 * a suitable directory), VSS_E_UNEXPECTED_PROVIDER_ERROR (the mount failed), VSS_E_UNEXPECTED. */
VSS_EXPORT int vss_admin_expose(vss_admin *a, const vss_id *shadow_id, const char *at, const char **ret_where);
/* Unmounts the shadow copy exposed at at (root only). Errors: the common ones;
 * VSS_E_OBJECT_NOT_FOUND (nothing is exposed there), VSS_E_BAD_STATE (an expose or unexpose there
 * is under way), VSS_E_UNEXPECTED (the unmount failed). */
VSS_EXPORT int vss_admin_unexpose(vss_admin *a, const char *at);

#ifdef __cplusplus
}
#endif
