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

#include "daemon/freeze.h"
#include "daemon/vssd.h"

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

static Connection *connection_free(Connection *c);

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
        snprintf(w->last_note, sizeof(w->last_note), "%s",
                 slot->status.aborted && !state_is_failed(slot->status.state) ? "aborted" : "");
}

/* A class id belongs to the first uid that registers it, for as long as vssd runs, so nobody
 * can take over another user's writer while it restarts. */
static int bind_class(Manager *m, const vss_id *class_id, uid_t uid) {
        for (size_t i = 0; i < m->n_bindings; i++)
                if (vss_id_equal(&m->bindings[i].class_id, class_id))
                        return m->bindings[i].uid == uid || uid == 0 ? 0 : -EPERM;
        if (m->n_bindings >= VSS_MAX_WRITERS)
                return -ENOSPC;
        struct ClassBinding *b = realloc(m->bindings, (m->n_bindings + 1) * sizeof(*b));
        if (!b)
                return -ENOMEM;
        m->bindings = b;
        b[m->n_bindings++] = (struct ClassBinding) { .class_id = *class_id, .uid = uid };
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
        if (r < 0)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "too many writer classes");

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

static int check_requester(Connection *c, sd_bus_error *error) {
        if (!c->may_request)
                return reply_error(error, VSS_E_ACCESSDENIED,
                                   "uid %u is neither root nor in the backup group '%s'", (unsigned) c->cred.uid,
                                   c->manager->config.backup_group);
        return 0;
}

int method_create_session(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        char id[VSS_ID_STRING_MAX];
        int r = check_requester(c, error);
        if (r < 0)
                return r;
        if (c->n_sessions >= VSS_MAX_SESSIONS_PER_CONNECTION)
                return reply_error(error, VSS_E_WRITER_INFRASTRUCTURE, "too many sessions on this connection (%d)",
                                   VSS_MAX_SESSIONS_PER_CONNECTION);
        Session *s = session_new(c);
        if (!s)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", vss_id_to_string(&s->id, id));
}

int method_release_session(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        const char *id;
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
        int r = check_requester(c, error);
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
        int r = check_requester(userdata, error);
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
        int r = check_requester(c, error);
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
        int r = check_requester(c, error);
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
}

void frozen_journal_thaw(Manager *m) {
        char **mounts = NULL;
        size_t n = 0;
        if (registry_list_frozen(m->registry, &mounts, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                int r = freeze_thaw_path(mounts[i]);
                if (r < 0)
                        log_warn("cannot thaw %s: %s", mounts[i], strerror(-r));
                free(mounts[i]);
        }
        free(mounts);
        if (n > 0)
                (void) registry_clear_frozen(m->registry);
}

int shadow_delete(Manager *m, const ShadowRecord *rec) {
        const Provider *p = provider_find(rec->provider);
        shadow_unexpose_all(m, &rec->shadow_id);
        int r = p ? p->remove(p, rec->shadow_path) : -EOPNOTSUPP;
        if (r < 0) {
                log_err("cannot delete shadow at %s: %s", rec->shadow_path, strerror(-r));
                return r;
        }
        r = registry_remove_shadow(m->registry, &rec->shadow_id);
        shadow_set_dir_remove(m, &rec->set_id);
        return r == -ENOENT ? 0 : r;
}

int method_delete_shadows(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        const char *kind, *id;
        vss_id want = {};
        ShadowRecord *recs = NULL;
        size_t n = 0;
        uint32_t deleted = 0;
        int r = check_requester(c, error);
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
                if (shadow_delete(m, &recs[i]) >= 0)
                        deleted++;
        }
        shadow_records_free(recs, n);
        if (!all && deleted == 0)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no %s %s", by_set ? "snapshot set" : "shadow copy", id);
        log_info("deleted %u shadow copies", deleted);
        return sd_bus_reply_method_return(msg, "u", deleted);
}


static Connection *connection_free(Connection *c) {
        if (!c)
                return NULL;
        Manager *m = c->manager;
        writer_free(c->writer);
        LIST_FOREACH_SAFE(sessions, s, n, m->sessions)
                if (s->connection == c)
                        session_release(s, NULL);
        LIST_REMOVE(connections, m->connections, c);
        m->n_connections--;
        sd_bus_flush_close_unref(c->bus);
        free(c);
        return NULL;
}

static int on_disconnected(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        log_info("client pid %d disconnected", (int) c->cred.pid);
        connection_free(c);
        return 0;
}

static bool uid_in_group(uid_t uid, gid_t gid) {
        struct passwd *pw = getpwuid(uid);
        if (!pw)
                return false;
        if (pw->pw_gid == gid)
                return true;
        int n = 64;
        gid_t groups[64];
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
                return false;
        for (int i = 0; i < n; i++)
                if (groups[i] == gid)
                        return true;
        return false;
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
        len = sizeof(c->cred);
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
                free(c);
                return 0;
        }
        c->may_request = c->cred.uid == 0 || (m->have_backup_gid && uid_in_group(c->cred.uid, m->backup_gid));

        r = sd_bus_new(&c->bus);
        if (r >= 0)
                r = sd_bus_set_fd(c->bus, cfd, cfd);
        if (r >= 0) {
                TAKE_FD(cfd);
                r = sd_id128_randomize(&server_id);
        }
        if (r >= 0)
                r = sd_bus_set_server(c->bus, 1, server_id);
        if (r >= 0)
                r = sd_bus_set_anonymous(c->bus, 1);
        if (r >= 0)
                r = sd_bus_add_object_vtable(c->bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, coordinator_vtable, c);
        if (r >= 0)
                r = sd_bus_match_signal(c->bus, NULL, NULL, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                        "Disconnected", on_disconnected, c);
        if (r >= 0)
                r = sd_bus_start(c->bus);
        if (r >= 0)
                r = sd_bus_attach_event(c->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                log_err("cannot set up connection: %s", strerror(-r));
                sd_bus_flush_close_unref(c->bus);
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
        struct group *g = getgrnam(m->config.backup_group);
        if (g) {
                m->backup_gid = g->gr_gid;
                m->have_backup_gid = true;
        }
        r = sd_event_default(&m->event);
        if (r < 0) {
                manager_free(m);
                return r;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        while (m->connections)
                connection_free(m->connections);
        while (m->sessions)
                session_abandon(m->sessions);
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

/* Shadows of sets that never committed (vssd died mid-creation) and auto-release sets left from a
 * previous run are deleted; persistent, committed ones stay. */
static void manager_recover(Manager *m) {
        vss_id *sets = NULL;
        size_t n = 0;

        /* First of all: nothing stays frozen. */
        frozen_journal_thaw(m);
        if (registry_list_creating_sets(m->registry, &sets, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                ShadowRecord *recs = NULL;
                size_t k = 0;
                if (registry_list_set_shadows(m->registry, &sets[i], true, &recs, &k) >= 0) {
                        for (size_t j = 0; j < k; j++) {
                                const Provider *p = provider_find(recs[j].provider);
                                if (p)
                                        p->remove(p, recs[j].shadow_path);
                        }
                        shadow_records_free(recs, k);
                }
                registry_remove_set(m->registry, &sets[i]);
                shadow_set_dir_remove(m, &sets[i]);
                log_info("recovered: removed incomplete snapshot set");
        }
        free(sets);

        ShadowRecord *recs = NULL;
        if (registry_list_shadows(m->registry, &recs, &n) >= 0) {
                for (size_t i = 0; i < n; i++)
                        if (!(recs[i].attributes & VSS_VOLSNAP_ATTR_NO_AUTO_RELEASE))
                                shadow_delete(m, &recs[i]);
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
        r = registry_open(m->state_dir, &m->registry);
        if (r < 0)
                return r;
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
