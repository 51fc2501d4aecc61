/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The manager: the private socket, one sd-bus server connection per client, and what ends with a
 * connection (its writer, its sessions). Writers live in writer.c, sessions in session*.c, the
 * admin calls in admin.c, the shadow lifecycle in shadows.c. */

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include <vss/backup.h>

#include "daemon/access.h"
#include "daemon/bus.h"
#include "daemon/commit-helper.h"
#include "daemon/log.h"
#include "daemon/session.h"
#include "daemon/shadows.h"
#include "daemon/timer.h"
#include "daemon/writer.h"
#include "lib/common.h"

/* A writer goes: its sessions are told first (they hold slots pointing at it). */
static void manager_writer_gone(Writer *w) {
        if (!w)
                return;
        LIST_FOREACH(sessions, s, w->manager->sessions)
                session_writer_gone(s, w);
        writer_free(w);
}

int method_unsubscribe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        if (!c->writer)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no writer subscribed on this connection");
        log_info("writer '%s' unsubscribed", c->writer->name);
        manager_writer_gone(c->writer);
        return sd_bus_reply_method_return(msg, NULL);
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

/* With no client left for a while, SQLite is unloaded (registry_release()): an idle vssd keeps
 * none of its pages. Not at once: a burst of clients (vssadmin, one call each) would reload it
 * for each; the next call after the pause pays ~1 ms to reopen. */
#define IDLE_RELEASE_USEC (2 * USEC_PER_SEC)

static int on_idle(sd_event_source *src, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        if (m->n_connections == 0)
                registry_release(m->registry);
        return 0;
}

static void manager_idle_later(Manager *m) {
        if (!m->stopping)
                (void) timer_later(m->event, &m->idle_timer, IDLE_RELEASE_USEC, 100 * USEC_PER_MSEC, on_idle, m);
}

void connection_free(Connection *c) {
        if (!c)
                return;
        if (!c->closing) {
                Manager *m = c->manager;
                c->closing = true;
                manager_writer_gone(c->writer);
                LIST_FOREACH_SAFE(sessions, s, n, m->sessions)
                        if (s->connection == c)
                                session_release(s, NULL);
                LIST_REMOVE(connections, m->connections, c);
                m->n_connections--;
                connection_io_stop(c);
                if (m->n_connections == 0)
                        manager_idle_later(m);
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

/* Runs before any method handler: the connection limit here, the rest in access_check_call(). */
static int on_message(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        Manager *m = c->manager;
        if (c->closing)
                return 1; /* what is left of a connection being closed is not dispatched */
        if (!sd_bus_message_is_method_call(msg, NULL, NULL))
                return 0;
        if (c->over_limit) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                log_refusal(c, "past max_connections_per_uid; the connection is closed");
                reply_error(&e, VSS_E_OUTOFMEMORY, "uid %u has %u connections to vssd, the most allowed "
                            "(max_connections_per_uid); this one is closed", (unsigned) c->cred.uid,
                            m->config.max_connections_per_uid);
                (void) sd_bus_reply_method_error(msg, &e); /* written at once: nothing else waits */
                connection_free(c);
                return 1;
        }
        return access_check_call(c, msg, error);
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

        connection_io_accepted(m); /* it touches no connection but the one it makes */
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
        c->rights = rights_of(&m->config, c->cred.uid);
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
                r = sd_bus_add_object_vtable(c->bus, NULL, "/org/freedesktop/DBus", "org.freedesktop.DBus", hello_vtable, c);
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
        m->end_connection = connection_free;
        m->writer_gone = manager_writer_gone;
        m->config = *config;
        *config = (Config) {};
        /* The configured providers are the manager's from here on. */
        m->providers = m->config.providers;
        m->config.providers = (Providers) {};
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
        commit_helper_spare_free(m);
        m->idle_timer = sd_event_source_disable_unref(m->idle_timer);
        free(m->bindings);
        free(m->slow_identify);
        free(m->uid_held);
        connection_io_loop_stop(m);
        sd_event_source_unref(m->listen_source);
        if (m->listen_fd >= 0) {
                close(m->listen_fd);
                if (!m->socket_activated) /* systemd's socket stays for the next start */
                        unlink(m->socket_path);
        }
        registry_free(m->registry);
        sd_event_unref(m->event);
        config_done(&m->config);
        providers_done(&m->providers);
        free(m->socket_path);
        free(m->state_dir);
        free(m->shadow_dir);
        free(m);
        return NULL;
}

/* mkdir -p with mode for the directories it makes (existing ones are left as they are): path
 * itself too when whole, else only its parents. */
static int mkdir_parents(const char *path, mode_t mode, bool whole) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        char *end = whole ? p + strlen(p) : strrchr(p, '/');
        if (!end)
                return 0;
        for (char *slash = p + 1;; slash++) {
                bool last = slash >= end;
                if (!last && *slash != '/')
                        continue;
                char was = *slash;
                *slash = 0;
                int r = p[0] && mkdir(p, mode) < 0 && errno != EEXIST ? -errno : 0;
                *slash = was;
                if (r < 0)
                        return r;
                if (last)
                        return 0;
        }
}

/* The listen socket: the one systemd passes (socket activation, vssd.socket), or one vssd binds. */
static int manager_listen(Manager *m) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r, n = sd_listen_fds(1);

        if (n > 1)
                log_warn("%d sockets passed by systemd; using the first", n);
        if (n > 0 && sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) > 0) {
                socklen_t len = sizeof(sa);
                m->listen_fd = SD_LISTEN_FDS_START;
                m->socket_activated = true;
                int fl = fcntl(m->listen_fd, F_GETFL);
                if (fl >= 0)
                        (void) fcntl(m->listen_fd, F_SETFL, fl | O_NONBLOCK);
                (void) fcntl(m->listen_fd, F_SETFD, FD_CLOEXEC); /* not for exec providers */
                /* The socket's own path is the one clients use: named in the log, never unlinked. */
                if (getsockname(m->listen_fd, (struct sockaddr *) &sa, &len) == 0 && sa.sun_path[0] &&
                    len > offsetof(struct sockaddr_un, sun_path)) {
                        char *p = strndup(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path));
                        if (p) {
                                free(m->socket_path);
                                m->socket_path = p;
                        }
                }
        } else {
                if (n > 0)
                        log_warn("the socket systemd passed is not a listening AF_UNIX stream socket; binding %s",
                                 m->socket_path);
                if (strlen(m->socket_path) >= sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                strcpy(sa.sun_path, m->socket_path);
                r = mkdir_parents(m->socket_path, 0755, false);
                if (r < 0)
                        return r;
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
        }
        return sd_event_add_io(m->event, &m->listen_source, m->listen_fd, EPOLLIN, on_accept, m);
}

int manager_start(Manager *m) {
        int r;

        r = mkdir_parents(m->state_dir, 0700, true);
        if (r < 0)
                return r;
        if (mkdir(m->shadow_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        char err[1024] = "";
        r = registry_open_full(m->state_dir, &m->registry, err, sizeof(err));
        if (r < 0) {
                log_err("%s", err[0] ? err : strerror(-r));
                return r;
        }
        r = writer_load_bindings(m);
        if (r < 0) {
                log_err("cannot read the writer class bindings from %s/registry.db: %s", m->state_dir, strerror(-r));
                return r;
        }
        shadows_recover(m);
        /* Idle from the start: SQLite goes unless a client comes within the pause. Not at once:
         * the first client (often within the pause) would load it again. */
        manager_idle_later(m);
        r = manager_listen(m);
        if (r < 0)
                return r;
        r = connection_io_loop_start(m);
        if (r >= 0)
                commit_helper_spare_start(m); /* the first set's helper, loaded in advance */
        return r;
}
