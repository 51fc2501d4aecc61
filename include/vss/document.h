/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * <vss/document.h> — the two documents of a backup, as C structures: the Writer Metadata Document
 * (what a writer owns and how it restores; docs/writer-metadata-document.md) and the Backup
 * Components Document (what a backup selected and how it went; docs/backup-components-document.md).
 * Both travel as versioned JSON; the parsers here are strict and size-limited.
 *
 * Errors and lifetime as in <vss/types.h>: parsed documents are the caller's, read-only, freed
 * with their _free(); every pointer inside one lives as long as the document.
 */

#include <vss/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vss_file_desc {
        const char *path;
        const char *filespec;
        bool recursive;
} vss_file_desc;

/* Files (path, filespec, recursive) and the directory they go to instead: an alternate location
 * mapping (writer metadata) or a new target (backup components document). */
typedef struct vss_file_mapping {
        const char *path;
        const char *filespec;
        bool recursive;
        const char *destination;
} vss_file_mapping;

typedef struct vss_component_info {
        const char *logical_path; /* "" for a top-level component */
        const char *name;
        const char *caption;
        bool selectable_for_backup;
        bool selectable_for_restore;
        size_t n_files;
        const vss_file_desc *files;
} vss_component_info;

/* One writer's metadata as returned by Identify. Owned by the vss_backup. */
typedef struct vss_writer_metadata {
        vss_id writer_id;   /* class id */
        vss_id instance_id;
        const char *name;
        const char *instance_name;
        vss_usage_type usage_type;
        vss_source_type source_type;
        vss_app_level app_level;
        uint32_t freeze_window_ms;
        vss_restore_method restore_method;
        const char *restore_service;
        bool reboot_required;
        size_t n_components;
        const vss_component_info *components;
        size_t n_excludes;
        const vss_file_desc *excludes;
        const char *document; /* the same, as the JSON metadata document */
        vss_writer_restore writer_restore;  /* whether the writer takes part in restores */
        size_t n_alternate_mappings;        /* where files go when they cannot go back in place */
        const vss_file_mapping *alternate_mappings;
        /* Backup components document only, set by vssd: the uid of the writer's connection (what
         * vssd saw subscribe it). Without it (an older document), nothing vouches for the writer. */
        bool owner_known;
        uint32_t owner_uid;
} vss_writer_metadata;

/* The Backup Components Document (docs/backup-components-document.md): what a backup selected,
 * how each component went, the writers' stamps and, for a restore, what to restore where.
 * Parsed documents are read-only and owned by the caller (vss_backup_document_free()). */
typedef struct vss_bc_component {
        vss_id writer_id;            /* class id */
        vss_id instance_id;
        const char *logical_path;
        const char *name;
        bool backup_succeeded;       /* set by the requester after copying the data */
        const char *backup_options;  /* requester → writer, free text */
        const char *backup_stamp;    /* writer, PrepareForBackup..PostSnapshot */
        const char *previous_backup_stamp; /* requester → writer (incremental, differential) */
        bool selected_for_restore;
        bool additional_restores;
        const char *restore_options;
        vss_restore_target restore_target;   /* writer, PreRestore */
        vss_file_restore_status file_restore_status; /* requester, before PostRestore */
        const char *pre_restore_failure_msg;  /* writer */
        const char *post_restore_failure_msg; /* writer */
        size_t n_new_targets;
        const vss_file_mapping *new_targets;  /* requester: restore these files elsewhere */
        /* writer, PrepareForBackup..PostSnapshot: files it made for this backup after the shadows
         * were cut. The requester stores the files at path (filespec, recursive), read where they
         * are now, as if they were at destination ("stored_as"): files of the component, which
         * take the place of the shadow's copies and are restored with the component. */
        size_t n_writer_files;
        const vss_file_mapping *writer_files;
} vss_bc_component;

typedef struct vss_bc_shadow {
        vss_id shadow_id;
        const char *original_path;
        const char *shadow_path;
        const char *provider;
} vss_bc_shadow;

typedef struct vss_backup_document {
        unsigned version;
        vss_backup_type backup_type;
        bool component_mode;
        bool bootable_system_state;
        bool partial_file_support;
        uint32_t context;
        vss_id snapshot_set_id;      /* null when no set was made */
        uint64_t created_usec;       /* when the shadows were cut (CLOCK_REALTIME), 0 if none */
        size_t n_shadows;
        const vss_bc_shadow *shadows;
        size_t n_writers;
        vss_writer_metadata *const *writers; /* the metadata of the writers taking part */
        size_t n_components;
        const vss_bc_component *components;
} vss_backup_document;

/* Strict parsers for the two documents (size-limited: 16 MiB for a backup components document,
 * 1 MiB for writer metadata; every field checked). Errors: VSS_E_INVALIDARG (ret NULL, or a bad
 * document: then errbuf, if given, names the field, e.g. "components[2].name: must not be
 * empty"), VSS_E_OUTOFMEMORY. */
VSS_EXPORT int vss_backup_document_parse(const char *json, vss_backup_document **ret, char *errbuf, size_t errsize);
/* Frees a parsed document. Accepts NULL; returns NULL. */
VSS_EXPORT vss_backup_document *vss_backup_document_free(vss_backup_document *d);
VSS_EXPORT int vss_writer_metadata_parse(const char *json, vss_writer_metadata **ret, char *errbuf, size_t errsize);
/* Frees parsed writer metadata (not metadata a vss_backup or a document owns). Accepts NULL;
 * returns NULL. */
VSS_EXPORT vss_writer_metadata *vss_writer_metadata_free(vss_writer_metadata *m);
/* A component of a document by writer class id and path; instance_id NULL matches any instance.
 * NULL when there is none, or d or writer_id is NULL (no other failure). */
VSS_EXPORT const vss_bc_component *vss_backup_document_find(const vss_backup_document *d, const vss_id *writer_id,
                                                            const vss_id *instance_id, const char *logical_path,
                                                            const char *name);
/* The writer metadata in d for a component, or NULL (none, or an argument NULL). */
VSS_EXPORT const vss_writer_metadata *vss_backup_document_writer(const vss_backup_document *d,
                                                                 const vss_bc_component *c);

#ifdef __cplusplus
}
#endif
