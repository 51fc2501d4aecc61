/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The transfer service's event loop (one thread: signals, the writer, the peer connection) and its
 * libvss writer. transfer.h says what each side does and why the total is conserved. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <vss/writer.h>

#include "transfer.h"

typedef struct Service {
        const ServiceOptions *o;
        sqlite3 *db;
        vss_writer *w;
        int sig_fd, listen_fd, conn_fd;
        char in[8192];
        size_t in_len;
        bool held;              /* between Freeze and Thaw/Abort: no transfer starts or applies */
        bool peer_held;         /* sender: the receiver said it holds ("H") and has not resumed ("R") */
        long long inflight;     /* sender: sent, ack not seen */
        long long started, acked, applied;
        uint64_t next_at, reconnect_at;
        unsigned seed;
} Service;

static bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void say(Service *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(Service *s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", s->o->name);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

static void drop_conn(Service *s) {
        if (s->conn_fd >= 0)
                close(s->conn_fd);
        s->conn_fd = -1;
        s->in_len = 0;
        s->peer_held = false;
        s->reconnect_at = now_ms() + 50;
}

static bool send_line(Service *s, const char *line) {
        size_t n = strlen(line);
        if (s->conn_fd >= 0 && send(s->conn_fd, line, n, MSG_NOSIGNAL) == (ssize_t) n)
                return true;
        drop_conn(s); /* the sender resends its outbox on reconnect; the receiver's ack is repeated then */
        return false;
}

static bool step_stmt(Service *s, const char *sql, long long x, long long y) {
        sqlite3_stmt *st = NULL;
        bool ok = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_bind_int64(st, 1, x) == SQLITE_OK &&
                  sqlite3_bind_int64(st, 2, y) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
        if (!ok)
                fprintf(stderr, "%s: %s: %s\n", s->o->name, sql, sqlite3_errmsg(s->db));
        sqlite3_finalize(st);
        return ok;
}

/* Sender: debit and outbox row in one transaction, then send. */
static bool start_transfer(Service *s) {
        long long account = rand_r(&s->seed) % TRANSFER_ACCOUNTS + 1, amount = rand_r(&s->seed) % 100 + 1;
        char line[96];
        if (!ledger_exec(s->db, "BEGIN IMMEDIATE"))
                return false;
        if (!step_stmt(s, "UPDATE accounts SET bal = bal - ?2 WHERE id = ?1", account, amount) ||
            !step_stmt(s, "INSERT INTO outbox (account, amount) VALUES (?1, ?2)", account, amount)) {
                ledger_exec(s->db, "ROLLBACK");
                return false;
        }
        long long id = sqlite3_last_insert_rowid(s->db);
        if (!ledger_exec(s->db, "COMMIT"))
                return false;
        s->started++;
        s->inflight++;
        snprintf(line, sizeof(line), "T %lld %lld\n", id, amount);
        send_line(s, line);
        return true;
}

/* Receiver: applies transfer id once (a repeat changes nothing), then acks it. */
static bool apply_transfer(Service *s, long long id, long long amount) {
        char line[64];
        if (!ledger_exec(s->db, "BEGIN IMMEDIATE"))
                return false;
        if (!step_stmt(s, "INSERT OR IGNORE INTO applied (id, amount) VALUES (?1, ?2)", id, amount)) {
                ledger_exec(s->db, "ROLLBACK");
                return false;
        }
        if (sqlite3_changes(s->db) == 1 &&
            !step_stmt(s, "UPDATE accounts SET bal = bal + ?2 WHERE id = ?1", id % TRANSFER_ACCOUNTS + 1, amount)) {
                ledger_exec(s->db, "ROLLBACK");
                return false;
        }
        if (!ledger_exec(s->db, "COMMIT"))
                return false;
        s->applied++;
        snprintf(line, sizeof(line), "A %lld\n", id);
        send_line(s, line);
        return true;
}

/* Sender: the ack of transfer id deletes its outbox row. */
static bool ack_transfer(Service *s, long long id) {
        if (!step_stmt(s, "DELETE FROM outbox WHERE id = ?1 AND ?2 = ?2", id, 0))
                return false;
        if (sqlite3_changes(s->db) == 1) {
                s->acked++;
                s->inflight--;
        }
        return true;
}

/* Handles the complete lines read so far. false on a ledger error (the service then stops). */
static bool handle_lines(Service *s) {
        char *p = s->in, *nl;
        bool ok = true;
        while (ok && (nl = memchr(p, '\n', s->in_len - (size_t) (p - s->in)))) {
                long long id, amount;
                *nl = 0;
                if (s->o->role == ROLE_RECEIVER && sscanf(p, "T %lld %lld", &id, &amount) == 2)
                        ok = apply_transfer(s, id, amount);
                else if (s->o->role == ROLE_SENDER && sscanf(p, "A %lld", &id) == 1)
                        ok = ack_transfer(s, id);
                else if (s->o->role == ROLE_SENDER && (streq(p, "H") || streq(p, "R")))
                        s->peer_held = streq(p, "H");
                else
                        fprintf(stderr, "%s: ignoring line '%s'\n", s->o->name, p);
                p = nl + 1;
                if (s->conn_fd < 0) /* an ack could not be sent: the rest comes again */
                        return ok;
        }
        s->in_len -= (size_t) (p - s->in);
        memmove(s->in, p, s->in_len);
        return ok;
}

/* Reads what the peer sent (waiting up to timeout_ms for it) and handles it. */
static bool read_peer(Service *s, int timeout_ms) {
        struct pollfd p = { .fd = s->conn_fd, .events = POLLIN };
        if (s->conn_fd < 0 || poll(&p, 1, timeout_ms) <= 0)
                return true;
        ssize_t n = read(s->conn_fd, s->in + s->in_len, sizeof(s->in) - s->in_len);
        if (n <= 0) {
                if (n == 0 || (errno != EINTR && errno != EAGAIN))
                        drop_conn(s);
                return true;
        }
        s->in_len += (size_t) n;
        return handle_lines(s);
}

/* Sender: connects to the receiver and resends every outbox row (acked or not, B knows). */
static void connect_peer(Service *s) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) s->o->peer_port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1;
        s->conn_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->conn_fd < 0 || connect(s->conn_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                drop_conn(s);
                return;
        }
        setsockopt(s->conn_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        sqlite3_stmt *st = NULL;
        s->inflight = 0;
        if (sqlite3_prepare_v2(s->db, "SELECT id, amount FROM outbox ORDER BY id", -1, &st, NULL) != SQLITE_OK) {
                fprintf(stderr, "%s: outbox: %s\n", s->o->name, sqlite3_errmsg(s->db));
                drop_conn(s);
                return;
        }
        while (sqlite3_step(st) == SQLITE_ROW && s->conn_fd >= 0) {
                char line[96];
                snprintf(line, sizeof(line), "T %lld %lld\n", (long long) sqlite3_column_int64(st, 0),
                         (long long) sqlite3_column_int64(st, 1));
                s->inflight++;
                send_line(s, line);
        }
        sqlite3_finalize(st);
        if (s->inflight > 0 && s->conn_fd >= 0)
                say(s, "connected: resent %lld outbox rows", s->inflight);
}

/* The writer's Freeze: stop starting (sender) or applying (receiver) transfers, finish those
 * under way, hold. The receiver tells the sender it holds ("H"): acks then come only after its
 * Thaw, so the sender stops waiting for them. That wait is bounded too. A transfer still in
 * flight stays in the sender's outbox, which is counted, so the cut conserves either way. */
static bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata) {
        Service *s = userdata;
        uint64_t start = now_ms(), end = start + (uint64_t) s->o->drain_ms;
        (void) w;
        (void) info;
        s->held = true;
        if (s->o->role == ROLE_SENDER)
                while (s->inflight > 0 && s->conn_fd >= 0 && !s->peer_held && now_ms() < end)
                        if (!read_peer(s, (int) (end - now_ms())))
                                return false;
        /* The receiver applies what has arrived (the sender may be waiting for its ack). */
        while (s->o->role == ROLE_RECEIVER && s->conn_fd >= 0 && now_ms() < end) {
                struct pollfd p = { .fd = s->conn_fd, .events = POLLIN };
                if (poll(&p, 1, 0) <= 0)
                        break;
                if (!read_peer(s, 0))
                        return false;
        }
        if (s->o->role == ROLE_RECEIVER)
                send_line(s, "H\n");
        say(s, "freeze: holding, %lld in flight after %lld ms%s", s->inflight, (long long) (now_ms() - start),
            s->peer_held ? " (the receiver holds)" : "");
        return true;
}

static bool on_thaw(vss_writer *w, const vss_event_info *info, void *userdata) {
        Service *s = userdata;
        (void) w;
        s->held = false;
        if (s->o->role == ROLE_RECEIVER)
                send_line(s, "R\n");
        say(s, info->event == VSS_EVENT_ABORT ? "abort: resuming (%lld started, %lld applied so far)"
                                              : "thaw: resuming (%lld started, %lld applied so far)",
            s->started, s->applied);
        return true;
}

static bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        Service *s = userdata;
        char dir[4096], base[4096], spec[4200];
        (void) w;
        snprintf(dir, sizeof(dir), "%s", s->o->ledger);
        snprintf(base, sizeof(base), "%s", s->o->ledger);
        snprintf(spec, sizeof(spec), "%s*", basename(base)); /* the ledger and its journal */
        return vss_metadata_add_component(md, NULL, "ledger", "transfer ledger", true, true) == 0 &&
               vss_metadata_add_files(md, NULL, "ledger", dirname(dir), spec, false) == 0;
}

static int listen_on(Service *s) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) s->o->port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int one = 1;
        char tmp[4200];
        s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->listen_fd < 0 || setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(s->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(s->listen_fd, 4) < 0 ||
            getsockname(s->listen_fd, (struct sockaddr *) &sa, &len) < 0) {
                fprintf(stderr, "%s: listen on 127.0.0.1:%d: %m\n", s->o->name, s->o->port);
                return -1;
        }
        if (!s->o->port_file)
                return 0;
        /* Written whole, then renamed: a reader sees no file or the port. */
        snprintf(tmp, sizeof(tmp), "%s.tmp", s->o->port_file);
        FILE *f = fopen(tmp, "we");
        if (!f || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 || fclose(f) != 0 || rename(tmp, s->o->port_file) < 0) {
                fprintf(stderr, "%s: %s: %m\n", s->o->name, s->o->port_file);
                return -1;
        }
        return 0;
}

static void accept_peer(Service *s) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC), one = 1;
        if (fd < 0)
                return;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        drop_conn(s); /* a new connection is a restarted sender: it resends what it needs */
        s->conn_fd = fd;
        if (s->held)
                send_line(s, "H\n");
}

static int setup(Service *s) {
        static const vss_writer_callbacks cb = {
                .identify = on_identify, .freeze = on_freeze, .thaw = on_thaw, .abort = on_thaw,
                .size = sizeof(vss_writer_callbacks),
        };
        vss_writer_options wo = { .name = s->o->name, .usage_type = VSS_UT_USERDATA, .source_type = VSS_ST_TRANSACTEDDB,
                                  .app_level = VSS_APP_FRONT_END, .freeze_window_ms = 60000,
                                  .size = sizeof(vss_writer_options) };
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
                fprintf(stderr, "%s: signalfd: %m\n", s->o->name);
                return -1;
        }
        if (!(s->db = ledger_open(s->o->ledger, false)))
                return -1;
        if (s->o->role == ROLE_SENDER)
                s->inflight = ledger_int(s->db, "SELECT count(*) FROM outbox");
        if (s->o->role == ROLE_RECEIVER && listen_on(s) < 0)
                return -1;
        int r = vss_writer_new(&wo, &cb, s, &s->w);
        if (r >= 0)
                r = vss_writer_subscribe(s->w, s->o->socket);
        if (r < 0) {
                fprintf(stderr, "%s: writer: %s (0x%08x)\n", s->o->name, vss_writer_errmsg(s->w), (unsigned) r);
                return -1;
        }
        /* What vssd sent while we subscribed may already be queued (<vss/writer.h>). */
        return vss_writer_dispatch(s->w) < 0 ? -1 : 0;
}

/* Milliseconds poll may wait before the sender has something to do on its own. */
static int sender_timeout(Service *s) {
        uint64_t now = now_ms(), at;
        if (s->held || (s->conn_fd >= 0 && s->peer_held))
                return -1; /* the receiver's "R" comes as input */
        if (s->conn_fd < 0)
                at = s->reconnect_at;
        else if (s->inflight == 0)
                at = s->next_at;
        else
                return -1; /* one transfer at a time: the ack comes as input */
        return at > now ? (int) (at - now) : 0;
}

static int loop(Service *s) {
        for (;;) {
                struct pollfd p[4] = { { .fd = s->sig_fd, .events = POLLIN },
                                       { .fd = vss_writer_get_fd(s->w), .events = POLLIN },
                                       { .fd = s->held ? -1 : s->conn_fd, .events = POLLIN },
                                       { .fd = s->listen_fd, .events = POLLIN } };
                int timeout = s->o->role == ROLE_SENDER ? sender_timeout(s) : -1;
                if (poll(p, 4, timeout) < 0 && errno != EINTR) {
                        fprintf(stderr, "%s: poll: %m\n", s->o->name);
                        return 1;
                }
                if (p[0].revents)
                        return 0;
                if (p[1].revents && vss_writer_dispatch(s->w) < 0) {
                        fprintf(stderr, "%s: lost vssd: %s\n", s->o->name, vss_writer_errmsg(s->w));
                        return 1;
                }
                if (p[3].revents)
                        accept_peer(s);
                if (p[2].revents && !s->held && !read_peer(s, 0))
                        return 1;
                if (s->o->role != ROLE_SENDER || s->held || s->peer_held || now_ms() < (s->conn_fd < 0 ? s->reconnect_at : s->next_at))
                        continue;
                if (s->conn_fd < 0)
                        connect_peer(s);
                else if (s->inflight == 0) {
                        if (!start_transfer(s))
                                return 1;
                        s->next_at = now_ms() + (uint64_t) s->o->interval_ms;
                }
        }
}

int service_run(const ServiceOptions *o) {
        Service s = { .o = o, .sig_fd = -1, .listen_fd = -1, .conn_fd = -1, .seed = (unsigned) getpid() };
        int r = setup(&s) < 0 ? 1 : loop(&s);
        if (s.w && vss_writer_is_frozen(s.w))
                say(&s, "stopping while frozen: the writer aborts itself");
        say(&s, "stopped: %lld transfers started or applied, %lld acked", o->role == ROLE_SENDER ? s.started : s.applied,
            s.acked);
        vss_writer_free(s.w);
        sqlite3_close(s.db);
        if (s.conn_fd >= 0)
                close(s.conn_fd);
        if (s.listen_fd >= 0)
                close(s.listen_fd);
        if (s.sig_fd >= 0)
                close(s.sig_fd);
        return r;
}
