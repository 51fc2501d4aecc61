/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A client connection's io. sd-bus reads a whole message, however large it says it is (up to
 * 128 MiB), and queues every outgoing message without limit; a client could make vssd hold
 * gigabytes. So vssd reads the client's socket itself and passes the bytes on to the bus through
 * a pipe, one message at a time: the SASL lines first, then each message once its fixed header
 * says a size that is allowed and the uid's total has room for it. The bus writes to the socket
 * directly. While any outgoing message waits for the client to read, vssd reads nothing more from
 * it, so a client that never reads its replies makes vssd hold at most its kernel socket buffer
 * and a few messages; past max_queued_messages (vssd's own calls to a writer that stopped
 * reading) the connection is closed. Root is exempt from the limits, not from the relay.
 *
 * The sockets sit in an epoll of vssd's own, one source on the loop whose dispatch serves every
 * connection ready: sd-event dispatches one source per loop iteration (a poll, the prepare
 * callback), which per connection was a loop iteration per message. They are edge-triggered: a
 * level-triggered socket still readable is polled again at every epoll_wait, so 1000 writers
 * answering a Freeze at once cost O(N) per answer. A connection epoll said was readable is read
 * until a read would block (readable); one left with bytes unread (the per-wakeup limit, a full
 * pipe) is served again from the one timer, as soon as the loop comes round. */

#include <assert.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>

#include "daemon/connection.h"
#include "daemon/log.h"
#include "daemon/session.h"
#include "lib/common.h"

#define HEADER_SIZE 16
#define MAX_AUTH_LINE 512
#define MAX_AUTH_BYTES 16384
/* A non-root client's kernel send buffer (doubled by the kernel): sd-bus asks for 8 MiB, which
 * unread replies would fill, per connection. */
#define CLIENT_SNDBUF (64 * 1024)
/* Bytes passed on per wakeup, so one busy client does not starve the others. */
#define MAX_PUMP_PER_DISPATCH (4 * 1024 * 1024)
#define PIPE_ROOM (1024 * 1024)
/* A usual message is peeked whole, which tells whether the socket holds more. */
#define PEEK_SIZE 2048

static bool limited(const Connection *c) {
        return c->cred.uid != 0;
}

static uint64_t queued_writes(Connection *c) {
        uint64_t n = 0;
        (void) sd_bus_get_n_queued_write(c->bus, &n);
        return n;
}

/* Each uid's incoming bytes of messages in part, over all its connections: kept as they change
 * (a few uids at a time hold any), so checking a message does not walk the connections. */
typedef struct UidHeld {
        uid_t uid;
        uint64_t bytes;
} UidHeld;

static UidHeld *uid_held(Manager *m, uid_t uid) {
        for (size_t i = 0; i < m->n_uid_held; i++)
                if (m->uid_held[i].uid == uid)
                        return &m->uid_held[i];
        return NULL;
}

static uint64_t input_held(Manager *m, uid_t uid) {
        const UidHeld *u = uid_held(m, uid);
        return u ? u->bytes : 0;
}

/* The connection's message of size bytes counts against its uid until the bus has read it. */
static int held_take(Connection *c, uint64_t size) {
        Manager *m = c->manager;
        UidHeld *u = uid_held(m, c->cred.uid);
        if (!u) {
                UidHeld *n = realloc(m->uid_held, (m->n_uid_held + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                m->uid_held = n;
                u = &n[m->n_uid_held++];
                *u = (UidHeld) { .uid = c->cred.uid };
        }
        u->bytes += size;
        c->in_held = size;
        return 0;
}

/* The bus has read the message (or the connection ends): the uid's connections waiting for room
 * may read again. */
static void held_release(Connection *c) {
        Manager *m = c->manager;
        if (c->in_held == 0)
                return;
        UidHeld *u = uid_held(m, c->cred.uid);
        if (u) {
                u->bytes -= c->in_held < u->bytes ? c->in_held : u->bytes;
                if (u->bytes == 0)
                        *u = m->uid_held[--m->n_uid_held];
        }
        c->in_held = 0;
        LIST_FOREACH_SAFE(waiting, o, n, m->waiting)
                if (o->cred.uid == c->cred.uid) {
                        LIST_REMOVE(waiting, m->waiting, o);
                        o->waiting = false;
                        connection_io_touch(o);
                }
}

/* The size a D-Bus message's fixed header declares, as sd-bus computes it: the header, the header
 * fields array padded to 8, the body. */
static int message_size(const uint8_t h[HEADER_SIZE], uint64_t *ret) {
        uint32_t body, fields;
        memcpy(&body, h + 4, 4);
        memcpy(&fields, h + 12, 4);
        if (h[0] == 'l') {
                body = le32toh(body);
                fields = le32toh(fields);
        } else if (h[0] == 'B') {
                body = be32toh(body);
                fields = be32toh(fields);
        } else
                return -EBADMSG;
        if (h[3] != 1)
                return -EBADMSG;
        uint64_t size = HEADER_SIZE + (((uint64_t) fields + 7) & ~(uint64_t) 7) + body;
        /* Every message has a header field; less would make the bus read into the next one. */
        if (size < HEADER_SIZE + 8)
                return -EBADMSG;
        *ret = size;
        return 0;
}

/* Whether vssd reads from the client now. Must be false whenever pump() would read nothing
 * though the socket holds bytes, or serving it again (wants_serve()) would spin. */
static bool may_read(Connection *c) {
        if (c->pipe_w < 0 || c->begin_passed)
                return false;
        if (!c->authenticated || c->in_left > 0 || !limited(c))
                return true;
        if (queued_writes(c) > 0)
                return false;
        if (c->header_len == HEADER_SIZE) {
                Manager *m = c->manager;
                uint64_t size;
                if (message_size(c->header, &size) < 0)
                        return false;
                if (input_held(m, c->cred.uid) + size <= m->config.max_input_bytes_per_uid)
                        return true;
                /* Looked at again when one of the uid's messages is read (held_release()). */
                if (!c->waiting) {
                        LIST_PREPEND(waiting, m->waiting, c);
                        c->waiting = true;
                }
                return false;
        }
        return true;
}

/* A read would block: epoll says when there is more (edge-triggered). */
static int would_block(Connection *c) {
        if (errno != EAGAIN)
                return -errno;
        c->readable = false;
        return 0;
}

/* Room is certain: the bus empties the pipe whenever it runs, and a message starts only after. */
static int write_pipe(Connection *c, const void *p, size_t n) {
        ssize_t k = write(c->pipe_w, p, n);
        if (k < 0)
                return -errno;
        return (size_t) k == n ? 0 : -EIO;
}

/* The SASL lines (the client starts with a NUL byte, then CRLF lines up to BEGIN) pass as they
 * come, every whole line the socket holds at once (the bus answers them together: one wakeup of
 * the client, not one per line); the line BEGIN ends them, so the first message starts where vssd
 * knows. The line being read keeps its first bytes in header, its length in auth_line.
 * Nothing more is read after a BEGIN until the bus says it took it (begin_taken()): one it did not
 * take (before an AUTH it accepted, or a line it reads otherwise, such as "X\nBEGIN") would have
 * vssd count message sizes the bus, still reading SASL lines, never sees, and the bus read a
 * message as large as it says past every limit. */
static int pump_auth(Connection *c) {
        char buf[MAX_AUTH_LINE];
        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
        if (n == 0)
                return -ECONNRESET;
        if (n < 0)
                return would_block(c);
        size_t len = 0;
        bool begin = false;
        for (size_t i = 0; i < (size_t) n && !begin; i++) {
                if (c->auth_line < HEADER_SIZE)
                        c->header[c->auth_line] = (uint8_t) buf[i];
                c->auth_line++;
                if (buf[i] == '\n') {
                        begin = c->auth_line == 7 && memcmp(c->header, "BEGIN\r\n", 7) == 0;
                        c->auth_line = 0;
                        len = i + 1;
                }
        }
        /* Whole lines up to BEGIN pass; a line in part passes alone, else it is peeked again,
         * from its start, with what follows it. */
        if (len == 0)
                len = (size_t) n;
        else
                c->auth_line = 0;
        c->auth_bytes += len;
        if (c->auth_bytes > MAX_AUTH_BYTES) {
                log_warn("closing the connection of pid %d (uid %u): no end to its authentication",
                         (int) c->cred.pid, (unsigned) c->cred.uid);
                return -EBADMSG;
        }
        if (recv(c->fd, buf, len, MSG_DONTWAIT) != (ssize_t) len)
                return -EIO;
        int r = write_pipe(c, buf, len);
        if (r < 0)
                return r;
        c->begin_passed = begin;
        return 1;
}

/* After the bus ran: whether it took the BEGIN passed on, so that messages follow. One it did not
 * take leaves the client unread until the bus's authentication deadline closes it. */
static void begin_taken(Connection *c) {
        if (c->begin_passed && sd_bus_is_ready(c->bus) > 0) {
                c->begin_passed = false;
                c->authenticated = true;
        }
}

/* Passes on at most one chunk of the client's bytes. Returns 1 when bytes moved, 0 when there is
 * nothing to do until the client, the bus or the uid's total moves, <0 to close the connection. */
static int pump(Connection *c) {
        Manager *m = c->manager;
        bool header = false;
        /* What the socket held when peeked, if all of it fit: splicing that much empties it. */
        ssize_t held = -1;
        if (c->begin_passed)
                return 0; /* until the bus takes it (begin_taken()) */
        if (!c->authenticated)
                return pump_auth(c);
        if (c->in_left == 0) {
                /* Every pump that moved bytes was followed by the bus reading all of them. */
                held_release(c);
                if (limited(c) && queued_writes(c) > 0)
                        return 0;
                bool peeked = false;
                if (c->header_len == 0) {
                        /* Usually the header is all there: peeked, and passed on with the rest. */
                        uint8_t buf[PEEK_SIZE];
                        ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
                        if (n == 0)
                                return -ECONNRESET;
                        if (n < 0)
                                return would_block(c);
                        peeked = n >= HEADER_SIZE;
                        if (peeked)
                                memcpy(c->header, buf, HEADER_SIZE);
                        if (peeked && n < PEEK_SIZE)
                                held = n;
                }
                if (!peeked && c->header_len < HEADER_SIZE) {
                        /* A header in parts is kept here, or the peek would see the same part forever. */
                        ssize_t n = recv(c->fd, c->header + c->header_len, HEADER_SIZE - c->header_len, MSG_DONTWAIT);
                        if (n == 0)
                                return -ECONNRESET;
                        if (n < 0)
                                return would_block(c);
                        c->header_len += (size_t) n;
                        if (c->header_len < HEADER_SIZE) {
                                c->readable = false; /* a short read: the socket is empty */
                                return 0;
                        }
                }
                uint64_t size;
                if (message_size(c->header, &size) < 0) {
                        log_warn("closing the connection of pid %d (uid %u): not a D-Bus message header",
                                 (int) c->cred.pid, (unsigned) c->cred.uid);
                        return -EBADMSG;
                }
                if (limited(c)) {
                        if (size > m->config.max_message_bytes) {
                                log_warn("closing the connection of pid %d (uid %u): a message of %" PRIu64
                                         " bytes, more than max_message_bytes (%u)", (int) c->cred.pid,
                                         (unsigned) c->cred.uid, size, m->config.max_message_bytes);
                                return -EMSGSIZE;
                        }
                        if (input_held(m, c->cred.uid) + size > m->config.max_input_bytes_per_uid) {
                                /* Waits until the uid's other messages are read; the header taken off
                                 * the socket, so that may_read() sees why. */
                                if (peeked) {
                                        if (recv(c->fd, c->header, HEADER_SIZE, MSG_DONTWAIT) != HEADER_SIZE)
                                                return -EIO;
                                        c->header_len = HEADER_SIZE;
                                }
                                return 0;
                        }
                        int r = held_take(c, size);
                        if (r < 0)
                                return r;
                }
                c->in_left = size;
                if (!peeked) {
                        int r = write_pipe(c, c->header, HEADER_SIZE);
                        if (r < 0)
                                return r;
                        c->in_left -= HEADER_SIZE;
                }
                c->header_len = 0;
                header = true; /* and the rest of the message after it, if it is there */
        }
        ssize_t n = splice(c->fd, NULL, c->pipe_w, NULL, c->in_left < 65536 ? c->in_left : 65536, SPLICE_F_NONBLOCK);
        if (n == 0)
                return -ECONNRESET;
        if (n < 0 && errno == EAGAIN) {
                /* The socket is empty, or the pipe full (a message larger than it): the bus
                 * empties the pipe, and a socket with bytes left is read again. */
                int left = 0;
                if (ioctl(c->fd, FIONREAD, &left) < 0 || left == 0)
                        c->readable = false;
                return header;
        }
        if (n < 0)
                return -errno;
        c->in_left -= (uint64_t) n;
        if (n == held)
                c->readable = false; /* saves the read that would block; more comes with an edge */
        return 1;
}

/* Lets the bus read what the pipe holds, dispatch, and write. Returns false when the connection
 * ended meanwhile (and is freed now). */
static bool process(Connection *c) {
        int r;
        c->busy++;
        do
                r = sd_bus_process(c->bus, NULL);
        while (r > 0 && !c->gone);
        c->busy--;
        if (c->gone) {
                c->manager->end_connection(c);
                return false;
        }
        begin_taken(c);
        if (r == -ENOTCONN) {
                /* Closed without saying Disconnected: nothing more can come of it. */
                c->manager->end_connection(c);
                return false;
        }
        if (r < 0 && r != -ECONNRESET)
                log_warn("connection of pid %d: %s", (int) c->cred.pid, strerror(-r));
        if (c->in_left == 0)
                held_release(c); /* the bus has read it all */
        return true;
}

/* Ends the connection the way sd-bus ends one: the bus reads the end of its input, fails the calls
 * still waiting for this client's replies (a writer's Freeze, say) and says Disconnected, which
 * frees the connection. */
static void drop(Connection *c, int error) {
        if (error != -ECONNRESET && error != -EPIPE && error != -EMSGSIZE && error != -EBADMSG && error != -ENOBUFS)
                log_warn("closing the connection of pid %d: %s", (int) c->cred.pid, strerror(-error));
        if (c->pipe_w >= 0)
                close(c->pipe_w);
        c->pipe_w = -1;
        if (process(c) && !c->closing)
                c->manager->end_connection(c);
}

static bool over_queue_limit(Connection *c) {
        if (!limited(c) || queued_writes(c) <= c->manager->config.max_queued_messages)
                return false;
        log_warn("closing the connection of pid %d (uid %u): more than %u messages for it wait unread "
                 "(max_queued_messages)", (int) c->cred.pid, (unsigned) c->cred.uid, c->manager->config.max_queued_messages);
        return true;
}

/* A dispatch of the connection's own: it is re-armed before the next poll, and only it (and
 * whom its dispatch touched). */
static void own_dispatch(Connection *c) {
        connection_io_accepted(c->manager);
        connection_io_touch(c);
}

/* Whether the connection must be served again though epoll will not say so: bytes left unread
 * that may be read now, or a hang-up not acted on yet. */
static bool wants_serve(Connection *c) {
        return c->hup || (c->pipe_w >= 0 && c->readable && may_read(c));
}

/* Writes what waits (out: the client read), then passes on what the client sent. */
static void serve(Connection *c, bool out) {
        size_t moved = 0;
        if (out && !process(c)) /* the client read: what waits goes out first */
                return;
        if (c->pipe_w < 0) {
                /* Its input ended and the bus is closing; a peer gone for good is not waited for. */
                if (c->hup)
                        c->manager->end_connection(c);
                return;
        }
        if (c->hup && !may_read(c)) {
                drop(c, -ECONNRESET); /* nothing more will be read, so nothing is lost */
                return;
        }
        /* The bus runs when a message is whole (or the pipe may be full): sd-bus reallocates its
         * buffer to the message's size at every read of a part of one. */
        bool partial = false;
        /* After a hang-up, read on until the end is read (or the limits say no). */
        while (moved < MAX_PUMP_PER_DISPATCH && (c->readable || c->hup)) {
                int r = pump(c);
                if (r < 0) {
                        drop(c, r);
                        return;
                }
                if (r == 0)
                        break;
                moved += 65536; /* at most a chunk per pump */
                partial = c->in_left > 0;
                if (!partial && !process(c))
                        return;
        }
        if (partial && !process(c))
                return;
        if (over_queue_limit(c))
                drop(c, -ENOBUFS);
}

/* The connections' epoll: all that are ready are served in one dispatch of the loop, which
 * would otherwise take an iteration (a poll and the prepare callbacks) for each. */
static int on_io(sd_event_source *s, int fd, uint32_t revents_unused, void *userdata) {
        Manager *m = userdata;
        struct epoll_event ev[64];
        int n = epoll_wait(fd, ev, ELEMENTSOF(ev), 0);
        if (n < 0)
                return errno == EINTR ? 0 : -errno;
        /* Listed first: serving one connection may end another, which leaves the list. */
        for (int i = 0; i < n; i++) {
                Connection *c = ev[i].data.ptr;
                c->revents |= ev[i].events;
                if (!c->on_ready) {
                        LIST_PREPEND(ready, m->ready, c);
                        c->on_ready = true;
                }
        }
        while (m->ready) {
                Connection *c = m->ready;
                uint32_t revents = c->revents;
                LIST_REMOVE(ready, m->ready, c);
                c->on_ready = false;
                c->revents = 0;
                own_dispatch(c);
                if (revents & (EPOLLHUP | EPOLLERR))
                        c->hup = true;
                if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                        c->readable = true;
                serve(c, revents & EPOLLOUT);
        }
        return 0;
}

/* The connections' timeouts (sd-bus's: calls to writers, the authentication deadline, a bus
 * closing) come from one timer: a heap of the connections that have one, earliest first. */
static bool timer_before(const Connection *a, const Connection *b) {
        return a->until < b->until;
}

static void timer_place(Manager *m, size_t i, Connection *c) {
        m->timers[i] = c;
        c->timer_idx = i + 1;
}

static void timer_sift(Manager *m, size_t i) {
        Connection *c = m->timers[i];
        while (i > 0 && timer_before(c, m->timers[(i - 1) / 2])) {
                timer_place(m, i, m->timers[(i - 1) / 2]);
                i = (i - 1) / 2;
        }
        for (;;) {
                size_t l = 2 * i + 1, r = l + 1, k = i;
                const Connection *least = c;
                if (l < m->n_timers && timer_before(m->timers[l], least))
                        least = m->timers[k = l];
                if (r < m->n_timers && timer_before(m->timers[r], least))
                        k = r;
                if (k == i)
                        break;
                timer_place(m, i, m->timers[k]);
                i = k;
        }
        timer_place(m, i, c);
}

static void timer_remove(Connection *c) {
        Manager *m = c->manager;
        if (c->timer_idx == 0)
                return;
        size_t i = c->timer_idx - 1;
        c->timer_idx = 0;
        Connection *last = m->timers[--m->n_timers];
        if (last != c) {
                timer_place(m, i, last);
                timer_sift(m, i);
        }
}

/* until: CLOCK_MONOTONIC usec, UINT64_MAX for none. */
static void timer_set(Connection *c, uint64_t until) {
        Manager *m = c->manager;
        if (until == UINT64_MAX) {
                timer_remove(c);
                return;
        }
        c->until = until;
        if (c->timer_idx == 0) {
                assert(m->n_timers < m->n_timers_alloc); /* room made when the connection came */
                timer_place(m, m->n_timers++, c);
        }
        timer_sift(m, c->timer_idx - 1);
}

static int on_time(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_monotonic_usec();
        connection_io_accepted(m); /* each connection run here is re-armed: no need to look at all */
        while (m->n_timers > 0 && m->timers[0]->until <= now) {
                Connection *c = m->timers[0];
                timer_remove(c);
                connection_io_touch(c);
                if (!process(c))
                        continue;
                if (wants_serve(c))
                        serve(c, false);
                else if (over_queue_limit(c))
                        drop(c, -ENOBUFS);
        }
        return 0;
}

static int epoll_mod(Connection *c, int op, uint32_t events) {
        struct epoll_event ev = { .events = events | EPOLLET, .data.ptr = c };
        if (epoll_ctl(sd_event_source_get_io_fd(c->manager->io_epoll), op, c->fd, &ev) < 0)
                return -errno;
        return 0;
}

/* What to wait for, and when sd-bus wants to run (timeouts of calls to writers, the
 * authentication deadline, a closing bus). */
static void arm(Connection *c) {
        uint32_t events = 0;
        uint64_t until = UINT64_MAX;
        int e = sd_bus_get_events(c->bus);
        if (e > 0 && (e & POLLOUT))
                events |= EPOLLOUT;
        if (may_read(c))
                events |= EPOLLIN;
        /* Changed only: each change is an epoll_ctl(), which also reports what is ready now. */
        if (events != c->io_events && epoll_mod(c, EPOLL_CTL_MOD, events) >= 0)
                c->io_events = events;
        if (sd_bus_get_timeout(c->bus, &until) < 0 || e < 0)
                until = 0;
        if (limited(c) && queued_writes(c) > c->manager->config.max_queued_messages)
                until = 0;
        if (wants_serve(c))
                until = 0;
        timer_set(c, until);
}

void connection_io_touch(Connection *c) {
        Manager *m = c->manager;
        if (c->dirty || !c->watched)
                return;
        LIST_PREPEND(dirty, m->dirty, c);
        c->dirty = true;
}

void connection_io_accepted(Manager *m) {
        (void) sd_event_get_iteration(m->event, &m->io_iteration);
}

int connection_io_prepare(sd_event_source *src, void *userdata) {
        Manager *m = userdata;
        uint64_t it = 0;
        (void) sd_event_get_iteration(m->event, &it);
        if (m->io_iteration + 1 != it) {
                /* The last dispatch was someone else's (a child's exit, a timer): it may have
                 * answered any client. Rare, so the walk costs nothing per message. */
                LIST_FOREACH(connections, c, m->connections)
                        connection_io_touch(c);
        } else
                /* A writer's answer may have completed a requester's call. */
                LIST_FOREACH(sessions, s, m->sessions)
                        if (s->connection)
                                connection_io_touch(s->connection);
        while (m->dirty) {
                Connection *c = m->dirty;
                LIST_REMOVE(dirty, m->dirty, c);
                c->dirty = false;
                arm(c);
        }
        /* Left on when none is due (it then finds nothing), and not moved later: the earliest
         * deadline changes with nearly every answer (calls are answered in the order sent), and
         * moving the timer is a timerfd_settime(). */
        int on = SD_EVENT_OFF;
        uint64_t was;
        (void) sd_event_source_get_enabled(m->timer_source, &on);
        if (m->n_timers == 0)
                return 0;
        if (on == SD_EVENT_OFF || sd_event_source_get_time(m->timer_source, &was) < 0 || was > m->timers[0]->until)
                (void) sd_event_source_set_time(m->timer_source, m->timers[0]->until);
        return sd_event_source_set_enabled(m->timer_source, SD_EVENT_ONESHOT);
}

int connection_io_loop_start(Manager *m) {
        int fd = epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = sd_event_add_io(m->event, &m->io_epoll, fd, EPOLLIN, on_io, m);
        if (r < 0) {
                close(fd);
                return r;
        }
        (void) sd_event_source_set_io_fd_own(m->io_epoll, true);
        r = sd_event_add_time(m->event, &m->timer_source, CLOCK_MONOTONIC, 0, 1000, on_time, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->timer_source, SD_EVENT_OFF);
        /* One callback before each poll for all the connections, not one per connection. */
        if (r >= 0)
                r = sd_event_source_set_prepare(m->listen_source, connection_io_prepare);
        return r;
}

void connection_io_loop_stop(Manager *m) {
        m->timer_source = sd_event_source_disable_unref(m->timer_source);
        m->io_epoll = sd_event_source_disable_unref(m->io_epoll);
        free(m->timers);
        m->timers = NULL;
        m->n_timers = m->n_timers_alloc = 0;
}

int connection_io_setup(Connection *c, int fd) {
        int p[2];
        /* File descriptors would not pass the pipe; no method takes one. */
        int r = sd_bus_negotiate_fds(c->bus, false);
        if (r < 0)
                return r;
        /* Our own descriptor of the socket: sd-bus closes its own when the input ends, and a
         * number it frees must not be reused (a pidfd, say) while our io source still watches it. */
        int own = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (own < 0)
                return -errno;
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
                close(own);
                return -errno;
        }
        /* Room for a usual message whole, so the bus reads it once; larger ones pass in parts of
         * this size (pages are taken as bytes come, but the kernel's slot array is sized by it:
         * 1 MiB costs 10 KiB a connection). Without it, parts of 64 KiB. */
        uint64_t room = c->manager->config.max_message_bytes;
        (void) fcntl(p[1], F_SETPIPE_SZ, (int) (room < PIPE_ROOM ? room : PIPE_ROOM));
        r = sd_bus_set_fd(c->bus, p[0], fd);
        if (r < 0) {
                close(own);
                close(p[0]);
                close(p[1]);
                return r;
        }
        c->fd = own;
        c->pipe_r = p[0];
        c->pipe_w = p[1];
        return 0;
}

int connection_io_start(Connection *c) {
        int r;
        if (limited(c)) {
                int size = CLIENT_SNDBUF;
                (void) setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        }
        /* Room in the heap of timeouts for every connection, made now: arming one never fails. */
        Manager *m = c->manager;
        if (m->n_timers_alloc < (size_t) m->n_connections + 1) {
                size_t n = 2 * ((size_t) m->n_connections + 1);
                Connection **t = realloc(m->timers, n * sizeof(*t));
                if (!t)
                        return -ENOMEM;
                m->timers = t;
                m->n_timers_alloc = n;
        }
        r = epoll_mod(c, EPOLL_CTL_ADD, EPOLLIN);
        if (r >= 0) {
                c->watched = true;
                c->io_events = EPOLLIN;
                c->readable = true; /* the client may have written before the source was added */
                connection_io_touch(c);
        }
        return r;
}

/* While vssd stops, what the bus holds for the client (an Abort for a writer) goes out if the
 * client reads it before the shared deadline; a client that does not read cannot hold vssd. */
static void flush_bounded(Connection *c) {
        uint64_t deadline = c->manager->stop_deadline_usec;
        while (deadline > 0 && queued_writes(c) > 0) {
                uint64_t now = now_monotonic_usec();
                if (now >= deadline)
                        break;
                struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
                int k = poll(&pfd, 1, (int) ((deadline - now + 999) / 1000));
                if (k <= 0 || (pfd.revents & (POLLERR | POLLHUP)))
                        break;
                if (sd_bus_process(c->bus, NULL) <= 0) /* wrote nothing though it could: no spinning */
                        break;
        }
}

void connection_io_stop(Connection *c) {
        Manager *m = c->manager;
        if (c->bus && c->watched && !c->busy)
                flush_bounded(c);
        if (c->dirty)
                LIST_REMOVE(dirty, m->dirty, c);
        if (c->waiting)
                LIST_REMOVE(waiting, m->waiting, c);
        c->dirty = c->waiting = false;
        held_release(c);
        if (c->on_ready)
                LIST_REMOVE(ready, m->ready, c);
        c->on_ready = false;
        if (c->watched)
                (void) epoll_mod(c, EPOLL_CTL_DEL, 0);
        c->watched = false;
        timer_remove(c);
        if (c->pipe_w >= 0)
                close(c->pipe_w);
        c->pipe_w = -1;
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        /* The bus owns the socket and the pipe's read end, and closes them without waiting. */
        c->bus = sd_bus_close_unref(c->bus);
}
