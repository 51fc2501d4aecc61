/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Providers cut the copies. They are compiled into vssd. create() runs in the commit child
 * process (while writers are frozen), so it must not touch vssd's event loop or bus. */

#include <stdbool.h>

typedef struct Provider {
        const char *name;
        const char *id;           /* a fixed UUID */
        const char *type;         /* "software", "system", "hardware" */
        const char *description;
        /* 0 when the provider can shadow this (canonical) path, -EOPNOTSUPP otherwise. */
        int (*supports)(const char *path);
        /* Where the shadow of source goes, when not under vssd's state directory (NULL: there). */
        int (*shadow_path)(const char *source, const char *set_id, const char *shadow_id, char **ret);
        /* Makes the shadow of source at shadow_path (which does not exist yet). -errno. */
        int (*create)(const char *source, const char *shadow_path);
        /* Deletes a shadow; a missing one is success. */
        int (*remove)(const char *shadow_path);
} Provider;

extern const Provider provider_file;
extern const Provider provider_btrfs;

/* All providers, NULL-terminated. */
extern const Provider *const providers[];

const Provider *provider_find(const char *name);
/* The provider to use for a path when the requester names none. */
const Provider *provider_choose(const char *path);
