/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The Store object and what writing and reading share: names, paths, file groups. */

#include <archive.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/common.h"
#include "tools/store-internal.h"

/* Like tar: only root restores ownership; others get their own instead of a failure. */
int disk_flags(int flags) {
        return geteuid() == 0 ? flags : flags & ~ARCHIVE_EXTRACT_OWNER;
}


int fail_archive(char **ret_error, struct archive *a, const char *what, const char *path) {
        const char *m = archive_error_string(a);
        int e = archive_errno(a);

        /* libarchive's "file format" errno is EILSEQ: a damaged archive is a bad message to us. */
        if (e == EILSEQ)
                e = EBADMSG;
        return fail(ret_error, e > 0 ? -e : -EIO, "%s %.*s: %s", what, NAME_SHOWN, path, m ? m : "unknown error");
}

int cmp_str(const void *a, const void *b) {
        return strcmp(a, b);
}
int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}
static void free_nothing(void *p) {
}

/* ---- paths ---- */

/* Absolute, no empty, "." or ".." components, no trailing '/' (except "/"), shorter than PATH_MAX:
 * what path_normalize() makes of it is itself. */
bool path_is_normalized(const char *p) {
        char buf[PATH_MAX];

        return p && path_normalize(p, buf, sizeof buf) >= 0 && streq(buf, p);
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

bool filespec_all(const char *f) {
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

bool store_dir_excluded(const StoreFileGroup *x, size_t n, const char *dir) {
        return excluded(x, n, dir, true);
}

bool document_name_ok(const char *name) {
        size_t n = name ? strnlen(name, STORE_NAME_MAX + 1) : 0;

        return n > 0 && n <= STORE_NAME_MAX && !streq(name, ".") && !streq(name, "..") &&
               strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

bool document_name_reserved(const char *name) {
        return streq(name, INDEX_NAME) || streq(name, EXCLUDES_NAME) || streq(name, FLAGS_NAME);
}

/* ---- the Store object ---- */

Store *store_new(void) {
        Store *s = calloc(1, sizeof *s);

        if (s) {
                s->fd = s->src_fd = -EBADF;
                s->read_uid = -1;
        }
        return s;
}

void store_free(Store *s) {
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
        if (s->src_fd >= 0)
                close(s->src_fd);
        free(s->src);
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

void store_set_base(Store *s, Store *base) {
        s->base = base;
}

bool store_index_has(Store *s, const char *path) {
        if (!s || !path)
                return false;
        if (s->writing)
                return tfind(path, &s->seen, cmp_str) != NULL;
        return s->n_paths > 0 && bsearch(&path, s->paths, s->n_paths, sizeof *s->paths, cmp_strp) != NULL;
}

bool store_index_has_below(Store *s, const char *dir) {
        char prefix[PATH_MAX + 1];
        if (!s || s->writing || !dir)
                return false;
        size_t lo = 0, hi = s->n_paths;
        int n = snprintf(prefix, sizeof(prefix), "%s/", streq(dir, "/") ? "" : dir);
        if (n < 0 || (size_t) n >= sizeof(prefix))
                return false;
        /* The first path not before the prefix: those below dir sort together from there. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(s->paths[mid], prefix) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < s->n_paths && strncmp(s->paths[lo], prefix, (size_t) n) == 0 && s->paths[lo][n] != 0;
}

const char *store_source(Store *s) {
        return s ? s->src : NULL;
}

void store_close(Store *s) {
        if (s && s->writing)
                store_abort(s);
        else
                store_free(s);
}
