/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for writer metadata documents: built by writers, parsed by vssd and requesters. */

#include "lib/common.h"
#include "tests/check.h"
#include "lib/components.h"

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
        /* VSS: the same logical path and name twice; a name with a separator; a path with a
         * wildcard, a filespec naming a directory. */
        CHECK(vss_metadata_add_component(&md, "data", "tables", "again", true, true) == VSS_E_OBJECT_ALREADY_EXISTS);
        CHECK(vss_metadata_add_component(&md, "", "data/tables", NULL, true, true) == VSS_E_INVALIDARG);
        CHECK(vss_metadata_add_files(&md, "data", "tables", "/srv/*/db", "*", true) == VSS_E_INVALIDARG);
        CHECK(vss_metadata_add_files(&md, "data", "tables", "/srv/db", "../../etc/passwd", false) == VSS_E_INVALIDARG);
        CHECK(vss_metadata_add_exclude_files(&md, "/srv/db", "x/y", false) == VSS_E_INVALIDARG);
        CHECK(vss_metadata_add_files(&md, "data", "tables", "/srv/db", "*.tbl", true) == 0);
        CHECK(vss_metadata_add_files(&md, "data", "nope", "/srv/db", "*", true) == VSS_E_OBJECT_NOT_FOUND);
        CHECK(vss_metadata_add_files(&md, "data", "tables", "", "*", true) == VSS_E_INVALIDARG);
        CHECK(vss_metadata_add_exclude_files(&md, "/srv/db/tmp", "*", true) == 0);
        CHECK(vss_metadata_set_restore_method(&md, VSS_RME_STOP_RESTORE_START, "db.service", false) == 0);
        CHECK(vss_metadata_set_restore_method(&md, (vss_restore_method) 42, NULL, false) == VSS_E_INVALIDARG);
        CHECK(metadata_builder_finish(&md, &o, &doc) == 0);
        metadata_builder_done(&md);

        vss_writer_metadata *m = NULL;
        char why[512] = "";
        CHECK(metadata_parse(doc, &m, why, sizeof(why)) == 0);
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
                /* A component name with a separator, a path with a wildcard, a filespec with a '/'. */
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"a\",\"instance_name\":\"\",\"components\":[{\"name\":\"b/c\",\"logical_path\":\"a\",\"caption\":\"\",\"files\":[]}]}",
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"a\",\"instance_name\":\"\",\"components\":[{\"name\":\"c\",\"logical_path\":\"\",\"caption\":\"\",\"files\":[{\"path\":\"/srv/*/d\",\"filespec\":\"*\",\"recursive\":false}]}]}",
                "{\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"name\":\"a\",\"instance_name\":\"\",\"components\":[{\"name\":\"c\",\"logical_path\":\"\",\"caption\":\"\",\"files\":[{\"path\":\"/srv\",\"filespec\":\"../x\",\"recursive\":false}]}]}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                vss_writer_metadata *m = NULL;
                char why[512] = "";
                if (!(metadata_parse(bad[i], &m, why, sizeof(why)) == -EINVAL && why[0] && !m))
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
        char why[512] = "";
        CHECK(metadata_parse(huge, &m, why, sizeof(why)) == -EINVAL && strstr(why, "larger than"));
        free(huge);
        /* Deep nesting is refused by the tokenizer's depth limit. */
        char deep[200];
        memset(deep, '[', sizeof(deep) - 1);
        deep[sizeof(deep) - 1] = 0;
        CHECK(metadata_parse(deep, &m, why, sizeof(why)) == -EINVAL);
}

/* A valid writer metadata document with one field replaced: each bad value must be refused with
 * a message naming that field. */
static const char *const good_wmd =
        "{\"format\":\"openvss-writer-metadata\",\"version\":1,"
        "\"writer_id\":\"6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\",\"instance_id\":\"7a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10\","
        "\"name\":\"a\",\"instance_name\":\"\","
        "\"components\":[{\"logical_path\":\"\",\"name\":\"c\",\"files\":[{\"path\":\"/srv\",\"filespec\":\"*\",\"recursive\":true}]}]}";

static void test_field_errors(void) {
        static const struct { const char *from, *to, *field; } cases[] = {
                { "\"version\":1", "\"version\":2", "version" },
                { "openvss-writer-metadata", "something-else", "format" },
                { "\"name\":\"a\"", "\"name\":7", "name" },
                { "\"instance_name\":\"\"", "\"instance_name\":\"\",\"colour\":1", "colour" },
                { "\"path\":\"/srv\"", "\"path\":\"srv\"", "components[0].files[0].path" },
                { "\"recursive\":true", "\"recursive\":\"yes\"", "components[0].files[0].recursive" },
                { "\"name\":\"c\"", "\"name\":\"\"", "components[0].name" },
                { "\"writer_id\":\"6a3bd1a8", "\"writer_id\":\"zz3bd1a8", "writer_id" },
                /* Only vssd records a writer's owner, in the backup components document. */
                { "\"instance_name\":\"\"", "\"instance_name\":\"\",\"owner_uid\":0", "owner_uid" },
        };
        vss_writer_metadata *m = NULL;
        char why[512];
        CHECK(metadata_parse(good_wmd, &m, why, sizeof(why)) == 0);
        metadata_free(m);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char doc[2048];
                const char *at = strstr(good_wmd, cases[i].from);
                CHECK(at != NULL);
                if (!at)
                        continue;
                snprintf(doc, sizeof(doc), "%.*s%s%s", (int) (at - good_wmd), good_wmd, cases[i].to,
                         at + strlen(cases[i].from));
                m = NULL;
                why[0] = 0;
                int r = metadata_parse(doc, &m, why, sizeof(why));
                if (r != -EINVAL || m || strncmp(why, cases[i].field, strlen(cases[i].field)) != 0) {
                        fprintf(stderr, "case %zu: r=%d error \"%s\", expected it to name %s\n", i, r, why, cases[i].field);
                        test_failures++;
                }
                metadata_free(m);
        }
}

/* The backup components document: built as vssd builds it, formatted, parsed back. */
static void test_bcd_roundtrip(void) {
        vss_backup_document *d = bcd_new();
        vss_writer_metadata *m = NULL;
        char why[512];
        vss_id wid, iid, sid;
        CHECK(d && metadata_parse(good_wmd, &m, why, sizeof(why)) == 0);
        if (!d || !m)
                return;
        wid = m->writer_id;
        iid = m->instance_id;
        vss_id_new(&sid);
        d->backup_type = VSS_BT_INCREMENTAL;
        d->component_mode = true;
        d->snapshot_set_id = sid;
        d->created_usec = 1234567;
        CHECK(bcd_add_writer(d, m, 1234) == 0 && bcd_add_writer(d, m, 1234) == 0 && d->n_writers == 1);
        CHECK(bcd_add_shadow(d, &sid, "/srv", "/srv/.openvss/x/y", "btrfs") == 0);
        vss_bc_component *c = bcd_add_component(d, &wid, &iid, "", "c");
        CHECK(c && bcd_add_component(d, &wid, &iid, "", "c") == c && d->n_components == 1);
        if (c) {
                c->backup_succeeded = true;
                CHECK(bcd_set(&c->backup_stamp, "lsn:42") == 0);
                CHECK(bcd_set(&c->previous_backup_stamp, "lsn:7") == 0);
                c->restore_target = VSS_RT_ALTERNATE;
                c->file_restore_status = VSS_RS_ALL;
                CHECK(bcd_add_new_target(c, "/srv", "*.db", true, "/alt") == 0);
                CHECK(bcd_add_writer_file(c, "/var/lib/w/label", "", false, "/srv/label") == 0);
        }
        char *json = NULL;
        CHECK(bcd_format(d, &json) == 0);
        vss_backup_document *p = NULL;
        CHECK_HR(vss_backup_document_parse(json, &p, why, sizeof(why)), 0);
        if (p) {
                CHECK(p->version == 1 && p->backup_type == VSS_BT_INCREMENTAL && p->component_mode);
                CHECK(vss_id_equal(&p->snapshot_set_id, &sid) && p->created_usec == 1234567);
                CHECK(p->n_shadows == 1 && streq(p->shadows[0].provider, "btrfs"));
                CHECK(p->n_writers == 1 && streq(p->writers[0]->name, "a"));
                /* vssd's record of the writer's uid comes back, and is not part of the writer's own document. */
                CHECK(p->n_writers == 1 && p->writers[0]->owner_known && p->writers[0]->owner_uid == 1234);
                CHECK(p->n_writers == 1 && !strstr(p->writers[0]->document, "owner_uid"));
                CHECK(strstr(json, "\"owner_uid\":1234") != NULL);
                /* Held to its limits like every field. */
                char *bad = strdup(json), *at = bad ? strstr(bad, "\"owner_uid\":1234") : NULL;
                if (at) {
                        memcpy(at, "\"owner_uid\":-123", strlen("\"owner_uid\":-123"));
                        vss_backup_document *q = NULL;
                        CHECK_HR(vss_backup_document_parse(bad, &q, why, sizeof(why)), VSS_E_INVALIDARG);
                        CHECK(!q && strstr(why, "writers[0].owner_uid") != NULL);
                        vss_backup_document_free(q);
                }
                free(bad);
                const vss_bc_component *pc = vss_backup_document_find(p, &wid, NULL, "", "c");
                CHECK(pc && pc->backup_succeeded && streq(pc->backup_stamp, "lsn:42") &&
                      streq(pc->previous_backup_stamp, "lsn:7") && pc->restore_target == VSS_RT_ALTERNATE &&
                      pc->file_restore_status == VSS_RS_ALL && pc->n_new_targets == 1 &&
                      streq(pc->new_targets[0].destination, "/alt"));
                CHECK(pc && pc->n_writer_files == 1 && streq(pc->writer_files[0].path, "/var/lib/w/label") &&
                      streq(pc->writer_files[0].filespec, "*") && !pc->writer_files[0].recursive &&
                      streq(pc->writer_files[0].destination, "/srv/label"));
                CHECK(vss_backup_document_writer(p, pc) != NULL);
                char *again = NULL;
                CHECK(bcd_format(p, &again) == 0 && again && streq(again, json));
                free(again);
        }
        vss_backup_document_free(p);
        /* Component records alone (what events carry). */
        char *recs = NULL;
        vss_bc_component *rc = NULL;
        size_t n = 0;
        CHECK(bcd_components_format((const vss_bc_component *const[]) { c }, 1, &recs) == 0);
        CHECK(bcd_components_parse(recs, &rc, &n, why, sizeof(why)) == 0 && n == 1 && streq(rc[0].backup_stamp, "lsn:42") &&
              rc[0].n_writer_files == 1 && streq(rc[0].writer_files[0].destination, "/srv/label"));
        bcd_components_free(rc, n);
        free(recs);

        /* Bad documents name the field. */
        static const struct { const char *from, *to, *field; } cases[] = {
                { "\"backup_type\":2", "\"backup_type\":9", "backup_type" },
                { "\"format\":\"openvss-backup-components\"", "\"format\":\"x\"", "format" },
                { "\"backup_stamp\":\"lsn:42\"", "\"backup_stamp\":42", "components[0].backup_stamp" },
                { "\"restore_target\":2", "\"restore_target\":17", "components[0].restore_target" },
                { "\"destination\":\"\\/alt\"", "\"destination\":\"alt\"", "components[0].new_targets[0].destination" },
                { "\"provider\":\"btrfs\"", "\"provider\":null", "shadows[0].provider" },
                { "\"stored_as\":\"\\/srv\\/label\"", "\"stored_as\":\"label\"", "components[0].writer_files[0].stored_as" },
                { "\"stored_as\":\"\\/srv\\/label\"", "\"stored_as\":\"\\/x\",\"to\":1", "components[0].writer_files[0].to" },
                { "\"name\":\"a\"", "\"name\":\"\"", "writers[0].name" },
                { "\"components\":[{\"writer_id\"", "\"extra\":1,\"components\":[{\"writer_id\"", "extra" },
        };
        for (size_t i = 0; json && i < ELEMENTSOF(cases); i++) {
                const char *at = strstr(json, cases[i].from);
                if (!at) {
                        fprintf(stderr, "bcd case %zu: '%s' not in %s\n", i, cases[i].from, json);
                        test_failures++;
                        continue;
                }
                char *bad = NULL;
                CHECK(asprintf(&bad, "%.*s%s%s", (int) (at - json), json, cases[i].to, at + strlen(cases[i].from)) > 0);
                vss_backup_document *x = NULL;
                why[0] = 0;
                int r = vss_backup_document_parse(bad, &x, why, sizeof(why));
                if (r != VSS_E_INVALIDARG || x || strncmp(why, cases[i].field, strlen(cases[i].field)) != 0) {
                        fprintf(stderr, "bcd case %zu: r=0x%x error \"%s\", expected it to name %s\n", i, (unsigned) r, why,
                                cases[i].field);
                        test_failures++;
                }
                vss_backup_document_free(x);
                free(bad);
        }
        /* Truncated at every length: refused cleanly, never accepted. */
        for (size_t len = 0; json && len < strlen(json); len += 7) {
                char *cut = strndup(json, len);
                vss_backup_document *x = NULL;
                CHECK(vss_backup_document_parse(cut, &x, why, sizeof(why)) == VSS_E_INVALIDARG && !x);
                free(cut);
        }
        free(json);
        metadata_free(m);
        bcd_free(d);
}

int main(void) {
        test_roundtrip();
        test_bad_documents();
        test_field_errors();
        test_bcd_roundtrip();
        printf("%s - metadata\n", test_failures ? "not ok" : "ok");
        return test_failures ? 1 : 0;
}
