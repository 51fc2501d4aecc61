/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vssbackup restore: the restore sequence with the writers, files put back where the writers say. */

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <pwd.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "lib/metadata.h"
#include "tools/beneath.h"
#include "tools/in-use.h"
#include "tools/restore-where.h"
#include "tools/vssbackup.h"

static bool component_wanted(const vss_backup_document *d, const vss_bc_component *c, char **specs, size_t n_specs) {
        const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
        if (!wm || !c->backup_succeeded)
                return false;
        if (n_specs == 0)
                return true;
        for (size_t s = 0; s < n_specs; s++)
                if (spec_covers(specs[s], &c->writer_id, spec_name(wm, wm->name), c->logical_path, c->name))
                        return true;
        return false;
}

/* A file group that names exact files: not recursive, a filespec without wildcards. */
static bool exact_files(const vss_file_desc *f) {
        return !f->recursive && !isempty(f->filespec) && !strpbrk(f->filespec, "*?[");
}

/* Whether a component recorded in d, other than c, stored writer files at one of ci's paths: files
 * made after the cut and stored as that component's, which are not c's. */
static bool others_writer_files(const vss_backup_document *d, const vss_bc_component *c,
                                const vss_component_info *ci) {
        for (size_t i = 0; i < d->n_components; i++) {
                const vss_bc_component *o = &d->components[i];
                if (vss_id_equal(&o->writer_id, &c->writer_id) && streq(o->logical_path, c->logical_path) &&
                    streq(o->name, c->name))
                        continue;
                for (size_t w = 0; w < o->n_writer_files; w++)
                        for (size_t f = 0; f < ci->n_files; f++)
                                if (path_overlaps(o->writer_files[w].destination, ci->files[f].path))
                                        return true;
        }
        return false;
}

/* Who could have written the chain's documents and data: 0 root only, a uid when that user (with
 * root) could, -1 several users or unknown. Each backup of the chain supplies files. */
static int64_t chain_owner(const Backup *chain, size_t n_chain) {
        int64_t who = 0;
        for (size_t k = 0; k < n_chain; k++) {
                int64_t o = chain[k].owner;
                if (o < 0 || (o > 0 && who > 0 && o != who))
                        return -1;
                if (o > 0)
                        who = o;
        }
        return who;
}

/* A user's primary group (nogroup when the user is unknown). */
static int64_t primary_gid(uid_t uid) {
        struct passwd *pw = getpwuid(uid);
        return pw ? (int64_t) pw->pw_gid : 65534; /* unknown: nogroup, never the group recorded */
}

/* The exact-name prune only when the backup holds one of those files (the database itself, say):
 * a backup holding none of them leaves the live files alone. */
static void prune_only_if_held(StoreRestoreRule *rules, const vss_component_info *ci, Store *store) {
        bool holds_exact = false;
        for (size_t i = 0; i < ci->n_files; i++) {
                _cleanup_free_ char *p = rules[i].prune ? path_join(ci->files[i].path, ci->files[i].filespec) : NULL;
                if (p && store_index_has(store, p))
                        holds_exact = true;
        }
        for (size_t i = 0; !holds_exact && i < ci->n_files; i++)
                rules[i].prune = false;
}

/* VSS: an alternate location asked for and none mapped for path is the writer's error. */
static bool no_mapping(Run *run, const vss_writer_metadata *wm, const vss_bc_component *c, const char *path) {
        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                        "component '%s' of writer '%s': the writer asks for an alternate location (its restore %s) "
                        "and maps none for %s: not restored", c->name, wm->name,
                        c->restore_target == VSS_RT_ALTERNATE ? "target" : "method", path);
}

/* A filesystem below a rule's destination (a mount, pseudo ones too, or a btrfs subvolume) that
 * the backup holds files for gets a rule of its own, made from the deepest group holding it, so its
 * files are staged on it and moved into place by rename, which never crosses a filesystem. Only
 * root's (root_only_way(): nobody else can swap it in), and only where the backup has files below
 * it: a mount it holds nothing for (a tmpfs of runtime files, a read-only one) is left as it is,
 * and store-restore.c's merge refuses, before anything moves, to put files into any other. */
typedef struct NestedRules {
        Run *run;
        const StoreRestoreRule *parent;
        const char *dest;      /* the parent's destination, resolved */
        const StoreRestoreRule *rules; /* the component's own (none is overridden) */
        size_t n_rules;
        const Backup *chain;
        size_t n_chain;
        StoreRestoreRule *extra;
        size_t n;
        bool oom, refused;
} NestedRules;

static bool chain_holds_below(const Backup *chain, size_t n_chain, const char *dir) {
        for (size_t k = 0; k < n_chain; k++)
                if (store_index_has_below(chain[k].store, dir))
                        return true;
        return false;
}

static bool nested_one(const FsBelow *fs, void *userdata) {
        NestedRules *n = userdata;
        const char *rel = path_under(fs->path, n->dest);
        char from[PATH_MAX];
        _cleanup_free_ char *joined = rel && *rel ? path_join(n->parent->from.path, rel) : NULL;
        if (!rel || !*rel)
                return true;
        if (!joined || path_normalize(joined, from, sizeof(from)) < 0) {
                n->oom = !joined;
                return !n->oom;
        }
        for (size_t j = 0; j < n->n; j++)
                if (streq(n->extra[j].from.path, from))
                        return true; /* a deeper group has it already */
        for (size_t j = 0; j < n->n_rules; j++) {
                char own[PATH_MAX];
                if (path_normalize(n->rules[j].from.path, own, sizeof(own)) >= 0 && streq(own, from))
                        return true; /* the component's own group there decides */
        }
        if (!chain_holds_below(n->chain, n->n_chain, from))
                return true; /* nothing of the backup goes there: left as it is */
        /* Files for a filesystem no rule may stage on (not root's way): refused now, before any
         * backup of the chain is put back (the merge would refuse each one only in its turn). */
        if (!root_only_way(fs->path)) {
                n->refused = true;
                run_fail(n->run, VSS_E_UNEXPECTED, "%s: " BENEATH_OTHER_FS, fs->path);
                return false;
        }
        StoreRestoreRule *x = reallocarray(n->extra, n->n + 1, sizeof(*x));
        char *f = strdup(from), *to = n->parent->to ? path_join(n->parent->to, rel) : NULL;
        if (x)
                n->extra = x;
        if (!x || !f || (n->parent->to && !to)) {
                free(f);
                free(to);
                n->oom = true;
                return false;
        }
        x[n->n] = *n->parent;
        x[n->n].from.path = f;
        x[n->n].to = to;
        /* A pseudo filesystem (a tmpfs mounted since, say) holds what it holds now, not what
         * the backup read: its files are put back, none removed. */
        if (fs->pseudo) {
                x[n->n].prune = false;
                x[n->n].no_prune = true;
        }
        n->n++;
        return true;
}

/* Rules deepest first (stable): the first rule that matches a stored file takes it. */
static void rules_sort_deepest_first(StoreRestoreRule *r, size_t n) {
        for (size_t i = 1; i < n; i++) {
                StoreRestoreRule x = r[i];
                size_t j = i;
                for (; j > 0 && strlen(r[j - 1].from.path) < strlen(x.from.path); j--)
                        r[j] = r[j - 1];
                r[j] = x;
        }
}

/* *rules gains the nested rules, all sorted deepest first; *ret_owned the from.path strings they
 * own (to free). */
static bool nested_rules(Run *run, const Backup *chain, size_t n_chain, StoreRestoreRule **rules, size_t *n_rules,
                         char ***ret_owned, size_t *ret_n_owned) {
        NestedRules n = { .run = run, .rules = *rules, .n_rules = *n_rules, .chain = chain, .n_chain = n_chain };
        rules_sort_deepest_first(*rules, *n_rules); /* so the deepest group makes a nested rule first */
        for (size_t i = 0; !n.oom && !n.refused && i < *n_rules; i++) {
                char real[PATH_MAX];
                const StoreRestoreRule *r = &(*rules)[i];
                if (!r->from.recursive || !realpath(r->to ? r->to : r->from.path, real))
                        continue;
                n.parent = r;
                n.dest = real;
                (void) filesystems_below(real, true, nested_one, &n);
        }
        StoreRestoreRule *all = n.oom || n.refused ? NULL : calloc(n.n + *n_rules, sizeof(*all));
        char **owned = all ? calloc(n.n + 1, sizeof(*owned)) : NULL;
        if (!owned) {
                for (size_t i = 0; i < n.n; i++) {
                        free((char *) n.extra[i].from.path);
                        free((char *) n.extra[i].to);
                }
                free(n.extra);
                free(all);
                return n.refused ? false : run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        }
        for (size_t i = 0; i < n.n; i++)
                owned[i] = (char *) n.extra[i].from.path;
        if (n.n > 0)
                memcpy(all, n.extra, n.n * sizeof(*all));
        memcpy(all + n.n, *rules, *n_rules * sizeof(*all));
        free(n.extra);
        free(*rules);
        *rules = all;
        *n_rules += n.n;
        rules_sort_deepest_first(*rules, *n_rules);
        *ret_owned = owned;
        *ret_n_owned = n.n;
        return true;
}

/* The rules' destinations, and the nested rules' paths (owned). */
static void rules_free(StoreRestoreRule *rules, size_t n_rules, char **owned, size_t n_owned) {
        for (size_t i = 0; i < n_rules; i++)
                free((char *) rules[i].to);
        free(rules);
        for (size_t i = 0; i < n_owned; i++)
                free(owned[i]);
        free(owned);
}

/* The component's rules applied to each backup of the chain, oldest first. */
static bool restore_chain(Run *run, Backup *chain, size_t n_chain, const vss_bc_component *c, const vss_writer_metadata *wm,
                          const vss_component_info *ci, const StoreRestoreRule *rules, size_t n_rules, bool wished,
                          uint64_t *ret_files, bool *ret_partial) {
        bool ok = true;
        *ret_files = 0;
        for (size_t k = 0; ok && k < n_chain; k++) {
                _cleanup_free_ char *err = NULL;
                /* An older backup that did not back the component up, where another component
                 * stored writer files at its paths (a user's writer's, its writer not running
                 * then): those are not the component's, and nothing of that backup is taken. */
                if (k + 1 < n_chain &&
                    !vss_backup_document_find(chain[k].bcd, &c->writer_id, NULL, c->logical_path, c->name) &&
                    others_writer_files(chain[k].bcd, c, ci))
                        continue;
                /* Files deleted since the older backups go away with the newest one's index; so do
                 * files made since the backup, for a writer whose service is stopped and restored
                 * whole (stop-restore-start): a database's newer WAL would roll the restored copy
                 * forward past the backup. */
                bool prune = k == n_chain - 1 && (n_chain > 1 || wm->restore_method == VSS_RME_STOP_RESTORE_START);
                int r = store_restore(chain[k].store, rules, n_rules, prune, &err);
                if (r == -EPERM && wished)
                        ok = run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE, "component '%s' of writer '%s' not restored: %s",
                                      c->name, wm->name, err ? err : strerror(-r));
                else if (r == -ENOLINK)
                        ok = run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                      "component '%s' of writer '%s' not restored: %s; its writer is not running to "
                                      "point it at the copy (PostRestore): start the writer and restore again",
                                      c->name, wm->name, err ? err : strerror(-r));
                else if (r < 0) {
                        ok = run_fail(run, VSS_E_UNEXPECTED, "restoring component '%s': %s", c->name, err ? err : strerror(-r));
                        *ret_partial = true;
                } else
                        *ret_files += (uint64_t) r;
        }
        return ok;
}

/* Puts one component's files back from each backup of the chain, oldest first. With to, every
 * destination (the original path, or one the backup or the writer names) is taken beneath to; else
 * one the backup or the writer names (and, for a user's writer, its original paths) is honoured
 * only where the writer's owner may write itself. *ret_files: the files put back; *ret_partial:
 * whether a failure may have left some in place (one past the owner checks, made before any
 * file is written). */
static bool restore_component(Run *run, Backup *chain, size_t n_chain, const vss_backup_document *d,
                              const vss_bc_component *c, const char *to, uint64_t *ret_files, bool *ret_partial) {
        const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
        const vss_backup_document *doc = chain[n_chain - 1].bcd;
        const vss_bc_component *bc = vss_backup_document_find(doc, &c->writer_id, &c->instance_id, c->logical_path,
                                                              c->name);
        const vss_component_info *ci = NULL;
        int64_t backup_uid = chain_owner(chain, n_chain);
        int64_t owner = writer_owner(wm, backup_uid);
        /* A backup a user could have written says what that user wishes, whatever its document
         * says of the writer (it may say nothing): honoured only where that user may write. */
        if (owner < 0 && backup_uid > 0)
                owner = backup_uid;
        ci = metadata_find_component(wm, c->logical_path, c->name);
        if (!ci)
                return run_fail(run, VSS_E_INVALIDARG, "component '%s' is not in its writer's metadata", c->name);
        StoreRestoreRule *rules = calloc(ci->n_files ? ci->n_files : 1, sizeof(*rules));
        /* Put elsewhere without its writer (which is not running: no PostRestore to point them at
         * the copy, as vss-writer-postgres does a tablespace's link), an absolute symlink into the
         * component's own original places would have the copy use, and write into, the live
         * files: refused, nothing written. */
        _cleanup_free_ const char **back = to && !c->selected_for_restore ? calloc(ci->n_files + 1, sizeof(char *))
                                                                           : NULL;
        for (size_t i = 0; back && i < ci->n_files; i++)
                back[i] = ci->files[i].path;
        bool ok = rules != NULL && (back || !to || c->selected_for_restore), wished = false;
        if (!ok) {
                free(rules);
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        }
        for (size_t i = 0; ok && i < ci->n_files; i++) {
                char *dest = NULL;
                /* Never "in place" for want of memory: a failure here fails the component. */
                int dr = restore_destination(wm, bc, c->restore_target, ci->files[i].path, &dest);
                ok = dr >= 0;
                if (dr == -ENXIO)
                        no_mapping(run, wm, c, ci->files[i].path);
                rules[i] = (StoreRestoreRule) {
                        .from = { ci->files[i].path, ci->files[i].filespec, ci->files[i].recursive },
                        .no_overwrite = wm->restore_method == VSS_RME_RESTORE_IF_NOT_THERE,
                        /* Exact names (a database's journal beside it, say): those the backup does
                         * not hold go, or a stale hot journal would be rolled back onto the
                         * restored database. Not where existing files are kept. A chain's newest
                         * backup prunes every group; its older ones none. */
                        .prune = n_chain == 1 && exact_files(&ci->files[i]) &&
                                 wm->restore_method != VSS_RME_RESTORE_IF_NOT_THERE,
                        /* What a user could have written gives no privilege back, wherever it goes
                         * (--to too): no setuid file, capability or device node; the files are the
                         * user's when it is known whose. */
                        .untrusted = backup_uid != 0,
                        .content_uid = backup_uid != 0 && owner > 0 ? owner : -1,
                        .content_gid = backup_uid != 0 && owner > 0 ? primary_gid((uid_t) owner) : -1,
                        .links_back = back,
                };
                if (ok && to) {
                        char *under = NULL;
                        ok = asprintf(&under, "%s%s", to, dest ? dest : ci->files[i].path) >= 0;
                        free(dest);
                        dest = ok ? under : NULL;
                        rules[i].beneath = to;
                } else if (ok && dest) {
                        wished = true;
                        if (owner < 0) {
                                run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                         "component '%s' of writer '%s': destination %s is not honoured: %s, and a "
                                         "destination from a writer or a backup is honoured only where the writer's "
                                         "owner may write itself (restore with --to DIR to put it beneath DIR)",
                                         c->name, wm->name, dest,
                                         wm->owner_known ? "the backup could have been written by another user than "
                                                           "the writer's owner"
                                                         : "the backup records no owner for the writer");
                                free(dest);
                                dest = NULL;
                                ok = false;
                        }
                        rules[i].owner_check = true;
                        rules[i].owner_uid = owner < 0 ? 0 : (uint32_t) owner;
                } else if (ok && backup_uid < 0) {
                        /* In place from a backup several users could have written: whose wishes
                         * they are cannot be told. */
                        run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                 "component '%s' of writer '%s' not restored in place: the backup could have been "
                                 "written by several users, or its owner cannot be told (restore with --to DIR to "
                                 "put it beneath DIR)",
                                 c->name, wm->name);
                        ok = false;
                } else if (ok && owner > 0) {
                        /* In place, for a user's writer: its own paths, as far as that user may write
                         * there (a symlink the user put on the way is not followed). A document that
                         * vouches for no owner keeps the old way: the parent resolved. */
                        wished = true;
                        rules[i].owner_check = true;
                        rules[i].owner_uid = (uint32_t) owner;
                }
                rules[i].to = dest;
        }
        if (!ok && !run->r.error_hr)
                run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        if (ok && n_chain == 1)
                prune_only_if_held(rules, ci, chain[0].store);
        size_t n_rules = ci->n_files, n_owned = 0;
        char **owned = NULL;
        ok = ok && (owner != 0 || nested_rules(run, chain, n_chain, &rules, &n_rules, &owned, &n_owned)); /* root's */
        ok = ok && restore_chain(run, chain, n_chain, c, wm, ci, rules, n_rules, wished, ret_files, ret_partial);
        rules_free(rules, n_rules, owned, n_owned);
        return ok;
}

/* With to, the writer of c learns where its files go (PostRestore checks them there): beneath to,
 * as restore_component puts them, whatever the backup says. */
static bool announce_targets(Run *run, const vss_backup_document *doc, const vss_bc_component *c, const char *to) {
        const vss_writer_metadata *wm = vss_backup_document_writer(doc, c);
        const vss_component_info *ci = to ? metadata_find_component(wm, c->logical_path, c->name) : NULL;
        vss_backup *b = run->r.b;
        bool ok = true;

        for (size_t f = 0; ok && ci && f < ci->n_files; f++) {
                const vss_file_desc *fd = &ci->files[f];
                _cleanup_free_ char *dest = NULL, *wish = NULL;
                int dr = restore_destination(wm, c, c->restore_target, fd->path, &wish);
                if (dr == -ENXIO)
                        ok = no_mapping(run, wm, c, fd->path);
                else if (dr < 0 || asprintf(&dest, "%s%s", to, wish ? wish : fd->path) < 0)
                        ok = run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
                else
                        ok = report_step(&run->r, vss_backup_add_new_target(b, &c->instance_id, &c->writer_id,
                                                                           c->logical_path, c->name, fd->path,
                                                                           fd->filespec, fd->recursive, dest));
        }
        return ok;
}

/* A component restored in place without its writer (no PreRestore to refuse while the
 * application runs), or of a stop-restore-start writer whose PreRestore let it run: refused while
 * a process has one of its files open, or works in its directories, as the application would (a
 * running database would go on over the files restored under it, or lose them). Nothing is
 * written. how: "without its writer, which is not running", say; what to do: the way out. */
static bool in_place_unused(Run *run, const vss_backup_document *doc, const vss_bc_component *c, const char *how,
                            const char *what_to_do, char *why, size_t why_size) {
        const vss_writer_metadata *wm = vss_backup_document_writer(doc, c);
        const vss_component_info *ci = wm ? metadata_find_component(wm, c->logical_path, c->name) : NULL;
        for (size_t f = 0; ci && f < ci->n_files; f++) {
                _cleanup_free_ char *wish = NULL;
                char comm[64], held[PATH_MAX];
                const char *path = ci->files[f].path;
                if (restore_destination(wm, c, c->restore_target, path, &wish) < 0)
                        continue; /* no mapping: restore_component says so */
                uid_t uid;
                pid_t pid = path_in_use(wish ? wish : path, ci->files[f].filespec, ci->files[f].recursive, comm,
                                        sizeof(comm), &uid, held, sizeof(held));
                char msg[2 * PATH_MAX + 512];
                if (pid < 0)
                        snprintf(msg, sizeof(msg), "component '%s' is restored in place %s, and whether %s is in use "
                                 "cannot be told (%s): %s", c->name, how, held, comm, what_to_do);
                else if (pid > 0)
                        snprintf(msg, sizeof(msg), "component '%s' is restored in place %s, and %s is in use by process "
                                 "%d (%s, uid %d): %s", c->name, how, held, (int) pid, comm, (int) uid, what_to_do);
                if (pid != 0) {
                        if (why)
                                snprintf(why, why_size, "%s", msg);
                        return run_fail(run, VSS_E_BAD_STATE, "%s", msg);
                }
        }
        return true;
}

/* Selects the wanted components of doc for restore: each --component must name one. One whose
 * writer is not running cannot be selected (VSS): it stays wanted but unselected, and its files
 * are restored without PreRestore and PostRestore (restore_selected()), in place only while
 * nothing uses them. */
static bool select_for_restore(Run *run, const vss_backup_document *doc, char **specs, size_t n_specs, const char *to) {
        vss_backup *b = run->r.b;
        size_t n_wanted = 0;
        bool ok = true;

        for (size_t i = 0; ok && i < doc->n_components; i++) {
                const vss_bc_component *c = &doc->components[i];
                if (!component_wanted(doc, c, specs, n_specs))
                        continue;
                n_wanted++;
                int32_t hr = vss_backup_set_selected_for_restore(b, &c->instance_id, &c->writer_id, c->logical_path,
                                                                 c->name, true);
                if (hr == VSS_E_OBJECT_NOT_FOUND) {
                        if (!arg_quiet)
                                log_msg("%s; its files are restored without it (no PreRestore, no PostRestore)",
                                        vss_backup_errmsg(b));
                        ok = to || in_place_unused(run, doc, c, "without its writer, which is not running",
                                                   "stop the application first, start its writer (its PreRestore "
                                                   "checks), or restore elsewhere with --to DIR", NULL, 0);
                } else
                        ok = report_step(&run->r, hr);
                ok = ok && announce_targets(run, doc, c, to);
        }
        for (size_t s = 0; ok && s < n_specs; s++) {
                bool found = false;
                for (size_t i = 0; i < doc->n_components; i++)
                        found = found || component_wanted(doc, &doc->components[i], &specs[s], 1);
                if (!found)
                        ok = run_fail(run, VSS_E_OBJECT_NOT_FOUND,
                                      "the backup has no successfully backed up component '%s'", specs[s]);
        }
        if (ok && n_wanted == 0)
                ok = run_fail(run, VSS_E_OBJECT_NOT_FOUND, "the backup has no component to restore");
        return ok;
}

/* Whether directory fd (closed here) holds a file matching filespec, in its subdirectories too
 * when recursive (symlinks not followed, at most 64 levels down), for which fn (if any) is true. */
typedef bool (*FileTest)(int dfd, const char *name, const struct stat *st, void *userdata);
static bool files_any(int fd, const char *filespec, bool recursive, unsigned depth, FileTest fn, void *userdata) {
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        bool found = false;
        if (!d) {
                if (fd >= 0)
                        close(fd);
                return false;
        }
        for (struct dirent *e; !found && (e = readdir(d));) {
                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISDIR(st.st_mode))
                        found = (streq(filespec, "*") || fnmatch(filespec, e->d_name, 0) == 0) && /* as the store matches */
                                (!fn || fn(dirfd(d), e->d_name, &st, userdata));
                else if (recursive && depth < 64)
                        found = files_any(openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
                                          filespec, true, depth + 1, fn, userdata);
        }
        closedir(d);
        return found;
}

/* Whether a file of ci's groups where it would go back (its path, beneath to with --to) passes
 * fn (any file, with NULL). true also when that cannot be told. */
static bool component_files_any(const vss_component_info *ci, const char *to, FileTest fn, void *userdata) {
        for (size_t f = 0; f < ci->n_files; f++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s%s", strempty(to), ci->files[f].path) < 0)
                        return true; /* cannot tell: restore nothing */
                int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                struct stat st;
                /* A group that names a file: that file. */
                if (fd < 0 && errno == ENOTDIR && fn && fstatat(AT_FDCWD, p, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                        if (fn(AT_FDCWD, p, &st, userdata))
                                return true;
                        continue;
                }
                if (fd < 0 && errno != ENOENT)
                        return true;
                if (files_any(fd, isempty(ci->files[f].filespec) ? "*" : ci->files[f].filespec, ci->files[f].recursive, 0,
                              fn, userdata))
                        return true;
        }
        return false;
}

/* A file a restore cannot replace as it is (immutable or append-only): its name into userdata. */
static bool file_fixed(int dfd, const char *name, const struct stat *st, void *userdata) {
        if (!S_ISREG(st->st_mode))
                return false;
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        int flags = 0;
        if (fd < 0 || ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0 || !(flags & (FS_IMMUTABLE_FL | FS_APPEND_FL)))
                return false;
        snprintf(userdata, PATH_MAX, "%s is %s", name, flags & FS_IMMUTABLE_FL ? "immutable" : "append-only");
        return true;
}

/* restore-if-can-replace: why a file of the component cannot be replaced where it would go back
 * (in use by a process, immutable or append-only), into why; false when all can (VSS restores
 * none of it otherwise). */
static bool component_unreplaceable(const vss_component_info *ci, const char *to, char why[static PATH_MAX + 256]) {
        for (size_t f = 0; f < ci->n_files; f++) {
                _cleanup_free_ char *p = NULL;
                char comm[64], held[PATH_MAX];
                uid_t uid;
                if (asprintf(&p, "%s%s", strempty(to), ci->files[f].path) < 0)
                        return snprintf(why, PATH_MAX + 256, "out of memory"), true;
                pid_t pid = path_in_use(p, ci->files[f].filespec, ci->files[f].recursive, comm, sizeof(comm), &uid, held,
                                        sizeof(held));
                if (pid > 0)
                        snprintf(why, PATH_MAX + 256, "%s is in use by process %d (%s)", held, (int) pid, comm);
                else if (pid < 0)
                        snprintf(why, PATH_MAX + 256, "whether %s is in use cannot be told (%s)", held, comm);
                if (pid != 0)
                        return true;
        }
        char which[PATH_MAX] = "";
        if (component_files_any(ci, to, file_fixed, which)) {
                snprintf(why, PATH_MAX + 256, "%s", which[0] ? which : "its files cannot be looked at");
                return true;
        }
        return false;
}

/* restore-if-not-there: whether a file of the component is on disk where it would go back (its
 * path, beneath to with --to). VSS restores none of its files then. */
static bool component_present(const vss_component_info *ci, const char *to) {
        return component_files_any(ci, to, NULL, NULL);
}

/* restore-if-not-there with files on disk: whether every file group of the component has an
 * alternate place to go (VSS restores all of it there then; else none of it). */
static bool component_all_alternate(const vss_writer_metadata *wm, const vss_component_info *ci) {
        for (size_t f = 0; f < ci->n_files; f++) {
                _cleanup_free_ char *dest = NULL;
                if (restore_destination(wm, NULL, VSS_RT_ALTERNATE, ci->files[f].path, &dest) < 0 || !dest)
                        return false;
        }
        return ci->n_files > 0;
}

/* Puts back the files of every component selected in d, and of every one wanted whose writer is
 * not running (select_for_restore()), unless its writer refused it in PreRestore or restores it
 * itself, and tells vssd how that went. */
static void restore_selected(Run *run, const vss_backup_document *d, Backup *chain, size_t n_chain, const char *to,
                             char **specs, size_t n_specs) {
        vss_backup *b = run->r.b;

        for (size_t i = 0; i < d->n_components; i++) {
                const vss_bc_component *c = &d->components[i];
                const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
                if (!wm || !(c->selected_for_restore || component_wanted(d, c, specs, n_specs)))
                        continue;
                const vss_component_info *ci = metadata_find_component(wm, c->logical_path, c->name);
                bool present = wm->restore_method == VSS_RME_RESTORE_IF_NOT_THERE && ci && component_present(ci, to);
                /* restore-if-can-replace: as restore-if-not-there when a file cannot be replaced. */
                char fixed[PATH_MAX + 256] = "";
                if (wm->restore_method == VSS_RME_RESTORE_IF_CAN_REPLACE && ci && component_unreplaceable(ci, to, fixed))
                        present = true;
                uint64_t files = 0;
                vss_file_restore_status rs;
                bool c_ok = true;
                char what[1200];
                if (!isempty(c->pre_restore_failure_msg)) {
                        rs = VSS_RS_NONE;
                        c_ok = false;
                        snprintf(what, sizeof(what), "not restored: %s", c->pre_restore_failure_msg);
                        run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE, "writer '%s' refused component '%s': %s",
                                 wm->name, c->name, c->pre_restore_failure_msg);
                } else if (wm->restore_method == VSS_RME_CUSTOM) {
                        rs = VSS_RS_NONE;
                        snprintf(what, sizeof(what), "left to the writer (custom restore method)");
                } else if (wm->restore_method == VSS_RME_STOP_RESTORE_START && isempty(to) &&
                           !in_place_unused(run, d, c, "by a stop-restore-start writer whose PreRestore let the application run",
                                            "stop the application (its service) first, then restore; or restore "
                                            "elsewhere with --to DIR", fixed, sizeof(fixed))) {
                        /* The service is the admin's to stop (README, deviations): what still uses
                         * the files would go on over them, or lose them. Nothing is written. */
                        rs = VSS_RS_NONE;
                        c_ok = false;
                        snprintf(what, sizeof(what), "not restored: %s", fixed);
                } else if (present && !component_all_alternate(wm, ci)) {
                        /* VSS: any file of it on disk, none restored (a mix of two times is worse). */
                        rs = VSS_RS_NONE;
                        if (fixed[0]) {
                                c_ok = false;
                                snprintf(what, sizeof(what), "not restored: %s (restore-if-can-replace)", fixed);
                                run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE, "component '%s' of writer '%s' %s", c->name,
                                         wm->name, what);
                        } else
                                snprintf(what, sizeof(what), "not restored: files of it are on disk (restore-if-not-there)");
                } else {
                        /* ...or, where the writer maps an alternate location, all of it goes there. */
                        vss_bc_component alt = *c;
                        if (present)
                                alt.restore_target = VSS_RT_ALTERNATE; /* every group maps (above) */
                        bool partial = false;
                        c_ok = restore_component(run, chain, n_chain, d, &alt, to, &files, &partial);
                        /* NONE when nothing was put back (refused before anything was written),
                         * FAILED when some was or may have been. */
                        rs = c_ok ? VSS_RS_ALL : files > 0 || partial ? VSS_RS_FAILED : VSS_RS_NONE;
                        if (c_ok)
                                snprintf(what, sizeof(what), "restored (%llu files)", (unsigned long long) files);
                        else
                                snprintf(what, sizeof(what), "restore failed: %s", run->r.error_msg);
                }
                component_report(run, wm, c->logical_path, c->name, c_ok, what);
                if (!report_step(&run->r, vss_backup_set_file_restore_status(b, &c->instance_id, &c->writer_id,
                                                                              c->logical_path, c->name, rs)))
                        return;
        }
}

/* After a veto in PreRestore: every component that would have been restored is VSS_RS_NONE. */
static void mark_not_restored(Run *run, const vss_backup_document *d, char **specs, size_t n_specs) {
        for (size_t i = 0; i < d->n_components; i++) {
                const vss_bc_component *c = &d->components[i];
                if (c->selected_for_restore || component_wanted(d, c, specs, n_specs))
                        (void) vss_backup_set_file_restore_status(run->r.b, &c->instance_id, &c->writer_id,
                                                                  c->logical_path, c->name, VSS_RS_NONE);
        }
}

/* --to DIR, made if missing, as its real path in real: followed only through symlinks nobody but
 * root could have made (a user's symlink there, or on the way, would send root's restore
 * anywhere; it is resolved again the same way when the files are written, after the writers'
 * PreRestore). */
static bool restore_dir_resolve(Run *run, const char *to, char real[static PATH_MAX]) {
        _cleanup_free_ char *parent = NULL, *name = NULL, *base = NULL, *why = NULL, *full = NULL;
        _cleanup_close_ int pfd = -EBADF, fd = -EBADF;
        int r = beneath_parent_trusted(to, &pfd, &parent, &name, &why);
        if (r >= 0 && mkdirat(pfd, name, 0755) < 0 && errno != EEXIST)
                return run_fail(run, VSS_E_INVALIDARG, "cannot create %s: %s", to, strerror(errno));
        if (r >= 0 && !(full = path_join(parent, name)))
                r = -ENOMEM;
        if (r >= 0)
                r = beneath_resolve_trusted_dir(full, &fd, &base, &why);
        if (r >= 0 && strlen(base) >= PATH_MAX)
                r = -ENAMETOOLONG;
        if (r < 0)
                return run_fail(run, VSS_E_INVALIDARG, "restore directory %s: %s", to, why ? why : strerror(-r));
        strcpy(real, base);
        return true;
}

int cmd_restore(const char *src, char **specs, size_t n_specs, const char *to) {
        Run run;
        Backup chain[MAX_CHAIN];
        size_t n_chain = 0;
        vss_backup_document *d = NULL;
        char real_to[PATH_MAX];

        bool ok = run_start(&run, "restore");
        if (ok && to) {
                ok = restore_dir_resolve(&run, to, real_to);
                to = real_to;
        }
        ok = ok && backup_chain_open(&run, src, chain, &n_chain);
        vss_backup *b = run.r.b;
        ok = ok && report_step(&run.r, vss_backup_initialize_for_restore(b, chain[n_chain - 1].bcd_text)) &&
             report_step(&run.r, vss_backup_gather_writer_metadata_sync(b)) &&
             select_for_restore(&run, chain[n_chain - 1].bcd, specs, n_specs, to);
        /* A writer failing PreRestore stops the restore here, before any file is written; the
         * others still get PostRestore (VSS has no Abort for restores: it is how a writer that
         * took its service offline hears that the restore is over), nothing restored. */
        bool pre_sent = ok && report_step(&run.r, vss_backup_pre_restore_sync(b));
        ok = pre_sent && report_phase(&run.r, "pre-restore");
        if (pre_sent && vss_backup_get_document(b, &d) < 0)
                ok = run_fail(&run, VSS_E_OUTOFMEMORY, "cannot read the restore's document");
        if (!ok && d)
                mark_not_restored(&run, d, specs, n_specs);
        if (ok) {
                /* libarchive makes the missing directories above an entry with the umask (those
                 * the backup holds get their stored modes): 0700, so that a component restored
                 * below DIR is not opened up by parents that were private where it came from. */
                mode_t old_umask = umask(077);
                restore_selected(&run, d, chain, n_chain, to, specs, n_specs);
                umask(old_umask);
        }
        /* PostRestore comes whenever PreRestore did, so writers restart what they stopped. */
        if (run.r.b && d) {
                int32_t hr = vss_backup_post_restore_sync(b);
                run_closing_phase(&run, hr, "post-restore");
                /* Files are in place, and no writer finished the restore (vss-writer-postgres points
                 * a copy's WAL and tablespace links at the copy then): said where it is seen. */
                if (hr < 0 && ok)
                        on_warning(to ? to : "/", "the restore's last step",
                                   "PostRestore did not complete (vssd gone?): what a writer does there may not be done "
                                   "(a database copy may still point at the original's files); do not start what was "
                                   "restored: run the restore again once vssd runs", NULL);
        }
        if (!arg_json && !run.r.error_hr)
                printf("Restored from %s%s%s\n", src, to ? " to " : "", to ? to : "");
        json_object *extra = json_object_new_object();
        json_object_object_add(extra, "source", json_object_new_string(src));
        json_object_object_add(extra, "to", json_object_new_string(to ? to : ""));
        json_object *ch = json_object_new_array();
        for (size_t i = 0; i < n_chain; i++)
                json_object_array_add(ch, json_object_new_string(vss_backup_type_name(chain[i].manifest.type)));
        json_object_object_add(extra, "chain", ch);
        add_warnings(extra);
        for (size_t i = 0; i < n_chain; i++)
                backup_close(&chain[i]);
        vss_backup_document_free(d);
        return run_finish(&run, extra);
}
