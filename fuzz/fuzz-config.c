/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: vssd's configuration file (daemon/config.c), through config_load() itself: the
 * input is written to a memfd and loaded by its /proc/self/fd path. The file is root's, but a
 * typo or a hostile package must give a clear error, never a crash or a half-applied config.
 * Checks: a success has no error, every value within its documented range, the freeze window no
 * longer than its maximum, a backup group; a failure has a non-empty message (unless memory ran
 * out) and leaves nothing allocated behind (config_done() is still safe). Exec providers the
 * config registers are found by name, and config_done() unregisters them (a leak shows in ASan).
 */

#include <sys/mman.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/common.h"
#include "fuzz/fuzz.h"

#define DAY_MS (24U * 3600U * 1000U)

static void check_config(const Config *c) {
        const uint32_t *t = (const uint32_t *) &c->timeouts;
        for (size_t i = 0; i < sizeof(c->timeouts) / sizeof(uint32_t); i++)
                fuzz_assert(t[i] >= 1 && t[i] <= DAY_MS, "timeouts[%zu] = %u", i, t[i]);
        fuzz_assert(c->timeouts.freeze_window_ms <= c->timeouts.max_freeze_window_ms, "freeze window %u > max %u",
                    c->timeouts.freeze_window_ms, c->timeouts.max_freeze_window_ms);
        fuzz_assert(c->hold_window_ms >= 1 && c->hold_window_ms <= 600000, "hold_window_ms %u", c->hold_window_ms);
        fuzz_assert(c->max_shadows_per_volume >= 1 && c->max_shadows_per_volume <= 4096, "max_shadows_per_volume %u",
                    c->max_shadows_per_volume);
        fuzz_assert(c->backup_group && c->backup_group[0] && strlen(c->backup_group) <= VSS_MAX_NAME,
                    "backup_group missing or too long");
        for (size_t i = 0; i < providers_count(&c->providers); i++) {
                const Provider *p = providers_get(&c->providers, i);
                fuzz_assert(p && p->name && p->name[0], "provider %zu has no name", i);
                fuzz_assert(provider_find(&c->providers, p->name) == p, "provider '%s' not found by its name", p->name);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static size_t n_builtin = SIZE_MAX;
        char path[64], *error = NULL;
        Config c;

        if (n_builtin == SIZE_MAX)
                n_builtin = providers_count(NULL);
        int fd = memfd_create("fuzz-config", MFD_CLOEXEC);
        fuzz_assert(fd >= 0, "memfd_create: %m");
        for (size_t done = 0; done < size;) {
                ssize_t k = write(fd, data + done, size - done);
                fuzz_assert(k > 0, "write: %m");
                done += (size_t) k;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

        int r = config_load(&c, path, &error);
        if (r == 0) {
                fuzz_assert(error == NULL, "success with an error: %s", error);
                check_config(&c);
        } else {
                fuzz_assert(r < 0, "config_load returned %d", r);
                fuzz_assert(r == -ENOMEM || (error && error[0]), "failure (%d) without a message", r);
                fuzz_assert(c.backup_group == NULL, "failure left backup_group allocated");
                fuzz_assert(providers_count(&c.providers) == n_builtin, "failure left %zu exec providers registered",
                            providers_count(&c.providers) - n_builtin);
        }
        free(error);
        config_done(&c);
        fuzz_assert(providers_count(&c.providers) == n_builtin, "config_done left %zu exec providers registered",
                    providers_count(&c.providers) - n_builtin);
        close(fd);
        return 0;
}
