/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-sequence: how long a full backup sequence takes, and how long writers stay frozen, with N
 * in-process writers and the file provider on an empty directory.
 *
 *   bench-sequence --vssd PATH --writers N [--rounds R] [--data-dir DIR --hold]
 *
 * Starts the given vssd on a private socket and state directory (in a temporary directory that is
 * removed afterwards), subscribes N writers of this process — spread over the three application
 * levels — on one sd-event loop, and runs R backup sequences from a requester thread:
 *
 *   vss_backup_new, initialize_for_backup, set_backup_state, gather_writer_metadata,
 *   start_snapshot_set, add_to_snapshot_set(empty dir), prepare_for_backup, do_snapshot_set,
 *   backup_complete, release.
 *
 * The main thread is the only one that touches the sd-event loop and the writers (sd-event and
 * sd-bus objects are not thread-safe); the requester thread has its own connection and tells the
 * main thread it is done through an eventfd watched by the loop.
 *
 * Prints one line: "N freeze_ms_median sequence_ms_median rss_idle_kib rss_kib raw_freeze_ms".
 * The last three columns came later (issue 14): vssd's VmRSS idle (no writer yet, once it has
 * unloaded SQLite, 2 s after its start) and after the last round (N writers still subscribed),
 * from /proc/PID/status; and, with --hold, the median of a raw FIFREEZE+FITHAW of DIR's
 * filesystem timed after each round ("-" without --hold).
 *
 * --data-dir DIR shadows DIR (an empty directory the caller made, e.g. on a loop filesystem)
 * instead of one in the temporary directory; --hold lists DIR's mount point in vssd's
 * hold_filesystems, so the file provider holds it frozen for its cut (copy-ahead and hold).
 * Without --hold vssd holds nothing.
 *
 * Measurements (CLOCK_MONOTONIC, both in this process):
 *   freeze window = (return of the last Thaw callback) - (entry of the first Freeze callback).
 *     The first Freeze *received* stands for the first Freeze *sent* by vssd: it crosses one local
 *     socket, so the difference is the socket latency, well below the resolution that matters here.
 *     Likewise the last Thaw callback returning stands for the last Thaw answered (the reply is
 *     written right after the callback returns).
 *   whole sequence = from calling vss_backup_new() to vss_backup_release() returning, measured in
 *     the requester thread.
 *
 * Exit status: 0 on success, 1 when a round failed (the reason goes to stderr, with vssd's log),
 * 2 on a usage error, 130 when interrupted (SIGINT/SIGTERM; vssd and the directory are cleaned up).
 */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include <vss/backup.h>
#include <vss/writer.h>

#include "tests/vssd-process.h"

#define READY_TIMEOUT_MS 10000
/* How long the main thread waits for every writer's BackupShutdown after a round. */
#define SHUTDOWN_TIMEOUT_USEC (30ULL * 1000000ULL)

static char tmpdir[256];
static char socket_path[300], state_dir[300], data_dir[PATH_MAX], log_path[300];
static pid_t vssd_pid = -1;
static const char *hold_mount; /* --hold: the mount point to list in hold_filesystems */

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* ---- per-round measurements (main thread only, except where noted) ---- */

typedef struct Round {
        uint64_t first_freeze;    /* entry of the first Freeze callback */
        uint64_t last_thaw;       /* return of the last Thaw callback */
        size_t n_freeze, n_thaw, n_abort, n_shutdown;
        int max_freeze_level;     /* levels seen so far, to check the ordering */
        int min_thaw_level;
        bool order_violated;
} Round;

static Round cur;

typedef struct Requester {
        /* set by the requester thread, read by the main thread after the eventfd fired */
        uint64_t t_begin, t_end;
        int32_t hr;
        char what[64];
        char msg[1024];
        size_t n_metadata;
        int efd;
} Requester;

static size_t n_writers;

static bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t = now_usec();
        int level = (int) (intptr_t) userdata;
        if (cur.n_freeze == 0)
                cur.first_freeze = t;
        cur.n_freeze++;
        /* Front-end first, back-end next, system last. */
        if (level < cur.max_freeze_level)
                cur.order_violated = true;
        if (level > cur.max_freeze_level)
                cur.max_freeze_level = level;
        return true;
}

static bool on_thaw(vss_writer *w, const vss_event_info *info, void *userdata) {
        int level = (int) (intptr_t) userdata;
        /* Thaw in reverse: system first, front-end last. */
        if (level > cur.min_thaw_level)
                cur.order_violated = true;
        if (level < cur.min_thaw_level)
                cur.min_thaw_level = level;
        cur.n_thaw++;
        cur.last_thaw = now_usec(); /* the last thing the callback does: its return */
        return true;
}

static bool on_abort(vss_writer *w, const vss_event_info *info, void *userdata) {
        cur.n_abort++;
        return true;
}

static bool on_shutdown(vss_writer *w, const vss_event_info *info, void *userdata) {
        cur.n_shutdown++;
        return true;
}

/* ---- the requester thread ---- */

#define STEP(call, name)                                    \
        do {                                                \
                int32_t _hr = (call);                       \
                if (_hr < 0) {                              \
                        rq->hr = _hr;                       \
                        snprintf(rq->what, sizeof(rq->what), "%s", name); \
                        snprintf(rq->msg, sizeof(rq->msg), "%s", vss_backup_errmsg(b)); \
                        goto out;                           \
                }                                           \
        } while (0)

static void *requester_main(void *arg) {
        Requester *rq = arg;
        vss_backup *b = NULL;

        rq->hr = 0;
        rq->what[0] = rq->msg[0] = 0;
        rq->t_begin = now_usec();
        int32_t hr = vss_backup_new(socket_path, &b);
        if (hr < 0) {
                rq->hr = hr;
                snprintf(rq->what, sizeof(rq->what), "vss_backup_new");
                goto out;
        }
        STEP(vss_backup_initialize_for_backup(b), "initialize_for_backup");
        STEP(vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false), "set_backup_state");
        STEP(vss_backup_gather_writer_metadata_sync(b), "gather_writer_metadata");
        rq->n_metadata = vss_backup_metadata_count(b);
        STEP(vss_backup_start_snapshot_set(b, NULL), "start_snapshot_set");
        STEP(vss_backup_add_to_snapshot_set(b, data_dir, NULL, NULL), "add_to_snapshot_set");
        STEP(vss_backup_prepare_for_backup_sync(b), "prepare_for_backup");
        STEP(vss_backup_do_snapshot_set_sync(b), "do_snapshot_set");
        STEP(vss_backup_backup_complete_sync(b), "backup_complete");
out:
        vss_backup_release(b);
        rq->t_end = now_usec();
        uint64_t one = 1;
        if (write(rq->efd, &one, sizeof(one)) != sizeof(one))
                abort(); /* the main thread would wait forever */
        return NULL;
}

static bool requester_done, interrupted;

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        interrupted = true;
        return 0;
}

static int on_requester_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint64_t v;
        (void) !read(fd, &v, sizeof(v));
        requester_done = true;
        return 0;
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
        if (!f)
                return -1;
        /* Generous per-event deadlines: on a loaded machine 1000 writers can take longer than the
         * default 10 s to identify, and a missed deadline would only void the measurement. */
        fputs("{\"timeouts\": {\"identify_ms\": 120000, \"prepare_backup_ms\": 120000, "
              "\"prepare_snapshot_ms\": 120000, \"post_snapshot_ms\": 120000, \"backup_complete_ms\": 120000, "
              "\"backup_shutdown_ms\": 120000, \"status_ms\": 120000}, ", f);
        if (hold_mount)
                fprintf(f, "\"hold_filesystems\": [\"%s\"]}\n", hold_mount);
        else
                fputs("\"hold_filesystems\": []}\n", f);
        if (ferror(f) || fclose(f) != 0)
                return -1;
        const char *const argv[] = { "vssd", "--socket", socket_path, "--state-dir", state_dir, "--config", config, NULL };
        vssd_pid = vssd_start(vssd, argv, log_path, notify, READY_TIMEOUT_MS);
        return vssd_pid < 0 ? -1 : 0;
}

/* The mount point holding path (the longest mountinfo entry that is a prefix), or NULL. */
static char *mount_point_of(const char *path) {
        char line[4096], best[PATH_MAX] = "";
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return NULL;
        while (fgets(line, sizeof(line), f)) {
                char mnt[PATH_MAX];
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                size_t n = strlen(mnt);
                bool prefix = strcmp(mnt, "/") == 0 ||
                              (strncmp(path, mnt, n) == 0 && (path[n] == '/' || path[n] == 0));
                if (prefix && n >= strlen(best))
                        snprintf(best, sizeof(best), "%s", mnt);
        }
        fclose(f);
        return best[0] ? strdup(best) : NULL;
}

/* One raw FIFREEZE+FITHAW of the filesystem of dir, in microseconds, or 0 on failure. */
static uint64_t raw_freeze_usec(const char *dir) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        uint64_t t0 = now_usec();
        bool ok = ioctl(fd, FIFREEZE, 0) == 0;
        if (ok && ioctl(fd, FITHAW, 0) != 0) {
                fprintf(stderr, "bench-sequence: FITHAW %s: %m\n", dir);
                ok = false;
        }
        uint64_t t1 = now_usec();
        close(fd);
        return ok ? t1 - t0 : 0;
}

static void stop_vssd(void) {
        (void) vssd_stop(vssd_pid);
        vssd_pid = -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

/* The file provider makes shadow copies read-only: make every directory writable before emptying
 * it, in case a shadow outlived its session. */
static int chmod_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (flag == FTW_D)
                (void) chmod(path, 0700);
        return 0;
}

static void remove_tmpdir(void) {
        if (!tmpdir[0])
                return;
        nftw(tmpdir, chmod_entry, 16, FTW_PHYS | FTW_MOUNT);
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        tmpdir[0] = 0;
}

/* ---- main ---- */

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static double median_ms(uint64_t *v, size_t n) {
        qsort(v, n, sizeof(*v), cmp_u64);
        double m = n % 2 ? (double) v[n / 2] : ((double) v[n / 2 - 1] + (double) v[n / 2]) / 2.0;
        return m / 1000.0;
}

static void help(void) {
        printf("Usage: bench-sequence --vssd PATH --writers N [--rounds R] [--data-dir DIR [--hold]]\n"
               "\n"
               "Starts PATH (a vssd) privately, subscribes N in-process writers and runs R (default 5)\n"
               "backup sequences with the file provider on an empty directory. Prints\n"
               "  N freeze_ms_median sequence_ms_median rss_idle_kib rss_kib raw_freeze_ms\n"
               "where the freeze window is first Freeze callback entered -> last Thaw callback returned,\n"
               "the sequence is vss_backup_new() -> vss_backup_release() returned, the RSS columns are\n"
               "vssd's VmRSS at start and after the last round (writers subscribed), and raw_freeze_ms\n"
               "is a FIFREEZE+FITHAW of DIR's filesystem (with --hold; else \"-\").\n"
               "  --data-dir DIR  shadow DIR (an empty directory) instead of a temporary one\n"
               "  --hold          let vssd hold DIR's filesystem (hold_filesystems); root\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "vssd", required_argument, NULL, 'v' },
                { "writers", required_argument, NULL, 'n' },
                { "rounds", required_argument, NULL, 'r' },
                { "data-dir", required_argument, NULL, 'd' },
                { "hold", no_argument, NULL, 'H' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *vssd = NULL, *arg_data_dir = NULL;
        bool arg_hold = false;
        long writers = -1, rounds = 5;
        int c, ret = 1;
        char *end;

        while ((c = getopt_long(argc, argv, "v:n:r:h", options, NULL)) >= 0) {
                switch (c) {
                case 'v': vssd = optarg; break;
                case 'n':
                        writers = strtol(optarg, &end, 10);
                        if (*end || writers < 0 || writers > 100000)
                                writers = -1;
                        break;
                case 'r':
                        rounds = strtol(optarg, &end, 10);
                        if (*end || rounds < 1 || rounds > 10000)
                                rounds = -1;
                        break;
                case 'd': arg_data_dir = optarg; break;
                case 'H': arg_hold = true; break;
                case 'h': help(); return 0;
                default: fprintf(stderr, "Try 'bench-sequence --help'.\n"); return 2;
                }
        }
        if (!vssd || writers < 0 || rounds < 1 || optind < argc || (arg_hold && !arg_data_dir)) {
                fprintf(stderr, "bench-sequence: need --vssd PATH and --writers N (N >= 0, R >= 1); --hold needs --data-dir\n");
                return 2;
        }
        n_writers = (size_t) writers;

        /* One connection per writer, and vssd's side too: lift the soft limit (vssd inherits it). */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < n_writers + 64)
                fprintf(stderr, "bench-sequence: warning: RLIMIT_NOFILE is %llu, %zu writers need more\n",
                        (unsigned long long) rl.rlim_cur, n_writers + 64);
        signal(SIGPIPE, SIG_IGN);
        /* SIGINT/SIGTERM are taken by the loop (and are blocked in the requester thread), so that an
         * interrupted run still stops vssd and removes its directory. vssd unblocks them. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        snprintf(tmpdir, sizeof(tmpdir), "/tmp/openvss-bench-XXXXXX");
        if (!mkdtemp(tmpdir)) {
                fprintf(stderr, "bench-sequence: mkdtemp: %m\n");
                return 1;
        }
        snprintf(socket_path, sizeof(socket_path), "%s/vssd.sock", tmpdir);
        snprintf(state_dir, sizeof(state_dir), "%s/state", tmpdir);
        snprintf(log_path, sizeof(log_path), "%s/vssd.log", tmpdir);
        if (arg_data_dir) {
                if (!realpath(arg_data_dir, data_dir)) {
                        fprintf(stderr, "bench-sequence: %s: %m\n", arg_data_dir);
                        remove_tmpdir();
                        return 1;
                }
                if (arg_hold && !(hold_mount = mount_point_of(data_dir))) {
                        fprintf(stderr, "bench-sequence: cannot find the mount point of %s\n", data_dir);
                        remove_tmpdir();
                        return 1;
                }
        } else if (snprintf(data_dir, sizeof(data_dir), "%s/empty", tmpdir), mkdir(data_dir, 0755) < 0) {
                fprintf(stderr, "bench-sequence: mkdir %s: %m\n", data_dir);
                remove_tmpdir();
                return 1;
        }

        sd_event *e = NULL;
        vss_writer **w = calloc(n_writers ? n_writers : 1, sizeof(*w));
        uint64_t *freeze = calloc((size_t) rounds, sizeof(uint64_t));
        uint64_t *seq = calloc((size_t) rounds, sizeof(uint64_t));
        uint64_t *raw = calloc((size_t) rounds, sizeof(uint64_t));
        long rss_idle = -1, rss_subscribed = -1;
        Requester rq = { .efd = -1 };
        sd_event_source *done_src = NULL;
        int r;

        if (!w || !freeze || !seq || !raw)
                goto finish;
        if (start_vssd(vssd) < 0)
                goto finish;
        /* Idle: vssd unloads SQLite 2 s after its last client (or its start); at most 10 s. */
        for (int i = 0; i < 1000 && vssd_maps_sqlite(vssd_pid); i++)
                usleep(10000);
        rss_idle = vssd_rss_kib(vssd_pid);
        r = sd_event_new(&e);
        if (r < 0) {
                fprintf(stderr, "bench-sequence: sd_event_new: %s\n", strerror(-r));
                goto finish;
        }
        if (sd_event_add_signal(e, NULL, SIGINT, on_signal, NULL) < 0 ||
            sd_event_add_signal(e, NULL, SIGTERM, on_signal, NULL) < 0) {
                fprintf(stderr, "bench-sequence: cannot watch signals\n");
                goto finish;
        }
        rq.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (rq.efd < 0 || sd_event_add_io(e, &done_src, rq.efd, EPOLLIN, on_requester_done, NULL) < 0) {
                fprintf(stderr, "bench-sequence: eventfd: %m\n");
                goto finish;
        }

        static const vss_writer_callbacks cb = {
                .freeze = on_freeze,
                .thaw = on_thaw,
                .abort = on_abort,
                .backup_shutdown = on_shutdown,
        };
        uint64_t t0 = now_usec();
        for (size_t i = 0; i < n_writers; i++) {
                char name[64];
                if (i % 64 == 0) {
                        (void) sd_event_run(e, 0); /* notice signals */
                        if (interrupted)
                                goto interrupt;
                }
                snprintf(name, sizeof(name), "bench-%zu", i);
                vss_writer_options o = {
                        .name = name,
                        .usage_type = 0,
                        .source_type = 0,
                        .app_level = (vss_app_level) (i % 3),
                };
                int32_t hr = vss_writer_new(&o, &cb, (void *) (intptr_t) (i % 3), &w[i]);
                if (hr >= 0)
                        hr = vss_writer_attach_event(w[i], e);
                if (hr >= 0)
                        hr = vss_writer_subscribe(w[i], socket_path);
                if (hr < 0) {
                        fprintf(stderr, "bench-sequence: writer %zu: 0x%08x %s\n", i, (uint32_t) hr,
                                w[i] ? vss_writer_errmsg(w[i]) : "");
                        goto finish;
                }
        }
        fprintf(stderr, "bench-sequence: %zu writers subscribed in %.1f ms\n", n_writers,
                (double) (now_usec() - t0) / 1000.0);

        for (long k = 0; k < rounds; k++) {
                pthread_t th;
                memset(&cur, 0, sizeof(cur));
                cur.min_thaw_level = 1 << 30;
                requester_done = false;
                r = pthread_create(&th, NULL, requester_main, &rq);
                if (r != 0) {
                        fprintf(stderr, "bench-sequence: pthread_create: %s\n", strerror(r));
                        goto finish;
                }
                while (!requester_done) {
                        r = sd_event_run(e, UINT64_MAX);
                        if (interrupted) {
                                /* Without vssd the requester's calls fail at once. */
                                stop_vssd();
                                pthread_join(th, NULL);
                                goto interrupt;
                        }
                        if (r < 0) {
                                /* The requester thread still needs vssd; do not leave it hanging. */
                                fprintf(stderr, "bench-sequence: event loop: %s\n", strerror(-r));
                                stop_vssd();
                                pthread_join(th, NULL);
                                goto finish;
                        }
                }
                pthread_join(th, NULL);
                if (rq.hr < 0) {
                        fprintf(stderr, "bench-sequence: round %ld: %s failed: 0x%08x %s\n", k + 1, rq.what,
                                (uint32_t) rq.hr, rq.msg);
                        goto finish;
                }
                /* Let every writer see BackupShutdown before the next round (not measured). */
                uint64_t deadline = now_usec() + SHUTDOWN_TIMEOUT_USEC;
                while (cur.n_shutdown < n_writers && now_usec() < deadline && !interrupted) {
                        r = sd_event_run(e, 100000);
                        if (r < 0) {
                                fprintf(stderr, "bench-sequence: event loop: %s\n", strerror(-r));
                                goto finish;
                        }
                }
                if (interrupted)
                        goto interrupt;
                if (rq.n_metadata != n_writers || cur.n_freeze != n_writers || cur.n_thaw != n_writers ||
                    cur.n_abort != 0 || cur.n_shutdown != n_writers) {
                        fprintf(stderr,
                                "bench-sequence: round %ld: expected %zu of each; got metadata %zu, freeze %zu, "
                                "thaw %zu, abort %zu, backup-shutdown %zu\n",
                                k + 1, n_writers, rq.n_metadata, cur.n_freeze, cur.n_thaw, cur.n_abort, cur.n_shutdown);
                        goto finish;
                }
                if (cur.order_violated) {
                        fprintf(stderr, "bench-sequence: round %ld: Freeze/Thaw did not follow the level order\n",
                                k + 1);
                        goto finish;
                }
                freeze[k] = n_writers ? cur.last_thaw - cur.first_freeze : 0;
                seq[k] = rq.t_end - rq.t_begin;
                if (arg_hold && !(raw[k] = raw_freeze_usec(data_dir))) {
                        fprintf(stderr, "bench-sequence: round %ld: raw FIFREEZE+FITHAW of %s failed\n", k + 1, data_dir);
                        goto finish;
                }
                fprintf(stderr, "bench-sequence: N=%zu round %ld: freeze %.3f ms, sequence %.3f ms\n", n_writers,
                        k + 1, (double) freeze[k] / 1000.0, (double) seq[k] / 1000.0);
        }
        rss_subscribed = vssd_rss_kib(vssd_pid);
        char raw_ms[32] = "-";
        if (arg_hold)
                snprintf(raw_ms, sizeof(raw_ms), "%.3f", median_ms(raw, (size_t) rounds));
        printf("%zu %.3f %.3f %ld %ld %s\n", n_writers, median_ms(freeze, (size_t) rounds), median_ms(seq, (size_t) rounds),
               rss_idle, rss_subscribed, raw_ms);
        fflush(stdout);
        ret = 0;
        goto finish;

interrupt:
        fprintf(stderr, "bench-sequence: interrupted\n");
        ret = 130;
finish:
        if (ret == 1 && tmpdir[0])
                dump_log();
        if (w)
                for (size_t i = 0; i < n_writers; i++)
                        vss_writer_unref(w[i]);
        free(w);
        sd_event_source_disable_unref(done_src);
        sd_event_unref(e);
        if (rq.efd >= 0)
                close(rq.efd);
        stop_vssd();
        remove_tmpdir();
        free(freeze);
        free(seq);
        free(raw);
        free((char *) hold_mount);
        return ret;
}
