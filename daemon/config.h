/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vssd's configuration (a JSON file, read through the strict layer lib/jsonv.h): timeouts,
 * flush-and-hold, storage, rights, per-client limits, writer class bindings and exec providers.
 * config_load() returns 0, -ENOMEM, or -EINVAL with the reason (naming the key) in *ret_error;
 * on failure nothing stays allocated. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <vss/types.h>

#include "daemon/sequence.h"
#include "providers/provider.h"

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
        uint32_t user_set_idle_ms; /* a user's set this long in creation gives way to anyone's */
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
        /* Rights the file left out, which go to backup_group: resolved by config_backup_group() at
         * the first non-root connection, not at load, so an idle vssd never loads the NSS modules. */
        unsigned backup_group_rights;
        bool backup_group_resolved;
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
        /* "providers": the exec providers, with the compiled-in ones (the Manager takes them over). */
        Providers providers;
} Config;

/* The largest configuration file read. */
#define CONFIG_MAX_BYTES (1024 * 1024)

int config_load(Config *c, const char *path, char **ret_error);
void config_done(Config *c);
/* Adds backup_group's gid to the rights left out (once; nothing when the group does not exist).
 * -ENOMEM: the group got only some of them. */
int config_backup_group(Config *c);
