/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Reading a backup: its store, its documents, its manifest, and the chain of backups it is
 * based on. */

#include "lib/common.h"
#include "tools/restore-where.h"
#include "tools/vssbackup.h"

void backup_close(Backup *bk) {
        store_close(bk->store);
        free(bk->bcd_text);
        vss_backup_document_free(bk->bcd);
        *bk = (Backup) {};
}

bool backup_open(Run *run, const char *src, Backup *bk) {
        _cleanup_free_ char *err = NULL, *man = NULL;
        char why[512];
        size_t len;
        *bk = (Backup) { .owner = -1 };
        int r = store_open(src, &bk->store, &err);
        if (r < 0) {
                /* store_open()'s message names the path already. */
                if (err)
                        return run_fail(run, VSS_E_OBJECT_NOT_FOUND, "cannot open the backup: %s", err);
                return run_fail(run, VSS_E_OBJECT_NOT_FOUND, "cannot open the backup %s: %s", src, strerror(-r));
        }
        /* Of the backup as opened, which every read goes through: not of what src names later. */
        bk->owner = backup_owner(store_source(bk->store), BCD_NAME);
        store_set_warning(bk->store, on_warning, NULL);
        if (progress_enabled())
                store_set_progress(bk->store, on_progress, NULL);
        free(err);
        err = NULL;
        r = store_get_document(bk->store, BCD_NAME, STORE_DOCUMENT_MAX, &bk->bcd_text, &len, &err);
        if (r >= 0 && strlen(bk->bcd_text) != len)
                r = -EINVAL;
        if (r < 0)
                return run_fail(run, VSS_E_INVALIDARG, "%s has no readable backup components document: %s", src,
                                err ? err : strerror(-r));
        if (vss_backup_document_parse(bk->bcd_text, &bk->bcd, why, sizeof(why)) < 0)
                return run_fail(run, VSS_E_INVALIDARG, "%s: bad backup components document: %s", src, why);
        free(err);
        err = NULL;
        r = store_get_document(bk->store, MANIFEST_NAME, MANIFEST_MAX, &man, &len, &err);
        if (r < 0)
                snprintf(why, sizeof(why), "%s", err ? err : strerror(-r));
        else if (strlen(man) != len) {
                snprintf(why, sizeof(why), "it contains a NUL character");
                r = -EBADMSG;
        } else
                r = manifest_parse(man, &bk->manifest, why, sizeof(why));
        if (r < 0)
                return run_fail(run, VSS_E_INVALIDARG, "%s: missing or bad %s: %s", src, MANIFEST_NAME, why);
        return true;
}

bool backup_chain_open(Run *run, const char *src, Backup *chain, size_t *ret_n) {
        size_t n = 0;
        bool ok = true;

        /* Newest first while reading it, then reversed. */
        for (const char *next = src; ok && next;) {
                if (n == MAX_CHAIN) {
                        ok = run_fail(run, VSS_E_INVALIDARG, "more than %d backups in the chain of %s", MAX_CHAIN, src);
                        break;
                }
                ok = backup_open(run, next, &chain[n]);
                if (!ok) {
                        backup_close(&chain[n]);
                        break;
                }
                Backup *bk = &chain[n++];
                if (n > 1 && bk->manifest.created_usec != chain[n - 2].manifest.base_created_usec)
                        ok = run_fail(run, VSS_E_INVALIDARG, "%s is not the backup %s was based on (it was replaced?)",
                                      next, n > 1 ? "the next one" : src);
                /* A backup a user could have written names its base: only one of that user's (or
                 * root's own chain). Else its owner would have another's files restored as theirs. */
                else if (n > 1 && chain[n - 2].owner != 0 && bk->owner != chain[n - 2].owner)
                        ok = run_fail(run, VSS_E_INVALIDARG,
                                      "%s names %s as its base, but they are not the same user's (uid %lld, %lld): a "
                                      "backup is based only on one of its own owner's",
                                      n > 2 ? "a backup of the chain" : src, next, (long long) chain[n - 2].owner,
                                      (long long) bk->owner);
                next = isempty(bk->manifest.base) ? NULL : bk->manifest.base;
        }
        for (size_t i = 0; i < n / 2; i++) {
                Backup t = chain[i];
                chain[i] = chain[n - 1 - i];
                chain[n - 1 - i] = t;
        }
        *ret_n = n;
        return ok;
}
