/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The admin calls on providers and shadows: ListProviders, ListShadows, GetSnapshotProperties and
 * DeleteShadows (which leaves alone the sets live sessions own; the deleting is shadows.c's). */

#include <vss/backup.h>

#include "daemon/access.h"
#include "daemon/bus.h"
#include "daemon/log.h"
#include "daemon/session.h"
#include "daemon/shadows.h"
#include "lib/common.h"

static int append_provider(sd_bus_message *reply, size_t i, void *userdata) {
        const Provider *p = providers_get(userdata, i);
        return sd_bus_message_append(reply, "(sssssb)", p->name, p->id, p->type, p->description, p->supports_what,
                                     (int) p->atomic);
}

int method_list_providers(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        const Providers *ps = &c->manager->providers;
        return reply_array(msg, "(sssssb)", providers_count(ps), append_provider, (void *) ps);
}

static int append_shadow(sd_bus_message *reply, const ShadowRecord *s) {
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX];
        return sd_bus_message_append(reply, "(sssssttu)", vss_id_to_string(&s->shadow_id, a),
                                     vss_id_to_string(&s->set_id, b), s->original_path, s->shadow_path, s->provider,
                                     s->created_usec, (uint64_t) 0, s->attributes);
}

static int append_shadow_at(sd_bus_message *reply, size_t i, void *userdata) {
        return append_shadow(reply, (const ShadowRecord *) userdata + i);
}

int method_list_shadows(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        ShadowRecord *recs = NULL;
        size_t n = 0;
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        r = registry_list_shadows(c->manager->registry, &recs, &n);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the shadow registry: %s", strerror(-r));
        r = reply_array(msg, "(sssssttu)", n, append_shadow_at, recs);
        shadow_records_free(recs, n);
        return r;
}

int method_get_snapshot_properties(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *id;
        vss_id sid;
        ShadowRecord rec = {};
        /* A requester that makes shadow copies needs to know where they are. */
        int r = c->rights & (1u << RIGHT_CREATE) ? 0 : check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        if (vss_id_from_string(id, &sid) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not a shadow id", id);
        r = registry_get_shadow(c->manager->registry, &sid, &rec);
        if (r == -ENOENT)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no shadow copy %s", id);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the shadow registry: %s", strerror(-r));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = append_shadow(reply, &rec);
        shadow_record_done(&rec);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* A DeleteShadows call, answered once its shadows are deleted (or kept). */
typedef struct DeleteCall {
        sd_bus_message *msg;
        bool all, by_set;
        char id[VSS_ID_STRING_MAX];
        unsigned matched;
        struct ucred who;   /* for the log */
} DeleteCall;

static void delete_call_free(void *userdata) {
        DeleteCall *d = userdata;
        sd_bus_message_unref(d->msg);
        free(d);
}

static void on_deleted(Manager *m, unsigned deleted, unsigned kept, void *userdata) {
        DeleteCall *d = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        if (!d->all && d->matched == 0)
                reply_error(&error, VSS_E_OBJECT_NOT_FOUND, "no %s %s", d->by_set ? "snapshot set" : "shadow copy", d->id);
        else if (deleted == 0 && kept > 0)
                reply_error(&error, VSS_E_UNEXPECTED_PROVIDER_ERROR,
                            "the provider could not delete %u shadow copies; they are kept", kept);
        if (sd_bus_error_is_set(&error)) {
                log_warn("deleting %s %s failed (asked by uid %u, pid %d): %s", d->all ? "all" : d->by_set ? "set" : "shadow",
                         d->all ? "shadow copies" : d->id, (unsigned) d->who.uid, (int) d->who.pid, error.message);
                (void) sd_bus_reply_method_error(d->msg, &error);
        } else {
                log_info("deleted %u shadow copies%s (%s %s, asked by uid %u, pid %d)", deleted, kept ? ", some were kept" : "",
                         d->all ? "all" : d->by_set ? "set" : "shadow", d->all ? "shadow copies" : d->id,
                         (unsigned) d->who.uid, (int) d->who.pid);
                (void) sd_bus_reply_method_return(d->msg, "u", deleted);
        }
        delete_call_free(d);
}

/* Answered later: the shadows are deleted in child processes, and vssd serves other calls
 * meanwhile. Shadows being deleted are listed nowhere, so a second call does not see them. */
int method_delete_shadows(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        const char *kind, *id;
        vss_id want = {};
        ShadowRecord *recs = NULL;
        size_t n = 0, k = 0;
        int r = check_right(c, RIGHT_DELETE, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "ss", &kind, &id);
        if (r < 0)
                return r;
        bool all = streq(kind, "all"), by_set = streq(kind, "set");
        if (!all && !by_set && !streq(kind, "shadow"))
                return reply_error(error, VSS_E_INVALIDARG, "kind must be shadow, set or all");
        if (!all && vss_id_from_string(id, &want) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "'%s' is not an id", id);
        r = registry_list_shadows(m->registry, &recs, &n);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the shadow registry: %s", strerror(-r));
        for (size_t i = 0; i < n; i++) {
                if (!all && !vss_id_equal(by_set ? &recs[i].set_id : &recs[i].shadow_id, &want))
                        continue;
                /* A set still owned by a live session is deleted through it, not under its feet. */
                bool busy = false;
                LIST_FOREACH(sessions, s, m->sessions)
                        if (s->busy && vss_id_equal(&s->set_id, &recs[i].set_id))
                                busy = true;
                if (busy)
                        continue;
                ShadowRecord t = recs[k];
                recs[k++] = recs[i];
                recs[i] = t;
        }
        DeleteCall *d = calloc(1, sizeof(*d));
        if (!d) {
                shadow_records_free(recs, n);
                return -ENOMEM;
        }
        *d = (DeleteCall) { .msg = sd_bus_message_ref(msg), .all = all, .by_set = by_set, .matched = (unsigned) k,
                           .who = c->cred };
        snprintf(d->id, sizeof(d->id), "%s", id);
        shadows_delete(m, recs, k, NULL, on_deleted, delete_call_free, d);
        shadow_records_free(recs, n);
        return 1;
}

