/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The delta engine of the copy-ahead: scans a tree against the previous pass's index, and applies
 * what changed to the copy. */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/basic/walk.h"
#include "lib/common.h"
#include "lib/openat.h"
#include "copy.h"
#include "delta.h"

static int64_t ts_ns(struct timespec t) {
        return (int64_t) t.tv_sec * NSEC_PER_SEC + t.tv_nsec;
}

/* ---- index and delta ---- */

void tree_index_free(Index *ix) {
        if (!ix)
                return;
        for (size_t i = 0; i < ix->n; i++)
                free(ix->recs[i].path);
        free(ix->recs);
        free(ix);
}

static int rec_cmp(const void *a, const void *b) {
        return strcmp(((const Rec *) a)->path, ((const Rec *) b)->path);
}

static Rec *index_find(Index *ix, const char *path) {
        Rec key = { .path = (char *) path };
        return ix ? bsearch(&key, ix->recs, ix->n, sizeof(Rec), rec_cmp) : NULL;
}

void tree_delta_free(Delta *d) {
        if (!d)
                return;
        for (size_t i = 0; i < d->n; i++) {
                free(d->ops[i].path);
                free(d->ops[i].target);
        }
        free(d->ops);
        free(d);
}

/* An array of n elements of size bytes with room for one more: itself, or moved by realloc()
 * with its capacity *cap doubled (from first); NULL when out of memory. */
static void *array_grow(void *array, size_t *cap, size_t n, size_t size, size_t first) {
        if (n < *cap)
                return array;
        size_t c = *cap ? *cap * 2 : first;
        void *q = realloc(array, c * size);
        if (q)
                *cap = c;
        return q;
}

static int delta_add(Delta *d, OpKind kind, const char *path, const struct stat *st, bool mountpoint) {
        Op *ops = array_grow(d->ops, &d->cap, d->n, sizeof(Op), 64);
        if (!ops)
                return -ENOMEM;
        d->ops = ops;
        Op *op = &d->ops[d->n];
        *op = (Op) { .kind = kind, .path = strdup(path), .mountpoint = mountpoint };
        if (!op->path)
                return -ENOMEM;
        if (st)
                op->st = *st;
        d->n++;
        if (kind == OP_META)
                return 0;
        d->entries++;
        if (st && S_ISREG(st->st_mode) && kind != OP_REMOVE) {
                uint64_t size = (uint64_t) st->st_size;
                d->bytes += size;
                for (size_t i = 0; i < ELEMENTSOF(d->big); i++)
                        if (!d->big[i].path || size > d->big[i].size) {
                                memmove(&d->big[i + 1], &d->big[i], (ELEMENTSOF(d->big) - i - 1) * sizeof(d->big[0]));
                                d->big[i].path = op->path;
                                d->big[i].size = size;
                                break;
                        }
        }
        return 0;
}

/* "a (N bytes), b (N bytes)": the biggest files of a delta, for errors about its size. */
void tree_delta_biggest(const Delta *d, char *buf, size_t size) {
        size_t k = 0;
        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(d->big) && d->big[i].path && k < size; i++) {
                int n = snprintf(buf + k, size - k, "%s%s (%" PRIu64 " bytes)", i ? ", " : "",
                                 d->big[i].path[0] ? d->big[i].path : ".", d->big[i].size);
                if (n < 0)
                        break;
                k += (size_t) n;
        }
        if (!buf[0])
                snprintf(buf, size, "no regular files");
}

/* ---- scan ---- */

typedef struct Scan {
        Index *prev, *ix;
        Delta *d;
} Scan;

/* A directory's state in its WalkEntry.user: its op kind + 1 (0: none), and whether ops on its
 * entries change the copy's entries (so its mtime must be set again). */
#define SCAN_KIND_MASK ((uintptr_t) 0xff)
#define SCAN_CHILD_OP ((uintptr_t) 1 << 8)

static int index_add(Index *ix, const char *path, const struct stat *st, Rec **ret) {
        Rec *recs = array_grow(ix->recs, &ix->cap, ix->n, sizeof(Rec), 256);
        if (!recs)
                return -ENOMEM;
        ix->recs = recs;
        Rec *rec = &ix->recs[ix->n];
        *rec = (Rec) {
                .path = strdup(path),
                .ino = st->st_ino,
                .size = st->st_size,
                .mtime_ns = ts_ns(st->st_mtim),
                .ctime_ns = ts_ns(st->st_ctim),
                .mode = st->st_mode,
        };
        if (!rec->path)
                return -ENOMEM;
        ix->n++;
        *ret = rec;
        return 0;
}

/* One entry: recorded, compared with the previous pass, and an op when it changed. */
static int scan_entry(Scan *s, WalkEntry *e) {
        const struct stat *st = &e->st;
        /* Under a directory that is replaced, everything is new. */
        bool force = e->parent && (e->parent->user & SCAN_KIND_MASK) == (uintptr_t) OP_REPLACE + 1;
        Rec *rec;
        int r;

        if ((e->other_mount && !S_ISDIR(st->st_mode)) || S_ISSOCK(st->st_mode))
                return WALK_SKIP; /* like copy_tree: other filesystems' files and sockets are not copied */

        r = index_add(s->ix, e->path, st, &rec);
        if (r < 0)
                return r;

        Rec *p = index_find(s->prev, e->path);
        if (p)
                p->seen = true;
        int kind = -1;
        if (!s->prev || force || !p || ((p->mode ^ st->st_mode) & S_IFMT) || p->ino != st->st_ino)
                kind = e->depth == 0 ? OP_META : OP_REPLACE; /* the top directory itself stays */
        else if (p->size != rec->size || p->mtime_ns != rec->mtime_ns ||
                 rec->ctime_ns >= s->prev->start_ns - s->prev->gran_ns)
                kind = S_ISREG(st->st_mode) ? OP_UPDATE : S_ISDIR(st->st_mode) ? OP_META : OP_REPLACE;
        if (kind >= 0 && kind != OP_META) {
                r = delta_add(s->d, (OpKind) kind, e->path, st, e->other_mount);
                if (r < 0)
                        return r;
                if (kind == OP_REPLACE && e->parent)
                        e->parent->user |= SCAN_CHILD_OP;
        }
        e->user = (uintptr_t) (kind + 1);
        /* A mount point is reproduced empty: its metadata op now, it has no entries. */
        if (S_ISDIR(st->st_mode) && e->other_mount && kind >= 0)
                return delta_add(s->d, OP_META, e->path, st, true);
        return 0;
}

static int scan_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        Scan *s = userdata;

        if (event == WALK_ENTRY)
                return scan_entry(s, e);
        /* A directory's metadata is set after its entries are in (they change its mtime). */
        if (event == WALK_DIR_LEAVE && e->user != 0)
                return delta_add(s->d, OP_META, e->path, &e->st, false);
        return 0;
}

/* A pass's scan of the tree at sfd: its index, and the delta since prev (NULL: everything). */
int tree_scan(int sfd, Index *prev, int64_t start_ns, int64_t gran_ns, Index **ret_ix, Delta **ret_d) {
        Scan s = { .prev = prev };
        int r;

        s.ix = calloc(1, sizeof(Index));
        s.d = calloc(1, sizeof(Delta));
        if (!s.ix || !s.d) {
                tree_index_free(s.ix);
                tree_delta_free(s.d);
                return -ENOMEM;
        }
        s.ix->start_ns = start_ns;
        s.ix->gran_ns = gran_ns;
        if (prev)
                for (size_t i = 0; i < prev->n; i++)
                        prev->recs[i].seen = false;

        /* The top by "": the walker opens it as ".", a new open file description, so each pass
         * reads it from its start. */
        r = walk_tree(sfd, "", WALK_ONE_FS | WALK_NOATIME | WALK_PATHS, COPY_DEPTH_MAX - 1, scan_walk, &s);
        /* Gone since the previous pass. */
        for (size_t i = 0; r >= 0 && prev && i < prev->n; i++)
                if (!prev->recs[i].seen)
                        r = delta_add(s.d, OP_REMOVE, prev->recs[i].path, NULL, false);
        if (r < 0) {
                tree_index_free(s.ix);
                tree_delta_free(s.d);
                return r;
        }
        qsort(s.ix->recs, s.ix->n, sizeof(Rec), rec_cmp);
        *ret_ix = s.ix;
        *ret_d = s.d;
        return 0;
}

/* ---- apply ---- */

int tree_open_beneath(int top, const char *path, int flags) {
        return open_no_symlinks(top, path[0] ? path : ".", flags | O_NOFOLLOW, 0, true);
}

/* The directory holding path (beneath top) and the last component. */
int tree_open_parent(int top, const char *path, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        char dir[PATH_MAX];

        if (!slash) {
                int fd = fcntl(top, F_DUPFD_CLOEXEC, 3);
                *ret_name = path;
                return fd < 0 ? -errno : fd;
        }
        snprintf(dir, sizeof(dir), "%.*s", (int) (slash - path), path);
        *ret_name = slash + 1;
        return tree_open_beneath(top, dir, O_PATH | O_DIRECTORY);
}

static int remove_at(int top, const char *path) {
        char full[PATH_MAX];
        /* remove_tree() works by path; the destination is vssd's own, reached without symlinks. */
        snprintf(full, sizeof(full), "/proc/self/fd/%d/%s", top, path);
        int r = remove_tree(full);
        return r == -ENOTDIR ? 0 : r;
}

/* n bytes from in at in_off to out at out_off, through buf. */
int tree_copy_bytes(int in, off_t in_off, int out, off_t out_off, uint64_t n, char *buf) {
        while (n > 0) {
                ssize_t k = pread(in, buf, n < CAPTURE_BUFFER ? (size_t) n : CAPTURE_BUFFER, in_off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -ENODATA;
                int r = tree_write_all_at(out, buf, (size_t) k, out_off);
                if (r < 0)
                        return r;
                in_off += k;
                out_off += k;
                n -= (uint64_t) k;
        }
        return 0;
}

typedef struct Apply {
        int sfd, dfd, memfd;  /* memfd >= 0: the data comes from the capture */
        char *buf;
        struct Linked { dev_t dev; ino_t ino; const char *path; } *links;
        size_t n_links;
} Apply;

static int apply_regular(Apply *a, const Op *op) {
        _cleanup_close_ int in = -EBADF, out = -EBADF, pfd = -EBADF;
        const char *name;
        uint64_t size = 0;
        int r;

        if (a->memfd < 0) {
                in = tree_open_beneath(a->sfd, op->path, O_RDONLY | O_NONBLOCK | O_NOATIME);
                if (in == -EPERM)
                        in = tree_open_beneath(a->sfd, op->path, O_RDONLY | O_NONBLOCK);
                if (in == -ENOENT || in == -ELOOP || in == -ENXIO)
                        return 0; /* gone or replaced since the scan: the next pass sees it */
                if (in < 0)
                        return in;
                struct stat st;
                if (fstat(in, &st) < 0)
                        return -errno;
                if (!S_ISREG(st.st_mode))
                        return 0;
        }

        pfd = tree_open_parent(a->dfd, op->path, &name);
        if (pfd < 0)
                return pfd;
        if (op->kind == OP_UPDATE) {
                out = openat(pfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (out < 0 && errno != EACCES && errno != EPERM && errno != ENOENT)
                        return -errno;
        }
        if (out < 0) {
                r = remove_at(a->dfd, op->path);
                if (r < 0)
                        return r;
                /* Another name of an inode this pass created: a hard link, as the source has. */
                for (size_t i = 0; op->st.st_nlink > 1 && i < a->n_links; i++)
                        if (a->links[i].dev == op->st.st_dev && a->links[i].ino == op->st.st_ino) {
                                _cleanup_close_ int lp = -EBADF;
                                const char *lname;
                                lp = tree_open_parent(a->dfd, a->links[i].path, &lname);
                                if (lp >= 0 && linkat(lp, lname, pfd, name, 0) >= 0)
                                        return 0;
                                break;
                        }
                out = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (out < 0)
                        return -errno;
                if (op->st.st_nlink > 1) {
                        struct Linked *n = (a->n_links & 31) == 0 ? realloc(a->links, (a->n_links + 32) * sizeof(*n))
                                                                   : a->links;
                        if (n) { /* without memory the other names become copies */
                                a->links = n;
                                a->links[a->n_links++] = (struct Linked) { op->st.st_dev, op->st.st_ino, op->path };
                        }
                }
        }

        if (a->memfd >= 0) {
                if (ftruncate(out, 0) < 0)
                        return -errno;
                if (!a->buf && !(a->buf = malloc(CAPTURE_BUFFER)))
                        return -ENOMEM;
                r = tree_copy_bytes(a->memfd, (off_t) op->cap_off, out, 0, (uint64_t) op->st.st_size, a->buf);
        } else
                r = copy_file_data(in, out, &size);
        if (r < 0)
                return r;
        return copy_metadata_fd(out, &op->st);
}

static int apply_other(Apply *a, const Op *op) {
        _cleanup_close_ int pfd = -EBADF;
        _cleanup_free_ char *target = NULL;
        const char *name;
        int r;

        if (S_ISLNK(op->st.st_mode) && !op->target) {
                size_t n = (size_t) op->st.st_size + 1 > 256 ? (size_t) op->st.st_size + 1 : 256;
                _cleanup_close_ int sp = -EBADF;
                const char *sname;
                sp = tree_open_parent(a->sfd, op->path, &sname);
                if (sp < 0)
                        return sp == -ENOENT ? 0 : sp;
                target = malloc(n + 1);
                if (!target)
                        return -ENOMEM;
                ssize_t k = readlinkat(sp, sname, target, n);
                if (k < 0)
                        return errno == ENOENT || errno == EINVAL ? 0 : -errno;
                target[k] = 0;
        }
        pfd = tree_open_parent(a->dfd, op->path, &name);
        if (pfd < 0)
                return pfd;
        r = remove_at(a->dfd, op->path);
        if (r < 0)
                return r;
        if (S_ISLNK(op->st.st_mode))
                r = symlinkat(op->target ? op->target : target, pfd, name);
        else if (S_ISDIR(op->st.st_mode))
                r = mkdirat(pfd, name, 0700);
        else
                r = mknodat(pfd, name, (op->st.st_mode & S_IFMT) | 0600, op->st.st_rdev);
        if (r < 0)
                return -errno;
        return S_ISDIR(op->st.st_mode) ? 0 : copy_metadata_at(pfd, name, &op->st);
}

static int apply_meta(Apply *a, const Op *op) {
        _cleanup_close_ int fd = tree_open_beneath(a->dfd, op->path, O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd == -ENOENT ? 0 : fd;
        return copy_metadata_fd(fd, &op->st);
}

int tree_deadline_check(uint64_t deadline) {
        return deadline > 0 && now_monotonic_usec() > deadline ? -ETIME : 0;
}

/* Brings the copy at dfd up to date with d: gone entries first, then the changed ones in scan
 * order (parents before children), then directory metadata, deepest first. */
int tree_apply(const Delta *d, int sfd, int dfd, int memfd, uint64_t deadline) {
        Apply a = { .sfd = sfd, .dfd = dfd, .memfd = memfd };
        int r = 0;

        for (size_t i = 0; r >= 0 && i < d->n; i++)
                if (d->ops[i].kind == OP_REMOVE)
                        r = remove_at(dfd, d->ops[i].path);
        for (size_t i = 0; r >= 0 && i < d->n; i++) {
                const Op *op = &d->ops[i];
                if (op->kind == OP_REMOVE || op->kind == OP_META)
                        continue;
                r = tree_deadline_check(deadline);
                if (r >= 0)
                        r = S_ISREG(op->st.st_mode) ? apply_regular(&a, op) : apply_other(&a, op);
        }
        for (size_t i = d->n; r >= 0 && i > 0; i--)
                if (d->ops[i - 1].kind == OP_META)
                        r = apply_meta(&a, &d->ops[i - 1]);
        free(a.buf);
        free(a.links);
        return r;
}
