/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Sessions: one requester's backup or restore. This file holds their life (creation, lookup,
 * release, shutdown), the bookkeeping of the operation in flight and the plain steps of the
 * sequence; dispatch, status, the document, the snapshot set and DoSnapshotSet's stages are in the
 * other session files (session-internal.h).
 */

#include "daemon/commit.h"
#include "daemon/commit-helper.h"
#include "daemon/session-internal.h"
#include "lib/components.h"

Session *session_new(Connection *c) {
        Session *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        s->n_ref = 1; /* held by the manager's list until the session is shut down */
        s->manager = c->manager;
        s->connection = c;
        s->requester_uid = c->cred.uid;
        commit_init(&s->commit);
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

void slot_done(Slot *slot) {
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
        pause_free(s);
        (void) commit_abandon(&s->commit); /* none runs by now (it holds a reference); none waits either */
        commit_done(&s->commit);
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
                if (s->slots[i].writer == w) {
                        s->slots[i].writer = NULL;
                        pause_writer_gone(s, &s->slots[i]);
                }
}

/* Operation bookkeeping. */

void op_reply(Session *s, int32_t hr, const char *msg) {
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

void op_begin(Session *s, sd_bus_message *msg, SeqCall call) {
        s->busy = true;
        s->op = call;
        s->request = sd_bus_message_ref(msg);
}

/* Begins the operation: its event goes to the writers writer_gets_event() picks, then done(s). */
static int op_send(Session *s, sd_bus_message *msg, SeqCall call, vss_event event, void (*done)(Session *s)) {
        op_begin(s, msg, call);
        send_batch(s, event, writer_gets_event, 0, done);
        return 1;
}

void creating_done(Session *s) {
        if (s->manager->creating == s)
                s->manager->creating = NULL;
        /* A helper started at StartSnapshotSet and never told to go is not wanted any more: killed
         * and reaped here, quietly (its end is no failure). One told to go is not touched. */
        (void) commit_cancel(&s->commit);
        commit_helper_spare_later(s->manager); /* the next set's helper, in a moment */
}

/* The right a call needs: backup events make writers act (a log truncated at BackupComplete), so
 * a whole backup needs the create right, not only its snapshot set; a restore needs the restore
 * right. _RIGHT_MAX: none beyond using sessions. */
static Right call_right(SeqCall call) {
        switch (call) {
        case CALL_INITIALIZE_FOR_BACKUP: case CALL_START_SNAPSHOT_SET: case CALL_ADD_TO_SNAPSHOT_SET:
        case CALL_DO_SNAPSHOT_SET: case CALL_WAIT_PAUSED: case CALL_CONTINUE_SNAPSHOT_SET:
                return RIGHT_CREATE;
        case CALL_INITIALIZE_FOR_RESTORE: case CALL_PRE_RESTORE: case CALL_POST_RESTORE:
                return RIGHT_RESTORE;
        default:
                return _RIGHT_MAX;
        }
}

Session *session_begin_call(sd_bus_message *msg, void *userdata, SeqCall call, sd_bus_error *error) {
        Connection *c = userdata;
        const char *id, *why = NULL;
        if (!c->may_request) {
                reply_error(error, VSS_E_ACCESSDENIED,
                            "uid %u may not use sessions: it holds neither the 'create' nor the 'restore' right",
                            (unsigned) c->cred.uid);
                return NULL;
        }
        Right need = call_right(call);
        if (need != _RIGHT_MAX && check_right(c, need, error) < 0)
                return NULL;
        if (sd_bus_message_read(msg, "s", &id) < 0) {
                reply_error(error, VSS_E_INVALIDARG, "missing session id");
                return NULL;
        }
        Session *s = session_lookup(c, id, error);
        if (!s)
                return NULL;
        /* Marked while busy: its step has ended, so it gives way before anything else. */
        if (s->gives_way && s->manager->creating == s && !s->busy)
                (void) set_give_way(s);
        SeqFacts f = {
                .phase = s->phase,
                .busy = s->busy,
                .component_mode = s->component_mode,
                .restore = s->restore,
                .status_closed = s->status_closed,
                .n_volumes = (unsigned) s->n_volumes,
                .no_writers = (s->context & VSS_VOLSNAP_ATTR_NO_WRITERS) != 0,
                .pausable = s->pausable,
                .paused = s->paused != 0,
        };
        int32_t hr = seq_check(&f, call, &why);
        if (hr < 0) {
                reply_error(error, hr, "%s: %s (session is %s%s)", seq_call_name(call), why, session_phase_name(s->phase),
                            s->gives_way ? "; " GAVE_WAY : "");
                return NULL;
        }
        return s;
}

/* The plain steps. */

int method_initialize_for_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_INITIALIZE_FOR_BACKUP);
        s->phase = seq_next(s->phase, CALL_INITIALIZE_FOR_BACKUP);
        /* What the document says without SetBackupState; the writers' events say the same (never
         * VSS_BT_UNDEFINED, which VSS calls an application error). */
        s->backup_type = VSS_BT_FULL;
        return sd_bus_reply_method_return(msg, NULL);
}

int method_set_context(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint32_t ctx;
        BEGIN(CALL_SET_CONTEXT);
        if (sd_bus_message_read(msg, "u", &ctx) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "missing context");
        if (s->context_set)
                return reply_error(error, VSS_E_BAD_STATE, "SetContext was called already; it may be called once");
        /* A context, with the one attribute a requester may add that OpenVSS can keep: a shadow
         * is never written to after the cut. */
        switch (ctx == VSS_CTX_ALL ? ctx : ctx & ~VSS_VOLSNAP_ATTR_NO_AUTORECOVERY) {
        case VSS_CTX_ALL: /* VSS: valid for SetContext; StartSnapshotSet refuses it */
        case VSS_CTX_BACKUP: case VSS_CTX_FILE_SHARE_BACKUP: case VSS_CTX_NAS_ROLLBACK: case VSS_CTX_APP_ROLLBACK:
        case VSS_CTX_CLIENT_ACCESSIBLE: case VSS_CTX_CLIENT_ACCESSIBLE_WRITERS:
                break;
        default:
                return reply_error(error, VSS_E_INVALIDARG, "unknown snapshot context 0x%x (a VSS_CTX_* value, "
                                   "optionally with VSS_VOLSNAP_ATTR_NO_AUTORECOVERY; transportable, differential "
                                   "and plex shadows are not made)", ctx);
        }
        s->context = ctx;
        s->context_set = true;
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

        /* Writers that failed Identify have no metadata and no status in this session; nor have a
         * user's writers past what that user's metadata may add up to (identify_answered()). */
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
        return op_send(s, msg, CALL_GATHER_WRITER_METADATA, VSS_EVENT_IDENTIFY, metadata_done);
}

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
                /* A user's writer hears of a backup only when it takes part in it (a component of it
                 * selected; or the set's volumes, known by now, meet its components): it cannot fail
                 * or stall a backup of what is not its own. Without volumes yet, that is decided at
                 * DoSnapshotSet as for everyone. */
                bool involved = s->component_mode ? slot->selected : s->n_volumes == 0 || slot_takes_part(s, slot);
                if (!slot_trusted(slot) && !involved) {
                        slot->selected = false;
                        slot->unheard = true;
                        bcd_remove_instance(s->doc, &slot->class_id, &slot->instance_id);
                        log_info("writer '%s' (uid %u) is not involved in the backup", slot->name, (unsigned) slot->uid);
                        note_status(s, slot);
                        continue;
                }
                if (!s->component_mode && !slot_record_all(s, slot))
                        return reply_error(error, VSS_E_INVALIDARG, "too many components (%d)", VSS_MAX_COMPONENTS);
        }
        return op_send(s, msg, CALL_PREPARE_FOR_BACKUP, VSS_EVENT_PREPARE_BACKUP, simple_op_done);
}

int method_backup_complete(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_BACKUP_COMPLETE);
        return op_send(s, msg, CALL_BACKUP_COMPLETE, VSS_EVENT_BACKUP_COMPLETE, simple_op_done);
}

int method_pre_restore(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_PRE_RESTORE);
        /* A restore without metadata addresses the writers running now. */
        if (s->phase == PHASE_RESTORE_INIT && s->n_slots == 0 && slots_for_writers(s) < 0)
                return -ENOMEM;
        /* In component mode a writer takes part when one of its components is selected for restore. */
        for (size_t i = 0; i < s->n_slots; i++)
                if (slot_select_for_restore(s, &s->slots[i]) < 0)
                        return -ENOMEM;
        return op_send(s, msg, CALL_PRE_RESTORE, VSS_EVENT_PRE_RESTORE, simple_op_done);
}

int method_post_restore(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_POST_RESTORE);
        for (size_t i = 0; i < s->n_slots; i++)
                slot_post_restore_wanted(s, &s->slots[i]);
        return op_send(s, msg, CALL_POST_RESTORE, VSS_EVENT_POST_RESTORE, simple_op_done);
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
        if (s->n_slots == 0 || s->restore) {
                session_final(s);
                return;
        }
        for (size_t i = 0; i < s->n_slots; i++) {
                SlotFacts f = slot_facts(&s->slots[i]);
                if (writer_told_shutdown_unawaited(&f))
                        notify_slot(s, i, VSS_EVENT_BACKUP_SHUTDOWN);
        }
        send_batch(s, VSS_EVENT_BACKUP_SHUTDOWN, writer_gets_event, 0, session_final);
}

void session_shutdown(Session *s) {
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
        if (commit_abandon(&s->commit)) {
                /* Nothing may stay frozen after vssd stops, whoever kills what next. */
                frozen_journal_recover(s->manager, &s->set_id);
                session_unref(s); /* the reference the child held */
        }
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
