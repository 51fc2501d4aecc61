/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Writing a backup: creating the directory or archive, its documents, and finishing (the index
 * and excludes last) or giving up (removing what was written). */

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
#include <unistd.h>

#include "lib/basic/fd-util.h"
#include "lib/basic/time-util.h"
#include "lib/common.h"
#include "tools/beneath.h"
#include "tools/dir-util.h"
#include "tools/store-internal.h"

/* Creates dir/name through a temporary name, so it is either complete or absent. */
static int write_file_atomic(const char *dir, const char *name, const char *data, size_t len) {
        _cleanup_free_ char *tmp = NULL, *final = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        /* The temporary lives one level up, where no document name can collide with it. */
        if (asprintf(&tmp, "%s/../.%s.tmp", dir, name) < 0 || asprintf(&final, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, final) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        return r;
}

/* ---- writing ---- */

/* dest's parent, resolved following no symlink another user could have made, and dest's name in
 * it; for a directory store also the rule that nobody else may move anything on the way, since
 * the store is written below it by path (libarchive's write_disk). */
static int open_parent(const char *dest, bool dir, int *ret_fd, char **ret_parent, char **ret_name, char **ret_error) {
        _cleanup_free_ char *why = NULL;
        int r = beneath_parent_trusted(dest, ret_fd, ret_parent, ret_name, &why);
        if (r >= 0 && dir && (r = beneath_chain_trusted(*ret_fd, *ret_parent, geteuid(), &why)) < 0) {
                close(*ret_fd);
                *ret_fd = -EBADF;
                free(*ret_parent);
                free(*ret_name);
                *ret_parent = *ret_name = NULL;
        }
        if (r < 0)
                return fail(ret_error, r, "%s: %s%s", dest, why ? why : strerror(-r),
                            r == -EPERM ? "; write the backup to a place only you and root can change" : "");
        return 0;
}


static const struct {
        const char *suffix;
        int (*add_filter)(struct archive *);
} archive_kinds[] = {
        { ".tar", NULL },
        { ".tar.gz", archive_write_add_filter_gzip },
        { ".tar.xz", archive_write_add_filter_xz },
        { ".tar.zst", archive_write_add_filter_zstd },
};

static int create_archive(Store *s, const char *dest, int (*add_filter)(struct archive *), char **ret_error) {
        _cleanup_free_ char *parent = NULL, *name = NULL;
        _cleanup_close_ int pfd = -EBADF;
        int r = open_parent(dest, false, &pfd, &parent, &name, ret_error);
        if (r < 0)
                return r;
        s->path = path_join(parent, name);
        s->out = archive_write_new();
        if (!s->path || !s->out)
                return fail_oom(ret_error);
        s->fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (s->fd < 0)
                return fail(ret_error, -errno, "%s: %s", dest, errno == EEXIST ? "already exists" : strerror(errno));
        s->owned = true;

        /* Full pax: nanosecond times, atime, long names, xattrs, sparse maps. Names are bytes on
         * Linux: store them as they are rather than converting from a locale. */
        if (archive_write_set_format_pax(s->out) != ARCHIVE_OK ||
            archive_write_set_option(s->out, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK ||
            (add_filter && add_filter(s->out) != ARCHIVE_OK) || archive_write_open_fd(s->out, s->fd) != ARCHIVE_OK)
                return fail_archive(ret_error, s->out, "creating", dest);
        archive_entry_linkresolver_set_strategy(s->links, archive_format(s->out));
        return 0;
}

/* 1 when the directory fd is empty, 0 when not, -errno. */
static int dir_is_empty(int fd) {
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_(closedirp) DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
        struct dirent *de;

        if (!d) {
                if (dfd >= 0)
                        close(dfd);
                return -errno;
        }
        while ((errno = 0, de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return 0;
        return errno > 0 ? -errno : 1;
}

static int create_directory(Store *s, const char *dest, char **ret_error) {
        _cleanup_free_ char *parent = NULL, *name = NULL;
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        struct stat st;
        int r;

        r = open_parent(dest, true, &pfd, &parent, &name, ret_error);
        if (r < 0)
                return r;
        if (mkdirat(pfd, name, 0700) >= 0)
                s->created_dir = true;
        else if (errno != EEXIST)
                return fail(ret_error, -errno, "cannot create %s: %m", dest);
        fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0)
                return fail(ret_error, -errno, "%s: %s", dest, errno == ELOOP ? "is a symbolic link" : strerror(errno));
        if (!s->created_dir) {
                /* Anyone else who may write it could swap what we make in it. */
                if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                        return fail(ret_error, -EPERM, "%s: %s; a backup goes into a new directory, or an empty one only "
                                    "you may write", dest, st.st_uid != geteuid() ? "belongs to another user"
                                                                                   : "may be written by others");
                r = dir_is_empty(fd);
                if (r < 0)
                        return fail(ret_error, r, "%s: %s", dest, strerror(-r));
                if (r == 0)
                        return fail(ret_error, -ENOTEMPTY, "%s: directory is not empty", dest);
        }
        s->owned = true;

        /* Canonical, so write_disk's symlink checks find no symlink in our own prefix. */
        s->path = path_join(parent, name);
        if (!s->path)
                return fail_oom(ret_error);
        /* 0700: the stored files keep their owners and modes; only root may reach them. */
        if (mkdirat(fd, "openvss", 0700) < 0 || mkdirat(fd, "data", 0700) < 0)
                return fail(ret_error, -errno, "cannot create %s/{openvss,data}: %m", s->path);

        s->out = archive_write_disk_new();
        if (!s->out)
                return fail_oom(ret_error);
        archive_write_disk_set_options(s->out, disk_flags(DISK_STORE_FLAGS));
        archive_entry_linkresolver_set_strategy(s->links, ARCHIVE_FORMAT_TAR);
        return 0;
}

int store_create(const char *dest, Store **ret, char **ret_error) {
        int (*add_filter)(struct archive *) = NULL;
        bool is_archive = false;
        Store *s;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (isempty(dest) || !ret)
                return fail(ret_error, -EINVAL, "no destination given");
        for (size_t i = 0; i < ELEMENTSOF(archive_kinds); i++)
                if (endswith(dest, archive_kinds[i].suffix)) {
                        is_archive = true;
                        add_filter = archive_kinds[i].add_filter;
                }

        s = store_new();
        if (!s)
                return fail_oom(ret_error);
        s->writing = true;
        s->is_dir = !is_archive;
        s->rdisk = archive_read_disk_new();
        s->links = archive_entry_linkresolver_new();
        if (!s->rdisk || !s->links)
                r = fail_oom(ret_error);
        else
                r = is_archive ? create_archive(s, dest, add_filter, ret_error) : create_directory(s, dest, ret_error);
        if (r < 0) {
                store_abort(s);
                return r;
        }
        *ret = s;
        return 0;
}

static int write_document(Store *s, const char *name, const char *data, size_t len, char **ret_error) {
        _cleanup_(entry_freep) struct archive_entry *e = NULL;
        _cleanup_free_ char *docs = NULL, *p = NULL;
        int r;

        if (s->is_dir) {
                docs = path_join(s->path, "openvss");
                if (!docs)
                        return fail_oom(ret_error);
                r = write_file_atomic(docs, name, data, len);
                return r < 0 ? fail(ret_error, r, "writing %s/%s: %s", docs, name, strerror(-r)) : 0;
        }

        e = archive_entry_new();
        if (!e || asprintf(&p, DOC_PREFIX "%s", name) < 0)
                return fail_oom(ret_error);
        archive_entry_set_pathname(e, p);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0600);
        archive_entry_set_size(e, (la_int64_t) len);
        archive_entry_set_mtime(e, (time_t) (now_realtime_usec() / USEC_PER_SEC), 0);
        if (archive_write_header(s->out, e) != ARCHIVE_OK ||
            (len > 0 && archive_write_data(s->out, data, len) != (la_ssize_t) len) ||
            archive_write_finish_entry(s->out) != ARCHIVE_OK)
                return fail_archive(ret_error, s->out, "writing", p);
        return 0;
}

int store_put_document(Store *s, const char *name, const char *data, size_t len, char **ret_error) {
        char *copy;
        const void *n;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s || !s->writing)
                return fail(ret_error, -EBADF, "the backup is not open for writing");
        if (!document_name_ok(name) || document_name_reserved(name))
                return fail(ret_error, -EINVAL, "invalid document name '%.*s'", NAME_SHOWN, strempty(name));
        if (len > STORE_DOCUMENT_MAX)
                return fail(ret_error, -EFBIG, "document %s: %zu bytes, larger than %u bytes", name, len,
                            STORE_DOCUMENT_MAX);
        if (!data && len > 0)
                return fail(ret_error, -EINVAL, "document %s: no data", name);

        copy = strdup(name);
        n = copy ? tsearch(copy, &s->docs, cmp_str) : NULL;
        if (!n) {
                free(copy);
                return fail_oom(ret_error);
        }
        if (*(char *const *) n != copy) {
                free(copy);
                return fail(ret_error, -EEXIST, "document %s is already stored", name);
        }
        r = write_document(s, name, data, len, ret_error);
        if (r < 0)
                s->failed = true;
        return r;
}

/* NUL-terminated strings, one after the other. */
static int serialize(char *const *strings, size_t n, char **ret, size_t *ret_len) {
        FILE *f = open_memstream(ret, ret_len);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                fwrite(strings[i], 1, strlen(strings[i]) + 1, f);
        return fclose(f) < 0 ? -ENOMEM : 0;
}

static int finish(Store *s, char **ret_error) {
        _cleanup_free_ char *index = NULL, *excl = NULL;
        size_t n_index = 0, n_excl = 0;
        FILE *f;
        int r;

        if (serialize(s->paths, s->n_paths, &index, &n_index) < 0)
                return fail_oom(ret_error);
        if (n_index > STORE_INDEX_MAX)
                return fail(ret_error, -EFBIG, "the index would be %zu bytes, larger than %u bytes: too many files",
                            n_index, STORE_INDEX_MAX);
        f = open_memstream(&excl, &n_excl);
        if (!f)
                return fail_oom(ret_error);
        for (size_t i = 0; i < s->n_excludes; i++)
                fprintf(f, "%s%c%s%c%c%c", s->excludes[i].path, 0, s->excludes[i].filespec, 0,
                        s->excludes[i].recursive ? '1' : '0', 0);
        if (fclose(f) < 0)
                return fail_oom(ret_error);

        if (s->is_dir) {
                /* Closing write_disk sets the directories' deferred modes and times. */
                if (archive_write_close(s->out) != ARCHIVE_OK)
                        return fail_archive(ret_error, s->out, "finishing", s->path);
        }
        {
                const char *fl;
                size_t n_fl;
                if (store_flags_document(s, &fl, &n_fl) < 0)
                        return fail_oom(ret_error);
                r = fl ? write_document(s, FLAGS_NAME, fl, n_fl, ret_error) : 0;
        }
        if (r >= 0)
                r = write_document(s, EXCLUDES_NAME, excl, n_excl, ret_error);
        if (r >= 0)
                r = write_document(s, INDEX_NAME, index, n_index, ret_error);
        if (r < 0)
                return r;

        if (s->is_dir) {
                _cleanup_close_ int fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0 || syncfs(fd) < 0)
                        return fail(ret_error, -errno, "syncing %s: %m", s->path);
        } else {
                if (archive_write_close(s->out) != ARCHIVE_OK)
                        return fail_archive(ret_error, s->out, "finishing", s->path);
                if (fsync(s->fd) < 0)
                        return fail(ret_error, -errno, "syncing %s: %m", s->path);
        }
        return 0;
}

int store_finish(Store *s, char **ret_error) {
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s)
                return fail(ret_error, -EINVAL, "no backup given");
        if (!s->writing) {
                store_close(s);
                return fail(ret_error, -EBADF, "the backup is not open for writing");
        }
        r = s->failed ? fail(ret_error, -EIO, "an earlier error left the backup incomplete") : finish(s, ret_error);
        if (r < 0) {
                store_abort(s);
                return r;
        }
        store_free(s);
        return 0;
}

void store_abort(Store *s) {
        if (!s)
                return;
        /* Unlinked first: closing the writer still writes a trailer, to nowhere then. (Not
         * archive_write_fail(): with it, libarchive 3.6 leaks its output buffer.) */
        if (s->writing && s->owned && !s->is_dir)
                (void) unlink(s->path);
        if (s->writing && s->out) {
                archive_write_free(s->out);
                s->out = NULL;
        }
        if (s->writing && s->owned && s->is_dir) {
                if (s->path) {
                        _cleanup_close_ int fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (fd >= 0) {
                                (void) beneath_remove(fd, "openvss");
                                (void) beneath_remove(fd, "data");
                        }
                        if (s->created_dir)
                                (void) rmdir(s->path);
                }
        }
        store_free(s);
}
