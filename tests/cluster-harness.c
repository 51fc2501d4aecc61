/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/common.h"
#include "tests/cluster-harness.h"

static Cluster *current_cluster;

static const char stamp_hook[] =
        "#!/bin/sh\n"
        "# Runs before the test hook: the instant the writer entered the event.\n"
        "echo \"$VSS_WRITER_NAME $1 $(" STAMP_PATH ")\" >> \"$HARNESS_DIR/stamps\"\n";

static void die(const char *what) {
        fprintf(stderr, "cluster-harness: %s: %m\n", what);
        exit(99);
}

static void write_text(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text))
                die(path);
        close(fd);
}

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

static void cleanup_at_exit(void) {
        cluster_free(current_cluster);
}

const char *cluster_args(Cluster *c) {
        static char buf[512];
        snprintf(buf, sizeof(buf), "--etcd %s --cluster " CLUSTER_NAME, c->etcd->endpoints);
        return buf;
}

const char *cluster_fors(Cluster *c) {
        static char buf[4096];
        buf[0] = 0;
        for (size_t i = 0; i < c->n; i++)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " --for %s:%s", c->hosts[i].name, c->hosts[i].data);
        return buf;
}

void cluster_start_agent(Cluster *c, size_t i) {
        ClusterHost *ho = &c->hosts[i];
        char notify[600], config[600], state[600], logp[600], ttl[16];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(notify, sizeof(notify), "%s/agent-notify", harness_dir(ho->h));
        snprintf(config, sizeof(config), "%s/agent.json", harness_dir(ho->h));
        snprintf(state, sizeof(state), "%s/agent-state", harness_dir(ho->h));
        snprintf(logp, sizeof(logp), "%s/agent.log", harness_dir(ho->h));
        snprintf(ttl, sizeof(ttl), "%d", c->lease_ttl);
        unlink(notify);
        int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify);
        if (nfd < 0 || bind(nfd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die("notify socket");
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                setenv("NOTIFY_SOCKET", notify, 1);
                setenv("STATE_DIRECTORY", state, 1);
                execl(VSS_AGENT_PATH, "vss-agent", "--etcd", c->etcd->endpoints, "--cluster", CLUSTER_NAME, "--host", ho->name,
                      "--config", config, "--lease-ttl", ttl, "--socket", harness_socket(ho->h), (char *) NULL);
                _exit(127);
        }
        ho->agent = pid;
        struct pollfd p = { .fd = nfd, .events = POLLIN };
        char buf[256];
        for (;;) {
                if (poll(&p, 1, 20000) <= 0) {
                        fprintf(stderr, "cluster-harness: the agent of %s did not become ready\n", ho->name);
                        exit(99);
                }
                ssize_t k = recv(nfd, buf, sizeof(buf) - 1, 0);
                if (k > 0) {
                        buf[k] = 0;
                        if (strstr(buf, "READY=1"))
                                break;
                }
        }
        close(nfd);
}

void cluster_kill_agent(Cluster *c, size_t i) {
        if (c->hosts[i].agent <= 0)
                return;
        kill(c->hosts[i].agent, SIGKILL);
        waitpid(c->hosts[i].agent, NULL, 0);
        c->hosts[i].agent = 0;
}

Cluster *cluster_new(size_t n, int lease_ttl) {
        if (!etcd_harness_available()) {
                fprintf(stderr, "etcd is not installed: skipped\n");
                exit(77);
        }
        Cluster *c = calloc(1, sizeof(*c));
        c->n = n;
        c->lease_ttl = lease_ttl;
        current_cluster = c;
        atexit(cleanup_at_exit);
        c->etcd = etcd_harness_new(1, false);
        if (!c->etcd)
                die("etcd");
        etcd_options o = { .endpoints = c->etcd->endpoints };
        if (etcd_new(&o, &c->e) < 0)
                die("etcd client");
        for (size_t i = 0; i < n; i++) {
                ClusterHost *ho = &c->hosts[i];
                char path[600], text[1200];
                snprintf(ho->name, sizeof(ho->name), "host%zu", i);
                snprintf(ho->writer, sizeof(ho->writer), "w%zu", i);
                /* Each harness sets HARNESS_DIR and VSS_SOCKET: its writer starts right after it. */
                ho->h = harness_new(NULL);
                harness_hook(ho->h, "05-stamp", stamp_hook);
                harness_writer(ho->h, ho->writer, NULL);
                snprintf(ho->data, sizeof(ho->data), "%s", harness_make_data(ho->h, "data"));
                snprintf(path, sizeof(path), "%s/agent.json", harness_dir(ho->h));
                snprintf(text, sizeof(text),
                         "{\"paths\": [\"%s\"], \"jobs\": {\"record\": [\"/bin/sh\", \"-c\", "
                         "\"echo \\\"$*\\\" > %s/job.out; ls \\\"$2\\\" > /dev/null\", \"job\", \"{set}\", \"{paths}\"]}}",
                         ho->data, harness_dir(ho->h));
                write_text(path, text);
        }
        for (size_t i = 0; i < n; i++)
                cluster_start_agent(c, i);
        return c;
}

void cluster_free(Cluster *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++)
                if (c->hosts[i].agent > 0) {
                        int st;
                        kill(c->hosts[i].agent, SIGTERM);
                        if (waitpid(c->hosts[i].agent, &st, 0) == c->hosts[i].agent &&
                            !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                                fprintf(stderr, "cluster-harness: agent of %s ended badly (0x%x)\n", c->hosts[i].name, st);
                                test_failures++;
                        }
                        c->hosts[i].agent = 0;
                }
        for (size_t i = 0; i < c->n; i++) {
                char path[600];
                snprintf(path, sizeof(path), "%s/agent.log", harness_dir(c->hosts[i].h));
                if (test_failures || getenv("HARNESS_DUMP")) {
                        FILE *f = fopen(path, "re");
                        char line[1024];
                        fprintf(stderr, "---- agent of %s ----\n", c->hosts[i].name);
                        while (f && fgets(line, sizeof(line), f))
                                fputs(line, stderr);
                        if (f)
                                fclose(f);
                }
                harness_free(c->hosts[i].h);
        }
        etcd_free(c->e);
        etcd_harness_free(c->etcd);
        if (current_cluster == c)
                current_cluster = NULL;
        free(c);
}

pid_t cluster_spawn(Cluster *c, const char *out_path, const char *fmt, ...) {
        char cmd[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd >= 0)
                        dup2(fd, 1);
                char full[9000];
                snprintf(full, sizeof(full), "exec %s/%s", VSSADMIN_DIR, cmd);
                execl("/bin/sh", "sh", "-c", full, (char *) NULL);
                _exit(127);
        }
        return pid;
}

char *cluster_get(Cluster *c, const char *fmt, ...) {
        char key[1024];
        int n = snprintf(key, sizeof(key), "/openvss/" CLUSTER_NAME "/");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(key + n, sizeof(key) - (size_t) n, fmt, ap);
        va_end(ap);
        etcd_kvs kvs = {};
        if (etcd_get(c->e, key, &kvs) < 0 || kvs.n == 0) {
                etcd_kvs_clear(&kvs);
                return NULL;
        }
        char *v = strdup(kvs.kvs[0].value);
        etcd_kvs_clear(&kvs);
        return v;
}

const char *cluster_wait_phase(Cluster *c, size_t i, const char *phase) {
        static char set_id[64];
        char want[64], suffix[64];
        snprintf(want, sizeof(want), "\"phase\":\"%s\"", phase);
        snprintf(suffix, sizeof(suffix), "/hosts/%s", c->hosts[i].name);
        for (int k = 0; k < 1500; k++) {
                etcd_kvs kvs = {};
                if (etcd_get_prefix(c->e, "/openvss/" CLUSTER_NAME "/sets/", &kvs) >= 0)
                        for (size_t j = 0; j < kvs.n; j++) {
                                const char *key = kvs.kvs[j].key;
                                size_t len = strlen(key);
                                if (len > strlen(suffix) && streq(key + len - strlen(suffix), suffix) &&
                                    strstr(kvs.kvs[j].value, want) &&
                                    sscanf(key, "/openvss/" CLUSTER_NAME "/sets/%63[^/]", set_id) == 1) {
                                        etcd_kvs_clear(&kvs);
                                        return set_id;
                                }
                        }
                etcd_kvs_clear(&kvs);
                sleep_ms(20);
        }
        fprintf(stderr, "cluster-harness: %s never reported %s\n", c->hosts[i].name, phase);
        test_failures++;
        return NULL;
}

bool cluster_wait_started(Cluster *c, size_t i, const char *event) {
        return harness_wait_started(c->hosts[i].h, c->hosts[i].writer, event);
}

size_t cluster_stamps(Cluster *c, size_t i, const char *event, uint64_t *ret, size_t max) {
        char path[600], name[64], ev[64];
        unsigned long long t;
        size_t n = 0;
        snprintf(path, sizeof(path), "%s/stamps", harness_dir(c->hosts[i].h));
        FILE *f = fopen(path, "re");
        while (f && n < max && fscanf(f, "%63s %63s %llu", name, ev, &t) == 3)
                if (streq(name, c->hosts[i].writer) && streq(ev, event))
                        ret[n++] = t;
        if (f)
                fclose(f);
        return n;
}

void cluster_clear_stamps(Cluster *c) {
        for (size_t i = 0; i < c->n; i++) {
                char path[600];
                snprintf(path, sizeof(path), "%s/stamps", harness_dir(c->hosts[i].h));
                unlink(path);
                harness_clear_log(c->hosts[i].h);
        }
}

int cluster_local_shadows(Cluster *c, size_t i) {
        int st;
        json_object *o = harness_json(c->hosts[i].h, &st, "vssadmin --socket %s list shadows --json", harness_socket(c->hosts[i].h));
        json_object *arr = NULL;
        int n = o && json_object_object_get_ex(o, "shadows", &arr) ? (int) json_object_array_length(arr) : -1;
        json_object_put(o);
        return st == 0 ? n : -1;
}

bool cluster_writer_saw(Cluster *c, size_t i, const char *event) {
        char *ev = harness_events(c->hosts[i].h, c->hosts[i].writer);
        bool found = false;
        for (char *save = NULL, *tok = strtok_r(ev, " ", &save); tok && !found; tok = strtok_r(NULL, " ", &save))
                found = streq(tok, event);
        free(ev);
        return found;
}
