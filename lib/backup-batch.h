/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Requester steps whose replies nothing between them waits for, sent at once and answered in
 * order: one round trip to vssd instead of one per call. vssd handles them one by one, as if sent
 * one after the other; the first failure is returned (vss_backup_errmsg() names its method) and
 * later answers are dropped. Internal: for vssadmin. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include <vss/backup.h>

/* lib/backup.c's part. */
sd_bus *backup_bus(vss_backup *b);
int backup_session_message(vss_backup *b, const char *method, sd_bus_message **ret);
int32_t backup_fail(vss_backup *b, int32_t hr, const sd_bus_error *e, const char *what);

/* vss_backup_initialize_for_backup(), vss_backup_set_context(context) and
 * vss_backup_set_backup_state(false, false, type, false), in one round trip. */
int32_t backup_begin(vss_backup *b, uint32_t context, vss_backup_type type);
/* vss_backup_start_snapshot_set() and vss_backup_add_to_snapshot_set() for each of paths (with
 * provider, or NULL), in one round trip; ret_shadow_ids has room for n. */
int32_t backup_start_set(vss_backup *b, char *const *paths, size_t n, const char *provider, vss_id *ret_set_id,
                         vss_id *ret_shadow_ids);
