/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Flush-and-hold for the file provider: which sources are held frozen while their last delta is
 * copied (one instant), the copy-ahead child that runs before the writers freeze, and the held
 * pass of the commit child. See providers/file/precopy.h for the passes themselves.
 */

#include <sys/socket.h>

#include "daemon/manager.h"
#include "daemon/session.h"

/* Exit codes of the commit and copy-ahead children, and what they mean for the set. */
enum { COMMIT_OK = 0, COMMIT_NOSPACE = 10, COMMIT_FAILED = 11, COMMIT_HOLD_TIMEOUT = 12, COMMIT_FROZEN_ELSEWHERE = 13 };

/* Where the file provider keeps its shadows: file_storage_dir, or the state directory's shadows/. */
const char *file_storage_dir(const Manager *m);

/* Whether the file provider's shadow of the volume's path will be one instant: sets v->held (and
 * v->storage_shared), or v->not_held_why. -ENOMEM only. */
int hold_decide(const Manager *m, Volume *v);

/* A volume's path as a requester names it, resolved following only symlinks nobody but root
 * could have made (realpath_trusted()): a user who may write a directory on the way cannot send
 * a set, or the freeze of one, to someone else's filesystem. <0 with the error replied. */
int volume_realpath(const char *path, const struct ucred *caller, char real[PATH_MAX], sd_bus_error *error);

/* Same decision for a path, for `vssadmin list providers --for`: 1 held, 0 not (why in buf). */
/* 1 (why says so) when path is on a mount hold_exclude lists: never held, by any provider. */
int hold_excluded(const Manager *m, const char *path, char *why, size_t size);
int hold_explain(const Manager *m, const char *path, char *why, size_t size);

/* The file provider's storage budget (file_storage_budget_bytes) cannot take the file volumes
 * copied ahead (precopy) or the others (at the commit). */
bool file_budget_exceeded(Session *s, bool precopy);

/* True when some volume of the set is copied ahead (held file-provider directories). */
bool hold_wants_precopy(const Session *s);

/* In a child of vssd, before Freeze: copies the held volumes ahead into their shadow paths and
 * their indexes (v->index_fd). Reports failures as the commit child does ("E\tMESSAGE"). */
_Noreturn void hold_precopy_child(Session *s, int fd);
