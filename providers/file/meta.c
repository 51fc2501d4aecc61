/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/basic/walk.h"
#include "lib/common.h"
#include "meta.h"

#define XATTR_LIST_MAX_ 65536U  /* the kernel's limits for a list and a value */
#define XATTR_SIZE_MAX_ 65536U
#define CAPABILITY_XATTR "security.capability"

void meta_report(MetaReport *report, int dfd, const char *name, const char *what, int error) {
        char proc[64], dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 2];
        ssize_t n;

        if (!report)
                return;
        report->n_lost++;
        if (!report->lost)
                return;
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dfd);
        n = dfd >= 0 ? readlink(proc, dir, sizeof(dir) - 1) : -1;
        if (n < 0)
                snprintf(path, sizeof(path), "%s", strempty(name));
        else {
                dir[n] = 0;
                snprintf(path, sizeof(path), "%s%s%s", dir, isempty(name) ? "" : "/", strempty(name));
        }
        report->lost(path, what, error, report->userdata);
}

/* Errors that mean "this target cannot keep this item", as opposed to a failing copy. */
static bool errno_is_unkeepable(int e) {
        return e == EOPNOTSUPP || e == EPERM || e == EACCES || e == EINVAL || e == ERANGE || e == E2BIG ||
               e == ENOSPC || e == EDQUOT || e == ENOTTY;
}

/* One inode, by fd or (for nodes we must not open) by a /proc/self/fd/DIRFD/NAME path whose last
 * component the l*xattr calls do not follow. */
typedef struct Node {
        int fd;
        char path[64 + NAME_MAX];
} Node;

static int node_init(Node *n, int fd, int dfd, const char *name) {
        n->fd = fd;
        if (fd >= 0)
                return 0;
        if (dfd < 0 || isempty(name) || strchr(name, '/'))
                return -EINVAL;
        snprintf(n->path, sizeof(n->path), "/proc/self/fd/%d/%s", dfd, name);
        return 0;
}

static ssize_t node_list(const Node *n, char *buf, size_t size) {
        return n->fd >= 0 ? flistxattr(n->fd, buf, size) : llistxattr(n->path, buf, size);
}
static ssize_t node_get(const Node *n, const char *name, void *buf, size_t size) {
        return n->fd >= 0 ? fgetxattr(n->fd, name, buf, size) : lgetxattr(n->path, name, buf, size);
}
static int node_set(const Node *n, const char *name, const void *v, size_t size) {
        return n->fd >= 0 ? fsetxattr(n->fd, name, v, size, 0) : lsetxattr(n->path, name, v, size, 0);
}
static int node_remove(const Node *n, const char *name) {
        return n->fd >= 0 ? fremovexattr(n->fd, name) : lremovexattr(n->path, name);
}

/* The NUL-separated names; *ret_len 0 where the filesystem has no xattrs. */
static int node_names(const Node *n, char **ret, size_t *ret_len) {
        _cleanup_free_ char *buf = malloc(XATTR_LIST_MAX_);
        ssize_t k;

        if (!buf)
                return -ENOMEM;
        k = node_list(n, buf, XATTR_LIST_MAX_);
        if (k < 0) {
                if (errno != EOPNOTSUPP)
                        return -errno;
                k = 0;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = (size_t) k;
        return 0;
}

static bool names_have(const char *names, size_t len, const char *name) {
        for (const char *p = names; p < names + len; p += strlen(p) + 1)
                if (streq(p, name))
                        return true;
        return false;
}

static int copy_one(const Node *src, const Node *dst, const char *name, char *value, int ddfd, const char *dname,
                    MetaReport *report) {
        char what[64 + XATTR_NAME_MAX];
        ssize_t k;

        k = node_get(src, name, value, XATTR_SIZE_MAX_);
        if (k < 0)
                return errno == ENODATA ? 0 : -errno; /* removed meanwhile: as if copied a bit later */
        if (node_set(dst, name, value, (size_t) k) >= 0)
                return 0;
        if (!errno_is_unkeepable(errno))
                return -errno;
        snprintf(what, sizeof(what), "xattr %s", name);
        meta_report(report, ddfd, dname, what, errno);
        return 0;
}

int meta_copy_xattrs(int src_fd, int sdfd, const char *sname, int dst_fd, int ddfd, const char *dname,
                     MetaReport *report) {
        _cleanup_free_ char *snames = NULL, *dnames = NULL, *value = NULL;
        size_t slen, dlen;
        Node src, dst;
        bool cap = false;
        int r;

        r = node_init(&src, src_fd, sdfd, sname);
        if (r >= 0)
                r = node_init(&dst, dst_fd, ddfd, dname);
        if (r < 0)
                return r;
        r = node_names(&src, &snames, &slen);
        if (r < 0)
                return r;
        r = node_names(&dst, &dnames, &dlen);
        if (r < 0)
                return r;

        /* What the new inode got without asking (an inherited ACL) goes first. */
        for (const char *p = dnames; p < dnames + dlen; p += strlen(p) + 1)
                if (!names_have(snames, slen, p) && node_remove(&dst, p) < 0 && errno != ENODATA) {
                        char what[64 + XATTR_NAME_MAX];
                        if (!errno_is_unkeepable(errno))
                                return -errno;
                        snprintf(what, sizeof(what), "xattr %s (absent in the source, not removable)", p);
                        meta_report(report, ddfd, dname, what, errno);
                }
        if (slen == 0)
                return 0;

        value = malloc(XATTR_SIZE_MAX_);
        if (!value)
                return -ENOMEM;
        for (const char *p = snames; p < snames + slen; p += strlen(p) + 1) {
                if (streq(p, CAPABILITY_XATTR)) {
                        cap = true; /* last: setting other security xattrs may clear it */
                        continue;
                }
                r = copy_one(&src, &dst, p, value, ddfd, dname, report);
                if (r < 0)
                        return r;
        }
        return cap ? copy_one(&src, &dst, CAPABILITY_XATTR, value, ddfd, dname, report) : 0;
}

int meta_get_flags(int fd, unsigned *ret) {
        int flags = 0;

        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
                if (errno != ENOTTY && errno != EOPNOTSUPP && errno != EINVAL)
                        return -errno;
                flags = 0;
        }
        *ret = (unsigned) flags & META_FLAGS_COPIED;
        return 0;
}

static const struct { unsigned flag; char letter; } flag_letters[] = {
        { FS_SECRM_FL, 's' },   { FS_UNRM_FL, 'u' },     { FS_COMPR_FL, 'c' },        { FS_SYNC_FL, 'S' },
        { FS_IMMUTABLE_FL, 'i' }, { FS_APPEND_FL, 'a' }, { FS_NODUMP_FL, 'd' },       { FS_NOATIME_FL, 'A' },
        { FS_JOURNAL_DATA_FL, 'j' }, { FS_NOTAIL_FL, 't' }, { FS_DIRSYNC_FL, 'D' },   { FS_TOPDIR_FL, 'T' },
        { FS_NOCOW_FL, 'C' },   { FS_PROJINHERIT_FL, 'P' }, { FS_NOCOMP_FL, 'm' },
};

const char *meta_flags_string(unsigned flags, char *buf) {
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(flag_letters); i++)
                if (flags & flag_letters[i].flag)
                        buf[n++] = flag_letters[i].letter;
        buf[n] = 0;
        return buf;
}

static int set_flags(int fd, unsigned flags) {
        /* The kernel reads an int, though the ioctl's number says long: no uninitialised bytes
         * beside it for valgrind, which checks a long. */
        union { int i; long l; } f = { .l = 0 };
        f.i = (int) flags;
        return ioctl(fd, FS_IOC_SETFLAGS, &f) < 0 ? -errno : 0;
}

/* Adds each of flags to *cur on fd, in flag_letters order; each one refused is reported. */
static void set_flags_each(int fd, unsigned flags, unsigned *cur, int ddfd, const char *dname, MetaReport *report) {
        for (size_t i = 0; i < ELEMENTSOF(flag_letters); i++) {
                unsigned f = flag_letters[i].flag;
                char what[32];
                int r;

                if (!(flags & f))
                        continue;
                r = set_flags(fd, *cur | f);
                if (r >= 0) {
                        *cur |= f;
                        continue;
                }
                snprintf(what, sizeof(what), "flag +%c", flag_letters[i].letter);
                meta_report(report, ddfd, dname, what, -r);
        }
}

int meta_apply_flags_last(int fd, unsigned flags, int ddfd, const char *dname, MetaReport *report) {
        unsigned cur, want;
        int old = 0;

        flags &= META_FLAGS_COPIED;
        if (ioctl(fd, FS_IOC_GETFLAGS, &old) < 0) {
                if (flags == 0)
                        return 0;
                old = 0; /* no attributes here at all: each flag is reported below */
        }
        /* Keep the target's own state (extents, inline data) and set exactly the copied flags. */
        want = ((unsigned) old & ~META_FLAGS_COPIED) | flags;
        if (want == (unsigned) old)
                return 0;
        if (set_flags(fd, want) >= 0)
                return 0;
        if (!errno_is_unkeepable(errno) && errno != ENOTTY)
                return -errno;

        /* Something is refused: one at a time, so what can be kept is, and the rest is named;
         * protecting flags last, here too. */
        cur = (unsigned) old & ~META_FLAGS_COPIED;
        if (set_flags(fd, cur) < 0 && flags == 0)
                return 0;
        set_flags_each(fd, flags & ~META_FLAGS_PROTECT, &cur, ddfd, dname, report);
        set_flags_each(fd, flags & META_FLAGS_PROTECT, &cur, ddfd, dname, report);
        return 0;
}

int meta_copy_fd(int src_fd, int dst_fd, int ddfd, const char *dname, MetaReport *report) {
        unsigned flags = 0;
        int r;

        r = meta_copy_xattrs(src_fd, -EBADF, NULL, dst_fd, ddfd, dname, report);
        if (r >= 0)
                r = meta_get_flags(src_fd, &flags);
        if (r >= 0)
                r = meta_apply_flags_last(dst_fd, flags, ddfd, dname, report);
        return r;
}

int meta_unprotect(int fd, unsigned *ret_saved) {
        int flags = 0;

        if (ret_saved)
                *ret_saved = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0)
                return errno == ENOTTY || errno == EOPNOTSUPP || errno == EINVAL ? 0 : -errno;
        if (ret_saved)
                *ret_saved = (unsigned) flags & META_FLAGS_PROTECT;
        if (!(flags & (int) META_FLAGS_PROTECT))
                return 0;
        return set_flags(fd, (unsigned) flags & ~META_FLAGS_PROTECT);
}

int meta_link_protected(int path_fd, int ddfd, const char *dname) {
        _cleanup_close_ int fd = -EBADF;
        char proc[64];
        unsigned saved;
        int flags = 0, r;

        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", path_fd);
        fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = meta_unprotect(fd, &saved);
        if (r < 0)
                return r;
        r = linkat(AT_FDCWD, proc, ddfd, dname, AT_SYMLINK_FOLLOW) < 0 ? -errno : 0;
        if (saved && ioctl(fd, FS_IOC_GETFLAGS, &flags) >= 0)
                (void) set_flags(fd, (unsigned) flags | saved);
        return r;
}

/* ---- a whole tree ---- */

typedef struct MetaSync {
        const char *dst;
        MetaReport *report;
        struct { dev_t dev; ino_t ino; } *seen;
        size_t n_seen;
} MetaSync;

/* A hard link's inode is done once: a second name would find it protected already. */
static bool seen_before(MetaSync *m, const struct stat *st) {
        if (st->st_nlink < 2)
                return false;
        for (size_t i = 0; i < m->n_seen; i++)
                if (m->seen[i].dev == st->st_dev && m->seen[i].ino == st->st_ino)
                        return true;
        if ((m->n_seen & 63) == 0) {
                void *n = realloc(m->seen, (m->n_seen + 64) * sizeof(*m->seen));
                if (!n)
                        return false; /* then done again, which at worst reports a flag twice */
                m->seen = n;
        }
        m->seen[m->n_seen].dev = st->st_dev;
        m->seen[m->n_seen++].ino = st->st_ino;
        return false;
}

/* Where e's copy is: in the parent's copy (its user_fd) by the same name, or dst at the top. 0
 * when the copy has an entry of e's type there, 1 when not (not copied: another filesystem's, a
 * socket). */
static int sync_target(MetaSync *m, const WalkEntry *e, int *ret_ddfd, const char **ret_dname) {
        struct stat st;

        *ret_ddfd = e->parent ? e->parent->user_fd : AT_FDCWD;
        *ret_dname = e->parent ? e->name : m->dst;
        if (fstatat(*ret_ddfd, *ret_dname, &st, AT_SYMLINK_NOFOLLOW) < 0 || (st.st_mode & S_IFMT) != (e->st.st_mode & S_IFMT))
                return 1;
        return 0;
}

/* The path of e's copy, for reports; 1 when too long. */
static int sync_path(MetaSync *m, const WalkEntry *e, char *buf, size_t size) {
        return snprintf(buf, size, "%s%s%s", m->dst, e->parent ? "/" : "", e->path) >= (int) size;
}

/* A non-directory. */
static int sync_entry(MetaSync *m, const WalkEntry *e) {
        char dpath[PATH_MAX];
        const char *dname;
        int ddfd;

        if (e->other_mount || sync_path(m, e, dpath, sizeof(dpath)) || sync_target(m, e, &ddfd, &dname) ||
            seen_before(m, &e->st))
                return 0;
        if (!S_ISREG(e->st.st_mode))
                /* Symlinks, fifos, device nodes: by name in their directories, never opened. */
                return meta_copy_xattrs(-EBADF, e->dfd, e->name, -EBADF, ddfd, dname, m->report);

        int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
        _cleanup_close_ int sfd = openat(e->dfd, e->name, flags | O_NOATIME);
        if (sfd < 0 && errno == EPERM)
                sfd = openat(e->dfd, e->name, flags);
        if (sfd < 0)
                return 0; /* gone or replaced since the last pass */
        _cleanup_close_ int dfd = openat(ddfd, dname, flags);
        if (dfd < 0)
                return -errno;
        return meta_copy_fd(sfd, dfd, AT_FDCWD, dpath, m->report);
}

static int sync_walk(WalkEvent event, WalkEntry *e, void *userdata) {
        MetaSync *m = userdata;
        char dpath[PATH_MAX];
        const char *dname;
        int ddfd;

        switch (event) {
        case WALK_ENTRY:
                return S_ISDIR(e->st.st_mode) ? 0 : sync_entry(m, e);
        case WALK_DIR_ENTER:
                /* Its copy, where its entries' copies are: a directory not copied has none. */
                if (sync_path(m, e, dpath, sizeof(dpath)) || sync_target(m, e, &ddfd, &dname))
                        return WALK_SKIP;
                e->user_fd = openat(ddfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                return e->user_fd < 0 ? -errno : 0;
        case WALK_DIR_LEAVE:
                /* After its entries: a protected directory takes nothing more. */
                (void) sync_path(m, e, dpath, sizeof(dpath)); /* it fit in WALK_DIR_ENTER */
                return meta_copy_fd(e->fd, e->user_fd, AT_FDCWD, dpath, m->report);
        }
        return -EINVAL;
}

int meta_sync_tree(int src_fd, const char *dst, MetaReport *report) {
        MetaSync m = { .dst = dst, .report = report };
        int r;

        /* No depth bound of its own: a directory the copy does not have is not entered, and the
         * copy has one. From the source's fd (the tree the passes copied), not its path, which a
         * user who may rename a directory on the way could point elsewhere after the release. */
        r = walk_tree(src_fd, "", WALK_ONE_FS | WALK_NOATIME | WALK_PATHS, UINT_MAX, sync_walk, &m);
        free(m.seen);
        return r;
}
