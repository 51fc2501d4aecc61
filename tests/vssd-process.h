/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A private vssd for benchmarks and the wire fuzzer (the test harness has its own, with
 * wrappers and restarts): a child that dies with us, its output appended to a log, ready when it
 * says READY=1 on a notify socket. */

#include <stdbool.h>
#include <sys/types.h>

/* argv: vssd's arguments, argv[0] included, NULL-terminated. notify_path: where to make the notify
 * socket. Returns the pid, or -1 after a message on stderr (then the log's tail is shown). */
pid_t vssd_start(const char *vssd, const char *const *argv, const char *log_path, const char *notify_path,
                 int timeout_ms);
/* SIGTERM, up to 5 s to stop, then SIGKILL. Returns the wait status, or -1. */
int vssd_stop(pid_t pid);
/* The last lines of a log on stderr. */
void vssd_log_tail(const char *log_path, unsigned lines);
/* vssd's VmRSS in KiB (from /proc/PID/status), or -1. */
long vssd_rss_kib(pid_t pid);
/* Whether vssd has libsqlite3 mapped now (/proc/PID/maps): it unloads it when idle. */
bool vssd_maps_sqlite(pid_t pid);
