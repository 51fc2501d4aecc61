/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <sys/types.h>

/*
 * Where vssbackup keeps a backup: a directory or a tar archive (pax format). Both hold the same
 * layout: openvss/<documents> (small JSON files, written first), data/<original absolute path
 * without the leading '/'> for every stored file, and openvss/index (written last): the original
 * path of every file present at backup time, stored or not (an incremental lists unchanged files
 * without storing them), NUL-separated. openvss/excludes (written just before the index) keeps the
 * exclude groups the backup was made with, so a prune never removes what was left out on purpose:
 * records of path NUL filespec NUL "1"|"0" (recursive) NUL.
 *
 * Functions return 0 (or a count) on success, a negative errno on failure, with a malloc'd message
 * in *ret_error (set to NULL on success; ret_error may be NULL).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_NAME_MAX 128U                          /* document names */
#define STORE_DOCUMENT_MAX (16U * 1024U * 1024U)     /* document data */
#define STORE_INDEX_MAX (256U * 1024U * 1024U)       /* openvss/index read back */

typedef struct Store Store;

typedef struct StoreFileGroup {
        const char *path;      /* absolute original path (a directory or a file) */
        const char *filespec;  /* fnmatch(3) pattern on the file's base name; NULL or "*": all */
        bool recursive;        /* also files in subdirectories of path */
} StoreFileGroup;

typedef void (*store_progress_fn)(uint64_t files, uint64_t bytes, const char *current, void *userdata);

/* dest ending in .tar, .tar.gz, .tar.xz or .tar.zst: an archive file (mode 0600), which must not
 * exist yet (compression from the suffix). Anything else: a directory, created (mode 0700) if
 * absent, which must be empty. */
int store_create(const char *dest, Store **ret, char **ret_error);
/* Called after each file stored (store_add_files) or restored (store_restore), with running totals. */
void store_set_progress(Store *st, store_progress_fn fn, void *userdata);
/* Called for each item of metadata a target filesystem could not keep (an xattr, an ACL, a file
 * flag): path is where it was to be kept. The store or restore still succeeds; n_warnings counts. */
typedef void (*store_warning_fn)(const char *path, const char *what, const char *error, void *userdata);
void store_set_warning(Store *st, store_warning_fn fn, void *userdata);
/* Called when a walk reading a copy (a source_root that is not the original place) meets a
 * directory that where it is now is the root of another filesystem, not a mount point: a nested
 * btrfs subvolume, which the copy holds as an empty directory. dev: that filesystem's. (Mount
 * points the caller finds in the mount table.) */
typedef void (*store_boundary_fn)(const char *path, dev_t dev, void *userdata);
void store_set_boundary(Store *st, store_boundary_fn fn, void *userdata);
/* Whether a walk with excludes x leaves out directory dir, and all below it: a recursive exclude
 * of all names at or above it. */
bool store_dir_excluded(const StoreFileGroup *x, size_t n, const char *dir);
/* A document under openvss/NAME (NAME: [A-Za-z0-9._-]+, at most STORE_NAME_MAX bytes, not ".",
 * "..", "index", "excludes" or "fflags"; data at most STORE_DOCUMENT_MAX). Each name once (-EEXIST). */
int store_put_document(Store *st, const char *name, const char *data, size_t len, char **ret_error);
/*
 * Stores the files of group. Original path P (within strip) is read from source_root +
 * (P + strlen(strip)): source_root is where the original filesystem is visible now, e.g. a shadow
 * copy's mount /x/.openvss/SET/SHADOW standing for the volume strip=/mnt/vol. With strip "" and
 * source_root "" the original paths are read directly. Parent directories of group->path are
 * stored too (those outside strip with the metadata they have now). Stored name: data/ + P
 * without its leading '/'.
 *
 * Directories below the group path are walked (and stored, for their metadata) when recursive;
 * the walk does not follow symlinks (a symlink at group->path is stored as a symlink) and stays on
 * the filesystem of group->path (mount points are stored as empty directories). Sockets are
 * skipped. A file matching any exclude (same matching rules as a group) is skipped; a directory
 * only when a recursive exclude for all names covers it. since_usec > 0: regular files whose
 * mtime and ctime are both < since_usec are listed in the index but not stored (incremental).
 * A file in two groups is stored once. A missing group path stores nothing (returns 0); a missing
 * source_root is an error.
 */
int store_add_files(Store *st, const char *source_root, const char *strip, const StoreFileGroup *group,
                    const StoreFileGroup *excludes, size_t n_excludes, uint64_t since_usec, char **ret_error);
/* As store_add_files (no excludes, not incremental), for files another user hands over: every file
 * and directory within strip must belong to owner, checked on the descriptor it is read from
 * (-EPERM, and the backup is marked failed, otherwise). */
int store_add_owned_files(Store *st, const char *source_root, const char *strip, const StoreFileGroup *group, uid_t owner,
                          char **ret_error);
/* Writes the index and closes (fsync'ed). Frees st. On failure the output is removed. */
int store_finish(Store *st, char **ret_error);
/* Gives up: removes what was written (the directory's contents it created, or the archive file). Frees. Accepts NULL. */
void store_abort(Store *st);

/* Opens an existing backup (a directory with openvss/index, or an archive file, compression
 * detected). An archive is read through once: a truncated, corrupt or incomplete one (no index),
 * one with unsafe names, with an entry below a non-directory entry (a file or symlink) or with a
 * hard link to no earlier file of the archive fails here, before anything is restored from it. */
int store_open(const char *src, Store **ret, char **ret_error);
/* Reads openvss/NAME into a malloc'd, NUL-terminated buffer; at most max bytes (larger: -EFBIG,
 * "... larger than N bytes"). Missing: -ENOENT. */
int store_get_document(Store *st, const char *name, size_t max, char **ret_data, size_t *ret_len, char **ret_error);
/* The path a backup open for reading is read through (/proc/self/fd/N: the backup as opened),
 * for anything else to look at the same backup; NULL when writing. */
const char *store_source(Store *st);
/* The backup an incremental or differential st is based on (kept open by the caller): a file
 * unchanged since is listed only where base's index has it at the same path (one in a directory
 * renamed since keeps its times but is nowhere in the chain at its new path: stored). */
void store_set_base(Store *st, Store *base);
/* Whether original path P was present at backup time (in the index). */
bool store_index_has(Store *st, const char *path);
/* Whether the index has a path strictly below directory dir (a backup open for reading). */
bool store_index_has_below(Store *st, const char *dir);

typedef struct StoreRestoreRule {
        StoreFileGroup from;        /* which stored files (by original path) this rule takes */
        const char *to;             /* where from.path goes: P -> to + (P + strlen(from.path)); NULL: from.path itself (original place) */
        bool no_overwrite;          /* leave existing files alone */
        const char *beneath;        /* optional: the directory the caller named; to (or from.path) must be below it.
                                     * Only it is resolved: below it no symlink is followed */
        bool owner_check;           /* to (or from.path) is a place uid owner_uid asked for (a writer's wish): see below */
        uint32_t owner_uid;
        bool prune;                 /* prune this rule's destination (below) even without prune */
        bool no_prune;              /* never prune it (a filesystem whose files now are not the backup's to judge) */
        bool untrusted;             /* a user could have written the backup: no privilege comes back (below) */
        int64_t content_uid;        /* untrusted: the files become this uid's (>= 0), else keep theirs */
        int64_t content_gid;        /* ... and this group's (>= 0), else keep theirs */
        const char *const *links_back; /* NULL-terminated, optional: a symlink with an absolute target at
                                        * or below one of these paths fails the restore (-ENOLINK),
                                        * naming it, before anything is put in place */
} StoreRestoreRule;
/*
 * Puts back every stored file matching a rule (first matching rule wins; others are skipped),
 * with ownership, modes, times, xattrs, ACLs, hard links, symlinks and holes. With to == NULL,
 * missing parent directories of from.path are recreated from the backup too.
 *
 * Where: the destination's directory (beneath, else the longest existing part of to, else of
 * from.path's parent) is resolved (beneath as the caller named it; to and from.path following only
 * root's own symlinks, beneath_resolve_trusted()); below it every create, open, rename and unlink is fd-relative
 * and follows no symlink (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS): a symlink on the way
 * fails the restore, one in the place of a restored file or directory is replaced, not followed.
 * With owner_check (and owner_uid not 0, and no beneath), to (or from.path) is walked from "/"
 * without symlinks and honoured only if its deepest existing directory is owned by owner_uid, and
 * so is every directory below the first one of owner_uid on the way (-EPERM, naming the directory
 * and the rule, otherwise).
 *
 * How: every rule's files are first written into a new private directory (mode 0700) beneath
 * the deepest existing directory of its destination, and moved into place only when all of the
 * backup was read and written without error; a failure leaves nothing behind. Moving never
 * changes a directory that existed before (its owner, mode and times stay); it replaces existing
 * files (or, with no_overwrite, leaves them) and fails, before moving anything, where an existing
 * directory stands for a file or (no_overwrite) an existing file or symlink for a directory.
 *
 * With untrusted, nothing in the backup gives privilege: setuid and setgid bits are cleared
 * (directories keep setgid), security.* and trusted.* xattrs (file capabilities, SELinux labels)
 * and file flags are not restored, device nodes fail the restore (-EPERM), and with content_uid
 * (content_gid) every file is that uid's (group's).
 *
 * With prune: afterwards, under each rule's destination, files (not directories) that match the
 * rule's group but are absent from the index and matched no exclude of the backup are removed
 * (files deleted since: needed when applying an incremental chain). Returns the number of
 * non-directory entries put in place.
 */
int store_restore(Store *st, const StoreRestoreRule *rules, size_t n_rules, bool prune, char **ret_error);
void store_close(Store *st); /* accepts NULL */
