/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <limits.h>

/*
 * Paths walked following only the symlinks nobody but root (or the caller's own user) could have
 * made or replaced: what root's programs use on a path a user may write on the way to (vssd's
 * volumes, vssbackup's backups and restores in place). 0 (or an fd) on success, a negative errno
 * on failure, with a malloc'd message in *ret_error (only if it is still NULL).
 */

/*
 * The longest existing prefix of the absolute path p, opened (O_PATH) in *ret_fd, its path in
 * *ret_base, and what of p lies below it in *ret_rest (symlinks on the way expanded; all
 * malloc'd). A symlink on the way is followed only when nobody
 * but root can have made or replaced it: owned by root, in a directory of root's that nobody else
 * may write, or that is sticky (/usr/lib, /var/run). Any other fails (-ELOOP), naming it: a user
 * who may write a directory above a root writer's component could send root's restore anywhere.
 * Walked by fds, so nothing met is swapped between its check and its use.
 */
int beneath_resolve_trusted(const char *p, int *ret_fd, char **ret_base, char **ret_rest, char **ret_error);

/* The same for an existing directory p: -ENOENT (named) when part of it does not exist. */
int beneath_resolve_trusted_dir(const char *p, int *ret_fd, char **ret_base, char **ret_error);

/*
 * The parent of the absolute path p resolved as by beneath_resolve_trusted() (it must exist), and
 * p's last component: *ret_fd (O_PATH) the parent, *ret_parent its path, *ret_name the name (both
 * malloc'd). -EINVAL for "/" or a last component of "." or "..".
 */
int beneath_parent_trusted(const char *p, int *ret_fd, char **ret_parent, char **ret_name, char **ret_error);

/* Opens the absolute (or cwd-relative) path p with flags (O_NOFOLLOW added) following only
 * symlinks nobody but root could have made, the last component's too: an fd, its path (symlinks
 * expanded) in *ret_path. */
int beneath_open_trusted(const char *p, int flags, char **ret_path, char **ret_error);


/* realpath() following only the symlinks beneath_open_trusted() follows: p exists, and real is
 * its path with no symlink on it. */
int realpath_trusted(const char *p, char real[PATH_MAX], char **ret_error);
