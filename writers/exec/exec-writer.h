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

/* event.c: an event's hooks, from its plan to its answer. job_event() is the callback of every
 * event but Identify: it answers later (vss_writer_defer), running the hooks from the main loop,
 * one event after the other; an Abort stops the hook of a Freeze still running. When the event
 * cannot be deferred (Identify, the writer's own Abort) the hooks run at once, and run_event()
 * returns the callback's result. jobs_stop_all() ends what runs, at exit, never half-way: a
 * Freeze's hook is stopped and the abort hooks undo what the freeze began (the Freeze goes
 * unanswered); the hooks of a Thaw or an Abort all run (the one running is waited for) and it is
 * answered. Events waiting behind are dropped. */
bool job_event(vss_writer *w, const vss_event_info *info);
bool run_event(vss_writer *w, vss_event event, const vss_event_info *info);
void jobs_stop_all(vss_writer *w);

/* control.c: the hooks' environment and the VSS_CONTROL file. */
typedef struct event_env {
        char *control; /* the control file's path; NULL for Identify, and until a hook runs */
        char **env;    /* the hooks' environment (its strings are in vars); NULL until a hook runs */
        char *vars[15];
} event_env;
/* Builds the strings of the event's hooks' environment (the event's information is there only in
 * the callback). 0, or the failure with msg. */
int32_t event_env_build(event_env *e, vss_writer *w, vss_event event, const vss_event_info *info,
                        char msg[MSG_MAX + 1]);
/* Before a hook runs: the control file and the environment, once per event (an event with no
 * hook makes no file: two file operations in /tmp fewer per event). 0, or the failure:
 * then there is no environment, unless must_run (Thaw and Abort, which undo a freeze whatever
 * else fails): that one has VSS_CONTROL unset, and the failure is still returned. */
int32_t event_env_ready(event_env *e, bool must_run, char msg[MSG_MAX + 1]);
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
/* Whether the hook at path (followed) may be run: nobody but root and this writer's user may
 * change it. 0, or VSS_E_WRITERERROR_NONRETRYABLE with why in msg (MSG_MAX + 1 bytes). */
int32_t hook_trusted(const char *path, const char *name, char *msg);
void free_names(char **names, int n);
/* The hooks that got "freeze" and succeeded (compat modes), in the order they ran; what Thaw and
 * Abort undo. frozen_take() hands them over (*ret_n of them) and forgets them. */
void frozen_clear(void);
bool frozen_add(const char *name);
char **frozen_take(size_t *ret_n);

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
/* The same from the main loop. done is called once the hook ended (exited, or was killed after
 * its timeout or hook_cancel()) or, in hold mode, said it is ready; then hook_async_result()
 * takes it. */
typedef void (*hook_done_fn)(hook_proc *hp, bool ready, void *userdata);
hook_proc *hook_start_async(const char *path, const char *name, const char *arg, char **env, bool hold,
                            hook_done_fn done, void *userdata, char msg[MSG_MAX + 1]);
/* Lets a held hook go (closes its stdin) and watches it to its end; false when it died while
 * holding or cannot be watched: then hold_release() ends it. */
bool hold_release_async(hook_proc *hp, hook_done_fn done, void *userdata);
/* SIGTERM to the hook's group, SIGKILL after 2 s; done follows. */
void hook_cancel(hook_proc *hp);
/* The hook's result, as run_hook()'s; ready: it joins the holds, else it is freed. */
int32_t hook_async_result(hook_proc *hp, const char *arg, bool ready, int *code, char msg[MSG_MAX + 1]);
/* Ends a watched hook at once (SIGTERM, SIGKILL after 2 s; blocking) and frees it: at exit. */
void hook_stop_now(hook_proc *hp);
/* Waits for a watched hook to end (the main loop runs no more), up to the hook timeout, as
 * run_hook() would: its result, and it is freed. */
int32_t hook_wait(hook_proc *hp, const char *arg, int *code, char msg[MSG_MAX + 1]);
