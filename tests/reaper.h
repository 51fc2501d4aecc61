/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A test that dies any way at all leaves nothing of its directory behind: not only by exit() (the
 * harnesses' atexit cleanup) but by a sanitizer's _exit(), meson's timeout (SIGTERM, then SIGKILL
 * to the process group) or SIGKILL. reaper_watch(DIR) starts a process of its own session that
 * waits for the returned descriptor to close: when the test closes it, having cleaned up DIR the
 * usual way, or when the test ends, however it ends. The reaper then thaws and unmounts every
 * filesystem mounted at or below DIR (deepest first; vssd's exposures and the test's loop
 * filesystems alike), detaches the loop devices whose backing files are in DIR, removes DIR and
 * exits. With DIR already gone it finds nothing to do.
 *
 * Returns the descriptor (O_CLOEXEC) or -1 when no reaper could start (the test goes on without).
 */
int reaper_watch(const char *dir);
