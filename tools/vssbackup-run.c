/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* One run of a command: its session, what it reports and how it ends. */

#include <stdarg.h>

#include "lib/basic/log.h"
#include "lib/basic/time-util.h"
#include "lib/common.h"
#include "tools/attempts.h"
#include "tools/vssbackup.h"

void component_report(Run *run, const vss_writer_metadata *wm, const char *lp, const char *name, bool ok,
                      const char *what) {
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "writer", json_object_new_string(wm->name));
        json_object_object_add(o, "writer_id", json_object_new_string(id_string(&wm->writer_id, wid)));
        json_object_object_add(o, "instance_id", json_object_new_string(id_string(&wm->instance_id, iid)));
        json_object_object_add(o, "logical_path", json_object_new_string(lp));
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "succeeded", json_object_new_boolean(ok));
        json_object_array_add(run->components, o);
        if (!arg_json) {
                progress_clear();
                fprintf(run->r.out ? run->r.out : stdout, "Component '%s%s%s' of writer '%s': %s\n", lp,
                        isempty(lp) ? "" : "/", name, wm->name, what);
        }
}

int run_finish(Run *run, json_object *extra) {
        char hex[16];
        Report *c = &run->r;
        progress_clear();
        if (arg_json) {
                json_object *out = json_object_new_object();
                json_object_object_add(out, "command", json_object_new_string(run->command));
                json_object_object_add(out, "result", json_object_new_string(c->error_hr ? "failed" : "ok"));
                if (c->error_hr)
                        json_object_object_add(out, "error", report_error_json(c));
                json_object_object_foreach(extra, k, v) json_object_object_add(out, k, json_object_get(v));
                if (run->attempts) {
                        json_object_array_add(run->attempts, attempt_json(c, run->attempt, 0));
                        json_object_object_add(out, "attempts", json_object_get(run->attempts));
                }
                json_object_object_add(out, "components", json_object_get(run->components));
                json_object_object_add(out, "phases", json_object_get(c->phases));
                print_json_to(arg_json_out ? arg_json_out : stdout, out);
                json_object_put(out);
        }
        /* JSON on stderr already says it all. */
        if (c->error_hr && arg_json_out != stderr)
                log_msg("%s failed: %s (%s): %s", run->command, strempty(vss_error_name(c->error_hr)),
                        hex32(c->error_hr, hex), c->error_msg);
        if (run->gave_up && arg_json_out != stderr)
                log_msg("the failure is retryable; gave up after %u attempt%s (--retries %u)", run->attempt,
                        run->attempt == 1 ? "" : "s", arg_retries);
        else if (run->attempts && !c->error_hr && run->attempt > 1 && !arg_json)
                fprintf(c->out ? c->out : stdout, "Succeeded on attempt %u\n", run->attempt);
        json_object_put(run->attempts);
        json_object_put(extra);
        json_object_put(run->components);
        json_object_put(c->phases);
        vss_backup_release(c->b);
        return c->error_hr ? EXIT_FAILED : EXIT_OK;
}

bool run_fail(Run *run, int32_t hr, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        report_fail(&run->r, hr, msg);
        return false;
}

void run_closing_phase(Run *run, int32_t hr, const char *phase) {
        int32_t saved = run->r.error_hr;
        char saved_msg[sizeof(run->r.error_msg)];

        /* The first failure is the one reported, its message with its code. */
        memcpy(saved_msg, run->r.error_msg, sizeof(saved_msg));
        run->r.error_hr = 0;
        if (report_step(&run->r, hr))
                report_phase(&run->r, phase);
        if (saved) {
                run->r.error_hr = saved;
                memcpy(run->r.error_msg, saved_msg, sizeof(saved_msg));
        }
}

bool run_start(Run *run, const char *command) {
        *run = (Run) { .r = { .phases = json_object_new_array(), .json = arg_json },
                       .components = json_object_new_array(), .command = command, .attempt = 1 };
        int32_t hr = vss_backup_new(arg_socket, &run->r.b);
        if (hr < 0) {
                char why[1024];
                return run_fail(run, hr, "%s", vssd_failure_text(arg_socket, hr, why, sizeof(why)));
        }
        return true;
}


bool logical_within(const char *lp, const char *key) {
        size_t kl = strlen(key);
        return strncmp(lp, key, kl) == 0 && (lp[kl] == 0 || lp[kl] == '/');
}

/* "WRITER:LOGICAL_PATH" against a writer and one of its components; with set, also the components
 * below it (whose logical path is LOGICAL_PATH or lies below it: a VSS component set). WRITER is
 * the writer id, or its name when writer_name is not NULL (spec_name()). */
static bool spec_match(const char *spec, const vss_id *writer_id, const char *writer_name, const char *lp,
                       const char *name, bool set) {
        const char *colon = strchr(spec, ':');
        char wid[VSS_ID_STRING_MAX], key[VSS_MAX_STRING + VSS_MAX_NAME + 2];
        vss_id id;
        if (!colon)
                return false;
        size_t wl = (size_t) (colon - spec);
        _cleanup_free_ char *w = strndup(spec, wl);
        if (!w)
                return false;
        bool writer = (writer_name && streq(w, writer_name)) ||
                      (vss_id_from_string(w, &id) >= 0 && streq(vss_id_to_string(&id, wid), id_string(writer_id, key)));
        if (set && writer && logical_within(lp, colon + 1))
                return true;
        snprintf(key, sizeof(key), "%s%s%s", lp, isempty(lp) ? "" : "/", name);
        return writer && streq(colon + 1, key);
}

bool spec_matches(const char *spec, const vss_id *writer_id, const char *writer_name, const char *lp,
                  const char *name) {
        return spec_match(spec, writer_id, writer_name, lp, name, false);
}

bool spec_covers(const char *spec, const vss_id *writer_id, const char *writer_name, const char *lp, const char *name) {
        return spec_match(spec, writer_id, writer_name, lp, name, true);
}

bool owner_trusted(const vss_writer_metadata *owner) {
        return !owner || !owner->owner_known || owner->owner_uid == 0 || owner->owner_uid == getuid();
}

const char *spec_name(const vss_writer_metadata *owner, const char *name) {
        return owner_trusted(owner) ? name : NULL;
}

bool spec_valid(const char *spec) {
        const char *colon = strchr(spec, ':');
        return colon && colon != spec && colon[1] && strlen(spec) < VSS_MAX_STRING;
}

/* Metadata a target filesystem could not keep (an xattr, an ACL, a file flag): not a failure (the
 * data and everything else are there), but never silent: one line each on stderr, and "warnings"
 * in --json. */
static json_object *warnings;

void on_warning(const char *path, const char *what, const char *error, void *userdata) {
        json_object *o = json_object_new_object();

        log_msg("warning: %s: %s not kept: %s", path, what, error);
        if (!warnings)
                warnings = json_object_new_array();
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "what", json_object_new_string(what));
        json_object_object_add(o, "error", json_object_new_string(error));
        json_object_array_add(warnings, o);
}

void add_warnings(json_object *extra) {
        json_object_object_add(extra, "warnings", warnings ? json_object_get(warnings) : json_object_new_array());
}

/* Progress on a terminal, at most ten times a second. */
void on_progress(uint64_t files, uint64_t bytes, const char *current, void *userdata) {
        static uint64_t last;
        uint64_t now = now_monotonic_msec();
        if (now - last < 100 && current)
                return;
        last = now;
        progress_status("%llu files, %.1f MiB  %.60s", (unsigned long long) files, (double) bytes / 1048576.0,
                        strempty(current));
}
