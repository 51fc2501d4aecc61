/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/basic/macro.h"
#include "providers/mountinfo.h"
#include "providers/provider.h"

/* In order of preference: provider_choose() takes the first that supports a path. */
static const Provider *const builtin[] = {
#if OPENVSS_BTRFS
        &provider_btrfs,
#endif
        &provider_file,
};
#define N_BUILTIN (sizeof(builtin) / sizeof(builtin[0]))

extern const Provider provider_exec_template;

size_t providers_count(const Providers *ps) {
        return N_BUILTIN + (ps ? ps->n_exec : 0);
}

const Provider *providers_get(const Providers *ps, size_t i) {
        if (i < N_BUILTIN)
                return builtin[i];
        return ps && i < N_BUILTIN + ps->n_exec ? &ps->exec[i - N_BUILTIN] : NULL;
}

const Provider *provider_find(const Providers *ps, const char *name) {
        for (size_t i = 0; i < providers_count(ps); i++)
                if (strcmp(providers_get(ps, i)->name, name) == 0)
                        return providers_get(ps, i);
        return NULL;
}

const Provider *provider_choose(const Providers *ps, const char *path) {
        /* The first provider that supports the path; `file` is last resort and supports any tree. */
        for (size_t i = 0; i < providers_count(ps); i++) {
                const Provider *p = providers_get(ps, i);
                if (!p->named_only && p->supports(p, path) == 0)
                        return p;
        }
        return NULL;
}

static void exec_strings_free(Provider *p) {
        free((char *) p->name);
        free((char *) p->create_cmd);
        free((char *) p->delete_cmd);
        free((char *) p->expose_cmd);
}

int providers_add_exec(Providers *ps, const char *name, const char *create_cmd, const char *delete_cmd,
                       const char *expose_cmd) {
        if (provider_find(ps, name))
                return -EEXIST;
        if (ps->n_exec >= PROVIDERS_MAX_EXEC)
                return -E2BIG;
        Provider p = provider_exec_template;
        p.name = strdup(name);
        p.create_cmd = strdup(create_cmd);
        p.delete_cmd = strdup(delete_cmd);
        p.expose_cmd = expose_cmd ? strdup(expose_cmd) : NULL;
        if (!p.name || !p.create_cmd || !p.delete_cmd || (expose_cmd && !p.expose_cmd)) {
                exec_strings_free(&p);
                return -ENOMEM;
        }
        ps->exec[ps->n_exec++] = p;
        return 0;
}

void providers_done(Providers *ps) {
        for (size_t i = 0; i < ps->n_exec; i++)
                exec_strings_free(&ps->exec[i]);
        ps->n_exec = 0;
}

int mount_of(const char *path, const char *fstype, char *ret_mount, size_t mount_len, char *ret_device,
             size_t device_len) {
        _cleanup_free_ char *target = NULL, *source = NULL;
        int r = mountinfo_find(path, fstype, &target, ret_device ? &source : NULL, NULL);
        if (r < 0)
                return r;
        snprintf(ret_mount, mount_len, "%s", target);
        if (ret_device)
                snprintf(ret_device, device_len, "%s", source);
        return 0;
}
