/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The `btrfs` provider: the shadow of a path on btrfs is a read-only snapshot of the subvolume
 * that holds it (libbtrfsutil), cut while writers are frozen. Snapshots must live on the same
 * filesystem, so they go to MOUNTPOINT/.openvss/SET/SHADOW, like snapper's .snapshots; the
 * shadow path points at the requested path inside the snapshot. */

#include <btrfsutil.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "providers/provider.h"

#define BTRFS_MAGIC 0x9123683E
#define SHADOW_DIR ".openvss"

static int errno_from(enum btrfs_util_error e) {
        return e == BTRFS_UTIL_OK ? 0 : errno > 0 ? -errno : -EIO;
}

static bool on_btrfs(const char *path) {
        struct statfs sf;
        return statfs(path, &sf) == 0 && sf.f_type == BTRFS_MAGIC;
}

/* The subvolume holding path: the nearest ancestor (or path) that is a subvolume root. */
static int subvolume_root(const char *path, char ret[static PATH_MAX]) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s", path);
        for (;;) {
                if (btrfs_util_is_subvolume(p) == BTRFS_UTIL_OK) {
                        snprintf(ret, PATH_MAX, "%s", p);
                        return 0;
                }
                char *slash = strrchr(p, '/');
                if (!slash || slash == p)
                        return -ENOENT;
                *slash = 0;
        }
}

static int btrfs_supports(const Provider *p, const char *path) {
        char root[PATH_MAX];
        if (!on_btrfs(path) || subvolume_root(path, root) < 0)
                return -EOPNOTSUPP;
        return 0;
}

static int btrfs_shadow_path(const char *source, const char *set_id, const char *shadow_id, char **ret) {
        char mnt[PATH_MAX], sub[PATH_MAX];
        int r = mount_of(source, "btrfs", mnt, sizeof(mnt), NULL, 0);
        if (r < 0)
                return r;
        r = subvolume_root(source, sub);
        if (r < 0)
                return r;
        /* The requested path inside the snapshot. */
        const char *rel = source + strlen(sub);
        if (asprintf(ret, "%s%s" SHADOW_DIR "/%s/%s%s", mnt, strcmp(mnt, "/") == 0 ? "" : "/", set_id, shadow_id, rel) < 0)
                return -ENOMEM;
        return 0;
}

/* shadow_path minus the part inside the snapshot: the snapshot's own root. */
static void snapshot_root(const char *source, const char *shadow_path, char ret[static PATH_MAX]) {
        char sub[PATH_MAX];
        size_t rel = subvolume_root(source, sub) == 0 ? strlen(source) - strlen(sub) : 0;
        snprintf(ret, PATH_MAX, "%.*s", (int) (strlen(shadow_path) - rel), shadow_path);
}

/* The parents of path, made from the deepest one that is missing: inside the freeze window,
 * one mkdir (the set's directory) when MOUNTPOINT/.openvss exists, not one per component. */
static int mkdir_parents(const char *path) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s", path);
        char *end = strrchr(p, '/');
        if (!end || end == p)
                return 0;
        *end = 0;
        if (mkdir(p, 0700) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        int r = mkdir_parents(p);
        if (r < 0)
                return r;
        return mkdir(p, 0700) < 0 && errno != EEXIST ? -errno : 0;
}

static int btrfs_create(const Provider *p, const ShadowRequest *req, char **ret_location) {
        char sub[PATH_MAX], snap[PATH_MAX];
        const char *source = req->source, *shadow_path = req->shadow_path;
        int r = subvolume_root(source, sub);
        if (r < 0)
                return r;
        snapshot_root(source, shadow_path, snap);
        r = mkdir_parents(snap);
        if (r < 0)
                return r;
        return errno_from(btrfs_util_create_snapshot(sub, snap, BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY, NULL, NULL));
}

static int btrfs_remove(const Provider *prov, const char *set_id, const char *shadow_id, const char *shadow_path) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s", shadow_path);
        /* Walk up from the data path to the snapshot root (a subvolume under .openvss/SET/). */
        for (;;) {
                if (access(p, F_OK) < 0)
                        return errno == ENOENT ? 0 : -errno;
                if (btrfs_util_is_subvolume(p) == BTRFS_UTIL_OK)
                        break;
                char *slash = strrchr(p, '/');
                if (!slash || slash == p)
                        return -ENOENT;
                *slash = 0;
        }
        int r = errno_from(btrfs_util_delete_subvolume(p, 0));
        if (r < 0)
                return r;
        /* The set's directory, once empty. */
        char *slash = strrchr(p, '/');
        if (slash) {
                *slash = 0;
                (void) rmdir(p);
        }
        return 0;
}

const Provider provider_btrfs = {
        .name = "btrfs",
        .id = "0c9bb2f4-95a4-4d1e-8d71-5f3e8b0a9c21",
        .type = "system",
        .supports_what = "paths on btrfs (the subvolume holding the path)",
        .atomic = false, /* one snapshot ioctl per subvolume */
        .description = "Read-only btrfs snapshot of the subvolume holding the path (libbtrfsutil)",
        .supports = btrfs_supports,
        .shadow_path = btrfs_shadow_path,
        .create = btrfs_create,
        .remove = btrfs_remove,
};
