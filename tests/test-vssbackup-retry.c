/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssbackup's attempts and providers: a retryable writer failure is retried from a new session
 * (--retries, reported attempt by attempt), other failures are not; --provider has a configured
 * exec provider cut the shadow copies of backup and exec, and an unknown one fails before any
 * writer is frozen. */

#include <json-c/json.h>
#include <limits.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "tests/harness.h"

/* Counts Freeze events in freeze-count; fails one Freeze with exit 75 (VSS_E_WRITERERROR_RETRYABLE)
 * while fail-once exists, removing it. */
static const char fail_once_hook[] =
        "#!/bin/sh\n"
        "[ \"$1\" = freeze ] || exit 0\n"
        "echo x >> \"$HARNESS_DIR/freeze-count\"\n"
        "[ -e \"$HARNESS_DIR/fail-once\" ] || exit 0\n"
        "rm -f \"$HARNESS_DIR/fail-once\"\n"
        "echo 'not now, try again' >&2\n"
        "exit 75\n";

static void arm(Harness *h) {
        CHECK(harness_sh(h, NULL, "rm -f %s/freeze-count && touch %s/fail-once", harness_dir(h), harness_dir(h)) == 0);
}

static int freezes(Harness *h) {
        char *out = NULL;
        int n = -1;
        if (harness_sh(h, &out, "cat %s/freeze-count 2>/dev/null | wc -l", harness_dir(h)) == 0 && out)
                n = atoi(out);
        free(out);
        return n;
}

static json_object *attempt(json_object *out, size_t i) {
        json_object *a = NULL;
        if (!out || !json_object_object_get_ex(out, "attempts", &a) || i >= json_object_array_length(a))
                return NULL;
        return json_object_array_get_idx(a, i);
}

static size_t n_attempts(json_object *out) {
        json_object *a = NULL;
        return out && json_object_object_get_ex(out, "attempts", &a) ? json_object_array_length(a) : 0;
}

static Harness *retry_harness(char **ret_data) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data");
        static char comp[PATH_MAX + 16];
        snprintf(comp, sizeof(comp), "files=%s", data);
        harness_hook(h, "50-fail-once", fail_once_hook);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "w", args);
        *ret_data = data;
        return h;
}

static void test_retry(void) {
        char *data, dest[PATH_MAX], *err = NULL, *out = NULL;
        Harness *h = retry_harness(&data);
        int st;

        /* JSON: the failed attempt, with its phases, then the good one. */
        arm(h);
        snprintf(dest, sizeof(dest), "%s/backup-json", harness_dir(h));
        json_object *o = harness_json(h, &st, "vssbackup backup --to %s --json 2>/dev/null", dest);
        CHECK(st == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        CHECK(n_attempts(o) == 2);
        json_object *a0 = attempt(o, 0), *a1 = attempt(o, 1), *e = NULL, *v = NULL;
        CHECK_STR(json_str(a0, "result"), "failed");
        CHECK(a0 && json_object_object_get_ex(a0, "error", &e));
        CHECK_STR(json_str(e, "name"), "VSS_E_WRITERERROR_RETRYABLE");
        CHECK(e && strstr(json_str(e, "message"), "not now, try again"));
        CHECK(a0 && json_object_object_get_ex(a0, "retryable", &v) && json_object_get_boolean(v));
        CHECK(a0 && json_object_object_get_ex(a0, "retry_in_s", &v) && json_object_get_int(v) == 1);
        CHECK_STR(json_str(json_phase(a0, "do-snapshot-set", "w"), "state_name"), "FailedAtFreeze");
        CHECK_STR(json_str(a1, "result"), "ok");
        CHECK_STR(json_str(json_phase(o, "do-snapshot-set", "w"), "state_name"), "WaitingForBackupComplete");
        json_object_put(o);
        CHECK(freezes(h) == 2);
        CHECK(harness_sh(h, NULL, "diff -r %s %s/data%s", data, dest, data) == 0);

        /* Text: each attempt said, on stderr; success on stdout. */
        arm(h);
        snprintf(dest, sizeof(dest), "%s/backup-text", harness_dir(h));
        CHECK(harness_sh(h, &out, "vssbackup backup --to %s 2>%s/err", dest, harness_dir(h)) == 0);
        CHECK(harness_sh(h, &err, "cat %s/err", harness_dir(h)) == 0);
        CHECK(err && strstr(err, "attempt 1 of 3 failed: VSS_E_WRITERERROR_RETRYABLE") && strstr(err, "retrying in 1 s"));
        CHECK(out && strstr(out, "Succeeded on attempt 2"));
        free(out);
        free(err);
        CHECK(freezes(h) == 2);

        /* exec retries too; the command runs once, against the good shadow copy. */
        arm(h);
        CHECK(harness_sh(h, &out, "vssbackup exec --for %s -- sh -c 'echo ran >> %s/ran; cat {}/a.txt' 2>%s/err", data,
                         harness_dir(h), harness_dir(h)) == 0);
        CHECK(harness_sh(h, &err, "cat %s/err; cat %s/ran", harness_dir(h), harness_dir(h)) == 0);
        CHECK(err && strstr(err, "attempt 1 of 3 failed") && strstr(err, "ran\n") && !strstr(err, "ran\nran"));
        free(out);
        free(err);
        CHECK(freezes(h) == 2);

        /* --retries 0: the failure stands, said to be retryable; nothing is kept. */
        arm(h);
        snprintf(dest, sizeof(dest), "%s/backup-none", harness_dir(h));
        o = harness_json(h, &st, "vssbackup backup --to %s --retries 0 --json 2>%s/err", dest, harness_dir(h));
        CHECK(st == 1);
        CHECK_STR(json_str(o, "result"), "failed");
        CHECK(n_attempts(o) == 1);
        CHECK(json_object_object_get_ex(o, "error", &e));
        CHECK_STR(json_str(e, "name"), "VSS_E_WRITERERROR_RETRYABLE");
        json_object_put(o);
        CHECK(harness_sh(h, &err, "cat %s/err", harness_dir(h)) == 0);
        CHECK(err && strstr(err, "retryable; gave up after 1 attempt (--retries 0)"));
        free(err);
        CHECK(freezes(h) == 1);
        CHECK(access(dest, F_OK) < 0);

        /* A non-retryable failure is not retried: one Freeze. */
        CHECK(harness_sh(h, NULL, "rm -f %s/fail-once", harness_dir(h)) == 0);
        harness_set(h, "w", "freeze", "fail 3 disk on fire");
        harness_clear_log(h);
        snprintf(dest, sizeof(dest), "%s/backup-fatal", harness_dir(h));
        o = harness_json(h, &st, "vssbackup backup --to %s --json 2>/dev/null", dest);
        CHECK(st == 1);
        CHECK(n_attempts(o) == 1);
        CHECK(json_object_object_get_ex(o, "error", &e));
        CHECK_STR(json_str(e, "name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        json_object_put(o);
        char *events = harness_events(h, "w");
        CHECK(events && strstr(events, "freeze") && !strstr(strstr(events, "freeze") + 1, "freeze"));
        free(events);

        /* Bad counts are usage errors. */
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s/x --retries -1 2>/dev/null", harness_dir(h)) == 2);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s/x --retries many 2>/dev/null", harness_dir(h)) == 2);
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s/backup-json --retries 1 2>/dev/null", harness_dir(h)) == 2);
        harness_free(h);
}

/* An exec provider copying the directory it is given, while vssd holds its filesystem frozen;
 * it notes each use in provider-used. */
static const char copy_create[] =
        "#!/bin/sh\n"
        "set -e\n"
        "s=\"$HARNESS_DIR/shadow-$VSS_SHADOW_ID\"\n"
        "cp -a \"$VSS_VOLUME\" \"$s\"\n"
        "echo \"$VSS_PROVIDER $VSS_VOLUME\" >> \"$HARNESS_DIR/provider-used\"\n"
        "echo \"$s\"\n";

static void test_provider(void) {
        char cfg[512], path[PATH_MAX], dest[PATH_MAX], data[PATH_MAX], comp[PATH_MAX + 16], *out = NULL;
        snprintf(cfg, sizeof(cfg),
                 "{\"providers\": [{\"type\": \"exec\", \"name\": \"copier\", \"create\": \"sh $HARNESS_DIR/copy-create\", "
                 "\"delete\": \"rm -rf \\\"$VSS_SHADOW_PATH\\\"\"}]}");
        Harness *h = harness_new(cfg);
        snprintf(path, sizeof(path), "%s/copy-create", harness_dir(h));
        FILE *f = fopen(path, "we");
        CHECK(f && fputs(copy_create, f) >= 0);
        if (f)
                fclose(f);
        /* Held frozen by vssd: a filesystem of the test's own. */
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        snprintf(data, sizeof(data), "%s/data", mnt);
        CHECK(harness_sh(h, NULL, "mkdir %s && echo one > %s/a && echo two > %s/b", data, data, data) == 0);
        snprintf(comp, sizeof(comp), "files=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "w", args);

        int st;
        snprintf(dest, sizeof(dest), "%s/backup", harness_dir(h));
        json_object *o = harness_json(h, &st, "vssbackup backup --to %s --provider copier --json", dest);
        CHECK(st == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        json_object_put(o);
        CHECK(harness_sh(h, &out, "cat %s/provider-used", harness_dir(h)) == 0);
        char want[PATH_MAX + 16];
        snprintf(want, sizeof(want), "copier %s\n", data);
        CHECK_STR(out, want);
        free(out);
        CHECK(harness_sh(h, NULL, "diff -r %s %s/data%s", data, dest, data) == 0);

        /* exec: the command sees the provider's copy; it is deleted afterwards. */
        CHECK(harness_sh(h, &out, "vssbackup exec --for %s --provider copier -- sh -c 'echo \"$VSS_SHADOW_PATH\"; cat {}/b' "
                                  "2>/dev/null", data) == 0);
        char shadow[PATH_MAX] = "";
        CHECK(out && sscanf(out, "%4095s", shadow) == 1);
        CHECK(strstr(shadow, "/shadow-") && strncmp(shadow, harness_dir(h), strlen(harness_dir(h))) == 0);
        CHECK(out && strstr(out, "\ntwo\n"));
        free(out);
        CHECK(access(shadow, F_OK) < 0);
        CHECK(harness_sh(h, &out, "wc -l < %s/provider-used", harness_dir(h)) == 0);
        CHECK(out && atoi(out) == 2);
        free(out);

        /* An unknown provider: a clear failure, before any writer prepares or freezes. */
        harness_clear_log(h);
        snprintf(dest, sizeof(dest), "%s/backup-nosuch", harness_dir(h));
        o = harness_json(h, &st, "vssbackup backup --to %s --provider nosuch --json 2>/dev/null", dest);
        CHECK(st == 1);
        CHECK_STR(json_str(o, "result"), "failed");
        json_object *e = NULL;
        CHECK(o && json_object_object_get_ex(o, "error", &e));
        CHECK(e && strstr(json_str(e, "message"), "nosuch"));
        CHECK(n_attempts(o) == 1);
        json_object_put(o);
        CHECK(access(dest, F_OK) < 0);
        CHECK(harness_sh(h, &out, "vssbackup exec --for %s --provider nosuch -- true 2>&1", data) != 0);
        CHECK(out && strstr(out, "no provider named 'nosuch'"));
        free(out);
        char *events = harness_events(h, "w");
        CHECK(events && !strstr(events, "prepare-backup") && !strstr(events, "freeze"));
        free(events);
        CHECK(harness_sh(h, &out, "wc -l < %s/provider-used", harness_dir(h)) == 0);
        CHECK(out && atoi(out) == 2);
        free(out);
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s/x --provider '' 2>/dev/null", harness_dir(h)) == 2);
        harness_free(h);
}

static const TestCase cases[] = {
        { "vssbackup-retry", test_retry },
        { "vssbackup-provider", test_provider },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
