/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The snapshot set backup and exec make: the volumes, the phases, the retries. */

#include <libmount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#if OPENVSS_BTRFS
#include <btrfsutil.h>
#endif

#include "lib/basic/fd-util.h"
#include "lib/basic/log.h"
#include "lib/common.h"
#include "lib/openat.h"
#include "lib/trusted-path.h"
#include "tools/attempts.h"
#include "tools/vssbackup.h"

const vss_writer_metadata *document_writer(const vss_backup_document *d, const vss_writer_metadata *wm) {
        for (size_t i = 0; i < d->n_writers; i++)
                if (vss_id_equal(&d->writers[i]->instance_id, &wm->instance_id))
                        return d->writers[i];
        return NULL;
}

/* The first path of ci that, resolved, is not its writer's user's; NULL for root's writers. */
static const char *component_not_users(const vss_backup_document *d, const vss_writer_metadata *wm,
                                       const vss_component_info *ci) {
        const vss_writer_metadata *o = d ? document_writer(d, wm) : NULL;
        if (!o || !o->owner_known || o->owner_uid == 0)
                return NULL;
        /* Resolved, as volume_add() takes it: a symlink of the user's to "/" is not the user's;
         * nor, for a file, the directory it is in, which is what gets shadowed and mounted. */
        for (size_t f = 0; f < ci->n_files; f++) {
                char real[PATH_MAX];
                struct stat st;
                if (volume_resolve(ci->files[f].path, real, &st, NULL) < 0 || st.st_uid != o->owner_uid)
                        return ci->files[f].path;
        }
        return NULL;
}

bool component_left_out(const vss_backup_document *d, const vss_writer_metadata *wm, const vss_component_info *ci,
                        const char *hint) {
        const char *bad = component_not_users(d, wm, ci);
        if (bad && !arg_quiet)
                log_msg("component '%s' of writer '%s' left out: %s is not its user's (%s)", ci->name, wm->name, bad,
                        hint);
        return bad != NULL;
}

int volume_resolve(const char *path, char real[PATH_MAX], struct stat *st, char **ret_why) {
        /* As vssd resolves a volume: a symlink a user made or could replace on the way (a user's
         * component path swapped for one after it was checked) is not followed. */
        int r = realpath_trusted(path, real, ret_why);
        if (r < 0)
                return r;
        if (stat(real, st) < 0)
                return -errno;
        if (!S_ISDIR(st->st_mode)) {
                char *slash = strrchr(real, '/');
                if (slash == real)
                        slash[1] = 0;
                else
                        *slash = 0;
                /* Its directory's filesystem, for st_dev. */
                if (stat(real, st) < 0)
                        return -errno;
        }
        return 0;
}

bool volume_add(Run *run, Volume *vols, size_t *n, const char *path) {
        char real[PATH_MAX];
        struct stat st;
        _cleanup_free_ char *why = NULL;
        int r = volume_resolve(path, real, &st, &why);
        if (r < 0)
                return run_fail(run, r == -ELOOP ? VSS_E_INVALIDARG : VSS_E_OBJECT_NOT_FOUND, "cannot resolve '%s': %s", path,
                                why ? why : strerror(-r));
        /* Covered by a volume of the same filesystem only: a shadow holds a mount below it (or a
         * nested btrfs subvolume) as an empty directory. */
        for (size_t i = 0; i < *n; i++)
                if (path_within(real, vols[i].path) && vols[i].dev == st.st_dev)
                        return true;
        if (*n >= MAX_VOLUMES)
                return run_fail(run, VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED, "more than %d volumes", MAX_VOLUMES);
        /* A new volume may cover ones taken before (of its filesystem): keep only the outer one. */
        size_t k = 0;
        for (size_t i = 0; i < *n; i++) {
                if (path_within(vols[i].path, real) && vols[i].dev == st.st_dev)
                        free(vols[i].path);
                else
                        vols[k++] = vols[i];
        }
        *n = k;
        vols[*n] = (Volume) { .path = strdup(real), .dev = st.st_dev, .ino = st.st_ino };
        if (!vols[*n].path)
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        (*n)++;
        return true;
}

bool volumes_have_dev(const Volume *vols, size_t n_vols, dev_t dev) {
        for (size_t i = 0; i < n_vols; i++)
                if (vols[i].dev == dev)
                        return true;
        return false;
}

/* The mount table, read once per attempt (a backup asks for each recursive group; a retry, up to
 * a minute later, reads it again); NULL if it cannot be read. */
static struct libmnt_table *mount_table_cached;

static struct libmnt_table *mount_table(void) {
        if (!mount_table_cached)
                mount_table_cached = mnt_new_table_from_file("/proc/self/mountinfo");
        return mount_table_cached;
}

static void mount_table_forget(void) {
        mnt_unref_table(mount_table_cached);
        mount_table_cached = NULL;
}

#if OPENVSS_BTRFS
/* The root of the btrfs subvolume holding real (a directory), into root: up the path while the
 * directory is no subvolume's root and still on real's filesystem. false when there is none. */
static bool subvolume_root(const char *real, dev_t dev, char root[PATH_MAX]) {
        snprintf(root, PATH_MAX, "%s", real);
        for (;;) {
                struct stat st;
                if (stat(root, &st) < 0 || st.st_dev != dev)
                        return false;
                if (btrfs_util_is_subvolume(root) == BTRFS_UTIL_OK)
                        return true;
                char *slash = strrchr(root, '/');
                if (!slash || slash == root)
                        return false;
                *slash = 0;
        }
}

/* The btrfs subvolumes nested below real that no mount covers, outermost first. */
static bool subvolumes_below(const char *real, dev_t dev, FsBelowFn fn, void *userdata) {
        char root[PATH_MAX];
        if (!subvolume_root(real, dev, root))
                return true;
        /* Beneath root's subvolume, by the tree (unprivileged too, on kernels since 4.18: what the
         * caller may not reach is left out), pre-order: an outer one, then those it holds. */
        struct btrfs_util_subvolume_iterator *it = NULL;
        if (btrfs_util_create_subvolume_iterator(root, 0, 0, &it) != BTRFS_UTIL_OK)
                return true;
        char *rel = NULL, mounted[PATH_MAX] = "";
        bool go = true;
        while (go && btrfs_util_subvolume_iterator_next(it, &rel, NULL) == BTRFS_UTIL_OK) {
                char full[PATH_MAX];
                struct statx sx;
                int n = snprintf(full, sizeof(full), "%s/%s", streq(root, "/") ? "" : root, rel);
                free(rel);
                rel = NULL;
                if (n < 0 || (size_t) n >= sizeof(full) || streq(full, real) || !path_within(full, real) ||
                    (mounted[0] && path_within(full, mounted)) || statx(AT_FDCWD, full, AT_SYMLINK_NOFOLLOW, STATX_INO, &sx) < 0)
                        continue;
                /* Where a mount covers it, the mount is what is there (the mount table's), with what
                 * it holds. */
                if (sx.stx_attributes_mask & sx.stx_attributes & STATX_ATTR_MOUNT_ROOT)
                        snprintf(mounted, sizeof(mounted), "%s", full);
                else
                        go = fn(&(FsBelow) { full, makedev(sx.stx_dev_major, sx.stx_dev_minor), NULL, true, false }, userdata);
        }
        btrfs_util_destroy_subvolume_iterator(it);
        return go;
}
#else
static bool subvolumes_below(const char *real, dev_t dev, FsBelowFn fn, void *userdata) {
        return true;
}
#endif

bool filesystems_below(const char *path, bool pseudo_too, FsBelowFn fn, void *userdata) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(path, real) || stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
                return true;
        struct libmnt_table *t = mount_table();
        struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
        struct libmnt_fs *fs;
        bool go = true;
        while (go && t && it && mnt_table_next_fs(t, it, &fs) == 0) {
                const char *m = mnt_fs_get_target(fs);
                struct stat ms;
                /* proc, tmpfs (/run, /dev/shm), overlay (a container's view of files kept below,
                 * on a filesystem of its own)...: no application data of their own to back up. */
                if ((pseudo_too || !mnt_fs_is_pseudofs(fs)) && m && !streq(m, real) && path_within(m, real) && stat(m, &ms) == 0)
                        go = fn(&(FsBelow) { m, ms.st_dev, mnt_fs_get_srcpath(fs), false, mnt_fs_is_pseudofs(fs) },
                                userdata);
        }
        mnt_free_iter(it);
        return go && subvolumes_below(real, st.st_dev, fn, userdata);
}

typedef struct WarnBelow {
        const Volume *vols;
        size_t n_vols;
        bool (*known)(const char *m, void *userdata);
        void *userdata;
        const char *why;
        bool mounts;
        char skip[PATH_MAX]; /* the subvolume told of last: those nested in it are not */
} WarnBelow;

static bool warn_one(const FsBelow *fs, void *userdata) {
        WarnBelow *w = userdata;
        if (fs->subvolume == w->mounts || (w->skip[0] && path_within(fs->path, w->skip)))
                return true;
        if (fs->subvolume)
                snprintf(w->skip, sizeof(w->skip), "%s", fs->path);
        if ((!w->known || !w->known(fs->path, w->userdata)) && !volumes_have_dev(w->vols, w->n_vols, fs->dev))
                on_warning(fs->path, fs->subvolume ? "the files of the filesystem there (a btrfs subvolume)"
                                                   : "the files of the filesystem mounted there", w->why, NULL);
        return true;
}

void warn_mounts_below(const char *path, const Volume *vols, size_t n_vols, bool (*known)(const char *m, void *userdata),
                       void *userdata, const char *why) {
        WarnBelow w = { vols, n_vols, known, userdata, why, true, "" };
        (void) filesystems_below(path, false, warn_one, &w);
}

void warn_subvolumes_below(const char *path, const Volume *vols, size_t n_vols, const char *why) {
        WarnBelow w = { vols, n_vols, NULL, NULL, why, false, "" };
        (void) filesystems_below(path, false, warn_one, &w);
}

/* Whether path (resolved, no symlink on it) is a directory of root's and every directory above it
 * root's, each writable by nobody else or sticky (where only root may move what is root's):
 * nobody but root can swap what is there between this look and vssd's, or rename a user's
 * subvolume or symlink into its place. The way up is dir_chain_trusted()'s, by ".." from the fd. */
bool root_only_way(const char *path) {
        _cleanup_close_ int fd = open_no_symlinks(AT_FDCWD, path, O_PATH | O_DIRECTORY, 0, false);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0)
                return false;
        _cleanup_close_ int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        return up >= 0 && dir_chain_trusted(up, path, 0, NULL, 0) == 0;
}

void volumes_free(Volume *vols, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(vols[i].path);
}

const Volume *volume_of(const Volume *vols, size_t n, const char *path) {
        const Volume *best = NULL;
        for (size_t i = 0; i < n; i++)
                if (path_within(path, vols[i].path) && (!best || strlen(vols[i].path) > strlen(best->path)))
                        best = &vols[i];
        return best;
}

/* The snapshot: start a set, add the volumes, prepare, do it; status after each phase. */
static bool make_snapshot(Run *run, Volume *vols, size_t n_vols, vss_id *set_id) {
        vss_backup *b = run->r.b;
        if (!report_step(&run->r, vss_backup_start_snapshot_set(b, set_id)))
                return false;
        for (size_t i = 0; i < n_vols; i++)
                /* A filesystem followed below a component is shadowed by the provider vssd chooses for
                 * it: --provider names the one for what was asked for (btrfs, say, with an ext4
                 * mounted below). */
                if (!report_step(&run->r, vss_backup_add_to_snapshot_set(b, vols[i].path,
                                                                         vols[i].followed ? NULL : arg_provider,
                                                                         &vols[i].shadow_id)))
                        return false;
        progress_status("Preparing the writers for backup...");
        if (!report_step(&run->r, vss_backup_prepare_for_backup_sync(b)) || !report_phase(&run->r, "prepare-for-backup"))
                return false;
        progress_status("Making the shadow copies of %zu volume%s (writers frozen)...", n_vols, n_vols == 1 ? "" : "s");
        int32_t hr = vss_backup_do_snapshot_set_sync(b);
        bool st_ok = report_phase(&run->r, "do-snapshot-set");
        if (hr < 0)
                run->r.error_hr = 0; /* the operation's own error names the cause */
        if (!report_step(&run->r, hr) || !st_ok)
                return false;
        for (size_t i = 0; i < n_vols; i++) {
                vss_snapshot_prop p;
                if (!report_step(&run->r, vss_backup_get_snapshot_properties(b, &vols[i].shadow_id, &p)))
                        return false;
                snprintf(vols[i].shadow_path, sizeof(vols[i].shadow_path), "%s", p.shadow_path);
                vols[i].created_usec = p.created_usec;
                /* Said once per shadow, never silently: only the writers made this copy consistent. */
                if ((p.attributes & OPENVSS_ATTR_NOT_POINT_IN_TIME) && !arg_quiet)
                        log_msg("the shadow copy of %s is not point-in-time: its filesystem was not held frozen while "
                                "it was copied (see vssadmin list providers --for %s)", p.original_path, p.original_path);
        }
        return true;
}

/* After an attempt at the snapshot set failed: if the failure is retryable and retries are left,
 * ends the session (vssd aborts what it had begun, writers thaw), waits and opens a new one.
 * False when the failure stands. */
static bool retry_snapshot(Run *run) {
        char hex[16];
        Report *c = &run->r;
        if (!run->attempts || !c->error_hr || !hr_retryable(c->error_hr))
                return false;
        if (run->attempt > arg_retries) {
                run->gave_up = true;
                return false;
        }
        unsigned delay = retry_delay_s(run->attempt);
        json_object_array_add(run->attempts, attempt_json(c, run->attempt, delay));
        progress_clear();
        if (!arg_quiet)
                log_msg("attempt %u of %u failed: %s (%s): %s; retrying in %u s", run->attempt, arg_retries + 1,
                strempty(vss_error_name(c->error_hr)), hex32(c->error_hr, hex), c->error_msg, delay);
        vss_backup_release(c->b);
        c->b = NULL;
        struct timespec ts = { .tv_sec = delay };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        json_object_put(c->phases);
        json_object_put(run->components);
        c->phases = json_object_new_array();
        run->components = json_object_new_array();
        c->error_hr = 0;
        c->error_msg[0] = 0;
        run->attempt++;
        int32_t hr = vss_backup_new(arg_socket, &c->b);
        if (hr < 0) {
                char why[1024];
                return run_fail(run, hr, "%s", vssd_failure_text(arg_socket, hr, why, sizeof(why)));
        }
        return true;
}


bool snapshot_attempts(Run *run, bool ok, const SnapshotPlan *plan, Volume *vols, size_t *n_vols, vss_id *set_id) {
        for (;;) {
                vss_backup *b = run->r.b;
                mount_table_forget();
                ok = ok && report_step(&run->r, vss_backup_initialize_for_backup(b)) &&
                     report_step(&run->r, vss_backup_set_backup_state(b, false, false, plan->type, false)) &&
                     report_step(&run->r, vss_backup_gather_writer_metadata_sync(b)) &&
                     (!plan->prepare || plan->prepare(run, plan->userdata));
                for (size_t i = 0; ok && i < plan->n_paths; i++)
                        ok = volume_add(run, vols, n_vols, plan->paths[i]);
                if (ok && plan->n_paths > 0 && plan->nested_volumes)
                        ok = plan->nested_volumes(run, vols, n_vols, plan->userdata);
                if (ok && plan->n_paths == 0)
                        ok = plan->default_volumes(run, vols, n_vols, plan->userdata);
                if (ok && *n_vols == 0)
                        ok = run_fail(run, VSS_E_OBJECT_NOT_FOUND, "%s", plan->nothing);
                ok = ok && make_snapshot(run, vols, *n_vols, set_id);
                if (ok || !retry_snapshot(run))
                        return ok;
                /* A new session: everything again. */
                volumes_free(vols, *n_vols);
                *n_vols = 0;
                ok = true;
        }
}
