/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The shadow lifecycle after creation: deleting shadows (in child processes), removing sets and
 * their directories, unexposing a shadow before it goes, and recovering at start what a previous
 * run left (interrupted deletes, incomplete sets, auto-release sets, frozen filesystems in the
 * journal). Knows the registry, providers and freeze, never a session or a connection. */

#include <stddef.h>

#include <vss/types.h>

#include "daemon/manager.h"

/* Deleting shadows in child processes. Each shadow is marked 'deleting' in the registry first,
 * unexposed, removed by its provider, then its record goes. A shadow the provider cannot remove
 * is unmarked (never forgotten); one already gone loses its record. done() is called once every
 * shadow is deleted or kept, possibly before shadows_delete() returns. When vssd stops first,
 * cancel(userdata) is called instead (the marks stay for the next start). */
typedef void (*DeleteDone)(Manager *m, unsigned deleted, unsigned kept, void *userdata);
void shadows_delete(Manager *m, const ShadowRecord *recs, size_t n, const vss_id *set_id, DeleteDone done,
                    void (*cancel)(void *userdata), void *userdata);
/* shadows_delete() on every shadow of a set (in creation or not), then, when none was kept, the
 * set's record and directory. -ENOENT (done() not called) when the set is unknown. */
int set_remove(Manager *m, const vss_id *set_id, DeleteDone done, void (*cancel)(void *userdata), void *userdata);
/* vssd stops: every child is killed (what it was deleting stays marked), nothing more starts. */
void deletions_stop(Manager *m);
/* Removes a set's directories (in the state directory and the file provider's storage) once
 * empty. */
void shadow_set_dir_remove(Manager *m, const vss_id *set_id);
/* Unmounts every exposure of a shadow (before it is deleted): a negative errno when one of them
 * could not be (it stays recorded). */
int shadow_unexpose_all(Manager *m, const vss_id *shadow_id);
/* Unmounts what is exposed at `at` (only what vssd exposed, wherever a rename moved it) and
 * forgets it: -ENOENT when nothing is. Forgotten also when it is not mounted any more (the shadow
 * goes). */
int shadow_unexpose(Manager *m, const char *at);
/* Detaches the exposure at `at`, the mount `want` (from its record; NULL or zeros: whatever is
 * mounted at `at`), reached without following any symlink and unmounted through that fd, never
 * by the path looked up again: a user who may rename a directory on the way cannot turn it onto
 * another mount. Moved by a rename above it, it is found by its identity where it is now. 0 when
 * detached; -ESTALE when it is mounted nowhere now (unmounted by someone); -ELOOP when a symlink
 * is on the way to where it is; without its identity, -ENXIO when nothing is mounted at `at`
 * (moved, or unmounted). Processes using it keep it until they let go. */
int exposure_unmount(const char *at, const MountIdentity *want);
/* Whether the mount was recorded in an earlier boot (so it is gone: mounts end with the boot). */
bool mount_of_other_boot(const MountIdentity *mi);
/* The identity of the mount whose root fd is. */
int mount_identity_of(int fd, MountIdentity *ret);
/* 1 when a shadow is exposed at `at`, 0 when not, -errno when the registry cannot say. */
int shadow_exposed_at(Manager *m, const char *at);

/* The lease file of a set's freezes: STATE_DIR/freeze-SETID.lease. */
int freeze_lease_file(Manager *m, const vss_id *set_id, char *buf, size_t size);
/* Settles the journalled freezes of one set (or, set_id NULL, of all) whose commit child is gone:
 * thaws only what a killed helper left frozen, retires the journal rows. */
void frozen_journal_recover(Manager *m, const vss_id *set_id);
#define FREEZE_SETTLE_TIMEOUT_MS 5000

/* At start: deletes what a previous run left (interrupted deletes, sets that never committed,
 * auto-release sets) in the background, after thawing what a killed freeze helper left frozen. */
void shadows_recover(Manager *m);
