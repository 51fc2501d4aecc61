/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: the backup components document parser (lib/components.c,
 * docs/backup-components-document.md), through the public vss_backup_document_parse(). On success
 * the result must obey the schema, and it must round-trip: bcd_format() of it parses again and
 * formats to the same text. A requester saves that text with its backup and hands it back for the
 * restore, so a document vssd writes but cannot read would make the backup unrestorable.
 */

#include "lib/common.h"
#include "lib/components.h"
#include "fuzz/fuzz.h"

static void check_document(const vss_backup_document *d) {
        fuzz_assert(d->version == 1, "version %u", d->version);
        fuzz_assert((unsigned) d->backup_type <= VSS_BT_OTHER, "backup_type %d", (int) d->backup_type);
        fuzz_assert(d->n_shadows <= VSS_MAX_VOLUMES && (d->n_shadows == 0 || d->shadows), "%zu shadows", d->n_shadows);
        for (size_t i = 0; i < d->n_shadows; i++) {
                fuzz_check_str(d->shadows[i].original_path, VSS_MAX_STRING);
                fuzz_assert(d->shadows[i].original_path[0] == '/', "shadows[%zu]: relative original_path", i);
                fuzz_check_str(d->shadows[i].shadow_path, VSS_MAX_STRING);
                fuzz_check_str(d->shadows[i].provider, VSS_MAX_NAME);
        }
        fuzz_assert(d->n_writers == 0 || d->writers, "%zu writers", d->n_writers);
        for (size_t i = 0; i < d->n_writers; i++) {
                const vss_writer_metadata *w = d->writers[i];
                fuzz_assert(w && w->document && w->name && w->name[0], "writers[%zu] incomplete", i);
                for (size_t k = 0; k < i; k++)
                        fuzz_assert(!vss_id_equal(&d->writers[k]->instance_id, &w->instance_id),
                                    "writers[%zu] and [%zu] share an instance id", k, i);
        }
        fuzz_assert(d->n_components <= VSS_MAX_COMPONENTS && (d->n_components == 0 || d->components),
                    "%zu components", d->n_components);
        for (size_t i = 0; i < d->n_components; i++) {
                const vss_bc_component *c = &d->components[i];
                fuzz_check_str(c->logical_path, VSS_MAX_STRING);
                fuzz_check_str(c->name, VSS_MAX_NAME);
                fuzz_assert(c->name[0] != 0, "components[%zu]: empty name", i);
                fuzz_check_str(c->pre_restore_failure_msg, VSS_MAX_MESSAGE);
                fuzz_check_str(c->post_restore_failure_msg, VSS_MAX_MESSAGE);
                fuzz_assert(vss_backup_document_find(d, &c->writer_id, &c->instance_id, c->logical_path, c->name) == c,
                            "components[%zu] listed twice", i);
                for (size_t k = 0; k < c->n_new_targets; k++)
                        fuzz_assert(c->new_targets[k].path[0] == '/' && c->new_targets[k].destination[0] == '/' &&
                                    c->new_targets[k].filespec[0] != 0, "components[%zu].new_targets[%zu]", i, k);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *input = fuzz_cstring(data, size);
        char err[FUZZ_ERRSIZE];
        vss_backup_document *d = NULL, *again = NULL;
        char *text = NULL, *text2 = NULL;

        fuzz_err_reset(err);
        int r = vss_backup_document_parse(input, &d, err, sizeof(err));
        fuzz_check_err("vss_backup_document_parse", r, err);
        fuzz_assert(r == 0 || r == VSS_E_INVALIDARG, "unexpected result 0x%08x", (unsigned) r);
        if (r != 0) {
                fuzz_assert(d == NULL, "failure with a result");
                free(input);
                return 0;
        }
        fuzz_assert(d != NULL, "success without a result");
        check_document(d);

        /* Round trip: what we write, we read back, and write the same way. */
        r = bcd_format(d, &text);
        fuzz_assert(r == 0 && text, "bcd_format: %d", r);
        fuzz_err_reset(err);
        r = bcd_parse(text, &again, err, sizeof(err));
        fuzz_check_err("bcd_parse", r, err);
        fuzz_assert(r == 0, "bcd_format wrote a document bcd_parse refuses: %s\n  input:     %s\n  formatted: %s", err,
                    input, text);
        r = bcd_format(again, &text2);
        fuzz_assert(r == 0 && text2, "bcd_format: %d", r);
        fuzz_assert(strcmp(text, text2) == 0, "round trip changed the document:\n  first:  %s\n  second: %s", text, text2);

        free(text2);
        free(text);
        bcd_free(again);
        vss_backup_document_free(d);
        free(input);
        return 0;
}
