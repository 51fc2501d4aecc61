/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Storing a group of files: the walk below its path (no symlink followed, one filesystem), the
 * index, and the data extent by extent (holes stay holes). */

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/common.h"
#include "tools/dir-util.h"
#include "tools/store-internal.h"

static uint64_t ts_usec(const struct timespec *ts) {
        return ts->tv_sec < 0 ? 0 : (uint64_t) ts->tv_sec * USEC_PER_SEC + (uint64_t) ts->tv_nsec / 1000U;
}

static int get_buffer(Store *s) {
        if (!s->buf)
                s->buf = malloc(BUFFER_SIZE);
        return s->buf ? 0 : -ENOMEM;
}

/* Adds p to the index: 1, or 0 if it is there already. */
static int index_add(Store *s, const char *p) {
        char *copy;
        const void *n;

        if (tfind(p, &s->seen, cmp_str))
                return 0;
        if (s->n_paths == s->n_allocated) {
                size_t k = s->n_allocated ? s->n_allocated * 2 : 256;
                char **a = reallocarray(s->paths, k, sizeof *a);
                if (!a)
                        return -ENOMEM;
                s->paths = a;
                s->n_allocated = k;
        }
        copy = strdup(p);
        if (!copy)
                return -ENOMEM;
        n = tsearch(copy, &s->seen, cmp_str);
        if (!n) {
                free(copy);
                return -ENOMEM;
        }
        s->paths[s->n_paths++] = copy;
        return 1;
}

typedef struct Walk {
        Store *s;
        const char *root;               /* source_root; "" for "/" */
        const char *strip;              /* "" or a normalized path */
        StoreFileGroup group;           /* with a normalized path */
        const StoreFileGroup *excludes; /* normalized */
        size_t n_excludes;
        uint64_t since_usec;
        dev_t dev;                      /* the group path's filesystem */
        dev_t live_dev;                 /* reading a copy: the group path's filesystem where it is now; else 0 */
        bool owned;                     /* every file within strip must belong to owner */
        uid_t owner;
        char **ret_error;
} Walk;

/* Where original path p is read from now: below strip, in root; above it (parent directories
 * outside the volume), where it is. */
static char *source_of(const Walk *w, const char *p) {
        char *r;

        if (!isempty(w->strip) && !path_under(p, w->strip))
                return strdup(p);
        if (asprintf(&r, "%s%s", w->root, p + strlen(w->strip)) < 0)
                return NULL;
        if (isempty(r)) {
                free(r);
                return strdup("/");
        }
        return r;
}

static int open_source(int dfd, const char *name) {
        int fd;

        /* O_NOATIME: a backup should not look like a read of every file. It needs ownership or
         * CAP_FOWNER, so retry without it. O_NONBLOCK: a fifo swapped in must not block us. */
        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_NOATIME);
        if (fd < 0 && errno == EPERM)
                fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        return fd < 0 ? -errno : fd;
}

static int write_zeros(Store *s, int64_t n, const char *p, char **ret_error) {
        static const char zeros[64 * 1024];

        /* The pax writer drops the bytes that fall in holes of the sparse map; it still counts
         * them, so holes must be fed. */
        while (n > 0) {
                size_t k = n < (int64_t) sizeof zeros ? (size_t) n : sizeof zeros;
                if (archive_write_data(s->out, zeros, k) < 0)
                        return fail_archive(ret_error, s->out, "storing", p);
                n -= (int64_t) k;
        }
        return 0;
}

/* Copies [off, off + len) of fd; *ret_eof when the file ended first (it shrank). */
static int copy_range(Store *s, int fd, int64_t off, int64_t len, const char *p, bool *ret_eof, char **ret_error) {
        while (len > 0) {
                ssize_t k = pread(fd, s->buf, len < BUFFER_SIZE ? (size_t) len : BUFFER_SIZE, off);
                int r;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return fail(ret_error, -errno, "reading %s: %m", p);
                if (k == 0) {
                        *ret_eof = true;
                        return 0;
                }
                r = s->is_dir ? archive_write_data_block(s->out, s->buf, (size_t) k, off)
                              : (archive_write_data(s->out, s->buf, (size_t) k) < 0 ? ARCHIVE_FATAL : ARCHIVE_OK);
                if (r != ARCHIVE_OK)
                        return fail_archive(ret_error, s->out, "storing", p);
                off += k;
                len -= k;
                s->bytes += (uint64_t) k;
        }
        return 0;
}

/* The data of a regular file, extent by extent: holes are not read, and stay holes. */
static int copy_data(Store *s, int fd, struct archive_entry *e, const char *p, char **ret_error) {
        int64_t size = archive_entry_size(e), pos = 0;
        bool sparse = archive_entry_sparse_reset(e) > 0, eof = false;
        int r;

        if (get_buffer(s) < 0)
                return fail_oom(ret_error);
        while (pos < size && !eof) {
                la_int64_t off = 0, len = size;

                if (sparse && archive_entry_sparse_next(e, &off, &len) != ARCHIVE_OK)
                        break;
                if (off < pos || off > size || len < 0)
                        return fail(ret_error, -EIO, "%s: inconsistent map of holes", p);
                if (len > size - off)
                        len = size - off;
                if (!s->is_dir && off > pos) {
                        r = write_zeros(s, off - pos, p, ret_error);
                        if (r < 0)
                                return r;
                }
                r = copy_range(s, fd, off, len, p, &eof, ret_error);
                if (r < 0)
                        return r;
                pos = off + len;
        }
        /* A trailing hole: the directory store gets its size from the entry. A file that shrank
         * is padded by the tar writer. */
        if (!s->is_dir && !eof && pos < size)
                return write_zeros(s, size - pos, p, ret_error);
        return 0;
}

/* Whether a file was not touched since the base backup. A shadow copy made by copying has fresh
 * ctimes, so the ctime that counts is the original's: a file changed after the shadow was cut
 * is merely copied again (conservative), while a file changed before it is never missed. mtime
 * comes from the shadow, which keeps it. */
static bool unchanged_since(const Walk *w, const char *p, const struct stat *st) {
        struct stat orig;
        if (ts_usec(&st->st_mtim) >= w->since_usec || ts_usec(&st->st_ctim) >= w->since_usec) {
                if (isempty(w->root) || ts_usec(&st->st_mtim) >= w->since_usec)
                        return false;
                /* Only the copy's ctime is new: ask the original. */
                if (lstat(p, &orig) < 0 || !S_ISREG(orig.st_mode))
                        return false;
                return ts_usec(&orig.st_ctim) < w->since_usec && ts_usec(&orig.st_mtim) < w->since_usec;
        }
        return true;
}

/* Lists original path p in the index and stores it unless it is there already or unchanged
 * (incremental). fd: the opened directory for directories; regular files are opened at dfd/name. */
static int add_entry(Walk *w, int dfd, const char *name, int fd, const char *p, const struct stat *st_in) {
        _cleanup_(entry_freep) struct archive_entry *e = NULL;
        struct archive_entry *spare = NULL;
        _cleanup_free_ char *src = NULL, *stored = NULL;
        _cleanup_close_ int ffd = -EBADF;
        struct stat st = *st_in;
        Store *s = w->s;
        int r;

        if (tfind(p, &s->seen, cmp_str))
                return 0; /* in an earlier group already */
        if (S_ISREG(st.st_mode) && w->since_usec > 0 && unchanged_since(w, p, &st) &&
            (!s->base || store_index_has(s->base, p)))
                /* Unchanged since the base backup, which holds it at this path: listed only. */
                return index_add(s, p) < 0 ? fail_oom(w->ret_error) : 0;

        /* write_disk works with absolute names, the tar writer with names inside the archive. */
        src = source_of(w, p);
        if (!src || asprintf(&stored, "%s%sdata%s", s->is_dir ? s->path : "", s->is_dir ? "/" : "", p) < 0)
                return fail_oom(w->ret_error);
        if (strlen(stored) >= PATH_MAX) /* write_disk would chdir() its way down: not in a library */
                return fail(w->ret_error, -ENAMETOOLONG, "%.*s...: path too long for %s", NAME_SHOWN, p, s->path);

        if (S_ISREG(st.st_mode)) {
                ffd = open_source(dfd, name);
                if (ffd == -ENOENT)
                        return 0; /* gone meanwhile (a live source): not in the index either */
                if (ffd < 0)
                        return fail(w->ret_error, ffd, "cannot open %s: %s", src, strerror(-ffd));
                if (fstat(ffd, &st) < 0)
                        return fail(w->ret_error, -errno, "%s: %m", src);
                if (!S_ISREG(st.st_mode))
                        return fail(w->ret_error, -EBUSY, "%s: changed type while being stored", src);
                fd = ffd;
        }
        /* Checked on what is read (the descriptor's inode for files and directories), so a path
         * swapped after an earlier check cannot hand over someone else's file. */
        if (w->owned && path_within(p, w->strip) && st.st_uid != w->owner)
                return fail(w->ret_error, -EPERM, "%s belongs to uid %u, not to uid %u", src, (unsigned) st.st_uid,
                            (unsigned) w->owner);
        if (index_add(s, p) < 0)
                return fail_oom(w->ret_error);

        e = archive_entry_new();
        if (!e)
                return fail_oom(w->ret_error);
        archive_entry_copy_pathname(e, stored);
        archive_entry_copy_sourcepath(e, src); /* what libarchive reads symlink targets and xattrs from */
        if (archive_read_disk_entry_from_file(s->rdisk, e, fd, &st) != ARCHIVE_OK)
                return fail_archive(w->ret_error, s->rdisk, "reading metadata of", src);
        if (store_note_flags(s, p, e) < 0)
                return fail_oom(w->ret_error);

        /* The tar strategy hands the entry back: unchanged the first time an inode is seen, a hard
         * link to that first name (without data) afterwards. */
        archive_entry_linkify(s->links, &e, &spare);
        if (spare)
                archive_entry_free(spare);
        if (archive_entry_hardlink(e))
                archive_entry_sparse_clear(e);

        r = archive_write_header(s->out, e);
        if (r != ARCHIVE_OK && !store_warn_archive(s, s->out, r, stored))
                return fail_archive(w->ret_error, s->out, "storing", p);
        if (S_ISREG(st.st_mode) && !archive_entry_hardlink(e) && archive_entry_size(e) > 0) {
                r = copy_data(s, fd, e, p, w->ret_error);
                if (r < 0)
                        return r;
        }
        r = archive_write_finish_entry(s->out);
        if (r != ARCHIVE_OK && !store_warn_archive(s, s->out, r, stored))
                return fail_archive(w->ret_error, s->out, "storing", p);

        if (!S_ISDIR(st.st_mode)) {
                s->files++;
                progress(s, p);
        }
        return 0;
}

static int walk_dir(Walk *w, int fd, const char *p, unsigned depth);

/* Reading a copy: original directory p, where it is now, the root of another filesystem that is
 * no mount point (a nested btrfs subvolume) is told to the caller (store_set_boundary()). */
static void note_boundary(Walk *w, const char *p) {
        struct statx sx;
        if (!w->s->boundary || !w->live_dev ||
            statx(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &sx) < 0 || !S_ISDIR(sx.stx_mode))
                return;
        dev_t dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
        if (dev != w->live_dev && !(sx.stx_attributes_mask & sx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
                w->s->boundary(p, dev, w->s->boundary_userdata);
}

/* A directory: stored, then walked unless it is a mount point. */
static int add_dir(Walk *w, int dfd, const char *name, const char *p, unsigned depth) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 && errno == ENOENT)
                return 0;
        if (fd < 0 || fstat(fd, &st) < 0)
                return fail(w->ret_error, -errno, "cannot open directory %s: %m", p);
        r = add_entry(w, -EBADF, NULL, fd, p, &st);
        if (r >= 0)
                note_boundary(w, p);
        if (r < 0 || st.st_dev != w->dev)
                return r; /* another filesystem: kept as an empty directory */
        return walk_dir(w, fd, p, depth);
}

typedef struct WalkDir {
        Walk *w;
        const char *p;
        unsigned depth;
} WalkDir;

static int walk_entry(const DirEntry *e, void *userdata) {
        const WalkDir *wd = userdata;
        Walk *w = wd->w;

        if (e->stat_error < 0)
                return fail(w->ret_error, e->stat_error, "%s/%s: %s", wd->p, e->name, strerror(-e->stat_error));
        if (strlen(e->path) >= PATH_MAX)
                return fail(w->ret_error, -ENAMETOOLONG, "%.*s...: path too long", NAME_SHOWN, e->path);
        if (S_ISDIR(e->st.st_mode)) {
                if (!w->group.recursive || excluded(w->excludes, w->n_excludes, e->path, true))
                        return 0;
                return add_dir(w, e->dfd, e->name, e->path, wd->depth + 1);
        }
        if (S_ISSOCK(e->st.st_mode) || !group_match(&w->group, e->path, false) ||
            excluded(w->excludes, w->n_excludes, e->path, false))
                return 0;
        return add_entry(w, e->dfd, e->name, -EBADF, e->path, &e->st);
}

static int walk_dir(Walk *w, int fd, const char *p, unsigned depth) {
        int r;

        if (depth > WALK_DEPTH_MAX)
                return fail(w->ret_error, -ELOOP, "%s: directories nested too deeply", p);
        r = dir_foreach(fd, p, walk_entry, &(WalkDir) { w, p, depth });
        if (r == -ENOMEM)
                return fail_oom(w->ret_error);
        /* fail() keeps the first message: walk_entry's, when it failed. */
        return r < 0 ? fail(w->ret_error, r, "reading directory %s: %s", p, strerror(-r)) : 0;
}

/* The parent directories of p, top down, so the tree can be recreated with their metadata. */
static int add_parents(Walk *w, const char *p) {
        _cleanup_free_ char *a = strdup(p);

        if (!a)
                return fail_oom(w->ret_error);
        for (char *slash = strchr(a + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
                _cleanup_free_ char *src = NULL;
                _cleanup_close_ int fd = -EBADF;
                struct stat st;
                int r;

                *slash = 0;
                src = source_of(w, a);
                if (!src)
                        return fail_oom(w->ret_error);
                /* A parent outside the volume may be missing or a symlink now: not ours to store. */
                fd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (fd < 0 && errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
                        return fail(w->ret_error, -errno, "cannot open directory %s: %m", src);
                if (fd >= 0) {
                        if (fstat(fd, &st) < 0)
                                return fail(w->ret_error, -errno, "%s: %m", src);
                        r = add_entry(w, -EBADF, NULL, fd, a, &st);
                        if (r < 0)
                                return r;
                }
                *slash = '/';
        }
        return 0;
}

/* "" for "" and "/" (nothing to prepend or strip), else the normalized path. */
static int normalize_prefix(const char *in, char **ret) {
        int r;

        if (isempty(in)) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        r = path_clean(in, ret);
        if (r >= 0 && streq(*ret, "/"))
                (*ret)[0] = 0;
        return r;
}

static int add_files(Store *s, const char *source_root, const char *strip, const StoreFileGroup *group,
                     const StoreFileGroup *excludes, size_t n_excludes, uint64_t since_usec, const uid_t *owner,
                     char **ret_error) {
        _cleanup_free_ char *root = NULL, *strip_n = NULL, *gpath = NULL, *src = NULL;
        Walk w = { .s = s, .since_usec = since_usec, .owned = owner != NULL, .owner = owner ? *owner : 0,
                   .ret_error = ret_error };
        StoreFileGroup *x;
        size_t first;
        struct stat st;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s || !s->writing)
                return fail(ret_error, -EBADF, "the backup is not open for writing");
        if (!group || path_clean(group->path, &gpath) < 0)
                return fail(ret_error, -EINVAL, "invalid group path '%.*s'", NAME_SHOWN,
                            group ? strempty(group->path) : "");
        if (normalize_prefix(source_root, &root) < 0)
                return fail(ret_error, -EINVAL, "invalid source root '%.*s'", NAME_SHOWN, source_root);
        if (normalize_prefix(strip, &strip_n) < 0)
                return fail(ret_error, -EINVAL, "invalid prefix to strip '%.*s'", NAME_SHOWN, strip);
        if (n_excludes > 0 && !excludes)
                return fail(ret_error, -EINVAL, "no excludes given");
        if (*strip_n && !path_under(gpath, strip_n))
                return fail(ret_error, -EINVAL, "group path %s is not within %s", gpath, strip_n);

        /* Kept for the excludes document, and used from there for this walk. */
        x = reallocarray(s->excludes, s->n_excludes + n_excludes + 1, sizeof *x);
        if (!x)
                return fail_oom(ret_error);
        s->excludes = x;
        first = s->n_excludes;
        for (size_t i = 0; i < n_excludes; i++) {
                StoreFileGroup c = { .recursive = excludes[i].recursive };
                if (path_clean(excludes[i].path, (char **) &c.path) < 0)
                        return fail(ret_error, -EINVAL, "invalid exclude path '%.*s'", NAME_SHOWN,
                                    strempty(excludes[i].path));
                c.filespec = strdup(filespec_all(excludes[i].filespec) ? "*" : excludes[i].filespec);
                if (!c.filespec) {
                        free((char *) c.path);
                        return fail_oom(ret_error);
                }
                s->excludes[s->n_excludes++] = c;
        }

        w.root = root;
        w.strip = strip_n;
        w.group = (StoreFileGroup) { .path = gpath, .filespec = group->filespec, .recursive = group->recursive };
        w.excludes = s->excludes + first;
        w.n_excludes = n_excludes;

        if (*root && stat(root, &st) < 0)
                return fail(ret_error, -errno, "source root %s: %m", root);
        src = source_of(&w, gpath);
        if (!src)
                return fail_oom(ret_error);
        if (lstat(src, &st) < 0) {
                if (errno == ENOENT)
                        return 0; /* nothing of this group exists (anymore) */
                return fail(ret_error, -errno, "%s: %m", src);
        }
        if (S_ISSOCK(st.st_mode) || excluded(w.excludes, w.n_excludes, gpath, S_ISDIR(st.st_mode)))
                return 0;
        w.dev = st.st_dev;
        struct stat live;
        if (*w.root && lstat(gpath, &live) == 0)
                w.live_dev = live.st_dev;

        r = add_parents(&w, gpath);
        if (r >= 0)
                r = S_ISDIR(st.st_mode) ? add_dir(&w, AT_FDCWD, src, gpath, 0)
                                        : add_entry(&w, AT_FDCWD, src, -EBADF, gpath, &st);
        /* Part of the group may be stored, or listed in the index without its data. */
        if (r < 0)
                s->failed = true;
        return r;
}

int store_add_files(Store *s, const char *source_root, const char *strip, const StoreFileGroup *group,
                    const StoreFileGroup *excludes, size_t n_excludes, uint64_t since_usec, char **ret_error) {
        return add_files(s, source_root, strip, group, excludes, n_excludes, since_usec, NULL, ret_error);
}

int store_add_owned_files(Store *s, const char *source_root, const char *strip, const StoreFileGroup *group, uid_t owner,
                          char **ret_error) {
        return add_files(s, source_root, strip, group, NULL, 0, 0, &owner, ret_error);
}
