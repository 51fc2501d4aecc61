/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The delta engine of the copy-ahead: scans a tree against the previous pass's index, and applies
 * what changed to the copy. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/common.h"
#include "lib/openat.h"
#include "copy.h"
#include "delta.h"

static int64_t ts_ns(struct statx_timestamp t) {
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

static int delta_add(Delta *d, OpKind kind, const char *path, const struct stat *st, bool mountpoint) {
        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 64;
                Op *n = realloc(d->ops, cap * sizeof(Op));
                if (!n)
                        return -ENOMEM;
                d->ops = n;
                d->cap = cap;
        }
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
        dev_t dev;
        uint64_t mnt_id;
        char path[PATH_MAX];
} Scan;

static int do_statx(int dfd, const char *name, int flags, struct stat *st, int64_t *ret_ctime, uint64_t *ret_mnt) {
        struct statx sx;

        if (statx(dfd, name, flags | AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT,
                  STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0)
                return errno > 0 ? -errno : -EIO;
        *st = (struct stat) {
                .st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
                .st_ino = sx.stx_ino,
                .st_mode = sx.stx_mode,
                .st_nlink = sx.stx_nlink,
                .st_uid = sx.stx_uid,
                .st_gid = sx.stx_gid,
                .st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor),
                .st_size = (off_t) sx.stx_size,
                .st_atim = { .tv_sec = sx.stx_atime.tv_sec, .tv_nsec = sx.stx_atime.tv_nsec },
                .st_mtim = { .tv_sec = sx.stx_mtime.tv_sec, .tv_nsec = sx.stx_mtime.tv_nsec },
                .st_ctim = { .tv_sec = sx.stx_ctime.tv_sec, .tv_nsec = sx.stx_ctime.tv_nsec },
        };
        *ret_ctime = ts_ns(sx.stx_ctime);
        *ret_mnt = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
        return 0;
}

static int scan_dir(Scan *s, int fd, size_t len, bool force, unsigned depth, bool *ret_child_op);

/* One entry: recorded, compared with the previous pass, and an op when it changed. *ret_op tells
 * the parent that its copy's entries change (so its mtime must be set again). */
static int scan_entry(Scan *s, int dfd, const char *name, size_t len, bool force, unsigned depth, bool *ret_op) {
        struct stat st;
        int64_t ctime_ns;
        uint64_t mnt;
        bool mountpoint, child_op = false;
        int r;

        r = do_statx(dfd, name, depth == 0 ? AT_EMPTY_PATH : 0, &st, &ctime_ns, &mnt);
        if (r == -ENOENT && depth > 0) /* deleted while we walk */
                return 0;
        if (r < 0)
                return r;
        if (depth == 0) {
                s->dev = st.st_dev;
                s->mnt_id = mnt;
        }
        mountpoint = st.st_dev != s->dev || (s->mnt_id && mnt && mnt != s->mnt_id);
        if ((mountpoint && !S_ISDIR(st.st_mode)) || S_ISSOCK(st.st_mode))
                return 0; /* like copy_tree: other filesystems' files and sockets are not copied */

        Index *ix = s->ix;
        if (ix->n == ix->cap) {
                size_t cap = ix->cap ? ix->cap * 2 : 256;
                Rec *n = realloc(ix->recs, cap * sizeof(Rec));
                if (!n)
                        return -ENOMEM;
                ix->recs = n;
                ix->cap = cap;
        }
        Rec *rec = &ix->recs[ix->n];
        *rec = (Rec) {
                .path = strdup(s->path),
                .ino = st.st_ino,
                .size = st.st_size,
                .mtime_ns = (int64_t) st.st_mtim.tv_sec * NSEC_PER_SEC + st.st_mtim.tv_nsec,
                .ctime_ns = ctime_ns,
                .mode = st.st_mode,
        };
        if (!rec->path)
                return -ENOMEM;
        ix->n++;

        Rec *p = index_find(s->prev, s->path);
        if (p)
                p->seen = true;
        int kind = -1;
        if (!s->prev || force || !p || ((p->mode ^ st.st_mode) & S_IFMT) || p->ino != st.st_ino)
                kind = depth == 0 ? OP_META : OP_REPLACE; /* the top directory itself stays */
        else if (p->size != rec->size || p->mtime_ns != rec->mtime_ns ||
                 rec->ctime_ns >= s->prev->start_ns - s->prev->gran_ns)
                kind = S_ISREG(st.st_mode) ? OP_UPDATE : S_ISDIR(st.st_mode) ? OP_META : OP_REPLACE;
        if (kind >= 0 && kind != OP_META) {
                r = delta_add(s->d, (OpKind) kind, s->path, &st, mountpoint);
                if (r < 0)
                        return r;
                if (kind == OP_REPLACE)
                        *ret_op = true;
        }

        if (S_ISDIR(st.st_mode)) {
                if (!mountpoint) {
                        /* The top by ".": a new open file description, so each pass reads it from its start. */
                        const char *n = depth == 0 ? "." : name;
                        int fd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
                        if (fd < 0 && errno == EPERM)
                                fd = openat(dfd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0)
                                return errno == ENOENT && depth > 0 ? 0 : -errno;
                        r = scan_dir(s, fd, len, kind == OP_REPLACE, depth, &child_op);
                        if (r < 0)
                                return r;
                }
                /* Its metadata is set after its entries are in (they change its mtime). */
                if (kind >= 0 || child_op)
                        return delta_add(s->d, OP_META, s->path, &st, mountpoint);
        }
        return 0;
}

/* Takes fd over. */
static int scan_dir(Scan *s, int fd, size_t len, bool force, unsigned depth, bool *ret_child_op) {
        DIR *d;
        int r = 0;

        if (depth >= COPY_DEPTH_MAX) {
                close(fd);
                return -ELOOP;
        }
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = -errno;
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                size_t n = strlen(de->d_name);
                if (len + (len > 0) + n + 1 > sizeof(s->path)) {
                        r = -ENAMETOOLONG;
                        break;
                }
                if (len > 0)
                        s->path[len] = '/';
                memcpy(s->path + len + (len > 0), de->d_name, n + 1);
                r = scan_entry(s, dirfd(d), de->d_name, len + (len > 0) + n, force, depth + 1, ret_child_op);
                s->path[len] = 0;
                if (r < 0)
                        break;
        }
        closedir(d);
        return r;
}

/* A pass's scan of the tree at sfd: its index, and the delta since prev (NULL: everything). */
int tree_scan(int sfd, Index *prev, int64_t start_ns, int64_t gran_ns, Index **ret_ix, Delta **ret_d) {
        Scan s = { .prev = prev };
        bool top_op = false;
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

        _cleanup_close_ int fd = fcntl(sfd, F_DUPFD_CLOEXEC, 3);
        r = fd < 0 ? -errno : scan_entry(&s, fd, "", 0, false, 0, &top_op);
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
