/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec: one event, from its plan (compat.c) through its hooks (runner.c) to the status
 * the writer reports: the first failure, with its code and message. */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lib/basic/log.h"
#include "writers/exec/exec-writer.h"

typedef struct event_result {
        int32_t failure;
        int code;
        char msg[MSG_MAX + 1];
        size_t ran;
} event_result;

/* Keeps the first failure. */
static void result_note(event_result *res, int32_t r, int code, const char msg[MSG_MAX + 1]) {
        if (r != 0 && res->failure == 0) {
                res->failure = r;
                res->code = code;
                memcpy(res->msg, msg, sizeof res->msg);
        }
}

/* Runs the hooks names[0..n) in the plan's order, or ends their holds (Thaw, Abort). */
static void run_plan(const plan *pl, char **names, int n, char **env, bool hold, bool release, event_result *res) {
        char hmsg[MSG_MAX + 1];
        int hcode;

        for (int i = 0; i < n; i++) {
                const char *hook = names[pl->reverse ? n - 1 - i : i];
                hook_proc *hp = release ? hold_take(hook) : NULL;
                char path[PATH_MAX];
                int32_t r;
                bool held = false;

                if (hp)
                        r = hold_release(hp, pl->arg, &hcode, hmsg);
                else if (snprintf(path, sizeof path, "%s/%s", arg_hooks, hook) >= (int) sizeof path) {
                        r = VSS_E_WRITERERROR_NONRETRYABLE;
                        hcode = 127;
                        snprintf(hmsg, sizeof hmsg, "hook path too long: %s", hook);
                } else
                        r = run_hook(path, hook, pl->arg, env, hold, &held, &hcode, hmsg);
                res->ran++;
                if (r == 0 && pl->record && !frozen_add(hook) && res->failure == 0) {
                        r = VSS_E_WRITERERROR_OUTOFRESOURCES;
                        snprintf(hmsg, sizeof hmsg, "out of memory");
                }
                result_note(res, r, hcode, hmsg);
                if (res->failure != 0 && !pl->run_all)
                        break;
        }
        /* Holds whose hook is gone from the directory (native mode) end too. */
        for (hook_proc *hp; release && (hp = hold_take(NULL));) {
                int32_t r = hold_release(hp, pl->arg, &hcode, hmsg);
                res->ran++;
                result_note(res, r, hcode, hmsg);
        }
}

bool run_event(vss_writer *w, vss_event event, const vss_event_info *info) {
        const char *name = vss_event_name(event) ?: "unknown";
        plan pl = plan_for(event);
        bool hold = arg_hold && event == VSS_EVENT_FREEZE;
        bool release = event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT;
        event_result res = {};
        event_env env;
        char **names = NULL;
        int n = -1;

        if (pl.source == PLAN_NOTHING)
                return true;
        if (event == VSS_EVENT_FREEZE) { /* a new set: nothing can be left, but be sure */
                frozen_clear();
                holds_kill_all();
        }
        res.failure = event_env_build(&env, w, event, info, res.msg);
        if (res.failure == 0 && pl.source == PLAN_FROZEN) {
                size_t k;
                names = frozen_take(&k); /* taken: Thaw and Abort undo the freeze once */
                n = (int) k;
        } else if (res.failure == 0) {
                n = list_hooks(&names);
                if (n < 0) {
                        res.failure = VSS_E_WRITERERROR_NONRETRYABLE;
                        snprintf(res.msg, sizeof res.msg, "cannot read hooks directory %s: %m", arg_hooks);
                }
        }
        if (n >= 0) {
                run_plan(&pl, names, n, env.env, hold, release, &res);
                if (event == VSS_EVENT_FREEZE && res.failure != 0 && arg_compat == COMPAT_VMWARE)
                        vmware_freeze_failed(env.env);
                /* Even after a failure: a failing pre-restore hook may leave its failure message. */
                if (env.control)
                        control_apply(w, event, env.control);
        }

        if (res.failure == 0)
                log_msg("%s -> ok (%zu hook%s)", name, res.ran, res.ran == 1 ? "" : "s");
        else {
                log_msg("%s -> failed 0x%08x (code %d): %s", name, (unsigned) res.failure, res.code, res.msg);
                vss_writer_set_failure(w, res.failure, res.code, res.msg);
        }
        event_env_done(&env);
        free_names(names, n);
        return res.failure == 0;
}
