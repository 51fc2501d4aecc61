/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/basic/path-util.h"
#include "lib/common.h"
#include "lib/basic/fd-util.h"
#include "lib/openat.h"
#include "providers/file/meta.h"
#include "tools/beneath.h"
#include "tools/dir-util.h"
#include "lib/fail.h"

#define DEPTH_MAX 4096U
#define NAME_SHOWN 256

int beneath_open(int dirfd, const char *path, int flags, mode_t mode) {
        return open_no_symlinks(dirfd, path, flags, mode, true);
}

static const char *symlink_or_not_dir(int r) {
        return r == -ELOOP ? "is a symlink, which a restore does not follow" : "is not a directory";
}

int beneath_chain_trusted(int fd, const char *path, uid_t uid, char **ret_error) {
        char why[PATH_MAX + 64];
        int r = dir_chain_trusted(fd, path, uid, why, sizeof(why));
        if (r == -EPERM)
                return fail(ret_error, r, "%s, who could move what is below it elsewhere", why);
        if (r < 0)
                return fail(ret_error, r, "%s: %s", path, strerror(-r));
        return 0;
}

int beneath_deepest(int dirfd, const char *shown, const char *rel, int64_t owner, int *ret_fd, const char **ret_rest,
                    char **ret_error) {
        _cleanup_close_ int fd = -EBADF;
        bool owned = false;
        const char *c = rel;
        struct stat st;

        fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return fail(ret_error, -errno, "%s: %m", shown);
        for (;;) {
                char comp[NAME_MAX + 1];
                const char *e;
                size_t n;
                int nfd;

                if (owner >= 0) {
                        if (fstat(fd, &st) < 0)
                                return fail(ret_error, -errno, "%s: %m", shown);
                        /* Below a directory of the owner, a foreign one is a place the owner may not
                         * write; the deepest existing one must be the owner's (checked at the end). */
                        if (st.st_uid == (uid_t) owner)
                                owned = true;
                        else if (owned)
                                return fail(ret_error, -EPERM,
                                            "%s/%.*s: owned by uid %u, inside a directory of uid %lld: a writer of uid "
                                            "%lld may only send files where that uid may write itself",
                                            shown, (int) (c - rel), rel, (unsigned) st.st_uid, (long long) owner,
                                            (long long) owner);
                }
                while (*c == '/')
                        c++;
                if (*c == 0)
                        break;
                e = strchrnul(c, '/');
                n = (size_t) (e - c);
                if (n > NAME_MAX)
                        return fail(ret_error, -ENAMETOOLONG, "%s/%.*s: name too long", shown, NAME_SHOWN, rel);
                memcpy(comp, c, n);
                comp[n] = 0;
                nfd = beneath_open(fd, comp, O_PATH | O_DIRECTORY, 0);
                if (nfd == -ENOENT)
                        break;
                if (nfd == -ELOOP || nfd == -ENOTDIR) {
                        const char *rest = e;
                        while (*rest == '/')
                                rest++;
                        if (*rest == 0)
                                break; /* the last one: replaced, not followed */
                        return fail(ret_error, nfd, "%s/%.*s %s", shown, (int) (e - rel), rel, symlink_or_not_dir(nfd));
                }
                if (nfd < 0)
                        return fail(ret_error, nfd, "%s/%.*s: %s", shown, (int) (e - rel), rel, strerror(-nfd));
                close(fd);
                fd = nfd;
                c = e;
        }
        if (owner >= 0 && !owned)
                return fail(ret_error, -EPERM,
                            "%s%s%.*s: not owned by uid %lld: a writer of uid %lld may only send files where that uid "
                            "may write itself (the destination and every directory on the way owned by it)",
                            shown, c > rel ? "/" : "", (int) (c - rel), rel, (long long) owner, (long long) owner);
        *ret_fd = TAKE_FD(fd);
        *ret_rest = c;
        return 0;
}

int beneath_staging(int dirfd, char name[static 64], int *ret_fd) {
        struct stat st;

        for (unsigned tries = 0; tries < 64; tries++) {
                uint32_t rnd;
                int fd;

                if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
                        return -EIO;
                snprintf(name, 64, ".vssbackup-restore-%08x", rnd);
                if (mkdirat(dirfd, name, 0700) < 0) {
                        if (errno == EEXIST)
                                continue;
                        return -errno;
                }
                fd = beneath_open(dirfd, name, O_PATH | O_DIRECTORY, 0);
                if (fd < 0)
                        return fd;
                /* Someone who may write in dirfd could have put another directory there since. */
                if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 07777) != 0700) {
                        close(fd);
                        return -EEXIST;
                }
                *ret_fd = fd;
                return 0;
        }
        return -EEXIST;
}

int beneath_unprotect(int dirfd, const char *name) {
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        char proc[64];
        struct stat st;

        /* O_PATH first: whatever stands there is looked at, not opened (a device node, a fifo). */
        pfd = beneath_open(dirfd, name, O_PATH | O_NOFOLLOW, 0);
        if (pfd < 0)
                return pfd;
        if (fstat(pfd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EPERM; /* no flags elsewhere: the EPERM was for something else */
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
        fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return meta_unprotect(fd, NULL);
}

/* renameat() replacing a file that may be immutable or append-only (restored so by an earlier
 * backup of the chain): it is going away, so its flags are lifted for that. */
static int replace_at(int src, const char *name, int dst) {
        if (renameat(src, name, dst, name) >= 0)
                return 0;
        if (errno != EPERM || beneath_unprotect(dst, name) < 0)
                return -EPERM;
        return renameat(src, name, dst, name) < 0 ? -errno : 0;
}

static int merge(int src, int dst, const char *shown, bool no_overwrite, bool dry, const struct stat *keep,
                 uint64_t *kept, unsigned depth, char **ret_error) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        if (depth > DEPTH_MAX)
                return fail(ret_error, -ELOOP, "%s: directories nested too deeply", shown);
        d = opendir_at(src);
        if (!d)
                return fail(ret_error, -errno, "reading the staged restore: %m");
        while ((errno = 0, de = readdir(d))) {
                _cleanup_free_ char *where = NULL;
                struct stat s, t;
                int r;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (asprintf(&where, "%s/%s", shown, de->d_name) < 0)
                        return -ENOMEM;
                if (fstatat(src, de->d_name, &s, AT_SYMLINK_NOFOLLOW) < 0)
                        return fail(ret_error, -errno, "%s: %m", where);
                if (fstatat(dst, de->d_name, &t, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return fail(ret_error, -errno, "%s: %m", where);
                        if (!dry && renameat2(src, de->d_name, dst, de->d_name, RENAME_NOREPLACE) < 0)
                                return fail(ret_error, -errno, "%s: %m", where);
                        continue;
                }
                if (keep && !no_overwrite && t.st_dev == keep->st_dev && t.st_ino == keep->st_ino)
                        return fail(ret_error, -EEXIST, "%s: is the backup being restored; not replaced", where);
                if (S_ISDIR(s.st_mode) && S_ISDIR(t.st_mode)) {
                        _cleanup_close_ int sfd = beneath_open(src, de->d_name, O_PATH | O_DIRECTORY, 0);
                        _cleanup_close_ int tfd = beneath_open(dst, de->d_name, O_PATH | O_DIRECTORY, 0);
                        if (sfd < 0 || tfd < 0)
                                return fail(ret_error, sfd < 0 ? sfd : tfd, "%s: %s", where,
                                            tfd == -ELOOP ? "replaced by a symlink, which is not followed"
                                                          : strerror(-(sfd < 0 ? sfd : tfd)));
                        /* Another filesystem there (a mount, a btrfs subvolume) takes nothing by
                         * rename: said in the dry run, before anything moves, unless nothing
                         * staged goes there. */
                        if (s.st_dev != t.st_dev) {
                                _cleanup_(closedirp) DIR *sd = opendir_at(sfd);
                                struct dirent *e;
                                if (!sd || dir_next(sd, &e) > 0)
                                        return fail(ret_error, -EXDEV, "%s: " BENEATH_OTHER_FS, where);
                                continue;
                        }
                        r = merge(sfd, tfd, where, no_overwrite, dry, keep, kept, depth + 1, ret_error);
                        if (r < 0)
                                return r;
                } else if (S_ISDIR(t.st_mode))
                        return fail(ret_error, -EISDIR, "%s: is a directory; the backup has a file there", where);
                else if (S_ISDIR(s.st_mode)) {
                        if (no_overwrite)
                                return fail(ret_error, -ENOTDIR, "%s: %s where the backup has a directory (not followed, "
                                            "not replaced)", where, S_ISLNK(t.st_mode) ? "a symlink" : "a file");
                        if (!dry && (unlinkat(dst, de->d_name, 0) < 0 ||
                                     renameat2(src, de->d_name, dst, de->d_name, RENAME_NOREPLACE) < 0))
                                return fail(ret_error, -errno, "%s: %m", where);
                } else if (no_overwrite) {
                        if (!dry)
                                (*kept)++;
                } else if (!dry && (r = replace_at(src, de->d_name, dst)) < 0)
                        return fail(ret_error, r, "%s: %s", where, strerror(-r));
        }
        return errno > 0 ? fail(ret_error, -errno, "reading the staged restore: %m") : 0;
}

int beneath_merge(int src, int dst, const char *shown, bool no_overwrite, bool dry, const struct stat *keep,
                  uint64_t *ret_kept, char **ret_error) {
        return merge(src, dst, shown, no_overwrite, dry, keep, ret_kept, 0, ret_error);
}

static int remove_at(int dfd, const char *name, unsigned depth) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        int fd;

        if (unlinkat(dfd, name, 0) >= 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        if (depth > DEPTH_MAX)
                return -ELOOP;
        fd = beneath_open(dfd, name, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) remove_at(dirfd(d), de->d_name, depth + 1);
        return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

int beneath_remove(int dirfd, const char *name) {
        return remove_at(dirfd, name, 0);
}
