/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cluster snapshot sets (issue 16) with real processes: one etcd on loopback, three hosts on this
 * machine each with its own vssd (socket, state directory), a real writer and a real vss-agent,
 * and `vssadmin cluster` as the coordinator. */

#include <signal.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "lib/common.h"
#include "tests/cluster-harness.h"

static const char *const phases[] = { "prepared", "ready", "frozen", "committed", "done" };

static size_t count_of(const char *s, const char *what) {
        size_t n = 0;
        for (const char *p = s; p && (p = strstr(p, what)); p += strlen(what))
                n++;
        return n;
}

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The state name of writer `name` in a phase of a host object of create shadow's JSON. */
static const char *state_in(json_object *host, const char *phase, const char *name) {
        json_object *ps = get(host, "phases");
        for (size_t i = 0; ps && i < json_object_array_length(ps); i++) {
                json_object *p = json_object_array_get_idx(ps, i);
                if (!streq(json_str(p, "phase"), phase))
                        continue;
                json_object *ws = get(p, "writers");
                for (size_t k = 0; ws && k < json_object_array_length(ws); k++)
                        if (streq(json_str(json_object_array_get_idx(ws, k), "name"), name))
                                return json_str(json_object_array_get_idx(ws, k), "state_name");
        }
        return NULL;
}

/* Text: after every phase a "Writer status after PHASE:" block with a Host: line and the writer
 * of every host; the shadow of every host; exit 0. */
static void test_success_text(void) {
        Cluster *c = cluster_new(3, 5);
        char *out = NULL;
        int st = harness_sh(c->hosts[0].h, &out, "vssadmin cluster create shadow %s%s", cluster_args(c), cluster_fors(c));
        CHECK(st == 0);
        const char *pos = out;
        for (size_t i = 0; i < ELEMENTSOF(phases); i++) {
                char head[64];
                snprintf(head, sizeof(head), "Writer status after %s:\n", phases[i]);
                const char *p = pos ? strstr(pos, head) : NULL;
                CHECK(p != NULL);
                if (!p)
                        break;
                const char *end = strstr(p + strlen(head), "Writer status after ");
                char *block = end ? strndup(p, (size_t) (end - p)) : strdup(p);
                for (size_t h = 0; h < c->n; h++) {
                        char line[128];
                        snprintf(line, sizeof(line), "Host: %s\n   Writer name: '%s'\n", c->hosts[h].name, c->hosts[h].writer);
                        CHECK(strstr(block, line) != NULL);
                }
                CHECK(count_of(block, "      Last error: No error\n") == c->n);
                free(block);
                pos = p + strlen(head);
        }
        CHECK(count_of(out, "Successfully created shadow copy for '") == c->n);
        CHECK(strstr(out, "Cluster shadow copy set ID: {") != NULL);
        for (size_t h = 0; h < c->n; h++)
                CHECK(cluster_local_shadows(c, h) == 1);
        if (test_failures || getenv("HARNESS_DUMP"))
                fprintf(stderr, "%s", out ? out : "");
        free(out);
        cluster_free(c);
}

/* JSON: result ok, one cluster set id, every host's status after every phase, each host's shadow
 * in its own vssd under the local set id the host reported. */
static void test_success_json(void) {
        Cluster *c = cluster_new(3, 5);
        int st;
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --json", cluster_args(c),
                                      cluster_fors(c));
        CHECK(st == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        CHECK(get(o, "error") == NULL);
        const char *set_id = json_str(o, "cluster_set_id");
        vss_id id;
        CHECK(vss_id_from_string(set_id, &id) == 0);
        json_object *hosts = get(o, "hosts");
        CHECK(hosts && json_object_array_length(hosts) == c->n);
        static const char *const want[] = { "Stable", "WaitingForFreeze", "WaitingForThaw", "WaitingForBackupComplete",
                                            "Stable" };
        for (size_t h = 0; hosts && h < json_object_array_length(hosts) && h < c->n; h++) {
                json_object *ho = json_object_array_get_idx(hosts, h);
                CHECK_STR(json_str(ho, "host"), c->hosts[h].name);
                CHECK(json_object_array_length(get(ho, "phases")) == ELEMENTSOF(phases));
                for (size_t p = 0; p < ELEMENTSOF(phases); p++) {
                        const char *s = state_in(ho, phases[p], c->hosts[h].writer);
                        if (!s || !streq(s, want[p]))
                                fprintf(stderr, "%s after %s: %s, expected %s\n", c->hosts[h].name, phases[p],
                                        s ? s : "(none)", want[p]);
                        CHECK(s && streq(s, want[p]));
                }
                json_object *sh = get(ho, "shadows");
                CHECK(sh && json_object_array_length(sh) == 1);
                if (!sh || json_object_array_length(sh) != 1)
                        continue;
                /* The host's local shadow is in its own vssd, under the set id it reported. */
                json_object *x = json_object_array_get_idx(sh, 0);
                int st2;
                json_object *local = harness_json(c->hosts[h].h, &st2, "vssadmin --socket %s list shadows --json",
                                                  harness_socket(c->hosts[h].h));
                json_object *ls = get(local, "shadows");
                CHECK(ls && json_object_array_length(ls) == 1);
                if (ls && json_object_array_length(ls) == 1)
                        CHECK_STR(json_str(json_object_array_get_idx(ls, 0), "snapshot_set_id"), json_str(x, "snapshot_set_id"));
                json_object_put(local);
        }
        /* etcd has the set complete, and every host's record done. */
        char *d = cluster_get(c, "sets/%s/decision", set_id);
        CHECK_STR(d, "complete");
        free(d);
        json_object_put(o);
        cluster_free(c);
}

/* No host thaws before every host froze: max(Freeze entered) < min(Thaw entered), every set. */
static void test_invariant(void) {
        Cluster *c = cluster_new(3, 5);
        const int sets = 5;
        for (int k = 0; k < sets; k++) {
                cluster_clear_stamps(c);
                char *out = NULL;
                int st = harness_sh(c->hosts[0].h, &out, "vssadmin cluster create shadow %s%s --json", cluster_args(c),
                                    cluster_fors(c));
                CHECK(st == 0);
                free(out);
                uint64_t max_freeze = 0, min_thaw = UINT64_MAX, t[4];
                for (size_t h = 0; h < c->n; h++) {
                        CHECK(cluster_stamps(c, h, "freeze", t, 4) == 1);
                        max_freeze = t[0] > max_freeze ? t[0] : max_freeze;
                        CHECK(cluster_stamps(c, h, "thaw", t, 4) == 1);
                        min_thaw = t[0] < min_thaw ? t[0] : min_thaw;
                }
                CHECK(max_freeze < min_thaw);
                printf("set %d: last Freeze entered %.3f ms before the first Thaw\n", k + 1,
                       (double) (min_thaw - max_freeze) / 1e6);
        }
        cluster_free(c);
}

/* Lists read from etcd, and a delete marker every host applies. */
static void test_lists_delete(void) {
        Cluster *c = cluster_new(3, 5);
        int st;
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --json", cluster_args(c),
                                      cluster_fors(c));
        CHECK(st == 0);
        char set_id[64];
        snprintf(set_id, sizeof(set_id), "%s", json_str(o, "cluster_set_id"));
        json_object_put(o);

        o = harness_json(c->hosts[0].h, &st, "vssadmin cluster list hosts %s --json", cluster_args(c));
        CHECK(st == 0);
        json_object *hosts = get(o, "hosts");
        CHECK(hosts && json_object_array_length(hosts) == c->n);
        for (size_t i = 0; hosts && i < json_object_array_length(hosts); i++) {
                json_object *h = json_object_array_get_idx(hosts, i), *ws = get(h, "writers"), *ps = get(h, "providers");
                CHECK(json_object_get_boolean(get(h, "alive")));
                CHECK(ws && json_object_array_length(ws) == 1);
                CHECK(ps && json_object_array_length(ps) >= 1);
                if (ws && json_object_array_length(ws) == 1) {
                        json_object *w = json_object_array_get_idx(ws, 0);
                        CHECK(strncmp(json_str(w, "name"), "w", 1) == 0);
                        CHECK(get(w, "as_of") != NULL && get(w, "state_name") != NULL && get(w, "writer_id") != NULL);
                }
        }
        json_object_put(o);

        char *out = NULL;
        CHECK(harness_sh(c->hosts[0].h, &out, "vssadmin cluster list writers %s", cluster_args(c)) == 0);
        for (size_t i = 0; i < c->n; i++) {
                char line[128];
                snprintf(line, sizeof(line), "Host: %s\n   Writer name: '%s'\n", c->hosts[i].name, c->hosts[i].writer);
                CHECK(out && strstr(out, line));
        }
        free(out);
        CHECK(harness_sh(c->hosts[0].h, &out, "vssadmin cluster list hosts %s", cluster_args(c)) == 0);
        CHECK(out && count_of(out, "   Alive: yes") == c->n);
        free(out);

        o = harness_json(c->hosts[0].h, &st, "vssadmin cluster list shadows %s --json", cluster_args(c));
        json_object *sets = get(o, "sets");
        CHECK(sets && json_object_array_length(sets) == 1);
        json_object *set = sets ? json_object_array_get_idx(sets, 0) : NULL;
        CHECK_STR(json_str(set, "cluster_set_id"), set_id);
        CHECK_STR(json_str(set, "decision"), "complete");
        hosts = get(set, "hosts");
        CHECK(hosts && json_object_array_length(hosts) == c->n);
        for (size_t i = 0; hosts && i < json_object_array_length(hosts); i++) {
                CHECK_STR(json_str(json_object_array_get_idx(hosts, i), "state"), "kept");
                CHECK(json_object_array_length(get(json_object_array_get_idx(hosts, i), "shadows")) == 1);
        }
        json_object_put(o);

        CHECK(harness_sh(c->hosts[0].h, &out, "vssadmin cluster delete shadows %s --set %s", cluster_args(c), set_id) == 0);
        CHECK(out && strstr(out, "Deleted the shadows of cluster set"));
        free(out);
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_local_shadows(c, i) == 0);
        o = harness_json(c->hosts[0].h, &st, "vssadmin cluster list shadows %s --json", cluster_args(c));
        set = get(o, "sets") ? json_object_array_get_idx(get(o, "sets"), 0) : NULL;
        CHECK(json_object_get_boolean(get(set, "delete_requested")));
        for (size_t i = 0; i < c->n; i++)
                CHECK_STR(json_str(json_object_array_get_idx(get(set, "hosts"), i), "state"), "deleted");
        json_object_put(o);
        /* An unknown set: a clear error. */
        CHECK(harness_sh(c->hosts[0].h, &out, "vssadmin cluster delete shadows %s --set 00000000-0000-0000-0000-000000000001 2>&1",
                         cluster_args(c)) == 1);
        CHECK(out && strstr(out, "no cluster set {00000000-0000-0000-0000-000000000001}"));
        free(out);
        cluster_free(c);
}

/* Every writer of every host ended its part (Abort or Thaw after Freeze, or never frozen), and no
 * host keeps a shadow. */
static void check_nothing_kept(Cluster *c, const char *set_id) {
        for (size_t i = 0; i < c->n; i++) {
                CHECK(cluster_local_shadows(c, i) == 0);
                uint64_t f[4], t[4], a[4];
                size_t nf = cluster_stamps(c, i, "freeze", f, 4), nt = cluster_stamps(c, i, "thaw", t, 4),
                       na = cluster_stamps(c, i, "abort", a, 4);
                if (nf)
                        CHECK(nt + na >= 1);
                if (nf && nt + na >= 1)
                        printf("%s: writer frozen for %.1f ms\n", c->hosts[i].name,
                               (double) ((nt ? t[0] : a[0]) - f[0]) / 1e6);
        }
        if (set_id) {
                char *d = cluster_get(c, "sets/%s/decision", set_id);
                CHECK_STR(d, "abort");
                free(d);
        }
}

/* A writer's veto on one host fails the whole set; the error names the host and the writer. */
static void test_veto(void) {
        Cluster *c = cluster_new(3, 5);
        int st;
        harness_set(c->hosts[1].h, c->hosts[1].writer, "prepare-snapshot", "fail 1 disk on fire");
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --json", cluster_args(c),
                                      cluster_fors(c));
        CHECK(st == 1);
        CHECK_STR(json_str(o, "result"), "failed");
        const char *msg = json_str(get(o, "error"), "message");
        CHECK(strstr(msg, "host host1: writer 'w1' is FailedAtPrepareSnapshot") != NULL);
        if (!strstr(msg, "host host1: writer 'w1'"))
                fprintf(stderr, "error: %s\n", msg);
        json_object *hosts = get(o, "hosts");
        for (size_t i = 0; hosts && i < json_object_array_length(hosts); i++)
                CHECK(json_object_array_length(get(json_object_array_get_idx(hosts, i), "shadows")) == 0);
        char set_id[64];
        snprintf(set_id, sizeof(set_id), "%s", json_str(o, "cluster_set_id"));
        json_object_put(o);
        check_nothing_kept(c, set_id);
        /* The text form says the same on stderr. */
        char *out = NULL;
        CHECK(harness_sh(c->hosts[0].h, &out, "vssadmin cluster create shadow %s%s 2>&1", cluster_args(c), cluster_fors(c)) == 1);
        CHECK(out && strstr(out, "vssadmin: cluster create shadow failed: ") && strstr(out, "host host1: writer 'w1'"));
        free(out);
        cluster_free(c);
}

/* A plan naming a path the agent's config does not list fails that host, clearly. */
static void test_path_refused(void) {
        Cluster *c = cluster_new(2, 5);
        int st;
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s --for host0:%s --for host1:/etc --json",
                                      cluster_args(c), c->hosts[0].data);
        CHECK(st == 1);
        CHECK(strstr(json_str(get(o, "error"), "message"), "host host1: path /etc is not in this agent's config") != NULL);
        json_object_put(o);
        check_nothing_kept(c, NULL);
        /* A host with no agent: refused before anything starts. */
        o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s --for nohost:/srv --json", cluster_args(c));
        CHECK(st == 1);
        CHECK(strstr(json_str(get(o, "error"), "message"), "host 'nohost' is not registered") != NULL);
        json_object_put(o);
        cluster_free(c);
}

/* The coordinator killed while two hosts are frozen and the third is in Freeze: its lease ends,
 * every agent aborts, every writer thaws, nothing is kept. */
static void test_coordinator_killed_frozen(void) {
        Cluster *c = cluster_new(3, 5);
        char path[600];
        harness_set(c->hosts[2].h, c->hosts[2].writer, "freeze", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --lease-ttl 2 --json", cluster_args(c),
                                  cluster_fors(c));
        const char *id = cluster_wait_phase(c, 0, "frozen");
        char set_id[64];
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 1, "frozen") != NULL);
        CHECK(cluster_wait_started(c, 2, "freeze"));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        CHECK(cluster_wait_phase(c, 0, "aborted") != NULL);
        CHECK(cluster_wait_phase(c, 1, "aborted") != NULL);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        CHECK(cluster_wait_phase(c, 2, "aborted") != NULL);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

/* An agent killed while its host is frozen: its vssd aborts the local set (its requester is
 * gone), its lease ends, the coordinator aborts the set; restarted, the agent reconciles. */
static void test_agent_killed_restarted(void) {
        Cluster *c = cluster_new(3, 2);
        char path[600], *out = NULL;
        harness_set(c->hosts[2].h, c->hosts[2].writer, "freeze", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --json", cluster_args(c), cluster_fors(c));
        const char *id = cluster_wait_phase(c, 1, "frozen");
        char set_id[64];
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_started(c, 2, "freeze"));
        cluster_kill_agent(c, 1);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        CHECK(cluster_wait_phase(c, 0, "aborted") != NULL);
        CHECK(cluster_wait_phase(c, 2, "aborted") != NULL);
        harness_sh(c->hosts[0].h, &out, "cat %s", path);
        CHECK(out && strstr(out, "host host1: its agent is gone"));
        free(out);
        /* Restarted, the agent finds its record of the set and the decision abort: nothing stays. */
        cluster_start_agent(c, 1);
        CHECK(cluster_wait_phase(c, 1, "aborted") != NULL);
        snprintf(path, sizeof(path), "%s/agent-state/" CLUSTER_NAME ".%s.json", harness_dir(c->hosts[1].h), set_id);
        CHECK(access(path, F_OK) < 0);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

static const TestCase cases[] = {
        { "cluster-success-text", test_success_text },
        { "cluster-success-json", test_success_json },
        { "cluster-invariant", test_invariant },
        { "cluster-lists-delete", test_lists_delete },
        { "cluster-veto", test_veto },
        { "cluster-path-refused", test_path_refused },
        { "cluster-coordinator-killed-frozen", test_coordinator_killed_frozen },
        { "cluster-agent-killed-restarted", test_agent_killed_restarted },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
