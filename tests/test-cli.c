/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The command line people type (issue 15): --version everywhere in one format, unknown commands
 * and bad options said once, --json on every vssadmin command and for errors, vssbackup exec
 * --json off the command's stdout, --quiet, error messages that name cause and fix, progress on
 * a terminal that ends cleanly. */

#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "tests/check.h"
#include "tests/harness.h"

static size_t count_of(const char *text, const char *needle) {
        size_t n = 0;
        for (const char *p = text ? strstr(text, needle) : NULL; p; p = strstr(p + 1, needle))
                n++;
        return n;
}

/* The JSON object on stderr: it starts a line and ends the text (warnings may come before it). */
static json_object *stderr_json(const char *text) {
        const char *start = !text ? NULL : text[0] == '{' ? text : strstr(text, "\n{");
        if (start && *start == '\n')
                start++;
        json_object *o = start ? json_tokener_parse(start) : NULL;
        if (!o)
                fprintf(stderr, "no JSON object ends stderr: \"%s\"\n", text ? text : "");
        return o;
}

static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* --version: "NAME (OpenVSS) X.Y.Z" as the first line, exit 0. */
static void check_version(Harness *h, const char *path, const char *name) {
        char *out = NULL, want[128];
        CHECK(harness_sh(h, &out, "%s --version", path) == 0);
        snprintf(want, sizeof(want), "%s (OpenVSS) ", name);
        if (!out || strncmp(out, want, strlen(want)) != 0) {
                fprintf(stderr, "%s --version: got \"%s\", want \"%s X.Y.Z\"\n", name, out ? out : "", want);
                test_failures++;
        } else {
                const char *v = out + strlen(want);
                unsigned a, b, c;
                CHECK(sscanf(v, "%u.%u.%u", &a, &b, &c) == 3);
        }
        free(out);
}

static void test_versions(void) {
        Harness *h = harness_new(NULL);
        check_version(h, VSSD_PATH, "vssd");
        check_version(h, "vssadmin", "vssadmin");
        check_version(h, "vssbackup", "vssbackup");
        check_version(h, "vss-writer-exec", "vss-writer-exec");
        check_version(h, WRITER_EXEC_DIR "/sqlite/vss-writer-sqlite", "vss-writer-sqlite");
        if (access(WRITER_EXEC_DIR "/postgres/vss-writer-postgres", X_OK) == 0)
                check_version(h, WRITER_EXEC_DIR "/postgres/vss-writer-postgres", "vss-writer-postgres");
        /* --help: a synopsis and the man page. */
        static const char *const tools[] = { "vssadmin", "vssbackup", "vss-writer-exec" };
        for (size_t i = 0; i < ELEMENTSOF(tools); i++) {
                char *out = NULL, want[64];
                CHECK(harness_sh(h, &out, "%s --help", tools[i]) == 0);
                snprintf(want, sizeof(want), "See %s(", tools[i]);
                CHECK(out && strstr(out, "Usage:") && strstr(out, want));
                free(out);
        }
        harness_free(h);
}

/* A usage error: exit 2, one "PROGRAM: ..." line naming want, getopt's own message never. */
static void check_usage(Harness *h, const char *cmd, const char *want) {
        char *err = NULL;
        int rc = harness_sh(h, &err, "%s 2>&1 >/dev/null", cmd);
        /* "PROG: ", PROG the command's first word without its directory. */
        char prog[64];
        const char *end = cmd + strcspn(cmd, " "), *start = end;
        while (start > cmd && start[-1] != '/')
                start--;
        snprintf(prog, sizeof prog, "%.*s: ", (int) (end - start), start);
        if (rc != 2 || !err || !strstr(err, want) || count_of(err, prog) != 1 || strstr(err, "unrecognized") ||
            strstr(err, "requires an argument")) {
                fprintf(stderr, "`%s`: exit %d, stderr \"%s\"; want exit 2 and one message with \"%s\"\n", cmd, rc,
                        err ? err : "", want);
                test_failures++;
        }
        free(err);
}

static void test_usage_messages(void) {
        Harness *h = harness_new(NULL);
        check_usage(h, "vssadmin frobnicate", "unknown command 'frobnicate'");
        check_usage(h, "vssadmin frobnicate shadows", "unknown command 'frobnicate'");
        check_usage(h, "vssadmin", "missing command");
        check_usage(h, "vssadmin list", "list what");
        check_usage(h, "vssadmin --bogus list writers", "unknown option '--bogus'");
        check_usage(h, "vssadmin list writers -x", "unknown option '-x'");
        check_usage(h, "vssadmin list providers --for", "option '--for' needs a value");
        check_usage(h, "vssbackup frobnicate", "unknown command 'frobnicate'");
        check_usage(h, "vssbackup backup --bogus", "unknown option '--bogus'");
        check_usage(h, "vssbackup backup --to", "option '--to' needs a value");
        check_usage(h, "vssbackup backup --to /x --json-fd 3", "--json-fd is for exec --json only");
        check_usage(h, "vssbackup exec --json --json-fd 1 -- true", "--json-fd takes");
        /* The writers too: getopt's own line is off, the one message is theirs. */
        check_usage(h, "vss-writer-exec --bogus", "unknown option '--bogus'");
        check_usage(h, "vss-writer-exec --name w --socket", "option '--socket' needs a value");
        check_usage(h, WRITER_EXEC_DIR "/sqlite/vss-writer-sqlite --bogus", "unknown option '--bogus'");
        check_usage(h, WRITER_EXEC_DIR "/postgres/vss-writer-postgres -x", "unknown option '-x'");
        harness_free(h);
}

/* vssd not running: the cause and the fix, once; JSON with --json; exit 1. */
static void test_vssd_unreachable(void) {
        Harness *h = harness_new(NULL);
        char sock[PATH_MAX], *out = NULL, *err = NULL;
        int rc;
        snprintf(sock, sizeof(sock), "%s/nobody-listens.sock", harness_dir(h));
        static const char *const cmds[] = { "vssadmin list writers", "vssadmin list shadows", "vssadmin create shadow --for /tmp",
                                            "vssadmin delete shadows --all", "vssbackup exec -- true",
                                            "vssbackup backup --to /nonexistent/x" };
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                rc = harness_sh(h, &err, "VSS_SOCKET=%s %s 2>&1 >/dev/null", sock, cmds[i]);
                CHECK(rc == 1);
                if (!err || !strstr(err, "cannot reach vssd at ") || !strstr(err, sock) || !strstr(err, "Is vssd running?") ||
                    count_of(err, "0x80042318") > 1 || strstr(err, "CreateSession")) {
                        fprintf(stderr, "`%s` with no vssd: \"%s\"\n", cmds[i], err ? err : "");
                        test_failures++;
                }
                free(err);
        }
        static const char *const json_cmds[] = { "list writers", "list providers", "list shadows", "create shadow --for /tmp",
                                                 "delete shadows --all", "unexpose --at /mnt" };
        for (size_t i = 0; i < ELEMENTSOF(json_cmds); i++) {
                json_object *o = harness_json(h, &rc, "vssadmin %s --json --socket %s 2>/dev/null", json_cmds[i], sock);
                CHECK(rc == 1);
                CHECK_STR(json_str(o, "result"), "failed");
                json_object *e = member(o, "error");
                CHECK_STR(json_str(e, "name"), "VSS_E_WRITER_INFRASTRUCTURE");
                CHECK_STR(json_str(e, "code"), "0x80042318");
                CHECK(strstr(json_str(e, "message"), "cannot reach vssd") != NULL);
                json_object_put(o);
        }
        /* vssbackup --json: the same object shape, with the command. */
        json_object *o = harness_json(h, &rc, "vssbackup backup --json --to %s/b --socket %s 2>/dev/null", harness_dir(h), sock);
        CHECK(rc == 1);
        CHECK_STR(json_str(o, "result"), "failed");
        CHECK(strstr(json_str(member(o, "error"), "message"), "cannot reach vssd") != NULL);
        json_object_put(o);
        free(out);
        harness_free(h);
}

/* --json on delete, expose, unexpose; --quiet; failures that name the cause once. */
static void test_vssadmin_json_quiet(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *out = NULL, *err = NULL, at[PATH_MAX];
        int rc;
        harness_writer(h, "w", NULL);

        /* --quiet: nothing on stdout or stderr when all is well. */
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --quiet 2>&1", data) == 0);
        CHECK_STR(out, "");
        free(out);
        json_object *list = harness_json(h, &rc, "vssadmin list shadows --json");
        json_object *shadows = member(list, "shadows");
        CHECK(rc == 0 && shadows && json_object_array_length(shadows) == 1);
        char sid[64] = "";
        snprintf(sid, sizeof(sid), "%s", json_str(json_object_array_get_idx(shadows, 0), "shadow_id"));
        json_object_put(list);

        /* expose and unexpose with --json. */
        snprintf(at, sizeof(at), "%s/at", harness_dir(h));
        CHECK(mkdir(at, 0755) == 0);
        json_object *o = harness_json(h, &rc, "vssadmin expose --shadow %s --at %s --json", sid, at);
        CHECK(rc == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        CHECK_STR(json_str(o, "shadow_id"), sid);
        CHECK_STR(json_str(o, "exposed_at"), at);
        json_object_put(o);
        o = harness_json(h, &rc, "vssadmin unexpose --at %s --json", at);
        CHECK(rc == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        CHECK_STR(json_str(o, "unexposed"), at);
        json_object_put(o);
        /* Not exposed any more: a JSON failure, and the message once on stderr. */
        o = harness_json(h, &rc, "vssadmin unexpose --at %s --json 2>%s/err", at, harness_dir(h));
        CHECK(rc == 1);
        CHECK_STR(json_str(o, "result"), "failed");
        CHECK_STR(json_str(member(o, "error"), "name"), "VSS_E_OBJECT_NOT_FOUND");
        json_object_put(o);
        CHECK(harness_sh(h, &err, "cat %s/err", harness_dir(h)) == 0);
        CHECK(err && count_of(err, "VSS_E_OBJECT_NOT_FOUND") == 1 && count_of(err, "\n") == 1);
        free(err);

        /* delete --json. */
        o = harness_json(h, &rc, "vssadmin delete shadows --all --json");
        CHECK(rc == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        CHECK(json_object_get_int(member(o, "deleted")) == 1);
        json_object_put(o);
        CHECK(harness_sh(h, &out, "vssadmin delete shadows --all --quiet") == 0);
        CHECK_STR(out, "");
        free(out);

        /* Not root, not in the backup group: who was refused and what fixes it. The harness's
         * directory is private (mkdtemp): let others through to the socket. */
        CHECK(chmod(harness_dir(h), 0711) == 0);
        rc = harness_sh(h, &err, "setpriv --reuid=65534 --regid=65534 --clear-groups vssadmin create shadow --for %s 2>&1", data);
        {
                CHECK(rc == 1);
                CHECK(err && strstr(err, "refused uid 65534") && strstr(err, "backup group") && count_of(err, "\n") == 1);
        }
        free(err);
        rc = harness_sh(h, &err, "setpriv --reuid=65534 --regid=65534 --clear-groups vssadmin list shadows 2>&1");
        {
                CHECK(rc == 1);
                CHECK(err && strstr(err, "E_ACCESSDENIED") && strstr(err, "uid 65534") && count_of(err, "0x80070005") == 1);
        }
        free(err);

        /* A bad path: the cause, the code once, no method name. */
        CHECK(harness_sh(h, &err, "vssadmin create shadow --for %s/nonexistent 2>&1 >/dev/null", harness_dir(h)) == 1);
        CHECK(err && count_of(err, "VSS_E_OBJECT_NOT_FOUND") == 1 && count_of(err, "0x80042308") == 1 &&
              strstr(err, "cannot resolve") && !strstr(err, "AddToSnapshotSet"));
        if (err && strstr(err, "AddToSnapshotSet"))
                fprintf(stderr, "method name in: %s", err);
        free(err);
        harness_free(h);
}

/* exec --json never on the command's stdout; --json-fd; --quiet; progress ends cleanly. */
static void test_vssbackup_json_quiet_progress(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *out = NULL, *err = NULL, path[PATH_MAX];
        int rc;
        harness_writer(h, "w", NULL);

        /* stdout is the command's alone; the object is on stderr. */
        CHECK(harness_sh(h, &out, "vssbackup exec --json --for %s -- cat {}/a.txt 2>%s/exec-err", data, harness_dir(h)) == 0);
        CHECK_STR(out, "hello, shadow\n");
        free(out);
        snprintf(path, sizeof(path), "%s/exec-err", harness_dir(h));
        CHECK(harness_sh(h, &err, "cat %s", path) == 0);
        json_object *o = stderr_json(err);
        CHECK(o != NULL);
        CHECK_STR(json_str(o, "command"), "exec");
        CHECK_STR(json_str(o, "result"), "ok");
        CHECK(json_object_get_int(member(o, "exit_status")) == 0);
        json_object_put(o);
        free(err);

        /* --json-fd 3: stdout the command's, stderr quiet, the object in the file. */
        CHECK(harness_sh(h, &out, "vssbackup exec --json --json-fd 3 --for %s -- sh -c 'cat {}/a.txt; test -e /proc/self/fd/3 "
                                  "&& echo inherited; true' 3>%s/exec.json 2>%s/exec-err2",
                         data, harness_dir(h), harness_dir(h)) == 0);
        CHECK_STR(out, "hello, shadow\n");
        free(out);
        CHECK(harness_sh(h, &err, "cat %s/exec-err2", harness_dir(h)) == 0);
        CHECK(err && !strstr(err, "\"result\""));
        free(err);
        CHECK(harness_sh(h, &err, "cat %s/exec.json", harness_dir(h)) == 0);
        o = err ? json_tokener_parse(err) : NULL;
        CHECK_STR(json_str(o, "result"), "ok");
        json_object_put(o);
        free(err);
        /* A failing command: the object says so, on stderr, and no text line repeats it. */
        CHECK(harness_sh(h, &err, "vssbackup exec --json --for %s -- sh -c 'exit 3' 2>&1 >/dev/null", data) == 3);
        o = stderr_json(err);
        CHECK_STR(json_str(o, "result"), "failed");
        CHECK(json_object_get_int(member(o, "exit_status")) == 3);
        CHECK(err && !strstr(err, "vssbackup: exec failed"));
        json_object_put(o);
        free(err);

        /* --quiet: exec prints only the command's output; backup and restore nothing. */
        CHECK(harness_sh(h, &out, "vssbackup exec --quiet --for %s -- cat {}/a.txt 2>&1", data) == 0);
        CHECK_STR(out, "hello, shadow\n");
        free(out);
        CHECK(harness_sh(h, &out, "vssbackup backup --quiet --for %s --to %s/b1 2>&1", data, harness_dir(h)) == 0);
        CHECK_STR(out, "");
        free(out);

        /* On a terminal: progress lines, each replaced and the last cleared before the result. */
        CHECK(harness_sh(h, &out, "script -qec 'vssbackup backup --for %s --to %s/b2' /dev/null", data, harness_dir(h)) == 0);
        CHECK(out && strstr(out, "Making the shadow copies") && strstr(out, "\r\033[K"));
        const char *result = out ? strstr(out, "Backup (full) written to") : NULL;
        CHECK(result != NULL);
        if (result) {
                /* Between the last progress text and the result, the line was cleared. */
                const char *last_clear = NULL;
                for (const char *p = strstr(out, "\r\033[K"); p && p < result; p = strstr(p + 1, "\r\033[K"))
                        last_clear = p;
                CHECK(last_clear != NULL);
                const char *after = last_clear ? last_clear + 4 : "";
                CHECK(after[0] != 0 && !strstr(after, "Making the shadow copies") && !strstr(after, " files, "));
        }
        free(out);
        /* Not on a terminal: no escape sequences. */
        CHECK(harness_sh(h, &out, "vssbackup backup --for %s --to %s/b3 2>&1", data, harness_dir(h)) == 0);
        CHECK(out && !strchr(out, '\033'));
        free(out);
        (void) rc;
        harness_free(h);
}

/* cli-expose-after-reboot: VSS keeps an exposed persistent shadow exposed through reboots. A
 * reboot is what vssd sees at its start: its exposures recorded in another boot (the record's boot
 * id changed here), their mounts gone. The one at an empty directory is mounted again and listed;
 * the one whose directory is no longer empty is forgotten, with a warning. */
static void test_expose_after_reboot(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *out = NULL, at[PATH_MAX], at2[PATH_MAX + 8];
        int rc;
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --quiet && vssadmin list shadows --json | "
                                  "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"shadows\"][0][\"shadow_id\"], end=\"\")'",
                         data) == 0);
        snprintf(at, sizeof(at), "%s/at", harness_dir(h));
        snprintf(at2, sizeof(at2), "%s/at2", harness_dir(h));
        CHECK(mkdir(at, 0755) == 0 && mkdir(at2, 0755) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin expose --shadow %s --at %s --quiet && vssadmin expose --shadow %s --at %s --quiet",
                         strempty(out), at, strempty(out), at2) == 0);
        harness_stop_vssd(h, &rc);
        CHECK(harness_sh(h, NULL, "umount %s && umount %s && touch %s/new && python3 - <<EOF\n"
                                  "import sqlite3\n"
                                  "c = sqlite3.connect('%s/registry.db')\n"
                                  "c.execute(\"UPDATE exposures SET boot_id = '11111111-1111-1111-1111-111111111111'\")\n"
                                  "c.commit()\n"
                                  "EOF",
                         at, at2, at2, harness_state_dir(h)) == 0);
        harness_restart_vssd(h);
        /* Made again in a child of vssd's: waited for, up to 10 s. */
        rc = harness_sh(h, NULL, "for i in $(seq 200); do mountpoint -q %s && vssadmin list shadows --json | grep -q "
                                 "'\"exposed_at\": *\"%s\"' && exit 0; sleep 0.05; done; exit 1", at, at);
        CHECK(rc == 0);
        CHECK(harness_sh(h, NULL, "test -f %s/a.txt", at) == 0);
        CHECK(harness_sh(h, NULL, "! mountpoint -q %s && ! vssadmin list shadows --json | grep -q '%s\"'", at2, at2) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at %s --quiet && ! mountpoint -q %s", at, at) == 0);
        free(out);
}

static const TestCase cases[] = {
        { "cli-versions", test_versions },
        { "cli-usage-messages", test_usage_messages },
        { "cli-vssd-unreachable", test_vssd_unreachable },
        { "cli-vssadmin-json-quiet", test_vssadmin_json_quiet },
        { "cli-expose-after-reboot", test_expose_after_reboot },
        { "cli-vssbackup-json-quiet-progress", test_vssbackup_json_quiet_progress },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
