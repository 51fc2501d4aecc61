/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "lib/basic/macro.h"
#include "lib/basic/spawn.h"
#include "lib/basic/time-util.h"

extern char **environ;

#define NO_PIDFD_POLL_MS 20

static void close_pair(int p[2]) {
        for (int i = 0; i < 2; i++)
                if (p[i] >= 0)
                        close(p[i]);
}

/* dup2 that also works when fd is already target (then only its close-on-exec flag goes). */
static int move_fd(int fd, int target) {
        if (fd == target)
                return fcntl(fd, F_SETFD, 0);
        return dup2(fd, target) < 0 ? -1 : 0;
}

/* What the child needs; it lives on the parent's stack, which the child shares until it execs. */
typedef struct ChildArgs {
        const SpawnOptions *o;
        pid_t parent;
        int fds[3]; /* what becomes 0, 1 and 2 (-1: kept as is) */
} ChildArgs;

/* In the child, which shares our memory until it execs (CLONE_VM|CLONE_VFORK): async-signal-safe
 * calls only, and nothing written but its own stack. Signals are blocked on entry: handlers of
 * ours must not run here, so they go back to their defaults first. */
static int child_exec(void *userdata) {
        const ChildArgs *a = userdata;
        const SpawnOptions *o = a->o;
        struct sigaction dfl = { .sa_handler = SIG_DFL }, old;
        sigset_t none;

        for (int sig = 1; sig < NSIG; sig++)
                if (sig == SIGPIPE || sig == SIGTERM || sig == SIGINT ||
                    (sigaction(sig, NULL, &old) == 0 && old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
                        (void) sigaction(sig, &dfl, NULL);
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        (void) setpgid(0, 0); /* its own group, so that a timeout kills what it started */
        if (o->death_signal > 0 && (prctl(PR_SET_PDEATHSIG, o->death_signal) < 0 || getppid() != a->parent))
                _exit(127);
        for (int i = 0; i < 3; i++) {
                int fd = a->fds[i];
                if (fd == -1)
                        continue;
                if (fd == SPAWN_NULL)
                        fd = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
                if (fd < 0 || move_fd(fd, i) < 0)
                        _exit(127);
        }
        close_range(3, ~0U, 0);
        execve(o->path, o->argv, o->envp ? o->envp : environ);
        const char *parts[] = { "cannot execute ", o->path, ": ", strerrordesc_np(errno) ?: "error", "\n" };
        for (size_t i = 0; i < ELEMENTSOF(parts); i++)
                if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0)
                        break;
        _exit(127);
}

#define CHILD_STACK_SIZE (256 * 1024)

/* Starts the child without copying our address space (a fork's page tables and the copy-on-write
 * faults after it cost more than the exec on small machines): it borrows our memory until its
 * exec, and we wait for that. Returns its pid (and its pidfd in *pidfd, or -1), or -errno. */
static pid_t clone_child(ChildArgs *a, int *pidfd) {
        void *stack = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                           -1, 0);
        sigset_t all, saved;
        pid_t pid;
        int e;

        *pidfd = -1;
        if (stack == MAP_FAILED)
                return -errno;
        sigfillset(&all);
        (void) pthread_sigmask(SIG_SETMASK, &all, &saved);
#if defined(__SANITIZE_ADDRESS__)
        /* ASan cannot follow a child on a stack of ours (it warns on the child's stderr, which is
         * the hook's output): the sanitizer build forks, and the child runs the same code. */
        pid = fork();
        if (pid == 0)
                _exit(child_exec(a));
        if (pid > 0)
                *pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
#else
        pid = clone(child_exec, (char *) stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, a,
                    pidfd);
#endif
        if (pid < 0 && errno == EINVAL) { /* a kernel without CLONE_PIDFD */
                *pidfd = -1;
                pid = clone(child_exec, (char *) stack + CHILD_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
                if (pid > 0)
                        *pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        }
        e = errno;
        (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        munmap(stack, CHILD_STACK_SIZE);
        return pid < 0 ? -e : pid;
}

int spawn_start(const SpawnOptions *o, Spawned *ret) {
        int pipes[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
        const int want[3] = { o->stdin_fd, o->stdout_fd, o->stderr_fd };
        ChildArgs a = { .o = o, .parent = getpid() };

        *ret = (Spawned) { .pid = 0, .pidfd = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1 };
        for (int i = 0; i < 3; i++) {
                if (want[i] == SPAWN_PIPE && pipe2(pipes[i], O_CLOEXEC) < 0) {
                        int r = -errno;
                        for (int j = 0; j < 3; j++)
                                close_pair(pipes[j]);
                        return r;
                }
                /* The child's end: the read end of stdin's pipe, the write end of the others'. */
                a.fds[i] = want[i] == SPAWN_PIPE ? pipes[i][i == 0 ? 0 : 1] : want[i] == SPAWN_INHERIT ? -1 : want[i];
        }
        pid_t pid = clone_child(&a, &ret->pidfd);
        if (pid < 0) {
                for (int j = 0; j < 3; j++)
                        close_pair(pipes[j]);
                ret->pid = -1;
                return pid;
        }
        (void) setpgid(pid, pid); /* also here: no race with a kill of the group */
        ret->pid = pid;
        for (int i = 0; i < 3; i++) {
                if (want[i] != SPAWN_PIPE)
                        continue;
                close(pipes[i][i == 0 ? 0 : 1]);
                int ours = pipes[i][i == 0 ? 1 : 0];
                *(i == 0 ? &ret->in_fd : i == 1 ? &ret->out_fd : &ret->err_fd) = ours;
        }
        return 0;
}

bool spawn_try_reap(Spawned *p) {
        if (p->reaped)
                return true;
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid || (r < 0 && errno == ECHILD)) {
                if (r < 0)
                        p->status = 127 << 8;
                p->reaped = true;
        }
        return p->reaped;
}

static void reap_blocking(Spawned *p) {
        while (!p->reaped && waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
                ;
        p->reaped = true;
}

bool spawn_read(Spawned *p, int which, const SpawnWatch *w) {
        int *fd = which == STDOUT_FILENO ? &p->out_fd : &p->err_fd;
        char buf[4096];

        if (*fd < 0)
                return false;
        ssize_t k = read(*fd, buf, sizeof buf);
        if (k > 0) {
                if (w && w->output)
                        w->output(which, buf, (size_t) k, w->userdata);
                return true;
        }
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        close(*fd);
        *fd = -1;
        return false;
}

void spawn_drain(Spawned *p, const SpawnWatch *w) {
        for (int which = STDERR_FILENO; which >= STDOUT_FILENO; which--) {
                int fd = which == STDOUT_FILENO ? p->out_fd : p->err_fd;
                if (fd < 0)
                        continue;
                (void) fcntl(fd, F_SETFL, O_NONBLOCK);
                for (;;) {
                        char buf[4096];
                        ssize_t k = read(fd, buf, sizeof buf);
                        if (k > 0) {
                                if (w && w->output)
                                        w->output(which, buf, (size_t) k, w->userdata);
                                continue;
                        }
                        if (k < 0 && errno == EINTR)
                                continue;
                        break;
                }
        }
}

#define EXTRA_POLL_MAX 64

int spawn_wait(Spawned *p, uint64_t deadline_usec, const SpawnWatch *w) {
        for (;;) {
                struct pollfd pfd[3 + EXTRA_POLL_MAX];
                nfds_t n = 0, first_extra;
                int idx_err = -1, idx_out = -1, idx_pid = -1;
                int timeout = p->pidfd < 0 ? NO_PIDFD_POLL_MS : -1; /* no pidfd: look for its exit now and then */

                if (w && w->stop && w->stop(w->userdata))
                        return SPAWN_STOPPED;
                if (p->pidfd < 0 && spawn_try_reap(p)) {
                        spawn_drain(p, w);
                        return SPAWN_EXITED;
                }
                if (deadline_usec > 0) {
                        uint64_t now = now_monotonic_usec();
                        if (now >= deadline_usec)
                                return -ETIME;
                        uint64_t left = (deadline_usec - now + 999) / 1000;
                        if (timeout < 0 || left < (uint64_t) timeout)
                                timeout = left > INT_MAX ? INT_MAX : (int) left;
                }
                if (p->err_fd >= 0) {
                        idx_err = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = p->err_fd, .events = POLLIN };
                }
                if (p->out_fd >= 0) {
                        idx_out = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = p->out_fd, .events = POLLIN };
                }
                if (p->pidfd >= 0) {
                        idx_pid = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = p->pidfd, .events = POLLIN };
                }
                first_extra = n;
                if (w && w->poll_fill)
                        n += w->poll_fill(pfd + n, EXTRA_POLL_MAX, w->userdata);
                if (poll(pfd, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (w && w->poll_done)
                        w->poll_done(pfd + first_extra, n - first_extra, w->userdata);
                if (idx_pid >= 0 && pfd[idx_pid].revents) {
                        /* Exited: take what is buffered, then stop (a job it started may keep the
                         * pipes open). */
                        spawn_drain(p, w);
                        reap_blocking(p);
                        return SPAWN_EXITED;
                }
                if (idx_err >= 0 && pfd[idx_err].revents)
                        (void) spawn_read(p, STDERR_FILENO, w);
                if (idx_out >= 0 && pfd[idx_out].revents)
                        (void) spawn_read(p, STDOUT_FILENO, w);
        }
}

/* sig to the child's group, and to the child itself only when it left that group: a shell
 * hook's trap then runs once. */
void spawn_signal(Spawned *p, int sig) {
        (void) kill(-p->pid, sig);
        if (!p->reaped && getpgid(p->pid) != p->pid)
                (void) kill(p->pid, sig);
}

bool spawn_group_gone(const Spawned *p) {
        return kill(-p->pid, 0) < 0 && errno == ESRCH;
}

void spawn_terminate(Spawned *p, uint64_t grace_usec, const SpawnWatch *w) {
        uint64_t deadline = now_monotonic_usec() + grace_usec;

        if (p->in_fd >= 0) {
                close(p->in_fd);
                p->in_fd = -1;
        }
        if (grace_usec == 0) {
                spawn_signal(p, SIGKILL);
                reap_blocking(p);
                return;
        }
        spawn_signal(p, SIGTERM);
        for (;;) {
                spawn_drain(p, w);
                if (spawn_try_reap(p) && spawn_group_gone(p))
                        break;
                if (now_monotonic_usec() >= deadline) {
                        spawn_signal(p, SIGKILL);
                        reap_blocking(p);
                        /* SIGKILL takes effect when each member next runs: wait for the group to
                         * be gone (bounded: an orphan's zombie waits for its new parent). */
                        for (int i = 0; i < SPAWN_KILLED_WAIT_MSEC / 10 && !spawn_group_gone(p); i++)
                                usleep(10 * 1000);
                        break;
                }
                usleep(10 * 1000);
        }
        spawn_drain(p, w);
}

void spawned_done(Spawned *p) {
        int *fds[] = { &p->pidfd, &p->in_fd, &p->out_fd, &p->err_fd };

        for (size_t i = 0; i < ELEMENTSOF(fds); i++)
                if (*fds[i] >= 0) {
                        close(*fds[i]);
                        *fds[i] = -1;
                }
}

/* Whether the environment entry "NAME=..." is of the variable of var ("NAME=VALUE" or "NAME"). */
static bool env_is(const char *entry, const char *var) {
        size_t len = strcspn(var, "=");
        return strncmp(entry, var, len) == 0 && entry[len] == '=';
}

char **spawn_env(char *const *extra, size_t n_extra) {
        size_t n = 0, k = 0;

        while (environ[n])
                n++;
        char **env = calloc(n + n_extra + 1, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                bool replaced = false;
                for (size_t j = 0; j < n_extra && !replaced; j++)
                        replaced = env_is(environ[i], extra[j]);
                if (!replaced)
                        env[k++] = environ[i];
        }
        for (size_t j = 0; j < n_extra; j++)
                if (strchr(extra[j], '='))
                        env[k++] = extra[j];
        return env;
}
