/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The delta engine of the copy-ahead (precopy.c): a pass scans the source (stat only) into an
 * index and a delta against the previous pass's index, then applies the delta to the copy. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define NSEC_PER_SEC 1000000000LL
#define CAPTURE_BUFFER (128U * 1024U)

typedef struct Rec {
        char *path; /* relative to the top; "" is the top */
        uint64_t ino;
        int64_t size, mtime_ns, ctime_ns;
        uint32_t mode;
        bool seen;  /* found again by the pass comparing with this one */
} Rec;

typedef struct Index {
        Rec *recs;  /* sorted by path once the scan is done */
        size_t n, cap;
        int64_t start_ns; /* CLOCK_REALTIME_COARSE, the clock file timestamps come from */
        int64_t gran_ns;
        uint64_t rate;
} Index;

typedef enum OpKind {
        OP_REMOVE,  /* gone from the source */
        OP_REPLACE, /* new, or another inode or type: whatever is at the destination goes first */
        OP_UPDATE,  /* the same regular file, changed: rewritten in place (its hard links stay) */
        OP_META,    /* a directory: only its metadata (entries under it have their own ops) */
} OpKind;

typedef struct Op {
        OpKind kind;
        char *path;
        struct stat st;
        bool mountpoint;    /* a directory another filesystem is mounted on: reproduced empty */
        uint64_t cap_off;   /* captured data in the memfd */
        char *target;       /* captured symlink target */
} Op;

typedef struct Delta {
        Op *ops;
        size_t n, cap;
        uint64_t entries, bytes;
        struct { const char *path; uint64_t size; } big[3];
} Delta;

void tree_index_free(Index *ix);
void tree_delta_free(Delta *d);
/* "a (N bytes), b (N bytes)": the biggest files of a delta, for errors about its size. */
void tree_delta_biggest(const Delta *d, char *buf, size_t size);
/* A pass's scan of the tree at sfd: its index (start_ns, gran_ns recorded in it), and the delta
 * since prev (NULL: everything). */
int tree_scan(int sfd, Index *prev, int64_t start_ns, int64_t gran_ns, Index **ret_ix, Delta **ret_d);
/* Brings the copy at dfd up to date with d, reading from sfd, or from memfd when the delta was
 * captured there (memfd >= 0). Past deadline (CLOCK_MONOTONIC usec, 0: none): -ETIME. */
int tree_apply(const Delta *d, int sfd, int dfd, int memfd, uint64_t deadline);

/* path beneath top, never through a symlink; and the directory holding path, with the last component. */
int tree_open_beneath(int top, const char *path, int flags);
int tree_open_parent(int top, const char *path, const char **ret_name);
/* n bytes from in at in_off to out at out_off, through buf (CAPTURE_BUFFER bytes). */
int tree_copy_bytes(int in, off_t in_off, int out, off_t out_off, uint64_t n, char *buf);
/* -ETIME past deadline (0: none). */
int tree_deadline_check(uint64_t deadline);
