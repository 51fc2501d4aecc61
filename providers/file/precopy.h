/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "providers/file/meta.h"

/*
 * Copy-ahead for the file provider, like live migration's pre-copy: the tree is copied while
 * nothing is frozen, then again and again only what changed, until that stops shrinking; the last
 * delta is taken while the filesystem is held frozen, so the shadow is one instant and the hold is
 * short.
 *
 * Each pass scans the source (stat only) into an index (per path: inode, size, mtime, ctime, type)
 * and compares it with the previous pass's. An entry changed when it is new or gone, when its
 * type, inode, size or mtime differ, or when its ctime is not older than the start of the previous
 * pass minus the filesystem's timestamp granularity: a file rewritten twice within one tick, or
 * while the previous pass copied it, is copied again.
 *
 * Limits: hard links are kept within a pass (and rewriting a file in place keeps its links), but a
 * link made between passes becomes a copy. Functions return 0 or a negative errno; those with
 * errbuf write a message naming what failed there.
 */

#include <stddef.h>
#include <stdint.h>

#define PRECOPY_MAX_PASSES 8

typedef struct PrecopyResult {
        unsigned passes;
        uint64_t first_bytes;   /* what the first pass copied */
        uint64_t first_usec;    /* and how long it took (scan and copy): a full copy's time */
        uint64_t last_entries;  /* the last unfrozen pass's delta */
        uint64_t last_bytes;
        uint64_t rate;          /* bytes per second the copies ran at (0: not measured) */
} PrecopyResult;

/* Copies src to dst (which must not exist) while nothing is frozen, in passes, and saves the last
 * pass's index into index_fd (a memfd, written from offset 0). When hold_ms is not 0 and the last
 * delta, at the measured rate, cannot be copied within it, fails with -ETIME before anyone is
 * frozen, naming the biggest files. */
int precopy_run(const char *src, const char *dst, int index_fd, uint32_t hold_ms, PrecopyResult *ret,
                char *errbuf, size_t errlen);

typedef struct PrecopyFinal PrecopyFinal;

/* The last pass, while src is held frozen: the delta since the pass saved in index_fd is copied to
 * dst at once, or, when capture_budget is not 0 (dst is on the held filesystem), read into memory
 * (a memfd of at most capture_budget bytes: -EFBIG past it) for precopy_final_end() to write after
 * the release. Past deadline_usec (CLOCK_MONOTONIC, 0: none): -ETIME, naming the biggest files. */
int precopy_final_begin(const char *src, const char *dst, int index_fd, uint64_t deadline_usec,
                        uint64_t capture_budget, PrecopyFinal **ret, char *errbuf, size_t errlen);
/* Writes what was captured (if anything), makes the xattrs and chattr attributes the source's
 * (what dst cannot keep goes to report, which may be NULL), syncs dst, frees f. */
int precopy_final_end(PrecopyFinal *f, MetaReport *report, char *errbuf, size_t errlen);
void precopy_final_free(PrecopyFinal *f);
/* What the last pass found: entries and bytes of its delta. */
void precopy_final_stats(const PrecopyFinal *f, uint64_t *ret_entries, uint64_t *ret_bytes);

/* The timestamp granularity of the filesystem holding path, in ns (conservative: 1 s when unknown). */
int64_t precopy_time_granularity_ns(const char *path);
