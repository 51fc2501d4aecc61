/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Cluster snapshot sets (issue 16) with real processes: one etcd on loopback, three hosts on this
 * machine each with its own vssd (socket, state directory), a real writer and a real vss-agent,
 * and `vssadmin cluster` as the coordinator. */

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

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
        /* Ending a set closes only what the set opened: stdin is still /dev/null, not closed
         * (a descriptor 0 freed would go to the next socket, and the next set would close it). */
        for (size_t h = 0; h < c->n; h++) {
                char path[64], target[64] = "";
                snprintf(path, sizeof(path), "/proc/%d/fd/0", (int) c->hosts[h].agent);
                CHECK(readlink(path, target, sizeof(target) - 1) > 0 && streq(target, "/dev/null"));
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
        /* A host record anyone who may write etcd could put: its strings reach the terminal as
         * one line of text, no escape sequence. */
        CHECK(etcd_put(c->e, "/openvss/" CLUSTER_NAME "/hosts/evil",
                       "{\"host\":\"evil\",\"writers\":[{\"name\":\"w\\u001b]0;PWNED\\u0007\",\"note\":\"n\\u001b[2J\","
                       "\"application_message\":\"m\\u009b31m\"}],\"providers\":[\"file\\u001b[1A\"]}", 0, NULL) >= 0);
        char *shown = NULL;
        CHECK(harness_sh(c->hosts[0].h, &shown, "vssadmin cluster list hosts %s; vssadmin cluster list writers %s",
                         cluster_args(c), cluster_args(c)) == 0);
        CHECK(shown && strstr(shown, "evil") && !strchr(shown, '\033') && !strchr(shown, '\007') &&
              !strstr(shown, "\xc2\x9b"));
        free(shown);
        /* Nor through a symlink below a configured path (one a user may make there): resolved first. */
        char link[4200];
        snprintf(link, sizeof(link), "%s/elsewhere", c->hosts[1].data);
        CHECK(symlink("/etc", link) == 0);
        o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s --for host0:%s --for host1:%s --json",
                         cluster_args(c), c->hosts[0].data, link);
        CHECK(st == 1);
        CHECK(strstr(json_str(get(o, "error"), "message"), "really /etc is not in this agent's config") != NULL);
        json_object_put(o);
        check_nothing_kept(c, NULL);
        CHECK(unlink(link) == 0);
        /* A host with no agent: refused before anything starts. */
        o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s --for nohost:/srv --json", cluster_args(c));
        CHECK(st == 1);
        CHECK(strstr(json_str(get(o, "error"), "message"), "host 'nohost' is not registered") != NULL);
        json_object_put(o);
        cluster_free(c);
}

/* The coordinator killed while hosts 0 and 1 have reached phase and host 2's writer is held in
 * event: its lease ends, every agent aborts, every writer thaws, nothing is kept. */
static void coordinator_killed(const char *event, const char *phase) {
        Cluster *c = cluster_new(3, 5);
        char path[600], set_id[64];
        harness_set(c->hosts[2].h, c->hosts[2].writer, event, "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --lease-ttl 2 --json", cluster_args(c),
                                  cluster_fors(c));
        const char *id = cluster_wait_phase(c, 0, phase);
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 1, phase) != NULL);
        CHECK(cluster_wait_started(c, 2, event));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        CHECK(cluster_wait_phase(c, 0, "aborted") != NULL);
        CHECK(cluster_wait_phase(c, 1, "aborted") != NULL);
        harness_go(c->hosts[2].h, c->hosts[2].writer, event);
        CHECK(cluster_wait_phase(c, 2, "aborted") != NULL);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

static void test_coordinator_killed_ready(void) {
        coordinator_killed("prepare-snapshot", "ready");
}

static void test_coordinator_killed_frozen(void) {
        coordinator_killed("freeze", "frozen");
}

static void test_coordinator_killed_committed(void) {
        coordinator_killed("post-snapshot", "committed");
}

/* A coordinator stopped (SIGSTOP) while hosts are frozen, past its lease: the hosts abort; resumed,
 * it decides nothing (its swaps require its leased key) and fails. */
static void test_stale_coordinator(void) {
        Cluster *c = cluster_new(3, 5);
        char path[600], set_id[64], *out = NULL;
        harness_set(c->hosts[2].h, c->hosts[2].writer, "freeze", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --lease-ttl 2", cluster_args(c),
                                  cluster_fors(c));
        const char *id = cluster_wait_phase(c, 0, "frozen");
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 1, "frozen") != NULL);
        CHECK(cluster_wait_started(c, 2, "freeze"));
        kill(pid, SIGSTOP);
        CHECK(cluster_wait_phase(c, 0, "aborted") != NULL);
        CHECK(cluster_wait_phase(c, 1, "aborted") != NULL);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        CHECK(cluster_wait_phase(c, 2, "aborted") != NULL);
        kill(pid, SIGCONT);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        harness_sh(c->hosts[0].h, &out, "cat %s", path);
        CHECK(out && !strstr(out, "Successfully created"));
        free(out);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

/* With --job, each host runs its configured job against its shadows once the set is complete,
 * reports its exit status, then deletes the shadows. */
static void test_job(void) {
        Cluster *c = cluster_new(3, 5);
        int st;
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --job record --json",
                                      cluster_args(c), cluster_fors(c));
        CHECK(st == 0);
        const char *set_id = json_str(o, "cluster_set_id");
        json_object *hosts = get(o, "hosts");
        for (size_t i = 0; hosts && i < json_object_array_length(hosts); i++) {
                json_object *h = json_object_array_get_idx(hosts, i);
                CHECK_STR(json_str(get(h, "job"), "name"), "record");
                CHECK(json_object_get_int(get(get(h, "job"), "exit_status")) == 0);
                json_object *sh = get(h, "shadows");
                char *out = NULL, want[200];
                harness_sh(c->hosts[i].h, &out, "cat %s/job.out", harness_dir(c->hosts[i].h));
                /* "{set}" and "{paths}": the set id, then the shadow's path. */
                snprintf(want, sizeof(want), "%s %s\n", set_id,
                         sh && json_object_array_length(sh) ? json_str(json_object_array_get_idx(sh, 0), "shadow_path") : "?");
                CHECK_STR(out, want);
                free(out);
                CHECK(cluster_local_shadows(c, i) == 0);
        }
        json_object_put(o);
        /* A job the agents do not list: every host refuses it. */
        o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --job rm-rf --json", cluster_args(c),
                         cluster_fors(c));
        CHECK(st == 1);
        CHECK(strstr(json_str(get(o, "error"), "message"), "job 'rm-rf' is not in this agent's config") != NULL);
        json_object_put(o);
        cluster_free(c);
}

/* Polls ready(arg) every 20 ms for up to 30 s. */
static bool wait_until(bool (*ready)(void *arg), void *arg) {
        for (int k = 0; k < 1500; k++) {
                if (ready(arg))
                        return true;
                struct timespec t = { 0, 20 * 1000 * 1000 };
                nanosleep(&t, NULL);
        }
        return ready(arg);
}

static bool file_exists(void *path) {
        return access(path, F_OK) == 0;
}

/* Up to 30 s for path to exist. */
static bool wait_file(const char *path) {
        if (wait_until(file_exists, (void *) path))
                return true;
        fprintf(stderr, "%s never appeared\n", path);
        return false;
}

/* etcd holds two plans (of any sets of the cluster). */
static bool two_plans(void *userdata) {
        Cluster *c = userdata;
        etcd_kvs kvs = {};
        size_t plans = 0;
        if (etcd_get_prefix(c->e, "/openvss/" CLUSTER_NAME "/sets/", &kvs) >= 0)
                for (size_t j = 0; j < kvs.n; j++) {
                        size_t len = strlen(kvs.kvs[j].key);
                        plans += len > 5 && streq(kvs.kvs[j].key + len - 5, "/plan");
                }
        etcd_kvs_clear(&kvs);
        return plans == 2;
}

/* A plan written while the hosts are busy with another set (its job runs) fails as busy, naming
 * that set, once they are free again (each agent watches only its set meanwhile, and then reads
 * what it missed); the first set is kept. */
static void test_busy(void) {
        Cluster *c = cluster_new(3, 5);
        const char *d0 = harness_dir(c->hosts[0].h);
        char path[600];
        for (size_t i = 0; i < c->n; i++) {
                snprintf(path, sizeof(path), "%s/gate", harness_dir(c->hosts[i].h));
                CHECK(mkfifo(path, 0600) == 0);
        }
        CHECK(harness_sh(c->hosts[0].h, NULL,
                         "(vssadmin cluster create shadow %s%s --job gate --json; echo $? > %s/first.tmp; mv %s/first.tmp %s/first.rc) > %s/first.json 2>%s/first.err "
                         "< /dev/null &", cluster_args(c), cluster_fors(c), d0, d0, d0, d0, d0) == 0);
        for (size_t i = 0; i < c->n; i++) {
                snprintf(path, sizeof(path), "%s/gate-open", harness_dir(c->hosts[i].h));
                CHECK(wait_file(path));
        }
        CHECK(harness_sh(c->hosts[0].h, NULL,
                         "(vssadmin cluster create shadow %s%s --json; echo $? > %s/second.tmp; mv %s/second.tmp %s/second.rc) > %s/second.json 2>%s/second.err "
                         "< /dev/null &", cluster_args(c), cluster_fors(c), d0, d0, d0, d0, d0) == 0);
        /* Both plans are in etcd before the first set may end. */
        CHECK(wait_until(two_plans, c));
        for (size_t i = 0; i < c->n; i++) {
                snprintf(path, sizeof(path), "%s/gate", harness_dir(c->hosts[i].h));
                FILE *f = fopen(path, "we");
                CHECK(f && fputs("go\n", f) >= 0 && fclose(f) == 0);
        }
        snprintf(path, sizeof(path), "%s/first.rc", d0);
        CHECK(wait_file(path));
        snprintf(path, sizeof(path), "%s/second.rc", d0);
        CHECK(wait_file(path));
        int st;
        json_object *first = harness_json(c->hosts[0].h, &st, "cat %s/first.json; exit $(cat %s/first.rc)", d0, d0);
        CHECK(st == 0);
        json_object *second = harness_json(c->hosts[0].h, &st, "cat %s/second.json; exit $(cat %s/second.rc)", d0, d0);
        CHECK(st == 1);
        char want[128];
        snprintf(want, sizeof(want), "busy with cluster set %s", json_str(first, "cluster_set_id"));
        const char *msg = json_str(get(second, "error"), "message");
        CHECK(msg && strstr(msg, want) != NULL);
        if (!msg || !strstr(msg, want))
                fprintf(stderr, "second set: %s\n", json_object_to_json_string(second));
        json_object_put(first);
        json_object_put(second);
        cluster_free(c);
}

typedef struct WriterEvent {
        Cluster *c;
        size_t i;
        const char *event;
} WriterEvent;

static bool writer_saw(void *userdata) {
        WriterEvent *w = userdata;
        return cluster_writer_saw(w->c, w->i, w->event);
}

/* Waits (up to 30 s) until host i's writer logged event. */
static bool wait_writer_saw(Cluster *c, size_t i, const char *event) {
        WriterEvent w = { c, i, event };
        if (wait_until(writer_saw, &w))
                return true;
        fprintf(stderr, "%s's writer never saw %s\n", c->hosts[i].name, event);
        return false;
}

/* etcd stopped while hosts are frozen: each agent aborts its part once etcd has not answered for
 * its lease TTL (every writer thaws, nothing is kept); when etcd is back the agents report it and
 * move the decision to abort, and the coordinator fails. */
static void test_etcd_stopped_frozen(void) {
        Cluster *c = cluster_new(3, 2);
        char path[600], set_id[64];
        harness_set(c->hosts[2].h, c->hosts[2].writer, "freeze", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --json", cluster_args(c), cluster_fors(c));
        const char *id = cluster_wait_phase(c, 0, "frozen");
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 1, "frozen") != NULL);
        CHECK(cluster_wait_started(c, 2, "freeze"));
        CHECK(etcd_harness_stop(c->etcd, 0) == 0);
        CHECK(wait_writer_saw(c, 0, "abort"));
        CHECK(wait_writer_saw(c, 1, "abort"));
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        CHECK(wait_writer_saw(c, 2, "abort"));
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_local_shadows(c, i) == 0);
        CHECK(etcd_harness_start(c->etcd, 0, true) == 0);
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_wait_phase(c, i, "aborted") != NULL);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

/* etcd stopped after hosts 0 and 1 committed (host 2 held in PostSnapshot): 0 and 1 keep their
 * shadows in doubt while they cannot read the decision; when etcd is back the set is aborted
 * (host 2 never committed) and they delete them. */
static void test_etcd_stopped_committed(void) {
        Cluster *c = cluster_new(3, 2);
        char path[600], set_id[64];
        harness_set(c->hosts[2].h, c->hosts[2].writer, "post-snapshot", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --json", cluster_args(c), cluster_fors(c));
        const char *id = cluster_wait_phase(c, 0, "committed");
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 1, "committed") != NULL);
        CHECK(cluster_wait_started(c, 2, "post-snapshot"));
        CHECK(etcd_harness_stop(c->etcd, 0) == 0);
        /* In doubt: the agents say so once etcd has been away for their lease; shadows kept. */
        for (size_t i = 0; i < 2; i++) {
                char logp[600], *out = NULL;
                snprintf(logp, sizeof(logp), "%s/agent.log", harness_dir(c->hosts[i].h));
                for (int k = 0; k < 1500 && !(out && strstr(out, "in doubt")); k++) {
                        free(out);
                        out = NULL;
                        harness_sh(c->hosts[i].h, &out, "cat %s", logp);
                        struct timespec t = { 0, 20 * 1000 * 1000 };
                        nanosleep(&t, NULL);
                }
                CHECK(out && strstr(out, "in doubt"));
                free(out);
                CHECK(cluster_local_shadows(c, i) == 1);
        }
        harness_go(c->hosts[2].h, c->hosts[2].writer, "post-snapshot");
        CHECK(etcd_harness_start(c->etcd, 0, true) == 0);
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_wait_phase(c, i, "aborted") != NULL);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

/* Host 1's link to etcd cut while the hosts are frozen, restored later: host 1 aborts on its own
 * once etcd has been silent for its lease, the coordinator sees its lease end and aborts the set,
 * every writer thaws; restored, host 1 reports its part. Nothing is kept. */
static void test_link_cut_frozen(void) {
        Cluster *c = cluster_new(3, 2);
        char path[600], set_id[64];
        cluster_link_start(c, 1);
        cluster_kill_agent(c, 1);
        cluster_start_agent(c, 1); /* now through its link */
        harness_set(c->hosts[2].h, c->hosts[2].writer, "freeze", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --json", cluster_args(c), cluster_fors(c));
        const char *id = cluster_wait_phase(c, 1, "frozen");
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 0, "frozen") != NULL);
        CHECK(cluster_wait_started(c, 2, "freeze"));
        cluster_link_cut(c, 1);
        CHECK(wait_writer_saw(c, 1, "abort"));
        CHECK(cluster_wait_phase(c, 0, "aborted") != NULL);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        CHECK(cluster_wait_phase(c, 2, "aborted") != NULL);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_local_shadows(c, i) == 0);
        cluster_link_restore(c, 1);
        CHECK(cluster_wait_phase(c, 1, "aborted") != NULL);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

/* A host that takes too long to freeze: the coordinator gives up before the first host's freeze
 * window (60 s here, less a margin of 58 s) ends, and the set aborts everywhere. */
static void test_frozen_deadline(void) {
        Cluster *c = cluster_new(3, 5);
        char path[600], set_id[64], *out = NULL;
        harness_set(c->hosts[2].h, c->hosts[2].writer, "freeze", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --frozen-margin 58000 --json", cluster_args(c),
                                  cluster_fors(c));
        const char *id = cluster_wait_phase(c, 0, "frozen");
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 0, "aborted") != NULL);
        CHECK(cluster_wait_phase(c, 1, "aborted") != NULL);
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        CHECK(cluster_wait_phase(c, 2, "aborted") != NULL);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        harness_sh(c->hosts[0].h, &out, "cat %s", path);
        CHECK(out && strstr(out, "the first freeze window would end (less the margin of 58000 ms) before every host froze"));
        free(out);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

/* Over HTTPS with client certificates, the agents and the coordinator alike. */
static void test_tls(void) {
        Cluster *c = cluster_new_with(3, 5, 1, true);
        int st;
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --json", cluster_args(c),
                                      cluster_fors(c));
        CHECK(st == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        json_object_put(o);
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_local_shadows(c, i) == 1);
        cluster_free(c);
}

/* A 3-member etcd: losing one member, the set still succeeds; losing quorum while the hosts are
 * frozen, it aborts (every writer thaws, nothing kept). */
static void test_etcd_members(void) {
        Cluster *c = cluster_new_with(3, 2, 3, false);
        int st;
        CHECK(etcd_harness_stop(c->etcd, 0) == 0);
        json_object *o = harness_json(c->hosts[0].h, &st, "vssadmin cluster create shadow %s%s --json", cluster_args(c),
                                      cluster_fors(c));
        CHECK(st == 0);
        CHECK_STR(json_str(o, "result"), "ok");
        json_object_put(o);

        char path[600], set_id[64];
        harness_set(c->hosts[2].h, c->hosts[2].writer, "freeze", "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --json", cluster_args(c), cluster_fors(c));
        const char *id = cluster_wait_phase(c, 0, "frozen");
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_phase(c, 1, "frozen") != NULL);
        CHECK(cluster_wait_started(c, 2, "freeze"));
        CHECK(etcd_harness_stop(c->etcd, 1) == 0); /* one of three left: no quorum */
        CHECK(wait_writer_saw(c, 0, "abort"));
        CHECK(wait_writer_saw(c, 1, "abort"));
        harness_go(c->hosts[2].h, c->hosts[2].writer, "freeze");
        CHECK(wait_writer_saw(c, 2, "abort"));
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_local_shadows(c, i) == 1); /* the first set's, not this one's */
        CHECK(etcd_harness_start(c->etcd, 0, false) == 0);
        CHECK(etcd_harness_start(c->etcd, 1, false) == 0);
        CHECK(etcd_harness_wait_healthy(c->etcd, 0) == 0);
        for (size_t i = 0; i < c->n; i++)
                CHECK(cluster_wait_phase(c, i, "aborted") != NULL);
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        char *d = cluster_get(c, "sets/%s/decision", set_id);
        CHECK_STR(d, "abort");
        free(d);
        cluster_free(c);
}

/* Host 1's agent killed once host 1 reached phase (host 2's writer held in event): its lease
 * ends, the coordinator aborts the set naming host 1, everyone aborts; restarted, the agent
 * reconciles its part with the decision (abort): nothing stays on any host. */
static void agent_killed(const char *event, const char *phase) {
        Cluster *c = cluster_new(3, 2);
        char path[600], set_id[64], *out = NULL;
        harness_set(c->hosts[2].h, c->hosts[2].writer, event, "wait");
        snprintf(path, sizeof(path), "%s/coordinator.out", harness_dir(c->hosts[0].h));
        pid_t pid = cluster_spawn(c, path, "vssadmin cluster create shadow %s%s --json", cluster_args(c), cluster_fors(c));
        const char *id = cluster_wait_phase(c, 1, phase);
        snprintf(set_id, sizeof(set_id), "%s", id ? id : "");
        CHECK(cluster_wait_started(c, 2, event));
        cluster_kill_agent(c, 1);
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1);
        harness_go(c->hosts[2].h, c->hosts[2].writer, event);
        CHECK(cluster_wait_phase(c, 0, "aborted") != NULL);
        CHECK(cluster_wait_phase(c, 2, "aborted") != NULL);
        harness_sh(c->hosts[0].h, &out, "cat %s", path);
        CHECK(out && strstr(out, "host host1: its agent is gone"));
        free(out);
        /* Until its agent returns, a host that committed keeps its (persistent) shadows. */
        if (streq(phase, "committed"))
                CHECK(cluster_local_shadows(c, 1) == 1);
        /* Restarted, the agent finds its record of the set and the decision abort. */
        cluster_start_agent(c, 1);
        CHECK(cluster_wait_phase(c, 1, "aborted") != NULL);
        snprintf(path, sizeof(path), "%s/agent-state/" CLUSTER_NAME ".%s.json", harness_dir(c->hosts[1].h), set_id);
        CHECK(access(path, F_OK) < 0);
        check_nothing_kept(c, set_id);
        cluster_free(c);
}

static void test_agent_killed_frozen(void) {
        agent_killed("freeze", "frozen");
}

/* After the commit host 1's shadows exist (persistent): the restarted agent deletes them. */
static void test_agent_killed_committed(void) {
        agent_killed("post-snapshot", "committed");
}

/* Usage errors (exit 2, one clear line) and refused starts (exit 1), with no etcd needed. */
static void test_usage(void) {
        static const struct {
                const char *cmd, *message;
                int status;
        } cases[] = {
                { "vssadmin cluster list hosts", "vssadmin cluster needs --etcd URL[,URL...] and --cluster NAME", 2 },
                { "vssadmin cluster list hosts --etcd http://127.0.0.1:1 --cluster a/b", "'a/b' is not a cluster name", 2 },
                { "vssadmin cluster create shadow --etcd http://127.0.0.1:1 --cluster c", "cluster create shadow needs --for HOST:PATH", 2 },
                { "vssadmin cluster create shadow --etcd http://127.0.0.1:1 --cluster c --for h:rel", "--for takes HOST:PATH with an absolute PATH", 2 },
                { "vssadmin cluster create shadow --etcd http://127.0.0.1:1 --cluster c --for /srv", "--for takes HOST:PATH", 2 },
                { "vssadmin cluster delete shadows --etcd http://127.0.0.1:1 --cluster c", "cluster delete shadows needs --set ID", 2 },
                { "vssadmin cluster delete shadows --etcd http://127.0.0.1:1 --cluster c --set nope", "'nope' is not an id", 2 },
                { "vssadmin cluster list things --etcd http://127.0.0.1:1 --cluster c", "unknown command 'cluster list things'", 2 },
                { "vssadmin cluster list hosts --etcd http://127.0.0.1:1 --cluster c --lease-ttl 1", "--lease-ttl must be at least 2", 2 },
                { "vssadmin cluster list hosts --etcd http://127.0.0.1:1 --cluster c --bogus", "unknown option '--bogus'", 2 },
                { "vssadmin cluster list hosts --etcd http://127.0.0.1:1 --cluster c", "cannot read /openvss/c/hosts/ from etcd", 1 },
                { VSS_AGENT_PATH " --cluster c", "--etcd URL and --cluster NAME are required", 2 },
                { VSS_AGENT_PATH " --etcd http://127.0.0.1:1 --cluster c --host 'a b'", "'a b' is not a host name", 2 },
                { VSS_AGENT_PATH " --etcd http://127.0.0.1:1 --cluster c --cert x", "--cert goes with --key", 2 },
                { VSS_AGENT_PATH " --etcd http://127.0.0.1:1 --cluster c --config /nonexistent.json",
                  "config: cannot read /nonexistent.json", 1 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *out = NULL;
                int st = harness_sh(NULL, &out, "STATE_DIRECTORY=/tmp %s 2>&1", cases[i].cmd);
                if (st != cases[i].status || !out || !strstr(out, cases[i].message))
                        fprintf(stderr, "`%s`: status %d, output:\n%s\n", cases[i].cmd, st, out ? out : "");
                CHECK(st == cases[i].status);
                CHECK(out && strstr(out, cases[i].message));
                free(out);
        }
}

static const TestCase cases[] = {
        { "cluster-success-text", test_success_text },
        { "cluster-success-json", test_success_json },
        { "cluster-invariant", test_invariant },
        { "cluster-lists-delete", test_lists_delete },
        { "cluster-veto", test_veto },
        { "cluster-path-refused", test_path_refused },
        { "cluster-coordinator-killed-ready", test_coordinator_killed_ready },
        { "cluster-coordinator-killed-frozen", test_coordinator_killed_frozen },
        { "cluster-coordinator-killed-committed", test_coordinator_killed_committed },
        { "cluster-stale-coordinator", test_stale_coordinator },
        { "cluster-job", test_job },
        { "cluster-busy", test_busy },
        { "cluster-etcd-stopped-frozen", test_etcd_stopped_frozen },
        { "cluster-etcd-stopped-committed", test_etcd_stopped_committed },
        { "cluster-link-cut-frozen", test_link_cut_frozen },
        { "cluster-frozen-deadline", test_frozen_deadline },
        { "cluster-tls", test_tls },
        { "cluster-usage", test_usage },
        { "cluster-etcd-members", test_etcd_members },
        { "cluster-agent-killed-frozen", test_agent_killed_frozen },
        { "cluster-agent-killed-committed", test_agent_killed_committed },
        {},
};

/* The faults that heavy/cluster-faults-* also make, there with each agent in its own network
 * namespace: here (a relay for the link) they run in `make check-full` only, to keep `make check`
 * short; on a machine without namespaces they are the ones that run. */
static const char *const full_only[] = {
        "cluster-coordinator-killed-ready", "cluster-coordinator-killed-frozen", "cluster-coordinator-killed-committed",
        "cluster-stale-coordinator", "cluster-etcd-stopped-frozen", "cluster-etcd-members", "cluster-link-cut-frozen",
        "cluster-agent-killed-frozen", "cluster-agent-killed-committed",
};

int main(int argc, char *argv[]) {
        const char *full = getenv("OPENVSS_CHECK_FULL");
        bool netns = access("/usr/bin/socat", X_OK) == 0 && geteuid() == 0;
        for (size_t i = 0; argc > 1 && netns && !(full && streq(full, "1")) && i < ELEMENTSOF(full_only); i++)
                if (streq(argv[1], full_only[i])) {
                        printf("skip - %s: made by heavy/cluster-faults-* in make check; here in make check-full\n",
                               argv[1]);
                        return 77;
                }
        return test_main(argc, argv, cases);
}
