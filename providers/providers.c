/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "daemon/provider.h"

/* In order of preference: provider_choose() takes the first that supports a path. */
const Provider *const providers[] = {
        &provider_btrfs,
        &provider_file,
        NULL,
};

const Provider *provider_find(const char *name) {
        for (const Provider *const *p = providers; *p; p++)
                if (strcmp((*p)->name, name) == 0)
                        return *p;
        return NULL;
}

const Provider *provider_choose(const char *path) {
        /* The first provider that supports the path; `file` is last resort and supports any tree. */
        for (const Provider *const *p = providers; *p; p++)
                if ((*p)->supports(path) == 0)
                        return *p;
        return NULL;
}
