/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writer status as the tools print it: text in the style of Windows' vssadmin, or JSON. */

#include <getopt.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/common.h"
#include "tools/report.h"

char *id_string(const vss_id *id, char buf[static VSS_ID_STRING_MAX]) {
        return vss_id_to_string(id, buf);
}

char *hex32(int32_t v, char buf[static 16]) {
        snprintf(buf, 16, "0x%08x", (uint32_t) v);
        return buf;
}

const char *last_error_text(int32_t failure) {
        switch (failure) {
        case 0: return "No error";
        case VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT: return "Inconsistent shadow copy";
        case VSS_E_WRITERERROR_OUTOFRESOURCES: return "Out of resources";
        case VSS_E_WRITERERROR_TIMEOUT: return "Timed out";
        case VSS_E_WRITERERROR_RETRYABLE: return "Retryable error";
        case VSS_E_WRITERERROR_NONRETRYABLE: return "Non-retryable error";
        case VSS_E_WRITERERROR_RECOVERY_FAILED: return "Recovery failed";
        case VSS_E_WRITERERROR_PARTIAL_FAILURE: return "Partial failure";
        case VSS_E_WRITER_NOT_RESPONDING: return "Not responding";
        default: return "Unexpected error";
        }
}

json_object *status_json(const char *name, const char *wid, const char *iid, uint32_t state, int32_t failure,
                                int32_t code, const char *msg, const char *note) {
        char hex[16];
        const char *fname = vss_error_name(failure);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "writer_id", json_object_new_string(wid));
        json_object_object_add(o, "instance_id", json_object_new_string(iid));
        json_object_object_add(o, "state", json_object_new_int((int) state));
        json_object_object_add(o, "state_name", json_object_new_string(strempty(vss_writer_state_name(state))));
        json_object_object_add(o, "failure", json_object_new_string(hex32(failure, hex)));
        json_object_object_add(o, "failure_name", json_object_new_string(fname ? fname : hex));
        json_object_object_add(o, "application_code", json_object_new_int(code));
        json_object_object_add(o, "application_message", json_object_new_string(msg));
        json_object_object_add(o, "note", json_object_new_string(note));
        return o;
}

void status_text(FILE *f, const char *indent, const char *name, const char *wid, const char *iid, uint32_t state,
                        int32_t failure, int32_t code, const char *msg, const char *note) {
        char hex[16];
        fprintf(f, "%sWriter name: '%s'\n", indent, name);
        fprintf(f, "%s   Writer Id: {%s}\n", indent, wid);
        fprintf(f, "%s   Writer Instance Id: {%s}\n", indent, iid);
        fprintf(f, "%s   State: [%u] %s\n", indent, state, strempty(vss_writer_state_name(state)));
        fprintf(f, "%s   Last error: %s\n", indent, last_error_text(failure));
        if (failure != 0) {
                const char *fname = vss_error_name(failure);
                fprintf(f, "%s   Failure: %s (%s)\n", indent, fname ? fname : "unknown", hex32(failure, hex));
                fprintf(f, "%s   Application code: %d\n", indent, code);
                if (!isempty(msg))
                        fprintf(f, "%s   Application message: %s\n", indent, msg);
        }
        if (!isempty(note))
                fprintf(f, "%s   Note: %s\n", indent, note);
}

json_object *admin_writer_json(const vss_admin_writer *w) {
        char ts[32], wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX], sid[VSS_ID_STRING_MAX];
        const vss_writer_status *st = &w->status;
        json_object *o = status_json(st->name, id_string(&st->writer_id, wid), id_string(&st->instance_id, iid),
                                     st->state, st->failure, st->application_code, st->application_message, st->note);
        json_object *asof = json_object_new_object();
        json_object_object_add(asof, "session",
                               vss_id_is_null(&w->session_id) ? NULL : json_object_new_string(id_string(&w->session_id, sid)));
        json_object_object_add(asof, "time", json_object_new_string(format_timestamp(w->as_of_usec, ts)));
        json_object_object_add(o, "as_of", asof);
        return o;
}

json_object *shadow_json(const char *sid, const char *setid, const char *orig, const char *spath, const char *prov,
                         uint64_t created, uint32_t attrs) {
        char ts[32];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "shadow_id", json_object_new_string(sid));
        json_object_object_add(o, "snapshot_set_id", json_object_new_string(setid));
        json_object_object_add(o, "original_path", json_object_new_string(orig));
        json_object_object_add(o, "shadow_path", json_object_new_string(spath));
        json_object_object_add(o, "provider", json_object_new_string(prov));
        json_object_object_add(o, "created", json_object_new_string(format_timestamp(created, ts)));
        json_object_object_add(o, "attributes", json_object_new_int64(attrs));
        json_object_object_add(o, "atomic", json_object_new_boolean(!(attrs & OPENVSS_ATTR_NOT_ATOMIC)));
        json_object_object_add(o, "point_in_time", json_object_new_boolean(!(attrs & OPENVSS_ATTR_NOT_POINT_IN_TIME)));
        json_object_object_add(o, "exposed_at", NULL); /* list shadows fills it in */
        return o;
}

json_object *shadow_prop_json(const vss_snapshot_prop *p) {
        char a[VSS_ID_STRING_MAX], b[VSS_ID_STRING_MAX];
        return shadow_json(id_string(&p->shadow_id, a), id_string(&p->snapshot_set_id, b), p->original_path,
                           p->shadow_path, p->provider, p->created_usec, p->attributes);
}

void print_json(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

void report_fail(Report *c, int32_t hr, const char *msg) {
        if (c->error_hr)
                return;
        c->error_hr = hr;
        snprintf(c->error_msg, sizeof(c->error_msg), "%s", msg);
}

/* Gathers status after a phase, prints it and returns false when a writer failed. */
bool report_phase(Report *c, const char *phase) {
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX], msg[1200];
        bool ok = true;
        FILE *out = c->out ? c->out : stdout;
        int32_t hr = vss_backup_gather_writer_status_sync(c->b);
        progress_clear(); /* the status starts on a clean line */
        if (hr < 0) {
                report_fail(c, hr, error_cause(vss_backup_errmsg(c->b)));
                return false;
        }
        json_object *writers = json_object_new_array();
        if (!c->json)
                fprintf(out, "Writer status after %s:\n", phase);
        for (size_t i = 0; i < vss_backup_writer_status_count(c->b); i++) {
                vss_writer_status st;
                if (vss_backup_writer_status_get(c->b, i, &st) < 0)
                        continue;
                id_string(&st.writer_id, wid);
                id_string(&st.instance_id, iid);
                if (c->json)
                        json_object_array_add(writers, status_json(st.name, wid, iid, st.state, st.failure,
                                                                   st.application_code, st.application_message, st.note));
                else
                        status_text(out, "   ", st.name, wid, iid, st.state, st.failure, st.application_code,
                                    st.application_message, st.note);
                if (st.failure != 0 || (st.state >= VSS_WS_FAILED_AT_IDENTIFY && st.state <= VSS_WS_FAILED_AT_BACKUP_SHUTDOWN)) {
                        snprintf(msg, sizeof(msg), "writer '%s' is %s: %s%s%s", st.name, vss_writer_state_name(st.state),
                                 strempty(vss_error_name(st.failure)), isempty(st.application_message) ? "" : ": ",
                                 st.application_message);
                        report_fail(c, st.failure ? st.failure : VSS_E_WRITERERROR_NONRETRYABLE, msg);
                        ok = false;
                }
        }
        if (!c->json && vss_backup_writer_status_count(c->b) == 0)
                fprintf(out, "   (no writers)\n");
        if (!c->json)
                fprintf(out, "\n");
        json_object *p = json_object_new_object();
        json_object_object_add(p, "phase", json_object_new_string(phase));
        json_object_object_add(p, "writers", writers);
        json_object_array_add(c->phases, p);
        return ok;
}

json_object *report_error_json(const Report *c) {
        char hex[16];
        json_object *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_string(hex32(c->error_hr, hex)));
        json_object_object_add(e, "name", json_object_new_string(strempty(vss_error_name(c->error_hr))));
        json_object_object_add(e, "message", json_object_new_string(c->error_msg));
        return e;
}

bool report_step(Report *c, int32_t hr) {
        if (hr < 0)
                report_fail(c, hr, error_cause(vss_backup_errmsg(c->b)));
        return hr >= 0;
}


void print_json_to(FILE *f, json_object *o) {
        fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(f);
}

const char *error_cause(const char *msg) {
        const char *p = msg;
        /* "Method: " (a D-Bus method name: letters only, a capital first) */
        if (*p >= 'A' && *p <= 'Z') {
                const char *q = p;
                while ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z'))
                        q++;
                if (q[0] == ':' && q[1] == ' ')
                        p = q + 2;
        }
        /* "NAME (0x12345678): ", NAME one word */
        const char *space = strchr(p, ' ');
        if (space && strncmp(space, " (0x", 4) == 0 && strlen(space) >= 15 && strncmp(space + 12, "): ", 3) == 0)
                p = space + 15;
        return p;
}

/* 0 when something listens on path, else -errno. */
static int socket_connect_probe(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path));
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        close(fd);
        return r;
}

char *vssd_failure_text(const char *socket, int32_t hr, char *buf, size_t size) {
        const char *path = socket;
        if (isempty(path))
                path = getenv("VSS_SOCKET");
        if (isempty(path))
                path = VSS_DEFAULT_SOCKET;
        if (hr == VSS_E_ACCESSDENIED) {
                snprintf(buf, size,
                         "vssd at %s refused uid %u: a requester must be root or in vssd's backup group "
                         "(\"backup_group\" in vssd.json, default vss-backup; see vssd.json(5)). Fix: run as "
                         "root, or add the user to that group",
                         path, (unsigned) getuid());
                return buf;
        }
        int r = socket_connect_probe(path);
        if (r < 0) {
                snprintf(buf, size,
                         "cannot reach vssd at %s: %s. Is vssd running? Start it (systemctl start vssd), or "
                         "name its socket with --socket PATH or $VSS_SOCKET",
                         path, strerror(-r));
                return buf;
        }
        const char *name = vss_error_name(hr);
        snprintf(buf, size, "vssd at %s did not open a session: %s (0x%08x); see vssd's log (journalctl -u vssd)",
                 path, name ? name : "error", (uint32_t) hr);
        return buf;
}

json_object *failure_json(int32_t hr, const char *message) {
        char hex[16];
        json_object *o = json_object_new_object(), *e = json_object_new_object();
        json_object_object_add(e, "code", json_object_new_string(hex32(hr, hex)));
        json_object_object_add(e, "name", json_object_new_string(strempty(vss_error_name(hr))));
        json_object_object_add(e, "message", json_object_new_string(message));
        json_object_object_add(o, "result", json_object_new_string("failed"));
        json_object_object_add(o, "error", e);
        return o;
}

static bool progress_on, progress_shown;

void progress_enable(bool on) {
        progress_on = on && isatty(STDERR_FILENO);
}

bool progress_enabled(void) {
        return progress_on;
}

void progress_status(const char *fmt, ...) {
        va_list ap;
        if (!progress_on)
                return;
        va_start(ap, fmt);
        fputs("\r\033[K", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fflush(stderr);
        progress_shown = true;
}

void progress_clear(void) {
        if (!progress_shown)
                return;
        fputs("\r\033[K", stderr);
        fflush(stderr);
        progress_shown = false;
}

