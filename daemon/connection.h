/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A client's connection: its credentials and rights (fixed at connect time), its call-rate
 * bucket, at most one writer, its sessions, and the socket vssd reads itself (connection-io.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "daemon/list.h"
#include "daemon/manager.h"

struct Connection {
        Manager *manager;
        sd_bus *bus;
        struct ucred cred;
        unsigned rights;    /* 1 << Right, from the peer's uid and its groups at connect time */
        bool may_request;   /* holds create or restore: may open sessions */
        bool over_limit;    /* past max_connections_per_uid: its first call is refused, then it is closed */
        bool rate_logged;   /* a call refused for its rate was logged: the next ones are not */
        double tokens;      /* call rate bucket */
        uint64_t tokens_usec;
        Writer *writer;     /* at most one per connection */
        unsigned n_sessions;
        LIST_FIELDS(Connection, connections);

        /* The client's socket: vssd reads it (connection-io.c), passing each message on to the
         * bus through a pipe once its size is allowed; the bus writes to the socket itself. */
        int fd;
        int pipe_r, pipe_w;     /* pipe_r belongs to the bus */
        bool watched;           /* in the manager's epoll, edge-triggered: see connection-io.c */
        uint32_t io_events;     /* what the epoll waits for now, EPOLLET aside */
        uint32_t revents;       /* what it said, not served yet (on the manager's ready list) */
        LIST_FIELDS(Connection, ready);
        bool readable;          /* epoll said so and no read would block since: read on */
        bool hup;               /* epoll said the client hung up */
        uint64_t until;         /* when sd-bus wants to run (the manager's one timer) */
        size_t timer_idx;       /* 1 + its place in the manager's heap of timeouts; 0 when none */
        bool authenticated;     /* the SASL lines are over (the bus took BEGIN), messages follow */
        bool begin_passed;      /* a line BEGIN went to the bus, which has not taken it (yet) */
        size_t auth_bytes, auth_line;
        uint8_t header[16];     /* the next message's fixed header, read but not yet passed on */
        size_t header_len;
        uint64_t in_left;       /* bytes of the current message still to pass on */
        uint64_t in_held;       /* its size, counted against the uid until the bus has read it */
        unsigned busy;          /* inside sd_bus_process(): freeing waits */
        bool closing, gone;
        /* On the manager's list of connections to re-arm before the next poll (see
         * connection_io_touch()); waiting: its next message waits for room in its uid's total. */
        bool dirty, waiting, on_ready;
        LIST_FIELDS(Connection, dirty);
        LIST_FIELDS(Connection, waiting);
};

/* Ends a connection: its writer and sessions go, its bus is closed (after a bounded flush while
 * vssd stops). Inside the connection's own dispatch the memory is freed once that returns. */
void connection_free(Connection *c);

/* connection-io.c: vssd reads each client's socket itself and passes its messages on to the bus,
 * so their sizes, the replies piling up and a uid's total are checked before anything is held. */
/* Before sd_bus_start(): the bus reads a pipe vssd fills and writes to the socket fd (taken). */
int connection_io_setup(Connection *c, int fd);
/* After sd_bus_start(): the connection's io and timer sources on the manager's event loop. */
int connection_io_start(Connection *c);
/* At the connection's end: while vssd stops, lets the bus send what it holds until the deadline. */
void connection_io_stop(Connection *c);
/* vssd queued a message on the connection's bus from outside its own dispatch (an event to a
 * writer): its io events and timeout are looked at again before the loop polls. Only the
 * connections touched are, so a message costs the same with 10 or 1000 connections. */
void connection_io_touch(Connection *c);
/* The manager's one prepare callback, on the listen socket's source: re-arms the touched
 * connections (all of them after a dispatch that was not a connection's own, a child's exit say,
 * which may have answered anyone). on_accept() calls connection_io_accepted() for its own. */
int connection_io_prepare(sd_event_source *s, void *userdata);
void connection_io_accepted(Manager *m);
/* After the listen source is made: the prepare callback and the one timer of all connections. */
int connection_io_loop_start(Manager *m);
/* After the last connection is freed. */
void connection_io_loop_stop(Manager *m);
