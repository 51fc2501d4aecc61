/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writers: Subscribe (the class binding that keeps one user's writer class from another) and
 * ListWriters (each writer's last known status). */

#include <vss/backup.h>

#include "daemon/access.h"
#include "daemon/bus.h"
#include "daemon/log.h"
#include "daemon/writer.h"
#include "lib/common.h"

Writer *writer_free(Writer *w) {
        if (!w)
                return NULL;
        Manager *m = w->manager;
        if (w->connection)
                w->connection->writer = NULL;
        LIST_REMOVE(writers, m->writers, w);
        m->n_writers--;
        free(w);
        return NULL;
}

void writer_note_status(Writer *w, const vss_id *session_id, const StatusSlot *status, const char *note) {
        if (!w)
                return;
        w->last = *status;
        w->last_session = *session_id;
        w->last_usec = now_realtime_usec();
        snprintf(w->last_note, sizeof(w->last_note), "%s", note);
}

/* A class id belongs to the uid the config binds it to, else to the first uid that registers it,
 * for good: the binding is kept in the registry, so nobody can take over another user's writer
 * while it restarts, nor while vssd does. Root's writer takes a class a user bound (class ids
 * are names' UUIDs, which anyone can compute and register first): that user's writers may not
 * subscribe with it again. */
static int bind_class(Manager *m, const vss_id *class_id, uid_t uid, const char *name) {
        /* The administrator's bindings come first. */
        for (size_t i = 0; i < m->config.n_classes; i++)
                if (vss_id_equal(&m->config.classes[i].class_id, class_id))
                        return m->config.classes[i].uid == uid || uid == 0 ? 0 : -EPERM;
        for (size_t i = 0; i < m->n_bindings; i++)
                if (vss_id_equal(&m->bindings[i].class_id, class_id)) {
                        if (m->bindings[i].uid == uid)
                                return 0;
                        if (uid != 0)
                                return -EPERM;
                        int r = registry_rebind_class(m->registry, class_id, 0);
                        if (r < 0)
                                return r == -ENOSPC ? -EDQUOT : r;
                        char id[VSS_ID_STRING_MAX];
                        log_warn("writer class %s, bound to uid %u, is root's from now on (root's writer '%s' "
                                 "subscribed with it): uid %u's writers may not use it any more",
                                 vss_id_to_string(class_id, id), (unsigned) m->bindings[i].uid, name,
                                 (unsigned) m->bindings[i].uid);
                        m->bindings[i].uid = 0;
                        return 0;
                }
        if (m->n_bindings >= VSS_MAX_WRITERS)
                return -ENOSPC;
        /* Bindings are for good now: one user must not use up everyone's room. */
        size_t mine = 0;
        for (size_t i = 0; i < m->n_bindings; i++)
                mine += m->bindings[i].uid == uid;
        if (uid != 0 && mine >= VSS_MAX_WRITERS_PER_UID)
                return -EUSERS;
        struct ClassBinding *b = realloc(m->bindings, (m->n_bindings + 1) * sizeof(*b));
        if (!b)
                return -ENOMEM;
        m->bindings = b;
        /* Recorded before it counts: a binding a restart would forget is no binding. */
        int r = registry_bind_class(m->registry, class_id, uid);
        if (r < 0 && r != -EEXIST)
                return r == -ENOSPC ? -EDQUOT : r;
        b[m->n_bindings++] = (struct ClassBinding) { .class_id = *class_id, .uid = uid };
        return 0;
}

/* The bindings earlier runs recorded. Config bindings still win: bind_class() asks the config
 * first. */
int writer_load_bindings(Manager *m) {
        _cleanup_free_ ClassRecord *recs = NULL;
        size_t n = 0;
        int r = registry_list_classes(m->registry, &recs, &n);
        if (r < 0)
                return r;
        if (n == 0)
                return 0;
        struct ClassBinding *b = calloc(n, sizeof(*b));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                b[i] = (struct ClassBinding) { .class_id = recs[i].class_id, .uid = (uid_t) recs[i].uid };
        free(m->bindings);
        m->bindings = b;
        m->n_bindings = n;
        return 0;
}

int method_subscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        const char *wid, *iid, *name, *iname;
        uint32_t level, window;
        vss_id class_id, instance_id;
        int r;

        r = sd_bus_message_read(msg, "ssssuu", &wid, &iid, &name, &iname, &level, &window);
        if (r < 0)
                return r;
        if (c->writer)
                return reply_error(error, VSS_E_BAD_STATE, "this connection already subscribed a writer");
        if (vss_id_from_string(wid, &class_id) < 0 || vss_id_from_string(iid, &instance_id) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "writer and instance ids must be UUIDs");
        if (isempty(name) || !string_ok(name, VSS_MAX_NAME) || !string_ok(iname, VSS_MAX_NAME))
                return reply_error(error, VSS_E_INVALIDARG, "writer name must be 1 to %d bytes", VSS_MAX_NAME);
        if (!name_printable(name) || !name_printable(iname))
                return reply_error(error, VSS_E_INVALIDARG, "writer and instance names may hold no control characters");
        if (level >= _VSS_APP_LEVEL_MAX)
                return reply_error(error, VSS_E_INVALIDARG, "application level %u out of range", level);
        if (m->n_writers >= VSS_MAX_WRITERS)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "too many writers (%d)", VSS_MAX_WRITERS);
        unsigned mine = 0;
        Writer *squatter = NULL;
        LIST_FOREACH(writers, w, m->writers) {
                /* Instance ids can be read (a unit's --instance-id): a user's writer subscribed with
                 * root's first does not keep root's application from being quiesced. */
                if (vss_id_equal(&w->instance_id, &instance_id) && uid_trusted(c->cred.uid) &&
                    !uid_trusted(w->connection->cred.uid))
                        squatter = w;
                else if (vss_id_equal(&w->instance_id, &instance_id))
                        return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "writer instance %s is already subscribed", iid);
                if (w->connection->cred.uid == c->cred.uid)
                        mine++;
        }
        if (c->cred.uid != 0 && mine >= VSS_MAX_WRITERS_PER_UID)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "uid %u has %u writers, the most allowed",
                                   (unsigned) c->cred.uid, mine);
        r = bind_class(m, &class_id, c->cred.uid, name);
        if (r == -EPERM)
                return reply_error(error, VSS_E_ACCESSDENIED, "writer class %s belongs to another user", wid);
        if (r == -EDQUOT)
                return reply_error(error, VSS_E_INSUFFICIENT_STORAGE,
                                   "cannot record writer class %s: the state directory %s is full", wid, m->state_dir);
        if (r == -ENOSPC)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "too many writer classes");
        if (r == -EUSERS)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE,
                                   "uid %u owns %d writer classes, the most allowed; reuse one of them",
                                   (unsigned) c->cred.uid, VSS_MAX_WRITERS_PER_UID);
        if (r < 0)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "cannot record writer class %s: %s", wid,
                                   strerror(-r));

        if (squatter) {
                log_warn("writer '%s' of uid %u held the instance id %s that root's writer '%s' subscribes with: it is "
                         "dropped", squatter->name, (unsigned) squatter->connection->cred.uid, iid, name);
                m->writer_gone(squatter);
        }
        Writer *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Writer) {
                .manager = m,
                .connection = c,
                .class_id = class_id,
                .instance_id = instance_id,
                .level = level,
                .window_ms = window > m->config.timeouts.max_freeze_window_ms ? m->config.timeouts.max_freeze_window_ms : window,
                .last = { .state = VSS_WS_STABLE },
                .last_usec = now_realtime_usec(),
        };
        snprintf(w->name, sizeof(w->name), "%s", name);
        snprintf(w->instance_name, sizeof(w->instance_name), "%s", iname);
        LIST_PREPEND(writers, m->writers, w);
        m->n_writers++;
        c->writer = w;
        log_info("writer '%s' (%s, pid %d) subscribed", w->name, iid, (int) c->cred.pid);
        return sd_bus_reply_method_return(msg, NULL);
}

static int append_status(sd_bus_message *reply, const char *name, const vss_id *wid, const vss_id *iid,
                         const StatusSlot *st, const char *note) {
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX];
        return sd_bus_message_append(reply, "sssuiiss", name, vss_id_to_string(wid, a), vss_id_to_string(iid, b),
                                     (uint32_t) st->state, st->failure, st->application_code,
                                     st->application_message, strempty(note));
}

static int append_writer(sd_bus_message *reply, size_t i, void *userdata) {
        const Writer *w = ((Writer **) userdata)[i];
        char sid[VSS_ID_STRING_MAX];
        int r = sd_bus_message_open_container(reply, 'r', "sssuiissst");
        if (r >= 0)
                r = append_status(reply, w->name, &w->class_id, &w->instance_id, &w->last, w->last_note);
        if (r >= 0)
                r = sd_bus_message_append(reply, "st",
                                          vss_id_is_null(&w->last_session) ? "" : vss_id_to_string(&w->last_session, sid),
                                          w->last_usec);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        return r;
}

int method_list_writers(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        _cleanup_free_ Writer **l = calloc(m->n_writers + 1, sizeof(Writer *));
        if (!l)
                return -ENOMEM;
        size_t n = 0;
        LIST_FOREACH(writers, w, m->writers)
                l[n++] = w;
        return reply_array(msg, "(sssuiissst)", n, append_writer, l);
}
