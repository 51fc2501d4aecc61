/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The freeze lease's helper (freeze.h): the child that holds the freezes. */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/freeze-internal.h"
#include "lib/common.h"

/* ---- The helper. Runs after fork() of a possibly multithreaded parent: syscalls only, no malloc,
 * no stdio, no parent state; and nothing may be written to disk while a filesystem is frozen. */

static volatile sig_atomic_t helper_signal;

static void helper_on_signal(int sig) {
        helper_signal = sig;
}

static void helper_say(const char *a, const char *b) {
        /* stderr only, and only when a thaw fails. */
        const char *parts[] = { "openvss freeze helper: ", a, b, "\n" };

        for (size_t i = 0; i < ELEMENTSOF(parts); i++)
                if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0)
                        return;
}

/* Every catchable signal that would kill us is turned into "thaw, then exit"; stop signals are
 * ignored, since a stopped helper could not thaw at its deadline. All stay blocked except inside
 * ppoll(), so a signal can never land between a FIFREEZE and our record of it. */
static void helper_setup_signals(void) {
        struct sigaction thaw = { .sa_handler = helper_on_signal }, dfl = { .sa_handler = SIG_DFL },
                         ign = { .sa_handler = SIG_IGN };

        sigfillset(&thaw.sa_mask);
        for (int sig = 1; sig <= SIGRTMAX; sig++) {
                const struct sigaction *sa = &thaw;

                if (sig == SIGKILL || sig == SIGSTOP || (sig > SIGSYS && sig < SIGRTMIN))
                        continue; /* uncatchable, or reserved by libc */
                switch (sig) {
                case SIGSEGV: case SIGBUS: case SIGILL: case SIGFPE: case SIGTRAP: case SIGSYS:
                        /* synchronous: a handler that returns would loop */
                case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
                        /* harmless by default; drop handlers inherited from the parent */
                        sa = &dfl;
                        break;
                case SIGPIPE: case SIGTSTP: case SIGTTIN: case SIGTTOU:
                        sa = &ign;
                        break;
                }
                (void) sigaction(sig, sa, NULL);
        }
}

static void close_between(unsigned lo, unsigned hi) {
        struct rlimit rl;
        unsigned max = 65536;

        if (lo > hi || close_range(lo, hi, 0) == 0)
                return;
        /* No close_range() (before Linux 5.9). */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < max)
                max = (unsigned) rl.rlim_cur;
        for (unsigned fd = lo; fd <= hi && fd < max; fd++)
                (void) close((int) fd);
}

/* Keeps stdio, the two pipes, the lease file and the mount fds; keep has room for n + 3 (allocated
 * by the parent). */
static void helper_close_other_fds(int *keep, int cmd_fd, int status_fd, int lease_fd, const int *fds, size_t n) {
        size_t k = 0;
        unsigned lo = 3;

        keep[k++] = cmd_fd;
        keep[k++] = status_fd;
        if (lease_fd >= 0)
                keep[k++] = lease_fd;
        for (size_t i = 0; i < n; i++)
                keep[k++] = fds[i];
        for (size_t i = 1; i < k; i++) /* insertion sort: n is small */
                for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
                        int t = keep[j];
                        keep[j] = keep[j - 1];
                        keep[j - 1] = t;
                }
        for (size_t i = 0; i < k; i++) {
                if ((unsigned) keep[i] < lo)
                        continue;
                if ((unsigned) keep[i] > lo)
                        close_between(lo, (unsigned) keep[i] - 1);
                lo = (unsigned) keep[i] + 1;
        }
        close_between(lo, ~0U);
}

/* Thaws fds[n-1] .. fds[0]; returns the errno of the first failure (index in *ret_index), or 0. */
static int helper_thaw(const int *fds, size_t n, char *const *mounts, uint32_t *ret_index) {
        int first = 0;

        for (size_t i = n; i-- > 0;) {
                int e;

                if (fs_ioctl(fds[i], FITHAW) >= 0)
                        continue;
                e = errno;
                if (e != EINVAL) /* EINVAL: someone else thawed it already */
                        helper_say("FITHAW failed: ", mounts[i]);
                if (first == 0) {
                        first = e;
                        if (ret_index)
                                *ret_index = (uint32_t) i;
                }
        }
        return first;
}

/* Takes the lease file's lock, at setup: from here on a restarted vssd that finds the file
 * locked knows the helper is alive (and tells it to go: it thaws what it froze, if anything). */
static int helper_lock(LeaseFile *lf) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

        if (lf->fd < 0)
                return 0;
        return fcntl(lf->fd, F_SETLK, &fl) < 0 ? errno : 0;
}

/* Writes the boot id into the lease file: from here on, a lease file that has a line and no lock
 * is one whose helper died before it could thaw. Just before the first freeze, so this write
 * cannot block on one, and a helper killed while it waited leaves a file that thaws nothing. */
static int helper_arm(LeaseFile *lf) {
        size_t len = strlen(lf->line);

        if (lf->fd < 0)
                return 0;
        if (pwrite(lf->fd, lf->line, len, 0) != (ssize_t) len)
                return errno ? errno : EIO;
        return 0;
}

/* Once everything is thawed: the lease is over, nothing of it is frozen. The lock goes with the
 * helper's exit, after the file. */
static void helper_retire(const LeaseFile *lf) {
        if (lf->fd >= 0)
                (void) unlink(lf->path);
}

static void helper_send(int fd, const HelperMsg *m) {
        /* SIGPIPE is ignored: if the parent is gone the write fails and ppoll() sees the hangup. */
        while (write(fd, m, sizeof *m) < 0 && errno == EINTR)
                ;
}

/* Reads exactly size bytes (the rest of a command, written at once). */
static bool helper_read_all(int fd, void *buf, size_t size) {
        size_t got = 0;
        while (got < size) {
                ssize_t k = read(fd, (char *) buf + got, size - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return false;
                got += (size_t) k;
        }
        return true;
}

/* Set up, before anything is frozen: waits for CMD_FREEZE and returns its deadline. Any other
 * end (CMD_THAW, EOF, a signal) exits here; nothing is frozen, so nothing is thawed: a
 * filesystem frozen meanwhile is someone else's. */
static int64_t helper_wait_freeze(int cmd_fd, int status_fd, LeaseFile *lf, const sigset_t *none) {
        for (;;) {
                struct pollfd p = { .fd = cmd_fd, .events = POLLIN };
                int64_t deadline;
                char c;

                int r = ppoll(&p, 1, NULL, none);
                if (helper_signal != 0 || (r < 0 && errno != EINTR)) {
                        helper_retire(lf);
                        _exit(EXIT_FAILURE);
                }
                if (r <= 0)
                        continue;
                ssize_t k = read(cmd_fd, &c, 1);
                if (k == 1 && c == CMD_FREEZE && helper_read_all(cmd_fd, &deadline, sizeof deadline))
                        return deadline;
                /* The file first, as after a thaw: once the parent has the reply, it is gone. */
                helper_retire(lf);
                if (k == 1 && c == CMD_THAW) /* released before it froze */
                        helper_send(status_fd, &(HelperMsg) { .kind = MSG_THAWED });
                _exit(k == 1 && c == CMD_THAW ? EXIT_SUCCESS : EXIT_FAILURE);
        }
}

_Noreturn void freeze_helper_main(int cmd_fd, int status_fd, int *fds, size_t n, char *const *mounts, int *keep,
                                  LeaseFile *lf, pid_t parent) {
        HelperMsg m = { .kind = MSG_READY };
        sigset_t all, none;
        size_t frozen = 0;
        bool expired = false;
        int expired_error = 0;

        sigfillset(&all);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        helper_setup_signals();
        /* The parent may have died before PR_SET_PDEATHSIG took effect; nothing is frozen yet. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent) {
                helper_retire(lf);
                _exit(EXIT_FAILURE);
        }
        helper_close_other_fds(keep, cmd_fd, status_fd, lf->fd, fds, n);
        if ((m.error = helper_lock(lf)) != 0) {
                m.kind = MSG_ARM_FAILED;
                helper_retire(lf);
                helper_send(status_fd, &m);
                _exit(EXIT_SUCCESS);
        }
        helper_send(status_fd, &m);
        int64_t deadline = helper_wait_freeze(cmd_fd, status_fd, lf, &none);
        m = (HelperMsg) { .kind = MSG_FROZEN };
        if ((m.error = helper_arm(lf)) != 0) {
                m.kind = MSG_ARM_FAILED;
                helper_retire(lf);
                helper_send(status_fd, &m);
                _exit(EXIT_SUCCESS);
        }

        /* The deadline is armed (fixed by the parent before the command); check it before each
         * freeze and after the last, so a lease that would start out expired is refused rather
         * than granted. */
        for (size_t i = 0; i <= n; i++) {
                if (now_ns() >= deadline) {
                        m = (HelperMsg) { MSG_FREEZE_FAILED, ETIME, (uint32_t) (i < n ? i : n - 1) };
                        break;
                }
                if (i == n)
                        break;
                if (fs_ioctl(fds[i], FIFREEZE) < 0) {
                        m = (HelperMsg) { MSG_FREEZE_FAILED, errno, (uint32_t) i };
                        break;
                }
                frozen++;
        }
        if (m.kind == MSG_FREEZE_FAILED) {
                (void) helper_thaw(fds, frozen, mounts, NULL);
                helper_retire(lf);
                helper_send(status_fd, &m);
                _exit(EXIT_SUCCESS);
        }
        helper_send(status_fd, &m);

        for (;;) {
                struct pollfd p = { .fd = cmd_fd, .events = POLLIN };
                struct timespec ts, *timeout = NULL;
                HelperMsg reply = {};
                ssize_t k;
                char c;
                int r;

                if (!expired) {
                        int64_t left = deadline - now_ns();

                        if (left <= 0) {
                                /* Hold window exceeded: thaw now, then wait to tell the parent. */
                                expired_error = helper_thaw(fds, n, mounts, NULL);
                                helper_retire(lf);
                                expired = true;
                                for (size_t i = 0; i < n; i++) /* so the filesystems can be unmounted */
                                        (void) close(fds[i]);
                                continue;
                        }
                        ts = (struct timespec) { .tv_sec = left / NSEC_PER_SEC, .tv_nsec = left % NSEC_PER_SEC };
                        timeout = &ts;
                }

                r = ppoll(&p, 1, timeout, &none);
                if (helper_signal != 0 || (r < 0 && errno != EINTR)) {
                        if (!expired)
                                (void) helper_thaw(fds, n, mounts, NULL);
                        helper_retire(lf);
                        _exit(EXIT_FAILURE);
                }
                if (r <= 0)
                        continue; /* timeout: the top of the loop handles the deadline */

                k = read(cmd_fd, &c, 1);
                if (k == 1 && c == CMD_THAW) {
                        if (expired)
                                reply = (HelperMsg) { MSG_EXPIRED, expired_error, 0 };
                        else {
                                reply.kind = MSG_THAWED;
                                reply.error = helper_thaw(fds, n, mounts, &reply.index);
                        }
                        helper_retire(lf);
                        /* What is left is our exit, the teardown of a forked process (most of a
                         * millisecond on a small VM): at the lowest priority, so the parent, woken
                         * by the reply and about to let the writers go, runs first. */
                        (void) setpriority(PRIO_PROCESS, 0, 19);
                        helper_send(status_fd, &reply);
                        _exit(EXIT_SUCCESS);
                }
                /* EOF: the parent is gone. Anything else is a protocol error. Either way, thaw. */
                if (!expired)
                        (void) helper_thaw(fds, n, mounts, NULL);
                helper_retire(lf);
                _exit(k == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
        }
}

