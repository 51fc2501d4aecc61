/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writer metadata documents (JSON), built by writers and parsed by vssd and requesters. */

#include <json-c/json.h>

#include <vss/backup.h>
#include <vss/writer.h>

struct vss_metadata_builder {
        json_object *components; /* array */
        json_object *excludes;   /* array */
        json_object *restore;    /* object or NULL */
};

int metadata_builder_init(struct vss_metadata_builder *md);
void metadata_builder_done(struct vss_metadata_builder *md);
/* The whole document: identity from opts plus what the builder gathered. Caller frees. */
int metadata_builder_finish(struct vss_metadata_builder *md, const vss_writer_options *opts, char **ret);

/* Parses and validates a document (size, lengths, counts); -EINVAL with *ret_error set on bad
 * input (static string). */
int metadata_parse(const char *doc, vss_writer_metadata **ret, const char **ret_error);
void metadata_free(vss_writer_metadata *m);
/* The component with this logical path and name, or NULL. */
const vss_component_info *metadata_find_component(const vss_writer_metadata *m, const char *logical_path,
                                                  const char *name);
