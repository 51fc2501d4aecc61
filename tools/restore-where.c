/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "tools/restore-where.h"

/* Who could have written a backup's document: the owner of the archive file, or of the directory
 * and of its document. Several users: -1. */
int64_t backup_owner(const char *src, const char *doc_name) {
        _cleanup_free_ char *doc = NULL;
        struct stat a, b;
        if (stat(src, &a) < 0)
                return -1;
        if (!S_ISDIR(a.st_mode))
                return a.st_uid;
        if (asprintf(&doc, "%s/openvss/%s", src, doc_name) < 0 || lstat(doc, &b) < 0)
                return -1;
        if (a.st_uid == 0 || a.st_uid == b.st_uid)
                return b.st_uid;
        return b.st_uid == 0 ? (int64_t) a.st_uid : -1;
}

/* The first mapping whose path holds path: *ret = its destination + the rest of path. 0 and NULL
 * when none does. */
static int map_path(const vss_file_mapping *maps, size_t n, const char *path, char **ret) {
        *ret = NULL;
        for (size_t i = 0; i < n; i++)
                if (path_within(path, maps[i].path))
                        return asprintf(ret, "%s%s", maps[i].destination, path + strlen(maps[i].path)) < 0 ? -ENOMEM : 0;
        return 0;
}

/* Where a file group goes when the backup or the writer says: the backup's new targets, else the
 * writer's alternate location when it asks for one (its restore method, or its restore target in
 * PreRestore). *ret NULL: back in place. These are wishes of whoever wrote the backup or the
 * writer, never trusted as they are (restore_component). */
int restore_destination(const vss_writer_metadata *wm, const vss_bc_component *backed_up,
                        vss_restore_target target, const char *path, char **ret) {
        int r = backed_up ? map_path(backed_up->new_targets, backed_up->n_new_targets, path, ret) : (*ret = NULL, 0);
        if (r < 0 || *ret)
                return r;
        /* VSS_RT_ORIGINAL_LOCATION wins over a restore-to-alternate-location method (VSS_RESTORE_TARGET). */
        if (target == VSS_RT_ALTERNATE ||
            (wm->restore_method == VSS_RME_RESTORE_TO_ALTERNATE_LOCATION && target != VSS_RT_ORIGINAL_LOCATION)) {
                r = map_path(wm->alternate_mappings, wm->n_alternate_mappings, path, ret);
                /* VSS: an alternate location asked for and none mapped is the writer's error, not
                 * a restore in place. */
                return r < 0 ? r : *ret ? 0 : -ENXIO;
        }
        return 0;
}

/* Whose wish a destination from the document is: the uid vssd recorded for the writer, believed
 * only when nobody else could have written the document (the backup is root's or that uid's).
 * -1: nobody vouches for it. */
int64_t writer_owner(const vss_writer_metadata *wm, int64_t backup_uid) {
        if (!wm->owner_known || backup_uid < 0)
                return -1;
        if (backup_uid == 0 || backup_uid == (int64_t) wm->owner_uid)
                return wm->owner_uid;
        return -1;
}
