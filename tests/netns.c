/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Network namespaces for tests: see netns.h. */
#include "tests/netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IP_BIN "/usr/sbin/ip"
#define SOCAT_BIN "/usr/bin/socat"
#define NETNS_DIR "/run/netns"

/* Every live set of namespaces, for the exit and signal handlers. */
static NetNs *live[4];
/* The sweep's commands fail for what is already gone: no message then. */
static bool quiet;

/* Runs argv, stdout to *out (if out) else /dev/null, stderr kept; returns the exit status. Only
 * fork/exec/pipe/read/wait, so the signal path can use it too. */
static int run(char **out, char *const argv[]) {
        int pfd[2] = { -1, -1 };
        if (out && pipe2(pfd, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = out ? pfd[1] : open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (fd >= 0)
                        dup2(fd, 1);
                if (quiet && (fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0)
                        dup2(fd, 2);
                execv(argv[0], argv);
                _exit(127);
        }
        if (out) {
                close(pfd[1]);
                size_t size = 0, cap = 4096;
                char *buf = malloc(cap);
                ssize_t k;
                while (buf && (k = read(pfd[0], buf + size, cap - size - 1)) > 0) {
                        size += (size_t) k;
                        if (cap - size < 2)
                                buf = realloc(buf, cap *= 2);
                }
                if (buf)
                        buf[size] = 0;
                close(pfd[0]);
                *out = buf;
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int netns_ip(char **out, const char *fmt, ...) {
        char cmd[1024], *argv[64];
        size_t k = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        argv[k++] = (char *) IP_BIN;
        for (char *save = NULL, *w = strtok_r(cmd, " ", &save); w && k < 63; w = strtok_r(NULL, " ", &save))
                argv[k++] = w;
        argv[k] = NULL;
        return run(out, argv);
}

/* Deleting a namespace takes its veth end and so the pair; the bridge goes by itself. */
static void teardown(NetNs *ns) {
        for (size_t i = 0; i < ns->n_forward; i++)
                if (ns->forward[i] > 0) {
                        kill(ns->forward[i], SIGTERM);
                        waitpid(ns->forward[i], NULL, 0);
                        ns->forward[i] = 0;
                }
        for (size_t i = 0; i < ns->n; i++)
                if (ns->name[i][0]) {
                        char *del[] = { (char *) IP_BIN, (char *) "link", (char *) "del", ns->veth[i], NULL };
                        char *nsdel[] = { (char *) IP_BIN, (char *) "netns", (char *) "del", ns->name[i], NULL };
                        run(NULL, del);
                        run(NULL, nsdel);
                        ns->name[i][0] = 0;
                }
        if (ns->bridge[0]) {
                char *del[] = { (char *) IP_BIN, (char *) "link", (char *) "del", ns->bridge, NULL };
                run(NULL, del);
                ns->bridge[0] = 0;
        }
}

NetNs *netns_free(NetNs *ns) {
        if (!ns)
                return NULL;
        teardown(ns);
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i] == ns)
                        live[i] = NULL;
        free(ns);
        return NULL;
}

static void cleanup_all(void) {
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i])
                        live[i] = netns_free(live[i]);
}

/* A test killed by a signal (meson's timeout sends SIGTERM) still removes its namespaces. */
static void on_signal(int sig) {
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i])
                        teardown(live[i]);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Namespaces and links of runs that were SIGKILLed: their PID is gone. */
static void sweep_stale(void) {
        DIR *d = opendir(NETNS_DIR);
        struct dirent *e;
        quiet = true;
        while (d && (e = readdir(d))) {
                int pid, idx;
                if (sscanf(e->d_name, "ovss-%d-%d", &pid, &idx) != 2 || pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH) == 0)
                        continue;
                netns_ip(NULL, "netns del %s", e->d_name);
                netns_ip(NULL, "link del ov%d-%dh", pid, idx);
                netns_ip(NULL, "link del ov%d-br", pid);
        }
        if (d)
                closedir(d);
        quiet = false;
}

bool netns_available(void) {
        return geteuid() == 0 && access(IP_BIN, X_OK) == 0 && access(SOCAT_BIN, X_OK) == 0;
}

/* A 10.231.X.0/24 no route of this machine uses yet. */
static int pick_subnet(void) {
        for (int k = 0; k < 250; k++) {
                int x = (int) ((getpid() + k) % 250) + 1;
                char *out = NULL;
                int r = netns_ip(&out, "-4 route show 10.231.%d.0/24", x);
                bool free_ = r == 0 && out && !out[0];
                free(out);
                if (free_)
                        return x;
        }
        return -1;
}

static int setup(NetNs *ns, size_t n) {
        int pid = (int) getpid(), x = pick_subnet();
        if (x < 0)
                return -1;
        snprintf(ns->bridge, sizeof(ns->bridge), "ov%d-br", pid);
        snprintf(ns->gateway, sizeof(ns->gateway), "10.231.%d.1", x);
        if (netns_ip(NULL, "link add %s type bridge", ns->bridge) != 0 ||
            netns_ip(NULL, "addr add %s/24 dev %s", ns->gateway, ns->bridge) != 0 ||
            netns_ip(NULL, "link set %s up", ns->bridge) != 0)
                return -1;
        for (size_t i = 0; i < n; i++) {
                char peer[16];
                snprintf(ns->veth[i], sizeof(ns->veth[i]), "ov%d-%zuh", pid, i);
                snprintf(peer, sizeof(peer), "ov%d-%zun", pid, i);
                snprintf(ns->addr[i], sizeof(ns->addr[i]), "10.231.%d.%zu", x, i + 2);
                if (netns_ip(NULL, "netns add ovss-%d-%zu", pid, i) != 0)
                        return -1;
                snprintf(ns->name[i], sizeof(ns->name[i]), "ovss-%d-%zu", pid, i);
                ns->n = i + 1;
                if (netns_ip(NULL, "link add %s type veth peer name %s netns %s", ns->veth[i], peer, ns->name[i]) != 0 ||
                    netns_ip(NULL, "link set %s master %s up", ns->veth[i], ns->bridge) != 0 ||
                    netns_ip(NULL, "-n %s addr add %s/24 dev %s", ns->name[i], ns->addr[i], peer) != 0 ||
                    netns_ip(NULL, "-n %s link set %s up", ns->name[i], peer) != 0 ||
                    netns_ip(NULL, "-n %s link set lo up", ns->name[i]) != 0)
                        return -1;
        }
        return 0;
}

NetNs *netns_new(size_t n) {
        static bool handlers;
        if (n == 0 || n > NETNS_MAX || !netns_available()) {
                fprintf(stderr, "netns: needs root, %s and %s\n", IP_BIN, SOCAT_BIN);
                return NULL;
        }
        sweep_stale();
        if (!handlers) {
                static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGABRT };
                for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                        signal(sigs[i], on_signal);
                atexit(cleanup_all);
                handlers = true;
        }
        NetNs *ns = calloc(1, sizeof(*ns));
        size_t slot = 0;
        while (slot < sizeof(live) / sizeof(live[0]) && live[slot])
                slot++;
        if (!ns || slot == sizeof(live) / sizeof(live[0])) {
                free(ns);
                return NULL;
        }
        live[slot] = ns;
        if (setup(ns, n) < 0) {
                fprintf(stderr, "netns: could not make %zu namespaces (see ip's message above)\n", n);
                return netns_free(ns);
        }
        return ns;
}

int netns_enter(const char *name) {
        char path[256];
        snprintf(path, sizeof(path), NETNS_DIR "/%s", name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
        close(fd);
        return r;
}

pid_t netns_spawn(NetNs *ns, size_t i, char *const argv[]) {
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (netns_enter(ns->name[i]) < 0) {
                fprintf(stderr, "netns: cannot enter %s: %m\n", ns->name[i]);
                _exit(126);
        }
        execv(argv[0], argv);
        fprintf(stderr, "netns: cannot run %s: %m\n", argv[0]);
        _exit(127);
}

int netns_link(NetNs *ns, size_t i, bool up) {
        if (netns_ip(NULL, "link set %s %s", ns->veth[i], up ? "up" : "down") != 0) {
                fprintf(stderr, "netns: could not set %s %s\n", ns->veth[i], up ? "up" : "down");
                return -1;
        }
        return 0;
}

bool netns_carrier(NetNs *ns, size_t i) {
        char *out = NULL;
        int pid = (int) getpid();
        int r = netns_ip(&out, "-n %s link show ov%d-%zun", ns->name[i], pid, i);
        bool carrier = r == 0 && out && !strstr(out, "NO-CARRIER") && strstr(out, "LOWER_UP");
        free(out);
        return carrier;
}

static bool can_connect(const char *addr, int port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        inet_pton(AF_INET, addr, &a.sin_addr);
        bool ok = fd >= 0 && connect(fd, (struct sockaddr *) &a, sizeof(a)) == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

int netns_forward(NetNs *ns, int port) {
        if (ns->n_forward == NETNS_FORWARDS_MAX)
                return -1;
        char listen[128], target[64];
        snprintf(listen, sizeof(listen), "TCP-LISTEN:%d,bind=%s,reuseaddr,fork", port, ns->gateway);
        snprintf(target, sizeof(target), "TCP:127.0.0.1:%d", port);
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                /* Its refused connections (etcd stopped by a test) are no news. */
                int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (fd >= 0)
                        dup2(fd, 2);
                execl(SOCAT_BIN, "socat", listen, target, (char *) NULL);
                _exit(127);
        }
        ns->forward[ns->n_forward] = pid;
        ns->forward_port[ns->n_forward++] = port;
        /* socat listens a moment after exec: wait for the listening socket (each probe connection is
         * forwarded and closed, harmless). */
        for (int k = 0; k < 500; k++) {
                if (can_connect(ns->gateway, port))
                        return 0;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        ns->forward[ns->n_forward - 1] = 0;
                        break;
                }
                struct timespec ts = { 0, 10 * 1000000L };
                nanosleep(&ts, NULL);
        }
        fprintf(stderr, "netns: socat did not listen on %s:%d\n", ns->gateway, port);
        return -1;
}
