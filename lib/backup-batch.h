/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Requester steps whose replies nothing between them waits for, sent at once and answered in
 * order: one round trip to vssd instead of one per call. vssd handles them one by one, as if sent
 * one after the other; the first failure is returned (vss_backup_errmsg() names its method) and
 * later answers are dropped. Internal: for vssadmin. */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include <vss/backup.h>

#include "lib/common.h"

/* lib/backup.c's part. */
sd_bus *backup_bus(vss_backup *b);
int backup_session_message(vss_backup *b, const char *method, sd_bus_message **ret);
int32_t backup_fail(vss_backup *b, int32_t hr, const sd_bus_error *e, const char *what);
int backup_read_properties(sd_bus_message *reply, vss_snapshot_prop *ret);

#define BACKUP_BATCH_MAX (2 + VSS_MAX_VOLUMES)

/* Calls in flight and their answers, as they come in. */
typedef struct BackupBatch {
        vss_backup *b;
        size_t n;
        const char *method[BACKUP_BATCH_MAX];
        sd_bus_message *reply[BACKUP_BATCH_MAX];
        sd_bus_slot *slot[BACKUP_BATCH_MAX];
} BackupBatch;
void backup_batch_done(BackupBatch *bb);

/* vss_backup_initialize_for_backup(), vss_backup_set_context(context),
 * vss_backup_set_backup_state(false, false, type, false) and
 * vss_backup_gather_writer_metadata_sync(), in one round trip: the gathering is sent with the
 * three steps, not after their answers. */
int32_t backup_begin_gather(vss_backup *b, uint32_t context, vss_backup_type type);
/* vss_backup_start_snapshot_set() and vss_backup_add_to_snapshot_set() for each of paths (with
 * provider, or NULL), in one round trip; ret_shadow_ids has room for n. */
int32_t backup_start_set(vss_backup *b, char *const *paths, size_t n, const char *provider, vss_id *ret_set_id,
                         vss_id *ret_shadow_ids);
/* GetSnapshotProperties of the n shadows, asked now, not waited for: the answers come in while
 * the caller waits on the same connection for something else (the writers' status after
 * DoSnapshotSet). bb is the caller's until backup_batch_done(), which comes before vss_backup_free(). */
int32_t backup_properties_ask(vss_backup *b, BackupBatch *bb, const vss_id *ids, size_t n);
/* The i-th answer, waited for when it has not come in yet (as vss_backup_get_snapshot_properties()). */
int32_t backup_properties_get(BackupBatch *bb, size_t i, vss_snapshot_prop *ret);
