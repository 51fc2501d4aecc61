/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The one tree walker. It works relative to directory fds (openat/fdopendir), never follows a
 * symlink (the top included), and calls back once per entry:
 *
 *   WALK_ENTRY      every entry, after its stat; for a directory before it is opened. Return
 *                   WALK_SKIP to leave a directory unopened (no further calls for it).
 *   WALK_DIR_ENTER  a directory, opened (e->fd), before its entries. WALK_SKIP: none of its
 *                   entries, and no WALK_DIR_LEAVE.
 *   WALK_DIR_LEAVE  the same directory after its entries (post-order: children first). Without
 *                   WALK_KEEP_GOING only when they all succeeded.
 *
 * A negative return stops the walk and is returned (with WALK_KEEP_GOING: is remembered, the
 * walk goes on, and the first error is returned at the end). An entry that vanished between
 * readdir and its stat or open is passed over (only the top's absence is an error: -ENOENT). A
 * directory to be descended deeper than max_depth (the top is depth 0) is -ELOOP, before its
 * WALK_ENTRY. The walk recurses, one level of the C stack per level of the tree: a caller bounds
 * max_depth, or walks a tree bounded otherwise.
 * Functions return 0 or a negative errno.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

typedef enum WalkFlags {
        WALK_ONE_FS = 1 << 0,     /* entries on another filesystem or mount than the top are
                                   * reported with other_mount set and never descended into */
        WALK_KEEP_GOING = 1 << 1, /* go on after an error; return the first one */
        WALK_NOATIME = 1 << 2,    /* open directories with O_NOATIME where we may */
        WALK_VERIFY = 1 << 3,     /* a directory opened must still be the inode stat'ed (else -EBUSY) */
        WALK_PATHS = 1 << 4,      /* keep e->path (-ENAMETOOLONG past PATH_MAX) */
        WALK_DTYPE = 1 << 5,      /* trust readdir's d_type: non-directories are not stat'ed, only
                                   * their type is set in st.st_mode (stat_done is false) */
} WalkFlags;

typedef enum WalkEvent {
        WALK_ENTRY,
        WALK_DIR_ENTER,
        WALK_DIR_LEAVE,
} WalkEvent;

#define WALK_SKIP 1

typedef struct WalkEntry WalkEntry;
struct WalkEntry {
        WalkEntry *parent;   /* NULL at the top */
        int dfd;             /* the directory holding the entry; at the top the caller's */
        const char *name;    /* its name in dfd; at the top the caller's ("": dfd itself) */
        const char *path;    /* with WALK_PATHS: relative to the top, "" for the top; else NULL */
        unsigned depth;      /* 0 for the top */
        struct stat st;      /* from statx, not following a symlink */
        uint64_t mnt_id;     /* 0 when the kernel does not report it */
        bool stat_done;      /* false for a non-directory under WALK_DTYPE */
        bool other_mount;    /* WALK_ONE_FS: on another filesystem or mount than the top */
        int fd;              /* a directory's, in WALK_DIR_ENTER and WALK_DIR_LEAVE; the walker's */
        int user_fd;         /* the callback's, per directory: closed by the walker when done */
        uintptr_t user;      /* the callback's, per directory */
};

typedef int (*walk_fn)(WalkEvent event, WalkEntry *e, void *userdata);

/* Walks name in dfd (AT_FDCWD and a path, or a directory fd and ""). */
int walk_tree(int dfd, const char *name, WalkFlags flags, unsigned max_depth, walk_fn fn, void *userdata);

/* statx() of name in dfd (flags: AT_EMPTY_PATH or 0; never follows) into a struct stat (the
 * blocks and all three times included) and the mount id (0 when not reported; may be NULL). */
int walk_statx(int dfd, const char *name, int flags, struct stat *ret_st, uint64_t *ret_mnt_id);
/* The fd is still the inode (and mount) stat'ed: -EBUSY when swapped or mounted over since. */
int walk_fd_verify(int fd, const struct stat *st, uint64_t mnt_id);
/* b is on a's filesystem and mount (a mount id of 0 is "unknown": the device decides). */
bool walk_same_mount(const struct stat *a, uint64_t a_mnt, const struct stat *b, uint64_t b_mnt);
