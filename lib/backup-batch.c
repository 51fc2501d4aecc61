/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, requester face: calls sent together (lib/backup-batch.h). */

#include <stdarg.h>

#include "lib/backup-batch.h"
#include "lib/client.h"

#define BATCH_MAX (2 + VSS_MAX_VOLUMES)
#define BATCH_TIMEOUT_USEC (120 * USEC_PER_SEC) /* as each synchronous call's */

typedef struct Batch {
        vss_backup *b;
        size_t n, answered;
        const char *method[BATCH_MAX];
        sd_bus_message *reply[BATCH_MAX];
        sd_bus_slot *slot[BATCH_MAX];
} Batch;

static void batch_done(Batch *bb) {
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

/* Queues a session call (the session id, then types and their values); sent by batch_run(). */
static int32_t batch_add(Batch *bb, const char *method, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        size_t i = bb->n;
        int r = i < BATCH_MAX ? backup_session_message(bb->b, method, &m) : -E2BIG;
        if (r >= 0 && types) {
                va_list ap;
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
        }
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

/* Waits for every answer; the first failure in order of sending, or 0. */
static int32_t batch_run(Batch *bb) {
        sd_bus *bus = backup_bus(bb->b);
        for (;;) {
                while (bb->answered < bb->n && bb->reply[bb->answered])
                        bb->answered++;
                if (bb->answered == bb->n)
                        break;
                /* A lost connection answers every call still open with an error (sd-bus). */
                int r = sd_bus_process(bus, NULL);
                if (r == 0)
                        r = sd_bus_wait(bus, UINT64_MAX);
                if (r < 0 && r != -EINTR)
                        break;
        }
        for (size_t i = 0; i < bb->n; i++) {
                const sd_bus_error *e = bb->reply[i] ? sd_bus_message_get_error(bb->reply[i]) : NULL;
                if (e)
                        return backup_fail(bb->b, vss_hr_from_bus_error(e, -sd_bus_message_get_errno(bb->reply[i])), e,
                                           bb->method[i]);
                if (!bb->reply[i]) {
                        sd_bus_error lost = SD_BUS_ERROR_MAKE_CONST(SD_BUS_ERROR_NO_REPLY, "connection to vssd lost");
                        return backup_fail(bb->b, VSS_E_WRITER_INFRASTRUCTURE, &lost, bb->method[i]);
                }
        }
        return 0;
}

int32_t backup_begin(vss_backup *b, uint32_t context, vss_backup_type type) {
        Batch bb = { .b = b };
        if (!b)
                return VSS_E_INVALIDARG;
        int32_t hr = batch_add(&bb, "InitializeForBackup", NULL);
        if (hr >= 0)
                hr = batch_add(&bb, "SetContext", "u", context);
        if (hr >= 0)
                hr = batch_add(&bb, "SetBackupState", "bbub", 0, 0, (uint32_t) type, 0);
        /* What was queued is sent and answered even after a failure to queue: vssd sees a prefix. */
        int32_t run = batch_run(&bb);
        batch_done(&bb);
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
        batch_done(&bb);
        return hr;
}
