/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* `exec` providers: block, LVM, SAN or cloud snapshots cut by an external command, configured in
 * vssd's config. vssd holds the filesystem frozen (flush-and-hold) while the create command runs;
 * the command prints the shadow's location as its last line of output. */

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib/basic/macro.h"
#include "lib/basic/spawn.h"
#include "lib/basic/time-util.h"
#include "providers/provider.h"
#include "providers/exec/exec.h"

#define MAX_OUTPUT (64 * 1024)
#define DELETE_TIMEOUT_USEC (120ULL * 1000000ULL)

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

volatile sig_atomic_t provider_command_group = 0;

/* Appends buf to the output kept (its tail: the location is the last line) and hands every
 * complete line to on_line as it comes. */
typedef struct Output {
        char *out;
        size_t len;
        char line[PATH_MAX];
        size_t line_len;
        bool line_long;
        void (*on_line)(const char *line, void *userdata);
        void *userdata;
} Output;

static void output_add(Output *o, const char *buf, size_t n) {
        if (o->out && o->len + n > MAX_OUTPUT) {
                size_t drop = o->len + n - MAX_OUTPUT;
                drop = drop > o->len ? o->len : drop;
                memmove(o->out, o->out + drop, o->len - drop);
                o->len -= drop;
        }
        if (o->out && n <= MAX_OUTPUT) {
                memcpy(o->out + o->len, buf, n);
                o->len += n;
        }
        if (!o->on_line)
                return;
        for (size_t i = 0; i < n; i++) {
                if (buf[i] != '\n') {
                        if (o->line_len < sizeof(o->line) - 1)
                                o->line[o->line_len++] = buf[i];
                        else
                                o->line_long = true;
                        continue;
                }
                while (o->line_len > 0 && (o->line[o->line_len - 1] == '\r' || o->line[o->line_len - 1] == ' '))
                        o->line_len--;
                o->line[o->line_len] = 0;
                if (o->line_len > 0 && !o->line_long && strlen(o->line) == o->line_len)
                        o->on_line(o->line, o->userdata);
                o->line_len = 0;
                o->line_long = false;
        }
}

static void output_read(int which, const char *buf, size_t n, void *userdata) {
        output_add(userdata, buf, n);
}

int provider_run_command_lines(const char *cmd, const char *const *env, uint64_t deadline_usec, char **ret_line,
                               void (*on_line)(const char *line, void *userdata), void *userdata) {
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) cmd, NULL };
        size_t n_env = 0;
        while (env[n_env])
                n_env++;
        _cleanup_free_ char **envp = spawn_env((char *const *) env, n_env);
        if (!envp)
                return -ENOMEM;
        SpawnOptions so = {
                .path = "/bin/sh",
                .argv = argv,
                .envp = envp,
                .stdin_fd = SPAWN_NULL,
                .stdout_fd = SPAWN_PIPE,
                .stderr_fd = SPAWN_INHERIT,
                .death_signal = SIGKILL,
        };
        Spawned proc;
        int r = spawn_start(&so, &proc);
        if (r < 0)
                return r;
        provider_command_group = proc.pid;

        Output o = { .out = malloc(MAX_OUTPUT + 1), .on_line = on_line, .userdata = userdata };
        SpawnWatch w = { .output = output_read, .userdata = &o };
        /* The command is done when it exits, not when its stdout ends: a background child of it may
         * keep the pipe open. */
        int k = spawn_wait(&proc, deadline_usec, &w);
        /* The command is over: whatever it left running in its group (a background child still
         * writing a snapshot nobody will record) goes with it, also after a timeout. */
        spawn_terminate(&proc, 0, NULL);
        spawned_done(&proc);
        provider_command_group = 0;
        if (k == -ETIME)
                r = -ETIME;
        else if (k < 0 || !WIFEXITED(proc.status) || WEXITSTATUS(proc.status) != 0)
                r = -EIO;
        else if (ret_line)
                r = o.out ? exec_output_last_line(o.out, o.len, ret_line) : -ENOMEM;
        free(o.out);
        return r;
}

int provider_run_command(const char *cmd, const char *const *env, uint64_t deadline_usec, char **ret_line) {
        return provider_run_command_lines(cmd, env, deadline_usec, ret_line, NULL, NULL);
}

static int exec_supports(const Provider *p, const char *path) {
        char mnt[PATH_MAX];
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return mount_of(path, NULL, mnt, sizeof(mnt), NULL, 0) < 0 ? -EOPNOTSUPP : 0;
}

static void exec_line(const char *line, void *userdata) {
        const ShadowRequest *req = userdata;
        if (exec_location_check(line) >= 0)
                req->report_location(line, req->userdata);
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
        /* Each line the command prints is its location so far, reported as it comes: vssd dying
         * while the command still runs must not lose where the snapshot is. */
        r = provider_run_command_lines(p->create_cmd, env, req->deadline_usec, &loc,
                                       req->report_location ? exec_line : NULL, (void *) req);
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

/* The ids too: the location the create command printed during the cut is recorded crash-safe,
 * not power-safe, so after a power loss the record may hold vssd's default path instead; the
 * command can still find the shadow by its ids. */
static int exec_remove(const Provider *p, const char *set_id, const char *shadow_id, const char *shadow_path) {
        char e_prov[300], e_path[PATH_MAX + 32], e_set[64], e_shadow[64];
        snprintf(e_prov, sizeof(e_prov), "VSS_PROVIDER=%s", p->name);
        snprintf(e_path, sizeof(e_path), "VSS_SHADOW_PATH=%s", shadow_path);
        snprintf(e_set, sizeof(e_set), "VSS_SNAPSHOT_SET_ID=%s", set_id);
        snprintf(e_shadow, sizeof(e_shadow), "VSS_SHADOW_ID=%s", shadow_id);
        const char *env[] = { e_prov, e_path, e_set, e_shadow, NULL };
        return provider_run_command(p->delete_cmd, env, now_monotonic_usec() + DELETE_TIMEOUT_USEC, NULL);
}

static int exec_expose(const Provider *p, const char *shadow_path, const char *at) {
        char e_prov[300], e_path[PATH_MAX + 32], e_at[PATH_MAX + 32];
        if (!p->expose_cmd)
                return -EOPNOTSUPP; /* vssd mounts it itself */
        snprintf(e_prov, sizeof(e_prov), "VSS_PROVIDER=%s", p->name);
        snprintf(e_path, sizeof(e_path), "VSS_SHADOW_PATH=%s", shadow_path);
        snprintf(e_at, sizeof(e_at), "VSS_EXPOSE_AT=%s", at);
        const char *env[] = { e_prov, e_path, e_at, NULL };
        return provider_run_command(p->expose_cmd, env, now_monotonic_usec() + DELETE_TIMEOUT_USEC, NULL);
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
