/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sessions: one requester's backup or restore, the sequence engine that drives its writers, and
 * its per-writer status. Events to writers of one application level go out in parallel, each an
 * asynchronous D-Bus call whose timeout is the event's deadline; the last answer of a batch runs
 * the session's continuation (s->next).
 */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include "daemon/abort-rules.h"
#include "daemon/freeze.h"
#include "daemon/hold.h"
#include "providers/file/copy.h"
#include "providers/file/precopy.h"
#include <inttypes.h>
#include "daemon/vssd.h"
#include "lib/components.h"

typedef struct StatusGather StatusGather;

/* One asynchronous call to a writer; owned by its sd-bus slot (freed by the destroy callback). */
typedef struct Call {
        Session *session;
        size_t idx;
        vss_event event;
        StatusGather *gather; /* a status query (Ping) rather than an event */
        bool answered;
} Call;

/* A GatherWriterStatus in flight. It runs beside the session's own operation. */
struct StatusGather {
        Session *session;
        sd_bus_message *request;
        unsigned pending;
        bool direct;           /* no metadata: list the writers that answer now */
        size_t n;
        struct {
                char name[VSS_MAX_NAME + 1];
                vss_id class_id, instance_id;
                bool answered;
        } *direct_entries;
};

static void dss_continue(Session *s);
static void session_shutdown(Session *s);

Session *session_new(Connection *c) {
        Session *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->n_ref = 1; /* held by the manager's list until the session is shut down */
        s->manager = c->manager;
        s->connection = c;
        s->commit_pid = -1;
        s->commit_fd = -1;
        s->context = VSS_CTX_BACKUP;
        s->doc = bcd_new();
        if (!s->doc || vss_id_new(&s->id) < 0) {
                bcd_free(s->doc);
                free(s);
                return NULL;
        }
        LIST_PREPEND(sessions, c->manager->sessions, s);
        c->n_sessions++;
        return s;
}

Session *session_ref(Session *s) {
        s->n_ref++;
        return s;
}

static void slot_done(Slot *slot) {
        metadata_free(slot->metadata);
        for (size_t i = 0; i < slot->n_components; i++)
                free(slot->components[i]);
        free(slot->components);
}

Session *session_unref(Session *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        for (size_t i = 0; i < s->n_slots; i++)
                slot_done(&s->slots[i]);
        free(s->slots);
        for (size_t i = 0; i < s->n_volumes; i++) {
                free(s->volumes[i].path);
                free(s->volumes[i].shadow_path);
                free(s->volumes[i].not_held_why);
                if (s->volumes[i].index_fd >= 0)
                        close(s->volumes[i].index_fd);
        }
        sd_bus_message_unref(s->request);
        sd_bus_message_unref(s->release_request);
        sd_event_source_disable_unref(s->commit_source);
        sd_event_source_disable_unref(s->window_source);
        sd_event_source_disable_unref(s->commit_io);
        if (s->commit_fd >= 0)
                close(s->commit_fd);
        bcd_free(s->doc);
        free(s);
        return NULL;
}

Session *session_lookup(Connection *c, const char *id, sd_bus_error *error) {
        vss_id sid;
        if (vss_id_from_string(id, &sid) < 0) {
                reply_error(error, VSS_E_INVALIDARG, "'%s' is not a session id", id);
                return NULL;
        }
        /* Only this connection's sessions: another client's session does not exist for it. */
        LIST_FOREACH(sessions, s, c->manager->sessions)
                if (s->connection == c && !s->dead && vss_id_equal(&s->id, &sid))
                        return s;
        reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no session %s on this connection", id);
        return NULL;
}

void session_writer_gone(Session *s, Writer *w) {
        for (size_t i = 0; i < s->n_slots; i++)
                if (s->slots[i].writer == w)
                        s->slots[i].writer = NULL;
}

const char *slot_note(const Slot *slot) {
        if (slot->status.aborted && !state_is_failed(slot->status.state))
                return "aborted";
        if (slot->left_out)
                return "not involved";
        return "";
}

static void note_status(Session *s, Slot *slot) {
        writer_note_status(slot->writer, s, slot);
}

/* Records a writer's answer (or the lack of one) to an event. */
static void slot_answer(Session *s, Slot *slot, vss_event e, int32_t failure, int32_t code, const char *msg) {
        if (failure != 0)
                log_warn("writer '%s' failed %s: 0x%08x %s", slot->name, vss_event_name(e), (uint32_t) failure, msg);
        /* A writer lost between Freeze and Thaw (found by an event or by a status query) makes
         * the set inconsistent: abort it. */
        if (status_apply(&slot->status, e, failure, code, msg) && (e == VSS_EVENT_FREEZE || e == VSS_EVENT_THAW) &&
            s->busy && s->op == CALL_DO_SNAPSHOT_SET && s->abort_hr == 0) {
                s->abort_hr = failure;
                snprintf(s->abort_msg, sizeof(s->abort_msg), "writer '%s' failed at %s: %s", slot->name,
                         vss_event_name(e), msg);
        }
        note_status(s, slot);
}

/* The document's records of a slot's components: in a backup those of this writer instance, in a
 * restore those of its writer class (the instance that made the backup is long gone). */
static bool record_of_slot(const Session *s, const Slot *slot, const vss_bc_component *c) {
        return vss_id_equal(&c->writer_id, &slot->class_id) && (s->restore || vss_id_equal(&c->instance_id, &slot->instance_id));
}

/* A component as events name it: "logical_path/name", or "name" at the top. */
static char *component_key(const char *logical_path, const char *name) {
        char *k;
        if (asprintf(&k, "%s%s%s", logical_path, isempty(logical_path) ? "" : "/", name) < 0)
                return NULL;
        return k;
}

/* "logical_path/name" of each record of the slot, NULL-terminated; NULL when none (or ENOMEM). */
static char **slot_record_keys(Session *s, const Slot *slot) {
        char **keys = calloc(s->doc->n_components + 1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; keys && i < s->doc->n_components; i++)
                if (record_of_slot(s, slot, &s->doc->components[i]) &&
                    (keys[n] = component_key(s->doc->components[i].logical_path, s->doc->components[i].name)))
                        n++;
        if (keys && n == 0) {
                free(keys);
                keys = NULL;
        }
        return keys;
}

static int slot_records(Session *s, const Slot *slot, char **ret) {
        const vss_bc_component **list = calloc(s->doc->n_components ? s->doc->n_components : 1, sizeof(*list));
        size_t n = 0;
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < s->doc->n_components; i++)
                if (record_of_slot(s, slot, &s->doc->components[i]))
                        list[n++] = &s->doc->components[i];
        int r = n ? bcd_components_format(list, n, ret) : 0;
        free(list);
        return r;
}

/* A writer's annotations of its records, taken only where the event allows them: the backup stamp
 * and writer files from PrepareForBackup through PostSnapshot, restore target and failure messages in restores. */
static void slot_annotate(Session *s, Slot *slot, vss_event e, const char *json) {
        vss_bc_component *c = NULL;
        size_t n = 0;
        char why[512];
        bool backup = e == VSS_EVENT_PREPARE_BACKUP || e == VSS_EVENT_PREPARE_SNAPSHOT || e == VSS_EVENT_FREEZE ||
                      e == VSS_EVENT_THAW || e == VSS_EVENT_POST_SNAPSHOT;
        if (isempty(json))
                return;
        if (!backup && e != VSS_EVENT_PRE_RESTORE && e != VSS_EVENT_POST_RESTORE) {
                log_warn("writer '%s' annotated the document in %s, where it is read-only; ignored", slot->name,
                         vss_event_name(e));
                return;
        }
        if (bcd_components_parse(json, &c, &n, why, sizeof(why)) < 0) {
                log_warn("writer '%s' sent bad annotations: %s", slot->name, why);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                vss_bc_component *d = bcd_find(s->doc, &slot->class_id, s->restore ? NULL : &slot->instance_id,
                                               c[i].logical_path, c[i].name);
                if (!d) {
                        log_warn("writer '%s' annotated '%s', which is not one of its components here", slot->name,
                                 c[i].name);
                        continue;
                }
                if (backup) {
                        (void) bcd_set(&d->backup_stamp, c[i].backup_stamp);
                        /* The writer's list, whole: it got the record with the list so far. */
                        bcd_writer_files_clear(d);
                        for (size_t k = 0; k < c[i].n_writer_files; k++)
                                (void) bcd_add_writer_file(d, c[i].writer_files[k].path, c[i].writer_files[k].filespec,
                                                           c[i].writer_files[k].recursive, c[i].writer_files[k].destination);
                } else if (e == VSS_EVENT_PRE_RESTORE) {
                        d->restore_target = c[i].restore_target;
                        (void) bcd_set(&d->pre_restore_failure_msg, c[i].pre_restore_failure_msg);
                } else
                        (void) bcd_set(&d->post_restore_failure_msg, c[i].post_restore_failure_msg);
        }
        bcd_components_free(c, n);
}

static void batch_done_one(Session *s) {
        if (--s->pending == 0 && s->next) {
                void (*next)(Session *) = s->next;
                s->next = NULL;
                next(s);
        }
}

static void gather_reply(StatusGather *g);
static void gather_free(StatusGather *g);
static int call_slot(Session *s, size_t idx, vss_event event, StatusGather *g);

/* A snapshot set being aborted, while its writers may still be busy with another step. */
static bool set_aborting(const Session *s) {
        return s->busy && s->op == CALL_DO_SNAPSHOT_SET && s->abort_hr != 0 &&
               ((s->stage >= STAGE_PRECOPY && s->stage <= STAGE_THAW) || s->stage == STAGE_ABORT);
}

/* Abort, at once, to every writer of an aborting set that is due one (abort_due()). Only while a
 * batch is pending: the Abort answers join it, so the sequence goes on once all are in. */
static void abort_due_writers(Session *s) {
        if (!set_aborting(s) || s->pending == 0)
                return;
        for (size_t i = 0; i < s->n_slots; i++) {
                const Slot *slot = &s->slots[i];
                AbortFacts f = {
                        .aborting = true,
                        .took_part = slot->got_prepare_snapshot,
                        .abort_sent = slot->got_abort,
                        .inflight = slot->inflight,
                };
                if (abort_due(&f) && call_slot(s, i, VSS_EVENT_ABORT, NULL) > 0)
                        s->pending++;
        }
}

static void call_destroy(void *userdata) {
        Call *call = userdata;
        /* The bus went away without an answer (vssd is stopping): a status gather still ends. */
        if (!call->answered && call->gather && --call->gather->pending == 0)
                gather_free(call->gather);
        session_unref(call->session);
        free(call);
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *call = userdata;
        Session *s = call->session;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int32_t failure = 0, code = 0;
        const char *msg = "", *doc = "";

        call->answered = true;
        if (e) {
                failure = VSS_E_WRITER_NOT_RESPONDING;
                if (e->message && strstr(e->message, "terminated"))
                        msg = "writer disconnected";
                else if (call->event == VSS_EVENT_FREEZE && s->freeze_cap_ms > 0)
                        msg = "no answer within the freeze window of the writers already frozen";
                else if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY))
                        msg = "no answer within the deadline";
                else
                        msg = e->message ? e->message : "no answer";
        } else if (sd_bus_message_read(reply, "iiss", &failure, &code, &msg, &doc) < 0) {
                failure = VSS_E_WRITER_NOT_RESPONDING;
                msg = "malformed answer from writer";
        } else if (call->event != VSS_EVENT_IDENTIFY && failure != 0 && !writer_failure_valid(failure))
                failure = VSS_E_WRITERERROR_NONRETRYABLE; /* a writer reports writer errors, nothing else */

        if (call->gather) {
                StatusGather *g = call->gather;
                if (g->direct)
                        g->direct_entries[call->idx].answered = !e;
                else if (e) {
                        slot_answer(s, &s->slots[call->idx], s->slots[call->idx].last_event,
                                    VSS_E_WRITER_NOT_RESPONDING, 0, "not responding to a status query");
                        abort_due_writers(s); /* a frozen writer lost aborts the set: Abort now */
                }
                if (--g->pending == 0)
                        gather_reply(g);
                return 0;
        }

        Slot *slot = &s->slots[call->idx];
        slot->inflight = false;
        if (call->event == VSS_EVENT_IDENTIFY) {
                char why[512] = "";
                if (failure == 0 && metadata_parse(doc, &slot->metadata, why, sizeof(why)) >= 0) {
                        /* A writer describes itself only: the document must match its subscription. */
                        if (vss_id_equal(&slot->metadata->writer_id, &slot->class_id) &&
                            vss_id_equal(&slot->metadata->instance_id, &slot->instance_id) &&
                            streq(slot->metadata->name, slot->name))
                                slot->identified = true;
                        else {
                                log_warn("writer '%s' sent metadata for another writer", slot->name);
                                slot->metadata = (metadata_free(slot->metadata), NULL);
                        }
                } else if (failure == 0)
                        log_warn("writer '%s' sent bad metadata: %s", slot->name, why);
                else
                        log_warn("writer '%s' failed identify: 0x%08x %s", slot->name, (uint32_t) failure, msg);
                if (!slot->identified) {
                        /* No status in this session (the slot goes), but the admin view shows why. */
                        int32_t f = failure == 0 || !writer_failure_valid(failure) ? VSS_E_WRITERERROR_NONRETRYABLE : failure;
                        status_apply(&slot->status, VSS_EVENT_IDENTIFY, f, code,
                                     failure == 0 ? (why[0] ? why : "metadata for another writer") : msg);
                        note_status(s, slot);
                }
        } else {
                if (!e)
                        slot_annotate(s, slot, call->event, doc);
                slot_answer(s, slot, call->event, failure, code, msg);
                /* An answer (or a failure) for a set being aborted: Abort follows at once. */
                abort_due_writers(s);
        }
        batch_done_one(s);
        return 0;
}

/* Sends one event (or, with a gather, a Ping) to slot idx. Returns 1 when a call is in flight,
 * 0 when the writer is gone and its answer was recorded at once. */
static int call_slot(Session *s, size_t idx, vss_event event, StatusGather *g) {
        Manager *m = s->manager;
        Slot *slot = &s->slots[idx];
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        sd_bus_slot *bslot = NULL;
        char sid[VSS_ID_STRING_MAX], setid[VSS_ID_STRING_MAX];
        Writer *w = slot->writer;
        int r = -ENOTCONN;

        if (!g) {
                slot->last_event = event;
                if (event == VSS_EVENT_PREPARE_SNAPSHOT)
                        slot->got_prepare_snapshot = true;
                if (event == VSS_EVENT_FREEZE)
                        slot->got_freeze = true;
                if (event == VSS_EVENT_PREPARE_BACKUP)
                        slot->got_prepare_backup = true;
                if (event == VSS_EVENT_POST_SNAPSHOT)
                        slot->got_post_snapshot = true;
                if (event == VSS_EVENT_ABORT)
                        slot->got_abort = true;
        }
        if (w) {
                r = sd_bus_message_new_method_call(w->connection->bus, &msg, NULL, VSS_WRITER_PATH,
                                                   VSS_WRITER_INTERFACE, g ? "Ping" : "Event");
                if (r >= 0 && !g)
                        r = sd_bus_message_append(msg, "sssub", vss_event_name(event), vss_id_to_string(&s->id, sid),
                                                  s->set_registered || s->phase >= PHASE_SET_STARTED
                                                          ? vss_id_to_string(&s->set_id, setid)
                                                          : "",
                                                  (uint32_t) s->backup_type, s->component_mode);
                if (r >= 0 && !g) {
                        /* Outside component mode every component of the writer takes part: the
                         * event lists those the document has records of. */
                        char **keys = slot->components, **all = NULL;
                        if (!keys && !s->component_mode && !s->restore)
                                keys = all = slot_record_keys(s, slot);
                        r = sd_bus_message_append_strv(msg, keys ? keys : (char *[]) { NULL });
                        for (char **k = all; k && *k; k++)
                                free(*k);
                        free(all);
                }
                if (r >= 0 && !g) {
                        _cleanup_free_ char *records = NULL;
                        r = slot_records(s, slot, &records);
                        if (r >= 0)
                                r = sd_bus_message_append(msg, "s", strempty(records));
                }
                if (r >= 0) {
                        uint32_t ms = g ? m->config.timeouts.status_ms
                                        : event_timeout_ms(&m->config.timeouts, event, slot->window_ms);
                        /* A later level's Freeze may not outlast the windows of writers already frozen. */
                        if (event == VSS_EVENT_FREEZE && s->freeze_cap_ms > 0 && ms > s->freeze_cap_ms)
                                ms = s->freeze_cap_ms;
                        Call *call = calloc(1, sizeof(*call));
                        if (!call)
                                r = -ENOMEM;
                        else {
                                *call = (Call) { .session = session_ref(s), .idx = idx, .event = event, .gather = g };
                                r = sd_bus_call_async(w->connection->bus, &bslot, msg, on_reply, call,
                                                      (uint64_t) ms * USEC_PER_MSEC);
                                if (r < 0)
                                        call_destroy(call);
                                else {
                                        sd_bus_slot_set_destroy_callback(bslot, call_destroy);
                                        sd_bus_slot_set_floating(bslot, 1);
                                        sd_bus_slot_unref(bslot); /* the bus holds it now */
                                }
                        }
                }
        }
        if (r >= 0) {
                if (!g) {
                        slot->inflight = true;
                        slot->inflight_event = event;
                        slot->inflight_since = now_realtime_usec();
                }
                return 1;
        }
        /* The writer is gone (or its connection failed): it does not respond. */
        if (g) {
                if (!g->direct)
                        slot_answer(s, slot, slot->last_event, VSS_E_WRITER_NOT_RESPONDING, 0, "writer disconnected");
                return 0;
        }
        slot_answer(s, slot, event, VSS_E_WRITER_NOT_RESPONDING, 0, "writer disconnected");
        return 0;
}

typedef bool (*SlotFilter)(const Session *s, const Slot *slot, int level);

/* Sends event to every slot the filter picks, in parallel; then s->next runs once all answered
 * (at once if none was sent). */
static void send_batch(Session *s, vss_event event, SlotFilter want, int level, void (*next)(Session *)) {
        s->pending = 1; /* held while sending, so an immediate answer cannot finish the batch */
        s->next = next;
        for (size_t i = 0; i < s->n_slots; i++)
                if (want(s, &s->slots[i], level) && call_slot(s, i, event, NULL) > 0)
                        s->pending++;
        batch_done_one(s);
}

static bool want_all(const Session *s, const Slot *slot, int level) {
        return true;
}
static bool want_not_failed(const Session *s, const Slot *slot, int level) {
        return !state_is_failed(slot->status.state);
}
static bool want_active(const Session *s, const Slot *slot, int level) {
        return slot->selected && !slot->left_out && !state_is_failed(slot->status.state);
}
static bool want_freeze(const Session *s, const Slot *slot, int level) {
        return want_active(s, slot, level) && (int) slot->level == level &&
               slot->status.state == VSS_WS_WAITING_FOR_FREEZE;
}
static bool want_thaw(const Session *s, const Slot *slot, int level) {
        return slot->got_freeze && (int) slot->level == level && slot->status.state == VSS_WS_WAITING_FOR_THAW;
}
static bool want_post_snapshot(const Session *s, const Slot *slot, int level) {
        return slot->status.state == VSS_WS_WAITING_FOR_POST_SNAPSHOT;
}
static bool want_abort(const Session *s, const Slot *slot, int level) {
        return slot->got_prepare_snapshot && !slot->got_abort && (int) slot->level == level;
}
static bool want_backup_complete(const Session *s, const Slot *slot, int level) {
        return slot->selected && slot->status.state == VSS_WS_WAITING_FOR_BACKUP_COMPLETE;
}
static bool want_shutdown(const Session *s, const Slot *slot, int level) {
        /* A writer declared not responding in this session is not waited for again: one hung
         * writer must not hold every release for the shutdown deadline. */
        return slot->selected && slot->status.failure != VSS_E_WRITER_NOT_RESPONDING;
}

/* Operation bookkeeping. */

static void op_reply(Session *s, int32_t hr, const char *msg) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *req = TAKE_PTR(s->request);
        s->busy = false;
        if (!req)
                return;
        if (hr == 0)
                (void) sd_bus_reply_method_return(req, NULL);
        else {
                reply_error(&error, hr, "%s", msg);
                (void) sd_bus_reply_method_error(req, &error);
        }
        sd_bus_message_unref(req);
}

static int op_begin(Session *s, sd_bus_message *msg, SeqCall call) {
        s->busy = true;
        s->op = call;
        s->request = sd_bus_message_ref(msg);
        return 1; /* answered later */
}

/* Deletes the set's shadows through the registry, which has every one of them (journalled before
 * anything is made, each location as soon as it is known), in child processes; then next(s).
 * What a provider could not remove stays recorded, with its set: a restarted vssd tries again. */
typedef struct SetDeletion {
        Session *session;
        void (*next)(Session *s);
} SetDeletion;

static void set_deletion_cancel(void *userdata) {
        SetDeletion *d = userdata;
        session_unref(d->session);
        free(d);
}

static void on_set_deleted(Manager *m, unsigned deleted, unsigned kept, void *userdata) {
        SetDeletion *d = userdata;
        Session *s = d->session;
        if (kept == 0)
                s->set_registered = s->set_committed = false;
        if (d->next)
                d->next(s);
        set_deletion_cancel(d);
}

static void set_delete(Session *s, void (*next)(Session *s)) {
        if (!s->restore)
                bcd_clear_shadows(s->doc); /* the document names no deleted shadow */
        if (s->set_registered) {
                SetDeletion *d = calloc(1, sizeof(*d));
                if (d) {
                        *d = (SetDeletion) { .session = session_ref(s), .next = next };
                        int r = set_remove(s->manager, &s->set_id, on_set_deleted, set_deletion_cancel, d);
                        if (r >= 0)
                                return;
                        set_deletion_cancel(d);
                        if (r == -ENOENT) /* nothing of it is recorded any more */
                                s->set_registered = s->set_committed = false;
                }
        } else if (s->n_volumes > 0)
                shadow_set_dir_remove(s->manager, &s->set_id);
        if (next)
                next(s);
}

static void creating_done(Session *s) {
        if (s->manager->creating == s)
                s->manager->creating = NULL;
}

/* Method plumbing: every session method starts with the session id. */
static Session *session_begin_call(sd_bus_message *msg, void *userdata, SeqCall call, sd_bus_error *error) {
        Connection *c = userdata;
        const char *id, *why = NULL;
        if (!c->may_request) {
                reply_error(error, VSS_E_ACCESSDENIED,
                            "uid %u may not use sessions: it holds neither the 'create' nor the 'restore' right",
                            (unsigned) c->cred.uid);
                return NULL;
        }
        /* Backup events make writers act (a log truncated at BackupComplete), so a whole backup
         * needs the create right, not only its snapshot set; a restore needs the restore right. */
        Right need = _RIGHT_MAX;
        switch (call) {
        case CALL_INITIALIZE_FOR_BACKUP: case CALL_START_SNAPSHOT_SET: case CALL_ADD_TO_SNAPSHOT_SET:
        case CALL_DO_SNAPSHOT_SET:
                need = RIGHT_CREATE;
                break;
        case CALL_INITIALIZE_FOR_RESTORE: case CALL_PRE_RESTORE: case CALL_POST_RESTORE:
                need = RIGHT_RESTORE;
                break;
        default:
                break;
        }
        if (need != _RIGHT_MAX && check_right(c, need, error) < 0)
                return NULL;
        if (sd_bus_message_read(msg, "s", &id) < 0) {
                reply_error(error, VSS_E_INVALIDARG, "missing session id");
                return NULL;
        }
        Session *s = session_lookup(c, id, error);
        if (!s)
                return NULL;
        SeqFacts f = {
                .phase = s->phase,
                .busy = s->busy,
                .component_mode = s->component_mode,
                .restore = s->restore,
                .status_closed = s->status_closed,
                .n_volumes = (unsigned) s->n_volumes,
        };
        int32_t hr = seq_check(&f, call, &why);
        if (hr < 0) {
                reply_error(error, hr, "%s: %s (session is %s)", seq_call_name(call), why, session_phase_name(s->phase));
                return NULL;
        }
        return s;
}

#define BEGIN(call)                                                           \
        Session *s = session_begin_call(msg, userdata, call, error);         \
        if (!s)                                                               \
                return -EINVAL;

int method_initialize_for_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_INITIALIZE_FOR_BACKUP);
        s->phase = seq_next(s->phase, CALL_INITIALIZE_FOR_BACKUP);
        return sd_bus_reply_method_return(msg, NULL);
}

int method_initialize_for_restore(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *doc;
        BEGIN(CALL_INITIALIZE_FOR_RESTORE);
        char why[512];
        vss_backup_document *d = NULL;
        if (sd_bus_message_read(msg, "s", &doc) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "backup components document missing");
        /* "": no document, a restore addressed to the writers that run (non-component mode). */
        if (!isempty(doc)) {
                if (bcd_parse(doc, &d, why, sizeof(why)) < 0)
                        return reply_error(error, VSS_E_INVALIDARG, "bad backup components document: %s", why);
                bcd_free(s->doc);
                s->doc = d;
                s->component_mode = d->component_mode;
                s->backup_type = d->backup_type;
        }
        s->restore = true;
        s->phase = seq_next(s->phase, CALL_INITIALIZE_FOR_RESTORE);
        return sd_bus_reply_method_return(msg, NULL);
}

int method_set_context(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint32_t ctx;
        BEGIN(CALL_SET_CONTEXT);
        if (sd_bus_message_read(msg, "u", &ctx) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "missing context");
        switch (ctx) {
        case VSS_CTX_BACKUP: case VSS_CTX_FILE_SHARE_BACKUP: case VSS_CTX_NAS_ROLLBACK: case VSS_CTX_APP_ROLLBACK:
        case VSS_CTX_CLIENT_ACCESSIBLE: case VSS_CTX_CLIENT_ACCESSIBLE_WRITERS:
                break;
        default:
                return reply_error(error, VSS_E_INVALIDARG, "unknown snapshot context 0x%x", ctx);
        }
        s->context = ctx;
        return sd_bus_reply_method_return(msg, NULL);
}

int method_set_backup_state(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        int select, bootable, partial;
        uint32_t type;
        BEGIN(CALL_SET_BACKUP_STATE);
        if (sd_bus_message_read(msg, "bbub", &select, &bootable, &type, &partial) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "bad arguments");
        if (type < VSS_BT_FULL || type > VSS_BT_OTHER)
                return reply_error(error, VSS_E_INVALIDARG, "backup type %u out of range", type);
        s->component_mode = select;
        s->bootable = bootable;
        s->partial = partial;
        s->backup_type = type;
        return sd_bus_reply_method_return(msg, NULL);
}

static void metadata_done(Session *s) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t k = 0;

        /* Writers that failed Identify have no metadata and no status in this session. */
        for (size_t i = 0; i < s->n_slots; i++) {
                if (s->slots[i].identified) {
                        s->slots[k] = s->slots[i];
                        s->slots[k].status = (StatusSlot) { .state = VSS_WS_STABLE };
                        s->slots[k].selected = true;
                        k++;
                } else
                        slot_done(&s->slots[i]);
        }
        s->n_slots = k;
        s->phase = seq_next(s->phase, CALL_GATHER_WRITER_METADATA);
        s->busy = false;
        sd_bus_message *req = TAKE_PTR(s->request);
        if (!req)
                return;
        int r = sd_bus_message_new_method_return(req, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "s");
        for (size_t i = 0; r >= 0 && i < s->n_slots; i++)
                r = sd_bus_message_append(reply, "s", s->slots[i].metadata->document);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                (void) sd_bus_reply_method_errnof(req, -r, "cannot send metadata: %m");
        sd_bus_message_unref(req);
        if (s->dead)
                session_shutdown(s);
}

/* Slots for every subscribed writer, with identities copied (writers may go away). */
static int slots_for_writers(Session *s) {
        Manager *m = s->manager;
        s->slots = calloc(m->n_writers ? m->n_writers : 1, sizeof(Slot));
        if (!s->slots)
                return -ENOMEM;
        size_t n = 0;
        LIST_FOREACH(writers, w, m->writers) {
                Slot *slot = &s->slots[n++];
                slot->writer = w;
                slot->owner_uid = w->connection->cred.uid;
                slot->class_id = w->class_id;
                slot->instance_id = w->instance_id;
                slot->level = w->level;
                slot->window_ms = w->window_ms;
                slot->uid = w->connection ? w->connection->cred.uid : (uid_t) -1;
                slot->selected = true;
                slot->status.state = VSS_WS_STABLE;
                memcpy(slot->name, w->name, sizeof(slot->name));
        }
        s->n_slots = n;
        return 0;
}

int method_gather_writer_metadata(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_GATHER_WRITER_METADATA);
        if (slots_for_writers(s) < 0)
                return -ENOMEM;
        op_begin(s, msg, CALL_GATHER_WRITER_METADATA);
        send_batch(s, VSS_EVENT_IDENTIFY, want_all, 0, metadata_done);
        return 1;
}

static Slot *slot_find(Session *s, const vss_id *iid, const vss_id *wid) {
        for (size_t i = 0; i < s->n_slots; i++)
                if (vss_id_equal(&s->slots[i].instance_id, iid) && (!wid || vss_id_equal(&s->slots[i].class_id, wid)))
                        return &s->slots[i];
        return NULL;
}

static int read_component(sd_bus_message *msg, Session *s, Slot **ret_slot, const vss_component_info **ret_comp,
                          sd_bus_error *error) {
        const char *iid, *wid, *lp, *name;
        vss_id i, w;
        if (sd_bus_message_read(msg, "ssss", &iid, &wid, &lp, &name) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "bad arguments");
        if (vss_id_from_string(iid, &i) < 0 || vss_id_from_string(wid, &w) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "instance and writer ids must be UUIDs");
        Slot *slot = slot_find(s, &i, &w);
        if (!slot || !slot->metadata)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no writer %s (instance %s) in this session", wid, iid);
        const vss_component_info *comp = metadata_find_component(slot->metadata, lp, name);
        if (!comp)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "writer '%s' has no component '%s%s%s'", slot->name, lp,
                                   isempty(lp) ? "" : "/", name);
        *ret_slot = slot;
        *ret_comp = comp;
        return 0;
}

int method_add_component(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Slot *slot;
        const vss_component_info *comp;
        size_t total = 0;
        BEGIN(CALL_ADD_COMPONENT);
        int r = read_component(msg, s, &slot, &comp, error);
        if (r < 0)
                return r;
        if (!comp->selectable_for_backup)
                return reply_error(error, VSS_E_INVALIDARG, "component '%s' is not selectable for backup", comp->name);
        for (size_t i = 0; i < s->n_slots; i++)
                total += s->slots[i].n_components;
        if (total >= VSS_MAX_COMPONENTS)
                return reply_error(error, VSS_E_INVALIDARG, "too many components (%d)", VSS_MAX_COMPONENTS);
        _cleanup_free_ char *key = component_key(comp->logical_path, comp->name);
        if (!key)
                return -ENOMEM;
        for (size_t i = 0; i < slot->n_components; i++)
                if (streq(slot->components[i], key))
                        return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "component '%s' is already selected", key);
        char **n = realloc(slot->components, (slot->n_components + 2) * sizeof(char *));
        if (!n)
                return -ENOMEM;
        slot->components = n;
        if (!bcd_add_component(s->doc, &slot->class_id, &slot->instance_id, comp->logical_path, comp->name))
                return -ENOMEM;
        n[slot->n_components++] = TAKE_PTR(key);
        n[slot->n_components] = NULL;
        return sd_bus_reply_method_return(msg, NULL);
}

int method_set_backup_succeeded(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Slot *slot;
        const vss_component_info *comp;
        int ok;
        BEGIN(CALL_SET_BACKUP_SUCCEEDED);
        int r = read_component(msg, s, &slot, &comp, error);
        if (r < 0)
                return r;
        if (sd_bus_message_read(msg, "b", &ok) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "bad arguments");
        vss_bc_component *rec = bcd_find(s->doc, &slot->class_id, &slot->instance_id, comp->logical_path, comp->name);
        if (!rec)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "component '%s' of '%s' is not part of this backup",
                                   comp->name, slot->name);
        rec->backup_succeeded = ok;
        log_info("component '%s' of '%s' backed up: %s", comp->name, slot->name, ok ? "succeeded" : "failed");
        return sd_bus_reply_method_return(msg, NULL);
}

int method_start_snapshot_set(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        char id[VSS_ID_STRING_MAX];
        BEGIN(CALL_START_SNAPSHOT_SET);
        Manager *m = s->manager;
        if (m->creating && m->creating != s)
                return reply_error(error, VSS_E_SNAPSHOT_SET_IN_PROGRESS,
                                   "another snapshot set is in creation; only one at a time machine-wide");
        if (vss_id_new(&s->set_id) < 0)
                return -ENOMEM;
        m->creating = s;
        s->phase = seq_next(s->phase, CALL_START_SNAPSHOT_SET);
        return sd_bus_reply_method_return(msg, "s", vss_id_to_string(&s->set_id, id));
}

static bool same_filesystem(const char *a, const char *b) {
        struct stat sa, sb;
        char ma[PATH_MAX], mb[PATH_MAX], da[PATH_MAX], db[PATH_MAX];
        if (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev)
                return true;
        /* Subvolumes and bind mounts show other st_dev values over one filesystem. */
        return mount_of(a, NULL, ma, sizeof(ma), da, sizeof(da)) >= 0 && mount_of(b, NULL, mb, sizeof(mb), db, sizeof(db)) >= 0 &&
               da[0] == '/' && streq(da, db);
}

static unsigned shadows_of_volume(Manager *m, const char *path) {
        ShadowRecord *recs = NULL;
        size_t n = 0;
        unsigned k = 0;
        if (registry_list_shadows(m->registry, &recs, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (streq(recs[i].original_path, path))
                        k++;
        shadow_records_free(recs, n);
        return k;
}

int method_add_to_snapshot_set(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *path, *pname;
        char real[PATH_MAX], id[VSS_ID_STRING_MAX], sid[VSS_ID_STRING_MAX];
        _cleanup_free_ char *state = NULL;
        BEGIN(CALL_ADD_TO_SNAPSHOT_SET);
        Manager *m = s->manager;
        if (sd_bus_message_read(msg, "ss", &path, &pname) < 0 || !string_ok(path, VSS_MAX_STRING))
                return reply_error(error, VSS_E_INVALIDARG, "bad path");
        if (path[0] != '/')
                return reply_error(error, VSS_E_INVALIDARG, "path '%s' is not absolute", path);
        if (!realpath(path, real))
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "cannot resolve '%s': %m", path);
        state = realpath(m->state_dir, NULL);
        if (state && (path_within(real, state) || path_within(state, real)))
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED, "'%s' overlaps vssd's state directory %s", real, state);
        _cleanup_free_ char *storage = m->config.file_storage_dir ? realpath(m->config.file_storage_dir, NULL) : NULL;
        if (storage && (path_within(real, storage) || path_within(storage, real)))
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED, "'%s' overlaps the file provider's storage %s", real,
                                   storage);
        const Provider *p = isempty(pname) ? provider_choose(real) : provider_find(pname);
        if (!p)
                return reply_error(error, isempty(pname) ? VSS_E_VOLUME_NOT_SUPPORTED : VSS_E_OBJECT_NOT_FOUND,
                                   isempty(pname) ? "no provider supports '%s'" : "no provider named '%s'",
                                   isempty(pname) ? real : pname);
        if (p->supports(p, real) < 0)
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED, "provider '%s' does not support '%s'", p->name, real);
        for (size_t i = 0; i < s->n_volumes; i++)
                if (streq(s->volumes[i].path, real))
                        return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "'%s' is already in the set", real);
        /* vssd never writes to a filesystem it holds frozen: not the one with its own state. */
        if (p->hold && state && same_filesystem(real, state))
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED,
                                   "'%s' is on the filesystem of vssd's state directory, which vssd cannot hold frozen", real);
        if (s->n_volumes >= VSS_MAX_VOLUMES)
                return reply_error(error, VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED, "a set holds at most %d volumes",
                                   VSS_MAX_VOLUMES);
        unsigned existing = shadows_of_volume(m, real);
        if (existing >= m->config.max_shadows_per_volume)
                return reply_error(error, VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED,
                                   "'%s' has %u shadow copies, the most allowed; delete some first", real, existing);
        Volume *v = &s->volumes[s->n_volumes];
        *v = (Volume) { .provider = p, .path = strdup(real), .index_fd = -EBADF };
        const char *dir = p == &provider_file ? file_storage_dir(m) : m->shadow_dir;
        if (!v->path || vss_id_new(&v->shadow_id) < 0 ||
            (p->shadow_path ? p->shadow_path(real, vss_id_to_string(&s->set_id, sid), vss_id_to_string(&v->shadow_id, id),
                                             &v->shadow_path)
                            : asprintf(&v->shadow_path, "%s/%s/%s", dir, vss_id_to_string(&s->set_id, sid),
                                       vss_id_to_string(&v->shadow_id, id))) < 0 ||
            (p == &provider_file && hold_decide(m, v) < 0)) {
                free(v->path);
                free(v->shadow_path);
                *v = (Volume) {};
                return -ENOMEM;
        }
        if (p == &provider_file && !v->held)
                log_info("the shadow copy of %s will not be point-in-time: %s", real, v->not_held_why);
        s->n_volumes++;
        return sd_bus_reply_method_return(msg, "s", id);
}

static void abort_backup_start(Session *s);

static void simple_op_done(Session *s) {
        s->phase = seq_next(s->phase, s->op);
        op_reply(s, 0, NULL);
        /* AbortBackup came while PrepareForBackup ran: it answered S_OK, its Abort goes now. */
        if (s->abort_after_op && s->phase == PHASE_PREPARED) {
                s->abort_after_op = false;
                abort_backup_start(s);
                return;
        }
        if (s->dead)
                session_shutdown(s);
}

int method_prepare_for_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_PREPARE_FOR_BACKUP);
        /* Component mode: writers with no selected component take no part after this event.
         * Otherwise every component of every writer is in the backup and has a record (as in VSS,
         * selectable_for_backup only matters when choosing components). */
        for (size_t i = 0; i < s->n_slots; i++) {
                Slot *slot = &s->slots[i];
                slot->selected = !s->component_mode || slot->n_components > 0;
                for (size_t k = 0; !s->component_mode && slot->metadata && k < slot->metadata->n_components; k++)
                        if (!bcd_add_component(s->doc, &slot->class_id, &slot->instance_id,
                                               slot->metadata->components[k].logical_path,
                                               slot->metadata->components[k].name))
                                return reply_error(error, VSS_E_INVALIDARG, "too many components (%d)",
                                                   VSS_MAX_COMPONENTS);
        }
        op_begin(s, msg, CALL_PREPARE_FOR_BACKUP);
        send_batch(s, VSS_EVENT_PREPARE_BACKUP, want_not_failed, 0, simple_op_done);
        return 1;
}

int method_backup_complete(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_BACKUP_COMPLETE);
        op_begin(s, msg, CALL_BACKUP_COMPLETE);
        send_batch(s, VSS_EVENT_BACKUP_COMPLETE, want_backup_complete, 0, simple_op_done);
        return 1;
}

static bool restore_slots_needed(Session *s) {
        return s->phase == PHASE_RESTORE_INIT && s->n_slots == 0;
}

int method_pre_restore(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_PRE_RESTORE);
        /* A restore without metadata addresses the writers running now. */
        if (restore_slots_needed(s) && slots_for_writers(s) < 0)
                return -ENOMEM;
        /* In component mode a writer takes part when one of its components is selected for restore. */
        for (size_t i = 0; i < s->n_slots; i++) {
                Slot *slot = &s->slots[i];
                size_t n = 0;
                for (size_t k = 0; k < s->doc->n_components; k++) {
                        const vss_bc_component *c = &s->doc->components[k];
                        if (!record_of_slot(s, slot, c) || !c->selected_for_restore)
                                continue;
                        /* The writer sees them as its event's components. */
                        char **keys = realloc(slot->components, (slot->n_components + 2) * sizeof(char *));
                        if (!keys)
                                return -ENOMEM;
                        slot->components = keys;
                        if (!(keys[slot->n_components] = component_key(c->logical_path, c->name)))
                                return -ENOMEM;
                        keys[++slot->n_components] = NULL;
                        n++;
                }
                const vss_writer_metadata *wm = slot->metadata;
                for (size_t k = 0; !wm && k < s->doc->n_writers; k++)
                        if (vss_id_equal(&s->doc->writers[k]->writer_id, &slot->class_id))
                                wm = s->doc->writers[k];
                slot->selected = (!s->component_mode || n > 0) && !(wm && wm->writer_restore == VSS_WRE_NEVER);
        }
        op_begin(s, msg, CALL_PRE_RESTORE);
        send_batch(s, VSS_EVENT_PRE_RESTORE, want_active, 0, simple_op_done);
        return 1;
}

int method_post_restore(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_POST_RESTORE);
        op_begin(s, msg, CALL_POST_RESTORE);
        send_batch(s, VSS_EVENT_POST_RESTORE, want_active, 0, simple_op_done);
        return 1;
}

/* SetComponentProperty: one setter for the requester's fields of a component record. */

typedef enum PropertyWhen { WHEN_BACKUP, WHEN_RESTORE, WHEN_RESTORE_FILES } PropertyWhen;

static const struct Property {
        const char *name;
        const char *type;
        PropertyWhen when;
} properties[] = {
        { "backup-options", "s", WHEN_BACKUP },
        { "previous-backup-stamp", "s", WHEN_BACKUP },
        { "selected-for-restore", "b", WHEN_RESTORE },
        { "additional-restores", "b", WHEN_RESTORE },
        { "restore-options", "s", WHEN_RESTORE },
        { "new-target", "(ssbs)", WHEN_RESTORE },
        { "file-restore-status", "u", WHEN_RESTORE_FILES },
};

static bool property_valid_now(const Session *s, PropertyWhen when) {
        switch (when) {
        case WHEN_BACKUP: return !s->restore && (s->phase == PHASE_METADATA || s->phase == PHASE_SET_STARTED);
        case WHEN_RESTORE: return s->restore && (s->phase == PHASE_RESTORE_INIT || s->phase == PHASE_METADATA);
        case WHEN_RESTORE_FILES: return s->restore && s->phase == PHASE_PRE_RESTORED;
        }
        return false;
}

/* The record a requester names: in a restore one of the document's, in a backup one of a component
 * it may back up (created on first use; component mode needs AddComponent first). */
static vss_bc_component *record_for_request(Session *s, const char *iid, const char *wid, const char *lp,
                                            const char *name, sd_bus_error *error) {
        vss_id i, w;
        if (vss_id_from_string(iid, &i) < 0 || vss_id_from_string(wid, &w) < 0) {
                reply_error(error, VSS_E_INVALIDARG, "instance and writer ids must be UUIDs");
                return NULL;
        }
        vss_bc_component *c = bcd_find(s->doc, &w, &i, lp, name);
        if (c || s->restore) {
                if (!c)
                        reply_error(error, VSS_E_OBJECT_NOT_FOUND, "the document has no component '%s%s%s' of writer %s",
                                    lp, isempty(lp) ? "" : "/", name, wid);
                return c;
        }
        Slot *slot = slot_find(s, &i, &w);
        const vss_component_info *comp = slot && slot->metadata ? metadata_find_component(slot->metadata, lp, name) : NULL;
        if (!comp) {
                reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no component '%s%s%s' of writer %s (instance %s) in this session",
                            lp, isempty(lp) ? "" : "/", name, wid, iid);
                return NULL;
        }
        if (s->component_mode) {
                reply_error(error, VSS_E_OBJECT_NOT_FOUND, "component '%s' is not selected (AddComponent)", comp->name);
                return NULL;
        }
        c = bcd_add_component(s->doc, &w, &i, lp, name);
        if (!c)
                reply_error(error, VSS_E_INVALIDARG, "too many components (%d)", VSS_MAX_COMPONENTS);
        return c;
}

int method_set_component_property(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *iid, *wid, *lp, *name, *prop, *contents;
        const struct Property *p = NULL;
        char type;
        int r;
        BEGIN(CALL_SET_COMPONENT_PROPERTY);
        if (sd_bus_message_read(msg, "sssss", &iid, &wid, &lp, &name, &prop) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "bad arguments");
        for (size_t i = 0; i < ELEMENTSOF(properties); i++)
                if (streq(properties[i].name, prop))
                        p = &properties[i];
        if (!p)
                return reply_error(error, VSS_E_INVALIDARG, "unknown component property '%s'", prop);
        if (sd_bus_message_peek_type(msg, &type, &contents) < 0 || type != 'v' || !streq(contents, p->type))
                return reply_error(error, VSS_E_INVALIDARG, "property '%s' takes a value of type '%s'", prop, p->type);
        if (!property_valid_now(s, p->when))
                return reply_error(error, VSS_E_BAD_STATE, "'%s' cannot be set now (session is %s)", prop,
                                   session_phase_name(s->phase));
        vss_bc_component *c = record_for_request(s, iid, wid, lp, name, error);
        if (!c)
                return -EINVAL;
        r = sd_bus_message_enter_container(msg, 'v', contents);
        if (r < 0)
                return r;
        if (streq(p->type, "s")) {
                const char *v;
                if (sd_bus_message_read(msg, "s", &v) < 0 || !string_ok(v, VSS_MAX_STRING))
                        return reply_error(error, VSS_E_INVALIDARG, "'%s' is at most %d bytes", prop, VSS_MAX_STRING);
                const char **field = streq(prop, "backup-options") ? &c->backup_options
                                   : streq(prop, "previous-backup-stamp") ? &c->previous_backup_stamp
                                                                          : &c->restore_options;
                if (bcd_set(field, v) < 0)
                        return -ENOMEM;
        } else if (streq(p->type, "b")) {
                int v;
                if (sd_bus_message_read(msg, "b", &v) < 0)
                        return reply_error(error, VSS_E_INVALIDARG, "bad value");
                if (streq(prop, "selected-for-restore")) {
                        const vss_writer_metadata *wm = vss_backup_document_writer(s->doc, c);
                        const vss_component_info *ci = wm ? metadata_find_component(wm, c->logical_path, c->name) : NULL;
                        if (v && ci && !ci->selectable_for_restore)
                                return reply_error(error, VSS_E_INVALIDARG, "component '%s' is not selectable for restore",
                                                   c->name);
                        c->selected_for_restore = v;
                } else
                        c->additional_restores = v;
        } else if (streq(p->type, "u")) {
                uint32_t v;
                if (sd_bus_message_read(msg, "u", &v) < 0 || v > VSS_RS_FAILED)
                        return reply_error(error, VSS_E_INVALIDARG, "file restore status must be 0..%d", VSS_RS_FAILED);
                c->file_restore_status = v;
        } else {
                const char *path, *spec, *dest;
                int rec;
                if (sd_bus_message_read(msg, "(ssbs)", &path, &spec, &rec, &dest) < 0 ||
                    !string_ok(path, VSS_MAX_STRING) || !string_ok(spec, VSS_MAX_NAME) || !string_ok(dest, VSS_MAX_STRING) ||
                    path[0] != '/' || dest[0] != '/')
                        return reply_error(error, VSS_E_INVALIDARG, "a new target needs absolute paths of at most %d bytes",
                                           VSS_MAX_STRING);
                r = bcd_add_new_target(c, path, spec, rec, dest);
                if (r == -E2BIG)
                        return reply_error(error, VSS_E_INVALIDARG, "too many new targets for '%s'", c->name);
                if (r < 0)
                        return r;
        }
        return sd_bus_reply_method_return(msg, NULL);
}

/* SaveAsDocument: the document with its header and, for a backup, the writers taking part and the
 * shadows of the committed set. */
int method_save_as_document(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *json = NULL;
        BEGIN(CALL_SAVE_AS_DOCUMENT);
        vss_backup_document *d = s->doc;
        if (!s->restore) {
                d->backup_type = s->backup_type ? s->backup_type : VSS_BT_FULL;
                d->component_mode = s->component_mode;
                d->bootable_system_state = s->bootable;
                d->partial_file_support = s->partial;
                d->context = s->context;
                for (size_t i = 0; i < s->n_slots; i++)
                        if (s->slots[i].metadata && (!s->component_mode || s->slots[i].n_components > 0) &&
                            !s->slots[i].left_out && bcd_add_writer(d, s->slots[i].metadata, (uint32_t) s->slots[i].owner_uid) < 0)
                                return -ENOMEM;
                if (s->set_committed && d->n_shadows == 0) {
                        d->snapshot_set_id = s->set_id;
                        d->created_usec = s->created_usec;
                        for (size_t i = 0; i < s->n_volumes; i++) {
                                Volume *v = &s->volumes[i];
                                if (bcd_add_shadow(d, &v->shadow_id, v->path, strempty(v->shadow_path), v->provider->name) < 0)
                                        return -ENOMEM;
                        }
                }
        }
        if (bcd_format(d, &json) < 0)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", json);
}

/* DoSnapshotSet: PrepareForSnapshot → copy-ahead of held file-provider volumes (hold.c) → Freeze
 * (front-end, back-end, system) → provider commit → Thaw (reverse) → PostSnapshot. Any failure
 * from the copy-ahead to Thaw (or a provider failure, or the requester going away) turns to Abort
 * for every writer that got PrepareForSnapshot. */

static void request_abort(Session *s, int32_t hr, const char *why) {
        if (s->abort_hr == 0) {
                s->abort_hr = hr;
                snprintf(s->abort_msg, sizeof(s->abort_msg), "%s", why);
        }
        if (s->commit_pid > 0)
                (void) kill(s->commit_pid, SIGKILL);
        /* Writers waiting for the batch in flight to end get Abort now, not after it. */
        abort_due_writers(s);
}


/* Takes in what the commit child reported: where each shadow is, and why it failed. */
/* One report of the commit child: "INDEX\tLOCATION" for a shadow just made, recorded at once so
 * that vssd dying before the child ends cannot lose where it is, or "E\tMESSAGE" on failure. */
static void commit_line(Session *s, char *line) {
        char *tab = strchr(line, '\t');
        if (!tab)
                return;
        *tab = 0;
        if (streq(line, "E")) {
                snprintf(s->commit_msg, sizeof(s->commit_msg), "%s", tab + 1);
                return;
        }
        size_t i = strtoul(line, NULL, 10);
        if (i >= s->n_volumes || streq(tab + 1, s->volumes[i].shadow_path))
                return;
        char *loc = strdup(tab + 1);
        if (!loc)
                return;
        free(s->volumes[i].shadow_path);
        s->volumes[i].shadow_path = loc;
        (void) registry_set_shadow_path(s->manager->registry, &s->volumes[i].shadow_id, loc);
}

/* Handles every complete line the child has written so far (the pipe is non-blocking). */
static void commit_drain(Session *s) {
        while (s->commit_fd >= 0) {
                if (s->commit_len == sizeof(s->commit_buf) - 1)
                        s->commit_len = 0; /* longer than any line of ours: dropped */
                ssize_t n = read(s->commit_fd, s->commit_buf + s->commit_len, sizeof(s->commit_buf) - 1 - s->commit_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0) /* the child is done writing: nothing more will come */
                                s->commit_io = sd_event_source_disable_unref(s->commit_io);
                        return;
                }
                s->commit_len += (size_t) n;
                char *start = s->commit_buf, *end = s->commit_buf + s->commit_len, *nl;
                while ((nl = memchr(start, '\n', (size_t) (end - start)))) {
                        *nl = 0;
                        commit_line(s, start);
                        start = nl + 1;
                }
                s->commit_len = (size_t) (end - start);
                memmove(s->commit_buf, start, s->commit_len);
        }
}

static int on_commit_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        commit_drain(userdata);
        return 0;
}

static int on_commit_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Session *s = userdata;
        Manager *m = s->manager;
        const char *msg = s->commit_msg;
        s->commit_source = sd_event_source_disable_unref(s->commit_source);
        s->window_source = sd_event_source_disable_unref(s->window_source);
        s->commit_pid = -1;
        commit_drain(s); /* what it wrote last */
        s->commit_io = sd_event_source_disable_unref(s->commit_io);
        if (s->commit_fd >= 0)
                close(TAKE_FD(s->commit_fd));
        s->commit_len = 0;
        /* A child that exited by itself released its lease (or never got one: a filesystem frozen
         * by someone else stays theirs). One that was killed may have left the helper to thaw in
         * its own time: its lease file tells (see freeze.h). */
        frozen_journal_recover(m, &s->set_id);
        if (si->si_code != CLD_EXITED || si->si_status != COMMIT_OK) {
                int code = si->si_code == CLD_EXITED ? si->si_status : -1;
                int32_t hr = code == COMMIT_NOSPACE           ? VSS_E_INSUFFICIENT_STORAGE
                             : code == COMMIT_HOLD_TIMEOUT     ? VSS_E_HOLD_WRITES_TIMEOUT
                             : code == COMMIT_FROZEN_ELSEWHERE ? VSS_E_PROVIDER_VETO
                                                               : VSS_E_UNEXPECTED_PROVIDER_ERROR;
                request_abort(s, hr, msg[0] ? msg : "the provider failed to create a shadow copy");
        }
        dss_continue(s);
        session_unref(s);
        return 0;
}

static int on_window(sd_event_source *src, uint64_t usec, void *userdata) {
        Session *s = userdata;
        bool window = false;
        /* The provider took longer than a frozen writer's window: the copy cannot be consistent. */
        for (size_t i = 0; i < s->n_slots; i++) {
                Slot *slot = &s->slots[i];
                if (slot->status.state == VSS_WS_WAITING_FOR_THAW &&
                    now_monotonic_usec() - s->freeze_start_usec >=
                            (uint64_t) event_timeout_ms(&s->manager->config.timeouts, VSS_EVENT_FREEZE, slot->window_ms) * USEC_PER_MSEC) {
                        status_apply(&slot->status, VSS_EVENT_THAW, VSS_E_WRITERERROR_TIMEOUT, 0,
                                     "freeze window exceeded during provider commit");
                        note_status(s, slot);
                        window = true;
                }
        }
        if (window)
                request_abort(s, VSS_E_WRITERERROR_TIMEOUT, "a writer's freeze window was exceeded during the provider commit");
        else
                request_abort(s, VSS_E_HOLD_WRITES_TIMEOUT, "the provider outlasted the hold window");
        return 0;
}

static _Noreturn void commit_fail(int fd, int code, const char *fmt, const char *a, const char *b) {
        char msg[1024];
        snprintf(msg, sizeof(msg), fmt, a, b);
        dprintf(fd, "E\t%s\n", msg);
        _exit(code);
}

/* Flush-and-hold: exec providers that ask for it, and file-provider volumes hold.c chose. */
static bool volume_held(const Volume *v) {
        return v->provider->hold || (v->provider == &provider_file && v->held);
}

/* Runs in a child of vssd: flush-and-hold volumes first, under a freeze lease (the helper thaws
 * at the hold deadline or if we die), then the others. Each made shadow is reported to the
 * parent as "INDEX<TAB>LOCATION" so a failure can delete it; a failure as "E<TAB>MESSAGE". */
typedef struct Report {
        int fd;
        size_t index;
} Report;

static void report_location(const char *location, void *userdata) {
        const Report *rep = userdata;
        dprintf(rep->fd, "%zu\t%s\n", rep->index, location);
}

/* What the shadow's filesystem cannot keep of a copied-ahead tree goes to vssd's log. */
static void final_meta_lost(const char *path, const char *what, int error, void *userdata) {
        const Volume *v = userdata;
        char id[VSS_ID_STRING_MAX];
        log_warn("provider file: shadow %s: %s: %s not kept: %s", vss_id_to_string(&v->shadow_id, id), path, what,
                 strerror(error));
}

static _Noreturn void commit_child(Session *s, int fd, uint32_t hold_ms) {
        char err[1024], sid[VSS_ID_STRING_MAX], shid[VSS_ID_STRING_MAX];
        const char *held[VSS_MAX_VOLUMES];
        PrecopyFinal *finals[VSS_MAX_VOLUMES] = {};
        size_t n_held = 0;
        FreezeLease *lease = NULL;
        uint64_t deadline = 0;
        int r;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (file_budget_exceeded(s, false)) {
                snprintf(err, sizeof(err), "%" PRIu64, s->manager->config.file_budget_bytes);
                commit_fail(fd, COMMIT_NOSPACE, "the file provider's storage budget of %s bytes would be exceeded%s", err, "");
        }
        for (size_t i = 0; i < s->n_volumes; i++)
                if (volume_held(&s->volumes[i]))
                        held[n_held++] = s->volumes[i].path;
        uint64_t held_since = now_monotonic_usec(); /* the freezes' flushes count: writes wait for them */
        if (n_held > 0) {
                err[0] = 0;
                char lease_file[PATH_MAX];
                r = freeze_lease_file(s->manager, &s->set_id, lease_file, sizeof(lease_file));
                if (r >= 0)
                        r = freeze_lease_new_with_file(held, n_held, hold_ms, lease_file, &lease, err, sizeof(err));
                if (r < 0)
                        commit_fail(fd, r == -EBUSY ? COMMIT_FROZEN_ELSEWHERE : COMMIT_FAILED, "cannot freeze: %s%s",
                                    err[0] ? err : strerror(-r), "");
                deadline = now_monotonic_usec() + (uint64_t) hold_ms * USEC_PER_MSEC;
        }
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < s->n_volumes; i++) {
                        Volume *v = &s->volumes[i];
                        if (volume_held(v) != (pass == 0))
                                continue;
                        if (v->precopied) {
                                /* The last delta, while held: copied now, or captured in memory when
                                 * the storage is on a held filesystem and written after the release. */
                                err[0] = 0;
                                r = precopy_final_begin(v->path, v->shadow_path, v->index_fd, deadline,
                                                        v->storage_shared ? s->manager->config.file_hold_memory_bytes : 0,
                                                        &finals[i], err, sizeof(err));
                                if (r >= 0)
                                        continue;
                                int k = lease ? freeze_lease_release(lease) : 0;
                                if (r == -ETIME || k == -ETIME)
                                        commit_fail(fd, COMMIT_HOLD_TIMEOUT, "provider file on %s: %s", v->path,
                                                    err[0] ? err : "the hold window was exceeded");
                                commit_fail(fd, r == -ENOSPC || r == -EDQUOT ? COMMIT_NOSPACE : COMMIT_FAILED,
                                            "provider file on %s: %s", v->path, err[0] ? err : strerror(-r));
                        }
                        Report rep = { .fd = fd, .index = i };
                        ShadowRequest req = {
                                .report_location = report_location,
                                .userdata = &rep,
                                .source = v->path,
                                .set_id = vss_id_to_string(&s->set_id, sid),
                                .shadow_id = vss_id_to_string(&v->shadow_id, shid),
                                .shadow_path = v->shadow_path,
                                .deadline_usec = pass == 0 ? deadline : 0,
                        };
                        char *loc = NULL;
                        r = v->provider->create(v->provider, &req, &loc);
                        if (r >= 0)
                                dprintf(fd, "%zu\t%s\n", i, loc ? loc : v->shadow_path);
                        free(loc);
                        if (r < 0) {
                                int k = lease ? freeze_lease_release(lease) : 0;
                                if (r == -ETIME || k == -ETIME)
                                        commit_fail(fd, COMMIT_HOLD_TIMEOUT, "provider %s on %s: the hold window was exceeded",
                                                    v->provider->name, v->path);
                                const char *st = s->manager->state_dir;
                                size_t n = strlen(st);
                                if ((r == -ENOSPC || r == -EDQUOT) && strncmp(strempty(v->shadow_path), st, n) == 0 &&
                                    v->shadow_path[n] == '/')
                                        dprintf(fd, "E\tthe state directory %s is full: provider %s cannot keep the shadow "
                                                "copy of %s there (%s); free space there and try again\n", st,
                                                v->provider->name, v->path, strerror(-r));
                                else
                                        dprintf(fd, "E\tprovider %s failed on %s: %s\n", v->provider->name, v->path,
                                                strerror(-r));
                                _exit(r == -ENOSPC || r == -EDQUOT ? COMMIT_NOSPACE : COMMIT_FAILED);
                        }
                }
                if (pass == 0 && lease) {
                        r = freeze_lease_release(lease);
                        lease = NULL;
                        /* How long the writes were held, for people (and the benchmark). */
                        log_info("held the filesystems of %zu volumes for %" PRIu64 " us", n_held, now_monotonic_usec() - held_since);
                        if (r == -ETIME) {
                                snprintf(err, sizeof(err), "%u", hold_ms);
                                commit_fail(fd, COMMIT_HOLD_TIMEOUT, "the hold window of %s ms was exceeded%s", err, "");
                        }
                        if (r < 0)
                                commit_fail(fd, COMMIT_FAILED, "cannot thaw: %s%s", strerror(-r), "");
                }
                for (size_t i = 0; pass == 0 && i < s->n_volumes; i++) {
                        if (!finals[i])
                                continue;
                        MetaReport report = { .lost = final_meta_lost, .userdata = &s->volumes[i] };
                        err[0] = 0;
                        r = precopy_final_end(TAKE_PTR(finals[i]), &report, err, sizeof(err));
                        if (r >= 0 && report.n_lost > 0)
                                log_warn("provider file: shadow %s of %s: %" PRIu64 " item(s) of metadata not kept "
                                         "(see above)", vss_id_to_string(&s->volumes[i].shadow_id, shid),
                                         s->volumes[i].path, report.n_lost);
                        if (r < 0)
                                commit_fail(fd, r == -ENOSPC || r == -EDQUOT ? COMMIT_NOSPACE : COMMIT_FAILED,
                                            "provider file on %s: %s", s->volumes[i].path, err[0] ? err : strerror(-r));
                        dprintf(fd, "%zu\t%s\n", i, s->volumes[i].shadow_path);
                }
        }
        _exit(COMMIT_OK);
}

static void commit_run_child(Session *s, int fd, uint32_t hold_ms) {
        commit_child(s, fd, hold_ms);
}

/* What is left of the shortest Freeze→Thaw window among frozen writers, in ms: 0 when nobody is
 * frozen, at least 1 when someone is (so an expired window still counts). */
static uint32_t frozen_window_left_ms(Session *s) {
        uint64_t left = UINT64_MAX, elapsed = (now_monotonic_usec() - s->freeze_start_usec) / USEC_PER_MSEC;
        for (size_t i = 0; i < s->n_slots; i++)
                if (s->slots[i].status.state == VSS_WS_WAITING_FOR_THAW) {
                        uint64_t w = event_timeout_ms(&s->manager->config.timeouts, VSS_EVENT_FREEZE, s->slots[i].window_ms);
                        uint64_t l = elapsed < w ? w - elapsed : 1;
                        if (l < left)
                                left = l;
                }
        return left == UINT64_MAX ? 0 : (uint32_t) (left < 1 ? 1 : left);
}

/* A failure to write the state directory: a full one is the requester's to hear about as such,
 * not as a provider error. */
static void state_abort(Session *s, int r, const char *what) {
        if (r == -ENOSPC || r == -EDQUOT) {
                char msg[1024];
                snprintf(msg, sizeof(msg), "the state directory %s is full: %s; free space there and try again",
                         s->manager->state_dir, what);
                request_abort(s, VSS_E_INSUFFICIENT_STORAGE, msg);
        } else
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, what);
}

/* The set is journalled as 'creating' before anything is made (the copy-ahead included): a crash
 * leaves a record for the restarted vssd to clean up. 0, or <0 with the abort requested. */
static int set_register(Session *s) {
        Manager *m = s->manager;
        char dir[PATH_MAX], id[VSS_ID_STRING_MAX];
        uint64_t now = now_realtime_usec();
        uint32_t attrs = s->context;
        if (s->set_registered)
                return 0;
        /* Honest properties: a set of several volumes is atomic only if one provider cuts them all
         * at one instant. */
        for (size_t i = 1; i < s->n_volumes; i++)
                if (s->volumes[i].provider != s->volumes[0].provider || !s->volumes[0].provider->atomic)
                        attrs |= OPENVSS_ATTR_NOT_ATOMIC;
        int r;

        /* The set is journalled as 'creating' before anything is made: a crash leaves a record
         * for the restarted vssd to clean up. */
        r = registry_add_set(m->registry, &s->set_id, s->context, now);
        s->set_registered = r >= 0;
        for (size_t i = 0; r >= 0 && i < s->n_volumes; i++) {
                ShadowRecord rec = {
                        .shadow_id = s->volumes[i].shadow_id,
                        .set_id = s->set_id,
                        .original_path = s->volumes[i].path,
                        .shadow_path = s->volumes[i].shadow_path,
                        .provider = (char *) s->volumes[i].provider->name,
                        .created_usec = now,
                        /* Not held: the copy is not one instant; said once per shadow, never silently. */
                        .attributes = attrs | (s->volumes[i].provider == &provider_file && !s->volumes[i].held
                                                       ? OPENVSS_ATTR_NOT_POINT_IN_TIME
                                                       : 0),
                };
                r = registry_add_shadow(m->registry, &rec);
        }
        snprintf(dir, sizeof(dir), "%s/%s", m->shadow_dir, vss_id_to_string(&s->set_id, id));
        if (r >= 0 && mkdir(dir, 0700) < 0 && errno != EEXIST)
                r = -errno;
        if (r < 0) {
                state_abort(s, r, "cannot record the snapshot set");
                return r;
        }
        if (m->config.file_storage_dir) {
                snprintf(dir, sizeof(dir), "%s/%s", m->config.file_storage_dir, id);
                (void) mkdir(m->config.file_storage_dir, 0700);
                if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                        r = -errno;
                        snprintf(dir, sizeof(dir), "cannot make the set's directory in file_storage_dir %s: %s",
                                 m->config.file_storage_dir, strerror(-r));
                        request_abort(s, r == -ENOSPC || r == -EDQUOT ? VSS_E_INSUFFICIENT_STORAGE : VSS_E_UNEXPECTED_PROVIDER_ERROR,
                                      dir);
                        return r;
                }
        }
        return 0;
}

/* Forks a child of vssd whose exit continues the sequence (on_commit_exit); it reports as the
 * commit child does. 1 when it runs, 0 when it failed to start (the abort is requested). */
static int child_start(Session *s, void (*run)(Session *s, int fd, uint32_t hold_ms)) {
        Manager *m = s->manager;
        int r, fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0) {
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, "cannot start the provider");
                return 0;
        }
        /* Room for every report, so the child never blocks on a parent that waits for its exit. */
        (void) fcntl(fds[1], F_SETPIPE_SZ, 1024 * 1024);
        pid_t pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, "cannot start the provider");
                return 0;
        }
        if (pid == 0) {
                close(fds[0]);
                run(s, fds[1], m->config.hold_window_ms);
                _exit(COMMIT_FAILED);
        }
        close(fds[1]);
        s->commit_fd = fds[0];
        s->commit_pid = pid;
        s->commit_msg[0] = 0;
        (void) fcntl(s->commit_fd, F_SETFL, O_NONBLOCK);
        /* Reports are read as they come: a failed watch only delays them to the child's exit. */
        (void) sd_event_add_io(m->event, &s->commit_io, s->commit_fd, EPOLLIN, on_commit_io, s);
        r = sd_event_add_child(m->event, &s->commit_source, pid, WEXITED, on_commit_exit, s);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                s->commit_pid = -1;
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, "cannot watch the provider");
                return 0;
        }
        session_ref(s);
        return 1;
}

static void precopy_run_child(Session *s, int fd, uint32_t hold_ms) {
        hold_precopy_child(s, fd);
}

/* Copy-ahead, after PrepareForSnapshot and before Freeze: the held file-provider volumes are copied
 * while nothing is frozen, so only their last delta is copied while they are held. 1 when the
 * child runs, 0 when there is nothing to copy ahead or it failed to start. */
static int precopy_start(Session *s) {
        if (!hold_wants_precopy(s) || set_register(s) < 0)
                return 0;
        for (size_t i = 0; i < s->n_volumes; i++) {
                Volume *v = &s->volumes[i];
                if (v->provider != &provider_file || !v->held)
                        continue;
                struct stat st;
                if (stat(v->path, &st) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                /* The index of the last pass, for the commit child (which inherits it): in memory,
                 * since the state directory may be on a filesystem about to be held. */
                if (v->index_fd < 0)
                        v->index_fd = memfd_create("vssd-precopy-index", MFD_CLOEXEC);
                if (v->index_fd < 0) {
                        request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, "cannot make the copy-ahead index");
                        return 0;
                }
                v->precopied = true;
        }
        return child_start(s, precopy_run_child);
}

/* Returns 1 when the commit runs (its exit continues the sequence), 0 when it failed to start. */
static int commit_start(Session *s) {
        Manager *m = s->manager;
        int r;

        if (set_register(s) < 0)
                return 0;

        /* Filesystems about to be held frozen are journalled first: if vssd and the lease helper
         * both die, the next start thaws them. */
        char mounts[VSS_MAX_VOLUMES][PATH_MAX];
        const char *mp[VSS_MAX_VOLUMES];
        size_t n_mounts = 0;
        for (size_t i = 0; i < s->n_volumes; i++)
                if (volume_held(&s->volumes[i]) &&
                    mount_of(s->volumes[i].path, NULL, mounts[n_mounts], PATH_MAX, NULL, 0) >= 0) {
                        mp[n_mounts] = mounts[n_mounts];
                        n_mounts++;
                }
        if (n_mounts > 0 && (r = registry_journal_frozen(m->registry, &s->set_id, mp, n_mounts)) < 0) {
                state_abort(s, r, "cannot journal the filesystems to freeze");
                return 0;
        }

        if (!child_start(s, commit_run_child))
                return 0;

        /* The shortest window among frozen writers bounds the commit; with flush-and-hold, so does
         * the hold window (plus a margin for the lease helper to act first). */
        uint32_t left = frozen_window_left_ms(s);
        bool file_volumes = false; /* they copy unheld volumes and write captured deltas after the release */
        for (size_t i = 0; i < s->n_volumes; i++)
                file_volumes = file_volumes || s->volumes[i].provider == &provider_file;
        if (n_mounts > 0 && !file_volumes && (left == 0 || left > m->config.hold_window_ms + 2000))
                left = m->config.hold_window_ms + 2000;
        if (left > 0)
                (void) sd_event_add_time_relative(m->event, &s->window_source, CLOCK_MONOTONIC,
                                                  (uint64_t) left * USEC_PER_MSEC, 1000, on_window, s);
        return 1;
}

static void dss_end(Session *s) {
        s->stage = STAGE_NONE;
        if (s->dead)
                session_shutdown(s);
}

/* Once what the set made is deleted: the call returns its failure. */
static void dss_aborted(Session *s) {
        s->phase = PHASE_ABORTED;
        log_warn("snapshot set aborted: %s", s->abort_msg);
        op_reply(s, s->abort_hr, s->abort_msg);
        dss_end(s);
}

static void dss_finish(Session *s) {
        Manager *m = s->manager;
        creating_done(s);
        if (!s->abort_hr) {
                int r = registry_commit_set(m->registry, &s->set_id);
                if (r >= 0) {
                        s->set_committed = true;
                        s->created_usec = now_realtime_usec();
                        s->phase = PHASE_SNAPSHOT_DONE;
                        log_info("snapshot set committed with %zu shadow copies", s->n_volumes);
                        op_reply(s, 0, NULL);
                        dss_end(s);
                        return;
                }
                if (r == -ENOSPC) {
                        s->abort_hr = VSS_E_INSUFFICIENT_STORAGE;
                        snprintf(s->abort_msg, sizeof(s->abort_msg), "the state directory %s is full: cannot record "
                                 "the snapshot set; free space there and try again", m->state_dir);
                } else {
                        s->abort_hr = VSS_E_UNEXPECTED;
                        snprintf(s->abort_msg, sizeof(s->abort_msg), "cannot record the snapshot set");
                }
        }
        set_delete(s, dss_aborted);
}

static void dss_continue(Session *s) {
        for (;;) {
                /* Past the commit's start, every failure turns into Abort; PostSnapshot never aborts. */
                if (s->abort_hr && s->stage >= STAGE_PRECOPY && s->stage <= STAGE_THAW) {
                        s->stage = STAGE_ABORT;
                        s->level = _VSS_APP_LEVEL_MAX - 1;
                }
                switch (s->stage) {
                case STAGE_PREPARE_SNAPSHOT:
                        s->stage = STAGE_PRECOPY;
                        s->level = 0;
                        send_batch(s, VSS_EVENT_PREPARE_SNAPSHOT, want_active, 0, dss_continue);
                        return;
                case STAGE_PRECOPY:
                        /* Its failure (or the requester's abort) reaches Abort at STAGE_FREEZE. */
                        s->stage = STAGE_FREEZE;
                        if (!s->abort_hr && precopy_start(s) > 0)
                                return;
                        continue;
                case STAGE_FREEZE:
                        if (s->level == 0)
                                s->freeze_start_usec = now_monotonic_usec();
                        if (s->level >= _VSS_APP_LEVEL_MAX) {
                                s->stage = STAGE_COMMIT;
                                continue;
                        }
                        s->freeze_cap_ms = frozen_window_left_ms(s);
                        send_batch(s, VSS_EVENT_FREEZE, want_freeze, s->level++, dss_continue);
                        return;
                case STAGE_COMMIT:
                        s->stage = STAGE_THAW;
                        s->level = _VSS_APP_LEVEL_MAX - 1;
                        if (commit_start(s) > 0)
                                return;
                        continue;
                case STAGE_THAW:
                        if (s->level < 0) {
                                s->stage = STAGE_POST_SNAPSHOT;
                                continue;
                        }
                        send_batch(s, VSS_EVENT_THAW, want_thaw, s->level--, dss_continue);
                        return;
                case STAGE_POST_SNAPSHOT:
                        s->stage = STAGE_FINISH;
                        send_batch(s, VSS_EVENT_POST_SNAPSHOT, want_post_snapshot, 0, dss_continue);
                        return;
                case STAGE_ABORT:
                        if (s->level < 0) {
                                s->stage = STAGE_FINISH;
                                continue;
                        }
                        send_batch(s, VSS_EVENT_ABORT, want_abort, s->level--, dss_continue);
                        return;
                case STAGE_FINISH:
                default:
                        dss_finish(s);
                        return;
                }
        }
}

/* Leaves out the writers that have nothing in the set (writer_takes_part): they stay Stable with
 * the note "not involved" and get no event of it, so their failures cannot fail it. */
static void choose_participants(Session *s) {
        const char *paths[VSS_MAX_VOLUMES];
        for (size_t i = 0; i < s->n_volumes; i++)
                paths[i] = s->volumes[i].path;
        for (size_t i = 0; i < s->n_slots; i++) {
                Slot *slot = &s->slots[i];
                WriterFacts f = {
                        .component_mode = s->component_mode,
                        .selected = slot->selected,
                        /* vssd's own user counts as root: a vssd run unprivileged (benchmarks)
                         * trusts its own user's writers as root's are trusted. */
                        .root = slot->uid == 0 || slot->uid == geteuid(),
                        .metadata = slot->metadata,
                };
                /* Component mode keeps its selection rules; selected is false for the others. */
                slot->left_out = slot->selected && !writer_takes_part(&f, paths, s->n_volumes);
                if (slot->left_out) {
                        /* Nothing of it is backed up: the document has no records of it either. */
                        bcd_remove_instance(s->doc, &slot->class_id, &slot->instance_id);
                        log_info("writer '%s' (uid %u) is not involved in the snapshot set", slot->name,
                                 (unsigned) slot->uid);
                        note_status(s, slot);
                }
        }
}

int method_do_snapshot_set(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_DO_SNAPSHOT_SET);
        choose_participants(s);
        op_begin(s, msg, CALL_DO_SNAPSHOT_SET);
        s->abort_hr = 0;
        s->abort_msg[0] = 0;
        s->stage = STAGE_PREPARE_SNAPSHOT;
        dss_continue(s);
        return 1;
}

static bool want_abort_backup(const Session *s, const Slot *slot, int level) {
        return abort_backup_wants(slot->got_prepare_backup, slot->got_post_snapshot, slot->got_abort);
}

static void abort_backup_done(Session *s);

static void abort_backup_send(Session *s) {
        creating_done(s);
        send_batch(s, VSS_EVENT_ABORT, want_abort_backup, 0, abort_backup_done);
}

static void abort_backup_done(Session *s) {
        s->phase = seq_next(s->phase, CALL_ABORT_BACKUP);
        log_info("backup aborted by the requester");
        op_reply(s, 0, NULL);
        if (s->dead)
                session_shutdown(s);
}

/* The set is dropped (in the background), then Abort to the writers; the operation (AbortBackup,
 * or the PrepareForBackup it waited for) is already begun or answered. */
static void abort_backup_start(Session *s) {
        s->busy = true;
        s->op = CALL_ABORT_BACKUP;
        set_delete(s, abort_backup_send);
}

static void abort_session_done(Session *s) {
        op_reply(s, 0, NULL);
        if (s->dead)
                session_shutdown(s);
}

int method_abort_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_ABORT_BACKUP);
        switch (abort_backup_action(s->phase, s->busy, s->op)) {
        case ABORT_SET_IN_FLIGHT:
                /* The snapshot set in creation aborts at once; its own call returns E_ABORT. */
                request_abort(s, VSS_E_ABORT, "the requester aborted the backup");
                break;
        case ABORT_AFTER_OP:
                s->abort_after_op = true;
                break;
        case ABORT_SESSION:
                /* Answered once the set is deleted. */
                op_begin(s, msg, CALL_ABORT_BACKUP);
                creating_done(s);
                s->phase = seq_next(s->phase, CALL_ABORT_BACKUP);
                set_delete(s, abort_session_done);
                return 1;
        case ABORT_WRITERS:
                /* Every writer that took part handles Abort (and is Stable again, "aborted"); the
                 * call returns once they all answered. */
                op_begin(s, msg, CALL_ABORT_BACKUP);
                abort_backup_start(s);
                return 1;
        case ABORT_IGNORE:
                break;
        }
        return sd_bus_reply_method_return(msg, NULL);
}

int method_cancel(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Connection *c = userdata;
        const char *id;
        if (!c->may_request)
                return reply_error(error, VSS_E_ACCESSDENIED, "uid %u may not use sessions", (unsigned) c->cred.uid);
        if (sd_bus_message_read(msg, "s", &id) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "missing session id");
        Session *s = session_lookup(c, id, error);
        if (!s)
                return -EINVAL;
        if (s->busy && s->op == CALL_DO_SNAPSHOT_SET)
                request_abort(s, VSS_E_ABORT, "the requester cancelled the snapshot set");
        return sd_bus_reply_method_return(msg, NULL);
}

/* Status. */

static void gather_free(StatusGather *g) {
        g->session->gathering = false;
        sd_bus_message_unref(g->request);
        free(g->direct_entries);
        session_unref(g->session);
        free(g);
}

static void gather_reply(StatusGather *g) {
        Session *s = g->session;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX], note[128], ts[32];
        int r = sd_bus_message_new_method_return(g->request, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssuiiss)");
        for (size_t i = 0; r >= 0 && i < (g->direct ? g->n : s->n_slots); i++) {
                if (g->direct) {
                        if (!g->direct_entries[i].answered)
                                continue;
                        r = sd_bus_message_append(reply, "(sssuiiss)", g->direct_entries[i].name,
                                                  vss_id_to_string(&g->direct_entries[i].class_id, a),
                                                  vss_id_to_string(&g->direct_entries[i].instance_id, b),
                                                  (uint32_t) VSS_WS_STABLE, 0, 0, "", "");
                        continue;
                }
                const Slot *slot = &s->slots[i];
                note[0] = 0;
                if (slot->inflight)
                        snprintf(note, sizeof(note), "in progress: %s since %s", vss_event_name(slot->inflight_event),
                                 format_timestamp(slot->inflight_since, ts));
                else
                        snprintf(note, sizeof(note), "%s", slot_note(slot));
                r = sd_bus_message_append(reply, "(sssuiiss)", slot->name, vss_id_to_string(&slot->class_id, a),
                                          vss_id_to_string(&slot->instance_id, b), (uint32_t) slot->status.state,
                                          slot->status.failure, slot->status.application_code,
                                          slot->status.application_message, note);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                r = sd_bus_send(NULL, reply, NULL);
        if (r < 0)
                (void) sd_bus_reply_method_errnof(g->request, -r, "cannot send status: %m");
        /* The gather after backup-complete or post-restore closes the slots. */
        if (!s->busy && (s->phase == PHASE_COMPLETED || s->phase == PHASE_RESTORED))
                s->status_closed = true;
        gather_free(g);
}

int method_gather_writer_status(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_GATHER_WRITER_STATUS);
        if (s->busy && s->op == CALL_GATHER_WRITER_METADATA)
                return reply_error(error, VSS_E_BAD_STATE, "GatherWriterStatus: metadata is still being gathered");
        if (s->gathering)
                return reply_error(error, VSS_E_BAD_STATE, "GatherWriterStatus: a status gather is already in flight");
        StatusGather *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        s->gathering = true;
        g->session = session_ref(s);
        g->request = sd_bus_message_ref(msg);
        g->pending = 1;
        /* No metadata (a restore): the writers subscribed now that answer. */
        g->direct = s->n_slots == 0 && s->phase == PHASE_RESTORE_INIT;
        if (g->direct) {
                Manager *m = s->manager;
                g->direct_entries = calloc(m->n_writers ? m->n_writers : 1, sizeof(*g->direct_entries));
                if (!g->direct_entries) {
                        gather_free(g);
                        return -ENOMEM;
                }
                LIST_FOREACH(writers, w, m->writers) {
                        size_t i = g->n++;
                        memcpy(g->direct_entries[i].name, w->name, sizeof(w->name));
                        g->direct_entries[i].class_id = w->class_id;
                        g->direct_entries[i].instance_id = w->instance_id;
                }
                /* Pings go through temporary slots of the session; they carry no status. */
                Slot *tmp = calloc(g->n ? g->n : 1, sizeof(Slot));
                if (!tmp) {
                        gather_free(g);
                        return -ENOMEM;
                }
                size_t i = 0;
                LIST_FOREACH(writers, w, m->writers) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *ping = NULL;
                        sd_bus_slot *bslot = NULL;
                        Call *call = calloc(1, sizeof(*call));
                        if (!call)
                                break;
                        *call = (Call) { .session = session_ref(s), .idx = i++, .gather = g };
                        int r = sd_bus_message_new_method_call(w->connection->bus, &ping, NULL, VSS_WRITER_PATH,
                                                               VSS_WRITER_INTERFACE, "Ping");
                        if (r >= 0)
                                r = sd_bus_call_async(w->connection->bus, &bslot, ping, on_reply, call,
                                                      (uint64_t) m->config.timeouts.status_ms * USEC_PER_MSEC);
                        if (r < 0) {
                                call_destroy(call);
                                continue;
                        }
                        sd_bus_slot_set_destroy_callback(bslot, call_destroy);
                        sd_bus_slot_set_floating(bslot, 1);
                        sd_bus_slot_unref(bslot); /* the bus holds it now */
                        g->pending++;
                }
                free(tmp);
        } else {
                for (size_t i = 0; i < s->n_slots; i++) {
                        Slot *slot = &s->slots[i];
                        /* A writer busy with an event is reported as it is; others must answer. */
                        if (slot->inflight || state_is_failed(slot->status.state))
                                continue;
                        if (call_slot(s, i, VSS_EVENT_IDENTIFY, g) > 0)
                                g->pending++;
                }
        }
        if (--g->pending == 0)
                gather_reply(g);
        return 1;
}

/* Ending a session. */

static void session_final(Session *s) {
        sd_bus_message *req = TAKE_PTR(s->release_request);
        if (req) {
                (void) sd_bus_reply_method_return(req, NULL);
                sd_bus_message_unref(req);
        }
        LIST_REMOVE(sessions, s->manager->sessions, s);
        session_unref(s);
}

static void session_shutdown_writers(Session *s) {
        if (s->n_slots > 0 && !s->restore)
                send_batch(s, VSS_EVENT_BACKUP_SHUTDOWN, want_shutdown, 0, session_final);
        else
                session_final(s);
}

static void session_shutdown(Session *s) {
        if (s->shut_down)
                return;
        s->shut_down = true;
        creating_done(s);
        /* Auto-release shadows end with their session; persistent ones stay. */
        if ((s->set_committed && !(s->context & VSS_VOLSNAP_ATTR_NO_AUTO_RELEASE)) || (s->set_registered && !s->set_committed))
                set_delete(s, session_shutdown_writers);
        else
                session_shutdown_writers(s);
}

void session_abandon(Session *s) {
        /* vssd is stopping: buses are gone, so nothing more can be sent or answered. What the
         * set made is left to the journal: the next start removes it. */
        if (s->commit_pid > 0) {
                (void) kill(s->commit_pid, SIGKILL);
                (void) waitpid(s->commit_pid, NULL, 0);
                s->commit_pid = -1;
                /* Nothing may stay frozen after vssd stops, whoever kills what next. */
                frozen_journal_recover(s->manager, &s->set_id);
        }
        if (s->commit_source) {
                s->commit_source = sd_event_source_disable_unref(s->commit_source);
                session_unref(s); /* the reference the commit held */
        }
        s->window_source = sd_event_source_disable_unref(s->window_source);
        creating_done(s);
        LIST_REMOVE(sessions, s->manager->sessions, s);
        session_unref(s);
}

void session_release(Session *s, sd_bus_message *request) {
        if (s->dead)
                return;
        s->dead = true;
        if (request)
                s->release_request = sd_bus_message_ref(request);
        if (s->connection) {
                s->connection->n_sessions--;
                s->connection = NULL;
        }
        if (s->busy) {
                /* The operation's end shuts the session down; a snapshot set in creation aborts. */
                if (s->op == CALL_DO_SNAPSHOT_SET)
                        request_abort(s, VSS_E_ABORT, "the requester went away");
                return;
        }
        session_shutdown(s);
}
