/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "lib/basic/fd-util.h"
#include "writers/exec/hook-output.h"

typedef struct linger {
        int fd, dest;
        sd_event_source *src;
} linger;

static int log_fd = -1;
static linger **lingers;
static size_t n_lingers;

int hook_output_open_log(const char *path) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
                return -errno;
        if (log_fd >= 0)
                close(log_fd);
        log_fd = fd;
        return 0;
}

int hook_output_err_dest(void) {
        return log_fd >= 0 ? log_fd : STDERR_FILENO;
}

int hook_output_out_dest(void) {
        return log_fd >= 0 ? log_fd : STDOUT_FILENO;
}

void hook_output_write(int dest, const char *buf, size_t n) {
        (void) write_all(dest, buf, n); /* errors dropped: a log never fails a hook */
}

/* Forwards what the pipe holds now. Returns false once its last writer is gone (or it fails). */
static bool drain(int fd, int dest) {
        for (;;) {
                char buf[4096];
                ssize_t k = read(fd, buf, sizeof buf);
                if (k > 0) {
                        hook_output_write(dest, buf, (size_t) k);
                        continue;
                }
                if (k < 0 && errno == EINTR)
                        continue;
                return k < 0 && errno == EAGAIN;
        }
}

static void linger_remove(size_t i) {
        linger *l = lingers[i];

        l->src = sd_event_source_disable_unref(l->src);
        close(l->fd);
        free(l);
        memmove(lingers + i, lingers + i + 1, (n_lingers - i - 1) * sizeof *lingers);
        n_lingers--;
}

static void linger_service(linger *l) {
        if (drain(l->fd, l->dest))
                return;
        for (size_t i = 0; i < n_lingers; i++)
                if (lingers[i] == l) {
                        linger_remove(i);
                        return;
                }
}

static int on_linger_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        linger_service(userdata);
        return 0;
}

void hook_output_linger(int *fd, int dest) {
        sd_event *e = NULL;
        linger *l, **a;

        if (*fd < 0)
                return;
        (void) fcntl(*fd, F_SETFL, O_NONBLOCK);
        if (!drain(*fd, dest)) { /* the usual case: nobody else holds it */
                close(*fd);
                *fd = -1;
                return;
        }
        l = calloc(1, sizeof *l);
        a = l ? realloc(lingers, (n_lingers + 1) * sizeof *lingers) : NULL;
        if (!a) {
                /* Out of memory: keeping the pipe open unread is still better than a SIGPIPE. */
                free(l);
                *fd = -1;
                return;
        }
        lingers = a;
        *l = (linger) { .fd = *fd, .dest = dest };
        lingers[n_lingers++] = l;
        *fd = -1;
        /* Without a source, hook runs and the exit hand-off still drain it. */
        if (sd_event_default(&e) >= 0) {
                (void) sd_event_add_io(e, &l->src, l->fd, EPOLLIN, on_linger_io, l);
                sd_event_unref(e);
        }
}

size_t hook_output_poll_fill(struct pollfd *p, size_t max) {
        size_t n = 0;

        for (size_t i = 0; i < n_lingers && n < max; i++)
                p[n++] = (struct pollfd) { .fd = lingers[i]->fd, .events = POLLIN };
        return n;
}

void hook_output_poll_done(const struct pollfd *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (!p[i].revents)
                        continue;
                for (size_t j = 0; j < n_lingers; j++)
                        if (lingers[j]->fd == p[i].fd) {
                                linger_service(lingers[j]);
                                break;
                        }
        }
}

static int cmp_int(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;
        return (x > y) - (x < y);
}

/* The drainer: keeps only the pipes and their destinations open (the vssd connection must close
 * with the writer), and forwards until every pipe's last writer is gone. */
static _Noreturn void drainer(void) {
        int *keep = calloc(2 * n_lingers + 1, sizeof *keep), low = 3;
        struct pollfd *p = calloc(n_lingers, sizeof *p);
        size_t k = 0, left = n_lingers;
        sigset_t none;

        if (!keep || !p)
                _exit(1);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (size_t i = 0; i < n_lingers; i++) {
                keep[k++] = lingers[i]->fd;
                keep[k++] = lingers[i]->dest;
        }
        qsort(keep, k, sizeof *keep, cmp_int);
        for (size_t i = 0; i < k; i++) {
                if (keep[i] > low)
                        close_range((unsigned) low, (unsigned) keep[i] - 1, 0);
                if (keep[i] + 1 > low)
                        low = keep[i] + 1;
        }
        close_range((unsigned) low, ~0U, 0);
        for (size_t i = 0; i < n_lingers; i++)
                p[i] = (struct pollfd) { .fd = lingers[i]->fd, .events = POLLIN };
        while (left > 0) {
                if (poll(p, n_lingers, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        _exit(1);
                }
                for (size_t i = 0; i < n_lingers; i++)
                        if (p[i].fd >= 0 && p[i].revents && !drain(p[i].fd, lingers[i]->dest)) {
                                close(p[i].fd);
                                p[i].fd = -1; /* poll ignores it from now on */
                                left--;
                        }
        }
        _exit(0);
}

void hook_output_handoff(void) {
        for (size_t i = n_lingers; i-- > 0;)
                linger_service(lingers[i]);
        if (n_lingers > 0) {
                pid_t pid = fork();
                if (pid == 0)
                        drainer();
                if (pid < 0)
                        fprintf(stderr, "vss-writer-exec: cannot keep draining the output of hooks' background "
                                        "jobs: fork: %m\n");
        }
        while (n_lingers > 0)
                linger_remove(n_lingers - 1);
        free(lingers);
        lingers = NULL;
        if (log_fd >= 0)
                close(log_fd);
        log_fd = -1;
}
