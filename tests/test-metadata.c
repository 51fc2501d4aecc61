/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for writer metadata documents: built by writers, parsed by vssd and requesters. */

#include "lib/common.h"
#include "tests/check.h"
#include "lib/metadata.h"

int test_failures;

static void test_roundtrip(void) {
        struct vss_metadata_builder md;
        vss_writer_options o = { .name = "db", .instance_name = "main", .app_level = VSS_APP_BACK_END,
                                 .freeze_window_ms = 5000, .usage_type = VSS_UT_USERDATA };
        vss_id_new(&o.class_id);
        vss_id_new(&o.instance_id);
        char *doc = NULL;
        CHECK(metadata_builder_init(&md) == 0);
        CHECK(vss_metadata_add_component(&md, "data", "tables", "Tables", true, false) == 0);
        CHECK(vss_metadata_add_component(&md, "data", "tables", "again", true, true) == VSS_E_INVALIDARG);
        CHECK(vss_metadata_add_files(&md, "data", "tables", "/srv/db", "*.tbl", true) == 0);
        CHECK(vss_metadata_add_files(&md, "data", "nope", "/srv/db", "*", true) == VSS_E_OBJECT_NOT_FOUND);
        CHECK(vss_metadata_add_files(&md, "data", "tables", "", "*", true) == VSS_E_INVALIDARG);
        CHECK(vss_metadata_add_exclude_files(&md, "/srv/db/tmp", "*", true) == 0);
        CHECK(vss_metadata_set_restore_method(&md, VSS_RME_STOP_RESTORE_START, "db.service", false) == 0);
        CHECK(vss_metadata_set_restore_method(&md, (vss_restore_method) 42, NULL, false) == VSS_E_INVALIDARG);
        CHECK(metadata_builder_finish(&md, &o, &doc) == 0);
        metadata_builder_done(&md);

        vss_writer_metadata *m = NULL;
        const char *why = NULL;
        CHECK(metadata_parse(doc, &m, &why) == 0);
        if (m) {
                CHECK(streq(m->name, "db") && streq(m->instance_name, "main"));
                CHECK(vss_id_equal(&m->writer_id, &o.class_id) && vss_id_equal(&m->instance_id, &o.instance_id));
                CHECK(m->app_level == VSS_APP_BACK_END && m->freeze_window_ms == 5000 && m->usage_type == VSS_UT_USERDATA);
                CHECK(m->n_components == 1 && streq(m->components[0].caption, "Tables"));
                CHECK(m->components[0].selectable_for_backup && !m->components[0].selectable_for_restore);
                CHECK(m->components[0].n_files == 1 && streq(m->components[0].files[0].filespec, "*.tbl") &&
                      m->components[0].files[0].recursive);
                CHECK(m->n_excludes == 1 && streq(m->excludes[0].path, "/srv/db/tmp"));
                CHECK(m->restore_method == VSS_RME_STOP_RESTORE_START && streq(m->restore_service, "db.service"));
                CHECK(metadata_find_component(m, "data", "tables") != NULL);
                CHECK(metadata_find_component(m, "", "tables") == NULL);
                CHECK(streq(m->document, doc));
        }
        metadata_free(m);
        free(doc);
}

static void test_bad_documents(void) {
        static const char *const bad[] = {
                "",
                "[]",
                "{",
                "{\"writer_id\": \"x\"}",
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"\"}",
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"a\",\"instance_name\":\"\",\"app_level\":7}",
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"a\",\"instance_name\":\"\",\"components\":[1]}",
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"a\",\"instance_name\":\"\",\"components\":[{\"name\":\"c\",\"logical_path\":\"\",\"caption\":\"\",\"files\":[{\"path\":5}]}]}",
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"a\",\"instance_name\":\"\"} trailing",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                vss_writer_metadata *m = NULL;
                const char *why = NULL;
                if (!(metadata_parse(bad[i], &m, &why) == -EINVAL && why && !m))
                        fprintf(stderr, "accepted bad document %zu\n", i), test_failures++;
        }
        /* Oversized documents are refused before parsing. */
        size_t n = VSS_MAX_DOCUMENT + 16;
        char *huge = malloc(n + 1);
        memset(huge, ' ', n);
        huge[0] = '{';
        huge[n - 1] = '}';
        huge[n] = 0;
        vss_writer_metadata *m = NULL;
        const char *why = NULL;
        CHECK(metadata_parse(huge, &m, &why) == -EINVAL && strstr(why, "too large"));
        free(huge);
        /* Deep nesting is refused by the tokenizer's depth limit. */
        char deep[200];
        memset(deep, '[', sizeof(deep) - 1);
        deep[sizeof(deep) - 1] = 0;
        CHECK(metadata_parse(deep, &m, &why) == -EINVAL);
}

int main(void) {
        test_roundtrip();
        test_bad_documents();
        printf("%s - metadata\n", test_failures ? "not ok" : "ok");
        return test_failures ? 1 : 0;
}
