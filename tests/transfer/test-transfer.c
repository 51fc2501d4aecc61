/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The transfer service (tests/transfer/transfer.h) on two hosts, each its own vssd with the
 * ledger on a loop filesystem the test makes, shadowed with the `file` provider. Transfers flow
 * all along. A restore is the ledger files read from each host's shadow path; `transfer check`
 * says whether the two restored ledgers conserve the initial total.
 *   transfer-check:        the checker on ledgers changed by hand; usage and errors.
 *   transfer-restart:      the sender and the receiver killed mid-flow and restarted: the outbox
 *                          is resent, nothing is applied twice, the live ledgers conserve.
 *   transfer-local-sets:   a local set per host, a moment apart (alternating which host first);
 *                          conservation failures are counted and reported, not asserted.
 *   transfer-cluster-sets: one cluster set across both hosts (etcd, vss-agent per host,
 *                          `vssadmin cluster create shadow`): every one conserves.
 * Sets: 20 each with OPENVSS_CHECK_FULL=1, else 3. */

#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "lib/common.h"
#include "tests/cluster-harness.h"

static Cluster *hosts;
static const char *const host_names[2] = { "hosta", "hostb" };

typedef struct Service {
        char ledger[600], port_file[600], log[600];
        pid_t pid;
} Service;
static Service svc[2]; /* 0: the sender on host A, 1: the receiver on host B */
static char receiver_port[16] = "0"; /* the port it had: a restarted receiver takes it again */

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void kill_service(size_t i) {
        if (svc[i].pid <= 0)
                return;
        kill(svc[i].pid, SIGKILL);
        waitpid(svc[i].pid, NULL, 0);
        svc[i].pid = 0;
}

/* Runs before the harnesses' own cleanup (registered later): nothing may keep the loop
 * filesystems busy when they are unmounted. */
static void cleanup_at_exit(void) {
        kill_service(0);
        kill_service(1);
        cluster_free(hosts);
        hosts = NULL;
}

static int sender_peer_port(void) {
        FILE *f = fopen(svc[1].port_file, "re");
        int port = 0;
        if (f && fscanf(f, "%d", &port) != 1)
                port = 0;
        if (f)
                fclose(f);
        return port;
}

static bool writer_listed(size_t i) {
        return harness_sh(hosts->hosts[i].h, NULL, "vssadmin --socket %s list writers | grep -q \"^Writer name: '%s'\"",
                          harness_socket(hosts->hosts[i].h), hosts->hosts[i].writer) == 0;
}

/* Starts host i's side (0 sender, 1 receiver) and waits until its writer is subscribed (and the
 * receiver listens). */
static void start_service(size_t i) {
        ClusterHost *ho = &hosts->hosts[i];
        char port[16];
        if (i == 0)
                snprintf(port, sizeof(port), "%d", sender_peer_port());
        else
                unlink(svc[1].port_file);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                sigset_t none;
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(svc[i].log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (i == 0)
                        execl(TRANSFER_PATH, "transfer", "run", "--role", "sender", "--ledger", svc[0].ledger, "--peer-port",
                              port, "--socket", harness_socket(ho->h), "--name", ho->writer, (char *) NULL);
                else
                        execl(TRANSFER_PATH, "transfer", "run", "--role", "receiver", "--ledger", svc[1].ledger,
                              "--port", receiver_port, "--port-file", svc[1].port_file, "--socket", harness_socket(ho->h), "--name", ho->writer,
                              (char *) NULL);
                _exit(127);
        }
        svc[i].pid = pid;
        for (int k = 0; k < 2000; k++) {
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        fprintf(stderr, "the transfer service of %s ended at start\n", ho->name);
                        svc[i].pid = 0;
                        break;
                }
                if ((i == 0 || sender_peer_port() > 0) && writer_listed(i)) {
                        if (i == 1)
                                snprintf(receiver_port, sizeof(receiver_port), "%d", sender_peer_port());
                        return;
                }
                sleep_ms(10);
        }
        fprintf(stderr, "the transfer service of %s never became ready\n", ho->name);
        exit(99);
}

/* SIGTERM, and its exit status (-1 when it had to be killed). */
static int stop_service(size_t i) {
        int st = -1;
        if (svc[i].pid <= 0)
                return -1;
        kill(svc[i].pid, SIGTERM);
        for (int k = 0; k < 1000; k++) {
                if (waitpid(svc[i].pid, &st, WNOHANG) == svc[i].pid) {
                        svc[i].pid = 0;
                        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
                }
                sleep_ms(10);
        }
        kill_service(i);
        return -1;
}

/* The first column of a query's first row, -1 on errors (busy past busy_ms among them). */
static long long query_busy(const char *ledger, const char *sql, int busy_ms) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        long long v = -1;
        if (sqlite3_open_v2(ledger, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
                sqlite3_busy_timeout(db, busy_ms);
                if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                        v = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static long long query(const char *ledger, const char *sql) {
        return query_busy(ledger, sql, 10000);
}

static long long applied(void) {
        return query(svc[1].ledger, "SELECT count(*) FROM applied");
}

/* Waits (up to 30 s) until the receiver has applied at least n transfers. */
static void wait_applied(long long n) {
        for (int k = 0; k < 3000 && applied() < n; k++)
                sleep_ms(10);
        if (applied() < n) {
                fprintf(stderr, "the receiver applied %lld transfers, not %lld\n", applied(), n);
                test_failures++;
        }
}

/* Both hosts with their ledgers on loop filesystems; with etcd and a vss-agent each for a
 * cluster (skips, 77, when etcd is not installed). */
static void hosts_new(bool cluster) {
        snprintf(receiver_port, sizeof(receiver_port), "0");
        if (cluster && !etcd_harness_available()) {
                fprintf(stderr, "etcd is not installed: skipped\n");
                exit(77);
        }
        hosts = calloc(1, sizeof(*hosts));
        hosts->n = 2;
        hosts->lease_ttl = 5;
        for (size_t i = 0; i < 2; i++) {
                ClusterHost *ho = &hosts->hosts[i];
                char *out = NULL;
                snprintf(ho->name, sizeof(ho->name), "%s", host_names[i]);
                snprintf(ho->writer, sizeof(ho->writer), "transfer-%c", "ab"[i]);
                ho->h = harness_new(NULL);
                if (i == 0)
                        atexit(cleanup_at_exit); /* after the harness's own: runs before it */
                char *mnt = harness_loop_fs(ho->h, "mkfs.ext4 -q", "64M");
                snprintf(ho->data, sizeof(ho->data), "%s/ledger", mnt);
                snprintf(svc[i].ledger, sizeof(svc[i].ledger), "%s/ledger.db", ho->data);
                snprintf(svc[i].port_file, sizeof(svc[i].port_file), "%s/port", harness_dir(ho->h));
                snprintf(svc[i].log, sizeof(svc[i].log), "%s/transfer.log", harness_dir(ho->h));
                CHECK(mkdir(ho->data, 0755) == 0);
                CHECK(harness_sh(ho->h, &out, "%s init --role %s --ledger %s 2>&1", TRANSFER_PATH,
                                 i == 0 ? "sender" : "receiver", svc[i].ledger) == 0);
                free(out);
        }
        if (!cluster)
                return;
        hosts->etcd = etcd_harness_new(1, false);
        etcd_options o = { .endpoints = hosts->etcd ? hosts->etcd->endpoints : NULL };
        if (!hosts->etcd || etcd_new(&o, &hosts->e) < 0) {
                fprintf(stderr, "etcd did not start\n");
                exit(99);
        }
        for (size_t i = 0; i < 2; i++) {
                char path[700], text[1200];
                snprintf(path, sizeof(path), "%s/agent.json", harness_dir(hosts->hosts[i].h));
                snprintf(text, sizeof(text), "{\"paths\": [\"%s\"]}\n", hosts->hosts[i].data);
                FILE *f = fopen(path, "we");
                CHECK(f && fputs(text, f) >= 0);
                if (f)
                        fclose(f);
                cluster_start_agent(hosts, i);
        }
}

/* Stops everything; the live ledgers must conserve whatever happened. */
static void hosts_free(void) {
        char *out = NULL;
        CHECK(stop_service(0) == 0);
        CHECK(stop_service(1) == 0);
        int st = harness_sh(hosts->hosts[0].h, &out, "%s check %s %s", TRANSFER_PATH, svc[0].ledger, svc[1].ledger);
        fprintf(stderr, "live ledgers: %s", out ? out : "(no output)\n");
        CHECK(st == 0);
        free(out);
        /* How long Freeze waited for in-flight transfers, from the services' own lines. */
        for (size_t i = 0; i < 2; i++) {
                out = NULL;
                harness_sh(hosts->hosts[i].h, &out,
                           "sed -n 's/.*freeze: holding, .* after \\([0-9]*\\) ms.*/\\1/p' %s | sort -n | "
                           "awk '{n++; m=$1} END {printf \"%%d freezes, the longest drain %%d ms\", n, m}'",
                           svc[i].log);
                fprintf(stderr, "%s: %s\n", hosts->hosts[i].writer, out ? out : "");
                free(out);
        }
        for (size_t i = 0; i < 2; i++)
                if (test_failures || getenv("HARNESS_DUMP"))
                        harness_sh(hosts->hosts[i].h, NULL, "echo '---- %s ----' >&2; tail -n 40 %s >&2", svc[i].log,
                                   svc[i].log);
        cluster_free(hosts);
        hosts = NULL;
}

static int set_count(void) {
        const char *full = getenv("OPENVSS_CHECK_FULL");
        return full && streq(full, "1") ? 20 : 3;
}

static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The one shadow in a {"shadows": [...]} object: its shadow path, or NULL. */
static const char *shadow_path_of(json_object *o) {
        json_object *sh = member(o, "shadows");
        if (!sh || json_object_array_length(sh) != 1)
                return NULL;
        json_object *x = json_object_array_get_idx(sh, 0);
        if (!streq(json_str(x, "provider"), "file"))
                fprintf(stderr, "shadow by provider %s, not file\n", json_str(x, "provider"));
        return json_str(x, "shadow_path");
}

/* The state name of writer name after phase in a host object of cluster create shadow's JSON. */
static const char *writer_state(json_object *host, const char *phase, const char *name) {
        json_object *ps = member(host, "phases");
        for (size_t i = 0; ps && i < json_object_array_length(ps); i++) {
                json_object *p = json_object_array_get_idx(ps, i), *ws = member(p, "writers");
                for (size_t k = 0; streq(json_str(p, "phase"), phase) && ws && k < json_object_array_length(ws); k++)
                        if (streq(json_str(json_object_array_get_idx(ws, k), "name"), name))
                                return json_str(json_object_array_get_idx(ws, k), "state_name");
        }
        return "(missing)";
}

/* A restore: host i's ledger files read from its shadow into restore/K; the path of the copy. */
static char *restore(size_t i, int k, const char *shadow) {
        static char ledger[2][800];
        Harness *h = hosts->hosts[i].h;
        snprintf(ledger[i], sizeof(ledger[i]), "%s/restore%d/ledger.db", harness_dir(h), k);
        CHECK(harness_sh(h, NULL, "mkdir -p %s/restore%d && cp %s/ledger.db* %s/restore%d/", harness_dir(h), k, shadow,
                         harness_dir(h), k) == 0);
        return ledger[i];
}

/* Checks the restored pair: 0 conserved, 1 not, else an error. */
static int check_restored(int k, const char *shadow_a, const char *shadow_b) {
        char *out = NULL, a[800];
        snprintf(a, sizeof(a), "%s", restore(0, k, shadow_a));
        int st = harness_sh(hosts->hosts[0].h, &out, "%s check %s %s", TRANSFER_PATH, a, restore(1, k, shadow_b));
        fprintf(stderr, "set %d: %s", k, out ? out : "(no output)\n");
        free(out);
        CHECK(st == 0 || st == 1);
        return st;
}

/* Host i's local set: the JSON of vssadmin create shadow (caller puts), or NULL. */
static json_object *local_set(size_t i) {
        Harness *h = hosts->hosts[i].h;
        int st;
        json_object *o = harness_json(h, &st, "vssadmin --socket %s create shadow --for %s --provider file --json",
                                      harness_socket(h), hosts->hosts[i].data);
        CHECK(st == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        /* The host's transfer writer took part: through Freeze and Thaw. */
        CHECK_STR(json_str(json_phase(o, "do-snapshot-set", hosts->hosts[i].writer), "state_name"),
                  "WaitingForBackupComplete");
        return o;
}

/* Waits (up to 30 s) until the outbox holds no transfer up to id. */
static void wait_outbox_past(long long id) {
        const char *sql = "SELECT coalesce(min(id), 9223372036854775807) FROM outbox";
        for (int k = 0; k < 3000 && query(svc[0].ledger, sql) <= id; k++)
                sleep_ms(10);
        if (query(svc[0].ledger, sql) <= id) {
                fprintf(stderr, "outbox row %lld was never resent and acked\n", query(svc[0].ledger, sql));
                test_failures++;
        }
}

/* Restarts: the sender killed with a transfer in its outbox that the receiver applied and acked
 * (the sender stopped before it read the ack), the receiver killed (the sender reconnects by
 * itself), the sender killed at any point. Each time the outbox is resent and drains, the flow
 * goes on, and nothing is applied twice (the live check at the end would see it). */
static void test_restart(void) {
        hosts_new(false);
        start_service(1);
        start_service(0);
        for (int round = 0; round < 3; round++) {
                wait_applied(applied() + 30);
                size_t victim = round == 1 ? 1 : 0;
                if (round == 0) {
                        /* Stopped at a moment its last outbox row is applied on B (it may hold a lock
                         * while stopped: a short busy timeout, then let it go on and try again). */
                        bool caught = false;
                        /* Bounded by time, not tries: a try takes under a millisecond when the
                         * outbox is empty, and the moment comes once per transfer. */
                        struct timespec t0, t1;
                        clock_gettime(CLOCK_MONOTONIC, &t0);
                        for (t1 = t0; t1.tv_sec - t0.tv_sec < 30 && !caught; clock_gettime(CLOCK_MONOTONIC, &t1)) {
                                CHECK(kill(svc[0].pid, SIGSTOP) == 0);
                                long long last = query_busy(svc[0].ledger, "SELECT coalesce(max(id), -1) FROM outbox", 50);
                                caught = last > 0 && query_busy(svc[1].ledger, "SELECT max(id) FROM applied", 50) == last;
                                if (!caught)
                                        CHECK(kill(svc[0].pid, SIGCONT) == 0);
                        }
                        CHECK(caught);
                }
                kill_service(victim);
                long long pending = query(svc[0].ledger, "SELECT coalesce(max(id), -1) FROM outbox");
                start_service(victim);
                fprintf(stderr, "round %d: %s killed with outbox up to %lld\n", round, victim ? "receiver" : "sender",
                        pending);
                if (pending > 0)
                        wait_outbox_past(pending);
        }
        wait_applied(applied() + 30);
        hosts_free();
}

/* A local set on each host, a moment apart. Both restored: the total is conserved only when no
 * transfer moved between the two cuts. Counted, not asserted. */
static void test_local_sets(void) {
        int n = set_count(), failures = 0;
        hosts_new(false);
        start_service(1);
        start_service(0);
        wait_applied(50);
        for (int k = 0; k < n; k++) {
                size_t first = (size_t) k % 2; /* alternately A then B (B gains) and B then A (A lost) */
                json_object *o1 = local_set(first), *o2 = local_set(1 - first);
                const char *p1 = shadow_path_of(o1), *p2 = shadow_path_of(o2);
                CHECK(p1 && p2);
                if (p1 && p2)
                        failures += check_restored(k, first == 0 ? p1 : p2, first == 0 ? p2 : p1) == 1;
                json_object_put(o1);
                json_object_put(o2);
                for (size_t i = 0; i < 2; i++)
                        CHECK(harness_sh(hosts->hosts[i].h, NULL, "vssadmin --socket %s delete shadows --all >/dev/null",
                                         harness_socket(hosts->hosts[i].h)) == 0);
                wait_applied(applied() + 20); /* the load goes on between sets */
        }
        fprintf(stderr, "local sets: %d of %d pairs did not conserve the total\n", failures, n);
        hosts_free();
}

/* One cluster set across both hosts, restored: every one conserves. */
static void test_cluster_sets(void) {
        int n = set_count(), failures = 0;
        hosts_new(true);
        start_service(1);
        start_service(0);
        wait_applied(50);
        for (int k = 0; k < n; k++) {
                int st;
                json_object *o = harness_json(hosts->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --json",
                                              cluster_args(hosts), cluster_fors(hosts));
                CHECK(st == 0);
                CHECK_STR(json_str(o, "result"), "ok");
                json_object *hs = member(o, "hosts");
                const char *p[2] = {};
                for (size_t i = 0; hs && i < json_object_array_length(hs); i++)
                        for (size_t j = 0; j < 2; j++) {
                                json_object *ho = json_object_array_get_idx(hs, i);
                                if (!streq(json_str(ho, "host"), host_names[j]))
                                        continue;
                                p[j] = shadow_path_of(ho);
                                /* The host's transfer writer took part: frozen when the host was. */
                                CHECK_STR(writer_state(ho, "frozen", hosts->hosts[j].writer), "WaitingForThaw");
                        }
                CHECK(p[0] && p[1]);
                if (p[0] && p[1]) {
                        int r = check_restored(k, p[0], p[1]);
                        CHECK(r == 0);
                        failures += r != 0;
                }
                CHECK(harness_sh(hosts->hosts[0].h, NULL, "vssadmin cluster delete shadows %s --set %s >/dev/null",
                                 cluster_args(hosts), json_str(o, "cluster_set_id")) == 0);
                json_object_put(o);
                wait_applied(applied() + 20);
        }
        fprintf(stderr, "cluster sets: %d of %d did not conserve the total\n", failures, n);
        hosts_free();
}

static void exec_sql(const char *ledger, const char *sql) {
        sqlite3 *db = NULL;
        CHECK(sqlite3_open_v2(ledger, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
        CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
        sqlite3_close(db);
}

/* Runs transfer with args; its exit status, and whether its output has want. */
static bool transfer_says(Harness *h, int want_status, const char *want, const char *args) {
        char *out = NULL;
        int st = harness_sh(h, &out, "%s %s 2>&1", TRANSFER_PATH, args);
        bool ok = st == want_status && out && strstr(out, want);
        if (!ok)
                fprintf(stderr, "transfer %s: status %d, expected %d and '%s' in:\n%s", args, st, want_status, want,
                        out ? out : "");
        free(out);
        return ok;
}

/* The checker on ledgers made by hand (no service): in-flight and applied-not-acked transfers
 * conserve, a transfer applied twice does not; errors and usage. */
static void test_check(void) {
        Harness *h = harness_new(NULL);
        char a[600], b[600], args[1400];
        snprintf(a, sizeof(a), "%s/a.db", harness_dir(h));
        snprintf(b, sizeof(b), "%s/b.db", harness_dir(h));
        snprintf(args, sizeof(args), "init --role sender --ledger %s --balance 100", a);
        CHECK(transfer_says(h, 0, "", args));
        CHECK(transfer_says(h, 1, "a.db already exists", args));
        snprintf(args, sizeof(args), "init --role receiver --ledger %s --balance 50", b);
        CHECK(transfer_says(h, 0, "", args));
        snprintf(args, sizeof(args), "check %s %s", a, b);
        CHECK(transfer_says(h, 0, "conserved: A 1000 + B 500 + unapplied outbox 0", args));
        /* Debited with its outbox row, not yet applied: the outbox counts it. */
        exec_sql(a, "UPDATE accounts SET bal = bal - 7 WHERE id = 1; INSERT INTO outbox (account, amount) VALUES (1, 7)");
        CHECK(transfer_says(h, 0, "conserved: A 993 + B 500 + unapplied outbox 7 (1 rows; 0 applied", args));
        /* Applied on B, ack not seen on A: counted once, on B. */
        exec_sql(b, "INSERT INTO applied VALUES (1, 7); UPDATE accounts SET bal = bal + 7 WHERE id = 2");
        CHECK(transfer_says(h, 0, "conserved: A 993 + B 507 + unapplied outbox 0 (0 rows; 1 applied", args));
        /* Applied twice: money made. */
        exec_sql(b, "UPDATE accounts SET bal = bal + 7 WHERE id = 2");
        CHECK(transfer_says(h, 1, "NOT conserved: A 993 + B 514", args));
        snprintf(args, sizeof(args), "check --json %s %s", a, b);
        CHECK(transfer_says(h, 1, "\"conserved\": false", args));
        snprintf(args, sizeof(args), "check %s %s/missing.db", a, harness_dir(h));
        CHECK(transfer_says(h, 2, "missing.db", args));
        CHECK(transfer_says(h, 2, "a command is needed", ""));
        CHECK(transfer_says(h, 2, "check takes two ledgers", "check x"));
        CHECK(transfer_says(h, 2, "--role is sender or receiver", "run --role both --ledger x"));
        CHECK(transfer_says(h, 2, "a sender needs --peer-port", "run --role sender --ledger x"));
        CHECK(transfer_says(h, 2, "out of range", "run --role sender --ledger x --peer-port 70000"));
        CHECK(transfer_says(h, 2, "unknown command", "start --role sender --ledger x"));
        snprintf(args, sizeof(args), "run --role receiver --ledger %s --socket %s/nothing.sock", b, harness_dir(h));
        CHECK(transfer_says(h, 1, "transfer: writer:", args));
        harness_free(h);
}

/* meson's timeout sends SIGTERM: leave through exit() so the cleanup runs (services stopped,
 * loop filesystems unmounted and detached), not with mounts left behind. */
static void on_term(int sig) {
        (void) sig;
        exit(99);
}

int main(int argc, char *argv[]) {
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        static const TestCase cases[] = {
                { "transfer-check", test_check },
                { "transfer-restart", test_restart },
                { "transfer-local-sets", test_local_sets },
                { "transfer-cluster-sets", test_cluster_sets },
                {},
        };
        return test_main(argc, argv, cases);
}
