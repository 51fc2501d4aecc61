/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Freeze leases on an ext4 and an XFS loop filesystem made here. Needs root (skips otherwise).
 * TAP-ish output. Whatever happens, the filesystems are thawed, unmounted and detached at exit. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/freeze.h"
#include "providers/mountinfo.h"
#include "tests/check.h"

int test_failures;

#define LONG_DEADLINE_MS 60000u
#define ELEMENTS(x) (sizeof(x) / sizeof((x)[0]))

typedef struct Fs {
        const char *type;
        off_t size;
        char img[512], mnt[512], loopdev[64]; /* short: tmpreal is < 256 */
        bool mounted;
} Fs;

static char tmpdir[] = "/tmp/test-freeze-XXXXXX";
static char tmpreal[256];
static bool have_tmpdir;
static Fs fs_ext4 = { .type = "ext4", .size = 64 << 20 }, fs_xfs = { .type = "xfs", .size = 320 << 20 };
static Fs *const all_fs[] = { &fs_ext4, &fs_xfs };
static char bind_mnt[512];
static bool bind_mounted;
static pid_t main_pid;
static FreezeLease *live; /* the lease a case holds, released by cleanup if the case did not get to it */
static pid_t tracked[16]; /* writers, the intermediate of case 3, its helper */
static unsigned n_cases;

static void track(pid_t pid) {
        for (size_t i = 0; i < ELEMENTS(tracked); i++)
                if (tracked[i] <= 0) {
                        tracked[i] = pid;
                        return;
                }
        abort();
}

static void untrack(pid_t pid) {
        for (size_t i = 0; i < ELEMENTS(tracked); i++)
                if (tracked[i] == pid)
                        tracked[i] = 0;
}

static int64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* Runs argv[0] (PATH lookup, no shell); stdout into out when given. Returns the exit status, or
 * -1 when it could not run or was killed. */
static int run(char *out, size_t outlen, const char *arg0, ...) {
        const char *argv[16];
        size_t n = 0;
        int p[2] = { -1, -1 }, status;
        va_list ap;
        pid_t pid;

        argv[n++] = arg0;
        va_start(ap, arg0);
        while (n < ELEMENTS(argv) - 1 && (argv[n] = va_arg(ap, const char *)))
                n++;
        va_end(ap);
        argv[n] = NULL;

        if (out && pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                if (out && dup2(p[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        if (out) {
                size_t got = 0;
                ssize_t k;

                close(p[1]);
                while (got + 1 < outlen && ((k = read(p[0], out + got, outlen - 1 - got)) > 0 || (k < 0 && errno == EINTR)))
                        if (k > 0)
                                got += (size_t) k;
                out[got] = '\0';
                out[strcspn(out, "\n")] = '\0';
                close(p[0]);
        }
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* FITHAW as a probe: succeeds only on a frozen filesystem (which it then thaws). */
static bool was_frozen(const Fs *f) {
        int fd = open(f->mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC), unused = 0;
        bool r;

        if (fd < 0)
                return false;
        r = ioctl(fd, FITHAW, &unused) == 0; /* a real int for valgrind, see freeze.c */
        close(fd);
        return r;
}

/* Forked children must not run the test's signal handler (it exits into cleanup paths). */
static void child_default_signals(void) {
        (void) signal(SIGTERM, SIG_DFL);
        (void) signal(SIGINT, SIG_DFL);
        (void) signal(SIGALRM, SIG_DFL);
}

/* A child that creates, writes and fsyncs a new file: it blocks while the filesystem is frozen. */
static pid_t start_writer(const Fs *f, const char *name) {
        char path[PATH_MAX];
        pid_t pid;

        snprintf(path, sizeof path, "%s/%s", f->mnt, name);
        pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int fd;

                child_default_signals();
                fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) < 0 || close(fd) < 0)
                        _exit(1);
                _exit(0);
        }
        track(pid);
        return pid;
}

static bool still_running(pid_t pid) {
        return waitpid(pid, NULL, WNOHANG) == 0;
}

/* The wait status of pid if it ends within timeout_ms, else -1. */
static int wait_child(pid_t pid, unsigned timeout_ms) {
        int64_t end = now_ms() + timeout_ms;
        int status;

        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);

                if (r == pid) {
                        untrack(pid);
                        return status;
                }
                if (r < 0 || now_ms() >= end)
                        return -1;
                sleep_ms(10);
        }
}

static void cleanup(void) {
        /* Children inherit the atexit handler; only the test itself cleans up. */
        if (getpid() != main_pid)
                return;

        /* Thaw before anything that could wait for a frozen filesystem: writers, helpers, umount. */
        if (live) {
                (void) freeze_lease_release(live);
                live = NULL;
        }
        for (size_t i = 0; i < ELEMENTS(tracked); i++)
                if (tracked[i] > 0)
                        (void) kill(tracked[i], SIGTERM); /* a helper thaws on SIGTERM */
        for (size_t i = 0; i < ELEMENTS(all_fs); i++)
                if (all_fs[i]->mounted)
                        (void) freeze_thaw_path(all_fs[i]->mnt);
        for (size_t i = 0; i < ELEMENTS(tracked); i++)
                if (tracked[i] > 0) {
                        (void) kill(tracked[i], SIGKILL);
                        (void) waitpid(tracked[i], NULL, 0);
                        tracked[i] = 0;
                }
        /* Orphaned helpers come to us (child subreaper); they hold the mount points open. */
        for (int64_t end = now_ms() + 5000; waitpid(-1, NULL, WNOHANG) >= 0 && now_ms() < end;)
                sleep_ms(10);

        if (bind_mounted && umount2(bind_mnt, 0) < 0)
                (void) umount2(bind_mnt, MNT_DETACH);
        bind_mounted = false;
        if (bind_mnt[0])
                (void) rmdir(bind_mnt);
        for (size_t i = 0; i < ELEMENTS(all_fs); i++) {
                Fs *f = all_fs[i];

                if (f->mounted) {
                        (void) freeze_thaw_path(f->mnt);
                        for (int tries = 0; umount2(f->mnt, 0) < 0; tries++)
                                if (errno != EBUSY || tries >= 50) {
                                        printf("# umount %s: %s, detaching\n", f->mnt, strerror(errno));
                                        (void) umount2(f->mnt, MNT_DETACH);
                                        break;
                                } else
                                        sleep_ms(100);
                        f->mounted = false;
                }
                if (f->mnt[0])
                        (void) rmdir(f->mnt);
                if (f->loopdev[0] && run(NULL, 0, "losetup", "-d", f->loopdev, NULL) != 0)
                        printf("# losetup -d %s failed\n", f->loopdev);
                f->loopdev[0] = '\0';
                if (f->img[0])
                        (void) unlink(f->img);
        }
        if (have_tmpdir)
                (void) rmdir(tmpdir);
        have_tmpdir = false;
}

/* SIGTERM (meson's timeout), SIGINT, and our own watchdog: exit() so cleanup() runs. Not
 * async-signal-safe in general; the test spends its time sleeping or waiting, so good enough. */
static void on_signal(int sig) {
        static const char msg[] = "# signal: cleaning up\n";

        if (write(STDOUT_FILENO, msg, sizeof msg - 1) < 0) {
        }
        exit(sig == SIGALRM ? 3 : 2);
}

static int make_fs(Fs *f) {
        char name[64];
        struct stat st_mnt, st_dev;
        int fd;

        snprintf(f->img, sizeof f->img, "%s/%s.img", tmpreal, f->type);
        fd = open(f->img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, f->size) < 0) {
                printf("# image %s: %s\n", f->img, strerror(errno));
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        close(fd);
        if (run(f->loopdev, sizeof f->loopdev, "losetup", "--find", "--show", f->img, NULL) != 0 ||
            strncmp(f->loopdev, "/dev/", 5) != 0) {
                printf("# losetup --find --show %s failed\n", f->img);
                f->loopdev[0] = '\0';
                return -1;
        }
        snprintf(name, sizeof name, "mkfs.%s", f->type);
        if (run(NULL, 0, name, "-q", strcmp(f->type, "xfs") == 0 ? "-f" : "-F", f->loopdev, NULL) != 0) {
                printf("# %s %s failed\n", name, f->loopdev);
                return -1;
        }
        snprintf(f->mnt, sizeof f->mnt, "%s/%s", tmpreal, f->type);
        if (mkdir(f->mnt, 0755) < 0 || mount(f->loopdev, f->mnt, f->type, 0, NULL) < 0) {
                printf("# mount %s on %s: %s\n", f->loopdev, f->mnt, strerror(errno));
                return -1;
        }
        f->mounted = true;
        /* Never freeze anything but our own filesystem (the root filesystem is shared with
         * everything else on this machine). */
        if (stat(f->mnt, &st_mnt) < 0 || stat(f->loopdev, &st_dev) < 0 || st_mnt.st_dev != st_dev.st_rdev) {
                printf("# %s is not the filesystem on %s\n", f->mnt, f->loopdev);
                return -1;
        }
        return 0;
}

static void case_freeze_release(void) {
        char sub[PATH_MAX], err[512] = "";
        const char *paths[3] = { fs_ext4.mnt, sub, fs_xfs.mnt };
        const char *const *mounts = NULL;
        pid_t w_ext4, w_xfs, helper;
        int r;

        snprintf(sub, sizeof sub, "%s/sub", fs_ext4.mnt);
        CHECK(mkdir(sub, 0755) == 0);

        r = freeze_lease_new(paths, ELEMENTS(paths), LONG_DEADLINE_MS, &live, err, sizeof err);
        CHECK(r == 0);
        if (r < 0) {
                printf("# freeze_lease_new: %s: %s\n", strerror(-r), err);
                return;
        }
        CHECK(freeze_lease_mounts(live, &mounts) == 2);
        CHECK_STR(mounts[0], fs_ext4.mnt);
        CHECK_STR(mounts[1], fs_xfs.mnt);
        helper = freeze_lease_pid(live);
        CHECK(helper > 0);

        w_ext4 = start_writer(&fs_ext4, "case1");
        w_xfs = start_writer(&fs_xfs, "case1");
        CHECK(w_ext4 > 0 && w_xfs > 0);
        sleep_ms(300);
        CHECK(still_running(w_ext4));
        CHECK(still_running(w_xfs));

        r = freeze_lease_release(live);
        live = NULL;
        CHECK(r == 0);
        CHECK(wait_child(w_ext4, 5000) == 0);
        CHECK(wait_child(w_xfs, 5000) == 0);
        CHECK(kill(helper, 0) < 0 && errno == ESRCH); /* reaped by release */
        CHECK(!was_frozen(&fs_ext4));
        CHECK(!was_frozen(&fs_xfs));
}

static void case_deadline(void) {
        const char *paths[] = { fs_ext4.mnt };
        char err[512] = "";
        int64_t t0 = now_ms(), t;
        pid_t w;
        int r;

        r = freeze_lease_new(paths, 1, 300, &live, err, sizeof err);
        CHECK(r == 0);
        if (r < 0) {
                printf("# freeze_lease_new: %s: %s\n", strerror(-r), err);
                return;
        }
        w = start_writer(&fs_ext4, "case2");
        CHECK(w > 0);
        sleep_ms(100);
        if (now_ms() - t0 < 250)
                CHECK(still_running(w));
        else
                printf("# too slow to check that the writer blocks before the deadline\n");
        CHECK(wait_child(w, 2000) == 0);
        t = now_ms() - t0;
        CHECK(t >= 300); /* it was held until the deadline, not less */
        printf("# writer finished after %lld ms\n", (long long) t);

        r = freeze_lease_release(live);
        live = NULL;
        CHECK(r == -ETIME);
        CHECK(!was_frozen(&fs_ext4));
}

static void case_parent_death(void) {
        int32_t msg[2] = { -1, -1 };
        int p[2], status;
        pid_t mid, w;

        CHECK(pipe2(p, O_CLOEXEC) == 0);
        mid = fork();
        CHECK(mid >= 0);
        if (mid < 0)
                return;
        if (mid == 0) {
                const char *paths[] = { fs_ext4.mnt };
                FreezeLease *l = NULL;
                sigset_t all;
                char err[256];
                int32_t m[2];

                /* Like vssd (sd-event), with every signal blocked: the helper must not inherit that. */
                child_default_signals();
                sigfillset(&all);
                (void) sigprocmask(SIG_SETMASK, &all, NULL);
                close(p[0]);
                m[0] = freeze_lease_new(paths, 1, LONG_DEADLINE_MS, &l, err, sizeof err);
                m[1] = m[0] == 0 ? freeze_lease_pid(l) : 0;
                if (write(p[1], m, sizeof m) != sizeof m)
                        _exit(1);
                for (;;)
                        pause();
        }
        track(mid);
        close(p[1]);
        CHECK(read(p[0], msg, sizeof msg) == sizeof msg);
        close(p[0]);
        CHECK(msg[0] == 0 && msg[1] > 0);
        if (msg[0] != 0 || msg[1] <= 0)
                return;
        track(msg[1]);

        w = start_writer(&fs_ext4, "case3");
        CHECK(w > 0);
        sleep_ms(200);
        CHECK(still_running(w));

        CHECK(kill(mid, SIGKILL) == 0);
        CHECK(waitpid(mid, NULL, 0) == mid);
        untrack(mid);
        CHECK(wait_child(w, 1000) == 0);
        /* The orphaned helper is ours now (child subreaper): it must have exited. */
        status = wait_child(msg[1], 1000);
        CHECK(status != -1 && WIFEXITED(status));
        CHECK(!was_frozen(&fs_ext4));
}

static void case_already_frozen(void) {
        const char *ext4_first[] = { fs_ext4.mnt, fs_xfs.mnt }, *xfs_first[] = { fs_xfs.mnt, fs_ext4.mnt };
        FreezeLease *l = NULL;
        char err[512] = "";
        int r;

        CHECK(run(NULL, 0, "fsfreeze", "-f", fs_xfs.mnt, NULL) == 0);

        /* ext4 is frozen first, then XFS fails: ext4 must be thawed again. */
        r = freeze_lease_new(ext4_first, 2, LONG_DEADLINE_MS, &l, err, sizeof err);
        CHECK(r == -EBUSY);
        CHECK(!l);
        CHECK(strstr(err, fs_xfs.mnt) != NULL);
        printf("# error: %s\n", err);
        CHECK(!was_frozen(&fs_ext4));

        r = freeze_lease_new(xfs_first, 2, LONG_DEADLINE_MS, &l, err, sizeof err);
        CHECK(r == -EBUSY);
        CHECK(!l);
        CHECK(!was_frozen(&fs_ext4));

        /* Succeeds only if XFS is still frozen: the failed leases did not thaw someone else's freeze. */
        CHECK(run(NULL, 0, "fsfreeze", "-u", fs_xfs.mnt, NULL) == 0);
        CHECK(!was_frozen(&fs_xfs));
}

static void case_bad_input(void) {
        char missing[PATH_MAX], err[512] = "";
        const char *paths[] = { fs_ext4.mnt, missing }, *with_null[] = { fs_ext4.mnt, NULL },
                   *unfreezable[] = { fs_ext4.mnt, "/proc" };
        FreezeLease *l = NULL;
        int r;

        snprintf(missing, sizeof missing, "%s/does-not-exist", fs_ext4.mnt);
        r = freeze_lease_new(paths, 2, LONG_DEADLINE_MS, &l, err, sizeof err);
        CHECK(r == -ENOENT);
        CHECK(!l);
        CHECK(strstr(err, "does-not-exist") != NULL);
        printf("# error: %s\n", err);
        CHECK(!was_frozen(&fs_ext4));

        CHECK(freeze_lease_new(paths, 0, LONG_DEADLINE_MS, &l, NULL, 0) == -EINVAL);
        CHECK(freeze_lease_new(paths, 1, 0, &l, NULL, 0) == -EINVAL);
        CHECK(freeze_lease_new(with_null, 2, LONG_DEADLINE_MS, &l, NULL, 0) == -EINVAL);
        CHECK(!l);

        /* A filesystem that cannot be frozen, after one that was: rolled back too. */
        r = freeze_lease_new(unfreezable, 2, LONG_DEADLINE_MS, &l, err, sizeof err);
        CHECK(r == -EOPNOTSUPP);
        CHECK(!l);
        printf("# error: %s\n", err);
        CHECK(!was_frozen(&fs_ext4));

        CHECK(freeze_lease_release(NULL) == 0);
        CHECK(freeze_thaw_path(fs_ext4.mnt) == 0); /* not frozen: fine */
        CHECK(freeze_thaw_path(missing) == -ENOENT);
}

static void case_helper_killed(void) {
        const char *paths[] = { fs_ext4.mnt, fs_xfs.mnt };
        char err[512] = "";
        pid_t w;
        int r;

        r = freeze_lease_new(paths, 2, LONG_DEADLINE_MS, &live, err, sizeof err);
        CHECK(r == 0);
        if (r < 0) {
                printf("# freeze_lease_new: %s: %s\n", strerror(-r), err);
                return;
        }
        /* SIGKILL is the one signal the helper cannot turn into a thaw: release must notice. */
        CHECK(kill(freeze_lease_pid(live), SIGKILL) == 0);
        w = start_writer(&fs_xfs, "case6");
        CHECK(w > 0);
        sleep_ms(200);
        CHECK(still_running(w));
        r = freeze_lease_release(live);
        live = NULL;
        CHECK(r == -EIO);
        CHECK(wait_child(w, 5000) == 0);
        CHECK(!was_frozen(&fs_ext4));
        CHECK(!was_frozen(&fs_xfs));
}

static void case_bind_mount(void) {
        char sub[PATH_MAX], err[512] = "";
        const char *paths[] = { bind_mnt, fs_xfs.mnt, fs_ext4.mnt };
        const char *const *mounts = NULL;
        int r;

        snprintf(bind_mnt, sizeof bind_mnt, "%s/bind", tmpreal);
        snprintf(sub, sizeof sub, "%s/sub", fs_ext4.mnt);
        (void) mkdir(sub, 0755);
        CHECK(mkdir(bind_mnt, 0755) == 0);
        CHECK(mount(sub, bind_mnt, "none", MS_BIND, NULL) == 0);
        bind_mounted = true;

        /* Another mount point of the same filesystem: a second FIFREEZE would say EBUSY. */
        r = freeze_lease_new(paths, ELEMENTS(paths), LONG_DEADLINE_MS, &live, err, sizeof err);
        CHECK(r == 0);
        if (r < 0) {
                printf("# freeze_lease_new: %s: %s\n", strerror(-r), err);
                return;
        }
        CHECK(freeze_lease_mounts(live, &mounts) == 2);
        CHECK_STR(mounts[0], bind_mnt);
        CHECK_STR(mounts[1], fs_xfs.mnt);
        r = freeze_lease_release(live);
        live = NULL;
        CHECK(r == 0);
        CHECK(!was_frozen(&fs_ext4));
        CHECK(!was_frozen(&fs_xfs));
}

/* The one mountinfo reader (providers/mountinfo.c) the lease, the providers and sessions share:
 * the longest mount point holding a path, its type filter, its device number. */
static void case_mountinfo(void) {
        char *target = NULL, *source = NULL, sub[PATH_MAX];
        struct stat st;
        dev_t dev = 0;

        snprintf(sub, sizeof sub, "%s/sub", fs_ext4.mnt);
        CHECK(mountinfo_find(sub, NULL, &target, &source, &dev) == 0);
        CHECK(target && strcmp(target, fs_ext4.mnt) == 0);
        CHECK(source && strcmp(source, fs_ext4.loopdev) == 0);
        CHECK(stat(fs_ext4.mnt, &st) == 0 && st.st_dev == dev);
        free(target);
        free(source);
        target = NULL;
        /* Of another type: never the ext4 mount, whatever holds it further up. */
        int r = mountinfo_find(sub, "xfs", &target, NULL, NULL);
        CHECK(r == -ENOENT || (r == 0 && strcmp(target, fs_ext4.mnt) != 0));
        free(target);
        target = NULL;
        CHECK(mountinfo_find(fs_xfs.mnt, "xfs", &target, NULL, NULL) == 0);
        CHECK(target && strcmp(target, fs_xfs.mnt) == 0);
        free(target);
        CHECK(mountinfo_find(sub, "no-such-fs-type", NULL, NULL, NULL) == -ENOENT);
        CHECK(mountinfo_find("/", NULL, NULL, NULL, &dev) == 0);
}

/* A lease on the ext4 filesystem with lease file file, into live: 0, or <0 (said on stdout). */
static int new_lease_with_file(const char *file) {
        const char *paths[] = { fs_ext4.mnt };
        char err[512] = "";
        int r = freeze_lease_new_with_file(paths, 1, LONG_DEADLINE_MS, file, &live, err, sizeof err);
        CHECK(r == 0);
        if (r < 0)
                printf("# freeze_lease_new_with_file: %s: %s\n", strerror(-r), err);
        return r;
}

/* The lease file: there and locked while the helper holds; gone once it thawed, however it
 * thawed; left unlocked only by a helper killed holding (which freeze_lease_settle() reports). */
static void case_lease_file(void) {
        const char *paths[] = { fs_ext4.mnt };
        char file[PATH_MAX], err[512] = "";
        struct stat st;
        pid_t helper;
        int r;

        snprintf(file, sizeof file, "%s/lease", tmpreal);

        /* Released on command. */
        if (new_lease_with_file(file) < 0)
                return;
        CHECK(stat(file, &st) == 0 && st.st_size > 0);
        CHECK(freeze_lease_new_with_file(paths, 1, LONG_DEADLINE_MS, file, &(FreezeLease *) { NULL }, err, sizeof err) ==
              -EEXIST);
        r = freeze_lease_release(live);
        live = NULL;
        CHECK(r == 0);
        CHECK(access(file, F_OK) < 0 && errno == ENOENT);
        CHECK(freeze_lease_settle(file, 5000) == 0);
        CHECK(!was_frozen(&fs_ext4));

        /* Settled while the helper is alive: it is told to thaw, and does. */
        if (new_lease_with_file(file) < 0)
                return;
        CHECK(freeze_lease_settle(file, 5000) == 0);
        CHECK(access(file, F_OK) < 0 && errno == ENOENT);
        CHECK(!was_frozen(&fs_ext4));
        (void) freeze_lease_release(live); /* reaps the helper */
        live = NULL;

        /* A helper SIGKILLed holding: the file says so, the caller thaws. */
        if (new_lease_with_file(file) < 0)
                return;
        helper = freeze_lease_pid(live);
        CHECK(kill(helper, SIGKILL) == 0);
        CHECK(waitpid(helper, NULL, 0) == helper);
        CHECK(freeze_lease_settle(file, 5000) == 1);
        CHECK(was_frozen(&fs_ext4)); /* still frozen until here: thaws it */
        CHECK(unlink(file) == 0);
        (void) freeze_lease_release(live);
        live = NULL;
        CHECK(!was_frozen(&fs_ext4));
}

/* freeze_lease_thaw(): once it returns the writers go on and the lease file is gone, before the
 * helper is reaped; asked again it says the same; freeze_lease_release() then reaps the helper
 * and returns that result. A helper killed holding: thaw says -EIO and thaws here. */
static void case_thaw_then_release(void) {
        char file[PATH_MAX];
        pid_t writer, helper;

        snprintf(file, sizeof file, "%s/lease-thaw", tmpreal);
        if (new_lease_with_file(file) < 0)
                return;
        helper = freeze_lease_pid(live);
        writer = start_writer(&fs_ext4, "thaw");
        CHECK(writer > 0);
        CHECK(freeze_lease_thaw(live) == 0);
        CHECK(wait_child(writer, 5000) == 0);
        CHECK(access(file, F_OK) < 0 && errno == ENOENT);
        CHECK(!was_frozen(&fs_ext4));
        CHECK(freeze_lease_thaw(live) == 0);
        CHECK(freeze_lease_release(live) == 0);
        live = NULL;
        CHECK(kill(helper, 0) < 0 && errno == ESRCH); /* reaped by release */

        if (new_lease_with_file(file) < 0)
                return;
        helper = freeze_lease_pid(live);
        CHECK(kill(helper, SIGKILL) == 0);
        CHECK(freeze_lease_thaw(live) == -EIO);
        CHECK(!was_frozen(&fs_ext4));
        CHECK(kill(helper, 0) < 0 && errno == ESRCH); /* reaped before the thaw */
        CHECK(freeze_lease_release(live) == -EIO);
        live = NULL;
        (void) unlink(file); /* a killed helper leaves it: settle's business, tested above */
}

/* A lease of the ext4 prepared into live (its lease file `file`); false when it could not be. */
static bool prepare_ext4(const char *file) {
        const char *paths[] = { fs_ext4.mnt };
        char err[512] = "";
        int r = freeze_lease_prepare(paths, 1, 0, file, &live, err, sizeof err);
        if (r < 0)
                printf("# freeze_lease_prepare: %s: %s\n", strerror(-r), err);
        CHECK(r == 0 && live);
        return live != NULL;
}

/* The ext4 was frozen by someone else while our lease waited: its end (r, want) thawed nothing
 * of theirs (was_frozen() sees the freeze, then thaws it) and left no lease file. */
static void theirs_kept(int r, int want, const char *file) {
        CHECK(r == want);
        CHECK(was_frozen(&fs_ext4));
        CHECK(access(file, F_OK) < 0 && errno == ENOENT);
}

static int release_live(void) {
        int r = freeze_lease_release(live);
        live = NULL;
        return r;
}

static void freeze_by_hand(void) {
        CHECK(run(NULL, 0, "fsfreeze", "-f", fs_ext4.mnt, NULL) == 0);
}

/* freeze_lease_prepare(): the helper is up and nothing is frozen (the lease file has no line
 * yet). Released, or killed while it waits (then released, or told to freeze), it thaws
 * nothing. Frozen later, it holds until released; a freeze refused (someone else's) frees the
 * lease. */
static void case_prepare(void) {
        char file[PATH_MAX], err[512] = "";
        struct stat st;
        pid_t helper;
        int r;

        snprintf(file, sizeof file, "%s/lease-prepared", tmpreal);
        if (!prepare_ext4(file))
                return;
        helper = freeze_lease_pid(live);
        CHECK(helper > 0 && kill(helper, 0) == 0);
        CHECK(stat(file, &st) == 0 && st.st_size == 0);
        freeze_by_hand();
        r = release_live();
        theirs_kept(r, 0, file);

        if (!prepare_ext4(file))
                return;
        CHECK(kill(freeze_lease_pid(live), SIGKILL) == 0);
        freeze_by_hand();
        r = release_live();
        theirs_kept(r, -EIO, file);

        if (!prepare_ext4(file))
                return;
        helper = freeze_lease_pid(live);
        CHECK(kill(helper, SIGKILL) == 0);
        CHECK(waitid(P_PID, (id_t) helper, &(siginfo_t) {}, WEXITED | WNOWAIT) == 0); /* its pipes are closed */
        freeze_by_hand();
        r = freeze_lease_freeze(&live, LONG_DEADLINE_MS, err, sizeof err);
        CHECK(live == NULL);
        theirs_kept(r, -EIO, file);

        if (!prepare_ext4(file))
                return;
        CHECK(!was_frozen(&fs_ext4));
        CHECK(freeze_lease_freeze(&live, LONG_DEADLINE_MS, err, sizeof err) == 0);
        CHECK(live != NULL);
        CHECK(stat(file, &st) == 0 && st.st_size > 0);
        CHECK(freeze_lease_freeze(&live, LONG_DEADLINE_MS, NULL, 0) == -EINVAL); /* once */
        CHECK(release_live() == 0);
        CHECK(!was_frozen(&fs_ext4));

        if (!prepare_ext4(file))
                return;
        freeze_by_hand();
        r = freeze_lease_freeze(&live, LONG_DEADLINE_MS, err, sizeof err);
        printf("# error: %s\n", err);
        CHECK(live == NULL);
        theirs_kept(r, -EBUSY, file);

        /* The file of a lease still waiting (as a helper's, left by a commit helper that died):
         * a second prepare says -EEXIST; settled, the waiting helper goes, thawing nothing, and
         * the prepare succeeds. The first is released after the second, whose file it is now. */
        FreezeLease *first;
        if (!prepare_ext4(file))
                return;
        first = live;
        live = NULL;
        helper = freeze_lease_pid(first);
        CHECK(freeze_lease_prepare((const char *[]) { fs_ext4.mnt }, 1, 0, file, &live, err, sizeof err) == -EEXIST);
        freeze_by_hand();
        CHECK(freeze_lease_settle(file, 5000) == 0);
        CHECK(waitid(P_PID, (id_t) helper, &(siginfo_t) {}, WEXITED | WNOWAIT) == 0);
        CHECK(access(file, F_OK) < 0 && errno == ENOENT);
        CHECK(was_frozen(&fs_ext4)); /* ours by hand: the settled helper thawed nothing */
        if (prepare_ext4(file)) {
                CHECK(freeze_lease_freeze(&live, LONG_DEADLINE_MS, err, sizeof err) == 0);
                CHECK(release_live() == 0);
        }
        CHECK(freeze_lease_release(first) == -EIO);
        CHECK(!was_frozen(&fs_ext4));
}

static void run_case(const char *name, void (*fn)(void)) {
        int before = test_failures;

        fn();
        printf("%sok %u - %s\n", test_failures == before ? "" : "not ", ++n_cases, name);
        fflush(stdout);
}

int main(void) {
        struct sigaction sa = { .sa_handler = on_signal };

        setvbuf(stdout, NULL, _IOLBF, 0);
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (loop devices, mount, FIFREEZE)\n");
                return 77;
        }
        if (run(NULL, 0, "sh", "-c", "{ command -v mkfs.ext4 && command -v mkfs.xfs && command -v losetup && command -v fsfreeze; } >/dev/null",
                NULL) != 0) {
                printf("1..0 # SKIP needs mkfs.ext4, mkfs.xfs, losetup and fsfreeze\n");
                return 77;
        }

        main_pid = getpid();
        /* So the helper orphaned in case 3 is reparented to us and can be waited for. */
        (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
        if (atexit(cleanup) != 0)
                return 1;
        sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGTERM, &sa, NULL);
        (void) sigaction(SIGINT, &sa, NULL);
        (void) sigaction(SIGALRM, &sa, NULL);
        alarm(100); /* before meson's timeout of 120 s, so we still clean up */

        if (!mkdtemp(tmpdir)) {
                printf("Bail out! mkdtemp: %s\n", strerror(errno));
                return 1;
        }
        have_tmpdir = true;
        {
                char real[PATH_MAX];

                if (!realpath(tmpdir, real) || strlen(real) >= sizeof tmpreal) {
                        printf("Bail out! realpath %s: %s\n", tmpdir, strerror(errno));
                        return 1;
                }
                strcpy(tmpreal, real);
        }
        for (size_t i = 0; i < ELEMENTS(all_fs); i++)
                if (make_fs(all_fs[i]) < 0) {
                        printf("Bail out! cannot make the %s filesystem\n", all_fs[i]->type);
                        return 1;
                }

        printf("1..10\n");
        run_case("freeze two filesystems (one given twice), writers block until release", case_freeze_release);
        run_case("the deadline thaws without release; release then says -ETIME", case_deadline);
        run_case("the helper thaws when its parent is SIGKILLed", case_parent_death);
        run_case("a filesystem frozen by someone else: -EBUSY, nothing of ours stays frozen", case_already_frozen);
        run_case("bad input freezes nothing", case_bad_input);
        run_case("a SIGKILLed helper: release thaws and says -EIO", case_helper_killed);
        run_case("a bind mount of a filesystem already listed is frozen once", case_bind_mount);
        run_case("the lease file tells a helper that thawed from one killed holding", case_lease_file);
        run_case("mountinfo: the longest mount point holding a path, by type, with its device", case_mountinfo);
        run_case("thaw first, reap later: the same result, nothing frozen, nothing left", case_thaw_then_release);
        run_case("prepared, then released, killed or frozen: nothing of someone else's thawed", case_prepare);

        cleanup();
        /* Every helper was reaped. */
        CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
        return test_failures == 0 ? 0 : 1;
}
