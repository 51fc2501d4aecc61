/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Providers cut the copies. They are compiled into vssd (file, btrfs) or configured (exec).
 * create() runs in the commit child process (while writers are frozen), so it must not touch
 * vssd's event loop, bus or database. */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct Provider Provider;

/* What create() is asked to make. */
typedef struct ShadowRequest {
        const char *source;       /* canonical path of the volume */
        const char *set_id;
        const char *shadow_id;
        const char *shadow_path;  /* where vssd expects it (providers that decide print their own) */
        uint64_t deadline_usec;   /* CLOCK_MONOTONIC; 0: none. Past it, give up with -ETIME */
        /* Called (if set) as soon as a provider that decides the location knows it, before
         * create() returns; again if it changes. */
        void (*report_location)(const char *location, void *userdata);
        void *userdata;
        /* When set, a provider with finish() may leave making the shadow durable to it: create()
         * stores what finish() needs here (NULL: nothing left), so the caller can let writers go
         * on first (issue 14: no sync inside the freeze window). */
        void **ret_pending;
        /* When set, a failing create() may say why here, for people (else strerror() is all). */
        char *err;
        size_t err_size;
} ShadowRequest;

struct Provider {
        const char *name;
        const char *id;           /* a fixed UUID */
        const char *type;         /* "software", "system", "hardware" */
        const char *description;
        const char *supports_what; /* what it can shadow, for people */
        bool atomic;              /* all volumes of a set are cut at one instant */
        bool hold;                /* needs the filesystem frozen (flush-and-hold) while it creates */
        bool instant;             /* create() cuts its volume at one instant by itself (a snapshot
                                   * ioctl): in a set with held volumes it runs while they are held,
                                   * so the set is cut inside one window */
        bool named_only;          /* used only when a requester names it */
        /* For exec providers: the commands (run with /bin/sh -c). */
        const char *create_cmd, *delete_cmd, *expose_cmd;
        /* 0 when the provider can shadow this (canonical) path, -EOPNOTSUPP otherwise. */
        int (*supports)(const Provider *p, const char *path);
        /* Where the shadow of source goes, when not under vssd's state directory (NULL: there). */
        int (*shadow_path)(const char *source, const char *set_id, const char *shadow_id, char **ret);
        /* Makes the shadow. *ret_location: where it is, when the provider decides (else NULL). */
        int (*create)(const Provider *p, const ShadowRequest *req, char **ret_location);
        /* Makes a shadow durable that create() left pending (see ShadowRequest.ret_pending), and
         * frees pending. Until it succeeds the shadow is not complete. NULL: create() never defers. */
        int (*finish)(const Provider *p, void *pending);
        /* Deletes a shadow (of set set_id, its id shadow_id, both as strings); a missing one is
         * success. */
        int (*remove)(const Provider *p, const char *set_id, const char *shadow_id, const char *shadow_path);
        /* Mounts the shadow read-only at `at` its own way; NULL or -EOPNOTSUPP: vssd does it
         * (a bind mount of a directory, a loop mount of an image). */
        int (*expose)(const Provider *p, const char *shadow_path, const char *at);
        /* The storage a shadow of source would take where this provider keeps its shadows, for
         * storage budgets; NULL when its shadows take none that vssd budgets (snapshots kept by
         * the filesystem or by an external command). */
        int (*estimate)(const Provider *p, const char *source, uint64_t *ret_bytes);
};

/* Runs cmd with /bin/sh -c in its own process group, env added; 0 on exit 0 (with the last
 * line of its stdout in *ret_line if asked), -ETIME past the deadline (killed), -EIO otherwise. */
int provider_run_command(const char *cmd, const char *const *env, uint64_t deadline_usec, char **ret_line);
/* The same, calling on_line with every complete non-empty line of its stdout as it comes. */
int provider_run_command_lines(const char *cmd, const char *const *env, uint64_t deadline_usec, char **ret_line,
                               void (*on_line)(const char *line, void *userdata), void *userdata);
/* The process group of the command provider_run_command() runs now (0: none), for a signal
 * handler that must take it along. */
extern volatile sig_atomic_t provider_command_group;

extern const Provider provider_file;
extern const Provider provider_btrfs;

#define PROVIDERS_MAX_EXEC 16

/* The providers one vssd uses: the compiled-in ones and the exec providers its configuration
 * names. Owned by whoever loaded the configuration (vssd's Manager); zero-initialized it holds
 * the compiled-in ones alone. */
typedef struct Providers {
        Provider exec[PROVIDERS_MAX_EXEC];
        size_t n_exec;
} Providers;

/* Registers an exec provider from the configuration. -EEXIST, -E2BIG (too many), -ENOMEM. */
int providers_add_exec(Providers *ps, const char *name, const char *create_cmd, const char *delete_cmd,
                       const char *expose_cmd);
/* Forgets the exec providers (the compiled-in ones stay). */
void providers_done(Providers *ps);

/* Every provider, compiled-in first. */
size_t providers_count(const Providers *ps);
const Provider *providers_get(const Providers *ps, size_t i);

const Provider *provider_find(const Providers *ps, const char *name);
/* The provider to use for a path when the requester names none. */
const Provider *provider_choose(const Providers *ps, const char *path);

/* The mount point (and its source device) holding path: mountinfo_find() (providers/mountinfo.h)
 * into buffers. */
int mount_of(const char *path, const char *fstype, char *ret_mount, size_t mount_len, char *ret_device,
             size_t device_len);
