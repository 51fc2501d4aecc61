/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The public writer API used directly in the test process: embedding with get_fd/dispatch, the
 * self-abort when vssd goes away, and what the API refuses. */

#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/client.h"
#include "tests/harness.h"

static const char *const back[] = { "--app-level", "back-end", NULL };

/* What the callbacks saw. */
static char events[1024];
static int event_mismatches;        /* a callback got an info->event that is not its own */
static int set_id_missing;          /* a sequence event without a snapshot set id */
static vss_id freeze_set_id, abort_set_id;
static int abort_calls;
static uint32_t prepare_backup_type; /* what PrepareForBackup said */
static uint64_t abort_usec;
static int32_t md_rc[8];            /* return codes inside the identify callback */
static const char *md_path;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static void reset_record(void) {
        events[0] = 0;
        event_mismatches = set_id_missing = abort_calls = 0;
        abort_usec = 0;
        freeze_set_id = abort_set_id = (vss_id) {};
        for (size_t i = 0; i < ELEMENTSOF(md_rc); i++)
                md_rc[i] = 1; /* "not called" */
}

static void record(const char *name) {
        size_t len = strlen(events);
        snprintf(events + len, sizeof(events) - len, "%s%s", len ? " " : "", name);
}

static bool on_event(const vss_event_info *info, vss_event want) {
        record(vss_event_name(want));
        if (info->event != want)
                event_mismatches++;
        if (want >= VSS_EVENT_PREPARE_BACKUP && want <= VSS_EVENT_POST_SNAPSHOT && vss_id_is_null(&info->snapshot_set_id))
                set_id_missing++;
        if (want == VSS_EVENT_FREEZE)
                freeze_set_id = info->snapshot_set_id;
        if (want == VSS_EVENT_PREPARE_BACKUP)
                prepare_backup_type = info->backup_type;
        if (want == VSS_EVENT_ABORT && abort_calls++ == 0) { /* the first Abort's */
                abort_set_id = info->snapshot_set_id;
                abort_usec = now_usec();
        }
        return true;
}

#define EVENT_CB(fn, ev)                                                           \
        static bool fn(vss_writer *w, const vss_event_info *info, void *userdata) { \
                return on_event(info, ev);                                         \
        }
EVENT_CB(cb_prepare_backup, VSS_EVENT_PREPARE_BACKUP)
EVENT_CB(cb_prepare_snapshot, VSS_EVENT_PREPARE_SNAPSHOT)
EVENT_CB(cb_freeze, VSS_EVENT_FREEZE)
EVENT_CB(cb_thaw, VSS_EVENT_THAW)
EVENT_CB(cb_post_snapshot, VSS_EVENT_POST_SNAPSHOT)
EVENT_CB(cb_abort, VSS_EVENT_ABORT)
EVENT_CB(cb_backup_complete, VSS_EVENT_BACKUP_COMPLETE)
EVENT_CB(cb_backup_shutdown, VSS_EVENT_BACKUP_SHUTDOWN)
EVENT_CB(cb_pre_restore, VSS_EVENT_PRE_RESTORE)
EVENT_CB(cb_post_restore, VSS_EVENT_POST_RESTORE)

/* One component "db" with one file group (md_path, "*.db", recursive). */
static bool cb_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        record("identify");
        md_rc[0] = vss_metadata_add_component(md, "", "db", "Database", true, false);
        md_rc[1] = vss_metadata_add_files(md, "", "db", md_path, "*.db", true);
        return true;
}

/* The builder's refusals, recorded; what it accepted is what the requester must see. */
static bool cb_identify_bad(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        record("identify");
        md_rc[0] = vss_metadata_add_component(md, "", "db", NULL, true, true);
        md_rc[1] = vss_metadata_add_component(md, "", "db", "again", true, true);        /* duplicate */
        md_rc[2] = vss_metadata_add_files(md, "", "nope", "/srv/x", NULL, false);          /* unknown component */
        md_rc[3] = vss_metadata_add_files(md, "other", "db", "/srv/x", NULL, false);       /* same name, other path */
        md_rc[4] = vss_metadata_add_component(md, "", "", NULL, true, true);               /* empty name */
        md_rc[5] = vss_metadata_add_files(md, "", "db", "", NULL, false);                  /* empty path */
        md_rc[6] = vss_metadata_add_component(md, "other", "db", NULL, true, true);        /* distinct: fine */
        md_rc[7] = vss_metadata_add_files(md, "", "db", "/srv/db", "*.db", true);
        return true;
}

static const vss_writer_callbacks all_callbacks = {
        .identify = cb_identify,
        .prepare_backup = cb_prepare_backup,
        .prepare_snapshot = cb_prepare_snapshot,
        .freeze = cb_freeze,
        .thaw = cb_thaw,
        .post_snapshot = cb_post_snapshot,
        .abort = cb_abort,
        .backup_complete = cb_backup_complete,
        .backup_shutdown = cb_backup_shutdown,
        .pre_restore = cb_pre_restore,
        .post_restore = cb_post_restore,
};

static vss_writer *new_writer(const char *name, vss_app_level level, const vss_writer_callbacks *cb) {
        vss_writer_options o = { .name = name, .app_level = level };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), 0);
        CHECK(w != NULL);
        return w;
}

/* Waits up to timeout_ms for the writer's fd, then dispatches; returns dispatch's result. */
static int pump(vss_writer *w, int timeout_ms) {
        struct pollfd p = { .fd = vss_writer_get_fd(w), .events = POLLIN };
        (void) poll(&p, 1, timeout_ms);
        return vss_writer_dispatch(w);
}

/* Forks a requester; the child never returns to the test (it must not run the harness's atexit). */
static pid_t fork_requester(int (*fn)(Harness *, const char *, const vss_id *), Harness *h, const char *data,
                            const vss_id *iid) {
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                exit(99);
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                _exit(fn(h, data, iid));
        }
        return pid;
}

/* The requester of embedded-dispatch: a full backup. Exit status: 0 all good, 10 + step on a
 * failed step, 30 + n when the writer's metadata is not what its identify callback built. */
static int full_backup(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0)
                return 10;
        if (vss_backup_initialize_for_backup(b) < 0 || vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false) < 0)
                return 11;
        if (vss_backup_gather_writer_metadata_sync(b) < 0)
                return 12;
        const vss_writer_metadata *md = vss_backup_metadata_get(b, 0);
        if (vss_backup_metadata_count(b) != 1 || !md)
                return 30;
        if (!streq(md->name, "embedded") || !vss_id_equal(&md->instance_id, iid) || md->app_level != VSS_APP_FRONT_END)
                return 31;
        if (md->n_components != 1)
                return 32;
        const vss_component_info *c = &md->components[0];
        if (!streq(c->logical_path, "") || !streq(c->name, "db") || !streq(c->caption, "Database") ||
            !c->selectable_for_backup || c->selectable_for_restore)
                return 33;
        if (c->n_files != 1 || !streq(c->files[0].path, data) || !streq(c->files[0].filespec, "*.db") ||
            !c->files[0].recursive)
                return 34;
        vss_id set;
        if (vss_backup_start_snapshot_set(b, &set) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0)
                return 13;
        if (vss_backup_prepare_for_backup_sync(b) < 0)
                return 14;
        if (vss_backup_do_snapshot_set_sync(b) < 0)
                return 15;
        if (vss_backup_backup_complete_sync(b) < 0)
                return 16;
        /* Tell the parent which set it was (it compares with what Freeze saw). */
        char path[600], ids[VSS_ID_STRING_MAX];
        snprintf(path, sizeof(path), "%s/set-id", harness_dir(h));
        FILE *f = fopen(path, "we");
        if (!f || fprintf(f, "%s", vss_id_to_string(&set, ids)) < 0 || fclose(f) != 0)
                return 17;
        vss_backup_free(b);
        return 0;
}

/* Dispatches w until child exits (or timeout_ms); returns its wait status, -1 on timeout. */
static int dispatch_until_exit(vss_writer *w, pid_t child, int timeout_ms, int *dispatch_errors) {
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * 1000;
        int status;
        while (now_usec() < deadline) {
                if (pump(w, 50) != 0)
                        (*dispatch_errors)++;
                if (waitpid(child, &status, WNOHANG) == child)
                        return status;
        }
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        fprintf(stderr, "requester child did not finish in time\n");
        return -1;
}

static void test_embedded_dispatch(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), path[600];
        reset_record();
        md_path = data;
        vss_writer *w = new_writer("embedded", VSS_APP_FRONT_END, &all_callbacks);
        if (!w)
                return;
        /* Not subscribed: no fd yet. */
        CHECK(vss_writer_get_fd(w) < 0);
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), 0);
        CHECK(vss_writer_get_fd(w) >= 0);
        /* Nothing pending: dispatch returns at once. */
        uint64_t t0 = now_usec();
        CHECK_HR(vss_writer_dispatch(w), 0);
        CHECK(now_usec() - t0 < 500000);

        vss_id iid = vss_writer_get_options(w)->instance_id;
        int errors = 0;
        pid_t child = fork_requester(full_backup, h, data, &iid);
        int status = dispatch_until_exit(w, child, 60000, &errors);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                fprintf(stderr, "requester child: status 0x%x (exit %d)\n", (unsigned) status,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
                test_failures++;
        }
        /* BackupShutdown comes with the end of the session: keep dispatching until it arrived. */
        for (int i = 0; i < 100 && !strstr(events, "backup-shutdown"); i++)
                if (pump(w, 50) != 0)
                        errors++;
        CHECK(errors == 0);
        CHECK_STR(events, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        CHECK(event_mismatches == 0);
        CHECK(set_id_missing == 0);
        CHECK(abort_calls == 0);
        CHECK_HR(md_rc[0], 0);
        CHECK_HR(md_rc[1], 0);
        CHECK(!vss_writer_is_frozen(w));

        /* Freeze was for the requester's set. */
        char ids[VSS_ID_STRING_MAX], *got = NULL;
        snprintf(path, sizeof(path), "cat %s/set-id", harness_dir(h));
        CHECK(harness_sh(h, &got, "%s", path) == 0);
        CHECK_STR(got, vss_id_to_string(&freeze_set_id, ids));
        free(got);

        CHECK_HR(vss_writer_unsubscribe(w), 0);
        CHECK_HR(vss_writer_unsubscribe(w), VSS_E_BAD_STATE);
        vss_writer_free(w);
}

/* The requester of self-abort-on-disconnect: runs into DoSnapshotSet, which vssd's death ends. */
static int into_snapshot(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0 || vss_backup_start_snapshot_set(b, NULL) < 0 ||
            vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 || vss_backup_prepare_for_backup_sync(b) < 0)
                return 10;
        int r = vss_backup_do_snapshot_set_sync(b);
        return r == VSS_E_WRITER_INFRASTRUCTURE ? 0 : 11;
}

static void test_self_abort_on_disconnect(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), started[600];
        reset_record();
        md_path = data; /* its component's files are in the set, so it takes part */
        harness_writer(h, "slow", back);
        harness_set(h, "slow", "freeze", "block 3");
        snprintf(started, sizeof(started), "%s/ctl/slow.freeze.started", harness_dir(h));
        vss_writer *w = new_writer("inproc", VSS_APP_FRONT_END, &all_callbacks);
        if (!w)
                return;
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), 0);

        pid_t child = fork_requester(into_snapshot, h, data, NULL);
        /* The front-end writer (here) freezes first; then the back-end one blocks in its Freeze. */
        int errors = 0;
        uint64_t deadline = now_usec() + 20 * 1000000ULL;
        while (access(started, F_OK) < 0 && now_usec() < deadline)
                if (pump(w, 20) != 0)
                        errors++;
        CHECK(access(started, F_OK) == 0);
        CHECK(errors == 0);
        CHECK(vss_writer_is_frozen(w));
        CHECK_STR(events, "identify prepare-backup prepare-snapshot freeze");

        /* vssd dies: the writer must thaw itself (Abort) at once, without any word from vssd. */
        harness_kill_vssd(h);
        uint64_t killed = now_usec();
        int last = 0;
        while (abort_calls == 0 && now_usec() - killed < 2000000ULL)
                last = pump(w, 20);
        CHECK(abort_calls == 1);
        if (abort_calls)
                CHECK(abort_usec - killed < 2000000ULL);
        /* The self-abort names the set it was frozen for. */
        CHECK(!vss_id_is_null(&freeze_set_id) && vss_id_equal(&abort_set_id, &freeze_set_id));
        CHECK(!vss_writer_is_frozen(w));
        CHECK_HR(last, VSS_E_WRITER_INFRASTRUCTURE);
        CHECK_HR(vss_writer_dispatch(w), VSS_E_WRITER_INFRASTRUCTURE);
        CHECK(strstr(vss_writer_errmsg(w), "lost") != NULL);
        CHECK_STR(events, "identify prepare-backup prepare-snapshot freeze abort");
        CHECK(event_mismatches == 0);

        /* The requester learns it too. */
        int status = -1;
        for (int i = 0; i < 500 && waitpid(child, &status, WNOHANG) != child; i++)
                usleep(20000);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                fprintf(stderr, "requester child: status 0x%x\n", (unsigned) status);
                test_failures++;
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
        }
        /* Freeing it now calls no second Abort. */
        vss_writer_free(w);
        CHECK(abort_calls == 1);
}

static void test_bad_options(void) {
        Harness *h = harness_new(NULL);
        char long_name[301], max_name[256], path[600];
        memset(long_name, 'x', 300);
        long_name[300] = 0;
        memset(max_name, 'y', 255);
        max_name[255] = 0;
        vss_writer *w = NULL;
        const vss_writer_callbacks *cb = &all_callbacks;

        CHECK_HR(vss_writer_new(NULL, cb, NULL, &w), VSS_E_INVALIDARG);
        vss_writer_options o = { .name = NULL };
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), VSS_E_INVALIDARG);
        o.name = "";
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), VSS_E_INVALIDARG);
        o.name = long_name;
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), VSS_E_INVALIDARG);
        o = (vss_writer_options) { .name = "w", .instance_name = long_name };
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), VSS_E_INVALIDARG);
        o = (vss_writer_options) { .name = "w", .app_level = (vss_app_level) 7 };
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), VSS_E_INVALIDARG);
        o = (vss_writer_options) { .name = "w", .freeze_window_ms = 11u * 60u * 1000u };
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), VSS_E_INVALIDARG);
        CHECK(w == NULL);
        /* The limits themselves are fine. */
        o = (vss_writer_options) { .name = max_name, .app_level = VSS_APP_SYSTEM, .freeze_window_ms = 10u * 60u * 1000u };
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w), 0);
        CHECK(w && vss_writer_get_options(w) && streq(vss_writer_get_options(w)->name, max_name));
        CHECK(w && !vss_id_is_null(&vss_writer_get_options(w)->instance_id));
        /* Backup files: absolute paths, and only inside a backup event. */
        CHECK_HR(vss_writer_add_backup_files(w, "", "c", "label", "*", false, "/data/label"), VSS_E_INVALIDARG);
        CHECK_HR(vss_writer_add_backup_files(w, "", "c", "/x/label", "*", false, "data/label"), VSS_E_INVALIDARG);
        CHECK_HR(vss_writer_add_backup_files(w, "", "c", "/x/label", "*", false, NULL), VSS_E_INVALIDARG);
        CHECK_HR(vss_writer_add_backup_files(w, "", "c", "/x/label", "*", false, "/data/label"), VSS_E_BAD_STATE);
        w = vss_writer_free(w);

        /* A name that would forge a log line or reach a terminal: vssd refuses it. */
        w = new_writer("nice\n<2>vssd: forged\033]0;x\a", VSS_APP_FRONT_END, cb);
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), VSS_E_INVALIDARG);
        CHECK(w && strstr(vss_writer_errmsg(w), "control characters") != NULL);
        w = vss_writer_free(w);
        /* A failure message is one line of text for whoever shows it (vssd copies it so). */
        {
                char clean[32];
                utf8_copy(clean, sizeof(clean), "a\nb\033[2J\x7f");
                CHECK_STR(clean, "a b [2J ");
        }

        /* No vssd there. */
        w = new_writer("lonely", VSS_APP_FRONT_END, cb);
        snprintf(path, sizeof(path), "%s/no-such.sock", harness_dir(h));
        CHECK_HR(vss_writer_subscribe(w, path), VSS_E_WRITER_INFRASTRUCTURE);
        CHECK(w && vss_writer_errmsg(w)[0] != 0);
        CHECK_HR(vss_writer_run(w), VSS_E_BAD_STATE);
        w = vss_writer_free(w);

        /* One instance id, two writers. */
        vss_id iid;
        vss_id_new(&iid);
        vss_writer *w1 = NULL, *w2 = NULL;
        o = (vss_writer_options) { .name = "first", .instance_id = iid };
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w1), 0);
        o.name = "second";
        CHECK_HR(vss_writer_new(&o, cb, NULL, &w2), 0);
        CHECK(w1 && vss_id_equal(&vss_writer_get_options(w1)->instance_id, &iid));
        CHECK_HR(vss_writer_subscribe(w1, harness_socket(h)), 0);
        CHECK_HR(vss_writer_subscribe(w1, harness_socket(h)), VSS_E_BAD_STATE);
        CHECK_HR(vss_writer_subscribe(w2, harness_socket(h)), VSS_E_OBJECT_ALREADY_EXISTS);
        CHECK(w2 && strstr(vss_writer_errmsg(w2), "already") != NULL);
        /* Once the first is gone, the id is free. */
        CHECK_HR(vss_writer_unsubscribe(w1), 0);
        CHECK_HR(vss_writer_subscribe(w2, harness_socket(h)), 0);
        vss_writer_free(w1);
        vss_writer_free(w2);

        /* The metadata builder's refusals, seen from inside Identify, during a real gather. */
        reset_record();
        vss_writer_callbacks bad = all_callbacks;
        bad.identify = cb_identify_bad;
        w = new_writer("builder", VSS_APP_FRONT_END, &bad);
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), 0);
        vss_backup *b = NULL;
        vss_async *a = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_gather_writer_metadata(b, &a), 0);
        int r = VSS_S_ASYNC_PENDING;
        for (int i = 0; i < 1000 && r == VSS_S_ASYNC_PENDING; i++) {
                CHECK_HR(pump(w, 20), 0);
                r = vss_async_wait(a, 0);
        }
        CHECK_HR(r, 0);
        vss_async_free(a);
        CHECK_STR(events, "identify");
        CHECK_HR(md_rc[0], 0);
        CHECK_HR(md_rc[1], VSS_E_OBJECT_ALREADY_EXISTS);
        CHECK_HR(md_rc[2], VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(md_rc[3], VSS_E_OBJECT_NOT_FOUND);
        CHECK_HR(md_rc[4], VSS_E_INVALIDARG);
        CHECK_HR(md_rc[5], VSS_E_INVALIDARG);
        CHECK_HR(md_rc[6], 0);
        CHECK_HR(md_rc[7], 0);
        /* Only what was accepted reached the requester. */
        CHECK(vss_backup_metadata_count(b) == 1);
        const vss_writer_metadata *md = vss_backup_metadata_get(b, 0);
        CHECK(md && streq(md->name, "builder") && md->n_components == 2);
        if (md && md->n_components == 2) {
                for (size_t i = 0; i < 2; i++) {
                        const vss_component_info *c = &md->components[i];
                        CHECK_STR(c->name, "db");
                        if (streq(c->logical_path, "")) {
                                CHECK_STR(c->caption, "db");
                                CHECK(c->n_files == 1);
                                if (c->n_files == 1)
                                        CHECK_STR(c->files[0].path, "/srv/db");
                        } else {
                                CHECK_STR(c->logical_path, "other");
                                CHECK(c->n_files == 0);
                        }
                }
        }
        /* The writer goes first: nobody dispatches it during a release's BackupShutdown. */
        vss_writer_free(w);
        vss_backup_free(b);
}

/* The window path cannot be reached through the real vssd, which enforces the same window
 * itself and aborts first; so a minimal peer plays the coordinator: Subscribe, Freeze (for the set
 * FAKE_SET), then nothing until past the writer's window, then Thaw. */
#define FAKE_SET "5e7a11c0-0b5e-4d1e-9c3a-2f00d5e70001"
#define FAKE_SET2 "5e7a11c0-0b5e-4d1e-9c3a-2f00d5e70002"

static int fake_subscribe(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        *(bool *) userdata = true;
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable fake_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("Subscribe", "ssssuu", "", fake_subscribe, 0),
        SD_BUS_VTABLE_END,
};

static _Noreturn void fake_coordinator(int listen_fd) {
        sd_bus *bus = NULL;
        sd_bus_message *reply = NULL;
        sd_id128_t id;
        int32_t failure = 0, code;
        const char *msg, *doc;
        bool subscribed = false;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0 || sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, fd, fd) < 0 || sd_id128_randomize(&id) < 0 ||
            sd_bus_set_server(bus, 1, id) < 0 ||
            sd_bus_add_object_vtable(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, fake_vtable, &subscribed) < 0 ||
            sd_bus_start(bus) < 0)
                _exit(10);
        /* Serve Subscribe, then freeze the writer. */
        for (int i = 0; i < 500 && !subscribed; i++) {
                while (sd_bus_process(bus, NULL) > 0)
                        ;
                if (!subscribed)
                        sd_bus_wait(bus, 10000);
        }
        if (sd_bus_call_method(bus, NULL, VSS_WRITER_PATH, VSS_WRITER_INTERFACE, "Event", NULL, &reply, "sssubass", "freeze",
                               "", FAKE_SET, 1u, 0, 0, "") < 0 ||
            sd_bus_message_read(reply, "iiss", &failure, &code, &msg, &doc) < 0 || failure != 0)
                _exit(11);
        reply = sd_bus_message_unref(reply);
        usleep(600 * 1000); /* the writer's window is 200 ms */
        if (sd_bus_call_method(bus, NULL, VSS_WRITER_PATH, VSS_WRITER_INTERFACE, "Event", NULL, &reply, "sssubass", "thaw",
                               "", FAKE_SET, 1u, 0, 0, "") < 0 ||
            sd_bus_message_read(reply, "iiss", &failure, &code, &msg, &doc) < 0)
                _exit(12);
        if (failure != VSS_E_WRITERERROR_TIMEOUT)
                _exit(13);
        /* The failed Thaw aborts the set, as vssd does: the writer aborted already, and says so. */
        reply = sd_bus_message_unref(reply);
        if (sd_bus_call_method(bus, NULL, VSS_WRITER_PATH, VSS_WRITER_INTERFACE, "Event", NULL, &reply, "sssubass", "abort",
                               "", FAKE_SET, 1u, 0, 0, "") < 0 ||
            sd_bus_message_read(reply, "iiss", &failure, &code, &msg, &doc) < 0 || failure != 0)
                _exit(14);
        /* The Abort of another set is that set's: its callback runs. */
        reply = sd_bus_message_unref(reply);
        if (sd_bus_call_method(bus, NULL, VSS_WRITER_PATH, VSS_WRITER_INTERFACE, "Event", NULL, &reply, "sssubass", "abort",
                               "", FAKE_SET2, 1u, 0, 0, "") < 0 ||
            sd_bus_message_read(reply, "iiss", &failure, &code, &msg, &doc) < 0 || failure != 0)
                _exit(15);
        _exit(0);
}

static void test_window_expiry(void) {
        char path[] = "/tmp/openvss-fake-XXXXXX", sock[64];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        CHECK(mkdtemp(path) != NULL);
        snprintf(sock, sizeof(sock), "%s/s", path);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(lfd, 1) == 0);
        pid_t pid = fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                fake_coordinator(lfd);
        }
        close(lfd);
        reset_record();
        vss_writer_options o = { .name = "windowed", .freeze_window_ms = 200 };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, &all_callbacks, NULL, &w), 0);
        CHECK_HR(vss_writer_subscribe(w, sock), 0);
        int status = -1;
        uint64_t frozen_at = 0;
        for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; i++) {
                pump(w, 10);
                if (!frozen_at && vss_writer_is_frozen(w))
                        frozen_at = now_usec();
        }
        /* It thawed itself through Abort about when its window ran out, and Thaw then failed; the
         * set's Abort after that did not run the callback again (OnAbort once per set), another
         * set's did. */
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK_STR(events, "freeze abort abort");
        CHECK(abort_calls == 2 && frozen_at > 0 && abort_usec - frozen_at < 500000);
        /* Its Abort names the set it was frozen for. */
        vss_id want_set;
        CHECK(vss_id_from_string(FAKE_SET, &want_set) == 0);
        CHECK(vss_id_equal(&abort_set_id, &want_set));
        CHECK(!vss_writer_is_frozen(w));
        vss_writer_free(w);
        unlink(sock);
        rmdir(path);
}

/* Whether `vssadmin list writers` lists name; with iid, the instance id it shows (braces off). */
static bool listed(Harness *h, const char *name, char iid[VSS_ID_STRING_MAX]) {
        char *out = NULL, want[300];
        bool found = false;
        snprintf(want, sizeof(want), "Writer name: '%s'\n", name);
        if (harness_sh(h, &out, "vssadmin list writers 2>/dev/null") == 0 && out) {
                char *p = strstr(out, want), *q = p ? strstr(p, "Writer Instance Id: {") : NULL;
                found = p != NULL;
                if (iid && q)
                        snprintf(iid, VSS_ID_STRING_MAX, "%.36s", q + strlen("Writer Instance Id: {"));
        }
        free(out);
        return found;
}

/* vss-writer-exec reconnects by default: vssd killed and started again, the same writer is listed
 * again under its class id with a new instance id, and takes part in the next backup. */
static void test_reconnect_after_restart(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), before[VSS_ID_STRING_MAX] = "", after[VSS_ID_STRING_MAX] = "";
        pid_t pid = harness_writer(h, "w", NULL);
        CHECK(listed(h, "w", before));
        harness_restart_vssd(h);
        bool again = false;
        for (int i = 0; i < 400 && !(again = listed(h, "w", after)); i++)
                usleep(50000);
        CHECK(again);
        CHECK(kill(pid, 0) == 0); /* the same process */
        CHECK(before[0] && after[0] && !streq(before, after));
        harness_clear_log(h);
        CHECK(harness_sh(h, NULL, "vssadmin create shadow --for '%s' >/dev/null", data) == 0);
        char *ev = harness_events(h, "w");
        CHECK(ev && strstr(ev, "freeze thaw") != NULL);
        free(ev);
        /* --no-reconnect: the old way, the writer ends with the connection. */
        const char *const once[] = { "--no-reconnect", NULL };
        pid_t p2 = harness_writer(h, "once", once);
        harness_restart_vssd(h);
        int status = -1;
        for (int i = 0; i < 200 && waitpid(p2, &status, WNOHANG) != p2; i++)
                usleep(50000);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
}

/* A library writer with reconnect on, subscribed before vssd runs, waits for it; it appears once
 * vssd starts, comes back after a restart (same class, new instance) and takes part in a backup. */
static void test_writer_before_vssd(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        reset_record();
        md_path = data;
        harness_kill_vssd(h);
        vss_writer_options o = { .name = "early", .app_level = VSS_APP_FRONT_END, .reconnect = true };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, &all_callbacks, NULL, &w), 0);
        if (!w)
                return;
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), 0);
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), VSS_E_BAD_STATE);
        for (int i = 0; i < 5; i++)
                CHECK_HR(pump(w, 20), 0); /* waiting is no error */
        vss_id cls = vss_writer_get_options(w)->class_id, first = vss_writer_get_options(w)->instance_id;
        char iid[VSS_ID_STRING_MAX], got[VSS_ID_STRING_MAX] = "";
        harness_restart_vssd(h); /* starts it */
        bool seen = false;
        for (int i = 0; i < 200 && !seen; i++) {
                CHECK_HR(pump(w, 50), 0);
                seen = listed(h, "early", got);
        }
        CHECK(seen);
        /* Never subscribed before: the instance id it was made with. */
        CHECK(vss_id_equal(&vss_writer_get_options(w)->instance_id, &first));
        CHECK_STR(got, vss_id_to_string(&first, iid));

        harness_restart_vssd(h);
        seen = false;
        for (int i = 0; i < 200 && !seen; i++) {
                CHECK_HR(pump(w, 50), 0);
                seen = listed(h, "early", got);
        }
        CHECK(seen);
        CHECK(vss_id_equal(&vss_writer_get_options(w)->class_id, &cls));
        CHECK(!vss_id_equal(&vss_writer_get_options(w)->instance_id, &first));
        CHECK_STR(got, vss_id_to_string(&vss_writer_get_options(w)->instance_id, iid));

        pid_t child = fork();
        if (child == 0)
                _exit(harness_sh(h, NULL, "vssadmin create shadow --for '%s' >/dev/null", data));
        int errors = 0, status = dispatch_until_exit(w, child, 60000, &errors);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        CHECK(errors == 0);
        CHECK(strstr(events, "freeze thaw") != NULL);
        CHECK(abort_calls == 0);
        CHECK_HR(vss_writer_unsubscribe(w), 0);
        vss_writer_free(w);
}

/* Deferred answers: a writer whose Freeze is still at work answers GatherWriterStatus, and gets
 * Abort once vssd gives up waiting (its freeze window); the Abort callback ends the work, whose
 * answer then goes out late. */
static vss_writer_deferred *pending_freeze;
static bool abort_seen_deferred;

static bool cb_defer_freeze(vss_writer *w, const vss_event_info *info, void *userdata) {
        record("freeze");
        pending_freeze = vss_writer_defer(w);
        CHECK(pending_freeze != NULL);
        CHECK(vss_writer_defer(w) == pending_freeze);
        return true; /* ignored: deferred */
}

static bool cb_abort_deferred(vss_writer *w, const vss_event_info *info, void *userdata) {
        record("abort");
        abort_calls++;
        abort_seen_deferred = pending_freeze != NULL;
        /* Inside a callback a deferred event cannot be completed. */
        CHECK_HR(vss_writer_complete(w, pending_freeze, false), VSS_E_BAD_STATE);
        return true;
}

static int deferred_requester(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        vss_async *a = NULL;
        char flag[600];
        snprintf(flag, sizeof(flag), "%s/deferred", harness_dir(h));
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0 || vss_backup_start_snapshot_set(b, NULL) < 0 ||
            vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 || vss_backup_prepare_for_backup_sync(b) < 0 ||
            vss_backup_do_snapshot_set(b, &a) < 0)
                return 10;
        for (int i = 0; i < 400 && access(flag, F_OK) < 0; i++)
                usleep(50000);
        if (access(flag, F_OK) < 0)
                return 11;
        /* Busy in Freeze, it still answers the status query (a Ping). */
        if (vss_backup_gather_writer_status_sync(b) < 0)
                return 12;
        vss_writer_status st;
        const vss_writer_status *ws = status_of(b, "deferring", &st);
        if (!ws)
                return 13;
        if (ws->failure == VSS_E_WRITER_NOT_RESPONDING)
                return 14;
        /* Its Freeze never answers in the window: the set fails. */
        if (vss_async_wait(a, 60000) >= 0)
                return 15;
        vss_async_free(a);
        vss_backup_free(b);
        return 0;
}

static void test_deferred_freeze(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), flag[600];
        snprintf(flag, sizeof(flag), "%s/deferred", harness_dir(h));
        reset_record();
        md_path = data;
        vss_writer_callbacks cb = all_callbacks;
        cb.freeze = cb_defer_freeze;
        cb.abort = cb_abort_deferred;
        vss_writer_options o = { .name = "deferring", .app_level = VSS_APP_FRONT_END, .freeze_window_ms = 2000 };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, &cb, NULL, &w), 0);
        if (!w)
                return;
        CHECK(vss_writer_defer(w) == NULL); /* outside a callback */
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), 0);
        pid_t child = fork_requester(deferred_requester, h, data, NULL);
        uint64_t deadline = now_usec() + 60 * 1000000ULL;
        int status = -1, errors = 0;
        bool flagged = false, completed = false;
        while (now_usec() < deadline) {
                if (pump(w, 50) != 0)
                        errors++;
                if (pending_freeze && !flagged) {
                        CHECK(harness_sh(h, NULL, "touch '%s'", flag) == 0);
                        flagged = true;
                }
                /* The work ends (as a killed hook would): the late answer is a failure. */
                if (abort_seen_deferred && pending_freeze) {
                        CHECK_HR(vss_writer_resume(w, pending_freeze), 0);
                        CHECK_HR(vss_writer_set_failure(w, VSS_E_WRITERERROR_TIMEOUT, 7, "stopped"), 0);
                        (void) vss_writer_complete(w, pending_freeze, false); /* vssd may have moved on */
                        pending_freeze = NULL;
                        completed = true;
                }
                if (waitpid(child, &status, WNOHANG) == child)
                        break;
        }
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (!WIFEXITED(status)) {
                kill(child, SIGKILL);
                waitpid(child, NULL, 0);
        }
        CHECK(errors == 0);
        CHECK(abort_seen_deferred);
        CHECK(completed);
        CHECK(!vss_writer_is_frozen(w));
        CHECK(strncmp(events, "identify prepare-backup prepare-snapshot freeze abort", 53) == 0);
        CHECK(abort_calls == 1);
        vss_writer_free(w);
}

/* An in-process writer (name, cb; its component's files in data) subscribed while requester fn
 * runs in a child: dispatched until the child exits (which must be with status 0), then, when
 * in_session, until BackupShutdown came. Returns the writer, for the caller to check and free,
 * or NULL. */
static vss_writer *writer_with_requester(Harness *h, const char *data, const char *name, const vss_writer_callbacks *cb,
                                         int (*fn)(Harness *, const char *, const vss_id *), bool in_session) {
        reset_record();
        md_path = data;
        vss_writer *w = new_writer(name, VSS_APP_FRONT_END, cb);
        if (!w)
                return NULL;
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), 0);
        int errors = 0;
        pid_t child = fork_requester(fn, h, data, NULL);
        int status = dispatch_until_exit(w, child, 60000, &errors);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; in_session && i < 100 && !strstr(events, "backup-shutdown"); i++)
                if (pump(w, 50) != 0)
                        errors++;
        CHECK(errors == 0);
        return w;
}

/* A failure set in Identify on the way to a fallback that worked is no veto (VSS forbids
 * SetWriterFailure there; vss-writer-postgres publishes the layout last seen so). */
static bool cb_identify_fallback(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        (void) vss_writer_set_failure(w, VSS_E_WRITERERROR_RETRYABLE, 0, "server down: the layout last seen");
        return cb_identify(w, md, userdata);
}

/* Microsoft's documented veto: SetWriterFailure, then return TRUE. */
static bool cb_freeze_veto_true(vss_writer *w, const vss_event_info *info, void *userdata) {
        on_event(info, VSS_EVENT_FREEZE);
        (void) vss_writer_set_failure(w, VSS_E_WRITERERROR_RETRYABLE, 9, "log full");
        return true;
}

/* The requester of veto-returning-true: DoSnapshotSet fails with the writer's failure, which
 * its status carries. Exit status: 0 all good, 10 + step otherwise. */
static int vetoed_backup(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0 || vss_backup_start_snapshot_set(b, NULL) < 0 ||
            vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 || vss_backup_prepare_for_backup_sync(b) < 0)
                return 10;
        if (vss_backup_do_snapshot_set_sync(b) != VSS_E_WRITERERROR_RETRYABLE)
                return 11;
        if (vss_backup_gather_writer_status_sync(b) < 0)
                return 12;
        vss_writer_status st;
        const vss_writer_status *ws = status_of(b, "vetoing", &st);
        if (!ws || ws->state != VSS_WS_FAILED_AT_FREEZE || ws->failure != VSS_E_WRITERERROR_RETRYABLE)
                return 13;
        if (ws->application_code != 9 || !streq(ws->application_message, "log full"))
                return 14;
        vss_backup_free(b);
        return 0;
}

static void test_veto_returning_true(void) {
        Harness *h = harness_new(NULL);
        vss_writer_callbacks cb = all_callbacks;
        cb.identify = cb_identify_fallback;
        cb.freeze = cb_freeze_veto_true;
        vss_writer *w = writer_with_requester(h, harness_make_data(h, "data"), "vetoing", &cb, vetoed_backup, true);
        if (!w)
                return;
        /* No SetBackupState: a full backup, as the document says (never VSS_BT_UNDEFINED). */
        CHECK(prepare_backup_type == VSS_BT_FULL);
        /* No Thaw: the set's Abort thaws it, once; nothing of the set is left. */
        CHECK_STR(events, "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
        CHECK(abort_calls == 1);
        CHECK(!vss_writer_is_frozen(w));
        CHECK(harness_count_shadow_files(h) == 0);
        vss_writer_free(w);
}

/* One required component: not selectable for backup. */
static bool cb_identify_required(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        record("identify");
        md_rc[0] = vss_metadata_add_component(md, "", "db", "Database", false, false);
        md_rc[1] = vss_metadata_add_files(md, "", "db", md_path, "*.db", true);
        return true;
}

/* The requester of required-component: component mode adds the required component (VSS has the
 * requester add required components explicitly) and backs it up. */
static int required_backup(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_set_backup_state(b, true, false, VSS_BT_FULL, false) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0)
                return 10;
        const vss_writer_metadata *md = vss_backup_metadata_get(b, 0);
        if (vss_backup_metadata_count(b) != 1 || !md || md->n_components != 1 || md->components[0].selectable_for_backup)
                return 11;
        if (vss_backup_add_component(b, &md->instance_id, &md->writer_id, "", "db") != 0)
                return 12;
        if (vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0 || vss_backup_do_snapshot_set_sync(b) < 0 ||
            vss_backup_set_backup_succeeded(b, &md->instance_id, &md->writer_id, "", "db", true) < 0 ||
            vss_backup_backup_complete_sync(b) < 0)
                return 13;
        vss_backup_free(b);
        return 0;
}

static void test_required_component(void) {
        Harness *h = harness_new(NULL);
        vss_writer_callbacks cb = all_callbacks;
        cb.identify = cb_identify_required;
        vss_writer *w = writer_with_requester(h, harness_make_data(h, "data"), "required", &cb, required_backup, true);
        if (!w)
                return;
        CHECK_STR(events, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        vss_writer_free(w);
}

/* A component name that would reach a terminal as an escape sequence: vssd takes the metadata as
 * bad, and the writer is not in the session. */
static bool cb_identify_escape(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        record("identify");
        return vss_metadata_add_component(md, "", "db\033]0;pwned\a", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "db\033]0;pwned\a", md_path, "*", true) >= 0;
}

static int gather_none(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0)
                return 10;
        int r = vss_backup_metadata_count(b) == 0 ? 0 : 11;
        vss_backup_free(b);
        return r;
}

static void test_metadata_control_chars(void) {
        Harness *h = harness_new(NULL);
        vss_writer_callbacks cb = all_callbacks;
        cb.identify = cb_identify_escape;
        vss_writer *w = writer_with_requester(h, harness_make_data(h, "data"), "escaping", &cb, gather_none, false);
        CHECK(strstr(events, "identify") != NULL);
        vss_writer_free(w);
}

/* What the settings callbacks saw, per event: partial, bootable, the volumes and whether data/x
 * and an outside path are affected, then the context. */
static char settings_seen[4096];
static const char *settings_data;
static unsigned settings_no_session; /* events without the session's id */

static bool cb_settings(vss_writer *w, const vss_event_info *info, void *userdata) {
        char sub[PATH_MAX + 8];
        snprintf(sub, sizeof(sub), "%s/x", settings_data);
        size_t len = strlen(settings_seen);
        settings_no_session += vss_id_is_null(&info->session_id);
        snprintf(settings_seen + len, sizeof(settings_seen) - len, "%s%s:%d%d%zu%d%d%d:%x", len ? " " : "",
                 vss_event_name(info->event), info->partial_file_support, info->bootable_system_state, info->n_volumes,
                 info->n_volumes > 0 && streq(info->volumes[0], settings_data), vss_event_is_path_affected(info, sub),
                 vss_event_is_path_affected(info, "/nonexistent-elsewhere"), (unsigned) info->context);
        return on_event(info, info->event);
}

/* The requester of backup-settings: partial files and bootable system state on, context
 * VSS_CTX_APP_ROLLBACK (iid non-null), or nothing set. */
static int settings_backup(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            (iid && (vss_backup_set_backup_state(b, false, true, VSS_BT_INCREMENTAL, true) < 0 ||
                     vss_backup_set_context(b, VSS_CTX_APP_ROLLBACK) < 0)) ||
            vss_backup_gather_writer_metadata_sync(b) < 0 || vss_backup_start_snapshot_set(b, NULL) < 0 ||
            vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 || vss_backup_prepare_for_backup_sync(b) < 0 ||
            vss_backup_do_snapshot_set_sync(b) < 0 || vss_backup_backup_complete_sync(b) < 0)
                return 10;
        vss_backup_free(b);
        return 0;
}

/* Two sessions at once: A (partial files, bootable) makes its set, then B (neither) prepares its
 * own before A completes: A's BackupComplete still carries A's settings. */
static int two_sessions(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *a = NULL, *b = NULL;
        if (vss_backup_new(harness_socket(h), &a) < 0 || vss_backup_initialize_for_backup(a) < 0 ||
            vss_backup_set_backup_state(a, false, true, VSS_BT_FULL, true) < 0 ||
            vss_backup_gather_writer_metadata_sync(a) < 0 || vss_backup_start_snapshot_set(a, NULL) < 0 ||
            vss_backup_add_to_snapshot_set(a, data, NULL, NULL) < 0 || vss_backup_prepare_for_backup_sync(a) < 0 ||
            vss_backup_do_snapshot_set_sync(a) < 0)
                return 10;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0 || vss_backup_start_snapshot_set(b, NULL) < 0 ||
            vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 || vss_backup_prepare_for_backup_sync(b) < 0)
                return 11;
        if (vss_backup_backup_complete_sync(a) < 0 || vss_backup_do_snapshot_set_sync(b) < 0 ||
            vss_backup_backup_complete_sync(b) < 0)
                return 12;
        vss_backup_free(a);
        vss_backup_free(b);
        return 0;
}

/* settings_backup() with everything set, then a restore of it: PreRestore and PostRestore carry
 * the restored backup's settings and context. */
static int settings_restore(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b = NULL;
        char *doc = NULL;
        if (vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_set_backup_state(b, false, true, VSS_BT_INCREMENTAL, true) < 0 ||
            vss_backup_set_context(b, VSS_CTX_APP_ROLLBACK) < 0 || vss_backup_gather_writer_metadata_sync(b) < 0 ||
            vss_backup_start_snapshot_set(b, NULL) < 0 || vss_backup_add_to_snapshot_set(b, data, NULL, NULL) < 0 ||
            vss_backup_prepare_for_backup_sync(b) < 0 || vss_backup_do_snapshot_set_sync(b) < 0 ||
            vss_backup_backup_complete_sync(b) < 0 || vss_backup_save_as_document(b, &doc) < 0)
                return 10;
        vss_backup_free(b);
        b = NULL;
        int r = vss_backup_new(harness_socket(h), &b) < 0 || vss_backup_initialize_for_restore(b, doc) < 0 ||
                                vss_backup_gather_writer_metadata_sync(b) < 0 || vss_backup_pre_restore_sync(b) < 0 ||
                                vss_backup_post_restore_sync(b) < 0
                        ? 11
                        : 0;
        free(doc);
        vss_backup_free(b);
        return r;
}

/* Six sessions at once: the first (partial files, bootable) makes its set, then five more (neither)
 * make theirs before it completes: its BackupComplete still carries its settings. */
#define MANY_SESSIONS 6
static int many_sessions(Harness *h, const char *data, const vss_id *iid) {
        vss_backup *b[MANY_SESSIONS] = {};
        for (int i = 0; i < MANY_SESSIONS; i++)
                if (vss_backup_new(harness_socket(h), &b[i]) < 0 || vss_backup_initialize_for_backup(b[i]) < 0 ||
                    (i == 0 && vss_backup_set_backup_state(b[i], false, true, VSS_BT_FULL, true) < 0) ||
                    vss_backup_gather_writer_metadata_sync(b[i]) < 0 || vss_backup_start_snapshot_set(b[i], NULL) < 0 ||
                    vss_backup_add_to_snapshot_set(b[i], data, NULL, NULL) < 0 || vss_backup_prepare_for_backup_sync(b[i]) < 0 ||
                    vss_backup_do_snapshot_set_sync(b[i]) < 0)
                        return 10 + i;
        for (int i = 0; i < MANY_SESSIONS; i++) {
                if (vss_backup_backup_complete_sync(b[i]) < 0)
                        return 20 + i;
                vss_backup_free(b[i]);
        }
        return 0;
}

/* One round of backup-settings: requester fn in a child while w dispatches, then w until it has
 * heard shutdowns BackupShutdowns (they may come after the requester's exit). */
static void settings_round(vss_writer *w, Harness *h, int (*fn)(Harness *, const char *, const vss_id *),
                           const char *data, const vss_id *iid, unsigned shutdowns) {
        int errors = 0;
        settings_seen[0] = 0;
        pid_t child = fork_requester(fn, h, data, iid);
        int status = dispatch_until_exit(w, child, 60000, &errors);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        for (int i = 0; i < 200; i++) {
                unsigned heard = 0;
                for (const char *p = settings_seen; (p = strstr(p, "backup-shutdown")); p++)
                        heard++;
                if (heard >= shutdowns)
                        break;
                errors += pump(w, 50) != 0;
        }
        CHECK(errors == 0);
}

/* backup-settings: the writer's events of a backup carry the requester's SetBackupState settings
 * (CVssWriter::IsPartialFileSupportEnabled, IsBootableSystemStateBackedUp) from PrepareForBackup
 * on, and the set's volumes from PrepareForSnapshot on (GetCurrentVolumeArray, IsPathAffected);
 * a backup that sets nothing has them off. */
static void test_backup_settings(void) {
        Harness *h = harness_new(NULL);
        vss_writer_callbacks cb = all_callbacks;
        cb.prepare_backup = cb.prepare_snapshot = cb.freeze = cb.thaw = cb.post_snapshot = cb_settings;
        cb.backup_complete = cb.backup_shutdown = cb.pre_restore = cb.post_restore = cb_settings;
        char data[PATH_MAX];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        settings_data = data;
        reset_record();
        md_path = data;
        vss_writer *w = new_writer("settings", VSS_APP_FRONT_END, &cb);
        if (!w)
                return;
        CHECK_HR(vss_writer_subscribe(w, harness_socket(h)), 0);
        settings_round(w, h, settings_backup, data, &(vss_id) { .bytes = { 1 } }, 1);
        CHECK_STR(settings_seen, "prepare-backup:110000:9 prepare-snapshot:111110:9 freeze:111110:9 thaw:111110:9 "
                                 "post-snapshot:111110:9 backup-complete:111110:9 backup-shutdown:111110:9");
        /* The next backup, with nothing set: all off, and no volumes before PrepareForSnapshot. */
        settings_round(w, h, settings_backup, data, NULL, 1);
        CHECK_STR(settings_seen, "prepare-backup:000000:0 prepare-snapshot:001110:0 freeze:001110:0 thaw:001110:0 "
                                 "post-snapshot:001110:0 backup-complete:001110:0 backup-shutdown:001110:0");
        /* Each session's own, also while another's are said. */
        settings_round(w, h, two_sessions, data, NULL, 2);
        CHECK(strstr(settings_seen, "backup-complete:111110:0") && strstr(settings_seen, "backup-complete:001110:0"));
        if (!strstr(settings_seen, "backup-complete:111110:0"))
                fprintf(stderr, "seen: %s\n", settings_seen);
        /* A restore of such a backup: its settings and context, no volumes. */
        settings_round(w, h, settings_restore, data, NULL, 1);
        CHECK(strstr(settings_seen, "pre-restore:110000:9") && strstr(settings_seen, "post-restore:110000:9"));
        if (!strstr(settings_seen, "post-restore:110000:9"))
                fprintf(stderr, "seen: %s\n", settings_seen);
        /* More sessions at once than a writer kept before (four). */
        settings_round(w, h, many_sessions, data, NULL, MANY_SESSIONS);
        CHECK(strstr(settings_seen, "backup-complete:111110:0") != NULL);
        CHECK(settings_no_session == 0); /* CVssWriterEx2::GetSessionId */
        if (!strstr(settings_seen, "backup-complete:111110:0"))
                fprintf(stderr, "seen: %s\n", settings_seen);
        vss_writer_free(w);
}

static const TestCase cases[] = {
        { "backup-settings", test_backup_settings },
        { "metadata-control-chars", test_metadata_control_chars },
        { "required-component", test_required_component },
        { "veto-returning-true", test_veto_returning_true },
        { "window-expiry", test_window_expiry },
        { "embedded-dispatch", test_embedded_dispatch },
        { "self-abort-on-disconnect", test_self_abort_on_disconnect },
        { "bad-options", test_bad_options },
        { "reconnect-after-restart", test_reconnect_after_restart },
        { "writer-before-vssd", test_writer_before_vssd },
        { "deferred-freeze", test_deferred_freeze },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
