/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libsqlite3 through dlopen() (registry-sqlite.h). */

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "daemon/registry-sqlite.h"

SqliteApi registry_sqlite;

static void *handle;
static unsigned refs;
static bool shared; /* loaded already by someone else in this process (a test): left as it is */
static char load_error[512];

int registry_sqlite_load(void) {
        static const struct {
                const char *name;
                size_t offset;
        } syms[] = {
#define SYM(f) { "sqlite3_" #f, offsetof(SqliteApi, f) }
                SYM(open_v2),     SYM(close),      SYM(shutdown),       SYM(exec),
                SYM(prepare_v2),  SYM(step),       SYM(finalize),       SYM(bind_text),
                SYM(bind_int64),  SYM(column_text), SYM(column_int),    SYM(column_int64),
                SYM(changes),     SYM(get_autocommit), SYM(extended_result_codes),
                SYM(busy_timeout), SYM(errstr),    SYM(errmsg),         SYM(errcode),
                SYM(file_control),
#undef SYM
        };
        if (handle) {
                refs++;
                return 0;
        }
        /* The soname vssd was built against (its major version is its ABI). */
        void *other = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_NOLOAD);
        shared = other;
        if (other)
                dlclose(other);
        void *h = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                snprintf(load_error, sizeof(load_error), "cannot load libsqlite3.so.0: %s", dlerror());
                return -ELIBACC;
        }
        for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
                void *f = dlsym(h, syms[i].name);
                if (!f) {
                        snprintf(load_error, sizeof(load_error), "libsqlite3.so.0 has no %s", syms[i].name);
                        dlclose(h);
                        memset(&registry_sqlite, 0, sizeof(registry_sqlite));
                        return -ELIBACC;
                }
                memcpy((char *) &registry_sqlite + syms[i].offset, &f, sizeof(f));
        }
        handle = h;
        refs = 1;
        return 0;
}

const char *registry_sqlite_error(void) {
        return load_error[0] ? load_error : NULL;
}

void registry_sqlite_unload(void) {
        if (!handle || --refs > 0)
                return;
        if (!shared)
                (void) registry_sqlite.shutdown(); /* its global state goes before its code */
        (void) dlclose(handle);
        handle = NULL;
        memset(&registry_sqlite, 0, sizeof(registry_sqlite));
}
