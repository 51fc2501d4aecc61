/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec --compat qemu-ga and --compat vmware running a MariaDB flush hook written in the
 * pattern of qemu's fsfreeze-hook.d/mysql-flush.sh.sample (a background client holds FLUSH TABLES
 * WITH READ LOCK until thaw writes a FIFO, and writes to stderr after the hook exited) against a
 * real MariaDB server of the test's own, under load: backups in a row (10 with
 * OPENVSS_CHECK_FULL=1, else 3), each restored, started, checked with mysqlcheck --extended and
 * the bank's invariant. mariadb-hooks-native does the same in native mode with --hold and the
 * shipped examples/hooks/mariadb/50-mariadb, and checks no lock is left after each backup, a
 * vetoed freeze, a server that is down, and a writer killed while holding. Heavy: meson suite
 * 'heavy' only. */

#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/common.h"
#include "tests/harness.h"

#define ACCOUNTS 100
#define START_BALANCE 1000
#define TOTAL 100000 /* ACCOUNTS * START_BALANCE */
#define CLIENT "mariadb --no-defaults -uroot -S"
#define STR_(x) #x
#define STRINGIFY(x) STR_(x)

/* Processes the test started (servers, load), killed at exit whatever happened. */
static pid_t procs[8];
static size_t n_procs;

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void kill_all(void) {
        for (size_t i = 0; i < n_procs; i++)
                if (procs[i] > 0) {
                        kill(-procs[i], SIGKILL);
                        kill(procs[i], SIGKILL);
                        waitpid(procs[i], NULL, 0);
                        procs[i] = 0;
                }
        n_procs = 0;
}

static void on_term(int sig) {
        /* Not async-signal-safe; good enough for a test killed by its runner. */
        kill_all();
        exit(128 + sig);
}

/* Starts argv[0] via sh -c (own process group, dies with the test), output to log. */
static pid_t spawn(const char *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static pid_t spawn(const char *log, const char *fmt, ...) {
        char *cmd = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&cmd, fmt, ap) < 0)
                exit(99);
        va_end(ap);
        pid_t pid = fork();
        if (pid < 0)
                exit(99);
        if (pid == 0) {
                setpgid(0, 0);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
                _exit(127);
        }
        setpgid(pid, pid);
        free(cmd);
        for (size_t i = 0; i < n_procs; i++) /* a slot forget() freed */
                if (procs[i] == 0) {
                        procs[i] = pid;
                        return pid;
                }
        if (n_procs < ELEMENTSOF(procs))
                procs[n_procs++] = pid;
        return pid;
}

static void forget(pid_t pid) {
        for (size_t i = 0; i < n_procs; i++)
                if (procs[i] == pid)
                        procs[i] = 0;
}

/* One value (first column of the first row) from the server on sock, or NULL. */
static char *query(Harness *h, const char *sock, const char *sql) {
        char *out = NULL;
        if (harness_sh(h, &out, CLIENT " '%s' -N -B -e \"%s\" 2>&1", sock, sql) != 0) {
                fprintf(stderr, "query `%s` failed: %s\n", sql, out ? out : "");
                free(out);
                return NULL;
        }
        out[strcspn(out, "\t\n")] = '\0';
        return out;
}

/* Starts mariadbd on datadir with its socket at sock; waits until it answers (crash recovery
 * included). Returns its pid, or 0. */
static pid_t server_start(Harness *h, const char *datadir, const char *sock, const char *log) {
        pid_t pid = spawn(log,
                          "exec mariadbd --no-defaults --datadir='%s' --user=root --socket='%s' --skip-networking "
                          "--pid-file='%s.pid' --log-error='%s' --innodb-buffer-pool-size=32M "
                          "--innodb-log-file-size=16M --skip-log-bin",
                          datadir, sock, sock, log);
        for (int i = 0; i < 1200; i++) {
                if (harness_sh(h, NULL, CLIENT " '%s' -e 'SELECT 1' >/dev/null 2>&1", sock) == 0)
                        return pid;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        forget(pid);
                        break;
                }
                sleep_ms(100);
        }
        fprintf(stderr, "mariadbd on %s did not start:\n", datadir);
        (void) harness_sh(h, NULL, "tail -30 '%s' >&2", log);
        test_failures++;
        return 0;
}

static void server_stop(Harness *h, pid_t pid, const char *sock) {
        int st;
        if (pid <= 0)
                return;
        (void) harness_sh(h, NULL, "mariadb-admin --no-defaults -uroot -S '%s' shutdown >/dev/null 2>&1", sock);
        for (int i = 0; i < 600 && waitpid(pid, &st, WNOHANG) == 0; i++)
                sleep_ms(100);
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        forget(pid);
}

/* The hook, in the pattern of qemu's mysql-flush.sh.sample (written anew for this test): on
 * freeze, a background client takes FLUSH TABLES WITH READ LOCK and keeps it until thaw (or
 * VMware's freezeFail) writes the FIFO; the hook waits until the lock is held and InnoDB's redo
 * log is flushed. After the hook has exited, the background job writes to stderr, unlocks and
 * removes the FIFO: were its stderr closed, it would die of SIGPIPE there and every later freeze
 * would fail on mkfifo. */
static void write_hook(const char *path, const char *sock, const char *dir) {
        FILE *f = fopen(path, "we");
        if (!f)
                exit(99);
        fprintf(f,
                "#!/bin/sh\n"
                "MYSQL='" CLIENT " %s'\n"
                "FIFO=%s/mariadb-flush.fifo\n"
                "LOCKED=%s/mariadb-flush.locked\n"
                "\n"
                "# Nothing to do when the server is not running.\n"
                "$MYSQL -e 'SELECT 1' </dev/null >/dev/null 2>&1 || exit 0\n"
                "\n"
                "flush_and_wait() {\n"
                "    printf 'FLUSH TABLES WITH READ LOCK;\\n'\n"
                "    printf 'system touch %%s\\n' \"$LOCKED\"\n"
                "    read x < $FIFO\n"
                "    echo \"mariadb-flush: $(date +%%T.%%N): letting go of the lock\" >&2\n"
                "    printf 'UNLOCK TABLES;\\n'\n"
                "    rm -f $FIFO $LOCKED\n"
                "    echo \"mariadb-flush: $(date +%%T.%%N): unlocked\" >&2\n"
                "}\n"
                "\n"
                "case \"$1\" in\n"
                "freeze)\n"
                "    mkfifo $FIFO || exit 1\n"
                "    flush_and_wait | $MYSQL &\n"
                "    # The lock is held once the client ran the line after it.\n"
                "    while [ ! -e $LOCKED ]; do\n"
                "        kill -0 $! 2>/dev/null || { echo 'mariadb-flush: the locking client died' >&2; exit 1; }\n"
                "        sleep 0.05\n"
                "    done\n"
                "    # InnoDB: wait until the redo log is flushed.\n"
                "    while :; do\n"
                "        s=$(echo 'SHOW ENGINE INNODB STATUS\\G' | $MYSQL)\n"
                "        lsn=$(echo \"$s\" | sed -n 's/^Log sequence number *//p')\n"
                "        flushed=$(echo \"$s\" | sed -n 's/^Log flushed up to *//p')\n"
                "        [ -n \"$lsn\" ] && [ \"$lsn\" = \"$flushed\" ] && break\n"
                "        sleep 0.05\n"
                "    done\n"
                "    echo \"mariadb-flush: $(date +%%T.%%N): tables locked, redo log flushed at $lsn\" >&2\n"
                "    ;;\n"
                "thaw|freezeFail)\n"
                "    [ -p $FIFO ] || { echo \"mariadb-flush: no $FIFO: nothing holds the lock\" >&2; exit 1; }\n"
                "    echo > $FIFO\n"
                "    ;;\n"
                "*)\n"
                "    exit 1\n"
                "    ;;\n"
                "esac\n",
                sock, dir, dir);
        fclose(f);
        CHECK(chmod(path, 0755) == 0);
}

static int backup_count(void) {
        const char *full = getenv("OPENVSS_CHECK_FULL");
        return full && streq(full, "1") ? 10 : 3;
}

/* The restored copy: starts, mysqlcheck --extended finds nothing, and the bank adds up. Returns
 * the number of transfers in it. */
static long check_restored(Harness *h, const char *datadir, int k) {
        char sock[PATH_MAX], log[PATH_MAX];
        long transfers = -1;
        snprintf(sock, sizeof(sock), "%s/restored.sock", harness_dir(h));
        snprintf(log, sizeof(log), "%s/restored-%d.err", harness_dir(h), k);
        pid_t pid = server_start(h, datadir, sock, log);
        if (!pid)
                return -1;
        char *out = NULL;
        int st = harness_sh(h, &out,
                            "mysqlcheck --no-defaults -uroot -S '%s' --extended --all-databases 2>&1", sock);
        CHECK(st == 0);
        /* Every table OK (or a note that its engine does not check); no error, no corruption. */
        CHECK(out && !strcasestr(out, "error") && !strcasestr(out, "corrupt") && strstr(out, "bank.accounts"));
        if (st != 0 || !out || strcasestr(out, "error") || strcasestr(out, "corrupt"))
                fprintf(stderr, "mysqlcheck of backup %d:\n%s\n", k, out ? out : "");
        free(out);
        _cleanup_free_ char *sum = query(h, sock, "SELECT SUM(balance) FROM bank.accounts");
        _cleanup_free_ char *n = query(h, sock, "SELECT COUNT(*) FROM bank.accounts");
        _cleanup_free_ char *bad = query(h, sock,
                                         "SELECT COUNT(*) FROM bank.accounts a WHERE a.balance <> " STRINGIFY(START_BALANCE)
                                         " + (SELECT COALESCE(SUM(amount), 0) FROM bank.ledger WHERE dst = a.id)"
                                         " - (SELECT COALESCE(SUM(amount), 0) FROM bank.ledger WHERE src = a.id)");
        _cleanup_free_ char *t = query(h, sock, "SELECT COUNT(*) FROM bank.ledger");
        CHECK_STR(sum, STRINGIFY(TOTAL));
        CHECK_STR(n, STRINGIFY(ACCOUNTS));
        CHECK_STR(bad, "0");
        if (t)
                transfers = atol(t);
        bool recovered = harness_sh(h, NULL, "grep -qi 'crash recovery\\|Starting final batch' '%s'", log) == 0;
        fprintf(stderr, "backup %d restored: %ld transfers, sum %s, InnoDB crash recovery: %s\n", k, transfers,
                sum ? sum : "?", recovered ? "yes" : "no");
        server_stop(h, pid, sock);
        return transfers;
}

/* The live server of a test, under load, with its datadir on the test's loop filesystem. */
typedef struct Live {
        Harness *h;
        char mnt[PATH_MAX], datadir[PATH_MAX], sock[PATH_MAX], log[PATH_MAX];
        pid_t server, load;
} Live;

/* Setup, not what is tested: a bootstrap that failed (seen once with another MariaDB
 * bootstrapping beside it) is said with its log and tried once more from scratch. */
static void bootstrap(Harness *h, const char *datadir) {
        for (int attempt = 0;; attempt++) {
                int r = harness_sh(h, NULL,
                                   "mariadb-install-db --no-defaults --datadir='%s' --user=root --skip-test-db "
                                   "--auth-root-authentication-method=normal --innodb-log-file-size=16M "
                                   ">'%s/install.log' 2>&1",
                                   datadir, harness_dir(h));
                if (r == 0)
                        return;
                (void) harness_sh(h, NULL, "echo 'mariadb-install-db failed:' >&2; tail -n 30 '%s/install.log' >&2",
                                  harness_dir(h));
                if (attempt == 1) {
                        CHECK(r == 0);
                        return;
                }
                (void) harness_sh(h, NULL, "rm -rf '%s'", datadir);
        }
}

/* Load: transfers in transactions, one after the other, until killed (or the server goes). */
static void load_start(Live *l) {
        char loadlog[PATH_MAX];
        snprintf(loadlog, sizeof(loadlog), "%s/load.log", harness_dir(l->h));
        l->load = spawn(loadlog,
                        "awk 'BEGIN { srand(); for (;;) { a = int(rand() * %d) + 1; b = int(rand() * %d) + 1;"
                        " if (a == b) continue; v = int(rand() * 50) + 1;"
                        " printf \"START TRANSACTION; UPDATE accounts SET balance = balance - %%d WHERE id = %%d;"
                        " UPDATE accounts SET balance = balance + %%d WHERE id = %%d;"
                        " INSERT INTO ledger (src, dst, amount) VALUES (%%d, %%d, %%d); COMMIT;\\n\","
                        " v, a, v, b, a, b, v; fflush() } }' | " CLIENT " '%s' bank",
                        ACCOUNTS, ACCOUNTS, l->sock);
}

/* vssd (config: NULL for the harness's, which holds the test's loop filesystem), a MariaDB on the
 * loop filesystem with the bank in it, and the load. False (a failure counted) when the server
 * did not start. */
static bool live_start(Live *l, const char *config) {
        *l = (Live) { .h = harness_new(config) };
        struct sigaction sa = { .sa_handler = on_term };
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        atexit(kill_all); /* after harness_new: runs first, before the loop filesystem goes */

        snprintf(l->mnt, sizeof(l->mnt), "%s", harness_loop_fs(l->h, "mkfs.ext4 -q", "512M"));
        snprintf(l->datadir, sizeof(l->datadir), "%s/mysql", l->mnt);
        snprintf(l->sock, sizeof(l->sock), "%s/mariadb.sock", harness_dir(l->h));
        snprintf(l->log, sizeof(l->log), "%s/mariadb.err", harness_dir(l->h));
        bootstrap(l->h, l->datadir);
        l->server = server_start(l->h, l->datadir, l->sock, l->log);
        if (!l->server) {
                kill_all();
                harness_free(l->h);
                return false;
        }
        /* The bank: balances that always add up, and a ledger that explains each of them. The
         * probe table takes the writes that tell whether a lock is held. */
        CHECK(harness_sh(l->h, NULL,
                         CLIENT " '%s' -e \"CREATE DATABASE bank;"
                         " CREATE TABLE bank.accounts (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB;"
                         " CREATE TABLE bank.ledger (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT NOT NULL,"
                         " dst INT NOT NULL, amount INT NOT NULL, KEY (src), KEY (dst)) ENGINE=InnoDB;"
                         " CREATE TABLE bank.probe (id BIGINT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB;"
                         " USE bank; INSERT INTO accounts SELECT seq, " STRINGIFY(START_BALANCE) " FROM seq_1_to_"
                         STRINGIFY(ACCOUNTS) ";\"",
                         l->sock) == 0);
        load_start(l);
        return true;
}

/* The live server is fine after it all; then everything stops. */
static void live_stop(Live *l) {
        char *sum = query(l->h, l->sock, "SELECT SUM(balance) FROM bank.accounts");
        CHECK_STR(sum, STRINGIFY(TOTAL));
        free(sum);
        kill(-l->load, SIGKILL);
        waitpid(l->load, NULL, 0);
        forget(l->load);
        server_stop(l->h, l->server, l->sock);
        kill_all();
        harness_free(l->h);
}

/* Backup k of n, under way (more transfers since the last one), restored and checked; last: the
 * transfers in the one before. released: what must hold once the backup is done (the freeze
 * hook's lock let go). */
static void backup_restore_check(Live *l, int k, int n, long *last, void (*released)(Live *)) {
        Harness *h = l->h;
        _cleanup_free_ char *before = NULL;
        for (int i = 0; i < 600; i++) {
                free(before);
                before = query(h, l->sock, "SELECT COUNT(*) FROM bank.ledger");
                if (before && atol(before) > *last + 20)
                        break;
                sleep_ms(50);
        }
        CHECK(before && atol(before) > *last + 20);

        char dest[PATH_MAX], alt[PATH_MAX], altdata[2 * PATH_MAX];
        snprintf(dest, sizeof(dest), "%s/backup-%d", harness_dir(h), k);
        snprintf(alt, sizeof(alt), "%s/restore-%d", harness_dir(h), k);
        snprintf(altdata, sizeof(altdata), "%s%s", alt, l->datadir);
        int st;
        json_object *out = harness_json(h, &st, "vssbackup backup --to %s --json", dest);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        CHECK_STR(json_str(json_phase(out, "do-snapshot-set", "mariadb"), "state_name"), "WaitingForBackupComplete");
        if (st != 0)
                fprintf(stderr, "backup %d of %d failed: %s\n", k, n, out ? json_object_to_json_string(out) : "(no output)");
        json_object_put(out);
        /* The load went on. */
        CHECK(waitpid(l->load, NULL, WNOHANG) == 0);
        released(l);

        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", dest, alt);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        json_object_put(out);
        long t = check_restored(h, altdata, k);
        CHECK(t > *last);
        if (t > *last)
                *last = t;
        CHECK(harness_sh(h, NULL, "rm -rf '%s' '%s'", dest, alt) == 0);
}

/* Thaw let the background client go: it unlocked and removed its FIFO (a client killed by SIGPIPE
 * leaves it, and the next freeze fails). */
static void fifo_gone(Live *l) {
        char fifo[PATH_MAX];
        snprintf(fifo, sizeof(fifo), "%s/mariadb-flush.fifo", harness_dir(l->h));
        for (int i = 0; i < 400 && access(fifo, F_OK) == 0; i++)
                sleep_ms(50);
        CHECK(access(fifo, F_OK) < 0);
}

/* n backups through a compat-mode hook directory, each restored and checked; vssd's config (NULL:
 * the harness's, which holds the test's loop filesystem). */
static void roundtrip_with(const char *compat, const char *config, int n) {
        Live l;
        if (!live_start(&l, config))
                return;
        Harness *h = l.h;
        char hooks[PATH_MAX], hook[PATH_MAX + 32], comp[PATH_MAX + 16], wlog[PATH_MAX];
        snprintf(wlog, sizeof(wlog), "%s/writer-mariadb.log", harness_dir(h));

        /* The hook directory, as each agent lays it out. */
        bool vmware = streq(compat, "vmware");
        snprintf(hooks, sizeof(hooks), "%s/%s", harness_dir(h), vmware ? "backupScripts.d" : "fsfreeze-hook.d");
        CHECK(mkdir(hooks, 0755) == 0);
        snprintf(hook, sizeof(hook), "%s/%s", hooks, vmware ? "mariadb-flush" : "mariadb-flush.sh");
        write_hook(hook, l.sock, harness_dir(h));
        snprintf(comp, sizeof(comp), "datadir=%s", l.datadir);
        const char *const args[] = { "--hooks", hooks, "--compat", compat, "--component", comp, NULL };
        harness_writer(h, "mariadb", args);

        long last = 0;
        for (int k = 1; k <= n; k++) {
                backup_restore_check(&l, k, n, &last, fifo_gone);
                if (test_failures && config == NULL)
                        break;
        }
        /* Every freeze and thaw hook ran to success; the background client's late lines made it
         * to the writer's log; it never died of a signal. */
        CHECK(harness_sh(h, NULL, "[ $(grep -c 'freeze: hook mariadb-flush[.a-z]* -> ok' '%s') -ge %d ]", wlog, n) == 0);
        CHECK(harness_sh(h, NULL, "[ $(grep -c 'thaw: hook mariadb-flush[.a-z]* -> ok' '%s') -ge %d ]", wlog, n) == 0);
        CHECK(harness_sh(h, NULL, "[ $(grep -c 'mariadb-flush: .*: unlocked' '%s') -ge %d ]", wlog, n) == 0);
        CHECK(harness_sh(h, NULL, "grep -q 'killed by signal\\|timed out' '%s'", wlog) != 0);
        live_stop(&l);
}

static void roundtrip(const char *compat) {
        roundtrip_with(compat, NULL, backup_count());
}

/* Flush-and-hold: the file provider holds the loop filesystem while it copies the last delta, so
 * InnoDB's background flushes under FLUSH TABLES WITH READ LOCK cannot tear the copy: every
 * restore is consistent (20 backups with OPENVSS_CHECK_FULL=1, else 3). The same without holding
 * runs beside it; its failures are counted, not required. */
static void test_hold(void) {
        const char *full = getenv("OPENVSS_CHECK_FULL");
        int n = full && streq(full, "1") ? 20 : 3;
        roundtrip_with("qemu-ga", NULL, n);
        int held_failures = test_failures;
        roundtrip_with("qemu-ga", "{\"hold_filesystems\": []}", n);
        int unheld_failures = test_failures - held_failures;
        test_failures = held_failures;
        printf("# %d backups each: held: %d failed checks; not held: %d failed checks\n", n, held_failures,
               unheld_failures);
        fprintf(stderr, "%d backups each: held: %d failed checks; not held: %d failed checks\n", n, held_failures,
                unheld_failures);
}

/* Whether a write goes through while lock_wait_timeout is the given seconds: a session holding
 * FLUSH TABLES WITH READ LOCK makes it wait, then fail. */
static bool write_goes_through(Live *l, int seconds) {
        return harness_sh(l->h, NULL,
                          CLIENT " '%s' -e 'SET SESSION lock_wait_timeout = %d; INSERT INTO bank.probe VALUES ()' "
                          ">/dev/null 2>&1",
                          l->sock, seconds) == 0;
}

/* Sessions besides the asker's, as the server lists them (its own threads are not). */
static long sessions(Live *l) {
        _cleanup_free_ char *n = query(l->h, l->sock,
                                       "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                                       " WHERE COMMAND <> 'Daemon' AND ID <> CONNECTION_ID()");
        return n ? atol(n) : -1;
}

/* The hook let go: once the backup is done, no FTWRL session is left (the load's is the only one
 * besides ours; the hook's client may still be on its way out) and a write goes through at once. */
static void lock_released(Live *l) {
        long n = -1;
        for (int i = 0; i < 200 && (n = sessions(l)) != 1; i++)
                sleep_ms(50);
        CHECK(n == 1);
        CHECK(write_goes_through(l, 5));
}

/* The shipped hook, as an administrator installs it: a copy of the source tree's file, with the
 * client and the socket given through the environment the writer passes on. */
static pid_t native_writer(Live *l) {
        char hooks[PATH_MAX], comp[PATH_MAX + 16];
        snprintf(hooks, sizeof(hooks), "%s/hooks.d-mariadb", harness_dir(l->h));
        CHECK(mkdir(hooks, 0755) == 0);
        CHECK(harness_sh(l->h, NULL, "cp '%s' '%s/50-mariadb' && chmod 0755 '%s/50-mariadb'", MARIADB_HOOK, hooks,
                         hooks) == 0);
        setenv("MARIADB_CLIENT", "mariadb --no-defaults -uroot", 1);
        setenv("MARIADB_SOCKET", l->sock, 1);
        snprintf(comp, sizeof(comp), "datadir=%s", l->datadir);
        const char *const args[] = { "--hooks", hooks, "--hold", "--component", comp, "--restore-method",
                                     "stop-restore-start", NULL };
        return harness_writer(l->h, "mariadb", args);
}

/* A backup that must fail; its JSON, or NULL (a failure counted) when it did not. */
static json_object *backup_fails(Live *l, const char *name) {
        int st;
        json_object *out = harness_json(l->h, &st, "vssbackup backup --to %s/%s --json", harness_dir(l->h), name);
        CHECK(st != 0);
        CHECK(out && !streq(json_str(out, "result"), "ok"));
        if (out)
                fprintf(stderr, "%s: %s\n", name, json_object_to_json_string(out));
        return out;
}

/* A restore in place while the server runs: the hook's PreRestore refuses it, naming why, and
 * nothing of the live data directory is touched (the server goes on, its newest rows there). */
static void native_restore_running(Live *l) {
        int st;
        json_object_put(harness_json(l->h, &st, "vssbackup backup --to %s/backup-inplace --json", harness_dir(l->h)));
        CHECK(st == 0);
        _cleanup_free_ char *before = query(l->h, l->sock, "SELECT COUNT(*) FROM bank.ledger"), *said = NULL;
        CHECK(harness_sh(l->h, &said, "vssbackup restore --from %s/backup-inplace 2>&1", harness_dir(l->h)) != 0);
        CHECK(said && strstr(said, "the server is running") && !strstr(said, "restored ("));
        if (said && !strstr(said, "the server is running"))
                fprintf(stderr, "vssbackup restore said: %s\n", said);
        _cleanup_free_ char *after = query(l->h, l->sock, "SELECT COUNT(*) FROM bank.ledger");
        CHECK(before && after && atol(after) >= atol(before));
}

/* A later writer vetoes the freeze: the abort lets the lock go, and the next backup is whole. */
static void native_abort(Live *l, const char *wlog) {
        harness_set(l->h, "slow", "freeze", "fail 1 slow: veto");
        json_object_put(backup_fails(l, "backup-vetoed"));
        harness_set(l->h, "slow", "freeze", "ok");
        lock_released(l);
        CHECK(harness_sh(l->h, NULL, "grep -q 'abort: hook 50-mariadb -> ok' '%s'", wlog) == 0);
}

/* The server is down: freeze fails, saying why, and leaves nothing behind (no hook process, the
 * filesystem writable); once the server is back, the next backup goes through. */
static void native_server_down(Live *l, pid_t writer, const char *wlog) {
        server_stop(l->h, l->server, l->sock);
        l->server = 0;
        kill(-l->load, SIGKILL); /* it lost its server anyway */
        waitpid(l->load, NULL, 0);
        forget(l->load);
        json_object *out = backup_fails(l, "backup-down");
        json_object_put(out);
        CHECK(harness_sh(l->h, NULL, "grep -q 'freeze: hook 50-mariadb -> failed, exit status 1: .*Can.t connect' '%s'",
                         wlog) == 0);
        CHECK(harness_sh(l->h, NULL, "! pgrep -P %d >/dev/null", (int) writer) == 0);
        CHECK(harness_sh(l->h, NULL, "timeout 10 touch '%s/after-failed-freeze'", l->mnt) == 0);

        l->server = server_start(l->h, l->datadir, l->sock, l->log);
        if (!l->server)
                return;
        load_start(l);
        int st;
        json_object_put(harness_json(l->h, &st, "vssbackup backup --to %s/backup-up-again --json", harness_dir(l->h)));
        CHECK(st == 0);
        lock_released(l);
}

/* The writer dies (SIGKILL) while its hook holds the lock (a later writer's freeze waits): the
 * hook's session ends with it, and writes go through again. */
static void native_writer_killed(Live *l, pid_t writer) {
        char log[PATH_MAX];
        snprintf(log, sizeof(log), "%s/backup-killed.log", harness_dir(l->h));
        harness_set(l->h, "slow", "freeze", "wait");
        pid_t backup = spawn(log, "PATH=" VSSADMIN_DIR ":$PATH; exec vssbackup backup --to '%s/backup-killed'",
                             harness_dir(l->h));
        bool frozen = harness_wait_started(l->h, "slow", "freeze");
        CHECK(frozen);
        if (!frozen) {
                (void) harness_sh(l->h, NULL, "cat '%s' >&2", log);
                return;
        }
        CHECK(!write_goes_through(l, 1)); /* held */
        CHECK(kill(writer, SIGKILL) == 0);
        bool through = false;
        for (int i = 0; i < 20 && !(through = write_goes_through(l, 1)); i++)
                ;
        CHECK(through);
        harness_go(l->h, "slow", "freeze");
        int st = 0;
        CHECK(waitpid(backup, &st, 0) == backup);
        CHECK(!WIFEXITED(st) || WEXITSTATUS(st) != 0);
        forget(backup);
        lock_released(l);
}

/* vss-writer-exec in native mode with --hold and examples/hooks/mariadb/50-mariadb: backups in a
 * row (10 with OPENVSS_CHECK_FULL=1, else 3), each restored and checked, no lock left after any;
 * then a vetoed freeze, a server that is down and a writer killed while holding leave no lock,
 * and a restore in place while the server runs is refused (stop-restore-start, as the hook's
 * header says to run it). */
static void test_native(void) {
        Live l;
        if (!live_start(&l, NULL))
                return;
        char wlog[PATH_MAX];
        snprintf(wlog, sizeof(wlog), "%s/writer-mariadb.log", harness_dir(l.h));
        pid_t writer = native_writer(&l);
        /* Freezes after the hook holds: a veto or a wait there comes while the lock is held. */
        const char *const sys[] = { "--app-level", "system", NULL };
        harness_writer(l.h, "slow", sys);

        int n = backup_count();
        long last = 0;
        for (int k = 1; k <= n && !test_failures; k++)
                backup_restore_check(&l, k, n, &last, lock_released);
        CHECK(harness_sh(l.h, NULL, "[ $(grep -c 'freeze: hook 50-mariadb -> ready, holding' '%s') -ge %d ]", wlog, n) == 0);
        CHECK(harness_sh(l.h, NULL, "[ $(grep -c 'thaw: hook 50-mariadb -> ok' '%s') -ge %d ]", wlog, n) == 0);
        CHECK(harness_sh(l.h, NULL, "[ $(grep -c '50-mariadb: tables unlocked' '%s') -ge %d ]", wlog, n) == 0);
        native_abort(&l, wlog);
        native_restore_running(&l);
        native_server_down(&l, writer, wlog);
        if (l.server)
                native_writer_killed(&l, writer);
        CHECK(harness_sh(l.h, NULL, "grep -q 'killed by signal\\|timed out' '%s'", wlog) != 0);
        live_stop(&l);
}

static void test_qemu_ga(void) {
        roundtrip("qemu-ga");
}

static void test_vmware(void) {
        roundtrip("vmware");
}

static const TestCase cases[] = {
        { "mariadb-hooks-qemu-ga", test_qemu_ga },
        { "mariadb-hooks-vmware", test_vmware },
        { "mariadb-hold", test_hold },
        { "mariadb-hooks-native", test_native },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
