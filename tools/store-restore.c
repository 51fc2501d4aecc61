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
        size_t rule;
        char *rel;  /* where it went, relative to the rule's staging directory */
} Restored;

typedef struct Orphan {
        char *target; /* original path of the data this hard link needs */
        size_t rule;
        char *rel;
        bool done;
} Orphan;

/* Where one rule's files go: the deepest existing directory of its destination, what lies below
 * it, and the staging directory they are written into first. */
typedef struct Dest {
        int e_fd;             /* the deepest existing directory (O_PATH) */
        char *shown;          /* its path, for messages */
        char *rest;           /* the destination relative to it; "" when it is the destination */
        char *root_shown;     /* the destination's path, for messages */
        char *orig_e;         /* in place: the original path e_fd stands for (missing parents); else NULL */
        char staging[64];
        int s_fd;             /* the staging directory (O_PATH), -EBADF before it is made */
        struct archive *disk; /* writes into the staging directory, relative to it as the cwd */
        uint64_t staged;      /* non-directory entries written there */
} Dest;

typedef struct Restore {
        Store *s;
        const StoreRestoreRule *rules;
        size_t n_rules;
        StoreFileGroup *from;  /* the rules' groups, normalized */
        Dest *dests;
        int cwd;               /* the working directory to go back to */
        void *restored;        /* tsearch of Restored: hard link targets put back so far */
        Orphan *orphans;       /* hard links whose target was not put back (no rule took it) */
        size_t n_orphans;
        int count;
        FlagsPending flags;    /* file flags, set after the move into place */
        char **ret_error;
} Restore;

static int cmp_restored(const void *a, const void *b) {
        return strcmp(((const Restored *) a)->orig, ((const Restored *) b)->orig);
}

static void restored_free(void *p) {
        Restored *t = p;
        free(t->orig);
        free(t->rel);
        free(t);
}

static int remember_restored(Restore *rs, const char *orig, size_t rule, const char *rel) {
        Restored *t = calloc(1, sizeof *t);
        const void *n;

        if (!t || !(t->orig = strdup(orig)) || !(t->rel = strdup(rel))) {
                if (t)
                        restored_free(t);
                return -ENOMEM;
        }
        t->rule = rule;
        n = tsearch(t, &rs->restored, cmp_restored);
        if (!n || *(Restored *const *) n != t)
                restored_free(t); /* a name twice in the archive: the first one stays */
        return n ? 0 : -ENOMEM;
}

static const Restored *find_restored(Restore *rs, const char *orig) {
        Restored key = { .orig = (char *) orig };
        Restored *const *n = tfind(&key, &rs->restored, cmp_restored);
        return n ? *n : NULL;
}

/* libarchive's writer resolves the relative names from the cwd: the rule's staging directory
 * while it writes. Its directory reader (a directory store) walks with fchdir() too, so the cwd
 * it left goes back before each read. */
static int enter_staging(Restore *rs, size_t i, int *ret_back) {
        *ret_back = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (*ret_back < 0 || fchdir(rs->dests[i].s_fd) < 0)
                return fail(rs->ret_error, -errno, "restoring into %s: %m", rs->dests[i].shown);
        return 0;
}

static int leave_staging(Restore *rs, int *back) {
        int r = fchdir(*back) < 0 ? fail(rs->ret_error, -errno, "cannot return to the working directory: %m") : 0;
        close(*back);
        *back = -EBADF;
        return r;
}

/* The header of e (e not NULL), or the end of the current entry, written into rule i's staging
 * directory (shown: where it goes, for messages). */
static int staged_write(Restore *rs, size_t i, struct archive_entry *e, const char *shown) {
        struct archive *disk = rs->dests[i].disk;
        int back = -EBADF, r;

        r = enter_staging(rs, i, &back);
        if (r >= 0) {
                int k = e ? archive_write_header(disk, e) : archive_write_finish_entry(disk);
                if (k != ARCHIVE_OK && !store_warn_archive(rs->s, disk, k, shown))
                        r = fail_archive(rs->ret_error, disk, "restoring", shown);
        }
        if (back >= 0 && leave_staging(rs, &back) < 0 && r >= 0)
                r = -EIO;
        return r;
}

static bool xattr_privileged(const char *name) {
        return startswith(name, "security.") || startswith(name, "trusted.");
}

/* A backup a user could have written gives no privilege back (see store.h): e changed so. */
static int entry_untrust(Restore *rs, const StoreRestoreRule *rule, struct archive_entry *e, const char *shown) {
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFCHR || type == AE_IFBLK)
                return fail(rs->ret_error, -EPERM,
                            "%s: a device node, in a backup a user could have written: not restored", shown);
        if (type != AE_IFDIR)
                archive_entry_set_perm(e, archive_entry_perm(e) & ~(mode_t) (S_ISUID | S_ISGID));
        if (rule->content_uid >= 0)
                archive_entry_set_uid(e, rule->content_uid);
        if (rule->content_gid >= 0)
                archive_entry_set_gid(e, rule->content_gid);
        /* Only the user's own namespaces: security.* holds file capabilities, trusted.* is root's. */
        const char *name;
        const void *value;
        size_t size;
        bool privileged = false;
        archive_entry_xattr_reset(e);
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
                privileged = privileged || xattr_privileged(name);
        if (!privileged)
                return 0;
        struct archive_entry *all = archive_entry_clone(e);
        if (!all)
                return fail_oom(rs->ret_error);
        archive_entry_xattr_clear(e);
        archive_entry_xattr_reset(all);
        while (archive_entry_xattr_next(all, &name, &value, &size) == ARCHIVE_OK)
                if (!xattr_privileged(name))
                        archive_entry_xattr_add_entry(e, name, value, size);
        archive_entry_free(all);
        return 0;
}

/* A copy put elsewhere that would lead back into the originals (rule->links_back): refused. */
static int entry_link_back(Restore *rs, const StoreRestoreRule *rule, struct archive_entry *e, const char *shown) {
        const char *target = archive_entry_filetype(e) == AE_IFLNK ? archive_entry_symlink(e) : NULL;
        char t[PATH_MAX], o[PATH_MAX];
        if (!target || path_normalize(target, t, sizeof(t)) < 0)
                return 0; /* relative: it goes where the copy goes */
        for (const char *const *p = rule->links_back; *p; p++)
                if (path_normalize(*p, o, sizeof(o)) >= 0 && path_within(t, o))
                        return fail(rs->ret_error, -ENOLINK,
                                    "%s would be a symlink to %s, the original place of files this restore puts "
                                    "elsewhere: the copy would use (and write into) the live files, not its own",
                                    shown, target);
        return 0;
}

/* Writes the current entry at rel in rule i's staging directory. A hard link entry must already
 * point at its target there. */
static int write_entry(Restore *rs, Reader *rd, struct archive_entry *e, size_t i, const char *rel) {
        bool is_dir = archive_entry_filetype(e) == AE_IFDIR, hardlink = archive_entry_hardlink(e) != NULL;
        Dest *d = &rs->dests[i];
        Store *s = rs->s;
        _cleanup_free_ char *shown = path_join(d->shown, rel);
        int r;

        if (!shown)
                return fail_oom(rs->ret_error);
        if (rs->rules[i].untrusted && (r = entry_untrust(rs, &rs->rules[i], e, shown)) < 0)
                return r;
        if (rs->rules[i].links_back && (r = entry_link_back(rs, &rs->rules[i], e, shown)) < 0)
                return r;
        archive_entry_copy_pathname(e, rel);
        if (hardlink)
                archive_entry_unset_size(e); /* links carry no data: nothing is written through them */
        r = staged_write(rs, i, e, shown);
        if (r < 0)
                return r;
        if (!hardlink && archive_entry_filetype(e) == AE_IFREG)
                for (;;) {
                        const void *buf;
                        size_t len;
                        la_int64_t off;

                        r = reader_data_block(rd, &buf, &len, &off);
                        if (r == ARCHIVE_EOF)
                                break;
                        if (r != ARCHIVE_OK)
                                return fail_archive(rs->ret_error, rd->a, "reading", s->path);
                        if (archive_write_data_block(d->disk, buf, len, off) != ARCHIVE_OK)
                                return fail_archive(rs->ret_error, d->disk, "restoring", shown);
                        s->bytes += len;
                }
        r = staged_write(rs, i, NULL, shown);
        if (r < 0)
                return r;
        if (!hardlink && !rs->rules[i].untrusted) {
                r = flags_pending_add(&rs->flags, i, d->s_fd, rel, store_entry_flags(e));
                if (r < 0)
                        return fail(rs->ret_error, r, "restoring %s: %s", shown, strerror(-r));
        }

        if (is_dir)
                return 0;
        d->staged++;
        s->files++;
        progress(s, shown);
        if (!hardlink && archive_entry_nlink(e) != 1 && remember_restored(rs, rd->name, i, rel) < 0)
                return fail_oom(rs->ret_error);
        return 0;
}

/* a/b for relative names, either of which may be empty. */
static char *rel_join(const char *a, const char *b) {
        return isempty(a) ? strdup(b) : path_join(a, b);
}

/* Where original path p goes: the rule (*ret_rule) and the name relative to its staging
 * directory (*ret_rel, malloc'd); *ret_rel NULL: nowhere. */
static int map_entry(Restore *rs, const char *p, bool is_dir, size_t *ret_rule, char **ret_rel) {
        *ret_rel = NULL;
        for (size_t i = 0; i < rs->n_rules; i++) {
                if (!group_match(&rs->from[i], p, is_dir))
                        continue;
                *ret_rule = i;
                *ret_rel = rel_join(rs->dests[i].rest, path_under(p, rs->from[i].path));
                if (!*ret_rel)
                        return fail_oom(rs->ret_error);
                if (**ret_rel == 0) {
                        /* The destination is an existing directory: left as it is. */
                        free(TAKE_PTR(*ret_rel));
                        if (!is_dir)
                                return fail(rs->ret_error, -EISDIR, "%s: is a directory; the backup has a file there",
                                            rs->dests[i].shown);
                }
                return 0;
        }
        /* A missing parent of an in-place restore comes back with its metadata; an existing one
         * is left alone. */
        for (size_t i = 0; is_dir && i < rs->n_rules; i++) {
                const char *below = rs->dests[i].orig_e ? path_under(p, rs->dests[i].orig_e) : NULL;
                const char *above = path_under(rs->from[i].path, p);
                if (!below || !*below || !above || !*above)
                        continue;
                *ret_rule = i;
                *ret_rel = strdup(below);
                return *ret_rel ? 0 : fail_oom(rs->ret_error);
        }
        return 0;
}

static int add_orphan(Restore *rs, const char *target, size_t rule, char *rel) {
        Orphan *o = reallocarray(rs->orphans, rs->n_orphans + 1, sizeof *o);

        if (!o) {
                free(rel);
                return fail_oom(rs->ret_error);
        }
        rs->orphans = o;
        o[rs->n_orphans] = (Orphan) { .target = strdup(target), .rule = rule, .rel = rel };
        if (!o[rs->n_orphans++].target)
                return fail_oom(rs->ret_error);
        return 0;
}

static int restore_entry(Restore *rs, Reader *rd, struct archive_entry *e) {
        _cleanup_free_ char *rel = NULL;
        size_t i = 0;
        int r;

        r = map_entry(rs, rd->name, archive_entry_filetype(e) == AE_IFDIR, &i, &rel);
        if (r < 0 || !rel)
                return r;
        if (strlen(rel) >= PATH_MAX)
                return fail(rs->ret_error, -ENAMETOOLONG, "%.*s...: path too long", NAME_SHOWN, rel);
        if (archive_entry_hardlink(e)) {
                const Restored *t = find_restored(rs, rd->target);
                /* Its data went elsewhere or nowhere: fetched in a second pass. */
                if (!t || t->rule != i)
                        return add_orphan(rs, rd->target, i, TAKE_PTR(rel));
                archive_entry_copy_hardlink(e, t->rel);
        }
        return write_entry(rs, rd, e, i, rel);
}

/* Hard links whose data no rule restored (in their staging directory): the data goes to the
 * first of them, the others of the same rule link to it. An entry's data is read once: the
 * orphans of another rule get it in another pass over the backup. */
static int restore_orphans(Restore *rs) {
        bool progress = true;
        int r = 0;

        while (r >= 0 && progress) {
                struct archive_entry *e;
                EntryKind kind;
                Reader rd;
                size_t left = 0;

                for (size_t i = 0; i < rs->n_orphans; i++)
                        left += !rs->orphans[i].done;
                if (left == 0)
                        break;
                progress = false;
                r = reader_open(rs->s, &rd, rs->ret_error);
                while (r >= 0 && (r = reader_next(&rd, &e, &kind, rs->ret_error)) > 0) {
                        const Orphan *first = NULL;

                        if (kind != ENTRY_DATA || archive_entry_hardlink(e))
                                continue;
                        for (size_t i = 0; i < rs->n_orphans && r >= 0; i++) {
                                Orphan *o = &rs->orphans[i];
                                if (o->done || !streq(o->target, rd.name) || (first && first->rule != o->rule))
                                        continue;
                                if (first)
                                        archive_entry_copy_hardlink(e, first->rel);
                                r = write_entry(rs, &rd, e, o->rule, o->rel);
                                o->done = progress = true;
                                if (!first)
                                        first = o;
                        }
                }
                reader_close(&rd);
        }
        if (r < 0)
                return r;
        for (size_t i = 0; i < rs->n_orphans; i++)
                if (!rs->orphans[i].done)
                        return fail(rs->ret_error, -EBADMSG, "%s: hard link %s: its target %s is not in the backup",
                                    rs->s->path, rs->orphans[i].rel, rs->orphans[i].target);
        return 0;
}

/* A file deleted since: removed, also when an earlier backup of the chain restored it immutable. */
static int prune_unlink(int dfd, const char *name) {
        if (unlinkat(dfd, name, 0) >= 0 || errno == ENOENT)
                return 0;
        if (errno != EPERM || beneath_unprotect(dfd, name) < 0)
                return -EPERM;
        return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
}

typedef struct PruneDir {
        Restore *rs;
        size_t i;
        dev_t dev;
        unsigned depth;
} PruneDir;

static int prune_dir(Restore *rs, size_t i, int fd, const char *orig, dev_t dev, unsigned depth);

static int prune_entry(const DirEntry *e, void *userdata) {
        const PruneDir *pd = userdata;
        Restore *rs = pd->rs;
        const StoreFileGroup *g = &rs->from[pd->i];
        Store *s = rs->s;
        int r;

        if (e->stat_error < 0)
                return 0;
        if (S_ISDIR(e->st.st_mode)) {
                _cleanup_close_ int cfd = -EBADF;
                if (!g->recursive || e->st.st_dev != pd->dev)
                        return 0;
                cfd = beneath_open(e->dfd, e->name, O_PATH | O_DIRECTORY, 0);
                return cfd < 0 ? 0 : prune_dir(rs, pd->i, cfd, e->path, pd->dev, pd->depth + 1);
        }
        if (group_match(g, e->path, false) && !store_index_has(s, e->path) &&
            !excluded(s->excludes, s->n_excludes, e->path, false) && (r = prune_unlink(e->dfd, e->name)) < 0)
                return fail(rs->ret_error, r, "pruning %s/%s: %s", rs->dests[pd->i].root_shown, e->name, strerror(-r));
        return 0;
}

static int prune_dir(Restore *rs, size_t i, int fd, const char *orig, dev_t dev, unsigned depth) {
        int r;

        if (depth > WALK_DEPTH_MAX)
                return fail(rs->ret_error, -ELOOP, "%s: directories nested too deeply", orig);
        r = dir_foreach(fd, orig, prune_entry, &(PruneDir) { rs, i, dev, depth });
        if (r == -ENOMEM)
                return fail_oom(rs->ret_error);
        /* fail() keeps the first message: prune_entry's, when it failed. */
        return r < 0 ? fail(rs->ret_error, r, "pruning %s: %s", rs->dests[i].root_shown, strerror(-r)) : 0;
}

static int prune(Restore *rs, size_t i) {
        _cleanup_close_ int fd = -EBADF, pfd = -EBADF;
        const char *orig = rs->from[i].path;
        Dest *d = &rs->dests[i];
        _cleanup_free_ char *parent = strdup(d->rest);
        const char *name;
        struct stat st;
        char *slash;
        int r;

        if (!parent)
                return fail_oom(rs->ret_error);
        fd = beneath_open(d->e_fd, isempty(d->rest) ? "." : d->rest, O_PATH | O_DIRECTORY, 0);
        if (fd >= 0) {
                if (fstat(fd, &st) < 0)
                        return fail(rs->ret_error, -errno, "pruning %s: %m", d->root_shown);
                return prune_dir(rs, i, fd, orig, st.st_dev, 0);
        }
        if (fd == -ENOENT)
                return 0;
        if (fd != -ENOTDIR && fd != -ELOOP)
                return fail(rs->ret_error, fd, "pruning %s: %s", d->root_shown, strerror(-fd));
        /* Not a directory: the destination is a file (or a symlink), kept if the backup has it. */
        if (store_index_has(rs->s, orig) || excluded(rs->s->excludes, rs->s->n_excludes, orig, false))
                return 0;
        slash = strrchr(parent, '/');
        if (slash) {
                *slash = 0;
                name = d->rest + (slash - parent) + 1;
        } else {
                strcpy(parent, ".");
                name = d->rest;
        }
        pfd = beneath_open(d->e_fd, parent, O_PATH | O_DIRECTORY, 0);
        if (pfd < 0)
                return fail(rs->ret_error, pfd, "pruning %s: %s", d->root_shown, strerror(-pfd));
        r = prune_unlink(pfd, name);
        if (r < 0)
                return fail(rs->ret_error, r, "pruning %s: %s", d->root_shown, strerror(-r));
        return 0;
}

/* Opens rule i's destination: the directory resolved (see store.h), the walk below it, the
 * staging directory. */
static int dest_open(Restore *rs, size_t i, const struct stat *skip) {
        const StoreRestoreRule *rule = &rs->rules[i];
        const char *from = rs->from[i].path, *rel = NULL, *rest = NULL;
        _cleanup_free_ char *to = NULL, *base = NULL, *beneath = NULL, *rel_buf = NULL;
        _cleanup_close_ int base_fd = -EBADF;
        Dest *d = &rs->dests[i];
        int64_t owner = -1;
        int r;

        if (rule->to && path_clean(rule->to, &to) < 0)
                return fail(rs->ret_error, -EINVAL, "invalid restore destination '%.*s'", NAME_SHOWN, rule->to);
        if (rule->beneath && path_clean(rule->beneath, &beneath) < 0)
                return fail(rs->ret_error, -EINVAL, "invalid restore directory '%.*s'", NAME_SHOWN, rule->beneath);
        const char *target = to ? to : from;

        if (rule->owner_check && rule->owner_uid != 0 && !beneath) {
                /* A user's wish: nothing resolved, from "/" on. */
                owner = rule->owner_uid;
                base = strdup("");
                rel = target + 1;
        } else if (beneath) {
                rel = path_under(target, beneath);
                if (!rel)
                        return fail(rs->ret_error, -EINVAL, "restore destination %s is not below %s", target, beneath);
                /* Resolved again, as when the restore began: a symlink a user put there since (in a
                 * writer's PreRestore, say) is not followed. */
                _cleanup_free_ char *why = NULL;
                r = beneath_resolve_trusted_dir(beneath, &base_fd, &base, &why);
                if (r < 0)
                        return fail(rs->ret_error, r, "restore directory %s: %s", beneath, why ? why : strerror(-r));
        } else if (to || streq(from, "/")) {
                /* A root writer's place (or "/"): as in place, below. */
                _cleanup_free_ char *why = NULL;
                r = beneath_resolve_trusted(target, &base_fd, &base, &rel_buf, &why);
                if (r < 0)
                        return fail(rs->ret_error, r, "restore destination %s: %s", target, why ? why : strerror(-r));
                rel = rel_buf;
        } else {
                /* In place: the parent is resolved following root's symlinks alone (a user who may
                 * write above the component must not send root's restore elsewhere), from.path
                 * itself and all below are not. */
                _cleanup_free_ char *parent = strdup(from), *prel = NULL, *why = NULL;
                if (!parent)
                        return fail_oom(rs->ret_error);
                char *slash = strrchr(parent, '/');
                slash[slash == parent] = 0;
                r = beneath_resolve_trusted(parent, &base_fd, &base, &prel, &why);
                if (r < 0)
                        return fail(rs->ret_error, r, "restore destination %s: %s", from, why ? why : strerror(-r));
                rel_buf = path_join(prel, strrchr(from, '/') + 1);
                if (!rel_buf)
                        return fail_oom(rs->ret_error);
                rel = rel_buf;
        }
        if (!base)
                return fail_oom(rs->ret_error);
        if (base_fd < 0)
                base_fd = open(isempty(base) ? "/" : base, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (base_fd < 0)
                return fail(rs->ret_error, -errno, "restore destination %s: %m", isempty(base) ? "/" : base);
        r = beneath_deepest(base_fd, streq(base, "/") ? "" : base, rel, owner, &d->e_fd, &rest, rs->ret_error);
        if (r < 0)
                return r;
        d->rest = strdup(rest);
        d->shown = strndup(rel, (size_t) (rest - rel));
        if (!d->rest || !d->shown)
                return fail_oom(rs->ret_error);
        while (*d->shown && d->shown[strlen(d->shown) - 1] == '/')
                d->shown[strlen(d->shown) - 1] = 0;
        {
                _cleanup_free_ char *b = TAKE_PTR(d->shown);
                d->shown = isempty(b) ? strdup(isempty(base) ? "/" : base)
                                      : path_join(isempty(base) || streq(base, "/") ? "/" : base, b);
        }
        d->root_shown = d->shown ? path_join(d->shown, d->rest) : NULL;
        if (!d->shown || !d->root_shown)
                return fail_oom(rs->ret_error);
        /* In place, or beneath DIR at the original path (DIR/from: not sent elsewhere), the missing
         * directories above the component come back as the backup holds them (owner, mode,
         * times): below DIR too, a component's parents private where it came from stay so. */
        if ((!to && !beneath) || (beneath && rel && streq(rel, from + 1))) {
                /* The original path the deepest existing directory stands for. */
                size_t n = strlen(from) - (isempty(d->rest) ? 0 : strlen(d->rest) + 1);
                d->orig_e = strndup(from, n ? n : 1);
                if (!d->orig_e)
                        return fail_oom(rs->ret_error);
        }

        r = beneath_staging(d->e_fd, d->staging, &d->s_fd);
        if (r < 0)
                return fail(rs->ret_error, r, "cannot make a staging directory in %s: %s", d->shown, strerror(-r));
        d->disk = archive_write_disk_new();
        if (!d->disk)
                return fail_oom(rs->ret_error);
        archive_write_disk_set_options(d->disk, disk_flags(RESTORE_FLAGS));
        /* An archive inside a destination is not overwritten by itself. */
        if (skip)
                archive_write_disk_set_skip_file(d->disk, skip->st_dev, skip->st_ino);
        return 0;
}

/* Closes rule i's writer: that sets its directories' modes and times, by name from the cwd. */
static int dest_finish(Restore *rs, size_t i) {
        _cleanup_close_ int back = -EBADF;
        Dest *d = &rs->dests[i];
        int r;

        if (!d->disk)
                return 0;
        r = enter_staging(rs, i, &back);
        if (r >= 0 && archive_write_close(d->disk) != ARCHIVE_OK)
                r = fail_archive(rs->ret_error, d->disk, "finishing restore of", rs->s->path);
        if (back >= 0 && leave_staging(rs, &back) < 0 && r >= 0)
                r = -EIO;
        archive_write_free(d->disk);
        d->disk = NULL;
        return r;
}

/* Removes the staging directory, if it is still the one we made. */
static void dest_close(Dest *d) {
        struct stat a, b;

        if (d->disk)
                archive_write_free(d->disk);
        if (d->s_fd >= 0 && fstat(d->s_fd, &a) >= 0 && fstatat(d->e_fd, d->staging, &b, AT_SYMLINK_NOFOLLOW) >= 0 &&
            a.st_dev == b.st_dev && a.st_ino == b.st_ino)
                (void) beneath_remove(d->e_fd, d->staging);
        if (d->s_fd >= 0)
                close(d->s_fd);
        if (d->e_fd >= 0)
                close(d->e_fd);
        free(d->shown);
        free(d->rest);
        free(d->root_shown);
        free(d->orig_e);
}

static int restore(Restore *rs, bool prune_after) {
        struct archive_entry *e;
        EntryKind kind;
        Reader rd;
        struct stat st;
        bool skip;
        int r;

        skip = !rs->s->is_dir && fstat(rs->s->src_fd, &st) >= 0;
        for (size_t i = 0; i < rs->n_rules; i++) {
                const StoreRestoreRule *rule = &rs->rules[i];

                if (path_clean(rule->from.path, (char **) &rs->from[i].path) < 0)
                        return fail(rs->ret_error, -EINVAL, "invalid restore path '%.*s'", NAME_SHOWN,
                                    strempty(rule->from.path));
                rs->from[i].filespec = rule->from.filespec;
                rs->from[i].recursive = rule->from.recursive;
        }
        /* Every destination is checked before anything is written. */
        for (size_t i = 0; i < rs->n_rules; i++) {
                r = dest_open(rs, i, skip ? &st : NULL);
                if (r < 0)
                        return r;
        }

        r = reader_open(rs->s, &rd, rs->ret_error);
        while (r >= 0 && (r = reader_next(&rd, &e, &kind, rs->ret_error)) > 0)
                if (kind == ENTRY_DATA)
                        r = restore_entry(rs, &rd, e);
        reader_close(&rd);
        if (r >= 0)
                r = restore_orphans(rs);
        for (size_t i = 0; i < rs->n_rules; i++) {
                int k = dest_finish(rs, i);
                if (r >= 0)
                        r = k;
        }
        if (r < 0)
                return r;
        /* All of the backup is staged: first what moving it would run into, then the move. */
        for (size_t i = 0; i < rs->n_rules; i++) {
                Dest *d = &rs->dests[i];
                r = beneath_merge(d->s_fd, d->e_fd, d->shown, rs->rules[i].no_overwrite, true, skip ? &st : NULL, NULL,
                                  rs->ret_error);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < rs->n_rules; i++) {
                Dest *d = &rs->dests[i];
                uint64_t kept = 0;
                r = beneath_merge(d->s_fd, d->e_fd, d->shown, rs->rules[i].no_overwrite, false, skip ? &st : NULL, &kept,
                                  rs->ret_error);
                if (r < 0)
                        return r;
                rs->count += (int) (d->staged - kept);
        }
        for (size_t i = 0; i < rs->n_rules; i++) {
                if ((!prune_after && !rs->rules[i].prune) || rs->rules[i].no_prune)
                        continue;
                r = prune(rs, i);
                if (r < 0)
                        return r;
        }
        /* Last: an immutable or append-only file or directory takes no more changes. */
        for (size_t i = 0; i < rs->n_rules; i++)
                flags_pending_apply(rs->s, &rs->flags, i, rs->dests[i].e_fd, rs->dests[i].shown);
        return rs->count;
}

int store_restore(Store *s, const StoreRestoreRule *rules, size_t n_rules, bool prune_after, char **ret_error) {
        Restore rs = { .s = s, .rules = rules, .n_rules = n_rules, .ret_error = ret_error, .cwd = -EBADF };
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s || s->writing)
                return fail(ret_error, -EBADF, "the backup is not open for reading");
        if (n_rules > 0 && !rules)
                return fail(ret_error, -EINVAL, "no restore rules given");

        rs.cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rs.cwd < 0)
                return fail(ret_error, -errno, "cannot open the working directory: %m");
        rs.from = calloc(n_rules + 1, sizeof *rs.from);
        rs.dests = calloc(n_rules + 1, sizeof *rs.dests);
        for (size_t i = 0; rs.dests && i < n_rules; i++)
                rs.dests[i].e_fd = rs.dests[i].s_fd = -EBADF;
        s->files = s->bytes = 0;
        r = rs.from && rs.dests ? restore(&rs, prune_after) : fail_oom(ret_error);

        /* Back where we were before the staging directories go (paths given later are relative to it). */
        if (fchdir(rs.cwd) < 0 && r >= 0)
                r = fail(ret_error, -errno, "cannot return to the working directory: %m");
        close(rs.cwd);
        tdestroy(rs.restored, restored_free);
        flags_pending_free(&rs.flags);
        for (size_t i = 0; i < rs.n_orphans; i++) {
                free(rs.orphans[i].target);
                free(rs.orphans[i].rel);
        }
        free(rs.orphans);
        for (size_t i = 0; i < n_rules; i++) {
                if (rs.from)
                        free((char *) rs.from[i].path);
                if (rs.dests)
                        dest_close(&rs.dests[i]);
        }
        free(rs.from);
        free(rs.dests);
        return r;
}
