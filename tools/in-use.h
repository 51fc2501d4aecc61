/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether a running process uses files at a path: what an in-place restore without the writer
 * (whose PreRestore would have refused) must not overwrite under it. */

#include <stddef.h>
#include <sys/types.h>

/* The first process other than ours with an open or mapped file, or its working directory, at
 * or below path (resolved): by the name the kernel shows, or, for one that name does not lead to
 * here (a container's view of the tree), by its inode in the tree. Its pid, its command in comm
 * and what it holds in held (cut to size, control characters replaced). 0: none we can see (a
 * user sees only their own processes). */
pid_t path_in_use(const char *path, char *comm, size_t comm_size, char *held, size_t held_size);
