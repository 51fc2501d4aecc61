/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nothing slow runs in vssd's event loop, and a crash in the middle of slow work leaves nothing
 * wrong (issue 10, items 7, 11, 12 and 13). An exec provider's commands are held on FIFOs the
 * test opens when it is ready, so every "meanwhile" is deterministic; clients run as real
 * unprivileged users.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/users.h"

/* The exec provider "slow": its shadows are directories in the harness dir holding part1 and
 * part2. Each command holds on NAME-fifo while the file NAME-hold exists (touching NAME-held
 * first); delete removes part1 before it holds, so the data is partly gone meanwhile, and
 * logs every location it is given to deleted-paths. */
static const char slow_create[] =
        "#!/bin/sh\n"
        "d=\"$HARNESS_DIR\"\n"
        "loc=\"$d/shadow-$VSS_SHADOW_ID\"\n"
        "mkdir -p \"$loc\" && touch \"$loc/part1\" \"$loc/part2\"\n"
        "printf '%s\\n' \"$loc\" > \"$d/created-location\"\n"
        "echo \"$loc\"\n"
        "if [ -e \"$d/create-hold\" ]; then touch \"$d/create-held\"; read x < \"$d/create-fifo\"; fi\n";
static const char slow_delete[] =
        "#!/bin/sh\n"
        "d=\"$HARNESS_DIR\"\n"
        "printf '%s\\n' \"$VSS_SHADOW_PATH\" >> \"$d/deleted-paths\"\n"
        "rm -f \"$VSS_SHADOW_PATH/part1\"\n"
        "if [ -e \"$d/delete-hold\" ]; then touch \"$d/delete-held\"; read x < \"$d/delete-fifo\"; fi\n"
        "rm -rf \"$VSS_SHADOW_PATH\"\n";
static const char slow_expose[] =
        "#!/bin/sh\n"
        "d=\"$HARNESS_DIR\"\n"
        "if [ -e \"$d/expose-hold\" ]; then touch \"$d/expose-held\"; read x < \"$d/expose-fifo\"; fi\n"
        "mount --bind -o ro \"$VSS_SHADOW_PATH\" \"$VSS_EXPOSE_AT\"\n";

static void write_file(Harness *h, const char *name, const char *text) {
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", harness_dir(h), name);
        FILE *f = fopen(path, "we");
        CHECK(f && fputs(text, f) >= 0);
        if (f)
                fclose(f);
}

static Harness *slow_harness(char **ret_mnt) {
        /* exec: no shell in between, so a killed command's group is all of it. */
        Harness *h = harness_for_users(CONFIG_BASE ", \"hold_window_ms\": 30000, \"providers\": [{\"type\": \"exec\", "
                                       "\"name\": \"slow\", \"create\": \"exec sh $HARNESS_DIR/slow-create\", "
                                       "\"delete\": \"exec sh $HARNESS_DIR/slow-delete\", "
                                       "\"expose\": \"exec sh $HARNESS_DIR/slow-expose\"}]}");
        write_file(h, "slow-create", slow_create);
        write_file(h, "slow-delete", slow_delete);
        write_file(h, "slow-expose", slow_expose);
        CHECK(harness_sh(h, NULL, "cd %s && mkfifo create-fifo delete-fifo expose-fifo", harness_dir(h)) == 0);
        *ret_mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        writer_as(h, ALICE, "w", NULL);
        return h;
}

/* Waits (bounded) for a file the commands touch. */
static bool wait_file(Harness *h, const char *name) {
        return harness_sh(h, NULL, "for i in $(seq 200); do [ -e %s/%s ] && exit 0; sleep 0.05; done; exit 1",
                          harness_dir(h), name) == 0;
}

/* Lets a held command go on. */
static void release(Harness *h, const char *what) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "rm -f %s/%s-hold; timeout 10 sh -c 'echo go > %s/%s-fifo'", harness_dir(h), what,
                 harness_dir(h), what);
        CHECK(harness_sh(h, NULL, "%s", cmd) == 0);
}

/* Runs a shell command in the background; returns its pid (its exit status is the command's). */
static pid_t background(Harness *h, const char *cmd) {
        pid_t pid = fork();
        if (pid == 0)
                _exit(harness_sh(h, NULL, "%s", cmd));
        CHECK(pid > 0);
        return pid;
}

static int wait_status(pid_t pid) {
        int st = 0;
        if (pid <= 0 || waitpid(pid, &st, 0) != pid)
                return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A new shadow of mnt by the slow provider; its id into id. */
static void create_shadow(Harness *h, const char *mnt, char *id, size_t size) {
        int st = -1;
        json_object *o = harness_json(h, &st, "vssadmin create shadow --for %s --provider slow --json", mnt);
        CHECK(st == 0);
        json_object *a = o ? json_object_object_get(o, "shadows") : NULL;
        json_object *s = a && json_object_array_length(a) == 1 ? json_object_array_get_idx(a, 0) : NULL;
        snprintf(id, size, "%s", s ? json_str(s, "shadow_id") : "");
        CHECK(id[0] != 0);
        json_object_put(o);
}

/* What a user of the backup group sees meanwhile: vssd answers within seconds, and lists no
 * shadow whose data is partly gone. userdata: the number of shadows to see listed. */
static void answered_meanwhile(Harness *h, void *userdata) {
        int want = (int) (intptr_t) userdata;
        sd_bus *bus = connect_or_die(h);
        CHECK(sd_bus_set_method_call_timeout(bus, 10 * 1000000ULL) >= 0);
        int n = count_listed(bus, "ListWriters", WRITER_SIG);
        CHECK(n >= 0);
        if (n >= 0) /* not a second wait when vssd did not answer */
                CHECK(count_listed(bus, "ListShadows", SHADOW_SIG) == want);
        sd_bus_flush_close_unref(bus);
}

static void vssadmin_list_writers_as_alice(Harness *h) {
        char *out = NULL;
        CHECK(harness_sh(h, &out, "runuser -u " ALICE " -- env VSS_SOCKET=%s timeout 10 %s/vssadmin list writers 2>&1",
                         harness_socket(h), VSSADMIN_DIR) == 0);
        CHECK(out && strstr(out, "'w'"));
        free(out);
}

/* Item 7: a delete command and an expose command both held; vssd answers everyone meanwhile. */
static void test_slow_answers_meanwhile(void) {
        char *mnt, a[64], b[64], at[600], *out = NULL;
        Harness *h = slow_harness(&mnt);
        create_shadow(h, mnt, a, sizeof(a));
        create_shadow(h, mnt, b, sizeof(b));

        CHECK(harness_sh(h, NULL, "touch %s/delete-hold %s/expose-hold", harness_dir(h), harness_dir(h)) == 0);
        char cmd[1400];
        snprintf(cmd, sizeof(cmd), "vssadmin delete shadows --shadow %s", a);
        pid_t del = background(h, cmd);
        CHECK(wait_file(h, "delete-held"));
        vssadmin_list_writers_as_alice(h);
        run_as(ALICE, answered_meanwhile, h, (void *) (intptr_t) 1, "alice while a delete command is held");

        snprintf(at, sizeof(at), "%s/at", harness_dir(h));
        CHECK(mkdir(at, 0755) == 0);
        snprintf(cmd, sizeof(cmd), "vssadmin expose --shadow %s --at %s", b, at);
        pid_t exp = background(h, cmd);
        CHECK(wait_file(h, "expose-held"));
        vssadmin_list_writers_as_alice(h);
        run_as(ALICE, answered_meanwhile, h, (void *) (intptr_t) 1, "alice while an expose command is held");

        /* Both finish once let go, with their own answers. */
        release(h, "delete");
        release(h, "expose");
        CHECK(wait_status(exp) == 0);
        CHECK(harness_sh(h, NULL, "findmnt -rn --mountpoint %s >/dev/null", at) == 0);
        CHECK(wait_status(del) == 0);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && !strstr(out, a) && strstr(out, b));
        free(out);
        CHECK(harness_sh(h, NULL, "test ! -e %s/shadow-%s", harness_dir(h), a) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at %s >/dev/null", at) == 0);
        CHECK(harness_sh(h, NULL, "findmnt -rn --mountpoint %s >/dev/null", at) != 0);
}

/* Item 11: vssd killed while a delete command is held, the data partly gone. The shadow is never
 * listed as intact again, and the restarted vssd finishes the delete. */
static void test_slow_delete_crash(void) {
        char *mnt, id[64], *out = NULL;
        Harness *h = slow_harness(&mnt);
        create_shadow(h, mnt, id, sizeof(id));
        CHECK(harness_sh(h, NULL, "touch %s/delete-hold", harness_dir(h)) == 0);
        pid_t del = background(h, "vssadmin delete shadows --all >/dev/null 2>&1");
        CHECK(wait_file(h, "delete-held"));
        CHECK(harness_sh(h, NULL, "test ! -e %s/shadow-%s/part1", harness_dir(h), id) == 0);
        run_as(ALICE, answered_meanwhile, h, (void *) (intptr_t) 0, "alice while the delete is held");

        harness_kill_vssd(h);
        wait_status(del);
        CHECK(harness_sh(h, NULL, "rm -f %s/delete-hold", harness_dir(h)) == 0);
        harness_restart_vssd(h);
        run_as(ALICE, answered_meanwhile, h, (void *) (intptr_t) 0, "alice after the restart");
        /* The restarted vssd runs the delete again, to its end. */
        CHECK(harness_sh(h, NULL, "for i in $(seq 200); do [ -e %s/shadow-%s ] || exit 0; sleep 0.05; done; exit 1",
                         harness_dir(h), id) == 0);
        CHECK(harness_sh(h, &out, "grep -c shadow-%s %s/deleted-paths", id, harness_dir(h)) == 0);
        CHECK(out && atoi(out) == 2);
        free(out);
        /* And forgets it. */
        CHECK(harness_sh(h, NULL,
                         "for i in $(seq 200); do [ \"$(sqlite3 -readonly %s/registry.db 'SELECT count(*) FROM shadows')\" = 0 ] "
                         "&& exit 0; sleep 0.05; done; exit 1",
                         harness_state_dir(h)) == 0);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 0);

        /* Stopped by SIGTERM while a delete is held: vssd exits cleanly at once, the command goes
         * with it, and the next start finishes the delete. */
        create_shadow(h, mnt, id, sizeof(id));
        CHECK(harness_sh(h, NULL, "rm -f %s/delete-held && touch %s/delete-hold", harness_dir(h), harness_dir(h)) == 0);
        del = background(h, "vssadmin delete shadows --all >/dev/null 2>&1");
        CHECK(wait_file(h, "delete-held"));
        pid_t vssd = harness_vssd_pid(h);
        int st = -1;
        CHECK(kill(vssd, SIGTERM) == 0 && waitpid(vssd, &st, 0) == vssd && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        wait_status(del);
        /* Nobody reads the FIFO any more: the held command is gone. */
        char fifo[600];
        snprintf(fifo, sizeof(fifo), "%s/delete-fifo", harness_dir(h));
        int fd = -1;
        for (int i = 0; i < 200 && (fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0; i++) {
                close(fd);
                usleep(50000);
        }
        CHECK(fd < 0 && errno == ENXIO);
        CHECK(harness_sh(h, NULL, "rm -f %s/delete-hold", harness_dir(h)) == 0);
        harness_restart_vssd(h); /* the old one is reaped already: only starts a new one */
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 0);
        CHECK(harness_sh(h, NULL, "for i in $(seq 200); do [ -e %s/shadow-%s ] || exit 0; sleep 0.05; done; exit 1",
                         harness_dir(h), id) == 0);
}

/* Item 12: vssd killed while the create command, having printed its location, still runs. The
 * location is recorded already; the restarted vssd hands exactly it to the delete command. */
static void test_slow_location_recorded(void) {
        char *mnt, *loc = NULL, *out = NULL;
        Harness *h = slow_harness(&mnt);
        CHECK(harness_sh(h, NULL, "touch %s/create-hold", harness_dir(h)) == 0);
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "vssadmin create shadow --for %s --provider slow >/dev/null 2>&1", mnt);
        pid_t create = background(h, cmd);
        CHECK(wait_file(h, "create-held"));
        CHECK(harness_sh(h, &loc, "cat %s/created-location", harness_dir(h)) == 0);
        CHECK(loc && strchr(loc, '\n'));
        if (loc && strchr(loc, '\n'))
                *strchr(loc, '\n') = 0;
        /* Recorded in the registry while the command still runs. */
        CHECK(harness_sh(h, NULL,
                         "for i in $(seq 200); do [ \"$(sqlite3 -readonly %s/registry.db 'SELECT shadow_path FROM shadows')\" = '%s' ] "
                         "&& exit 0; sleep 0.05; done; exit 1",
                         harness_state_dir(h), loc ? loc : "") == 0);
        harness_kill_vssd(h);
        wait_status(create);
        CHECK(harness_sh(h, NULL, "rm -f %s/create-hold", harness_dir(h)) == 0);
        harness_restart_vssd(h);
        /* Recovery deletes the unfinished set's shadow by the location the command printed. */
        CHECK(harness_sh(h, NULL, "for i in $(seq 200); do [ -e %s ] || exit 0; sleep 0.05; done; exit 1", loc ? loc : "/")
              == 0);
        CHECK(harness_sh(h, &out, "cat %s/deleted-paths", harness_dir(h)) == 0);
        char want[700];
        snprintf(want, sizeof(want), "%s\n", loc ? loc : "");
        CHECK_STR(out, want);
        free(out);
        CHECK(count_as_root(h, "ListShadows", SHADOW_SIG) == 0);
        free(loc);
}

/* Item 13: the file provider's budget counts blocks allocated. A user's 1 TiB sparse file takes
 * almost nothing and does not block a copy; real data past the budget still does. */
static void test_slow_sparse_budget(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"file_storage_budget_bytes\": 3000000}");
        char *data = harness_make_data(h, "data"), *out = NULL;
        writer_as(h, ALICE, "w", NULL);
        CHECK(harness_sh(h, NULL, "chown " BOB " %s && runuser -u " BOB " -- truncate -s 1T %s/sparse", data, data) == 0);
        int st = -1;
        json_object *o = harness_json(h, &st, "vssadmin create shadow --for %s --json", data);
        CHECK(st == 0);
        json_object *a = o ? json_object_object_get(o, "shadows") : NULL;
        json_object *s = a && json_object_array_length(a) == 1 ? json_object_array_get_idx(a, 0) : NULL;
        const char *path = s ? json_str(s, "shadow_path") : "";
        CHECK(harness_sh(h, &out, "stat -c %%s %s/sparse", path) == 0);
        CHECK(out && strtoull(out, NULL, 10) == 1ULL << 40);
        free(out);
        json_object_put(o);
        /* 4 MB of real data is past the budget. */
        CHECK(harness_sh(h, NULL, "runuser -u " BOB " -- sh -c 'head -c 4000000 /dev/urandom > %s/real'", data) == 0);
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --json", data) == 1);
        CHECK(out && strstr(out, "VSS_E_INSUFFICIENT_STORAGE"));
        free(out);
}

static const TestCase cases[] = {
        { "trust-slow-answers-meanwhile", test_slow_answers_meanwhile },
        { "trust-slow-delete-crash", test_slow_delete_crash },
        { "trust-slow-location-recorded", test_slow_location_recorded },
        { "trust-slow-sparse-budget", test_slow_sparse_budget },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
