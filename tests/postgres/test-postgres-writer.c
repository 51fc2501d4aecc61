/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-postgres against the real vssd, vssbackup and a real PostgreSQL 15 cluster of its own
 * (run as the postgres user, on a Unix socket in the test directory): a backup taken while pgbench
 * writes restores to a cluster that starts and keeps pgbench's invariants; a restore while the
 * server runs is refused before anything is written; failures carry PostgreSQL's messages. */

#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/common.h"
#include "tests/harness.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"
#define PG_USER "postgres"

/* Clusters started by the test, stopped at exit whatever happened. */
static char started[4][PATH_MAX];
static size_t n_started;
static pid_t writer_pid, pgbench_pid;

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
        char cmd[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void pg_stop(const char *data, const char *how) {
        (void) sh("runuser -u " PG_USER " -- " PG_BIN "/pg_ctl -D '%s' -m %s -w -t 60 stop >/dev/null 2>&1", data, how);
        for (size_t i = 0; i < n_started; i++)
                if (streq(started[i], data))
                        started[i][0] = '\0';
}

static void stop_all(void) {
        if (pgbench_pid > 0) {
                kill(pgbench_pid, SIGKILL);
                waitpid(pgbench_pid, NULL, 0);
                pgbench_pid = 0;
        }
        for (size_t i = 0; i < n_started; i++)
                if (started[i][0])
                        pg_stop(started[i], "immediate");
        n_started = 0;
}

static void on_term(int sig) {
        /* Not async-signal-safe; good enough for a test killed by its runner: the servers go,
         * and exit() runs the harness's cleanup (writers, vssd, loop devices, directory). */
        stop_all();
        exit(128 + sig);
}

/* The test's directory, traversable by the postgres user, and a directory owned by it. */
static void pg_dir(Harness *h, const char *name, char *buf, size_t size) {
        struct passwd *pw = getpwnam(PG_USER);
        CHECK(chmod(harness_dir(h), 0755) == 0);
        snprintf(buf, size, "%s/%s", harness_dir(h), name);
        CHECK(mkdir(buf, 0700) == 0 || errno == EEXIST);
        CHECK(pw && chown(buf, pw->pw_uid, pw->pw_gid) == 0);
}

static bool pg_start(const char *base, const char *data, int port) {
        int r = sh("runuser -u " PG_USER " -- " PG_BIN "/pg_ctl -D '%s' -w -t 120 -l '%s/server-%d.log' "
                   "-o \"-k '%s' -p %d -c listen_addresses='' -c fsync=off\" start >/dev/null 2>&1",
                   data, base, port, base, port);
        if (r != 0) {
                fprintf(stderr, "pg_ctl start of %s failed:\n", data);
                (void) sh("cat '%s/server-%d.log' >&2", base, port);
                return false;
        }
        if (n_started < ELEMENTSOF(started))
                snprintf(started[n_started++], PATH_MAX, "%s", data);
        return true;
}

/* initdb and start a cluster at BASE/data. */
static bool pg_create(Harness *h, const char *name, char *base, char *data, int port) {
        pg_dir(h, name, base, PATH_MAX);
        snprintf(data, PATH_MAX, "%s/data", base);
        if (sh("runuser -u " PG_USER " -- " PG_BIN "/initdb -D '%s' -A trust -U " PG_USER " -E UTF8 --no-sync "
               ">'%s/initdb.log' 2>&1", data, base) != 0) {
                fprintf(stderr, "initdb failed\n");
                (void) sh("cat '%s/initdb.log' >&2", base);
                return false;
        }
        return pg_start(base, data, port);
}

/* One value from psql, or NULL. */
static char *psql(Harness *h, const char *base, int port, const char *sql) {
        char *out = NULL;
        int st = harness_sh(h, &out, "psql -X -At -h '%s' -p %d -U " PG_USER " -d postgres -c \"%s\" 2>&1", base, port, sql);
        if (st != 0) {
                fprintf(stderr, "psql `%s` failed: %s\n", sql, out ? out : "");
                free(out);
                return NULL;
        }
        out[strcspn(out, "\n")] = '\0';
        return out;
}

static void writer_start(Harness *h, const char *dsn, const char *label_dir) {
        char log[PATH_MAX];
        snprintf(log, sizeof(log), "%s/writer-postgres.log", harness_dir(h));
        pid_t pid = fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                execl(WRITER_POSTGRES_PATH, "vss-writer-postgres", "--dsn", dsn, "--label-dir", label_dir, "--socket",
                      harness_socket(h), (char *) NULL);
                _exit(127);
        }
        writer_pid = pid;
        for (int i = 0; i < 1000; i++) {
                char *out = NULL;
                bool found = harness_sh(h, &out, "vssadmin list writers") == 0 && out &&
                             strstr(out, "Writer name: 'postgres'");
                free(out);
                if (found)
                        return;
                sleep_ms(20);
        }
        fprintf(stderr, "vss-writer-postgres did not subscribe\n");
        test_failures++;
}

/* Stops the writer: it must exit 0 on SIGTERM. */
static void writer_stop(void) {
        int st = 0;
        if (writer_pid <= 0)
                return;
        kill(writer_pid, SIGTERM);
        for (int i = 0; i < 500 && waitpid(writer_pid, &st, WNOHANG) == 0; i++)
                sleep_ms(10);
        if (waitpid(writer_pid, &st, WNOHANG) == 0) {
                kill(writer_pid, SIGKILL);
                waitpid(writer_pid, &st, 0);
        }
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        writer_pid = 0;
}

static void teardown(Harness *h) {
        writer_stop();
        stop_all();
        harness_free(h);
}

static bool component_succeeded(json_object *out, const char *writer, const char *name) {
        json_object *cs = NULL, *v = NULL;
        if (!out || !json_object_object_get_ex(out, "components", &cs))
                return false;
        for (size_t i = 0; i < json_object_array_length(cs); i++) {
                json_object *c = json_object_array_get_idx(cs, i);
                if (streq(json_str(c, "writer"), writer) && streq(json_str(c, "name"), name))
                        return json_object_object_get_ex(c, "succeeded", &v) && json_object_get_boolean(v);
        }
        return false;
}

static int test_port(int k) {
        return 20000 + (getpid() % 10000) * 4 + k;
}

static void dsn_for(char *buf, size_t size, const char *base, int port, const char *user) {
        snprintf(buf, size, "host=%s port=%d user=%s dbname=postgres", base, port, user);
}

static bool writer_log_has(Harness *h, const char *what) {
        char *out = NULL;
        bool found = harness_sh(h, &out, "grep -F -- '%s' %s/writer-postgres.log", what, harness_dir(h)) == 0;
        free(out);
        return found;
}

/* pgbench writing while the backup is taken; restore in place into a fresh data directory (the
 * original moved aside) and start a server on it: pgbench's balances agree. */
static void roundtrip(bool btrfs) {
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX], dsn[PATH_MAX + 64], labels[PATH_MAX], backup[PATH_MAX];
        int port = test_port(0), port2 = test_port(1), st;

        if (btrfs) {
                /* The cluster on a btrfs subvolume of its own: one atomic snapshot holds all of it. */
                char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "1G");
                CHECK(chmod(harness_dir(h), 0755) == 0);
                CHECK(sh("btrfs -q subvolume create %s/pg >/dev/null && chown " PG_USER ": %s/pg && chmod 700 %s/pg", mnt,
                         mnt, mnt) == 0);
                snprintf(base, sizeof(base), "%s/pg", mnt);
                snprintf(data, sizeof(data), "%s/data", base);
                CHECK(sh("chmod 755 %s && runuser -u " PG_USER " -- " PG_BIN "/initdb -D '%s' -A trust -U " PG_USER
                         " --no-sync >/dev/null 2>&1", mnt, data) == 0);
                if (!pg_start(base, data, port)) {
                        test_failures++;
                        return teardown(h);
                }
        } else if (!pg_create(h, "pg", base, data, port)) {
                test_failures++;
                return teardown(h);
        }
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        /* On btrfs, the backup is kept there too: a directory backup made on ext4 carries the
         * extents flag ('e'), which vssbackup fails to set on btrfs ("Failed to set file flags"). */
        if (btrfs)
                snprintf(backup, sizeof(backup), "%s/../backup", base);
        else
                snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "pgbench -h '%s' -p %d -U " PG_USER " -i -s 1 -q postgres >/dev/null 2>&1", base, port) == 0);
        dsn_for(dsn, sizeof(dsn), base, port, PG_USER);
        writer_start(h, dsn, labels);

        /* Writes all along: two clients for up to two minutes, stopped once the backup is done. */
        pgbench_pid = fork();
        if (pgbench_pid == 0) {
                char port_s[16], log[PATH_MAX];
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                snprintf(port_s, sizeof(port_s), "%d", port);
                snprintf(log, sizeof(log), "%s/pgbench.log", harness_dir(h));
                int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execlp("pgbench", "pgbench", "-h", base, "-p", port_s, "-U", PG_USER, "-c", "2", "-T", "120", "postgres",
                       (char *) NULL);
                _exit(127);
        }
        /* Under way before the backup starts. */
        for (int i = 0; i < 500; i++) {
                _cleanup_free_ char *n = psql(h, base, port, "select count(*) from pgbench_history");
                if (n && atoi(n) > 50)
                        break;
                sleep_ms(20);
        }
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json%s", backup, "");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        fprintf(stderr, "backup under load took %.2f s\n",
                (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK(component_succeeded(out, "postgres", "cluster"));
        json_object *w = json_phase(out, "do-snapshot-set", "postgres");
        CHECK_STR(json_str(w, "state_name"), "WaitingForBackupComplete");
        CHECK_STR(json_str(json_phase(out, "backup-complete", "postgres"), "state_name"), "Stable");
        json_object_put(out);
        /* Still writing while the copy was cut. */
        CHECK(waitpid(pgbench_pid, NULL, WNOHANG) == 0);
        kill(pgbench_pid, SIGTERM);
        waitpid(pgbench_pid, NULL, 0);
        pgbench_pid = 0;
        /* The live data directory carries no marker and no label afterwards. */
        char p[PATH_MAX + 64];
        snprintf(p, sizeof(p), "%s/openvss-snapshot-set", data);
        CHECK(access(p, F_OK) < 0);
        snprintf(p, sizeof(p), "%s/backup_label", data);
        CHECK(access(p, F_OK) < 0);
        /* Which path was taken, and its traces; the provider was the one the mode assumed. */
        CHECK(harness_sh(h, NULL, "grep -Eq '\"provider\": *\"%s\"' %s/openvss/backup-components.json",
                         btrfs ? "btrfs" : "file", backup) == 0);
        if (btrfs)
                CHECK(writer_log_has(h, "prepare-snapshot: crash-consistent"));
        else {
                CHECK(writer_log_has(h, "base backup started at"));
                CHECK(harness_sh(h, NULL, "ls %s/*/backup_label >/dev/null && ls %s/*/pg_wal/0* >/dev/null", labels, labels) == 0);
        }
        /* The copy in the backup: no runtime files. */
        snprintf(p, sizeof(p), "%s/data%s/postmaster.pid", backup, data);
        CHECK(access(p, F_OK) < 0);
        snprintf(p, sizeof(p), "%s/data%s/PG_VERSION", backup, data);
        CHECK(access(p, F_OK) == 0);

        /* Stop the server and move its data away: the restore makes a fresh data directory. */
        pg_stop(data, "fast");
        CHECK(sh("mv '%s' '%s.orig'", data, data) == 0);

        if (!btrfs) {
                /* Restored under --to: vssbackup names the new place in the component's new
                 * targets, and PostRestore prepares the copy there. */
                char alt[PATH_MAX], altdata[2 * PATH_MAX + 8];
                snprintf(alt, sizeof(alt), "%s/alt", harness_dir(h));
                snprintf(altdata, sizeof(altdata), "%s%s", alt, data);
                out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", backup, alt);
                CHECK(st == 0);
                CHECK_STR(json_str(json_phase(out, "pre-restore", "postgres"), "state_name"), "Stable");
                CHECK_STR(json_str(json_phase(out, "post-restore", "postgres"), "state_name"), "Stable");
                json_object_put(out);
                snprintf(p, sizeof(p), "%s/backup_label", altdata);
                CHECK(access(p, F_OK) == 0);
                /* The directories vssbackup made above it must let the postgres user through. */
                CHECK(sh("d=$(dirname %s); while [ \"$d\" != / ]; do chmod o+x \"$d\"; d=$(dirname \"$d\"); done",
                         altdata) == 0);
                if (pg_start(base, altdata, test_port(2))) {
                        _cleanup_free_ char *sa = psql(h, base, test_port(2), "select sum(abalance) from pgbench_accounts");
                        _cleanup_free_ char *sb = psql(h, base, test_port(2), "select sum(bbalance) from pgbench_branches");
                        _cleanup_free_ char *sh_ = psql(h, base, test_port(2), "select sum(delta) from pgbench_history");
                        CHECK(sa && sb && sh_ && streq(sa, sb) && streq(sa, sh_));
                        pg_stop(altdata, "fast");
                } else
                        test_failures++;
        }
        /* And in place, into the empty original location. */
        out = harness_json(h, &st, "vssbackup restore --from %s --json%s", backup, "");
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK_STR(json_str(json_phase(out, "pre-restore", "postgres"), "state_name"), "Stable");
        CHECK_STR(json_str(json_phase(out, "post-restore", "postgres"), "state_name"), "Stable");
        json_object_put(out);
        /* The server was down at restore: Identify published the layout last seen. */
        CHECK(writer_log_has(h, "publishing the layout last seen"));
        snprintf(p, sizeof(p), "%s/backup_label", data);
        CHECK(btrfs ? access(p, F_OK) < 0 : access(p, F_OK) == 0);
        snprintf(p, sizeof(p), "%s/openvss-snapshot-set", data);
        CHECK(access(p, F_OK) < 0);
        /* Owner and mode came back with the files; PostgreSQL insists on them. */
        struct stat sst;
        struct passwd *pw = getpwnam(PG_USER);
        CHECK(stat(data, &sst) == 0 && pw && sst.st_uid == pw->pw_uid && (sst.st_mode & 0777) == 0700);

        if (!pg_start(base, data, port2)) {
                test_failures++;
                return teardown(h);
        }
        _cleanup_free_ char *a = psql(h, base, port2, "select sum(abalance) from pgbench_accounts");
        _cleanup_free_ char *t = psql(h, base, port2, "select sum(tbalance) from pgbench_tellers");
        _cleanup_free_ char *b = psql(h, base, port2, "select sum(bbalance) from pgbench_branches");
        _cleanup_free_ char *hs = psql(h, base, port2, "select coalesce(sum(delta), 0) from pgbench_history");
        _cleanup_free_ char *n = psql(h, base, port2, "select count(*) from pgbench_history");
        fprintf(stderr, "restored: %s transactions, balances %s %s %s, history %s\n", n, a, t, b, hs);
        CHECK(a && t && b && hs && n);
        CHECK_STR(a, t);
        CHECK_STR(a, b);
        CHECK_STR(a, hs);
        CHECK(n && atoi(n) > 50);
        /* Recovery went the way the mode says. */
        if (!btrfs) {
                CHECK(harness_sh(h, NULL, "grep -q 'starting backup recovery' %s/server-%d.log", base, port2) == 0);
                snprintf(p, sizeof(p), "%s/backup_label.old", data);
                CHECK(access(p, F_OK) == 0);
        }
        CHECK(harness_sh(h, NULL, "grep -q 'consistent recovery state reached\\|database system is ready' %s/server-%d.log",
                         base, port2) == 0);
        char *log = NULL;
        (void) harness_sh(h, &log, "grep -E 'snapshot|restore' %s/writer-postgres.log", harness_dir(h));
        fprintf(stderr, "%s", log ? log : "");
        free(log);
        teardown(h);
}

/* pgbench with two clients for up to two minutes, in the background; returns once it has written. */
static void pgbench_start(Harness *h, const char *base, int port) {
        pgbench_pid = fork();
        if (pgbench_pid == 0) {
                char port_s[16], log[PATH_MAX];
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                snprintf(port_s, sizeof(port_s), "%d", port);
                snprintf(log, sizeof(log), "%s/pgbench.log", harness_dir(h));
                int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execlp("pgbench", "pgbench", "-h", base, "-p", port_s, "-U", PG_USER, "-c", "2", "-T", "120", "postgres",
                       (char *) NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                _cleanup_free_ char *n = psql(h, base, port, "select count(*) from pgbench_history");
                if (n && atoi(n) > 50)
                        break;
                sleep_ms(20);
        }
}

/* Stops pgbench, which must still have been running. */
static void pgbench_stop(void) {
        CHECK(waitpid(pgbench_pid, NULL, WNOHANG) == 0);
        kill(pgbench_pid, SIGTERM);
        waitpid(pgbench_pid, NULL, 0);
        pgbench_pid = 0;
}

/* A restored cluster, started on port: it went through recovery from the base backup, pg_amcheck
 * finds its tables and indexes sound, and pgbench's balances agree. */
static void check_restored(Harness *h, const char *base, int port) {
        _cleanup_free_ char *a = psql(h, base, port, "select sum(abalance) from pgbench_accounts");
        _cleanup_free_ char *t = psql(h, base, port, "select sum(tbalance) from pgbench_tellers");
        _cleanup_free_ char *b = psql(h, base, port, "select sum(bbalance) from pgbench_branches");
        _cleanup_free_ char *hs = psql(h, base, port, "select coalesce(sum(delta), 0) from pgbench_history");
        _cleanup_free_ char *n = psql(h, base, port, "select count(*) from pgbench_history");
        fprintf(stderr, "restored: %s transactions, balances %s %s %s, history %s\n", n, a, t, b, hs);
        CHECK(a && t && b && hs && n);
        CHECK_STR(a, t);
        CHECK_STR(a, b);
        CHECK_STR(a, hs);
        CHECK(n && atoi(n) > 50);
        CHECK(harness_sh(h, NULL, "grep -q 'starting backup recovery' %s/server-%d.log", base, port) == 0);
        CHECK(harness_sh(h, NULL, "grep -q 'consistent recovery state reached' %s/server-%d.log", base, port) == 0);
        char *out = NULL;
        int st = harness_sh(h, &out, PG_BIN "/pg_amcheck -h '%s' -p %d -U " PG_USER " --install-missing --heapallindexed "
                                     "-d postgres 2>&1", base, port);
        if (st != 0)
                fprintf(stderr, "pg_amcheck failed (%d): %s\n", st, out ? out : "");
        CHECK(st == 0);
        free(out);
}

/* Where the symbolic link dir/name points, or "". */
static char *link_of(const char *dir, const char *name) {
        char path[PATH_MAX], target[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        target[n < 0 ? 0 : n] = '\0';
        return strdup(target);
}

/* A cluster with its WAL outside the data directory (initdb --waldir) and pgbench's tables in a
 * tablespace of its own, backed up while pgbench writes (a base backup: the file provider copies
 * file by file). The archive alone restores: with the originals and the writer's label directory
 * gone, restored under --to (pg_wal and the pg_tblspc link, and tablespace_map, moved to the
 * restored places) and in place with a writer that never saw the cluster, the cluster starts,
 * recovers from the base backup, passes pg_amcheck and keeps pgbench's balances. */
static void test_self_contained(void) {
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX + 8], wal[PATH_MAX + 8], ts[PATH_MAX + 8], dsn[PATH_MAX + 64];
        char labels[PATH_MAX], backup[PATH_MAX], alt[PATH_MAX], altdata[2 * PATH_MAX + 16], p[3 * PATH_MAX];
        int port = test_port(0), st;

        pg_dir(h, "pg", base, sizeof(base));
        snprintf(data, sizeof(data), "%s/data", base);
        snprintf(wal, sizeof(wal), "%s/wal", base);
        snprintf(ts, sizeof(ts), "%s/ts", base);
        if (sh("runuser -u " PG_USER " -- " PG_BIN "/initdb -D '%s' --waldir '%s' -A trust -U " PG_USER " -E UTF8 "
               "--no-sync >'%s/initdb.log' 2>&1 && runuser -u " PG_USER " -- mkdir -m 700 '%s'", data, wal, base, ts) != 0 ||
            !pg_start(base, data, port)) {
                test_failures++;
                return teardown(h);
        }
        snprintf(p, sizeof(p), "create tablespace ts location '%s'", ts);
        _cleanup_free_ char *r1 = psql(h, base, port, p);
        CHECK(r1);
        CHECK(harness_sh(h, NULL, "pgbench -h '%s' -p %d -U " PG_USER " -i -s 1 -q --tablespace=ts --index-tablespace=ts "
                                  "postgres >/dev/null 2>&1", base, port) == 0);
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup.tar", harness_dir(h));
        dsn_for(dsn, sizeof(dsn), base, port, PG_USER);
        writer_start(h, dsn, labels);
        pgbench_start(h, base, port);

        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", backup);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK(component_succeeded(out, "postgres", "cluster"));
        json_object_put(out);
        pgbench_stop();
        CHECK(writer_log_has(h, "base backup started at"));
        /* The label, the map and the WAL to the backup's end are in the archive, as the cluster's
         * files; the document says where the writer made them. */
        CHECK(harness_sh(h, NULL, "tar -tf %s 2>/dev/null | grep -qx 'data%s/backup_label'", backup, data) == 0);
        CHECK(harness_sh(h, NULL, "tar -tf %s 2>/dev/null | grep -qx 'data%s/tablespace_map'", backup, data) == 0);
        /* json-c writes '/' as '\/'. */
        CHECK(harness_sh(h, NULL, "tar -xOf %s openvss/backup-components.json 2>/dev/null | tr -d '\\\\' | "
                                  "grep -q '\"stored_as\": *\"%s\"'", backup, wal) == 0);

        /* Another machine: nothing of the cluster, nor of the writer's label directory, is left. */
        pg_stop(data, "fast");
        CHECK(sh("mv '%s' '%s.orig' && mv '%s' '%s.orig' && mv '%s' '%s.orig' && mv '%s' '%s.orig'", data, data, wal, wal,
                 ts, ts, labels, labels) == 0);

        /* Restored elsewhere: the links and the map name the restored places. */
        snprintf(alt, sizeof(alt), "%s/alt", harness_dir(h));
        snprintf(altdata, sizeof(altdata), "%s%s", alt, data);
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", backup, alt);
        CHECK(st == 0);
        CHECK_STR(json_str(json_phase(out, "post-restore", "postgres"), "state_name"), "Stable");
        json_object_put(out);
        _cleanup_free_ char *lw = link_of(altdata, "pg_wal");
        snprintf(p, sizeof(p), "%s%s", alt, wal);
        CHECK_STR(lw, p);
        _cleanup_free_ char *spc = NULL;
        CHECK(harness_sh(h, &spc, "readlink %s/pg_tblspc/*", altdata) == 0);
        snprintf(p, sizeof(p), "%s%s\n", alt, ts);
        CHECK_STR(spc, p);
        CHECK(harness_sh(h, NULL, "grep -q ' %s%s$' %s/tablespace_map", alt, ts, altdata) == 0);
        /* Nothing went to the original places through the links. */
        CHECK(access(data, F_OK) < 0 && access(wal, F_OK) < 0 && access(ts, F_OK) < 0 && access(labels, F_OK) < 0);
        CHECK(sh("d=$(dirname %s); while [ \"$d\" != / ]; do chmod o+x \"$d\"; d=$(dirname \"$d\"); done", altdata) == 0);
        if (pg_start(base, altdata, port + 1)) {
                check_restored(h, base, port + 1);
                _cleanup_free_ char *loc = psql(h, base, port + 1,
                                                "select pg_tablespace_location(oid) from pg_tablespace where spcname = 'ts'");
                snprintf(p, sizeof(p), "%s%s", alt, ts);
                CHECK_STR(loc, p);
                pg_stop(altdata, "fast");
        } else
                test_failures++;

        /* In place, with a writer that never saw the cluster (it fails Identify and takes no part):
         * the archive's files alone make a cluster that starts. */
        writer_stop();
        snprintf(p, sizeof(p), "%s/labels-new", harness_dir(h));
        writer_start(h, dsn, p);
        out = harness_json(h, &st, "vssbackup restore --from %s --json", backup);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK(!json_phase(out, "post-restore", "postgres"));
        json_object_put(out);
        CHECK(access(labels, F_OK) < 0);
        _cleanup_free_ char *lw2 = link_of(data, "pg_wal");
        CHECK_STR(lw2, wal);
        if (pg_start(base, data, port + 2)) {
                check_restored(h, base, port + 2);
                _cleanup_free_ char *loc = psql(h, base, port + 2,
                                                "select pg_tablespace_location(oid) from pg_tablespace where spcname = 'ts'");
                CHECK_STR(loc, ts);
        } else
                test_failures++;
        teardown(h);
}

static void test_roundtrip(void) {
        roundtrip(false);
}

/* True (and the test skipped) without mkfs.btrfs. */
static bool btrfs_missing(void) {
        if (access("/usr/sbin/mkfs.btrfs", X_OK) == 0 || access("/sbin/mkfs.btrfs", X_OK) == 0)
                return false;
        printf("# skipped: no mkfs.btrfs (btrfs-progs)\n");
        return true;
}

static void test_roundtrip_btrfs(void) {
        if (btrfs_missing())
                return;
        roundtrip(true);
}

/* The writer started for the cluster at base (port) backs it up with the btrfs provider into
 * mnt/backup, as a base backup (backup_label), not a crash-consistent copy. */
static void backup_is_base_backup(Harness *h, const char *mnt, const char *base, int port) {
        char dsn[PATH_MAX + 64], labels[PATH_MAX], backup[PATH_MAX + 16];
        int st;
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", mnt);
        dsn_for(dsn, sizeof(dsn), base, port, PG_USER);
        writer_start(h, dsn, labels);
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --provider btrfs --json", backup);
        CHECK(st == 0);
        json_object_put(out);
        CHECK(writer_log_has(h, "base backup started at"));
        CHECK(!writer_log_has(h, "crash-consistent"));
        /* A shadow copy alone lacks the files the writer made after the cut: vssadmin says so. */
        _cleanup_free_ char *said = NULL;
        CHECK(harness_sh(h, &said, "vssadmin create shadow --for %s/data --provider btrfs --json 2>&1 >/dev/null; "
                         "vssadmin delete shadows --all >/dev/null", base) == 0);
        CHECK(said && strstr(said, "warning: component 'cluster'") && strstr(said, "vssbackup backup"));
        if (said && !strstr(said, "warning: component"))
                fprintf(stderr, "vssadmin said: %s\n", said);
}

/* A cluster on one btrfs subvolume: the writer makes a crash-consistent copy, which only a
 * point-in-time cut restores. Backed up with the file provider, which copies file by file (vssd
 * holds nothing here), the component fails, saying why, rather than store a torn cluster. */
static void test_crash_consistent_needs_cut(void) {
        if (btrfs_missing())
                return;
        Harness *h = harness_new("{\"hold_filesystems\": []}"); /* nothing held: the file provider copies unheld */
        char base[PATH_MAX], data[PATH_MAX + 8], dsn[PATH_MAX + 64], labels[PATH_MAX], backup[PATH_MAX + 16];
        int port = test_port(0);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "1G");
        CHECK(chmod(harness_dir(h), 0755) == 0);
        snprintf(base, sizeof(base), "%s/pg", mnt);
        snprintf(data, sizeof(data), "%s/data", base);
        CHECK(sh("chmod 755 %s && btrfs -q subvolume create %s >/dev/null && chown " PG_USER ": %s && chmod 700 %s && "
                 "runuser -u " PG_USER " -- " PG_BIN "/initdb -D '%s' -A trust -U " PG_USER " --no-sync >/dev/null 2>&1",
                 mnt, base, base, base, data) == 0);
        if (!pg_start(base, data, port)) {
                test_failures++;
                return teardown(h);
        }
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", mnt);
        dsn_for(dsn, sizeof(dsn), base, port, PG_USER);
        writer_start(h, dsn, labels);
        _cleanup_free_ char *said = NULL;
        CHECK(harness_sh(h, &said, "vssbackup backup --to %s --provider file 2>&1", backup) != 0);
        CHECK(writer_log_has(h, "crash-consistent"));
        CHECK(said && strstr(said, "was made crash-consistent") && strstr(said, "not point-in-time"));
        if (said && !strstr(said, "was made crash-consistent"))
                fprintf(stderr, "vssbackup said: %s\n", said);
        /* The btrfs provider's snapshot is one cut: the same backup succeeds. */
        CHECK(harness_sh(h, NULL, "rm -rf %s && vssbackup backup --to %s --provider btrfs --quiet", backup, backup) == 0);
        teardown(h);
}

/* A cluster on one btrfs subvolume with a tablespace beside its data directory: a requester takes
 * the two as two volumes, snapshotted one after the other, so the writer makes a base backup
 * (backup_label), not a crash-consistent one. */
static void test_btrfs_tablespace_beside(void) {
        if (btrfs_missing())
                return;
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX + 8], ts[PATH_MAX + 8], q[PATH_MAX + 64];
        int port = test_port(1);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "1G");
        CHECK(chmod(harness_dir(h), 0755) == 0);
        snprintf(base, sizeof(base), "%s/pg", mnt);
        snprintf(data, sizeof(data), "%s/data", base);
        snprintf(ts, sizeof(ts), "%s/ts", base);
        CHECK(sh("chmod 755 %s && btrfs -q subvolume create %s >/dev/null && chown " PG_USER ": %s && chmod 700 %s && "
                 "runuser -u " PG_USER " -- mkdir -m 700 %s && runuser -u " PG_USER " -- " PG_BIN "/initdb -D '%s' -A "
                 "trust -U " PG_USER " --no-sync >/dev/null 2>&1", mnt, base, base, base, ts, data) == 0);
        if (!pg_start(base, data, port)) {
                test_failures++;
                return teardown(h);
        }
        snprintf(q, sizeof(q), "create tablespace ts location '%s'", ts);
        _cleanup_free_ char *r1 = psql(h, base, port, q);
        CHECK(r1);
        backup_is_base_backup(h, mnt, base, port);
        teardown(h);
}

/* The cluster on one btrfs subvolume, but its pg_wal elsewhere: a filesystem mounted there (a
 * tmpfs; mount) or a btrfs subvolume of its own nested there (no mount table shows it). The data
 * directory's snapshot would hold an empty pg_wal, so the writer makes a base backup
 * (backup_label and the WAL saved), not a crash-consistent one. */
static void wal_elsewhere(bool mount) {
        if (btrfs_missing())
                return;
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX + 8], wal[3 * PATH_MAX];
        int port = test_port(3);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "1G");
        CHECK(chmod(harness_dir(h), 0755) == 0);
        snprintf(base, sizeof(base), "%s/pg", mnt);
        snprintf(data, sizeof(data), "%s/data", base);
        if (mount)
                snprintf(wal, sizeof(wal), "mkdir -m 700 %s/pg_wal && mount -t tmpfs -o size=200m,mode=700 openvss-test %s/pg_wal",
                         data, data);
        else
                snprintf(wal, sizeof(wal), "btrfs -q subvolume create %s/pg_wal >/dev/null && chmod 700 %s/pg_wal", data, data);
        CHECK(sh("chmod 755 %s && btrfs -q subvolume create %s >/dev/null && chown " PG_USER ": %s && chmod 700 %s && "
                 "runuser -u " PG_USER " -- " PG_BIN "/initdb -D '%s' -A trust -U " PG_USER " --no-sync >/dev/null 2>&1 && "
                 "mv %s/pg_wal %s/pg_wal.disk && %s && cp -a %s/pg_wal.disk/. %s/pg_wal/ && chown " PG_USER ": %s/pg_wal",
                 mnt, base, base, base, data, data, data, wal, data, data, data) == 0);
        if (!pg_start(base, data, port)) {
                test_failures++;
                if (mount)
                        (void) sh("umount %s/pg_wal", data);
                return teardown(h);
        }
        backup_is_base_backup(h, mnt, base, port);
        writer_stop();
        pg_stop(data, "fast");
        if (mount)
                CHECK(sh("umount %s/pg_wal", data) == 0);
        teardown(h);
}

static void test_btrfs_wal_mount(void) {
        wal_elsewhere(true);
}

static void test_btrfs_wal_subvolume(void) {
        wal_elsewhere(false);
}

/* A restore while the server runs is refused at PreRestore and writes nothing. */
static void test_prerestore_running(void) {
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX], dsn[PATH_MAX + 64], labels[PATH_MAX], backup[PATH_MAX], p[PATH_MAX + 64];
        int port = test_port(2), st;
        if (!pg_create(h, "pg", base, data, port)) {
                test_failures++;
                return teardown(h);
        }
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        dsn_for(dsn, sizeof(dsn), base, port, PG_USER);
        snprintf(p, sizeof(p), "%s/sentinel", data);
        CHECK(sh("echo before > '%s'", p) == 0);
        writer_start(h, dsn, labels);
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json%s", backup, "");
        CHECK(st == 0);
        json_object_put(out);
        CHECK(sh("echo after > '%s'", p) == 0);
        _cleanup_free_ char *before = NULL;
        CHECK(harness_sh(h, &before, "cd '%s' && find base global -type f -printf '%%p %%s %%T@\\n' | sort", data) == 0);

        out = harness_json(h, &st, "vssbackup restore --from %s --json%s", backup, "");
        CHECK(st == 1);
        CHECK_STR(json_str(out, "result"), "failed");
        json_object *w = json_phase(out, "pre-restore", "postgres");
        CHECK_STR(json_str(w, "state_name"), "FailedAtPreRestore");
        CHECK_STR(json_str(w, "failure_name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        CHECK_STR(json_str(w, "application_message"), "PostgreSQL is running; stop it before restoring");
        json_object_put(out);
        /* Nothing written: the sentinel keeps its new content, the relation files are as they were. */
        _cleanup_free_ char *s = NULL, *after = NULL;
        CHECK(harness_sh(h, &s, "cat '%s'", p) == 0);
        CHECK_STR(s, "after\n");
        CHECK(harness_sh(h, &after, "cd '%s' && find base global -type f -printf '%%p %%s %%T@\\n' | sort", data) == 0);
        CHECK(before && after && streq(before, after));
        _cleanup_free_ char *one = psql(h, base, port, "select 1");
        CHECK_STR(one, "1");

        /* A backup whose stamp names no snapshot set but a path ("set:../x"): PostRestore refuses
         * it before it touches anything by that name. */
        pg_stop(data, "fast");
        snprintf(p, sizeof(p), "%s/openvss/backup-components.json", backup);
        CHECK(sh("sed -i -E 's/set:[0-9a-f-]{36}/set:..\\/..\\/x/' '%s' && grep -q 'set:\\.\\./\\.\\./x' '%s'", p, p) == 0);
        snprintf(p, sizeof(p), "%s/to", harness_dir(h));
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json%s", backup, p, "");
        CHECK(st == 1);
        w = json_phase(out, "post-restore", "postgres");
        CHECK_STR(json_str(w, "state_name"), "FailedAtPostRestore");
        CHECK(strstr(json_str(w, "application_message"), "does not name the snapshot set") != NULL);
        json_object_put(out);
        teardown(h);
}

/* A restore in place over the cluster as it is now (server stopped) brings back the backup, not
 * what came after it: WAL written since must not roll the restored copy forward past it. */
static void test_restore_in_place_rewinds(void) {
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX], dsn[PATH_MAX + 64], labels[PATH_MAX], backup[PATH_MAX];
        int port = test_port(0), st;
        if (!pg_create(h, "pg", base, data, port)) {
                test_failures++;
                return teardown(h);
        }
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        snprintf(backup, sizeof(backup), "%s/backup", harness_dir(h));
        dsn_for(dsn, sizeof(dsn), base, port, PG_USER);
        free(psql(h, base, port, "create table t as select generate_series(1, 1000) as id"));
        /* A tablespace whose location another major version's cluster shares (its PG_99_...
         * directory): not this cluster's to back up, nor to prune at the restore. */
        char ts[PATH_MAX + 8], q[PATH_MAX + 64], other[PATH_MAX + 32];
        snprintf(ts, sizeof(ts), "%s/ts", base);
        snprintf(other, sizeof(other), "%s/PG_99_201901011", ts);
        CHECK(sh("runuser -u " PG_USER " -- mkdir -m 700 '%s' '%s' && echo theirs > '%s/file'", ts, other, other) == 0);
        snprintf(q, sizeof(q), "create tablespace ts location '%s'", ts);
        free(psql(h, base, port, q));
        free(psql(h, base, port, "create table t3 tablespace ts as select 1 as x"));
        writer_start(h, dsn, labels);
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", backup);
        CHECK(st == 0);
        json_object_put(out);
        CHECK(sh("test ! -e '%s/data%s'", backup, other) == 0);
        CHECK(sh("echo later > '%s/later'", other) == 0);
        /* The mistake the restore is to undo, in WAL segments the backup does not have. */
        free(psql(h, base, port, "insert into t select generate_series(1001, 2000)"));
        free(psql(h, base, port, "select pg_switch_wal()"));
        free(psql(h, base, port, "delete from t where id <= 500"));
        free(psql(h, base, port, "create table t2 (x int)"));
        free(psql(h, base, port, "select pg_switch_wal()"));
        pg_stop(data, "fast");

        out = harness_json(h, &st, "vssbackup restore --from %s --json", backup);
        CHECK(st == 0);
        CHECK_STR(json_str(json_phase(out, "post-restore", "postgres"), "state_name"), "Stable");
        /* pg_wal holds the backup's segments and no other: a later one left there would be
         * replayed past the backup whenever it continues the backup's last. */
        _cleanup_free_ char *wal = NULL, *stored = NULL;
        CHECK(harness_sh(h, &wal, "ls %s/pg_wal | grep -E '^[0-9A-F]{24}$'", data) == 0);
        CHECK(harness_sh(h, &stored, "ls %s/data%s/pg_wal | grep -E '^[0-9A-F]{24}$'", backup, data) == 0);
        CHECK(wal && stored && streq(wal, stored));
        /* The other cluster's directory in the shared location: untouched. */
        CHECK(sh("test -e '%s/later' && test -e '%s/file'", other, other) == 0);
        json_object_put(out);
        if (pg_start(base, data, port)) {
                _cleanup_free_ char *n = psql(h, base, port, "select count(*) || ' ' || min(id) || ' ' || max(id) from t");
                _cleanup_free_ char *t2 = psql(h, base, port, "select count(*) from pg_class where relname = 't2'");
                CHECK_STR(n, "1000 1 1000");
                CHECK_STR(t2, "0");
                pg_stop(data, "fast");
        } else
                test_failures++;
        teardown(h);
}

/* No server: Identify fails, retryable, with libpq's message. A role without privileges: the
 * backup fails at PrepareForSnapshot with PostgreSQL's message, nonretryable. */
/* postgres-config-outside: a cluster in Debian's layout, its postgresql.conf, pg_hba.conf and
 * pg_ident.conf in a directory of their own: the backup is made, and the writer's log names the
 * files it leaves to the system's configuration backup. */
static void test_config_outside(void) {
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX], etc[PATH_MAX + 8], dsn[PATH_MAX + 64], labels[PATH_MAX], bk[PATH_MAX];
        int port = test_port(2);
        pg_dir(h, "pg", base, sizeof(base));
        snprintf(data, sizeof(data), "%s/data", base);
        snprintf(etc, sizeof(etc), "%s/etc", base);
        if (sh("runuser -u " PG_USER " -- " PG_BIN "/initdb -D '%s' -A trust -U " PG_USER " -E UTF8 --no-sync "
               ">'%s/initdb.log' 2>&1 && runuser -u " PG_USER " -- mkdir -m 700 '%s' && "
               "mv '%s'/postgresql.conf '%s'/pg_hba.conf '%s'/pg_ident.conf '%s/' && "
               "printf \"data_directory = '%%s'\\nhba_file = '%%s/pg_hba.conf'\\nident_file = '%%s/pg_ident.conf'\\n\" "
               "'%s' '%s' '%s' >> '%s/postgresql.conf'", data, base, etc, data, data, data, etc, data, etc, etc, etc) != 0 ||
            !pg_start(base, etc, port)) {
                test_failures++;
                return teardown(h);
        }
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        dsn_for(dsn, sizeof(dsn), base, port, PG_USER);
        writer_start(h, dsn, labels);
        snprintf(bk, sizeof(bk), "%s/backup", harness_dir(h));
        CHECK(harness_sh(h, NULL, "vssbackup backup --to %s --quiet", bk) == 0);
        char want[3 * PATH_MAX];
        snprintf(want, sizeof(want), "identify: %s/postgresql.conf, %s/pg_hba.conf, %s/pg_ident.conf: outside the data "
                 "directory, not in the component", etc, etc, etc);
        CHECK(writer_log_has(h, want));
        teardown(h);
}

static void test_errors(void) {
        Harness *h = harness_new(NULL);
        char base[PATH_MAX], data[PATH_MAX], dsn[PATH_MAX + 64], labels[PATH_MAX], dir[PATH_MAX], p[PATH_MAX];
        int port = test_port(3), st;

        snprintf(labels, sizeof(labels), "%s/labels-none", harness_dir(h));
        snprintf(dsn, sizeof(dsn), "host=%s/no-such-dir port=1 user=" PG_USER " dbname=postgres connect_timeout=2",
                 harness_dir(h));
        writer_start(h, dsn, labels);
        char *data_dir = harness_make_data(h, "plain");
        snprintf(dir, sizeof(dir), "%s", data_dir);
        /* A writer that failed Identify has no metadata and no status in the session (vssd drops
         * it, README "Writer status"): the shadow is made without it, and vssd logs the failure
         * with libpq's message. */
        json_object *out = harness_json(h, &st, "vssadmin create shadow --for %s --json%s", dir, "");
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK(!json_phase(out, "prepare-for-backup", "postgres") && !json_phase(out, "do-snapshot-set", "postgres"));
        json_object_put(out);
        CHECK(harness_sh(h, NULL, "grep -F \"writer 'postgres' failed identify: 0x800423f3 identify: cannot connect to "
                                  "PostgreSQL: connection to server on socket \\\"%s/no-such-dir/.s.PGSQL.1\\\" failed\" %s/vssd.log",
                         harness_dir(h), harness_dir(h)) == 0);
        CHECK(writer_log_has(h, "failed 0x800423f3 (code 0): identify: cannot connect to PostgreSQL"));
        writer_stop();
        json_object *w = NULL;
        const char *m;

        /* A role that may log in, read settings and CHECKPOINT, but not start a base backup. */
        if (!pg_create(h, "pg", base, data, port)) {
                test_failures++;
                return teardown(h);
        }
        _cleanup_free_ char *r1 = psql(h, base, port, "create role nopriv login");
        _cleanup_free_ char *r2 = psql(h, base, port, "grant pg_read_all_settings, pg_checkpoint to nopriv");
        CHECK(r1 && r2);
        snprintf(labels, sizeof(labels), "%s/labels", harness_dir(h));
        dsn_for(dsn, sizeof(dsn), base, port, "nopriv");
        writer_start(h, dsn, labels);
        snprintf(p, sizeof(p), "%s/backup", harness_dir(h));
        out = harness_json(h, &st, "vssbackup backup --to %s --json%s", p, "");
        CHECK(st == 1);
        w = json_phase(out, "do-snapshot-set", "postgres");
        CHECK_STR(json_str(w, "state_name"), "FailedAtPrepareSnapshot");
        CHECK_STR(json_str(w, "failure_name"), "VSS_E_WRITERERROR_NONRETRYABLE");
        m = json_str(w, "application_message");
        CHECK_STR(m, "prepare-snapshot: pg_backup_start: ERROR:  permission denied for function pg_backup_start "
                     "(SQLSTATE 42501)");
        json_object *code = NULL;
        /* 42501 read in base 36. */
        CHECK(w && json_object_object_get_ex(w, "application_code", &code) && json_object_get_int(code) == 6818257);
        json_object_put(out);
        /* Nothing left behind in the live data directory. */
        snprintf(p, sizeof(p), "%s/openvss-snapshot-set", data);
        CHECK(access(p, F_OK) < 0);
        teardown(h);
}

static const TestCase cases[] = {
        { "postgres-btrfs-wal-mount", test_btrfs_wal_mount },
        { "postgres-btrfs-wal-subvolume", test_btrfs_wal_subvolume },
        { "postgres-crash-consistent-needs-cut", test_crash_consistent_needs_cut },
        { "postgres-restore-in-place-rewinds", test_restore_in_place_rewinds },
        { "postgres-pgbench-roundtrip", test_roundtrip },
        { "postgres-pgbench-roundtrip-btrfs", test_roundtrip_btrfs },
        { "postgres-btrfs-tablespace-beside", test_btrfs_tablespace_beside },
        { "postgres-prerestore-server-running", test_prerestore_running },
        { "postgres-errors", test_errors },
        { "postgres-config-outside", test_config_outside },
        { "postgres-self-contained", test_self_contained },
        {},
};

int main(int argc, char *argv[]) {
        if (geteuid() != 0 || access(PG_BIN "/initdb", X_OK) < 0 || !getpwnam(PG_USER)) {
                printf("skipping: needs root, the postgres user and PostgreSQL 15 in " PG_BIN "\n");
                return 77;
        }
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        atexit(stop_all); /* runs before the harness removes the directory */
        return test_main(argc, argv, cases);
}
