/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Event dispatch: events to writers of one application level go out in parallel, each an
 * asynchronous D-Bus call whose timeout is the event's deadline. Each answer is recorded in the
 * writer's slot; the last answer of a batch runs the session's continuation (s->next). Who gets
 * which event is sequence.c's rule (writer_gets_event, abort_due).
 */

#include <json-c/json.h>

#include "daemon/session-internal.h"
#include "lib/basic/time-util.h"
#include "lib/metadata.h"

/* One asynchronous call to a writer; owned by its sd-bus slot (freed by the destroy callback). */
typedef struct Call {
        Session *session;
        size_t idx;
        vss_event event;
        StatusGather *gather; /* a status query (Ping) rather than an event */
        bool direct;          /* the gather pings a subscribed writer, not a slot of the session */
        bool capped;          /* a Freeze cut short to the windows of writers already frozen */
        bool answered;
} Call;

#define IDENTIFY_MISSED_MS 1000

SlotFacts slot_facts(const Slot *slot) {
        return (SlotFacts) {
                .identified = slot->identified,
                .selected = slot->selected,
                .left_out = slot->left_out,
                .unheard = slot->unheard,
                .got_prepare_backup = slot->got_prepare_backup,
                .got_prepare_snapshot = slot->got_prepare_snapshot,
                .got_freeze = slot->got_freeze,
                .got_post_snapshot = slot->got_post_snapshot,
                .got_abort = slot->got_abort,
                .inflight = slot->inflight,
                .not_responding = slot->status.failure == VSS_E_WRITER_NOT_RESPONDING,
                .state = slot->status.state,
                .level = (int) slot->level,
        };
}

void note_status(Session *s, Slot *slot) {
        writer_note_status(slot->writer, &s->id, &slot->status, slot_note(slot));
}

void slot_answer(Session *s, Slot *slot, vss_event e, int32_t failure, int32_t code, const char *msg) {
        if (failure != 0)
                log_warn("writer '%s' failed %s: 0x%08x %s", slot->name, vss_event_name(e), (uint32_t) failure, msg);
        /* Sent Freeze and not answering the Abort after it (a Freeze cut short at an earlier
         * writer's window, then Abort unanswered): failed at Freeze, where it was. */
        if (e == VSS_EVENT_ABORT && failure == VSS_E_WRITER_NOT_RESPONDING && slot->got_freeze &&
            slot->status.state == VSS_WS_WAITING_FOR_FREEZE)
                slot->status.state = VSS_WS_WAITING_FOR_THAW;
        /* A writer that thawed itself at the end of its window answers Thaw so: VSS counts the
         * window run out at Freeze (KB 915331: FAILED_AT_FREEZE, VSS_E_WRITERERROR_TIMEOUT). */
        if (e == VSS_EVENT_THAW && failure == VSS_E_WRITERERROR_TIMEOUT && slot_window_run_out(s, slot))
                e = VSS_EVENT_FREEZE;
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

static void batch_done_one(Session *s) {
        if (--s->pending == 0 && s->next) {
                void (*next)(Session *) = s->next;
                s->next = NULL;
                next(s);
        }
}

/* A snapshot set being aborted, while its writers may still be busy with another step. */
static bool set_aborting(const Session *s) {
        return s->busy && s->op == CALL_DO_SNAPSHOT_SET && s->abort_hr != 0 &&
               ((s->stage >= STAGE_PRECOPY && s->stage <= STAGE_THAW) || s->stage == STAGE_ABORT);
}

void abort_due_writers(Session *s) {
        if (pause_abort_check(s))
                return; /* a paused set: nothing in flight, its stages send Abort */
        bool aborting = set_aborting(s);
        if (!aborting || s->pending == 0)
                return;
        for (size_t i = 0; i < s->n_slots; i++) {
                SlotFacts f = slot_facts(&s->slots[i]);
                if (abort_due(&f, aborting) && call_slot(s, i, VSS_EVENT_ABORT, NULL) > 0)
                        s->pending++;
        }
}

static void call_destroy(void *userdata) {
        Call *call = userdata;
        /* The bus went away without an answer (vssd is stopping): a status gather still ends. */
        if (!call->answered && call->gather)
                gather_lost(call->gather);
        session_unref(call->session);
        free(call);
}

/* Whether a call ended because the writer's connection went (sd-bus ends its pending calls with
 * NoReply, "Connection terminated"), not because the writer did not answer in time. */
static bool reply_disconnected(const sd_bus_error *e) {
        return e && e->message && strstr(e->message, "terminated");
}

/* A writer's answer: its failure, application code and message, and its document (metadata for
 * Identify, annotations otherwise). Returns the bus error when there was no proper answer. */
static const sd_bus_error *reply_read(const Call *call, sd_bus_message *reply, int32_t *failure, int32_t *code,
                                      const char **msg, const char **doc) {
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                *failure = VSS_E_WRITER_NOT_RESPONDING;
                if (reply_disconnected(e))
                        *msg = "writer disconnected";
                else if (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_REPLY))
                        *msg = "no answer within the deadline";
                else
                        *msg = e->message ? e->message : "no answer";
        } else if (sd_bus_message_read(reply, "iiss", failure, code, msg, doc) < 0) {
                *failure = VSS_E_WRITER_NOT_RESPONDING;
                *msg = "malformed answer from writer";
        } else if (call->event != VSS_EVENT_IDENTIFY && *failure != 0 && !writer_failure_valid(*failure))
                *failure = VSS_E_WRITERERROR_NONRETRYABLE; /* a writer reports writer errors, nothing else */
        return e;
}

static bool files_printable(const vss_file_desc *f, size_t n) {
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++)
                ok = name_printable(f[i].path) && name_printable(f[i].filespec);
        return ok;
}

/* Whether the names a requester shows (the instance's, the components' and their logical paths and
 * captions) and the paths it takes hold no control character: they reach logs and root's
 * terminal, and requesters pass paths on in lines (vssbackup exec's VSS_SHADOW_PATHS: a user's
 * path "/home/u\n/etc" would add /etc to root's list). */
static bool metadata_printable(const vss_writer_metadata *m, char *why, size_t size) {
        bool ok = name_printable(m->instance_name) && files_printable(m->excludes, m->n_excludes);
        for (size_t i = 0; ok && i < m->n_components; i++)
                ok = name_printable(m->components[i].name) && name_printable(m->components[i].logical_path) &&
                     name_printable(m->components[i].caption) &&
                     files_printable(m->components[i].files, m->components[i].n_files);
        for (size_t i = 0; ok && i < m->n_alternate_mappings; i++)
                ok = name_printable(m->alternate_mappings[i].path) && name_printable(m->alternate_mappings[i].filespec) &&
                     name_printable(m->alternate_mappings[i].destination);
        if (!ok)
                snprintf(why, size, "control characters in a name, logical path, caption or path");
        return ok;
}

/* Identify's answer: the writer's metadata, which must describe the writer that subscribed. */
/* What uid's writers sent in this session so far (identified or not: parsing costs either way). */
static size_t uid_metadata_bytes(const Session *s, uid_t uid) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_slots; i++)
                if (s->slots[i].uid == uid)
                        n += s->slots[i].metadata_bytes;
        return n;
}

static void identify_answered(Session *s, Slot *slot, int32_t failure, int32_t code, const char *msg, const char *doc) {
        char why[512] = "";
        size_t len = strlen(strempty(doc));
        /* A user's writers' metadata adds up to at most VSS_MAX_METADATA_PER_UID, counted as the
         * answers come: past it an answer is not even parsed, so many writers of one user cannot
         * make vssd hold (or spend its loop parsing) more than that. */
        bool over = failure == 0 && !slot_trusted(slot) &&
                    uid_metadata_bytes(s, slot->uid) + len > VSS_MAX_METADATA_PER_UID;
        if (failure == 0 && !over)
                slot->metadata_bytes = len; /* parsed: counted, taken or not */
        if (over) {
                snprintf(why, sizeof(why), "left out of the session: the metadata of uid %u's writers would exceed %u MiB",
                         (unsigned) slot->uid, VSS_MAX_METADATA_PER_UID >> 20);
                log_warn("writer '%s' (uid %u) is %s", slot->name, (unsigned) slot->uid, why);
        } else if (failure == 0 && metadata_parse(doc, &slot->metadata, why, sizeof(why)) >= 0 &&
                   metadata_printable(slot->metadata, why, sizeof(why))) {
                /* A writer describes itself only: the document must match its subscription. */
                if (vss_id_equal(&slot->metadata->writer_id, &slot->class_id) &&
                    vss_id_equal(&slot->metadata->instance_id, &slot->instance_id) &&
                    streq(slot->metadata->name, slot->name)) {
                        slot->identified = true;
                } else {
                        log_warn("writer '%s' sent metadata for another writer", slot->name);
                        slot->metadata = (metadata_free(slot->metadata), NULL);
                }
        } else if (failure == 0) {
                log_warn("writer '%s' sent bad metadata: %s", slot->name, why);
                slot->metadata = (metadata_free(slot->metadata), NULL);
        }
        else
                log_warn("writer '%s' failed identify: 0x%08x %s", slot->name, (uint32_t) failure, msg);
        if (!slot->identified) {
                /* No status in this session (the slot goes), but the admin view shows why. */
                int32_t f = failure == 0 || !writer_failure_valid(failure) ? VSS_E_WRITERERROR_NONRETRYABLE : failure;
                status_apply(&slot->status, VSS_EVENT_IDENTIFY, f, code,
                             failure == 0 ? (why[0] ? why : "metadata for another writer") : msg);
                note_status(s, slot);
        }
}

static bool slow_identify_is(const Manager *m, uid_t uid) {
        for (size_t i = 0; i < m->n_slow_identify; i++)
                if (m->slow_identify[i] == uid)
                        return true;
        return false;
}

/* A user's writer answered Identify: slow when it let it run out or answered it after
 * IDENTIFY_MISSED_MS, with metadata or without (a late answer delays a gather as much as none, and
 * a new connection would not forget it, so it is the user's); not any more once one identifies
 * within IDENTIFY_MISSED_MS. */
static void slow_identify_note(Manager *m, uid_t uid, bool slow) {
        for (size_t i = 0; i < m->n_slow_identify; i++)
                if (m->slow_identify[i] == uid) {
                        if (!slow)
                                m->slow_identify[i] = m->slow_identify[--m->n_slow_identify];
                        return;
                }
        if (!slow || m->n_slow_identify >= VSS_MAX_WRITERS)
                return;
        uid_t *a = realloc(m->slow_identify, (m->n_slow_identify + 1) * sizeof(*a));
        if (!a)
                return;
        m->slow_identify = a;
        a[m->n_slow_identify++] = uid;
}

/* A later level's Freeze ran to the end of an earlier writer's window, not of its own: the writer
 * whose window ran out failed (VSS: FailedAtFreeze, VSS_E_WRITERERROR_TIMEOUT, which a requester
 * retries); this one, still within its own, is aborted with the set. */
static void freeze_cap_ran_out(Session *s, Slot *slot) {
        char why[VSS_MAX_STRING];
        snprintf(why, sizeof(why), "the Freeze→Thaw window ran out while writer '%s' (a later level) was still "
                 "freezing", slot->name);
        (void) frozen_windows_run_out(s, why);
        request_abort(s, VSS_E_WRITERERROR_TIMEOUT, why);
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *call = userdata;
        Session *s = call->session;
        int32_t failure = 0, code = 0;
        const char *msg = "", *doc = "";

        call->answered = true;
        const sd_bus_error *e = reply_read(call, reply, &failure, &code, &msg, &doc);
        if (call->gather) {
                if (!call->direct && e) {
                        slot_answer(s, &s->slots[call->idx], s->slots[call->idx].last_event,
                                    VSS_E_WRITER_NOT_RESPONDING, 0, "not responding to a status query");
                        abort_due_writers(s); /* a frozen writer lost aborts the set: Abort now */
                }
                gather_answered(call->gather, call->idx, !e);
                return 0;
        }

        Slot *slot = &s->slots[call->idx];
        slot->inflight = false;
        if (call->event == VSS_EVENT_IDENTIFY) {
                identify_answered(s, slot, failure, code, msg, doc);
                /* Metadata within the brief wait clears it; any answer after it (metadata, none, a
                 * failure, an error of any name) sets it; no metadata sooner changes nothing. */
                bool late = now_realtime_usec() - slot->inflight_since > IDENTIFY_MISSED_MS * USEC_PER_MSEC;
                if (!slot_trusted(slot) && (slot->identified || late))
                        slow_identify_note(s->manager, slot->uid, late || !slot->identified);
        }
        else if (call->capped && e && !reply_disconnected(e) && frozen_window_end_usec(s) <= now_monotonic_usec())
                freeze_cap_ran_out(s, slot); /* no answer by the cap, not a writer gone */
        else {
                if (!e)
                        slot_annotate(s, slot, call->event, doc);
                slot_answer(s, slot, call->event, failure, code, msg);
                /* An answer (or a failure) for a set being aborted: Abort follows at once. */
                abort_due_writers(s);
        }
        batch_done_one(s);
        return 0;
}

/* Sends msg to the writer's bus with a deadline of ms; on_reply gets the answer. */
static int call_async(Session *s, Connection *conn, sd_bus_message *msg, uint32_t ms, Call init) {
        sd_bus_slot *bslot = NULL;
        Call *call = calloc(1, sizeof(*call));
        if (!call)
                return -ENOMEM;
        *call = init;
        call->session = session_ref(s);
        int r = sd_bus_call_async(conn->bus, &bslot, msg, on_reply, call, (uint64_t) ms * USEC_PER_MSEC);
        connection_io_touch(conn); /* its timeout, and what could not be written at once */
        if (r < 0) {
                /* Never sent: not one of a gather's pending answers (the caller counts those). */
                session_unref(call->session);
                free(call);
                return r;
        }
        sd_bus_slot_set_destroy_callback(bslot, call_destroy);
        sd_bus_slot_set_floating(bslot, 1);
        sd_bus_slot_unref(bslot); /* the bus holds it now */
        return 0;
}

/* The Event call of one writer: the event, the session and set ids, the backup type, the mode, the
 * components it acts on and the document's records of them. */
static int event_message(Session *s, const Slot *slot, vss_event event, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        char sid[VSS_ID_STRING_MAX], setid[VSS_ID_STRING_MAX];
        int r = sd_bus_message_new_method_call(slot->writer->connection->bus, &msg, NULL, VSS_WRITER_PATH,
                                               VSS_WRITER_INTERFACE, "Event");
        /* BackupShutdown names the set only if it was made, with a shadow copy in it (VSS: "If no
         * shadow copy has been successfully performed, the value of SnapshotSetId will be NULL"). */
        bool named = event == VSS_EVENT_BACKUP_SHUTDOWN ? s->set_made && s->n_volumes > 0
                                                          : s->set_registered || s->phase >= PHASE_SET_STARTED;
        if (r >= 0)
                r = sd_bus_message_append(msg, "sssub", vss_event_name(event), vss_id_to_string(&s->id, sid),
                                          named ? vss_id_to_string(&s->set_id, setid) : "",
                                          (uint32_t) s->backup_type, s->component_mode);
        if (r >= 0) {
                /* Outside component mode every component of the writer takes part: the event lists
                 * those the document has records of. */
                char **keys = slot->components, **all = NULL;
                if (!keys && !s->component_mode && !s->restore)
                        keys = all = slot_record_keys(s, slot);
                r = sd_bus_message_append_strv(msg, keys ? keys : (char *[]) { NULL });
                for (char **k = all; k && *k; k++)
                        free(*k);
                free(all);
        }
        if (r >= 0) {
                _cleanup_free_ char *records = NULL;
                r = slot_records(s, slot, &records);
                if (r >= 0)
                        r = sd_bus_message_append(msg, "s", strempty(records));
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(msg);
        return 0;
}

/* Before PrepareForBackup, PrepareForSnapshot and PreRestore, the writer's Context: the
 * requester's settings (SetBackupState's, SetContext's; before PreRestore, those of the backup
 * restored) and, from PrepareForSnapshot, the set's volumes it may see (lib/writer-context.c). No
 * answer is asked: a writer of an older libvss has no such method and ignores it; the Event after
 * it keeps its order on the connection. */
static void context_send(Session *s, const Slot *slot, vss_event event) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        char sid[VSS_ID_STRING_MAX];
        json_object *o = json_object_new_object(), *vols = json_object_new_array();
        bool ok = o && vols && json_object_object_add(o, "partial_file_support", json_object_new_boolean(s->partial)) == 0 &&
                  json_object_object_add(o, "bootable_system_state", json_object_new_boolean(s->bootable)) == 0 &&
                  json_object_object_add(o, "context", json_object_new_int64(s->context)) == 0;
        for (size_t i = 0; ok && event == VSS_EVENT_PREPARE_SNAPSHOT && i < s->n_volumes; i++)
                if (slot_may_see_volume(s, slot, i))
                        ok = json_object_array_add(vols, json_object_new_string(s->volumes[i].path)) == 0;
        if (ok && json_object_object_add(o, "volumes", vols) == 0)
                vols = NULL;
        else
                ok = false;
        const char *text = ok ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
        if (text && sd_bus_message_new_method_call(slot->writer->connection->bus, &msg, NULL, VSS_WRITER_PATH,
                                                   VSS_WRITER_INTERFACE, "Context") >= 0 &&
            sd_bus_message_append(msg, "ss", vss_id_to_string(&s->id, sid), text) >= 0 &&
            sd_bus_message_set_expect_reply(msg, 0) >= 0)
                (void) sd_bus_send(slot->writer->connection->bus, msg, NULL);
        json_object_put(vols);
        json_object_put(o);
}

/* Marks what the slot got: the rules of later events depend on it. */
static void slot_got(Slot *slot, vss_event event) {
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

int call_slot(Session *s, size_t idx, vss_event event, StatusGather *g) {
        Manager *m = s->manager;
        Slot *slot = &s->slots[idx];
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        Writer *w = slot->writer;
        int r = -ENOTCONN;

        if (!g)
                slot_got(slot, event);
        if (w) {
                if (g)
                        r = sd_bus_message_new_method_call(w->connection->bus, &msg, NULL, VSS_WRITER_PATH,
                                                           VSS_WRITER_INTERFACE, "Ping");
                else
                        r = event_message(s, slot, event, &msg);
                if (r >= 0 && !g &&
                    (event == VSS_EVENT_PREPARE_BACKUP || event == VSS_EVENT_PREPARE_SNAPSHOT || event == VSS_EVENT_PRE_RESTORE))
                        context_send(s, slot, event);
                if (r >= 0) {
                        uint32_t ms = g ? m->config.timeouts.status_ms
                                        : event_timeout_ms(&m->config.timeouts, event, slot->window_ms);
                        /* A later level's Freeze may not outlast the windows of writers already frozen. */
                        bool capped = event == VSS_EVENT_FREEZE && s->freeze_cap_ms > 0 && ms > s->freeze_cap_ms;
                        if (capped)
                                ms = s->freeze_cap_ms;
                        if (event == VSS_EVENT_FREEZE)
                                slot->freeze_sent_usec = now_monotonic_usec();
                        /* A user whose writer let its last Identify run out, or answered it late,
                         * holds up no other user's gathers for the whole deadline: a second, until one
                         * answers within it. Its own requester waits for it. */
                        if (event == VSS_EVENT_IDENTIFY && !slot_trusted(slot) && slot->uid != s->requester_uid &&
                            slow_identify_is(m, slot->uid) && ms > IDENTIFY_MISSED_MS)
                                ms = IDENTIFY_MISSED_MS;
                        r = call_async(s, w->connection, msg, ms,
                                       (Call) { .idx = idx, .event = event, .gather = g, .capped = capped });
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
                slot_answer(s, slot, slot->last_event, VSS_E_WRITER_NOT_RESPONDING, 0, "writer disconnected");
                return 0;
        }
        slot_answer(s, slot, event, VSS_E_WRITER_NOT_RESPONDING, 0, "writer disconnected");
        return 0;
}

int writer_ping(Session *s, Writer *w, size_t idx, StatusGather *g) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *ping = NULL;
        int r = sd_bus_message_new_method_call(w->connection->bus, &ping, NULL, VSS_WRITER_PATH, VSS_WRITER_INTERFACE,
                                               "Ping");
        if (r < 0)
                return r;
        /* libvss answers a Ping from its loop, whatever the application does: a user's writer that
         * takes longer holds up no other user's gather for the whole status deadline. */
        uint32_t ms = s->manager->config.timeouts.status_ms;
        if (!uid_trusted(w->connection->cred.uid) && ms > IDENTIFY_MISSED_MS)
                ms = IDENTIFY_MISSED_MS;
        r = call_async(s, w->connection, ping, ms, (Call) { .idx = idx, .gather = g, .direct = true });
        return r < 0 ? r : 1;
}

void notify_slot(Session *s, size_t idx, vss_event event) {
        Slot *slot = &s->slots[idx];
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *msg = NULL;
        if (!slot->writer || event_message(s, slot, event, &msg) < 0 || sd_bus_message_set_expect_reply(msg, 0) < 0)
                return;
        (void) sd_bus_send(slot->writer->connection->bus, msg, NULL);
        connection_io_touch(slot->writer->connection); /* what could not be written at once */
}

void send_batch_during(Session *s, vss_event event, SlotRule rule, int level, void (*next)(Session *),
                       void (*during)(Session *)) {
        s->pending = 1; /* held while sending, so an immediate answer cannot finish the batch */
        s->next = next;
        for (size_t i = 0; i < s->n_slots; i++) {
                SlotFacts f = slot_facts(&s->slots[i]);
                if (rule(event, &f, level) && call_slot(s, i, event, NULL) > 0)
                        s->pending++;
        }
        if (during)
                during(s);
        batch_done_one(s);
}

void send_batch(Session *s, vss_event event, SlotRule rule, int level, void (*next)(Session *)) {
        send_batch_during(s, event, rule, level, next, NULL);
}
