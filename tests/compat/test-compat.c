/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec's compatibility modes (qemu-ga fsfreeze-hook.d, VMware backupScripts.d), hook
 * timeout and hold mode, against the real vssd, with hook scripts as people write them. */

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"

static void write_text(const char *path, const char *text, mode_t mode) {
        FILE *f = fopen(path, "we");
        if (!f) {
                fprintf(stderr, "cannot write %s: %m\n", path);
                exit(99);
        }
        fputs(text, f);
        fclose(f);
        if (chmod(path, mode) < 0) {
                fprintf(stderr, "cannot chmod %s: %m\n", path);
                exit(99);
        }
}

/* Writes DIR/NAME from a printf format (the script), with mode. */
static void script(const char *dir, const char *name, mode_t mode, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void script(const char *dir, const char *name, mode_t mode, const char *fmt, ...) {
        char path[PATH_MAX], *text = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&text, fmt, ap) < 0)
                exit(99);
        va_end(ap);
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        write_text(path, text, mode);
        free(text);
}

static char *make_dir(Harness *h, const char *name) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", harness_dir(h), name) < 0 || mkdir(p, 0755) < 0) {
                fprintf(stderr, "cannot make %s: %m\n", name);
                exit(99);
        }
        return p;
}

static char *read_text(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 65536);
        if (f) {
                size_t n = fread(buf, 1, 65535, f);
                buf[n] = 0;
                fclose(f);
        }
        return buf;
}

static void truncate_file(const char *path) {
        write_text(path, "", 0644);
}

static void prepare(vss_backup *b, const char *data) {
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
}

static void check_writer(vss_backup *b, const char *name, vss_writer_state state, int32_t failure, int code,
                         const char *msg) {
        vss_writer_status st;
        if (!status_of(b, name, &st)) {
                fprintf(stderr, "no status for writer '%s'\n", name);
                test_failures++;
                return;
        }
        if (st.state != state || st.failure != failure || st.application_code != code ||
            (msg && strcmp(st.application_message ? st.application_message : "", msg) != 0)) {
                fprintf(stderr,
                        "writer '%s': state %s, failure 0x%08x, code %d, message '%s'; expected %s, 0x%08x, %d, '%s'\n",
                        name, vss_writer_state_name(st.state), (uint32_t) st.failure, st.application_code,
                        st.application_message ? st.application_message : "", vss_writer_state_name(state),
                        (uint32_t) failure, code, msg ? msg : "*");
                test_failures++;
        }
}

/* A whole backup: returns do_snapshot_set's result; gathers status into b (left to the caller). */
static int32_t backup(Harness *h, const char *data, vss_backup **ret) {
        vss_backup *b = harness_session(h);
        prepare(b, data);
        int32_t hr = vss_backup_do_snapshot_set_sync(b);
        if (hr == 0)
                CHECK_HR(vss_backup_backup_complete_sync(b), 0);
        CHECK_HR(vss_backup_gather_writer_status_sync(b), 0);
        *ret = b;
        return hr;
}

static bool pid_alive(pid_t pid) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/%d", (int) pid);
        return pid > 0 && access(p, F_OK) == 0;
}

static pid_t read_pid(const char *path) {
        char *t = read_text(path);
        pid_t pid = (pid_t) atoi(t);
        free(t);
        return pid;
}

/* qemu-ga: fsfreeze-hook.d scripts run unchanged. */
static void test_compat_qemu_ga(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *dir = make_dir(h, "fsfreeze-hook.d"), log[PATH_MAX],
             flag[PATH_MAX], sub[PATH_MAX];
        snprintf(log, sizeof(log), "%s/qemu.log", harness_dir(h));
        snprintf(flag, sizeof(flag), "%s/app-fails", harness_dir(h));
        truncate_file(log);

        /* In the manner of qemu's sample mysql-flush.sh: $1 is freeze or thaw. */
        script(dir, "10-mysql-flush.sh", 0755,
               "#!/bin/sh\n"
               "LOG=%s\n"
               "case \"$1\" in\n"
               "    freeze)\n"
               "        echo \"10-mysql-flush.sh freeze\" >>\"$LOG\"\n"
               "        ;;\n"
               "    thaw)\n"
               "        echo \"10-mysql-flush.sh thaw\" >>\"$LOG\"\n"
               "        ;;\n"
               "    *)\n"
               "        exit 1\n"
               "        ;;\n"
               "esac\n",
               log);
        script(dir, "20-app", 0755,
               "#!/bin/sh\n"
               "echo \"20-app $1\" >>%s\n"
               "if [ \"$1\" = freeze ] && [ -e %s ]; then\n"
               "    echo 'app: cannot flush' >&2\n"
               "    echo 'app: not ready' >&2\n"
               "    exit 3\n"
               "fi\n"
               "exit 0\n",
               log, flag);
        /* Skipped by qemu's rules: package manager leftovers, backups, dot files, not executable. */
        static const char *const skipped[] = { "20-app.dpkg-old", "20-app.dpkg-new", "20-app.dpkg-dist",
                                               "20-app.dpkg-tmp", "20-app.dpkg-bak", "20-app.dpkg-backup",
                                               "20-app.dpkg-remove", "20-app.rpmsave", "20-app.rpmnew",
                                               "20-app.rpmorig", "20-app~", "20-app.bak", "20-app.orig",
                                               "20-app.sample", ".hidden" };
        for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
                script(dir, skipped[i], 0755, "#!/bin/sh\necho \"%s $1\" >>%s\nexit 1\n", skipped[i], log);
        script(dir, "30-not-executable", 0644, "#!/bin/sh\necho \"30-not-executable $1\" >>%s\nexit 1\n", log);
        snprintf(sub, sizeof(sub), "%s/40-subdir", dir);
        CHECK(mkdir(sub, 0755) == 0);
        script(sub, "hook", 0755, "#!/bin/sh\necho \"40-subdir/hook $1\" >>%s\nexit 1\n", log);
        script(dir, "90-last", 0755, "#!/bin/sh\necho \"90-last $1\" >>%s\n", log);

        const char *const args[] = { "--hooks", dir, "--compat", "qemu-ga", NULL };
        harness_writer(h, "qemu", args);

        vss_backup *b = NULL;
        CHECK_HR(backup(h, data, &b), 0);
        check_writer(b, "qemu", VSS_WS_STABLE, 0, 0, "");
        vss_backup_release(b);
        char *got = read_text(log);
        /* freeze and thaw both in name order; nothing for identify and the other events */
        CHECK_STR(got,
                  "10-mysql-flush.sh freeze\n20-app freeze\n90-last freeze\n"
                  "10-mysql-flush.sh thaw\n20-app thaw\n90-last thaw\n");
        free(got);

        /* A failing freeze hook vetoes the set; the hooks before it get thaw (at Abort). */
        truncate_file(log);
        write_text(flag, "", 0644);
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_NONRETRYABLE);
        check_writer(b, "qemu", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_NONRETRYABLE, 3, "app: not ready");
        vss_backup_release(b);
        got = read_text(log);
        CHECK_STR(got, "10-mysql-flush.sh freeze\n20-app freeze\n10-mysql-flush.sh thaw\n");
        free(got);

        /* Exit 75 is retryable. */
        truncate_file(log);
        script(dir, "20-app", 0755, "#!/bin/sh\necho \"20-app $1\" >>%s\n[ \"$1\" = freeze ] && { echo busy >&2; exit 75; }\nexit 0\n", log);
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_RETRYABLE);
        check_writer(b, "qemu", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_RETRYABLE, 75, "busy");
        vss_backup_release(b);
        got = read_text(log);
        CHECK_STR(got, "10-mysql-flush.sh freeze\n20-app freeze\n10-mysql-flush.sh thaw\n");
        free(got);

        /* Every hook's result is on the writer's stderr. */
        char wlog[PATH_MAX];
        snprintf(wlog, sizeof(wlog), "%s/writer-qemu.log", harness_dir(h));
        got = read_text(wlog);
        CHECK(strstr(got, "freeze: hook 10-mysql-flush.sh -> ok") != NULL);
        CHECK(strstr(got, "freeze: hook 20-app -> failed, exit status 3: app: not ready") != NULL);
        free(got);
        free(dir);
        harness_free(h);
}

/* VMware: backupScripts.d scripts get freeze, freezeFail and thaw. */
static void test_compat_vmware(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *dir = make_dir(h, "backupScripts.d"), log[PATH_MAX],
             flag[PATH_MAX];
        snprintf(log, sizeof(log), "%s/vmware.log", harness_dir(h));
        snprintf(flag, sizeof(flag), "%s/c-fails", harness_dir(h));
        truncate_file(log);

        static const char *const names[] = { "a-db", "b-app", "c-cache" };
        for (size_t i = 0; i < 3; i++)
                script(dir, names[i], 0755,
                       "#!/bin/sh\n"
                       "case \"$1\" in\n"
                       "    freeze)\n"
                       "        echo \"%s freeze\" >>%s\n"
                       "        if [ -e %s ] && [ %s = c-cache ]; then\n"
                       "            echo 'cache: flush failed' >&2\n"
                       "            exit 4\n"
                       "        fi\n"
                       "        ;;\n"
                       "    freezeFail)\n"
                       "        echo \"%s freezeFail\" >>%s\n"
                       "        ;;\n"
                       "    thaw)\n"
                       "        echo \"%s thaw\" >>%s\n"
                       "        ;;\n"
                       "esac\n"
                       "exit 0\n",
                       names[i], log, flag, names[i], names[i], log, names[i], log);
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/d-subdir", dir);
        CHECK(mkdir(sub, 0755) == 0); /* not a file: not a script */

        const char *const args[] = { "--hooks", dir, "--compat", "vmware", NULL };
        harness_writer(h, "vm", args);

        vss_backup *b = NULL;
        CHECK_HR(backup(h, data, &b), 0);
        check_writer(b, "vm", VSS_WS_STABLE, 0, 0, "");
        vss_backup_release(b);
        char *got = read_text(log);
        CHECK_STR(got, "a-db freeze\nb-app freeze\nc-cache freeze\nc-cache thaw\nb-app thaw\na-db thaw\n");
        free(got);

        /* A failing freeze script: freezeFail to the ones that ran, in reverse; the set fails. */
        truncate_file(log);
        write_text(flag, "", 0644);
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_NONRETRYABLE);
        check_writer(b, "vm", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_NONRETRYABLE, 4, "cache: flush failed");
        vss_backup_release(b);
        got = read_text(log);
        CHECK_STR(got, "a-db freeze\nb-app freeze\nc-cache freeze\nb-app freezeFail\na-db freezeFail\n");
        free(got);

        /* The snapshot fails after a successful freeze (a later writer vetoes): Abort is
         * freezeFail to every script, in reverse. */
        CHECK(unlink(flag) == 0);
        truncate_file(log);
        const char *const sys[] = { "--app-level", "system", NULL };
        harness_writer(h, "later", sys);
        harness_set(h, "later", "freeze", "fail 5 later veto");
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_NONRETRYABLE);
        check_writer(b, "later", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_NONRETRYABLE, 5, "later veto");
        vss_writer_status st;
        CHECK(status_of(b, "vm", &st) && st.state == VSS_WS_STABLE && st.failure == 0);
        vss_backup_release(b);
        got = read_text(log);
        CHECK_STR(got, "a-db freeze\nb-app freeze\nc-cache freeze\nc-cache freezeFail\nb-app freezeFail\na-db freezeFail\n");
        free(got);
        free(dir);
        harness_free(h);
}

/* A hook past --hook-timeout is killed with everything it started. */
static void test_compat_hook_timeout(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *dir = make_dir(h, "hooks-timeout"), pidfile[PATH_MAX];
        snprintf(pidfile, sizeof(pidfile), "%s/slow.pid", harness_dir(h));
        /* Ignores SIGTERM (and so does its sleep, which inherits that): SIGKILL must follow. */
        script(dir, "10-slow", 0755,
               "#!/bin/sh\n"
               "[ \"$1\" = freeze ] || exit 0\n"
               "echo $$ >%s\n"
               "trap '' TERM\n"
               "echo 'flushing...' >&2\n"
               "sleep 37\n"
               "exit 0\n",
               pidfile);
        const char *const args[] = { "--hooks", dir, "--hook-timeout", "500", NULL };
        harness_writer(h, "slowpoke", args);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        vss_backup *b = NULL;
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_TIMEOUT);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
        CHECK(secs < 10);
        check_writer(b, "slowpoke", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_TIMEOUT, 128 + SIGKILL,
                     "hook 10-slow timed out after 500 ms");
        vss_backup_release(b);

        pid_t pid = read_pid(pidfile);
        CHECK(pid > 0 && !pid_alive(pid));
        char *out = NULL;
        CHECK(harness_sh(h, &out, "pgrep -f 'slee[p] 37' || true") == 0);
        CHECK_STR(out, "");
        free(out);

        /* A plain slow hook (it dies of SIGTERM) in a compat mode. */
        free(dir);
        harness_free(h);
        h = harness_new(NULL);
        data = harness_make_data(h, "data");
        dir = make_dir(h, "hooks-timeout2");
        script(dir, "10-slow", 0755, "#!/bin/sh\n[ \"$1\" = freeze ] && sleep 38\nexit 0\n");
        const char *const args2[] = { "--hooks", dir, "--compat", "qemu-ga", "--hook-timeout", "300", NULL };
        harness_writer(h, "slow2", args2);
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_TIMEOUT);
        check_writer(b, "slow2", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_TIMEOUT, 128 + SIGTERM,
                     "hook 10-slow timed out after 300 ms");
        vss_backup_release(b);
        CHECK(harness_sh(h, &out, "pgrep -f 'slee[p] 38' || true") == 0);
        CHECK_STR(out, "");
        free(out);
        free(dir);
        harness_free(h);
}

/* A hold hook keeps a database session with a lock from freeze until thaw. */
static void test_compat_hold(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *dir = make_dir(h, "hooks-hold"), db[PATH_MAX],
             pidfile[PATH_MAX], flaky[PATH_MAX], rcfile[PATH_MAX], *out = NULL;
        snprintf(db, sizeof(db), "%s/app.db", harness_dir(h));
        snprintf(pidfile, sizeof(pidfile), "%s/hold.pid", harness_dir(h));
        snprintf(flaky, sizeof(flaky), "%s/flaky", harness_dir(h));
        snprintf(rcfile, sizeof(rcfile), "%s/create.rc", harness_dir(h));
        CHECK(harness_sh(h, NULL, "sqlite3 '%s' 'CREATE TABLE t(x);'", db) == 0);

        /* sqlite3 reads its commands from the hook's stdin: BEGIN IMMEDIATE, say ready, wait for
         * EOF (the writer lets go), ROLLBACK. */
        script(dir, "10-sqlite-hold", 0755,
               "#!/bin/sh\n"
               "case \"$1\" in\n"
               "freeze)\n"
               "    echo $$ >%s\n"
               "    { echo 'BEGIN IMMEDIATE;'; echo \"SELECT 'ready';\"; cat; echo 'ROLLBACK;'; } |\n"
               "        sqlite3 -bail -cmd '.timeout 5000' %s\n"
               "    ;;\n"
               "thaw)\n"
               "    ;;\n"
               "esac\n",
               pidfile, db);
        /* Says ready, then dies while holding (when the flag is there). */
        script(dir, "20-flaky", 0755,
               "#!/bin/sh\n"
               "[ \"$1\" = freeze ] && [ -e %s ] && { echo ready; sleep 0.2; echo 'flaky: lost my session' >&2; exit 0; }\n"
               "exit 0\n",
               flaky);
        const char *const args[] = { "--hooks", dir, "--compat", "qemu-ga", "--hold", "--app-level", "front-end", NULL };
        const char *const sys[] = { "--app-level", "system", NULL };
        harness_writer(h, "db", args);
        harness_writer(h, "slow", sys);
        harness_set(h, "slow", "freeze", "block 2");

        CHECK(harness_sh(h, NULL, "(vssadmin create shadow --for '%s' >/dev/null 2>&1; echo $? >%s.tmp; mv %s.tmp %s) "
                                  ">/dev/null 2>&1 </dev/null &",
                         data, rcfile, rcfile, rcfile) == 0);
        CHECK(harness_wait_started(h, "slow", "freeze"));
        /* Frozen: the database is locked by the hold hook. */
        CHECK(harness_sh(h, NULL, "sqlite3 -cmd '.timeout 200' '%s' 'INSERT INTO t VALUES (1);' 2>/dev/null", db) != 0);
        pid_t pid = read_pid(pidfile);
        CHECK(pid_alive(pid));
        for (int i = 0; i < 3000 && access(rcfile, F_OK) != 0; i++)
                usleep(10 * 1000);
        char *rc = read_text(rcfile);
        CHECK_STR(rc, "0\n");
        free(rc);
        /* Thawed: the session is gone, the lock too. */
        CHECK(!pid_alive(pid));
        CHECK(harness_sh(h, NULL, "sqlite3 -cmd '.timeout 2000' '%s' 'INSERT INTO t VALUES (1);'", db) == 0);
        CHECK(harness_sh(h, &out, "sqlite3 '%s' 'SELECT count(*) FROM t;'", db) == 0);
        CHECK_STR(out, "1\n");
        free(out);
        char wlog[PATH_MAX];
        snprintf(wlog, sizeof(wlog), "%s/writer-db.log", harness_dir(h));
        out = read_text(wlog);
        CHECK(strstr(out, "freeze: hook 10-sqlite-hold -> ready, holding") != NULL);
        CHECK(strstr(out, "thaw: hook 10-sqlite-hold -> ok") != NULL);
        free(out);

        /* A hold hook that exits before thaw fails the set at Thaw. */
        write_text(flaky, "", 0644);
        vss_backup *b = NULL;
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_NONRETRYABLE);
        check_writer(b, "db", VSS_WS_FAILED_AT_THAW, VSS_E_WRITERERROR_NONRETRYABLE, 0,
                     "hook 20-flaky exited while holding");
        vss_backup_release(b);
        pid = read_pid(pidfile);
        CHECK(!pid_alive(pid));
        CHECK(harness_sh(h, NULL, "sqlite3 -cmd '.timeout 2000' '%s' 'INSERT INTO t VALUES (2);'", db) == 0);
        free(dir);
        harness_free(h);

        /* Native mode: a writer stopped while its hook holds lets the hook go (its Abort runs). */
        h = harness_new(NULL);
        data = harness_make_data(h, "data");
        dir = make_dir(h, "hooks-hold-native");
        char log[PATH_MAX];
        snprintf(log, sizeof(log), "%s/native.log", harness_dir(h));
        snprintf(pidfile, sizeof(pidfile), "%s/native.pid", harness_dir(h));
        script(dir, "10-hold", 0755,
               "#!/bin/sh\n"
               "echo \"10-hold $1\" >>%s\n"
               "[ \"$1\" = freeze ] || exit 0\n"
               "echo $$ >%s\n"
               "echo ready\n"
               "cat >/dev/null\n"
               "echo \"10-hold let go\" >>%s\n",
               log, pidfile, log);
        const char *const nargs[] = { "--hooks", dir, "--hold", NULL };
        pid_t wpid = harness_writer(h, "nat", nargs);
        harness_writer(h, "slow", sys);
        harness_set(h, "slow", "freeze", "block 3");
        CHECK(harness_sh(h, NULL, "(vssadmin create shadow --for '%s' >/dev/null 2>&1) >/dev/null 2>&1 </dev/null &",
                         data) == 0);
        CHECK(harness_wait_started(h, "slow", "freeze"));
        pid = read_pid(pidfile);
        CHECK(pid_alive(pid));
        CHECK(kill(wpid, SIGTERM) == 0);
        for (int i = 0; i < 500 && pid_alive(pid); i++)
                usleep(10 * 1000);
        CHECK(!pid_alive(pid));
        out = read_text(log);
        CHECK_STR(out, "10-hold identify\n10-hold prepare-backup\n10-hold prepare-snapshot\n10-hold freeze\n"
                       "10-hold let go\n");
        free(out);
        free(dir);
        harness_free(h);
}

/* Whether the file holds the text n times or more; waits up to 20 s for it. */
static bool wait_for_text(const char *path, const char *text, int n) {
        for (int i = 0; i < 2000; i++) {
                char *got = read_text(path);
                int k = 0;
                for (const char *p = got; (p = strstr(p, text)); p += strlen(text))
                        k++;
                free(got);
                if (k >= n)
                        return true;
                usleep(10 * 1000);
        }
        fprintf(stderr, "'%s' not %d times in %s\n", text, n, path);
        return false;
}

/* Gone or a zombie. */
static bool pid_exited(pid_t pid) {
        char p[64], *st;
        snprintf(p, sizeof(p), "/proc/%d/stat", (int) pid);
        st = read_text(p);
        char *close_paren = strrchr(st, ')');
        bool gone = !*st || (close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z');
        free(st);
        return gone;
}

/* In the pattern of qemu's mysql-flush.sh.sample: the freeze hook leaves a background job that
 * holds a "lock" until thaw writes a FIFO, and writes to its stderr after the hook exited. The
 * job must not die of SIGPIPE (else the FIFO stays and every later freeze fails on mkfifo), the
 * event's message is the hook's own last stderr line, and the job's lines reach the log: the
 * writer's stderr and stdout, or the --hook-log file. */
static void background_job(bool hook_log) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), *dir = make_dir(h, "fsfreeze-hook.d"), log[PATH_MAX],
             flag[PATH_MAX], late[PATH_MAX], hlog[PATH_MAX], fifo[PATH_MAX];
        snprintf(log, sizeof(log), "%s/jobs.log", harness_dir(h));
        snprintf(flag, sizeof(flag), "%s/late-fails", harness_dir(h));
        snprintf(late, sizeof(late), "%s/late.fifo", harness_dir(h));
        snprintf(hlog, sizeof(hlog), "%s/%s", harness_dir(h), hook_log ? "hooks.log" : "writer-bg.log");
        snprintf(fifo, sizeof(fifo), "%s/flush.fifo", harness_dir(h));
        truncate_file(log);
        CHECK(mkfifo(late, 0600) == 0);

        script(dir, "10-flush", 0755,
               "#!/bin/sh\n"
               "FIFO=%s\n"
               "flush_and_wait() {\n"
               "    echo '10-flush: locked' >&2\n"
               "    read x < $FIFO\n"
               "    echo '10-flush: unlocking' >&2\n"
               "    echo 'UNLOCK'\n"
               "    echo unlocked >>%s\n"
               "    rm -f $FIFO\n"
               "}\n"
               "case \"$1\" in\n"
               "    freeze)\n"
               "        mkfifo $FIFO || exit 1\n"
               "        flush_and_wait &\n"
               "        echo '10-flush: frozen' >&2\n"
               "        ;;\n"
               "    thaw)\n"
               "        [ -p $FIFO ] || exit 1\n"
               "        echo > $FIFO\n"
               "        ;;\n"
               "esac\n",
               fifo, log);
        script(dir, "20-late", 0755,
               "#!/bin/sh\n"
               "[ \"$1\" = freeze ] && [ -e %s ] || exit 0\n"
               "{ read x < %s; echo '20-late: a line after the hook exited' >&2; echo late-written >>%s; } &\n"
               "echo '20-late: cannot flush' >&2\n"
               "exit 3\n",
               flag, late, log);

        const char *const args[] = { "--hooks", dir, "--compat", "qemu-ga", hook_log ? "--hook-log" : NULL, hlog, NULL };
        pid_t wpid = harness_writer(h, "bg", args);

        /* Backups in a row: each thaw lets the job go, and it cleans up behind itself. */
        vss_backup *b = NULL;
        for (int i = 1; i <= 3; i++) {
                CHECK_HR(backup(h, data, &b), 0);
                check_writer(b, "bg", VSS_WS_STABLE, 0, 0, "");
                vss_backup_release(b);
                CHECK(wait_for_text(log, "unlocked", i));
        }
        /* Lines the job wrote after the hook exited are in the hook log, stdout and stderr. */
        CHECK(wait_for_text(hlog, "10-flush: unlocking", 3));
        CHECK(wait_for_text(hlog, "UNLOCK", 3));
        CHECK(wait_for_text(hlog, "10-flush: frozen", 3));

        /* A failing hook whose job writes later: the message is the hook's own last line. */
        write_text(flag, "", 0644);
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_NONRETRYABLE);
        check_writer(b, "bg", VSS_WS_FAILED_AT_FREEZE, VSS_E_WRITERERROR_NONRETRYABLE, 3, "20-late: cannot flush");
        vss_backup_release(b);
        CHECK(wait_for_text(log, "unlocked", 4)); /* 10-flush got thaw at Abort */
        CHECK(harness_sh(h, NULL, "timeout 20 sh -c 'echo > %s'", late) == 0);
        CHECK(wait_for_text(log, "late-written", 1));
        CHECK(wait_for_text(hlog, "20-late: a line after the hook exited", 1));

        /* And the next backup is not vetoed by anything the jobs left. */
        CHECK(unlink(flag) == 0);
        CHECK_HR(backup(h, data, &b), 0);
        check_writer(b, "bg", VSS_WS_STABLE, 0, 0, "");
        vss_backup_release(b);
        CHECK(wait_for_text(log, "unlocked", 5));

        /* A job that writes after the writer itself is gone still has a valid stderr. */
        write_text(flag, "", 0644);
        CHECK_HR(backup(h, data, &b), VSS_E_WRITERERROR_NONRETRYABLE);
        vss_backup_release(b);
        CHECK(kill(wpid, SIGTERM) == 0);
        for (int i = 0; i < 2000 && !pid_exited(wpid); i++)
                usleep(10 * 1000);
        CHECK(pid_exited(wpid));
        CHECK(harness_sh(h, NULL, "timeout 20 sh -c 'echo > %s'", late) == 0);
        CHECK(wait_for_text(log, "late-written", 2));
        CHECK(wait_for_text(hlog, "20-late: a line after the hook exited", 2));
        free(dir);
        harness_free(h);
}

static void test_compat_background_job(void) {
        background_job(false);
        background_job(true);
}

static void test_compat_bad_usage(void) {
        Harness *h = harness_new(NULL);
        char *out = NULL;
        const char *d = harness_dir(h);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --compat nonsense 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --compat '' 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hook-timeout 0 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hook-timeout abc 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hook-timeout -5 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hook-timeout 10x 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hook-timeout '' 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hook-timeout 99999999999 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hold=yes 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, NULL, "vss-writer-exec --name x --hooks '%s' --hook-log '' 2>/dev/null", d) == 2);
        CHECK(harness_sh(h, &out, "vss-writer-exec --name x --hooks '%s' --hook-log '%s/no/such/dir/log' 2>&1", d, d) == 2);
        CHECK(out && strstr(out, "cannot open hook log") != NULL);
        free(out);
        CHECK(harness_sh(h, &out, "vss-writer-exec --name x --hooks '%s' --compat nonsense 2>&1", d) == 2);
        CHECK(out && strstr(out, "--compat") != NULL);
        free(out);
        CHECK(harness_sh(h, &out, "vss-writer-exec --help") == 0);
        CHECK(out && strstr(out, "--compat qemu-ga|vmware") && strstr(out, "--hook-timeout MS") &&
              strstr(out, "--hold") && strstr(out, ".dpkg-old") && strstr(out, "freezeFail") &&
              strstr(out, "--hook-log FILE"));
        free(out);
        harness_free(h);
}

static const TestCase cases[] = {
        { "compat-qemu-ga", test_compat_qemu_ga },
        { "compat-vmware", test_compat_vmware },
        { "compat-hook-timeout", test_compat_hook_timeout },
        { "compat-hold", test_compat_hold },
        { "compat-background-job", test_compat_background_job },
        { "compat-bad-usage", test_compat_bad_usage },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
