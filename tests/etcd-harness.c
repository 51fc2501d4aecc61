/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A real etcd for tests: see etcd-harness.h. */

#include "tests/etcd-harness.h"
#include "tests/reaper.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ETCD_BIN "/usr/bin/etcd"
#define ETCDCTL_BIN "/usr/bin/etcdctl"
#define START_TIMEOUT_MS 30000

/* Every live harness, for the exit handler. */
static EtcdHarness *live[8];

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

bool etcd_harness_available(void) {
        return access(ETCD_BIN, X_OK) == 0 && access(ETCDCTL_BIN, X_OK) == 0;
}

/* Whether port (0: any) can be bound on loopback now; its number, or -1. */
static int try_port(int port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t) port) };
        socklen_t len = sizeof(a);
        int r = -1;
        if (fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *) &a, &len) == 0)
                r = ntohs(a.sin_port);
        if (fd >= 0)
                close(fd);
        return r;
}

/* A port below the kernel's ephemeral range: one it hands out for bind(0) may meanwhile become the
 * local port of any outgoing connection (tests beside this one make many), and etcd, started
 * later, then fails with "address already in use". Free when tried; etcd binds it soon after. */
int etcd_harness_free_port(void) {
        int lo = 32768, hi = 60999;
        FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
        if (f) {
                if (fscanf(f, "%d %d", &lo, &hi) != 2)
                        lo = 32768;
                fclose(f);
        }
        int base = lo > 20000 ? lo - 16384 : 0;
        /* One sequence per process: two calls in a row (a member's two ports) differ. */
        static unsigned seed;
        if (seed == 0)
                seed = ((unsigned) getpid() * 2654435761u) ^ (unsigned) now_ms() ^ 1u;
        /* Given out already and perhaps not bound yet (a member's two ports, a cluster's). */
        static int given[32];
        static size_t n_given;
        for (int i = 0; base > 0 && i < 200; i++) {
                int port = base + (int) (rand_r(&seed) % (unsigned) (lo - base));
                bool again = false;
                for (size_t k = 0; k < n_given && k < 32; k++)
                        again = again || given[k] == port;
                if (again || try_port(port) < 0)
                        continue;
                given[n_given++ % 32] = port;
                return port;
        }
        return try_port(0);
}

static int sh(char **out, const char *cmd) {
        FILE *p = popen(cmd, "re");
        if (!p)
                return -errno;
        char *buf = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&buf, &size);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
                if (m)
                        fwrite(chunk, 1, n, m);
        if (m)
                fclose(m);
        int st = pclose(p);
        if (out)
                *out = buf;
        else
                free(buf);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* CA, a server certificate for 127.0.0.1 (also a client one: members may dial each other) and
 * a client certificate, all P-256 (quick to make), valid a day. */
static int make_certs(EtcdHarness *h) {
        char *cmd = NULL, *out = NULL;
        if (asprintf(&cmd,
                     "set -e; exec 2>&1; cd '%s'; k='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
                     "openssl req -x509 $k -keyout ca.key -out ca.pem -days 1 -subj /CN=openvss-test-ca\n"
                     "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n' > server.ext\n"
                     "printf 'extendedKeyUsage=clientAuth\\n' > client.ext\n"
                     "for n in server client; do\n"
                     "  openssl req $k -keyout $n.key -out $n.csr -subj /CN=$n\n"
                     "  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1"
                     " -extfile $n.ext -out $n.pem\n"
                     "done 2>&1\n",
                     h->dir) < 0)
                return -ENOMEM;
        int st = sh(&out, cmd);
        free(cmd);
        if (st != 0)
                fprintf(stderr, "etcd harness: making certificates failed (%d): %s\n", st, out ? out : "");
        free(out);
        snprintf(h->cacert, sizeof(h->cacert), "%s/ca.pem", h->dir);
        snprintf(h->server_cert, sizeof(h->server_cert), "%s/server.pem", h->dir);
        snprintf(h->server_key, sizeof(h->server_key), "%s/server.key", h->dir);
        snprintf(h->client_cert, sizeof(h->client_cert), "%s/client.pem", h->dir);
        snprintf(h->client_key, sizeof(h->client_key), "%s/client.key", h->dir);
        return st == 0 ? 0 : -EIO;
}

static char *initial_cluster(EtcdHarness *h) {
        static char buf[512];
        buf[0] = 0;
        for (size_t i = 0; i < h->n; i++) {
                size_t len = strlen(buf);
                snprintf(buf + len, sizeof(buf) - len, "%s%s=%s", i ? "," : "", h->m[i].name, h->m[i].peer_url);
        }
        return buf;
}

/* Go's name of this machine's architecture where etcd 3.4 wants ETCD_UNSUPPORTED_ARCH, or NULL. */
static const char *unsupported_arch(void) {
        static const char *const go[][2] = { { "aarch64", "arm64" }, { "armv7l", "arm" }, { "armv6l", "arm" },
                                             { "i686", "386" }, { "i386", "386" }, { "s390x", "s390x" },
                                             { "riscv64", "riscv64" } };
        struct utsname u;
        if (uname(&u) < 0)
                return NULL;
        for (size_t i = 0; i < sizeof(go) / sizeof(go[0]); i++)
                if (strcmp(u.machine, go[i][0]) == 0)
                        return go[i][1];
        return NULL;
}

int etcd_harness_start(EtcdHarness *h, size_t i, bool wait) {
        EtcdMember *m = &h->m[i];
        if (m->pid > 0)
                return 0;
        char log[4200], token[64], heartbeat[] = "50", election[] = "500";
        snprintf(log, sizeof(log), "%s/%s.log", h->dir, m->name);
        snprintf(token, sizeof(token), "openvss-test-%d", (int) getpid());
        char *argv[40];
        size_t k = 0;
        argv[k++] = (char *) ETCD_BIN;
        argv[k++] = (char *) "--name", argv[k++] = m->name;
        argv[k++] = (char *) "--data-dir", argv[k++] = m->data_dir;
        argv[k++] = (char *) "--listen-client-urls", argv[k++] = m->client_url;
        argv[k++] = (char *) "--advertise-client-urls", argv[k++] = m->client_url;
        argv[k++] = (char *) "--listen-peer-urls", argv[k++] = m->peer_url;
        argv[k++] = (char *) "--initial-advertise-peer-urls", argv[k++] = m->peer_url;
        argv[k++] = (char *) "--initial-cluster", argv[k++] = initial_cluster(h);
        argv[k++] = (char *) "--initial-cluster-token", argv[k++] = token;
        argv[k++] = (char *) "--initial-cluster-state", argv[k++] = (char *) "new";
        /* Quick elections: the cluster tests stop members and wait for a new leader. */
        argv[k++] = (char *) "--heartbeat-interval", argv[k++] = heartbeat;
        argv[k++] = (char *) "--election-timeout", argv[k++] = election;
        if (h->tls) {
                argv[k++] = (char *) "--cert-file", argv[k++] = h->server_cert;
                argv[k++] = (char *) "--key-file", argv[k++] = h->server_key;
                argv[k++] = (char *) "--trusted-ca-file", argv[k++] = h->cacert;
                argv[k++] = (char *) "--client-cert-auth";
        }
        argv[k] = NULL;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                /* etcd refuses an ETCD_* variable that a flag also sets; none of the caller's apply
                 * but the one that lets it run on an architecture etcd 3.4 calls unsupported (all
                 * but amd64 and ppc64le: Debian's arm64 package needs ETCD_UNSUPPORTED_ARCH=arm64). */
                const char *arch = unsupported_arch();
                for (char **env = environ; env && *env;) {
                        if (strncmp(*env, "ETCD_", 5) == 0 && strncmp(*env, "ETCD_UNSUPPORTED_ARCH=", 22) != 0) {
                                char name[256];
                                snprintf(name, sizeof(name), "%.*s", (int) strcspn(*env, "="), *env);
                                unsetenv(name);
                        } else
                                env++;
                }
                if (arch)
                        setenv("ETCD_UNSUPPORTED_ARCH", arch, 0);
                execv(ETCD_BIN, argv);
                _exit(127);
        }
        m->pid = pid;
        return wait ? etcd_harness_wait_healthy(h, i) : 0;
}

static size_t discard(char *p, size_t size, size_t n, void *userdata) {
        char *buf = userdata;
        size_t len = strlen(buf), add = size * n;
        if (len + add < 256) {
                memcpy(buf + len, p, add);
                buf[len + add] = 0;
        }
        return size * n;
}

static bool healthy(EtcdHarness *h, size_t i) {
        CURL *c = curl_easy_init();
        char url[128], body[256] = "";
        snprintf(url, sizeof(url), "%s/health", h->m[i].client_url);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_PROXY, "");
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
        if (h->tls) {
                curl_easy_setopt(c, CURLOPT_CAINFO, h->cacert);
                curl_easy_setopt(c, CURLOPT_SSLCERT, h->client_cert);
                curl_easy_setopt(c, CURLOPT_SSLKEY, h->client_key);
        }
        CURLcode cc = curl_easy_perform(c);
        curl_easy_cleanup(c);
        return cc == CURLE_OK && strstr(body, "\"true\"");
}

int etcd_harness_wait_healthy(EtcdHarness *h, size_t i) {
        uint64_t deadline = now_ms() + START_TIMEOUT_MS;
        while (!healthy(h, i)) {
                int st;
                if (h->m[i].pid <= 0 || waitpid(h->m[i].pid, &st, WNOHANG) == h->m[i].pid) {
                        h->m[i].pid = 0;
                        fprintf(stderr, "etcd harness: %s exited while starting; its log: %s/%s.log\n", h->m[i].name,
                                h->dir, h->m[i].name);
                        return -ECHILD;
                }
                if (now_ms() > deadline) {
                        fprintf(stderr, "etcd harness: %s not healthy within %d ms; log: %s/%s.log\n", h->m[i].name,
                                START_TIMEOUT_MS, h->dir, h->m[i].name);
                        return -ETIMEDOUT;
                }
                (void) poll(NULL, 0, 20); /* the next probe: etcd has no readiness fd to wait on */
        }
        return 0;
}

int etcd_harness_kill(EtcdHarness *h, size_t i, int sig) {
        EtcdMember *m = &h->m[i];
        if (m->pid <= 0)
                return -ESRCH;
        if (kill(m->pid, sig) < 0)
                return -errno;
        if (sig == SIGKILL) {
                (void) waitpid(m->pid, NULL, 0);
                m->pid = 0;
        }
        return 0;
}

int etcd_harness_stop(EtcdHarness *h, size_t i) {
        EtcdMember *m = &h->m[i];
        if (m->pid <= 0)
                return 0;
        (void) kill(m->pid, SIGCONT);
        (void) kill(m->pid, SIGTERM);
        int st;
        (void) waitpid(m->pid, &st, 0);
        m->pid = 0;
        return 0;
}

static void free_all_at_exit(void) {
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                live[i] = etcd_harness_free(live[i]);
}

EtcdHarness *etcd_harness_new(size_t n, bool tls) {
        if (n == 0 || n > ETCD_HARNESS_MAX)
                return NULL;
        static bool registered;
        if (!registered) {
                atexit(free_all_at_exit);
                registered = true;
        }
        EtcdHarness *h = calloc(1, sizeof(*h));
        if (!h)
                return NULL;
        snprintf(h->dir, sizeof(h->dir), "%s/openvss-etcd-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(h->dir)) {
                free(h);
                return NULL;
        }
        h->reaper = getenv("ETCD_HARNESS_KEEP") ? -1 : reaper_watch(h->dir);
        h->tls = tls;
        h->n = n;
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (!live[i]) {
                        live[i] = h;
                        break;
                }
        const char *scheme = tls ? "https" : "http";
        for (size_t i = 0; i < n; i++) {
                EtcdMember *m = &h->m[i];
                snprintf(m->name, sizeof(m->name), "m%zu", i);
                m->client_port = etcd_harness_free_port();
                m->peer_port = etcd_harness_free_port();
                snprintf(m->client_url, sizeof(m->client_url), "%s://127.0.0.1:%d", scheme, m->client_port);
                snprintf(m->peer_url, sizeof(m->peer_url), "http://127.0.0.1:%d", m->peer_port);
                snprintf(m->data_dir, sizeof(m->data_dir), "%s/%s.etcd", h->dir, m->name);
                size_t len = strlen(h->endpoints);
                snprintf(h->endpoints + len, sizeof(h->endpoints) - len, "%s%s", i ? "," : "", m->client_url);
        }
        int r = tls ? make_certs(h) : 0;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = etcd_harness_start(h, i, false);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = etcd_harness_wait_healthy(h, i);
        if (r < 0) {
                char cmd[4300];
                snprintf(cmd, sizeof(cmd), "tail -n 20 '%s'/*.log >&2", h->dir);
                (void) sh(NULL, cmd);
                return etcd_harness_free(h);
        }
        return h;
}

EtcdHarness *etcd_harness_free(EtcdHarness *h) {
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n; i++)
                if (h->m[i].pid > 0) {
                        (void) kill(h->m[i].pid, SIGKILL);
                        (void) waitpid(h->m[i].pid, NULL, 0);
                }
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i] == h)
                        live[i] = NULL;
        if (h->dir[0] && !getenv("ETCD_HARNESS_KEEP")) {
                char cmd[4300];
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
                (void) sh(NULL, cmd);
        }
        if (h->reaper >= 0)
                close(h->reaper);
        free(h);
        return NULL;
}

int etcd_harness_ctl(EtcdHarness *h, char **out, const char *fmt, ...) {
        char *args = NULL, *cmd = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&args, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        char tls[13000] = "";
        if (h->tls)
                snprintf(tls, sizeof(tls), "--cacert '%s' --cert '%s' --key '%s'", h->cacert, h->client_cert, h->client_key);
        r = asprintf(&cmd, "env -u ETCDCTL_ENDPOINTS ETCDCTL_API=3 " ETCDCTL_BIN " --endpoints '%s' %s %s 2>&1",
                     h->endpoints, tls, args);
        free(args);
        if (r < 0)
                return -ENOMEM;
        r = sh(out, cmd);
        free(cmd);
        return r;
}
