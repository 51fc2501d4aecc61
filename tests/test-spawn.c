/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/basic/spawn: exit status, output capture, early stop, a timeout that takes the whole
 * process group, and no descriptor leaked either way. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "lib/basic/macro.h"
#include "lib/basic/spawn.h"
#include "lib/basic/time-util.h"
#include "tests/check.h"

int test_failures;

typedef struct Captured {
        char out[4096], err[4096];
        size_t n_out, n_err;
} Captured;

static void capture(int which, const char *buf, size_t n, void *userdata) {
        Captured *c = userdata;
        char *dst = which == STDOUT_FILENO ? c->out : c->err;
        size_t *len = which == STDOUT_FILENO ? &c->n_out : &c->n_err;
        if (*len + n < sizeof c->out) {
                memcpy(dst + *len, buf, n);
                *len += n;
                dst[*len] = '\0';
        }
}

static size_t count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        size_t n = 0;
        for (struct dirent *e; d && (e = readdir(d));)
                n += e->d_name[0] != '.';
        if (d)
                closedir(d);
        return n;
}

/* Whether pid runs: there and not a zombie (an orphan is reaped by init, when init gets to it). */
static bool running(pid_t pid) {
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        FILE *f = fopen(path, "re");
        bool r = f && fgets(buf, sizeof buf, f) && strrchr(buf, ')') && strrchr(buf, ')')[2] != 'Z';
        if (f)
                fclose(f);
        return r;
}

/* Runs sh -c script with stdout and stderr captured; returns spawn_wait()'s result. */
static int run_sh(const char *script, uint64_t timeout_usec, Captured *c, Spawned *ret) {
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) script, NULL };
        SpawnOptions o = { .path = "/bin/sh", .argv = argv, .stdin_fd = SPAWN_NULL, .stdout_fd = SPAWN_PIPE,
                           .stderr_fd = SPAWN_PIPE };
        SpawnWatch w = { .output = capture, .userdata = c };

        *c = (Captured) {};
        if (spawn_start(&o, ret) < 0)
                return -1;
        return spawn_wait(ret, timeout_usec ? now_monotonic_usec() + timeout_usec : 0, &w);
}

static void test_status_and_output(void) {
        size_t before = count_fds();
        Captured c;
        Spawned p;

        CHECK(run_sh("echo out; echo err >&2; exit 3", 0, &c, &p) == SPAWN_EXITED);
        CHECK(p.reaped && WIFEXITED(p.status) && WEXITSTATUS(p.status) == 3);
        CHECK_STR(c.out, "out\n");
        CHECK_STR(c.err, "err\n");
        spawned_done(&p);

        CHECK(run_sh("kill -USR1 $$", 0, &c, &p) == SPAWN_EXITED);
        CHECK(WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGUSR1);
        spawned_done(&p);

        /* Done at its exit, although a background job keeps the pipes open. */
        uint64_t t0 = now_monotonic_usec();
        CHECK(run_sh("sleep 5 & echo last", 10 * USEC_PER_SEC, &c, &p) == SPAWN_EXITED);
        CHECK(now_monotonic_usec() - t0 < 4 * USEC_PER_SEC);
        CHECK_STR(c.out, "last\n");
        spawn_terminate(&p, 0, NULL); /* the background job goes with its group */
        spawned_done(&p);
        CHECK(count_fds() == before);
}

static void test_exec_failure(void) {
        char *argv[] = { (char *) "/nonexistent/hook", NULL };
        SpawnOptions o = { .path = "/nonexistent/hook", .argv = argv, .stdin_fd = SPAWN_NULL,
                           .stdout_fd = SPAWN_INHERIT, .stderr_fd = SPAWN_PIPE };
        Captured c = {};
        SpawnWatch w = { .output = capture, .userdata = &c };
        Spawned p;

        CHECK(spawn_start(&o, &p) == 0);
        CHECK(spawn_wait(&p, 0, &w) == SPAWN_EXITED);
        CHECK(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 127);
        CHECK_STR(c.err, "cannot execute /nonexistent/hook: No such file or directory\n");
        spawned_done(&p);
}

static bool said_line(void *userdata) {
        Captured *c = userdata;
        return strchr(c->out, '\n') != NULL;
}

/* Starts sh -c script and waits (10 s at most: the machine may be loaded) until it printed a line,
 * then gives it timeout_usec more; returns that wait's result. */
static int run_sh_after_line(const char *script, uint64_t timeout_usec, Captured *c, Spawned *ret) {
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) script, NULL };
        SpawnOptions o = { .path = "/bin/sh", .argv = argv, .stdin_fd = SPAWN_NULL, .stdout_fd = SPAWN_PIPE,
                           .stderr_fd = SPAWN_PIPE };
        SpawnWatch w = { .output = capture, .stop = said_line, .userdata = c };

        *c = (Captured) {};
        if (spawn_start(&o, ret) < 0 || spawn_wait(ret, now_monotonic_usec() + 10 * USEC_PER_SEC, &w) != SPAWN_STOPPED)
                return -1;
        w.stop = NULL;
        return spawn_wait(ret, now_monotonic_usec() + timeout_usec, &w);
}

static void test_timeout_kills_group(void) {
        size_t before = count_fds();
        Captured c;
        Spawned p;

        /* The grandchild writes its pid, then both sleep past the deadline. */
        uint64_t t0 = now_monotonic_usec();
        CHECK(run_sh_after_line("sleep 30 & echo $!; sleep 30", 300 * USEC_PER_MSEC, &c, &p) == -ETIME);
        CHECK(now_monotonic_usec() - t0 < 15 * USEC_PER_SEC);
        pid_t grandchild = (pid_t) atoi(c.out);
        CHECK(grandchild > 0);
        spawn_terminate(&p, 500 * USEC_PER_MSEC, NULL);
        CHECK(p.reaped && WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGTERM);
        CHECK(grandchild <= 0 || !running(grandchild));
        spawned_done(&p);

        /* SIGTERM ignored (once the shell said so): SIGKILL after the grace period. */
        CHECK(run_sh_after_line("trap '' TERM; echo ready; sleep 30", 100 * USEC_PER_MSEC, &c, &p) == -ETIME);
        t0 = now_monotonic_usec();
        spawn_terminate(&p, 200 * USEC_PER_MSEC, NULL);
        CHECK(WIFSIGNALED(p.status) && WTERMSIG(p.status) == SIGKILL);
        CHECK(now_monotonic_usec() - t0 < 5 * USEC_PER_SEC);
        spawned_done(&p);
        CHECK(count_fds() == before);
}

static bool said_ready(void *userdata) {
        Captured *c = userdata;
        return strstr(c->out, "ready\n") != NULL;
}

static void test_stop_and_stdin(void) {
        char *argv[] = { (char *) "sh", (char *) "-c", (char *) "echo ready; read x; echo got $x >&2", NULL };
        SpawnOptions o = { .path = "/bin/sh", .argv = argv, .stdin_fd = SPAWN_PIPE, .stdout_fd = SPAWN_PIPE,
                           .stderr_fd = SPAWN_PIPE };
        Captured c = {};
        SpawnWatch w = { .output = capture, .stop = said_ready, .userdata = &c };
        Spawned p;

        CHECK(spawn_start(&o, &p) == 0);
        CHECK(p.in_fd >= 0 && p.out_fd >= 0 && p.err_fd >= 0);
        CHECK(spawn_wait(&p, now_monotonic_usec() + 10 * USEC_PER_SEC, &w) == SPAWN_STOPPED);
        CHECK(write(p.in_fd, "go\n", 3) == 3);
        w.stop = NULL;
        CHECK(spawn_wait(&p, now_monotonic_usec() + 10 * USEC_PER_SEC, &w) == SPAWN_EXITED);
        CHECK_STR(c.err, "got go\n");
        spawned_done(&p);
}

static void test_no_fd_leak_to_child(void) {
        /* A descriptor of ours without close-on-exec is not the child's. */
        int fd = open("/dev/null", O_RDONLY);
        char script[64];
        Captured c;
        Spawned p;

        CHECK(fd >= 3);
        snprintf(script, sizeof script, "[ -e /proc/self/fd/%d ] && echo leaked; exit 0", fd);
        CHECK(run_sh(script, 0, &c, &p) == SPAWN_EXITED);
        CHECK_STR(c.out, "");
        spawned_done(&p);
        close(fd);
}

static void test_env(void) {
        char *extra[] = { (char *) "SPAWN_TEST_A=new", (char *) "SPAWN_TEST_B", (char *) "SPAWN_TEST_C=c" };
        setenv("SPAWN_TEST_A", "old", 1);
        setenv("SPAWN_TEST_B", "gone", 1);
        _cleanup_free_ char **env = spawn_env(extra, ELEMENTSOF(extra));
        size_t a = 0, b = 0, cc = 0;

        CHECK(env);
        for (size_t i = 0; env && env[i]; i++) {
                a += streq(env[i], "SPAWN_TEST_A=new");
                CHECK(!streq(env[i], "SPAWN_TEST_A=old"));
                b += strncmp(env[i], "SPAWN_TEST_B", 12) == 0;
                cc += streq(env[i], "SPAWN_TEST_C=c");
        }
        CHECK(a == 1 && b == 0 && cc == 1);
}

int main(void) {
        signal(SIGPIPE, SIG_IGN);
        test_status_and_output();
        test_exec_failure();
        test_timeout_kills_group();
        test_stop_and_stdin();
        test_no_fd_leak_to_child();
        test_env();
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
