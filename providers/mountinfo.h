/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Which mount holds a path: /proc/self/mountinfo as util-linux's libmount reads it, for the
 * freeze lease (which filesystem to freeze), the providers and the session (which mount, which
 * device). The one reader of the mount table in vssd. */

#include <stdint.h>
#include <sys/types.h>

/* The mount whose mount point is the longest that is path or a parent of it (path should be
 * canonical: the match is on the text), of filesystem type fstype unless NULL; on a tie the
 * later entry wins (it is mounted on top). Its mount point, source (device) and device number
 * (of the superblock: one per filesystem, bind mounts included) go to whichever of ret_target,
 * ret_source (malloc'ed) and ret_dev is set. -ENOENT when no mount holds path, -ENOMEM, -ELIBACC
 * when libmount cannot be loaded (mountinfo_load_error() says why), or the errno of reading the
 * table. */
int mountinfo_find(const char *path, const char *fstype, char **ret_target, char **ret_source, dev_t *ret_dev);
/* The mount point of the mount numbered id (mountinfo's first field, statx's STATX_MNT_ID) in
 * vssd's mount namespace, malloc'ed: -ENOENT when no mount has that number now. */
int mountinfo_target_of(uint64_t id, char **ret_target);
/* 1 when one of the mount points targets names (as the table does) is a mount of the filesystem
 * dev (its superblock's device number: bind mounts and btrfs subvolume mounts share it), else 0;
 * or a negative errno. */
int mountinfo_any_of_dev(dev_t dev, char *const *targets, size_t n);
/* Loads libmount now (0, or -ELIBACC), so that no later lookup waits for it: the commit helper
 * does so before it reports itself loaded, so the freeze window holds no loading. */
int mountinfo_load(void);
/* Why libmount could not be loaded (it is opened at the first lookup), or NULL. */
const char *mountinfo_load_error(void);
