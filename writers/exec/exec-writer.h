/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * vss-writer-exec's parts: the command line (main.c), one event from its plan to its result
 * (event.c), the hooks' environment and control file (control.c), the compatibility plans of
 * qemu-ga and VMware Tools (compat.c), and the hook runner (runner.c, on lib/basic/spawn.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vss/writer.h>

#define HOOK_EXIT_RETRYABLE 75
#define MSG_MAX 1023

/* Compatibility modes: which hooks run, with which argument, in which order. */
typedef enum compat_mode {
        COMPAT_NONE,
        COMPAT_QEMU_GA,
        COMPAT_VMWARE,
} compat_mode;

/* main.c: the command line. */
extern const char *arg_name;
extern const char *arg_hooks;
extern compat_mode arg_compat;
extern unsigned arg_hook_timeout_ms;
extern bool arg_hold;

/* The index of s in a table of names by enum value, or -1. */
static inline int table_lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (table[i] && strcmp(table[i], s) == 0)
                        return (int) i;
        return -1;
}

/* event.c: runs the hooks of an event; returns the callback's result. info is NULL for Identify. */
bool run_event(vss_writer *w, vss_event event, const vss_event_info *info);

/* control.c: the hooks' environment and the VSS_CONTROL file. */
typedef struct event_env {
        char *control; /* the control file's path; NULL for Identify */
        char **env;    /* the hooks' environment (its strings are in vars) */
        char *vars[10];
} event_env;
/* Builds the environment of the event's hooks, and its control file. 0, or the failure with msg. */
int32_t event_env_build(event_env *e, vss_writer *w, vss_event event, const vss_event_info *info,
                        char msg[MSG_MAX + 1]);
/* Removes the control file and frees the rest. */
void event_env_done(event_env *e);
/* Reads the control file the hooks wrote (its first 64 KiB) and applies its lines. */
void control_apply(vss_writer *w, vss_event event, const char *path);

/* compat.c: what an event does in the current mode. */
typedef enum plan_source {
        PLAN_NOTHING,
        PLAN_DIRECTORY, /* the directory's hooks, read now */
        PLAN_FROZEN,    /* the hooks that got freeze */
} plan_source;

typedef struct plan {
        plan_source source;
        const char *arg;
        bool reverse, run_all, record;
} plan;

plan plan_for(vss_event event);
/* The hooks of the directory, in byte order of their names. Returns -1 with errno set. */
int list_hooks(char ***ret);
void free_names(char **names, int n);
/* The hooks that got "freeze" and succeeded (compat modes), in the order they ran; what Thaw and
 * Abort undo. frozen_take() hands them over (*ret_n of them) and forgets them. */
void frozen_clear(void);
bool frozen_add(const char *name);
char **frozen_take(size_t *ret_n);
/* VMware: a failed freeze sends freezeFail at once to the scripts that got freeze, in reverse
 * order (their failures are only logged). */
void vmware_freeze_failed(char **env);

/* runner.c: one hook at a time, and the hooks holding a session (--hold). */
typedef struct hook_proc hook_proc;
/* Runs one hook to its end (or, with hold, until it is ready: *held then says so and the hook
 * joins the holds). Returns its failure (0 on success), sets *code and msg. */
int32_t run_hook(const char *path, const char *name, const char *arg, char **env, bool hold, bool *held, int *code,
                 char msg[MSG_MAX + 1]);
/* The held hook of that name (any with NULL), taken from the holds; NULL when none. */
hook_proc *hold_take(const char *name);
/* Ends a hold: closes the hook's stdin and waits for it (up to the hook timeout, then kills it);
 * its exit status is its result for arg. */
int32_t hold_release(hook_proc *hp, const char *arg, int *code, char msg[MSG_MAX + 1]);
void holds_kill_all(void);
