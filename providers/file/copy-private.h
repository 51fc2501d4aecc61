/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Between copy.c (the walk) and copy-pool.c (the threads that copy regular files for it). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "copy.h"
#include "meta.h"

#define COPY_FSYNC_MAX 16 /* files and directories a copy fsyncs one by one; more: syncfs() */

typedef struct CopyPool CopyPool;

typedef struct CopyContext {
        const char *dst;      /* the top of the copy */
        dev_t dst_dev;        /* the new top directory, so a dst inside src is not copied into itself */
        ino_t dst_ino;
        bool have_dst;
        bool created_top;     /* dst was created by us, so a failure removes it again */
        int sync_fd;
        uid_t euid;
        char *buf;            /* read/write fallback buffer, allocated on first use */
        CopyStats stats;
        /* Files with several links, copied once: later names become hard links to the copy (an
         * O_PATH fd of it). Bounded; past the bound such files are copied again. */
        struct CopiedInode { dev_t dev; ino_t ino; int fd; } *links;
        size_t n_links;
        MetaReport *report;   /* xattrs and flags the target could not keep; may be NULL */
        /* What a small copy made (files and directories), fsynced one by one at the end instead of
         * syncfs(), which would also write back everything else dirty on that filesystem (on a
         * busy one, far more than the copy). Past COPY_FSYNC_MAX entries: syncfs(). */
        int fsync_fds[COPY_FSYNC_MAX];
        size_t n_fsync;
        bool fsync_overflow;
        /* Regular files seen so far, and the threads that copy their data and metadata once
         * there are enough of them (copy-pool.c); NULL before that, or with one CPU. */
        unsigned n_regular;
        bool pool_off;        /* no pool for this copy: one CPU, or it could not be started */
        CopyPool *pool;
} CopyContext;

/* Keeps fd (a file or directory of the copy, below the top) for the final fsync; takes it.
 * fd < 0: something that cannot be fsynced by fd was made, so the copy ends with syncfs(). */
void copy_track_fsync(CopyContext *c, int fd);
/* A regular file's first part: opens sname in sdfd (checked against st and mnt_id) and creates
 * dname in ddfd (O_EXCL); *ret_in and *ret_out are set on success only. */
int copy_regular_open(CopyContext *c, int sdfd, const char *sname, const struct stat *st, uint64_t mnt_id, int ddfd,
                      const char *dname, unsigned depth, int *ret_in, int *ret_out);
/* The rest: data, owner, mode, times, xattrs, flags; then out is tracked for the sync (or is
 * c->sync_fd at depth 0) and the stats are counted. Takes in and out. */
int copy_regular_finish(CopyContext *c, int in, int out, const struct stat *st, int ddfd, const char *dname,
                        unsigned depth);

/* Whether the next regular file goes to the pool: starts it at the COPY_POOL_AFTER-th file, when
 * there is more than one CPU and the files so far were copied, not cloned. A pool that cannot be
 * started is no error: the walker copies. */
bool copy_pool_use(CopyContext *c);
/* Queues a regular file the walker opened (in) and created (out, dname in ddfd) for a worker's
 * copy_regular_finish(); takes in and out, ddfd is duplicated (once per directory) and dname
 * copied. An earlier file's error is returned instead. */
int copy_pool_submit(CopyPool *p, int in, int out, const struct stat *st, int ddfd, const char *dname);
/* Waits until every queued file is done and adds their stats and fds to the walker's context:
 * before a directory's own metadata. The error of the first file (in walk order) that failed. */
int copy_pool_drain(CopyPool *p);
/* Drains, stops and joins the workers, frees p and gives the walker its report back; returns the
 * first failed file's error, else r (an error of the walker's comes after every queued file). */
int copy_pool_end(CopyPool *p, int r);
