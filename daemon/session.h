/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A requester's session: one backup or restore, its per-writer Slots and its snapshot set's
 * Volumes. Its code is session.c and the files session-internal.h lists. */

#include <limits.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <vss/backup.h>

#include "daemon/commit.h"
#include "daemon/list.h"
#include "providers/provider.h"
#include "daemon/sequence.h"
#include "lib/common.h"

typedef struct Manager Manager;
typedef struct Connection Connection;
typedef struct Writer Writer;
typedef struct Session Session;

typedef struct Slot {
        Writer *writer;           /* NULL once it is gone */
        vss_id class_id, instance_id;
        char name[VSS_MAX_NAME + 1];
        vss_app_level level;
        uint32_t window_ms;
        uint64_t freeze_sent_usec; /* CLOCK_MONOTONIC: its own Freeze→Thaw window starts here */
        vss_writer_metadata *metadata;
        size_t metadata_bytes;    /* its document's length, counted against its uid's budget */
        uid_t owner_uid;          /* the writer connection's uid: recorded in the document */
        StatusSlot status;
        bool identified;
        bool selected;            /* takes part past PrepareForBackup */
        bool left_out;            /* not involved in the snapshot set (writer_takes_part): no
                                   * PrepareForSnapshot..PostSnapshot, BackupComplete or Abort */
        bool unheard;             /* a user's writer not involved in the backup (PrepareForBackup):
                                   * it gets no event of it, nor status queries */
        uid_t uid;                /* the writer's user */
        char **components;        /* selected components, "logical_path/name" */
        size_t n_components;
        bool got_prepare_snapshot, got_freeze;
        bool got_prepare_backup, got_post_snapshot, got_abort;
        bool inflight;
        vss_event inflight_event, last_event;
        uint64_t inflight_since;
} Slot;

typedef struct Volume {
        vss_id shadow_id;
        char *path;
        char *shadow_path;
        const Provider *provider;
        /* The file provider's flush-and-hold (hold.c): held, or why not; the copy-ahead's index
         * (a memfd the commit child inherits); whether the storage is on the held filesystem. */
        bool held, storage_shared, precopied;
        int index_fd;
        char *not_held_why;
} Volume;

typedef enum Stage {
        STAGE_NONE,
        STAGE_PREPARE_SNAPSHOT,
        STAGE_PRECOPY,  /* the file provider copies held volumes ahead */
        STAGE_FREEZE,
        STAGE_COMMIT,
        STAGE_THAW,
        STAGE_POST_SNAPSHOT,
        STAGE_ABORT,
        STAGE_FINISH,
} Stage;

struct Session {
        unsigned n_ref;
        Manager *manager;
        Connection *connection;   /* NULL once the requester is gone */
        uid_t requester_uid;      /* the requester's user, for as long as the session lasts */
        vss_id id;
        SessionPhase phase;
        bool restore, component_mode, status_closed, busy, dead, shut_down;
        bool context_set; /* SetContext may be called once */
        uint32_t context;
        vss_backup_type backup_type;
        bool bootable, partial;

        Slot *slots;
        size_t n_slots;

        vss_id set_id;
        Volume volumes[VSS_MAX_VOLUMES];
        size_t n_volumes;
        bool set_registered, set_committed;
        bool set_made; /* this session's set was committed, even if deleted since: BackupShutdown names it */

        /* The operation in flight. */
        SeqCall op;
        sd_bus_message *request;  /* to answer when the operation ends */
        sd_bus_message *release_request; /* ReleaseSession, answered once BackupShutdown is done */
        unsigned pending;
        void (*next)(Session *s);
        Stage stage;
        int level;
        int32_t abort_hr;
        char abort_msg[1024];
        bool abort_after_op;      /* AbortBackup came during PrepareForBackup: abort when it ends */
        bool gives_way;           /* a user's set in creation that root's requester wants gone */
        Commit commit;            /* the copy-ahead or provider commit child of the set */
        uint64_t freeze_start_usec;
        size_t hold_mounts;       /* filesystems journalled as about to be held (0: no journal) */
        uint32_t freeze_cap_ms;   /* bound on a later level's Freeze deadline */
        bool gathering;           /* a GatherWriterStatus is in flight */
        bool armed;               /* the set in flight is armed for Freeze (session-stages.c) */
        /* DoSnapshotSetPaused (session-pause.c): the points asked for and those reached
         * (VSS_PAUSE_*), the one it is paused at now (0: not paused), a WaitPaused waiting for
         * the next, and the watch of the freeze windows while paused. */
        bool pausable;
        uint32_t pause_flags, pause_reached, paused;
        sd_bus_message *pause_waiter;
        sd_event_source *pause_window;
        /* The backup components document: component records kept here, header filled in on save. */
        vss_backup_document *doc;
        uint64_t created_usec;    /* when the set was committed */
        uint64_t set_started_usec; /* its StartSnapshotSet (monotonic) */

        LIST_FIELDS(Session, sessions);
};

Session *session_new(Connection *c);
Session *session_ref(Session *s);
Session *session_unref(Session *s);
/* The requester released it or disconnected: abort what runs, shut down, free when done. */
void session_release(Session *s, sd_bus_message *request);
void session_writer_gone(Session *s, Writer *w);
/* vssd is stopping: drop the session without talking to anyone. */
void session_abandon(Session *s);
Session *session_lookup(Connection *c, const char *id, sd_bus_error *error);
/* A slot's status note: "aborted", "not involved" or "". */
const char *slot_note(const Slot *slot);
