/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * DoSnapshotSetPaused: a snapshot set that stops at the points the requester names, after
 * PrepareForSnapshot (and the copy-ahead) and once every writer is frozen, until it continues
 * (ContinueSnapshotSet) or aborts (AbortBackup, Cancel, the requester gone). A requester learns of
 * a pause with WaitPaused, answered when the set pauses, or ends. The freeze windows keep running
 * while paused: one that runs out aborts the set, as it would during the provider commit. The
 * stages (session-stages.c) ask pause_at() at each point; everything else of the pause is here.
 */

#include "daemon/session-internal.h"
#include "lib/basic/time-util.h"

#define PAUSE_KNOWN (VSS_PAUSE_BEFORE_FREEZE | VSS_PAUSE_BEFORE_COMMIT)

static const char *point_name(uint32_t point) {
        return point == VSS_PAUSE_BEFORE_FREEZE ? "before Freeze" : "before the provider commit";
}

/* Microseconds until the first freeze window of a frozen writer ends (0 when one has);
 * UINT64_MAX when no writer is frozen. */
static uint64_t window_left_usec(const Session *s) {
        uint64_t end = frozen_window_end_usec(s), now = now_monotonic_usec();
        return end == UINT64_MAX ? UINT64_MAX : end > now ? end - now : 0;
}

static void pause_end(Session *s) {
        s->paused = 0;
        s->pause_window = sd_event_source_disable_unref(s->pause_window);
}

/* Answers the WaitPaused waiting, if any: the point paused at, or 0 when the set ended. */
static void answer_waiter(Session *s, uint32_t point) {
        sd_bus_message *req = TAKE_PTR(s->pause_waiter);
        if (!req)
                return;
        (void) sd_bus_reply_method_return(req, "ut", point, point ? window_left_usec(s) : UINT64_MAX);
        sd_bus_message_unref(req);
}

/* The set was paused past a frozen writer's window: the writers whose window ran out failed at
 * Thaw (they thaw themselves), and the set aborts as it does when the commit outlasts a window. */
static int on_pause_window(sd_event_source *src, uint64_t usec, void *userdata) {
        Session *s = userdata;
        s->pause_window = sd_event_source_disable_unref(s->pause_window);
        (void) frozen_windows_run_out(s, "freeze window exceeded while the snapshot set was paused before the provider commit");
        request_abort(s, VSS_E_WRITERERROR_TIMEOUT,
                      "a writer's freeze window was exceeded while the snapshot set was paused before the provider commit");
        return 0;
}

void pause_start(Session *s, uint32_t flags) {
        s->pausable = flags != 0;
        s->pause_flags = flags;
        s->pause_reached = 0;
        pause_end(s);
}

bool pause_at(Session *s, uint32_t point) {
        char id[VSS_ID_STRING_MAX];
        if (!(s->pause_flags & point) || (s->pause_reached & point))
                return false;
        s->pause_reached |= point;
        s->paused = point;
        /* At the window's end itself: a time relative to the loop's cached now (taken when this
         * iteration began) could fire before it, and no writer would have run out yet. */
        uint64_t end = frozen_window_end_usec(s);
        if (end != UINT64_MAX &&
            sd_event_add_time(s->manager->event, &s->pause_window, CLOCK_MONOTONIC, end, 1000, on_pause_window, s) < 0) {
                /* Unwatched, a pause could outlast the windows unseen: it may not begin. */
                s->paused = 0;
                request_abort(s, VSS_E_UNEXPECTED, "cannot watch the freeze windows while paused");
                return false;
        }
        log_info("snapshot set %s paused %s", vss_id_to_string(&s->set_id, id), point_name(point));
        answer_waiter(s, point);
        return true;
}

bool pause_abort_check(Session *s) {
        if (!s->paused || !s->abort_hr)
                return false;
        /* The stages stopped at the pause: they go on, to Abort. */
        pause_end(s);
        dss_resume(s);
        return true;
}

void pause_writer_gone(Session *s, Slot *slot) {
        /* A writer frozen while the set waits thawed itself as it went: the cut cannot be
         * consistent any more, so the set aborts now rather than at its Thaw. */
        if (s->paused != VSS_PAUSE_BEFORE_COMMIT || slot->status.state != VSS_WS_WAITING_FOR_THAW)
                return;
        slot_answer(s, slot, VSS_EVENT_FREEZE, VSS_E_WRITER_NOT_RESPONDING, 0,
                    "writer disconnected while frozen (the snapshot set was paused)");
        (void) pause_abort_check(s);
}

void pause_done(Session *s) {
        pause_end(s);
        answer_waiter(s, 0);
}

void pause_free(Session *s) {
        s->pause_window = sd_event_source_disable_unref(s->pause_window);
        s->pause_waiter = sd_bus_message_unref(s->pause_waiter);
}

int method_do_snapshot_set_paused(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        uint32_t flags;
        BEGIN(CALL_DO_SNAPSHOT_SET);
        if (sd_bus_message_read(msg, "u", &flags) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "missing pause flags");
        if (flags & ~PAUSE_KNOWN)
                return reply_error(error, VSS_E_INVALIDARG,
                                   "unknown pause flags 0x%x (known: 0x1 before Freeze, 0x2 before the provider commit)",
                                   flags & ~PAUSE_KNOWN);
        dss_start(s, msg, flags);
        return 1;
}

int method_wait_paused(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_WAIT_PAUSED);
        if (s->paused)
                return sd_bus_reply_method_return(msg, "ut", s->paused, window_left_usec(s));
        if (!s->busy || s->op != CALL_DO_SNAPSHOT_SET)
                return sd_bus_reply_method_return(msg, "ut", (uint32_t) 0, UINT64_MAX); /* it ended */
        if (s->pause_waiter)
                return reply_error(error, VSS_E_BAD_STATE, "a WaitPaused of this session is waiting already");
        s->pause_waiter = sd_bus_message_ref(msg);
        return 1;
}

int method_continue_snapshot_set(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        char id[VSS_ID_STRING_MAX];
        BEGIN(CALL_CONTINUE_SNAPSHOT_SET);
        log_info("snapshot set %s continues from its pause %s", vss_id_to_string(&s->set_id, id),
                 point_name(s->paused));
        pause_end(s);
        /* Answered first: whatever the set does next reaches the requester after this answer. */
        int r = sd_bus_reply_method_return(msg, NULL);
        dss_resume(s);
        return r;
}
