/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Paths below a directory the caller named, reached fd-relative without following any symlink
 * (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): what a restore running as root uses so
 * that nobody who can write below its destination can send it elsewhere.
 *
 * Functions return 0 (or an fd) on success, a negative errno on failure; those taking ret_error
 * set a malloc'd message there on failure (only if it is still NULL: the first error explains).
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* openat2(dirfd, path, flags | O_CLOEXEC, mode) resolving beneath dirfd, no symlinks, no magic
 * links. An fd, or -errno (-ELOOP: a symlink on the way, -EXDEV: path leads out of dirfd). */
int beneath_open(int dirfd, const char *path, int flags, mode_t mode);

/*
 * Walks rel ("a/b/c", may be "") below dirfd (shown: its path, for messages). *ret_fd: the
 * deepest directory along rel that exists (O_PATH), *ret_rest: what of rel lies below it ("" when
 * all of rel is an existing directory). When the last component exists but is no directory (a
 * file, a symlink), the walk stops before it: it is the caller's to replace. A symlink or
 * non-directory earlier on the way fails (-ELOOP, -ENOTDIR), naming it.
 *
 * owner >= 0: the rule for a destination that a less privileged user (uid owner) asked for. The
 * directories opened must, from the first one owned by owner on, all be owned by owner, and the
 * deepest must be: otherwise -EPERM, naming the directory and the rule. dirfd itself counts as
 * opened.
 */
int beneath_deepest(int dirfd, const char *shown, const char *rel, int64_t owner, int *ret_fd, const char **ret_rest,
                    char **ret_error);

#include "lib/trusted-path.h"

/*
 * Whether nobody but root and uid can rename or replace anything on the way to the directory fd
 * (path, canonical, for messages): fd and every directory above it owned by root or uid, and
 * writable by nobody else unless sticky (/tmp). Then what is below it stays where it is, named by
 * its path. -EPERM naming the first that is not.
 */
int beneath_chain_trusted(int fd, const char *path, uid_t uid, char **ret_error);

/* A new, empty directory of ours (mode 0700) below dirfd, for a restore to be moved into place
 * from; its name (".vssbackup-restore-XXXXXXXX") in name. *ret_fd: it, O_PATH. */
int beneath_staging(int dirfd, char name[static 64], int *ret_fd);

/* What a restore says of a directory on another filesystem it would have to move files into
 * (after the path). */
#define BENEATH_OTHER_FS                                                                                               \
        "is a filesystem of its own (a mount or btrfs subvolume) this restore cannot move files into; restore it "   \
        "with its own component, or with --to DIR"

/*
 * Moves the contents of directory src into dst (shown: dst's path, for messages). What does not
 * exist in dst is renamed there whole. A directory that exists in both is entered, never changed
 * itself (owner, mode and times stay). A file that exists in both is replaced (renamed over),
 * or, with no_overwrite, left and counted in *ret_kept. A symlink or file in dst where src has a
 * directory is removed first (never followed), or with no_overwrite fails. A directory in dst
 * where src has no directory fails, and so does replacing keep (the backup being restored; may
 * be NULL). dry: only checks for what would fail, moves nothing.
 */
struct stat;
int beneath_merge(int src, int dst, const char *shown, bool no_overwrite, bool dry, const struct stat *keep,
                  uint64_t *ret_kept, char **ret_error);

/* Clears immutable and append-only on the regular file dirfd/name (not followed), so it can be
 * replaced or removed. -EPERM when it is no regular file. */
int beneath_unprotect(int dirfd, const char *name);

/* Removes dirfd/name and all below it, following no symlink. */
int beneath_remove(int dirfd, const char *name);
