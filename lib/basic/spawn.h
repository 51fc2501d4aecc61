/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Running a command as its own process group, watched through a pidfd: vss-writer-exec's hooks
 * and the exec provider's commands. A command is over when its process exits, not when its
 * output ends (a job it left in the background may keep the pipes open); a timeout takes its
 * whole group. Without pidfd_open (an old kernel, valgrind) the exit is looked for every 20 ms.
 */

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a standard descriptor of the child is: one of these, or a descriptor of ours (dup'ed). */
#define SPAWN_INHERIT (-1) /* ours, as it is */
#define SPAWN_NULL (-2)    /* /dev/null */
#define SPAWN_PIPE (-3)    /* a pipe to us: Spawned.in_fd, out_fd or err_fd */

typedef struct SpawnOptions {
        const char *path;   /* executable, run as is (no $PATH search) */
        char *const *argv;
        char *const *envp;  /* NULL: ours */
        int stdin_fd, stdout_fd, stderr_fd;
        int death_signal;   /* sent when we die (PR_SET_PDEATHSIG); 0: none */
} SpawnOptions;

typedef struct Spawned {
        pid_t pid;          /* also its process group */
        int pidfd;          /* -1 when the kernel has none */
        int in_fd, out_fd, err_fd; /* our ends of the SPAWN_PIPE descriptors, else -1 */
        bool reaped;
        int status;         /* wait status, once reaped */
} Spawned;

/* Nothing started (spawned_done() closes nothing): zero is a descriptor. */
#define SPAWNED_NONE ((Spawned) { .pid = -1, .pidfd = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1 })

/* Starts the command: its own process group, signal mask and SIGPIPE/SIGTERM/SIGINT reset, no
 * descriptor of ours past 2. When it cannot be executed it writes "cannot execute PATH: ERROR" to
 * its stderr and exits 127. 0 or -errno: then ret->pid is -1 when fork() failed, 0 when a pipe
 * could not be made. */
int spawn_start(const SpawnOptions *o, Spawned *ret);

/* How the caller follows a running command. Every member may be NULL. */
typedef struct SpawnWatch {
        /* Output read from out_fd (fd 1) or err_fd (fd 2). */
        void (*output)(int which, const char *buf, size_t n, void *userdata);
        /* Checked before each wait: true stops spawn_wait() early (a hook said it is ready). */
        bool (*stop)(void *userdata);
        /* More descriptors to serve while waiting: fill adds at most max, done serves them. */
        size_t (*poll_fill)(struct pollfd *p, size_t max, void *userdata);
        void (*poll_done)(const struct pollfd *p, size_t n, void *userdata);
        void *userdata;
} SpawnWatch;

#define SPAWN_EXITED 0
#define SPAWN_STOPPED 1
/* Copies the command's output to w until it exits (then what is buffered is read, and it is
 * reaped: SPAWN_EXITED), w->stop says so (SPAWN_STOPPED) or deadline_usec (CLOCK_MONOTONIC; 0:
 * none) passes (-ETIME). -errno when poll() fails. */
int spawn_wait(Spawned *p, uint64_t deadline_usec, const SpawnWatch *w);

/* Reads once from out_fd (which 1) or err_fd (2); at end of file or on an error, closes it and
 * returns false. */
bool spawn_read(Spawned *p, int which, const SpawnWatch *w);
/* Reads what the pipes hold now, without blocking. */
void spawn_drain(Spawned *p, const SpawnWatch *w);
/* Reaps the process if it has exited; whether it is reaped. */
bool spawn_try_reap(Spawned *p);
/* How long, at most, a group killed with SIGKILL is waited for. */
#define SPAWN_KILLED_WAIT_MSEC 500
/* Whether no process of the child's group is left. */
bool spawn_group_gone(const Spawned *p);
/* sig to the child's process group; to the child too when it has left that group. */
void spawn_signal(Spawned *p, int sig);
/* Ends the command's process group: SIGTERM, then SIGKILL when the group outlives grace_usec
 * (0: SIGKILL at once); output read meanwhile goes to w. Reaps the process. */
void spawn_terminate(Spawned *p, uint64_t grace_usec, const SpawnWatch *w);
/* Closes the descriptors (pidfd and pipes). Does not wait. */
void spawned_done(Spawned *p);

/* Our environment with extra entries: "NAME=VALUE" replaces or adds NAME, "NAME" (no '=') removes
 * it. The array is malloc'ed, the strings are borrowed; NULL when out of memory. */
char **spawn_env(char *const *extra, size_t n_extra);
