/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * soak: many back-to-back backup sequences against one vssd, with requesters killed at random, to
 * show that vssd's memory and open descriptors stay flat (issue 6, item 6).
 *
 *   soak --vssd PATH [--writers N] [--cycles C] [--kill-every K] [--seed S]
 *
 * Starts the given vssd on a private socket and state directory (in a temporary directory removed
 * afterwards), subscribes N (default 20) in-process writers on this process's sd-event loop (the
 * main thread, the only one), and runs C (default 1000) cycles. Each cycle forks a requester child
 * that runs the whole sequence on a small directory with the file provider:
 *
 *   1 vss_backup_new  2 initialize_for_backup  3 set_backup_state  4 gather_writer_metadata
 *   5 start_snapshot_set  6 add_to_snapshot_set  7 prepare_for_backup  8 do_snapshot_set
 *   9 backup_complete  10 release
 *
 * telling the parent through a pipe which step it is about to call. Every K-th cycle (default 50)
 * the parent SIGKILLs the child as soon as it reaches a step drawn at random, so the call is in
 * flight or about to be. The parent serves the writers meanwhile. After each cycle: a requester that
 * was not killed must have succeeded with every writer frozen and thawed once; every writer got
 * BackupShutdown (after a killed requester: once vssd cleaned up, if it was killed after asking for
 * metadata); no writer is left frozen, and none saw Freeze without Thaw or Abort.
 *
 * Every 100 cycles (and before the first, and after the last) it prints a row: cycle, vssd's VmRSS
 * (KiB, /proc/PID/status), vssd's open descriptors (/proc/PID/fd), shadow copies vssd still lists
 * (ListShadows), seconds since the start. vssd is sampled while idle: no requester connected, the
 * writers subscribed, and its descriptor count steady.
 *
 * The verdict, at the end:
 *   - memory: the last RSS is at most the baseline + 10%, the baseline being the sample after the
 *     first 100 cycles (the warm-up: sqlite's page cache, malloc's arenas and sd-bus's buffers reach
 *     their working size in the first cycles; the row before cycle 1 is printed for reference
 *     only). With ~5-10 MiB of RSS, 10% is 0.5-1 MiB over 900 cycles: a leak of a few hundred
 *     bytes per sequence fails, while the allocator's noise (a page here and there) does not.
 *     Runs shorter than 200 cycles take the first sample as the baseline.
 *   - descriptors: the last count equals the baseline's exactly (a descriptor is never noise).
 *   - shadows: none left (every set here is auto-release, so release or the requester's death
 *     deletes them).
 * Exit status: 0 when all hold and every cycle passed, 1 otherwise, 2 on a usage error, 130 when
 * interrupted.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <vss/backup.h>
#include <vss/writer.h>

#include "tests/vssd-process.h"

#define READY_TIMEOUT_MS 10000
#define CYCLE_TIMEOUT_USEC (120ULL * 1000000ULL)   /* one sequence, generously */
#define SETTLE_TIMEOUT_USEC (30ULL * 1000000ULL)   /* vssd's cleanup after a cycle */
/* A requester killed by the time it asked for metadata may have had no writers in its session, so
 * no BackupShutdown is sure to come: give vssd's cleanup this long. */
#define EARLY_KILL_SETTLE_USEC (500ULL * 1000ULL)
#define SAMPLE_EVERY 100
#define N_STEPS 10
#define STEP_GATHER 4

static const char *const step_names[N_STEPS + 1] = {
        "", "backup_new", "initialize_for_backup", "set_backup_state", "gather_writer_metadata",
        "start_snapshot_set", "add_to_snapshot_set", "prepare_for_backup", "do_snapshot_set", "backup_complete",
        "release",
};

static char tmpdir[256];
static char socket_path[300], state_dir[300], data_dir[300], log_path[300];
static pid_t vssd_pid = -1;
static bool interrupted;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* ---- writers ---- */

static size_t n_writers;
static size_t n_shutdown, n_freeze, n_thaw, n_abort;

static bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata) {
        n_freeze++;
        return true;
}

static bool on_thaw(vss_writer *w, const vss_event_info *info, void *userdata) {
        n_thaw++;
        return true;
}

static bool on_abort(vss_writer *w, const vss_event_info *info, void *userdata) {
        n_abort++;
        return true;
}

static bool on_shutdown(vss_writer *w, const vss_event_info *info, void *userdata) {
        n_shutdown++;
        return true;
}

/* ---- the requester child ---- */

static void tell(int fd, int step) {
        unsigned char b = (unsigned char) step;
        if (write(fd, &b, 1) != 1)
                _exit(3);
}

#define STEP(k, call)                                                                                       \
        do {                                                                                                \
                tell(fd, k);                                                                                \
                int32_t _hr = (call);                                                                       \
                if (_hr < 0) {                                                                              \
                        fprintf(stderr, "soak: requester: %s failed: 0x%08x %s\n", step_names[k], (uint32_t) _hr, \
                                b ? vss_backup_errmsg(b) : "");                                             \
                        vss_backup_release(b);                                                              \
                        _exit(1);                                                                           \
                }                                                                                           \
        } while (0)

static _Noreturn void requester_main(int fd) {
        vss_backup *b = NULL;
        STEP(1, vss_backup_new(socket_path, &b));
        STEP(2, vss_backup_initialize_for_backup(b));
        STEP(3, vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false));
        STEP(4, vss_backup_gather_writer_metadata_sync(b));
        if (vss_backup_metadata_count(b) != n_writers) {
                fprintf(stderr, "soak: requester: %zu writers' metadata, expected %zu\n", vss_backup_metadata_count(b),
                        n_writers);
                _exit(1);
        }
        STEP(5, vss_backup_start_snapshot_set(b, NULL));
        STEP(6, vss_backup_add_to_snapshot_set(b, data_dir, "file", NULL));
        STEP(7, vss_backup_prepare_for_backup_sync(b));
        STEP(8, vss_backup_do_snapshot_set_sync(b));
        STEP(9, vss_backup_backup_complete_sync(b));
        tell(fd, 10);
        vss_backup_release(b);
        _exit(0);
}

/* ---- one cycle, in the parent ---- */

typedef struct Cycle {
        pid_t child;
        int kill_at;   /* step at which to kill the child, 0: none */
        int last_step; /* the last step the child announced */
        bool killed, eof;
} Cycle;

static int on_child_pipe(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Cycle *c = userdata;
        unsigned char buf[64];
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                c->eof = true; /* the child is gone (or closed its end by exiting) */
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        for (ssize_t i = 0; i < n; i++) {
                c->last_step = buf[i];
                if (c->kill_at && !c->killed && c->last_step >= c->kill_at) {
                        (void) kill(c->child, SIGKILL);
                        c->killed = true;
                }
        }
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        interrupted = true;
        return 0;
}

/* Runs the loop until done() or the deadline; false on timeout, interruption or a loop error. */
static bool run_until(sd_event *e, bool (*done)(void *), void *arg, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;
        while (!done(arg)) {
                if (interrupted || now_usec() >= deadline)
                        return false;
                int r = sd_event_run(e, 100000);
                if (r < 0) {
                        fprintf(stderr, "soak: event loop: %s\n", strerror(-r));
                        return false;
                }
        }
        return true;
}

static bool cycle_eof(void *arg) {
        return ((Cycle *) arg)->eof;
}

static bool all_shut_down(void *arg) {
        return n_shutdown >= n_writers;
}

static bool none_frozen(void *arg) {
        vss_writer **w = arg;
        for (size_t i = 0; i < n_writers; i++)
                if (vss_writer_is_frozen(w[i]))
                        return false;
        return true;
}

/* One sequence; 0 when it went as it should, -1 with the reason on stderr. */
static int run_cycle(sd_event *e, vss_writer **w, long k, int kill_at) {
        Cycle c = { .kill_at = kill_at };
        sd_event_source *src = NULL;
        int pfd[2], st = 0;

        n_shutdown = n_freeze = n_thaw = n_abort = 0;
        if (pipe2(pfd, O_CLOEXEC) < 0) {
                fprintf(stderr, "soak: pipe: %m\n");
                return -1;
        }
        fflush(stdout);
        fflush(stderr);
        c.child = fork();
        if (c.child < 0) {
                fprintf(stderr, "soak: fork: %m\n");
                close(pfd[0]);
                close(pfd[1]);
                return -1;
        }
        if (c.child == 0) {
                close(pfd[0]);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                requester_main(pfd[1]);
        }
        close(pfd[1]);
        (void) fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        int r = sd_event_add_io(e, &src, pfd[0], EPOLLIN, on_child_pipe, &c);
        if (r < 0) {
                fprintf(stderr, "soak: sd_event_add_io: %s\n", strerror(-r));
                kill(c.child, SIGKILL);
        }
        bool ok = r >= 0 && run_until(e, cycle_eof, &c, CYCLE_TIMEOUT_USEC);
        if (!ok)
                kill(c.child, SIGKILL);
        sd_event_source_disable_unref(src);
        close(pfd[0]);
        while (waitpid(c.child, &st, 0) < 0 && errno == EINTR)
                ;
        if (interrupted)
                return -1;
        if (!ok) {
                fprintf(stderr, "soak: cycle %ld: the requester did not finish (last step %s)\n", k,
                        step_names[c.last_step]);
                return -1;
        }
        if (c.killed) {
                if (!WIFSIGNALED(st) && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                        fprintf(stderr, "soak: cycle %ld: the requester failed before it was killed\n", k);
                        return -1;
                }
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "soak: cycle %ld: the requester failed (%s %d) at %s\n", k,
                        WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                        step_names[c.last_step]);
                return -1;
        }

        /* vssd's cleanup: BackupShutdown to every writer of the session, Abort to frozen ones. A
         * requester killed before it gathered metadata had no writers in its session. */
        bool session_had_writers = !c.killed || c.last_step > STEP_GATHER;
        if (!session_had_writers)
                (void) run_until(e, all_shut_down, NULL, EARLY_KILL_SETTLE_USEC); /* some, all or none */
        else if (!run_until(e, all_shut_down, NULL, SETTLE_TIMEOUT_USEC)) {
                if (!interrupted)
                        fprintf(stderr, "soak: cycle %ld: %zu of %zu writers got BackupShutdown (%s at %s)\n", k,
                                n_shutdown, n_writers, c.killed ? "killed" : "completed", step_names[c.last_step]);
                return -1;
        }
        if (!run_until(e, none_frozen, w, SETTLE_TIMEOUT_USEC)) {
                if (!interrupted)
                        fprintf(stderr, "soak: cycle %ld: a writer is still frozen (killed at %s)\n", k,
                                step_names[c.last_step]);
                return -1;
        }
        if (!c.killed && (n_freeze != n_writers || n_thaw != n_writers || n_abort != 0)) {
                fprintf(stderr, "soak: cycle %ld: freeze %zu, thaw %zu, abort %zu; expected %zu, %zu, 0\n", k, n_freeze,
                        n_thaw, n_abort, n_writers, n_writers);
                return -1;
        }
        if (c.killed && n_freeze > n_thaw + n_abort) {
                fprintf(stderr, "soak: cycle %ld: killed at %s: freeze %zu but thaw %zu + abort %zu\n", k,
                        step_names[c.last_step], n_freeze, n_thaw, n_abort);
                return -1;
        }
        return c.killed ? c.last_step : 0;
}

/* ---- vssd ---- */

static void dump_log(void) {
        vssd_log_tail(log_path, 40);
}

static int start_vssd(const char *vssd) {
        char notify[300];
        snprintf(notify, sizeof(notify), "%s/notify", tmpdir);
        char config[300];
        /* Benchmarks never hold the machine's own filesystems (the data directory is on one). */
        snprintf(config, sizeof(config), "%s/vssd.json", tmpdir);
        FILE *f = fopen(config, "we");
        if (!f || fputs("{\"hold_filesystems\": []}\n", f) < 0 || fclose(f) != 0)
                return -1;
        const char *const argv[] = { "vssd", "--socket", socket_path, "--state-dir", state_dir, "--config", config, NULL };
        vssd_pid = vssd_start(vssd, argv, log_path, notify, READY_TIMEOUT_MS);
        return vssd_pid < 0 ? -1 : 0;
}

static void stop_vssd(void) {
        (void) vssd_stop(vssd_pid);
        vssd_pid = -1;
}

static bool vssd_alive(void) {
        int st;
        if (vssd_pid > 0 && waitpid(vssd_pid, &st, WNOHANG) == vssd_pid) {
                fprintf(stderr, "soak: vssd died (%s %d)\n", WIFEXITED(st) ? "status" : "signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
                vssd_pid = -1;
        }
        return vssd_pid > 0;
}

static long vssd_fds(void) {
        char path[64];
        long n = 0;
        snprintf(path, sizeof(path), "/proc/%d/fd", (int) vssd_pid);
        DIR *d = opendir(path);
        if (!d)
                return -1;
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

/* Shadow copies vssd lists, through a connection of its own (closed again). */
static long vssd_shadows(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        long n = -1;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || sd_bus_new(&bus) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        if (sd_bus_set_fd(bus, fd, fd) < 0)
                close(fd);
        else if (sd_bus_start(bus) >= 0 &&
                 sd_bus_call_method(bus, NULL, "/org/openvss/vssd", "org.openvss.Coordinator1", "ListShadows", &e,
                                    &reply, "") >= 0 &&
                 sd_bus_message_enter_container(reply, 'a', "(sssssttu)") >= 0) {
                n = 0;
                while (sd_bus_message_skip(reply, "(sssssttu)") > 0)
                        n++;
        }
        if (n < 0)
                fprintf(stderr, "soak: ListShadows: %s\n", e.message ?: "failed");
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return n;
}

typedef struct Sample {
        long cycle, rss_kib, fds, shadows;
        double seconds;
} Sample;

/* Waits until vssd's descriptor count is steady (it may still be closing the last requester's
 * connection), then samples. */
static Sample sample(sd_event *e, long cycle, uint64_t t0) {
        long fds = vssd_fds();
        for (int i = 0; i < 50; i++) {
                (void) sd_event_run(e, 20000);
                long again = vssd_fds();
                if (again == fds)
                        break;
                fds = again;
        }
        Sample s = { .cycle = cycle, .fds = fds, .rss_kib = vssd_rss_kib(vssd_pid) };
        s.shadows = vssd_shadows();
        s.seconds = (double) (now_usec() - t0) / 1e6;
        printf("%7ld  %8ld  %5ld  %12ld  %8.1f\n", s.cycle, s.rss_kib, s.fds, s.shadows, s.seconds);
        fflush(stdout);
        return s;
}

/* ---- the directory ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

static int chmod_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_D)
                (void) chmod(path, 0700); /* shadow copies are read-only */
        return 0;
}

static void remove_tmpdir(void) {
        if (!tmpdir[0])
                return;
        nftw(tmpdir, chmod_entry, 16, FTW_PHYS | FTW_MOUNT);
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        tmpdir[0] = 0;
}

/* data/: 8 files of 1 KiB and a subdirectory with 2 more. */
static int make_data(void) {
        char path[400], buf[1024];
        memset(buf, 'x', sizeof(buf));
        snprintf(path, sizeof(path), "%s/sub", data_dir);
        if (mkdir(data_dir, 0755) < 0 || mkdir(path, 0755) < 0)
                return -1;
        for (int i = 0; i < 10; i++) {
                snprintf(path, sizeof(path), i < 8 ? "%s/file-%d" : "%s/sub/file-%d", data_dir, i);
                int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf)) {
                        if (fd >= 0)
                                close(fd);
                        return -1;
                }
                close(fd);
        }
        return 0;
}

/* ---- main ---- */

static void help(void) {
        printf("Usage: soak --vssd PATH [--writers N] [--cycles C] [--kill-every K] [--seed S]\n"
               "\n"
               "Starts PATH (a vssd) privately, subscribes N (default 20) in-process writers and runs C\n"
               "(default 1000) backup sequences with the file provider on a small directory, each from a\n"
               "forked requester; every K-th (default 50) requester is SIGKILLed at a random step. Prints\n"
               "vssd's RSS, open descriptors and remaining shadows every 100 cycles, and fails when memory\n"
               "grew more than 10%% after the warm-up, descriptors changed, or shadows were left.\n");
}

static long parse_long(const char *s, long min, long max) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        return errno || *end || end == s || v < min || v > max ? -1 : v;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "vssd", required_argument, NULL, 'v' },    { "writers", required_argument, NULL, 'n' },
                { "cycles", required_argument, NULL, 'c' },  { "kill-every", required_argument, NULL, 'k' },
                { "seed", required_argument, NULL, 's' },    { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *vssd = NULL;
        long writers = 20, cycles = 1000, kill_every = 50, seed = -1;
        int c, ret = 1;

        while ((c = getopt_long(argc, argv, "v:n:c:k:s:h", options, NULL)) >= 0) {
                switch (c) {
                case 'v': vssd = optarg; break;
                case 'n': writers = parse_long(optarg, 1, 10000); break;
                case 'c': cycles = parse_long(optarg, 1, 10000000); break;
                case 'k': kill_every = parse_long(optarg, 0, 10000000); break;
                case 's': seed = parse_long(optarg, 0, 0x7fffffff); break;
                case 'h': help(); return 0;
                default: fprintf(stderr, "Try 'soak --help'.\n"); return 2;
                }
        }
        if (!vssd || writers < 1 || cycles < 1 || kill_every < 0 || optind < argc) {
                fprintf(stderr, "soak: need --vssd PATH; --writers, --cycles >= 1, --kill-every >= 0\n");
                return 2;
        }
        n_writers = (size_t) writers;
        if (seed < 0)
                seed = (long) (now_usec() % 0x7fffffff);
        srandom((unsigned) seed);

        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        signal(SIGPIPE, SIG_IGN);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        snprintf(tmpdir, sizeof(tmpdir), "/tmp/openvss-soak-XXXXXX");
        if (!mkdtemp(tmpdir)) {
                fprintf(stderr, "soak: mkdtemp: %m\n");
                return 1;
        }
        snprintf(socket_path, sizeof(socket_path), "%s/vssd.sock", tmpdir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", tmpdir);
        snprintf(data_dir, sizeof(data_dir), "%s/data", tmpdir);
        snprintf(log_path, sizeof(log_path), "%s/vssd.log", tmpdir);

        sd_event *e = NULL;
        vss_writer **w = calloc(n_writers, sizeof(*w));
        Sample *samples = calloc((size_t) (cycles / SAMPLE_EVERY + 2), sizeof(Sample));
        size_t n_samples = 0;
        long n_killed = 0, kills_at[N_STEPS + 1] = {};
        bool failed = false;

        if (!w || !samples)
                goto finish;
        if (make_data() < 0) {
                fprintf(stderr, "soak: %s: %m\n", data_dir);
                goto finish;
        }
        if (start_vssd(vssd) < 0)
                goto finish;
        if (sd_event_new(&e) < 0 || sd_event_add_signal(e, NULL, SIGINT, on_signal, NULL) < 0 ||
            sd_event_add_signal(e, NULL, SIGTERM, on_signal, NULL) < 0) {
                fprintf(stderr, "soak: cannot set up the event loop\n");
                goto finish;
        }
        static const vss_writer_callbacks cb = {
                .freeze = on_freeze,
                .thaw = on_thaw,
                .abort = on_abort,
                .backup_shutdown = on_shutdown,
        };
        for (size_t i = 0; i < n_writers; i++) {
                char name[64];
                snprintf(name, sizeof(name), "soak-%zu", i);
                vss_writer_options o = { .name = name, .app_level = (vss_app_level) (i % 3) };
                int32_t hr = vss_writer_new(&o, &cb, NULL, &w[i]);
                if (hr >= 0)
                        hr = vss_writer_attach_event(w[i], e);
                if (hr >= 0)
                        hr = vss_writer_subscribe(w[i], socket_path);
                if (hr < 0) {
                        fprintf(stderr, "soak: writer %zu: 0x%08x %s\n", i, (uint32_t) hr,
                                w[i] ? vss_writer_errmsg(w[i]) : "");
                        goto finish;
                }
        }
        fprintf(stderr, "soak: %zu writers, %ld cycles, a requester killed every %ld, seed %ld\n", n_writers, cycles,
                kill_every, seed);

        uint64_t t0 = now_usec();
        printf("%7s  %8s  %5s  %12s  %8s\n", "cycle", "rss_kib", "fds", "shadows_left", "seconds");
        samples[n_samples++] = sample(e, 0, t0);
        for (long k = 1; k <= cycles; k++) {
                int kill_at = kill_every > 0 && k % kill_every == 0 ? 1 + (int) (random() % N_STEPS) : 0;
                int r = run_cycle(e, w, k, kill_at);
                if (interrupted)
                        goto interrupt;
                if (r < 0 || !vssd_alive()) {
                        failed = true;
                        break;
                }
                if (kill_at) {
                        n_killed++;
                        kills_at[r]++;
                }
                if (k % SAMPLE_EVERY == 0 || k == cycles)
                        samples[n_samples++] = sample(e, k, t0);
        }
        if (failed) {
                dump_log();
                goto finish;
        }

        fprintf(stderr, "soak: %ld requesters killed, at:", n_killed);
        for (int s = 1; s <= N_STEPS; s++)
                if (kills_at[s])
                        fprintf(stderr, " %s %ld", step_names[s], kills_at[s]);
        fprintf(stderr, "\n");

        /* The verdict (see the top of this file). */
        const Sample *base = &samples[n_samples > 2 ? 1 : 0], *last = &samples[n_samples - 1];
        long limit = base->rss_kib + base->rss_kib / 10;
        bool mem_ok = last->rss_kib > 0 && last->rss_kib <= limit;
        bool fds_ok = last->fds > 0 && last->fds == base->fds;
        bool shadows_ok = last->shadows == 0;
        printf("memory:      %s (RSS %ld KiB at cycle %ld, %ld KiB at cycle %ld; limit %ld KiB = +10%%)\n",
               mem_ok ? "ok" : "FAILED", base->rss_kib, base->cycle, last->rss_kib, last->cycle, limit);
        printf("descriptors: %s (%ld at cycle %ld, %ld at cycle %ld)\n", fds_ok ? "ok" : "FAILED", base->fds,
               base->cycle, last->fds, last->cycle);
        printf("shadows:     %s (%ld left)\n", shadows_ok ? "ok" : "FAILED", last->shadows);
        ret = mem_ok && fds_ok && shadows_ok ? 0 : 1;
        goto finish;

interrupt:
        fprintf(stderr, "soak: interrupted\n");
        ret = 130;
finish:
        if (w)
                for (size_t i = 0; i < n_writers; i++)
                        vss_writer_unref(w[i]);
        free(w);
        free(samples);
        sd_event_unref(e);
        stop_vssd();
        remove_tmpdir();
        return ret;
}
