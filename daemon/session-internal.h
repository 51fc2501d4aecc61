/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What the session's files share, and only they: session.c (life, operations, plain steps),
 * session-dispatch.c (events to writers, their answers), session-status.c (GatherWriterStatus),
 * session-document.c (the backup components document), snapshot-set.c (the set: volumes,
 * participants, record, deletion), session-stages.c (DoSnapshotSet, AbortBackup), session-pause.c
 * (DoSnapshotSet's pause points) and commit.c (the commit child). Others use daemon/session.h.
 */

#include "daemon/access.h"
#include "daemon/bus.h"
#include "daemon/connection.h"
#include "daemon/log.h"
#include "daemon/manager.h"
#include "daemon/session.h"
#include "daemon/shadows.h"
#include "daemon/writer.h"
#include "lib/common.h"

typedef struct StatusGather StatusGather;

/* session.c */
void slot_done(Slot *slot);
/* The operation in flight: begun with its request, which op_reply() answers (busy no more). */
void op_begin(Session *s, sd_bus_message *msg, SeqCall call);
void op_reply(Session *s, int32_t hr, const char *msg);
/* The session no longer has the machine's snapshot set in creation: a commit helper waiting for
 * it, not told to go, is killed and reaped. */
void creating_done(Session *s);
/* Deletes what the session's set made (auto-release) and sends BackupShutdown, then the session
 * goes from the manager's list. */
void session_shutdown(Session *s);

/* Method plumbing: every session method starts with the session id. NULL (error set) when the
 * connection may not make the call, the session is not its own, or the call is out of sequence. */
Session *session_begin_call(sd_bus_message *msg, void *userdata, SeqCall call, sd_bus_error *error);
#define BEGIN(call)                                                           \
        Session *s = session_begin_call(msg, userdata, call, error);         \
        if (!s)                                                               \
                return -EINVAL;

/* session-dispatch.c */
typedef bool (*SlotRule)(vss_event e, const SlotFacts *f, int level);
SlotFacts slot_facts(const Slot *slot);
/* The writer's admin view follows its slot. */
void note_status(Session *s, Slot *slot);
/* Records a writer's answer (or the lack of one) to an event. */
void slot_answer(Session *s, Slot *slot, vss_event e, int32_t failure, int32_t code, const char *msg);
/* Sends one event (or, with a gather, a Ping) to slot idx. Returns 1 when a call is in flight,
 * 0 when the writer is gone and its answer was recorded at once. */
int call_slot(Session *s, size_t idx, vss_event event, StatusGather *g);
/* Sends one event to slot idx with no answer expected or waited for (its status stays). */
void notify_slot(Session *s, size_t idx, vss_event event);
/* A gather's Ping of a subscribed writer (no slot): 1 when in flight. */
int writer_ping(Session *s, Writer *w, size_t idx, StatusGather *g);
/* Sends event to every slot the rule picks, in parallel; then next runs once all answered (at once
 * if none was sent). */
void send_batch(Session *s, vss_event event, SlotRule rule, int level, void (*next)(Session *));
/* As send_batch(), with during(s) run once the event is out and before next can run: what vssd
 * does while the writers handle it. */
void send_batch_during(Session *s, vss_event event, SlotRule rule, int level, void (*next)(Session *),
                       void (*during)(Session *));
/* Abort, at once, to every writer of an aborting set that is due one (abort_due()). Only while a
 * batch is pending: the Abort answers join it, so the sequence goes on once all are in. */
void abort_due_writers(Session *s);

/* session-status.c: a gather's Ping answered (or not), or lost with the bus. */
void gather_answered(StatusGather *g, size_t idx, bool answered);
void gather_lost(StatusGather *g);

/* session-document.c */
/* The document's records of a slot's components: in a backup those of this writer instance, in a
 * restore those of its writer class (the instance that made the backup is long gone). */
bool record_of_slot(const Session *s, const Slot *slot, const vss_bc_component *c);
/* A component as events name it: "logical_path/name", or "name" at the top. */
char *component_key(const char *logical_path, const char *name);
/* "logical_path/name" of each record of the slot, NULL-terminated; NULL when none (or ENOMEM). */
char **slot_record_keys(Session *s, const Slot *slot);
/* The slot's records as JSON in *ret (NULL when none). */
int slot_records(Session *s, const Slot *slot, char **ret);
/* A writer's annotations of its records, taken only where the event allows them: the backup stamp
 * and writer files from PrepareForBackup through PostSnapshot, restore target and failure messages
 * in restores. */
void slot_annotate(Session *s, Slot *slot, vss_event e, const char *json);
/* A record for every component of the writer (a backup outside component mode); false when the
 * document is full. */
bool slot_record_all(Session *s, const Slot *slot);
/* PreRestore: the slot's components selected for restore, and whether it takes part. -ENOMEM only. */
/* Before PostRestore: a writer that restores only if a replace fails gets it only then. */
void slot_post_restore_wanted(Session *s, Slot *slot);
int slot_select_for_restore(Session *s, Slot *slot);

/* snapshot-set.c */
#define GAVE_WAY "this session's snapshot set, in creation, gave way to another's (a user's set does to root's, " \
                 "and to anyone's once user_set_idle_ms old)"
/* Aborts a user's set in creation for root's, or marks it to abort when its step ends; true when
 * it is no longer in creation. */
bool set_give_way(Session *h);
/* Leaves out the writers that have nothing in the set (writer_takes_part): they stay Stable with
 * the note "not involved" and get no event of it, so their failures cannot fail it. */
void choose_participants(Session *s);
/* Whether uid is root's (or vssd's own); whether slot's writer runs as such a uid, and whether it
 * takes part in the set of the volumes added so far. */
bool slot_trusted(const Slot *slot);
bool slot_takes_part(const Session *s, const Slot *slot);
bool slot_may_see_volume(const Session *s, const Slot *slot, size_t i);
/* The set is journalled as 'creating' before anything is made (the copy-ahead included): a crash
 * leaves a record for the restarted vssd to clean up. 0, or <0 with the abort requested. */
int set_register(Session *s);
/* The set's directories, where its shadows go: made just before something is (the copy-ahead,
 * the commit), so a set cut short before leaves none. 0, or <0 with the abort requested. */
int set_dirs_make(Session *s);
/* Deletes what the set made, in the background; then next(s) (may be NULL). */
void set_delete(Session *s, void (*next)(Session *s));

/* session-stages.c */
/* Aborts the set in creation with hr (the first reason counts): the commit child is killed and the
 * writers due Abort get it now. */
void request_abort(Session *s, int32_t hr, const char *why);
/* A failure to write the state directory: a full one is the requester's to hear about as such,
 * not as a provider error. */
void state_abort(Session *s, int r, const char *what);
/* The set is dropped (in the background), then Abort to the writers; the operation (AbortBackup,
 * or the PrepareForBackup it waited for) is already begun or answered. */
void abort_backup_start(Session *s);
/* AbortBackup's work where the session is (abort_backup_action()), asked by its requester (msg,
 * answered once done when this returns 1) or by vssd (msg NULL); a set in flight fails with hr,
 * why. 0 when nothing waits to be answered. */
int abort_backup_do(Session *s, sd_bus_message *msg, int32_t hr, const char *why);
/* DoSnapshotSet from its first stage, pausing at the points in pause_flags (VSS_PAUSE_*; 0: none);
 * msg is answered when the set ends. */
void dss_start(Session *s, sd_bus_message *msg, uint32_t pause_flags);
/* The stages go on from where they stopped (a pause). */
void dss_resume(Session *s);
/* When the first freeze window of a frozen writer ends (the first Freeze plus its window,
 * CLOCK_MONOTONIC usec); UINT64_MAX when no writer is frozen. */
uint64_t frozen_window_end_usec(const Session *s);
/* The frozen writers whose window has ended fail (they thaw themselves): FailedAtFreeze with
 * VSS_E_WRITERERROR_TIMEOUT and why. True when there was one. */
bool frozen_windows_run_out(Session *s, const char *why);
/* Whether the slot's Freeze→Thaw window has run out. */
bool slot_window_run_out(const Session *s, const Slot *slot);
/* StartSnapshotSet: the set's commit helper starts, to wait (loaded) for its job at DoSnapshotSet;
 * a failure is only logged: it starts then, as it would without this. */
void set_helper_start(Session *s);

/* session-pause.c */
/* The pause points of the set about to start. */
void pause_start(Session *s, uint32_t flags);
/* The stages reached point: true when the set pauses there (they stop until it continues or
 * aborts); false when it was not asked for or was passed already. */
bool pause_at(Session *s, uint32_t point);
/* An abort was requested: a paused set goes on, to Abort. True when it was paused. */
bool pause_abort_check(Session *s);
/* slot's writer is gone: a frozen one aborts a set paused before the commit. */
void pause_writer_gone(Session *s, Slot *slot);
/* The set ended: a WaitPaused waiting learns it, the pause's watch goes. */
void pause_done(Session *s);
/* What the pause holds, when the session is freed. */
void pause_free(Session *s);

/* commit.c */
/* Flush-and-hold: exec providers that ask for it, and file-provider volumes hold.c chose. */
bool volume_held(const Volume *v);
/* The provider commit, in the commit helper (`vssd --commit-helper`, s the Session it read from
 * its job): flush-and-hold volumes first, under the freeze lease commit_child_prepare() made
 * before the go (the helper thaws at the hold deadline or if we die), then the others. */
typedef struct FreezeLease FreezeLease;
FreezeLease *commit_child_prepare(Session *s, int fd);
_Noreturn void commit_child(Session *s, int fd, FreezeLease *lease);
