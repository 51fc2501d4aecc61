/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Manager: vssd's one object. It owns the event loop, the listen socket and the connections,
 * the configuration and its providers, the registry, the subscribed writers, the sessions and the
 * children doing slow work (deletes, exposes). manager.c accepts connections and ends them. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "daemon/child.h"
#include "daemon/config.h"
#include "daemon/registry.h"

typedef struct Manager Manager;
typedef struct Connection Connection;
typedef struct Writer Writer;
typedef struct Session Session;
typedef struct ShadowJob ShadowJob;
typedef struct ExposeOp ExposeOp;

struct Manager {
        sd_event *event;
        /* Ends a connection that connection-io.c cannot serve any more (connection_free): handed
         * down by its owner, so the I/O layer never calls up into the manager. */
        void (*end_connection)(Connection *c);
        /* A writer leaves (manager_writer_gone: its sessions hear it), handed down the same way
         * for Subscribe (writer.c) to drop a user's writer squatting root's instance id. */
        void (*writer_gone)(Writer *w);
        Config config;
        Providers providers;      /* compiled-in and configured (taken from the config) */
        char *socket_path;
        char *state_dir;
        char *shadow_dir;
        int listen_fd;
        bool socket_activated;    /* listen_fd came from systemd (sd_listen_fds): not ours to unlink */
        sd_event_source *listen_source;
        Registry *registry;

        Connection *connections;
        unsigned n_connections;
        /* connection-io.c: the connections to re-arm before the next poll, those whose next
         * message waits for room in their uid's total, each uid's input held (uids holding any),
         * and the loop iteration of the last dispatch that was a connection's own. */
        Connection *dirty, *waiting;
        struct UidHeld *uid_held;
        size_t n_uid_held;
        uint64_t io_iteration;
        /* The one timer of the connections' timeouts, and its heap of them (earliest first). */
        sd_event_source *timer_source;
        /* The epoll of all connections' sockets (one source on the loop), and those it said are
         * ready that are not served yet. */
        sd_event_source *io_epoll;
        Connection *ready;
        Connection **timers;
        size_t n_timers, n_timers_alloc;
        Writer *writers;
        unsigned n_writers;
        Session *sessions;
        /* Writer class ids and the uid each is bound to (config bindings aside), as the registry keeps them. */
        struct ClassBinding *bindings;
        size_t n_bindings;
        /* Users whose writer let Identify run out or failed it late: their writers, whichever and
         * however reconnected, are waited for briefly (session-dispatch.c). */
        uid_t *slow_identify;
        size_t n_slow_identify;
        /* The session whose snapshot set is in creation: one machine-wide. */
        Session *creating;
        uint64_t trusted_first_until_usec; /* root waits for a user's set to give way: no other starts */
        /* A commit helper started while idle, waiting for the next set's job (commit-helper.c),
         * and the timer that starts the next one after a set took it. */
        struct Commit *spare;
        sd_event_source *spare_timer;
        /* Unloads SQLite a while after the last client went (manager.c). */
        sd_event_source *idle_timer;
        /* Slow work in child processes: shadows being deleted, exposures being mounted. */
        Children children;
        ShadowJob *jobs;
        ExposeOp *exposing;
        bool stopping;
        /* Set once vssd is stopping: buses get until then to send what they hold. */
        uint64_t stop_deadline_usec;
};

/* Takes the config over (it is left empty). */
int manager_new(const char *socket_path, const char *state_dir, Config *config, Manager **ret);
Manager *manager_free(Manager *m);
/* Opens the registry, recovers what a previous run left, listens. */
int manager_start(Manager *m);
