/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* <vss/admin.h> against the real vssd: what each call returns, how it fails, and that what it
 * reports agrees with the requester face that made the shadow copies. */

#include <limits.h>
#include <sys/stat.h>

#include <vss/admin.h>

#include "lib/common.h"
#include "tests/harness.h"

static vss_admin *admin(Harness *h) {
        vss_admin *a = NULL;
        CHECK_HR(vss_admin_new(&a), 0);
        CHECK_HR(vss_admin_connect(a, harness_socket(h)), 0);
        return a;
}

/* A persistent snapshot set of the paths, made through the requester face; its id in ret_set. */
static void make_set(Harness *h, char *const *paths, size_t n, vss_id *ret_set, vss_id *ret_shadows) {
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_set_context(b, VSS_CTX_CLIENT_ACCESSIBLE_WRITERS), 0);
        CHECK_HR(vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        CHECK_HR(vss_backup_start_snapshot_set(b, ret_set), 0);
        for (size_t i = 0; i < n; i++)
                CHECK_HR(vss_backup_add_to_snapshot_set(b, paths[i], NULL, &ret_shadows[i]), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_free(b);
}

static const vss_admin_shadow *shadow_by_id(vss_admin *a, const vss_id *id) {
        const vss_admin_shadow *s;
        for (size_t i = 0; (s = vss_admin_shadow_get(a, i)); i++)
                if (vss_id_equal(&s->shadow_id, id))
                        return s;
        return NULL;
}

static void test_admin_lists(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), real[PATH_MAX];
        harness_writer(h, "w", NULL);
        vss_admin *a = admin(h);
        size_t n = 99;

        /* Writers: the one subscribed, no session yet. */
        CHECK_HR(vss_admin_list_writers(a, &n), 0);
        CHECK(n == 1);
        const vss_admin_writer *w = vss_admin_writer_get(a, 0);
        CHECK(w && streq(w->status.name, "w"));
        CHECK(w && w->status.state == VSS_WS_STABLE && w->status.failure == 0);
        CHECK(w && vss_id_is_null(&w->session_id) && w->as_of_usec > 0);
        CHECK(w && !vss_id_is_null(&w->status.writer_id) && !vss_id_is_null(&w->status.instance_id));
        CHECK(vss_admin_writer_get(a, 1) == NULL);

        /* Providers: file among them; the data directory explained. */
        CHECK_HR(vss_admin_list_providers(a, &n), 0);
        bool file = false;
        for (size_t i = 0; i < n; i++) {
                const vss_admin_provider *p = vss_admin_provider_get(a, i);
                CHECK(p && !isempty(p->name) && !isempty(p->type) && !vss_id_is_null(&p->provider_id));
                file = file || (p && streq(p->name, "file"));
        }
        CHECK(file);
        const vss_admin_volume *v = NULL;
        CHECK_HR(vss_admin_explain_volume(a, data, &v), 0);
        CHECK(v && !isempty(v->provider) && v->why);
        CHECK_HR(vss_admin_explain_volume(a, "/nonexistent/x", &v), VSS_E_OBJECT_NOT_FOUND);
        CHECK(!isempty(vss_admin_errmsg(a)));

        /* Shadows: none, then the set made through the requester face, as it was made. */
        CHECK_HR(vss_admin_list_shadows(a, &n), 0);
        CHECK(n == 0 && vss_admin_shadow_get(a, 0) == NULL);
        vss_id set, shadow;
        make_set(h, &data, 1, &set, &shadow);
        CHECK_HR(vss_admin_list_shadows(a, &n), 0);
        CHECK(n == 1);
        const vss_admin_shadow *s = shadow_by_id(a, &shadow);
        CHECK(s && vss_id_equal(&s->snapshot_set_id, &set));
        CHECK(s && realpath(data, real) && streq(s->original_path, real));
        CHECK(s && s->shadow_path[0] == '/' && streq(s->provider, "file") && streq(s->exposed_at, ""));
        CHECK(s && (s->attributes & VSS_VOLSNAP_ATTR_PERSISTENT) && s->created_usec > 0);

        /* The writer's status now comes from that session. */
        CHECK_HR(vss_admin_list_writers(a, &n), 0);
        w = vss_admin_writer_get(a, 0);
        CHECK(w && !vss_id_is_null(&w->session_id));

        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_ALL, NULL, NULL), 0);
        vss_admin_free(a);
}

static void test_admin_delete_expose(void) {
        Harness *h = harness_new(NULL);
        char *d1 = harness_make_data(h, "one"), *d2 = harness_make_data(h, "two"), at[PATH_MAX];
        char *both[] = { d1, d2 };
        harness_writer(h, "w", NULL);
        vss_admin *a = admin(h);
        vss_id set1, set2, sh1, sh2[2];
        uint32_t deleted = 99;
        size_t n;

        make_set(h, &d1, 1, &set1, &sh1);
        make_set(h, both, 2, &set2, sh2);

        /* Expose one, see it listed as exposed, unexpose it. */
        snprintf(at, sizeof(at), "%s/at", harness_dir(h));
        CHECK(mkdir(at, 0755) == 0);
        const char *where = NULL;
        CHECK_HR(vss_admin_expose(a, &sh1, at, &where), 0);
        CHECK(where && streq(where, at));
        CHECK_HR(vss_admin_list_shadows(a, &n), 0);
        CHECK(n == 3);
        const vss_admin_shadow *s = shadow_by_id(a, &sh1);
        CHECK(s && streq(s->exposed_at, at));
        CHECK(harness_sh(h, NULL, "diff -r '%s' '%s'", d1, at) == 0);
        CHECK_HR(vss_admin_expose(a, &sh2[0], at, NULL), VSS_E_OBJECT_ALREADY_EXISTS);
        CHECK_HR(vss_admin_unexpose(a, at), 0);
        CHECK_HR(vss_admin_unexpose(a, at), VSS_E_OBJECT_NOT_FOUND);
        CHECK(strstr(vss_admin_errmsg(a), "no shadow copy is exposed at") != NULL);

        /* Delete by shadow, by set, all; each gone means gone. */
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_SHADOW, &sh1, &deleted), 0);
        CHECK(deleted == 1);
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_SHADOW, &sh1, &deleted), VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_SET, &set1, NULL), VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(vss_admin_list_shadows(a, &n), 0);
        CHECK(n == 2 && shadow_by_id(a, &sh1) == NULL);
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_SET, &set2, &deleted), 0);
        CHECK(deleted == 2);
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_ALL, NULL, &deleted), 0);
        CHECK(deleted == 0);
        CHECK_HR(vss_admin_list_shadows(a, &n), 0);
        CHECK(n == 0);
        CHECK(harness_count_shadow_files(h) == 0);
        vss_admin_free(a);
}

static void test_admin_errors(void) {
        Harness *h = harness_new(NULL);
        vss_admin *a = NULL;
        vss_id id;
        char bad[PATH_MAX];
        size_t n;

        CHECK_HR(vss_admin_new(NULL), VSS_E_INVALIDARG);
        CHECK(vss_admin_free(NULL) == NULL);
        CHECK_STR(vss_admin_errmsg(NULL), "no handle");
        CHECK_HR(vss_admin_list_writers(NULL, &n), VSS_E_INVALIDARG);
        CHECK(vss_admin_shadow_get(NULL, 0) == NULL);

        /* Not connected; no vssd there. */
        CHECK_HR(vss_admin_new(&a), 0);
        CHECK_HR(vss_admin_list_shadows(a, &n), VSS_E_BAD_STATE);
        snprintf(bad, sizeof(bad), "%s/no-such.sock", harness_dir(h));
        CHECK_HR(vss_admin_connect(a, bad), VSS_E_WRITER_INFRASTRUCTURE);
        CHECK(strncmp(vss_admin_errmsg(a), "cannot connect to vssd: ", 24) == 0);
        CHECK_HR(vss_admin_connect(a, harness_socket(h)), 0);
        CHECK_HR(vss_admin_connect(a, harness_socket(h)), VSS_E_BAD_STATE);

        /* Arguments checked before anything is sent. */
        vss_id_new(&id);
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_ALL, &id, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_SHADOW, NULL, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_admin_delete_shadows(a, (vss_admin_delete) 7, &id, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_admin_expose(a, NULL, "/tmp", NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_admin_expose(a, &id, "", NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_admin_unexpose(a, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_admin_explain_volume(a, "/", NULL), VSS_E_INVALIDARG);

        /* vssd's refusals come back with its message. */
        CHECK_HR(vss_admin_expose(a, &id, harness_dir(h), NULL), VSS_E_OBJECT_NOT_FOUND);
        CHECK(strstr(vss_admin_errmsg(a), "no shadow copy") != NULL);
        CHECK_HR(vss_admin_delete_shadows(a, VSS_ADMIN_DELETE_SET, &id, NULL), VSS_E_OBJECT_NOT_FOUND);
        CHECK(strstr(vss_admin_errmsg(a), "no snapshot set") != NULL);
        a = vss_admin_free(a);
        CHECK(a == NULL);
}

static const TestCase cases[] = {
        { "admin-lists", test_admin_lists },
        { "admin-delete-expose", test_admin_delete_expose },
        { "admin-errors", test_admin_errors },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
