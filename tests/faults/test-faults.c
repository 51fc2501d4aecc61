/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fault-injection matrix (issue 6, item 3): for every event of backup and restore a writer
 * vetoes, hangs and crashes (Abort too: another writer's veto of Freeze causes it); the requester
 * is killed at each phase; vssd is killed and restarted; providers fail. After every case the
 * invariants are checked: no filesystem frozen, no writer left frozen, the right writer status and
 * operation result, no partial set or shadow left, the registry the same after a restart.
 *
 *   test-faults CASE          runs one case (exit 0: as expected, or a listed known bug)
 *   test-faults --list        lists the cases
 *   test-faults --check-list CASE...   fails unless the cases named are exactly the table's
 *   test-faults               runs them all
 *
 * Every case prints one line for scripts/fault-matrix.sh:
 *   MATRIX <case> expected=<...> observed=<...> <ok|FAIL|KNOWN-BUG>
 * In the summaries, "be" is the writer the fault is injected into (back-end), "fe" a bystander
 * (front-end, so it is frozen first and thawed or aborted last; in the Abort cases a system writer
 * that vetoes its Freeze). The summaries have no spaces: "_" stands for one.
 */

#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/common.h"
#include "tests/harness.h"

/* Cases that fail because of a known bug in vssd or libvss: reported as KNOWN-BUG instead of
 * failing. Remove an entry once the bug is fixed (a listed case that passes fails, so that the
 * list never hides a regression). */
static const char *const KNOWN_BUGS[] = {
        NULL,
};

typedef enum Fault { FAULT_NONE, FAULT_VETO, FAULT_HANG, FAULT_CRASH } Fault;

/* A writer's status in a summary. */
enum {
        ST_SKIP = -3, /* not part of this case's summary */
        ST_GONE = -2, /* not listed at all (admin view) */
        ST_NONE = -1, /* no status slot in the session */
};

typedef struct WriterOutcome {
        int state; /* vss_writer_state or ST_* */
        int32_t failure;
        int32_t app_code;
        bool aborted;
} WriterOutcome;

typedef struct Outcome {
        bool has_op;
        int32_t op; /* the HRESULT of the requester call that drove the faulted phase */
        WriterOutcome be, fe;
        int shadows; /* listed after the case (and after the restart) */
        char extra[512]; /* case-specific observations, e.g. the writers' events */
        char inv[1024];  /* invariant violations (observed only) */
} Outcome;

typedef struct Case Case;
struct Case {
        const char *name;
        void (*run)(const Case *c, Outcome *o);
        const char *event; /* the phase or event the fault hits */
        Fault fault;
        Outcome expect;
};

/* ---- helpers ---- */

/* The case's harness, freed (writers and vssd stopped, checked) before its result is printed. */
static Harness *case_harness;

static Harness *new_harness(const char *config) {
        return case_harness = harness_new(config);
}

static void inv(Outcome *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void inv(Outcome *o, const char *fmt, ...) {
        char buf[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        size_t len = strlen(o->inv);
        snprintf(o->inv + len, sizeof(o->inv) - len, "%s%s", len ? "," : "", buf);
        fprintf(stderr, "invariant violated: %s\n", buf);
}

static const char *hr_name(int32_t hr, char buf[static 16]) {
        const char *n = vss_error_name(hr);
        if (hr == 0)
                return "S_OK";
        if (n)
                return n;
        snprintf(buf, 16, "0x%08x", (uint32_t) hr);
        return buf;
}

static void format_writer(FILE *f, const char *name, const WriterOutcome *w) {
        char b[16];
        if (w->state == ST_SKIP)
                return;
        fprintf(f, ",%s=", name);
        if (w->state == ST_GONE)
                fputs("gone", f);
        else if (w->state == ST_NONE)
                fputs("none", f);
        else
                fputs(vss_writer_state_name((vss_writer_state) w->state), f);
        if (w->state >= 0 && w->failure != 0)
                fprintf(f, "/%s", hr_name(w->failure, b));
        if (w->state >= 0 && w->app_code != 0)
                fprintf(f, "/app=%d", (int) w->app_code);
        if (w->aborted)
                fputs("+aborted", f);
}

/* One word, no spaces: "op=...,be=...,fe=...,shadows=N[,extra][,VIOLATED:...]". */
static char *format_outcome(const Outcome *o) {
        char *s = NULL, b[16];
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        fprintf(f, "op=%s", o->has_op ? hr_name(o->op, b) : "-");
        format_writer(f, "be", &o->be);
        format_writer(f, "fe", &o->fe);
        fprintf(f, ",shadows=%d", o->shadows);
        if (*o->extra)
                fprintf(f, ",%s", o->extra);
        if (*o->inv)
                fprintf(f, ",VIOLATED:%s", o->inv);
        fclose(f);
        for (char *p = s; *p; p++)
                if (*p == ' ')
                        *p = '_';
        return s;
}

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static bool in_words(const char *words, const char *w) {
        size_t n = strlen(w);
        for (const char *p = words; (p = strstr(p, w)); p += n)
                if ((p == words || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
                        return true;
        return false;
}

/* Waits up to ms for a writer to have seen an event. */
static bool wait_event(Harness *h, const char *writer, const char *event, int ms) {
        for (int i = 0; i <= ms / 20; i++) {
                _cleanup_free_ char *ev = harness_events(h, writer);
                if (in_words(ev, event))
                        return true;
                sleep_ms(20);
        }
        return false;
}

/* True when the writer's last Freeze has no Thaw or Abort after it. */
static bool events_frozen(const char *events) {
        _cleanup_free_ char *copy = strdup(events);
        bool frozen = false;
        char *save = NULL;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
                if (streq(t, "freeze"))
                        frozen = true;
                else if (streq(t, "thaw") || streq(t, "abort"))
                        frozen = false;
        }
        return frozen;
}

/* No writer left frozen: a writer that saw Freeze gets Thaw or Abort (it may take the writer's
 * own hook timeout or window to get there). A killed writer is not frozen. */
static void check_writer_not_frozen(Harness *h, Outcome *o, const char *writer) {
        for (int i = 0; i < 500; i++) {
                _cleanup_free_ char *ev = harness_events(h, writer);
                if (!events_frozen(ev))
                        return;
                sleep_ms(20);
        }
        _cleanup_free_ char *ev = harness_events(h, writer);
        inv(o, "writer-left-frozen:%s[%s]", writer, ev);
}

/* No filesystem frozen: a write to the mount point finishes at once. */
static void check_fs_writable(Harness *h, Outcome *o, const char *mnt) {
        if (harness_sh(h, NULL, "timeout 3 sh -c 'echo probe > %s/.fault-probe && sync %s/.fault-probe' && rm -f %s/.fault-probe",
                       mnt, mnt, mnt) != 0)
                inv(o, "fs-frozen:%s", mnt);
}

/* The shadow ids `vssadmin list shadows --json` lists, sorted and joined; NULL on error. */
static char *list_shadows(Harness *h, int *ret_n) {
        char *out = NULL;
        *ret_n = -1;
        if (harness_sh(h, &out, "vssadmin list shadows --json") != 0) {
                free(out);
                return NULL;
        }
        json_object *root = json_tokener_parse(out ? out : "");
        free(out);
        json_object *arr = root ? json_object_object_get(root, "shadows") : NULL;
        if (!arr || !json_object_is_type(arr, json_type_array)) {
                json_object_put(root);
                return NULL;
        }
        size_t n = json_object_array_length(arr);
        char **ids = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++) {
                const char *id = json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, i), "shadow_id"));
                ids[i] = strdup(id ? id : "?");
        }
        json_object_put(root);
        /* sort (few entries) */
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++)
                        if (strcmp(ids[i], ids[j]) > 0) {
                                char *t = ids[i];
                                ids[i] = ids[j];
                                ids[j] = t;
                        }
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s%s", i ? " " : "", ids[i]);
                free(ids[i]);
        }
        fclose(f);
        free(ids);
        *ret_n = (int) n;
        return s;
}

/* No partial set or shadow left, and the registry is the same after a restart of vssd. */
static void check_shadows_and_registry(Harness *h, Outcome *o, int expect) {
        int n = -1, n2 = -1;
        _cleanup_free_ char *before = list_shadows(h, &n);
        if (!before)
                inv(o, "list-shadows-failed");
        /* A restarted vssd finishes what a crash left (deletes) in the background: wait for it. */
        int files = harness_count_shadow_files(h);
        for (int i = 0; i < 200 && expect == 0 && files != 0; i++) {
                sleep_ms(50);
                files = harness_count_shadow_files(h);
        }
        if ((expect == 0 && files != 0) || (expect > 0 && files == 0))
                inv(o, "shadow-files=%d", files);
        harness_restart_vssd(h);
        _cleanup_free_ char *after = list_shadows(h, &n2);
        if (!after || !before || !streq(before, after))
                inv(o, "registry-after-restart[%s]!=[%s]", after ? after : "?", before ? before : "?");
        int files2 = harness_count_shadow_files(h);
        for (int i = 0; i < 200 && files2 != files; i++) {
                sleep_ms(50);
                files2 = harness_count_shadow_files(h);
        }
        if (files2 != files)
                inv(o, "shadow-files-after-restart=%d(was %d)", files2, files);
        o->shadows = n2;
}

/* Right after a failed do-snapshot-set, while the session still exists: nothing of the set. */
static void check_no_partial_set(Harness *h, Outcome *o) {
        int n = -1;
        _cleanup_free_ char *ids = list_shadows(h, &n);
        int files = harness_count_shadow_files(h);
        if (n != 0 || files != 0)
                inv(o, "partial-set-left:listed=%d,files=%d", n, files);
}

static void observe_status(vss_backup *b, Outcome *o) {
        int32_t hr = vss_backup_gather_writer_status_sync(b);
        if (hr != 0) {
                char buf[16];
                inv(o, "gather-status=%s", hr_name(hr, buf));
                return;
        }
        static const char *const names[] = { "be", "fe" };
        WriterOutcome *ws[] = { &o->be, &o->fe };
        for (size_t i = 0; i < 2; i++) {
                vss_writer_status st;
                if (!status_of(b, names[i], &st)) {
                        *ws[i] = (WriterOutcome) { .state = ST_NONE };
                        continue;
                }
                *ws[i] = (WriterOutcome) { .state = st.state, .failure = st.failure, .app_code = st.application_code,
                                           .aborted = st.note && streq(st.note, "aborted") };
        }
}

/* The admin view (`vssadmin list writers --json`): a writer's last known status. */
static WriterOutcome admin_status(Harness *h, const char *name) {
        WriterOutcome w = { .state = ST_GONE };
        char *out = NULL;
        if (harness_sh(h, &out, "vssadmin list writers --json") != 0) {
                free(out);
                return w;
        }
        json_object *root = json_tokener_parse(out ? out : "");
        free(out);
        json_object *arr = root ? json_object_object_get(root, "writers") : NULL;
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                const char *n = json_object_get_string(json_object_object_get(e, "name"));
                if (!n || !streq(n, name))
                        continue;
                const char *fail = json_object_get_string(json_object_object_get(e, "failure"));
                const char *note = json_object_get_string(json_object_object_get(e, "note"));
                w.state = json_object_get_int(json_object_object_get(e, "state"));
                w.failure = fail ? (int32_t) strtoul(fail, NULL, 16) : 0;
                w.app_code = json_object_get_int(json_object_object_get(e, "application_code"));
                w.aborted = note && streq(note, "aborted");
        }
        json_object_put(root);
        return w;
}

/* ---- writer faults: every event x veto, hang, crash ---- */

/* Short deadlines so that hang cases stay fast; the writers' hooks are cut off later than that. */
static const char writer_fault_config[] =
        "{\"timeouts\": {\"identify_ms\": 1500, \"prepare_backup_ms\": 1500, \"prepare_snapshot_ms\": 1500,"
        " \"post_snapshot_ms\": 1500, \"backup_complete_ms\": 1500, \"backup_shutdown_ms\": 1500,"
        " \"restore_ms\": 1500}}";
static const char *const fe_args[] = { "--app-level", "front-end", "--hook-timeout", "4000", NULL };
static const char *const fe_system_args[] = { "--app-level", "system", "--hook-timeout", "4000", NULL };
/* be's own Freeze→Thaw window bounds its Freeze and Thaw deadlines. */
static const char *const be_args[] = { "--app-level", "back-end", "--hook-timeout", "4000", "--freeze-timeout", "1500", NULL };

typedef struct Ctx {
        const Case *c;
        Harness *h;
        vss_backup *b;
        pid_t be;
        bool be_killed;
        Outcome *o;
} Ctx;

/* Runs one asynchronous requester call; when the case crashes the writer in one of the events
 * this call drives, the writer is SIGKILLed while its hook handles that event. */
static int32_t phase(Ctx *x, int (*start)(vss_backup *, vss_async **), const char *events) {
        vss_async *a = NULL;
        int32_t hr = start(x->b, &a);
        if (hr < 0 || !a)
                return hr;
        if (x->c->fault == FAULT_CRASH && in_words(events, x->c->event)) {
                if (harness_wait_started(x->h, "be", x->c->event)) {
                        kill(x->be, SIGKILL);
                        x->be_killed = true;
                } else
                        inv(x->o, "crash:%s-never-started", x->c->event);
        }
        hr = vss_async_wait(a, 60000);
        vss_async_unref(a);
        return hr;
}

static void backup_flow(Ctx *x) {
        const char *ev = x->c->event;
        Outcome *o = x->o;
        char *data = harness_make_data(x->h, "data");
        int32_t hr, md;

        if (vss_backup_initialize_for_backup(x->b) < 0 || vss_backup_set_backup_state(x->b, false, false, VSS_BT_FULL, false) < 0)
                inv(o, "cannot-initialize");
        md = phase(x, vss_backup_gather_writer_metadata, "identify");
        if (vss_backup_start_snapshot_set(x->b, NULL) < 0 || vss_backup_add_to_snapshot_set(x->b, data, NULL, NULL) < 0)
                inv(o, "cannot-start-set");
        hr = phase(x, vss_backup_prepare_for_backup, "prepare-backup");
        if (in_words("identify prepare-backup", ev)) {
                o->has_op = true;
                o->op = streq(ev, "identify") ? md : hr;
                observe_status(x->b, o);
        }
        hr = phase(x, vss_backup_do_snapshot_set, "prepare-snapshot freeze thaw abort post-snapshot");
        if (hr != 0)
                check_no_partial_set(x->h, o);
        if (in_words("prepare-snapshot freeze thaw abort post-snapshot", ev)) {
                o->has_op = true;
                o->op = hr;
                observe_status(x->b, o);
        }
        if (hr == 0) {
                hr = phase(x, vss_backup_backup_complete, "backup-complete");
                if (streq(ev, "backup-complete")) {
                        o->has_op = true;
                        o->op = hr;
                        observe_status(x->b, o);
                }
        }
        x->b = vss_backup_release(x->b);
        if (streq(ev, "backup-shutdown")) {
                if (x->c->fault == FAULT_CRASH) {
                        if (harness_wait_started(x->h, "be", ev)) {
                                kill(x->be, SIGKILL);
                                x->be_killed = true;
                        } else
                                inv(o, "crash:%s-never-started", ev);
                }
                /* Released: what is left is the admin view. Wait for be's answer or deadline; a
                 * killed writer may first show as not responding to BackupShutdown, and is gone
                 * once vssd has seen its connection close: wait for that, the final word. */
                o->has_op = false;
                for (int i = 0; i < 200; i++) {
                        o->be = admin_status(x->h, "be");
                        if (x->be_killed ? o->be.state == ST_GONE : o->be.state == VSS_WS_FAILED_AT_BACKUP_SHUTDOWN)
                                break;
                        sleep_ms(100);
                }
                o->fe = admin_status(x->h, "fe");
        }
        /* The bystander always gets BackupShutdown. */
        if (!wait_event(x->h, "fe", "backup-shutdown", 8000))
                inv(o, "no-backup-shutdown:fe");
}

static void restore_flow(Ctx *x) {
        Outcome *o = x->o;
        int32_t hr;
        if (vss_backup_initialize_for_restore(x->b, NULL) < 0)
                inv(o, "cannot-initialize-for-restore");
        phase(x, vss_backup_gather_writer_metadata, "identify");
        hr = phase(x, vss_backup_pre_restore, "pre-restore");
        if (streq(x->c->event, "pre-restore")) {
                o->has_op = true;
                o->op = hr;
                observe_status(x->b, o);
                return;
        }
        hr = phase(x, vss_backup_post_restore, "post-restore");
        o->has_op = true;
        o->op = hr;
        observe_status(x->b, o);
}

static void run_writer_fault(const Case *c, Outcome *o) {
        Harness *h = new_harness(writer_fault_config);
        Ctx x = { .c = c, .h = h, .o = o };
        /* Abort: fe, a system writer here (frozen after be), vetoes its Freeze: be, frozen, is sent Abort. */
        bool abort_case = streq(c->event, "abort");
        harness_writer(h, "fe", abort_case ? fe_system_args : fe_args);
        x.be = harness_writer(h, "be", be_args);
        harness_set(h, "be", c->event,
                    c->fault == FAULT_VETO ? "fail 75 fault injected" : c->fault == FAULT_HANG ? "hang" : "block 20");
        if (abort_case)
                harness_set(h, "fe", "freeze", "fail 75 fault injected");
        if (vss_backup_new(harness_socket(h), &x.b) < 0) {
                inv(o, "cannot-connect");
                return;
        }
        bool restore = streq(c->event, "pre-restore") || streq(c->event, "post-restore");
        if (restore)
                restore_flow(&x);
        else
                backup_flow(&x);
        vss_backup_release(x.b);
        check_writer_not_frozen(h, o, "fe");
        if (!x.be_killed)
                check_writer_not_frozen(h, o, "be");
        check_shadows_and_registry(h, o, 0);
}

/* ---- the requester killed ---- */

/* The requester, in a child: signals the parent on fd after each phase named in stop_after. */
static _Noreturn void requester_child(Harness *h, int fd, const char *stop_after, bool persistent, const char *path,
                                      const char *provider) {
        char *data = path ? (char *) path : harness_make_data(h, "data");
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            (persistent && vss_backup_set_context(b, VSS_CTX_APP_ROLLBACK) < 0) ||
            vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0 || vss_backup_start_snapshot_set(b, NULL) < 0 ||
            vss_backup_add_to_snapshot_set(b, data, provider, NULL) < 0 || vss_backup_prepare_for_backup_sync(b) < 0)
                _exit(3);
        if (streq(stop_after, "prepare-backup")) {
                (void) !write(fd, "x", 1);
                pause();
        }
        if (vss_backup_do_snapshot_set_sync(b) < 0)
                _exit(4);
        if (streq(stop_after, "do-snapshot-set")) {
                (void) !write(fd, "x", 1);
                pause();
        }
        _exit(0);
}

static void run_requester_killed(const Case *c, Outcome *o) {
        Harness *h = new_harness(NULL);
        static const char *const fe[] = { "--app-level", "front-end", NULL };
        static const char *const be[] = { "--app-level", "back-end", NULL };
        bool persistent = strstr(c->name, "persistent") != NULL;
        int p[2];
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        if (streq(c->event, "freeze"))
                harness_set(h, "be", "freeze", "block 2");
        if (pipe2(p, O_CLOEXEC) < 0) {
                inv(o, "pipe");
                return;
        }
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                requester_child(h, p[1], c->event, persistent, NULL, NULL);
        }
        close(p[1]);
        bool reached;
        if (streq(c->event, "freeze"))
                reached = harness_wait_started(h, "be", "freeze");
        else {
                struct pollfd pf = { .fd = p[0], .events = POLLIN };
                char ch;
                reached = poll(&pf, 1, 30000) == 1 && read(p[0], &ch, 1) == 1;
        }
        close(p[0]);
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        if (!reached)
                inv(o, "requester-never-reached-%s(status 0x%x)", c->event, st);
        /* Everyone is told: BackupShutdown (after Abort where frozen). */
        if (!wait_event(h, "fe", "backup-shutdown", 8000) || !wait_event(h, "be", "backup-shutdown", 8000))
                inv(o, "no-backup-shutdown");
        check_writer_not_frozen(h, o, "fe");
        check_writer_not_frozen(h, o, "be");
        _cleanup_free_ char *fev = harness_events(h, "fe"), *bev = harness_events(h, "be");
        /* The machine-wide snapshot set slot is free again. */
        vss_backup *b2 = harness_session(h);
        int32_t hr = vss_backup_start_snapshot_set(b2, NULL);
        vss_backup_release(b2);
        snprintf(o->extra, sizeof(o->extra), "fe:%s,be:%s,set-slot=%s", fev, bev, hr == 0 ? "free" : "busy");
        check_shadows_and_registry(h, o, persistent ? 1 : 0);
}

/* ---- vssd killed ---- */

/* vssd is SIGKILLed while be's hook handles c->event (freeze: fe is frozen, be freezing; thaw:
 * the set is cut, be thawing, fe still frozen). */
static void run_vssd_killed_mid(const Case *c, Outcome *o) {
        Harness *h = new_harness(NULL);
        static const char *const fe[] = { "--app-level", "front-end", NULL };
        static const char *const be[] = { "--app-level", "back-end", NULL };
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        harness_set(h, "be", c->event, "block 2");
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0 || vss_backup_do_snapshot_set(b, &a) < 0)
                inv(o, "cannot-start");
        if (!harness_wait_started(h, "be", c->event))
                inv(o, "%s-never-started", c->event);
        harness_kill_vssd(h);
        /* Was the set cut already (the restarted vssd must then remove it)? */
        bool cut = harness_count_shadow_files(h) > 0;
        o->has_op = true;
        o->op = a ? vss_async_wait(a, 10000) : 0;
        vss_async_unref(a);
        vss_backup_release(b);
        /* Frozen writers thaw themselves: fe at once, be once its Freeze hook is done. */
        check_writer_not_frozen(h, o, "fe");
        check_writer_not_frozen(h, o, "be");
        _cleanup_free_ char *fev = harness_events(h, "fe"), *bev = harness_events(h, "be");
        snprintf(o->extra, sizeof(o->extra), "cut=%s,fe:%s,be:%s", cut ? "yes" : "no", fev, bev);
        harness_restart_vssd(h);
        check_shadows_and_registry(h, o, 0);
}

static void run_vssd_killed_after_persistent_set(const Case *c, Outcome *o) {
        Harness *h = new_harness(NULL);
        char *data = harness_make_data(h, "data");
        vss_id shadow;
        vss_snapshot_prop prop = {};
        char sid[VSS_ID_STRING_MAX];
        harness_writer(h, "fe", NULL);
        harness_writer(h, "be", NULL);
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_set_context(b, VSS_CTX_APP_ROLLBACK) < 0 || vss_backup_gather_writer_metadata_sync(b) < 0 ||
            vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, &shadow) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0 || vss_backup_do_snapshot_set_sync(b) < 0 ||
            vss_backup_get_snapshot_properties(b, &shadow, &prop) < 0)
                inv(o, "cannot-commit:%s", vss_backup_errmsg(b));
        vss_id_to_string(&shadow, sid);
        /* Committed: vssd dies before BackupComplete. */
        harness_kill_vssd(h);
        o->has_op = true;
        o->op = vss_backup_backup_complete_sync(b);
        vss_backup_release(b);
        check_writer_not_frozen(h, o, "fe");
        check_writer_not_frozen(h, o, "be");
        harness_restart_vssd(h);
        int n;
        _cleanup_free_ char *ids = list_shadows(h, &n);
        bool kept = ids && strstr(ids, sid) && harness_sh(h, NULL, "diff -r '%s' '%s'", data, prop.shadow_path) == 0;
        snprintf(o->extra, sizeof(o->extra), "shadow-kept-intact=%s", kept ? "yes" : "no");
        check_shadows_and_registry(h, o, 1);
}

/* ---- providers failing ---- */

/* The state directory is a tiny tmpfs: the copy runs out of space mid-commit. */
static void provider_file_no_space(Outcome *o, bool many) {
        Harness *h = new_harness(NULL);
        static const char *const fe[] = { "--app-level", "front-end", NULL };
        static const char *const be[] = { "--app-level", "back-end", NULL };
        char data[600];
        snprintf(data, sizeof(data), "%s/big", harness_dir(h));
        if ((many ? harness_sh(h, NULL, "mkdir -p %s && for i in $(seq 100); do head -c 4096 /dev/urandom > %s/f$i; done",
                               data, data)
                  : harness_sh(h, NULL, "mkdir -p %s && head -c 2000000 /dev/urandom > %s/blob", data, data)) != 0)
                inv(o, "cannot-make-data");
        harness_state_on_tmpfs(h, "256k");
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        vss_backup *b = harness_session(h);
        if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0)
                inv(o, "cannot-prepare");
        o->has_op = true;
        o->op = vss_backup_do_snapshot_set_sync(b);
        check_no_partial_set(h, o);
        observe_status(b, o);
        vss_backup_release(b);
        check_writer_not_frozen(h, o, "fe");
        check_writer_not_frozen(h, o, "be");
        check_shadows_and_registry(h, o, 0);
}

/* One file of 2 MB: the walker's own copy fails. */
static void run_provider_file_no_space(const Case *c, Outcome *o) {
        provider_file_no_space(o, false);
}

/* 100 files of 4 KiB in 256 KiB: the space runs out at a file past the 8th, which the copy's
 * worker threads finish (providers/file/copy-pool.c) when the machine has more than one CPU. */
static void run_provider_file_no_space_in_worker(const Case *c, Outcome *o) {
        provider_file_no_space(o, true);
}

/* A harness whose vssd has the fault shim preloaded, with var=value telling it what to break;
 * the writers and the requester started later do not have it. Under ASan the shim comes before
 * the ASan runtime in vssd's library list, which ASan refuses unless told the order is fine (the
 * shim wraps no allocator). */
static Harness *harness_with_shim(const char *config, const char *var, const char *value) {
        _cleanup_free_ char *asan = getenv("ASAN_OPTIONS") ? strdup(getenv("ASAN_OPTIONS")) : NULL;
#if defined(__SANITIZE_ADDRESS__)
        char opts[1024];
        snprintf(opts, sizeof(opts), "%s%sverify_asan_link_order=0", asan ? asan : "", asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
#endif
        setenv("LD_PRELOAD", FAULT_SHIM_PATH, 1);
        setenv(var, value, 1);
        Harness *h = new_harness(config);
        unsetenv("LD_PRELOAD");
        unsetenv(var);
        if (asan)
                setenv("ASAN_OPTIONS", asan, 1);
        else
                unsetenv("ASAN_OPTIONS");
        return h;
}

/* Under the shim (var=value): writers fe and be at their app levels, with extra (their freeze
 * window, say), a set of a data directory prepared and made. The result goes in o, whose error must
 * say `says`; nothing of the set may be left; the writers' status is observed and the session
 * released. Returns the harness for the case's own checks. */
static Harness *dss_under_shim(Outcome *o, const char *config, const char *var, const char *value, const char *extra,
                               const char *says) {
        Harness *h = harness_with_shim(config, var, value);
        /* extra: the front-end writer's freeze window; the back-end's, from its own Freeze, is the
         * default (60 s), so only the front-end's can run out. */
        const char *const fe[] = { "--app-level", "front-end", extra ? "--freeze-timeout" : NULL, extra, NULL };
        const char *const be[] = { "--app-level", "back-end", NULL };
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        vss_backup *b = harness_session(h);
        if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0)
                inv(o, "cannot-prepare");
        o->has_op = true;
        o->op = vss_backup_do_snapshot_set_sync(b);
        if (!strstr(vss_backup_errmsg(b), says))
                inv(o, "error-does-not-say:%s", vss_backup_errmsg(b));
        check_no_partial_set(h, o);
        observe_status(b, o);
        vss_backup_release(b);
        return h;
}

/* The file provider's copy is cut, then its sync fails (EIO, from the fail-fsync shim preloaded
 * into vssd): the writers were thawed at the cut, yet the set fails, they get Abort and nothing of
 * it is kept. */
static void run_provider_file_sync_fails(const Case *c, Outcome *o) {
        Harness *h = dss_under_shim(o, NULL, "FAIL_FSYNC_UNDER", "/shadows/", NULL, "durable");
        check_writer_not_frozen(h, o, "fe");
        check_writer_not_frozen(h, o, "be");
        /* Thawed at the cut (unless vssd saw the child's exit first) and aborted; never told the
         * snapshot was made. */
        _cleanup_free_ char *ev = harness_events(h, "be");
        if (!ev || !strstr(ev, " abort") || strstr(ev, "post-snapshot"))
                inv(o, "not-aborted:%s", ev ? ev : "");
        check_shadows_and_registry(h, o, 0);
}

/* Arms the shim's failure of the next fsync of the registry's WAL (FAIL_SYNC_ARMED_BY) by making
 * the file arm, or disarms it (the shim removes it when it fails one). */
static void registry_sync_arm(Outcome *o, const char *arm, bool on) {
        if (!on) {
                (void) unlink(arm);
                return;
        }
        int fd = open(arm, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                inv(o, "cannot-arm:%s", strerror(errno));
        else
                close(fd);
}

/* The registry cannot make a record of the set durable (its WAL's fsync fails once with EIO, from
 * the shim): armed before DoSnapshotSet, the 'creating' record fails and the set with it, before
 * anyone is frozen or anything is cut (a cut whose record a power loss could take would be left
 * for no start to delete); armed while a writer is in Freeze, the 'committed' record fails after
 * the cut, before PostSnapshot: the writers get Abort instead, and what was cut is deleted. Either
 * way nothing of the set is kept and no writer is told it was made. */
static void run_registry_sync_fails(const Case *c, Outcome *o) {
        char arm[64], spec[128];
        bool at_freeze = streq(c->event, "freeze");
        snprintf(arm, sizeof(arm), "/tmp/openvss-fault-arm-%d", (int) getpid());
        snprintf(spec, sizeof(spec), "registry.db-wal:%s", arm);
        registry_sync_arm(o, arm, false);
        Harness *h = harness_with_shim(NULL, "FAIL_SYNC_ARMED_BY", spec);
        static const char *const fe[] = { "--app-level", "front-end", NULL };
        static const char *const be[] = { "--app-level", "back-end", NULL };
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        if (at_freeze)
                harness_set(h, "be", "freeze", "block 1");
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0)
                inv(o, "cannot-prepare");
        if (!at_freeze)
                registry_sync_arm(o, arm, true);
        if (vss_backup_do_snapshot_set(b, &a) < 0)
                inv(o, "cannot-start");
        if (at_freeze) {
                if (!harness_wait_started(h, "be", "freeze"))
                        inv(o, "freeze-never-seen");
                registry_sync_arm(o, arm, true);
        }
        o->has_op = true;
        o->op = a ? vss_async_wait(a, 30000) : 0;
        vss_async_unref(a);
        registry_sync_arm(o, arm, false);
        if (!strstr(vss_backup_errmsg(b), "cannot record the snapshot set"))
                inv(o, "error-does-not-say:%s", vss_backup_errmsg(b));
        check_no_partial_set(h, o);
        observe_status(b, o);
        vss_backup_release(b);
        _cleanup_free_ char *ev = harness_events(h, "be");
        if (!ev || (!at_freeze && (strstr(ev, "freeze") || !strstr(ev, "prepare-snapshot abort"))) ||
            (at_freeze && (strstr(ev, "post-snapshot") || !strstr(ev, "thaw abort"))))
                inv(o, "frozen-or-not-aborted:%s", ev ? ev : "");
        check_shadows_and_registry(h, o, 0);
}

/* The commit helper (started before the first Freeze) dies before it is ready, or is never ready
 * (the writers' PrepareForSnapshot timeout bounds it): nobody is frozen, the set fails saying so
 * and nothing of it is kept. */
static void run_commit_helper(Outcome *o, const char *how, const char *config, const char *says) {
        Harness *h = dss_under_shim(o, config, "FAIL_COMMIT_HELPER", how, NULL, says);
        _cleanup_free_ char *ev = harness_events(h, "be");
        if (!ev || strstr(ev, "freeze") || !strstr(ev, "prepare-snapshot abort"))
                inv(o, "frozen-or-not-aborted:%s", ev ? ev : "");
        check_shadows_and_registry(h, o, 0);
}

static void run_commit_helper_cannot_start(const Case *c, Outcome *o) {
        run_commit_helper(o, "1", NULL, "commit helper could not start");
}

/* The requester cancels while vssd waits for a commit helper that never gets ready (the default
 * bound is long): the set ends at once, nobody frozen. */
static void run_commit_helper_cancelled_waiting(const Case *c, Outcome *o) {
        Harness *h = harness_with_shim(NULL, "FAIL_COMMIT_HELPER", "hang");
        static const char *const fe[] = { "--app-level", "front-end", NULL };
        static const char *const be[] = { "--app-level", "back-end", NULL };
        char *data = harness_make_data(h, "data");
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        vss_backup *b = harness_session(h);
        vss_async *a = NULL;
        if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0 || vss_backup_do_snapshot_set(b, &a) < 0)
                inv(o, "cannot-start");
        /* Both answered PrepareForSnapshot: vssd waits for the helper now (or is about to). */
        if (!wait_event(h, "fe", "prepare-snapshot", 10000) || !wait_event(h, "be", "prepare-snapshot", 10000))
                inv(o, "prepare-snapshot-never-seen");
        if (a && vss_async_cancel(a) != 0)
                inv(o, "cancel-failed");
        o->has_op = true;
        o->op = a ? vss_async_wait(a, 20000) : 0;
        vss_async_unref(a);
        check_no_partial_set(h, o);
        observe_status(b, o);
        vss_backup_release(b);
        _cleanup_free_ char *ev = harness_events(h, "be");
        if (!ev || strstr(ev, "freeze") || !strstr(ev, "prepare-snapshot abort"))
                inv(o, "frozen-or-not-aborted:%s", ev ? ev : "");
        check_shadows_and_registry(h, o, 0);
}

/* A helper that is loaded but slow to read its job, then its go: the first Freeze does not wait
 * for it, and the front-end writer's freeze window (500 ms) still bounds its commit (800 ms),
 * though it says it is ready only after it was told to go: the set aborts, nothing made, nobody
 * left frozen; the back-end writer, whose own window had not run out, is aborted (Stable). */
static void run_commit_helper_slow_job(const Case *c, Outcome *o) {
        Harness *h = dss_under_shim(o, NULL, "FAIL_COMMIT_HELPER", "slow-job", "500", "freeze window");
        _cleanup_free_ char *ev = harness_events(h, "be");
        if (!ev || !strstr(ev, "freeze") || !strstr(ev, "abort"))
                inv(o, "not-frozen-or-not-aborted:%s", ev ? ev : "");
        check_shadows_and_registry(h, o, 0);
}

static void run_commit_helper_never_ready(const Case *c, Outcome *o) {
        run_commit_helper(o, "hang", "{\"timeouts\": {\"prepare_snapshot_ms\": 1000}}", "not ready within 1000 ms");
}

/* An exec provider on a loop filesystem the case makes: vssd holds it frozen while the command
 * runs. create: the command's shell text. */
static void run_provider_exec(const Case *c, Outcome *o, const char *hold_ms, const char *create) {
        char cfg[1024];
        snprintf(cfg, sizeof(cfg),
                 "{\"hold_window_ms\": %s, \"providers\": [{\"type\": \"exec\", \"name\": \"image\", "
                 "\"create\": \"%s\", \"delete\": \"true\"}]}",
                 hold_ms, create);
        Harness *h = new_harness(cfg);
        static const char *const fe[] = { "--app-level", "front-end", NULL };
        static const char *const be[] = { "--app-level", "back-end", NULL };
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        vss_backup *b = harness_session(h);
        if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, mnt, "image", NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0)
                inv(o, "cannot-prepare:%s", vss_backup_errmsg(b));
        o->has_op = true;
        o->op = vss_backup_do_snapshot_set_sync(b);
        /* Released at once, not at the end of the case. */
        check_fs_writable(h, o, mnt);
        check_no_partial_set(h, o);
        observe_status(b, o);
        vss_backup_release(b);
        check_writer_not_frozen(h, o, "fe");
        check_writer_not_frozen(h, o, "be");
        check_shadows_and_registry(h, o, 0);
        check_fs_writable(h, o, mnt);
}

static void run_provider_exec_fails(const Case *c, Outcome *o) {
        run_provider_exec(c, o, "10000", "echo cannot cut the snapshot >&2; exit 3");
}

static void run_provider_exec_hangs(const Case *c, Outcome *o) {
        run_provider_exec(c, o, "700", "sleep 5; echo /nonexistent");
}

/* vssd (or the requester) is SIGKILLed while vssd's lease helper holds a loop filesystem frozen
 * for an exec provider: the filesystem must be thawed at once, nothing of the set kept. */
static void run_killed_during_hold(const Case *c, Outcome *o, bool kill_vssd) {
        Harness *h = new_harness("{\"hold_window_ms\": 30000, \"providers\": [{\"type\": \"exec\", \"name\": \"image\", "
                                 "\"create\": \"touch $HARNESS_DIR/exec-started; sleep 20; echo /nonexistent\", "
                                 "\"delete\": \"true\"}]}");
        static const char *const fe[] = { "--app-level", "front-end", NULL };
        static const char *const be[] = { "--app-level", "back-end", NULL };
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        const char *dir = harness_dir(h);
        harness_writer(h, "fe", fe);
        harness_writer(h, "be", be);
        vss_backup *b = NULL;
        vss_async *a = NULL;
        pid_t pid = -1;
        if (kill_vssd) {
                b = harness_session(h);
                if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, mnt, "image", NULL) < 0 ||
                    vss_backup_prepare_for_backup_sync(b) < 0 || vss_backup_do_snapshot_set(b, &a) < 0)
                        inv(o, "cannot-start:%s", vss_backup_errmsg(b));
        } else if ((pid = fork()) == 0)
                requester_child(h, -1, "", false, mnt, "image");
        bool started = harness_sh(h, NULL, "for i in $(seq 400); do [ -e %s/exec-started ] && exit 0; sleep 0.05; done; exit 1", dir) == 0;
        if (!started)
                inv(o, "exec-provider-never-started");
        /* Held: a write started now does not finish. */
        harness_sh(h, NULL, "(echo during > %s/during-hold; sync %s/during-hold; touch %s/write-done) >/dev/null 2>&1 &", mnt, mnt, dir);
        sleep_ms(300);
        bool held = harness_sh(h, NULL, "[ -e %s/write-done ]", dir) != 0;
        if (kill_vssd)
                harness_kill_vssd(h);
        else {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        /* Thawed at once: the blocked write finishes. */
        if (harness_sh(h, NULL, "for i in $(seq 60); do [ -e %s/write-done ] && exit 0; sleep 0.05; done; exit 1", dir) != 0)
                inv(o, "fs-still-frozen-3s-after-the-kill");
        check_fs_writable(h, o, mnt);
        if (kill_vssd) {
                o->has_op = true;
                o->op = a ? vss_async_wait(a, 10000) : 0;
                vss_async_unref(a);
                vss_backup_release(b);
        } else if (!wait_event(h, "fe", "backup-shutdown", 8000) || !wait_event(h, "be", "backup-shutdown", 8000))
                inv(o, "no-backup-shutdown");
        check_writer_not_frozen(h, o, "fe");
        check_writer_not_frozen(h, o, "be");
        _cleanup_free_ char *fev = harness_events(h, "fe"), *bev = harness_events(h, "be");
        snprintf(o->extra, sizeof(o->extra), "held=%s,fe:%s,be:%s", held ? "yes" : "no", fev, bev);
        if (kill_vssd)
                harness_restart_vssd(h);
        check_shadows_and_registry(h, o, 0);
        check_fs_writable(h, o, mnt);
}

static void run_vssd_killed_during_hold(const Case *c, Outcome *o) {
        run_killed_during_hold(c, o, true);
}

static void run_requester_killed_during_hold(const Case *c, Outcome *o) {
        run_killed_during_hold(c, o, false);
}

/* ---- the table ---- */

#define OK 0
#define RETRYABLE VSS_E_WRITERERROR_RETRYABLE
#define NOT_RESPONDING VSS_E_WRITER_NOT_RESPONDING
#define W(st, f, code) { .state = (st), .failure = (f), .app_code = (code) }
#define WA(st) { .state = (st), .aborted = true }
#define SKIP { .state = ST_SKIP }

/* The culprit's failure and application code for each kind of fault. */
#define VETO_F RETRYABLE, 75
#define HANG_F NOT_RESPONDING, 0
#define CRASH_F NOT_RESPONDING, 0

/* One row per event and fault: what the requester's call returns, the culprit's status (be) and
 * the bystander's (fe). */
#define WRITER_CASES(kind, F, FAULTKIND)                                                                              \
        { kind "-identify", run_writer_fault, "identify", FAULTKIND,                                                  \
          { .has_op = true, .op = OK, .be = { ST_NONE }, .fe = W(VSS_WS_STABLE, 0, 0) } },                          \
        { kind "-prepare-backup", run_writer_fault, "prepare-backup", FAULTKIND,                                      \
          { .has_op = true, .op = OK, .be = W(VSS_WS_FAILED_AT_PREPARE_BACKUP, F), .fe = W(VSS_WS_STABLE, 0, 0) } }, \
        { kind "-prepare-snapshot", run_writer_fault, "prepare-snapshot", FAULTKIND,                                  \
          { .has_op = true, .op = OK, .be = W(VSS_WS_FAILED_AT_PREPARE_SNAPSHOT, F),                                 \
            .fe = W(VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0, 0) } },                                                    \
        { kind "-freeze", run_writer_fault, "freeze", FAULTKIND,                                                      \
          { .has_op = true, .op = FIRST(F), .be = W(VSS_WS_FAILED_AT_FREEZE, F), .fe = WA(VSS_WS_STABLE) } },       \
        { kind "-thaw", run_writer_fault, "thaw", FAULTKIND,                                                          \
          { .has_op = true, .op = FIRST(F), .be = W(VSS_WS_FAILED_AT_THAW, F), .fe = WA(VSS_WS_STABLE) } },         \
        { kind "-abort", run_writer_fault, "abort", FAULTKIND,                                                        \
          { .has_op = true, .op = RETRYABLE, .be = ABORT_##FAULTKIND(F), .fe = W(VSS_WS_FAILED_AT_FREEZE, RETRYABLE, 75) } }, \
        { kind "-post-snapshot", run_writer_fault, "post-snapshot", FAULTKIND,                                        \
          { .has_op = true, .op = OK, .be = W(VSS_WS_FAILED_AT_POST_SNAPSHOT, F),                                    \
            .fe = W(VSS_WS_WAITING_FOR_BACKUP_COMPLETE, 0, 0) } },                                                    \
        { kind "-backup-complete", run_writer_fault, "backup-complete", FAULTKIND,                                    \
          { .has_op = true, .op = OK, .be = W(VSS_WS_FAILED_AT_BACKUP_COMPLETE, F), .fe = W(VSS_WS_STABLE, 0, 0) } }, \
        { kind "-backup-shutdown", run_writer_fault, "backup-shutdown", FAULTKIND,                                    \
          { .has_op = false, .be = SHUTDOWN_##FAULTKIND(F), .fe = W(VSS_WS_STABLE, 0, 0) } },                        \
        { kind "-pre-restore", run_writer_fault, "pre-restore", FAULTKIND,                                            \
          { .has_op = true, .op = OK, .be = W(VSS_WS_FAILED_AT_PRE_RESTORE, F), .fe = W(VSS_WS_STABLE, 0, 0) } },   \
        { kind "-post-restore", run_writer_fault, "post-restore", FAULTKIND,                                          \
          { .has_op = true, .op = OK, .be = W(VSS_WS_FAILED_AT_POST_RESTORE, F), .fe = W(VSS_WS_STABLE, 0, 0) } }
#define FIRST(...) FIRST_(__VA_ARGS__, 0)
#define FIRST_(a, ...) a
/* BackupShutdown comes after the session is released: the admin view shows the culprit's last
 * status; a crashed writer is gone from it. */
/* A writer's failing Abort is its own business (it was aborted); no answer to Abort at all means
 * nobody knows it let go: not responding, failed at Freeze (it was frozen). */
#define ABORT_FAULT_VETO(...) WA(VSS_WS_STABLE)
#define ABORT_FAULT_HANG(...) { .state = VSS_WS_FAILED_AT_FREEZE, .failure = NOT_RESPONDING }
#define ABORT_FAULT_CRASH(...) { .state = VSS_WS_FAILED_AT_FREEZE, .failure = NOT_RESPONDING }
#define SHUTDOWN_FAULT_VETO(...) W(VSS_WS_FAILED_AT_BACKUP_SHUTDOWN, __VA_ARGS__)
#define SHUTDOWN_FAULT_HANG(...) W(VSS_WS_FAILED_AT_BACKUP_SHUTDOWN, __VA_ARGS__)
#define SHUTDOWN_FAULT_CRASH(...) { .state = ST_GONE }

#define EV_SHUTDOWN "identify_prepare-backup_backup-shutdown"
#define EV_ABORTED "identify_prepare-backup_prepare-snapshot_freeze_abort_backup-shutdown"
#define EV_DONE "identify_prepare-backup_prepare-snapshot_freeze_thaw_post-snapshot_backup-shutdown"

static const Case cases[] = {
        WRITER_CASES("veto", VETO_F, FAULT_VETO),
        WRITER_CASES("hang", HANG_F, FAULT_HANG),
        WRITER_CASES("crash", CRASH_F, FAULT_CRASH),
        /* The requester is SIGKILLed: after prepare-for-backup, mid-freeze (be blocks in Freeze),
         * after do-snapshot-set (auto-release: its shadows go; persistent: kept). */
        { "requester-killed-after-prepare-backup", run_requester_killed, "prepare-backup", FAULT_NONE,
          { .be = SKIP, .fe = SKIP, .extra = "fe:" EV_SHUTDOWN ",be:" EV_SHUTDOWN ",set-slot=free" } },
        { "requester-killed-mid-freeze", run_requester_killed, "freeze", FAULT_NONE,
          { .be = SKIP, .fe = SKIP, .extra = "fe:" EV_ABORTED ",be:" EV_ABORTED ",set-slot=free" } },
        { "requester-killed-after-do-snapshot-set", run_requester_killed, "do-snapshot-set", FAULT_NONE,
          { .be = SKIP, .fe = SKIP, .extra = "fe:" EV_DONE ",be:" EV_DONE ",set-slot=free" } },
        { "requester-killed-after-persistent-set", run_requester_killed, "do-snapshot-set", FAULT_NONE,
          { .be = SKIP, .fe = SKIP, .shadows = 1, .extra = "fe:" EV_DONE ",be:" EV_DONE ",set-slot=free" } },
        { "requester-killed-during-hold", run_requester_killed_during_hold, "commit", FAULT_NONE,
          { .be = SKIP, .fe = SKIP, .extra = "held=yes,fe:" EV_ABORTED ",be:" EV_ABORTED } },
        /* vssd is SIGKILLed and restarted: writers thaw themselves; a committed persistent set
         * survives, an unfinished one leaves nothing. */
        { "vssd-killed-mid-freeze", run_vssd_killed_mid, "freeze", FAULT_NONE,
          { .has_op = true, .op = VSS_E_WRITER_INFRASTRUCTURE, .be = SKIP, .fe = SKIP,
            .extra = "cut=no,fe:identify_prepare-backup_prepare-snapshot_freeze_abort,"
                     "be:identify_prepare-backup_prepare-snapshot_freeze_abort" } },
        { "vssd-killed-mid-thaw", run_vssd_killed_mid, "thaw", FAULT_NONE,
          { .has_op = true, .op = VSS_E_WRITER_INFRASTRUCTURE, .be = SKIP, .fe = SKIP,
            .extra = "cut=yes,fe:identify_prepare-backup_prepare-snapshot_freeze_abort,"
                     "be:identify_prepare-backup_prepare-snapshot_freeze_thaw" } },
        { "vssd-killed-during-hold", run_vssd_killed_during_hold, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_WRITER_INFRASTRUCTURE, .be = SKIP, .fe = SKIP,
            .extra = "held=yes,fe:identify_prepare-backup_prepare-snapshot_freeze_abort,"
                     "be:identify_prepare-backup_prepare-snapshot_freeze_abort" } },
        { "vssd-killed-after-persistent-set", run_vssd_killed_after_persistent_set, "backup-complete", FAULT_NONE,
          { .has_op = true, .op = VSS_E_WRITER_INFRASTRUCTURE, .be = SKIP, .fe = SKIP, .shadows = 1,
            .extra = "shadow-kept-intact=yes" } },
        /* Providers fail: everyone frozen is aborted, nothing of the set is left. */
        { "provider-file-no-space", run_provider_file_no_space, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_INSUFFICIENT_STORAGE, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "provider-file-no-space-in-worker", run_provider_file_no_space_in_worker, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_INSUFFICIENT_STORAGE, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "provider-file-sync-fails", run_provider_file_sync_fails, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_UNEXPECTED_PROVIDER_ERROR, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "registry-sync-fails", run_registry_sync_fails, "prepare-snapshot", FAULT_NONE,
          { .has_op = true, .op = VSS_E_UNEXPECTED_PROVIDER_ERROR, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "registry-commit-sync-fails", run_registry_sync_fails, "freeze", FAULT_NONE,
          { .has_op = true, .op = VSS_E_UNEXPECTED, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "commit-helper-cannot-start", run_commit_helper_cannot_start, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_UNEXPECTED_PROVIDER_ERROR, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "commit-helper-slow-job", run_commit_helper_slow_job, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_WRITERERROR_TIMEOUT, .be = WA(VSS_WS_STABLE), .fe = W(VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_TIMEOUT, 0) } },
        { "commit-helper-never-ready", run_commit_helper_never_ready, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_UNEXPECTED_PROVIDER_ERROR, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "commit-helper-cancelled-waiting", run_commit_helper_cancelled_waiting, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_S_ASYNC_CANCELLED, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "provider-exec-fails", run_provider_exec_fails, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_UNEXPECTED_PROVIDER_ERROR, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        { "provider-exec-hangs", run_provider_exec_hangs, "commit", FAULT_NONE,
          { .has_op = true, .op = VSS_E_HOLD_WRITES_TIMEOUT, .be = WA(VSS_WS_STABLE), .fe = WA(VSS_WS_STABLE) } },
        {},
};

static bool known_bug(const char *name) {
        for (const char *const *k = KNOWN_BUGS; *k; k++)
                if (streq(*k, name))
                        return true;
        return false;
}

static int run_case(const Case *c) {
        Outcome o = { .be = { ST_SKIP }, .fe = { ST_SKIP } };
        int before = test_failures;
        fprintf(stderr, "== %s\n", c->name);
        c->run(c, &o);
        if (case_harness) {
                /* For the test log: what each writer saw. */
                _cleanup_free_ char *fe = harness_events(case_harness, "fe"), *be = harness_events(case_harness, "be");
                fprintf(stderr, "events fe: %s\nevents be: %s\n", fe, be);
        }
        /* Stops writers and vssd, which must exit cleanly (counted in test_failures). */
        harness_free(case_harness);
        case_harness = NULL;
        _cleanup_free_ char *want = format_outcome(&c->expect), *got = format_outcome(&o);
        bool ok = streq(want, got) && test_failures == before;
        bool known = known_bug(c->name);
        const char *result = ok ? "ok" : known ? "KNOWN-BUG" : "FAIL";
        printf("MATRIX %s expected=%s observed=%s %s\n", c->name, want, got, result);
        if (!ok)
                fprintf(stderr, "%s: expected %s\n%*s observed %s%s\n", c->name, want, (int) strlen(c->name), "", got,
                        test_failures > before ? " (and the harness saw failures, above)" : "");
        if (ok && known) {
                fprintf(stderr, "%s passes but is listed in KNOWN_BUGS: remove it from the list\n", c->name);
                return 1;
        }
        if (known && !ok)
                printf("KNOWN BUG: %s\n", c->name);
        fflush(stdout);
        return ok || known ? 0 : 1;
}

int main(int argc, char *argv[]) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc > 1 && streq(argv[1], "--list")) {
                for (const Case *c = cases; c->name; c++)
                        printf("%s%s\n", c->name, known_bug(c->name) ? " known-bug" : "");
                return 0;
        }
        if (argc > 1 && streq(argv[1], "--check-list")) {
                /* meson.build names every case: it must name exactly the table's. */
                int bad = 0, n = 0;
                for (const Case *c = cases; c->name; c++, n++) {
                        bool found = false;
                        for (int i = 2; i < argc; i++)
                                found = found || streq(argv[i], c->name);
                        if (!found) {
                                fprintf(stderr, "case %s is not registered in tests/faults/meson.build\n", c->name);
                                bad++;
                        }
                }
                if (argc - 2 != n) {
                        fprintf(stderr, "tests/faults/meson.build names %d cases, the table has %d\n", argc - 2, n);
                        bad++;
                }
                return bad ? 1 : 0;
        }
        int failed = 0, ran = 0;
        for (const Case *c = cases; c->name; c++) {
                if (argc > 1 && !streq(argv[1], c->name))
                        continue;
                ran++;
                failed += run_case(c);
        }
        if (!ran) {
                fprintf(stderr, "no case named '%s' (see --list)\n", argc > 1 ? argv[1] : "");
                return 2;
        }
        return failed ? 1 : 0;
}
