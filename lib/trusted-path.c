/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/basic/fd-util.h"
#include "lib/basic/path-util.h"
#include "lib/common.h"
#include "lib/fail.h"
#include "lib/trusted-path.h"

#define NAME_SHOWN 256

#define TRUSTED_LINKS_MAX 40

/* Whether the symlink st, in directory dir, is the caller's own (root's, for root): made by root
 * or the caller, and its name in a directory of theirs where nobody else may make, remove or
 * rename one. */
static bool link_trusted(const struct stat *st, const struct stat *dir) {
        uid_t me = geteuid();
        return (st->st_uid == 0 || st->st_uid == me) && (dir->st_uid == 0 || dir->st_uid == me) &&
               (!(dir->st_mode & (S_IWGRP | S_IWOTH)) || (dir->st_mode & S_ISVTX));
}

/* One step of beneath_resolve_trusted(): *fd and *base go into the directory comp of *fd (or its
 * parent, for ".."). 1 when they did, 0 when comp does not exist, <0 on failure (*is_link:
 * comp is a symlink, for the caller to follow or refuse). */
static int resolve_step(int *fd, char **base, const char *comp, struct stat *st, bool *is_link) {
        *is_link = false;
        if (streq(comp, "."))
                return 1;
        if (!streq(comp, "..")) {
                if (fstatat(*fd, comp, st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                if (S_ISLNK(st->st_mode)) {
                        *is_link = true;
                        return -ELOOP;
                }
                if (!S_ISDIR(st->st_mode))
                        return -ENOTDIR;
        }
        /* O_NOFOLLOW: a directory swapped for a symlink since the fstatat is not followed. */
        int nfd = openat(*fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0)
                return errno == ENOENT ? 0 : -errno;
        char *nb;
        if (streq(comp, "..")) {
                nb = strdup(*base);
                char *slash = nb ? strrchr(nb, '/') : NULL;
                if (slash)
                        slash[slash == nb] = 0;
        } else
                nb = path_join(*base, comp);
        if (!nb) {
                close(nfd);
                return -ENOMEM;
        }
        close(*fd);
        *fd = nfd;
        free(*base);
        *base = nb;
        return 1;
}

int beneath_resolve_trusted(const char *p, int *ret_fd, char **ret_base, char **ret_rest, char **ret_error) {
        _cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ char *todo = strdup(p), *base = strdup("/");
        unsigned links = 0;
        const char *c;

        if (fd < 0)
                return fail(ret_error, -errno, "/: %m");
        if (!todo || !base)
                return fail_oom(ret_error);
        for (;;) {
                char comp[NAME_MAX + 1];
                struct stat st, dir;
                bool is_link;
                c = todo;
                while (*c == '/')
                        c++;
                if (*c == 0)
                        break;
                const char *e = strchrnul(c, '/');
                if ((size_t) (e - c) > NAME_MAX)
                        return fail(ret_error, -ENAMETOOLONG, "%.*s: name too long", NAME_SHOWN, c);
                memcpy(comp, c, (size_t) (e - c));
                comp[e - c] = 0;
                int r = resolve_step(&fd, &base, comp, &st, &is_link);
                if (r == 0)
                        break; /* c, on, does not exist */
                if (r == -ENOMEM)
                        return fail_oom(ret_error);
                if (r < 0 && !is_link)
                        return fail(ret_error, r, "%s/%s: %s", streq(base, "/") ? "" : base, comp, strerror(-r));
                if (r < 0) {
                        if (fstat(fd, &dir) < 0)
                                return fail(ret_error, -errno, "%s: %m", base);
                        if (!link_trusted(&st, &dir))
                                return fail(ret_error, -ELOOP,
                                            "%s/%s is a symlink that uid %u may have made or replaced: it is not "
                                            "followed", streq(base, "/") ? "" : base, comp,
                                            (unsigned) (st.st_uid != 0 ? st.st_uid : dir.st_uid));
                        char target[PATH_MAX];
                        ssize_t k = readlinkat(fd, comp, target, sizeof(target) - 1);
                        if (k <= 0 || ++links > TRUSTED_LINKS_MAX)
                                return fail(ret_error, k < 0 ? -errno : -ELOOP, "%s/%s: cannot follow the symlink",
                                            streq(base, "/") ? "" : base, comp);
                        target[k] = 0;
                        if (target[0] == '/') {
                                int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
                                if (root < 0)
                                        return fail(ret_error, -errno, "/: %m");
                                close(fd);
                                fd = root;
                                free(base);
                                base = strdup("/");
                        }
                        char *next = NULL;
                        if (!base || asprintf(&next, "%s%s", target, e) < 0)
                                return fail_oom(ret_error);
                        free(todo);
                        todo = next;
                        continue;
                }
                memmove(todo, e, strlen(e) + 1);
        }
        *ret_rest = strdup(c);
        if (!*ret_rest)
                return fail_oom(ret_error);
        *ret_fd = TAKE_FD(fd);
        *ret_base = TAKE_PTR(base);
        return 0;
}

int beneath_resolve_trusted_dir(const char *p, int *ret_fd, char **ret_base, char **ret_error) {
        _cleanup_free_ char *base = NULL, *rest = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r = beneath_resolve_trusted(p, &fd, &base, &rest, ret_error);
        if (r < 0)
                return r;
        if (!isempty(rest))
                return fail(ret_error, -ENOENT, "%s/%s: %s", streq(base, "/") ? "" : base, rest, strerror(ENOENT));
        *ret_fd = TAKE_FD(fd);
        *ret_base = TAKE_PTR(base);
        return 0;
}

int beneath_parent_trusted(const char *p, int *ret_fd, char **ret_parent, char **ret_name, char **ret_error) {
        _cleanup_free_ char *abs = NULL, *base = NULL, *cwd = NULL;
        _cleanup_close_ int fd = -EBADF;
        if (isempty(p))
                return fail(ret_error, -EINVAL, "no path given");
        if (p[0] != '/' && !(cwd = getcwd(NULL, 0)))
                return fail(ret_error, -errno, "cannot tell the current directory: %m");
        if (asprintf(&abs, "%s%s%s", cwd ? cwd : "", cwd ? "/" : "", p) < 0)
                return fail_oom(ret_error);
        size_t n = strlen(abs);
        while (n > 1 && abs[n - 1] == '/')
                abs[--n] = 0;
        char *slash = strrchr(abs, '/');
        const char *name = slash + 1;
        if (streq(name, ".") || streq(name, "..")) {
                /* A directory named by its way there: resolved whole, then as its real path. */
                int r = beneath_resolve_trusted_dir(abs, &fd, &base, ret_error);
                if (r < 0)
                        return r;
                if (streq(base, "/"))
                        return fail(ret_error, -EINVAL, "'%.*s' is /, in no directory", NAME_SHOWN, p);
                return beneath_parent_trusted(base, ret_fd, ret_parent, ret_name, ret_error);
        }
        if (isempty(name))
                return fail(ret_error, -EINVAL, "'%.*s' names no file or directory in a directory", NAME_SHOWN, p);
        *slash = 0;
        int r = beneath_resolve_trusted_dir(isempty(abs) ? "/" : abs, &fd, &base, ret_error);
        if (r < 0)
                return r;
        char *nm = strdup(name);
        if (!nm)
                return fail_oom(ret_error);
        *ret_fd = TAKE_FD(fd);
        *ret_parent = TAKE_PTR(base);
        *ret_name = nm;
        return 0;
}

int beneath_open_trusted(const char *p, int flags, char **ret_path, char **ret_error) {
        _cleanup_free_ char *cur = strdup(p);
        if (!cur)
                return fail_oom(ret_error);
        for (unsigned links = 0;; links++) {
                _cleanup_free_ char *parent = NULL, *name = NULL;
                _cleanup_close_ int pfd = -EBADF;
                struct stat st, dir;
                /* ".", ".." and trailing slashes are beneath_parent_trusted()'s to resolve. */
                int r = beneath_parent_trusted(cur, &pfd, &parent, &name, ret_error);
                if (r < 0)
                        return r;
                _cleanup_free_ char *full = path_join(parent, name);
                if (!full)
                        return fail_oom(ret_error);
                if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return fail(ret_error, -errno, "%s: %m", full);
                if (!S_ISLNK(st.st_mode)) {
                        int fd = openat(pfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
                        if (fd < 0)
                                return fail(ret_error, -errno, "%s: %m", full);
                        *ret_path = TAKE_PTR(full);
                        return fd;
                }
                if (fstat(pfd, &dir) < 0)
                        return fail(ret_error, -errno, "%s: %m", parent);
                if (!link_trusted(&st, &dir))
                        return fail(ret_error, -ELOOP, "%s is a symlink that uid %u may have made or replaced: it is "
                                    "not followed", full, (unsigned) (st.st_uid != 0 ? st.st_uid : dir.st_uid));
                char target[PATH_MAX];
                ssize_t k = readlinkat(pfd, name, target, sizeof(target) - 1);
                if (k <= 0 || links >= TRUSTED_LINKS_MAX)
                        return fail(ret_error, k < 0 ? -errno : -ELOOP, "%s: cannot follow the symlink", full);
                target[k] = 0;
                free(cur);
                cur = target[0] == '/' ? strdup(target) : path_join(parent, target);
                if (!cur)
                        return fail_oom(ret_error);
        }
}


int realpath_trusted(const char *p, char real[PATH_MAX], char **ret_error) {
        _cleanup_free_ char *path = NULL, *why = NULL;
        int fd = beneath_open_trusted(p, O_PATH, &path, &why);
        if (fd == -EINVAL && p && p[0] == '/') {
                /* "/" (or a way to it) has no parent to open it in: resolved as a directory. */
                _cleanup_free_ char *base = NULL, *why2 = NULL;
                _cleanup_close_ int dfd = -EBADF;
                if (beneath_resolve_trusted_dir(p, &dfd, &base, &why2) >= 0 && streq(base, "/")) {
                        memcpy(real, "/", 2);
                        return 0;
                }
        }
        if (fd < 0)
                return fail(ret_error, fd, "%s", why ? why : strerror(-fd));
        close(fd);
        size_t n = strlen(path);
        if (n >= PATH_MAX)
                return fail(ret_error, -ENAMETOOLONG, "%.*s: name too long", NAME_SHOWN, path);
        memcpy(real, path, n + 1);
        return 0;
}
