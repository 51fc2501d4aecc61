/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Recovery of flush-and-hold freezes whose commit child is gone (a crash of vssd, a killed
 * child): the journal says which filesystems a set froze, the set's lease file whether they are
 * still ours to thaw. */

#include <limits.h>

#include "daemon/freeze.h"
#include "daemon/vssd.h"

int freeze_lease_file(Manager *m, const vss_id *set_id, char *buf, size_t size) {
        char id[VSS_ID_STRING_MAX];
        int n = snprintf(buf, size, "%s/freeze-%s.lease", m->state_dir, vss_id_to_string(set_id, id));
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* A set's journalled freezes, after its commit child is gone: what the lease file says decides.
 * Thawed only when the helper died holding them; a filesystem thawed by the helper and frozen
 * since is someone else's, and is left alone. */
static void frozen_journal_settle(Manager *m, const vss_id *set_id) {
        char lease[PATH_MAX], **mounts = NULL;
        size_t n = 0;
        int r = freeze_lease_file(m, set_id, lease, sizeof(lease));
        if (r >= 0)
                r = freeze_lease_settle(lease, FREEZE_SETTLE_TIMEOUT_MS);
        if (r < 0) {
                log_warn("cannot settle the freeze lease %s: %s; its journal is kept for the next start", lease,
                         strerror(-r));
                return;
        }
        if (r > 0 && registry_list_frozen_of(m->registry, set_id, &mounts, &n) >= 0) {
                for (size_t i = 0; i < n; i++) {
                        int k = freeze_thaw_path(mounts[i]);
                        if (k < 0)
                                log_warn("cannot thaw %s: %s", mounts[i], strerror(-k));
                        else
                                log_info("recovered: thawed %s, which a killed freeze helper left frozen", mounts[i]);
                        free(mounts[i]);
                }
                free(mounts);
                (void) unlink(lease);
        }
        (void) registry_clear_frozen_of(m->registry, set_id);
}

void frozen_journal_recover(Manager *m, const vss_id *set_id) {
        vss_id *sets = NULL;
        size_t n = 0;
        if (set_id) {
                frozen_journal_settle(m, set_id);
                return;
        }
        if (registry_list_frozen_sets(m->registry, &sets, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                frozen_journal_settle(m, &sets[i]);
        free(sets);
}
