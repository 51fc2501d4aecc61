/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The provider commit helper (`vssd --commit-helper`), waiting for its job until DoSnapshotSet
 * (issue 14): a spare started while vssd is idle (or, without one, a helper started at
 * StartSnapshotSet) is the set's; a set that ends without a commit leaves its helper neither
 * running nor a zombie and logs no failure for it; one killed before DoSnapshotSet is replaced;
 * a moment after a set ended a new spare waits, libmount loaded. And the delete helper (`vssd --delete-helper`)
 * on its own. */

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/client.h"
#include "tests/harness.h"

#define HELPER_CMDLINE "vssd\0--commit-helper" /* argv[0], argv[1] as vssd spawns it */

static bool is_helper(pid_t pid) {
        char path[64], buf[64] = {};
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        return n >= sizeof(HELPER_CMDLINE) && memcmp(buf, HELPER_CMDLINE, sizeof(HELPER_CMDLINE)) == 0;
}

/* Whether pid maps a file whose name holds lib, within 10 s (a helper loads as it starts). */
static bool wait_maps_have(pid_t pid, const char *lib) {
        char path[64], line[512];
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        for (int i = 0; i < 1000; i++) {
                FILE *f = fopen(path, "re");
                bool found = false;
                while (f && !found && fgets(line, sizeof(line), f))
                        found = strstr(line, lib);
                if (f)
                        fclose(f);
                if (found)
                        return true;
                usleep(10000);
        }
        return false;
}

/* A process's state letter from /proc/PID/stat ('Z' for a zombie); 0 when it is gone. */
static char proc_state(pid_t pid) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return 0;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        const char *p = strrchr(buf, ')'); /* the name may hold spaces */
        return p && p[1] == ' ' ? p[2] : 0;
}

/* vssd's children: how many are commit helpers and how many zombies; the last helper's pid. */
static void vssd_children(Harness *h, int *ret_helpers, int *ret_zombies, pid_t *ret_helper) {
        char dir[64];
        *ret_helpers = *ret_zombies = 0;
        if (ret_helper)
                *ret_helper = -1;
        snprintf(dir, sizeof(dir), "/proc/%d/task", (int) harness_vssd_pid(h));
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char path[128];
                snprintf(path, sizeof(path), "%s/%s/children", dir, de->d_name);
                FILE *f = fopen(path, "re");
                int pid;
                while (f && fscanf(f, "%d", &pid) == 1) {
                        if (proc_state(pid) == 'Z')
                                (*ret_zombies)++;
                        else if (is_helper(pid)) {
                                (*ret_helpers)++;
                                if (ret_helper)
                                        *ret_helper = pid;
                        }
                }
                if (f)
                        fclose(f);
        }
        if (d)
                closedir(d);
}

/* Waits (at most 10 s) for vssd to have started its helper after StartSnapshotSet (it spawns
 * after the reply); its pid, or -1. */
static pid_t wait_helper(Harness *h) {
        for (int i = 0; i < 1000; i++) {
                int helpers, zombies;
                pid_t pid;
                vssd_children(h, &helpers, &zombies, &pid);
                if (helpers > 0)
                        return pid;
                usleep(10000);
        }
        return -1;
}

/* The set's helper is gone (reaped), no zombie is left among vssd's children, and at most one
 * helper waits: the spare for the next set. A helper that said it is done exits by itself a
 * moment later and vssd reaps it: waited for (at most 10 s). */
static void check_helper_gone(Harness *h, pid_t helper) {
        int helpers, zombies;
        for (int i = 0; i < 1000; i++) {
                vssd_children(h, &helpers, &zombies, NULL);
                if (proc_state(helper) == 0 && zombies == 0)
                        break;
                usleep(10000);
        }
        CHECK(proc_state(helper) == 0);
        CHECK(helpers <= 1);
        CHECK(zombies == 0);
}

/* Waits (at most 10 s) for a spare other than `not` to wait; its pid, or -1. */
static pid_t wait_new_spare(Harness *h, pid_t not) {
        for (int i = 0; i < 1000; i++) {
                int helpers, zombies;
                pid_t pid;
                vssd_children(h, &helpers, &zombies, &pid);
                if (helpers == 1 && pid != not && zombies == 0)
                        return pid;
                usleep(10000);
        }
        return -1;
}

/* vssd logged nothing about the helper and no error. */
static void check_log_quiet(Harness *h) {
        char path[512], *out = NULL;
        snprintf(path, sizeof(path), "%s/vssd.log", harness_dir(h));
        CHECK(harness_sh(h, &out, "grep -i -e 'error' -e 'helper' '%s' || true", path) == 0);
        CHECK_STR(out ? out : "", "");
        free(out);
}

static void start_set(Harness *h, vss_backup *b, const char *data, bool prepare) {
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        if (prepare)
                CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
}

/* The set started on b made, completed, and its session released. */
static void finish_set(vss_backup *b) {
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
}

/* A vssd with one writer "w", and a directory "data" to shadow. */
static Harness *new_with_writer(char **ret_data) {
        Harness *h = harness_new(NULL);
        *ret_data = harness_make_data(h, "data");
        harness_writer(h, "w", NULL);
        return h;
}

/* A session with its set started (and prepared), and the helper waiting for it. */
static vss_backup *set_with_helper(Harness *h, const char *data, bool prepare, pid_t *ret_helper) {
        vss_backup *b = harness_session(h);
        start_set(h, b, data, prepare);
        *ret_helper = wait_helper(h);
        CHECK(*ret_helper > 0);
        return b;
}

static void test_helper_early_full_sequence(void) {
        /* The helper waits from StartSnapshotSet; it is the one ready before Freeze (paused
         * there), the whole sequence goes as before, and once the set is made none is left. */
        char *data;
        Harness *h = new_with_writer(&data);
        pid_t helper;
        vss_backup *b = set_with_helper(h, data, true, &helper);
        vss_async *a = NULL;
        uint32_t point = 0;
        CHECK_HR(vss_backup_do_snapshot_set_paused(b, VSS_PAUSE_BEFORE_FREEZE, &a), 0);
        CHECK_HR(vss_backup_wait_paused(b, 20000, &point, NULL), 0);
        CHECK(point == VSS_PAUSE_BEFORE_FREEZE);
        int helpers, zombies;
        pid_t ready;
        vssd_children(h, &helpers, &zombies, &ready);
        CHECK(helpers == 1 && ready == helper); /* the early one, not one started again */
        CHECK_HR(vss_backup_continue_snapshot_set(b), 0);
        CHECK_HR(a ? vss_async_wait(a, 20000) : -1, 0);
        vss_async_unref(a);
        CHECK(harness_count_shadow_files(h) > 0);
        check_helper_gone(h, helper); /* it was the one that ran: it exits, and is reaped */
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze thaw post-snapshot backup-complete backup-shutdown");
        free(ev);
        check_helper_gone(h, helper);
        CHECK(wait_new_spare(h, helper) > 0); /* the next set's */
        check_log_quiet(h);
}

static void test_helper_gone_after_abort(void) {
        /* AbortBackup after StartSnapshotSet, and after PrepareForBackup: the waiting helper is
         * killed and reaped by the time the call returns, quietly. */
        char *data;
        Harness *h = new_with_writer(&data);
        for (int prepare = 0; prepare < 2; prepare++) {
                vss_backup *b = harness_session(h);
                start_set(h, b, data, prepare);
                pid_t helper = wait_helper(h);
                CHECK(helper > 0);
                CHECK_HR(vss_backup_abort_backup(b), 0);
                check_helper_gone(h, helper);
                CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_BAD_STATE);
                vss_backup_release(b);
                check_helper_gone(h, helper);
                CHECK(wait_new_spare(h, helper) > 0);
        }
        CHECK(harness_count_shadow_files(h) == 0);
        check_log_quiet(h);
}

static void test_helper_gone_after_release(void) {
        /* The requester releases the session, or goes away, with the set started; then vssd
         * stops with one waiting: no helper is left, and vssd exits cleanly. */
        char *data;
        Harness *h = new_with_writer(&data);
        pid_t helper;
        vss_backup *b = set_with_helper(h, data, true, &helper);
        vss_backup_release(b);
        check_helper_gone(h, helper);
        CHECK((helper = wait_new_spare(h, helper)) > 0);

        pid_t requester = fork();
        if (requester == 0) {
                vss_backup *c = harness_session(h);
                CHECK_HR(vss_backup_start_snapshot_set(c, NULL), 0);
                _exit(test_failures ? 1 : 0); /* its connection goes with it, unreleased */
        }
        int st;
        CHECK(waitpid(requester, &st, 0) == requester && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* vssd sees the connection go in its own time: the set's helper (the spare) goes, and
         * a new spare waits. */
        CHECK((helper = wait_new_spare(h, helper)) > 0);

        b = harness_session(h);
        start_set(h, b, data, false);
        CHECK(wait_helper(h) == helper);
        CHECK(harness_stop_vssd(h, &st) != UINT64_MAX);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        CHECK(proc_state(helper) == 0); /* reaped by vssd, not left to anyone */
        vss_backup_release(b);
        check_log_quiet(h);
}

static void test_helper_killed_before_dss(void) {
        /* The waiting helper dies (killed) before DoSnapshotSet: vssd starts a new one then, and
         * the set is made. */
        char *data;
        Harness *h = new_with_writer(&data);
        pid_t helper;
        vss_backup *b = set_with_helper(h, data, true, &helper);
        CHECK(kill(helper, SIGKILL) == 0);
        /* Dead (its socket closed) before DoSnapshotSet, whether vssd reaped it yet or not. */
        for (int i = 0; i < 1000 && proc_state(helper) != 'Z' && proc_state(helper) != 0; i++)
                usleep(10000);
        CHECK(proc_state(helper) == 'Z' || proc_state(helper) == 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK(harness_count_shadow_files(h) > 0);
        CHECK(harness_wait_event(h, "w", "post-snapshot", 20000));
        check_helper_gone(h, helper);
        vss_backup_release(b);
        check_helper_gone(h, helper);
        check_log_quiet(h);
}

/* A vssd with a writer and its spare helper (*ret_spare), and a set started and prepared. */
static vss_backup *set_after_spare(Harness **ret_h, char **ret_data, pid_t *ret_spare) {
        *ret_h = new_with_writer(ret_data);
        *ret_spare = wait_helper(*ret_h);
        CHECK(*ret_spare > 0);
        vss_backup *b = harness_session(*ret_h);
        start_set(*ret_h, b, *ret_data, true);
        return b;
}

static void test_helper_spare(void) {
        /* A spare waits at idle; a set takes it (no helper is started for the set); a moment
         * after the set, another waits. A spare killed at idle costs the next set nothing but a
         * helper of its own, and is replaced after it. */
        char *data;
        Harness *h;
        pid_t spare;
        vss_backup *b = set_after_spare(&h, &data, &spare);
        int helpers, zombies;
        pid_t now;
        vssd_children(h, &helpers, &zombies, &now);
        CHECK(helpers == 1 && now == spare);
        finish_set(b);
        check_helper_gone(h, spare);
        pid_t next = wait_new_spare(h, spare);
        CHECK(next > 0);
        /* It loads libmount (finding the filesystems to hold needs it) before it reports itself
         * loaded, so no set's freeze window waits for that. */
        CHECK(wait_maps_have(next, "libmount.so"));

        CHECK(kill(next, SIGKILL) == 0);
        for (int i = 0; i < 1000 && proc_state(next) != 0; i++) /* vssd reaps it */
                usleep(10000);
        CHECK(proc_state(next) == 0);
        b = harness_session(h);
        start_set(h, b, data, true);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK(harness_count_shadow_files(h) > 0);
        CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        vss_backup_release(b);
        CHECK(wait_new_spare(h, next) > 0);
        check_log_quiet(h);
}

/* No spare starts while a set is being made: the spare due a moment after set A would compete
 * with set B's freeze window, and B has its own helper. B's end starts one. */
static void test_helper_no_spare_during_set(void) {
        char *data;
        Harness *h;
        pid_t spare;
        finish_set(set_after_spare(&h, &data, &spare));
        check_helper_gone(h, spare); /* A's helper, done, may still be exiting */
        /* B begins within the spare's delay (50 ms) unless the machine is slow: then B takes the
         * spare, one helper as well. */
        vss_backup *b = harness_session(h);
        start_set(h, b, data, false);
        /* B's helper (the spare, or its own, started after StartSnapshotSet's reply), then no other. */
        pid_t own = wait_helper(h), now;
        CHECK(own > 0);
        for (int i = 0; i < 30; i++) { /* well past the delay */
                int helpers, zombies;
                vssd_children(h, &helpers, &zombies, &now);
                CHECK(helpers == 1 && now == own);
                usleep(10000);
        }
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        finish_set(b);
        CHECK(wait_new_spare(h, own) > 0);
        check_log_quiet(h);
}

/* With nothing to hold and no exec provider, a helper never looks up a mount during the cut: it
 * is started without --with-mounts, and so does not load libmount; with the default
 * configuration (hold "all") it is started with it (helper-spare checks that it loads it). */
static void test_helper_lean_without_hold(void) {
        char want[] = "vssd\0--commit-helper", path[64], buf[128] = {};
        for (int lean = 1; lean >= 0; lean--) {
                Harness *h = harness_new(lean ? "{\"hold_filesystems\": []}" : NULL);
                pid_t helper = wait_helper(h);
                CHECK(helper > 0);
                snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) helper);
                FILE *f = fopen(path, "re");
                size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
                if (f)
                        fclose(f);
                CHECK(n >= sizeof(want) && memcmp(buf, want, sizeof(want)) == 0);
                CHECK(lean ? n == sizeof(want) : n > sizeof(want) && streq(buf + sizeof(want), "--with-mounts"));
                harness_free(h);
        }
}

/* `vssd --delete-helper` run by hand as vssd runs it (its job on descriptor 3): a job it cannot
 * read (cut short, a field missing) or naming a provider it does not know removes nothing and
 * says why in its exit status (EINVAL, EOPNOTSUPP); a good job has the provider remove the
 * shadow, and the helper exits 0. (The ids start with a letter: printf reads a digit after \0.) */
static void test_delete_helper_job(void) {
        Harness *h = harness_new(NULL);
        const char *d = harness_dir(h);
        char *out = NULL;
        CHECK(harness_sh(h, &out,
                         "bash -c '"
                         "D=%s S=d0c9bb2f-95a4-4d1e-8d71-5f3e8b0a9c21; mkdir -p $D/shadow/sub && echo x >$D/shadow/sub/f; "
                         "run() { printf \"$1\" \"$$\" >$D/job; %s --delete-helper 3<$D/job 2>>$D/helper.err; echo $?; }; "
                         "run \"parent\\0%%s\\0provi\"; "
                         "run \"parent\\0%%s\\0provider\\0file\\0set\\0$S\\0\"; "
                         "run \"parent\\0%%s\\0provider\\0nosuch\\0set\\0$S\\0shadow_id\\0$S\\0shadow_path\\0$D/shadow\\0\"; "
                         "test -e $D/shadow/sub/f && echo kept; "
                         "run \"parent\\0%%s\\0provider\\0file\\0set\\0$S\\0shadow_id\\0$S\\0shadow_path\\0$D/shadow\\0\"; "
                         "test -e $D/shadow || echo gone'",
                         d, VSSD_PATH) == 0);
        CHECK_STR(out, "22\n22\n95\nkept\n0\ngone\n");
        free(out);
        CHECK(harness_sh(h, &out, "grep -c \"cannot read its job: Invalid argument\" %s/helper.err", d) == 0);
        CHECK_STR(out, "2\n");
        free(out);
}

static const TestCase cases[] = {
        { "helper-early-full-sequence", test_helper_early_full_sequence },
        { "helper-gone-after-abort", test_helper_gone_after_abort },
        { "helper-gone-after-release", test_helper_gone_after_release },
        { "helper-killed-before-dss", test_helper_killed_before_dss },
        { "helper-spare", test_helper_spare },
        { "helper-no-spare-during-set", test_helper_no_spare_during_set },
        { "helper-lean-without-hold", test_helper_lean_without_hold },
        { "delete-helper-job", test_delete_helper_job },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
