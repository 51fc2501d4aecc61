/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, requester face: one vss_backup is one session in vssd, on a connection of its own. */

#include <stdarg.h>
#include <time.h>

#include <vss/backup.h>

#include "lib/backup-batch.h"
#include "lib/client.h"
#include "lib/components.h"

#define CALL_TIMEOUT_USEC (120 * USEC_PER_SEC)

typedef enum AsyncKind { ASYNC_PLAIN, ASYNC_METADATA, ASYNC_STATUS } AsyncKind;

struct vss_async {
        unsigned n_ref;
        vss_backup *backup;
        sd_bus_slot *slot;
        AsyncKind kind;
        bool done, cancelled, cancellable; /* cancellable: a do-snapshot-set, which vssd aborts on Cancel */
        int32_t result;
};

struct vss_backup {
        sd_bus *bus;
        vss_id session_id;
        char session[VSS_ID_STRING_MAX];
        char errmsg[1024];
        vss_writer_metadata **metadata;
        size_t n_metadata;
        vss_writer_status *status;
        size_t n_status;
        vss_async *asyncs[8]; /* outstanding handles, detached on release */
        /* do_snapshot_set_paused: whether one was started, its handle while open, and the
         * WaitPaused in flight or answered but not yet returned (usec_left as answered, and when). */
        bool pausable, dss_ended;
        vss_async *dss;
        sd_bus_slot *pause_slot;
        bool pause_answered;
        int32_t pause_result;
        uint32_t pause_point;
        uint64_t pause_left, pause_when;
};

static int32_t fail(vss_backup *b, int32_t hr, const sd_bus_error *e, const char *what) {
        vss_format_error(b->errmsg, sizeof(b->errmsg), hr, e, what);
        return hr;
}

static int32_t fail_errno(vss_backup *b, int r, const char *what) {
        int32_t hr = vss_hr_from_errno(r);
        snprintf(b->errmsg, sizeof(b->errmsg), "%s: %s", what, strerror(r < 0 ? -r : r));
        return hr;
}

VSS_EXPORT const char *vss_backup_errmsg(vss_backup *b) {
        return b ? b->errmsg : "no session";
}

VSS_EXPORT int vss_backup_get_session_id(vss_backup *b, vss_id *ret) {
        if (!b || !ret)
                return VSS_E_INVALIDARG;
        *ret = b->session_id;
        return 0;
}

VSS_EXPORT int vss_backup_new(const char *socket_path, vss_backup **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *id;
        int r;

        if (!ret)
                return VSS_E_INVALIDARG;
        vss_backup *b = calloc(1, sizeof(*b));
        if (!b)
                return VSS_E_OUTOFMEMORY;
        r = vss_connect(socket_path, &b->bus);
        if (r < 0) {
                vss_backup_free(b);
                return VSS_E_WRITER_INFRASTRUCTURE;
        }
        r = sd_bus_call_method(b->bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "CreateSession", &error, &reply, NULL);
        if (r >= 0)
                r = sd_bus_message_read(reply, "s", &id);
        if (r < 0) {
                int32_t hr = vss_hr_from_bus_error(&error, r);
                vss_backup_free(b);
                return hr;
        }
        snprintf(b->session, sizeof(b->session), "%s", id);
        (void) vss_id_from_string(id, &b->session_id);
        *ret = b;
        return 0;
}

static int32_t call(vss_backup *b, const char *method, sd_bus_message **ret_reply, const char *types, ...);

static void metadata_clear(vss_backup *b) {
        for (size_t i = 0; i < b->n_metadata; i++)
                metadata_free(b->metadata[i]);
        free(b->metadata);
        b->metadata = NULL;
        b->n_metadata = 0;
}

VSS_EXPORT void vss_backup_writer_status_clear(vss_backup *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n_status; i++) {
                free((char *) b->status[i].name);
                free((char *) b->status[i].application_message);
                free((char *) b->status[i].note);
        }
        free(b->status);
        b->status = NULL;
        b->n_status = 0;
}

VSS_EXPORT vss_backup *vss_backup_free(vss_backup *b) {
        if (!b)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(b->asyncs); i++)
                if (b->asyncs[i]) {
                        b->asyncs[i]->slot = sd_bus_slot_unref(b->asyncs[i]->slot);
                        b->asyncs[i]->backup = NULL;
                        if (!b->asyncs[i]->done) {
                                b->asyncs[i]->done = true;
                                b->asyncs[i]->result = VSS_E_ABORT;
                        }
                }
        b->pause_slot = sd_bus_slot_unref(b->pause_slot);
        if (b->bus && b->session[0])
                /* Returns once the session's writers have had BackupShutdown (bounded by vssd). */
                (void) call(b, "ReleaseSession", NULL, NULL);
        sd_bus_flush_close_unref(b->bus);
        metadata_clear(b);
        vss_backup_writer_status_clear(b);
        free(b);
        return NULL;
}

/* The names before 0.2 (the lifetime convention of <vss/types.h>). */
VSS_EXPORT vss_backup *vss_backup_release(vss_backup *b) __attribute__((alias("vss_backup_free")));
VSS_EXPORT void vss_backup_free_writer_status(vss_backup *b) __attribute__((alias("vss_backup_writer_status_clear")));

/* A method call whose first argument is the session id. */
static int session_message(vss_backup *b, const char *method, sd_bus_message **ret) {
        int r = sd_bus_message_new_method_call(b->bus, ret, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, method);
        return r < 0 ? r : sd_bus_message_append(*ret, "s", b->session);
}

/* Sends m and waits for its reply; what names the call in the error message. */
static int32_t session_send(vss_backup *b, sd_bus_message *m, uint64_t timeout, const char *what,
                            sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_call(b->bus, m, timeout, &error, ret_reply);
        return r < 0 ? fail(b, vss_hr_from_bus_error(&error, r), &error, what) : 0;
}

/* A synchronous call whose first argument is the session id. */
static int32_t callv(vss_backup *b, const char *method, sd_bus_message **ret_reply, const char *types, va_list ap) {
        /* ReleaseSession waits for the session's last events, which vssd bounds itself. */
        uint64_t timeout = streq(method, "ReleaseSession") ? UINT64_MAX : CALL_TIMEOUT_USEC;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = session_message(b, method, &m);
        if (r >= 0 && types)
                r = sd_bus_message_appendv(m, types, ap);
        if (r < 0)
                return fail_errno(b, r, method);
        return session_send(b, m, timeout, method, ret_reply);
}

static int32_t call(vss_backup *b, const char *method, sd_bus_message **ret_reply, const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        int32_t hr = callv(b, method, ret_reply, types, ap);
        va_end(ap);
        return hr;
}

/* For lib/backup-batch.c, which sends several session calls at once. */
sd_bus *backup_bus(vss_backup *b) {
        return b->bus;
}
int backup_session_message(vss_backup *b, const char *method, sd_bus_message **ret) {
        return session_message(b, method, ret);
}
int32_t backup_fail(vss_backup *b, int32_t hr, const sd_bus_error *e, const char *what) {
        return fail(b, hr, e, what);
}

VSS_EXPORT int vss_backup_initialize_for_backup(vss_backup *b) {
        if (!b)
                return VSS_E_INVALIDARG;
        return call(b, "InitializeForBackup", NULL, NULL);
}

VSS_EXPORT int vss_backup_initialize_for_restore(vss_backup *b, const char *document) {
        vss_backup_document *d = NULL;
        char why[512];
        if (!b)
                return VSS_E_INVALIDARG;
        /* Checked here too, so the caller learns which field is wrong without a round trip. */
        if (!isempty(document) && bcd_parse(document, &d, why, sizeof(why)) < 0) {
                snprintf(b->errmsg, sizeof(b->errmsg), "bad backup components document: %s", why);
                return VSS_E_INVALID_XML_DOCUMENT;
        }
        bcd_free(d);
        return call(b, "InitializeForRestore", NULL, "s", strempty(document));
}

VSS_EXPORT int vss_backup_save_as_document(vss_backup *b, char **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *json;
        if (!b || !ret)
                return VSS_E_INVALIDARG;
        int32_t hr = call(b, "SaveAsDocument", &reply, NULL);
        if (hr < 0)
                return hr;
        if (sd_bus_message_read(reply, "s", &json) < 0)
                return fail_errno(b, -EBADMSG, "SaveAsDocument");
        char *d = strdup(json);
        if (!d)
                return fail_errno(b, -ENOMEM, "SaveAsDocument");
        *ret = d;
        return 0;
}

VSS_EXPORT int vss_backup_get_document(vss_backup *b, vss_backup_document **ret) {
        _cleanup_free_ char *json = NULL;
        char why[512];
        if (!ret)
                return VSS_E_INVALIDARG;
        int r = vss_backup_save_as_document(b, &json);
        if (r < 0)
                return r;
        if (bcd_parse(json, ret, why, sizeof(why)) < 0) {
                snprintf(b->errmsg, sizeof(b->errmsg), "vssd sent a bad document: %s", why);
                return VSS_E_UNEXPECTED;
        }
        return 0;
}

VSS_EXPORT int vss_backup_set_context(vss_backup *b, uint32_t context) {
        if (!b)
                return VSS_E_INVALIDARG;
        return call(b, "SetContext", NULL, "u", context);
}

VSS_EXPORT int vss_backup_set_backup_state(vss_backup *b, bool select_components, bool bootable_system_state,
                                           vss_backup_type type, bool partial_file_support) {
        if (!b)
                return VSS_E_INVALIDARG;
        return call(b, "SetBackupState", NULL, "bbub", (int) select_components, (int) bootable_system_state,
                    (uint32_t) type, (int) partial_file_support);
}

/* Asynchronous operations. */

static int parse_metadata(vss_backup *b, sd_bus_message *reply) {
        char **docs = NULL;
        int r = sd_bus_message_read_strv(reply, &docs);
        if (r < 0)
                return r;
        metadata_clear(b);
        size_t n = 0;
        while (docs && docs[n])
                n++;
        b->metadata = calloc(n ? n : 1, sizeof(*b->metadata));
        for (size_t i = 0; i < n; i++) {
                if (b->metadata && metadata_parse(docs[i], &b->metadata[b->n_metadata], NULL, 0) >= 0)
                        b->n_metadata++;
                free(docs[i]);
        }
        free(docs);
        return b->metadata ? 0 : -ENOMEM;
}

static int parse_status(vss_backup *b, sd_bus_message *reply) {
        int r;
        vss_backup_writer_status_clear(b);
        r = sd_bus_message_enter_container(reply, 'a', "(sssuiiss)");
        if (r < 0)
                return r;
        for (;;) {
                const char *name, *wid, *iid, *msg, *note;
                uint32_t state;
                int32_t failure, code;
                r = sd_bus_message_read(reply, "(sssuiiss)", &name, &wid, &iid, &state, &failure, &code, &msg, &note);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                vss_writer_status *n = realloc(b->status, (b->n_status + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                b->status = n;
                vss_writer_status *s = &b->status[b->n_status];
                *s = (vss_writer_status) {
                        .name = strdup(name),
                        .state = state,
                        .failure = failure,
                        .application_code = code,
                        .application_message = strdup(msg),
                        .note = strdup(note),
                };
                (void) vss_id_from_string(wid, &s->writer_id);
                (void) vss_id_from_string(iid, &s->instance_id);
                b->n_status++;
                if (!s->name || !s->application_message || !s->note)
                        return -ENOMEM;
        }
        return sd_bus_message_exit_container(reply);
}

static int on_async_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        vss_async *a = userdata;
        vss_backup *b = a->backup;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        a->done = true;
        a->slot = sd_bus_slot_unref(a->slot);
        if (b->dss == a)
                b->dss_ended = true; /* known even once the handle is freed */
        if (e) {
                a->result = fail(b, vss_hr_from_bus_error(e, -EIO), e, NULL);
                if (a->cancelled && a->result == VSS_E_ABORT)
                        a->result = VSS_S_ASYNC_CANCELLED;
                return 0;
        }
        int r = 0;
        if (a->kind == ASYNC_METADATA)
                r = parse_metadata(b, reply);
        else if (a->kind == ASYNC_STATUS)
                r = parse_status(b, reply);
        a->result = r < 0 ? fail_errno(b, r, "malformed reply from vssd") : 0;
        return 0;
}

/* Starts method (its arguments the session id and, when flags is not NULL, *flags). */
static int32_t start_async_flags(vss_backup *b, const char *method, AsyncKind kind, const uint32_t *flags,
                                 vss_async **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        size_t i;
        if (!b || !ret)
                return VSS_E_INVALIDARG;
        for (i = 0; i < ELEMENTSOF(b->asyncs); i++)
                if (!b->asyncs[i])
                        break;
        if (i == ELEMENTSOF(b->asyncs)) {
                snprintf(b->errmsg, sizeof(b->errmsg), "%s: too many operation handles open", method);
                return VSS_E_BAD_STATE;
        }
        vss_async *a = calloc(1, sizeof(*a));
        if (!a)
                return VSS_E_OUTOFMEMORY;
        *a = (vss_async) { .n_ref = 1, .backup = b, .kind = kind, .cancellable = strncmp(method, "DoSnapshotSet", 13) == 0 };
        int r = session_message(b, method, &m);
        if (r >= 0 && flags)
                r = sd_bus_message_append(m, "u", *flags);
        /* vssd bounds every step with its own deadlines; the requester waits as long as it says. */
        if (r >= 0)
                r = sd_bus_call_async(b->bus, &a->slot, m, on_async_reply, a, UINT64_MAX);
        if (r < 0) {
                free(a);
                return fail_errno(b, r, method);
        }
        b->asyncs[i] = a;
        *ret = a;
        return 0;
}

static int32_t start_async(vss_backup *b, const char *method, AsyncKind kind, vss_async **ret) {
        return start_async_flags(b, method, kind, NULL, ret);
}

static void async_detach(vss_async *a) {
        vss_backup *b = a->backup;
        if (!b)
                return;
        for (size_t i = 0; i < ELEMENTSOF(b->asyncs); i++)
                if (b->asyncs[i] == a)
                        b->asyncs[i] = NULL;
        if (b->dss == a)
                b->dss = NULL;
        a->slot = sd_bus_slot_unref(a->slot);
        a->backup = NULL;
}

VSS_EXPORT vss_async *vss_async_free(vss_async *a) {
        if (!a || --a->n_ref > 0)
                return NULL;
        async_detach(a);
        free(a);
        return NULL;
}

VSS_EXPORT vss_async *vss_async_unref(vss_async *a) __attribute__((alias("vss_async_free")));

VSS_EXPORT int vss_async_wait(vss_async *a, int timeout_ms) {
        if (!a)
                return VSS_E_INVALIDARG;
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_monotonic_usec() + (uint64_t) timeout_ms * USEC_PER_MSEC;
        while (!a->done) {
                vss_backup *b = a->backup;
                if (!b)
                        return VSS_E_ABORT;
                int r = sd_bus_process(b->bus, NULL);
                if (r < 0) {
                        a->done = true;
                        a->result = fail_errno(b, r, "connection to vssd lost");
                        a->result = VSS_E_WRITER_INFRASTRUCTURE;
                        break;
                }
                if (r > 0)
                        continue;
                uint64_t now = now_monotonic_usec();
                if (now >= deadline)
                        return VSS_S_ASYNC_PENDING;
                r = sd_bus_wait(b->bus, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0 && r != -EINTR) {
                        a->done = true;
                        a->result = VSS_E_WRITER_INFRASTRUCTURE;
                }
        }
        return a->result;
}

VSS_EXPORT int vss_async_query(vss_async *a) {
        if (!a)
                return VSS_E_INVALIDARG;
        if (!a->done && a->backup)
                while (sd_bus_process(a->backup->bus, NULL) > 0 && !a->done)
                        ;
        if (!a->done)
                return VSS_S_ASYNC_PENDING;
        return a->result == 0 ? VSS_S_ASYNC_FINISHED : a->result;
}

/* As IVssAsync::Cancel: S_OK when this call cancels, VSS_S_ASYNC_CANCELLED when an earlier one did,
 * VSS_S_ASYNC_FINISHED or the error when it had ended. Only a do-snapshot-set cancels: any other
 * operation is waited for (bounded by the events' deadlines), never said cancelled when not. */
VSS_EXPORT int vss_async_cancel(vss_async *a) {
        if (!a)
                return VSS_E_INVALIDARG;
        if (a->cancelled)
                return VSS_S_ASYNC_CANCELLED;
        if (!a->done && a->backup) /* an answer already here counts as finished */
                while (sd_bus_process(a->backup->bus, NULL) > 0 && !a->done)
                        ;
        if (!a->done && a->backup && !a->cancellable)
                (void) vss_async_wait(a, -1);
        if (a->done)
                return a->result == 0 ? VSS_S_ASYNC_FINISHED : a->result;
        if (!a->backup)
                return VSS_E_INVALIDARG;
        a->cancelled = true;
        return call(a->backup, "Cancel", NULL, NULL);
}

static int32_t run_sync(vss_backup *b, const char *method, AsyncKind kind) {
        vss_async *a = NULL;
        int32_t hr = start_async(b, method, kind, &a);
        if (hr < 0)
                return hr;
        hr = vss_async_wait(a, -1);
        vss_async_free(a);
        return hr;
}

#define ASYNC_PAIR(fn, method, kind)                                              \
        VSS_EXPORT int vss_backup_##fn(vss_backup *b, vss_async **ret) {         \
                return start_async(b, method, kind, ret);                         \
        }                                                                         \
        VSS_EXPORT int vss_backup_##fn##_sync(vss_backup *b) {                   \
                return b ? run_sync(b, method, kind) : VSS_E_INVALIDARG;          \
        }

ASYNC_PAIR(gather_writer_metadata, "GatherWriterMetadata", ASYNC_METADATA)
ASYNC_PAIR(prepare_for_backup, "PrepareForBackup", ASYNC_PLAIN)
ASYNC_PAIR(do_snapshot_set, "DoSnapshotSet", ASYNC_PLAIN)
ASYNC_PAIR(backup_complete, "BackupComplete", ASYNC_PLAIN)
ASYNC_PAIR(pre_restore, "PreRestore", ASYNC_PLAIN)
ASYNC_PAIR(post_restore, "PostRestore", ASYNC_PLAIN)
ASYNC_PAIR(gather_writer_status, "GatherWriterStatus", ASYNC_STATUS)

/* The snapshot set that pauses: DoSnapshotSetPaused, WaitPaused and ContinueSnapshotSet. */

#define PAUSE_KNOWN (VSS_PAUSE_BEFORE_FREEZE | VSS_PAUSE_BEFORE_COMMIT)

VSS_EXPORT int vss_backup_do_snapshot_set_paused(vss_backup *b, uint32_t flags, vss_async **ret) {
        if (!b || !ret)
                return VSS_E_INVALIDARG;
        if (flags & ~PAUSE_KNOWN) {
                snprintf(b->errmsg, sizeof(b->errmsg), "do-snapshot-set: unknown pause flags 0x%x", flags & ~PAUSE_KNOWN);
                return VSS_E_INVALIDARG;
        }
        if (flags == 0)
                return start_async(b, "DoSnapshotSet", ASYNC_PLAIN, ret);
        int32_t hr = start_async_flags(b, "DoSnapshotSetPaused", ASYNC_PLAIN, &flags, ret);
        if (hr < 0)
                return hr;
        b->pausable = true;
        b->dss_ended = false;
        b->dss = *ret;
        b->pause_answered = false;
        b->pause_slot = sd_bus_slot_unref(b->pause_slot);
        return 0;
}

static int on_paused(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        vss_backup *b = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        b->pause_slot = sd_bus_slot_unref(b->pause_slot);
        b->pause_answered = true;
        b->pause_when = now_monotonic_usec();
        b->pause_result = 0;
        if (e)
                b->pause_result = fail(b, vss_hr_from_bus_error(e, -EIO), e, "WaitPaused");
        else if (sd_bus_message_read(reply, "ut", &b->pause_point, &b->pause_left) < 0)
                b->pause_result = fail_errno(b, -EBADMSG, "WaitPaused");
        return 0;
}

/* Returns the answer received: the point, and what is left of the window now. */
static int32_t paused_answer(vss_backup *b, uint32_t *ret_point, uint64_t *ret_usec_left) {
        b->pause_answered = false;
        if (b->pause_result < 0)
                return b->pause_result;
        uint64_t gone = now_monotonic_usec() - b->pause_when;
        *ret_point = b->pause_point;
        if (ret_usec_left)
                *ret_usec_left = b->pause_left == UINT64_MAX ? UINT64_MAX
                                 : b->pause_left > gone      ? b->pause_left - gone
                                                             : 0;
        return 0;
}

VSS_EXPORT int vss_backup_wait_paused(vss_backup *b, int timeout_ms, uint32_t *ret_point, uint64_t *ret_usec_left) {
        if (!b || !ret_point)
                return VSS_E_INVALIDARG;
        if (!b->pausable) {
                snprintf(b->errmsg, sizeof(b->errmsg), "wait-paused: no do-snapshot-set with pause points in flight");
                return VSS_E_BAD_STATE;
        }
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_monotonic_usec() + (uint64_t) timeout_ms * USEC_PER_MSEC;
        for (;;) {
                if (b->pause_answered)
                        return paused_answer(b, ret_point, ret_usec_left);
                if (((b->dss && b->dss->done) || b->dss_ended) && !b->pause_slot) {
                        *ret_point = 0; /* it ended: its result is the handle's */
                        if (ret_usec_left)
                                *ret_usec_left = UINT64_MAX;
                        return 0;
                }
                int r = 0;
                if (!b->pause_slot) {
                        /* Left in flight past a timeout: the next wait takes its answer. */
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        r = session_message(b, "WaitPaused", &m);
                        if (r >= 0)
                                r = sd_bus_call_async(b->bus, &b->pause_slot, m, on_paused, b, UINT64_MAX);
                        if (r < 0)
                                return fail_errno(b, r, "WaitPaused");
                }
                r = sd_bus_process(b->bus, NULL);
                if (r > 0)
                        continue;
                uint64_t now = now_monotonic_usec();
                if (r >= 0 && now >= deadline)
                        return VSS_S_ASYNC_PENDING;
                if (r >= 0)
                        r = sd_bus_wait(b->bus, deadline == UINT64_MAX ? UINT64_MAX : deadline - now);
                if (r < 0 && r != -EINTR) {
                        fail_errno(b, r, "connection to vssd lost");
                        return VSS_E_WRITER_INFRASTRUCTURE;
                }
        }
}

VSS_EXPORT int vss_backup_get_fd(vss_backup *b, short *ret_events, int *ret_timeout_ms) {
        uint64_t until = 0;
        if (!b || !ret_events || !ret_timeout_ms)
                return VSS_E_INVALIDARG;
        int fd = sd_bus_get_fd(b->bus), events = sd_bus_get_events(b->bus);
        if (fd < 0 || events < 0)
                return fail_errno(b, fd < 0 ? fd : events, "connection to vssd lost"), VSS_E_WRITER_INFRASTRUCTURE;
        *ret_events = (short) events;
        /* sd-bus may hold a message read already (then 0) or a method call's timeout. */
        int r = sd_bus_get_timeout(b->bus, &until);
        uint64_t now = now_monotonic_usec();
        *ret_timeout_ms = r <= 0 || until == UINT64_MAX ? -1
                        : until <= now                  ? 0
                                                        : (until - now) / USEC_PER_MSEC >= INT32_MAX ? INT32_MAX
                                                        : (int) ((until - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
        return fd;
}

VSS_EXPORT int vss_backup_continue_snapshot_set(vss_backup *b) {
        if (!b)
                return VSS_E_INVALIDARG;
        int32_t hr = call(b, "ContinueSnapshotSet", NULL, NULL);
        if (hr < 0)
                return hr;
        /* A WaitPaused answered before this call was (vssd answers in order) speaks of the pause
         * just left: it is dropped, and the next wait asks again. */
        while (sd_bus_process(b->bus, NULL) > 0)
                ;
        if (b->pause_answered && b->pause_result >= 0 && b->pause_point != 0)
                b->pause_answered = false;
        return 0;
}

VSS_EXPORT size_t vss_backup_metadata_count(vss_backup *b) {
        return b ? b->n_metadata : 0;
}

VSS_EXPORT const vss_writer_metadata *vss_backup_metadata_get(vss_backup *b, size_t i) {
        return b && i < b->n_metadata ? b->metadata[i] : NULL;
}

VSS_EXPORT size_t vss_backup_writer_status_count(vss_backup *b) {
        return b ? b->n_status : 0;
}

VSS_EXPORT int vss_backup_writer_status_get(vss_backup *b, size_t i, vss_writer_status *ret) {
        if (!b || !ret)
                return VSS_E_INVALIDARG;
        if (i >= b->n_status) {
                snprintf(b->errmsg, sizeof(b->errmsg), "no writer status %zu (have %zu)", i, b->n_status);
                return VSS_E_OBJECT_NOT_FOUND;
        }
        *ret = b->status[i];
        return 0;
}

static int32_t component_call(vss_backup *b, const char *method, const vss_id *iid, const vss_id *wid,
                              const char *logical_path, const char *name, int *succeeded) {
        char i[VSS_ID_STRING_MAX], w[VSS_ID_STRING_MAX];
        if (!b || !iid || !wid || isempty(name))
                return VSS_E_INVALIDARG;
        vss_id_to_string(iid, i);
        vss_id_to_string(wid, w);
        if (succeeded)
                return call(b, method, NULL, "ssssb", i, w, strempty(logical_path), name, *succeeded);
        return call(b, method, NULL, "ssss", i, w, strempty(logical_path), name);
}

VSS_EXPORT int vss_backup_add_component(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                        const char *logical_path, const char *name) {
        return component_call(b, "AddComponent", instance_id, writer_id, logical_path, name, NULL);
}

VSS_EXPORT int vss_backup_set_backup_succeeded(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                               const char *logical_path, const char *name, bool succeeded) {
        int ok = succeeded;
        return component_call(b, "SetBackupSucceeded", instance_id, writer_id, logical_path, name, &ok);
}

static int32_t call_returning_id(vss_backup *b, const char *method, vss_id *ret, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *id;
        va_list ap;
        va_start(ap, types);
        int32_t hr = callv(b, method, &reply, types, ap);
        va_end(ap);
        if (hr < 0)
                return hr;
        if (sd_bus_message_read(reply, "s", &id) < 0 || vss_id_from_string(id, ret) < 0)
                return fail_errno(b, -EBADMSG, method);
        return 0;
}

VSS_EXPORT int vss_backup_start_snapshot_set(vss_backup *b, vss_id *ret_set_id) {
        vss_id id;
        if (!b)
                return VSS_E_INVALIDARG;
        int32_t hr = call_returning_id(b, "StartSnapshotSet", &id, NULL);
        if (hr >= 0 && ret_set_id)
                *ret_set_id = id;
        return hr;
}

VSS_EXPORT int vss_backup_add_to_snapshot_set(vss_backup *b, const char *path, const char *provider,
                                              vss_id *ret_shadow_id) {
        vss_id id;
        if (!b || isempty(path))
                return VSS_E_INVALIDARG;
        int32_t hr = call_returning_id(b, "AddToSnapshotSet", &id, "ss", path, strempty(provider));
        if (hr >= 0 && ret_shadow_id)
                *ret_shadow_id = id;
        return hr;
}

VSS_EXPORT int vss_backup_abort_backup(vss_backup *b) {
        if (!b)
                return VSS_E_INVALIDARG;
        return call(b, "AbortBackup", NULL, NULL);
}

/* A GetSnapshotProperties reply; also lib/backup-batch.c's. */
int backup_read_properties(sd_bus_message *reply, vss_snapshot_prop *ret) {
        const char *sid, *setid, *orig, *spath, *prov;
        uint64_t created, reserved;
        uint32_t attrs;
        int r = sd_bus_message_read(reply, "(sssssttu)", &sid, &setid, &orig, &spath, &prov, &created, &reserved, &attrs);
        if (r < 0)
                return r;
        vss_snapshot_prop p = { .created_usec = created, .attributes = attrs };
        (void) vss_id_from_string(sid, &p.shadow_id);
        (void) vss_id_from_string(setid, &p.snapshot_set_id);
        snprintf(p.original_path, sizeof(p.original_path), "%s", orig);
        snprintf(p.shadow_path, sizeof(p.shadow_path), "%s", spath);
        snprintf(p.provider, sizeof(p.provider), "%s", prov);
        *ret = p;
        return 0;
}

VSS_EXPORT int vss_backup_get_snapshot_properties(vss_backup *b, const vss_id *shadow_id, vss_snapshot_prop *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char id[VSS_ID_STRING_MAX];
        if (!b || !shadow_id || !ret)
                return VSS_E_INVALIDARG;
        int r = sd_bus_call_method(b->bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "GetSnapshotProperties", &error,
                                   &reply, "s", vss_id_to_string(shadow_id, id));
        if (r < 0)
                return fail(b, vss_hr_from_bus_error(&error, r), &error, "GetSnapshotProperties");
        r = backup_read_properties(reply, ret);
        return r < 0 ? fail_errno(b, r, "GetSnapshotProperties") : 0;
}

/* The requester's fields of a component record, one D-Bus method for all (SetComponentProperty). */
static int32_t property_call(vss_backup *b, const vss_id *iid, const vss_id *wid, const char *logical_path,
                             const char *name, const char *property, const char *type, ...) {
        char i[VSS_ID_STRING_MAX], w[VSS_ID_STRING_MAX];
        if (!b || !iid || !wid || isempty(name))
                return VSS_E_INVALIDARG;
        va_list ap;
        va_start(ap, type);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r = session_message(b, "SetComponentProperty", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "sssss", vss_id_to_string(iid, i), vss_id_to_string(wid, w),
                                          strempty(logical_path), name, property);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'v', type);
        if (r >= 0)
                r = sd_bus_message_appendv(m, type, ap);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        va_end(ap);
        if (r < 0)
                return fail_errno(b, r, property);
        return session_send(b, m, CALL_TIMEOUT_USEC, property, NULL);
}

VSS_EXPORT int vss_backup_set_backup_options(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                             const char *logical_path, const char *name, const char *options) {
        return property_call(b, instance_id, writer_id, logical_path, name, "backup-options", "s", strempty(options));
}

VSS_EXPORT int vss_backup_set_previous_backup_stamp(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                    const char *logical_path, const char *name, const char *stamp) {
        return property_call(b, instance_id, writer_id, logical_path, name, "previous-backup-stamp", "s",
                             strempty(stamp));
}

VSS_EXPORT int vss_backup_set_selected_for_restore(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                   const char *logical_path, const char *name, bool selected) {
        return property_call(b, instance_id, writer_id, logical_path, name, "selected-for-restore", "b", (int) selected);
}

VSS_EXPORT int vss_backup_set_restore_options(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                              const char *logical_path, const char *name, const char *options) {
        return property_call(b, instance_id, writer_id, logical_path, name, "restore-options", "s", strempty(options));
}

VSS_EXPORT int vss_backup_set_additional_restores(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                  const char *logical_path, const char *name, bool additional) {
        return property_call(b, instance_id, writer_id, logical_path, name, "additional-restores", "b", (int) additional);
}

VSS_EXPORT int vss_backup_add_new_target(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                         const char *logical_path, const char *name, const char *path,
                                         const char *filespec, bool recursive, const char *destination) {
        if (!path || !destination)
                return VSS_E_INVALIDARG;
        return property_call(b, instance_id, writer_id, logical_path, name, "new-target", "(ssbs)", path,
                             isempty(filespec) ? "*" : filespec, (int) recursive, destination);
}

VSS_EXPORT int vss_backup_set_file_restore_status(vss_backup *b, const vss_id *instance_id, const vss_id *writer_id,
                                                  const char *logical_path, const char *name,
                                                  vss_file_restore_status status) {
        return property_call(b, instance_id, writer_id, logical_path, name, "file-restore-status", "u",
                             (uint32_t) status);
}
