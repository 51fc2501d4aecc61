/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * DoSnapshotSet as a stage machine: PrepareForSnapshot → copy-ahead of held file-provider volumes
 * (hold.c) → Freeze (front-end, back-end, system) → provider commit → Thaw (reverse) →
 * PostSnapshot. Any failure from the copy-ahead to Thaw (or a provider failure, or the requester
 * going away) turns to Abort for every writer that got PrepareForSnapshot. Also AbortBackup and
 * Cancel, which abort what runs.
 */

#include <sys/mman.h>
#include <sys/stat.h>

#include "daemon/commit.h"
#include "daemon/commit-helper.h"
#include "daemon/hold.h"
#include "daemon/session-internal.h"
#include "lib/basic/time-util.h"

static void dss_continue(Session *s);
static int stage_committed(Session *s);

void dss_resume(Session *s) {
        dss_continue(s);
}

void request_abort(Session *s, int32_t hr, const char *why) {
        if (s->abort_hr == 0) {
                s->abort_hr = hr;
                snprintf(s->abort_msg, sizeof(s->abort_msg), "%s", why);
        }
        commit_kill(&s->commit);
        /* Writers waiting for the batch in flight to end get Abort now, not after it. */
        abort_due_writers(s);
        /* A sequence waiting for the commit helper to be ready (before any Freeze) goes to Abort. */
        if (s->commit.wait_ready) {
                s->commit.wait_ready = false;
                dss_continue(s);
        }
}

void state_abort(Session *s, int r, const char *what) {
        if (r == -ENOSPC || r == -EDQUOT) {
                char msg[1024];
                snprintf(msg, sizeof(msg), "the state directory %s is full: %s; free space there and try again",
                         s->manager->state_dir, what);
                request_abort(s, VSS_E_INSUFFICIENT_STORAGE, msg);
        } else
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, what);
}

/* Each writer's window runs from its own Freeze (VSS: a Thaw not received within the window after
 * Freeze), not from the set's first: a later level does not lose what the earlier ones took. */
static uint64_t slot_window_end_usec(const Session *s, const Slot *slot) {
        return (slot->freeze_sent_usec ? slot->freeze_sent_usec : s->freeze_start_usec) +
               (uint64_t) event_timeout_ms(&s->manager->config.timeouts, VSS_EVENT_FREEZE, slot->window_ms) * USEC_PER_MSEC;
}

bool slot_window_run_out(const Session *s, const Slot *slot) {
        return slot->got_freeze && now_monotonic_usec() >= slot_window_end_usec(s, slot);
}

uint64_t frozen_window_end_usec(const Session *s) {
        uint64_t first = UINT64_MAX;
        for (size_t i = 0; i < s->n_slots; i++)
                if (s->slots[i].status.state == VSS_WS_WAITING_FOR_THAW) {
                        uint64_t end = slot_window_end_usec(s, &s->slots[i]);
                        if (end < first)
                                first = end;
                }
        return first;
}

bool frozen_windows_run_out(Session *s, const char *why) {
        uint64_t now = now_monotonic_usec();
        bool any = false;
        for (size_t i = 0; i < s->n_slots; i++) {
                Slot *slot = &s->slots[i];
                if (slot->status.state == VSS_WS_WAITING_FOR_THAW && now >= slot_window_end_usec(s, slot)) {
                        status_apply(&slot->status, VSS_EVENT_FREEZE, VSS_E_WRITERERROR_TIMEOUT, 0, why);
                        note_status(s, slot);
                        any = true;
                }
        }
        return any;
}

/* What is left of the shortest Freeze→Thaw window among frozen writers, in ms rounded up: 0 when
 * nobody is frozen, at least 1 when someone is (so an expired window still counts). */
static uint32_t frozen_window_left_ms(Session *s) {
        uint64_t end = frozen_window_end_usec(s), now = now_monotonic_usec();
        if (end == UINT64_MAX)
                return 0;
        uint64_t ms = end > now ? (end - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC : 0;
        return (uint32_t) (ms < 1 ? 1 : ms);
}

/* The commit child (or the copy-ahead) made a shadow: where it is is recorded at once. */
static void on_commit_location(void *userdata, size_t i, const char *location) {
        Session *s = userdata;
        if (i >= s->n_volumes || streq(location, s->volumes[i].shadow_path))
                return;
        char *loc = strdup(location);
        if (!loc)
                return;
        free(s->volumes[i].shadow_path);
        s->volumes[i].shadow_path = loc;
        (void) registry_set_shadow_path(s->manager->registry, &s->volumes[i].shadow_id, loc);
}

/* The commit helper is ready to go (or died trying): the first Freeze may go out. */
static void on_commit_ready(void *userdata) {
        Session *s = userdata;
        if (!s->commit.wait_ready)
                return;
        s->commit.wait_ready = false;
        dss_continue(s);
}

/* The child made its cut: the writers thaw while it makes the shadows durable. */
static void on_commit_cut(void *userdata) {
        dss_continue(userdata);
}

static void on_commit_exited(void *userdata, int code, const char *msg) {
        Session *s = userdata;
        /* After its cut the sequence went on without it, and waits for it only past Thaw. */
        bool continued = s->commit.cut, waited = s->commit.wait_exit;
        s->commit.wait_exit = false;
        /* A child that exited by itself released its lease (or never got one: a filesystem frozen
         * by someone else stays theirs): its journal is cleared after Thaw, outside the window. One
         * that was killed may have left the helper to thaw in its own time: its lease file tells
         * (see freeze.h), now. */
        if (s->hold_mounts > 0 && code < 0) {
                frozen_journal_recover(s->manager, &s->set_id);
                s->hold_mounts = 0;
        }
        /* Every Thaw is out and the shadows are durable: the set is recorded now, its fsync
         * overlapping the writers' answers to Thaw rather than following them. */
        if (code == COMMIT_OK && continued && !waited && s->stage == STAGE_THAW && s->level < 0 && !s->abort_hr)
                (void) stage_committed(s);
        if (code != COMMIT_OK) {
                int32_t hr = code == COMMIT_NOSPACE           ? VSS_E_INSUFFICIENT_STORAGE
                             : code == COMMIT_HOLD_TIMEOUT     ? VSS_E_HOLD_WRITES_TIMEOUT
                             : code == COMMIT_FROZEN_ELSEWHERE ? VSS_E_PROVIDER_VETO
                                                               : VSS_E_UNEXPECTED_PROVIDER_ERROR;
                request_abort(s, hr, msg[0] ? msg : "the provider failed to create a shadow copy");
        }
        if (!continued || waited)
                dss_continue(s);
        session_unref(s); /* the reference the child held */
}

static void on_commit_window(void *userdata) {
        Session *s = userdata;
        /* The provider took longer than a frozen writer's window: the copy cannot be consistent. */
        if (frozen_windows_run_out(s, "freeze window exceeded during provider commit"))
                request_abort(s, VSS_E_WRITERERROR_TIMEOUT, "a writer's freeze window was exceeded during the provider commit");
        else
                request_abort(s, VSS_E_HOLD_WRITES_TIMEOUT, "the provider outlasted the hold window");
}

static const CommitOps commit_ops = {
        .location = on_commit_location,
        .exited = on_commit_exited,
        .window = on_commit_window,
        .cut = on_commit_cut,
        .ready = on_commit_ready,
};

/* Past Thaw (PostSnapshot says the set is made) and before the end, a commit child still making
 * its shadows durable is waited for. true when waiting: its exit continues the sequence. */
static bool commit_waited(Session *s) {
        if (!commit_running(&s->commit))
                return false;
        s->commit.wait_exit = true;
        return true;
}

/* Copy-ahead, after PrepareForSnapshot and before Freeze: the held file-provider volumes are copied
 * while nothing is frozen, so only their last delta is copied while they are held. 1 when the
 * child runs, 0 when there is nothing to copy ahead or it failed to start. */
static int stage_precopy(Session *s) {
        if (!hold_wants_precopy(s) || set_register(s) < 0 || set_dirs_make(s) < 0)
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
        const char *why;
        if (commit_helper_precopy(s, &commit_ops, &why) < 0) {
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, why);
                return 0;
        }
        session_ref(s); /* the child's, as a commit's */
        return 1;
}

/* Starts the commit helper, waiting to be told to go. 0, or <0 with the abort requested. */
static int commit_fork(Session *s) {
        const char *why;
        int r = commit_helper_prepare(s, &commit_ops, &why);
        if (r < 0)
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, why);
        return r;
}

/* While the writers handle PrepareForSnapshot: the set and its shadows are recorded as 'creating',
 * durably (an fsync, which their answers overlap), so that the start after a power loss at any
 * later point finds the set and deletes whatever a provider made of it. A failure aborts the set
 * once they have answered, before anyone is frozen. */
static void stage_record(Session *s) {
        (void) set_register(s);
}

/* Before the first Freeze, so the window holds only Freeze, the provider's cut and Thaw: the set
 * is recorded (stage_record(), done) and the filesystems about to be held are journalled
 * (if vssd and the lease helper both die, the next start thaws them; a journal without a lease
 * file thaws nothing), and the commit child is forked, waiting to be told to go. 0 when ready,
 * <0 when the set aborts (requested). */
static int stage_arm(Session *s) {
        Manager *m = s->manager;
        int r;

        if (set_register(s) < 0)
                return -1;
        if (s->hold_mounts > 0) /* armed already, before waiting for the helper */
                return 0;
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
                return r;
        }
        s->hold_mounts = n_mounts;
        /* Started early (stage_spawn_early()), or died before it was ready (stage_ready() says so). */
        if (commit_prepared(&s->commit) || s->commit.failed_start)
                return 0;
        return commit_fork(s);
}

void set_helper_start(Session *s) {
        const char *why;
        /* Not started: it starts at DoSnapshotSet, as it did before it could start here. */
        if (commit_helper_spawn_early(s, &commit_ops, &why) < 0)
                log_info("the provider commit helper did not start early (%s): it starts at DoSnapshotSet", why);
}

/* With no copy-ahead (whose indexes the helper inherits), the helper started at StartSnapshotSet
 * gets its job now (or, if it is gone, a new one starts while the writers handle
 * PrepareForSnapshot), so its start is not added to the sequence either. A failure here is tried
 * again in stage_arm(). With the copy-ahead, whose child uses s->commit first, the early helper
 * goes: a new one that inherits the indexes starts in stage_arm(). */
static void stage_spawn_early(Session *s) {
        const char *why;
        if (hold_wants_precopy(s))
                (void) commit_cancel(&s->commit);
        else
                (void) commit_helper_prepare(s, &commit_ops, &why);
}

/* Before the first Freeze: the commit helper has started (its exec and loading are not in the
 * window; reading its job is, when it has not yet, as it runs on its own beside the writers'
 * Freeze). With filesystems to hold it must also have read its job, since it then forks and sets
 * up the freeze helper (1-2 ms) before it says it is ready. 1 when it is loaded (ready, when
 * holding); 0 when the sequence waits for it (on_commit_ready()); <0 when it died (the abort is
 * requested and the sequence goes on to it). */
static int stage_ready(Session *s) {
        if (s->commit.ready || (s->commit.loaded && s->hold_mounts == 0))
                return 1;
        if (commit_prepared(&s->commit)) {
                /* Bounded like the writers' PrepareForSnapshot, whose stage it belongs to. */
                uint32_t ms = event_timeout_ms(&s->manager->config.timeouts, VSS_EVENT_PREPARE_SNAPSHOT, 0);
                if (commit_arm_ready(&s->commit, s->manager->event, ms) >= 0) {
                        s->commit.wait_ready = true;
                        return 0;
                }
                (void) commit_cancel(&s->commit);
        }
        request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR,
                      s->commit.msg[0] ? s->commit.msg : "the provider commit helper could not start");
        return -1;
}

/* The prepared commit child goes. Returns 1 when the commit runs (its exit continues the
 * sequence), 0 when it failed to start. */
static int stage_commit(Session *s) {
        Manager *m = s->manager;

        if (set_dirs_make(s) < 0)
                return 0;
        /* It died waiting: started again (inside the window, but the set can still be made). */
        if (s->commit.pid <= 0 && commit_fork(s) < 0)
                return 0;
        if (commit_go(&s->commit) < 0) {
                request_abort(s, VSS_E_UNEXPECTED_PROVIDER_ERROR, "cannot start the provider");
                return 0;
        }
        session_ref(s);

        /* The shortest window among frozen writers bounds the commit; with flush-and-hold, so does
         * the hold window (plus a margin for the lease helper to act first). */
        uint32_t left = frozen_window_left_ms(s);
        bool file_volumes = false; /* they copy unheld volumes and write captured deltas after the release */
        for (size_t i = 0; i < s->n_volumes; i++)
                file_volumes = file_volumes || s->volumes[i].provider == &provider_file;
        if (s->hold_mounts > 0 && !file_volumes && (left == 0 || left > m->config.hold_window_ms + 2000))
                left = m->config.hold_window_ms + 2000;
        if (left > 0)
                (void) commit_arm_window(&s->commit, m->event, left);
        return 1;
}

static void dss_end(Session *s) {
        s->stage = STAGE_NONE;
        pause_done(s);
        if (s->dead)
                session_shutdown(s);
}

/* Once what the set made is deleted: the call returns its failure. */
/* "set ID (uid U, pid P)": which set, and who asked for it, for the log. */
static const char *set_and_asker(const Session *s, char *buf, size_t size) {
        char id[VSS_ID_STRING_MAX];
        if (s->connection)
                snprintf(buf, size, "%s (asked by uid %u, pid %d)", vss_id_to_string(&s->set_id, id),
                         (unsigned) s->connection->cred.uid, (int) s->connection->cred.pid);
        else
                snprintf(buf, size, "%s (its requester gone)", vss_id_to_string(&s->set_id, id));
        return buf;
}

static void dss_aborted(Session *s) {
        char who[128];
        s->phase = PHASE_ABORTED;
        log_warn("snapshot set %s aborted: %s", set_and_asker(s, who, sizeof who), s->abort_msg);
        op_reply(s, s->abort_hr, s->abort_msg);
        dss_end(s);
}

/* The set is made (cut, every writer thawed, the provider done): it is recorded 'committed',
 * durably, before PostSnapshot tells the writers it exists. 0, or <0 with the abort requested:
 * the writers get Abort instead and nothing of the set is kept. */
static int stage_committed(Session *s) {
        Manager *m = s->manager;
        int r = registry_commit_set(m->registry, &s->set_id);
        if (r >= 0) {
                s->set_committed = s->set_made = true;
                s->created_usec = now_realtime_usec();
                return 0;
        }
        /* A full state directory says so (state_abort()); anything else is vssd's own failure. */
        if (r == -ENOSPC)
                state_abort(s, r, "cannot record the snapshot set");
        else
                request_abort(s, VSS_E_UNEXPECTED, "cannot record the snapshot set");
        return r;
}

static void dss_finish(Session *s) {
        Manager *m = s->manager;
        /* The writers are thawed: the frozen journal's rows go now (a durable write the window
         * need not wait for; a restart in between finds no lease file and thaws nothing). */
        if (s->hold_mounts > 0) {
                frozen_journal_recover(m, &s->set_id);
                s->hold_mounts = 0;
        }
        creating_done(s);
        if (!s->abort_hr && s->set_committed) {
                char who[128];
                s->phase = PHASE_SNAPSHOT_DONE;
                log_info("snapshot set %s committed with %zu shadow copies", set_and_asker(s, who, sizeof who),
                         s->n_volumes);
                op_reply(s, 0, NULL);
                dss_end(s);
                return;
        }
        set_delete(s, dss_aborted);
}

static void dss_continue(Session *s) {
        for (;;) {
                /* Past the commit's start, every failure turns into Abort; PostSnapshot never aborts. */
                if (s->abort_hr && s->stage >= STAGE_PRECOPY && s->stage <= STAGE_THAW) {
                        (void) commit_cancel(&s->commit); /* prepared, never to go */
                        s->stage = STAGE_ABORT;
                        s->level = _VSS_APP_LEVEL_MAX - 1;
                }
                switch (s->stage) {
                case STAGE_PREPARE_SNAPSHOT:
                        s->stage = STAGE_PRECOPY;
                        s->level = 0;
                        stage_spawn_early(s);
                        send_batch_during(s, VSS_EVENT_PREPARE_SNAPSHOT, writer_gets_event, 0, dss_continue,
                                          stage_record);
                        return;
                case STAGE_PRECOPY:
                        /* Its failure (or the requester's abort) reaches Abort at STAGE_FREEZE. */
                        s->stage = STAGE_FREEZE;
                        if (!s->abort_hr && stage_precopy(s) > 0)
                                return;
                        continue;
                case STAGE_FREEZE:
                        if (s->level == 0) {
                                /* Armed once: a set paused here comes back when it continues. */
                                if (!s->armed && stage_arm(s) < 0)
                                        continue; /* to Abort */
                                s->armed = true;
                                int r = stage_ready(s);
                                if (r == 0)
                                        return;
                                if (r < 0)
                                        continue; /* to Abort */
                                /* Paused with the helper ready, so a continue sends Freeze at once. */
                                if (pause_at(s, VSS_PAUSE_BEFORE_FREEZE))
                                        return;
                                s->freeze_start_usec = now_monotonic_usec();
                        }
                        if (s->level >= _VSS_APP_LEVEL_MAX) {
                                if (pause_at(s, VSS_PAUSE_BEFORE_COMMIT))
                                        return;
                                s->stage = STAGE_COMMIT;
                                continue;
                        }
                        s->freeze_cap_ms = frozen_window_left_ms(s);
                        send_batch(s, VSS_EVENT_FREEZE, writer_gets_event, s->level++, dss_continue);
                        return;
                case STAGE_COMMIT:
                        s->stage = STAGE_THAW;
                        s->level = _VSS_APP_LEVEL_MAX - 1;
                        if (stage_commit(s) > 0)
                                return;
                        continue;
                case STAGE_THAW:
                        if (s->level < 0) {
                                if (commit_waited(s))
                                        return;
                                if (!s->abort_hr && !s->set_committed && stage_committed(s) < 0)
                                        continue; /* to Abort */
                                s->stage = STAGE_POST_SNAPSHOT;
                                continue;
                        }
                        send_batch(s, VSS_EVENT_THAW, writer_gets_event, s->level--, dss_continue);
                        return;
                case STAGE_POST_SNAPSHOT:
                        s->stage = STAGE_FINISH;
                        send_batch(s, VSS_EVENT_POST_SNAPSHOT, writer_gets_event, 0, dss_continue);
                        return;
                case STAGE_ABORT:
                        if (s->level < 0) {
                                s->stage = STAGE_FINISH;
                                continue;
                        }
                        send_batch(s, VSS_EVENT_ABORT, writer_gets_event, s->level--, dss_continue);
                        return;
                case STAGE_FINISH:
                default:
                        if (commit_waited(s))
                                return;
                        dss_finish(s);
                        return;
                }
        }
}

void dss_start(Session *s, sd_bus_message *msg, uint32_t pause_flags) {
        choose_participants(s);
        op_begin(s, msg, CALL_DO_SNAPSHOT_SET);
        s->abort_hr = 0;
        s->abort_msg[0] = 0;
        s->armed = false;
        pause_start(s, pause_flags);
        s->commit.failed_start = false; /* a helper of an earlier attempt does not count */
        s->stage = STAGE_PREPARE_SNAPSHOT;
        dss_continue(s);
}

int method_do_snapshot_set(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_DO_SNAPSHOT_SET);
        dss_start(s, msg, 0);
        return 1;
}

/* AbortBackup. */

static bool abort_backup_rule(vss_event e, const SlotFacts *f, int level) {
        return abort_backup_wants(f);
}

static void abort_backup_done(Session *s) {
        s->phase = seq_next(s->phase, CALL_ABORT_BACKUP);
        log_info(s->gives_way ? "backup aborted: its snapshot set gave way to another's" : "backup aborted by the requester");
        op_reply(s, 0, NULL);
        if (s->dead)
                session_shutdown(s);
}

static void abort_backup_send(Session *s) {
        creating_done(s);
        send_batch(s, VSS_EVENT_ABORT, abort_backup_rule, 0, abort_backup_done);
}

void abort_backup_start(Session *s) {
        s->busy = true;
        s->op = CALL_ABORT_BACKUP;
        set_delete(s, abort_backup_send);
}

static void abort_session_done(Session *s) {
        op_reply(s, 0, NULL);
        if (s->dead)
                session_shutdown(s);
}

int abort_backup_do(Session *s, sd_bus_message *msg, int32_t hr, const char *why) {
        switch (abort_backup_action(s->phase, s->busy, s->op)) {
        case ABORT_SET_IN_FLIGHT:
                /* The snapshot set in creation aborts at once; its own call returns hr. */
                request_abort(s, hr, why);
                return 0;
        case ABORT_AFTER_OP:
                s->abort_after_op = true;
                return 0;
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
        return 0;
}

int method_abort_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        BEGIN(CALL_ABORT_BACKUP);
        if (abort_backup_do(s, msg, VSS_E_ABORT, "the requester aborted the backup") > 0)
                return 1;
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
