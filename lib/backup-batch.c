/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, requester face: calls sent together (lib/backup-batch.h). */

#include <stdarg.h>

#include "lib/backup-batch.h"
#include "lib/client.h"

#define BATCH_TIMEOUT_USEC (120 * USEC_PER_SEC) /* as each synchronous call's */

typedef BackupBatch Batch;

void backup_batch_done(Batch *bb) {
        for (size_t i = 0; i < bb->n; i++) {
                bb->slot[i] = sd_bus_slot_unref(bb->slot[i]);
                bb->reply[i] = sd_bus_message_unref(bb->reply[i]);
        }
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        sd_bus_message **slot = userdata;
        *slot = sd_bus_message_ref(m);
        return 0;
}

/* Sends a call (a session call's first argument is the session id; then types and their values),
 * its answer read by batch_run() or batch_wait(). */
static int32_t batch_addv(Batch *bb, bool session, const char *method, const char *types, va_list ap) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        size_t i = bb->n;
        int r = i >= BACKUP_BATCH_MAX ? -E2BIG
                : session        ? backup_session_message(bb->b, method, &m)
                                 : sd_bus_message_new_method_call(backup_bus(bb->b), &m, NULL, VSS_BUS_PATH,
                                                                  VSS_BUS_INTERFACE, method);
        if (r >= 0 && types)
                r = sd_bus_message_appendv(m, types, ap);
        if (r >= 0)
                r = sd_bus_call_async(backup_bus(bb->b), &bb->slot[i], m, on_reply, &bb->reply[i], BATCH_TIMEOUT_USEC);
        if (r < 0) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                (void) sd_bus_error_set_errno(&e, r);
                int32_t hr = backup_fail(bb->b, vss_hr_from_errno(r), &e, method);
                sd_bus_error_free(&e);
                return hr;
        }
        bb->method[bb->n++] = method;
        return 0;
}

static int32_t batch_add(Batch *bb, const char *method, const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        int32_t hr = batch_addv(bb, true, method, types, ap);
        va_end(ap);
        return hr;
}

/* A call that is not a session's (no session id first). */
static int32_t batch_add_plain(Batch *bb, const char *method, const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        int32_t hr = batch_addv(bb, false, method, types, ap);
        va_end(ap);
        return hr;
}

/* Processes the connection until answer i is in (or the connection is lost). */
static void batch_wait(Batch *bb, size_t i) {
        sd_bus *bus = backup_bus(bb->b);
        while (!bb->reply[i]) {
                /* A lost connection answers every call still open with an error (sd-bus). */
                int r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        break;
        }
}

/* The error answer i is, or its absence, as the caller's failure; 0 for a good answer. */
static int32_t batch_error(Batch *bb, size_t i) {
        const sd_bus_error *e = bb->reply[i] ? sd_bus_message_get_error(bb->reply[i]) : NULL;
        if (e)
                return backup_fail(bb->b, vss_hr_from_bus_error(e, -sd_bus_message_get_errno(bb->reply[i])), e,
                                   bb->method[i]);
        if (!bb->reply[i]) {
                sd_bus_error lost = SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_NO_REPLY, "connection to vssd lost");
                return backup_fail(bb->b, VSS_E_WRITER_INFRASTRUCTURE, &lost, bb->method[i]);
        }
        return 0;
}

/* Waits for every answer; the first failure in order of sending, or 0. */
static int32_t batch_run(Batch *bb) {
        for (size_t i = 0; i < bb->n; i++) {
                batch_wait(bb, i);
                int32_t hr = batch_error(bb, i);
                if (hr < 0) {
                        for (size_t j = i + 1; j < bb->n; j++) /* dropped, but vssd answers each */
                                batch_wait(bb, j);
                        return hr;
                }
        }
        return 0;
}

int32_t backup_begin_gather(vss_backup *b, uint32_t context, vss_backup_type type) {
        Batch bb = { .b = b };
        vss_async *a = NULL;
        if (!b)
                return VSS_E_INVALIDARG;
        int32_t hr = batch_add(&bb, "InitializeForBackup", NULL);
        if (hr >= 0)
                hr = batch_add(&bb, "SetContext", "u", context);
        if (hr >= 0)
                hr = batch_add(&bb, "SetBackupState", "bbub", 0, 0, (uint32_t) type, 0);
        /* Sent behind them, not after their answers: it only asks the writers for their metadata,
         * so after a step that failed it fails too (or is answered and dropped), harmlessly. */
        if (hr >= 0)
                hr = vss_backup_gather_writer_metadata(b, &a);
        int32_t run = batch_run(&bb);
        backup_batch_done(&bb);
        if (hr >= 0 && run >= 0)
                hr = vss_async_wait(a, -1);
        vss_async_free(a); /* an answer still to come is dropped */
        return hr < 0 ? hr : run;
}

static int reply_id(sd_bus_message *m, vss_id *ret) {
        const char *id;
        int r = sd_bus_message_read(m, "s", &id);
        return r < 0 ? r : vss_id_from_string(id, ret) < 0 ? -EBADMSG : 0;
}

int32_t backup_start_set(vss_backup *b, char *const *paths, size_t n, const char *provider, vss_id *ret_set_id,
                         vss_id *ret_shadow_ids) {
        Batch bb = { .b = b };
        if (!b || n == 0 || n > VSS_MAX_VOLUMES)
                return VSS_E_INVALIDARG;
        for (size_t i = 0; i < n; i++)
                if (isempty(paths[i]))
                        return VSS_E_INVALIDARG;
        int32_t hr = batch_add(&bb, "StartSnapshotSet", NULL);
        for (size_t i = 0; hr >= 0 && i < n; i++)
                hr = batch_add(&bb, "AddToSnapshotSet", "ss", paths[i], strempty(provider));
        int32_t run = batch_run(&bb);
        if (hr >= 0)
                hr = run;
        /* As one call after the other: the set id is known even when adding a volume failed. */
        for (size_t i = 0; i < bb.n; i++) {
                if (!bb.reply[i] || sd_bus_message_is_method_error(bb.reply[i], NULL))
                        break;
                if (reply_id(bb.reply[i], i == 0 ? ret_set_id : &ret_shadow_ids[i - 1]) < 0 && hr >= 0) {
                        sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_INVALID_ARGS, "malformed reply from vssd");
                        hr = backup_fail(b, VSS_E_UNEXPECTED, &e, bb.method[i]);
                        break;
                }
        }
        backup_batch_done(&bb);
        return hr;
}

int32_t backup_properties_ask(vss_backup *b, BackupBatch *bb, const vss_id *ids, size_t n) {
        char id[VSS_ID_STRING_MAX];
        *bb = (BackupBatch) { .b = b };
        if (!b || n > BACKUP_BATCH_MAX)
                return VSS_E_INVALIDARG;
        for (size_t i = 0; i < n; i++) {
                int32_t hr = batch_add_plain(bb, "GetSnapshotProperties", "s", vss_id_to_string(&ids[i], id));
                if (hr < 0)
                        return hr;
        }
        return 0;
}

int32_t backup_properties_get(BackupBatch *bb, size_t i, vss_snapshot_prop *ret) {
        if (!bb->b || i >= bb->n || !ret)
                return VSS_E_INVALIDARG;
        batch_wait(bb, i);
        int32_t hr = batch_error(bb, i);
        if (hr < 0)
                return hr;
        int r = backup_read_properties(bb->reply[i], ret);
        if (r < 0) {
                sd_bus_error e = SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_INVALID_ARGS, "malformed reply from vssd");
                return backup_fail(bb->b, VSS_E_UNEXPECTED, &e, bb->method[i]);
        }
        return 0;
}
