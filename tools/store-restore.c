/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/common.h"
#include "tools/beneath.h"
#include "tools/store-internal.h"

/* ---- restore ---- */

typedef struct Restored {
        char *orig; /* first: the tsearch key */
        char *dest;
} Restored;

typedef struct Orphan {
        char *target; /* original path of the data this hard link needs */
        char *dest;
        bool done;
} Orphan;

typedef struct Restore {
        Store *s;
        const StoreRestoreRule *rules;
        size_t n_rules;
        StoreFileGroup *from;  /* the rules' groups, normalized */
        char **roots;          /* where each rule's from.path goes, resolved */
        struct archive *disk;
        void *restored;        /* tsearch of Restored: hard link targets put back so far */
        Orphan *orphans;       /* hard links whose target was not put back (no rule took it) */
        size_t n_orphans;
        int count;
        char **ret_error;
} Restore;

static int cmp_restored(const void *a, const void *b) {
        return strcmp(((const Restored *) a)->orig, ((const Restored *) b)->orig);
}

static void restored_free(void *p) {
        Restored *t = p;
        free(t->orig);
        free(t->dest);
        free(t);
}

static int remember_restored(Restore *rs, const char *orig, const char *dest) {
        Restored *t = calloc(1, sizeof *t);
        const void *n;

        if (!t || !(t->orig = strdup(orig)) || !(t->dest = strdup(dest))) {
                if (t)
                        restored_free(t);
                return -ENOMEM;
        }
        n = tsearch(t, &rs->restored, cmp_restored);
        if (!n || *(Restored *const *) n != t)
                restored_free(t); /* a name twice in the archive: the first one stays */
        return n ? 0 : -ENOMEM;
}

static const char *find_restored(Restore *rs, const char *orig) {
        Restored key = { .orig = (char *) orig };
        Restored *const *n = tfind(&key, &rs->restored, cmp_restored);
        return n ? (*n)->dest : NULL;
}

/* Writes the current entry at dest. A hard link entry must already point at its destination. */
static int write_entry(Restore *rs, Reader *rd, struct archive_entry *e, const char *dest, bool no_overwrite) {
        bool is_dir = archive_entry_filetype(e) == AE_IFDIR, hardlink = archive_entry_hardlink(e) != NULL;
        Store *s = rs->s;
        int r;

        archive_entry_copy_pathname(e, dest);
        archive_write_disk_set_options(rs->disk,
                                       disk_flags(RESTORE_FLAGS) | (no_overwrite ? ARCHIVE_EXTRACT_NO_OVERWRITE : 0));
        if (hardlink)
                archive_entry_unset_size(e); /* links carry no data: nothing is written through them */
        if (archive_write_header(rs->disk, e) != ARCHIVE_OK)
                return fail_archive(rs->ret_error, rs->disk, "restoring", dest);
        if (!hardlink && archive_entry_filetype(e) == AE_IFREG)
                for (;;) {
                        const void *buf;
                        size_t len;
                        la_int64_t off;

                        r = archive_read_data_block(rd->a, &buf, &len, &off);
                        if (r == ARCHIVE_EOF)
                                break;
                        if (r != ARCHIVE_OK)
                                return fail_archive(rs->ret_error, rd->a, "reading", s->path);
                        if (archive_write_data_block(rs->disk, buf, len, off) != ARCHIVE_OK)
                                return fail_archive(rs->ret_error, rs->disk, "restoring", dest);
                        s->bytes += len;
                }
        if (archive_write_finish_entry(rs->disk) != ARCHIVE_OK)
                return fail_archive(rs->ret_error, rs->disk, "restoring", dest);

        if (is_dir)
                return 0;
        rs->count++;
        s->files++;
        progress(s, dest);
        if (!hardlink && archive_entry_nlink(e) != 1 && remember_restored(rs, rd->name, dest) < 0)
                return fail_oom(rs->ret_error);
        return 0;
}

/* Whether p is a parent directory of a rule's from.path restored in place. */
static bool is_parent_in_place(const Restore *rs, const char *p) {
        for (size_t i = 0; i < rs->n_rules; i++) {
                const char *rest = rs->rules[i].to ? NULL : path_under(rs->from[i].path, p);
                if (rest && *rest)
                        return true;
        }
        return false;
}

static int restore_entry(Restore *rs, Reader *rd, struct archive_entry *e) {
        bool is_dir = archive_entry_filetype(e) == AE_IFDIR, no_overwrite = false;
        _cleanup_free_ char *dest = NULL;
        const char *p = rd->name;
        struct stat st;
        size_t i;

        for (i = 0; i < rs->n_rules; i++)
                if (group_match(&rs->from[i], p, is_dir))
                        break;
        if (i < rs->n_rules) {
                dest = path_join(rs->roots[i], path_under(p, rs->from[i].path));
                if (!dest)
                        return fail_oom(rs->ret_error);
                no_overwrite = rs->rules[i].no_overwrite;
                /* Checked here too: write_disk would still apply the entry's metadata to what is there. */
                if (no_overwrite && lstat(dest, &st) >= 0)
                        return 0;
        } else if (is_dir && is_parent_in_place(rs, p)) {
                /* A missing parent of an in-place restore comes back with its metadata; an existing
                 * one is left alone. */
                int r = path_resolve(p, &dest);
                if (r < 0)
                        return fail(rs->ret_error, r, "%s: %s", p, strerror(-r));
                if (lstat(dest, &st) >= 0)
                        return 0;
        } else
                return 0;

        if (strlen(dest) >= PATH_MAX)
                return fail(rs->ret_error, -ENAMETOOLONG, "%.*s...: path too long", NAME_SHOWN, dest);
        if (archive_entry_hardlink(e)) {
                const char *t = find_restored(rs, rd->target);
                if (!t) {
                        /* Its data went elsewhere or nowhere: fetched in a second pass. */
                        Orphan *o = reallocarray(rs->orphans, rs->n_orphans + 1, sizeof *o);
                        if (!o)
                                return fail_oom(rs->ret_error);
                        rs->orphans = o;
                        o[rs->n_orphans] = (Orphan) { .target = strdup(rd->target), .dest = TAKE_PTR(dest) };
                        if (!o[rs->n_orphans++].target)
                                return fail_oom(rs->ret_error);
                        return 0;
                }
                archive_entry_copy_hardlink(e, t);
        }
        return write_entry(rs, rd, e, dest, no_overwrite);
}

/* Hard links whose data no rule restored: the data goes to the first of them, the others link to it. */
static int restore_orphans(Restore *rs) {
        struct archive_entry *e;
        EntryKind kind;
        Reader rd;
        int r;

        if (rs->n_orphans == 0)
                return 0;
        r = reader_open(rs->s, &rd, rs->ret_error);
        while (r >= 0 && (r = reader_next(&rd, &e, &kind, rs->ret_error)) > 0) {
                const char *first = NULL;

                if (kind != ENTRY_DATA || archive_entry_hardlink(e))
                        continue;
                for (size_t i = 0; i < rs->n_orphans && r >= 0; i++) {
                        Orphan *o = &rs->orphans[i];
                        if (o->done || !streq(o->target, rd.name))
                                continue;
                        if (first)
                                archive_entry_copy_hardlink(e, first);
                        r = write_entry(rs, &rd, e, o->dest, false);
                        o->done = true;
                        if (!first)
                                first = o->dest;
                }
        }
        reader_close(&rd);
        if (r < 0)
                return r;
        for (size_t i = 0; i < rs->n_orphans; i++)
                if (!rs->orphans[i].done)
                        return fail(rs->ret_error, -EBADMSG, "%s: hard link %s: its target %s is not in the backup",
                                    rs->s->path, rs->orphans[i].dest, rs->orphans[i].target);
        return 0;
}

static int prune_dir(Restore *rs, size_t i, int fd, const char *orig, dev_t dev, unsigned depth) {
        _cleanup_(closedirp) DIR *d = NULL;
        const StoreFileGroup *g = &rs->from[i];
        Store *s = rs->s;
        int dfd, r;

        if (depth > WALK_DEPTH_MAX)
                return fail(rs->ret_error, -ELOOP, "%s: directories nested too deeply", orig);
        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0 || !(d = fdopendir(dfd))) {
                if (dfd >= 0)
                        close(dfd);
                return fail(rs->ret_error, -errno, "pruning %s: %m", rs->roots[i]);
        }
        for (;;) {
                _cleanup_free_ char *child = NULL;
                struct dirent *de;
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de)
                        return errno > 0 ? fail(rs->ret_error, -errno, "pruning %s: %m", rs->roots[i]) : 0;
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                child = path_join(orig, de->d_name);
                if (!child)
                        return fail_oom(rs->ret_error);
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int cfd = -EBADF;
                        if (!g->recursive || st.st_dev != dev)
                                continue;
                        cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (cfd < 0)
                                continue;
                        r = prune_dir(rs, i, cfd, child, dev, depth + 1);
                        if (r < 0)
                                return r;
                } else if (group_match(g, child, false) && !store_index_has(s, child) &&
                           !excluded(s->excludes, s->n_excludes, child, false) &&
                           unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
                        return fail(rs->ret_error, -errno, "pruning %s/%s: %m", rs->roots[i], de->d_name);
        }
}

static int prune(Restore *rs, size_t i) {
        _cleanup_close_ int fd = -EBADF;
        const char *orig = rs->from[i].path;
        Store *s = rs->s;
        struct stat st;

        if (lstat(rs->roots[i], &st) < 0)
                return errno == ENOENT ? 0 : fail(rs->ret_error, -errno, "pruning %s: %m", rs->roots[i]);
        if (!S_ISDIR(st.st_mode)) {
                if (!store_index_has(s, orig) && !excluded(s->excludes, s->n_excludes, orig, false) &&
                    unlink(rs->roots[i]) < 0 && errno != ENOENT)
                        return fail(rs->ret_error, -errno, "pruning %s: %m", rs->roots[i]);
                return 0;
        }
        fd = open(rs->roots[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return fail(rs->ret_error, -errno, "pruning %s: %m", rs->roots[i]);
        return prune_dir(rs, i, fd, orig, st.st_dev, 0);
}

/* to: resolved (symlinks in it are the caller's choice). In place: only the parent is, so that
 * from.path itself and all below are checked by write_disk's symlink guard. */
static int rule_root(const char *from, const char *to, char **ret) {
        _cleanup_free_ char *parent = NULL, *real = NULL;
        char *slash;
        int r;

        if (to || streq(from, "/"))
                return path_resolve(to ? to : from, ret);
        parent = strdup(from);
        if (!parent)
                return -ENOMEM;
        slash = strrchr(parent, '/');
        slash[slash == parent] = 0;
        r = path_resolve(parent, &real);
        if (r < 0)
                return r;
        *ret = path_join(real, strrchr(from, '/') + 1);
        return *ret ? 0 : -ENOMEM;
}

static int restore(Restore *rs, bool prune_after) {
        struct archive_entry *e;
        EntryKind kind;
        Reader rd;
        struct stat st;
        int r;

        for (size_t i = 0; i < rs->n_rules; i++) {
                _cleanup_free_ char *to = NULL;
                const StoreRestoreRule *rule = &rs->rules[i];

                if (path_normalize(rule->from.path, (char **) &rs->from[i].path) < 0)
                        return fail(rs->ret_error, -EINVAL, "invalid restore path '%.*s'", NAME_SHOWN,
                                    strempty(rule->from.path));
                rs->from[i].filespec = rule->from.filespec;
                rs->from[i].recursive = rule->from.recursive;
                if (rule->to && path_normalize(rule->to, &to) < 0)
                        return fail(rs->ret_error, -EINVAL, "invalid restore destination '%.*s'", NAME_SHOWN, rule->to);
                r = rule_root(rs->from[i].path, to, &rs->roots[i]);
                if (r < 0)
                        return fail(rs->ret_error, r, "restore destination %s: %s", to ? to : rs->from[i].path,
                                    strerror(-r));
        }

        rs->disk = archive_write_disk_new();
        if (!rs->disk)
                return fail_oom(rs->ret_error);
        /* An archive inside a destination is not overwritten by itself. */
        if (!rs->s->is_dir && stat(rs->s->path, &st) >= 0)
                archive_write_disk_set_skip_file(rs->disk, st.st_dev, st.st_ino);

        r = reader_open(rs->s, &rd, rs->ret_error);
        while (r >= 0 && (r = reader_next(&rd, &e, &kind, rs->ret_error)) > 0)
                if (kind == ENTRY_DATA)
                        r = restore_entry(rs, &rd, e);
        reader_close(&rd);
        if (r >= 0)
                r = restore_orphans(rs);
        /* Before closing: that sets the directories' times, which removing files would change. */
        for (size_t i = 0; r >= 0 && prune_after && i < rs->n_rules; i++)
                r = prune(rs, i);
        if (archive_write_close(rs->disk) != ARCHIVE_OK && r >= 0)
                r = fail_archive(rs->ret_error, rs->disk, "finishing restore of", rs->s->path);
        return r < 0 ? r : rs->count;
}

int store_restore(Store *s, const StoreRestoreRule *rules, size_t n_rules, bool prune_after, char **ret_error) {
        Restore rs = { .s = s, .rules = rules, .n_rules = n_rules, .ret_error = ret_error };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s || s->writing)
                return fail(ret_error, -EBADF, "the backup is not open for reading");
        if (n_rules > 0 && !rules)
                return fail(ret_error, -EINVAL, "no restore rules given");

        rs.from = calloc(n_rules + 1, sizeof *rs.from);
        rs.roots = calloc(n_rules + 1, sizeof *rs.roots);
        s->files = s->bytes = 0;
        r = rs.from && rs.roots ? restore(&rs, prune_after) : fail_oom(ret_error);

        if (rs.disk)
                archive_write_free(rs.disk);
        tdestroy(rs.restored, restored_free);
        for (size_t i = 0; i < rs.n_orphans; i++) {
                free(rs.orphans[i].target);
                free(rs.orphans[i].dest);
        }
        free(rs.orphans);
        for (size_t i = 0; i < n_rules; i++) {
                if (rs.from)
                        free((char *) rs.from[i].path);
                if (rs.roots)
                        free(rs.roots[i]);
        }
        free(rs.from);
        free(rs.roots);
        return r;
}
