/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: component records alone ({"components": [...]}, lib/components.c), what vssd sends a
 * writer with each event and what the writer answers with (docs/backup-components-document.md,
 * "Component records in events"). On success the records must obey the schema and round-trip
 * through bcd_components_format(): parse, format, parse, format gives the same text twice.
 */

#include "lib/common.h"
#include "lib/components.h"
#include "fuzz/fuzz.h"

static void check_records(const vss_bc_component *c, size_t n) {
        fuzz_assert(n <= VSS_MAX_COMPONENTS && c, "%zu records", n);
        for (size_t i = 0; i < n; i++) {
                fuzz_check_str(c[i].logical_path, VSS_MAX_STRING);
                fuzz_check_str(c[i].name, VSS_MAX_NAME);
                fuzz_assert(c[i].name[0] != 0, "components[%zu]: empty name", i);
                fuzz_check_str(c[i].backup_options, VSS_MAX_STRING);
                fuzz_check_str(c[i].backup_stamp, VSS_MAX_STRING);
                fuzz_check_str(c[i].previous_backup_stamp, VSS_MAX_STRING);
                fuzz_check_str(c[i].restore_options, VSS_MAX_STRING);
                fuzz_check_str(c[i].pre_restore_failure_msg, VSS_MAX_MESSAGE);
                fuzz_check_str(c[i].post_restore_failure_msg, VSS_MAX_MESSAGE);
                fuzz_assert((unsigned) c[i].restore_target <= VSS_RT_ORIGINAL_LOCATION, "restore_target %d",
                            (int) c[i].restore_target);
                fuzz_assert((unsigned) c[i].file_restore_status <= VSS_RS_FAILED, "file_restore_status %d",
                            (int) c[i].file_restore_status);
                fuzz_assert(c[i].n_new_targets <= 64 && (c[i].n_new_targets == 0 || c[i].new_targets),
                            "components[%zu]: %zu new targets", i, c[i].n_new_targets);
                for (size_t k = 0; k < c[i].n_new_targets; k++) {
                        const vss_file_mapping *t = &c[i].new_targets[k];
                        fuzz_check_str(t->path, VSS_MAX_STRING);
                        fuzz_check_str(t->filespec, VSS_MAX_NAME);
                        fuzz_check_str(t->destination, VSS_MAX_STRING);
                        fuzz_assert(t->path[0] == '/' && t->destination[0] == '/' && t->filespec[0] != 0,
                                    "components[%zu].new_targets[%zu]", i, k);
                }
        }
}

/* bcd_components_format() takes pointers to records (vssd passes a subset of its document's). */
static char *format_records(const vss_bc_component *c, size_t n) {
        const vss_bc_component **p = calloc(n ? n : 1, sizeof(*p));
        char *text = NULL;
        fuzz_assert(p, "out of memory");
        for (size_t i = 0; i < n; i++)
                p[i] = &c[i];
        int r = bcd_components_format(p, n, &text);
        fuzz_assert(r == 0 && text, "bcd_components_format: %d", r);
        free(p);
        return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *input = fuzz_cstring(data, size);
        char err[FUZZ_ERRSIZE];
        vss_bc_component *c = NULL, *c2 = NULL;
        size_t n = 0, n2 = 0;

        fuzz_err_reset(err);
        int r = bcd_components_parse(input, &c, &n, err, sizeof(err));
        fuzz_check_err("bcd_components_parse", r, err);
        fuzz_assert(r == 0 || r == -EINVAL, "unexpected result %d", r);
        if (r != 0) {
                fuzz_assert(c == NULL && n == 0, "failure with a result");
                free(input);
                return 0;
        }
        check_records(c, n);

        char *text = format_records(c, n);
        fuzz_err_reset(err);
        r = bcd_components_parse(text, &c2, &n2, err, sizeof(err));
        fuzz_check_err("bcd_components_parse", r, err);
        fuzz_assert(r == 0, "bcd_components_format wrote records bcd_components_parse refuses: %s\n  input:     %s\n"
                    "  formatted: %s", err, input, text);
        fuzz_assert(n2 == n, "%zu records became %zu", n, n2);
        char *text2 = format_records(c2, n2);
        fuzz_assert(strcmp(text, text2) == 0, "round trip changed the records:\n  first:  %s\n  second: %s", text, text2);

        free(text2);
        free(text);
        bcd_components_free(c2, n2);
        bcd_components_free(c, n);
        free(input);
        return 0;
}
