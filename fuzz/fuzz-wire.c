/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: vssd's wire arguments. Every requester and writer talks to vssd over D-Bus on its
 * socket, so each method's arguments (and the method names, signatures and call orders) are
 * untrusted input. This target runs the real vssd (VSSD_PATH at build time, or $FUZZ_VSSD) once,
 * on a private socket, state directory and short-timeout config in a sandbox directory, and
 * replays each input as D-Bus method calls from a fresh connection. After each input the
 * connection is closed (a requester or writer vanishing mid-sequence is part of the input) and
 * vssd must still be alive and answer ListProviders on a second connection. At the end vssd is
 * stopped with SIGTERM and must exit 0 (in the ASan build a leak or memory error in vssd makes it
 * fail). vssd is another process, so libFuzzer's coverage does not guide the mutations here: the
 * fuzzing is blind, on top of meaningful seeds and the dictionary.
 *
 * Input: text, one call per line, "#" starts a comment line:
 *
 *     METHOD [ARG...]        ARG is TYPE:VALUE, TYPE one D-Bus basic type of s o g b y n q i u x t d,
 *                            or v:TYPE:VALUE (a variant), or v:(TYPES):V1,V2,... (a variant holding
 *                            a struct of basic values); VALUE is %XX-decoded (%20 for a space).
 *     $S $T $H               the current session id, snapshot set id, last shadow id (as "s"),
 *                            taken from the replies of CreateSession, StartSnapshotSet and
 *                            AddToSnapshotSet.
 *     RECONNECT              close the connection (vssd cleans up after it) and open a new one.
 *
 * FUZZ_WIRE_VERBOSE=1 prints every call and its result.
 *
 * Any string argument that starts with "/" is moved into the sandbox ("/data" is
 * SANDBOX/root/data, a small tree), and a call with ".." in such a path is skipped, so no input
 * makes the file provider copy, or ExposeShadow mount over, anything outside it. Calls sd-bus
 * refuses to build (a bad method name, invalid UTF-8) are skipped; calls go to
 * org.openvss.Coordinator1 at /org/openvss/vssd; at most MAX_CALLS per input.
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "fuzz/fuzz.h"
#include "lib/common.h"
#include "tests/vssd-process.h"

#define MAX_CALLS 64
#define MAX_ARGS 16
#define CALL_TIMEOUT_USEC (3ULL * 1000000ULL)
#define ALIVE_TIMEOUT_USEC (20ULL * 1000000ULL)

#ifndef VSSD_PATH
#define VSSD_PATH "vssd"
#endif

/* Short deadlines: the fuzz connection never answers events when it subscribed as a writer. */
static const char config_json[] =
        "{ \"timeouts\": { \"identify_ms\": 300, \"prepare_backup_ms\": 300, \"prepare_snapshot_ms\": 300,"
        " \"freeze_window_ms\": 300, \"post_snapshot_ms\": 300, \"backup_complete_ms\": 300,"
        " \"backup_shutdown_ms\": 300, \"restore_ms\": 300, \"status_ms\": 300, \"max_freeze_window_ms\": 600 },"
        " \"hold_window_ms\": 1000, \"max_shadows_per_volume\": 16,"
        /* Whatever path the input names, the machine's filesystems are never held. */
        " \"hold_filesystems\": [] }\n";

static char sandbox[256], root_dir[300], socket_path[300], log_path[300];
static pid_t vssd_pid = -1;
static sd_bus *watch; /* the liveness connection */
static unsigned long n_inputs;
static bool verbose; /* $FUZZ_WIRE_VERBOSE=1: every call and its result on stderr */

static void dump_log(void) {
        vssd_log_tail(log_path, 40);
}

static void write_file(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        fuzz_assert(f, "%s: %m", path);
        fputs(text, f);
        fuzz_assert(fclose(f) == 0, "%s: %m", path);
}

static int connect_vssd(sd_bus **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        sd_bus *bus = NULL;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        int r = sd_bus_new(&bus);
        if (r < 0) {
                close(fd);
                return r;
        }
        r = sd_bus_set_fd(bus, fd, fd);
        if (r < 0)
                close(fd);
        else
                r = sd_bus_start(bus);
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

/* ---- vssd's life ---- */

static int chmod_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_D)
                (void) chmod(path, 0700); /* shadow copies are read-only */
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

/* Exposures a input made and vssd did not take back: unmount them before removing the sandbox. */
static void unmount_sandbox(void) {
        for (int pass = 0; pass < 8; pass++) {
                FILE *f = fopen("/proc/self/mountinfo", "re");
                char line[8192], mnt[4096];
                bool any = false;
                if (!f)
                        return;
                while (fgets(line, sizeof(line), f))
                        if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
                            strncmp(mnt, sandbox, strlen(sandbox)) == 0 && mnt[strlen(sandbox)] == '/')
                                any = umount2(mnt, MNT_DETACH) == 0 || any;
                fclose(f);
                if (!any)
                        return;
        }
}

static void teardown(void) {
        if (!sandbox[0])
                return;
        watch = sd_bus_flush_close_unref(watch);
        if (vssd_pid > 0) {
                int st = 0;
                pid_t r = 0;
                kill(vssd_pid, SIGTERM);
                for (int i = 0; i < 3000 && (r = waitpid(vssd_pid, &st, WNOHANG)) == 0; i++)
                        usleep(10000);
                if (r == 0) {
                        fprintf(stderr, "fuzz-wire: vssd did not stop on SIGTERM\n");
                        kill(vssd_pid, SIGKILL);
                        waitpid(vssd_pid, &st, 0);
                        dump_log();
                        _exit(1);
                }
                vssd_pid = -1;
                if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                        fprintf(stderr, "fuzz-wire: vssd ended badly on SIGTERM (%s %d) after %lu inputs\n",
                                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                                n_inputs);
                        dump_log();
                        _exit(1);
                }
        }
        unmount_sandbox();
        nftw(sandbox, chmod_entry, 16, FTW_PHYS | FTW_MOUNT);
        nftw(sandbox, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        sandbox[0] = 0;
}

static void setup(void) {
        char path[400], notify[300], config[300];
        const char *vssd = getenv("FUZZ_VSSD");
        if (!vssd || !*vssd)
                vssd = VSSD_PATH;

        signal(SIGPIPE, SIG_IGN);
        verbose = getenv("FUZZ_WIRE_VERBOSE") && streq(getenv("FUZZ_WIRE_VERBOSE"), "1");
        snprintf(sandbox, sizeof(sandbox), "%s/openvss-fuzz-wire-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        fuzz_assert(mkdtemp(sandbox), "mkdtemp: %m");
        atexit(teardown);
        snprintf(root_dir, sizeof(root_dir), "%s/root", sandbox);
        snprintf(socket_path, sizeof(socket_path), "%s/vssd.sock", sandbox);
        snprintf(log_path, sizeof(log_path), "%s/vssd.log", sandbox);
        snprintf(notify, sizeof(notify), "%s/notify", sandbox);
        snprintf(config, sizeof(config), "%s/vssd.json", sandbox);
        /* root/data: a small tree to shadow; root/mnt: somewhere to expose. */
        static const char *const dirs[] = { "root", "root/data", "root/data/sub", "root/mnt", "state" };
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", sandbox, dirs[i]);
                fuzz_assert(mkdir(path, 0755) == 0, "mkdir %s: %m", path);
        }
        snprintf(path, sizeof(path), "%s/data/file", root_dir);
        write_file(path, "some data\n");
        snprintf(path, sizeof(path), "%s/data/sub/other", root_dir);
        write_file(path, "more data\n");
        write_file(config, config_json);

        char state[300];
        snprintf(state, sizeof(state), "%s/state", sandbox);
        const char *const argv[] = { "vssd", "--socket", socket_path, "--state-dir", state, "--config", config, NULL };
        vssd_pid = vssd_start(vssd, argv, log_path, notify, 10000);
        fuzz_assert(vssd_pid > 0, "vssd (%s) did not start", vssd);
        int r = connect_vssd(&watch);
        fuzz_assert(r >= 0, "connect %s: %s", socket_path, strerror(-r));
}

/* vssd is alive and answers. */
static void check_alive(const char *after) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int st;
        if (waitpid(vssd_pid, &st, WNOHANG) == vssd_pid) {
                vssd_pid = -1;
                dump_log();
                fuzz_assert(false, "vssd died (%s %d) %s", WIFEXITED(st) ? "status" : "signal",
                            WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), after);
        }
        sd_bus_message *m = NULL;
        int r = sd_bus_message_new_method_call(watch, &m, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ListProviders");
        fuzz_assert(r >= 0, "new call: %s", strerror(-r));
        r = sd_bus_call(watch, m, ALIVE_TIMEOUT_USEC, &e, &reply);
        if (r < 0)
                dump_log();
        fuzz_assert(r >= 0, "vssd does not answer ListProviders %s: %s", after, e.message ?: strerror(-r));
        sd_bus_message_unref(m);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
}

/* ---- one input ---- */

typedef struct Ids {
        char session[64], set[64], shadow[64];
} Ids;

static int hexval(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* %XX-decodes in place; returns the length (the value may hold NULs). */
static size_t decode(char *s) {
        size_t o = 0;
        for (size_t i = 0; s[i]; i++) {
                int h, l;
                if (s[i] == '%' && (h = hexval(s[i + 1])) >= 0 && (l = hexval(s[i + 2])) >= 0) {
                        s[o++] = (char) (h * 16 + l);
                        i += 2;
                } else
                        s[o++] = s[i];
        }
        s[o] = 0;
        return o;
}

/* Appends one basic value; a string starting with "/" goes into the sandbox. -EPERM: skip the
 * call (a path escaping the sandbox), other negative: sd-bus refused the value. */
static int append_basic(sd_bus_message *m, char type, char *value) {
        char *end;
        switch (type) {
        case 's':
        case 'o':
        case 'g': {
                size_t n = decode(value);
                if (strlen(value) != n)
                        return -EINVAL; /* an embedded NUL: sd-bus would cut it */
                if (type == 's' && value[0] == '/') {
                        char *p;
                        if (strstr(value, ".."))
                                return -EPERM;
                        if (asprintf(&p, "%s%s", root_dir, value) < 0)
                                abort();
                        int r = sd_bus_message_append_basic(m, type, p);
                        free(p);
                        return r;
                }
                return sd_bus_message_append_basic(m, type, value);
        }
        case 'b': {
                int b = streq(value, "true") || strtol(value, NULL, 0) != 0;
                return sd_bus_message_append_basic(m, type, &b);
        }
        case 'd': {
                double d = strtod(value, NULL);
                return sd_bus_message_append_basic(m, type, &d);
        }
        case 'y':
        case 'n':
        case 'q':
        case 'i':
        case 'u':
        case 'x':
        case 't': {
                /* Two's complement: "-1" as u is 4294967295. */
                uint64_t v = value[0] == '-' ? (uint64_t) strtoll(value, &end, 0) : strtoull(value, &end, 0);
                uint8_t y = (uint8_t) v;
                uint16_t q = (uint16_t) v;
                uint32_t u = (uint32_t) v;
                const void *p = type == 'y' ? (const void *) &y : type == 'n' || type == 'q' ? (const void *) &q :
                                type == 'i' || type == 'u' ? (const void *) &u : (const void *) &v;
                return sd_bus_message_append_basic(m, type, p);
        }
        default:
                return -EINVAL;
        }
}

static int append_arg(sd_bus_message *m, char *arg, const Ids *ids) {
        char buf[80];
        if (arg[0] == '$' && arg[1] && strchr("STH", arg[1]) && arg[2] == 0) {
                snprintf(buf, sizeof(buf), "%s", arg[1] == 'S' ? ids->session : arg[1] == 'T' ? ids->set : ids->shadow);
                return sd_bus_message_append_basic(m, 's', buf);
        }
        if (arg[0] == 'v' && arg[1] == ':' && arg[2] == '(') {
                /* v:(TYPES):V1,V2,...: a variant holding a struct of basic values */
                char *close = strchr(arg, ')'), *save = NULL;
                if (!close || close[1] != ':' || close - arg - 3 >= 16)
                        return -EINVAL;
                char contents[20], types[16];
                snprintf(types, sizeof(types), "%.*s", (int) (close - arg - 3), arg + 3);
                snprintf(contents, sizeof(contents), "(%s)", types);
                int r = sd_bus_message_open_container(m, 'v', contents);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'r', types);
                char *v = strtok_r(close + 2, ",", &save);
                for (size_t i = 0; r >= 0 && types[i]; i++, v = strtok_r(NULL, ",", &save))
                        r = append_basic(m, types[i], v ?: (char[]) { 0 });
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        if (arg[0] == 'v' && arg[1] == ':' && arg[2] && arg[3] == ':') {
                char contents[2] = { arg[2], 0 };
                int r = sd_bus_message_open_container(m, 'v', contents);
                if (r < 0)
                        return r;
                r = append_basic(m, arg[2], arg + 4);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        if (!arg[0] || arg[1] != ':')
                return -EINVAL;
        return append_basic(m, arg[0], arg + 2);
}

/* Remembers an id the reply of a method carries, for $S, $T, $H. */
static void note_reply(const char *method, sd_bus_message *reply, Ids *ids) {
        char *dst = streq(method, "CreateSession") ? ids->session :
                    streq(method, "StartSnapshotSet") ? ids->set :
                    streq(method, "AddToSnapshotSet") ? ids->shadow : NULL;
        const char *s = NULL;
        if (dst && sd_bus_message_read(reply, "s", &s) >= 0 && s)
                snprintf(dst, sizeof(ids->session), "%s", s);
}

static void run_line(sd_bus *bus, char *line, Ids *ids) {
        char *argv[MAX_ARGS + 1], *save = NULL;
        size_t argc = 0;
        for (char *tok = strtok_r(line, " \t\r", &save); tok && argc <= MAX_ARGS; tok = strtok_r(NULL, " \t\r", &save))
                argv[argc++] = tok;
        if (argc == 0 || argv[0][0] == '#')
                return;

        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_message_new_method_call(bus, &m, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, argv[0]);
        if (r < 0)
                return; /* not a valid member name */
        for (size_t i = 1; i < argc && r >= 0; i++)
                r = append_arg(m, argv[i], ids);
        if (r >= 0) {
                r = sd_bus_call(bus, m, CALL_TIMEOUT_USEC, &e, &reply);
                if (r >= 0)
                        note_reply(argv[0], reply, ids);
                if (verbose)
                        fprintf(stderr, "fuzz-wire: %s(%s): %s\n", argv[0], sd_bus_message_get_signature(m, true),
                                r >= 0 ? "ok" : e.name ? e.message ?: e.name : strerror(-r));
        } else if (verbose)
                fprintf(stderr, "fuzz-wire: %s: not sent (%s)\n", argv[0], r == -EPERM ? "path outside the sandbox" : strerror(-r));
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static bool started;
        if (!started) {
                setup();
                started = true;
        }
        n_inputs++;

        char *input = fuzz_cstring(data, size), *save = NULL;
        sd_bus *bus = NULL;
        Ids ids = {};
        size_t calls = 0;
        int r = connect_vssd(&bus);
        fuzz_assert(r >= 0, "connect: %s", strerror(-r));
        for (char *line = strtok_r(input, "\n", &save); line && calls < MAX_CALLS; line = strtok_r(NULL, "\n", &save)) {
                if (strncmp(line, "RECONNECT", 9) == 0) {
                        bus = sd_bus_flush_close_unref(bus);
                        r = connect_vssd(&bus);
                        fuzz_assert(r >= 0, "reconnect: %s", strerror(-r));
                        continue;
                }
                run_line(bus, line, &ids);
                calls++;
        }
        sd_bus_flush_close_unref(bus);
        free(input);
        check_alive("after an input");
        return 0;
}
