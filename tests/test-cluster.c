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
        if (test_failures)
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

static const TestCase cases[] = {
        { "cluster-success-text", test_success_text },
        { "cluster-success-json", test_success_json },
        { "cluster-invariant", test_invariant },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
