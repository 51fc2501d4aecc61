/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cluster sets under faults (issue 16, DESIGN "Cluster snapshot sets"): three hosts, each with
 * its own vssd, writer and vss-agent, the agent in its own network namespace (tests/netns.h) so
 * its etcd traffic crosses its own link; one etcd (or a 3-member cluster) in the root namespace;
 * `vssadmin cluster create shadow` as the coordinator. One host's writer is held at an event so
 * the set stands at a known step, then a fault is made. Every case then asserts: every writer that
 * froze was thawed (Thaw or Abort entered) within its freeze window, every host ends the set with
 * none of its shadows kept, the decision is abort (all or nothing), and prints how long the
 * furthest writer stayed frozen. Skips (77) without etcd, root, iproute2 or socat. */

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/common.h"
#include "tests/cluster-harness.h"
#include "tests/netns.h"

#define WINDOW_MS 10000         /* every writer's freeze window (--freeze-timeout) */
#define AGENT_TTL 2             /* the agents' and the coordinator's lease TTL, seconds */
/* A coordinator that cannot reach etcd must still give up by the frozen deadline (the first freeze
 * window) and its wait for the hosts' last status (15 s); 10 s more for a loaded machine. */
#define COORDINATOR_GIVES_UP_S (WINDOW_MS / 1000 + 15 + 10)

static NetNs *net;
static Cluster *cur;

static const char stamp_hook[] =
        "#!/bin/sh\n"
        "# Runs before the test hook: the instant the writer entered the event.\n"
        "echo \"$VSS_WRITER_NAME $1 $(" STAMP_PATH ")\" >> \"$HARNESS_DIR/stamps\"\n";

static void die(const char *what) {
        fprintf(stderr, "test-cluster-faults: %s\n", what);
        exit(99);
}

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void cleanup_at_exit(void) {
        cluster_free(cur);
        cur = NULL;
        net = netns_free(net);
}

/* Three hosts as cluster_new() makes them, but each agent in its namespace and every writer with
 * a freeze window of WINDOW_MS; etcd with `members` members, reached through the gateway. */
static Cluster *faults_new(size_t members) {
        if (!etcd_harness_available()) {
                fprintf(stderr, "etcd is not installed: skipped\n");
                exit(77);
        }
        static bool registered;
        cleanup_at_exit();      /* the previous case's, when one process runs them all */
        net = netns_new(3);
        if (!net) {
                fprintf(stderr, "network namespaces cannot be made here: skipped\n");
                exit(77);
        }
        if (!registered)
                atexit(cleanup_at_exit);
        registered = true;
        Cluster *c = calloc(1, sizeof(*c));
        cur = c;
        c->n = 3;
        c->lease_ttl = AGENT_TTL;
        c->etcd = etcd_harness_new(members, false);
        if (!c->etcd)
                die("etcd did not start");
        for (size_t m = 0; m < members; m++)
                if (netns_forward(net, c->etcd->m[m].client_port) < 0)
                        die("no forward to etcd");
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "ovss-%d-", (int) getpid());
        setenv("OVSS_NETNS_PREFIX", prefix, 1);
        setenv("OVSS_NETNS_GATEWAY", net->gateway, 1);
        etcd_options o = { .endpoints = c->etcd->endpoints };
        if (etcd_new(&o, &c->e) < 0)
                die("etcd client");
        static const char *const extra[] = { "--freeze-timeout", "10000", NULL };
        for (size_t i = 0; i < c->n; i++) {
                ClusterHost *ho = &c->hosts[i];
                char path[600], text[1200];
                snprintf(ho->name, sizeof(ho->name), "host%zu", i);
                snprintf(ho->writer, sizeof(ho->writer), "w%zu", i);
                ho->h = harness_new(NULL);
                harness_hook(ho->h, "05-stamp", stamp_hook);
                harness_writer(ho->h, ho->writer, extra);
                snprintf(ho->data, sizeof(ho->data), "%s", harness_make_data(ho->h, "data"));
                snprintf(path, sizeof(path), "%s/agent.json", harness_dir(ho->h));
                snprintf(text, sizeof(text), "{\"paths\": [\"%s\"], \"jobs\": {}}", ho->data);
                FILE *f = fopen(path, "we");
                if (!f || fputs(text, f) < 0 || fclose(f) != 0)
                        die("agent config");
        }
        for (size_t i = 0; i < c->n; i++)
                cluster_start_agent(c, i);
        return c;
}

static pid_t coordinator(Cluster *c, int ttl) {
        char path[600];
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        return cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --lease-ttl %d --json", cluster_args(c),
                             cluster_fors(c), ttl);
}

static char *coordinator_out(Cluster *c) {
        char *out = NULL;
        harness_sh(c->hosts[0].h, &out, "cat %s/coordinator.out", harness_dir(c->hosts[0].h));
        return out;
}

/* The coordinator's exit status (-1 when it did not end within timeout_s; then it is killed). */
static int wait_exit(pid_t pid, int timeout_s) {
        int st;
        for (uint64_t end = now_ms() + (uint64_t) timeout_s * 1000; now_ms() < end; sleep_ms(20))
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
}

/* The phase host i recorded for set_id, or NULL (caller frees). */
/* The coordinator ends with status 1 within COORDINATOR_GIVES_UP_S, else says so. */
static void check_coordinator_gives_up(Cluster *c, pid_t pid) {
        int st = wait_exit(pid, COORDINATOR_GIVES_UP_S);
        if (st != 1) {
                char *out = coordinator_out(c);
                fprintf(stderr, "the coordinator %s (status %d): %s\n",
                        st < 0 ? "was still waiting, killed" : "ended unexpectedly", st, out ? out : "(no output)");
                free(out);
        }
        CHECK(st == 1);
}

static char *phase_of(Cluster *c, const char *set_id, size_t i) {
        char *v = cluster_get(c, "sets/%s/hosts/%s", set_id, c->hosts[i].name);
        json_object *o = v ? json_tokener_parse(v) : NULL;
        char *p = o ? strdup(json_str(o, "phase")) : NULL;
        json_object_put(o);
        free(v);
        return p;
}

/* Waits (up to timeout_s) until host i recorded an end of set_id: aborted, failed or deleted. */
static bool wait_ended(Cluster *c, const char *set_id, size_t i, int timeout_s) {
        char *p = NULL;
        for (uint64_t end = now_ms() + (uint64_t) timeout_s * 1000; now_ms() < end; sleep_ms(50)) {
                free(p);
                p = phase_of(c, set_id, i);
                if (p && (streq(p, "aborted") || streq(p, "failed") || streq(p, "deleted"))) {
                        free(p);
                        return true;
                }
        }
        fprintf(stderr, "%s never recorded the end of set %s (last phase: %s)\n", c->hosts[i].name, set_id, p ? p : "none");
        free(p);
        test_failures++;
        return false;
}

/* How long host i's writer stayed frozen: from Freeze entered to the first Thaw or Abort entered
 * after it (waits up to the window and a margin for one). 0: it never froze; UINT64_MAX: never thawed. */
static uint64_t frozen_ms(Cluster *c, size_t i) {
        uint64_t f[8], t[8];
        if (cluster_stamps(c, i, "freeze", f, 8) == 0)
                return 0;
        for (uint64_t end = now_ms() + WINDOW_MS + 5000; now_ms() < end; sleep_ms(50)) {
                uint64_t best = UINT64_MAX;
                size_t n = cluster_stamps(c, i, "thaw", t, 8);
                for (size_t k = 0; k < n; k++)
                        if (t[k] > f[0] && t[k] - f[0] < best)
                                best = t[k] - f[0];
                n = cluster_stamps(c, i, "abort", t, 8);
                for (size_t k = 0; k < n; k++)
                        if (t[k] > f[0] && t[k] - f[0] < best)
                                best = t[k] - f[0];
                if (best != UINT64_MAX)
                        return best / 1000000 ? best / 1000000 : 1;
        }
        return UINT64_MAX;
}

/* Every writer thawed within its window; returns the furthest freeze (ms), prints it. */
static uint64_t check_thawed(Cluster *c, const char *what) {
        uint64_t furthest = 0;
        for (size_t i = 0; i < c->n; i++) {
                uint64_t ms = frozen_ms(c, i);
                if (ms == UINT64_MAX)
                        fprintf(stderr, "%s: writer %s never thawed\n", c->hosts[i].name, c->hosts[i].writer);
                CHECK(ms != UINT64_MAX);
                /* The stamps are taken in hooks: their start-up latency on top of vssd's window. */
                CHECK(ms == UINT64_MAX || ms <= WINDOW_MS + 500);
                if (ms != UINT64_MAX && ms > furthest)
                        furthest = ms;
        }
        printf("%s: furthest writer frozen %" PRIu64 " ms (window %d ms)\n", what, furthest, WINDOW_MS);
        return furthest;
}

/* Waits (up to 20 s) until host i's vssd keeps no shadow. */
static bool wait_no_shadows(Cluster *c, size_t i) {
        int n = -1;
        for (uint64_t end = now_ms() + 20000; now_ms() < end; sleep_ms(100))
                if ((n = cluster_local_shadows(c, i)) == 0)
                        return true;
        fprintf(stderr, "%s still keeps %d shadow(s)\n", c->hosts[i].name, n);
        test_failures++;
        return false;
}

/* The whole outcome of an aborted set: every host recorded its end, keeps nothing, the decision is
 * abort, every writer thawed in time. */
static void check_aborted(Cluster *c, const char *set_id, const char *what) {
        uint64_t end = now_ms() + 40000;
        for (size_t i = 0; i < c->n; i++) {
                wait_ended(c, set_id, i, now_ms() < end ? (int) ((end - now_ms()) / 1000) + 1 : 1);
                wait_no_shadows(c, i);
        }
        char *d = cluster_get(c, "sets/%s/decision", set_id);
        CHECK_STR(d, "abort");
        free(d);
        check_thawed(c, what);
}

/* Starts a set with host 2's writer held at `event`, waits until hosts 0 and 1 recorded `phase`
 * and host 2's writer is in `event`; returns the set id in set_id. */
static pid_t start_held(Cluster *c, const char *event, const char *phase, int ttl, char set_id[static 64]) {
        harness_set(c->hosts[2].h, c->hosts[2].writer, event, "wait");
        pid_t pid = coordinator(c, ttl);
        const char *id = cluster_wait_phase(c, 0, phase);
        snprintf(set_id, 64, "%s", id ? id : "none");
        CHECK(cluster_wait_phase(c, 1, phase) != NULL);
        CHECK(cluster_wait_started(c, 2, event));
        return pid;
}

/* The coordinator SIGKILLed with hosts 0 and 1 at `phase`: its lease ends, the agents abort. */
static void coordinator_killed(const char *event, const char *phase, const char *what) {
        Cluster *c = faults_new(1);
        char set_id[64];
        pid_t pid = start_held(c, event, phase, AGENT_TTL, set_id);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        wait_ended(c, set_id, 0, 30);
        wait_ended(c, set_id, 1, 30);
        harness_go(c->hosts[2].h, c->hosts[2].writer, event);
        check_aborted(c, set_id, what);
        cleanup_at_exit();
}

static void test_coordinator_ready(void) {
        coordinator_killed("prepare-snapshot", "ready", "coordinator killed before freeze");
}

static void test_coordinator_frozen(void) {
        coordinator_killed("freeze", "frozen", "coordinator killed while frozen");
}

static void test_coordinator_committed(void) {
        coordinator_killed("post-snapshot", "committed", "coordinator killed after commit, before complete");
}

/* Host 1's agent SIGKILLed with its host at `phase`: the coordinator fails the set; restarted, the
 * agent reconciles its host with the decision and keeps nothing. */
static void agent_killed(const char *event, const char *phase, const char *what) {
        Cluster *c = faults_new(1);
        char set_id[64];
        pid_t pid = start_held(c, event, phase, AGENT_TTL, set_id);
        cluster_kill_agent(c, 1);
        CHECK(wait_exit(pid, 60) == 1);
        char *out = coordinator_out(c);
        CHECK(out && strstr(out, "host host1"));
        if (!out || !strstr(out, "host host1"))
                fprintf(stderr, "coordinator said: %s\n", out ? out : "(nothing)");
        free(out);
        harness_go(c->hosts[2].h, c->hosts[2].writer, event);
        wait_ended(c, set_id, 0, 30);
        wait_ended(c, set_id, 2, 30);
        cluster_start_agent(c, 1);
        check_aborted(c, set_id, what);
        char path[700];
        snprintf(path, sizeof(path), "%s/agent-state/" CLUSTER_NAME ".%s.json", harness_dir(c->hosts[1].h), set_id);
        CHECK(access(path, F_OK) < 0);
        cleanup_at_exit();
}

static void test_agent_ready(void) {
        agent_killed("prepare-snapshot", "ready", "agent killed before freeze");
}

static void test_agent_frozen(void) {
        agent_killed("freeze", "frozen", "agent killed while frozen");
}

static void test_agent_committed(void) {
        agent_killed("post-snapshot", "committed", "agent killed after commit, before complete");
}

/* Host 1's link cut while it is frozen: its agent can reach nothing, its lease ends; the others
 * abort, and host 1 thaws on its own (its agent's etcd deadline, or vssd's window at the latest).
 * Restored, host 1 records its end. */
static void test_link_cut(void) {
        Cluster *c = faults_new(1);
        char set_id[64];
        pid_t pid = start_held(c, "freeze", "frozen", AGENT_TTL, set_id);
        CHECK(netns_link(net, 1, false) == 0);
        CHECK(wait_exit(pid, 60) == 1);
        wait_ended(c, set_id, 0, 30);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        wait_ended(c, set_id, 2, 30);
        /* Still cut off: host 1's writer must thaw without etcd. */
        uint64_t ms = frozen_ms(c, 1);
        CHECK(ms != UINT64_MAX && ms <= WINDOW_MS + 500);
        printf("host1 (cut off) thawed after %" PRIu64 " ms frozen\n", ms);
        wait_no_shadows(c, 1);
        CHECK(netns_link(net, 1, true) == 0);
        check_aborted(c, set_id, "one host's link cut while frozen");
        cleanup_at_exit();
}

/* Host 1's link cut after it committed, before complete: it keeps its shadows in doubt while it
 * cannot learn the decision; the others abort (its lease ended); restored, it learns abort and
 * deletes them. */
static void test_link_cut_committed(void) {
        Cluster *c = faults_new(1);
        char set_id[64];
        pid_t pid = start_held(c, "post-snapshot", "committed", AGENT_TTL, set_id);
        CHECK(netns_link(net, 1, false) == 0);
        CHECK(wait_exit(pid, 60) == 1);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "post-snapshot");
        wait_ended(c, set_id, 0, 30);
        wait_ended(c, set_id, 2, 30);
        printf("host1 (cut off after its commit) keeps %d shadow(s) in doubt\n", cluster_local_shadows(c, 1));
        CHECK(netns_link(net, 1, true) == 0);
        check_aborted(c, set_id, "one host's link cut after its commit, before complete");
        cleanup_at_exit();
}

/* etcd stopped while two hosts are frozen: nobody can decide; every host thaws on its own; etcd
 * back, every host records its end and the decision is abort. */
static void test_etcd_stopped(void) {
        Cluster *c = faults_new(1);
        char set_id[64];
        pid_t pid = start_held(c, "freeze", "frozen", AGENT_TTL, set_id);
        CHECK(etcd_harness_stop(c->etcd, 0) == 0);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        for (size_t i = 0; i < c->n; i++) {
                uint64_t ms = frozen_ms(c, i);
                CHECK(ms != UINT64_MAX && ms <= WINDOW_MS + 500);
        }
        check_coordinator_gives_up(c, pid);
        CHECK(etcd_harness_start(c->etcd, 0, true) == 0);
        check_aborted(c, set_id, "etcd stopped while frozen");
        cleanup_at_exit();
}

/* A 3-member etcd losing the member every endpoint list names first while two hosts are frozen:
 * the set still succeeds, with the invariant. */
static void test_etcd_member_lost(void) {
        Cluster *c = faults_new(3);
        char set_id[64];
        pid_t pid = start_held(c, "freeze", "frozen", AGENT_TTL, set_id);
        CHECK(etcd_harness_stop(c->etcd, 0) == 0);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        int st = wait_exit(pid, 90);
        CHECK(st == 0);
        char *out = coordinator_out(c);
        if (st != 0)
                fprintf(stderr, "coordinator said: %s\n", out ? out : "(nothing)");
        free(out);
        uint64_t max_freeze = 0, min_thaw = UINT64_MAX, t[8];
        for (size_t i = 0; i < c->n; i++) {
                CHECK(cluster_local_shadows(c, i) == 1);
                if (cluster_stamps(c, i, "freeze", t, 8) >= 1 && t[0] > max_freeze)
                        max_freeze = t[0];
                if (cluster_stamps(c, i, "thaw", t, 8) >= 1 && t[0] < min_thaw)
                        min_thaw = t[0];
        }
        CHECK(max_freeze < min_thaw);
        char *d = cluster_get(c, "sets/%s/decision", set_id);
        CHECK_STR(d, "complete");
        free(d);
        check_thawed(c, "3-member etcd losing one member while frozen (set succeeds)");
        cleanup_at_exit();
}

/* The same cluster losing two members (its quorum) while two hosts are frozen: the set aborts,
 * every host thaws; with the members back, every host records its end. */
static void test_etcd_quorum_lost(void) {
        Cluster *c = faults_new(3);
        char set_id[64];
        pid_t pid = start_held(c, "freeze", "frozen", AGENT_TTL, set_id);
        CHECK(etcd_harness_stop(c->etcd, 1) == 0);
        CHECK(etcd_harness_stop(c->etcd, 2) == 0);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        for (size_t i = 0; i < c->n; i++) {
                uint64_t ms = frozen_ms(c, i);
                CHECK(ms != UINT64_MAX && ms <= WINDOW_MS + 500);
        }
        check_coordinator_gives_up(c, pid);
        CHECK(etcd_harness_start(c->etcd, 1, false) == 0);
        CHECK(etcd_harness_start(c->etcd, 2, false) == 0);
        CHECK(etcd_harness_wait_healthy(c->etcd, 1) == 0);
        CHECK(etcd_harness_wait_healthy(c->etcd, 2) == 0);
        check_aborted(c, set_id, "3-member etcd losing quorum while frozen");
        cleanup_at_exit();
}

/* The coordinator SIGSTOPped at the moment it would decide commit (every host frozen), until its
 * lease expired and the agents aborted; SIGCONTed, it decides nothing: the decision stays abort. */
static void test_stale_coordinator(void) {
        Cluster *c = faults_new(1);
        char set_id[64];
        const int ttl = 3;
        pid_t pid = start_held(c, "freeze", "frozen", ttl, set_id);
        kill(pid, SIGSTOP);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        char *p = NULL;
        /* Host 2 freezes too (unless the lease already ended): now only commit is left to decide. */
        for (uint64_t end = now_ms() + (uint64_t) ttl * 1000; now_ms() < end; sleep_ms(20)) {
                free(p);
                p = phase_of(c, set_id, 2);
                if (p && !streq(p, "ready"))
                        break;
        }
        printf("host2 at the stop: %s\n", p ? p : "none");
        free(p);
        char *key = NULL;
        for (uint64_t end = now_ms() + 30000; now_ms() < end; sleep_ms(50)) {
                free(key);
                if (!(key = cluster_get(c, "sets/%s/coordinator", set_id)))
                        break;
        }
        CHECK(key == NULL);
        free(key);
        for (size_t i = 0; i < c->n; i++)
                wait_ended(c, set_id, i, 30);
        kill(pid, SIGCONT);
        CHECK(wait_exit(pid, 60) == 1);
        check_aborted(c, set_id, "stale coordinator (SIGSTOP past its lease, then SIGCONT)");
        cleanup_at_exit();
}

/* A writer vetoes Freeze on host 1 while the others are frozen: the set fails, the error names
 * host and writer, nothing is kept. */
static void test_veto_freeze(void) {
        Cluster *c = faults_new(1);
        int st;
        harness_set(c->hosts[1].h, c->hosts[1].writer, "freeze", "fail 1 disk on fire");
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --lease-ttl %d --json",
                                      cluster_args(c), cluster_fors(c), AGENT_TTL);
        CHECK(st == 1);
        CHECK_STR(json_str(o, "result"), "failed");
        json_object *err = NULL;
        const char *msg = json_object_object_get_ex(o, "error", &err) ? json_str(err, "message") : "(none)";
        CHECK(strstr(msg, "host host1") && strstr(msg, "'w1'"));
        printf("error: %s\n", msg);
        char set_id[64];
        snprintf(set_id, sizeof(set_id), "%s", json_str(o, "cluster_set_id"));
        json_object_put(o);
        check_aborted(c, set_id, "writer veto at Freeze on one host");
        cleanup_at_exit();
}

static const TestCase cases[] = {
        { "faults-coordinator-ready", test_coordinator_ready },
        { "faults-coordinator-frozen", test_coordinator_frozen },
        { "faults-coordinator-committed", test_coordinator_committed },
        { "faults-agent-ready", test_agent_ready },
        { "faults-agent-frozen", test_agent_frozen },
        { "faults-agent-committed", test_agent_committed },
        { "faults-link-cut", test_link_cut },
        { "faults-link-cut-committed", test_link_cut_committed },
        { "faults-etcd-stopped", test_etcd_stopped },
        { "faults-etcd-member-lost", test_etcd_member_lost },
        { "faults-etcd-quorum-lost", test_etcd_quorum_lost },
        { "faults-stale-coordinator", test_stale_coordinator },
        { "faults-veto-freeze", test_veto_freeze },
        {},
};

int main(int argc, char *argv[]) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        return test_main(argc, argv, cases);
}
