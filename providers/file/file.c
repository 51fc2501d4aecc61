/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The `file` provider: the embedded default that works on any filesystem. A shadow is a
 * copy of the tree (modes, owners, times, hard links, xattrs, ACLs, capabilities and chattr
 * attributes kept), reflinked (FICLONE) where the filesystem can, copied otherwise. What the
 * shadow's filesystem cannot keep goes to vssd's log, per file. */

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <stddef.h>
#include <sys/stat.h>

#include "lib/basic/log.h"
#include "providers/file/copy.h"
#include "providers/provider.h"

static int file_supports(const Provider *p, const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) ? 0 : -EOPNOTSUPP;
}

/* The copy keeps every mode as it was: a shadow copy is the data at that instant, and a backup
 * read from it must carry the original permissions. It is protected by where it lives (vssd's
 * state directory, root only) and exposed by read-only mounts. */
/* What the shadow's filesystem cannot keep goes to vssd's log, one line per item and file. */
static void file_lost(const char *path, const char *what, int error, void *userdata) {
        const ShadowRequest *req = userdata;
        log_prefixed("warning: ", "provider file: shadow %s: %s: %s not kept: %s", req->shadow_id, path, what, strerror(error));
}

static int file_create(const Provider *p, const ShadowRequest *req, char **ret_location) {
        MetaReport report = { .lost = file_lost, .userdata = (void *) req };
        int r;

        if (req->ret_pending) {
                CopySync *sync = NULL;
                r = copy_tree_deferred(req->source, req->shadow_path, &report, NULL, &sync);
                *req->ret_pending = sync;
        } else
                r = copy_tree_report(req->source, req->shadow_path, &report, NULL);
        if (r >= 0 && report.n_lost > 0)
                log_prefixed("warning: ", "provider file: shadow %s of %s: %" PRIu64 " item(s) of metadata not kept (see above)",
                         req->shadow_id, req->source, report.n_lost);
        return r;
}

static int file_finish(const Provider *p, void *pending) {
        return copy_sync_finish(pending);
}

static int file_remove(const Provider *p, const char *set_id, const char *shadow_id, const char *shadow_path) {
        return remove_tree(shadow_path);
}

/* A copy takes what the source's regular files take on disk (reflinks aside: counted in full). */
static int file_estimate(const Provider *p, const char *source, uint64_t *ret_bytes) {
        return tree_bytes(source, ret_bytes);
}

const Provider provider_file = {
        .name = "file",
        .id = "6a3bd1a8-6f0e-4c5e-9d3b-0b7c1f4e2a10",
        .type = "software",
        .supports_what = "directory trees and files on any filesystem",
        .atomic = false, /* volumes are copied one after another (writers stay frozen throughout) */
        .description = "Read-only copy of a directory tree: reflink where the filesystem supports it, "
                       "copy_file_range otherwise",
        .supports = file_supports,
        .create = file_create,
        .finish = file_finish,
        .remove = file_remove,
        .estimate = file_estimate,
};
