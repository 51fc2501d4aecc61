/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Slow work out of the event loop: a function run in a forked child of vssd (a provider's
 * delete or expose command, a tree removal), its exit watched by sd-event, so vssd keeps
 * answering meanwhile. The child must not touch vssd's event loop, buses or database: it only
 * has its copy of the memory it needs and reports one errno through its exit status. */

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

/* vssd stops: every child still running gets SIGTERM and is reaped, and its cancel() called. */
void children_stop(Children *c);
