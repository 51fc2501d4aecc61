/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The provider commit child as a program of its own (commit-helper.c): vssd run with
 * COMMIT_HELPER_ARG, started before the first Freeze, told to go at the commit. */

#include "daemon/commit.h"
#include "daemon/session.h"

#define COMMIT_HELPER_ARG "--commit-helper"
/* Its second argument, when it is to load libmount before it reports itself loaded, or when it
 * copies the held volumes ahead (commit_helper_precopy()) instead of committing. */
#define COMMIT_HELPER_MOUNTS_ARG "--with-mounts"
#define COMMIT_HELPER_PRECOPY_ARG "--precopy"

/* Starts the helper of the session's set before its job is known (commit_spawn_early()): its exec
 * and loading overlap the requester's calls. Nothing when one runs already. 0, or <0 with *ret_why
 * saying what failed. */
int commit_helper_spawn_early(Session *s, const CommitOps *ops, const char **ret_why);

/* The helper for the session's set (s->commit), waiting to be told to go (commit_go()): an early
 * one gets its job now; one that cannot (gone, or the copy-ahead's indexes to inherit) is
 * replaced by a new one. 0, or <0 with *ret_why saying what failed. */
int commit_helper_prepare(Session *s, const CommitOps *ops, const char **ret_why);

/* The spare helper (m->spare), started while vssd is idle and taken by the next set's
 * commit_helper_spawn_early(): _start() starts one now unless one waits, _later() a moment from
 * now (after a set ended), _free() kills it as vssd stops. */
void commit_helper_spare_start(Manager *m);
void commit_helper_spare_later(Manager *m);
void commit_helper_spare_free(Manager *m);

/* The copy-ahead of the set's held file volumes (hold_precopy_child()) in a helper of its own,
 * `vssd --commit-helper --precopy`, in s->commit and told to go at once: a fork of vssd would
 * leave its pages shared copy-on-write, and the faults of its writes would fall in the freeze
 * window that follows. Its exit is reported as a commit's. 0, or <0 with *ret_why saying what
 * failed. */
int commit_helper_precopy(Session *s, const CommitOps *ops, const char **ret_why);

/* main() of `vssd --commit-helper [--with-mounts | --precopy]`: never returns. */
_Noreturn int commit_helper_main(bool load_mounts, bool precopy);
