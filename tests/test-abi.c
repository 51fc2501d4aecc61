/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss's promises to programs built against other versions of its headers: the size field of
 * caller-filled structures, the names from before 0.2 (aliases of the same functions), and
 * vss_writer_new@LIBVSS_0.1 taking 0.1's structures, checked in the built shared library. */

#include <dlfcn.h>
#include <stddef.h>

#include <vss/admin.h>
#include <vss/writer.h>

#include "lib/common.h"
#include "tests/check.h"

int test_failures;

/* 0.1's structures: the same fields, without the size field. */
typedef struct options_v0_1 {
        vss_id class_id, instance_id;
        const char *name, *instance_name;
        vss_usage_type usage_type;
        vss_source_type source_type;
        vss_app_level app_level;
        uint32_t freeze_window_ms;
} options_v0_1;

typedef struct callbacks_v0_1 {
        vss_writer_identify_fn identify;
        vss_writer_event_fn events[10];
} callbacks_v0_1;

static void test_size_field(void) {
        vss_writer *w = NULL;
        /* Zero-initialized: today's layout. */
        vss_writer_options o = { .name = "w", .freeze_window_ms = 1234 };
        vss_writer_callbacks cb = {};
        CHECK_HR(vss_writer_new(&o, &cb, NULL, &w), 0);
        CHECK(w && vss_writer_get_options(w)->freeze_window_ms == 1234);
        w = vss_writer_free(w);
        o.size = sizeof(o);
        cb.size = sizeof(cb);
        CHECK_HR(vss_writer_new(&o, &cb, NULL, &w), 0);
        w = vss_writer_free(w);
        /* Smaller than any layout with the field: refused. */
        o.size = offsetof(vss_writer_options, size);
        CHECK_HR(vss_writer_new(&o, NULL, NULL, &w), VSS_E_INVALIDARG);
        o.size = 0;
        cb.size = 8;
        CHECK_HR(vss_writer_new(&o, &cb, NULL, &w), VSS_E_INVALIDARG);
        CHECK(w == NULL);
        /* From a newer header: fine while the fields unknown here are zero. */
        struct {
                vss_writer_options o;
                uint64_t newer[2];
        } big = { .o = { .name = "w", .size = sizeof(big) } };
        CHECK_HR(vss_writer_new(&big.o, NULL, NULL, &w), 0);
        w = vss_writer_free(w);
        big.newer[1] = 1;
        CHECK_HR(vss_writer_new(&big.o, NULL, NULL, &w), VSS_E_INVALIDARG);
        CHECK(w == NULL);
}

static void *sym(void *lib, const char *name, const char *version) {
        void *p = version ? dlvsym(lib, name, version) : dlsym(lib, name);
        if (!p) {
                fprintf(stderr, "%s@%s not in %s\n", name, version ? version : "(default)", LIBVSS_PATH);
                test_failures++;
        }
        return p;
}

static void test_shared_library(void) {
        void *lib = dlopen(LIBVSS_PATH, RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
                fprintf(stderr, "cannot load %s: %s\n", LIBVSS_PATH, dlerror());
                test_failures++;
                return;
        }
        /* The names before 0.2 are the same functions as their successors. */
        static const char *const pairs[][2] = {
                { "vss_writer_unref", "vss_writer_free" },
                { "vss_backup_release", "vss_backup_free" },
                { "vss_async_unref", "vss_async_free" },
                { "vss_backup_free_writer_status", "vss_backup_writer_status_clear" },
        };
        for (size_t i = 0; i < ELEMENTSOF(pairs); i++) {
                void *old = sym(lib, pairs[i][0], "LIBVSS_0.1"), *now = sym(lib, pairs[i][1], "LIBVSS_0.2");
                CHECK(old && old == now);
        }
        CHECK(sym(lib, "vss_admin_new", "LIBVSS_0.2") != NULL);
        /* 0.3 adds the snapshot set that pauses. */
        CHECK(sym(lib, "vss_backup_do_snapshot_set_paused", "LIBVSS_0.3") != NULL);
        CHECK(sym(lib, "vss_backup_wait_paused", "LIBVSS_0.3") != NULL);
        CHECK(sym(lib, "vss_backup_continue_snapshot_set", "LIBVSS_0.3") != NULL);
        CHECK(sym(lib, "vss_event_is_path_affected", "LIBVSS_0.4") != NULL);
        CHECK(dlsym(lib, "vss_writer_new_v0_1") == NULL && dlsym(lib, "vss_connect") == NULL);

        /* A program built against 0.1 passes 0.1's structures to vss_writer_new@LIBVSS_0.1. */
        typedef int (*new_v0_1_fn)(const options_v0_1 *, const callbacks_v0_1 *, void *, vss_writer **);
        typedef const vss_writer_options *(*get_options_fn)(vss_writer *);
        typedef vss_writer *(*free_fn)(vss_writer *);
        new_v0_1_fn new_v0_1 = (new_v0_1_fn) sym(lib, "vss_writer_new", "LIBVSS_0.1");
        get_options_fn get_options = (get_options_fn) sym(lib, "vss_writer_get_options", "LIBVSS_0.1");
        free_fn free_w = (free_fn) sym(lib, "vss_writer_unref", "LIBVSS_0.1");
        CHECK(new_v0_1 != (new_v0_1_fn) sym(lib, "vss_writer_new", "LIBVSS_0.2"));
        if (new_v0_1 && get_options && free_w) {
                /* Whatever follows 0.1's structure in memory must not matter. */
                struct {
                        options_v0_1 o;
                        uint64_t garbage;
                } o = { .o = { .name = "old", .app_level = VSS_APP_BACK_END, .freeze_window_ms = 4321 },
                        .garbage = UINT64_MAX };
                struct {
                        callbacks_v0_1 cb;
                        uint64_t garbage;
                } cb = { .garbage = UINT64_MAX };
                vss_writer *w = NULL;
                CHECK_HR(new_v0_1(&o.o, &cb.cb, NULL, &w), 0);
                /* 0.1's view of the options is a prefix of today's. */
                const options_v0_1 *got = w ? (const options_v0_1 *) get_options(w) : NULL;
                CHECK(got && streq(got->name, "old") && got->app_level == VSS_APP_BACK_END &&
                      got->freeze_window_ms == 4321 && !vss_id_is_null(&got->instance_id));
                free_w(w);
                CHECK_HR(new_v0_1(NULL, NULL, NULL, &w), VSS_E_INVALIDARG);
        }
        dlclose(lib);
}

int main(void) {
        _Static_assert(sizeof(options_v0_1) == offsetof(vss_writer_options, reconnect), "0.1 layout");
        _Static_assert(sizeof(callbacks_v0_1) == offsetof(vss_writer_callbacks, size), "0.1 layout");
        test_size_field();
        test_shared_library();
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
