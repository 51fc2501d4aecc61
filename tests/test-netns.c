/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The network namespace harness of the cluster fault tests (tests/netns.h): hosts reach the
 * gateway and only it, a cut link cuts, a restored one works again, the forward reaches loopback
 * services of the root namespace, and nothing is left behind: after free, exit, a signal, or
 * (swept by the next run) SIGKILL. Skips (77) where namespaces cannot be made. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/check.h"
#include "tests/netns.h"

int test_failures;

static int listener(const char *addr, int *port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET };
        socklen_t len = sizeof(a);
        inet_pton(AF_INET, addr, &a.sin_addr);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0) {
                perror("listener");
                exit(99);
        }
        *port = ntohs(a.sin_port);
        return fd;
}

/* In a child inside host i's namespace: connect to addr:port within timeout_ms and send "hi".
 * Returns the child's verdict: 0 connected, 1 not. */
static int connect_from(NetNs *ns, size_t i, const char *addr, int port, int timeout_ms) {
        pid_t pid = fork();
        if (pid == 0) {
                if (netns_enter(ns->name[i]) < 0)
                        _exit(2);
                int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
                inet_pton(AF_INET, addr, &a.sin_addr);
                if (connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 && errno != EINPROGRESS)
                        _exit(1);
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                int err = 0;
                socklen_t len = sizeof(err);
                if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
                        _exit(1);
                _exit(write(fd, "hi", 2) == 2 ? 0 : 1);
        }
        int st;
        waitpid(pid, &st, 0);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 3;
}

static bool accept_hi(int lfd) {
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        if (poll(&p, 1, 5000) != 1)
                return false;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        char buf[3] = {};
        p = (struct pollfd) { .fd = fd, .events = POLLIN };
        bool ok = fd >= 0 && poll(&p, 1, 5000) == 1 && read(fd, buf, 2) == 2 && strcmp(buf, "hi") == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

static bool listed(const char *what, const char *name) {
        char *out = NULL;
        netns_ip(&out, "%s", what);
        bool found = out && strstr(out, name);
        free(out);
        return found;
}

static NetNs *make(size_t n) {
        NetNs *ns = netns_new(n);
        if (!ns) {
                fprintf(stderr, "network namespaces cannot be made here: skipped\n");
                exit(77);
        }
        return ns;
}

/* Each host has its address, reaches the gateway; a cut link drops its packets and takes its
 * carrier; restored, it works again. The other hosts are not touched. */
static void test_links(void) {
        NetNs *ns = make(3);
        int port, lfd = listener(ns->gateway, &port);
        for (size_t i = 0; i < ns->n; i++) {
                char *out = NULL;
                CHECK(netns_ip(&out, "-n %s -4 addr show", ns->name[i]) == 0);
                CHECK(out && strstr(out, ns->addr[i]));
                free(out);
                CHECK(netns_carrier(ns, i));
                CHECK(connect_from(ns, i, ns->gateway, port, 5000) == 0);
                CHECK(accept_hi(lfd));
        }
        /* A process started in a namespace sees that namespace's links only. */
        char *argv[] = { (char *) "/usr/sbin/ip", (char *) "-o", (char *) "link", NULL };
        pid_t pid = netns_spawn(ns, 1, argv);
        int st;
        CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* The root namespace's loopback is not the host's. */
        int lport, lo = listener("127.0.0.1", &lport);
        CHECK(connect_from(ns, 0, "127.0.0.1", lport, 1000) == 1);
        close(lo);

        CHECK(netns_link(ns, 1, false) == 0);
        CHECK(!netns_carrier(ns, 1));
        /* A connect over a cut link gets no answer at all (dropped, not refused): it times out. */
        CHECK(connect_from(ns, 1, ns->gateway, port, 1000) == 1);
        CHECK(connect_from(ns, 2, ns->gateway, port, 5000) == 0);
        CHECK(accept_hi(lfd));
        CHECK(netns_link(ns, 1, true) == 0);
        CHECK(netns_carrier(ns, 1));
        CHECK(connect_from(ns, 1, ns->gateway, port, 5000) == 0);
        CHECK(accept_hi(lfd));
        close(lfd);
        netns_free(ns);
}

/* The forward reaches a loopback-only service of the root namespace (as etcd is). */
static void test_forward(void) {
        NetNs *ns = make(2);
        int port, lfd = listener("127.0.0.1", &port);
        CHECK(netns_forward(ns, port) == 0);
        /* The probe connections of netns_forward arrived too: take them first. */
        struct pollfd p = { .fd = lfd, .events = POLLIN };
        while (poll(&p, 1, 200) == 1) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                char buf[4];
                p = (struct pollfd) { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, 0) == 1 && read(fd, buf, sizeof(buf)) > 0) {
                        close(fd);
                        CHECK(!"a probe sent data");
                        break;
                }
                close(fd);
                p = (struct pollfd) { .fd = lfd, .events = POLLIN };
        }
        CHECK(connect_from(ns, 0, ns->gateway, port, 5000) == 0);
        CHECK(accept_hi(lfd));
        CHECK(connect_from(ns, 1, ns->gateway, port, 5000) == 0);
        CHECK(accept_hi(lfd));
        close(lfd);
        netns_free(ns);
}

/* A child makes namespaces and ends by `how`; then none of its namespaces or links is left. */
static void cleanup_case(const char *how) {
        int pfd[2];
        CHECK(pipe(pfd) == 0);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                close(pfd[0]);
                NetNs *ns = netns_new(2);
                if (!ns)
                        _exit(77);
                if (write(pfd[1], "x", 1) != 1)
                        _exit(1);
                if (strcmp(how, "exit") == 0)
                        exit(0);        /* atexit */
                pause();
                _exit(0);
        }
        close(pfd[1]);
        char c;
        CHECK(read(pfd[0], &c, 1) == 1);
        close(pfd[0]);
        char name[32], link[32];
        snprintf(name, sizeof(name), "ovss-%d-", (int) pid);
        snprintf(link, sizeof(link), "ov%d-", (int) pid);
        CHECK(listed("netns list", name));
        CHECK(listed("link", link));
        if (strcmp(how, "term") == 0)
                kill(pid, SIGTERM);
        else if (strcmp(how, "kill") == 0)
                kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (strcmp(how, "kill") == 0) {
                /* Nobody could clean up; the next run sweeps what the dead PID left. */
                CHECK(listed("netns list", name));
                netns_free(make(1));
        }
        CHECK(!listed("netns list", name));
        CHECK(!listed("link", link));
}

static void test_cleanup(void) {
        if (!netns_available()) {
                fprintf(stderr, "network namespaces cannot be made here: skipped\n");
                exit(77);
        }
        cleanup_case("exit");
        cleanup_case("term");
        cleanup_case("kill");
}

int main(int argc, char *argv[]) {
        static const struct {
                const char *name;
                void (*fn)(void);
        } cases[] = { { "netns-links", test_links }, { "netns-forward", test_forward }, { "netns-cleanup", test_cleanup } };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                if (argc < 2 || strcmp(argv[1], cases[i].name) == 0) {
                        printf("== %s\n", cases[i].name);
                        cases[i].fn();
                }
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
