/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Whether a running process uses files at a path: what an in-place restore without the writer
 * (whose PreRestore would have refused) must not overwrite under it. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The first process other than ours using a file of the file group (path, filespec, recursive:
 * as a component names its files; a path that is a file: that file): one it has open or mapped,
 * or (recursive) its working directory in the tree. By the name the kernel shows; one of a
 * process in another mount namespace (a container's view of the tree) that the name does not
 * lead to here, by its inode in the tree, all such in one walk. Its pid, uid, command in comm
 * and what it holds in held (cut to size, control characters replaced). 0: none we can see (a
 * user sees only their own processes); -1 when it cannot be told (more files held in other
 * namespaces than it looks up: comm says so). */
pid_t path_in_use(const char *path, const char *filespec, bool recursive, char *comm, size_t comm_size, uid_t *ret_uid,
                  char *held, size_t held_size);
