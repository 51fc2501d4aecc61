/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writer metadata documents (JSON, docs/writer-metadata-document.md): built by writers through
 * the vss_metadata_builder, parsed by vssd and requesters (lib/metadata.c). */

#include <json-c/json.h>

#include <vss/document.h>
#include <vss/writer.h>

struct vss_metadata_builder {
        json_object *components; /* array */
        json_object *excludes;   /* array */
        json_object *mappings;   /* array: alternate location mappings */
        json_object *restore;    /* object or NULL */
        vss_writer_restore writer_restore;
};

int metadata_builder_init(struct vss_metadata_builder *md);
void metadata_builder_done(struct vss_metadata_builder *md);
/* The whole document: identity from opts plus what the builder gathered. Caller frees. */
int metadata_builder_finish(struct vss_metadata_builder *md, const vss_writer_options *opts, char **ret);

/* Parses and validates a document (size, lengths, counts, known fields); -EINVAL with a message
 * naming the field in err on bad input. */
int metadata_parse(const char *doc, vss_writer_metadata **ret, char *err, size_t errsize);
void metadata_free(vss_writer_metadata *m);
void mappings_free(const vss_file_mapping *f, size_t n);
/* The component with this logical path and name, or NULL. */
const vss_component_info *metadata_find_component(const vss_writer_metadata *m, const char *logical_path,
                                                  const char *name);

/* Shared with the backup components document reader (lib/components.c). */
typedef struct JsonReader JsonReader;
void jv_check_format(JsonReader *v, json_object *o, const char *format);
void jv_id(JsonReader *v, json_object *o, const char *key, vss_id *ret, bool allow_null);
/* A writer metadata document inside another (o already parsed); errors carry v's path. The
 * result has no ->document yet. */
vss_writer_metadata *metadata_from_json(JsonReader *v, json_object *o);
