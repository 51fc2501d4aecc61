/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The `btrfs` provider: the shadow of a path on btrfs is a read-only snapshot of the subvolume
 * that holds it (libbtrfsutil), cut while writers are frozen. Snapshots must live on the same
 * filesystem, so they go to MOUNTPOINT/.openvss/SET/SHADOW, like snapper's .snapshots; the
 * shadow path points at the requested path inside the snapshot. */

#include <btrfsutil.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/common.h"
#include "lib/openat.h"
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

/* The snapshot's root, MNT/.openvss/SET/SHADOW, and MNT: taken from the shadow path planned
 * when the volume was added, never worked out again from the live source (a user may have
 * changed what lies on its way since). */
static int snapshot_root(const char *shadow_path, const char *set_id, const char *shadow_id,
                         char ret[static PATH_MAX], char ret_mnt[static PATH_MAX]) {
        char needle[256];
        snprintf(needle, sizeof(needle), "/" SHADOW_DIR "/%s/%s", set_id, shadow_id);
        const char *at = strstr(shadow_path, needle);
        size_t n = at ? (size_t) (at - shadow_path) + strlen(needle) : 0;
        if (!at || (shadow_path[n] != 0 && shadow_path[n] != '/'))
                return -EINVAL;
        if (n >= PATH_MAX)
                return -ENAMETOOLONG;
        snprintf(ret, PATH_MAX, "%.*s", (int) n, shadow_path);
        snprintf(ret_mnt, PATH_MAX, "%.*s", at == shadow_path ? 1 : (int) (at - shadow_path), at == shadow_path ? "/" : shadow_path);
        return 0;
}

/* name in dirfd as a directory of ours alone: made 0700, or found ours and nobody else's (a user
 * who may write the mount's root must not have made it, or snapshots would land in theirs). */
static int own_dir_at(int dirfd, const char *name, const char *where, char *err, size_t err_size) {
        struct stat st;
        if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
                if (err)
                        snprintf(err, err_size, "%s%s%s is owned by uid %u with mode %04o, not vssd's (uid %u) alone: "
                                 "snapshots are never put where others may change them; remove it or make it "
                                 "vssd's, mode 0700", where, streq(where, "/") ? "" : "/", name,
                                 (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777), (unsigned) geteuid());
                close(fd);
                return -EPERM;
        }
        return fd;
}

/* MNT/.openvss/SET opened through fds, each ours alone: -EPERM when one is someone else's. The
 * set's fd, and .openvss's in *ret_top. */
static int set_dir_open(const char *mnt, const char *set_id, int *ret_top, char *err, size_t err_size) {
        _cleanup_close_ int m = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (m < 0)
                return -errno;
        _cleanup_close_ int top = own_dir_at(m, SHADOW_DIR, mnt, err, err_size);
        if (top < 0)
                return top;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s%s" SHADOW_DIR, mnt, streq(mnt, "/") ? "" : "/");
        int set = own_dir_at(top, set_id, dir, err, err_size);
        if (set >= 0)
                *ret_top = TAKE_FD(top);
        return set;
}

static int btrfs_create(const Provider *p, const ShadowRequest *req, char **ret_location) {
        char sub[PATH_MAX], snap[PATH_MAX], mnt[PATH_MAX];
        const char *source = req->source, *shadow_path = req->shadow_path;
        int r = subvolume_root(source, sub);
        if (r < 0)
                return r;
        r = snapshot_root(shadow_path, req->set_id, req->shadow_id, snap, mnt);
        if (r < 0)
                return r;
        /* The subvolume holding source now must put it where the shadow path says it is. */
        const char *rel = source + strlen(sub);
        if (strlen(shadow_path) != strlen(snap) + strlen(rel) || strcmp(shadow_path + strlen(snap), rel) != 0)
                return -ESTALE;
        _cleanup_close_ int top = -EBADF;
        _cleanup_close_ int set = set_dir_open(mnt, req->set_id, &top, req->err, req->err_size);
        if (set < 0)
                return set;
        /* The subvolume by fd, no symlink on its way: one swapped in since is not followed. */
        _cleanup_close_ int src = open_no_symlinks(AT_FDCWD, sub, O_RDONLY | O_DIRECTORY, 0, false);
        r = src < 0 ? (src == -ELOOP ? -ESTALE : src)
                    : errno_from(btrfs_util_create_snapshot_fd2(src, set, req->shadow_id,
                                                                BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY, NULL, NULL));
        if (r < 0)
                (void) unlinkat(top, req->set_id, AT_REMOVEDIR); /* the set's directory, if nothing else is in it */
        return r;
}

static int btrfs_remove(const Provider *prov, const char *set_id, const char *shadow_id, const char *shadow_path) {
        char snap[PATH_MAX], mnt[PATH_MAX];
        int r = snapshot_root(shadow_path, set_id, shadow_id, snap, mnt);
        if (r < 0)
                return r;
        _cleanup_close_ int m = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_close_ int top = m >= 0 ? openat(m, SHADOW_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        _cleanup_close_ int set = top >= 0 ? openat(top, set_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
        if (set < 0)
                return errno == ENOENT ? 0 : -errno; /* gone already */
        struct stat st;
        if (fstatat(set, shadow_id, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        r = errno_from(btrfs_util_delete_subvolume_fd(set, shadow_id, 0));
        if (r < 0)
                return r;
        /* The set's directory, once empty. */
        (void) unlinkat(top, set_id, AT_REMOVEDIR);
        return 0;
}

const Provider provider_btrfs = {
        .name = "btrfs",
        .id = "0c9bb2f4-95a4-4d1e-8d71-5f3e8b0a9c21",
        .type = "system",
        .supports_what = "paths on btrfs (the subvolume holding the path)",
        .atomic = false, /* one snapshot ioctl per subvolume */
        .instant = true,
        .description = "Read-only btrfs snapshot of the subvolume holding the path (libbtrfsutil)",
        .supports = btrfs_supports,
        .shadow_path = btrfs_shadow_path,
        .create = btrfs_create,
        .remove = btrfs_remove,
};
