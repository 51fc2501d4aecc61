/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-agent's config: which paths it shadows for a cluster and which named jobs it runs. Read
 * strictly (lib/jsonv): it is the agent's whole authority, and nothing from etcd widens it. */

#include "agent/vss-agent.h"
#include "lib/basic/fd-util.h"
#include "lib/common.h"
#include "lib/jsonv.h"

#include <fcntl.h>

#define CONFIG_MAX (1024 * 1024)

void agent_config_done(AgentConfig *c) {
        for (size_t i = 0; c->paths && i < c->n_paths; i++)
                free(c->paths[i]);
        free(c->paths);
        for (size_t i = 0; c->jobs && i < c->n_jobs; i++) {
                free(c->jobs[i].name);
                for (size_t j = 0; c->jobs[i].argv && c->jobs[i].argv[j]; j++)
                        free(c->jobs[i].argv[j]);
                free(c->jobs[i].argv);
        }
        free(c->jobs);
        *c = (AgentConfig) {};
}

static void read_paths(JsonReader *v, json_object *o, AgentConfig *c) {
        json_object *arr = jv_array(v, o, "paths", VSS_MAX_VOLUMES * 16, false);
        size_t n = arr ? json_object_array_length(arr) : 0;
        c->paths = calloc(n + 1, sizeof(char *));
        if (!c->paths) {
                jv_fail(v, "paths", "%s", "out of memory");
                return;
        }
        for (size_t i = 0; !jv_failed(v) && i < n; i++) {
                json_object *s = json_object_array_get_idx(arr, i);
                char norm[4096];
                if (!json_object_is_type(s, json_type_string) ||
                    path_normalize(json_object_get_string(s), norm, sizeof(norm)) < 0) {
                        jv_fail(v, "paths", "element %zu: expected an absolute path", i);
                        return;
                }
                c->paths[c->n_paths++] = jv_dup(v, norm);
        }
}

static void read_job(JsonReader *v, const char *name, json_object *arr, AgentJob *j) {
        size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
        j->name = jv_dup(v, name);
        if (!cluster_name_valid(name)) {
                jv_fail(v, name, "%s", "a job name is 1 to 63 of [A-Za-z0-9._-]");
                return;
        }
        if (n == 0 || n > 256) {
                jv_fail(v, name, "%s", "expected an array of 1 to 256 strings (the command and its arguments)");
                return;
        }
        j->argv = calloc(n + 1, sizeof(char *));
        for (size_t i = 0; j->argv && !jv_failed(v) && i < n; i++) {
                json_object *s = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(s, json_type_string) || json_object_get_string_len(s) == 0 ||
                    json_object_get_string_len(s) > 4096) {
                        jv_fail(v, name, "element %zu: expected a string of 1 to 4096 bytes", i);
                        return;
                }
                j->argv[i] = jv_dup(v, json_object_get_string(s));
        }
        if (j->argv && !jv_failed(v) && strchr(j->argv[0], '{'))
                jv_fail(v, name, "%s", "the command itself takes no {set} or {paths}");
}

static void read_jobs(JsonReader *v, json_object *o, AgentConfig *c) {
        json_object *jobs = NULL;
        if (!json_object_object_get_ex(o, "jobs", &jobs))
                return;
        jobs = jv_object(v, o, "jobs", true);
        if (!jobs)
                return;
        size_t n = (size_t) json_object_object_length(jobs), len = jv_enter_key(v, "jobs");
        c->jobs = calloc(n + 1, sizeof(AgentJob));
        json_object_object_foreach(jobs, key, val) {
                if (!c->jobs || jv_failed(v))
                        break;
                read_job(v, key, val, &c->jobs[c->n_jobs++]);
        }
        jv_leave(v, len);
}

int agent_config_load(const char *path, AgentConfig *ret, char *err, size_t errsize) {
        static const char *const keys[] = { "paths", "jobs", NULL };
        _cleanup_free_ char *text = NULL;
        AgentConfig c = {};
        JsonReader v = {};
        size_t len = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        int r = fd < 0 ? -errno : read_all(fd, CONFIG_MAX, &text, &len);
        if (fd >= 0)
                close(fd);
        if (r < 0) {
                snprintf(err, errsize, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        json_object *o = jv_parse(&v, text, CONFIG_MAX, path);
        if (o) {
                jv_only_keys(&v, o, keys);
                read_paths(&v, o, &c);
                read_jobs(&v, o, &c);
        }
        json_object_put(o);
        char msg[600];
        if (jv_error(&v, msg, sizeof(msg)) < 0) {
                snprintf(err, errsize, "%s", msg);
                agent_config_done(&c);
                return -EINVAL;
        }
        if (!c.paths)
                c.paths = calloc(1, sizeof(char *));
        *ret = c;
        return 0;
}

bool agent_config_allows_path(const AgentConfig *c, const char *path) {
        char norm[4096];
        if (path_normalize(path, norm, sizeof(norm)) < 0)
                return false;
        for (size_t i = 0; i < c->n_paths; i++) {
                /* A configured path is also its real path (a plan's paths come resolved). */
                char real[4096];
                if (path_within(norm, c->paths[i]) || (realpath(c->paths[i], real) && path_within(norm, real)))
                        return true;
        }
        return false;
}

const AgentJob *agent_config_job(const AgentConfig *c, const char *name) {
        for (size_t i = 0; i < c->n_jobs; i++)
                if (streq(c->jobs[i].name, name))
                        return &c->jobs[i];
        return NULL;
}

/* s with every "{set}" replaced by set_id. */
static char *substitute_set(const char *s, const char *set_id) {
        size_t cap = strlen(s) + 1, n = 0;
        for (const char *p = s; (p = strstr(p, "{set}")); p += 5)
                cap += strlen(set_id);
        char *out = malloc(cap);
        if (!out)
                return NULL;
        for (const char *p = s; *p;) {
                if (strncmp(p, "{set}", 5) == 0) {
                        memcpy(out + n, set_id, strlen(set_id));
                        n += strlen(set_id);
                        p += 5;
                } else
                        out[n++] = *p++;
        }
        out[n] = 0;
        return out;
}

char **agent_job_argv(const AgentJob *j, const char *set_id, char *const *paths, size_t n_paths) {
        size_t n = 0, k = 0;
        while (j->argv[n])
                n++;
        char **argv = calloc(n + n_paths + 1, sizeof(char *));
        if (!argv)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (streq(j->argv[i], "{paths}")) {
                        for (size_t p = 0; p < n_paths; p++)
                                argv[k++] = strdup(paths[p]);
                } else
                        argv[k++] = substitute_set(j->argv[i], set_id);
        }
        for (size_t i = 0; i < k; i++)
                if (!argv[i]) {
                        for (size_t x = 0; x < k; x++)
                                free(argv[x]);
                        free(argv);
                        return NULL;
                }
        return argv;
}
