/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The provider commit child as a program of its own (commit-helper.c): vssd run with
 * COMMIT_HELPER_ARG, started before the first Freeze, told to go at the commit. */

#include "daemon/commit.h"
#include "daemon/session.h"

#define COMMIT_HELPER_ARG "--commit-helper"
/* Its second argument, when it is to load libmount before it reports itself loaded. */
#define COMMIT_HELPER_MOUNTS_ARG "--with-mounts"

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

/* main() of `vssd --commit-helper [--with-mounts]`: never returns. */
_Noreturn int commit_helper_main(bool load_mounts);
