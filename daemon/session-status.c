/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * GatherWriterStatus: each writer of the session is asked (a Ping) whether it still answers, then
 * the session's per-writer status is returned. It runs beside the session's own operation. A
 * restore that gathered no metadata lists the subscribed writers that answer now.
 */

#include "daemon/session-internal.h"
#include "lib/basic/time-util.h"

/* A GatherWriterStatus in flight. */
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

const char *slot_note(const Slot *slot) {
        if (slot->status.aborted && !state_is_failed(slot->status.state))
                return "aborted";
        if (slot->left_out || slot->unheard)
                return "not involved";
        return "";
}

static void gather_free(StatusGather *g) {
        g->session->gathering = false;
        sd_bus_message_unref(g->request);
        free(g->direct_entries);
        session_unref(g->session);
        free(g);
}

static int append_slot(sd_bus_message *reply, const Slot *slot) {
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX], note[128], ts[FORMAT_TIMESTAMP_MAX];
        if (slot->inflight)
                snprintf(note, sizeof(note), "in progress: %s since %s", vss_event_name(slot->inflight_event),
                         format_timestamp(slot->inflight_since, ts));
        else
                snprintf(note, sizeof(note), "%s", slot_note(slot));
        return sd_bus_message_append(reply, "(sssuiiss)", slot->name, vss_id_to_string(&slot->class_id, a),
                                     vss_id_to_string(&slot->instance_id, b), (uint32_t) slot->status.state,
                                     slot->status.failure, slot->status.application_code,
                                     slot->status.application_message, note);
}

static void gather_reply(StatusGather *g) {
        Session *s = g->session;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX];
        int r = sd_bus_message_new_method_return(g->request, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssuiiss)");
        for (size_t i = 0; r >= 0 && i < (g->direct ? g->n : s->n_slots); i++) {
                if (!g->direct)
                        r = append_slot(reply, &s->slots[i]);
                else if (g->direct_entries[i].answered)
                        r = sd_bus_message_append(reply, "(sssuiiss)", g->direct_entries[i].name,
                                                  vss_id_to_string(&g->direct_entries[i].class_id, a),
                                                  vss_id_to_string(&g->direct_entries[i].instance_id, b),
                                                  (uint32_t) VSS_WS_STABLE, 0, 0, "", "");
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

void gather_answered(StatusGather *g, size_t idx, bool answered) {
        if (g->direct)
                g->direct_entries[idx].answered = answered;
        if (--g->pending == 0)
                gather_reply(g);
}

void gather_lost(StatusGather *g) {
        if (--g->pending == 0)
                gather_free(g);
}

/* No metadata (a restore): pings the writers subscribed now; those that answer are listed. */
static int gather_direct(Session *s, StatusGather *g) {
        Manager *m = s->manager;
        g->direct_entries = calloc(m->n_writers ? m->n_writers : 1, sizeof(*g->direct_entries));
        if (!g->direct_entries)
                return -ENOMEM;
        LIST_FOREACH(writers, w, m->writers) {
                size_t i = g->n++;
                memcpy(g->direct_entries[i].name, w->name, sizeof(w->name));
                g->direct_entries[i].class_id = w->class_id;
                g->direct_entries[i].instance_id = w->instance_id;
        }
        size_t i = 0;
        LIST_FOREACH(writers, w, m->writers)
                if (writer_ping(s, w, i++, g) > 0)
                        g->pending++;
        return 0;
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
                if (gather_direct(s, g) < 0) {
                        gather_free(g);
                        return -ENOMEM;
                }
        } else if (!s->status_closed) /* once closed, a gather returns the closed status, asking no one */
                for (size_t i = 0; i < s->n_slots; i++) {
                        SlotFacts f = slot_facts(&s->slots[i]);
                        if (writer_gets_status_query(&f) && call_slot(s, i, VSS_EVENT_IDENTIFY, g) > 0)
                                g->pending++;
                }
        if (--g->pending == 0)
                gather_reply(g);
        return 1;
}
