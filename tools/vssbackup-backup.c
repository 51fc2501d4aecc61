/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* vssbackup backup: the components chosen, their files copied from the shadow copies into the
 * store, with the documents. */

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "lib/openat.h"
#include "tools/beneath.h"
#include "tools/vssbackup.h"

typedef struct Selected {
        const vss_writer_metadata *wm;
        const vss_component_info *ci;
        bool named;    /* with --component: root chose it, whoever's its paths are */
        bool required; /* with --component: its writer requires it (not selectable for backup) */
} Selected;

/* Whether a component of wm above ci (ci's logical path is its path and name, or lies below
 * them) is selectable for backup: ci is then in a component set, included only with it. */
static bool selectable_above(const vss_writer_metadata *wm, const vss_component_info *ci) {
        char key[VSS_MAX_STRING + VSS_MAX_NAME + 2];
        for (size_t k = 0; k < wm->n_components; k++) {
                const vss_component_info *a = &wm->components[k];
                snprintf(key, sizeof(key), "%s%s%s", a->logical_path, isempty(a->logical_path) ? "" : "/", a->name);
                if (a != ci && a->selectable_for_backup && logical_within(ci->logical_path, key))
                        return true;
        }
        return false;
}

/* A writer with components chosen (sel[first..n)) has its required ones backed up too, as VSS
 * has a requester do: those not selectable for backup and in no set of a selectable one (a
 * user's writer's only where their paths are its user's: root did not name them, see
 * unnamed_components()). Returns the new n. */
static size_t required_components(const vss_writer_metadata *wm, Selected *sel, size_t first, size_t n) {
        for (size_t k = 0; k < wm->n_components; k++) {
                const vss_component_info *ci = &wm->components[k];
                bool have = false;
                for (size_t j = first; j < n && !have; j++)
                        have = sel[j].ci == ci;
                if (!have && !ci->selectable_for_backup && !selectable_above(wm, ci))
                        sel[n++] = (Selected) { wm, ci, false, true };
        }
        return n;
}

/* The components to back up: the --component ones with the components below them and their
 * writers' required ones, or every one. */
static bool select_components(Run *run, char **specs, size_t n_specs, Selected **ret, size_t *ret_n) {
        vss_backup *b = run->r.b;
        size_t total = 0, n = 0;
        vss_backup_document *d = NULL; /* every writer, with its owner: not in component mode yet */
        if (!report_step(&run->r, vss_backup_get_document(b, &d)))
                return false;
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++)
                total += vss_backup_metadata_get(b, i)->n_components;
        Selected *sel = calloc(total ? total : 1, sizeof(*sel));
        bool *used = calloc(n_specs ? n_specs : 1, sizeof(bool));
        if (!sel || !used) {
                free(sel);
                free(used);
                vss_backup_document_free(d);
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        }
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                const char *name = spec_name(document_writer(d, wm), wm->name);
                size_t first = n;
                for (size_t k = 0; k < wm->n_components; k++) {
                        const vss_component_info *ci = &wm->components[k];
                        bool want = n_specs == 0, named = false;
                        /* A component named selects the components below it (its set): those root
                         * did not name are a user's writer's only where their paths are its user's. */
                        for (size_t s = 0; s < n_specs; s++)
                                if (spec_covers(specs[s], &wm->writer_id, name, ci->logical_path, ci->name)) {
                                        want = used[s] = true;
                                        named = named || spec_matches(specs[s], &wm->writer_id, name,
                                                                      ci->logical_path, ci->name);
                                }
                        /* With --component, those root did not name are checked once the writer
                         * is in the document (choose_components()). */
                        if (want && !(n_specs == 0 &&
                                      component_left_out(d, wm, ci, "name it with --component to back it up")))
                                sel[n++] = (Selected) { wm, ci, named, false };
                }
                if (n > first && n_specs > 0)
                        n = required_components(wm, sel, first, n);
        }
        vss_backup_document_free(d);
        for (size_t s = 0; s < n_specs; s++)
                if (!used[s]) {
                        free(sel);
                        free(used);
                        return run_fail(run, VSS_E_OBJECT_NOT_FOUND, "no writer has the component '%s' (another "
                                        "user's writer answers to its writer id, not its name)", specs[s]);
                }
        free(used);
        *ret = sel;
        *ret_n = n;
        return true;
}

static int put_document(Run *run, Store *st, const char *name, const char *data) {
        _cleanup_free_ char *err = NULL;
        int r = store_put_document(st, name, data, strlen(data), &err);
        if (r < 0)
                run_fail(run, VSS_E_UNEXPECTED, "cannot store %s: %s", name, err ? err : strerror(-r));
        return r;
}

/* The file groups of a component as the store takes them. */
static StoreFileGroup *groups_of(const vss_file_desc *f, size_t n) {
        StoreFileGroup *g = calloc(n ? n : 1, sizeof(*g));
        for (size_t i = 0; g && i < n; i++)
                g[i] = (StoreFileGroup) { f[i].path, f[i].filespec, f[i].recursive };
        return g;
}

/* A user's component is read from the shadow copy along its own path only: no symlink on the
 * way (one swapped in before the cut would lead into files that are not the user's), and, unless
 * root named the component (--component), what it names is the user's, as component_left_out()
 * checked on the live tree. A path missing from the copy is fine (nothing of it is stored). */
static bool users_path_in_shadow(Run *run, const Selected *s, const Volume *v, const char *path, uid_t uid) {
        const char *rel = path + strlen(v->path);
        while (*rel == '/')
                rel++;
        _cleanup_close_ int root = open(v->shadow_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return run_fail(run, VSS_E_UNEXPECTED, "cannot open the shadow copy %s: %m", v->shadow_path);
        _cleanup_close_ int fd = isempty(rel) ? fcntl(root, F_DUPFD_CLOEXEC, 3) : open_no_symlinks(root, rel, O_PATH, 0, true);
        struct stat st;
        if (fd == -ENOENT)
                return true;
        if (fd < 0 || fstat(fd, &st) < 0 || (!s->named && st.st_uid != uid))
                return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                "component '%s' of writer '%s' not backed up: in the shadow copy, %s %s (uid %u's "
                                "component is read along its own path only)",
                                s->ci->name, s->wm->name, path,
                                fd == -ELOOP || fd == -ENOTDIR ? "has a symlink on the way"
                                : fd < 0                       ? "cannot be opened"
                                                               : "is not the user's",
                                (unsigned) uid);
        return true;
}

/* Whether the writer hands over files made after the cut to be stored below m (PostgreSQL's WAL
 * in pg_wal on a mount of its own): it knows what the backup needs from there. */
static bool writer_files_below(const vss_bc_component *c, const char *m) {
        for (size_t i = 0; c && i < c->n_writer_files; i++)
                if (path_within(c->writer_files[i].destination, m))
                        return true;
        return false;
}

typedef struct MountSkip {
        const StoreFileGroup *ex;
        size_t n_ex;
        const vss_bc_component *c;
} MountSkip;

/* A mount the writer's excludes leave out, or where it hands over what the backup needs. */
static bool mount_known(const char *m, void *userdata) {
        const MountSkip *k = userdata;
        return store_dir_excluded(k->ex, k->n_ex, m) || writer_files_below(k->c, m);
}

/* A nested btrfs subvolume met in a component's tree (store_set_boundary()): its shadow copy
 * holds it as an empty directory unless the set has it. Never silent, as for a mount. */
typedef struct Boundary {
        const Volume *vols;
        size_t n_vols;
        MountSkip skip;
} Boundary;

static void on_boundary(const char *path, dev_t dev, void *userdata) {
        const Boundary *b = userdata;
        if (!volumes_have_dev(b->vols, b->n_vols, dev) && !mount_known(path, (void *) &b->skip))
                on_warning(path, "the files of the filesystem there (a btrfs subvolume)",
                           "a component's files are read from its own filesystem's shadow copy, which holds "
                           "this subvolume as an empty directory; give it a component of its own", NULL);
}

/* Whether the backup follows mounts and nested subvolumes below the component's recursive groups
 * (volumes_below_component()): a root writer's only. */
static bool follows_mounts(const vss_writer_metadata *owner) {
        return owner && owner->owner_known && owner->owner_uid == 0;
}

static bool copy_component(Run *run, Store *st, const vss_backup_document *d, const Selected *s, const Volume *vols,
                           size_t n_vols, uint64_t since_usec) {
        const vss_writer_metadata *owner = d ? document_writer(d, s->wm) : NULL;
        const vss_bc_component *c = d ? vss_backup_document_find(d, &s->wm->writer_id, &s->wm->instance_id,
                                                                 s->ci->logical_path, s->ci->name)
                                      : NULL;
        int64_t uid = owner && owner->owner_known ? (int64_t) owner->owner_uid : 0;
        _cleanup_free_ StoreFileGroup *groups = groups_of(s->ci->files, s->ci->n_files);
        _cleanup_free_ StoreFileGroup *ex = groups_of(s->wm->excludes, s->wm->n_excludes);
        if (!groups || !ex)
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        for (size_t i = 0; i < s->ci->n_files; i++) {
                _cleanup_free_ char *err = NULL;
                const Volume *v = volume_of(vols, n_vols, groups[i].path);
                if (!v)
                        return run_fail(run, VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT,
                                        "%s of component '%s' is on no volume of the snapshot set", groups[i].path,
                                        s->ci->name);
                if (uid > 0 && !users_path_in_shadow(run, s, v, groups[i].path, (uid_t) uid))
                        return false;
                Boundary b = { vols, n_vols, { ex, s->wm->n_excludes, c } };
                store_set_boundary(st, on_boundary, &b);
                int r = store_add_files(st, v->shadow_path, v->path, &groups[i], ex, s->wm->n_excludes, since_usec, &err);
                /* The filesystems below a recursive group that the backup followed (root's, by
                 * follow_one()), each from its own shadow copy; not a user's writer's volume. */
                for (size_t k = 0; r >= 0 && groups[i].recursive && follows_mounts(owner) && k < n_vols; k++) {
                        StoreFileGroup below = { vols[k].path, groups[i].filespec, true };
                        if (!vols[k].followed || &vols[k] == v || streq(vols[k].path, groups[i].path) ||
                            !path_within(vols[k].path, groups[i].path))
                                continue;
                        free(err);
                        err = NULL;
                        r = store_add_files(st, vols[k].shadow_path, vols[k].path, &below, ex, s->wm->n_excludes,
                                            since_usec, &err);
                }
                store_set_boundary(st, NULL, NULL);
                if (r < 0)
                        return run_fail(run, VSS_E_UNEXPECTED, "copying %s of component '%s': %s", groups[i].path,
                                        s->ci->name, err ? err : strerror(-r));
                /* Read from its volume's shadow copy, a group holds a filesystem mounted below it
                 * (not in the set) as an empty directory. */
                if (groups[i].recursive)
                        warn_mounts_below(groups[i].path, vols, n_vols, mount_known,
                                          &(MountSkip) { ex, s->wm->n_excludes, c },
                                          "a component's files are read from its own filesystem's shadow copy, "
                                          "which holds this mount point as an empty directory; give that "
                                          "filesystem a component of its own");
        }
        return true;
}

/* Whether every file under path (itself included, symlinks not followed) belongs to uid: a
 * user's writer may hand the requester only files its owner owns, never make a more privileged
 * requester read someone else's. ret_bad: the first file that does not (static buffer). */
static uid_t files_owner_want;
static char files_owner_bad[PATH_MAX];
static int check_owner(const char *fpath, const struct stat *st, int type, struct FTW *ftw) {
        if (type != FTW_NS && type != FTW_DNR && st->st_uid == files_owner_want)
                return 0;
        snprintf(files_owner_bad, sizeof(files_owner_bad), "%s", fpath);
        return 1;
}

static bool files_owned_by(const char *path, uid_t uid) {
        files_owner_want = uid;
        files_owner_bad[0] = 0;
        return nftw(path, check_owner, 16, FTW_PHYS) == 0;
}

/* Whether path lies within one of the component's own file groups. */
static bool in_own_groups(const vss_component_info *ci, const char *path) {
        for (size_t i = 0; i < ci->n_files; i++)
                if (path_within(path, ci->files[i].path))
                        return true;
        return false;
}

/* A component of another writer whose files path overlaps (one within the other), unless that
 * writer belongs to the same user: NULL when there is none. Every identified writer counts, taking
 * part or not: the store keeps one file per path, the first stored, and a restore of that
 * writer's component takes what is stored at its paths. */
static const vss_component_info *foreign_component(Run *run, const vss_backup_document *d, const Selected *s,
                                                   uint32_t owner_uid, const char *path,
                                                   const vss_writer_metadata **ret_writer) {
        vss_backup *b = run->r.b;
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                if (vss_id_equal(&wm->instance_id, &s->wm->instance_id))
                        continue;
                const vss_writer_metadata *o = document_writer(d, wm);
                if (o && o->owner_known && o->owner_uid == owner_uid)
                        continue;
                for (size_t k = 0; k < wm->n_components; k++)
                        for (size_t j = 0; j < wm->components[k].n_files; j++)
                                if (path_overlaps(path, wm->components[k].files[j].path)) {
                                        *ret_writer = wm;
                                        return &wm->components[k];
                                }
        }
        return NULL;
}

/* Whether path is a place of uid's own, by the rule a restore honours a user's wish with
 * (beneath_deepest(): no symlink on the way, the deepest existing directory uid's, and every one
 * below the first of uid's), a file already there uid's too: files uid stores there are what uid
 * could write there anyway, whoever else's component covers it (a database's directory below
 * root's /var/lib). */
static bool users_place(const char *path, uint32_t uid) {
        _cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -EBADF;
        _cleanup_free_ char *err = NULL;
        const char *rest = NULL;
        struct stat st;
        if (root < 0 || path[0] != '/' || beneath_deepest(root, "", path, uid, &fd, &rest, &err) < 0)
                return false;
        /* The walk stops before a file that is there: it is what would be replaced. */
        if (!isempty(rest) && fstatat(fd, rest, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return st.st_uid == uid;
        return true;
}

/* The files the component's writer made after the shadows were cut (its record's writer_files),
 * read where they are now and stored as the component's files at their stored_as paths. Stored
 * first, whatever the backup type, so that they take the place of the shadow's older copies.
 * stored_as must lie within the component's own file groups. A writer that is not root's may name
 * only files its owner owns (checked on what is read, not before) and may not store them where
 * another user's writer has files, unless that place is its user's own. */
static bool copy_writer_files(Run *run, Store *st, const vss_backup_document *d, const Selected *s) {
        const vss_bc_component *c = vss_backup_document_find(d, &s->wm->writer_id, &s->wm->instance_id,
                                                             s->ci->logical_path, s->ci->name);
        const vss_writer_metadata *owner = document_writer(d, s->wm);
        for (size_t i = 0; c && i < c->n_writer_files; i++) {
                const vss_file_mapping *f = &c->writer_files[i];
                StoreFileGroup g = { f->destination, f->filespec, f->recursive };
                const vss_writer_metadata *other = NULL;
                const vss_component_info *oc = NULL;
                _cleanup_free_ char *err = NULL;
                if (!owner || !owner->owner_known)
                        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                        "writer files of component '%s': vssd recorded no owner for its writer",
                                        s->ci->name);
                if (!in_own_groups(s->ci, f->destination))
                        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                        "writer files of component '%s': %s is to be stored as %s, which is not within "
                                        "the component's own files", s->ci->name, f->path, f->destination);
                if (owner->owner_uid != 0 && !users_place(f->destination, owner->owner_uid) &&
                    (oc = foreign_component(run, d, s, owner->owner_uid, f->destination, &other)))
                        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                        "writer files of component '%s': %s is to be stored as %s, where component "
                                        "'%s' of writer '%s' has files; a user's writer stores files only where no "
                                        "other user's writer has any", s->ci->name, f->path, f->destination, oc->name,
                                        other->name);
                if (owner->owner_uid != 0 && !files_owned_by(f->path, (uid_t) owner->owner_uid))
                        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                        "writer files of component '%s': %s does not belong to the writer's owner "
                                        "(uid %u); a writer hands over only its owner's files", s->ci->name,
                                        files_owner_bad[0] ? files_owner_bad : f->path, (unsigned) owner->owner_uid);
                int r = owner->owner_uid != 0
                                ? store_add_owned_files(st, f->path, f->destination, &g, (uid_t) owner->owner_uid, &err)
                                : store_add_files(st, f->path, f->destination, &g, NULL, 0, 0, &err);
                if (r == -EPERM)
                        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                        "writer files of component '%s': %s; a writer hands over only its owner's files",
                                        s->ci->name, err ? err : strerror(-r));
                if (r < 0)
                        return run_fail(run, VSS_E_UNEXPECTED, "copying %s (as %s) of component '%s': %s", f->path,
                                        f->destination, s->ci->name, err ? err : strerror(-r));
        }
        return true;
}

/* What backup chooses on each attempt: the components, and the stamps they got in the base. */
typedef struct Choice {
        char **specs;
        size_t n_specs;
        vss_backup_type type;
        const vss_backup_document *base; /* the base backup's document, or NULL */
        Selected *sel;
        size_t n_sel;
} Choice;

/* The components that came with those --component named (below them, or required by their
 * writer): added where their writer is root's, or their paths its user's (component_left_out(),
 * by the owner the document records once a component of the writer is in it); a writer that is
 * not in it yet (no component of its named) cannot be told: left out, said so. */
static bool unnamed_components(Run *run, Choice *ch) {
        vss_backup_document *d = NULL;
        if (!report_step(&run->r, vss_backup_get_document(run->r.b, &d)))
                return false;
        size_t k = 0;
        bool ok = true;
        for (size_t i = 0; i < ch->n_sel; i++) {
                const Selected *s = &ch->sel[i];
                if (s->named) {
                        ch->sel[k++] = *s;
                        continue;
                }
                if (!document_writer(d, s->wm)) {
                        if (!arg_quiet)
                                log_msg("component '%s' of writer '%s' left out: no component of its writer was named, "
                                        "so whose it is cannot be told (name it to back it up)", s->ci->name, s->wm->name);
                        continue;
                }
                if (component_left_out(d, s->wm, s->ci, "name it to back it up"))
                        continue;
                if (ok)
                        ok = report_step(&run->r, vss_backup_add_component(run->r.b, &s->wm->instance_id, &s->wm->writer_id,
                                                                           s->ci->logical_path, s->ci->name));
                if (s->required && !arg_quiet)
                        log_msg("component '%s' of writer '%s' is backed up too: its writer requires it (not selectable "
                                "for backup)", s->ci->name, s->wm->name);
                ch->sel[k++] = *s;
        }
        ch->n_sel = k;
        vss_backup_document_free(d);
        return ok;
}

static bool choose_components(Run *run, void *userdata) {
        Choice *ch = userdata;
        vss_backup *b = run->r.b;

        free(ch->sel);
        ch->sel = NULL;
        ch->n_sel = 0;
        bool ok = select_components(run, ch->specs, ch->n_specs, &ch->sel, &ch->n_sel);
        /* --component: only the components added (component mode), from here on. */
        ok = ok && (ch->n_specs == 0 || report_step(&run->r, vss_backup_set_backup_state(b, true, false, ch->type, false)));
        for (size_t i = 0; ok && ch->n_specs > 0 && i < ch->n_sel; i++)
                if (ch->sel[i].named)
                        ok = report_step(&run->r, vss_backup_add_component(b, &ch->sel[i].wm->instance_id,
                                                                           &ch->sel[i].wm->writer_id,
                                                                           ch->sel[i].ci->logical_path, ch->sel[i].ci->name));
        ok = ok && (ch->n_specs == 0 || unnamed_components(run, ch));
        for (size_t i = 0; ok && i < ch->n_sel; i++) {
                const Selected *s = &ch->sel[i];
                /* The writer reads the stamp its component got in the base backup. */
                const vss_bc_component *prev = ch->base ? vss_backup_document_find(ch->base, &s->wm->writer_id, NULL,
                                                                                   s->ci->logical_path, s->ci->name)
                                                        : NULL;
                if (ok && prev && !isempty(prev->backup_stamp))
                        ok = report_step(&run->r, vss_backup_set_previous_backup_stamp(b, &s->wm->instance_id,
                                                                                       &s->wm->writer_id,
                                                                                       s->ci->logical_path, s->ci->name,
                                                                                       prev->backup_stamp));
        }
        return ok;
}

/* VSS: a requester follows mount points in a component's recursive file groups, and shadow
 * copies the volumes there ("Working with Mounted Folders and Reparse Points"). So a filesystem
 * below a root writer's recursive group joins the set, and its files are stored with the group's
 * (copy_component()), when it is root's: a local filesystem mounted from a block device, or a
 * btrfs subvolume, whose root directory is root's. Not what a user could have made (a FUSE or
 * user mount, a subvolume a user created where they may write: root's backup would read what
 * the user serves, or fail past the volume limit), nor network filesystems, nor what the writer
 * excludes, nor anything below a user's writer's group: those are warned of, as before. */
typedef struct FollowBelow {
        Run *run;
        Volume *vols;
        size_t *n_vols;
        const StoreFileGroup *ex;
        size_t n_ex;
        bool ok;
} FollowBelow;

static bool follow_one(const FsBelow *fs, void *userdata) {
        FollowBelow *f = userdata;
        struct stat st;
        if (strchr(fs->path, '\n') || !root_only_way(fs->path) || store_dir_excluded(f->ex, f->n_ex, fs->path))
                return true;
        if (!fs->subvolume && (!fs->source || stat(fs->source, &st) < 0 || !S_ISBLK(st.st_mode)))
                return true;
        size_t before = *f->n_vols;
        f->ok = volume_add(f->run, f->vols, f->n_vols, fs->path);
        /* Added for it (not one another component asked for, which keeps its own ways). */
        if (f->ok && *f->n_vols > before && f->vols[*f->n_vols - 1].dev == fs->dev)
                f->vols[*f->n_vols - 1].followed = true;
        return f->ok;
}

/* d: the live document, which records the owner vssd saw subscribe the writer. */
static bool volumes_below_component(Run *run, Volume *vols, size_t *n_vols, const Selected *s,
                                    const vss_backup_document *d) {
        if (!follows_mounts(document_writer(d, s->wm)))
                return true;
        _cleanup_free_ StoreFileGroup *ex = groups_of(s->wm->excludes, s->wm->n_excludes);
        FollowBelow f = { run, vols, n_vols, ex, s->wm->n_excludes, true };
        if (!ex)
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        for (size_t k = 0; f.ok && k < s->ci->n_files; k++)
                if (s->ci->files[k].recursive)
                        (void) filesystems_below(s->ci->files[k].path, false, follow_one, &f);
        return f.ok;
}

static bool component_volumes(Run *run, Volume *vols, size_t *n_vols, void *userdata) {
        const Choice *ch = userdata;
        bool ok = true;

        vss_backup_document *d = NULL;

        for (size_t i = 0; ok && i < ch->n_sel; i++)
                for (size_t k = 0; ok && k < ch->sel[i].ci->n_files; k++)
                        ok = volume_add(run, vols, n_vols, ch->sel[i].ci->files[k].path);
        ok = ok && report_step(&run->r, vss_backup_get_document(run->r.b, &d));
        for (size_t i = 0; ok && i < ch->n_sel; i++)
                ok = volumes_below_component(run, vols, n_vols, &ch->sel[i], d);
        vss_backup_document_free(d);
        return ok;
}

/* With --for: a selected component's path below a --for volume but on another filesystem gets a
 * volume of its own (volume_add() adds only those). Missing paths are left to the copy. */
static bool nested_volumes(Run *run, Volume *vols, size_t *n_vols, void *userdata) {
        const Choice *ch = userdata;
        vss_backup_document *d = NULL;
        bool ok = report_step(&run->r, vss_backup_get_document(run->r.b, &d));

        for (size_t i = 0; ok && i < ch->n_sel; i++) {
                bool in_set = false;
                for (size_t k = 0; ok && k < ch->sel[i].ci->n_files; k++) {
                        const char *p = ch->sel[i].ci->files[k].path;
                        if (volume_of(vols, *n_vols, p) && access(p, F_OK) == 0) {
                                ok = volume_add(run, vols, n_vols, p);
                                in_set = true;
                        }
                }
                if (ok && in_set)
                        ok = volumes_below_component(run, vols, n_vols, &ch->sel[i], d);
        }
        vss_backup_document_free(d);
        return ok;
}

/* The base of an incremental or differential backup: opened, checked, and named in man. */
static void open_base(Run *run, const char *base_path, vss_backup_type type, Backup *base, Manifest *man) {
        char real[PATH_MAX] = "";

        if (!backup_open(run, base_path, base))
                return;
        if (type == VSS_BT_DIFFERENTIAL && base->manifest.type != VSS_BT_FULL)
                run_fail(run, VSS_E_INVALIDARG, "the base of a differential backup must be a full backup; %s is %s",
                         base_path, vss_backup_type_name(base->manifest.type));
        else if (base->manifest.type == VSS_BT_COPY)
                run_fail(run, VSS_E_INVALIDARG, "%s is a copy backup, which no backup is based on", base_path);
        if (!realpath(base_path, real))
                run_fail(run, VSS_E_OBJECT_NOT_FOUND, "cannot resolve %s", base_path);
        snprintf(man->base, sizeof(man->base), "%s", real);
        man->base_created_usec = base->manifest.created_usec;
}

static Store *open_store(Run *run, const char *dest) {
        _cleanup_free_ char *err = NULL;
        Store *st = NULL;
        int r = store_create(dest, &st, &err);

        if (r < 0) {
                /* store_create()'s message names the path already. */
                if (err)
                        run_fail(run, VSS_E_INVALIDARG, "cannot write the backup: %s (--to takes a new or empty directory, "
                                 "or an archive that does not exist)", err);
                else
                        run_fail(run, VSS_E_INVALIDARG, "cannot write the backup to %s: %s", dest, strerror(-r));
                return NULL;
        }
        store_set_warning(st, on_warning, NULL);
        if (progress_enabled())
                store_set_progress(st, on_progress, NULL);
        return st;
}

/* A writer whose backup stamp begins "crash-consistent:" (vss-writer-postgres's, when the whole
 * cluster is on one btrfs subvolume) made no copy of its own: its files restore only from one
 * point-in-time cut, as after a power loss. A shadow of them that is not one (a provider that
 * copied file by file, unheld) would restore silently torn: the component fails. */
static bool cut_as_writer_needs(Run *run, const vss_backup_document *d, const Selected *s, const Volume *vols,
                                size_t n_vols) {
        const vss_bc_component *c = vss_backup_document_find(d, &s->wm->writer_id, &s->wm->instance_id,
                                                             s->ci->logical_path, s->ci->name);
        if (!c || !c->backup_stamp || strncmp(c->backup_stamp, "crash-consistent:", 17) != 0)
                return true;
        for (size_t i = 0; i < s->ci->n_files; i++) {
                const Volume *v = volume_of(vols, n_vols, s->ci->files[i].path);
                vss_snapshot_prop p;
                if (!v || vss_backup_get_snapshot_properties(run->r.b, &v->shadow_id, &p) < 0)
                        continue; /* copy_component() says what is missing */
                if (p.attributes & OPENVSS_ATTR_NOT_POINT_IN_TIME)
                        return run_fail(run, VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT,
                                        "component '%s' of writer '%s' was made crash-consistent, which needs one "
                                        "point-in-time cut of its files, and the shadow copy of %s (provider %s) is "
                                        "not point-in-time; use a provider that is (btrfs), or have vssd hold that "
                                        "filesystem (hold_filesystems)",
                                        s->ci->name, s->wm->name, v->path, p.provider);
        }
        return true;
}

/* Copies each chosen component (files changed since since_usec, for incremental and
 * differential) and marks it backed up or not. *all_ok: false when one failed. */
static bool copy_components(Run *run, Store *st, const Choice *ch, const Volume *vols, size_t n_vols,
                            uint64_t since_usec, bool *all_ok) {
        vss_backup *b = run->r.b;
        vss_backup_document *now = NULL;

        if (!report_step(&run->r, vss_backup_get_document(b, &now)))
                return false;
        for (size_t i = 0; i < ch->n_sel; i++) {
                const Selected *s = &ch->sel[i];
                char saved[1024] = "";
                /* Chosen by default, of a writer vssd left out of the set (a user's writer whose
                 * components the set does not meet): nothing of it to copy, nothing failed. */
                if (!s->named && !document_writer(now, s->wm))
                        continue;
                /* A component the base did not back up is stored whole: a restore of it takes
                 * nothing from the base. */
                uint64_t since = ch->base && !vss_backup_document_find(ch->base, &s->wm->writer_id, NULL,
                                                                       s->ci->logical_path, s->ci->name)
                                         ? 0
                                         : since_usec;
                bool c_ok = cut_as_writer_needs(run, now, s, vols, n_vols) && copy_writer_files(run, st, now, s) &&
                            copy_component(run, st, now, s, vols, n_vols, since);
                if (!c_ok) {
                        snprintf(saved, sizeof(saved), "%s", run->r.error_msg);
                        *all_ok = false;
                }
                (void) vss_backup_set_backup_succeeded(b, &s->wm->instance_id, &s->wm->writer_id, s->ci->logical_path,
                                                       s->ci->name, c_ok);
                component_report(run, s->wm, s->ci->logical_path, s->ci->name, c_ok, c_ok ? "backed up" : saved);
        }
        vss_backup_document_free(now);
        return true;
}

/* The backup components document, the manifest and each writer's metadata. */
static bool put_documents(Run *run, Store *st, const char *bcd, const Manifest *man) {
        char name[64], iid[VSS_ID_STRING_MAX];
        vss_backup *b = run->r.b;
        _cleanup_free_ char *m = manifest_format(man);
        bool ok = m && put_document(run, st, BCD_NAME, bcd) >= 0 && put_document(run, st, MANIFEST_NAME, m) >= 0;

        for (size_t i = 0; ok && i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                snprintf(name, sizeof(name), "writer-%s.json", id_string(&wm->instance_id, iid));
                ok = put_document(run, st, name, wm->document) >= 0;
        }
        return ok;
}

int cmd_backup(const char *dest, char **specs, size_t n_specs, vss_backup_type type, const char *base_path,
               char **paths, size_t n_paths) {
        Run run;
        Backup base = {};
        Store *st = NULL;
        size_t n_vols = 0;
        Volume vols[MAX_VOLUMES];
        vss_id set_id = {};
        Manifest man = { .type = type };
        Choice ch = { .specs = specs, .n_specs = n_specs, .type = type };
        _cleanup_free_ char *err = NULL, *bcd = NULL;
        bool all_ok = true;

        if (run_start(&run, "backup") && base_path)
                open_base(&run, base_path, type, &base, &man);
        bool ok = !run.r.error_hr;
        if (ok) {
                st = open_store(&run, dest);
                ok = st != NULL;
                if (ok && base.store)
                        store_set_base(st, base.store);
        }
        ch.base = base.bcd;
        run.attempts = json_object_new_array();
        /* Retries restart from a new session; the destination, still empty, stays. */
        const SnapshotPlan plan = {
                .type = type,
                .paths = paths,
                .n_paths = n_paths,
                .nothing = "nothing to back up: no writer has components; give --for PATH",
                .prepare = choose_components,
                .default_volumes = component_volumes,
                .nested_volumes = nested_volumes,
                .userdata = &ch,
        };
        ok = snapshot_attempts(&run, ok, &plan, vols, &n_vols, &set_id);
        vss_backup *b = run.r.b;
        if (ok) {
                man.created_usec = vols[0].created_usec;
                /* Incremental and differential: files changed since the base was cut. */
                ok = copy_components(&run, st, &ch, vols, n_vols, base.bcd ? base.manifest.created_usec : 0, &all_ok) &&
                     report_step(&run.r, vss_backup_save_as_document(b, &bcd));
        }
        ok = ok && put_documents(&run, st, bcd, &man);
        if (ok && report_step(&run.r, vss_backup_backup_complete_sync(b)))
                ok = report_phase(&run.r, "backup-complete") && ok;
        if (st) {
                /* A backup whose writers failed is no backup: nothing is kept. A component that
                 * failed to copy is kept, marked failed in the document. */
                if (!ok)
                        store_abort(st);
                else if (store_finish(st, &err) < 0)
                        run_fail(&run, VSS_E_UNEXPECTED, "cannot finish %s: %s", dest, strempty(err));
        }
        if (ok && !all_ok && !run.r.error_hr)
                run_fail(&run, VSS_E_UNEXPECTED, "some components could not be copied");
        if (!arg_json && !run.r.error_hr)
                printf("Backup (%s) written to %s\n", vss_backup_type_name(type), dest);
        json_object *extra = json_object_new_object();
        char sid[VSS_ID_STRING_MAX];
        json_object_object_add(extra, "destination", json_object_new_string(dest));
        json_object_object_add(extra, "type", json_object_new_string(vss_backup_type_name(type)));
        json_object_object_add(extra, "snapshot_set_id",
                               json_object_new_string(vss_id_is_null(&set_id) ? "" : id_string(&set_id, sid)));
        json_object_object_add(extra, "base", json_object_new_string(man.base));
        add_warnings(extra);
        backup_close(&base);
        volumes_free(vols, n_vols);
        free(ch.sel);
        return run_finish(&run, extra);
}
