/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which writers take part in a snapshot set (issue 10, item 5), with writers of a real
 * unprivileged user: in a backup that selects no components, a writer takes part from
 * PrepareForSnapshot on only when a path of one of its components lies on, under or above a path
 * of the set (a user's writer: and the deeper of the two is the user's), or when it is root's and
 * declares no component. The others stay Stable with the note "not involved", get no event of the
 * set, and so cannot fail it.
 */

#include <limits.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include <time.h>

#include <vss/document.h>

#include "lib/common.h"
#include "tests/users.h"

/* One vss-writer-exec of bob's declaring component db=path (none when path is NULL), vetoing
 * Freeze when veto. */
static pid_t bobs_writer(Harness *h, const char *name, const char *path, bool veto) {
        char comp[PATH_MAX + 8];
        snprintf(comp, sizeof(comp), "db=%s", strempty(path));
        const char *const extra[] = { path ? "--component" : NULL, comp, NULL };
        pid_t w = writer_as_args(h, BOB, name, NULL, extra);
        if (veto)
                harness_set(h, name, "freeze", "fail 75 bob says no");
        return w;
}

static void check_not_involved(json_object *out, const char *name) {
        json_object *ws = json_phase(out, "do-snapshot-set", name);
        CHECK(ws != NULL);
        json_object *state = NULL;
        CHECK(ws && json_object_object_get_ex(ws, "state", &state) &&
              json_object_get_int(state) == VSS_WS_STABLE);
        CHECK_STR(json_str(ws, "note"), "not involved");
        CHECK_STR(json_str(ws, "failure_name"), "S_OK");
}

/* Identify like everyone, then nothing: a user's writer not involved hears nothing of the backup,
 * so it can neither fail nor stall it (its PrepareForBackup veto is never asked). */
static void check_left_out_events(Harness *h, const char *name) {
        char *ev = harness_events(h, name);
        CHECK_STR(ev, "identify");
        free(ev);
}

/* trust-participation-not-involved: bob's writers, one without components and one whose component
 * lies elsewhere, vetoing PrepareForBackup and Freeze, do not fail root's backup of a directory; a root writer
 * without components (a system-wide quiesce) takes part. */
static void test_not_involved(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char data[PATH_MAX], elsewhere[PATH_MAX];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        CHECK(realpath(harness_make_data(h, "data2"), elsewhere) != NULL); /* "data2" is not under "data" */
        pid_t b1 = bobs_writer(h, "bob-none", NULL, true);
        pid_t b2 = bobs_writer(h, "bob-elsewhere", elsewhere, true);
        /* A component of "/" lies above every path, but what it shares with root's data is not bob's. */
        pid_t b3 = bobs_writer(h, "bob-everything", "/", true);
        /* Nor can they veto it before it starts: PrepareForBackup is not theirs to hear. */
        harness_set(h, "bob-none", "prepare-backup", "fail 75 bob says no");
        harness_set(h, "bob-elsewhere", "prepare-backup", "fail 75 bob says no");
        harness_writer(h, "root-quiesce", NULL);

        int st = -1;
        json_object *out = harness_json(h, &st, "vssadmin create shadow --json --for '%s'", data);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        check_not_involved(out, "bob-none");
        check_not_involved(out, "bob-elsewhere");
        check_not_involved(out, "bob-everything");
        json_object *rw = json_phase(out, "do-snapshot-set", "root-quiesce");
        CHECK(rw != NULL);
        CHECK_STR(json_str(rw, "note"), "");
        CHECK_STR(json_str(rw, "state_name"), "WaitingForBackupComplete");
        json_object_put(out);
        check_left_out_events(h, "bob-none");
        check_left_out_events(h, "bob-elsewhere");
        check_left_out_events(h, "bob-everything");
        char *ev = harness_events(h, "root-quiesce");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        free(ev);

        /* vssbackup exec: the same. */
        harness_clear_log(h);
        char *o = NULL;
        CHECK(harness_sh(h, &o, "vssbackup exec --for '%s' -- sh -c 'test -f {}/a.txt && echo copied' 2>&1", data) == 0);
        CHECK(o && strstr(o, "copied") != NULL);
        if (!o || !strstr(o, "copied"))
                fprintf(stderr, "vssbackup exec said: %s\n", strempty(o));
        free(o);
        check_left_out_events(h, "bob-none");
        check_left_out_events(h, "bob-elsewhere");
        check_left_out_events(h, "bob-everything");
        ev = harness_events(h, "root-quiesce");
        CHECK(ev && strstr(ev, "freeze") != NULL);
        free(ev);

        /* The backup components document holds neither the writers left out nor records of
         * their components. */
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        char *json = NULL;
        vss_backup_document *doc = NULL;
        CHECK_HR(vss_backup_save_as_document(b, &json), 0);
        CHECK_HR(vss_backup_document_parse(json, &doc, NULL, 0), 0);
        size_t n_root = 0;
        for (size_t i = 0; doc && i < doc->n_writers; i++) {
                CHECK(!streq(doc->writers[i]->name, "bob-none") && !streq(doc->writers[i]->name, "bob-elsewhere") &&
                      !streq(doc->writers[i]->name, "bob-everything"));
                n_root += streq(doc->writers[i]->name, "root-quiesce");
        }
        CHECK(n_root == 1);
        CHECK(doc && doc->n_components == 0); /* bob's writers' "db" were the only components */
        vss_backup_document_free(doc);
        free(json);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);

        /* vssadmin list writers keeps the note of the last session. */
        CHECK(harness_sh(h, &o, "vssadmin list writers") == 0);
        CHECK(o && strstr(o, "not involved") != NULL);
        free(o);

        /* A volume of bob's own added after PrepareForBackup, which left his writer out: refused,
         * since his writer would take part without having been prepared. */
        char bobs[PATH_MAX];
        CHECK(realpath(harness_make_data(h, "bobs"), bobs) != NULL);
        CHECK(harness_sh(h, NULL, "chown -R %u '%s'", (unsigned) uid_of(BOB), bobs) == 0);
        pid_t b4 = bobs_writer(h, "bob-late", bobs, false);
        b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, bobs, NULL, NULL), VSS_E_BAD_STATE);
        CHECK(strstr(vss_backup_errmsg(b), "bob-late") != NULL);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        vss_backup_release(b);
        /* Nor does bob's writer, harmless and elsewhere, fail root's vssbackup backup --for: its
         * component is not in the set, so there is nothing of it to copy. */
        CHECK(harness_sh(h, NULL, "vssbackup backup --to '%s/bk' --for '%s' --retries 0 --quiet", harness_dir(h), data) == 0);
        stop_writer(b4);
        stop_writer(b1);
        stop_writer(b2);
        stop_writer(b3);
}

/* trust-participation-own-path-vetoes: a user's writer whose component lies under, on or above the
 * set, where the set holds the user's data, still takes part, and its veto still fails the backup;
 * one beside it does not. */
static void test_own_path_vetoes(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char data[PATH_MAX], under[PATH_MAX + 8], sibling[PATH_MAX + 8];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        snprintf(under, sizeof(under), "%s/db", data);
        CHECK(mkdir(under, 0755) == 0);
        CHECK(harness_sh(h, NULL, "chown -R %u '%s'", (unsigned) uid_of(BOB), data) == 0);
        snprintf(sibling, sizeof(sibling), "%s2", data);
        pid_t b1 = bobs_writer(h, "bob-under", under, true);
        pid_t b2 = bobs_writer(h, "bob-beside", sibling, true);

        int st = -1;
        json_object *out = harness_json(h, &st, "vssadmin create shadow --json --for '%s'", data);
        CHECK(st == 1);
        CHECK_STR(json_str(out, "result"), "failed");
        json_object *e = NULL;
        CHECK(out && json_object_object_get_ex(out, "error", &e));
        const char *msg = e ? json_str(e, "message") : NULL;
        CHECK(msg && strstr(msg, "bob-under") && strstr(msg, "bob says no"));
        json_object *ws = json_phase(out, "do-snapshot-set", "bob-under");
        CHECK(ws != NULL);
        CHECK_STR(json_str(ws, "state_name"), "FailedAtFreeze");
        check_not_involved(out, "bob-beside");
        json_object_put(out);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 0);
        check_left_out_events(h, "bob-beside");
        stop_writer(b2);

        /* On and above the set count as well. */
        stop_writer(b1);
        harness_clear_log(h);
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", data);
        *strrchr(parent, '/') = 0;
        pid_t on = bobs_writer(h, "bob-on", data, false);
        pid_t above = bobs_writer(h, "bob-above", parent, false);
        out = harness_json(h, &st, "vssadmin create shadow --json --for '%s/'", data);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        json_object_put(out);
        char *ev = harness_events(h, "bob-on");
        CHECK(ev && strstr(ev, "prepare-snapshot freeze thaw post-snapshot backup-complete") != NULL);
        free(ev);
        ev = harness_events(h, "bob-above");
        CHECK(ev && strstr(ev, "prepare-snapshot freeze thaw post-snapshot backup-complete") != NULL);
        free(ev);
        stop_writer(on);
        stop_writer(above);
}

/* trust-participation-backup-default: root's plain `vssbackup backup` (every component) leaves
 * out a component of bob's writer that claims paths not bob's ("/"): not shadowed, not copied,
 * and, the set holding nothing of bob's, bob's veto not asked; `vssbackup exec` without --for
 * too. */
static void test_backup_default(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char data[PATH_MAX], comp[PATH_MAX + 8], backup[PATH_MAX];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        snprintf(comp, sizeof(comp), "app=%s", data);
        const char *const rootw[] = { "--component", comp, NULL };
        harness_writer(h, "rootw", rootw);
        pid_t b1 = bobs_writer(h, "bob-everything", "/", true);
        /* A path of bob's naming a terminal escape (a window title) and a line of its own: vssd
         * refuses such metadata (its Identify fails), so root's terminal never gets them. */
        pid_t b2 = bobs_writer(h, "bob-escapes", "/nonexistent\033]0;owned\a\nvssbackup: fake", false);
        /* And a C1 control (CSI in UTF-8: clear the screen) and a right-to-left override. */
        pid_t b3 = bobs_writer(h, "bob-c1", "/nonexistent\xc2\x9b" "2J\xe2\x80\xae" "gnp.txe", false);
        /* A file of bob's in a directory of root's: the directory is what would be shadowed. */
        char bobfile[PATH_MAX + 16];
        snprintf(bobfile, sizeof(bobfile), "%s/bobs-file", data);
        CHECK(harness_sh(h, NULL, "touch %s && chown %u %s", bobfile, (unsigned) uid_of(BOB), bobfile) == 0);
        pid_t b4 = bobs_writer(h, "bob-file", bobfile, false);

        int st = -1;
        char *o = NULL;
        CHECK(harness_sh(h, &o, "vssbackup backup --to '%s' --retries 0 2>&1", backup) == 0);
        CHECK(o && strstr(o, "component 'db' of writer 'bob-everything' left out: / is not its user's"));
        CHECK(o && !strstr(o, "writer 'bob-escapes'") && !strstr(o, "writer 'bob-c1'"));
        CHECK(o && !strchr(o, '\033') && !strchr(o, '\a') && !strstr(o, "\xc2\x9b") && !strstr(o, "\xe2\x80\xae"));
        char want[PATH_MAX + 128];
        snprintf(want, sizeof(want), "component 'db' of writer 'bob-file' left out: %s is not its user's", bobfile);
        CHECK(o && strstr(o, want));
        free(o);
        stop_writer(b2);
        stop_writer(b3);
        stop_writer(b4);
        check_left_out_events(h, "bob-everything");
        char *ev = harness_events(h, "rootw");
        CHECK(ev && strstr(ev, "prepare-snapshot freeze thaw post-snapshot backup-complete") != NULL);
        free(ev);
        json_object *out = harness_json(h, &st, "vssbackup restore --from '%s' --to '%s/to' --json", backup,
                                        harness_dir(h));
        CHECK(st == 0);
        json_object_put(out);
        char p[3 * PATH_MAX];
        snprintf(p, sizeof(p), "%s/to%s/a.txt", harness_dir(h), data);
        CHECK(access(p, F_OK) == 0);
        /* vssbackup exec without --for: root's writer's paths only. */
        harness_clear_log(h);
        CHECK(harness_sh(h, &o, "vssbackup exec --retries 0 -- sh -c 'test -f {}/a.txt && echo copied' 2>&1") == 0);
        CHECK(o && strstr(o, "copied") && strstr(o, "component 'db' of writer 'bob-everything' left out"));
        free(o);
        check_left_out_events(h, "bob-everything");
        /* In component mode, bob's writer with nothing selected hears nothing either: its veto at
         * PrepareForBackup is not asked. */
        harness_clear_log(h);
        harness_set(h, "bob-everything", "prepare-backup", "fail 75 bob says no");
        CHECK(harness_sh(h, NULL, "vssbackup backup --to '%s/chosen' --component rootw:app --retries 0 --quiet",
                         harness_dir(h)) == 0);
        check_left_out_events(h, "bob-everything");
        stop_writer(b1);
}

/* trust-metadata-budget: bob's 24 writers, each with nearly 1 MiB of metadata (200 components of
 * 4000-byte paths), add up past what one user's metadata may in a session: the ones past it are
 * left out of root's session, whose gather still succeeds with root's writer in it, and vssd's
 * peak memory grows by far less than what they sent. */
static bool big_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        char name[32], path[4001];
        memset(path, 'p', sizeof(path) - 1);
        path[0] = '/';
        path[sizeof(path) - 1] = 0;
        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof(name), "c%d", i);
                if (vss_metadata_add_component(md, "", name, NULL, true, true) < 0 ||
                    vss_metadata_add_files(md, "", name, path, "*", true) < 0)
                        return false;
        }
        return true;
}

/* An in-process writer of bob's (spawn_as()) named name, answering Identify with identify. */
typedef struct IdentifyWriter {
        const char *name;
        vss_writer_identify_fn identify;
} IdentifyWriter;

static void identify_writer_as_bob(Harness *h, void *userdata) {
        const IdentifyWriter *iw = userdata;
        vss_writer_options o = { .name = iw->name };
        vss_writer_callbacks cb = { .identify = iw->identify };
        vss_writer *w = NULL;
        CHECK_HR(vss_writer_new(&o, &cb, NULL, &w), 0);
        if (w)
                CHECK(vss_writer_main(w, harness_socket(h), iw->name) == 0);
        vss_writer_unref(w);
}

/* A process's peak resident memory (VmHWM), in KiB; -1 when it cannot be read. */
static long vm_hwm_kib(pid_t pid) {
        char p[64], line[256];
        long kib = -1;
        snprintf(p, sizeof(p), "/proc/%d/status", (int) pid);
        FILE *f = fopen(p, "re");
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
                        break;
        if (f)
                fclose(f);
        return kib;
}

#define BIG_WRITERS 24

static void test_metadata_budget(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        static char names[BIG_WRITERS][16];
        pid_t pids[BIG_WRITERS];
        for (int i = 0; i < BIG_WRITERS; i++) {
                snprintf(names[i], sizeof(names[i]), "bob-big-%d", i);
                pids[i] = spawn_as(BOB, identify_writer_as_bob, h, &(IdentifyWriter) { names[i], big_identify });
        }
        for (int i = 0; i < BIG_WRITERS; i++)
                for (int t = 0; t < 3000 && !writer_listed(h, names[i]); t++)
                        usleep(10 * 1000);
        harness_writer(h, "root-quiesce", NULL);
        long before = vm_hwm_kib(harness_vssd_pid(h));
        vss_backup *b = harness_session(h); /* exits the test when the gather fails */
        /* Bob's metadata is bounded as it comes: what vssd holds of it at once is his 4 MiB (and
         * parsed structures of that), not 24 writers' nearly 1 MiB each, parsed. */
        long grew = vm_hwm_kib(harness_vssd_pid(h)) - before;
        bool instrumented = getenv("HARNESS_WRAPPER") != NULL; /* valgrind: its own memory counts */
#ifdef __SANITIZE_ADDRESS__
        instrumented = true; /* ASan's allocator keeps freed memory in quarantine */
#endif
        CHECK(before > 0 && (instrumented || grew < 30 * 1024)); /* 41 MiB before it was bounded as it came */
        size_t n_bob = 0, n_root = 0;
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *m = vss_backup_metadata_get(b, i);
                n_bob += strncmp(m->name, "bob-big-", 8) == 0;
                n_root += streq(m->name, "root-quiesce");
        }
        CHECK(n_root == 1);
        CHECK(n_bob >= 1 && n_bob < 6); /* 4 MiB: four of them fit, not six */
        vss_backup_release(b);
        for (int i = 0; i < BIG_WRITERS; i++)
                stop_writer(pids[i]);
}

/* trust-identify-stall: bob's writer that never answers Identify holds up root's first gather for
 * the Identify deadline (2.5 s here), and later ones for a second at most, until it answers again. */
static bool stall_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        sleep(60); /* the test ends it before */
        return true;
}

static double gather_s(Harness *h) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        vss_backup *bk = harness_session(h);
        clock_gettime(CLOCK_MONOTONIC, &b);
        vss_backup_release(bk);
        return (double) (b.tv_sec - a.tv_sec) + (double) (b.tv_nsec - a.tv_nsec) / 1e9;
}

/* An in-process writer of user's answering Identify with identify, once vssd lists it. */
static pid_t identify_writer_listed(Harness *h, const char *user, const char *name, vss_writer_identify_fn identify) {
        pid_t w = spawn_as(user, identify_writer_as_bob, h, &(IdentifyWriter) { name, identify });
        for (int i = 0; i < 2000 && !writer_listed(h, name); i++)
                usleep(10 * 1000);
        CHECK(writer_listed(h, name));
        return w;
}

/* Identify deadline 2.5 s, root's writer and user's writer name (identify): root's first gather
 * waits at least first_min for it, the second a second (what the rule guarantees, with room). */
static Harness *slow_then_cut(const char *user, const char *name, vss_writer_identify_fn identify, double first_min,
                              pid_t *ret_w) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"timeouts\": {\"identify_ms\": 2500}}");
        harness_writer(h, "root-quiesce", NULL);
        *ret_w = identify_writer_listed(h, user, name, identify);
        double first = gather_s(h), second = gather_s(h);
        CHECK(first >= first_min);
        CHECK(second < 2.0);
        fprintf(stderr, "root's gathers took %.2f s and %.2f s\n", first, second);
        return h;
}

static void test_identify_stall(void) {
        pid_t w;
        slow_then_cut(BOB, "bob-stall", stall_identify, 2.45, &w); /* the whole deadline, once */
        kill(w, SIGKILL); /* blocked in its Identify callback: SIGTERM would wait for it */
        waitpid(w, NULL, 0);
}

/* trust-identify-late-failure: bob's writer answers every Identify with a failure just before the
 * deadline (2.3 s of 2.5). That holds up root's first gather, not the later ones: a late failure
 * counts as a miss, for bob, so a writer of his that connects anew is waited for briefly too. */
static bool late_fail_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        usleep(2300 * 1000);
        return false;
}

static pid_t late_writer(Harness *h) {
        return identify_writer_listed(h, BOB, "bob-late", late_fail_identify);
}

static void test_identify_late_failure(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"timeouts\": {\"identify_ms\": 2500}}");
        harness_writer(h, "root-quiesce", NULL);
        pid_t w = late_writer(h);
        double first = gather_s(h), second = gather_s(h);
        CHECK(first >= 2.25); /* its late answer, once */
        CHECK(second < 2.0);  /* a second, not its 2.3 s */
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        w = late_writer(h); /* connected anew: still bob's */
        double third = gather_s(h);
        CHECK(third < 2.0);
        fprintf(stderr, "gathers took %.2f s, %.2f s and %.2f s\n", first, second, third);
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
}

/* trust-identify-late-answer: alice's writer answers every Identify with metadata just before the
 * deadline (2.3 s of 2.5). That holds up root's first gather, not the later ones (a late answer
 * counts as a miss, metadata or not); alice's own gathers wait for it. */
static bool late_ok_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        usleep(2300 * 1000);
        return true;
}

static void alice_waits_for_own(Harness *h, void *userdata) {
        double took = gather_s(h);
        CHECK(took >= 2.25);
        fprintf(stderr, "alice's gather took %.2f s\n", took);
}

static void test_identify_late_answer(void) {
        pid_t w;
        Harness *h = slow_then_cut(ALICE, "alice-late", late_ok_identify, 2.25, &w); /* its late answer, once */
        run_as(ALICE, alice_waits_for_own, h, NULL, "alice's gather");
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
}

/* trust-status-direct-stall: in a restore with no metadata, GatherWriterStatus asks every writer
 * running whether it answers. Bob's, stopped (SIGSTOP), holds root's gather up for a second,
 * not for the whole status deadline (5 s here), and is listed as not answering. */
static void test_status_direct_stall(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"timeouts\": {\"status_ms\": 5000}}");
        harness_writer(h, "root-quiesce", NULL);
        pid_t w = writer_as(h, BOB, "bob-stopped", NULL);
        CHECK(kill(w, SIGSTOP) == 0);
        vss_backup *b = NULL;
        struct timespec t0, t1;
        CHECK_HR(vss_backup_new(harness_socket(h), &b), 0);
        CHECK_HR(vss_backup_initialize_for_restore(b, NULL), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double took = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        CHECK(took < 4.0); /* a second, not the 5 s deadline: what the rule guarantees, with room */
        fprintf(stderr, "the gather took %.2f s\n", took);
        vss_backup_release(b);
        kill(w, SIGCONT);
        stop_writer(w);
}

/* The hooks' view of the requester's settings and the set's volumes, one line per writer and
 * event ("NAME EVENT PARTIAL BOOTABLE CONTEXT VOLUMES"), from a hook beside the harness's. */
static const char env_hook[] = "#!/bin/sh\n"
                               "echo \"$VSS_WRITER_NAME $1 $VSS_PARTIAL_FILE_SUPPORT $VSS_BOOTABLE_SYSTEM_STATE "
                               "$VSS_CONTEXT $VSS_VOLUMES\" >> \"$HARNESS_DIR/envlog\"\n"
                               "echo \"$VSS_WRITER_NAME $1 $VSS_SESSION_ID\" >> \"$HARNESS_DIR/sessionlog\"\n";

/* trust-volumes-own-only: a writer's events tell it the requester's settings and the set's
 * volumes (GetCurrentVolumeArray), but a user's writer only the volumes its components meet
 * where the set is its user's: bob's writer taking part for his directory does not learn the
 * path of root's volume beside it; root's writer learns both. */
static void test_volumes_own_only(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char data[PATH_MAX], bobs[PATH_MAX], comp[PATH_MAX + 8];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        CHECK(realpath(harness_make_data(h, "bobs"), bobs) != NULL);
        CHECK(harness_sh(h, NULL, "chown -R %u '%s' && : > '%s/envlog' && chmod 666 '%s/envlog' && : > '%s/sessionlog' && "
                                  "chmod 666 '%s/sessionlog'", (unsigned) uid_of(BOB), bobs, harness_dir(h), harness_dir(h),
                         harness_dir(h), harness_dir(h)) == 0);
        harness_hook(h, "20-env", env_hook);
        pid_t b = bobs_writer(h, "bob-own", bobs, false);
        snprintf(comp, sizeof(comp), "app=%s", data);
        harness_writer(h, "rootw", (const char *const[]) { "--component", comp, NULL });

        vss_backup *bk = NULL;
        CHECK_HR(vss_backup_new(harness_socket(h), &bk), 0);
        CHECK_HR(vss_backup_initialize_for_backup(bk), 0);
        CHECK_HR(vss_backup_set_backup_state(bk, false, true, VSS_BT_FULL, true), 0);
        CHECK_HR(vss_backup_gather_writer_metadata_sync(bk), 0);
        CHECK_HR(vss_backup_start_snapshot_set(bk, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(bk, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(bk, bobs, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(bk), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(bk), 0);
        CHECK_HR(vss_backup_backup_complete_sync(bk), 0);
        vss_backup_release(bk);
        stop_writer(b);

        char want[4 * PATH_MAX], *o = NULL;
        CHECK(harness_sh(h, &o, "cat '%s/envlog'", harness_dir(h)) == 0);
        /* Settings from PrepareForBackup on; volumes from PrepareForSnapshot on. */
        CHECK(o && strstr(o, "bob-own prepare-backup 1 1 0x0 \n"));
        const char *const events[] = { "prepare-snapshot", "freeze", "backup-shutdown" };
        for (size_t i = 0; i < ELEMENTSOF(events); i++) {
                snprintf(want, sizeof(want), "bob-own %s 1 1 0x0 %s\n", events[i], bobs);
                CHECK(o && strstr(o, want));
        }
        snprintf(want, sizeof(want), "rootw freeze 1 1 0x0 %s %s\n", data, bobs);
        CHECK(o && strstr(o, want));
        if (o && !strstr(o, want))
                fprintf(stderr, "envlog:\n%s", o);
        /* The session's id (CVssWriterEx2::GetSessionId), the same in each event of the backup. */
        CHECK(harness_sh(h, NULL, "grep -qE '^rootw freeze [0-9a-f-]{36}$' '%s/sessionlog' && "
                                  "[ $(grep -E '^rootw (prepare-backup|freeze|backup-complete) ' '%s/sessionlog' | "
                                  "cut -d' ' -f3 | sort -u | wc -l) = 1 ]", harness_dir(h), harness_dir(h)) == 0);
        /* Nowhere does bob's writer see root's path. */
        for (char *l = o; l && *l;) {
                char *nl = strchr(l, '\n');
                if (nl)
                        *nl = 0;
                if (strncmp(l, "bob-own ", 8) == 0)
                        CHECK(!strstr(l, data));
                l = nl ? nl + 1 : NULL;
        }
        free(o);
}

/* trust-volume-user-symlink: a volume's path is resolved, by vssd and by vssbackup alike,
 * following only symlinks nobody but root could have made: one of bob's (to a directory of
 * root's) is refused, naming it, with nothing shadowed or frozen, so that bob swapping his
 * component's directory for such a symlink between vssbackup's check and vssd's look cannot send
 * root's set to a filesystem that is not his; root's own symlink is followed. */
static void test_volume_user_symlink(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char data[PATH_MAX], bobs[PATH_MAX], link[PATH_MAX + 8], rootlink[PATH_MAX + 16], want[128];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        CHECK(realpath(harness_make_data(h, "bobs"), bobs) != NULL);
        snprintf(link, sizeof(link), "%s/link", bobs);
        snprintf(rootlink, sizeof(rootlink), "%s/rootlink", harness_dir(h));
        CHECK(harness_sh(h, NULL, "chown -R %u '%s' && ln -s '%s' '%s' && chown -h %u '%s' && ln -s '%s' '%s'",
                         (unsigned) uid_of(BOB), bobs, data, link, (unsigned) uid_of(BOB), link, data, rootlink) == 0);
        snprintf(want, sizeof(want), "is a symlink that uid %u may have made or replaced", (unsigned) uid_of(BOB));
        char *o = NULL;
        /* vssd: AddToSnapshotSet and ExplainVolume. */
        CHECK(harness_sh(h, &o, "vssadmin create shadow --for '%s' 2>&1", link) != 0);
        CHECK(o && strstr(o, want) && strstr(o, "E_INVALIDARG"));
        free(o);
        CHECK(harness_sh(h, &o, "vssadmin list providers --for '%s' 2>&1", link) != 0);
        CHECK(o && strstr(o, want));
        free(o);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 0);
        /* vssbackup (and no retry of it). */
        CHECK(harness_sh(h, &o, "vssbackup backup --to '%s/bk' --for '%s' 2>&1", harness_dir(h), link) != 0);
        CHECK(o && strstr(o, want) && !strstr(o, "retrying"));
        if (!o || !strstr(o, want))
                fprintf(stderr, "vssbackup said: %s\n", strempty(o));
        free(o);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 0);
        /* Root's own symlink is followed. */
        CHECK(harness_sh(h, &o, "vssadmin create shadow --for '%s' 2>&1", rootlink) == 0);
        free(o);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 1);
}

/* trust-instance-id-squatted: instance ids can be read (a unit's --instance-id); bob's writer
 * subscribed with root's writer's one first is dropped when root's subscribes (logged), so root's
 * application is still quiesced; bob cannot take it back, and root's own duplicate is refused. */
static void test_instance_id_squatted(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        const char *iid = "11111111-2222-3333-4444-555555555556";
        pid_t b = writer_as_args(h, BOB, "bob-squat", NULL, (const char *const[]) { "--instance-id", iid, NULL });
        char *o = NULL;
        CHECK(harness_sh(h, &o, "vssadmin list writers --json") == 0 && o && strstr(o, "bob-squat"));
        free(o);
        pid_t r = harness_writer(h, "rootdb", (const char *const[]) { "--instance-id", iid, NULL });
        CHECK(harness_sh(h, &o, "vssadmin list writers --json") == 0 && o && strstr(o, "rootdb") && !strstr(o, "bob-squat"));
        free(o);
        CHECK(harness_sh(h, &o, "grep -c \"writer 'bob-squat' of uid %u held the instance id %s\" '%s/vssd.log'",
                         (unsigned) uid_of(BOB), iid, harness_dir(h)) == 0);
        free(o);
        /* Root's writer takes part in root's backup. */
        CHECK(harness_sh(h, NULL, "vssadmin create shadow --for '%s' >/dev/null", harness_make_data(h, "data")) == 0);
        char *ev = harness_events(h, "rootdb");
        CHECK(ev && strstr(ev, "freeze thaw"));
        free(ev);
        /* A second root writer with it is refused, as before. */
        CHECK(harness_sh(h, &o, "vss-writer-exec --name rootdb2 --hooks '%s/hooks' --instance-id %s 2>&1",
                         harness_dir(h), iid) != 0);
        CHECK(o && strstr(o, "already subscribed"));
        free(o);
        stop_writer(r);
        stop_writer(b);
}

/* bob's writer of trust-required-not-users: "db" (selectable, his directory), "db/sub" below it
 * and "exe" (required: not selectable), both naming root's private directory. */
static char req_bobs[PATH_MAX], req_roots[PATH_MAX];
static bool req_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        return vss_metadata_add_component(md, "", "db", NULL, true, true) >= 0 &&
               vss_metadata_add_files(md, "", "db", req_bobs, "*", true) >= 0 &&
               vss_metadata_add_component(md, "db", "sub", NULL, false, true) >= 0 &&
               vss_metadata_add_files(md, "db", "sub", req_roots, "*", true) >= 0 &&
               vss_metadata_add_component(md, "", "exe", NULL, false, true) >= 0 &&
               vss_metadata_add_files(md, "", "exe", req_roots, "*", true) >= 0;
}

/* trust-required-not-users: the components that come with one root names (those below it, its
 * writer's required ones) are a user's writer's only where their paths are its user's: bob's
 * writer declaring root's private directory in both is left out of root's backup, with or
 * without --component, and nothing of root's is stored. */
static void test_required_not_users(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        CHECK(realpath(harness_make_data(h, "bobs"), req_bobs) != NULL);
        snprintf(req_roots, sizeof(req_roots), "%s/rootsecret", harness_dir(h));
        CHECK(harness_sh(h, NULL, "chown -R %u '%s' && mkdir -m 700 '%s' && echo root-only > '%s/secret'",
                         (unsigned) uid_of(BOB), req_bobs, req_roots, req_roots) == 0);
        pid_t w = spawn_as(BOB, identify_writer_as_bob, h, &(IdentifyWriter) { "bob-req", req_identify });
        for (int i = 0; i < 2000 && harness_sh(h, NULL, "vssadmin list writers | grep -q \"^Writer name: 'bob-req'\"") != 0; i++)
                usleep(10 * 1000);
        /* Root names bob's writer by its id (trust-component-name-squatted: not by its name). */
        char spec[128], how1[160];
        snprintf(how1, sizeof(how1), "--component %s", id_spec(spec, sizeof(spec), "bob-req", "db"));
        const char *const how[] = { "", how1 };
        for (size_t i = 0; i < ELEMENTSOF(how); i++) {
                char *o = NULL;
                CHECK(harness_sh(h, &o, "vssbackup backup --to '%s/bk%zu' %s 2>&1", harness_dir(h), i, how[i]) == 0);
                CHECK(o && !strstr(o, "backed up too") && strstr(o, "component 'exe' of writer 'bob-req' left out"));
                CHECK(o && strstr(o, "component 'sub' of writer 'bob-req' left out"));
                if (!o || strstr(o, "backed up too"))
                        fprintf(stderr, "vssbackup said (%s): %s\n", how[i], strempty(o));
                free(o);
                CHECK(harness_sh(h, NULL, "! grep -rq root-only '%s/bk%zu'", harness_dir(h), i) == 0);
        }
        kill(w, SIGTERM);
        waitpid(w, NULL, 0);
}

/* trust-component-name-squatted: any user may call a writer what root's is called. bob's writer
 * named like root's, with a component of the same name, is not what root's `--component
 * rootdb:db` selects: it can neither veto root's backup nor, with root's writer down, stand in
 * for it (the backup fails, naming the component, instead of storing bob's files as root's). */
static void test_component_name_squatted(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char data[PATH_MAX], bobs[PATH_MAX], comp[PATH_MAX + 8];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        CHECK(realpath(harness_make_data(h, "bobs"), bobs) != NULL);
        CHECK(harness_sh(h, NULL, "chown -R %u '%s' && echo bobs-own > '%s/bob.txt'", (unsigned) uid_of(BOB), bobs,
                         bobs) == 0);
        snprintf(comp, sizeof(comp), "db=%s", data);
        pid_t r = harness_writer(h, "rootdb", (const char *const[]) { "--component", comp, NULL });
        snprintf(comp, sizeof(comp), "db=%s", bobs);
        pid_t b = writer_as_args(h, BOB, "rootdb", "11111111-2222-3333-4444-555555555555",
                                 (const char *const[]) { "--component", comp, NULL });
        /* Both run the harness's hooks under one name: bob's veto goes by its uid. */
        char veto[256];
        snprintf(veto, sizeof(veto), "#!/bin/sh\n[ \"$1\" = freeze ] && [ \"$(id -u)\" = %u ] && "
                                     "{ echo bob says no >&2; exit 1; }\nexit 0\n", (unsigned) uid_of(BOB));
        harness_hook(h, "20-bob-vetoes", veto);
        char *o = NULL;
        CHECK(harness_sh(h, &o, "vssbackup backup --to '%s/bk' --component rootdb:db 2>&1", harness_dir(h)) == 0);
        if (o && strstr(o, "failed"))
                fprintf(stderr, "vssbackup said: %s\n", o);
        free(o);
        CHECK(harness_sh(h, NULL, "grep -rqs bobs-own '%s/bk'", harness_dir(h)) != 0);
        stop_writer(r);
        CHECK(harness_sh(h, &o, "vssbackup backup --to '%s/bk2' --component rootdb:db 2>&1", harness_dir(h)) != 0);
        CHECK(o && strstr(o, "no writer has the component 'rootdb:db'"));
        free(o);
        CHECK(harness_sh(h, NULL, "grep -rqs bobs-own '%s/bk2'", harness_dir(h)) != 0);
        stop_writer(b);
}

/* trust-exec-default-paths: root's `vssbackup exec` without --for: {} is root's writer's directory
 * even when a user's writer subscribed after it (writers are listed newest first); and a user's
 * component path with a newline ("bobs\n/etc") cannot add a line to root's $VSS_ORIGINAL_PATHS:
 * vssd refuses such metadata, and exec refuses a --for path with a newline. */
static void test_exec_default_paths(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char data[PATH_MAX], bobs[PATH_MAX], nl[PATH_MAX + 16], comp[PATH_MAX + 8];
        CHECK(realpath(harness_make_data(h, "data"), data) != NULL);
        CHECK(realpath(harness_make_data(h, "bobs"), bobs) != NULL);
        snprintf(nl, sizeof(nl), "%s/u\n/etc", bobs);
        CHECK(harness_sh(h, NULL, "echo bobs-own > '%s/a.txt' && mkdir -p '%s' && chown -R %u '%s'", bobs, nl,
                         (unsigned) uid_of(BOB), bobs) == 0);
        snprintf(comp, sizeof(comp), "db=%s", data);
        harness_writer(h, "rootw", (const char *const[]) { "--component", comp, NULL });
        pid_t b = bobs_writer(h, "bob-later", bobs, false);
        pid_t bn = bobs_writer(h, "bob-newline", nl, false);
        char *o = NULL;
        CHECK(harness_sh(h, &o, "vssbackup exec --quiet -- sh -c 'cat \"$1\"/a.txt; printf \"%%s\\n\" \"$VSS_ORIGINAL_PATHS\"' "
                                "sh {} 2>&1") == 0);
        CHECK(o && !strstr(o, "bobs-own") && !strstr(o, "\n/etc\n"));
        if (!o || strstr(o, "bobs-own") || strstr(o, "\n/etc\n"))
                fprintf(stderr, "exec said: %s\n", strempty(o));
        free(o);
        /* Root's own --for with a newline: refused, COMMAND not run. */
        CHECK(harness_sh(h, &o, "vssbackup exec --for '%s' -- touch '%s/ran' 2>&1", nl, harness_dir(h)) != 0);
        CHECK(o && strstr(o, "holds a newline"));
        free(o);
        CHECK(harness_sh(h, NULL, "test ! -e '%s/ran'", harness_dir(h)) == 0);
        stop_writer(b);
        stop_writer(bn);
}

static const TestCase cases[] = {
        { "trust-exec-default-paths", test_exec_default_paths },
        { "trust-component-name-squatted", test_component_name_squatted },
        { "trust-required-not-users", test_required_not_users },
        { "trust-instance-id-squatted", test_instance_id_squatted },
        { "trust-volume-user-symlink", test_volume_user_symlink },
        { "trust-volumes-own-only", test_volumes_own_only },
        { "trust-identify-stall", test_identify_stall },
        { "trust-identify-late-failure", test_identify_late_failure },
        { "trust-identify-late-answer", test_identify_late_answer },
        { "trust-status-direct-stall", test_status_direct_stall },
        { "trust-metadata-budget", test_metadata_budget },
        { "trust-participation-not-involved", test_not_involved },
        { "trust-participation-backup-default", test_backup_default },
        { "trust-participation-own-path-vetoes", test_own_path_vetoes },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
