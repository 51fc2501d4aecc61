/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether a running process uses files at a path: what an in-place restore without the writer
 * (whose PreRestore would have refused) must not overwrite under it. */

#include <stddef.h>
#include <sys/types.h>

/* The first process other than ours with an open file, or its working directory, at or below
 * path (resolved, as the kernel shows it): its pid, its command in comm and what it holds in held
 * (both cut to size). 0: none we can see (a user sees only their own processes). */
pid_t path_in_use(const char *path, char *comm, size_t comm_size, char *held, size_t held_size);
