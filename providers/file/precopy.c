/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/common.h"
#include "lib/openat.h"
#include "copy.h"
#include "delta.h"
#include "meta.h"
#include "precopy.h"

#define INDEX_MAGIC 0x56535049u /* "IPSV" */
#define RATE_MIN_BYTES (4ULL << 20) /* a rate measured on less says little */

struct PrecopyFinal {
        Delta *d;
        int sfd, dfd, memfd;
        bool captured;
        char *src, *dst;
};

int64_t precopy_time_granularity_ns(const char *path) {
        struct statfs sf;
        struct statx sx;

        if (statfs(path, &sf) < 0)
                return NSEC_PER_SEC;
        switch ((unsigned long) sf.f_type) {
        case XFS_SUPER_MAGIC:
        case BTRFS_SUPER_MAGIC:
        case TMPFS_MAGIC:
        case F2FS_SUPER_MAGIC:
                /* Nanoseconds, taken from the coarse clock: a tick covers it. */
                return 20 * 1000 * 1000;
        case EXT4_SUPER_MAGIC:
                /* ext4 keeps nanoseconds only in large inodes; small ones (and ext2/3) keep seconds. */
                if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_CTIME, &sx) == 0 && sx.stx_ctime.tv_nsec != 0)
                        return 20 * 1000 * 1000;
                return NSEC_PER_SEC;
        case MSDOS_SUPER_MAGIC:
                return 2 * NSEC_PER_SEC;
        default:
                return NSEC_PER_SEC;
        }
}

/* ---- index on a memfd ---- */

typedef struct IndexHeader {
        uint32_t magic, reserved;
        uint64_t n, rate;
        int64_t start_ns, gran_ns;
} IndexHeader;

typedef struct RecDisk {
        uint64_t ino;
        int64_t size, mtime_ns, ctime_ns;
        uint32_t mode, len;
} RecDisk;

static int index_save(const Index *ix, int fd) {
        IndexHeader h = { .magic = INDEX_MAGIC, .n = ix->n, .rate = ix->rate, .start_ns = ix->start_ns, .gran_ns = ix->gran_ns };
        off_t off = sizeof(h);
        int r;

        if (ftruncate(fd, 0) < 0)
                return -errno;
        r = tree_write_all_at(fd, (const char *) &h, sizeof(h), 0);
        for (size_t i = 0; r >= 0 && i < ix->n; i++) {
                const Rec *e = &ix->recs[i];
                RecDisk rd = { e->ino, e->size, e->mtime_ns, e->ctime_ns, e->mode, (uint32_t) strlen(e->path) };
                r = tree_write_all_at(fd, (const char *) &rd, sizeof(rd), off);
                if (r >= 0)
                        r = tree_write_all_at(fd, e->path, rd.len, off + (off_t) sizeof(rd));
                off += (off_t) (sizeof(rd) + rd.len);
        }
        return r;
}

static int index_load(int fd, Index **ret) {
        struct stat st;
        IndexHeader h;
        int r = 0;

        if (fstat(fd, &st) < 0)
                return -errno;
        if ((size_t) st.st_size < sizeof(h) || pread(fd, &h, sizeof(h), 0) != (ssize_t) sizeof(h) || h.magic != INDEX_MAGIC)
                return -EBADMSG;
        Index *ix = calloc(1, sizeof(Index));
        if (!ix || (h.n > 0 && !(ix->recs = calloc(h.n, sizeof(Rec))))) {
                free(ix);
                return -ENOMEM;
        }
        ix->start_ns = h.start_ns;
        ix->gran_ns = h.gran_ns;
        ix->rate = h.rate;
        off_t off = sizeof(h);
        for (uint64_t i = 0; i < h.n; i++) {
                RecDisk rd;
                if (pread(fd, &rd, sizeof(rd), off) != (ssize_t) sizeof(rd) || rd.len >= PATH_MAX) {
                        r = -EBADMSG;
                        break;
                }
                char *p = malloc(rd.len + 1);
                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                if (pread(fd, p, rd.len, off + (off_t) sizeof(rd)) != (ssize_t) rd.len) {
                        free(p);
                        r = -EBADMSG;
                        break;
                }
                p[rd.len] = 0;
                ix->recs[ix->n++] = (Rec) { p, rd.ino, rd.size, rd.mtime_ns, rd.ctime_ns, rd.mode, false };
                off += (off_t) (sizeof(rd) + rd.len);
        }
        if (r < 0) {
                tree_index_free(ix);
                return r;
        }
        *ret = ix;
        return 0;
}

/* ---- files written through shared mappings ---- */

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* The inodes of files on dev some process maps shared and writable (/proc/PID/maps), sorted.
 * Each mapping's file is stat()ed through /proc/PID/map_files: maps shows the superblock's device,
 * which is not what stat() says on btrfs (a subvolume's own) or overlayfs. */
static int mapped_writable(dev_t dev, uint64_t **ret, size_t *ret_n) {
        _cleanup_free_ uint64_t *a = NULL;
        size_t n = 0, cap = 0;
        _cleanup_free_ char *line = NULL;
        size_t len = 0;
        DIR *d = opendir("/proc");
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                char path[64];
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/maps", de->d_name);
                FILE *f = fopen(path, "re");
                while (f && getline(&line, &len, f) > 0) {
                        char perms[8], range[64], file[128];
                        uint64_t ino;
                        struct stat st;
                        if (sscanf(line, "%63s %7s %*x %*x:%*x %" SCNu64, range, perms, &ino) != 3 || perms[1] != 'w' ||
                            perms[3] != 's' || ino == 0)
                                continue;
                        snprintf(file, sizeof(file), "/proc/%s/map_files/%s", de->d_name, range);
                        if (stat(file, &st) < 0 || st.st_dev != dev || !S_ISREG(st.st_mode))
                                continue; /* unmapped meanwhile, or another filesystem's */
                        ino = st.st_ino;
                        if (n == cap) {
                                uint64_t *b = realloc(a, (cap = cap ? 2 * cap : 64) * sizeof(*a));
                                if (!b) {
                                        fclose(f);
                                        closedir(d);
                                        return -ENOMEM;
                                }
                                a = b;
                        }
                        a[n++] = ino;
                }
                if (f)
                        fclose(f); /* gone meanwhile: nothing of it */
        }
        closedir(d);
        if (n > 0)
                qsort(a, n, sizeof(*a), cmp_u64);
        *ret = TAKE_PTR(a);
        *ret_n = n;
        return 0;
}

/* A store through a shared writable mapping into a page already dirty changes no timestamp (the
 * kernel updates them on the first write fault after writeback only): such a file, changed or not,
 * goes into the held pass whole, marked in the index as never matching. Their bytes into
 * *ret_bytes, the biggest into *ret_biggest (NULL when none). */
static int mark_mapped(int sfd, Index *ix, uint64_t *ret_bytes, const Rec **ret_biggest) {
        struct stat st;
        _cleanup_free_ uint64_t *inos = NULL;
        size_t n = 0;
        *ret_bytes = 0;
        *ret_biggest = NULL;
        if (fstat(sfd, &st) < 0)
                return -errno;
        int r = mapped_writable(st.st_dev, &inos, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; n > 0 && i < ix->n; i++) {
                Rec *e = &ix->recs[i];
                if (S_ISREG(e->mode) && bsearch(&e->ino, inos, n, sizeof(*inos), cmp_u64)) {
                        e->mtime_ns = INT64_MIN;
                        *ret_bytes += (uint64_t) e->size;
                        if (!*ret_biggest || e->size > (*ret_biggest)->size)
                                *ret_biggest = e;
                }
        }
        return 0;
}

/* ---- passes ---- */

int precopy_run(const char *src, const char *dst, int index_fd, uint32_t hold_ms, PrecopyResult *ret,
                char *errbuf, size_t errlen) {
        _cleanup_close_ int sfd = -EBADF, dfd = -EBADF;
        PrecopyResult res = {};
        Index *prev = NULL;
        Delta *last = NULL;
        int r = 0;

        int64_t gran = precopy_time_granularity_ns(src);
        /* No symlink on the way (copy_tree_deferred() says why). */
        sfd = open_no_symlinks(AT_FDCWD, src, O_RDONLY | O_DIRECTORY, 0, false);
        if (sfd == -ELOOP)
                snprintf(errbuf, errlen, "%s: a directory on the way is a symbolic link now (it was none when the "
                         "volume was added); not followed", src);
        if (sfd < 0)
                return sfd;
        if (mkdir(dst, 0700) < 0)
                return -errno;
        dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return -errno;

        for (unsigned pass = 0; pass < PRECOPY_MAX_PASSES; pass++) {
                Index *ix;
                Delta *d;
                int64_t start = (int64_t) now_clock_nsec(CLOCK_REALTIME_COARSE); /* the clock of file timestamps */
                uint64_t pass_start = now_monotonic_usec();
                r = tree_scan(sfd, prev, start, gran, &ix, &d);
                if (r < 0)
                        break;
                uint64_t t0 = now_monotonic_usec();
                r = tree_apply(d, sfd, dfd, -1, 0);
                uint64_t dt = now_monotonic_usec() - t0;
                tree_index_free(prev);
                prev = ix;
                if (r < 0) {
                        tree_delta_free(d);
                        break;
                }
                if (d->bytes >= RATE_MIN_BYTES && dt > 0)
                        res.rate = d->bytes * USEC_PER_SEC / dt;
                if (pass == 0) {
                        res.first_bytes = d->bytes;
                        res.first_usec = now_monotonic_usec() - pass_start;
                }
                res.passes++;
                bool shrinking = !last || d->bytes < last->bytes || (d->bytes == last->bytes && d->entries < last->entries);
                tree_delta_free(last);
                last = d;
                res.last_entries = d->entries;
                res.last_bytes = d->bytes;
                if (pass > 0 && (d->entries == 0 || !shrinking))
                        break;
        }
        uint64_t mapped = 0;
        const Rec *mapped_big = NULL;
        if (r >= 0)
                r = mark_mapped(sfd, prev, &mapped, &mapped_big);
        if (r >= 0) {
                prev->rate = res.rate;
                r = index_save(prev, index_fd);
        }
        /* What keeps changing between passes, and what is mapped for writing, goes into the held
         * pass whole: if that cannot fit the hold window, fail now, before the writers are
         * frozen for nothing. */
        if (r >= 0 && hold_ms > 0 && res.rate > 0 && (res.last_bytes + mapped) * 1000 / res.rate > hold_ms) {
                char big[512];
                tree_delta_biggest(last, big, sizeof(big));
                if (mapped_big && (uint64_t) mapped_big->size > res.last_bytes)
                        snprintf(big, sizeof(big), "%s (%" PRId64 " bytes, mapped shared and writable by a process)",
                                 mapped_big->path, mapped_big->size);
                snprintf(errbuf, errlen, "the files that change between copy passes or are mapped for writing (%" PRIu64
                         " bytes) cannot be copied within the hold window of %u ms; the biggest: %s",
                         res.last_bytes + mapped, hold_ms, big);
                r = -ETIME;
        }
        tree_index_free(prev);
        tree_delta_free(last);
        if (r >= 0 && ret)
                *ret = res;
        return r;
}

void precopy_final_free(PrecopyFinal *f) {
        if (!f)
                return;
        tree_delta_free(f->d);
        if (f->sfd >= 0)
                close(f->sfd);
        if (f->dfd >= 0)
                close(f->dfd);
        if (f->memfd >= 0)
                close(f->memfd);
        free(f->src);
        free(f->dst);
        free(f);
}

/* Reads the delta's data (regular files) and symlink targets into a memfd while the source is held. */
static int capture(PrecopyFinal *f, uint64_t deadline) {
        _cleanup_free_ char *buf = malloc(CAPTURE_BUFFER);
        uint64_t off = 0;
        int r;

        if (!buf)
                return -ENOMEM;
        f->memfd = memfd_create("vssd-hold-delta", MFD_CLOEXEC);
        if (f->memfd < 0)
                return -errno;
        for (size_t i = 0; i < f->d->n; i++) {
                Op *op = &f->d->ops[i];
                if (op->kind != OP_REPLACE && op->kind != OP_UPDATE)
                        continue;
                r = tree_deadline_check(deadline);
                if (r < 0)
                        return r;
                if (S_ISLNK(op->st.st_mode)) {
                        _cleanup_close_ int sp = -EBADF;
                        const char *name;
                        size_t n = (size_t) op->st.st_size + 1;
                        sp = tree_open_parent(f->sfd, op->path, &name);
                        if (sp < 0)
                                return sp;
                        op->target = malloc(n + 1);
                        if (!op->target)
                                return -ENOMEM;
                        ssize_t k = readlinkat(sp, name, op->target, n);
                        if (k < 0)
                                return -errno;
                        op->target[k] = 0;
                } else if (S_ISREG(op->st.st_mode)) {
                        _cleanup_close_ int in = tree_open_beneath(f->sfd, op->path, O_RDONLY | O_NONBLOCK | O_NOATIME);
                        if (in == -EPERM)
                                in = tree_open_beneath(f->sfd, op->path, O_RDONLY | O_NONBLOCK);
                        if (in < 0)
                                return in;
                        op->cap_off = off;
                        r = tree_copy_bytes(in, 0, f->memfd, (off_t) off, (uint64_t) op->st.st_size, buf);
                        if (r < 0)
                                return r;
                        off += (uint64_t) op->st.st_size;
                }
        }
        f->captured = true;
        return 0;
}

int precopy_final_begin(const char *src, const char *dst, int index_fd, uint64_t deadline_usec,
                        uint64_t capture_budget, PrecopyFinal **ret, char *errbuf, size_t errlen) {
        Index *prev = NULL, *ix = NULL;
        char big[512];
        int r;

        PrecopyFinal *f = calloc(1, sizeof(PrecopyFinal));
        if (!f)
                return -ENOMEM;
        f->sfd = f->dfd = f->memfd = -EBADF;
        f->src = strdup(src);
        f->dst = strdup(dst);
        if (!f->src || !f->dst) {
                r = -ENOMEM;
                goto fail;
        }
        r = index_load(index_fd, &prev);
        if (r < 0) {
                snprintf(errbuf, errlen, "the copy-ahead index of %s is unreadable", src);
                goto fail;
        }
        f->sfd = open_no_symlinks(AT_FDCWD, src, O_RDONLY | O_DIRECTORY, 0, false);
        if (f->sfd < 0) {
                r = f->sfd;
                goto fail;
        }
        f->dfd = open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (f->dfd < 0) {
                r = -errno;
                goto fail;
        }
        r = tree_scan(f->sfd, prev, (int64_t) now_clock_nsec(CLOCK_REALTIME_COARSE), prev->gran_ns, &ix, &f->d);
        tree_index_free(ix);
        if (r < 0)
                goto fail;
        tree_delta_biggest(f->d, big, sizeof(big));
        if (capture_budget > 0) {
                if (f->d->bytes > capture_budget) {
                        snprintf(errbuf, errlen, "the last delta (%" PRIu64 " bytes) does not fit file_hold_memory_bytes "
                                 "(%" PRIu64 "), the memory it is read into while the storage's filesystem is held; "
                                 "the biggest: %s", f->d->bytes, capture_budget, big);
                        r = -EFBIG;
                        goto fail;
                }
                r = capture(f, deadline_usec);
        } else {
                /* At the measured rate, the delta cannot fit what is left of the hold window: say
                 * so now rather than when the window closes. */
                uint64_t now = now_monotonic_usec();
                if (deadline_usec > 0 && prev->rate > 0 &&
                    (now >= deadline_usec || f->d->bytes * USEC_PER_SEC / prev->rate > deadline_usec - now))
                        r = -ETIME;
                else
                        r = tree_apply(f->d, f->sfd, f->dfd, -1, deadline_usec);
        }
        if (r == -ETIME)
                snprintf(errbuf, errlen, "the last delta (%" PRIu64 " entries, %" PRIu64 " bytes) cannot be copied "
                         "within the hold window; the biggest: %s", f->d->entries, f->d->bytes, big);
        if (r < 0)
                goto fail;
        tree_index_free(prev);
        *ret = f;
        return 0;
fail:
        tree_index_free(prev);
        precopy_final_free(f);
        return r;
}

int precopy_final_end(PrecopyFinal *f, MetaReport *report, char *errbuf, size_t errlen) {
        int r = 0;

        if (f->captured) {
                r = tree_apply(f->d, -1, f->dfd, f->memfd, 0);
                if (r < 0)
                        snprintf(errbuf, errlen, "cannot write the captured last delta: %s", strerror(-r));
        }
        /* The passes copied data, owners, modes and times; xattrs, ACLs, capabilities and chattr
         * attributes (protected ones last) are made the source's once, after the release. */
        if (r >= 0) {
                r = meta_sync_tree(f->sfd, f->dst, report);
                if (r < 0)
                        snprintf(errbuf, errlen, "cannot copy the extended attributes and file attributes: %s",
                                 strerror(-r));
        }
        if (r >= 0 && syncfs(f->dfd) < 0)
                r = -errno;
        precopy_final_free(f);
        return r;
}

void precopy_final_stats(const PrecopyFinal *f, uint64_t *ret_entries, uint64_t *ret_bytes) {
        *ret_entries = f->d->entries;
        *ret_bytes = f->d->bytes;
}
