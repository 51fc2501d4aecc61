/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The shadow registry: vssd's persistent record of snapshot sets and their shadow copies, an
 * SQLite database at STATE_DIR/registry.db (WAL, foreign keys on, schema versioned with
 * PRAGMA user_version). Ids are stored as lowercase UUID text.
 *
 * A set is written as 'creating', together with its shadows, before the provider commits, so a
 * crash leaves a journal of what to clean up (registry_list_creating_sets()); it becomes
 * 'committed' after success. Only committed sets are visible to registry_get_shadow() and
 * registry_list_shadows().
 *
 * Every function returns 0 or a negative errno: -ENOENT for unknown ids, -EEXIST for duplicate
 * ones, -ENOMEM, -ENOSPC when the disk is full, -EIO for any other database failure. Each
 * mutating call is one transaction. Outputs are only written on success.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vss/types.h>

typedef struct Registry Registry;

typedef struct ShadowRecord {
        vss_id shadow_id, set_id;
        char *original_path, *shadow_path, *provider;
        uint64_t created_usec;
        uint32_t attributes;
} ShadowRecord;

/* Frees the strings, keeps the struct (which is left with NULL strings). */
void shadow_record_done(ShadowRecord *s);
/* shadow_record_done() on each of n records, then free(a). Accepts NULL. */
void shadow_records_free(ShadowRecord *a, size_t n);

/* Opens or creates state_dir/registry.db (state_dir must exist); migrates the schema. A database
 * from a newer version than this code knows gives -EPROTONOSUPPORT. */
int registry_open(const char *state_dir, Registry **ret);
/* The same, and a registry it cannot use (corrupt or truncated: -EBADMSG; newer schema:
 * -EPROTONOSUPPORT; read-only: -EROFS, -EPERM, -EACCES; a symbolic link: -ELOOP; not a regular
 * file: -EBADF; the disk full: -ENOSPC) is refused before anything is written to it, with a
 * message in errbuf (written on failure only) naming the file, what is wrong and what to do. */
int registry_open_full(const char *state_dir, Registry **ret, char *errbuf, size_t errlen);
/* Does those checks on path (state_dir/registry.db): 0 when it is absent, empty, or a database of
 * schema version known_version or older that passes PRAGMA quick_check. Changes nothing. */
int registry_check_file(const char *state_dir, const char *path, int known_version, char *errbuf, size_t errlen);
/* Accepts NULL, returns NULL. */
Registry *registry_free(Registry *r);
/* Closes the connection and unloads SQLite until the next call needs them (which reopens them,
 * ~1 ms): an idle vssd keeps none of SQLite's pages. Nothing when a transaction is open. */
void registry_release(Registry *r);

static inline void registry_freep(Registry **r) {
        registry_free(*r);
}

/* New set in state 'creating'. -EEXIST if the id is taken. Timestamps above INT64_MAX (SQLite
 * integers are signed) give -ERANGE, here and in registry_add_shadow(). */
int registry_add_set(Registry *r, const vss_id *set_id, uint32_t context, uint64_t created_usec);
/* Set must exist: -ENOENT otherwise; duplicate shadow id: -EEXIST; NULL strings: -EINVAL. */
int registry_add_shadow(Registry *r, const ShadowRecord *s);
/* The new set and its n shadows (whose set_id is set_id), in one transaction. Fails as the two
 * above do, and then records nothing. It survives a crash of vssd but not a power loss until the
 * next durable write (registry_commit_set() is one): it costs no fsync. */
int registry_add_set_shadows(Registry *r, const vss_id *set_id, uint32_t context, uint64_t created_usec,
                             const ShadowRecord *shadows, size_t n);
/* State -> committed (committing twice is fine); -ENOENT if unknown. */
int registry_commit_set(Registry *r, const vss_id *set_id);
/* Removes the set and its shadows, whatever its state; -ENOENT if unknown. */
int registry_remove_set(Registry *r, const vss_id *set_id);
/* Removes the shadow, and its set too when it was the set's last one; -ENOENT if unknown. */
int registry_remove_shadow(Registry *r, const vss_id *shadow_id);

/* A shadow whose data is about to be deleted is marked first (durably): from then on it is no
 * longer visible to registry_get_shadow() and registry_list_shadows(), and
 * registry_list_deleting() has it for a restarted vssd to finish. Unmarked when its provider
 * could not delete it after all. -ENOENT if unknown. */
int registry_set_deleting(Registry *r, const vss_id *shadow_id, bool deleting);
/* Every shadow marked deleting, whatever its set's state. */
int registry_list_deleting(Registry *r, ShadowRecord **ret, size_t *ret_n);

/* Shadows of committed sets only (not being deleted); -ENOENT otherwise. Release *ret with shadow_record_done(). */
int registry_get_shadow(Registry *r, const vss_id *shadow_id, ShadowRecord *ret);
/* All shadows of committed sets not being deleted, ordered by created_usec then id. An empty list is *ret = NULL,
 * *ret_n = 0. Release with shadow_records_free(). */
int registry_list_shadows(Registry *r, ShadowRecord **ret, size_t *ret_n);
/* How many of those registry_list_shadows() lists are of the volume original_path. */
int registry_count_volume_shadows(Registry *r, const char *original_path, unsigned *ret);
/* The shadows of one set, same order. -ENOENT if the set is unknown, or is still 'creating' and
 * include_creating is false. */
int registry_list_set_shadows(Registry *r, const vss_id *set_id, bool include_creating, ShadowRecord **ret,
                              size_t *ret_n);
/* Ids of the sets still 'creating' (left by a crash), oldest first. Release with free(). */
int registry_list_creating_sets(Registry *r, vss_id **ret, size_t *ret_n);

/* The shadow's location, once a provider that decides it during the commit has said. */
int registry_set_shadow_path(Registry *r, const vss_id *shadow_id, const char *shadow_path);
/* The frozen-filesystem journal: written before a flush-and-hold freeze (surviving a crash of vssd,
 * not a power loss, which thaws everything anyway: no fsync), cleared after the thaw;
 * a restarted vssd settles what it lists by the sets' lease files (see freeze.h), and thaws only
 * what a killed freeze helper left frozen. */
int registry_journal_frozen(Registry *r, const vss_id *set_id, const char *const *mounts, size_t n);
int registry_clear_frozen(Registry *r);
int registry_list_frozen(Registry *r, char ***ret, size_t *ret_n);
/* The same, per set: the sets with journalled mounts (free()), one set's mounts (free each and the
 * array), and clearing one set's rows (0 also when it had none). */
int registry_list_frozen_sets(Registry *r, vss_id **ret, size_t *ret_n);
int registry_list_frozen_of(Registry *r, const vss_id *set_id, char ***ret, size_t *ret_n);
int registry_clear_frozen_of(Registry *r, const vss_id *set_id);

/* Exposures: a shadow mounted read-only at a directory. */
typedef struct MountIdentity {
        uint64_t id;     /* statx's STATX_MNT_ID, as /proc/self/mountinfo numbers it; 0: not known */
        uint64_t unique; /* STATX_MNT_ID_UNIQUE (Linux 6.8), not reused until a reboot; 0: not known */
        vss_id boot;     /* the boot both belong to (numbers start again at each); zeros: not known */
} MountIdentity;
typedef struct Exposure {
        char *at;
        vss_id shadow_id;
        MountIdentity mount; /* the mount made; zeros in records older than schema 7 */
} Exposure;
/* -EEXIST if at is taken. */
int registry_add_exposure(Registry *r, const vss_id *shadow_id, const char *at, const MountIdentity *mount);
/* The exposure at `at` (ret->at is malloc'ed): -ENOENT when there is none. */
int registry_get_exposure(Registry *r, const char *at, Exposure *ret);
int registry_remove_exposure(Registry *r, const char *at);                          /* -ENOENT */
int registry_list_exposures(Registry *r, Exposure **ret, size_t *ret_n);
void exposures_free(Exposure *a, size_t n);

/* Writer class bindings: a class id belongs to one uid, across restarts. */
typedef struct ClassRecord {
        vss_id class_id;
        uint32_t uid;
} ClassRecord;
/* -EEXIST if the class id is bound already (to whichever uid). */
int registry_bind_class(Registry *r, const vss_id *class_id, uint32_t uid);
/* The same, binding it to uid also when it is bound already. */
int registry_rebind_class(Registry *r, const vss_id *class_id, uint32_t uid);
/* All bindings; release *ret with free(). */
int registry_list_classes(Registry *r, ClassRecord **ret, size_t *ret_n);
