/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Reading directories given as fds, for the walks of the store, the restore and beneath. */

#include <dirent.h>
#include <sys/stat.h>

void closedirp(DIR **d);

/* A new DIR on directory dirfd (which may be O_PATH), with its own offset; NULL with errno set. */
DIR *opendir_at(int dirfd);

/* The next entry of d other than "." and "..": 1 (*ret set), 0 at the end, or -errno. */
int dir_next(DIR *d, struct dirent **ret);

/* An entry of a directory being walked: where it is (dfd, name), its path (the directory's path
 * joined with name), and its lstat, or stat_error (-errno) when that failed. */
typedef struct DirEntry {
        int dfd;
        const char *name;
        const char *path;
        struct stat st;
        int stat_error;
} DirEntry;
typedef int (*dir_entry_fn)(const DirEntry *e, void *userdata);

/* Calls fn for each entry of directory fd (path: its path) but "." and "..", in readdir order.
 * An entry gone before it was looked at is skipped. A negative return of fn ends the walk and
 * is returned; -errno when fd cannot be read (-ENOMEM: out of memory). */
int dir_foreach(int fd, const char *path, dir_entry_fn fn, void *userdata);
