/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/vssd-process.h"

static long long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void vssd_log_tail(const char *log_path, unsigned lines) {
        char *ring[64] = {}, line[1024];
        size_t n = 0;
        lines = lines > 64 ? 64 : lines;
        FILE *f = log_path ? fopen(log_path, "re") : NULL;
        if (!f || lines == 0) {
                if (f)
                        fclose(f);
                return;
        }
        while (fgets(line, sizeof(line), f)) {
                free(ring[n % lines]);
                ring[n % lines] = strdup(line);
                n++;
        }
        fclose(f);
        fprintf(stderr, "---- last lines of %s ----\n", log_path);
        for (size_t i = n > lines ? n - lines : 0; i < n; i++)
                fputs(ring[i % lines] ? ring[i % lines] : "", stderr);
        for (size_t i = 0; i < lines; i++)
                free(ring[i]);
}

pid_t vssd_start(const char *vssd, const char *const *argv, const char *log_path, const char *notify_path,
                 int timeout_ms) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(notify_path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "vssd_start: %s: path too long\n", notify_path);
                return -1;
        }
        strcpy(sa.sun_path, notify_path);
        unlink(notify_path);
        int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (nfd < 0 || bind(nfd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "vssd_start: notify socket %s: %s\n", notify_path, strerror(errno));
                if (nfd >= 0)
                        close(nfd);
                return -1;
        }
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                fprintf(stderr, "vssd_start: fork: %s\n", strerror(errno));
                close(nfd);
                return -1;
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL); /* vssd must not outlive us */
                if (getppid() != parent)
                        _exit(127);
                int fd = log_path ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                        close(fd);
                }
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                setenv("NOTIFY_SOCKET", notify_path, 1);
                execv(vssd, (char *const *) argv);
                _exit(127);
        }
        long long deadline = now_ms() + timeout_ms;
        for (;;) {
                struct pollfd p = { .fd = nfd, .events = POLLIN };
                char buf[256];
                int st, k = now_ms() < deadline ? poll(&p, 1, 100) : -2;
                if (k == -1 && errno == EINTR)
                        continue;
                if (k == 0 && waitpid(pid, &st, WNOHANG) == pid) {
                        fprintf(stderr, "vssd_start: %s exited before it was ready (%s %d)\n", vssd,
                                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
                        break;
                }
                if (k == 0)
                        continue;
                if (k < 0) {
                        fprintf(stderr, "vssd_start: %s did not become ready in %d ms\n", vssd, timeout_ms);
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        break;
                }
                ssize_t n = recv(nfd, buf, sizeof(buf) - 1, 0);
                if (n > 0) {
                        buf[n] = 0;
                        if (strstr(buf, "READY=1")) {
                                close(nfd);
                                return pid;
                        }
                }
        }
        close(nfd);
        vssd_log_tail(log_path, 20);
        return -1;
}

int vssd_stop(pid_t pid) {
        int st = -1;
        if (pid <= 0)
                return -1;
        kill(pid, SIGTERM);
        for (int i = 0; i < 500; i++) {
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid)
                        return st;
                if (r < 0)
                        return -1;
                struct timespec ts = { 0, 10 * 1000000L };
                nanosleep(&ts, NULL);
        }
        fprintf(stderr, "vssd_stop: vssd did not stop on SIGTERM; killing it\n");
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return st;
}

long vssd_rss_kib(pid_t pid) {
        char path[64], line[256];
        long kib = -1;
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

bool vssd_maps_sqlite(pid_t pid) {
        char path[64], line[512];
        bool found = false;
        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, "/libsqlite3.so");
        fclose(f);
        return found;
}
