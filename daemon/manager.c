/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The manager: the private socket, one sd-bus server connection per client, writer
 * subscriptions, and the admin methods. Sessions live in session.c. */

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "daemon/vssd.h"
#include "lib/components.h"

void log_full(const char *prefix, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "vssd: %s", prefix);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

int reply_error(sd_bus_error *error, int32_t hr, const char *fmt, ...) {
        char name[128], msg[512];
        va_list ap;
        const char *n = vss_error_name(hr);

        snprintf(name, sizeof(name), VSS_ERROR_PREFIX "%s", n ? n : "E_UNEXPECTED");
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return sd_bus_error_set(error, name, msg);
}

static Writer *writer_free(Writer *w) {
        if (!w)
                return NULL;
        Manager *m = w->manager;
        LIST_FOREACH(sessions, s, m->sessions)
                session_writer_gone(s, w);
        if (w->connection)
                w->connection->writer = NULL;
        LIST_REMOVE(writers, m->writers, w);
        m->n_writers--;
        free(w);
        return NULL;
}

void writer_note_status(Writer *w, const Session *s, const Slot *slot) {
        if (!w)
                return;
        w->last = slot->status;
        w->last_session = s->id;
        w->last_usec = now_realtime_usec();
        snprintf(w->last_note, sizeof(w->last_note), "%s", slot_note(slot));
}

/* A class id belongs to the uid the config binds it to, else to the first uid that registers it,
 * for good: the binding is kept in the registry, so nobody can take over another user's writer
 * while it restarts, nor while vssd does. */
static int bind_class(Manager *m, const vss_id *class_id, uid_t uid) {
        /* The administrator's bindings come first. */
        for (size_t i = 0; i < m->config.n_classes; i++)
                if (vss_id_equal(&m->config.classes[i].class_id, class_id))
                        return m->config.classes[i].uid == uid || uid == 0 ? 0 : -EPERM;
        for (size_t i = 0; i < m->n_bindings; i++)
                if (vss_id_equal(&m->bindings[i].class_id, class_id))
                        return m->bindings[i].uid == uid || uid == 0 ? 0 : -EPERM;
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
static int load_class_bindings(Manager *m) {
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
        if (level >= _VSS_APP_LEVEL_MAX)
                return reply_error(error, VSS_E_INVALIDARG, "application level %u out of range", level);
        if (m->n_writers >= VSS_MAX_WRITERS)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "too many writers (%d)", VSS_MAX_WRITERS);
        unsigned mine = 0;
        LIST_FOREACH(writers, w, m->writers) {
                if (vss_id_equal(&w->instance_id, &instance_id))
                        return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "writer instance %s is already subscribed", iid);
                if (w->connection->cred.uid == c->cred.uid)
                        mine++;
        }
        if (c->cred.uid != 0 && mine >= VSS_MAX_WRITERS_PER_UID)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "uid %u has %u writers, the most allowed",
                                   (unsigned) c->cred.uid, mine);
        r = bind_class(m, &class_id, c->cred.uid);
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

int method_unsubscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        if (!c->writer)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no writer subscribed on this connection");
        log_info("writer '%s' unsubscribed", c->writer->name);
        writer_free(c->writer);
        return sd_bus_reply_method_return(msg, NULL);
}

int check_right(Connection *c, Right right, sd_bus_error *error) {
        if (c->rights & (1u << right))
                return 0;
        return reply_error(error, VSS_E_ACCESSDENIED, "uid %u lacks the '%s' right (granted by vssd's config \"rights\"; "
                           "by default %s)", (unsigned) c->cred.uid, right_name(right),
                           right == RIGHT_DELETE ? "root only" : "root and the backup group");
}

int method_create_session(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        char id[VSS_ID_STRING_MAX];
        if (!c->may_request)
                return reply_error(error, VSS_E_ACCESSDENIED,
                                   "uid %u may not open sessions: it holds neither the 'create' nor the 'restore' right "
                                   "(by default root and the backup group '%s')",
                                   (unsigned) c->cred.uid, m->config.backup_group);
        if (c->n_sessions >= VSS_MAX_SESSIONS_PER_CONNECTION)
                return reply_error(error, VSS_E_OUTOFMEMORY, "too many sessions on this connection (%d)",
                                   VSS_MAX_SESSIONS_PER_CONNECTION);
        if (c->cred.uid != 0) {
                unsigned mine = 0;
                LIST_FOREACH(connections, o, m->connections)
                        if (o->cred.uid == c->cred.uid)
                                mine += o->n_sessions;
                if (mine >= m->config.max_sessions_per_uid)
                        return reply_error(error, VSS_E_OUTOFMEMORY,
                                           "uid %u has %u sessions open, the most allowed (max_sessions_per_uid)",
                                           (unsigned) c->cred.uid, mine);
        }
        Session *s = session_new(c);
        if (!s)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", vss_id_to_string(&s->id, id));
}

int method_release_session(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        const char *id;
        if (!c->may_request)
                return reply_error(error, VSS_E_ACCESSDENIED, "uid %u may not use sessions", (unsigned) c->cred.uid);
        int r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        Session *s = session_lookup(c, id, error);
        if (!s)
                return -EINVAL;
        session_release(s, msg);
        return 1; /* answered when its writers have had BackupShutdown */
}

static int append_status(sd_bus_message *reply, const char *name, const vss_id *wid, const vss_id *iid,
                         const StatusSlot *st, const char *note) {
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX];
        return sd_bus_message_append(reply, "sssuiiss", name, vss_id_to_string(wid, a), vss_id_to_string(iid, b),
                                     (uint32_t) st->state, st->failure, st->application_code,
                                     st->application_message, strempty(note));
}

int method_list_writers(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char sid[VSS_ID_STRING_MAX];
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssuiissst)");
        if (r < 0)
                return r;
        for (Writer *w = c->manager->writers; w; w = w->writers_next) {
                r = sd_bus_message_open_container(reply, 'r', "sssuiissst");
                if (r < 0)
                        return r;
                r = append_status(reply, w->name, &w->class_id, &w->instance_id, &w->last, w->last_note);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "st",
                                          vss_id_is_null(&w->last_session) ? "" : vss_id_to_string(&w->last_session, sid),
                                          w->last_usec);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(reply);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int method_list_providers(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = check_right(userdata, RIGHT_LIST, error);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sssssb)");
        for (size_t i = 0; r >= 0 && i < providers_count(); i++) {
                const Provider *p = providers_get(i);
                r = sd_bus_message_append(reply, "(sssssb)", p->name, p->id, p->type, p->description, p->supports_what,
                                          (int) p->atomic);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int append_shadow(sd_bus_message *reply, const ShadowRecord *s) {
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX];
        return sd_bus_message_append(reply, "(sssssttu)", vss_id_to_string(&s->shadow_id, a),
                                     vss_id_to_string(&s->set_id, b), s->original_path, s->shadow_path, s->provider,
                                     s->created_usec, (uint64_t) 0, s->attributes);
}

int method_list_shadows(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ShadowRecord *recs = NULL;
        size_t n = 0;
        int r = check_right(c, RIGHT_LIST, error);
        if (r < 0)
                return r;
        r = registry_list_shadows(c->manager->registry, &recs, &n);
        if (r < 0)
                return reply_error(error, VSS_E_UNEXPECTED, "cannot read the shadow registry: %s", strerror(-r));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssssttu)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append_shadow(reply, &recs[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        shadow_records_free(recs, n);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
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

void shadow_set_dir_remove(Manager *m, const vss_id *set_id) {
        char id[VSS_ID_STRING_MAX];
        _cleanup_free_ char *dir = NULL;
        /* Fails harmlessly while other shadows of the set remain. */
        if (asprintf(&dir, "%s/%s", m->shadow_dir, vss_id_to_string(set_id, id)) >= 0)
                (void) rmdir(dir);
        if (m->config.file_storage_dir) {
                free(dir);
                dir = NULL;
                if (asprintf(&dir, "%s/%s", m->config.file_storage_dir, id) >= 0)
                        (void) rmdir(dir);
        }
}

/* A DeleteShadows call, answered once its shadows are deleted (or kept). */
typedef struct DeleteCall {
        sd_bus_message *msg;
        bool all, by_set;
        char id[VSS_ID_STRING_MAX];
        unsigned matched;
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
        if (sd_bus_error_is_set(&error))
                (void) sd_bus_reply_method_error(d->msg, &error);
        else {
                log_info("deleted %u shadow copies%s", deleted, kept ? ", some were kept" : "");
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
        *d = (DeleteCall) { .msg = sd_bus_message_ref(msg), .all = all, .by_set = by_set, .matched = (unsigned) k };
        snprintf(d->id, sizeof(d->id), "%s", id);
        shadows_delete(m, recs, k, NULL, on_deleted, delete_call_free, d);
        shadow_records_free(recs, n);
        return 1;
}

void connection_free(Connection *c) {
        if (!c)
                return;
        if (!c->closing) {
                Manager *m = c->manager;
                c->closing = true;
                writer_free(c->writer);
                LIST_FOREACH_SAFE(sessions, s, n, m->sessions)
                        if (s->connection == c)
                                session_release(s, NULL);
                LIST_REMOVE(connections, m->connections, c);
                m->n_connections--;
                connection_io_stop(c);
        }
        if (c->busy) {
                c->gone = true; /* freed when its dispatch returns */
                return;
        }
        free(c);
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        if (c->closing)
                return 0;
        log_info("client pid %d disconnected", (int) c->cred.pid);
        connection_free(c);
        return 0;
}

/* The rights of a uid: its own and those of the groups its account is in (the passwd and group
 * databases, as for a login, not the peer's current supplementary groups). */
static unsigned rights_of(Manager *m, uid_t uid) {
        if (uid == 0)
                return (1u << _RIGHT_MAX) - 1;
        _cleanup_free_ gid_t *groups = NULL;
        int n = 0;
        struct passwd *pw = getpwuid(uid);
        if (pw) {
                int want = 64;
                for (int tries = 0; tries < 4; tries++) {
                        gid_t *g = realloc(groups, (size_t) want * sizeof(gid_t));
                        if (!g)
                                break;
                        groups = g;
                        n = want;
                        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) >= 0)
                                break;
                        want = n > want ? n : want * 2;
                        n = 0;
                }
        }
        unsigned rights = 0;
        for (Right r = 0; r < _RIGHT_MAX; r++) {
                const RightHolders *h = &m->config.rights[r];
                bool has = false;
                for (size_t i = 0; !has && i < h->n_uids; i++)
                        has = h->uids[i] == uid;
                for (size_t i = 0; !has && i < h->n_gids; i++)
                        for (int k = 0; !has && k < n; k++)
                                has = groups[k] == h->gids[i];
                if (has)
                        rights |= 1u << r;
        }
        return rights;
}

/* A method call's string arguments, each at most VSS_MAX_STRING bytes (the restore document
 * excepted: the parser bounds it). One check for every method, so no handler can miss it. */
static int check_strings(sd_bus_message *msg, sd_bus_error *error) {
        const char *member = sd_bus_message_get_member(msg);
        bool is_restore = streq(strempty(member), "InitializeForRestore");
        int r = 0;
        for (unsigned arg = 1;; arg++) {
                char type, t[2] = {};
                const char *contents, *v;
                r = sd_bus_message_peek_type(msg, &type, &contents);
                if (r <= 0)
                        break;
                if (type == 's') {
                        r = sd_bus_message_read_basic(msg, 's', &v);
                        if (r < 0)
                                break;
                        size_t max = is_restore && arg == 2 ? VSS_MAX_BC_DOCUMENT : VSS_MAX_STRING;
                        if (strnlen(v, max + 1) > max) {
                                r = reply_error(error, VSS_E_INVALIDARG, "%s: argument %u is %zu bytes, at most %zu",
                                                strempty(member), arg, strlen(v), max);
                                break;
                        }
                        continue;
                }
                _cleanup_free_ char *sig = NULL;
                if (type == SD_BUS_TYPE_ARRAY)
                        r = asprintf(&sig, "a%s", contents);
                else if (type == SD_BUS_TYPE_STRUCT)
                        r = asprintf(&sig, "(%s)", contents);
                else if (type == SD_BUS_TYPE_DICT_ENTRY)
                        r = asprintf(&sig, "{%s}", contents);
                else {
                        t[0] = type;
                        r = (sig = strdup(t)) ? 0 : -1;
                }
                if (r < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = sd_bus_message_skip(msg, sig);
                if (r < 0)
                        break;
        }
        int k = sd_bus_message_rewind(msg, true);
        return r < 0 ? r : k < 0 ? k : 0;
}

/* Runs before any method handler: the connection limit, the call rate, the string sizes. */
static int on_message(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        if (c->closing)
                return 1; /* what is left of a connection being closed is not dispatched */
        if (!sd_bus_message_is_method_call(msg, NULL, NULL))
                return 0;
        if (c->over_limit) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                reply_error(&e, VSS_E_OUTOFMEMORY, "uid %u has %u connections to vssd, the most allowed "
                            "(max_connections_per_uid); this one is closed", (unsigned) c->cred.uid,
                            m->config.max_connections_per_uid);
                (void) sd_bus_reply_method_error(msg, &e); /* written at once: nothing else waits */
                connection_free(c);
                return 1;
        }
        if (c->cred.uid != 0) {
                /* A token bucket: max_call_burst calls at once, max_calls_per_second sustained. */
                uint64_t now = now_monotonic_usec();
                c->tokens += (double) (now - c->tokens_usec) * m->config.max_calls_per_second / USEC_PER_SEC;
                if (c->tokens > m->config.max_call_burst)
                        c->tokens = m->config.max_call_burst;
                c->tokens_usec = now;
                if (c->tokens < 1.0)
                        return reply_error(error, VSS_E_OUTOFMEMORY,
                                           "uid %u: call rate limit reached (%u calls at once, %u per second); "
                                           "%s refused, try again later", (unsigned) c->cred.uid,
                                           m->config.max_call_burst, m->config.max_calls_per_second,
                                           strempty(sd_bus_message_get_member(msg)));
                c->tokens -= 1.0;
        }
        if (streq(strempty(sd_bus_message_get_interface(msg)), VSS_BUS_INTERFACE))
                return check_strings(msg, error);
        return 0;
}

static unsigned connections_of(Manager *m, uid_t uid) {
        unsigned n = 0;
        LIST_FOREACH(connections, o, m->connections)
                if (o->cred.uid == uid)
                        n++;
        return n;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        socklen_t len;
        sd_id128_t server_id;
        int r;

        if (cfd < 0)
                return 0; /* EAGAIN, ECONNABORTED, EMFILE: keep listening */
        if (m->n_connections >= VSS_MAX_CONNECTIONS) {
                log_warn("refusing connection: %u connections", m->n_connections);
                return 0;
        }
        Connection *c = calloc(1, sizeof(*c));
        if (!c)
                return 0;
        c->manager = m;
        c->fd = c->pipe_r = c->pipe_w = -1;
        len = sizeof(c->cred);
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                free(c);
                return 0;
        }
        if (c->cred.uid != 0) {
                /* Past its limit a uid's connection is kept only to answer its first call with the
                 * reason; a few of those at most, so they cannot add up either. */
                unsigned mine = connections_of(m, c->cred.uid);
                if (mine >= m->config.max_connections_per_uid + VSS_CONNECTION_GRACE) {
                        log_warn("refusing connection of uid %u: %u connections", (unsigned) c->cred.uid, mine);
                        free(c);
                        return 0;
                }
                c->over_limit = mine >= m->config.max_connections_per_uid;
        }
        c->rights = rights_of(m, c->cred.uid);
        c->may_request = c->rights & ((1u << RIGHT_CREATE) | (1u << RIGHT_RESTORE));
        c->tokens = m->config.max_call_burst;
        c->tokens_usec = now_monotonic_usec();

        r = sd_bus_new(&c->bus);
        if (r >= 0)
                r = connection_io_setup(c, cfd);
        if (r >= 0) {
                TAKE_FD(cfd);
                r = sd_id128_randomize(&server_id);
        }
        if (r >= 0)
                r = sd_bus_set_server(c->bus, 1, server_id);
        if (r >= 0)
                r = sd_bus_set_anonymous(c->bus, 1);
        /* Untrusted, sd-bus would let only CAP_SYS_ADMIN peers call methods: vssd authorizes
         * each call itself, from the peer's credentials and the rights in its config. */
        if (r >= 0)
                r = sd_bus_set_trusted(c->bus, 1);
        if (r >= 0)
                r = sd_bus_add_filter(c->bus, NULL, on_message, c);
        if (r >= 0)
                r = sd_bus_add_object_vtable(c->bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, coordinator_vtable, c);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                        "Disconnected", on_disconnected, c);
        if (r >= 0)
                r = sd_bus_start(c->bus);
        if (r >= 0)
                r = connection_io_start(c);
        if (r < 0) {
                log_err("cannot set up connection: %s", strerror(-r));
                connection_io_stop(c);
                free(c);
                return 0;
        }
        LIST_PREPEND(connections, m->connections, c);
        m->n_connections++;
        return 0;
}

int manager_new(const char *socket_path, const char *state_dir, Config *config, Manager **ret) {
        Manager *m = calloc(1, sizeof(*m));
        int r;
        if (!m)
                return -ENOMEM;
        m->listen_fd = -1;
        m->config = *config;
        *config = (Config) {};
        m->socket_path = strdup(socket_path);
        m->state_dir = strdup(state_dir);
        if (!m->socket_path || !m->state_dir || asprintf(&m->shadow_dir, "%s/shadows", state_dir) < 0) {
                manager_free(m);
                return -ENOMEM;
        }
        r = sd_event_default(&m->event);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        m->children.event = m->event;
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* From here on deletes only mark their shadows: the next start finishes them. */
        m->stopping = true;
        /* What the buses hold (an Abort for a writer) has a second to go out, together: a client
         * that never reads cannot keep vssd from stopping. */
        m->stop_deadline_usec = now_monotonic_usec() + USEC_PER_SEC;
        while (m->connections)
                connection_free(m->connections);
        while (m->sessions)
                session_abandon(m->sessions);
        deletions_stop(m);
        free(m->bindings);
        sd_event_source_unref(m->listen_source);
        if (m->listen_fd >= 0) {
                close(m->listen_fd);
                unlink(m->socket_path);
        }
        registry_free(m->registry);
        sd_event_unref(m->event);
        config_done(&m->config);
        free(m->socket_path);
        free(m->state_dir);
        free(m->shadow_dir);
        free(m);
        return NULL;
}

static void on_recovered(Manager *m, unsigned deleted, unsigned kept, void *userdata) {
        const char *what = userdata;
        if (deleted > 0)
                log_info("recovered: deleted %u shadow copies (%s)", deleted, what);
        if (kept > 0)
                log_warn("recovery: %u shadow copies (%s) are kept; the next start tries again", kept, what);
}

/* Deletes what a previous run left: shadows whose delete it had begun, sets that never committed
 * (vssd died mid-creation) and auto-release sets; persistent, committed ones stay. In the
 * background, like any delete: vssd answers meanwhile, and lists none of them. */
static void manager_recover(Manager *m) {
        ShadowRecord *recs = NULL;
        vss_id *sets = NULL;
        size_t n = 0;

        /* First of all: nothing of ours stays frozen. */
        frozen_journal_recover(m, NULL);
        if (registry_list_deleting(m->registry, &recs, &n) >= 0) {
                shadows_delete(m, recs, n, NULL, on_recovered, NULL, (void *) "interrupted delete");
                shadow_records_free(recs, n);
        }
        if (registry_list_creating_sets(m->registry, &sets, &n) >= 0) {
                for (size_t i = 0; i < n; i++)
                        (void) set_remove(m, &sets[i], on_recovered, NULL, (void *) "incomplete snapshot set");
                free(sets);
        }
        if (registry_list_shadows(m->registry, &recs, &n) >= 0) {
                size_t k = 0;
                for (size_t i = 0; i < n; i++)
                        if (!(recs[i].attributes & VSS_VOLSNAP_ATTR_NO_AUTO_RELEASE)) {
                                ShadowRecord t = recs[k];
                                recs[k++] = recs[i];
                                recs[i] = t;
                        }
                shadows_delete(m, recs, k, NULL, on_recovered, NULL, (void *) "auto-release");
                shadow_records_free(recs, n);
        }
}

int manager_start(Manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;

        if (strlen(m->socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, m->socket_path);

        if (mkdir(m->state_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (mkdir(m->shadow_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        char err[1024] = "";
        r = registry_open_full(m->state_dir, &m->registry, err, sizeof(err));
        if (r < 0) {
                log_err("%s", err[0] ? err : strerror(-r));
                return r;
        }
        r = load_class_bindings(m);
        if (r < 0) {
                log_err("cannot read the writer class bindings from %s/registry.db: %s", m->state_dir, strerror(-r));
                return r;
        }
        manager_recover(m);

        m->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (m->listen_fd < 0)
                return -errno;
        (void) unlink(m->socket_path);
        /* Everyone may connect (writers are any user); methods check credentials. */
        mode_t old = umask(0);
        r = bind(m->listen_fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0 || listen(m->listen_fd, SOMAXCONN) < 0)
                return -errno;
        return sd_event_add_io(m->event, &m->listen_source, m->listen_fd, EPOLLIN, on_accept, m);
}
