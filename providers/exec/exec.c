/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `exec` providers: block, LVM, SAN or cloud snapshots cut by an external command, configured in
 * vssd's config. vssd holds the filesystem frozen (flush-and-hold) while the create command runs;
 * the command prints the shadow's location as its last line of output. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/provider.h"
#include "providers/exec/exec.h"

#define MAX_OUTPUT (64 * 1024)
#define DELETE_TIMEOUT_USEC (120ULL * 1000000ULL)

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

int exec_output_last_line(const char *buf, size_t len, char **ret_line) {
        size_t n = strnlen(buf, len);
        /* Trailing blanks go only when the whole output is one string: a NUL stops the trimming. */
        if (n == len)
                while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                        n--;
        size_t start = n;
        while (start > 0 && buf[start - 1] != '\n')
                start--;
        *ret_line = strndup(buf + start, n - start);
        return *ret_line ? 0 : -ENOMEM;
}

int exec_location_check(const char *line) {
        return !*line || strlen(line) >= PATH_MAX ? -EBADMSG : 0; /* it must say where the shadow is */
}

/* Runs cmd with /bin/sh in its own process group, env (NAME=VALUE, NULL-terminated) added.
 * Returns 0 on exit 0 with the last non-empty line of stdout in *ret_line (if asked), -ETIME
 * when the deadline passed (the group is killed), -EIO on another exit. */
int provider_run_command(const char *cmd, const char *const *env, uint64_t deadline_usec, char **ret_line) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return -errno;
        }
        if (pid == 0) {
                (void) setpgid(0, 0);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, 0);
                dup2(pipefd[1], 1);
                for (size_t i = 0; env[i]; i++)
                        putenv((char *) env[i]);
                execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
                _exit(127);
        }
        close(pipefd[1]);

        char *out = malloc(MAX_OUTPUT + 1);
        size_t len = 0;
        bool timed_out = false, exited = false;
        int status = 0;
        /* The command is done when it exits, not when its stdout ends: a background child of it may
         * keep the pipe open. So poll in short steps and check for its exit (pidfd_open would do,
         * but valgrind and older kernels lack it). */
        (void) fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
        bool eof = false;
        for (;;) {
                if (!exited && waitpid(pid, &status, WNOHANG) == pid)
                        exited = true;
                if (exited && eof)
                        break;
                int timeout = exited ? 0 : 20;
                if (!exited && deadline_usec) {
                        uint64_t now = now_usec();
                        if (now >= deadline_usec) {
                                timed_out = true;
                                break;
                        }
                        if ((deadline_usec - now) / 1000 < 20)
                                timeout = (int) ((deadline_usec - now + 999) / 1000);
                }
                if (eof) {
                        usleep((useconds_t) timeout * 1000);
                        continue;
                }
                struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
                int k = poll(&p, 1, timeout);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k == 0) {
                        if (exited)
                                break; /* exited, and nothing more is buffered */
                        continue;
                }
                char buf[4096];
                ssize_t n = read(pipefd[0], buf, sizeof(buf));
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (n <= 0) {
                        eof = true;
                        continue;
                }
                /* Keep the tail: the location is the last line. */
                if (out && len + (size_t) n > MAX_OUTPUT) {
                        size_t drop = len + (size_t) n - MAX_OUTPUT;
                        drop = drop > len ? len : drop;
                        memmove(out, out + drop, len - drop);
                        len -= drop;
                }
                if (out) {
                        memcpy(out + len, buf, (size_t) n);
                        len += (size_t) n;
                }
        }
        close(pipefd[0]);
        /* The command is over: whatever it left running in its group (a background child still
         * writing a snapshot nobody will record) goes with it, also after a timeout. */
        (void) kill(-pid, SIGKILL);
        if (!exited)
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
        if (timed_out) {
                free(out);
                return -ETIME;
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                free(out);
                return -EIO;
        }
        int r = 0;
        if (ret_line)
                r = out ? exec_output_last_line(out, len, ret_line) : -ENOMEM;
        free(out);
        return r;
}

static int exec_supports(const Provider *p, const char *path) {
        char mnt[PATH_MAX];
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return mount_of(path, NULL, mnt, sizeof(mnt), NULL, 0) < 0 ? -EOPNOTSUPP : 0;
}

static int exec_create(const Provider *p, const ShadowRequest *req, char **ret_location) {
        char mnt[PATH_MAX], dev[PATH_MAX];
        char e_prov[300], e_vol[PATH_MAX + 16], e_dev[PATH_MAX + 16], e_mnt[PATH_MAX + 32], e_set[64], e_shadow[64];
        char *loc = NULL;
        int r = mount_of(req->source, NULL, mnt, sizeof(mnt), dev, sizeof(dev));
        if (r < 0)
                return r;
        snprintf(e_prov, sizeof(e_prov), "VSS_PROVIDER=%s", p->name);
        snprintf(e_vol, sizeof(e_vol), "VSS_VOLUME=%s", req->source);
        snprintf(e_dev, sizeof(e_dev), "VSS_DEVICE=%s", dev);
        snprintf(e_mnt, sizeof(e_mnt), "VSS_MOUNT_POINT=%s", mnt);
        snprintf(e_set, sizeof(e_set), "VSS_SNAPSHOT_SET_ID=%s", req->set_id);
        snprintf(e_shadow, sizeof(e_shadow), "VSS_SHADOW_ID=%s", req->shadow_id);
        const char *env[] = { e_prov, e_vol, e_dev, e_mnt, e_set, e_shadow, NULL };
        r = provider_run_command(p->create_cmd, env, req->deadline_usec, &loc);
        if (r < 0)
                return r;
        r = exec_location_check(loc);
        if (r < 0) {
                free(loc);
                return r;
        }
        *ret_location = loc;
        return 0;
}

static int exec_remove(const Provider *p, const char *shadow_path) {
        char e_prov[300], e_path[PATH_MAX + 32];
        snprintf(e_prov, sizeof(e_prov), "VSS_PROVIDER=%s", p->name);
        snprintf(e_path, sizeof(e_path), "VSS_SHADOW_PATH=%s", shadow_path);
        const char *env[] = { e_prov, e_path, NULL };
        return provider_run_command(p->delete_cmd, env, now_usec() + DELETE_TIMEOUT_USEC, NULL);
}

static int exec_expose(const Provider *p, const char *shadow_path, const char *at) {
        char e_prov[300], e_path[PATH_MAX + 32], e_at[PATH_MAX + 32];
        if (!p->expose_cmd)
                return -EOPNOTSUPP; /* vssd mounts it itself */
        snprintf(e_prov, sizeof(e_prov), "VSS_PROVIDER=%s", p->name);
        snprintf(e_path, sizeof(e_path), "VSS_SHADOW_PATH=%s", shadow_path);
        snprintf(e_at, sizeof(e_at), "VSS_EXPOSE_AT=%s", at);
        const char *env[] = { e_prov, e_path, e_at, NULL };
        return provider_run_command(p->expose_cmd, env, now_usec() + DELETE_TIMEOUT_USEC, NULL);
}

const Provider provider_exec_template = {
        .id = "4f1d2c7e-3b8a-4e6f-9a51-2d7c8e0b6a34",
        .type = "hardware",
        .supports_what = "any mounted filesystem (an external command cuts the copy)",
        .atomic = true, /* every filesystem of the set is frozen before the first command runs */
        .description = "External command under flush-and-hold (block, LVM, SAN or cloud snapshot)",
        .hold = true,
        .named_only = true,
        .supports = exec_supports,
        .create = exec_create,
        .remove = exec_remove,
        .expose = exec_expose,
};
