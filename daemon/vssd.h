/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vssd's objects: the Manager (one), Connections (one per client), Writers (subscribed),
 * Sessions (one per requester backup or restore) and their per-writer Slots. */

#include <limits.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <vss/backup.h>

#include "daemon/child.h"
#include "daemon/list.h"
#include "daemon/provider.h"
#include "daemon/registry.h"
#include "daemon/sequence.h"
#include "lib/common.h"

typedef struct Manager Manager;
typedef struct Connection Connection;
typedef struct Writer Writer;
typedef struct Session Session;
typedef struct ShadowJob ShadowJob;
typedef struct ExposeOp ExposeOp;

#include "daemon/session.h"

/* Admin verbs a config grants to users and groups; root holds them all. */
typedef enum Right {
        RIGHT_LIST,     /* ListWriters, ListProviders, ListShadows, GetSnapshotProperties, ListExposures */
        RIGHT_CREATE,   /* backup sessions: InitializeForBackup, StartSnapshotSet, DoSnapshotSet, ... */
        RIGHT_DELETE,   /* DeleteShadows */
        RIGHT_RESTORE,  /* InitializeForRestore, PreRestore, PostRestore */
        _RIGHT_MAX,
} Right;

typedef struct RightHolders {
        uid_t *uids;
        size_t n_uids;
        gid_t *gids;
        size_t n_gids;
} RightHolders;

const char *right_name(Right r);

/* A writer class id and the uid it belongs to. */
struct ClassBinding {
        vss_id class_id;
        uid_t uid;
};

typedef struct Config {
        Timeouts timeouts;
        uint32_t hold_window_ms;  /* flush-and-hold: how long filesystems may stay frozen */
        uint32_t max_shadows_per_volume;
        uint64_t file_budget_bytes; /* storage the file provider's shadows may take; 0: no limit */
        /* Flush-and-hold for the file provider: "hold_filesystems" ("all", or mount points) less
         * "hold_exclude"; what is captured in memory while the storage's filesystem is held; where
         * the file provider's shadows go (NULL: the state directory). */
        bool hold_all;
        char **hold_filesystems, **hold_exclude;
        size_t n_hold_filesystems, n_hold_exclude;
        uint64_t file_hold_memory_bytes;
        char *file_storage_dir;
        char *backup_group;
        RightHolders rights[_RIGHT_MAX];
        /* Per-client limits; root is exempt (it could stop vssd anyway). */
        uint32_t max_connections_per_uid;
        uint32_t max_sessions_per_uid;
        uint32_t max_calls_per_second; /* sustained rate of a connection's method calls */
        uint32_t max_call_burst;       /* calls a connection may make at once */
        uint32_t max_message_bytes;    /* an incoming message's declared size */
        uint64_t max_input_bytes_per_uid; /* incoming messages held in part, over a uid's connections */
        uint32_t max_queued_messages;  /* outgoing messages a connection leaves unread before it is closed */
        /* "writer_classes": class ids bound to a user by the administrator, not first come. */
        struct ClassBinding *classes;
        size_t n_classes;
} Config;

int config_load(Config *c, const char *path, char **ret_error);
void config_done(Config *c);

struct Manager {
        sd_event *event;
        Config config;
        char *socket_path;
        char *state_dir;
        char *shadow_dir;
        int listen_fd;
        sd_event_source *listen_source;
        Registry *registry;

        Connection *connections;
        unsigned n_connections;
        Writer *writers;
        unsigned n_writers;
        Session *sessions;
        /* Writer class ids and the uid each is bound to (config bindings aside), as the registry keeps them. */
        struct ClassBinding *bindings;
        size_t n_bindings;
        /* The session whose snapshot set is in creation: one machine-wide. */
        Session *creating;
        /* Slow work in child processes: shadows being deleted, exposures being mounted. */
        Children children;
        ShadowJob *jobs;
        ExposeOp *exposing;
        bool stopping;
        /* Set once vssd is stopping: buses get until then to send what they hold. */
        uint64_t stop_deadline_usec;
};

struct Connection {
        Manager *manager;
        sd_bus *bus;
        struct ucred cred;
        unsigned rights;    /* 1 << Right, from the peer's uid and its groups at connect time */
        bool may_request;   /* holds create or restore: may open sessions */
        bool over_limit;    /* past max_connections_per_uid: its first call is refused, then it is closed */
        double tokens;      /* call rate bucket */
        uint64_t tokens_usec;
        Writer *writer;     /* at most one per connection */
        unsigned n_sessions;
        LIST_FIELDS(Connection, connections);

        /* The client's socket: vssd reads it (connection-io.c), passing each message on to the
         * bus through a pipe once its size is allowed; the bus writes to the socket itself. */
        int fd;
        int pipe_r, pipe_w;     /* pipe_r belongs to the bus */
        sd_event_source *io_source;
        sd_event_source *time_source;
        bool authenticated;     /* the SASL lines are over (BEGIN), messages follow */
        size_t auth_bytes, auth_line;
        uint8_t header[16];     /* the next message's fixed header, read but not yet passed on */
        size_t header_len;
        uint64_t in_left;       /* bytes of the current message still to pass on */
        uint64_t in_held;       /* its size, counted against the uid until the bus has read it */
        unsigned busy;          /* inside sd_bus_process(): freeing waits */
        bool closing, gone;
};

struct Writer {
        Manager *manager;
        Connection *connection;
        vss_id class_id;
        vss_id instance_id;
        char name[VSS_MAX_NAME + 1];
        char instance_name[VSS_MAX_NAME + 1];
        vss_app_level level;
        uint32_t window_ms;
        /* Admin view: last known status, the session it comes from and when. */
        StatusSlot last;
        char last_note[128];
        vss_id last_session;
        uint64_t last_usec;
        LIST_FIELDS(Writer, writers);
};


/* manager.c */
int manager_new(const char *socket_path, const char *state_dir, Config *config, Manager **ret);
Manager *manager_free(Manager *m);
int manager_start(Manager *m);
void writer_note_status(Writer *w, const Session *s, const Slot *slot);
/* A slot's status note: "aborted", "not involved" or "". */
const char *slot_note(const Slot *slot);

/* Ends a connection: its writer and sessions go, its bus is closed (after a bounded flush while
 * vssd stops). Inside the connection's own dispatch the memory is freed once that returns. */
void connection_free(Connection *c);

/* connection-io.c: vssd reads each client's socket itself and passes its messages on to the bus,
 * so their sizes, the replies piling up and a uid's total are checked before anything is held. */
/* Before sd_bus_start(): the bus reads a pipe vssd fills and writes to the socket fd (taken). */
int connection_io_setup(Connection *c, int fd);
/* After sd_bus_start(): the connection's io and timer sources on the manager's event loop. */
int connection_io_start(Connection *c);
/* At the connection's end: while vssd stops, lets the bus send what it holds until the deadline. */
void connection_io_stop(Connection *c);

/* Refuses with VSS_E_ACCESSDENIED, naming the uid and the right, unless the connection holds it. */
int check_right(Connection *c, Right right, sd_bus_error *error);

int reply_error(sd_bus_error *error, int32_t hr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* deletion.c: deleting shadows in child processes. Each shadow is marked 'deleting' in the
 * registry first, unexposed, removed by its provider, then its record goes. A shadow the provider
 * cannot remove is unmarked (never forgotten); one already gone loses its record. done() is
 * called once every shadow is deleted or kept, possibly before shadows_delete() returns. When
 * vssd stops first, cancel(userdata) is called instead (the marks stay for the next start). */
typedef void (*DeleteDone)(Manager *m, unsigned deleted, unsigned kept, void *userdata);
void shadows_delete(Manager *m, const ShadowRecord *recs, size_t n, const vss_id *set_id, DeleteDone done,
                    void (*cancel)(void *userdata), void *userdata);
/* shadows_delete() on every shadow of a set (in creation or not), then, when none was kept, the
 * set's record and directory. -ENOENT (done() not called) when the set is unknown. */
int set_remove(Manager *m, const vss_id *set_id, DeleteDone done, void (*cancel)(void *userdata), void *userdata);
/* vssd stops: every child is killed (what it was deleting stays marked), nothing more starts. */
void deletions_stop(Manager *m);
void shadow_set_dir_remove(Manager *m, const vss_id *set_id);
/* expose.c: unmounts every exposure of a shadow (before it is deleted). */
void shadow_unexpose_all(Manager *m, const vss_id *shadow_id);
/* Thaws every filesystem in the frozen journal (ours, left by a lease) and clears it. */
/* The lease file of a set's freezes: STATE_DIR/freeze-SETID.lease. */
int freeze_lease_file(Manager *m, const vss_id *set_id, char *buf, size_t size);
/* Settles the journalled freezes of one set (or, set_id NULL, of all) whose commit child is gone:
 * thaws only what a killed helper left frozen, retires the journal rows. */
void frozen_journal_recover(Manager *m, const vss_id *set_id);
#define FREEZE_SETTLE_TIMEOUT_MS 5000

#define log_info(...) log_full("", __VA_ARGS__)
#define log_warn(...) log_full("warning: ", __VA_ARGS__)
#define log_err(...) log_full("error: ", __VA_ARGS__)
void log_full(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Method handlers (bus.c holds the table). */
#define VSS_METHODS(X)                                                                            \
        X(subscribe) X(unsubscribe) X(create_session) X(release_session) X(list_writers)         \
        X(list_providers) X(list_shadows) X(get_snapshot_properties) X(delete_shadows)           \
        X(initialize_for_backup) X(initialize_for_restore) X(set_context) X(set_backup_state)    \
        X(gather_writer_metadata) X(add_component) X(start_snapshot_set) X(add_to_snapshot_set)  \
        X(prepare_for_backup) X(do_snapshot_set) X(set_backup_succeeded) X(backup_complete)      \
        X(abort_backup) X(pre_restore) X(post_restore) X(cancel) X(gather_writer_status)         \
        X(expose_shadow) X(unexpose_shadow) X(list_exposures) X(set_component_property)           \
        X(save_as_document) X(explain_volume)
#define VSS_DECLARE_METHOD(n) int method_##n(sd_bus_message *msg, void *userdata, sd_bus_error *error);
VSS_METHODS(VSS_DECLARE_METHOD)
extern const sd_bus_vtable coordinator_vtable[];
