/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/freeze.h"
#include "daemon/freeze-internal.h"
#include "lib/basic/time-util.h"
#include "lib/common.h"
#include "providers/mountinfo.h"

struct FreezeLease {
        pid_t pid;
        int cmd_fd;    /* write end of parent -> helper */
        int status_fd; /* read end of helper -> parent */
        char **mounts;
        size_t n_mounts;
        char *lease_file; /* or NULL */
        bool freeze_sent; /* CMD_FREEZE went: from then on a dead helper may have left freezes */
        bool thawed;      /* freeze_lease_thaw() ran: its result is thaw_result */
        int thaw_result;
};

static void strv_free_n(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

_printf_(3, 4) static void set_error(char *errbuf, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (!errbuf || errlen == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
}

static int read_msg(int fd, HelperMsg *m) {
        size_t got = 0;

        while (got < sizeof *m) {
                ssize_t k = read(fd, (char *) m + got, sizeof *m - got);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO; /* the helper died */
                got += (size_t) k;
        }
        return 0;
}

/* A command to the helper, in one write. A dead helper must not kill us with SIGPIPE, and we
 * install no signal handlers: block SIGPIPE around the write and consume the one it raised. */
static int write_cmd(int fd, const char *cmd, size_t len) {
        struct timespec zero = {};
        sigset_t pipe_set, old, pending;
        bool was_pending;
        ssize_t k;
        int r;

        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        r = pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
        if (r != 0)
                return -r;
        was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);

        do
                k = write(fd, cmd, len);
        while (k < 0 && errno == EINTR);
        r = k == (ssize_t) len ? 0 : k < 0 ? -errno : -EIO;

        if (r == -EPIPE && !was_pending)
                while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
                        ;
        (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
        return r;
}

static void reap(pid_t pid) {
        /* On our pid only: vssd's sd-event owns its other children. ECHILD (SIGCHLD ignored, the
         * kernel reaped it) is fine. */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

/* Fallback when the helper died without reporting (SIGKILL, OOM killer): it may have left any
 * of them frozen, and a filesystem left frozen is the one thing that must not happen. The lease
 * file goes after the thaw, as the helper's would. */
static void thaw_all_paths(char *const *mounts, size_t n, const char *lease_file) {
        for (size_t i = n; i-- > 0;)
                (void) freeze_thaw_path(mounts[i]);
        if (lease_file)
                (void) unlink(lease_file);
}

/* ---- The parent side. */

static void lease_free(FreezeLease *l) {
        if (!l)
                return;
        if (l->cmd_fd >= 0)
                close(l->cmd_fd);
        if (l->status_fd >= 0)
                close(l->status_fd);
        strv_free_n(l->mounts, l->n_mounts);
        free(l->lease_file);
        free(l);
}

static void close_all(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

int freeze_lease_new(const char *const *paths, size_t n_paths, uint32_t deadline_ms, FreezeLease **ret,
                     char *errbuf, size_t errlen) {
        return freeze_lease_new_with_file(paths, n_paths, deadline_ms, NULL, ret, errbuf, errlen);
}

/* The boot id, so a lease file from before a reboot (when every freeze ended) counts for nothing. */
static void lease_line(char *buf, size_t size) {
        _cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        ssize_t k = fd >= 0 ? read(fd, buf, size - 1) : -1;

        if (k <= 0)
                k = snprintf(buf, size, "unknown-boot\n");
        buf[k] = '\0';
}

/* What a lease needs before its helper is forked: everything that can fail without a freeze
 * happens first, so bad input freezes nothing. */
typedef struct LeasePrep {
        FreezeLease *l;
        LeaseFile lf;
        dev_t *devs;
        int *fds, *keep;
        int cmd[2], status[2];
} LeasePrep;

/* The distinct mounts (one per superblock) holding paths, into l->mounts. */
static int prep_mounts(LeasePrep *p, const char *const *paths, size_t n_paths, unsigned flags, char *errbuf,
                       size_t errlen) {
        FreezeLease *l = p->l;
        for (size_t i = 0; i < n_paths; i++) {
                _cleanup_free_ char *real = realpath(paths[i], NULL), *target = NULL;
                dev_t dev = 0;
                bool dup = false;

                if (!real) {
                        int r = -errno;
                        set_error(errbuf, errlen, "Cannot resolve %s: %s", paths[i], strerror(errno));
                        return r;
                }
                /* The mount is looked up from this string alone: what was checked is what freezes. */
                if ((flags & FREEZE_PATHS_RESOLVED) && !streq(real, paths[i])) {
                        set_error(errbuf, errlen, "%s now leads to %s: a directory on the way was replaced since it "
                                  "was chosen; nothing frozen", paths[i], real);
                        return -EXDEV;
                }
                int r = mountinfo_find(real, NULL, &target, NULL, &dev);
                if (r == -ENOENT) {
                        set_error(errbuf, errlen, "No mount point found for %s", real);
                        return r;
                }
                if (r < 0) {
                        set_error(errbuf, errlen, "Cannot read /proc/self/mountinfo: %s",
                                  r == -ELIBACC && mountinfo_load_error() ? mountinfo_load_error() : strerror(-r));
                        return r;
                }
                /* A second FIFREEZE of the same superblock would fail with EBUSY. */
                for (size_t j = 0; j < l->n_mounts && !dup; j++)
                        dup = p->devs[j] == dev || streq(l->mounts[j], target);
                if (dup)
                        continue;
                l->mounts[l->n_mounts] = TAKE_PTR(target);
                p->devs[l->n_mounts++] = dev;
        }
        return 0;
}

/* The mount points opened (the helper freezes through these fds). */
static int prep_fds(LeasePrep *p, char *errbuf, size_t errlen) {
        FreezeLease *l = p->l;
        p->fds = malloc(l->n_mounts * sizeof *p->fds);
        p->keep = malloc((l->n_mounts + 3) * sizeof *p->keep);
        if (!p->fds || !p->keep) {
                set_error(errbuf, errlen, "Out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < l->n_mounts; i++)
                p->fds[i] = -1;
        for (size_t i = 0; i < l->n_mounts; i++) {
                p->fds[i] = open(l->mounts[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
                if (p->fds[i] < 0) {
                        int r = -errno;
                        set_error(errbuf, errlen, "Cannot open %s: %s", l->mounts[i], strerror(errno));
                        return r;
                }
        }
        return 0;
}

/* A new lease file: one left over would be another lease's. */
static int prep_lease_file(LeasePrep *p, const char *lease_file, char *errbuf, size_t errlen) {
        FreezeLease *l = p->l;
        l->lease_file = strdup(lease_file);
        if (!l->lease_file) {
                set_error(errbuf, errlen, "Out of memory");
                return -ENOMEM;
        }
        p->lf.fd = open(lease_file, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (p->lf.fd < 0) {
                int r = -errno;
                set_error(errbuf, errlen, "Cannot create the lease file %s: %s", lease_file, strerror(errno));
                free(TAKE_PTR(l->lease_file)); /* not ours to remove */
                return r;
        }
        p->lf.path = l->lease_file;
        lease_line(p->lf.line, sizeof p->lf.line);
        return 0;
}

/* After the fork: the helper's first message. The helper checks its deadline only between
 * freezes; a FIFREEZE stuck in the kernel (a filesystem whose image lives on one already frozen)
 * would hold it forever. So wait no longer than the deadline and a second: then kill it and thaw
 * from here. */
static int lease_wait_frozen(FreezeLease *l, int64_t deadline, uint32_t deadline_ms, char *errbuf, size_t errlen) {
        struct pollfd pfd = { .fd = l->status_fd, .events = POLLIN };
        int64_t left_ms = (deadline - now_ns()) / NSEC_PER_MSEC + 1000;
        HelperMsg m;
        int k, r;
        do
                k = poll(&pfd, 1, left_ms > 0 ? (int) left_ms : 0);
        while (k < 0 && errno == EINTR);
        if (k == 0) {
                (void) kill(l->pid, SIGKILL);
                thaw_all_paths(l->mounts, l->n_mounts, l->lease_file); /* releases a helper stuck behind a frozen fs */
                reap(l->pid);
                thaw_all_paths(l->mounts, l->n_mounts, l->lease_file); /* and whatever it froze on its way out */
                set_error(errbuf, errlen, "Freezing did not finish within the deadline of %" PRIu32 " ms", deadline_ms);
                return -ETIME;
        }

        r = read_msg(l->status_fd, &m);
        if (r >= 0 && m.kind == MSG_FROZEN)
                return 0;
        reap(l->pid);
        if (r < 0 || (m.kind != MSG_FREEZE_FAILED && m.kind != MSG_ARM_FAILED) || m.error <= 0 || m.index >= l->n_mounts) {
                thaw_all_paths(l->mounts, l->n_mounts, l->lease_file);
                set_error(errbuf, errlen, "The freeze helper died unexpectedly");
                return -EIO;
        }
        if (m.kind == MSG_ARM_FAILED) {
                set_error(errbuf, errlen, "Cannot take the lease file %s: %s", l->lease_file, strerror(m.error));
                return -m.error;
        }
        const char *mp = l->mounts[m.index];
        if (m.error == EBUSY)
                set_error(errbuf, errlen, "%s is already frozen by someone else", mp);
        else if (m.error == ETIME)
                set_error(errbuf, errlen, "Deadline of %" PRIu32 " ms passed while freezing %s", deadline_ms, mp);
        else
                set_error(errbuf, errlen, "Cannot freeze %s: %s", mp, strerror(m.error));
        return -m.error;
}

/* Frees what the preparation holds; on failure (l not handed out) the lease too. */
static void prep_done(LeasePrep *p, bool failed) {
        if (failed && p->lf.fd >= 0) {
                close(p->lf.fd);
                (void) unlink(p->l->lease_file); /* made above; no helper ever had it */
        }
        if (p->fds)
                close_all(p->fds, p->l->n_mounts);
        for (size_t i = 0; i < 2; i++) {
                if (p->cmd[i] >= 0)
                        close(p->cmd[i]);
                if (p->status[i] >= 0)
                        close(p->status[i]);
        }
        free(p->fds);
        free(p->keep);
        free(p->devs);
        if (failed)
                lease_free(p->l);
}

static int check_args(const char *const *paths, size_t n_paths, uint32_t deadline_ms, FreezeLease **ret, char *errbuf,
                      size_t errlen) {
        if (!ret || !paths || n_paths == 0 || deadline_ms == 0) {
                set_error(errbuf, errlen, "Invalid arguments: %s",
                          !ret || !paths || n_paths == 0 ? "no paths given" : "deadline of 0 ms");
                return -EINVAL;
        }
        for (size_t i = 0; i < n_paths; i++)
                if (!paths[i]) {
                        set_error(errbuf, errlen, "Invalid arguments: path %zu is NULL", i);
                        return -EINVAL;
                }
        return 0;
}

/* The helper's first message, at its setup: it is ready, or it could not take the lease file.
 * Nothing is frozen either way; its setup cannot block on a freeze, and a second is plenty. */
static int lease_wait_ready(FreezeLease *l, char *errbuf, size_t errlen) {
        struct pollfd pfd = { .fd = l->status_fd, .events = POLLIN };
        HelperMsg m;
        int k;
        do
                k = poll(&pfd, 1, 30000);
        while (k < 0 && errno == EINTR);
        int r = k > 0 ? read_msg(l->status_fd, &m) : -ETIME;
        if (r >= 0 && m.kind == MSG_READY)
                return 0;
        if (r == -ETIME)
                (void) kill(l->pid, SIGKILL);
        reap(l->pid);
        l->pid = -1;
        if (l->lease_file) /* ours (made here), and nothing is frozen; the helper may have removed it */
                (void) unlink(l->lease_file);
        if (r >= 0 && m.kind == MSG_ARM_FAILED && m.error > 0) {
                set_error(errbuf, errlen, "Cannot take the lease file %s: %s", l->lease_file, strerror(m.error));
                return -m.error;
        }
        set_error(errbuf, errlen, r == -ETIME ? "The freeze helper did not start" : "The freeze helper died unexpectedly");
        return r == -ETIME ? r : -EIO;
}

int freeze_lease_prepare(const char *const *paths, size_t n_paths, unsigned flags, const char *lease_file,
                         FreezeLease **ret, char *errbuf, size_t errlen) {
        LeasePrep p = { .lf.fd = -1, .cmd = { -1, -1 }, .status = { -1, -1 } };
        int r = check_args(paths, n_paths, UINT32_MAX, ret, errbuf, errlen);
        if (r < 0)
                return r;

        p.l = calloc(1, sizeof *p.l);
        p.devs = calloc(n_paths, sizeof *p.devs);
        if (!p.l || !p.devs) {
                free(p.l);
                free(p.devs);
                set_error(errbuf, errlen, "Out of memory");
                return -ENOMEM;
        }
        FreezeLease *l = p.l;
        l->cmd_fd = l->status_fd = -1;
        l->mounts = calloc(n_paths, sizeof *l->mounts);
        r = l->mounts ? 0 : -ENOMEM;
        if (r < 0)
                set_error(errbuf, errlen, "Out of memory");
        if (r >= 0)
                r = prep_mounts(&p, paths, n_paths, flags, errbuf, errlen);
        if (r >= 0)
                r = prep_fds(&p, errbuf, errlen);
        if (r >= 0 && lease_file)
                r = prep_lease_file(&p, lease_file, errbuf, errlen);
        if (r >= 0 && (pipe2(p.cmd, O_CLOEXEC) < 0 || pipe2(p.status, O_CLOEXEC) < 0)) {
                r = -errno;
                set_error(errbuf, errlen, "Cannot create pipes: %s", strerror(errno));
        }
        if (r < 0) {
                prep_done(&p, true);
                return r;
        }

        pid_t parent = getpid();
        l->pid = fork();
        if (l->pid < 0) {
                r = -errno;
                set_error(errbuf, errlen, "Cannot fork the freeze helper: %s", strerror(errno));
                prep_done(&p, true);
                return r;
        }
        if (l->pid == 0)
                freeze_helper_main(p.cmd[0], p.status[1], p.fds, l->n_mounts, l->mounts, p.keep, &p.lf, parent);

        /* The helper's ends: a dead helper must show as EOF. */
        close(TAKE_FD(p.cmd[0]));
        close(TAKE_FD(p.status[1]));
        l->cmd_fd = TAKE_FD(p.cmd[1]);
        l->status_fd = TAKE_FD(p.status[0]);
        close_all(p.fds, l->n_mounts); /* the helper has its own; ours would keep the mounts busy */
        if (p.lf.fd >= 0) /* the lock is the helper's alone (POSIX locks are per process) */
                close(TAKE_FD(p.lf.fd));

        r = lease_wait_ready(l, errbuf, errlen);
        /* A helper that failed its setup removed the lease file itself (or never made it ours). */
        prep_done(&p, r < 0);
        if (r < 0)
                return r;
        *ret = l;
        return 0;
}

int freeze_lease_freeze(FreezeLease **lp, uint32_t deadline_ms, char *errbuf, size_t errlen) {
        FreezeLease *l = lp ? *lp : NULL;
        if (!l || l->freeze_sent || deadline_ms == 0) {
                set_error(errbuf, errlen, "Invalid arguments: %s", !l ? "no lease" : l->freeze_sent ? "frozen already" : "deadline of 0 ms");
                return -EINVAL;
        }
        int64_t deadline = now_ns() + (int64_t) deadline_ms * NSEC_PER_MSEC;
        char cmd[1 + sizeof deadline] = { CMD_FREEZE };
        memcpy(cmd + 1, &deadline, sizeof deadline);
        int r = write_cmd(l->cmd_fd, cmd, sizeof cmd);
        if (r < 0) {
                /* It died while it waited (EPIPE): it froze nothing, and a filesystem frozen now
                 * is someone else's. */
                reap(l->pid);
                if (l->lease_file)
                        (void) unlink(l->lease_file);
                set_error(errbuf, errlen, "The freeze helper died before it was told to freeze");
                r = -EIO;
        } else {
                l->freeze_sent = true;
                r = lease_wait_frozen(l, deadline, deadline_ms, errbuf, errlen);
        }
        if (r < 0) {
                /* Reaped, and nothing of it frozen (lease_wait_frozen()). */
                l->pid = -1;
                lease_free(TAKE_PTR(*lp));
        }
        return r;
}

int freeze_lease_new_with_file(const char *const *paths, size_t n_paths, uint32_t deadline_ms, const char *lease_file,
                               FreezeLease **ret, char *errbuf, size_t errlen) {
        FreezeLease *l = NULL;
        int r = check_args(paths, n_paths, deadline_ms, ret, errbuf, errlen);
        if (r >= 0)
                r = freeze_lease_prepare(paths, n_paths, 0, lease_file, &l, errbuf, errlen);
        if (r >= 0)
                r = freeze_lease_freeze(&l, deadline_ms, errbuf, errlen);
        if (r >= 0)
                *ret = l;
        return r;
}

int freeze_lease_thaw(FreezeLease *l) {
        HelperMsg m;
        int r;

        if (!l)
                return 0;
        if (l->thawed)
                return l->thaw_result;
        l->thawed = true;
        /* If the helper is gone, the write fails and the read below sees EOF. */
        (void) write_cmd(l->cmd_fd, &(char) { CMD_THAW }, 1);
        r = read_msg(l->status_fd, &m);
        if (r < 0 || (m.kind != MSG_THAWED && m.kind != MSG_EXPIRED)) {
                reap(l->pid); /* so that nothing it still does can freeze after our thaw */
                l->pid = -1;
                /* Told to freeze, it may have left freezes; never told, it froze nothing, and a
                 * filesystem frozen now is someone else's. */
                if (l->freeze_sent)
                        thaw_all_paths(l->mounts, l->n_mounts, l->lease_file);
                else if (l->lease_file)
                        (void) unlink(l->lease_file);
                r = -EIO;
        } else if (m.kind == MSG_EXPIRED)
                r = -ETIME;
        else if (m.error == EINVAL)
                r = -ESTALE; /* not frozen any more when we thawed: someone else thawed it */
        else
                r = -m.error;
        return l->thaw_result = r;
}

int freeze_lease_release(FreezeLease *l) {
        if (!l)
                return 0;
        int r = freeze_lease_thaw(l);
        if (l->pid > 0)
                reap(l->pid);
        lease_free(l);
        return r;
}

size_t freeze_lease_mounts(FreezeLease *l, const char *const **ret) {
        if (!l) {
                if (ret)
                        *ret = NULL;
                return 0;
        }
        if (ret)
                *ret = (const char *const *) l->mounts;
        return l->n_mounts;
}

pid_t freeze_lease_pid(FreezeLease *l) {
        return l ? l->pid : -1;
}

int freeze_thaw_path(const char *mount_point) {
        _cleanup_close_ int fd = -1;

        if (!mount_point)
                return -EINVAL;
        fd = open(mount_point, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fs_ioctl(fd, FITHAW) < 0)
                return errno == EINVAL ? 0 : -errno;
        return 0;
}
