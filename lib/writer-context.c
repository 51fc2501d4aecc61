/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, writer face: what vssd says of a session beside its events (the writer's Context
 * method): the requester's partial-file and bootable-system-state settings and its context before
 * PrepareForBackup, those and the set's volumes before PrepareForSnapshot, the restored backup's
 * settings before PreRestore (CVssWriter's IsPartialFileSupportEnabled,
 * IsBootableSystemStateBackedUp, GetContext, GetCurrentVolumeArray and IsPathAffected). vssd sends
 * it without asking for an answer, so a writer of an older libvss, which has no Context method,
 * ignores it; its keys are read leniently for the same reason the other way round: a newer vssd
 * may say more. */

#include "lib/basic/path-util.h"
#include "lib/jsonv.h"
#include "lib/writer-internal.h"

static void context_clear(struct WriterContext *c) {
        for (size_t i = 0; i < c->n_volumes; i++)
                free(c->volumes[i]);
        free(c->volumes);
        free(c->session);
        *c = (struct WriterContext) {};
}

void writer_context_clear(vss_writer *w) {
        for (size_t i = 0; i < ELEMENTSOF(w->ctx); i++)
                context_clear(&w->ctx[i]);
}

void writer_context_forget(vss_writer *w, const char *session) {
        for (size_t i = 0; i < ELEMENTSOF(w->ctx); i++)
                if (w->ctx[i].session && streq(w->ctx[i].session, session))
                        context_clear(&w->ctx[i]);
}

/* The context of session, or NULL. */
static struct WriterContext *context_of(const vss_writer *w, const char *session) {
        for (size_t i = 0; i < ELEMENTSOF(w->ctx); i++)
                if (w->ctx[i].session && streq(w->ctx[i].session, session))
                        return (struct WriterContext *) &w->ctx[i];
        return NULL;
}

static int writer_context_set(vss_writer *w, const char *session, const char *json, char *err, size_t errsize) {
        JsonReader v = {};
        json_object *o = jv_parse(&v, json, VSS_MAX_DOCUMENT, "context");
        bool partial = false, bootable = false;
        uint32_t context = 0;
        json_object *arr = NULL;
        size_t n = 0;
        char **volumes = NULL;
        if (o) {
                partial = jv_bool(&v, o, "partial_file_support", false);
                bootable = jv_bool(&v, o, "bootable_system_state", false);
                context = (uint32_t) jv_int(&v, o, "context", 0, UINT32_MAX, 0);
                arr = jv_array(&v, o, "volumes", VSS_MAX_VOLUMES, false);
        }
        if (arr && !jv_failed(&v) && !(volumes = calloc(json_object_array_length(arr) + 1, sizeof(char *))))
                jv_fail(&v, NULL, "out of memory");
        for (size_t i = 0; volumes && i < json_object_array_length(arr) && !jv_failed(&v); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                size_t l = jv_enter_index(&v, i);
                if (!json_object_is_type(e, json_type_string) ||
                    !string_ok(json_object_get_string(e), VSS_MAX_STRING) || json_object_get_string(e)[0] != '/')
                        jv_fail(&v, NULL, "expected an absolute path of at most %d bytes", VSS_MAX_STRING);
                else if ((volumes[n] = jv_dup(&v, json_object_get_string(e))))
                        n++;
                jv_leave(&v, l);
        }
        char *s = jv_failed(&v) ? NULL : jv_dup(&v, session);
        json_object_put(o);
        if (jv_error(&v, err, errsize) < 0) {
                for (size_t i = 0; i < n; i++)
                        free(volumes[i]);
                free(volumes);
                return -EINVAL;
        }
        /* The session's own, else a free one, else the one said of longest ago. */
        struct WriterContext *c = context_of(w, session);
        for (size_t i = 0; !c && i < ELEMENTSOF(w->ctx); i++)
                if (!w->ctx[i].session)
                        c = &w->ctx[i];
        if (!c) {
                c = &w->ctx[0];
                for (size_t i = 1; i < ELEMENTSOF(w->ctx); i++)
                        if (w->ctx[i].said < c->said)
                                c = &w->ctx[i];
        }
        context_clear(c);
        *c = (struct WriterContext) { s, partial, bootable, context, volumes, n, ++w->ctx_said };
        return 0;
}

/* vssd asks no answer: a bad context is not kept, and the error goes nowhere. */
int writer_method_context(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        const char *session, *json;
        char why[512];
        int r = sd_bus_message_read(m, "ss", &session, &json);
        if (r >= 0 && writer_context_set(userdata, session, json, why, sizeof(why)) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "bad context: %s", why);
        return r < 0 ? r : sd_bus_reply_method_return(m, NULL);
}

void writer_context_fill(const vss_writer *w, const char *session, vss_event_info *info) {
        const struct WriterContext *c = context_of(w, session);
        if (info->event == VSS_EVENT_IDENTIFY || !c)
                return;
        info->partial_file_support = c->partial;
        info->bootable_system_state = c->bootable;
        info->context = c->context;
        info->n_volumes = c->n_volumes;
        info->volumes = (const char *const *) c->volumes;
}

VSS_EXPORT bool vss_event_is_path_affected(const vss_event_info *info, const char *path) {
        /* Normalized both ("a/../b" is b), one within the other: "/data" meets "/data/x", not
         * "/database". */
        for (size_t i = 0; info && path && i < info->n_volumes; i++)
                if (path_overlaps(path, info->volumes[i]))
                        return true;
        return false;
}
