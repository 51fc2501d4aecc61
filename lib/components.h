/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Backup components documents (JSON, docs/backup-components-document.md; lib/components.c): what
 * a backup selected and how it went. A document embeds the metadata of its writers, hence
 * lib/metadata.h. */

#include "lib/metadata.h"

/* Backup components documents (lib/components.c). vssd and libvss change them only through these;
 * the public structure's pointers are const for readers, these cast it away. */
#define VSS_MAX_BC_DOCUMENT (16 * 1024 * 1024)
vss_backup_document *bcd_new(void);
void bcd_free(vss_backup_document *d);
/* Forgets the snapshot set: its id, time and shadows (deleted, or never made). */
void bcd_clear_shadows(vss_backup_document *d);
int bcd_parse(const char *json, vss_backup_document **ret, char *err, size_t errsize);
/* The document as JSON (malloc'd). */
int bcd_format(const vss_backup_document *d, char **ret);
vss_bc_component *bcd_find(vss_backup_document *d, const vss_id *writer_id, const vss_id *instance_id,
                           const char *logical_path, const char *name);
/* Adds a component record (or returns the existing one); NULL on ENOMEM or past the limit. */
vss_bc_component *bcd_add_component(vss_backup_document *d, const vss_id *writer_id, const vss_id *instance_id,
                                    const char *logical_path, const char *name);
/* Drops every record of one writer instance. */
void bcd_remove_instance(vss_backup_document *d, const vss_id *writer_id, const vss_id *instance_id);
/* Replaces a string field of a record: bcd_set(&c->backup_stamp, "…"). */
int bcd_set(const char **field, const char *value);
int bcd_add_new_target(vss_bc_component *c, const char *path, const char *filespec, bool recursive,
                       const char *destination);
/* Appends a file group to a record's writer_files (-E2BIG past BCD_MAX_WRITER_FILES). */
int bcd_add_writer_file(vss_bc_component *c, const char *path, const char *filespec, bool recursive,
                        const char *stored_as);
void bcd_writer_files_clear(vss_bc_component *c);
/* Appends a writer's metadata (a parsed copy of m's document). */
int bcd_add_writer(vss_backup_document *d, const vss_writer_metadata *m, uint32_t owner_uid);
int bcd_add_shadow(vss_backup_document *d, const vss_id *shadow_id, const char *original_path,
                   const char *shadow_path, const char *provider);

/* Component records alone, as a JSON object {"components": [...]}: what vssd sends a writer with
 * an event and what the writer answers with its annotations. */
int bcd_components_format(const vss_bc_component *const *c, size_t n, char **ret);
int bcd_components_parse(const char *json, vss_bc_component **ret, size_t *ret_n, char *err, size_t errsize);
void bcd_components_free(vss_bc_component *c, size_t n);
void bcd_component_done(vss_bc_component *c);
