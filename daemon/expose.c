/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Exposing a shadow: a read-only, nosuid, nodev mount of it at a directory the admin names. A directory or
 * subvolume snapshot is bind-mounted read-only; an image is loop-mounted read-only; an exec
 * provider with an expose command does it its own way. The mount is made detached and moved onto
 * the opened target directory (move_mount), so no symlink or swapped directory redirects it.
 * The mount is made in a child process, vssd answering others meanwhile. Exposures are recorded
 * in the registry. */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/access.h"
#include "daemon/bus.h"
#include "daemon/child.h"
#include "daemon/expose.h"
#include "daemon/log.h"
#include "daemon/shadows.h"
#include "lib/basic/path-util.h"
#include "lib/common.h"
#include "lib/openat.h"

/* Mounts the shadow read-only at `at` by its provider's own means (an image, an exec provider's
 * expose command); -EOPNOTSUPP when it is a directory, which is cloned without a mount. */
static int mount_by_provider(const Manager *m, const ShadowRecord *rec, const char *at) {
        const Provider *p = provider_find(&m->providers, rec->provider);
        struct stat st;

        if (p && p->expose) {
                int r = p->expose(p, rec->shadow_path, at);
                if (r != -EOPNOTSUPP)
                        return r;
        }
        if (stat(rec->shadow_path, &st) < 0)
                return -errno;
        if (S_ISREG(st.st_mode)) {
                /* mount(8) sets up the loop device (autoclear) and knows the filesystem types. */
                char e_img[PATH_MAX + 16], e_at[PATH_MAX + 16];
                snprintf(e_img, sizeof(e_img), "VSS_IMAGE=%s", rec->shadow_path);
                snprintf(e_at, sizeof(e_at), "VSS_AT=%s", at);
                const char *env[] = { e_img, e_at, NULL };
                uint64_t deadline = now_monotonic_usec() + 60 * USEC_PER_SEC;
                /* nosuid, nodev: the image's files are whoever wrote them into the volume's (a
                 * user's setuid-root program, a device node of any disk). */
                return provider_run_command("mount -o ro,loop,nosuid,nodev -- \"$VSS_IMAGE\" \"$VSS_AT\"", env, deadline,
                                            NULL);
        }
        return S_ISDIR(st.st_mode) ? -EOPNOTSUPP : -EMEDIUMTYPE;
}

/* A detached, read-only mount tree of the shadow (fd). A directory is cloned directly (not
 * recursively: every mount in it read-only). Anything else is mounted by its provider at a
 * private staging directory of vssd's, cloned from there and the staging mount dropped: the
 * provider's commands never see the user-visible path. */
static int shadow_tree(Manager *m, const ShadowRecord *rec, int *ret_fd) {
        _cleanup_free_ char *staging = NULL;
        int fd, r;

        if (asprintf(&staging, "%s/expose-XXXXXX", m->state_dir) < 0)
                return -ENOMEM;
        if (!mkdtemp(staging))
                return -errno;
        r = mount_by_provider(m, rec, staging);
        if (r == -EOPNOTSUPP) {
                (void) rmdir(staging);
                fd = open_tree(AT_FDCWD, rec->shadow_path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
                if (fd < 0)
                        return -errno;
        } else {
                if (r < 0) {
                        (void) rmdir(staging);
                        return r;
                }
                fd = open_tree(AT_FDCWD, staging, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
                r = fd < 0 ? -errno : 0;
                (void) umount2(staging, MNT_DETACH);
                (void) rmdir(staging);
                if (r < 0)
                        return r;
        }
        /* A shadow holds what users wrote: no setuid bit, capability or device node takes effect
         * through it. */
        struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
        if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* Opens the place to expose at: an existing directory owned by root or the caller, reached
 * without any symbolic link. The mount goes onto this fd (move_mount), so what was checked is
 * what gets the mount, whatever is renamed or replaced meanwhile. Its path, from the fd, goes to
 * ret_path. */
static int open_target(const char *at, uid_t caller, int *ret_fd, char *ret_path, size_t size, sd_bus_error *error) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        char proc[64];

        if (!string_ok(at, VSS_MAX_STRING) || at[0] != '/')
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not an absolute path", at);
        fd = open_no_symlinks(AT_FDCWD, at, O_RDONLY | O_DIRECTORY, 0, false); /* the last one too: ELOOP */
        if (fd < 0) {
                errno = -fd;
                if (errno == ELOOP)
                        return reply_error(error, VSS_E_INVALIDARG,
                                           "'%s' is or passes through a symbolic link; give the real path of a directory", at);
                if (errno == ENOTDIR)
                        return reply_error(error, VSS_E_INVALIDARG, "'%s' is not a directory", at);
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not an existing directory: %s", at, strerror(errno));
        }
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        if (fstat(fd, &st) < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot stat '%s': %s", at, strerror(errno));
        if (st.st_uid != 0 && st.st_uid != caller)
                return reply_error(error, VSS_E_INVALIDARG, "'%s' belongs to uid %u, not to root or the caller", at,
                                   (unsigned) st.st_uid);
        ssize_t n = readlink(proc, ret_path, size - 1);
        if (n < 0 || (size_t) n >= size - 1)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot tell the path of '%s'", at);
        ret_path[n] = 0;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Whether the directory fd (at, for messages) is empty, read through a second open of the same
 * directory, not of its path. */
static int check_empty(int fd, const char *at, sd_bus_error *error) {
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        _cleanup_close_ int dfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (!d)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read '%s': %s", at, strerror(errno));
        dfd = -EBADF; /* the DIR owns it now */
        struct dirent *de;
        bool empty = true;
        errno = 0;
        while (empty && (de = readdir(d)))
                empty = streq(de->d_name, ".") || streq(de->d_name, "..");
        int e = errno;
        closedir(d);
        if (e != 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read '%s': %s", at, strerror(e));
        if (!empty)
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not empty: a shadow copy is exposed only at an empty directory", at);
        return 0;
}

/* An ExposeShadow or UnexposeShadow call, answered once its child has mounted or unmounted
 * (a provider's expose command or mount(8) may take long: vssd answers others meanwhile). */
struct ExposeOp {
        Manager *manager;
        sd_bus_message *msg;
        ShadowRecord rec;
        int target; /* expose: the checked directory the mount goes onto */
        /* Unexpose: the exposure's mount, from its record. Expose: the mount the child made, told
         * through a page shared with it (MAP_FAILED until mapped). */
        MountIdentity mount;
        MountIdentity *made;
        char at[PATH_MAX];
        bool unexpose;
        LIST_FIELDS(ExposeOp, exposing);
};

static void op_free(void *userdata) {
        ExposeOp *op = userdata;
        LIST_REMOVE(exposing, op->manager->exposing, op);
        sd_bus_message_unref(op->msg);
        shadow_record_done(&op->rec);
        if (op->target >= 0)
                close(op->target);
        if (op->made != MAP_FAILED)
                munmap(op->made, sizeof(*op->made));
        free(op);
}

static void warn_not_again(const char *at, const char *why) {
        log_warn("shadow copy exposed at %s before the reboot is not exposed again: %s", at, why);
}

/* The caller's error; with no caller (an exposure made again after a reboot), a warning. */
_printf_(3, 4) static void op_reply_error(ExposeOp *op, int32_t hr, const char *fmt, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        va_list ap;
        va_start(ap, fmt);
        reply_errorv(&error, hr, fmt, ap);
        va_end(ap);
        if (op->msg)
                (void) sd_bus_reply_method_error(op->msg, &error);
        else
                warn_not_again(op->at, error.message);
}

/* In the child. */
static int op_mount(void *userdata) {
        ExposeOp *op = userdata;
        int tree = -EBADF;
        int r = shadow_tree(op->manager, &op->rec, &tree);
        if (r >= 0 && move_mount(tree, "", op->target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                r = -errno;
        /* Which mount it is, so it is found again wherever a rename moves it (zeros on a kernel
         * that cannot say: found only where it was made). */
        if (r >= 0)
                (void) mount_identity_of(tree, op->made);
        if (tree >= 0)
                close(tree);
        return r;
}

static int op_umount(void *userdata) {
        ExposeOp *op = userdata;
        return exposure_unmount(op->at, &op->mount);
}

static void on_exposed(int r, void *userdata) {
        ExposeOp *op = userdata;
        Manager *m = op->manager;
        char id[VSS_ID_STRING_MAX];
        ShadowRecord rec = {};
        vss_id_to_string(&op->rec.shadow_id, id);
        if (r < 0) {
                char why[256];
                snprintf(why, sizeof(why), "%s", strerror(-r));
                op_reply_error(op, VSS_E_UNEXPECTED_PROVIDER_ERROR, "cannot expose it at %s: %s", op->at, why);
        } else if (registry_get_shadow(m->registry, &op->rec.shadow_id, &rec) < 0) {
                /* Deleted (or being deleted) meanwhile: not exposed after all. */
                (void) exposure_unmount(op->at, op->made);
                op_reply_error(op, VSS_E_OBJECT_NOT_FOUND, "shadow copy %s was deleted meanwhile", id);
        } else if ((r = registry_add_exposure(m->registry, &op->rec.shadow_id, op->at, op->made)) < 0) {
                (void) exposure_unmount(op->at, op->made);
                op_reply_error(op, VSS_E_UNEXPECTED, "cannot record the exposure: %s", strerror(-r));
        } else {
                log_info("exposed shadow copy %s at %s%s", id, op->at, op->msg ? "" : " again (after a reboot)");
                if (op->msg)
                        (void) sd_bus_reply_method_return(op->msg, "s", op->at);
        }
        shadow_record_done(&rec);
        op_free(op);
}

static void on_unexposed(int r, void *userdata) {
        ExposeOp *op = userdata;
        bool gone = r == -ESTALE;
        if (gone)
                log_info("shadow copy exposed at %s was unmounted by someone; forgotten", op->at);
        if (r >= 0 || gone)
                r = registry_remove_exposure(op->manager->registry, op->at);
        if (r == -ENOENT)
                op_reply_error(op, VSS_E_OBJECT_NOT_FOUND, "no shadow copy is exposed at %s", op->at);
        else if (r == -ELOOP)
                op_reply_error(op, VSS_E_INVALIDARG, "cannot unexpose %s: a symbolic link is on the way to it now (a "
                               "directory was replaced since the exposure); nothing unmounted", op->at);
        else if (r == -EBUSY)
                op_reply_error(op, VSS_E_OBJECT_NOT_FOUND, "cannot unexpose %s: it was moved (a directory above it "
                               "renamed) while it was looked for, or a mount is over it where it is; nothing "
                               "unmounted, try again", op->at);
        else if (r == -ENXIO) /* a record from before exposures' mounts were recorded, or made on Linux < 6.8 */
                op_reply_error(op, VSS_E_OBJECT_NOT_FOUND, "nothing is mounted at %s now: the exposure was moved (a "
                               "directory on the way renamed) or unmounted by someone; find it with findmnt. Its record "
                               "stays until its shadow copy is deleted", op->at);
        else if (r < 0)
                op_reply_error(op, VSS_E_UNEXPECTED, "cannot unexpose %s: %s", op->at, strerror(-r));
        else {
                log_info("unexposed %s", op->at);
                (void) sd_bus_reply_method_return(op->msg, NULL);
        }
        op_free(op);
}

static bool op_busy(Manager *m, const char *at) {
        LIST_FOREACH(exposing, op, m->exposing)
                if (streq(op->at, at))
                        return true;
        return false;
}

/* target: the opened directory to expose at (taken over), or -EBADF to unexpose the mount
 * `mount`. */
static int op_start(Manager *m, sd_bus_message *msg, const char *at, ShadowRecord *rec, int target,
                    const MountIdentity *mount, sd_bus_error *error) {
        MountIdentity *made = rec ? mmap(NULL, sizeof(*made), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
                                  : MAP_FAILED;
        ExposeOp *op = !rec || made != MAP_FAILED ? calloc(1, sizeof(*op)) : NULL;
        if (!op) {
                shadow_record_done(rec);
                if (target >= 0)
                        close(target);
                if (made != MAP_FAILED)
                        munmap(made, sizeof(*made));
                return -ENOMEM;
        }
        *op = (ExposeOp) { .manager = m, .msg = sd_bus_message_ref(msg), .unexpose = !rec, .target = target,
                           .made = made };
        if (rec)
                op->rec = *rec;
        if (mount)
                op->mount = *mount;
        snprintf(op->at, sizeof(op->at), "%s", at);
        LIST_PREPEND(exposing, m->exposing, op);
        int r = child_run(&m->children, rec ? "expose" : "unexpose", rec ? op_mount : op_umount, op,
                          rec ? on_exposed : on_unexposed, op_free, op);
        if (r < 0) {
                op_free(op);
                return reply_error(error, VSS_E_UNEXPECTED, "cannot start: %s", strerror(-r));
        }
        return 1; /* answered when the child is done */
}

int method_expose_shadow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        const char *id, *at;
        char real[PATH_MAX];
        _cleanup_close_ int target = -EBADF;
        vss_id sid;
        ShadowRecord rec = {};
        int r;

        if (c->cred.uid != 0)
                return reply_error(error, VSS_E_ACCESSDENIED, "only root may expose shadow copies (it mounts)");
        r = sd_bus_message_read(msg, "ss", &id, &at);
        if (r < 0)
                return r;
        if (vss_id_from_string(id, &sid) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not a shadow id", id);
        r = open_target(at, c->cred.uid, &target, real, sizeof(real), error);
        if (r < 0)
                return r;
        r = registry_get_shadow(m->registry, &sid, &rec);
        if (r == -ENOENT)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no shadow copy %s", id);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the shadow registry: %s", strerror(-r));
        if (shadow_exposed_at(m, real) > 0 || op_busy(m, real)) {
                shadow_record_done(&rec);
                return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "a shadow copy is already exposed at %s", real);
        }
        r = check_empty(target, real, error);
        if (r < 0) {
                shadow_record_done(&rec);
                return r;
        }
        return op_start(m, msg, real, &rec, TAKE_FD(target), NULL, error);
}

int method_unexpose_shadow(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        const char *at;
        char real[PATH_MAX];
        int r;

        if (c->cred.uid != 0)
                return reply_error(error, VSS_E_ACCESSDENIED, "only root may unexpose shadow copies (it unmounts)");
        r = sd_bus_message_read(msg, "s", &at);
        if (r < 0)
                return r;
        /* As recorded (a real path) first, unresolved: a symlink made on the way since is then
         * refused by the unmount rather than followed here. */
        if (!string_ok(at, VSS_MAX_STRING) || path_normalize(at, real, sizeof(real)) < 0 || shadow_exposed_at(m, real) <= 0)
                if (!string_ok(at, VSS_MAX_STRING) || !realpath(at, real))
                        snprintf(real, sizeof(real), "%s", at);
        if (op_busy(m, real))
                return reply_error(error, VSS_E_BAD_STATE, "a shadow copy is being exposed or unexposed at %s", real);
        /* Only what we exposed is unmounted: never whatever else is mounted there. */
        Exposure ex = {};
        r = registry_get_exposure(m->registry, real, &ex);
        if (r == -ENOENT)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no shadow copy is exposed at %s", real);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot unexpose %s: %s", real, strerror(-r));
        free(ex.at);
        return op_start(m, msg, real, NULL, -EBADF, &ex.mount, error);
}

static int append_exposure(sd_bus_message *reply, size_t i, void *userdata) {
        const Exposure *ex = (const Exposure *) userdata + i;
        char id[VSS_ID_STRING_MAX];
        return sd_bus_message_append(reply, "(ss)", vss_id_to_string(&ex->shadow_id, id), ex->at);
}

int method_list_exposures(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Exposure *ex = NULL;
        size_t n = 0;
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        r = registry_list_exposures(c->manager->registry, &ex, &n);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the registry: %s", strerror(-r));
        r = reply_array(msg, "(ss)", n, append_exposure, ex);
        exposures_free(ex, n);
        return r;
}

/* VSS keeps an exposed persistent shadow exposed through reboots; a mount ends with its boot. Each
 * exposure recorded in an earlier boot is made again where it was, as ExposeShadow makes one (a
 * directory of root's, empty, reached without symlinks); one that cannot be is forgotten, with a
 * warning saying why. */
void exposures_restore(Manager *m) {
        Exposure *ex = NULL;
        size_t n = 0;
        if (registry_list_exposures(m->registry, &ex, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                _cleanup_close_ int target = -EBADF;
                char real[PATH_MAX];
                ShadowRecord rec = {};
                if (!mount_of_other_boot(&ex[i].mount) || registry_remove_exposure(m->registry, ex[i].at) < 0)
                        continue;
                if (registry_get_shadow(m->registry, &ex[i].shadow_id, &rec) < 0)
                        reply_error(&error, VSS_E_OBJECT_NOT_FOUND, "its shadow copy is gone");
                else if (open_target(ex[i].at, 0, &target, real, sizeof(real), &error) < 0 ||
                         check_empty(target, real, &error) < 0)
                        shadow_record_done(&rec);
                /* op_start() owns rec and the target from here, whatever it returns. */
                else if (op_start(m, NULL, real, &rec, TAKE_FD(target), NULL, &error) >= 0)
                        continue; /* the record is made again once it is mounted */
                warn_not_again(ex[i].at, error.message ? error.message : "out of memory");
        }
        exposures_free(ex, n);
}
