/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* SIGHUP: the configuration read again and put in place without dropping a client. A file that
 * does not parse changes nothing. Rights apply to every connection's next call; limits and
 * timeouts to what starts after. Sessions in flight hold pointers to exec providers (their
 * volumes), so while any does, the providers stay as they were; so does the file provider's
 * storage while a set is being created. */

#include "daemon/access.h"
#include "daemon/connection.h"
#include "daemon/log.h"
#include "daemon/reload.h"
#include "daemon/session.h"
#include "lib/common.h"

/* An exec provider some session's volume uses, or NULL. */
static const Provider *exec_provider_in_use(Manager *m) {
        const Provider *first = m->providers.exec, *end = m->providers.exec + m->providers.n_exec;
        LIST_FOREACH(sessions, s, m->sessions)
                for (size_t i = 0; i < s->n_volumes; i++)
                        if (s->volumes[i].provider >= first && s->volumes[i].provider < end)
                                return s->volumes[i].provider;
        return NULL;
}

static bool same_string(const char *a, const char *b) {
        return a == b || (a && b && streq(a, b));
}

static bool same_providers(const Providers *a, const Providers *b) {
        if (a->n_exec != b->n_exec)
                return false;
        for (size_t i = 0; i < a->n_exec; i++)
                if (!same_string(a->exec[i].name, b->exec[i].name) ||
                    !same_string(a->exec[i].create_cmd, b->exec[i].create_cmd) ||
                    !same_string(a->exec[i].delete_cmd, b->exec[i].delete_cmd) ||
                    !same_string(a->exec[i].expose_cmd, b->exec[i].expose_cmd))
                        return false;
        return true;
}

int manager_reload(Manager *m, const char *path) {
        Config config;
        char *error = NULL;
        int r = config_load(&config, path, &error);
        if (r < 0) {
                log_err("cannot reload the configuration%s%s: %s; the old configuration is kept", path ? " from " : "",
                        strempty(path), error ? error : strerror(-r));
                free(error);
                return r;
        }
        const Provider *busy = exec_provider_in_use(m);
        if (same_providers(&m->providers, &config.providers))
                providers_done(&config.providers);
        else if (busy) {
                log_warn("reload: the providers stay as they were: a snapshot set in flight uses provider '%s'; "
                         "reload again once it is done", busy->name);
                providers_done(&config.providers);
        } else {
                providers_done(&m->providers);
                m->providers = config.providers;
        }
        config.providers = (Providers) {};
        if (m->creating && !same_string(m->config.file_storage_dir, config.file_storage_dir)) {
                log_warn("reload: file_storage_dir stays as it was while a snapshot set is being created");
                char *keep = config.file_storage_dir;
                config.file_storage_dir = m->config.file_storage_dir;
                m->config.file_storage_dir = keep;
        }
        config_done(&m->config);
        m->config = config;
        /* Rights are a connection's from its next call on. */
        LIST_FOREACH(connections, c, m->connections) {
                c->rights = rights_of(&m->config, c->cred.uid);
                c->may_request = c->rights & ((1u << RIGHT_CREATE) | (1u << RIGHT_RESTORE));
        }
        log_info("reloaded the configuration%s%s", path ? " from " : " (none: the defaults)", strempty(path));
        return 0;
}
