/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
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
        static char buf[16000];
        snprintf(buf, sizeof(buf), "--etcd %s --cluster " CLUSTER_NAME, c->etcd->endpoints);
        if (c->etcd->tls)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), " --cacert %s --cert %s --key %s", c->etcd->cacert,
                         c->etcd->client_cert, c->etcd->client_key);
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
                /* As systemd starts it (test-cluster checks the agent keeps it open). */
                int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (nul >= 0)
                        dup2(nul, 0);
                setenv("NOTIFY_SOCKET", notify, 1);
                setenv("STATE_DIRECTORY", state, 1);
                char url[64];
                snprintf(url, sizeof(url), "http://127.0.0.1:%d", ho->link_port);
                const char *argv[] = { "vss-agent", "--etcd", ho->link ? url : c->etcd->endpoints, "--cluster", CLUSTER_NAME, "--host", ho->name,
                                       "--config", config, "--lease-ttl", ttl, "--socket", harness_socket(ho->h),
                                       c->etcd->tls ? "--cacert" : NULL, c->etcd->cacert, "--cert", c->etcd->client_cert,
                                       "--key", c->etcd->client_key, NULL };
                /* AGENT_WRAPPER="valgrind -q --leak-check=full --error-exitcode=99" runs the agents under it. */
                const char *wrapper = getenv("AGENT_WRAPPER");
                if (wrapper && *wrapper) {
                        const char *full[64];
                        size_t n = 0;
                        char *w = strdup(wrapper);
                        for (char *tok = strtok(w, " "); tok && n < 40; tok = strtok(NULL, " "))
                                full[n++] = tok;
                        full[n++] = VSS_AGENT_PATH;
                        for (size_t k = 1; argv[k] && n < 63; k++)
                                full[n++] = argv[k];
                        full[n] = NULL;
                        execvp(full[0], (char *const *) full);
                }
                execv(VSS_AGENT_PATH, (char *const *) argv);
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


/* ---- a host's link to etcd: a relay that can be cut ---- */

static volatile sig_atomic_t link_state; /* 0 up, 1 cut, 2 restore asked */

static void on_link_signal(int sig) {
        link_state = sig == SIGUSR1 ? 1 : 2;
}

static int connect_port(int port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static _Noreturn void relay(int lfd, int target_port) {
        int a[32], b[32];
        size_t n = 0;
        signal(SIGUSR1, on_link_signal);
        signal(SIGUSR2, on_link_signal);
        for (;;) {
                if (link_state == 2) {
                        for (size_t k = 0; k < n; k++) {
                                close(a[k]);
                                close(b[k]);
                        }
                        n = 0;
                        link_state = 0;
                }
                struct pollfd p[65];
                size_t np = 0;
                bool up = link_state == 0;
                p[np++] = (struct pollfd) { .fd = up ? lfd : -1, .events = POLLIN };
                for (size_t k = 0; k < n; k++) {
                        p[np++] = (struct pollfd) { .fd = up ? a[k] : -1, .events = POLLIN };
                        p[np++] = (struct pollfd) { .fd = up ? b[k] : -1, .events = POLLIN };
                }
                if (poll(p, np, 100) <= 0)
                        continue;
                size_t polled = n; /* a connection accepted now is polled next time */
                if ((p[0].revents & POLLIN) && n < 32) {
                        int x = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), y = x >= 0 ? connect_port(target_port) : -1;
                        if (y >= 0) {
                                a[n] = x;
                                b[n++] = y;
                        } else if (x >= 0)
                                close(x);
                }
                for (size_t k = 0; k < polled; k++) {
                        char buf[65536];
                        bool dead = false;
                        for (int side = 0; side < 2 && !dead; side++) {
                                struct pollfd *q = &p[1 + 2 * k + (size_t) side];
                                if (!(q->revents & (POLLIN | POLLHUP | POLLERR)))
                                        continue;
                                ssize_t r = read(q->fd, buf, sizeof(buf));
                                dead = r <= 0 || write(side ? a[k] : b[k], buf, (size_t) r) != r;
                        }
                        if (dead) {
                                close(a[k]);
                                close(b[k]);
                                a[k] = a[n - 1];
                                b[k] = b[n - 1];
                                n--;
                                break; /* p[] no longer matches: poll again */
                        }
                }
        }
}

void cluster_link_start(Cluster *c, size_t i) {
        ClusterHost *ho = &c->hosts[i];
        int port = atoi(strrchr(c->etcd->m[0].client_url, ':') + 1);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &len) < 0)
                die("link socket");
        ho->link_port = ntohs(sa.sin_port);
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                relay(lfd, port);
        }
        close(lfd);
        ho->link = pid;
}

void cluster_link_cut(Cluster *c, size_t i) {
        kill(c->hosts[i].link, SIGUSR1);
}

void cluster_link_restore(Cluster *c, size_t i) {
        kill(c->hosts[i].link, SIGUSR2);
}

static void start_light_writer(ClusterHost *ho) {
        char stamps[600];
        snprintf(stamps, sizeof(stamps), "%s/stamps", harness_dir(ho->h));
        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execl(STAMP_WRITER_PATH, "cluster-stamp-writer", ho->writer, harness_socket(ho->h), stamps, (char *) NULL);
                _exit(127);
        }
        ho->light = pid;
        for (int k = 0; k < 1000; k++) {
                char *out = NULL, want[64];
                snprintf(want, sizeof(want), "\"name\":\"%s\"", ho->writer);
                harness_sh(ho->h, &out, "vssadmin --socket %s list writers --json | tr -d ' \n'", harness_socket(ho->h));
                bool found = out && strstr(out, want);
                free(out);
                if (found)
                        return;
                sleep_ms(20);
        }
        fprintf(stderr, "cluster-harness: writer %s did not subscribe\n", ho->writer);
        exit(99);
}

Cluster *cluster_new(size_t n, int lease_ttl) {
        return cluster_new_with(n, lease_ttl, 1, false);
}

Cluster *cluster_new_with(size_t n, int lease_ttl, size_t etcd_members, bool tls) {
        if (!etcd_harness_available()) {
                fprintf(stderr, "etcd is not installed: skipped\n");
                exit(77);
        }
        Cluster *c = calloc(1, sizeof(*c));
        c->n = n;
        c->lease_ttl = lease_ttl;
        current_cluster = c;
        atexit(cleanup_at_exit);
        c->etcd = etcd_harness_new(etcd_members, tls);
        if (!c->etcd)
                die("etcd");
        etcd_options o = { .endpoints = c->etcd->endpoints };
        if (tls) {
                o.cacert = c->etcd->cacert;
                o.cert = c->etcd->client_cert;
                o.key = c->etcd->client_key;
        }
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
                if (getenv("CLUSTER_LIGHT_WRITERS"))
                        start_light_writer(ho);
                else
                        harness_writer(ho->h, ho->writer, NULL);
                snprintf(ho->data, sizeof(ho->data), "%s", harness_make_data(ho->h, "data"));
                snprintf(path, sizeof(path), "%s/agent.json", harness_dir(ho->h));
                snprintf(text, sizeof(text),
                         "{\"paths\": [\"%s\"], \"jobs\": {\"record\": [\"/bin/sh\", \"-c\", "
                         "\"echo \\\"$*\\\" > %s/job.out; ls \\\"$2\\\" > /dev/null\", \"job\", \"{set}\", \"{paths}\"], "
                         /* Runs until a line comes through the FIFO "gate" (test-cluster makes it). */
                         "\"gate\": [\"/bin/sh\", \"-c\", \"touch %s/gate-open; read x < %s/gate\", \"job\"]}}",
                         ho->data, harness_dir(ho->h), harness_dir(ho->h), harness_dir(ho->h));
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
        for (size_t i = 0; i < c->n; i++)
                if (c->hosts[i].light > 0) {
                        kill(c->hosts[i].light, SIGTERM);
                        waitpid(c->hosts[i].light, NULL, 0);
                        c->hosts[i].light = 0;
                }
        for (size_t i = 0; i < c->n; i++)
                if (c->hosts[i].link > 0) {
                        kill(c->hosts[i].link, SIGKILL);
                        waitpid(c->hosts[i].link, NULL, 0);
                        c->hosts[i].link = 0;
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
