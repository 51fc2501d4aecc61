/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Where vssbackup restore puts a component's files, and whose word a destination is. */

#include <stdbool.h>
#include <stdint.h>

#include <vss/document.h>

#include "lib/basic/path-util.h"

/* Who could have written a backup's document (doc_name, under openvss/): the owner of the archive
 * file, or of the directory and of its document. 0: root only; -1: several users. */
int64_t backup_owner(const char *src, const char *doc_name);
/* The uid whose wish a destination from the document is: vssd's record of the writer's owner,
 * believed only when nobody else could have written the document (the backup is root's or that
 * uid's). -1: nobody vouches for it. */
int64_t writer_owner(const vss_writer_metadata *wm, int64_t backup_uid);
/* Where a file group goes when the backup or the writer says (backed_up's new targets, else the
 * writer's alternate location when its restore method or target asks for one): *ret (malloc'd),
 * or NULL: back in place. -ENXIO when an alternate location is asked for and none maps path. */
int restore_destination(const vss_writer_metadata *wm, const vss_bc_component *backed_up, vss_restore_target target,
                        const char *path, char **ret);
