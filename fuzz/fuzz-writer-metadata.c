/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: the writer metadata document parser (lib/metadata.c, docs/writer-metadata-document.md),
 * through the public vss_writer_metadata_parse(). On success the result must obey the schema (the
 * limits the parser promises), keep the input as ->document, and be accepted again when embedded
 * in a backup components document (bcd_add_writer, bcd_format, bcd_parse): vssd does exactly that
 * with every document a writer sends.
 */

#include "lib/common.h"
#include "lib/components.h"
#include "fuzz/fuzz.h"

static void check_files(const vss_file_desc *f, size_t n) {
        fuzz_assert(n <= VSS_MAX_COMPONENTS && (n == 0 || f), "%zu file groups", n);
        for (size_t i = 0; i < n; i++) {
                fuzz_check_str(f[i].path, VSS_MAX_STRING);
                fuzz_check_str(f[i].filespec, VSS_MAX_NAME);
                fuzz_assert(f[i].path[0] == '/', "relative path accepted: %.80s", f[i].path);
        }
}

static void check_metadata(const vss_writer_metadata *m, const char *input) {
        fuzz_check_str(m->name, VSS_MAX_NAME);
        fuzz_assert(m->name[0] != 0, "empty writer name accepted");
        fuzz_check_str(m->instance_name, VSS_MAX_NAME);
        fuzz_check_str(m->restore_service, VSS_MAX_NAME);
        fuzz_assert(m->document && strcmp(m->document, input) == 0, "->document is not the input");
        fuzz_assert((unsigned) m->usage_type <= VSS_UT_OTHER, "usage_type %d", (int) m->usage_type);
        fuzz_assert((unsigned) m->source_type <= VSS_ST_OTHER, "source_type %d", (int) m->source_type);
        fuzz_assert((unsigned) m->app_level < _VSS_APP_LEVEL_MAX, "app_level %d", (int) m->app_level);
        fuzz_assert((unsigned) m->restore_method <= VSS_RME_RESTORE_STOP_START, "method %d", (int) m->restore_method);
        fuzz_assert((unsigned) m->writer_restore <= VSS_WRE_ALWAYS, "writer_restore %d", (int) m->writer_restore);

        fuzz_assert(m->n_components <= VSS_MAX_COMPONENTS && (m->n_components == 0 || m->components),
                    "%zu components", m->n_components);
        for (size_t i = 0; i < m->n_components; i++) {
                const vss_component_info *c = &m->components[i];
                fuzz_check_str(c->logical_path, VSS_MAX_STRING);
                fuzz_check_str(c->name, VSS_MAX_NAME);
                fuzz_assert(c->name[0] != 0, "component %zu has an empty name", i);
                fuzz_check_str(c->caption, VSS_MAX_STRING);
                check_files(c->files, c->n_files);
                /* (logical_path, name) is unique, so each component finds itself. */
                fuzz_assert(metadata_find_component(m, c->logical_path, c->name) == c, "component %zu listed twice", i);
        }
        check_files(m->excludes, m->n_excludes);
        fuzz_assert(m->n_alternate_mappings <= VSS_MAX_COMPONENTS &&
                    (m->n_alternate_mappings == 0 || m->alternate_mappings), "%zu mappings", m->n_alternate_mappings);
        for (size_t i = 0; i < m->n_alternate_mappings; i++) {
                const vss_file_mapping *f = &m->alternate_mappings[i];
                check_files(&(const vss_file_desc) { .path = f->path, .filespec = f->filespec }, 1);
                fuzz_check_str(f->destination, VSS_MAX_STRING);
                fuzz_assert(f->destination[0] == '/', "relative destination accepted: %.80s", f->destination);
        }
}

/* What vssd does with a writer's metadata: copy it into the session's backup components document,
 * which a requester saves and hands back. Both steps must accept what the first parse accepted. */
static void check_in_bcd(const vss_writer_metadata *m) {
        vss_backup_document *d = bcd_new(), *p = NULL;
        char *json = NULL, err[FUZZ_ERRSIZE];
        fuzz_assert(d, "out of memory");
        int r = bcd_add_writer(d, m, 1000);
        fuzz_assert(r == 0 && d->n_writers == 1, "bcd_add_writer refused a parsed document: %d", r);
        r = bcd_format(d, &json);
        fuzz_assert(r == 0 && json, "bcd_format: %d", r);
        fuzz_err_reset(err);
        r = bcd_parse(json, &p, err, sizeof(err));
        fuzz_check_err("bcd_parse", r, err);
        fuzz_assert(r == 0, "the writer's document does not parse inside a backup components document: %s\n%s", err, json);
        fuzz_assert(p->n_writers == 1, "%zu writers", p->n_writers);
        const vss_writer_metadata *w = p->writers[0];
        fuzz_assert(vss_id_equal(&w->writer_id, &m->writer_id) && vss_id_equal(&w->instance_id, &m->instance_id) &&
                    strcmp(w->name, m->name) == 0 && w->n_components == m->n_components &&
                    w->n_excludes == m->n_excludes && w->n_alternate_mappings == m->n_alternate_mappings,
                    "the writer changed on the way through the backup components document");
        bcd_free(p);
        free(json);
        bcd_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *input = fuzz_cstring(data, size);
        char err[FUZZ_ERRSIZE];
        vss_writer_metadata *m = NULL;

        fuzz_err_reset(err);
        int r = vss_writer_metadata_parse(input, &m, err, sizeof(err));
        fuzz_check_err("vss_writer_metadata_parse", r, err);
        fuzz_assert(r == 0 || r == VSS_E_INVALIDARG, "unexpected result 0x%08x", (unsigned) r);
        if (r == 0) {
                fuzz_assert(m != NULL, "success without a result");
                check_metadata(m, input);
                check_in_bcd(m);
        } else
                fuzz_assert(m == NULL, "failure with a result");
        vss_writer_metadata_free(m);
        free(input);
        return 0;
}
