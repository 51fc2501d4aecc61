/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Slow work out of the event loop: a function run in a child of vssd (a provider's delete or
 * expose command, a tree removal), its exit watched by sd-event, so vssd keeps answering
 * meanwhile. The child must not touch vssd's event loop, buses or database: it only has what it
 * needs and reports one errno through its exit status. A forked child (child_run()) has its copy
 * of vssd's memory; a spawned one (child_spawn()) is vssd's binary run afresh with a job. */

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "daemon/list.h"

typedef struct Child Child;
typedef struct Children {
        sd_event *event;
        Child *list;
        unsigned n;
} Children;

/* Runs in the child: 0, or a negative errno. */
typedef int (*ChildFn)(void *arg);
/* Runs in vssd once the child exited: fn's result, or -ECANCELED when the child was killed. */
typedef void (*ChildDone)(int result, void *userdata);

/* Forks a child running fn(arg). The child dies with vssd (SIGTERM, which also kills the group
 * of a command it runs). done(result, userdata) is called from the event loop, never from
 * child_run() itself; if vssd stops first, cancel(userdata) instead (if set). Returns 0, or a
 * negative errno when nothing was started. */
int child_run(Children *c, const char *what, ChildFn fn, void *arg, ChildDone done, void (*cancel)(void *userdata),
              void *userdata);

/* The same with a program of its own: argv run as vssd's own binary (spawn_self()),
 * job_fd on CHILD_FD_JOB and nothing else of vssd's open. A fork copies vssd's page tables and
 * leaves every page it had shared copy-on-write, each write afterwards a fault: with 1000 writers
 * connected, a fork per deleted set cost the next sequence about a quarter of its time. The
 * program calls child_main(). */
#define CHILD_FD_JOB 3 /* spawn_self()'s first */
int child_spawn(Children *c, const char *what, char *const argv[], int job_fd, ChildDone done,
                void (*cancel)(void *userdata), void *userdata);

/* In the child (forked, or a spawned program once it read its job): dies with vssd (parent),
 * runs fn(arg) and exits with its errno. */
_Noreturn void child_main(pid_t parent, ChildFn fn, void *arg);

/* vssd's own binary run with argv (posix_spawn), fds[i] on descriptor 3 + i and nothing else of
 * vssd's open; with unblock its signal mask is empty, else vssd's. 0 with *ret_pid, or a negative
 * errno (-E2BIG for more than SPAWN_MAX_FDS). */
#define SPAWN_MAX_FDS 72
int spawn_self(char *const argv[], const int *fds, size_t n, bool unblock, pid_t *ret_pid);

/* vssd stops: every child still running gets SIGTERM and is reaped, and its cancel() called. */
void children_stop(Children *c);
