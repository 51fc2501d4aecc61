/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Authorization and limits, proven with real unprivileged users: vssd runs as root (the harness),
 * clients run in forked children that dropped to a test user (initgroups, setgid, setuid) or
 * under runuser. The users are made here when absent and left in place for later runs:
 *   vsstest-alice   in the backup group vsstest-backup
 *   vsstest-carol   in the backup group vsstest-backup
 *   vsstest-bob     in no group of ours
 * Every refusal is checked for its exact code, and that nothing changed.
 */

#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/client.h"
#include <json-c/json.h>

#include "tests/users.h"


/* A backup of data by the session b (its metadata gathered), up to and including the snapshot set. */
static void backup_to_snapshot(vss_backup *b, const char *data, uint32_t context) {
        if (context)
                CHECK_HR(vss_backup_set_context(b, context), 0);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
}

static vss_backup *session_as_user(Harness *h) {
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        if (!b)
                _exit(1);
        CHECK_HR(vss_backup_initialize_for_backup(b), 0);
        CHECK_HR(vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(b), 0);
        return b;
}

static void check_denied(int32_t hr, const char *user, const char *right) {
        char uid[32];
        CHECK_HR(hr, VSS_E_ACCESSDENIED);
        snprintf(uid, sizeof(uid), "uid %u", (unsigned) uid_of(user));
        CHECK(strstr(last_msg, uid) != NULL);
        if (right)
                CHECK(strstr(last_msg, right) != NULL);
        if (hr != VSS_E_ACCESSDENIED || !strstr(last_msg, uid) || (right && !strstr(last_msg, right)))
                fprintf(stderr, "   message: %s\n", last_msg);
}

/* auth-requester-not-in-group */

static void bob_refused(Harness *h, void *userdata) {
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), VSS_E_ACCESSDENIED);
        CHECK(b == NULL);

        sd_bus *bus = connect_or_die(h);
        check_denied(call(bus, "CreateSession", NULL), BOB, "'create'");
        check_denied(call(bus, "ListShadows", NULL), BOB, "'list'");
        check_denied(call(bus, "ListWriters", NULL), BOB, "'list'");
        check_denied(call(bus, "ListProviders", NULL), BOB, "'list'");
        check_denied(call(bus, "ListExposures", NULL), BOB, "'list'");
        check_denied(call(bus, "GetSnapshotProperties", "s", "00000000-0000-0000-0000-000000000001"), BOB, "'list'");
        check_denied(call(bus, "DeleteShadows", "ss", "all", ""), BOB, "'delete'");
        check_denied(call(bus, "InitializeForBackup", "s", "00000000-0000-0000-0000-000000000001"), BOB, NULL);
        CHECK_HR(call(bus, "ExposeShadow", "ss", "00000000-0000-0000-0000-000000000001", "/mnt"), VSS_E_ACCESSDENIED);

        /* A writer's connection has no more rights than its user. */
        CHECK_HR(call(bus, "Subscribe", "ssssuu", "4a0c1d3e-1111-4222-8333-444455556666",
                      "4a0c1d3e-1111-4222-8333-444455556667", "bob-raw", "", 0u, 0u), 0);
        check_denied(call(bus, "CreateSession", NULL), BOB, "'create'");
        check_denied(call(bus, "ListShadows", NULL), BOB, "'list'");
        sd_bus_flush_close_unref(bus);
}

static void test_requester_not_in_group(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data");
        /* A shadow made by root, so a refused list or delete has something to leak or lose. */
        vss_backup *b = harness_session(h);
        backup_to_snapshot(b, data, VSS_CTX_APP_ROLLBACK);
        vss_backup_release(b);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 1);
        int files = harness_count_shadow_files(h);

        run_as(BOB, bob_refused, h, NULL, "bob's refused calls");

        /* The tools say so too. */
        char *out = NULL;
        int st = harness_sh(h, &out, "runuser -u " BOB " -- env VSS_SOCKET=%s %s/vssadmin list shadows 2>&1",
                            harness_socket(h), VSSADMIN_DIR);
        CHECK(st != 0);
        CHECK(out && strstr(out, "E_ACCESSDENIED") != NULL);
        free(out);
        st = harness_sh(h, &out, "runuser -u " BOB " -- env VSS_SOCKET=%s %s/vssadmin delete shadows --all 2>&1",
                        harness_socket(h), VSSADMIN_DIR);
        CHECK(st != 0);
        CHECK(out && strstr(out, "E_ACCESSDENIED") != NULL);
        free(out);

        /* Nothing changed. */
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 1);
        CHECK(harness_count_shadow_files(h) == files);
}

/* auth-requester-in-group */

static void alice_backs_up(Harness *h, void *userdata) {
        const char *data = userdata;
        vss_backup *b = session_as_user(h);
        backup_to_snapshot(b, data, VSS_CTX_APP_ROLLBACK);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);

        sd_bus *bus = connect_or_die(h);
        CHECK(count_listed(bus, "ListShadows", SHADOW_SIG) == 1);
        CHECK(count_listed(bus, "ListWriters", WRITER_SIG) == 1);
        /* Deleting is root's unless the config grants it. */
        check_denied(call(bus, "DeleteShadows", "ss", "all", ""), ALICE, "'delete'");
        sd_bus_flush_close_unref(bus);
}

static void test_requester_in_group(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        harness_writer(h, "w", NULL);
        char *data = harness_make_data(h, "data");
        run_as(ALICE, alice_backs_up, h, data, "alice's backup");
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        free(ev);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 1);
}

/* auth-writer-any-user */

static void test_writer_any_user(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data");
        /* A user's writer takes part in a backup of its own component's files (its user's). */
        CHECK(harness_sh(h, NULL, "chown -R %u '%s'", (unsigned) uid_of(BOB), data) == 0);
        char comp[600];
        snprintf(comp, sizeof(comp), "db=%s", data);
        const char *const extra[] = { "--component", comp, NULL };
        pid_t w = writer_as_args(h, BOB, "bw", NULL, extra);
        vss_backup *b = harness_session(h);
        backup_to_snapshot(b, data, 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        vss_writer_status st;
        const vss_writer_status *s = status_of(b, "bw", &st);
        CHECK(s && s->state == VSS_WS_STABLE && s->failure == 0);
        vss_backup_release(b);
        char *ev = harness_events(h, "bw");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        free(ev);
        stop_writer(w);
}

/* auth-writer-impersonation */

#define ALICE_CLASS "5b1d2e4f-aaaa-4bbb-8ccc-000000000001"

static void bob_impersonates(Harness *h, void *userdata) {
        sd_bus *bus = connect_or_die(h);
        CHECK_HR(call(bus, "Subscribe", "ssssuu", ALICE_CLASS, "5b1d2e4f-aaaa-4bbb-8ccc-0000000000b0", "aw", "", 0u, 0u),
                 VSS_E_ACCESSDENIED);
        CHECK(strstr(last_msg, "belongs to another user") != NULL);
        /* The refused subscription left this connection free for one of its own. */
        CHECK_HR(call(bus, "Subscribe", "ssssuu", "5b1d2e4f-aaaa-4bbb-8ccc-0000000000b1",
                      "5b1d2e4f-aaaa-4bbb-8ccc-0000000000b2", "bobs-own", "", 0u, 0u), 0);
        sd_bus_flush_close_unref(bus);
}

static void test_writer_impersonation(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        pid_t w = writer_as(h, ALICE, "aw", ALICE_CLASS);
        run_as(BOB, bob_impersonates, h, NULL, "bob impersonating alice's writer");

        /* Bound for vssd's lifetime: also while alice's writer is away. */
        stop_writer(w);
        for (int i = 0; i < 500 && writer_listed(h, "aw"); i++)
                usleep(10 * 1000);
        run_as(BOB, bob_impersonates, h, NULL, "bob impersonating alice's stopped writer");

        /* Alice gets hers back, and it alone answers for the class. */
        w = writer_as(h, ALICE, "aw", ALICE_CLASS);
        CHECK(count_as_root(h, "ListWriters", WRITER_SIG) == 1);
        vss_backup *b = harness_session(h);
        CHECK(vss_backup_metadata_count(b) == 1);
        vss_backup_release(b);
        char *ev = harness_events(h, "aw");
        CHECK(ev && strstr(ev, "identify") != NULL);
        free(ev);
        stop_writer(w);
}

/* auth-writer-class-config: a class id the config gives to alice is hers before her writer ever
 * ran; bob is refused it first, and bad bindings are config errors. */

static void test_writer_class_config(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"writer_classes\": {\"" ALICE_CLASS "\": \"" ALICE "\"}}");
        run_as(BOB, bob_impersonates, h, NULL, "bob taking a class the config gives alice");
        pid_t w = writer_as(h, ALICE, "aw", ALICE_CLASS);
        CHECK(writer_listed(h, "aw"));
        stop_writer(w);
        char *err = NULL;
        CHECK(harness_sh(h, &err, "echo '{\"writer_classes\": {\"not-a-uuid\": \"root\"}}' > %s/bad.json && "
                                  "%s --config %s/bad.json --state-dir %s/bad --socket %s/bad.sock 2>&1",
                         harness_dir(h), VSSD_PATH, harness_dir(h), harness_dir(h), harness_dir(h)) != 0);
        CHECK(err && strstr(err, "not-a-uuid"));
        free(err);
        CHECK(harness_sh(h, &err, "echo '{\"writer_classes\": {\"" ALICE_CLASS "\": \"no-such-user-x\"}}' > %s/bad.json && "
                                  "%s --config %s/bad.json --state-dir %s/bad --socket %s/bad.sock 2>&1",
                         harness_dir(h), VSSD_PATH, harness_dir(h), harness_dir(h), harness_dir(h)) != 0);
        CHECK(err && strstr(err, "must name an existing user"));
        free(err);
}

/* auth-fake-vssd: a socket another user listens on is not vssd: writers and requesters refuse it
 * before a word is exchanged. */

struct Listener {
        const char *path;
        int ready;      /* written once bob listens: a bound socket refuses connections until then */
};

static void bob_listens(Harness *h, void *userdata) {
        struct Listener *l = userdata;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", l->path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && listen(fd, 8) == 0);
        CHECK(write(l->ready, "l", 1) == 1);
        for (;;) {
                int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        break;
                /* A fake coordinator would talk here; it never gets the chance. */
        }
}

static void test_fake_vssd(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char dir[] = "/tmp/openvss-fake-XXXXXX", path[64], c;
        int ready[2];
        CHECK(mkdtemp(dir) != NULL && chmod(dir, 01777) == 0 && pipe2(ready, O_CLOEXEC) == 0);
        snprintf(path, sizeof(path), "%s/vssd.sock", dir);
        struct Listener l = { .path = path, .ready = ready[1] };
        pid_t bob = spawn_as(BOB, bob_listens, h, &l);
        close(ready[1]);
        CHECK(read(ready[0], &c, 1) == 1);
        close(ready[0]);
        vss_writer_options o = { .name = "trusting" };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, NULL, NULL, &w), 0);
        CHECK_HR(vss_writer_subscribe(w, path), VSS_E_WRITER_INFRASTRUCTURE);
        CHECK(strstr(vss_writer_errmsg(w), "not vssd") != NULL);
        vss_writer_unref(w);
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(path, &b), VSS_E_WRITER_INFRASTRUCTURE);
        CHECK(b == NULL);
        /* The real one, root's, is fine. */
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        vss_backup_release(b);
        kill(bob, SIGKILL);
        waitpid(bob, NULL, 0);
        unlink(path);
        rmdir(dir);
}

/* auth-session-isolation-users */

struct Alice {
        const char *data;
        int to_parent, from_parent;
};

/* A session of the user running, its set of data started and prepared. */
static vss_backup *prepared_session(Harness *h, const char *data) {
        vss_backup *b = session_as_user(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        return b;
}

static void alice_session(Harness *h, void *userdata) {
        struct Alice *a = userdata;
        vss_backup *b = prepared_session(h, a->data);
        vss_id id;
        char ids[VSS_ID_STRING_MAX], go;
        vss_backup_get_session_id(b, &id);
        vss_id_to_string(&id, ids);
        CHECK(write(a->to_parent, ids, sizeof(ids)) == (ssize_t) sizeof(ids));
        CHECK(read(a->from_parent, &go, 1) == 1);
        /* Untouched by the others: its snapshot set goes on. */
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
}

static void other_user_tries(Harness *h, void *userdata) {
        const char *ids = userdata;
        bool member = getuid() == uid_of(CAROL);
        static const char *const methods[] = { "GatherWriterStatus", "SaveAsDocument", "AbortBackup", "Cancel",
                                               "DoSnapshotSet", "BackupComplete", "WaitPaused",
                                               "ContinueSnapshotSet", "ReleaseSession" };
        sd_bus *bus = connect_or_die(h);
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                int32_t hr = call(bus, methods[i], "s", ids);
                /* A member of the backup group finds no such session; anyone else may not even ask. */
                if (member) {
                        CHECK_HR(hr, VSS_E_OBJECT_NOT_FOUND);
                        CHECK(strstr(last_msg, "no session") != NULL);
                } else
                        CHECK_HR(hr, VSS_E_ACCESSDENIED);
                CHECK(strstr(last_msg, "data") == NULL); /* never a word of its contents */
        }
        CHECK_HR(call(bus, "AddToSnapshotSet", "sss", ids, "/tmp", ""), member ? VSS_E_OBJECT_NOT_FOUND : VSS_E_ACCESSDENIED);
        CHECK_HR(call(bus, "DoSnapshotSetPaused", "su", ids, (uint32_t) 3), member ? VSS_E_OBJECT_NOT_FOUND : VSS_E_ACCESSDENIED);
        sd_bus_flush_close_unref(bus);
}

static void test_session_isolation_users(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        harness_writer(h, "w", NULL);
        char *data = harness_make_data(h, "data");
        int up[2], down[2];
        char ids[VSS_ID_STRING_MAX] = "";
        CHECK(pipe(up) == 0 && pipe(down) == 0);
        struct Alice a = { .data = data, .to_parent = up[1], .from_parent = down[0] };
        pid_t pid = spawn_as(ALICE, alice_session, h, &a);
        CHECK(read(up[0], ids, sizeof(ids)) == (ssize_t) sizeof(ids));
        run_as(CAROL, other_user_tries, h, ids, "carol on alice's session");
        run_as(BOB, other_user_tries, h, ids, "bob on alice's session");
        CHECK(write(down[1], "g", 1) == 1);
        wait_ok(pid, "alice's session");
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        free(ev);
        close(up[0]), close(up[1]), close(down[0]), close(down[1]);
}

/* auth-set-gives-way: a user with the create right holds a snapshot set in creation. Root's
 * requester takes the machine's one set from it: at once when it is idle (its writers that
 * prepared get Abort, its next call learns why); once its step ends when it is busy, and then no
 * other user starts one before root's requester tries again. */

/* Alice's session holding a set (alice_holds_*()), and the pipes she says where she is through. */
struct Holder {
        const char *data;
        int up[2], down[2];
        pid_t pid;
};

static void alice_holds_set(Harness *h, void *userdata) {
        struct Holder *a = userdata;
        vss_backup *b = prepared_session(h, a->data);
        char go;
        CHECK(write(a->up[1], "p", 1) == 1);
        CHECK(read(a->down[0], &go, 1) == 1);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE);
        CHECK(strstr(vss_backup_errmsg(b), "gave way to another's") != NULL);
        vss_backup_release(b);
}

/* The same, paused in DoSnapshotSet before Freeze: the set aborts with its writers' Abort and
 * its DoSnapshotSet gives the reason. */
static void alice_holds_paused(Harness *h, void *userdata) {
        struct Holder *a = userdata;
        vss_backup *b = prepared_session(h, a->data);
        vss_async *as = NULL;
        uint32_t point = 0;
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, VSS_PAUSE_BEFORE_FREEZE, &as), 0);
        CHECK_HR(vss_backup_wait_paused(b, 20000, &point, NULL), 0);
        CHECK(point == VSS_PAUSE_BEFORE_FREEZE);
        CHECK(write(a->up[1], "P", 1) == 1);
        CHECK_HR(vss_async_wait(as, 20000), VSS_E_SNAPSHOT_SET_IN_PROGRESS);
        CHECK(strstr(vss_backup_errmsg(b), "gave way to another's") != NULL);
        vss_async_free(as);
        vss_backup_release(b);
}

static void carol_starts_set(Harness *h, void *userdata) {
        vss_backup *b = session_as_user(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_SNAPSHOT_SET_IN_PROGRESS);
        CHECK(strstr(vss_backup_errmsg(b), "root's requester waits") != NULL);
        vss_backup_release(b);
}

/* Alice's fn holding a set of data; then, when said is not 0, what she says once it is held. */
static void holder_start(Harness *h, struct Holder *a, const char *data, UserFn fn, char said) {
        char c = 0;
        *a = (struct Holder) { .data = data };
        CHECK(pipe(a->up) == 0 && pipe(a->down) == 0);
        a->pid = spawn_as(ALICE, fn, h, a);
        if (said)
                CHECK(read(a->up[0], &c, 1) == 1 && c == said);
}

static void holder_end(struct Holder *a) {
        CHECK(write(a->down[1], "g", 1) == 1);
        wait_ok(a->pid, "alice's session");
        close(a->up[0]), close(a->up[1]), close(a->down[0]), close(a->down[1]);
}

static void test_set_gives_way(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        harness_writer(h, "w", NULL);
        struct Holder a;
        char c = 0, *data = harness_make_data(h, "data");

        /* Idle since PrepareForBackup: root's vssadmin makes its shadow. */
        holder_start(h, &a, data, alice_holds_set, 'p');
        int st = -1;
        json_object *out = harness_json(h, &st, "vssadmin create shadow --json --for '%s'", a.data);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        json_object_put(out);
        /* Alice's Identify and PrepareForBackup, vssadmin's Identify, then Abort of alice's set at
         * vssadmin's StartSnapshotSet, then vssadmin's backup. */
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup identify abort prepare-backup prepare-snapshot freeze thaw post-snapshot "
                      "backup-complete backup-shutdown");
        free(ev);
        holder_end(&a);

        /* Busy in PrepareForBackup: root is told to try again, carol is kept out, and once the
         * step ends the set is aborted and root's starts. */
        harness_clear_log(h);
        harness_set(h, "w", "prepare-backup", "wait");
        holder_start(h, &a, data, alice_holds_set, 0);
        CHECK(harness_wait_started(h, "w", "prepare-backup"));
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_SNAPSHOT_SET_IN_PROGRESS);
        CHECK(strstr(vss_backup_errmsg(b), "gives way to root's once its current step ends") != NULL);
        harness_go(h, "w", "prepare-backup");
        CHECK(read(a.up[0], &c, 1) == 1 && c == 'p');
        CHECK(harness_wait_event(h, "w", "abort", 20000));
        run_as(CAROL, carol_starts_set, h, NULL, "carol while root waits");
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_abort_backup(b), 0);
        vss_backup_release(b);
        holder_end(&a);

        /* Paused before Freeze: aborted at once, root's next try starts. */
        harness_clear_log(h);
        harness_set(h, "w", "prepare-backup", "ok");
        holder_start(h, &a, data, alice_holds_paused, 'P');
        b = harness_session(h);
        int32_t hr = vss_backup_start_snapshot_set(b, NULL);
        CHECK(hr == 0 || hr == VSS_E_SNAPSHOT_SET_IN_PROGRESS);
        CHECK(harness_wait_event(h, "w", "abort", 20000));
        holder_end(&a); /* she does not wait for it: her DoSnapshotSet ended */
        if (hr != 0)
                CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        vss_backup_release(b);
        /* Then BackupShutdown of both sessions, as they are released. */
        static const char before[] = "identify prepare-backup prepare-snapshot identify abort";
        ev = harness_events(h, "w");
        CHECK(ev && strncmp(ev, before, strlen(before)) == 0);
        free(ev);
}

/* auth-set-idle-gives-way: alice's set in creation, idle, keeps carol's out until it is
 * user_set_idle_ms old (300 ms here); then it gives way to carol's, and alice's next call says so. */
static void carol_waits_for_set(Harness *h, void *userdata) {
        const struct timespec *since = userdata;
        vss_backup *b = session_as_user(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), VSS_E_SNAPSHOT_SET_IN_PROGRESS);
        int32_t hr = VSS_E_SNAPSHOT_SET_IN_PROGRESS;
        for (int i = 0; i < 1000 && hr == VSS_E_SNAPSHOT_SET_IN_PROGRESS; i++) {
                hr = vss_backup_start_snapshot_set(b, NULL);
                if (hr == VSS_E_SNAPSHOT_SET_IN_PROGRESS)
                        usleep(10 * 1000);
        }
        CHECK_HR(hr, 0);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double took = (double) (now.tv_sec - since->tv_sec) + (double) (now.tv_nsec - since->tv_nsec) / 1e9;
        CHECK(took >= 0.29); /* not before alice's set was that old */
        CHECK_HR(vss_backup_abort_backup(b), 0);
        vss_backup_release(b);
}

static void test_set_idle_gives_way(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"user_set_idle_ms\": 300}");
        harness_writer(h, "w", NULL);
        struct Holder a;
        struct timespec since;
        clock_gettime(CLOCK_MONOTONIC, &since); /* before alice's StartSnapshotSet */
        holder_start(h, &a, harness_make_data(h, "data"), alice_holds_set, 'p');
        run_as(CAROL, carol_waits_for_set, h, &since, "carol waits for alice's idle set");
        holder_end(&a);
        char *ev = harness_events(h, "w");
        CHECK(ev && strstr(ev, "prepare-backup") && strstr(ev, "abort"));
        free(ev);
}

/* auth-shadow-reserve: alice (create, no delete) brings a volume to three quarters of
 * max_shadows_per_volume at most; the rest is root's, whose create still succeeds. */
static int alice_creates(Harness *h, const char *data, char **out) {
        return harness_sh(h, out, "runuser -u " ALICE " -- env VSS_SOCKET=%s %s/vssadmin create shadow --for '%s' 2>&1",
                          harness_socket(h), VSSADMIN_DIR, data);
}

static void test_shadow_reserve(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"max_shadows_per_volume\": 4}");
        char *data = harness_make_data(h, "data"), *o = NULL;
        for (int i = 0; i < 3; i++)
                CHECK(alice_creates(h, data, NULL) == 0);
        CHECK(alice_creates(h, data, &o) != 0);
        CHECK(o && strstr(o, "VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED") && strstr(o, "kept for root's"));
        free(o);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 3);
        CHECK(harness_sh(h, NULL, "vssadmin create shadow --for '%s'", data) == 0);
        CHECK(harness_sh(h, &o, "vssadmin create shadow --for '%s' 2>&1", data) != 0);
        CHECK(o && strstr(o, "the most allowed;"));
        free(o);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 4);
        harness_free(h);

        /* With a limit of 1, the one shadow is root's to make. */
        h = harness_for_users(CONFIG_BASE ", \"max_shadows_per_volume\": 1}");
        data = harness_make_data(h, "data");
        CHECK(alice_creates(h, data, &o) != 0);
        CHECK(o && strstr(o, "kept for root's"));
        free(o);
        CHECK(harness_sh(h, NULL, "vssadmin create shadow --for '%s'", data) == 0);
}

/* auth-explain-unreachable: alice (list right) asking ExplainVolume about paths in a directory
 * she cannot search gets one answer for a file there and for none, and no word of where root's
 * symlink there leads; a path she reaches is explained; root's answer is unchanged. */
static void alice_explains(Harness *h, void *userdata) {
        const char *secret = userdata;
        char path[PATH_MAX], first[sizeof(last_msg)];
        sd_bus *bus = connect_or_die(h);
        const char *const names[] = { "key", "none", "link" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(path, sizeof(path), "%s/%s", secret, names[i]);
                CHECK_HR(call(bus, "ExplainVolume", "s", path), VSS_E_OBJECT_NOT_FOUND);
                CHECK(strstr(last_msg, "does not exist, or uid") != NULL && !strstr(last_msg, "elsewhere"));
                const char *after = strstr(last_msg, path);
                after = after ? after + strlen(path) : last_msg;
                if (i == 0)
                        snprintf(first, sizeof(first), "%s", after);
                else
                        CHECK_STR(after, first); /* the same words after the path */
        }
        CHECK_HR(call(bus, "ExplainVolume", "s", harness_dir(h)), 0);
        sd_bus_flush_close_unref(bus);
}

static void test_explain_unreachable(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char secret[PATH_MAX];
        snprintf(secret, sizeof(secret), "%s/secret", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -m 700 '%s' '%s/../elsewhere-%d' && touch '%s/key' && ln -s '%s/../elsewhere-%d' "
                                  "'%s/link'", secret, harness_dir(h), (int) getpid(), secret, harness_dir(h), (int) getpid(),
                         secret) == 0);
        run_as(ALICE, alice_explains, h, secret, "alice explains");
        CHECK(harness_sh(h, NULL, "vssadmin list providers --for '%s/key' >/dev/null", secret) == 0);
        CHECK(harness_sh(h, NULL, "rmdir '%s/../elsewhere-%d'", harness_dir(h), (int) getpid()) == 0);
}

/* auth-rights */

static void carol_limited(Harness *h, void *userdata) {
        const char *data = userdata;
        /* create: the backup group's by default. */
        vss_backup *b = session_as_user(h);
        backup_to_snapshot(b, data, VSS_CTX_APP_ROLLBACK);
        vss_backup_release(b);
        sd_bus *bus = connect_or_die(h);
        CHECK(count_listed(bus, "ListShadows", SHADOW_SIG) == 1);
        check_denied(call(bus, "DeleteShadows", "ss", "all", ""), CAROL, "'delete'");
        sd_bus_flush_close_unref(bus);
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_restore(b, NULL), VSS_E_ACCESSDENIED);
        CHECK(strstr(vss_backup_errmsg(b), "'restore'") != NULL);
        vss_backup_release(b);
}

static void alice_restores_and_deletes(Harness *h, void *userdata) {
        const char *shadow_id = userdata;
        vss_backup *b = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_restore(b, NULL), 0);
        CHECK_HR(vss_backup_pre_restore_sync(b), 0);
        CHECK_HR(vss_backup_post_restore_sync(b), 0);
        vss_backup_release(b);
        sd_bus *bus = connect_or_die(h);
        /* Not in the list right (given to carol alone). */
        check_denied(call(bus, "ListShadows", NULL), ALICE, "'list'");
        /* ... but one who makes shadow copies may look one up. */
        sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        CHECK(sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "GetSnapshotProperties", &e, &reply, "s",
                                 shadow_id) >= 0);
        sd_bus_error_free(&e);
        sd_bus_message_unref(reply);
        CHECK_HR(call(bus, "DeleteShadows", "ss", "all", ""), 0);
        sd_bus_flush_close_unref(bus);
}

static void test_rights(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"rights\": {\"list\": [\"" CAROL "\"], \"delete\": [\"" ALICE "\"], "
                           "\"restore\": [\"" ALICE "\"]}}");
        harness_writer(h, "w", NULL);
        char *data = harness_make_data(h, "data");
        run_as(CAROL, carol_limited, h, data, "carol without delete and restore");
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 1);
        int files = harness_count_shadow_files(h);
        CHECK(files > 0);
        char *out = NULL;
        int st = harness_sh(h, &out, "runuser -u " CAROL " -- env VSS_SOCKET=%s %s/vssadmin delete shadows --all 2>&1",
                            harness_socket(h), VSSADMIN_DIR);
        CHECK(st != 0);
        CHECK(out && strstr(out, "E_ACCESSDENIED") != NULL && strstr(out, "'delete'") != NULL);
        free(out);
        /* The refused deletes changed nothing. */
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 1);
        CHECK(harness_count_shadow_files(h) == files);

        /* The shadow's id, as root sees it. */
        char shadow_id[VSS_ID_STRING_MAX] = "";
        sd_bus *bus = connect_or_die(h);
        sd_bus_message *reply = NULL;
        const char *sid = NULL;
        if (call_reply(bus, &reply, "ListShadows") == 0 && sd_bus_message_enter_container(reply, 'a', SHADOW_SIG) >= 0 &&
            sd_bus_message_enter_container(reply, 'r', "sssssttu") >= 0 && sd_bus_message_read(reply, "s", &sid) >= 0)
                snprintf(shadow_id, sizeof(shadow_id), "%s", sid);
        CHECK(*shadow_id);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);

        /* Alice's restore with no document reaches her own writer, not root's. */
        pid_t aw = writer_as_args(h, ALICE, "alice-w", NULL, NULL);
        harness_clear_log(h);
        run_as(ALICE, alice_restores_and_deletes, h, shadow_id, "alice with restore and delete");
        char *ev = harness_events(h, "alice-w");
        CHECK_STR(ev, "pre-restore post-restore");
        free(ev);
        ev = harness_events(h, "w");
        CHECK_STR(ev, "");
        free(ev);
        stop_writer(aw);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 0);

        /* Names are resolved at load; an unknown one is a clear error, not a silent default. */
        static const struct { const char *json, *error; } bad[] = {
                { "{\"rights\": {\"delete\": [\"vsstest-nobody\"]}}", "rights.delete: no user 'vsstest-nobody'" },
                { "{\"rights\": {\"list\": [\"@vsstest-nogroup\"]}}", "rights.list: no group 'vsstest-nogroup'" },
                { "{\"rights\": {\"purge\": []}}", "unknown key rights.purge" },
                { "{\"rights\": {\"create\": \"" ALICE "\"}}", "rights.create: must be an array" },
                { "{\"max_calls_per_second\": 0}", "max_calls_per_second: must be an integer from 1" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char path[600];
                snprintf(path, sizeof(path), "%s/bad.json", harness_dir(h));
                FILE *f = fopen(path, "we");
                fputs(bad[i].json, f);
                fclose(f);
                CHECK(harness_sh(h, &out, "%s --config %s --socket %s/x.sock --state-dir %s/x 2>&1", VSSD_PATH, path,
                                 harness_dir(h), harness_dir(h)) == 2);
                CHECK(out && strstr(out, bad[i].error) != NULL);
                if (!out || !strstr(out, bad[i].error))
                        fprintf(stderr, "   got: %s", strempty(out));
                free(out);
        }
}

/* auth-limits */

#define BIG 5000

static void alice_limits(Harness *h, void *userdata) {
        sd_bus *c[4], *extra;
        char s[4][VSS_ID_STRING_MAX], id[VSS_ID_STRING_MAX];

        /* Connections: 4 per uid. */
        for (int i = 0; i < 4; i++) {
                c[i] = connect_or_die(h);
                CHECK_HR(call(c[i], "ListProviders", NULL), 0);
        }
        extra = connect_or_die(h);
        CHECK_HR(call(extra, "ListProviders", NULL), VSS_E_OUTOFMEMORY);
        CHECK(strstr(last_msg, "max_connections_per_uid") != NULL);
        /* ... and vssd closed it. */
        CHECK(call(extra, "ListProviders", NULL) != 0);
        sd_bus_flush_close_unref(extra);
        /* One gone, one more may come. */
        sd_bus_flush_close_unref(c[3]);
        int32_t hr = -1;
        for (int i = 0; i < 200 && hr != 0; i++) {
                extra = connect_or_die(h);
                hr = call(extra, "ListProviders", NULL);
                if (hr != 0) {
                        sd_bus_flush_close_unref(extra);
                        usleep(10 * 1000);
                }
        }
        CHECK_HR(hr, 0);
        c[3] = extra;

        /* Sessions: 3 per uid, over all its connections. */
        CHECK_HR(call_s(c[0], s[0], sizeof(s[0]), "CreateSession", NULL), 0);
        CHECK_HR(call_s(c[0], s[1], sizeof(s[1]), "CreateSession", NULL), 0);
        CHECK_HR(call_s(c[1], s[2], sizeof(s[2]), "CreateSession", NULL), 0);
        CHECK_HR(call_s(c[1], id, sizeof(id), "CreateSession", NULL), VSS_E_OUTOFMEMORY);
        CHECK(strstr(last_msg, "max_sessions_per_uid") != NULL);
        CHECK_HR(call_s(c[2], id, sizeof(id), "CreateSession", NULL), VSS_E_OUTOFMEMORY);
        CHECK_HR(call(c[0], "ReleaseSession", "s", s[0]), 0);
        CHECK_HR(call_s(c[2], s[3], sizeof(s[3]), "CreateSession", NULL), 0);

        /* Strings past their limit change nothing. */
        char *big = malloc(BIG + 1);
        memset(big, 'x', BIG);
        big[0] = '/';
        big[BIG] = 0;
        CHECK_HR(call(c[2], "InitializeForBackup", "s", s[3]), 0);
        CHECK_HR(call(c[2], "SetBackupState", "sbbub", s[3], 0, 0, (uint32_t) VSS_BT_FULL, 0), 0);
        CHECK_HR(call(c[2], "GatherWriterMetadata", "s", s[3]), 0);
        CHECK_HR(call_s(c[2], id, sizeof(id), "StartSnapshotSet", "s", s[3]), 0);
        CHECK_HR(call(c[2], "AddToSnapshotSet", "sss", s[3], big, ""), VSS_E_INVALIDARG);
        CHECK(strstr(last_msg, "argument 2 is 5000 bytes") != NULL);
        CHECK_HR(call(c[2], "AddToSnapshotSet", "sss", s[3], "/tmp", big), VSS_E_INVALIDARG);
        CHECK_HR(call(c[2], "PrepareForBackup", "s", s[3]), 0);
        /* No volume got in: the set is empty, which VSS allows (the writers quiesce). */
        CHECK_HR(call(c[2], "DoSnapshotSet", "s", s[3]), 0);
        CHECK_HR(call(c[2], "Subscribe", "ssssuu", "6c2e3f50-bbbb-4ccc-8ddd-000000000001",
                      "6c2e3f50-bbbb-4ccc-8ddd-000000000002", big, "", 0u, 0u), VSS_E_INVALIDARG);
        big[300] = 0;
        CHECK_HR(call(c[2], "Subscribe", "ssssuu", "6c2e3f50-bbbb-4ccc-8ddd-000000000001",
                      "6c2e3f50-bbbb-4ccc-8ddd-000000000002", big, "", 0u, 0u), VSS_E_INVALIDARG);
        CHECK(count_listed(c[2], "ListWriters", WRITER_SIG) == 0);
        free(big);

        /* A call storm: 50 calls at once, 20 a second after that. */
        uint64_t t0 = now_monotonic_usec();
        int ok = 0, refused = 0;
        for (int i = 0; i < 300; i++) {
                hr = call(c[3], "ListProviders", NULL);
                if (hr == 0)
                        ok++;
                else {
                        CHECK_HR(hr, VSS_E_OUTOFMEMORY);
                        if (refused++ == 0)
                                CHECK(strstr(last_msg, "call rate limit") != NULL);
                }
        }
        double secs = (double) (now_monotonic_usec() - t0) / USEC_PER_SEC;
        CHECK(refused > 0);
        CHECK(ok >= 49 && ok <= 49 + (int) (secs * 20) + 2);
        if (!(ok >= 49 && ok <= 49 + (int) (secs * 20) + 2))
                fprintf(stderr, "   %d calls passed in %.2f s\n", ok, secs);
        /* Other connections have their own budget, and the bucket refills. */
        CHECK_HR(call(c[1], "ListProviders", NULL), 0);
        usleep(200 * 1000);
        CHECK_HR(call(c[3], "ListProviders", NULL), 0);

        for (int i = 0; i < 4; i++)
                sd_bus_flush_close_unref(c[i]);
}

static void test_limits(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"max_connections_per_uid\": 4, \"max_sessions_per_uid\": 3, "
                           "\"max_calls_per_second\": 20, \"max_call_burst\": 50}");
        run_as(ALICE, alice_limits, h, NULL, "alice's limits");

        /* Root is exempt: the coordinator's own tools and many writers of one service. */
        sd_bus *c[8];
        for (int i = 0; i < 8; i++) {
                c[i] = connect_or_die(h);
                CHECK_HR(call(c[i], "ListProviders", NULL), 0);
        }
        int refused = 0;
        for (int i = 0; i < 200; i++)
                refused += call(c[0], "ListProviders", NULL) != 0;
        CHECK(refused == 0);
        for (int i = 0; i < 8; i++)
                sd_bus_flush_close_unref(c[i]);
}

static const TestCase cases[] = {
        { "auth-requester-not-in-group", test_requester_not_in_group },
        { "auth-requester-in-group", test_requester_in_group },
        { "auth-writer-any-user", test_writer_any_user },
        { "auth-writer-impersonation", test_writer_impersonation },
        { "auth-writer-class-config", test_writer_class_config },
        { "auth-fake-vssd", test_fake_vssd },
        { "auth-session-isolation-users", test_session_isolation_users },
        { "auth-rights", test_rights },
        { "auth-set-gives-way", test_set_gives_way },
        { "auth-shadow-reserve", test_shadow_reserve },
        { "auth-set-idle-gives-way", test_set_idle_gives_way },
        { "auth-explain-unreachable", test_explain_unreachable },
        { "auth-limits", test_limits },
        {},
};

int main(int argc, char *argv[]) {
        if (geteuid() != 0) {
                fprintf(stderr, "test-auth: needs root (it makes users and starts vssd as root)\n");
                return 77;
        }
        return test_main(argc, argv, cases);
}
