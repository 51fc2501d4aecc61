/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <search.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/common.h"
#include "beneath.h"
#include "store.h"
#include "store-internal.h"

/* Like tar: only root restores ownership; others get their own instead of a failure. */
int disk_flags(int flags) {
        return geteuid() == 0 ? flags : flags & ~ARCHIVE_EXTRACT_OWNER;
}



static void entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}
void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

int fail(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;

        /* The first error is the one that explains the failure; later ones are consequences. */
        if (ret_error && !*ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

int fail_archive(char **ret_error, struct archive *a, const char *what, const char *path) {
        const char *m = archive_error_string(a);
        int e = archive_errno(a);

        /* libarchive's "file format" errno is EILSEQ: a damaged archive is a bad message to us. */
        if (e == EILSEQ)
                e = EBADMSG;
        return fail(ret_error, e > 0 ? -e : -EIO, "%s %.*s: %s", what, NAME_SHOWN, path, m ? m : "unknown error");
}

int fail_oom(char **ret_error) {
        return fail(ret_error, -ENOMEM, "out of memory");
}

static bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

static bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static uint64_t ts_usec(const struct timespec *ts) {
        return ts->tv_sec < 0 ? 0 : (uint64_t) ts->tv_sec * USEC_PER_SEC + (uint64_t) ts->tv_nsec / 1000U;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(a, b);
}
static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}
static void free_nothing(void *p) {
}

/* ---- paths ---- */

/* Absolute, no empty, "." or ".." components, no trailing '/' (except "/"), shorter than PATH_MAX. */
bool path_is_normalized(const char *p) {
        if (!p || p[0] != '/' || strnlen(p, PATH_MAX) >= PATH_MAX)
                return false;
        if (p[1] == 0)
                return true;
        for (const char *c = p; *c; ) {
                const char *e = strchrnul(++c, '/');
                size_t n = (size_t) (e - c);

                if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                c = e;
        }
        return true;
}

/* Collapses "//" and drops a trailing '/'; refuses relative paths and "."/".." components. */
int path_clean(const char *in, char **ret) {
        char *p, *d;

        if (!in || in[0] != '/')
                return -EINVAL;
        p = d = malloc(strlen(in) + 1);
        if (!p)
                return -ENOMEM;
        for (const char *s = in; *s; s++)
                if (*s != '/' || d == p || d[-1] != '/')
                        *d++ = *s;
        if (d > p + 1 && d[-1] == '/')
                d--;
        *d = 0;
        if (!path_is_normalized(p)) {
                free(p);
                return -EINVAL;
        }
        *ret = p;
        return 0;
}

/* The canonical form of a path whose tail may not exist yet: the longest existing prefix through
 * realpath(3), the rest appended. For paths the caller chose (restore destinations). */
int path_resolve(const char *p, char **ret) {
        _cleanup_free_ char *head = strdup(p);

        if (!head)
                return -ENOMEM;
        for (;;) {
                _cleanup_free_ char *real = realpath(head, NULL);
                const char *rest;
                char *slash;

                if (real) {
                        rest = p + strlen(head);
                        if (*rest == '/')
                                rest++;
                        *ret = path_join(real, rest);
                        return *ret ? 0 : -ENOMEM;
                }
                if (errno != ENOENT)
                        return -errno;
                slash = strrchr(head, '/');
                if (!slash || slash == head) /* "/" always resolves; this is for safety */
                        head[1] = 0;
                else
                        *slash = 0;
        }
}

static bool filespec_all(const char *f) {
        return isempty(f) || streq(f, "*");
}

/* Whether original path p belongs to group g: its path itself, or below it (directories when
 * recursive, files in subdirectories when recursive, files matching filespec). */
bool group_match(const StoreFileGroup *g, const char *p, bool is_dir) {
        const char *rest = path_under(p, g->path), *base;

        if (!rest)
                return false;
        if (*rest == 0)
                return true;
        if (is_dir)
                return g->recursive;
        base = strrchr(rest, '/');
        if (base && !g->recursive)
                return false;
        base = base ? base + 1 : rest;
        return filespec_all(g->filespec) || fnmatch(g->filespec, base, 0) == 0;
}

/* A file is excluded by any exclude it matches; a directory (with all below it) only by a
 * recursive exclude of all names at or above it. */
bool excluded(const StoreFileGroup *x, size_t n, const char *p, bool is_dir) {
        for (size_t i = 0; i < n; i++)
                if (is_dir ? x[i].recursive && filespec_all(x[i].filespec) && path_under(p, x[i].path)
                           : group_match(&x[i], p, false))
                        return true;
        return false;
}

/* "data/a/b" (or "data/a/b/") to "/a/b" in buf: 1; "data" or "data/": 0 (the root, nothing to do);
 * anything unsafe or invalid: -EBADMSG. */
static int data_name_to_path(const char *name, char buf[static PATH_MAX]) {
        size_t n;

        if (streq(name, "data") || streq(name, DATA_PREFIX))
                return 0;
        if (!startswith(name, DATA_PREFIX))
                return -EBADMSG;
        n = strnlen(name, PATH_MAX + 8) - strlen(DATA_PREFIX);
        if (n + 1 >= PATH_MAX)
                return -EBADMSG;
        buf[0] = '/';
        memcpy(buf + 1, name + strlen(DATA_PREFIX), n + 1);
        if (n > 1 && buf[n] == '/')
                buf[n] = 0;
        return path_is_normalized(buf) ? 1 : -EBADMSG;
}

static bool document_name_ok(const char *name) {
        size_t n = name ? strnlen(name, STORE_NAME_MAX + 1) : 0;

        return n > 0 && n <= STORE_NAME_MAX && !streq(name, ".") && !streq(name, "..") &&
               strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool document_name_reserved(const char *name) {
        return streq(name, INDEX_NAME) || streq(name, EXCLUDES_NAME) || streq(name, FLAGS_NAME);
}

/* ---- the Store object ---- */

static Store *store_new(void) {
        Store *s = calloc(1, sizeof *s);

        if (s)
                s->fd = -EBADF;
        return s;
}

static void store_free(Store *s) {
        if (!s)
                return;
        if (s->out)
                archive_write_free(s->out);
        if (s->rdisk)
                archive_read_free(s->rdisk);
        if (s->links)
                archive_entry_linkresolver_free(s->links);
        tdestroy(s->seen, free_nothing);
        tdestroy(s->docs, free);
        if (!s->index_blob)
                for (size_t i = 0; i < s->n_paths; i++)
                        free(s->paths[i]);
        free(s->paths);
        free(s->index_blob);
        if (!s->excludes_blob)
                for (size_t i = 0; i < s->n_excludes; i++) {
                        free((char *) s->excludes[i].path);
                        free((char *) s->excludes[i].filespec);
                }
        free(s->excludes);
        free(s->excludes_blob);
        if (s->flags_out)
                fclose(s->flags_out);
        free(s->flags_buf);
        free(s->flags_blob);
        free(s->flags);
        free(s->buf);
        if (s->fd >= 0)
                close(s->fd);
        free(s->path);
        free(s);
}

void store_set_progress(Store *s, store_progress_fn fn, void *userdata) {
        if (!s)
                return;
        s->progress = fn;
        s->userdata = userdata;
}

void progress(Store *s, const char *current) {
        if (s->progress)
                s->progress(s->files, s->bytes, current, s->userdata);
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

bool store_index_has(Store *s, const char *path) {
        if (!s || !path)
                return false;
        if (s->writing)
                return tfind(path, &s->seen, cmp_str) != NULL;
        return s->n_paths > 0 && bsearch(&path, s->paths, s->n_paths, sizeof *s->paths, cmp_strp) != NULL;
}

/* ---- small files ---- */

static int write_all(int fd, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

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

static bool file_exists_at(const char *dir, const char *name) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        return asprintf(&p, "%s/%s", dir, name) >= 0 && lstat(p, &st) >= 0;
}

/* Reads dir/name, a regular file of at most max bytes, NUL-terminated. */
static int read_file_at(const char *dir, const char *name, size_t max, const char *what, char **ret, size_t *ret_len,
                        char **ret_error) {
        _cleanup_free_ char *p = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t got = 0;

        if (asprintf(&p, "%s/%s", dir, name) < 0)
                return fail_oom(ret_error);
        fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return fail(ret_error, -errno, "%s: %m", p);
        if (fstat(fd, &st) < 0)
                return fail(ret_error, -errno, "%s: %m", p);
        if (!S_ISREG(st.st_mode))
                return fail(ret_error, -EBADMSG, "%s: not a regular file", p);
        if ((uint64_t) st.st_size > max)
                return fail(ret_error, -EFBIG, "%s is larger than %zu bytes", what, max);
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return fail_oom(ret_error);
        while (got < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + got, (size_t) st.st_size - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return fail(ret_error, -errno, "reading %s: %m", p);
                if (k == 0)
                        return fail(ret_error, -EBADMSG, "%s: shorter than its size", p);
                got += (size_t) k;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

/* The data of the current archive entry, at most max bytes, NUL-terminated. */
static int read_entry_data(struct archive *a, struct archive_entry *e, size_t max, const char *what, char **ret,
                           size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        int64_t size = archive_entry_size(e);
        size_t got = 0;

        if (!archive_entry_size_is_set(e) || size < 0)
                return fail(ret_error, -EBADMSG, "%s has no size in the archive", what);
        if ((uint64_t) size > max)
                return fail(ret_error, -EFBIG, "%s is larger than %zu bytes", what, max);
        buf = malloc((size_t) size + 1);
        if (!buf)
                return fail_oom(ret_error);
        while (got < (size_t) size) {
                la_ssize_t k = archive_read_data(a, buf + got, (size_t) size - got);
                if (k < 0)
                        return fail_archive(ret_error, a, "reading", what);
                if (k == 0)
                        return fail(ret_error, -EBADMSG, "%s is truncated", what);
                got += (size_t) k;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

/* ---- writing ---- */

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
        s->path = strdup(dest);
        s->out = archive_write_new();
        if (!s->path || !s->out)
                return fail_oom(ret_error);
        s->fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
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

static int dir_is_empty(const char *path) {
        _cleanup_(closedirp) DIR *d = opendir(path);
        struct dirent *de;

        if (!d)
                return -errno;
        while ((errno = 0, de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return 0;
        return errno > 0 ? -errno : 1;
}

static int create_directory(Store *s, const char *dest, char **ret_error) {
        _cleanup_free_ char *docs = NULL, *data = NULL;
        int r;

        if (mkdir(dest, 0700) >= 0)
                s->created_dir = true;
        else if (errno != EEXIST)
                return fail(ret_error, -errno, "cannot create %s: %m", dest);
        else {
                r = dir_is_empty(dest);
                if (r < 0)
                        return fail(ret_error, r, "%s: %s", dest, strerror(-r));
                if (r == 0)
                        return fail(ret_error, -ENOTEMPTY, "%s: directory is not empty", dest);
        }
        s->owned = true;

        /* Canonical, so write_disk's symlink checks find no symlink in our own prefix. */
        s->path = realpath(dest, NULL);
        if (!s->path)
                return fail(ret_error, -errno, "%s: %m", dest);
        docs = path_join(s->path, "openvss");
        data = path_join(s->path, "data");
        if (!docs || !data)
                return fail_oom(ret_error);
        /* 0700: the stored files keep their owners and modes; only root may reach them. */
        if (mkdir(docs, 0700) < 0 || mkdir(data, 0700) < 0)
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
        archive_entry_set_mtime(e, time(NULL), 0);
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

typedef struct Walk {
        Store *s;
        const char *root;               /* source_root; "" for "/" */
        const char *strip;              /* "" or a normalized path */
        StoreFileGroup group;           /* with a normalized path */
        const StoreFileGroup *excludes; /* normalized */
        size_t n_excludes;
        uint64_t since_usec;
        dev_t dev;                      /* the group path's filesystem */
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
        if (S_ISREG(st.st_mode) && w->since_usec > 0 && unchanged_since(w, p, &st))
                /* Unchanged since the base backup: listed only. */
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
        if (r < 0 || st.st_dev != w->dev)
                return r; /* another filesystem: kept as an empty directory */
        return walk_dir(w, fd, p, depth);
}

static int walk_dir(Walk *w, int fd, const char *p, unsigned depth) {
        _cleanup_(closedirp) DIR *d = NULL;
        int dfd, r;

        if (depth > WALK_DEPTH_MAX)
                return fail(w->ret_error, -ELOOP, "%s: directories nested too deeply", p);
        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0)
                return fail(w->ret_error, -errno, "%s: %m", p);
        d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return fail(w->ret_error, -errno, "%s: %m", p);
        }

        for (;;) {
                _cleanup_free_ char *child = NULL;
                struct dirent *de;
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno > 0)
                                return fail(w->ret_error, -errno, "reading directory %s: %m", p);
                        return 0;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return fail(w->ret_error, -errno, "%s/%s: %m", p, de->d_name);
                }
                child = path_join(p, de->d_name);
                if (!child)
                        return fail_oom(w->ret_error);
                if (strlen(child) >= PATH_MAX)
                        return fail(w->ret_error, -ENAMETOOLONG, "%.*s...: path too long", NAME_SHOWN, child);

                if (S_ISDIR(st.st_mode)) {
                        if (!w->group.recursive || excluded(w->excludes, w->n_excludes, child, true))
                                continue;
                        r = add_dir(w, dirfd(d), de->d_name, child, depth + 1);
                } else if (S_ISSOCK(st.st_mode) || !group_match(&w->group, child, false) ||
                           excluded(w->excludes, w->n_excludes, child, false))
                        continue;
                else
                        r = add_entry(w, dirfd(d), de->d_name, -EBADF, child, &st);
                if (r < 0)
                        return r;
        }
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

int store_add_files(Store *s, const char *source_root, const char *strip, const StoreFileGroup *group,
                    const StoreFileGroup *excludes, size_t n_excludes, uint64_t since_usec, char **ret_error) {
        _cleanup_free_ char *root = NULL, *strip_n = NULL, *gpath = NULL, *src = NULL;
        Walk w = { .s = s, .since_usec = since_usec, .ret_error = ret_error };
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

        r = add_parents(&w, gpath);
        if (r >= 0)
                r = S_ISDIR(st.st_mode) ? add_dir(&w, AT_FDCWD, src, gpath, 0)
                                        : add_entry(&w, AT_FDCWD, src, -EBADF, gpath, &st);
        /* Part of the group may be stored, or listed in the index without its data. */
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

/* ---- reading ---- */


void reader_close(Reader *r) {
        if (r->a)
                archive_read_free(r->a);
        if (r->e)
                archive_entry_free(r->e);
        if (r->links)
                archive_entry_linkresolver_free(r->links);
        *r = (Reader) {};
}

int reader_open(Store *s, Reader *r, char **ret_error) {
        _cleanup_free_ char *data = NULL;

        *r = (Reader) { .s = s };
        if (s->is_dir) {
                r->a = archive_read_disk_new();
                r->e = archive_entry_new();
                r->links = archive_entry_linkresolver_new();
                data = path_join(s->path, "data");
                if (!r->a || !r->e || !r->links || !data)
                        return fail_oom(ret_error);
                archive_entry_linkresolver_set_strategy(r->links, ARCHIVE_FORMAT_TAR);
                /* Reading the stored copies must not change their atimes, which are the data. */
                archive_read_disk_set_behavior(r->a, ARCHIVE_READDISK_RESTORE_ATIME);
                if (archive_read_disk_open(r->a, data) != ARCHIVE_OK)
                        return fail_archive(ret_error, r->a, "opening", data);
                r->skip = strlen(s->path) + 1;
                return 0;
        }

        /* Only tar, and only the compressions we write: nothing here runs external programs. */
        r->a = archive_read_new();
        if (!r->a)
                return fail_oom(ret_error);
        archive_read_support_format_tar(r->a);
        archive_read_support_filter_gzip(r->a);
        archive_read_support_filter_xz(r->a);
        archive_read_support_filter_zstd(r->a);
        if (archive_read_open_filename(r->a, s->path, 64 * 1024) != ARCHIVE_OK)
                return fail_archive(ret_error, r->a, "opening", s->path);
        return 0;
}

/* The next entry: 1 (*ret_kind says which; r->name holds the original path or document name,
 * r->target a hard link's target), 0 at the end. Names are checked here, for every reader. */
int reader_next(Reader *r, struct archive_entry **ret, EntryKind *ret_kind, char **ret_error) {
        for (;;) {
                struct archive_entry *e = r->e, *spare = NULL;
                const char *name, *hl, *sl;
                int k;

                if (r->s->is_dir) {
                        archive_entry_clear(e);
                        k = archive_read_next_header2(r->a, e);
                } else
                        k = archive_read_next_header(r->a, &e);
                if (k == ARCHIVE_EOF)
                        return 0;
                if (k != ARCHIVE_OK)
                        return fail_archive(ret_error, r->a, "reading", r->s->path);

                if (r->s->is_dir) {
                        _cleanup_free_ char *rel = NULL;

                        if (archive_entry_filetype(e) == AE_IFDIR)
                                archive_read_disk_descend(r->a);
                        name = archive_entry_pathname(e);
                        if (!name || strlen(name) < r->skip)
                                continue;
                        rel = strdup(name + r->skip);
                        if (!rel)
                                return fail_oom(ret_error);
                        archive_entry_copy_pathname(e, rel);
                        archive_entry_linkify(r->links, &e, &spare);
                        if (spare)
                                archive_entry_free(spare);
                }

                name = archive_entry_pathname(e);
                if (!name)
                        return fail(ret_error, -EBADMSG, "%s: an archive entry has no name", r->s->path);
                if (startswith(name, DOC_PREFIX)) {
                        const char *doc = name + strlen(DOC_PREFIX);
                        if (!document_name_ok(doc) || archive_entry_filetype(e) != AE_IFREG)
                                return fail(ret_error, -EBADMSG, "%s: unexpected entry '%.*s'", r->s->path,
                                            NAME_SHOWN, name);
                        strcpy(r->name, doc);
                        *ret_kind = ENTRY_DOCUMENT;
                        *ret = e;
                        return 1;
                }
                k = data_name_to_path(name, r->name);
                if (k < 0)
                        return fail(ret_error, -EBADMSG, "%s: archive entry '%.*s' has an unsafe or invalid name",
                                    r->s->path, NAME_SHOWN, name);
                if (k == 0)
                        continue;
                hl = archive_entry_hardlink(e);
                if (hl && data_name_to_path(hl, r->target) <= 0)
                        return fail(ret_error, -EBADMSG,
                                    "%s: archive entry '%.*s' is a hard link to '%.*s', outside the backup's data",
                                    r->s->path, NAME_SHOWN, name, NAME_SHOWN, hl);
                sl = archive_entry_symlink(e);
                if (sl && strnlen(sl, PATH_MAX) >= PATH_MAX)
                        return fail(ret_error, -EBADMSG, "%s: archive entry '%.*s' has a symlink target too long",
                                    r->s->path, NAME_SHOWN, name);
                if (r->s->is_dir)
                        store_set_entry_flags(r->s, r->name, e);
                *ret_kind = ENTRY_DATA;
                *ret = e;
                return 1;
        }
}

/* Sorted pointers into the NUL-separated index, each a normalized path. */
static int parse_index(Store *s, size_t len, char **ret_error) {
        size_t n = 0;

        if (len > 0 && s->index_blob[len - 1] != 0)
                return fail(ret_error, -EBADMSG, "%s: openvss/index is truncated", s->path);
        for (size_t i = 0; i < len; i++)
                n += s->index_blob[i] == 0;
        s->paths = calloc(n ? n : 1, sizeof *s->paths);
        if (!s->paths)
                return fail_oom(ret_error);
        for (char *p = s->index_blob; p < s->index_blob + len; p += strlen(p) + 1) {
                if (!path_is_normalized(p))
                        return fail(ret_error, -EBADMSG, "%s: openvss/index holds an invalid path '%.*s'", s->path,
                                    NAME_SHOWN, p);
                s->paths[s->n_paths++] = p;
        }
        qsort(s->paths, s->n_paths, sizeof *s->paths, cmp_strp);
        return 0;
}

/* Records of path, filespec, "1"|"0". */
static int parse_excludes(Store *s, size_t len, char **ret_error) {
        char *p = s->excludes_blob, *end = s->excludes_blob + len;

        if (len > 0 && end[-1] != 0)
                return fail(ret_error, -EBADMSG, "%s: openvss/excludes is truncated", s->path);
        while (p < end) {
                StoreFileGroup g = { .path = p }, *x;
                p += strlen(p) + 1;
                if (p >= end)
                        break;
                g.filespec = p;
                p += strlen(p) + 1;
                if (p >= end || !path_is_normalized(g.path) || (!streq(p, "0") && !streq(p, "1")))
                        return fail(ret_error, -EBADMSG, "%s: openvss/excludes is malformed", s->path);
                g.recursive = streq(p, "1");
                p += 2;
                x = reallocarray(s->excludes, s->n_excludes + 1, sizeof *x);
                if (!x)
                        return fail_oom(ret_error);
                s->excludes = x;
                s->excludes[s->n_excludes++] = g;
        }
        if (p != end)
                return fail(ret_error, -EBADMSG, "%s: openvss/excludes is malformed", s->path);
        return 0;
}

/* Reads an archive through once: the index and excludes, the document names, and every name
 * checked, so a truncated, corrupt or unsafe archive fails here rather than halfway through a
 * restore. */
/* Adds a copy of p to the tsearch set *set. */
static int set_add(void **set, const char *p) {
        char *copy = strdup(p);
        const void *n = copy ? tsearch(copy, set, cmp_str) : NULL;

        if (!n || *(char *const *) n != copy)
                free(copy);
        return n ? 0 : -ENOMEM;
}

/* A data entry against those before it: nothing may lie below a non-directory (a file, or a
 * symlink that writing through would follow), and a hard link must name an earlier file. So an
 * archive that would be refused halfway through a restore is refused before it starts. */
static int check_data_entry(Store *s, Reader *rd, struct archive_entry *e, void **nondirs, void **files,
                            char **ret_error) {
        char prefix[PATH_MAX];
        mode_t type = archive_entry_filetype(e);

        for (const char *c = strchr(rd->name + 1, '/'); c; c = strchr(c + 1, '/')) {
                memcpy(prefix, rd->name, (size_t) (c - rd->name));
                prefix[c - rd->name] = 0;
                const char *k = prefix;
                if (tfind(k, nondirs, cmp_str))
                        return fail(ret_error, -EBADMSG, "%s: archive entry 'data%.*s' lies below 'data%.*s', which is "
                                    "not a directory", s->path, NAME_SHOWN, rd->name, NAME_SHOWN, prefix);
        }
        if (archive_entry_hardlink(e) && !tfind(rd->target, files, cmp_str))
                return fail(ret_error, -EBADMSG, "%s: archive entry 'data%.*s' is a hard link to 'data%.*s', which is "
                            "no earlier file of the archive", s->path, NAME_SHOWN, rd->name, NAME_SHOWN, rd->target);
        if (type != AE_IFDIR && set_add(nondirs, rd->name) < 0)
                return fail_oom(ret_error);
        if (type == AE_IFREG && set_add(files, rd->name) < 0)
                return fail_oom(ret_error);
        return 0;
}

static int scan_archive(Store *s, size_t *ret_index_len, size_t *ret_excl_len, char **ret_error) {
        void *nondirs = NULL, *files = NULL;
        Reader rd;
        struct archive_entry *e;
        EntryKind kind;
        int r;

        r = reader_open(s, &rd, ret_error);
        while (r >= 0 && (r = reader_next(&rd, &e, &kind, ret_error)) > 0) {
                char *copy;
                const void *n;

                if (kind != ENTRY_DOCUMENT) {
                        /* Its data is read (and so checked) when the next header is. */
                        r = check_data_entry(s, &rd, e, &nondirs, &files, ret_error);
                        continue;
                }
                if (streq(rd.name, INDEX_NAME) && !s->index_blob)
                        r = read_entry_data(rd.a, e, STORE_INDEX_MAX, "openvss/index", &s->index_blob, ret_index_len,
                                            ret_error);
                else if (streq(rd.name, EXCLUDES_NAME) && !s->excludes_blob)
                        r = read_entry_data(rd.a, e, STORE_DOCUMENT_MAX, "openvss/excludes", &s->excludes_blob,
                                            ret_excl_len, ret_error);
                else if (document_name_reserved(rd.name))
                        r = fail(ret_error, -EBADMSG, "%s: openvss/%s is in the archive twice", s->path, rd.name);
                else {
                        copy = strdup(rd.name);
                        n = copy ? tsearch(copy, &s->docs, cmp_str) : NULL;
                        if (!n)
                                r = fail_oom(ret_error);
                        if (!n || *(char *const *) n != copy)
                                free(copy);
                }
        }
        reader_close(&rd);
        tdestroy(nondirs, free);
        tdestroy(files, free);
        if (r < 0)
                return r;
        if (!s->index_blob)
                return fail(ret_error, -EBADMSG,
                            "%s: no openvss/index: not an OpenVSS backup, or a truncated or unfinished one", s->path);
        return 0;
}

int store_open(const char *src, Store **ret, char **ret_error) {
        size_t n_index = 0, n_excl = 0;
        struct stat st;
        Store *s;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (isempty(src) || !ret)
                return fail(ret_error, -EINVAL, "no backup given");
        if (stat(src, &st) < 0)
                return fail(ret_error, -errno, "%s: %m", src);
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return fail(ret_error, -EBADMSG, "%s: neither a directory nor an archive file", src);

        s = store_new();
        if (!s)
                return fail_oom(ret_error);
        s->is_dir = S_ISDIR(st.st_mode);
        s->path = s->is_dir ? realpath(src, NULL) : strdup(src);
        if (!s->path)
                r = fail(ret_error, -errno, "%s: %m", src);
        else if (s->is_dir) {
                _cleanup_free_ char *docs = path_join(s->path, "openvss");
                if (!docs)
                        r = fail_oom(ret_error);
                else if (!file_exists_at(docs, INDEX_NAME))
                        r = fail(ret_error, -EBADMSG, "%s: no openvss/index: not an OpenVSS backup, or an unfinished one",
                                 s->path);
                else {
                        r = read_file_at(docs, INDEX_NAME, STORE_INDEX_MAX, "openvss/index", &s->index_blob, &n_index,
                                         ret_error);
                        if (r >= 0 && file_exists_at(docs, EXCLUDES_NAME))
                                r = read_file_at(docs, EXCLUDES_NAME, STORE_DOCUMENT_MAX, "openvss/excludes",
                                                 &s->excludes_blob, &n_excl, ret_error);
                        if (r >= 0 && file_exists_at(docs, FLAGS_NAME)) {
                                size_t n_flags = 0;
                                r = read_file_at(docs, FLAGS_NAME, STORE_INDEX_MAX, "openvss/fflags", &s->flags_blob,
                                                 &n_flags, ret_error);
                                if (r >= 0)
                                        r = store_parse_flags(s, n_flags, ret_error);
                        }
                }
        } else
                r = scan_archive(s, &n_index, &n_excl, ret_error);
        if (r >= 0)
                r = parse_index(s, n_index, ret_error);
        if (r >= 0 && s->excludes_blob)
                r = parse_excludes(s, n_excl, ret_error);
        if (r < 0) {
                store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int store_get_document(Store *s, const char *name, size_t max, char **ret_data, size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *what = NULL;
        struct archive_entry *e;
        EntryKind kind;
        Reader rd;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s || s->writing)
                return fail(ret_error, -EBADF, "the backup is not open for reading");
        if (!document_name_ok(name))
                return fail(ret_error, -EINVAL, "invalid document name '%.*s'", NAME_SHOWN, strempty(name));
        if (asprintf(&what, "document %s", name) < 0)
                return fail_oom(ret_error);

        if (s->is_dir) {
                _cleanup_free_ char *docs = path_join(s->path, "openvss");
                size_t len;
                if (!docs)
                        return fail_oom(ret_error);
                if (!file_exists_at(docs, name))
                        return fail(ret_error, -ENOENT, "%s is not in the backup", what);
                r = read_file_at(docs, name, max, what, ret_data, &len, ret_error);
                if (r >= 0 && ret_len)
                        *ret_len = len;
                return r;
        }

        if (!document_name_reserved(name) && !tfind(name, &s->docs, cmp_str))
                return fail(ret_error, -ENOENT, "%s is not in the backup", what);
        r = reader_open(s, &rd, ret_error);
        while (r >= 0 && (r = reader_next(&rd, &e, &kind, ret_error)) > 0)
                if (kind == ENTRY_DOCUMENT && streq(rd.name, name)) {
                        size_t len;
                        r = read_entry_data(rd.a, e, max, what, ret_data, &len, ret_error);
                        if (r >= 0 && ret_len)
                                *ret_len = len;
                        reader_close(&rd);
                        return r;
                }
        reader_close(&rd);
        return r < 0 ? r : fail(ret_error, -ENOENT, "%s is not in the backup", what);
}

void store_close(Store *s) {
        if (s && s->writing)
                store_abort(s);
        else
                store_free(s);
}
