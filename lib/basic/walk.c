/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/sysmacros.h>

#include "lib/basic/macro.h"
#include "lib/basic/walk.h"

typedef struct Walk {
        WalkFlags flags;
        unsigned max_depth;
        walk_fn fn;
        void *userdata;
        struct stat top;
        uint64_t top_mnt;
        int error;            /* the first one, with WALK_KEEP_GOING */
        char path[PATH_MAX];  /* with WALK_PATHS */
} Walk;

int walk_statx(int dfd, const char *name, int flags, struct stat *ret_st, uint64_t *ret_mnt_id) {
        struct statx sx;

        if (statx(dfd, name, flags | AT_SYMLINK_NOFOLLOW | AT_STATX_SYNC_AS_STAT,
                  STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0)
                return errno > 0 ? -errno : -EIO; /* lets the compiler see that *ret_st is set on 0 */

        *ret_st = (struct stat) {
                .st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
                .st_ino = sx.stx_ino,
                .st_mode = sx.stx_mode,
                .st_nlink = sx.stx_nlink,
                .st_uid = sx.stx_uid,
                .st_gid = sx.stx_gid,
                .st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor),
                .st_size = (off_t) sx.stx_size,
                .st_blksize = (blksize_t) sx.stx_blksize,
                .st_blocks = (blkcnt_t) sx.stx_blocks,
                .st_atim = { .tv_sec = sx.stx_atime.tv_sec, .tv_nsec = sx.stx_atime.tv_nsec },
                .st_mtim = { .tv_sec = sx.stx_mtime.tv_sec, .tv_nsec = sx.stx_mtime.tv_nsec },
                .st_ctim = { .tv_sec = sx.stx_ctime.tv_sec, .tv_nsec = sx.stx_ctime.tv_nsec },
        };
        if (ret_mnt_id)
                *ret_mnt_id = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
        return 0;
}

bool walk_same_mount(const struct stat *a, uint64_t a_mnt, const struct stat *b, uint64_t b_mnt) {
        /* The mount id too: a bind mount of the same filesystem has the same st_dev. */
        return a->st_dev == b->st_dev && (a_mnt == 0 || b_mnt == 0 || a_mnt == b_mnt);
}

int walk_fd_verify(int fd, const struct stat *st, uint64_t mnt_id) {
        struct stat now;
        uint64_t now_mnt;
        int r;

        r = walk_statx(fd, "", AT_EMPTY_PATH, &now, &now_mnt);
        if (r < 0)
                return r;
        if (now.st_dev != st->st_dev || now.st_ino != st->st_ino || ((now.st_mode ^ st->st_mode) & S_IFMT) ||
            (now_mnt && mnt_id && now_mnt != mnt_id))
                return -EBUSY;
        return 0;
}

/* Without WALK_KEEP_GOING an error ends the walk; with it, the first is kept and the walk goes on. */
static int walk_error(Walk *w, int r) {
        if (r >= 0 || !(w->flags & WALK_KEEP_GOING))
                return r;
        if (w->error == 0)
                w->error = r;
        return 0;
}

static int walk_open_dir(Walk *w, const WalkEntry *e) {
        const char *name = isempty(e->name) ? "." : e->name; /* ".": a new description of dfd's directory */
        int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, fd;

        /* O_NOATIME needs ownership or CAP_FOWNER: without them, open without it. */
        fd = openat(e->dfd, name, flags | ((w->flags & WALK_NOATIME) ? O_NOATIME : 0));
        if (fd < 0 && errno == EPERM && (w->flags & WALK_NOATIME))
                fd = openat(e->dfd, name, flags);
        if (fd < 0)
                return -errno;
        if (w->flags & WALK_VERIFY) {
                int r = walk_fd_verify(fd, &e->st, e->mnt_id);
                if (r < 0) {
                        close(fd);
                        return r;
                }
        }
        return fd;
}

static int walk_entry(Walk *w, WalkEntry *parent, int dfd, const char *name, unsigned char d_type);

/* Appends name to w->path for a child of a directory whose path is len long. */
static int walk_path_push(Walk *w, size_t len, const char *name) {
        size_t n = strlen(name);

        if (len + (len > 0) + n + 1 > sizeof(w->path))
                return -ENAMETOOLONG;
        if (len > 0)
                w->path[len] = '/';
        memcpy(w->path + len + (len > 0), name, n + 1);
        return 0;
}

/* The entries of the open directory e. */
static int walk_children(Walk *w, WalkEntry *e, DIR *d) {
        size_t len = e->path ? strlen(e->path) : 0;
        int r = 0;

        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = walk_error(w, -errno);
                        break;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;

                r = e->path ? walk_path_push(w, len, de->d_name) : 0;
                if (r >= 0)
                        r = walk_entry(w, e, e->fd, de->d_name, de->d_type);
                if (e->path)
                        w->path[len] = 0;
                r = walk_error(w, r);
                if (r < 0)
                        break;
        }
        return r;
}

static int walk_dir(Walk *w, WalkEntry *e) {
        DIR *d;
        int fd, r;

        fd = walk_open_dir(w, e);
        if (fd < 0)
                return fd == -ENOENT && e->parent ? 0 : fd; /* removed while we walk */
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        e->fd = fd;

        r = w->fn(WALK_DIR_ENTER, e, w->userdata);
        if (r >= 0 && r != WALK_SKIP) {
                r = walk_children(w, e, d);
                if (r >= 0 || (w->flags & WALK_KEEP_GOING))
                        r = w->fn(WALK_DIR_LEAVE, e, w->userdata);
        }
        closedir(d);
        e->fd = -EBADF;
        if (e->user_fd >= 0)
                close(e->user_fd);
        return r < 0 ? r : 0;
}

static int walk_entry(Walk *w, WalkEntry *parent, int dfd, const char *name, unsigned char d_type) {
        WalkEntry e = {
                .parent = parent,
                .dfd = dfd,
                .name = name,
                .path = (w->flags & WALK_PATHS) ? w->path : NULL,
                .depth = parent ? parent->depth + 1 : 0,
                .fd = -EBADF,
                .user_fd = -EBADF,
        };
        int r;

        if (parent && (w->flags & WALK_DTYPE) && d_type != DT_DIR && d_type != DT_UNKNOWN)
                e.st.st_mode = DTTOIF(d_type);
        else {
                r = walk_statx(dfd, name, isempty(name) ? AT_EMPTY_PATH : 0, &e.st, &e.mnt_id);
                if (r == -ENOENT && parent) /* removed while we walk: as if walked a bit later */
                        return 0;
                if (r < 0)
                        return r;
                e.stat_done = true;
        }

        if (!parent) {
                w->top = e.st;
                w->top_mnt = e.mnt_id;
        } else if ((w->flags & WALK_ONE_FS) && e.stat_done)
                e.other_mount = !walk_same_mount(&w->top, w->top_mnt, &e.st, e.mnt_id);

        if (S_ISDIR(e.st.st_mode) && !e.other_mount && e.depth > w->max_depth)
                return -ELOOP;

        r = w->fn(WALK_ENTRY, &e, w->userdata);
        if (r < 0 || r == WALK_SKIP || !S_ISDIR(e.st.st_mode) || e.other_mount)
                return r < 0 ? r : 0;
        return walk_dir(w, &e);
}

int walk_tree(int dfd, const char *name, WalkFlags flags, unsigned max_depth, walk_fn fn, void *userdata) {
        _cleanup_free_ Walk *w = NULL;
        int r;

        if (!name || !fn)
                return -EINVAL;
        w = calloc(1, sizeof(Walk)); /* PATH_MAX is too much for some callers' stacks */
        if (!w)
                return -ENOMEM;
        *w = (Walk) { .flags = flags, .max_depth = max_depth, .fn = fn, .userdata = userdata };

        r = walk_entry(w, NULL, dfd, name, DT_UNKNOWN);
        return w->error < 0 ? w->error : r; /* the first error */
}
