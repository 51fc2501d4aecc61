/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-sqlite against the real vssd and vssbackup: backups of a database under constant
 * write load restore to a consistent prefix of its history; the write lock is held exactly while
 * writers are frozen (and released on Abort); a corrupt restored database fails PostRestore;
 * usage errors. */

#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/common.h"
#include "tests/harness.h"

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

/* Waits up to ms for pid; kills it past that. Returns its wait status, or -1 when killed. */
static int reap(pid_t pid, int ms) {
        int status;
        for (int i = 0; i < ms / 10; i++) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                if (r == pid)
                        return status;
                if (r < 0)
                        return -1;
                sleep_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
}

/* The writer under test; stopped at the end of a case, also after failed checks. */
static pid_t writer_pid;

static bool sqlite_writer_listed(Harness *h) {
        return harness_sh(h, NULL, "vssadmin list writers | grep -q \"^Writer name: 'sqlite'\"") == 0;
}

static bool writer_without_ptrace; /* the next start_writer(): no CAP_SYS_PTRACE (as a unit may run it) */

static pid_t start_writer(Harness *h, const char *const *args) {
        char log[PATH_MAX];
        const char *argv[32];
        size_t n = 0;

        snprintf(log, sizeof log, "%s/writer-sqlite.log", harness_dir(h)); /* dumped by the harness on failure */
        argv[n++] = "vss-writer-sqlite";
        argv[n++] = "--socket";
        argv[n++] = harness_socket(h);
        for (size_t i = 0; args && args[i] && n < 30; i++)
                argv[n++] = args[i];
        argv[n] = NULL;

        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                sigset_t none;
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (writer_without_ptrace)
                        (void) prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
                execv(WRITER_SQLITE_PATH, (char *const *) argv);
                _exit(127);
        }
        writer_pid = pid;
        for (int i = 0; i < 200; i++) {
                if (sqlite_writer_listed(h))
                        return pid;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        writer_pid = 0;
                        break;
                }
                sleep_ms(50);
        }
        fprintf(stderr, "vss-writer-sqlite did not subscribe\n");
        test_failures++;
        return pid;
}

/* SIGTERM: the writer must exit 0 (and, under ASan, without leaks). */
static void stop_writer(void) {
        if (writer_pid <= 0)
                return;
        kill(writer_pid, SIGTERM);
        int st = reap(writer_pid, 5000);
        if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                fprintf(stderr, "vss-writer-sqlite ended badly on SIGTERM (status 0x%x)\n", st);
                test_failures++;
        }
        writer_pid = 0;
}

static bool exec_sql(sqlite3 *db, const char *sql) {
        char *err = NULL;
        if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
                fprintf(stderr, "SQL '%s' failed: %s\n", sql, err ? err : "?");
                sqlite3_free(err);
                return false;
        }
        return true;
}

/* One integer from a query, or -1. */
static long long query_int(sqlite3 *db, const char *sql) {
        sqlite3_stmt *st = NULL;
        long long v = -1;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* A WAL-mode database with t(i, pad) and the one-row last(i); rows rows already committed. */
static char *make_db(Harness *h, const char *dir, int rows) {
        static char path[PATH_MAX];
        char d[PATH_MAX];
        sqlite3 *db = NULL;

        snprintf(d, sizeof d, "%s/%s", harness_dir(h), dir);
        CHECK(mkdir(d, 0755) == 0);
        snprintf(path, sizeof path, "%s/app.db", d);
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(exec_sql(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(i INTEGER PRIMARY KEY, pad TEXT);"
                           "CREATE TABLE last(i INTEGER); INSERT INTO last VALUES(0);"));
        CHECK(exec_sql(db, "BEGIN"));
        for (int i = 1; i <= rows; i++) {
                char sql[128];
                snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%d, printf('%%0200d', %d)); UPDATE last SET i = %d;",
                         i, i, i);
                CHECK(exec_sql(db, sql));
        }
        CHECK(exec_sql(db, "COMMIT"));
        sqlite3_close(db);
        return path;
}

static volatile sig_atomic_t load_stop;

static void on_load_stop(int sig) {
        load_stop = 1;
}

/* A child committing transactions until SIGTERM: row i into t and last.i = i, each in its own
 * transaction. Exits 0, or 3 when a statement failed. */
static pid_t start_load(const char *path) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid != 0)
                return pid;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGTERM, on_load_stop);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        sqlite3 *db = NULL;
        if (sqlite3_open(path, &db) != SQLITE_OK)
                _exit(3);
        /* Longer than any freeze here: the writer's lock must make us wait, never fail. */
        sqlite3_busy_timeout(db, 60000);
        long long i = query_int(db, "SELECT i FROM last");
        while (!load_stop) {
                char sql[256];
                i++;
                snprintf(sql, sizeof sql,
                         "BEGIN IMMEDIATE; INSERT INTO t VALUES(%lld, printf('%%0200d', %lld)); UPDATE last SET i = %lld; COMMIT;",
                         i, i, i);
                if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
                        fprintf(stderr, "load: %s\n", sqlite3_errmsg(db));
                        _exit(3);
                }
                usleep(300);
        }
        sqlite3_close(db);
        _exit(0);
}

/* One number from a database opened read-only, or -1. */
static long long db_int(const char *path, const char *sql) {
        sqlite3 *db = NULL;
        long long v = -1;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
                sqlite3_busy_timeout(db, 5000);
                v = query_int(db, sql);
        }
        sqlite3_close(db);
        return v;
}

static long long db_last(const char *path) {
        return db_int(path, "SELECT i FROM last");
}

/* PRAGMA integrity_check says ok, and count(t) = max(t.i) = last.i: the copy holds whole
 * transactions only. Returns last.i, or -1. */
static long long check_consistent(const char *path) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        long long last = -1;

        CHECK(access(path, F_OK) == 0);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
                fprintf(stderr, "cannot open %s\n", path);
                test_failures++;
                sqlite3_close(db);
                return -1;
        }
        CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW);
        CHECK_STR((const char *) sqlite3_column_text(st, 0), "ok");
        sqlite3_finalize(st);
        last = query_int(db, "SELECT i FROM last");
        long long count = query_int(db, "SELECT count(*) FROM t"), max = query_int(db, "SELECT max(i) FROM t");
        if (!(last >= 0 && count == last && max == last)) {
                fprintf(stderr, "%s: inconsistent: last.i = %lld, count(t) = %lld, max(t.i) = %lld\n", path, last,
                        count, max);
                test_failures++;
        }
        sqlite3_close(db);
        return last;
}

/* Whether the backup's components list has the sqlite writer's component name, succeeded. */
static bool component_succeeded(json_object *out, const char *name) {
        json_object *cs = NULL, *v = NULL;
        if (!out || !json_object_object_get_ex(out, "components", &cs))
                return false;
        for (size_t i = 0; i < json_object_array_length(cs); i++) {
                json_object *c = json_object_array_get_idx(cs, i);
                if (streq(json_str(c, "writer"), "sqlite") && streq(json_str(c, "name"), name))
                        return json_object_object_get_ex(c, "succeeded", &v) && json_object_get_boolean(v);
        }
        return false;
}

static bool file_contains(const char *path, const char *needle) {
        FILE *f = fopen(path, "re");
        char buf[65536];
        size_t n = 0;
        if (!f)
                return false;
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        return strstr(buf, needle) != NULL;
}

static char *backup_stamp(Harness *h, const char *dest);

static void test_backup_under_load(void) {
        Harness *h = harness_new(NULL);
        char *db = make_db(h, "db", 10);
        char dest[2][PATH_MAX], alt[2][PATH_MAX], restored[PATH_MAX * 2], p[PATH_MAX + 64];
        long long got[2] = { -1, -1 };
        char *stamp[2] = {};

        pid_t load = start_load(db);
        for (int i = 0; i < 500 && db_last(db) < 200; i++)
                sleep_ms(10);
        CHECK(db_last(db) >= 200);
        const char *const args[] = { "--database", db, NULL };
        start_writer(h, args);

        for (int k = 0; k < 2; k++) {
                int st;
                snprintf(dest[k], sizeof dest[k], "%s/backup%d", harness_dir(h), k);
                json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json%s", dest[k], "");
                CHECK(st == 0);
                CHECK_STR(json_str(out, "result"), "ok");
                CHECK_STR(json_str(json_phase(out, "prepare-for-backup", "sqlite"), "state_name"), "Stable");
                json_object *w = json_phase(out, "do-snapshot-set", "sqlite");
                CHECK_STR(json_str(w, "state_name"), "WaitingForBackupComplete");
                CHECK_STR(json_str(w, "failure_name"), "S_OK");
                CHECK_STR(json_str(json_phase(out, "backup-complete", "sqlite"), "state_name"), "Stable");
                CHECK(component_succeeded(out, "app.db"));
                json_object_put(out);
                /* WAL mode: the stamp comes from the log, and tells the backups apart. */
                snprintf(p, sizeof p, "%s/openvss/backup-components.json", dest[k]);
                CHECK(file_contains(p, "\"backup_stamp\":\"wal:") || file_contains(p, "\"backup_stamp\": \"wal:"));
                stamp[k] = backup_stamp(h, dest[k]);
                /* The load went on meanwhile. */
                long long before = db_last(db);
                for (int i = 0; i < 500 && db_last(db) < before + 50; i++)
                        sleep_ms(10);
        }

        kill(load, SIGTERM);
        int st = reap(load, 10000);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        long long final = check_consistent(db);

        for (int k = 0; k < 2; k++) {
                snprintf(alt[k], sizeof alt[k], "%s/restored%d", harness_dir(h), k);
                json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", dest[k], alt[k]);
                CHECK(st == 0);
                CHECK_STR(json_str(out, "result"), "ok");
                CHECK_STR(json_str(json_phase(out, "pre-restore", "sqlite"), "state_name"), "Stable");
                CHECK_STR(json_str(json_phase(out, "post-restore", "sqlite"), "state_name"), "Stable");
                json_object_put(out);
                snprintf(restored, sizeof restored, "%s%s", alt[k], db);
                got[k] = check_consistent(restored);
                /* A prefix of the committed history, taken while the load ran. */
                CHECK(got[k] >= 200);
                CHECK(got[k] <= final);
        }
        /* The second backup came later. */
        CHECK(got[0] < got[1]);
        CHECK(stamp[0] && stamp[1] && !streq(stamp[0], stamp[1]));
        free(stamp[0]);
        free(stamp[1]);
        fprintf(stderr, "backups hold %lld and %lld of %lld transactions\n", got[0], got[1], final);
        stop_writer();
        harness_free(h);
}

/* Tries one insert from a connection of our own, waiting at most wait_ms for the lock. */
static int try_insert(const char *path, int wait_ms, char *err, size_t errsize) {
        sqlite3 *db = NULL;
        int rc = sqlite3_open(path, &db);
        if (rc == SQLITE_OK) {
                sqlite3_busy_timeout(db, wait_ms);
                rc = sqlite3_exec(db, "INSERT INTO t VALUES(NULL, 'outsider')", NULL, NULL, NULL);
        }
        snprintf(err, errsize, "%s", db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return rc;
}

/* Runs a vssbackup backup in a child; its JSON goes to DEST.json. */
static pid_t backup_in_background(Harness *h, const char *dest) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int st = harness_sh(h, NULL, "vssbackup backup --to %s --json > %s.json", dest, dest);
                _exit(st);
        }
        return pid;
}

static void test_lock_held_during_freeze(void) {
        Harness *h = harness_new(NULL);
        char *db = make_db(h, "db", 10);
        char dest[PATH_MAX], err[512];
        /* Readers may go on while the lock is held: WAL mode. */
        sqlite3 *reader = NULL;

        const char *const args[] = { "--database", db, NULL };
        start_writer(h, args);
        /* A system writer freezes after the back-end sqlite writer: while it blocks, the database is
         * frozen. */
        const char *const slow_args[] = { "--app-level", "system", NULL };
        harness_writer(h, "slow", slow_args);
        harness_set(h, "slow", "freeze", "block 3");

        snprintf(dest, sizeof dest, "%s/backup", harness_dir(h));
        pid_t b = backup_in_background(h, dest);
        CHECK(harness_wait_started(h, "slow", "freeze"));
        int rc = try_insert(db, 200, err, sizeof err);
        CHECK(rc == SQLITE_BUSY);
        CHECK(strstr(err, "database is locked") != NULL);
        CHECK(sqlite3_open_v2(db, &reader, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        CHECK(query_int(reader, "SELECT count(*) FROM t") == 10);
        sqlite3_close(reader);
        int st = reap(b, 60000);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* Thawed: writes go through again. */
        CHECK(try_insert(db, 2000, err, sizeof err) == SQLITE_OK);

        /* Another writer's failed Freeze aborts the set: Abort releases our lock too. */
        harness_set(h, "slow", "freeze", "fail 1 vetoed");
        snprintf(dest, sizeof dest, "%s/backup-vetoed", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --json >/dev/null", dest) == 1);
        CHECK(try_insert(db, 2000, err, sizeof err) == SQLITE_OK);
        /* Released by Abort itself, not only by the BackupShutdown that follows it. */
        CHECK(harness_sh(h, NULL, "grep -q 'app.db: write lock released (abort)' %s/writer-sqlite.log", harness_dir(h)) == 0);
        CHECK(db_last(db) == 10);
        stop_writer();
        harness_free(h);
}

static void test_restore_integrity_failure(void) {
        Harness *h = harness_new(NULL);
        char *db = make_db(h, "db", 2000);
        char dest[PATH_MAX], copy[PATH_MAX * 2];
        struct stat s;

        const char *const args[] = { "--database", db, NULL };
        start_writer(h, args);
        snprintf(dest, sizeof dest, "%s/backup", harness_dir(h));
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json%s", dest, "");
        CHECK(st == 0);
        CHECK(component_succeeded(out, "app.db"));
        json_object_put(out);

        /* Garbage over two pages in the middle of the backed-up main file. */
        snprintf(copy, sizeof copy, "%s/data%s", dest, db);
        CHECK(stat(copy, &s) == 0 && s.st_size > 16 * 4096);
        int fd = open(copy, O_WRONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        char junk[8192];
        memset(junk, 0x5a, sizeof junk);
        off_t at = (s.st_size / 2) & ~(off_t) 4095;
        CHECK(pwrite(fd, junk, sizeof junk, at) == (ssize_t) sizeof junk);
        close(fd);

        /* In place: with --to, vssbackup does not tell writers where the files went. */
        out = harness_json(h, &st, "vssbackup restore --from %s --json%s", dest, "");
        CHECK(st == 1);
        CHECK_STR(json_str(out, "result"), "failed");
        CHECK_STR(json_str(json_phase(out, "pre-restore", "sqlite"), "state_name"), "Stable");
        json_object *w = json_phase(out, "post-restore", "sqlite");
        CHECK_STR(json_str(w, "state_name"), "FailedAtPostRestore");
        CHECK_STR(json_str(w, "failure_name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        CHECK(strstr(json_str(w, "application_message"), "integrity check") != NULL);
        CHECK(strstr(json_str(w, "application_message"), "app.db") != NULL);
        json_object *code = NULL;
        CHECK(w && json_object_object_get_ex(w, "application_code", &code) && json_object_get_int(code) != 0);
        fprintf(stderr, "post-restore message: %s\n", json_str(w, "application_message"));
        json_object_put(out);
        stop_writer();
        harness_free(h);
}

/* Rows of t whose v is not want (-1 on error). */
static int rows_not(const char *path, int want) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        int n = -1;
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM t WHERE v != %d", want);
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

/* A database in rollback-journal mode, backed up with every row at v = 0; then v = 1 is committed
 * and the application dies in the middle of a transaction setting v = 2, leaving a hot journal of
 * v = 1 pages. Restored in place, the database is the backup's: the journal, which the backup
 * does not hold, is gone, not rolled back onto the restored file. */
static void test_restore_drops_stale_journal(void) {
        Harness *h = harness_new(NULL);
        char dir[PATH_MAX], path[PATH_MAX + 16], journal[PATH_MAX + 32], dest[PATH_MAX];
        sqlite3 *db = NULL;
        snprintf(dir, sizeof dir, "%s/db", harness_dir(h));
        CHECK(mkdir(dir, 0755) == 0);
        snprintf(path, sizeof path, "%s/app.db", dir);
        snprintf(journal, sizeof journal, "%s-journal", path);
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        CHECK(exec_sql(db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(i INTEGER PRIMARY KEY, v INTEGER, pad TEXT);"
                           "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 3000) "
                           "INSERT INTO t SELECT k, 0, printf('%0300d', k) FROM n;"));
        sqlite3_close(db);
        const char *const args[] = { "--database", path, NULL };
        start_writer(h, args);
        snprintf(dest, sizeof dest, "%s/backup", harness_dir(h));
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", dest);
        CHECK(st == 0);
        json_object_put(out);

        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                sqlite3 *c = NULL;
                /* A one-page cache: the transaction's pages spill to the file, their old contents
                 * to the journal, before any commit. */
                if (sqlite3_open(path, &c) != SQLITE_OK || !exec_sql(c, "UPDATE t SET v = 1") ||
                    !exec_sql(c, "PRAGMA cache_size = 1; BEGIN; UPDATE t SET v = 2"))
                        _exit(3);
                _exit(0); /* dies mid-transaction */
        }
        int ws;
        CHECK(waitpid(pid, &ws, 0) == pid && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
        CHECK(access(journal, F_OK) == 0);

        out = harness_json(h, &st, "vssbackup restore --from %s --json", dest);
        CHECK(st == 0);
        json_object_put(out);
        CHECK(access(journal, F_OK) < 0);
        CHECK(rows_not(path, 0) == 0);
        stop_writer();
        harness_free(h);
}

/* restore-if-can-replace: while an application holds the database open (a connection it keeps),
 * the restore in place is refused at PreRestore, naming the process, and writes nothing (its
 * later commits would go to the replaced, unlinked file); once it is gone, the restore works.
 * other_user: the application runs as nobody and the writer without CAP_SYS_PTRACE, so it
 * cannot look at the application's files: the lock the connection holds tells. */
static void restore_refused_while_open(bool other_user) {
        Harness *h = harness_new(NULL);
        char dir[PATH_MAX], db[PATH_MAX + 16], dest[PATH_MAX];
        sqlite3 *c0 = NULL;
        snprintf(dir, sizeof dir, "%s/db", harness_dir(h));
        CHECK(mkdir(dir, 0755) == 0);
        snprintf(db, sizeof db, "%s/app.db", dir);
        CHECK(sqlite3_open(db, &c0) == SQLITE_OK);
        CHECK(exec_sql(c0, "PRAGMA journal_mode=WAL; CREATE TABLE t(i INTEGER PRIMARY KEY, v INTEGER);"
                           "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 100) "
                           "INSERT INTO t SELECT k, 0 FROM n;"));
        sqlite3_close(c0);
        snprintf(dest, sizeof dest, "%s/backup", harness_dir(h));
        const char *const args[] = { "--database", db, NULL };
        writer_without_ptrace = other_user;
        start_writer(h, args);
        writer_without_ptrace = false;
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", dest);
        CHECK(st == 0);
        json_object_put(out);
        if (other_user)
                CHECK(harness_sh(h, NULL, "chmod o+x %s && chmod 0777 %s && chmod 0666 %s*", harness_dir(h), dir, db) == 0);

        /* p: the child holds its connection until p closes; q: it says when its commit is in. No
         * polling of the database meanwhile: a connection of ours (root's) could make its -wal and
         * -shm files as root, which nobody then cannot open, or checkpoint under an exclusive lock
         * as the child begins its write. */
        int p[2], q[2];
        CHECK(pipe(p) == 0 && pipe(q) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                sqlite3 *c = NULL;
                close(p[1]);
                close(q[0]);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (other_user && (setgid(65534) < 0 || setuid(65534) < 0))
                        _exit(4);
                if (sqlite3_open(db, &c) != SQLITE_OK || sqlite3_busy_timeout(c, 30000) != SQLITE_OK ||
                    !exec_sql(c, "UPDATE t SET v = 7") || write(q[1], "u", 1) != 1)
                        _exit(3);
                char x;
                _exit(read(p[0], &x, 1) < 0); /* holds the connection until told */
        }
        close(p[0]);
        close(q[1]);
        char u = 0;
        CHECK(read(q[0], &u, 1) == 1 && u == 'u'); /* 0 bytes: the child failed before */
        close(q[0]);
        CHECK(rows_not(db, 7) == 0);
        out = harness_json(h, &st, "vssbackup restore --from %s --json", dest);
        CHECK(st == 1);
        json_object *w = json_phase(out, "pre-restore", "sqlite");
        CHECK_STR(json_str(w, "state_name"), "FailedAtPreRestore");
        CHECK(strstr(json_str(w, "application_message"), "is open in process") != NULL);
        json_object_put(out);
        CHECK(rows_not(db, 7) == 0); /* nothing restored */
        close(p[1]);
        waitpid(pid, NULL, 0);
        out = harness_json(h, &st, "vssbackup restore --from %s --json", dest);
        CHECK(st == 0);
        json_object_put(out);
        CHECK(rows_not(db, 7) > 0);
        stop_writer();
        harness_free(h);
}

static void test_restore_refused_while_open(void) {
        restore_refused_while_open(false);
}

static void test_restore_refused_other_user(void) {
        restore_refused_while_open(true);
}

/* The backup stamp the backup at dest holds (one component), or "". Caller frees. */
static char *backup_stamp(Harness *h, const char *dest) {
        char *out = NULL;
        if (harness_sh(h, &out, "sed -n 's/.*\"backup_stamp\": *\"\\([^\"]*\\)\".*/\\1/p' %s/openvss/backup-components.json",
                       dest) != 0 || !out) {
                free(out);
                return strdup("");
        }
        out[strcspn(out, "\n")] = 0;
        return out;
}

/* The transfer test: ACCOUNTS accounts of 1000 each, padded to spread over many pages, so a copy
 * cut while a transaction commits is torn between pages; a transaction moves an amount between
 * two far-apart accounts and logs the move, counting it in meta.n. Invariant: the sum stays
 * ACCOUNTS * 1000 and count(moves) = meta.n. */
#define ACCOUNTS 24000

static char *make_bank(Harness *h, const char *dir, const char *mode) {
        static char path[PATH_MAX];
        char d[PATH_MAX], sql[256];
        sqlite3 *db = NULL;

        snprintf(d, sizeof d, "%s/%s", harness_dir(h), dir);
        CHECK(mkdir(d, 0755) == 0);
        snprintf(path, sizeof path, "%s/app.db", d);
        CHECK(sqlite3_open(path, &db) == SQLITE_OK);
        snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
        CHECK(exec_sql(db, sql));
        CHECK(exec_sql(db, "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER, pad TEXT);"
                           "CREATE TABLE moves(id INTEGER PRIMARY KEY, a INTEGER, b INTEGER, k INTEGER);"
                           "CREATE TABLE meta(n INTEGER); INSERT INTO meta VALUES(0);"));
        snprintf(sql, sizeof sql,
                 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < %d) "
                 "INSERT INTO acct SELECT i, 1000, printf('%%0400d', i) FROM c", ACCOUNTS);
        CHECK(exec_sql(db, sql));
        sqlite3_close(db);
        return path;
}

/* A child moving money until SIGTERM, in journal mode mode (per connection but for WAL). Exits 0,
 * or 3 when a statement failed. */
static pid_t start_bank_load(const char *path, const char *mode) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid != 0)
                return pid;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGTERM, on_load_stop);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        sqlite3 *db = NULL;
        char sql[512];
        if (sqlite3_open(path, &db) != SQLITE_OK)
                _exit(3);
        sqlite3_busy_timeout(db, 60000);
        /* No fsync: commits come fast, so copies cut without the lock would catch them midway. */
        snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s; PRAGMA synchronous=OFF", mode);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
                _exit(3);
        srand((unsigned) getpid());
        while (!load_stop) {
                int a = 1 + rand() % (ACCOUNTS / 2), b = ACCOUNTS / 2 + 1 + rand() % (ACCOUNTS / 2), k = 1 + rand() % 50;
                snprintf(sql, sizeof sql,
                         "BEGIN IMMEDIATE; UPDATE acct SET bal = bal - %d WHERE id = %d; UPDATE acct SET bal = bal + %d "
                         "WHERE id = %d; INSERT INTO moves VALUES(NULL, %d, %d, %d); UPDATE meta SET n = n + 1; COMMIT;",
                         k, a, k, b, a, b, k);
                if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
                        fprintf(stderr, "load: %s\n", sqlite3_errmsg(db));
                        _exit(3);
                }
        }
        sqlite3_close(db);
        _exit(0);
}

static long long bank_moves(const char *path) {
        return db_int(path, "SELECT n FROM meta");
}

/* integrity_check says ok and the invariant holds; returns meta.n, or -1. */
static long long check_bank(const char *path) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        long long n = -1;

        if (access(path, F_OK) < 0 || sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
                fprintf(stderr, "cannot open %s\n", path);
                test_failures++;
                sqlite3_close(db);
                return -1;
        }
        CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK);
        CHECK(sqlite3_step(st) == SQLITE_ROW);
        const char *line = (const char *) sqlite3_column_text(st, 0);
        if (!line || !streq(line, "ok")) {
                fprintf(stderr, "%s: integrity_check: %s\n", path, line ? line : "(null)");
                test_failures++;
        }
        sqlite3_finalize(st);
        long long sum = query_int(db, "SELECT sum(bal) FROM acct"), moves = query_int(db, "SELECT count(*) FROM moves");
        n = query_int(db, "SELECT n FROM meta");
        if (sum != (long long) ACCOUNTS * 1000 || moves != n) {
                fprintf(stderr, "%s: invariant broken: sum %lld (want %lld), %lld moves, meta.n %lld\n", path, sum,
                        (long long) ACCOUNTS * 1000, moves, n);
                test_failures++;
        }
        sqlite3_close(db);
        return n;
}

/* Backups of a database another process keeps changing, in one journal mode: each restored copy
 * passes integrity_check and the invariant, and has its own stamp. 10 backups with
 * OPENVSS_CHECK_FULL=1, else 2. */
static void bank_case(const char *mode) {
        const char *full = getenv("OPENVSS_CHECK_FULL");
        int count = full && streq(full, "1") ? 10 : 2;
        Harness *h = harness_new(NULL);
        char *db = make_bank(h, "db", mode);
        char dest[PATH_MAX], alt[PATH_MAX], restored[PATH_MAX * 2], *stamps[10] = {};
        long long got[10];
        bool wal = streq(mode, "WAL");

        pid_t load = start_bank_load(db, mode);
        for (int i = 0; i < 1000 && bank_moves(db) < 100; i++)
                sleep_ms(10);
        CHECK(bank_moves(db) >= 100);
        const char *const args[] = { "--database", db, NULL };
        start_writer(h, args);

        for (int k = 0; k < count; k++) {
                int st;
                snprintf(dest, sizeof dest, "%s/backup%d", harness_dir(h), k);
                snprintf(alt, sizeof alt, "%s/restored%d", harness_dir(h), k);
                CHECK(harness_sh(h, NULL, "vssbackup backup --to %s >/dev/null", dest) == 0);
                stamps[k] = backup_stamp(h, dest);
                CHECK(strncmp(stamps[k], wal ? "wal:" : "change-counter:", wal ? 4 : 15) == 0);
                for (int j = 0; j < k; j++)
                        if (streq(stamps[j], stamps[k])) {
                                fprintf(stderr, "backups %d and %d have the same stamp %s\n", j, k, stamps[k]);
                                test_failures++;
                        }
                /* The writer's own check runs in PostRestore: it must pass too. */
                json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", dest, alt);
                CHECK(st == 0);
                CHECK_STR(json_str(json_phase(out, "post-restore", "sqlite"), "state_name"), "Stable");
                json_object_put(out);
                snprintf(restored, sizeof restored, "%s%s", alt, db);
                got[k] = check_bank(restored);
                CHECK(got[k] >= 100);
                CHECK(k == 0 || got[k] > got[k - 1]);
                /* The load goes on between backups. */
                long long before = bank_moves(db);
                for (int i = 0; i < 1000 && bank_moves(db) < before + 20; i++)
                        sleep_ms(10);
        }
        kill(load, SIGTERM);
        int st = reap(load, 10000);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        long long final = check_bank(db);
        fprintf(stderr, "%s: %d backups, the last holding %lld of %lld transactions\n", mode, count, got[count - 1],
                final);
        for (int k = 0; k < count; k++)
                free(stamps[k]);
        stop_writer();
        harness_free(h);
}

static void test_bank_wal(void) {
        bank_case("WAL");
}
static void test_bank_delete(void) {
        bank_case("DELETE");
}
static void test_bank_truncate(void) {
        bank_case("TRUNCATE");
}
static void test_bank_persist(void) {
        bank_case("PERSIST");
}

/* A reader holding an old snapshot keeps the checkpoint from emptying the log: the backup still
 * succeeds, the log being part of the component, and the restored copy has what only the log held. */
static void test_checkpoint_busy(void) {
        Harness *h = harness_new(NULL);
        char *db = make_db(h, "db", 10);
        char dest[PATH_MAX], alt[PATH_MAX], restored[PATH_MAX * 2], err[512];
        sqlite3 *reader = NULL;

        CHECK(sqlite3_open_v2(db, &reader, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        CHECK(exec_sql(reader, "BEGIN"));
        CHECK(query_int(reader, "SELECT count(*) FROM t") == 10);
        for (int i = 0; i < 10; i++)
                CHECK(try_insert(db, 2000, err, sizeof err) == SQLITE_OK);
        const char *const args[] = { "--database", db, "--busy-timeout", "300", NULL };
        start_writer(h, args);
        snprintf(dest, sizeof dest, "%s/backup", harness_dir(h));
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", dest);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK_STR(json_str(json_phase(out, "do-snapshot-set", "sqlite"), "failure_name"), "S_OK");
        CHECK(component_succeeded(out, "app.db"));
        json_object_put(out);
        CHECK(harness_sh(h, NULL, "grep -q 'app.db: checkpoint could not finish' %s/writer-sqlite.log", harness_dir(h)) == 0);
        CHECK(exec_sql(reader, "COMMIT"));
        sqlite3_close(reader);
        /* The newer rows were in the log only. */
        snprintf(alt, sizeof alt, "%s/restored", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup restore --from %s --to %s >/dev/null", dest, alt) == 0);
        snprintf(restored, sizeof restored, "%s%s", alt, db);
        sqlite3 *r = NULL;
        CHECK(sqlite3_open_v2(restored, &r, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
        CHECK(query_int(r, "SELECT count(*) FROM t") == 20);
        sqlite3_close(r);
        stop_writer();
        harness_free(h);
}

/* Runs the writer with a shell command line's arguments; returns its exit status and output. */
static int run_writer(Harness *h, char **out, const char *args) {
        return harness_sh(h, out, "'%s' %s 2>&1 </dev/null", WRITER_SQLITE_PATH, args);
}

static void test_bad_usage(void) {
        Harness *h = harness_new(NULL);
        char *db = make_db(h, "db", 1);
        char args[PATH_MAX * 3], cfg[PATH_MAX], junk[PATH_MAX];
        char *out = NULL;

        CHECK(run_writer(h, &out, "") == 2);
        CHECK(out && strstr(out, "no database"));
        free(out);
        CHECK(run_writer(h, &out, "--database app.db") == 2);
        CHECK(out && strstr(out, "must be absolute"));
        free(out);
        CHECK(run_writer(h, NULL, "--database main=db/app.db") == 2);
        snprintf(args, sizeof args, "--database %s/nonexistent.db", harness_dir(h));
        CHECK(run_writer(h, &out, args) == 2);
        CHECK(out && strstr(out, "No such file"));
        free(out);
        snprintf(junk, sizeof junk, "%s/junk", harness_dir(h));
        FILE *f = fopen(junk, "we");
        CHECK(f && fputs("not a database, not at all\n", f) >= 0);
        if (f)
                fclose(f);
        snprintf(args, sizeof args, "--database %s", junk);
        CHECK(run_writer(h, &out, args) == 2);
        CHECK(out && strstr(out, "not an SQLite"));
        free(out);
        snprintf(args, sizeof args, "--database %s --database %s", db, db);
        CHECK(run_writer(h, NULL, args) == 2);
        snprintf(args, sizeof args, "--database %s --freeze-timeout soon", db);
        CHECK(run_writer(h, NULL, args) == 2);
        snprintf(args, sizeof args, "--database %s surplus", db);
        CHECK(run_writer(h, NULL, args) == 2);
        /* Config: unknown keys and relative paths are refused too. */
        snprintf(cfg, sizeof cfg, "%s/bad.json", harness_dir(h));
        f = fopen(cfg, "we");
        CHECK(f && fprintf(f, "{\"databases\": [\"%s\"], \"colour\": \"blue\"}", db) > 0);
        if (f)
                fclose(f);
        snprintf(args, sizeof args, "--config %s", cfg);
        CHECK(run_writer(h, &out, args) == 2);
        CHECK(out && strstr(out, "unknown key"));
        free(out);
        f = fopen(cfg, "we");
        CHECK(f && fputs("{\"databases\": [\"db/app.db\"]}", f) >= 0);
        if (f)
                fclose(f);
        CHECK(run_writer(h, NULL, args) == 2);
        /* The strict JSON layer: a key given twice, and nesting past its depth limit. */
        f = fopen(cfg, "we");
        CHECK(f && fprintf(f, "{\"databases\": [\"%s\"], \"name\": \"a\", \"name\": \"b\"}", db) > 0);
        if (f)
                fclose(f);
        CHECK(run_writer(h, &out, args) == 2);
        CHECK(out && strstr(out, "name: repeated key"));
        free(out);
        f = fopen(cfg, "we");
        CHECK(f && fprintf(f, "{\"databases\": [\"%s\"], \"name\": %s\"deep\"%s}", db,
                           "[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]") > 0);
        if (f)
                fclose(f);
        CHECK(run_writer(h, &out, args) == 2);
        CHECK(out && strstr(out, "cannot read configuration"));
        free(out);
        /* A good config and a socket where no vssd listens: exit 1 (by default it would wait). */
        f = fopen(cfg, "we");
        CHECK(f && fprintf(f, "{\"databases\": [\"%s\"], \"name\": \"cfg\", \"freeze_timeout_ms\": 5000}", db) > 0);
        if (f)
                fclose(f);
        snprintf(args, sizeof args, "--config %s --socket %s/nobody.sock --no-reconnect", cfg, harness_dir(h));
        CHECK(run_writer(h, NULL, args) == 1);

        CHECK(run_writer(h, &out, "--help") == 0);
        const char *const options[] = { "--database", "--config", "--name", "--freeze-timeout", "--busy-timeout",
                                        "--socket", "--help", "--version", "Exit status", "VSS_SOCKET" };
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                if (!out || !strstr(out, options[i])) {
                        fprintf(stderr, "--help does not mention %s\n", options[i]);
                        test_failures++;
                }
        free(out);
        CHECK(run_writer(h, &out, "--version") == 0);
        CHECK(out && strstr(out, "vss-writer-sqlite"));
        free(out);
        harness_free(h);
}

/* sqlite-fifo-journal: whoever may write a database's directory puts a FIFO where its rollback
 * journal would be. SQLite's hot-journal check opens it, which would block the writer for good
 * (its freeze window, its locks on the other databases). The backup fails instead, the writer
 * still answers, and with the FIFO gone the next backup succeeds. */
static void test_fifo_journal(void) {
        Harness *h = harness_new(NULL);
        char a[PATH_MAX], b[PATH_MAX], arg_a[PATH_MAX + 8], arg_b[PATH_MAX + 8], fifo[PATH_MAX + 16];
        char dest[PATH_MAX], err[512];
        snprintf(a, sizeof a, "%s", make_db(h, "a", 10));
        snprintf(b, sizeof b, "%s", make_db(h, "b", 10));
        snprintf(fifo, sizeof fifo, "%s-journal", b);
        CHECK(mkfifo(fifo, 0644) == 0);
        snprintf(arg_a, sizeof arg_a, "a=%s", a);
        snprintf(arg_b, sizeof arg_b, "b=%s", b);
        const char *const args[] = { "--database", arg_a, "--database", arg_b, NULL };
        start_writer(h, args);
        snprintf(dest, sizeof dest, "%s/backup1", harness_dir(h));
        pid_t p = backup_in_background(h, dest);
        int st = reap(p, 60000);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
        CHECK(try_insert(a, 2000, err, sizeof err) == SQLITE_OK); /* a's lock, if taken, was let go */
        CHECK(unlink(fifo) == 0);
        snprintf(dest, sizeof dest, "%s/backup2", harness_dir(h));
        p = backup_in_background(h, dest);
        st = reap(p, 60000);
        CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        stop_writer();
        harness_free(h);
}

int main(int argc, char *argv[]) {
        static const TestCase cases[] = {
                { "sqlite-fifo-journal", test_fifo_journal },
                { "sqlite-backup-under-load", test_backup_under_load },
                { "sqlite-restore-refused-while-open", test_restore_refused_while_open },
                { "sqlite-restore-refused-other-user", test_restore_refused_other_user },
                { "sqlite-lock-held-during-freeze", test_lock_held_during_freeze },
                { "sqlite-restore-integrity-failure", test_restore_integrity_failure },
                { "sqlite-restore-drops-stale-journal", test_restore_drops_stale_journal },
                { "sqlite-bad-usage", test_bad_usage },
                { "sqlite-checkpoint-busy", test_checkpoint_busy },
                { "sqlite-consistent-wal", test_bank_wal },
                { "sqlite-consistent-delete", test_bank_delete },
                { "sqlite-consistent-truncate", test_bank_truncate },
                { "sqlite-consistent-persist", test_bank_persist },
                { NULL, NULL },
        };
        int r = test_main(argc, argv, cases);
        stop_writer();
        return r;
}
