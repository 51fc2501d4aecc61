/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, admin face: vssd's admin methods (ListWriters, ListProviders, ExplainVolume, ListShadows
 * with ListExposures, DeleteShadows, ExposeShadow, UnexposeShadow) as C calls. */

#include <stdarg.h>

#include <vss/admin.h>

#include "lib/client.h"

/* A list's entries point into the reply they were read from, which the handle keeps. */
typedef struct AdminList {
        sd_bus_message *reply;
        void *items;
        size_t n;
} AdminList;

struct vss_admin {
        sd_bus *bus;
        AdminList writers, providers, shadows;
        sd_bus_message *exposures, *volume_reply, *expose_reply;
        vss_admin_volume volume;
        char errmsg[1024];
};

static void list_clear(AdminList *l) {
        l->reply = sd_bus_message_unref(l->reply);
        free(l->items);
        l->items = NULL;
        l->n = 0;
}

/* vssd's message when it refused, else the system's reason (what vssadmin has always printed). */
static int32_t fail(vss_admin *a, const sd_bus_error *e, int r) {
        snprintf(a->errmsg, sizeof(a->errmsg), "%s", e && e->message ? e->message : strerror(r < 0 ? -r : r));
        return vss_hr_from_bus_error(e, r);
}

VSS_EXPORT int vss_admin_new(vss_admin **ret) {
        if (!ret)
                return VSS_E_INVALIDARG;
        vss_admin *a = calloc(1, sizeof(*a));
        if (!a)
                return VSS_E_OUTOFMEMORY;
        *ret = a;
        return 0;
}

VSS_EXPORT int vss_admin_connect(vss_admin *a, const char *socket_path) {
        if (!a)
                return VSS_E_INVALIDARG;
        if (a->bus) {
                snprintf(a->errmsg, sizeof(a->errmsg), "already connected");
                return VSS_E_BAD_STATE;
        }
        int r = vss_connect(socket_path, &a->bus);
        if (r < 0) {
                snprintf(a->errmsg, sizeof(a->errmsg), "cannot connect to vssd: %s", strerror(-r));
                return VSS_E_WRITER_INFRASTRUCTURE;
        }
        return 0;
}

VSS_EXPORT vss_admin *vss_admin_free(vss_admin *a) {
        if (!a)
                return NULL;
        list_clear(&a->writers);
        list_clear(&a->providers);
        list_clear(&a->shadows);
        sd_bus_message_unref(a->exposures);
        sd_bus_message_unref(a->volume_reply);
        sd_bus_message_unref(a->expose_reply);
        sd_bus_flush_close_unref(a->bus);
        free(a);
        return NULL;
}

VSS_EXPORT const char *vss_admin_errmsg(vss_admin *a) {
        return a ? a->errmsg : "no handle";
}

/* Calls method; on success *ret_reply (optional) holds the reply. */
static int32_t admin_call(vss_admin *a, const char *method, sd_bus_message **ret_reply, const char *types, ...) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        if (!a->bus) {
                snprintf(a->errmsg, sizeof(a->errmsg), "not connected to vssd");
                return VSS_E_BAD_STATE;
        }
        int r = sd_bus_message_new_method_call(a->bus, &m, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, method);
        if (r >= 0 && types) {
                va_list ap;
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
        if (r >= 0)
                r = sd_bus_call(a->bus, m, 0, &error, ret_reply);
        return r < 0 ? fail(a, &error, r) : 0;
}

/* Reads the array of the reply into l: read_one reads one entry (its struct included) into
 * item, returning > 0, 0 at the end, < 0 on failure. */
static int32_t read_list(vss_admin *a, AdminList *l, sd_bus_message *reply, const char *contents, size_t item_size,
                         int (*read_one)(sd_bus_message *m, void *item)) {
        int r = sd_bus_message_enter_container(reply, 'a', contents);
        list_clear(l);
        l->reply = reply;
        while (r >= 0) {
                char *n = reallocarray(l->items, l->n + 1, item_size);
                if (!n) {
                        r = -ENOMEM;
                        break;
                }
                l->items = n;
                memset(n + l->n * item_size, 0, item_size);
                r = read_one(reply, n + l->n * item_size);
                if (r <= 0)
                        break;
                l->n++;
        }
        if (r < 0) {
                list_clear(l);
                return fail(a, NULL, r);
        }
        return 0;
}

static int read_id(const char *s, vss_id *ret) {
        return isempty(s) ? 0 : vss_id_from_string(s, ret) < 0 ? -EBADMSG : 0;
}

static int read_writer(sd_bus_message *m, void *item) {
        vss_admin_writer *w = item;
        const char *wid, *iid, *sid;
        uint32_t state;
        int r = sd_bus_message_read(m, "(sssuiissst)", &w->status.name, &wid, &iid, &state, &w->status.failure,
                                    &w->status.application_code, &w->status.application_message, &w->status.note,
                                    &sid, &w->as_of_usec);
        if (r <= 0)
                return r;
        w->status.state = (vss_writer_state) state;
        if (read_id(wid, &w->status.writer_id) < 0 || read_id(iid, &w->status.instance_id) < 0 ||
            read_id(sid, &w->session_id) < 0)
                return -EBADMSG;
        return 1;
}

static int read_provider(sd_bus_message *m, void *item) {
        vss_admin_provider *p = item;
        const char *id;
        int atomic;
        int r = sd_bus_message_read(m, "(sssssb)", &p->name, &id, &p->type, &p->description, &p->supports, &atomic);
        if (r <= 0)
                return r;
        p->atomic = atomic;
        return read_id(id, &p->provider_id) < 0 ? -EBADMSG : 1;
}

static int read_shadow(sd_bus_message *m, void *item) {
        vss_admin_shadow *s = item;
        const char *sid, *setid;
        uint64_t reserved;
        int r = sd_bus_message_read(m, "(sssssttu)", &sid, &setid, &s->original_path, &s->shadow_path, &s->provider,
                                    &s->created_usec, &reserved, &s->attributes);
        if (r <= 0)
                return r;
        s->exposed_at = "";
        return read_id(sid, &s->shadow_id) < 0 || read_id(setid, &s->snapshot_set_id) < 0 ? -EBADMSG : 1;
}

/* Fetches a list: method's reply, read into l. */
static int32_t list(vss_admin *a, const char *method, AdminList *l, const char *contents, size_t item_size,
                    int (*read_one)(sd_bus_message *m, void *item), size_t *ret_n) {
        sd_bus_message *reply = NULL;
        if (!a)
                return VSS_E_INVALIDARG;
        int32_t hr = admin_call(a, method, &reply, NULL);
        if (hr >= 0)
                hr = read_list(a, l, reply, contents, item_size, read_one);
        if (hr >= 0 && ret_n)
                *ret_n = l->n;
        return hr;
}

static const void *list_get(const AdminList *l, size_t i, size_t item_size) {
        return i < l->n ? (const char *) l->items + i * item_size : NULL;
}

VSS_EXPORT int vss_admin_list_writers(vss_admin *a, size_t *ret_n) {
        return list(a, "ListWriters", a ? &a->writers : NULL, "(sssuiissst)", sizeof(vss_admin_writer), read_writer,
                    ret_n);
}

VSS_EXPORT const vss_admin_writer *vss_admin_writer_get(vss_admin *a, size_t i) {
        return a ? list_get(&a->writers, i, sizeof(vss_admin_writer)) : NULL;
}

VSS_EXPORT int vss_admin_list_providers(vss_admin *a, size_t *ret_n) {
        return list(a, "ListProviders", a ? &a->providers : NULL, "(sssssb)", sizeof(vss_admin_provider),
                    read_provider, ret_n);
}

VSS_EXPORT const vss_admin_provider *vss_admin_provider_get(vss_admin *a, size_t i) {
        return a ? list_get(&a->providers, i, sizeof(vss_admin_provider)) : NULL;
}

/* Where each shadow is exposed, from ListExposures' reply. */
static int32_t mark_exposures(vss_admin *a, sd_bus_message *exposures) {
        const char *id, *at;
        vss_id sid;
        int r = sd_bus_message_enter_container(exposures, 'a', "(ss)");
        while (r >= 0 && (r = sd_bus_message_read(exposures, "(ss)", &id, &at)) > 0) {
                if (vss_id_from_string(id, &sid) < 0)
                        continue;
                for (size_t i = 0; i < a->shadows.n; i++) {
                        vss_admin_shadow *s = (vss_admin_shadow *) a->shadows.items + i;
                        if (vss_id_equal(&s->shadow_id, &sid) && !*s->exposed_at)
                                s->exposed_at = at;
                }
        }
        return r < 0 ? fail(a, NULL, r) : 0;
}

VSS_EXPORT int vss_admin_list_shadows(vss_admin *a, size_t *ret_n) {
        sd_bus_message *shadows = NULL;
        if (!a)
                return VSS_E_INVALIDARG;
        int32_t hr = admin_call(a, "ListShadows", &shadows, NULL);
        if (hr < 0)
                return hr;
        a->exposures = sd_bus_message_unref(a->exposures);
        hr = admin_call(a, "ListExposures", &a->exposures, NULL);
        if (hr >= 0)
                hr = read_list(a, &a->shadows, shadows, "(sssssttu)", sizeof(vss_admin_shadow), read_shadow);
        else
                sd_bus_message_unref(shadows);
        if (hr >= 0)
                hr = mark_exposures(a, a->exposures);
        if (hr < 0) {
                list_clear(&a->shadows);
                return hr;
        }
        if (ret_n)
                *ret_n = a->shadows.n;
        return 0;
}

VSS_EXPORT const vss_admin_shadow *vss_admin_shadow_get(vss_admin *a, size_t i) {
        return a ? list_get(&a->shadows, i, sizeof(vss_admin_shadow)) : NULL;
}

VSS_EXPORT int vss_admin_explain_volume(vss_admin *a, const char *path, const vss_admin_volume **ret) {
        int held;
        if (!a || !path || !ret)
                return VSS_E_INVALIDARG;
        a->volume_reply = sd_bus_message_unref(a->volume_reply);
        int32_t hr = admin_call(a, "ExplainVolume", &a->volume_reply, "s", path);
        if (hr < 0)
                return hr;
        int r = sd_bus_message_read(a->volume_reply, "sbs", &a->volume.provider, &held, &a->volume.why);
        if (r < 0)
                return fail(a, NULL, r);
        a->volume.point_in_time = held;
        *ret = &a->volume;
        return 0;
}

VSS_EXPORT int vss_admin_delete_shadows(vss_admin *a, vss_admin_delete kind, const vss_id *id,
                                        uint32_t *ret_deleted) {
        static const char *const kinds[] = {
                [VSS_ADMIN_DELETE_SHADOW] = "shadow",
                [VSS_ADMIN_DELETE_SET] = "set",
                [VSS_ADMIN_DELETE_ALL] = "all",
        };
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char s[VSS_ID_STRING_MAX] = "";
        uint32_t n;
        if (!a || (unsigned) kind >= ELEMENTSOF(kinds) || (kind == VSS_ADMIN_DELETE_ALL) != !id)
                return VSS_E_INVALIDARG;
        int32_t hr = admin_call(a, "DeleteShadows", &reply, "ss", kinds[kind], id ? vss_id_to_string(id, s) : "");
        if (hr < 0)
                return hr;
        int r = sd_bus_message_read(reply, "u", &n);
        if (r < 0)
                return fail(a, NULL, r);
        if (ret_deleted)
                *ret_deleted = n;
        return 0;
}

VSS_EXPORT int vss_admin_expose(vss_admin *a, const vss_id *shadow_id, const char *at, const char **ret_where) {
        char s[VSS_ID_STRING_MAX];
        const char *where;
        if (!a || !shadow_id || isempty(at))
                return VSS_E_INVALIDARG;
        a->expose_reply = sd_bus_message_unref(a->expose_reply);
        int32_t hr = admin_call(a, "ExposeShadow", &a->expose_reply, "ss", vss_id_to_string(shadow_id, s), at);
        if (hr < 0)
                return hr;
        int r = sd_bus_message_read(a->expose_reply, "s", &where);
        if (r < 0)
                return fail(a, NULL, r);
        if (ret_where)
                *ret_where = where;
        return 0;
}

VSS_EXPORT int vss_admin_unexpose(vss_admin *a, const char *at) {
        if (!a || isempty(at))
                return VSS_E_INVALIDARG;
        return admin_call(a, "UnexposeShadow", NULL, "s", at);
}
