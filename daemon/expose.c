/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Exposing a shadow: a read-only mount of it at a directory the admin names. A directory or
 * subvolume snapshot is bind-mounted read-only; an image is loop-mounted read-only; an exec
 * provider with an expose command does it its own way. Exposures are recorded in the registry. */

#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon/vssd.h"

static int mount_readonly(const ShadowRecord *rec, const char *at) {
        const Provider *p = provider_find(rec->provider);
        struct stat st;
        int r;

        if (p && p->expose) {
                r = p->expose(p, rec->shadow_path, at);
                if (r != -EOPNOTSUPP)
                        return r;
        }
        if (stat(rec->shadow_path, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode)) {
                if (mount(rec->shadow_path, at, "none", MS_BIND, NULL) < 0) /* not recursive: every mount in it read-only */
                        return -errno;
                /* A bind mount takes MS_RDONLY only on a remount. */
                if (mount("none", at, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
                        r = -errno;
                        (void) umount2(at, MNT_DETACH);
                        return r;
                }
                return 0;
        }
        if (S_ISREG(st.st_mode)) {
                /* mount(8) sets up the loop device (autoclear) and knows the filesystem types. */
                char e_img[PATH_MAX + 16], e_at[PATH_MAX + 16];
                snprintf(e_img, sizeof(e_img), "VSS_IMAGE=%s", rec->shadow_path);
                snprintf(e_at, sizeof(e_at), "VSS_AT=%s", at);
                const char *env[] = { e_img, e_at, NULL };
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t deadline = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000 + 60 * USEC_PER_SEC;
                return provider_run_command("mount -o ro,loop -- \"$VSS_IMAGE\" \"$VSS_AT\"", env, deadline, NULL);
        }
        return -EOPNOTSUPP;
}

/* 1 when a shadow is exposed at `at`, 0 when not, -errno when the registry cannot say. */
static int exposed_at(Manager *m, const char *at) {
        Exposure *ex = NULL;
        size_t n = 0;
        bool found = false;
        int r = registry_list_exposures(m->registry, &ex, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                found = found || streq(ex[i].at, at);
        exposures_free(ex, n);
        return found;
}

/* An ExposeShadow or UnexposeShadow call, answered once its child has mounted or unmounted
 * (a provider's expose command or mount(8) may take long: vssd answers others meanwhile). */
struct ExposeOp {
        Manager *manager;
        sd_bus_message *msg;
        ShadowRecord rec;
        char at[PATH_MAX];
        bool unexpose;
        LIST_FIELDS(ExposeOp, exposing);
};

static void op_free(void *userdata) {
        ExposeOp *op = userdata;
        LIST_REMOVE(exposing, op->manager->exposing, op);
        sd_bus_message_unref(op->msg);
        shadow_record_done(&op->rec);
        free(op);
}

static void op_reply_error(ExposeOp *op, int32_t hr, const char *fmt, const char *a, const char *b) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        reply_error(&error, hr, fmt, a, b);
        (void) sd_bus_reply_method_error(op->msg, &error);
}

/* In the child. */
static int op_mount(void *userdata) {
        ExposeOp *op = userdata;
        return mount_readonly(&op->rec, op->at);
}

static int op_umount(void *userdata) {
        ExposeOp *op = userdata;
        return umount2(op->at, 0) < 0 && errno != EINVAL && errno != ENOENT ? -errno : 0;
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
                (void) umount2(op->at, MNT_DETACH);
                op_reply_error(op, VSS_E_OBJECT_NOT_FOUND, "shadow copy %s%s was deleted meanwhile", id, "");
        } else if ((r = registry_add_exposure(m->registry, &op->rec.shadow_id, op->at)) < 0) {
                (void) umount2(op->at, MNT_DETACH);
                op_reply_error(op, VSS_E_UNEXPECTED, "cannot record the exposure: %s%s", strerror(-r), "");
        } else {
                log_info("exposed shadow copy %s at %s", id, op->at);
                (void) sd_bus_reply_method_return(op->msg, "s", op->at);
        }
        shadow_record_done(&rec);
        op_free(op);
}

static void on_unexposed(int r, void *userdata) {
        ExposeOp *op = userdata;
        if (r >= 0)
                r = registry_remove_exposure(op->manager->registry, op->at);
        if (r == -ENOENT)
                op_reply_error(op, VSS_E_OBJECT_NOT_FOUND, "no shadow copy is exposed at %s%s", op->at, "");
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

static int op_start(Manager *m, sd_bus_message *msg, const char *at, ShadowRecord *rec, sd_bus_error *error) {
        ExposeOp *op = calloc(1, sizeof(*op));
        if (!op) {
                shadow_record_done(rec);
                return -ENOMEM;
        }
        *op = (ExposeOp) { .manager = m, .msg = sd_bus_message_ref(msg), .unexpose = !rec };
        if (rec)
                op->rec = *rec;
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
        if (!string_ok(at, VSS_MAX_STRING) || at[0] != '/' || !realpath(at, real))
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not an existing absolute directory", at);
        struct stat st;
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not a directory", real);
        r = registry_get_shadow(m->registry, &sid, &rec);
        if (r == -ENOENT)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no shadow copy %s", id);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the shadow registry: %s", strerror(-r));
        if (exposed_at(m, real) > 0 || op_busy(m, real)) {
                shadow_record_done(&rec);
                return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "a shadow copy is already exposed at %s", real);
        }
        return op_start(m, msg, real, &rec, error);
}

static int unexpose(Manager *m, const char *at) {
        /* Only what we exposed is unmounted: never whatever else is mounted there. */
        int r = exposed_at(m, at);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        if (umount2(at, 0) < 0 && errno != EINVAL && errno != ENOENT)
                return -errno;
        return registry_remove_exposure(m->registry, at);
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
        if (!string_ok(at, VSS_MAX_STRING) || !realpath(at, real))
                snprintf(real, sizeof(real), "%s", at);
        if (op_busy(m, real))
                return reply_error(error, VSS_E_BAD_STATE, "a shadow copy is being exposed or unexposed at %s", real);
        /* Only what we exposed is unmounted: never whatever else is mounted there. */
        r = exposed_at(m, real);
        if (r == 0)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no shadow copy is exposed at %s", real);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot unexpose %s: %s", real, strerror(-r));
        return op_start(m, msg, real, NULL, error);
}

int method_list_exposures(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char id[VSS_ID_STRING_MAX];
        Exposure *ex = NULL;
        size_t n = 0;
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        r = registry_list_exposures(c->manager->registry, &ex, &n);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the registry: %s", strerror(-r));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ss)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(ss)", vss_id_to_string(&ex[i].shadow_id, id), ex[i].at);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        exposures_free(ex, n);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

void shadow_unexpose_all(Manager *m, const vss_id *shadow_id) {
        Exposure *ex = NULL;
        size_t n = 0;
        if (registry_list_exposures(m->registry, &ex, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (vss_id_equal(&ex[i].shadow_id, shadow_id) && unexpose(m, ex[i].at) < 0)
                        log_warn("cannot unexpose %s", ex[i].at);
        exposures_free(ex, n);
}
