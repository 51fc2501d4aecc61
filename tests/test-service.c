/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vssd as a system service (issue 15): socket activation and sd_notify, the directories it makes
 * when started by hand, SIGHUP's reload (clients kept, rights changed for the next call, a bad
 * file refused), the journal's priority prefixes, and generic D-Bus tools (dbus-send --peer,
 * busctl --address) on its socket. Needs root (test users, the state directory).
 */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/client.h"
#include "tests/users.h"

/* A datagram socket at path for NOTIFY_SOCKET. */
static int notify_socket(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        unlink(path);
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                perror("notify socket");
                exit(99);
        }
        return fd;
}

/* Waits up to 10 s for a notification containing what. */
static bool notified(int fd, const char *what) {
        char buf[512];
        struct pollfd p = { .fd = fd, .events = POLLIN };
        while (poll(&p, 1, 10000) > 0) {
                ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
                if (n <= 0)
                        return false;
                buf[n] = 0;
                if (strstr(buf, what))
                        return true;
        }
        return false;
}

/* vssd with argv, stderr to log; listen_fd (or -1) passed as fd 3 with LISTEN_FDS/LISTEN_PID;
 * journal: JOURNAL_STREAM set to the log file's dev:ino. */
static pid_t spawn_vssd(const char *const *argv, int listen_fd, const char *notify, const char *log, bool journal) {
        pid_t pid = fork();
        if (pid < 0)
                exit(99);
        if (pid > 0)
                return pid;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
        }
        if (journal) {
                struct stat st;
                char env[64];
                fstat(2, &st);
                snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
                setenv("JOURNAL_STREAM", env, 1);
        }
        if (listen_fd >= 0) {
                char pidstr[32];
                /* dup2() onto itself would keep FD_CLOEXEC */
                if ((listen_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(listen_fd, 3)) < 0)
                        _exit(98);
                snprintf(pidstr, sizeof(pidstr), "%d", (int) getpid());
                setenv("LISTEN_FDS", "1", 1);
                setenv("LISTEN_PID", pidstr, 1);
        }
        setenv("NOTIFY_SOCKET", notify, 1);
        unsetenv("VSS_SOCKET");
        sigset_t mask;
        sigemptyset(&mask);
        sigprocmask(SIG_SETMASK, &mask, NULL);
        execv(VSSD_PATH, (char *const *) argv);
        _exit(127);
}

static int stop(pid_t pid) {
        int status = -1;
        kill(pid, SIGTERM);
        waitpid(pid, &status, 0);
        return status;
}

/* service-socket-activation: a listening socket passed as fd 3 is used (not vssd's own path),
 * READY=1 once it accepts, STOPPING=1 on SIGTERM, and the socket stays for the next start. */
static void test_socket_activation(void) {
        Harness *h = harness_new(NULL);
        char sock[512], own[512], notify[512], log[512], state[512];
        snprintf(sock, sizeof(sock), "%s/activated.sock", harness_dir(h));
        snprintf(own, sizeof(own), "%s/not-this.sock", harness_dir(h));
        snprintf(notify, sizeof(notify), "%s/notify2", harness_dir(h));
        snprintf(log, sizeof(log), "%s/activated.log", harness_dir(h));
        snprintf(state, sizeof(state), "%s/state2", harness_dir(h));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(lfd, 16) == 0);
        int nfd = notify_socket(notify);
        const char *argv[] = { "vssd", "--socket", own, "--state-dir", state, NULL };
        pid_t pid = spawn_vssd(argv, lfd, notify, log, false);
        close(lfd);
        CHECK(notified(nfd, "READY=1"));
        char *out = NULL;
        CHECK(harness_sh(h, &out, "dbus-send --peer=unix:path=%s --print-reply --dest=org.openvss.vssd "
                         "/org/openvss/vssd org.openvss.Coordinator1.ListWriters", sock) == 0);
        CHECK(out && strstr(out, "method return") != NULL);
        free(out);
        CHECK(harness_sh(h, NULL, "VSS_SOCKET=%s %s/vssadmin list writers >/dev/null", sock, VSSADMIN_DIR) == 0);
        CHECK(access(own, F_OK) < 0); /* vssd bound nothing of its own */
        CHECK(harness_sh(h, NULL, "grep -q 'listening on %s (socket activation)' %s", sock, log) == 0);
        int status = stop(pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(notified(nfd, "STOPPING=1"));
        CHECK(access(sock, F_OK) == 0); /* systemd's socket is not vssd's to remove */
        close(nfd);
        harness_free(h);
}

/* service-makes-dirs: started by hand, vssd makes the missing directories of its socket path
 * (0755) and of its state directory (0700); with JOURNAL_STREAM naming its stderr, its lines
 * carry a priority prefix, and without it they are as before. */
static void test_makes_dirs(void) {
        Harness *h = harness_new(NULL);
        char sock[512], dir[512], notify[512], log[512], state[512];
        snprintf(sock, sizeof(sock), "%s/run/openvss/vssd.sock", harness_dir(h));
        snprintf(notify, sizeof(notify), "%s/notify2", harness_dir(h));
        snprintf(log, sizeof(log), "%s/journal.log", harness_dir(h));
        snprintf(state, sizeof(state), "%s/lib/openvss/state", harness_dir(h));
        int nfd = notify_socket(notify);
        const char *argv[] = { "vssd", "--socket", sock, "--state-dir", state, NULL };
        pid_t pid = spawn_vssd(argv, -1, notify, log, true);
        CHECK(notified(nfd, "READY=1"));
        struct stat st;
        snprintf(dir, sizeof(dir), "%s/run", harness_dir(h));
        CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0755);
        snprintf(dir, sizeof(dir), "%s/run/openvss", harness_dir(h));
        CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0755);
        snprintf(dir, sizeof(dir), "%s/lib", harness_dir(h));
        CHECK(stat(dir, &st) == 0 && (st.st_mode & 07777) == 0700);
        CHECK(stat(state, &st) == 0 && (st.st_mode & 07777) == 0700);
        CHECK(harness_sh(h, NULL, "VSS_SOCKET=%s %s/vssadmin list writers >/dev/null", sock, VSSADMIN_DIR) == 0);
        CHECK(stop(pid) == 0);
        CHECK(harness_sh(h, NULL, "grep -q '^<6>vssd: listening on %s, state in' %s", sock, log) == 0);
        /* The harness's own vssd logs to a file that is not the journal: no prefix. */
        CHECK(harness_sh(h, NULL, "grep -q '^vssd: listening on' %s/vssd.log", harness_dir(h)) == 0);
        CHECK(harness_sh(h, NULL, "grep -q '^<' %s/vssd.log", harness_dir(h)) != 0);
        close(nfd);
        harness_free(h);
}

/* service-reload */
typedef struct Steps {
        int to_parent, from_parent;
} Steps;

static void step_done(Steps *s) {
        char c = 1;
        CHECK(write(s->to_parent, &c, 1) == 1);
}

static bool step_wait(int fd) {
        char c;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, 30000) > 0 && read(fd, &c, 1) == 1;
}

/* Bob on one connection throughout: listed, still listed after a bad file, refused after the
 * right is taken away. */
static void bob_lists(Harness *h, void *userdata) {
        Steps *s = userdata;
        sd_bus *bus = connect_or_die(h);
        CHECK(count_listed(bus, "ListWriters", WRITER_SIG) >= 0);
        step_done(s);
        CHECK(step_wait(s->from_parent));
        CHECK(count_listed(bus, "ListWriters", WRITER_SIG) >= 0);
        step_done(s);
        CHECK(step_wait(s->from_parent));
        sd_bus_message *reply = NULL;
        CHECK_HR(call_reply(bus, &reply, "ListWriters"), VSS_E_ACCESSDENIED);
        CHECK(strstr(last_msg, "lacks the 'list' right") != NULL);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
}

/* Rewrites the harness's config file with rights set to the JSON text rights (NULL: none). */
static void write_config(Harness *h, const char *rights, const char *raw) {
        char path[512];
        snprintf(path, sizeof(path), "%s/vssd.json", harness_dir(h));
        char orig[600];
        snprintf(orig, sizeof(orig), "%s.orig", path);
        json_object *o = raw ? NULL : json_object_from_file(orig); /* the harness's config, hold_exclude and all */
        FILE *f = fopen(path, "we");
        CHECK(f != NULL && (raw || o));
        if (!f || (!raw && !o))
                return;
        if (raw)
                fputs(raw, f);
        else {
                json_object_object_del(o, "rights");
                if (rights)
                        json_object_object_add(o, "rights", json_tokener_parse(rights));
                fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), f);
                json_object_put(o);
        }
        fclose(f);
}

static bool log_has(Harness *h, const char *text) {
        for (int i = 0; i < 100; i++) {
                if (harness_sh(h, NULL, "grep -qF \"%s\" %s/vssd.log", text, harness_dir(h)) == 0)
                        return true;
                usleep(100000);
        }
        return false;
}

static void reload(Harness *h, const char *expect) {
        harness_sh(h, NULL, ": > %s/vssd.log", harness_dir(h));
        kill(harness_vssd_pid(h), SIGHUP);
        CHECK(log_has(h, expect));
}

static void test_reload(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"rights\": {\"list\": [\"" BOB "\"]}}");
        harness_sh(h, NULL, "cp %s/vssd.json %s/vssd.json.orig", harness_dir(h), harness_dir(h));
        harness_writer(h, "w1", NULL);
        vss_backup *b = harness_session(h);
        int up[2], down[2];
        CHECK(pipe(up) == 0 && pipe(down) == 0);
        Steps steps = { .to_parent = up[1], .from_parent = down[0] };
        pid_t bob = spawn_as(BOB, bob_lists, h, &steps);
        CHECK(step_wait(up[0]));

        /* A file that does not parse: refused, the old config kept. */
        write_config(h, NULL, "{\"rights\": ");
        reload(h, "cannot reload the configuration from");
        CHECK(write(down[1], "g", 1) == 1);
        CHECK(step_wait(up[0]));

        /* Bob's right taken away: his next call on the same connection is refused, and logged. */
        write_config(h, NULL, NULL);
        reload(h, "reloaded the configuration from");
        CHECK(write(down[1], "g", 1) == 1);
        wait_ok(bob, "bob's calls across reloads");
        char text[128];
        snprintf(text, sizeof(text), "refused ListWriters to uid %u (pid ", (unsigned) uid_of(BOB));
        CHECK(log_has(h, text));

        /* The writer and the requester connected before the reloads go on to a snapshot. */
        char *data = harness_make_data(h, "data");
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_writer_status st;
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        const vss_writer_status *ws = status_of(b, "w1", &st);
        CHECK(ws && ws->failure == 0);
        char *events = harness_events(h, "w1");
        CHECK(events && strstr(events, "freeze") && strstr(events, "thaw") && strstr(events, "backup-complete"));
        free(events);
        vss_backup_free(b);
        close(up[0]), close(up[1]), close(down[0]), close(down[1]);
        harness_free(h);
}

/* service-reload-providers: providers change on reload, except while a session's snapshot set
 * uses one of them: then they stay until it is done. */
static void test_reload_providers(void) {
        Harness *h = harness_new("{\"providers\": [{\"type\": \"exec\", \"name\": \"snapa\", \"create\": \"true\", "
                                 "\"delete\": \"true\"}]}");
        char *out = NULL;
        /* An exec provider holds its filesystem: not the one of vssd's state, nor one hold_exclude
         * lists (the machine's own), so one of the test's (the set never gets as far as a freeze). */
        char *data = harness_loop_fs(h, "mkfs.ext4 -q", "16M");
        char orig[600], path[600];
        snprintf(path, sizeof(path), "%s/vssd.json", harness_dir(h));
        snprintf(orig, sizeof(orig), "%s.orig", path);
        harness_sh(h, NULL, "cp %s %s", path, orig);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, "snapa", NULL), 0);
        /* snapa renamed snapb: refused while the set holds snapa. */
        harness_sh(h, NULL, "sed 's/snapa/snapb/' %s > %s", orig, path);
        reload(h, "the providers stay as they were: a snapshot set in flight uses provider 'snapa'");
        CHECK(harness_sh(h, &out, "vssadmin list providers") == 0);
        CHECK(out && strstr(out, "snapa") && !strstr(out, "snapb"));
        free(out);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        vss_backup_free(b);
        /* Once the session is gone (its release may take a moment), the next reload changes them. */
        bool changed = false;
        for (int i = 0; i < 20 && !changed; i++) {
                reload(h, "reloaded the configuration from");
                out = NULL;
                CHECK(harness_sh(h, &out, "vssadmin list providers") == 0);
                changed = out && strstr(out, "snapb") && !strstr(out, "snapa");
                free(out);
                if (!changed)
                        usleep(200000);
        }
        CHECK(changed);
        harness_free(h);
}

/* Appends a header field (code, signature char, string value) to buf at *n, 8-aligned first. */
static void header_field(uint8_t *buf, size_t *n, uint8_t code, char sig, const char *value) {
        uint32_t len = (uint32_t) strlen(value);
        while (*n % 8)
                buf[(*n)++] = 0;
        buf[(*n)++] = code, buf[(*n)++] = 1, buf[(*n)++] = (uint8_t) sig, buf[(*n)++] = 0;
        memcpy(buf + *n, &len, 4); /* little endian, as the header says */
        *n += 4;
        memcpy(buf + *n, value, len + 1);
        *n += len + 1;
}

/* The whole authentication and a ListWriters call in one write, as a client that does not wait
 * for OK may send them: the call must still be answered. */
static bool answered_in_one_write(const char *socket_path) {
        uint8_t msg[512] = { 'l', 1, 0, 1 };
        size_t n = 16;
        header_field(msg, &n, 1, 'o', "/org/openvss/vssd");
        header_field(msg, &n, 2, 's', "org.openvss.Coordinator1");
        header_field(msg, &n, 3, 's', "ListWriters");
        uint32_t body = 0, serial = 1, fields = (uint32_t) (n - 16);
        while (n % 8)
                msg[n++] = 0;
        memcpy(msg + 4, &body, 4), memcpy(msg + 8, &serial, 4), memcpy(msg + 12, &fields, 4);
        char out[1024];
        int k = snprintf(out, sizeof(out), "%cAUTH EXTERNAL 30\r\nBEGIN\r\n", 0); /* "0": uid 0 in hex */
        memcpy(out + k, msg, n);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool ok = false;
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && write(fd, out, k + n) == (ssize_t) (k + n)) {
                char in[4096];
                size_t got = 0;
                struct pollfd p = { .fd = fd, .events = POLLIN };
                while (!ok && got < sizeof(in) && poll(&p, 1, 10000) > 0) {
                        ssize_t r = read(fd, in + got, sizeof(in) - got);
                        if (r <= 0)
                                break;
                        got += (size_t) r;
                        char *nl = memmem(in, got, "\r\n", 2); /* after "OK GUID\r\n", the reply */
                        ok = nl && (size_t) (nl + 2 - in) + 2 <= got && nl[2] == 'l' && nl[3] == 2;
                }
        }
        if (fd >= 0)
                close(fd);
        return ok;
}

/* service-generic-tools: dbus-send --peer always gets its reply (the call may come in the same
 * read as the end of the authentication); busctl --address= (Hello first) calls, pings, and
 * gets the machine id. */
static void test_generic_tools(void) {
        Harness *h = harness_new(NULL);
        char *out = NULL;
        CHECK(harness_sh(h, &out, "n=0; for i in $(seq 1 200); do "
                         "timeout 10 dbus-send --peer=unix:path=%s --print-reply --dest=org.openvss.vssd "
                         "/org/openvss/vssd org.openvss.Coordinator1.ListWriters >/dev/null 2>&1 && n=$((n+1)); "
                         "done; echo $n", harness_socket(h)) == 0);
        CHECK(out && atoi(out) == 200);
        if (out && atoi(out) != 200)
                fprintf(stderr, "   dbus-send replied %d times of 200\n", atoi(out));
        free(out);
        int answered = 0;
        for (int i = 0; i < 50; i++)
                answered += answered_in_one_write(harness_socket(h));
        CHECK(answered == 50);
        char busctl[512];
        snprintf(busctl, sizeof(busctl), "timeout 10 busctl --address=unix:path=%s call org.openvss.vssd /org/openvss/vssd",
                 harness_socket(h));
        out = NULL;
        CHECK(harness_sh(h, &out, "%s org.openvss.Coordinator1 ListWriters", busctl) == 0);
        CHECK(out && strstr(out, "a(sssuiissst)") != NULL);
        free(out);
        CHECK(harness_sh(h, NULL, "%s org.freedesktop.DBus.Peer Ping", busctl) == 0);
        out = NULL;
        CHECK(harness_sh(h, &out, "%s org.freedesktop.DBus.Peer GetMachineId", busctl) == 0);
        CHECK(out && strncmp(out, "s \"", 3) == 0);
        free(out);
        out = NULL;
        CHECK(harness_sh(h, &out, "timeout 10 busctl --address=unix:path=%s call org.freedesktop.DBus "
                         "/org/freedesktop/DBus org.freedesktop.DBus Hello", harness_socket(h)) == 0);
        CHECK(out && strncmp(out, "s \":1.", 6) == 0);
        free(out);
        harness_free(h);
}

static const TestCase cases[] = {
        { "service-socket-activation", test_socket_activation },
        { "service-makes-dirs", test_makes_dirs },
        { "service-reload", test_reload },
        { "service-reload-providers", test_reload_providers },
        { "service-generic-tools", test_generic_tools },
        {},
};

int main(int argc, char *argv[]) {
        if (geteuid() != 0) {
                fprintf(stderr, "test-service: needs root (test users, vssd's state)\n");
                return 77;
        }
        return test_main(argc, argv, cases);
}
