/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * What a backup keeps beyond what libarchive's disk writer puts back by itself: chattr attributes
 * (file flags) and the warnings about metadata a target filesystem could not hold.
 *
 * Flags are never set while writing: an immutable file in a directory store could not be
 * deleted with the backup, and an immutable or append-only file in a restore's staging
 * directory could not be moved into place. So a directory store lists them in openvss/fflags
 * (records: original path NUL flags in hex NUL), a tar archive carries them in its entries
 * (SCHILY.fflags), and a restore sets them in a last pass, after everything was moved.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "providers/file/meta.h"
#include "tools/beneath.h"
#include "tools/store-internal.h"

void store_set_warning(Store *s, store_warning_fn fn, void *userdata) {
        if (!s)
                return;
        s->warning = fn;
        s->warning_userdata = userdata;
}

void store_set_boundary(Store *s, store_boundary_fn fn, void *userdata) {
        if (!s)
                return;
        s->boundary = fn;
        s->boundary_userdata = userdata;
}

void store_warn(Store *s, const char *path, const char *what, const char *error) {
        s->n_warnings++;
        if (s->warning)
                s->warning(path, what, error, s->warning_userdata);
}

/* libarchive's disk writer returns ARCHIVE_WARN both for metadata it could not set and for
 * other trouble. xattrs and ACLs a filesystem refuses are warnings; anything else stays an error. */
bool store_warn_archive(Store *s, struct archive *a, int k, const char *path) {
        const char *m = archive_error_string(a);

        if (k != ARCHIVE_WARN || !m || (!strcasestr(m, "attribute") && !strcasestr(m, "acl")))
                return false;
        store_warn(s, path, strcasestr(m, "acl") ? "ACL" : "xattrs", m);
        return true;
}

unsigned store_entry_flags(struct archive_entry *e) {
        unsigned long set = 0, clear = 0;

        archive_entry_fflags(e, &set, &clear);
        return (unsigned) set & META_FLAGS_COPIED;
}

int store_note_flags(Store *s, const char *p, struct archive_entry *e) {
        unsigned flags = store_entry_flags(e);

        if (flags == 0 || !s->is_dir)
                return 0;
        if (!s->flags_out) {
                s->flags_out = open_memstream(&s->flags_buf, &s->flags_len);
                if (!s->flags_out)
                        return -ENOMEM;
        }
        return fprintf(s->flags_out, "%s%c%x%c", p, 0, flags, 0) < 0 ? -ENOMEM : 0;
}

int store_flags_document(Store *s, const char **ret, size_t *ret_len) {
        *ret = NULL;
        *ret_len = 0;
        if (!s->flags_out)
                return 0;
        if (fclose(s->flags_out) < 0) {
                s->flags_out = NULL;
                return -ENOMEM;
        }
        s->flags_out = NULL;
        *ret = s->flags_buf;
        *ret_len = s->flags_len;
        return 0;
}

static int cmp_flag(const void *a, const void *b) {
        return strcmp(((const StoreFlag *) a)->path, ((const StoreFlag *) b)->path);
}

int store_parse_flags(Store *s, size_t len, char **ret_error) {
        char *p = s->flags_blob, *end = s->flags_blob + len;

        while (p < end) {
                char *path = p, *hex, *q = memchr(p, 0, (size_t) (end - p)), *tail;
                unsigned long v;
                StoreFlag *n;

                if (!q || q + 1 >= end || !(tail = memchr(q + 1, 0, (size_t) (end - q - 1))))
                        return fail(ret_error, -EBADMSG, "%s: openvss/fflags is malformed", s->path);
                hex = q + 1;
                errno = 0;
                v = strtoul(hex, &q, 16);
                if (errno || q != tail || *path != '/')
                        return fail(ret_error, -EBADMSG, "%s: openvss/fflags is malformed", s->path);
                n = reallocarray(s->flags, s->n_flags + 1, sizeof *n);
                if (!n)
                        return fail_oom(ret_error);
                s->flags = n;
                s->flags[s->n_flags++] = (StoreFlag) { .path = path, .flags = (unsigned) v & META_FLAGS_COPIED };
                p = tail + 1;
        }
        if (s->n_flags > 0)
                qsort(s->flags, s->n_flags, sizeof *s->flags, cmp_flag);
        return 0;
}

void store_set_entry_flags(Store *s, const char *p, struct archive_entry *e) {
        StoreFlag key = { .path = p }, *f;

        /* A directory store's copies carry the flags of the store's filesystem, not the original's. */
        f = s->n_flags > 0 ? bsearch(&key, s->flags, s->n_flags, sizeof *s->flags, cmp_flag) : NULL;
        archive_entry_set_fflags(e, f ? f->flags : 0, 0);
}

int flags_pending_add(FlagsPending *fp, size_t rule, int dirfd, const char *rel, unsigned flags) {
        FlagsPendingItem *n;
        struct stat st;

        if (flags == 0)
                return 0;
        if (fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
                return 0; /* no flags elsewhere */
        n = reallocarray(fp->items, fp->n + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        fp->items = n;
        n[fp->n] = (FlagsPendingItem) { .rule = rule, .dev = st.st_dev, .ino = st.st_ino, .flags = flags, .rel = strdup(rel) };
        if (!n[fp->n++].rel)
                return -ENOMEM;
        return 0;
}

typedef struct FlagLost {
        Store *s;
        const char *path;
} FlagLost;

static void flag_lost(const char *path, const char *what, int error, void *userdata) {
        const FlagLost *l = userdata;
        store_warn(l->s, l->path, what, strerror(error));
}

void flags_pending_apply(Store *s, FlagsPending *fp, size_t rule, int dirfd, const char *shown) {
        /* Backwards: children before their directories, which may become immutable. */
        for (size_t j = fp->n; j-- > 0;) {
                FlagsPendingItem *it = &fp->items[j];
                _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
                _cleanup_free_ char *path = NULL;
                MetaReport report;
                struct stat st;
                char what[40], letters[40], proc[64];
                int r;

                if (it->rule != rule)
                        continue;
                path = path_join(shown, it->rel);
                /* Looked at (O_PATH) before it is opened: a device node swapped in is never opened.
                 * Not the inode we wrote (an existing file kept with no_overwrite): not ours to flag. */
                pfd = beneath_open(dirfd, it->rel, O_PATH | O_NOFOLLOW, 0);
                if (pfd < 0 || fstat(pfd, &st) < 0 || st.st_dev != it->dev || st.st_ino != it->ino)
                        continue;
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
                fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0) {
                        store_warn(s, path ? path : it->rel, "flags", strerror(errno));
                        continue;
                }
                report = (MetaReport) { .lost = flag_lost, .userdata = &(FlagLost) { s, path ? path : it->rel } };
                r = meta_apply_flags_last(fd, it->flags, -EBADF, NULL, &report);
                if (r < 0) {
                        snprintf(what, sizeof(what), "flags +%s", meta_flags_string(it->flags, letters));
                        store_warn(s, path ? path : it->rel, what, strerror(-r));
                }
        }
}

void flags_pending_free(FlagsPending *fp) {
        for (size_t j = 0; j < fp->n; j++)
                free(fp->items[j].rel);
        free(fp->items);
        *fp = (FlagsPending) {};
}
