/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec: one event, from its plan (compat.c) through its hooks (runner.c) to the status
 * the writer reports: the first failure, with its code and message.
 *
 * An event is a job. Its hooks run one after the other, started and watched from the main loop
 * (the event is answered later, vss_writer_defer), so that the writer answers vssd's status
 * queries and an Abort while a hook runs. Jobs run one at a time, in the order their events
 * came; an Abort that comes while a Freeze runs stops the Freeze's hook (SIGTERM to its group,
 * SIGKILL after 2 s), starts no further freeze hook, and runs once the Freeze is answered
 * (failed). Events that cannot be deferred (Identify, the writer's own Abort on a lost
 * connection or an expired window) run the same job at once, blocking. */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-event.h>

#include "lib/basic/log.h"
#include "writers/exec/exec-writer.h"

typedef struct event_result {
        int32_t failure;
        int code;
        char msg[MSG_MAX + 1];
        size_t ran;
} event_result;

typedef enum job_phase {
        PHASE_PLAN,        /* the plan's hooks */
        PHASE_HOLDS,       /* Thaw, Abort: holds whose hook is gone from the directory */
        PHASE_FREEZE_FAIL, /* VMware: freezeFail to the scripts that got freeze, after a failed freeze */
        PHASE_DONE,
} job_phase;

/* What a job does next: run the hook name with arg, or end the hold hp. plan: it counts for the
 * event's result (freezeFail's results are only logged). */
typedef struct step {
        const char *name, *arg;
        hook_proc *hold;
        bool plan;
} step;

typedef struct job {
        struct job *next;
        vss_writer *w;
        vss_writer_deferred *d; /* NULL: runs at once */
        vss_event event;
        plan pl;
        bool hold, release, listed, aborted;
        bool stopping; /* the writer ends: the remaining hooks run at once, then it answers */
        vss_id set_id; /* the event's set, for an undo at exit */
        event_env env;
        char **names;
        int n, i;
        char **ff; /* PHASE_FREEZE_FAIL's scripts */
        size_t n_ff, ff_i;
        job_phase phase;
        hook_proc *cur; /* the hook running (deferred jobs) */
        step cur_step;
        sd_event_source *kick;
        event_result res;
} job;

/* The job running, and those waiting behind it. */
static job *active, *queue_head, *queue_tail;

/* Keeps the first failure. */
static void result_note(event_result *res, int32_t r, int code, const char msg[MSG_MAX + 1]) {
        if (r != 0 && res->failure == 0) {
                res->failure = r;
                res->code = code;
                memcpy(res->msg, msg, sizeof res->msg);
        }
}

static void job_free(job *j) {
        if (!j)
                return;
        j->kick = sd_event_source_disable_unref(j->kick);
        event_env_done(&j->env);
        free_names(j->names, j->n);
        free_names(j->ff, (int) j->n_ff);
        free(j);
}

/* The environment (built while the event's information is there: in the callback). */
static job *job_new(vss_writer *w, vss_writer_deferred *d, vss_event event, const vss_event_info *info) {
        job *j = calloc(1, sizeof *j);

        if (!j)
                return NULL;
        j->w = w;
        j->d = d;
        j->event = event;
        j->pl = plan_for(event);
        j->hold = arg_hold && event == VSS_EVENT_FREEZE;
        j->release = event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT;
        j->n = -1;
        j->set_id = info ? info->snapshot_set_id : (vss_id) {};
        j->res.failure = event_env_build(&j->env, w, event, info, j->res.msg);
        return j;
}

/* Which hooks: read when the job starts (a Freeze before it may still add to the frozen list). */
static void job_begin(job *j) {
        if (j->event == VSS_EVENT_FREEZE) { /* a new set: nothing can be left, but be sure */
                frozen_clear();
                holds_kill_all();
        }
        if (j->res.failure != 0)
                return;
        if (j->pl.source == PLAN_FROZEN) {
                size_t k;
                j->names = frozen_take(&k); /* taken: Thaw and Abort undo the freeze once */
                j->n = (int) k;
        } else {
                j->n = list_hooks(&j->names);
                if (j->n < 0) {
                        j->res.failure = VSS_E_WRITERERROR_NONRETRYABLE;
                        snprintf(j->res.msg, sizeof j->res.msg, "cannot read hooks directory %s: %m", arg_hooks);
                }
        }
        j->listed = j->n >= 0;
}

/* The next step; false when none is left. */
static bool job_next(job *j, step *s) {
        *s = (step) {};
        for (;;)
                switch (j->phase) {
                case PHASE_PLAN:
                        if (j->i < j->n && !j->aborted && (j->res.failure == 0 || j->pl.run_all)) {
                                s->name = j->names[j->pl.reverse ? j->n - 1 - j->i : j->i];
                                j->i++;
                                s->arg = j->pl.arg;
                                s->plan = true;
                                s->hold = j->release ? hold_take(s->name) : NULL;
                                return true;
                        }
                        j->phase = PHASE_HOLDS;
                        break;
                case PHASE_HOLDS:
                        if (j->release && j->listed && (s->hold = hold_take(NULL))) {
                                s->arg = j->pl.arg;
                                s->plan = true;
                                return true;
                        }
                        j->phase = PHASE_FREEZE_FAIL;
                        /* An Abort that came undoes the freeze itself. */
                        if (j->event == VSS_EVENT_FREEZE && j->res.failure != 0 && arg_compat == COMPAT_VMWARE &&
                            !j->aborted)
                                j->ff = frozen_take(&j->n_ff);
                        j->ff_i = j->n_ff;
                        break;
                case PHASE_FREEZE_FAIL:
                        if (j->ff_i > 0) {
                                s->name = j->ff[--j->ff_i];
                                s->arg = "freezeFail";
                                s->hold = hold_take(s->name);
                                return true;
                        }
                        j->phase = PHASE_DONE;
                        break;
                default:
                        return false;
                }
}

/* What a step's hook did, for the event's result. */
static void job_note(job *j, const step *s, int32_t r, int code, char msg[MSG_MAX + 1]) {
        if (!s->plan)
                return;
        j->res.ran++;
        if (r == 0 && j->pl.record && s->name && !frozen_add(s->name) && j->res.failure == 0) {
                r = VSS_E_WRITERERROR_OUTOFRESOURCES;
                snprintf(msg, MSG_MAX + 1, "out of memory");
        }
        result_note(&j->res, r, code, msg);
}

static void on_hook_done(hook_proc *hp, bool ready, void *userdata);

/* Runs a step: at once (a job not deferred), or started from the main loop (then it returns
 * true and on_hook_done() follows). Otherwise the result is in r, code, msg. */
static bool step_run(job *j, const step *s, int32_t *r, int *code, char msg[MSG_MAX + 1]) {
        bool hold = j->hold && s->plan && !s->hold;
        char path[PATH_MAX];

        *code = 127;
        if (s->hold) {
                if (j->d && !j->stopping && hold_release_async(s->hold, on_hook_done, j)) {
                        j->cur = s->hold;
                        return true;
                }
                *r = hold_release(s->hold, s->arg, code, msg);
                return false;
        }
        if (snprintf(path, sizeof path, "%s/%s", arg_hooks, s->name) >= (int) sizeof path) {
                snprintf(msg, MSG_MAX + 1, "hook path too long: %s", s->name);
                *r = VSS_E_WRITERERROR_NONRETRYABLE;
                return false;
        }
        int32_t f = hook_trusted(path, s->name, msg);
        if (f != 0) {
                *r = f;
                return false;
        }
        f = event_env_ready(&j->env, j->release, msg);
        if (f != 0 && !j->env.env) {
                *r = f;
                return false;
        }
        result_note(&j->res, f, 0, msg); /* Thaw, Abort: said, and their hooks run even so */
        if (!j->d || j->stopping) {
                bool held;
                *r = run_hook(path, s->name, s->arg, j->env.env, hold, &held, code, msg);
                return false;
        }
        j->cur = hook_start_async(path, s->name, s->arg, j->env.env, hold, on_hook_done, j, msg);
        if (j->cur)
                return true;
        *r = VSS_E_WRITERERROR_NONRETRYABLE;
        return false;
}

/* The event's answer: the control file's lines, the first failure. Returns the result. */
static bool job_finish(job *j) {
        const char *name = vss_event_name(j->event) ?: "unknown";
        event_result *res = &j->res;

        if (j->d && vss_writer_resume(j->w, j->d) < 0)
                log_msg("%s: cannot resume the event; the answer may be lost", name);
        if (j->aborted && res->failure == 0) {
                res->failure = VSS_E_WRITERERROR_NONRETRYABLE;
                snprintf(res->msg, sizeof res->msg, "the set was aborted while the hooks ran");
        }
        /* Even after a failure: a failing pre-restore hook may leave its failure message. */
        if (j->listed && j->env.control)
                control_apply(j->w, j->event, j->env.control);
        if (res->failure == 0)
                log_msg("%s -> ok (%zu hook%s)", name, res->ran, res->ran == 1 ? "" : "s");
        else {
                log_msg("%s -> failed 0x%08x (code %d): %s", name, (unsigned) res->failure, res->code, res->msg);
                vss_writer_set_failure(j->w, res->failure, res->code, res->msg);
        }
        return res->failure == 0;
}

static void queue_next(void);

/* Runs the job's steps until one is under way (deferred jobs) or none is left: then answers. */
static void job_advance(job *j) {
        char msg[MSG_MAX + 1];
        int code;
        int32_t r;
        step s;

        while (job_next(j, &s)) {
                if (step_run(j, &s, &r, &code, msg)) {
                        j->cur_step = s;
                        return;
                }
                job_note(j, &s, r, code, msg);
        }
        if (!j->d)
                return;
        bool ok = job_finish(j);
        vss_writer_deferred *d = j->d;
        vss_writer *w = j->w;
        active = NULL;
        job_free(j);
        /* A Freeze answered ok after the set was given up makes libvss call the Abort callback
         * at once; no job is active then, so it runs at once. */
        if (vss_writer_complete(w, d, ok) < 0)
                log_msg("cannot answer vssd (connection lost?)");
        queue_next();
}

static void on_hook_done(hook_proc *hp, bool ready, void *userdata) {
        job *j = userdata;
        char msg[MSG_MAX + 1];
        int code;
        int32_t r = hook_async_result(hp, j->cur_step.arg, ready, &code, msg);

        j->cur = NULL;
        job_note(j, &j->cur_step, r, code, msg);
        job_advance(j);
}

/* Started from the main loop, never inside a callback: answering (vss_writer_complete) is not
 * allowed there. */
static int on_kick(sd_event_source *s, void *userdata) {
        job *j = userdata;

        j->kick = sd_event_source_disable_unref(j->kick);
        job_begin(j);
        job_advance(j);
        return 0;
}

static int job_kick(job *j) {
        sd_event *e = NULL;
        int r = sd_event_default(&e);

        if (r >= 0)
                r = sd_event_add_defer(e, &j->kick, on_kick, j);
        sd_event_unref(e);
        return r;
}

static void queue_next(void) {
        while (!active && queue_head) {
                job *j = queue_head;
                queue_head = j->next;
                if (!queue_head)
                        queue_tail = NULL;
                j->next = NULL;
                active = j;
                if (job_kick(j) >= 0)
                        return;
                /* Cannot schedule it: answer it as failed. */
                log_msg("cannot start the hooks of %s", vss_event_name(j->event) ?: "an event");
                active = NULL;
                vss_writer_set_failure(j->w, VSS_E_WRITERERROR_OUTOFRESOURCES, 0, "cannot start the hooks");
                (void) vss_writer_complete(j->w, j->d, false);
                job_free(j);
        }
}

bool run_event(vss_writer *w, vss_event event, const vss_event_info *info) {
        job *j;
        bool ok;

        if (plan_for(event).source == PLAN_NOTHING)
                return true;
        j = job_new(w, NULL, event, info);
        if (!j) {
                vss_writer_set_failure(w, VSS_E_WRITERERROR_OUTOFRESOURCES, 0, "out of memory");
                return false;
        }
        job_begin(j);
        job_advance(j);
        ok = job_finish(j);
        job_free(j);
        return ok;
}

bool job_event(vss_writer *w, const vss_event_info *info) {
        vss_writer_deferred *d;
        job *j;

        if (plan_for(info->event).source == PLAN_NOTHING)
                return true;
        d = vss_writer_defer(w);
        if (!d && info->event == VSS_EVENT_ABORT && active && active->event == VSS_EVENT_THAW) {
                /* The writer's own Abort (connection lost, window expired) while Thaw's hooks run:
                 * they are what undoes the freeze, as if Thaw had been answered already. */
                log_msg("abort: the thaw hooks run already");
                return true;
        }
        if (!d)
                return run_event(w, info->event, info);
        j = job_new(w, d, info->event, info);
        if (!j) { /* the deferred handle goes unanswered; vssd's deadline acts */
                log_msg("%s: out of memory", vss_event_name(info->event) ?: "event");
                return false;
        }
        if (info->event == VSS_EVENT_ABORT && active && active->event == VSS_EVENT_FREEZE) {
                log_msg("abort: stopping the freeze hooks");
                active->aborted = true;
                if (active->cur && active->phase == PHASE_PLAN) /* not an undo (freezeFail) */
                        hook_cancel(active->cur);
        }
        if (queue_tail)
                queue_tail->next = j;
        else
                queue_head = j;
        queue_tail = j;
        queue_next();
        return true;
}

void jobs_stop_all(vss_writer *w) {
        job *j;

        /* What waits behind the running event never runs: the writer ends. */
        while ((j = queue_head)) {
                queue_head = j->next;
                job_free(j);
        }
        queue_tail = NULL;
        j = active;
        if (j && j->release) {
                /* Thaw, Abort: they undo a freeze, so all their hooks run (a stop of the service must
                 * not leave an application frozen), the rest at once (the loop runs no more); then
                 * the event is answered, so libvss knows the writer thawed. */
                log_msg("%s: stopping once its hooks have run", vss_event_name(j->event) ?: "event");
                j->stopping = true;
                if (j->cur) {
                        char msg[MSG_MAX + 1];
                        int code;
                        int32_t r = hook_wait(j->cur, j->cur_step.arg, &code, msg);
                        j->cur = NULL;
                        job_note(j, &j->cur_step, r, code, msg);
                }
                job_advance(j); /* answers and frees it */
                return;
        }
        active = NULL;
        if (j && j->cur)
                hook_stop_now(j->cur);
        if (j && j->event == VSS_EVENT_FREEZE) {
                /* What the freeze hooks began (the stopped one's too) is undone as an Abort would:
                 * the set cannot be made without this writer anyway. */
                log_msg("freeze: stopped while its hooks ran; the abort hooks undo them");
                vss_event_info info = { .event = VSS_EVENT_ABORT, .snapshot_set_id = j->set_id };
                (void) run_event(w, VSS_EVENT_ABORT, &info);
        }
        job_free(j); /* its event goes unanswered, as the writer ends */
}
