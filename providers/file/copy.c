/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/basic/walk.h"
#include "lib/common.h"
#include "lib/openat.h"
#include "copy-private.h"
#include "copy.h"
#include "meta.h"

#define COPY_BUFFER_SIZE (128U * 1024U)
#define COPY_RANGE_MAX ((size_t) 1 << 30) /* per copy_file_range() call; the kernel caps it anyway */
#define OFF_T_MAX ((off_t) INT64_MAX)

/* Strips trailing slashes (so "link/" cannot make us follow a symlink) and refuses a last
 * component that is "/", "." or "..", which no caller can mean to remove or rewrite. */
static int path_strip_check(const char *path, char **ret) {
        _cleanup_free_ char *p = NULL;
        const char *base;
        size_t n;

        if (isempty(path))
                return -EINVAL;
        p = strdup(path);
        if (!p)
                return -ENOMEM;
        n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = 0;
        base = strrchr(p, '/');
        base = base ? base + 1 : p;
        if (isempty(base) || streq(base, ".") || streq(base, ".."))
                return -EINVAL;
        *ret = TAKE_PTR(p);
        return 0;
}

/* ---- copy ---- */

#define COPY_MAX_LINKED_INODES 512

static int rm_entry_at(int dfd, const char *name);

void copy_track_fsync(CopyContext *c, int fd) {
        if (fd >= 0 && !c->fsync_overflow && c->n_fsync < COPY_FSYNC_MAX) {
                c->fsync_fds[c->n_fsync++] = fd;
                return;
        }
        if (fd >= 0)
                close(fd);
        if (!c->fsync_overflow) {
                c->fsync_overflow = true;
                for (size_t i = 0; i < c->n_fsync; i++)
                        close(c->fsync_fds[i]);
                c->n_fsync = 0;
        }
}

/* What a copy left to make durable (copy_tree_deferred()): the tracked fds, the top and its path. */
struct CopySync {
        char *dst;
        int top_fd;
        int fsync_fds[COPY_FSYNC_MAX];
        size_t n_fsync;
        bool overflow;
};

void copy_sync_free(CopySync *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_fsync; i++)
                close(s->fsync_fds[i]);
        if (s->top_fd >= 0)
                close(s->top_fd);
        free(s->dst);
        free(s);
}

/* The copy made durable: its files and directories, the top and the directories above it on the
 * same filesystem (the names leading to it may be as new as the copy), or, for a big copy, the
 * whole filesystem at once. */
static int sync_copy(const CopySync *s) {
        if (s->overflow)
                return syncfs(s->top_fd) < 0 ? -errno : 0;
        for (size_t i = 0; i < s->n_fsync; i++)
                if (fsync(s->fsync_fds[i]) < 0)
                        return -errno;
        if (fsync(s->top_fd) < 0)
                return -errno;
        struct stat top;
        if (fstat(s->top_fd, &top) < 0)
                return -errno;
        _cleanup_free_ char *p = strdup(s->dst);
        if (!p)
                return -ENOMEM;
        for (;;) {
                char *slash = strrchr(p, '/');
                if (!slash)
                        p[0] = '.', p[1] = 0; /* a relative dst: its directory is the cwd */
                else if (slash == p)
                        p[1] = 0;
                else
                        *slash = 0;
                _cleanup_close_ int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0)
                        return -errno;
                if (st.st_dev != top.st_dev)
                        return 0; /* above the filesystem's root */
                if (fsync(fd) < 0)
                        return -errno;
                if (!slash || slash == p || streq(p, "/"))
                        return 0;
        }
}

int copy_sync_finish(CopySync *s) {
        int r = s ? sync_copy(s) : 0;
        copy_sync_free(s);
        return r;
}

static int open_source(int dfd, const char *name, int flags) {
        int fd;

        /* O_NOATIME: taking a shadow should not look like a read of every file. It needs
         * ownership or CAP_FOWNER, so retry without it on EPERM. */
        fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NOATIME);
        if (fd < 0 && errno == EPERM)
                fd = openat(dfd, name, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        return fd < 0 ? -errno : fd;
}

static int chown_result(const CopyContext *c, int r) {
        /* An unprivileged copy gets its own ownership, like cp -a does. */
        if (r < 0 && errno == EPERM && c->euid != 0)
                return 0;
        return r < 0 ? -errno : 0;
}

static int fix_metadata_fd(CopyContext *c, int fd, const struct stat *st) {
        const struct timespec ts[2] = { st->st_atim, st->st_mtim };
        int r;

        /* chown first: it clears set-id bits that chmod then sets again. */
        r = chown_result(c, fchown(fd, st->st_uid, st->st_gid));
        if (r < 0)
                return r;
        if (fchmod(fd, st->st_mode & 07777) < 0)
                return -errno;
        if (futimens(fd, ts) < 0)
                return -errno;
        return 0;
}

static int fix_metadata_at(CopyContext *c, int dfd, const char *name, const struct stat *st) {
        const struct timespec ts[2] = { st->st_atim, st->st_mtim };
        int r;

        r = chown_result(c, fchownat(dfd, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW));
        if (r < 0)
                return r;
        /* Symlinks have no mode of their own. Other nodes were just created by us in a directory
         * only we can write to yet, so following is not a concern. */
        if (!S_ISLNK(st->st_mode) && fchmodat(dfd, name, st->st_mode & 07777, 0) < 0)
                return -errno;
        if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        return 0;
}

/* Errors that mean "this way of copying is not available here", not "the copy failed". */
static bool errno_is_unsupported(int e) {
        return e == EOPNOTSUPP || e == ENOTTY || e == EXDEV || e == EINVAL || e == ENOSYS;
}

int tree_write_all_at(int fd, const char *p, size_t n, off_t off) {
        while (n > 0) {
                ssize_t k = pwrite(fd, p, n, off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
                off += k;
        }
        return 0;
}

/* Copies [off, end) from fdin to fdout at the same offsets; stops early at EOF (the file shrank).
 * Stores where it stopped in *ret_end. */
static int copy_range(CopyContext *c, int fdin, int fdout, off_t off, off_t end, bool *use_cfr, off_t *ret_end) {
        int r;

        while (off < end) {
                size_t n = (size_t) (end - off);
                ssize_t k;

                if (*use_cfr) {
                        loff_t in = off, out = off;

                        k = copy_file_range(fdin, &in, fdout, &out, n < COPY_RANGE_MAX ? n : COPY_RANGE_MAX, 0);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                if (!errno_is_unsupported(errno))
                                        return -errno;
                                *use_cfr = false;
                                continue;
                        }
                        if (k == 0) {
                                /* Some filesystems report 0 instead of copying; let read() tell
                                 * whether this really is EOF. */
                                *use_cfr = false;
                                continue;
                        }
                } else {
                        if (!c->buf) {
                                c->buf = malloc(COPY_BUFFER_SIZE);
                                if (!c->buf)
                                        return -ENOMEM;
                        }
                        k = pread(fdin, c->buf, n < COPY_BUFFER_SIZE ? n : COPY_BUFFER_SIZE, off);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return -errno;
                        }
                        if (k == 0)
                                break;
                        r = tree_write_all_at(fdout, c->buf, (size_t) k, off);
                        if (r < 0)
                                return r;
                }
                off += k;
        }

        *ret_end = off;
        return 0;
}

/* Data only: reflink if the filesystem can, else copy the data extents (holes stay holes). */
static int copy_data(CopyContext *c, int fdin, int fdout, uint64_t *ret_size, bool *ret_reflinked) {
        bool use_cfr = true;
        off_t pos = 0, end, size;
        struct stat st;
        int r;

        if (ioctl(fdout, FICLONE, fdin) >= 0) {
                if (fstat(fdin, &st) < 0)
                        return -errno;
                *ret_size = (uint64_t) st.st_size;
                *ret_reflinked = true;
                return 0;
        }
        if (!errno_is_unsupported(errno))
                return -errno;
        /* What it was when the copy of it began, at most: a file someone keeps writing ahead of the
         * copy (punching holes behind it, say) must not grow the copy past what was counted. */
        if (fstat(fdin, &st) < 0)
                return -errno;
        const off_t limit = st.st_size;

        for (;;) {
                off_t data, hole;

                if (pos >= limit)
                        break;
                data = lseek(fdin, pos, SEEK_DATA);
                if (data < 0) {
                        if (errno == ENXIO) /* nothing but a hole (or EOF) from pos on */
                                break;
                        if (!errno_is_unsupported(errno))
                                return -errno;
                        /* No SEEK_DATA here: everything is data. */
                        r = copy_range(c, fdin, fdout, pos, limit, &use_cfr, &end);
                        if (r < 0)
                                return r;
                        pos = end;
                        break;
                }
                if (data >= limit)
                        break;
                hole = lseek(fdin, data, SEEK_HOLE);
                if (hole < 0) {
                        if (errno == ENXIO) /* shrank meanwhile */
                                break;
                        return -errno;
                }
                if (hole > limit)
                        hole = limit;
                r = copy_range(c, fdin, fdout, data, hole, &use_cfr, &end);
                if (r < 0)
                        return r;
                pos = end;
                if (end < hole) /* EOF came early */
                        break;
        }

        /* A trailing hole is not covered by any data extent: set the size explicitly (the one it
         * had, or less if it shrank meanwhile). */
        if (fstat(fdin, &st) < 0)
                return -errno;
        size = st.st_size > pos ? st.st_size : pos;
        if (size > limit)
                size = limit;
        if (ftruncate(fdout, size) < 0)
                return -errno;

        *ret_size = (uint64_t) size;
        *ret_reflinked = false;
        return 0;
}

static void note_created(CopyContext *c, unsigned depth) {
        if (depth == 0)
                c->created_top = true;
}

/* Another name of an inode copied before: link it to that copy. 1 when done, 0 when not such a file. */
static int link_copied(CopyContext *c, int ddfd, const char *dname, const struct stat *st) {
        char proc[64];
        if (st->st_nlink < 2)
                return 0;
        for (size_t i = 0; i < c->n_links; i++)
                if (c->links[i].dev == st->st_dev && c->links[i].ino == st->st_ino) {
                        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", c->links[i].fd);
                        if (linkat(AT_FDCWD, proc, ddfd, dname, AT_SYMLINK_FOLLOW) < 0) {
                                int r = errno == EPERM ? meta_link_protected(c->links[i].fd, ddfd, dname) : -errno;
                                if (r < 0)
                                        return r;
                        }
                        c->stats.files++;
                        copy_track_fsync(c, -1); /* a new link: syncfs() at the end */
                        return 1;
                }
        return 0;
}

static void remember_copied(CopyContext *c, int ddfd, const char *dname, const struct stat *st) {
        if (st->st_nlink < 2 || c->n_links >= COPY_MAX_LINKED_INODES)
                return;
        if (c->n_links % 32 == 0) {
                struct CopiedInode *n = realloc(c->links, (c->n_links + 32) * sizeof(*n));
                if (!n)
                        return;
                c->links = n;
        }
        int fd = openat(ddfd, dname, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                c->links[c->n_links++] = (struct CopiedInode) { st->st_dev, st->st_ino, fd };
}

int copy_regular_open(CopyContext *c, int sdfd, const char *sname, const struct stat *st, uint64_t mnt_id, int ddfd,
                      const char *dname, unsigned depth, int *ret_in, int *ret_out) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        int r;

        /* O_NONBLOCK: should a fifo have been swapped in, open must not hang; walk_fd_verify() rejects it. */
        in = open_source(sdfd, sname, O_RDONLY | O_NONBLOCK);
        if (in < 0)
                return in;
        r = walk_fd_verify(in, st, mnt_id);
        if (r < 0)
                return r;

        out = openat(ddfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (out < 0)
                return -errno;
        note_created(c, depth);
        *ret_in = TAKE_FD(in);
        *ret_out = TAKE_FD(out);
        return 0;
}

int copy_regular_finish(CopyContext *c, int in_fd, int out_fd, const struct stat *st, int ddfd, const char *dname,
                        unsigned depth) {
        _cleanup_close_ int in = in_fd, out = out_fd;
        bool reflinked = false;
        uint64_t size = 0;
        int r;

        r = copy_data(c, in, out, &size, &reflinked);
        if (r < 0)
                return r;
        r = fix_metadata_fd(c, out, st);
        if (r >= 0)
                r = meta_copy_fd(in, out, ddfd, dname, c->report);
        if (r < 0)
                return r;
        if (depth > 0)
                copy_track_fsync(c, TAKE_FD(out));
        else
                c->sync_fd = TAKE_FD(out);
        c->stats.files++;
        c->stats.bytes += size;
        if (reflinked)
                c->stats.reflinked_files++;
        return 0;
}

static int copy_regular(CopyContext *c, const WalkEntry *e, int ddfd, const char *dname) {
        int in = -EBADF, out = -EBADF, r;

        if (e->depth > 0) {
                r = link_copied(c, ddfd, dname, &e->st);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        /* The walker opens and creates, so names, order and O_EXCL are as without threads; the
         * rest of a file with one name may go to a worker. A file with more names is finished
         * here, before a later name links to it. */
        r = copy_regular_open(c, e->dfd, e->name, &e->st, e->mnt_id, ddfd, dname, e->depth, &in, &out);
        if (r >= 0 && e->depth > 0 && e->st.st_nlink < 2 && copy_pool_use(c))
                return copy_pool_submit(c->pool, in, out, &e->st, ddfd, dname);
        if (r >= 0)
                r = copy_regular_finish(c, in, out, &e->st, ddfd, dname, e->depth);
        if (r >= 0 && e->depth > 0)
                remember_copied(c, ddfd, dname, &e->st);
        return r;
}

static int readlink_malloc(int dfd, const char *name, size_t hint, char **ret) {
        size_t n = hint + 1 > 256 ? hint + 1 : 256;

        /* st_size may lie (procfs-like filesystems) or change: grow until the target fits. */
        for (unsigned i = 0; i < 8; i++, n *= 2) {
                _cleanup_free_ char *buf = malloc(n);
                ssize_t k;

                if (!buf)
                        return -ENOMEM;
                k = readlinkat(dfd, name, buf, n);
                if (k < 0)
                        return -errno;
                if ((size_t) k < n) {
                        buf[k] = 0;
                        *ret = TAKE_PTR(buf);
                        return 0;
                }
        }
        return -ENAMETOOLONG;
}

/* Symlinks, fifos and device nodes: never opened, their metadata set by name. */
static int copy_node_meta(CopyContext *c, const WalkEntry *e, int ddfd, const char *dname) {
        int r;

        note_created(c, e->depth);
        copy_track_fsync(c, -1); /* not opened, so not fsynced: syncfs() at the end covers them */
        r = fix_metadata_at(c, ddfd, dname, &e->st);
        if (r >= 0)
                r = meta_copy_xattrs(-EBADF, e->dfd, e->name, -EBADF, ddfd, dname, c->report);
        if (r < 0)
                return r;
        c->stats.files++;
        return 0;
}

static int copy_symlink(CopyContext *c, const WalkEntry *e, int ddfd, const char *dname) {
        _cleanup_free_ char *target = NULL;
        int r;

        r = readlink_malloc(e->dfd, e->name, (size_t) e->st.st_size, &target);
        if (r < 0)
                return r;
        if (symlinkat(target, ddfd, dname) < 0)
                return -errno;
        return copy_node_meta(c, e, ddfd, dname);
}

static int copy_node(CopyContext *c, const WalkEntry *e, int ddfd, const char *dname) {
        if (mknodat(ddfd, dname, (e->st.st_mode & S_IFMT) | 0600, e->st.st_rdev) < 0)
                return -errno;
        return copy_node_meta(c, e, ddfd, dname);
}

/* A new directory, 0700 until the contents are in (the final mode may not let us write): its fd. */
static int make_dir(CopyContext *c, int ddfd, const char *dname, unsigned depth) {
        _cleanup_close_ int fd = -EBADF;

        if (mkdirat(ddfd, dname, 0700) < 0)
                return -errno;
        note_created(c, depth);
        fd = openat(ddfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        c->stats.dirs++;

        /* A umask taking away owner bits must not lock an unprivileged caller out of its copy. */
        if (c->euid != 0 && fchmod(fd, 0700) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* A mount point is reproduced as an empty directory, like cp -x; its own xattrs and flags
 * belong to the other filesystem. */
static int copy_mount_point(CopyContext *c, const WalkEntry *e, int ddfd, const char *dname) {
        _cleanup_close_ int fd = -EBADF;

        if (e->depth > COPY_DEPTH_MAX)
                return -ELOOP;
        fd = make_dir(c, ddfd, dname, e->depth);
        if (fd < 0)
                return fd;
        return fix_metadata_fd(c, fd, &e->st);
}

static int copy_entry(CopyContext *c, const WalkEntry *e, int ddfd, const char *dname) {
        if (e->other_mount)
                /* Another filesystem: a directory mount point is kept, empty; anything else (a bind
                 * mounted file) is skipped. */
                return S_ISDIR(e->st.st_mode) ? copy_mount_point(c, e, ddfd, dname) : 0;

        switch (e->st.st_mode & S_IFMT) {
        case S_IFDIR:
                if (e->depth > 0 && c->have_dst && e->st.st_dev == c->dst_dev && e->st.st_ino == c->dst_ino)
                        return WALK_SKIP; /* our own destination, inside the source */
                return 0; /* copy_dir_enter() once the walker has opened it */
        case S_IFREG:
                return copy_regular(c, e, ddfd, dname);
        case S_IFLNK:
                return copy_symlink(c, e, ddfd, dname);
        case S_IFIFO:
        case S_IFCHR:
        case S_IFBLK:
                return copy_node(c, e, ddfd, dname);
        default:
                /* Sockets belong to a running process; a copy would be meaningless. */
                return e->depth == 0 ? -EOPNOTSUPP : 0;
        }
}

/* The copy of a directory: its entries go to e->user_fd. */
static int copy_dir_enter(CopyContext *c, WalkEntry *e, int ddfd, const char *dname) {
        e->user_fd = make_dir(c, ddfd, dname, e->depth);
        if (e->user_fd < 0)
                return e->user_fd;
        if (e->depth == 0) {
                struct stat st;

                if (fstat(e->user_fd, &st) < 0)
                        return -errno;
                c->dst_dev = st.st_dev;
                c->dst_ino = st.st_ino;
                c->have_dst = true;
        }
        return 0;
}

/* Last, since creating the children changed the mtime. */
static int copy_dir_leave(CopyContext *c, WalkEntry *e, int ddfd, const char *dname) {
        int r;

        /* Its files first: nothing a worker does changes the directory, but its times and flags
         * come last, when the whole directory is done. */
        if (c->pool && (r = copy_pool_drain(c->pool)) < 0)
                return r;
        r = fix_metadata_fd(c, e->user_fd, &e->st);
        if (r >= 0)
                r = meta_copy_fd(e->fd, e->user_fd, ddfd, dname, c->report);
        if (r >= 0 && e->depth == 0)
                c->sync_fd = TAKE_FD(e->user_fd);
        else if (r >= 0)
                copy_track_fsync(c, fcntl(e->user_fd, F_DUPFD_CLOEXEC, 3));
        return r;
}

static int copy_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        CopyContext *c = userdata;
        /* Where the entry goes: into the copy of its directory, or to dst itself at the top. */
        int ddfd = e->parent ? e->parent->user_fd : AT_FDCWD;
        const char *dname = e->parent ? e->name : c->dst;

        switch (event) {
        case WALK_ENTRY:
                return copy_entry(c, e, ddfd, dname);
        case WALK_DIR_ENTER:
                return copy_dir_enter(c, e, ddfd, dname);
        case WALK_DIR_LEAVE:
                return copy_dir_leave(c, e, ddfd, dname);
        }
        return -EINVAL;
}

int copy_tree(const char *src, const char *dst, CopyStats *ret_stats) {
        return copy_tree_report(src, dst, NULL, ret_stats);
}

int copy_tree_report(const char *src, const char *dst, MetaReport *report, CopyStats *ret_stats) {
        CopySync *sync = NULL;
        int r = copy_tree_deferred(src, dst, report, ret_stats, &sync);
        if (r < 0)
                return r;
        r = copy_sync_finish(sync);
        if (r < 0)
                (void) remove_tree(dst);
        return r;
}

int copy_tree_deferred(const char *src, const char *dst, MetaReport *report, CopyStats *ret_stats, CopySync **ret_sync) {
        CopyContext c = { .dst = dst, .sync_fd = -EBADF, .euid = geteuid(), .report = report };
        CopySync *sync = NULL;
        int r;

        *ret_sync = NULL;
        if (isempty(src) || isempty(dst))
                return -EINVAL;

        /* The source's directory is reached without following any symlink, and the source itself
         * is not followed (walk_statx()): a volume's path was resolved when it was added, and a
         * directory on the way made a symlink since, by whoever may write there, must not lead
         * the copy elsewhere. dst is a full path against AT_FDCWD (copy_walk()). */
        const char *slash = strrchr(src, '/');
        _cleanup_free_ char *parent = slash ? strndup(src, slash == src ? 1 : (size_t) (slash - src)) : strdup(".");
        if (!parent)
                return -ENOMEM;
        _cleanup_close_ int pfd = open_no_symlinks(AT_FDCWD, parent, O_PATH | O_DIRECTORY, 0, false);
        if (pfd < 0)
                return pfd;
        r = walk_tree(pfd, slash ? slash + 1 : src, WALK_ONE_FS | WALK_NOATIME | WALK_VERIFY, COPY_DEPTH_MAX, copy_walk, &c);
        if (c.pool)
                r = copy_pool_end(TAKE_PTR(c.pool), r);
        if (r >= 0 && c.sync_fd >= 0) {
                sync = calloc(1, sizeof(*sync));
                if (!sync || !(sync->dst = strdup(dst))) {
                        free(sync);
                        sync = NULL;
                        r = -ENOMEM;
                }
        }
        if (sync) {
                /* The fds to sync move over to it. */
                sync->top_fd = TAKE_FD(c.sync_fd);
                sync->overflow = c.fsync_overflow;
                sync->n_fsync = c.n_fsync;
                memcpy(sync->fsync_fds, c.fsync_fds, sizeof(c.fsync_fds[0]) * c.n_fsync);
                c.n_fsync = 0;
        }
        for (size_t i = 0; i < c.n_fsync; i++)
                close(c.fsync_fds[i]);

        free(c.buf);
        for (size_t i = 0; i < c.n_links; i++)
                close(c.links[i].fd);
        free(c.links);
        if (c.sync_fd >= 0)
                close(c.sync_fd);

        if (r < 0) {
                if (c.created_top)
                        (void) rm_entry_at(AT_FDCWD, dst);
                return r;
        }

        if (ret_stats)
                *ret_stats = c.stats;
        *ret_sync = sync;
        return 0;
}

/* ---- pieces for the incremental copy (precopy.c) ---- */

int copy_file_data(int fdin, int fdout, uint64_t *ret_size) {
        CopyContext c = { .sync_fd = -EBADF, .euid = geteuid() };
        bool reflinked = false;
        int r;

        /* The copy may be rewriting an older one in place: no stale tail may remain. */
        if (ftruncate(fdout, 0) < 0)
                return -errno;
        r = copy_data(&c, fdin, fdout, ret_size, &reflinked);
        free(c.buf);
        return r;
}

int copy_metadata_fd(int fd, const struct stat *st) {
        CopyContext c = { .euid = geteuid() };
        return fix_metadata_fd(&c, fd, st);
}

int copy_metadata_at(int dfd, const char *name, const struct stat *st) {
        CopyContext c = { .euid = geteuid() };
        return fix_metadata_at(&c, dfd, name, st);
}

/* ---- removal ---- */

/* unlinkat() that also removes an immutable or append-only file (a shadow keeps those flags). */
static int unlink_file(int dfd, const char *name) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (unlinkat(dfd, name, 0) >= 0 || errno == ENOENT)
                return 0;
        if (errno != EPERM)
                return -errno;
        /* Only regular files have flags; anything else (a device node) is not opened. */
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                return -EPERM;
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || meta_unprotect(fd, NULL) < 0)
                return -EPERM;
        return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}

static int rm_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        const uid_t *euid = userdata;

        switch (event) {
        case WALK_ENTRY:
                if (!S_ISDIR(e->st.st_mode))
                        return unlink_file(e->dfd, e->name);
                if (e->other_mount)
                        return -EBUSY; /* a mount point: leave it and what is under it alone */
                /* A read-only shadow directory needs w and x back before an unprivileged caller
                 * can empty it. If this fails (not our directory), unlinkat() reports the real error. */
                if (*euid != 0 && (e->st.st_mode & 0700) != 0700)
                        (void) fchmodat(e->dfd, e->name, (e->st.st_mode & 07777) | 0700, 0);
                return 0;
        case WALK_DIR_ENTER:
                /* Entries of an immutable or append-only directory cannot be removed, nor can it. */
                (void) meta_unprotect(e->fd, NULL);
                return 0;
        case WALK_DIR_LEAVE:
                return unlinkat(e->dfd, e->name, AT_REMOVEDIR) < 0 && errno != ENOENT ? -errno : 0;
        }
        return -EINVAL;
}

static int rm_entry_at(int dfd, const char *name) {
        uid_t euid = geteuid();
        int r;

        /* d_type spares a stat for everything but directories. */
        r = walk_tree(dfd, name, WALK_ONE_FS | WALK_KEEP_GOING | WALK_VERIFY | WALK_DTYPE, COPY_DEPTH_MAX,
                      rm_walk, &euid);
        return r == -ENOENT ? 0 : r; /* only the top's absence is -ENOENT: nothing to remove */
}

int remove_tree(const char *path) {
        _cleanup_free_ char *p = NULL;
        int r;

        r = path_strip_check(path, &p);
        if (r < 0)
                return r;
        return rm_entry_at(AT_FDCWD, p);
}

static int bytes_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        uint64_t *sum = userdata;

        /* What the files take on disk, not their apparent size: a sparse file's holes take
         * nothing, and the copy keeps them holes. */
        if (event == WALK_ENTRY && S_ISREG(e->st.st_mode) && !e->other_mount)
                *sum += (uint64_t) e->st.st_blocks * 512;
        return 0;
}

int tree_bytes(const char *path, uint64_t *ret) {
        uint64_t sum = 0;
        int r;

        /* Deeper than a copy can be: the storage directory holds copies a few levels down. */
        r = walk_tree(AT_FDCWD, path, WALK_ONE_FS, COPY_DEPTH_MAX + 16, bytes_walk, &sum);
        if (r < 0 && r != -ENOENT)
                return r;
        *ret = sum;
        return 0;
}
