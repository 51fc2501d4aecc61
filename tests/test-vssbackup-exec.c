/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssbackup exec --at-original: real restic and borg back up an unchanged tree a second time
 * without reading any file's content, because they see the shadow copy at the same (original)
 * path every run; nothing stays mounted on the host however COMMAND ends; a user who is not root
 * gets it through a user namespace, or a clear refusal before any writer is frozen. */

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/common.h"
#include "tests/harness.h"
#include "tests/users.h"

#define N_FILES 50

/* N_FILES files in a few directories under data, each with its own mtime in the past. */
static void make_tree(Harness *h, const char *data) {
        CHECK(harness_sh(h, NULL,
                         "set -e; for i in $(seq 1 %d); do d=%s/dir$((i %% 5)); mkdir -p $d; "
                         "head -c $((i * 997)) /dev/urandom > $d/file$i; touch -d @$((1700000000 + i)) $d/file$i; done",
                         N_FILES, data) == 0);
}

/* The mounts under the test's own directory, as the host sees them (other tests on the machine
 * mount and unmount elsewhere at the same time). */
static char *our_mounts(Harness *h) {
        char *out = NULL;
        CHECK(harness_sh(h, &out, "findmnt -rn -o TARGET,SOURCE,OPTIONS | grep -F -- '%s' | sort", harness_dir(h)) == 0);
        return out;
}

/* A tool from a Debian package scripts/install-deps.sh installs. */
static bool have(Harness *h, const char *tool) {
        if (harness_sh(h, NULL, "command -v %s >/dev/null", tool) == 0)
                return true;
        fprintf(stderr, "%s is not installed (scripts/install-deps.sh installs it)\n", tool);
        test_failures++;
        return false;
}

/* The summary line of `restic backup --json`. */
static json_object *restic_summary(Harness *h, const char *cmd) {
        char *out = NULL;
        int st = harness_sh(h, &out, "%s | grep '\"message_type\":\"summary\"'", cmd);
        CHECK(st == 0);
        json_object *o = out ? json_tokener_parse(out) : NULL;
        if (!o)
                fprintf(stderr, "no restic summary from `%s` (status %d): %s\n", cmd, st, strempty(out));
        free(out);
        return o;
}

static int64_t json_int(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

#define RESTIC_BACKUP "restic backup --no-cache --ignore-inode --ignore-ctime --json"

static void test_restic(void) {
        Harness *h = harness_new(NULL);
        const char *d = harness_dir(h);
        char data[PATH_MAX], env[3][PATH_MAX + 32];
        if (!have(h, "restic")) {
                harness_free(h);
                return;
        }
        snprintf(data, sizeof(data), "%s/data", harness_loop_fs(h, "mkfs.ext4 -q", "64M"));
        make_tree(h, data);
        snprintf(env[0], sizeof(env[0]), "RESTIC_REPOSITORY=%s/restic-repo", d);
        snprintf(env[1], sizeof(env[1]), "XDG_CACHE_HOME=%s/cache", d);
        snprintf(env[2], sizeof(env[2]), "HOME=%s", d);
        CHECK(putenv(env[0]) == 0 && putenv(env[1]) == 0 && putenv(env[2]) == 0);
        CHECK(setenv("RESTIC_PASSWORD", "test", 1) == 0);
        CHECK(harness_sh(h, NULL, "restic init >/dev/null 2>&1") == 0);

        char cmd[2 * PATH_MAX + 128];
        snprintf(cmd, sizeof(cmd), "vssbackup exec --at-original --for %s -- " RESTIC_BACKUP " %s", data, data);
        json_object *first = restic_summary(h, cmd);
        CHECK(json_int(first, "files_new") == N_FILES);
        json_object *second = restic_summary(h, cmd);
        /* The second run found the first as its parent and read no file's content. */
        CHECK(json_int(second, "files_unmodified") == N_FILES);
        CHECK(json_int(second, "files_new") == 0 && json_int(second, "files_changed") == 0);
        if (json_int(second, "files_unmodified") != N_FILES)
                fprintf(stderr, "second restic run: %s\n", json_object_to_json_string(second));
        json_object_put(first);
        json_object_put(second);

        /* The snapshots name the original path. */
        char *out = NULL;
        CHECK(harness_sh(h, &out, "restic snapshots --no-cache --json") == 0);
        json_object *snaps = out ? json_tokener_parse(out) : NULL;
        CHECK(snaps && json_object_is_type(snaps, json_type_array) && json_object_array_length(snaps) == 2);
        for (size_t i = 0; snaps && i < json_object_array_length(snaps); i++) {
                json_object *paths = NULL;
                CHECK(json_object_object_get_ex(json_object_array_get_idx(snaps, i), "paths", &paths) &&
                      json_object_array_length(paths) == 1);
                CHECK_STR(json_object_get_string(json_object_array_get_idx(paths, 0)), data);
        }
        json_object_put(snaps);
        free(out);

        /* Without --at-original every run has a new path: restic finds no parent, reads it all. */
        snprintf(cmd, sizeof(cmd), "vssbackup exec --for %s -- " RESTIC_BACKUP " {}", data);
        json_object *plain = restic_summary(h, cmd);
        CHECK(json_int(plain, "files_unmodified") == 0 && json_int(plain, "files_new") == N_FILES);
        json_object_put(plain);
        harness_free(h);
}

/* Counts borg's --list lines by status in file list; the newest file's status in newest. */
static void borg_list(Harness *h, const char *list, const char *newest_path, int *n_u, int *n_other, char *newest) {
        char *out = NULL;
        *n_u = *n_other = 0;
        *newest = 0;
        CHECK(harness_sh(h, &out, "cat %s", list) == 0);
        for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
                if (strlen(line) < 3 || line[1] != ' ')
                        continue;
                if (streq(line + 2, newest_path))
                        *newest = line[0];
                else if (line[0] == 'U')
                        (*n_u)++;
                else
                        (*n_other)++;
        }
        free(out);
}

static void test_borg(void) {
        Harness *h = harness_new(NULL);
        const char *d = harness_dir(h);
        char data[PATH_MAX], newest[PATH_MAX + 16], env[2][PATH_MAX + 32];
        if (!have(h, "borg")) {
                harness_free(h);
                return;
        }
        snprintf(data, sizeof(data), "%s/data", harness_loop_fs(h, "mkfs.ext4 -q", "64M"));
        make_tree(h, data);
        /* Borg never keeps in its files cache the file whose mtime is the newest of a run (it could
         * change again within the mtime's granularity: borg's FAQ, "'A' status for unchanged
         * file"): that one is a file of its own here, not one of the N_FILES. */
        snprintf(newest, sizeof(newest), "%s/newest", data);
        CHECK(harness_sh(h, NULL, "echo new > %s", newest) == 0);
        snprintf(env[0], sizeof(env[0]), "BORG_REPO=%s/borg-repo", d);
        snprintf(env[1], sizeof(env[1]), "BORG_BASE_DIR=%s/borg-base", d);
        CHECK(putenv(env[0]) == 0 && putenv(env[1]) == 0);
        CHECK(harness_sh(h, NULL, "borg init --encryption=none >/dev/null 2>&1") == 0);

        int n_u, n_other;
        char status;
        for (int run = 1; run <= 2; run++) {
                CHECK(harness_sh(h, NULL,
                                 "vssbackup exec --at-original --for %s -- sh -c 'borg create --files-cache=mtime,size "
                                 "--list --filter=AMEU ::run%d {} 2>%s/borg-list%d'",
                                 data, run, d, run) == 0);
                char list[PATH_MAX];
                snprintf(list, sizeof(list), "%s/borg-list%d", d, run);
                borg_list(h, list, newest, &n_u, &n_other, &status);
                if (run == 1)
                        CHECK(n_u == 0 && n_other == N_FILES && status == 'A');
        }
        /* The second run: every file unchanged, content not read. */
        CHECK(n_u == N_FILES && n_other == 0);
        CHECK(status == 'A');
        if (n_u != N_FILES || n_other)
                (void) harness_sh(h, NULL, "cat %s/borg-list2 >&2", d);
        /* The archive holds the original paths. */
        char *out = NULL;
        CHECK(harness_sh(h, &out, "borg list --short ::run2 | grep -c '^%s/dir./file'", data + 1) == 0);
        CHECK(out && atoi(out) == N_FILES);
        free(out);
        harness_free(h);
}

static const char watch_script[] =
        "echo $$ > %s/pid; "
        "if touch {}/x 2>/dev/null; then echo writable; else echo read-only; fi; "
        "test \"$VSS_SHADOW_PATH\" = {} && echo same-path; cat {}/dir1/file1 | wc -c; "
        "while [ ! -e %s/go ]; do sleep 0.05; done; %s";

static void test_nothing_stays(void) {
        Harness *h = harness_new(NULL);
        const char *d = harness_dir(h);
        char data[PATH_MAX], p[PATH_MAX + 16];
        snprintf(data, sizeof(data), "%s/data", harness_loop_fs(h, "mkfs.ext4 -q", "64M"));
        make_tree(h, data);
        char *before = our_mounts(h);

        /* Runs and ends: exits 0, fails (3), is killed (SIGKILL: 137). */
        const struct { const char *end; int status; bool kill; } how[] = {
                { "exit 0", 0, false }, { "exit 3", 3, false }, { "exit 0", 128 + SIGKILL, true } };
        for (size_t i = 0; i < ELEMENTSOF(how); i++) {
                harness_sh(h, NULL, "rm -f %s/pid %s/go %s/out", d, d, d);
                pid_t pid = fork();
                if (pid == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        char script[4 * PATH_MAX];
                        snprintf(script, sizeof(script), watch_script, d, d, how[i].end);
                        _exit(harness_sh(h, NULL, "vssbackup exec --at-original --for %s -- sh -c '%s' > %s/out 2>&1",
                                         data, script, d));
                }
                char *pid_text = NULL;
                snprintf(p, sizeof(p), "%s/pid", d);
                for (int t = 0; t < 600 && access(p, F_OK) < 0; t++)
                        usleep(50000);
                CHECK(harness_sh(h, &pid_text, "sleep 0.2; cat %s/pid", d) == 0);
                pid_t cmd = pid_text ? atoi(pid_text) : 0;
                free(pid_text);
                /* While it runs: the shadow is mounted where COMMAND looks, and nowhere the host sees. */
                char *inside = NULL, *during = our_mounts(h);
                CHECK(cmd > 0 && harness_sh(h, &inside, "grep -c ' %s ' /proc/%d/mountinfo", data, (int) cmd) == 0);
                CHECK(inside && atoi(inside) == 1);
                CHECK_STR(during, before);
                free(inside);
                free(during);
                if (how[i].kill && cmd > 0) /* never 0: that would be our own process group */
                        kill(cmd, SIGKILL); /* while it waits for go */
                else
                        harness_sh(h, NULL, "touch %s/go", d);
                int st = -1;
                waitpid(pid, &st, 0);
                CHECK(WIFEXITED(st) && WEXITSTATUS(st) == how[i].status);
                char *out = NULL;
                CHECK(harness_sh(h, &out, "cat %s/out", d) == 0);
                CHECK(out && strstr(out, "read-only\nsame-path\n997\n"));
                if (!out || !strstr(out, "read-only\nsame-path\n997\n"))
                        fprintf(stderr, "vssbackup exec said: %s\n", strempty(out));
                free(out);
                char *after = our_mounts(h);
                CHECK_STR(after, before);
                free(after);
        }
        free(before);
        CHECK(harness_count_shadow_files(h) == 0);
        harness_free(h);
}

/* As a user in the backup group: her own tree, through a user namespace. */
static void user_runs(Harness *h, void *userdata) {
        const char *data = userdata;
        char *out = NULL;
        CHECK(harness_sh(h, &out,
                         "vssbackup exec --at-original --provider copier --for %s -- sh -c 'id -u; stat -c %%u {}/dir1/file1; "
                         "if touch {}/x 2>/dev/null; then echo writable; else echo read-only; fi; "
                         "findmnt -rn -o TARGET {} | wc -l'",
                         data) == 0);
        char want[64];
        snprintf(want, sizeof(want), "%u\n%u\nread-only\n1\n", (unsigned) getuid(), (unsigned) getuid());
        CHECK_STR(out, want);
        free(out);
}

/* The same where user namespaces are refused, as a container's seccomp policy does (unshare()
 * fails with EPERM): a clear error naming the cause and the fix, status 1, before any writer was
 * frozen. */
static void user_refused(Harness *h, void *userdata) {
        const char *data = userdata;
        char *out = NULL;
        struct sock_filter filter[] = {
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { .len = ELEMENTSOF(filter), .filter = filter };
        CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
        int st = harness_sh(h, &out, "vssbackup exec --at-original --provider copier --for %s -- echo ran 2>&1", data);
        CHECK(st == 1);
        CHECK(out && strstr(out, "--at-original needs a mount namespace of its own") &&
              strstr(out, "takes a user namespace, which failed (unshare: Operation not permitted)") &&
              strstr(out, "Fix: allow unprivileged user namespaces") && strstr(out, "leave out --at-original") &&
              !strstr(out, "ran\n"));
        if (!out || !strstr(out, "Fix: allow"))
                fprintf(stderr, "vssbackup exec said: %s\n", strempty(out));
        free(out);
}

/* The file provider keeps shadow copies in root's state directory, which only root can reach: an
 * exec provider that keeps them where the user can. */
static const char copy_create[] =
        "#!/bin/sh\n"
        "set -e\n"
        "s=\"$HARNESS_DIR/shadow-$VSS_SHADOW_ID\"\n"
        "cp -a \"$VSS_VOLUME\" \"$s\"\n"
        "echo \"$s\"\n";

static void test_user(void) {
        Harness *h = harness_for_users(CONFIG_BASE ", \"providers\": [{\"type\": \"exec\", \"name\": \"copier\", "
                                       "\"create\": \"sh $HARNESS_DIR/copy-create\", "
                                       "\"delete\": \"rm -rf \\\"$VSS_SHADOW_PATH\\\"\"}]}");
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/copy-create", harness_dir(h));
        FILE *f = fopen(path, "we");
        CHECK(f && fputs(copy_create, f) >= 0 && fclose(f) == 0);
        char data[PATH_MAX];
        const char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        snprintf(data, sizeof(data), "%s/data", mnt);
        make_tree(h, data);
        CHECK(harness_sh(h, NULL, "chmod 0755 %s && chown -R %s: %s", mnt, ALICE, data) == 0);
        char *before = our_mounts(h);
        harness_writer(h, "w", NULL);
        run_as(ALICE, user_runs, h, data, "alice: exec --at-original");
        char *ev = harness_events(h, "w");
        CHECK(ev && strstr(ev, "freeze"));
        free(ev);
        harness_clear_log(h);
        run_as(ALICE, user_refused, h, data, "alice: exec --at-original, user namespaces refused");
        ev = harness_events(h, "w");
        CHECK(ev && !strstr(ev, "freeze"));
        free(ev);
        char *after = our_mounts(h);
        CHECK_STR(after, before);
        free(before);
        free(after);
        harness_free(h);
}

static const TestCase cases[] = {
        { "vssbackup-exec-restic", test_restic },
        { "vssbackup-exec-borg", test_borg },
        { "vssbackup-exec-nothing-stays", test_nothing_stays },
        { "vssbackup-exec-user", test_user },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
