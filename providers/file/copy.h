/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Tree copy for the file provider: a shadow copy is a read-only clone of a directory tree on the
 * same or another filesystem. Reflinks are used where the filesystem can share extents, so a
 * shadow of a large tree on btrfs/XFS costs almost nothing.
 *
 * All walks are lib/basic/walk.h's: relative to directory fds (openat/fdopendir, O_NOFOLLOW), never
 * following symlinks, on the filesystem (and mount) of the top entry, and stopping at COPY_DEPTH_MAX
 * levels (-ELOOP).
 * Functions return 0 or a negative errno.
 */

#include <stdint.h>
#include <sys/stat.h>

#include "meta.h"

#define COPY_DEPTH_MAX 4096U

typedef struct CopyStats {
        uint64_t files;           /* non-directory entries created: regular files, symlinks, fifos, device nodes */
        uint64_t dirs;            /* directories created, the top one included */
        uint64_t bytes;           /* logical size of the regular files copied (reflinked ones included) */
        uint64_t reflinked_files; /* regular files cloned with FICLONE instead of copied */
} CopyStats;

/*
 * Copies src (a directory or a regular file; a symlink, fifo or device node at the top is
 * reproduced as such, a socket is -EOPNOTSUPP) to dst. dst must not exist (-EEXIST), its parent
 * must. Mode, ownership (EPERM ignored when not root), atime/mtime (ns), hard links, all xattrs
 * (POSIX ACLs and file capabilities included) and chattr attributes (immutable and append-only
 * set last) are preserved; see meta.h. Entries on other filesystems/mounts are skipped, except
 * that a directory mount point is reproduced as an empty directory, like cp -x; sockets are
 * skipped.
 * On failure whatever was created at dst is removed again. On success the data is synced
 * (syncfs) and, when ret_stats is non-NULL, the counts are stored there.
 */
int copy_tree(const char *src, const char *dst, CopyStats *ret_stats);
/* The same; what the target cannot keep (an xattr, a flag) is reported to report (may be NULL). */
int copy_tree_report(const char *src, const char *dst, MetaReport *report, CopyStats *ret_stats);

/* What a copy has left to make durable. */
typedef struct CopySync CopySync;
/* copy_tree_report() without the final sync: *ret_sync (NULL when nothing needs one) is passed to
 * copy_sync_finish() later, so a copy made while writers wait can be synced after they go on. On
 * failure nothing is left at dst and *ret_sync is NULL. */
int copy_tree_deferred(const char *src, const char *dst, MetaReport *report, CopyStats *ret_stats, CopySync **ret_sync);
/* Syncs what the copy made and frees s (NULL: nothing to do). 0 or a negative errno; on failure the
 * copy stays at dst (the caller removes it). */
int copy_sync_finish(CopySync *s);
/* Frees s without syncing. */
void copy_sync_free(CopySync *s);

/* The data of fdin into fdout (truncated first): reflinked where possible, holes kept. */
int copy_file_data(int fdin, int fdout, uint64_t *ret_size);
/* Ownership (EPERM ignored when not root), mode and atime/mtime of st onto fd, or onto name in dfd
 * (not following a symlink). */
int copy_metadata_fd(int fd, const struct stat *st);
int copy_metadata_at(int dfd, const char *name, const struct stat *st);

/*
 * rm -rf without following symlinks or crossing mount points (immutable and append-only entries
 * included: their flags are cleared first); a missing path is success. Refuses
 * "/", "." and ".." as the last component (-EINVAL). Keeps going after an error and returns the
 * first one.
 */
int remove_tree(const char *path);

/* The bytes the regular files of a tree take on disk (blocks allocated, st_blocks * 512, not
 * apparent sizes; the top's filesystem and mount, like the copy; a missing tree is 0). */
int tree_bytes(const char *path, uint64_t *ret);

/* Writes all n bytes of p to fd at off (pwrite, again after EINTR). 0 or a negative errno. */
int tree_write_all_at(int fd, const char *p, size_t n, off_t off);
