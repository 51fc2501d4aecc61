/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Trust boundaries, limits (issue 10): what a client without rights can make vssd hold, and how
 * long it can keep vssd from stopping. The clients are vsstest-bob (no group, no rights) speaking
 * raw D-Bus on the socket: calls whose replies it never reads, messages it sends half of. vssd
 * runs as root with the default limits.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/client.h"
#include "tests/users.h"

#define MIB (1024 * 1024)
/* The stated bound on vssd's resident memory under the flood, default config. ASan's runtime,
 * shadow and (shortened) quarantine take their share on top. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_BOUND (128 * MIB)
#else
#define RSS_BOUND (64 * MIB)
#endif

static uint64_t rss_of(pid_t pid) {
        char path[64], line[256];
        uint64_t kb = 0;
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        FILE *f = fopen(path, "re");
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %" SCNu64 " kB", &kb) == 1)
                        break;
        if (f)
                fclose(f);
        return kb * 1024;
}

/* A raw, authenticated connection: the SASL lines are sent and their answers never read. */
static int raw_connect(Harness *h) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", harness_socket(h));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "cannot connect to %s: %m\n", sa.sun_path);
                _exit(99);
        }
        char uid[32], auth[128];
        int n = snprintf(uid, sizeof(uid), "%u", (unsigned) getuid());
        char *p = auth + sprintf(auth, "%cAUTH EXTERNAL ", 0);
        for (int i = 0; i < n; i++)
                p += sprintf(p, "%02x", (unsigned char) uid[i]);
        p += sprintf(p, "\r\nBEGIN\r\n");
        CHECK(send(fd, auth, (size_t) (p - auth), MSG_NOSIGNAL) == p - auth);
        return fd;
}

static size_t field(uint8_t *b, size_t at, uint8_t code, char type, const char *value) {
        at = (at + 7) & ~(size_t) 7;
        b[at++] = code;
        b[at++] = 1;
        b[at++] = (uint8_t) type;
        b[at++] = 0;
        uint32_t len = (uint32_t) strlen(value);
        if (type == 'g') {
                b[at++] = (uint8_t) len;
        } else {
                memcpy(b + at, &len, 4);
                at += 4;
        }
        memcpy(b + at, value, len + 1);
        return at + len + 1;
}

/* A little-endian method call's header and fields (padded to 8): to path, interface.member, with
 * a body of body_len bytes of signature sig (or none). Returns the bytes written to b. */
static size_t call_header(uint8_t *b, uint32_t serial, const char *iface, const char *member, const char *sig,
                          uint32_t body_len) {
        memset(b, 0, 512);
        b[0] = 'l', b[1] = 1, b[2] = 0, b[3] = 1;
        memcpy(b + 4, &body_len, 4);
        memcpy(b + 8, &serial, 4);
        size_t at = field(b, 16, 1, 'o', VSS_BUS_PATH);
        at = field(b, at, 2, 's', iface);
        at = field(b, at, 3, 's', member);
        if (sig)
                at = field(b, at, 8, 'g', sig);
        uint32_t fields = (uint32_t) (at - 16);
        memcpy(b + 12, &fields, 4);
        return (at + 7) & ~(size_t) 7;
}

/* Sends up to n bytes of buf (repeated) without blocking for long: stops when vssd has taken
 * nothing for a second or closed the connection. Returns the bytes sent. */
static size_t send_upto(int fd, const uint8_t *buf, size_t len, size_t n) {
        size_t sent = 0;
        while (sent < n) {
                size_t at = sent % len, want = len - at < n - sent ? len - at : n - sent;
                ssize_t k = send(fd, buf + at, want, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k > 0) {
                        sent += (size_t) k;
                        continue;
                }
                if (k < 0 && errno != EAGAIN)
                        break;
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                if (poll(&p, 1, 1000) <= 0 || (p.revents & (POLLERR | POLLHUP)))
                        break;
        }
        return sent;
}

/* Whether vssd closed the connection within 10 s (what it sent before is read and dropped). */
static bool closed_by_vssd(int fd) {
        char buf[4096];
        for (int i = 0; i < 1000; i++) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10) < 0)
                        return false;
                if (p.revents & POLLIN) {
                        ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                        if (k == 0 || (k < 0 && errno != EAGAIN))
                                return true;
                } else if (p.revents & (POLLHUP | POLLERR))
                        return true;
        }
        return false;
}

/* Many Introspect calls (a reply of several KiB each) in one buffer. */
static uint8_t *introspect_calls(unsigned n, size_t *ret_len) {
        uint8_t one[512];
        size_t len = call_header(one, 1, "org.freedesktop.DBus.Introspectable", "Introspect", NULL, 0);
        uint8_t *b = malloc(len * n);
        for (unsigned i = 0; i < n; i++) {
                uint32_t serial = i + 1;
                memcpy(b + i * len, one, len);
                memcpy(b + i * len + 8, &serial, 4);
        }
        *ret_len = len * n;
        return b;
}

typedef struct Flood {
        int ready[2]; /* bob tells the test his flood is sent */
        int hold[2];  /* bob keeps his connections until the test closes this */
} Flood;

#define N_CALLERS 8
#define N_CALLS 2000
#define N_OVERSIZED 4
#define N_HALF 4

static void bob_flood(Harness *h, void *userdata) {
        Flood *f = userdata;
        close(f->ready[0]);
        close(f->hold[1]);
        int callers[N_CALLERS], over[N_OVERSIZED], half[N_HALF];
        size_t len;
        uint8_t *calls = introspect_calls(N_CALLS, &len);
        uint8_t *chunk = calloc(1, MIB);

        /* Calls whose replies are never read. */
        for (int i = 0; i < N_CALLERS; i++) {
                callers[i] = raw_connect(h);
                send_upto(callers[i], calls, len, len);
        }
        /* Messages declaring 100 MiB, more than any legal one: refused on their header. */
        for (int i = 0; i < N_OVERSIZED; i++) {
                over[i] = raw_connect(h);
                size_t n = call_header(chunk, 1, VSS_BUS_INTERFACE, "InitializeForRestore", "ss", 100 * MIB);
                memset(chunk + n, 'x', MIB - n);
                send_upto(over[i], chunk, MIB, 24 * MIB);
        }
        /* Legal-size messages (16 MiB), three quarters sent: a uid's total is bounded. */
        for (int i = 0; i < N_HALF; i++) {
                half[i] = raw_connect(h);
                size_t n = call_header(chunk, 1, VSS_BUS_INTERFACE, "InitializeForRestore", "ss", 16 * MIB);
                memset(chunk + n, 'x', MIB - n);
                send_upto(half[i], chunk, MIB, 12 * MIB);
        }
        for (int i = 0; i < N_OVERSIZED; i++)
                CHECK(closed_by_vssd(over[i]));
        CHECK(write(f->ready[1], "x", 1) == 1);
        char c;
        (void) read(f->hold[0], &c, 1);
        free(calls);
        free(chunk);
}

static void test_flood_memory(void) {
#ifdef __SANITIZE_ADDRESS__
        /* ASan keeps freed memory in quarantine (256 MiB): every reply vssd made would count. */
        char asan[512];
        snprintf(asan, sizeof(asan), "%s:quarantine_size_mb=16", getenv("ASAN_OPTIONS") ?: "");
        setenv("ASAN_OPTIONS", asan, 1);
#endif
        Harness *h = harness_for_users(CONFIG_BASE "}");
        pid_t vssd = harness_vssd_pid(h);
        Flood f;
        CHECK(pipe2(f.ready, O_CLOEXEC) == 0 && pipe2(f.hold, O_CLOEXEC) == 0);
        uint64_t before = rss_of(vssd), most = before;

        pid_t bob = spawn_as(BOB, bob_flood, h, &f);
        close(f.ready[1]);
        close(f.hold[0]);
        /* Root's listing answers all along, and vssd's memory stays bounded: while bob floods,
         * then with all he sent waiting. */
        int answers = 0, after_flood = 0;
        /* Bounded in time, not in listings: bob's flood takes a second per connection vssd stops
         * reading (send_upto()), however quick the listings are. */
        uint64_t deadline = now_monotonic_usec() + 90 * USEC_PER_SEC;
        while (now_monotonic_usec() < deadline && after_flood < 10) {
                struct pollfd p = { .fd = f.ready[0], .events = POLLIN };
                if (after_flood > 0 || poll(&p, 1, 0) > 0)
                        after_flood++;
                uint64_t t0 = now_monotonic_usec();
                int st = harness_sh(h, NULL, "timeout 20 " VSSADMIN_DIR "/vssadmin list writers >/dev/null");
                if (st != 0)
                        fprintf(stderr, "   vssadmin list writers: status %d after %.3f s\n", st,
                                (double) (now_monotonic_usec() - t0) / USEC_PER_SEC);
                CHECK(st == 0);
                answers++;
                uint64_t rss = rss_of(vssd);
                most = rss > most ? rss : most;
        }
        CHECK(after_flood == 10);
        CHECK(most < RSS_BOUND);
        fprintf(stderr, "   vssd RSS %" PRIu64 " KiB before, at most %" PRIu64 " KiB during the flood (%d listings)\n",
                before / 1024, most / 1024, answers);

        close(f.hold[1]);
        wait_ok(bob, "bob's flood");
        close(f.ready[0]);
        /* Bob gone, vssd serves as before. */
        CHECK(harness_sh(h, NULL, VSSADMIN_DIR "/vssadmin list writers >/dev/null") == 0);
        harness_free(h);
}

/* trust-sigterm-non-reader */

static void bob_never_reads(Harness *h, void *userdata) {
        Flood *f = userdata;
        close(f->ready[0]);
        close(f->hold[1]);
        size_t len;
        uint8_t *calls = introspect_calls(4000, &len);
        int fd = raw_connect(h);
        send_upto(fd, calls, len, len);
        /* vssd's replies fill the socket: it has more for bob than the kernel holds. */
        int queued = 0;
        CHECK(ioctl(fd, FIONREAD, &queued) == 0 && queued > 64 * 1024);
        CHECK(write(f->ready[1], "x", 1) == 1);
        char c;
        (void) read(f->hold[0], &c, 1);
        free(calls);
}

/* An exec provider whose create command holds: vssd has the filesystem frozen meanwhile. */
#define HOLDING_CONFIG CONFIG_BASE ", \"providers\": [{\"type\": \"exec\", \"name\": \"hold\", " \
        "\"create\": \"touch $HARNESS_DIR/create-started; sleep 20\", \"delete\": \"true\"}]}"

static void test_sigterm_non_reader(void) {
        Harness *h = harness_for_users(HOLDING_CONFIG);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        harness_writer(h, "w1", NULL);
        Flood f;
        CHECK(pipe2(f.ready, O_CLOEXEC) == 0 && pipe2(f.hold, O_CLOEXEC) == 0);
        pid_t bob = spawn_as(BOB, bob_never_reads, h, &f);
        close(f.ready[1]);
        close(f.hold[0]);
        char c;
        CHECK(read(f.ready[0], &c, 1) == 1);

        /* A shadow copy in creation: the writer frozen, the filesystem frozen for the hold. */
        pid_t create = fork();
        if (create == 0)
                _exit(harness_sh(h, NULL, VSSADMIN_DIR "/vssadmin create shadow --for %s --provider hold >/dev/null 2>&1",
                                 mnt));
        char *out = NULL;
        CHECK(harness_sh(h, &out, "for i in $(seq 400); do [ -e %s/create-started ] && echo started && break; sleep 0.05; done",
                         harness_dir(h)) == 0);
        CHECK(out && strstr(out, "started"));
        free(out);

        int status = -1;
        uint64_t usec = harness_stop_vssd(h, &status);
        if (usec == UINT64_MAX)
                fprintf(stderr, "   vssd did not stop within 10 s of SIGTERM\n");
        else
                fprintf(stderr, "   vssd stopped %.3f s after SIGTERM\n", (double) usec / USEC_PER_SEC);
        CHECK(usec <= 2 * USEC_PER_SEC);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        /* Nothing stays frozen, and the set in creation was aborted: its requester hears so. */
        CHECK(harness_sh(h, NULL, "timeout 1 sh -c 'echo x > %s/after-stop && sync %s/after-stop'", mnt, mnt) == 0);
        int st = 0;
        CHECK(waitpid(create, &st, 0) == create && WIFEXITED(st) && WEXITSTATUS(st) == 1);

        close(f.hold[1]);
        wait_ok(bob, "bob, who never reads");
        close(f.ready[0]);
        harness_free(h);
}

/* trust-limit-keys */

static void bob_big_call(Harness *h, void *userdata) {
        uint8_t *msg = calloc(1, 128 * 1024);
        /* 100 KiB: legal by default, more than this vssd's max_message_bytes. */
        size_t n = call_header(msg, 1, VSS_BUS_INTERFACE, "InitializeForRestore", "ss", 100 * 1024);
        int fd = raw_connect(h);
        send_upto(fd, msg, n + 100 * 1024, n + 100 * 1024);
        CHECK(closed_by_vssd(fd));
        close(fd);
        free(msg);
        /* A header that comes in parts is waited for, then the call is answered (bob lacks the
         * right: an error reply, type 3). */
        uint8_t one[512];
        n = call_header(one, 7, VSS_BUS_INTERFACE, "ListProviders", NULL, 0);
        fd = raw_connect(h);
        CHECK(send(fd, one, 8, MSG_NOSIGNAL) == 8);
        int unread = 1;
        for (int i = 0; i < 2000 && unread > 0; i++) /* until vssd took the first part */
                if (ioctl(fd, SIOCOUTQ, &unread) < 0 || (unread > 0 && usleep(1000) < 0))
                        break;
        CHECK(unread == 0);
        CHECK(send(fd, one + 8, n - 8, MSG_NOSIGNAL) == (ssize_t) (n - 8));
        char got[4096];
        size_t have = 0;
        char *ok = NULL;
        for (int i = 0; i < 1000; i++) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10) > 0) {
                        ssize_t k = recv(fd, got + have, sizeof(got) - have, MSG_DONTWAIT);
                        if (k <= 0)
                                break;
                        have += (size_t) k;
                }
                ok = memmem(got, have, "\r\n", 2);
                if (ok && (size_t) (ok + 2 - got) + 2 <= have)
                        break;
        }
        CHECK(ok && (size_t) (ok + 2 - got) + 2 <= have && ok[2] == 'l' && ok[3] == 3);
        close(fd);

        /* Calls of the allowed size are answered as before. */
        sd_bus *bus = connect_or_die(h);
        CHECK_HR(call(bus, "ListProviders", NULL), VSS_E_ACCESSDENIED);
        sd_bus_flush_close_unref(bus);
}

static void test_limit_keys(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"max_message_bytes\": 65536, \"max_input_bytes_per_uid\": 131072, "
                                       "\"max_queued_messages\": 16}");
        run_as(BOB, bob_big_call, h, NULL, "bob's big call");
        CHECK(harness_sh(h, NULL, VSSADMIN_DIR "/vssadmin list writers >/dev/null") == 0);

        /* A uid's total below its largest message would stall it: refused at start. */
        char *out = NULL;
        int st = harness_sh(h, &out, "printf '{\"max_message_bytes\": 65536, \"max_input_bytes_per_uid\": 4096}' > %s/bad.json; "
                            VSSD_PATH " --socket %s/bad.sock --state-dir %s/bad --config %s/bad.json 2>&1",
                            harness_dir(h), harness_dir(h), harness_dir(h), harness_dir(h));
        CHECK(st == 2);
        CHECK(out && strstr(out, "max_input_bytes_per_uid: must be at least max_message_bytes"));
        free(out);
        harness_free(h);
}

/* trust-large-message */

/* Reads what vssd sends until its first message (after the SASL lines) has begun: whether that
 * is an error reply (type 3). */
static bool error_reply_read(int fd) {
        char got[4096];
        size_t have = 0;
        for (int i = 0; i < 2000; i++) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 10) > 0) {
                        ssize_t k = recv(fd, got + have, sizeof(got) - have, MSG_DONTWAIT);
                        if (k <= 0)
                                return false;
                        have += (size_t) k;
                }
                char *ok = memmem(got, have, "\r\n", 2);
                if (ok && (size_t) (ok + 2 - got) + 2 <= have)
                        return ok[2] == 'l' && ok[3] == 3;
        }
        return false;
}

/* A legal call of 6 MiB passes vssd's relay whole: more than its pipe holds (1 MiB) and than it
 * passes on per wakeup (4 MiB). Sent at once (a send buffer that takes it all), so most of it
 * waits in the socket with no new edge to come: the socket is read on all the same. Root, whom
 * no size limit holds back, and not the relay either; its session id is no session: an error. */
static void test_large_message(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        uint32_t len = 6 * MIB;
        uint32_t body_len = 4 + len + 1 + 3 + 4 + 1; /* "ss": the long string, padding, "" */
        uint8_t *msg = calloc(1, 512 + body_len);
        size_t n = call_header(msg, 1, VSS_BUS_INTERFACE, "InitializeForRestore", "ss", body_len);
        memcpy(msg + n, &len, 4);
        memset(msg + n + 4, 'x', len);
        int fd = raw_connect(h);
        int size = 16 * MIB;
        CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) == 0);
        CHECK(send(fd, msg, n + body_len, MSG_NOSIGNAL) == (ssize_t) (n + body_len));
        CHECK(error_reply_read(fd));
        close(fd);
        free(msg);
        CHECK(harness_sh(h, NULL, VSSADMIN_DIR "/vssadmin list writers >/dev/null") == 0);
        harness_free(h);
}

/* trust-sasl-desync: bob ends his SASL lines with a BEGIN the bus does not take ("\r\n", then
 * BEGIN before any AUTH), then sends one message whose bytes are, to the bus still reading SASL
 * lines, an AUTH, a BEGIN and the header of a 120 MiB message, and then its body as messages of 1
 * MiB each. Had vssd gone on reading after a BEGIN the bus did not take, it would count 1 MiB
 * messages while the bus holds all 120 MiB. It reads nothing more: bob's sends stop at what the
 * socket holds, vssd's memory stays bounded, and root is served. */
static void bob_desync(Harness *h, void *userdata) {
        size_t *sent = userdata;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", harness_socket(h));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        CHECK(send(fd, "\0\r\n", 3, MSG_NOSIGNAL) == 3);
        CHECK(send(fd, "BEGIN\r\n", 7, MSG_NOSIGNAL) == 7);
        /* The message the relay would see: a fixed header, its "fields" the bytes below, no body. */
        uint8_t *chunk = calloc(1, MIB);
        char uid[32], lines[256];
        int n = snprintf(uid, sizeof(uid), "%u", (unsigned) getuid());
        char *p = lines + sprintf(lines, "\r\nAUTH EXTERNAL ");
        for (int i = 0; i < n; i++)
                p += sprintf(p, "%02x", (unsigned char) uid[i]);
        p += sprintf(p, "\r\nBEGIN\r\n");
        size_t at = 16;
        memcpy(chunk + at, lines, (size_t) (p - lines));
        at += (size_t) (p - lines);
        size_t big = call_header(chunk + at, 2, VSS_BUS_INTERFACE, "InitializeForRestore", "ss", 120 * MIB);
        at += big;
        uint32_t fields = (uint32_t) (((at + 7) & ~(size_t) 7) - 16), zero = 0, one = 1;
        chunk[0] = 'l', chunk[1] = 1, chunk[2] = 0, chunk[3] = 1;
        memcpy(chunk + 4, &zero, 4);
        memcpy(chunk + 8, &one, 4);
        memcpy(chunk + 12, &fields, 4);
        send_upto(fd, chunk, 16 + fields, 16 + fields);
        /* The body, as the relay would count it: messages of 1 MiB. */
        size_t m = call_header(chunk, 3, VSS_BUS_INTERFACE, "InitializeForRestore", "ss", 0);
        m = call_header(chunk, 3, VSS_BUS_INTERFACE, "InitializeForRestore", "ss", (uint32_t) (MIB - m));
        memset(chunk + m, 'x', MIB - m);
        *sent = send_upto(fd, chunk, MIB, 120 * MIB);
        free(chunk);
        fprintf(stderr, "   vssd took %zu KiB of bob's 120 MiB\n", *sent / 1024);
        CHECK(*sent < 16 * MIB);
        close(fd);
}

static void test_sasl_desync(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        pid_t vssd = harness_vssd_pid(h);
        size_t sent = 0;
        run_as(BOB, bob_desync, h, &sent, "bob's desync");
        CHECK(rss_of(vssd) < RSS_BOUND);
        CHECK(harness_sh(h, NULL, VSSADMIN_DIR "/vssadmin list writers >/dev/null") == 0);
        harness_free(h);
}

static const TestCase cases[] = {
        { "trust-flood-memory", test_flood_memory },
        { "trust-sigterm-non-reader", test_sigterm_non_reader },
        { "trust-limit-keys", test_limit_keys },
        { "trust-large-message", test_large_message },
        { "trust-sasl-desync", test_sasl_desync },
        {},
};

int main(int argc, char *argv[]) {
        if (geteuid() != 0) {
                fprintf(stderr, "needs root (real users, vssd as root)\n");
                return 77;
        }
        ensure_users();
        signal(SIGPIPE, SIG_IGN);
        return test_main(argc, argv, cases);
}
