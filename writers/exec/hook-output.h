/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Where hooks' output goes, and output that outlives a hook. A hook may leave a background job
 * that writes to the hook's stderr (or, in hold mode, stdout) long after the hook exited: qemu's
 * mysql-flush.sh.sample does. Such a descriptor must stay valid as long as anything holds it, or
 * the job dies of SIGPIPE. So the writer never closes the read end of a hook's pipe while a write
 * end is open somewhere: when the hook exits, the pipe "lingers" and is drained into the log until
 * its last writer is gone; when the writer itself exits, a small process of its own takes over
 * the lingering pipes.
 */

#include <poll.h>
#include <stddef.h>

/* Opens FILE for appending (created 0640) as the destination of hooks' stdout and stderr; without
 * it, stdout is the writer's and stderr is copied to the writer's. Returns 0 or -errno. */
int hook_output_open_log(const char *path);
/* Where a hook's stderr text is copied, and the descriptor given to it as stdout (not in hold mode). */
int hook_output_err_dest(void);
int hook_output_out_dest(void);
/* Copies n bytes to dest, whole (EINTR retried; errors dropped: a log never fails a hook). */
void hook_output_write(int dest, const char *buf, size_t n);

/* Takes the read end *fd of a hook's pipe after the hook exited: drained into dest until every
 * write end is closed, from the event loop and from hook_output_poll. *fd becomes -1. */
void hook_output_linger(int *fd, int dest);
/* Adds the lingering pipes to a poll set (at most max entries); returns how many were added. */
size_t hook_output_poll_fill(struct pollfd *p, size_t max);
/* Services the entries hook_output_poll_fill added, after poll(). */
void hook_output_poll_done(const struct pollfd *p, size_t n);
/* At exit: the pipes still held by someone are handed to a child that drains them until their
 * writers are gone; the others are closed. */
void hook_output_handoff(void);
