/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <signal.h>
#include <unistd.h>

#include "daemon/access.h"
#include "daemon/bus.h"
#include "daemon/hold.h"
#include "daemon/log.h"
#include "lib/trusted-path.h"
#include "providers/file/copy.h"
#include "providers/file/precopy.h"
#include "providers/mountinfo.h"

#ifndef BCACHEFS_SUPER_MAGIC
#define BCACHEFS_SUPER_MAGIC 0xca451a4e
#endif
#ifndef GFS2_MAGIC
#define GFS2_MAGIC 0x01161970
#endif
#ifndef JFS_SUPER_MAGIC
#define JFS_SUPER_MAGIC 0x3153464a
#endif

const char *file_storage_dir(const Manager *m) {
        return m->config.file_storage_dir ? m->config.file_storage_dir : m->shadow_dir;
}

/* Filesystems whose kernel driver implements freezing (FIFREEZE); others answer EOPNOTSUPP. */
static const char *freezable(unsigned long type) {
        switch (type) {
        case EXT4_SUPER_MAGIC: return "ext4";
        case XFS_SUPER_MAGIC: return "xfs";
        case BTRFS_SUPER_MAGIC: return "btrfs";
        case F2FS_SUPER_MAGIC: return "f2fs";
        case NILFS_SUPER_MAGIC: return "nilfs2";
        case JFS_SUPER_MAGIC: return "jfs";
        case GFS2_MAGIC: return "gfs2";
        case BCACHEFS_SUPER_MAGIC: return "bcachefs";
        default: return NULL;
        }
}

static const char *fs_name(unsigned long type) {
        switch (type) {
        case TMPFS_MAGIC: return "tmpfs";
        case OVERLAYFS_SUPER_MAGIC: return "overlay";
        case NFS_SUPER_MAGIC: return "nfs";
        case FUSE_SUPER_MAGIC: return "fuse";
        case RAMFS_MAGIC: return "ramfs";
        case SQUASHFS_MAGIC: return "squashfs";
        default: return NULL;
        }
}

static bool listed(char **l, size_t n, const char *mount) {
        for (size_t i = 0; i < n; i++) {
                char real[PATH_MAX];
                if (streq(l[i], mount) || (realpath(l[i], real) && streq(real, mount)))
                        return true;
        }
        return false;
}

/* The mount holding path (its mount point in mount) and its filesystem's device number: one
 * reading of the mount table. */
static int mount_and_dev(const char *path, char mount[static PATH_MAX], dev_t *ret_dev) {
        _cleanup_free_ char *target = NULL;
        int r = mountinfo_find(path, NULL, &target, NULL, ret_dev);
        if (r < 0)
                return r;
        snprintf(mount, PATH_MAX, "%s", target);
        return 0;
}

/* Whether the filesystem dev, mounted at mount, is one hold_exclude lists: by the superblock, so
 * another mount of it (a btrfs subvolume's, a bind mount) is excluded too, as a freeze is of the
 * whole filesystem. */
static bool excluded(const Manager *m, const char *mount, dev_t dev) {
        if (listed(m->config.hold_exclude, m->config.n_hold_exclude, mount))
                return true;
        if (m->config.n_hold_exclude == 0)
                return false;
        char **real = calloc(m->config.n_hold_exclude, sizeof(char *));
        if (!real)
                return true; /* cannot tell: never hold what might be excluded */
        for (size_t i = 0; i < m->config.n_hold_exclude; i++)
                real[i] = realpath(m->config.hold_exclude[i], NULL);
        int r = mountinfo_any_of_dev(dev, real, m->config.n_hold_exclude);
        for (size_t i = 0; i < m->config.n_hold_exclude; i++)
                free(real[i]);
        free(real);
        return r != 0;
}

static bool same_fs(const char *a, const char *b) {
        struct stat sa, sb;
        return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev;
}

/* 1: held; 0: not, why in buf. *ret_shared: the storage is on that filesystem. */
static int decide(const Manager *m, const char *path, bool *ret_shared, char *why, size_t size) {
        char mount[PATH_MAX];
        dev_t dev;
        struct statfs sf;
        struct stat st;

        *ret_shared = false;
        int r = mount_and_dev(path, mount, &dev);
        if (r == -ELIBACC && mountinfo_load_error())
                return snprintf(why, size, "the filesystem of %s cannot be determined: %s", path, mountinfo_load_error()), 0;
        if (r < 0 || statfs(path, &sf) < 0 || stat(path, &st) < 0)
                return snprintf(why, size, "the filesystem of %s cannot be determined", path), 0;
        const char *name = freezable((unsigned long) sf.f_type);
        if (!name) {
                const char *n = fs_name((unsigned long) sf.f_type);
                if (n)
                        snprintf(why, size, "%s is on %s (%s), which cannot be frozen", path, mount, n);
                else
                        snprintf(why, size, "%s is on %s (filesystem type 0x%lx), which cannot be frozen", path, mount,
                                 (unsigned long) sf.f_type);
                return 0;
        }
        if (excluded(m, mount, dev))
                return snprintf(why, size, "%s is on %s, whose filesystem hold_exclude keeps from being held", path,
                                mount), 0;
        if (!m->config.hold_all && !listed(m->config.hold_filesystems, m->config.n_hold_filesystems, mount))
                return snprintf(why, size, "%s is on %s, which hold_filesystems does not list", path, mount), 0;
        if (geteuid() != 0)
                return snprintf(why, size, "vssd runs unprivileged and cannot freeze %s", mount), 0;
        *ret_shared = same_fs(path, file_storage_dir(m));
        if (*ret_shared && !S_ISDIR(st.st_mode))
                return snprintf(why, size, "%s is a single file on %s, the filesystem of vssd's storage", path, mount), 0;
        snprintf(why, size, "%s is on %s (%s), held frozen while its last changes are copied", path, mount, name);
        return 1;
}

int hold_excluded(const Manager *m, const char *path, char *why, size_t size) {
        char mount[PATH_MAX];
        dev_t dev;
        if (mount_and_dev(path, mount, &dev) < 0 || !excluded(m, mount, dev))
                return 0;
        snprintf(why, size, "%s is on %s, whose filesystem hold_exclude keeps from being held", path, mount);
        return 1;
}

int hold_explain(const Manager *m, const char *path, char *why, size_t size) {
        bool shared;
        return decide(m, path, &shared, why, size);
}

int hold_decide(const Manager *m, Volume *v) {
        char why[PATH_MAX + 256];
        v->index_fd = -EBADF;
        v->held = decide(m, v->path, &v->storage_shared, why, sizeof(why)) > 0;
        if (!v->held && !(v->not_held_why = strdup(why)))
                return -ENOMEM;
        return 0;
}

static bool precopied(const Volume *v) {
        struct stat st;
        return v->provider == &provider_file && v->held && stat(v->path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool hold_wants_precopy(const Session *s) {
        for (size_t i = 0; i < s->n_volumes; i++)
                if (precopied(&s->volumes[i]))
                        return true;
        return false;
}

bool file_budget_exceeded(Session *s, bool precopy) {
        uint64_t used = 0, need = 0, b;
        if (s->manager->config.file_budget_bytes == 0)
                return false;
        (void) tree_bytes(file_storage_dir(s->manager), &used);
        for (size_t i = 0; i < s->n_volumes; i++) {
                const Volume *v = &s->volumes[i];
                /* At the commit, the volumes copied ahead are in `used` already. */
                if (v->provider->estimate && v->precopied == precopy &&
                    v->provider->estimate(v->provider, v->path, &b) >= 0)
                        need += b;
        }
        return need > 0 && used + need > s->manager->config.file_budget_bytes;
}

_Noreturn void hold_precopy_child(Session *s, int fd) {
        char err[1024];
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (file_budget_exceeded(s, true)) {
                dprintf(fd, "E\tthe file provider's storage budget of %" PRIu64 " bytes would be exceeded\n",
                        s->manager->config.file_budget_bytes);
                _exit(COMMIT_NOSPACE);
        }
        for (size_t i = 0; i < s->n_volumes; i++) {
                Volume *v = &s->volumes[i];
                PrecopyResult res = {};
                if (!v->precopied)
                        continue;
                err[0] = 0;
                int r = precopy_run(v->path, v->shadow_path, v->index_fd, s->manager->config.hold_window_ms, &res, err,
                                    sizeof(err));
                if (r < 0) {
                        if (r == -ENOSPC || r == -EDQUOT)
                                dprintf(fd, "E\tthe file provider's storage is full: cannot copy %s ahead (%s); free space "
                                        "there and try again\n", v->path, strerror(-r));
                        else
                                dprintf(fd, "E\tprovider file on %s: %s\n", v->path, err[0] ? err : strerror(-r));
                        _exit(r == -ETIME ? COMMIT_HOLD_TIMEOUT : r == -ENOSPC || r == -EDQUOT ? COMMIT_NOSPACE : COMMIT_FAILED);
                }
                log_info("copied %s ahead in %u passes: the first (a full copy, %" PRIu64 " bytes) took %" PRIu64
                         " us; the last found %" PRIu64 " entries, %" PRIu64 " bytes changed", v->path, res.passes,
                         res.first_bytes, res.first_usec, res.last_entries, res.last_bytes);
        }
        _exit(COMMIT_OK);
}

int volume_realpath(const char *path, const struct ucred *caller, char real[PATH_MAX], sd_bus_error *error) {
        _cleanup_free_ char *why = NULL;
        /* vssd resolves as root: a user asking is answered alike for what is not there and what
         * the user cannot reach, and never told where root's symlinks lead beyond that. */
        if (caller && !uid_trusted(caller->uid) && path_reachable_by(caller, path) < 0)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "cannot resolve '%s': it does not exist, or uid %u "
                                   "cannot reach it", path, (unsigned) caller->uid);
        int r = realpath_trusted(path, real, &why);
        if (r < 0)
                return reply_error(error, r == -ELOOP ? VSS_E_INVALIDARG : VSS_E_OBJECT_NOT_FOUND, "cannot resolve '%s': %s",
                                   path, why ? why : strerror(-r));
        return 0;
}

/* ExplainVolume(path) -> (provider, point_in_time, why): whether shadows of path will be one instant. */
int method_explain_volume(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        const char *path;
        char real[PATH_MAX], why[PATH_MAX + 256];
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        if (sd_bus_message_read(msg, "s", &path) < 0 || !string_ok(path, VSS_MAX_STRING) || path[0] != '/')
                return reply_error(error, VSS_E_INVALIDARG, "bad path");
        r = volume_realpath(path, &c->cred, real, error);
        if (r < 0)
                return r;
        const Provider *p = provider_choose(&m->providers, real);
        if (!p)
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED, "no provider supports '%s'", real);
        bool held;
        if (p == &provider_file)
                held = hold_explain(m, real, why, sizeof(why)) > 0;
        else if (p->hold)
                held = true, snprintf(why, sizeof(why), "provider %s holds the filesystem frozen while it commits", p->name);
        else if (streq(p->name, "btrfs")) /* by name: vssd may be built without it */
                held = true, snprintf(why, sizeof(why), "a btrfs snapshot is one instant");
        else
                held = false, snprintf(why, sizeof(why), "provider %s does not hold the filesystem", p->name);
        return sd_bus_reply_method_return(msg, "sbs", p->name, (int) held, why);
}
