/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The cluster module and vss-agent's config without etcd or vssd: names, keys, the decision that
 * only moves forward, strict plans and records, strict configs and job arguments. */

#include <fcntl.h>

#include "agent/cluster.h"
#include "agent/vss-agent.h"
#include "lib/common.h"
#include "tests/check.h"

int test_failures;

static void test_names_keys(void) {
        char key[CLUSTER_KEY_MAX], set[64];
        CHECK(cluster_name_valid("host-1.example_a"));
        CHECK(!cluster_name_valid(""));
        CHECK(!cluster_name_valid(".hidden"));
        CHECK(!cluster_name_valid("a/b"));
        CHECK(!cluster_name_valid("a b"));
        CHECK(!cluster_name_valid("0123456789012345678901234567890123456789012345678901234567890123"));
        CHECK_STR(cluster_key(key, "prod", "sets/%s/hosts/%s", "S", "h"), "/openvss/prod/sets/S/hosts/h");
        CHECK_STR(cluster_set_key_rest("/openvss/prod/sets/S1/hosts/h", "prod", set), "hosts/h");
        CHECK_STR(set, "S1");
        CHECK(cluster_set_key_rest("/openvss/prod/hosts/h", "prod", set) == NULL);
        CHECK(cluster_set_key_rest("/openvss/other/sets/S1/plan", "prod", set) == NULL);
        CHECK(cluster_set_key_rest("/openvss/prod/sets/S1", "prod", set) == NULL);
}

static void test_decisions(void) {
        CHECK(decision_may_move(DECISION_NONE, DECISION_SNAPSHOT));
        CHECK(decision_may_move(DECISION_SNAPSHOT, DECISION_FREEZE));
        CHECK(decision_may_move(DECISION_FREEZE, DECISION_COMMIT));
        CHECK(decision_may_move(DECISION_COMMIT, DECISION_COMPLETE));
        CHECK(!decision_may_move(DECISION_NONE, DECISION_FREEZE)); /* no skipping */
        CHECK(!decision_may_move(DECISION_FREEZE, DECISION_SNAPSHOT)); /* never back */
        for (Decision d = DECISION_NONE; d < DECISION_COMPLETE; d++)
                CHECK(decision_may_move(d, DECISION_ABORT));
        CHECK(!decision_may_move(DECISION_COMPLETE, DECISION_ABORT)); /* complete is final */
        CHECK(!decision_may_move(DECISION_ABORT, DECISION_SNAPSHOT));
        CHECK(decision_from_name("freeze") == DECISION_FREEZE);
        CHECK(decision_from_name("thaw") == DECISION_INVALID);
        CHECK(phase_from_name("frozen") == PHASE_FROZEN);
        CHECK(phase_from_name("x") == PHASE_INVALID);
}

/* The error names what is wrong: says which case did not, and what it said instead. */
static void check_error(const char *what, size_t i, const char *err, const char *want) {
        if (strstr(err, want))
                return;
        fprintf(stderr, "%s %zu: error '%s', expected '%s'\n", what, i, err, want);
        CHECK(!"the expected error");
}

static void test_plans(void) {
        static const char good[] =
                "{\"cluster_set_id\": \"7c9e6679-7425-40de-944b-e07fc1f90ae7\", \"coordinator\": \"c pid 1\", \"job\": null,"
                " \"hosts\": [{\"host\": \"a\", \"paths\": [\"/srv//app/\"]}, {\"host\": \"b\", \"paths\": [\"/x\", \"/y\"]}],"
                " \"deadlines\": {\"prepared_s\": 60, \"ready_s\": 120, \"frozen_margin_ms\": 1000, \"complete_s\": 60}}";
        static const struct {
                const char *text, *error;
        } bad[] = {
                { "{\"cluster_set_id\": \"x\", \"hosts\": [], \"deadlines\": {}}", "not an id" },
                { "{\"cluster_set_id\": \"7c9e6679-7425-40de-944b-e07fc1f90ae7\", \"hosts\": [], \"deadlines\": {}}",
                  "at least one host" },
                { "{\"cluster_set_id\": \"7c9e6679-7425-40de-944b-e07fc1f90ae7\", \"hosts\": [{\"host\": \"a\", "
                  "\"paths\": [\"rel\"]}], \"deadlines\": {}}", "absolute path" },
                { "{\"cluster_set_id\": \"7c9e6679-7425-40de-944b-e07fc1f90ae7\", \"hosts\": [{\"host\": \"a/b\", "
                  "\"paths\": [\"/x\"]}], \"deadlines\": {}}", "not a host name" },
                { "{\"cluster_set_id\": \"7c9e6679-7425-40de-944b-e07fc1f90ae7\", \"hosts\": [{\"host\": \"a\", "
                  "\"paths\": [\"/x\"]}, {\"host\": \"a\", \"paths\": [\"/y\"]}], \"deadlines\": {}}", "named twice" },
                { "{\"cluster_set_id\": \"7c9e6679-7425-40de-944b-e07fc1f90ae7\", \"hosts\": [{\"host\": \"a\", "
                  "\"paths\": [\"/x\"]}], \"deadlines\": {}, \"command\": \"rm -rf /\"}", "command" },
        };
        char err[600];
        Plan p = {};
        CHECK(cluster_plan_parse(good, &p, err, sizeof(err)) == 0);
        CHECK(p.n_hosts == 2 && cluster_plan_host(&p, "b") && cluster_plan_host(&p, "b")->n_paths == 2);
        CHECK(p.n_hosts == 2 && streq(p.hosts[0].paths[0], "/srv/app"));
        CHECK(p.job == NULL && p.ready_s == 120);
        /* What it writes, it reads back. */
        json_object *o = cluster_plan_to_json(&p);
        Plan q = {};
        CHECK(cluster_plan_parse(json_object_to_json_string(o), &q, err, sizeof(err)) == 0);
        CHECK(q.n_hosts == 2 && streq(q.set_id, p.set_id));
        json_object_put(o);
        cluster_plan_done(&q);
        cluster_plan_done(&p);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                err[0] = 0;
                CHECK(cluster_plan_parse(bad[i].text, &p, err, sizeof(err)) == -EINVAL);
                check_error("plan", i, err, bad[i].error);
        }
}

static void test_records(void) {
        char err[600];
        Record r = {};
        json_object *o = cluster_record_to_json("h", PHASE_FROZEN, NULL, NULL, 0, NULL, 1234, NULL, 0);
        CHECK(cluster_record_parse(json_object_to_json_string(o), &r, err, sizeof(err)) == 0);
        CHECK(r.phase == PHASE_FROZEN && r.usec_left == 1234 && r.error[0] == 0);
        cluster_record_done(&r);
        json_object_put(o);
        o = cluster_record_to_json("h", PHASE_FAILED, NULL, NULL, VSS_E_WRITERERROR_RETRYABLE, "writer 'w' vetoed", -1, "j", 3);
        CHECK(cluster_record_parse(json_object_to_json_string(o), &r, err, sizeof(err)) == 0);
        CHECK(r.phase == PHASE_FAILED && r.error_code == VSS_E_WRITERERROR_RETRYABLE && streq(r.error, "writer 'w' vetoed"));
        CHECK(streq(r.job, "j") && r.job_status == 3 && r.usec_left == -1);
        cluster_record_done(&r);
        json_object_put(o);
        CHECK(cluster_record_parse("{\"host\": \"h\", \"phase\": \"melted\", \"writers\": [], \"shadows\": []}", &r, err,
                                   sizeof(err)) == -EINVAL);
        CHECK(cluster_record_parse("{\"host\": \"h\", \"phase\": \"done\", \"writers\": [], \"shadows\": [], \"x\": 1}", &r,
                                   err, sizeof(err)) == -EINVAL);
}

static char *write_tmp(const char *text) {
        static char path[64];
        snprintf(path, sizeof(path), "/tmp/vss-agent-config-XXXXXX");
        int fd = mkstemp(path);
        CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t) strlen(text));
        close(fd);
        return path;
}

static void test_config(void) {
        static const struct {
                const char *text, *error;
        } bad[] = {
                { "{\"paths\": [\"/srv\"], \"extra\": 1}", "extra" },
                { "{\"paths\": [\"srv\"]}", "absolute path" },
                { "{\"paths\": [\"/a\"], \"paths\": [\"/b\"]}", "paths" },
                { "{\"jobs\": {\"x\": []}}", "1 to 256 strings" },
                { "{\"jobs\": {\"x\": [\"{set}\"]}}", "the command itself" },
                { "{\"jobs\": {\"bad name\": [\"true\"]}}", "a job name" },
                { "{\"jobs\": {\"x\": [\"tar\", 5]}}", "expected a string" },
                { "[]", "" },
        };
        AgentConfig c = {};
        char err[600], *path = write_tmp("{\"paths\": [\"/srv/app/\"], \"jobs\": {\"restic\": [\"restic\", \"backup\", "
                                         "\"--tag=x{set}y\", \"{paths}\", \"--\"]}}");
        CHECK(agent_config_load(path, &c, err, sizeof(err)) == 0);
        unlink(path);
        CHECK(agent_config_allows_path(&c, "/srv/app"));
        CHECK(agent_config_allows_path(&c, "/srv/app/db/"));
        CHECK(!agent_config_allows_path(&c, "/srv/application"));
        CHECK(!agent_config_allows_path(&c, "/srv/app/../etc"));
        CHECK(!agent_config_allows_path(&c, "/etc"));
        CHECK(agent_config_job(&c, "restic") && !agent_config_job(&c, "rm"));
        char *const paths[] = { "/s/1", "/s/2" };
        char **argv = agent_job_argv(agent_config_job(&c, "restic"), "SET", paths, 2);
        const char *want[] = { "restic", "backup", "--tag=xSETy", "/s/1", "/s/2", "--", NULL };
        for (size_t i = 0; argv && i < ELEMENTSOF(want); i++) {
                CHECK((argv[i] == NULL) == (want[i] == NULL));
                if (argv[i] && want[i])
                        CHECK_STR(argv[i], want[i]);
        }
        for (size_t i = 0; argv && argv[i]; i++)
                free(argv[i]);
        free(argv);
        agent_config_done(&c);
        CHECK(agent_config_load("/nonexistent/vss-agent.json", &c, err, sizeof(err)) == -ENOENT);
        CHECK(strstr(err, "cannot read /nonexistent/vss-agent.json") != NULL);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                path = write_tmp(bad[i].text);
                err[0] = 0;
                CHECK(agent_config_load(path, &c, err, sizeof(err)) == -EINVAL);
                unlink(path);
                check_error("config", i, err, bad[i].error);
        }
}

/* The shipped example, without its comment lines, is a config the agent accepts. */
static void test_example(void) {
        FILE *f = fopen(AGENT_EXAMPLE, "re");
        char line[1024], text[8192] = "", err[600];
        AgentConfig c = {};
        CHECK(f != NULL);
        while (f && fgets(line, sizeof(line), f))
                if (strncmp(line + strspn(line, " "), "//", 2) != 0)
                        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s", line);
        if (f)
                fclose(f);
        char *path = write_tmp(text);
        CHECK(agent_config_load(path, &c, err, sizeof(err)) == 0);
        unlink(path);
        CHECK(agent_config_job(&c, "restic") != NULL && c.n_paths == 2);
        agent_config_done(&c);
}

int main(void) {
        test_names_keys();
        test_decisions();
        test_plans();
        test_records();
        test_config();
        test_example();
        if (test_failures)
                fprintf(stderr, "%d failures\n", test_failures);
        return test_failures ? 1 : 0;
}
