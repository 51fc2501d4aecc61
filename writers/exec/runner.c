/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec: the hook runner. A hook is a process group of its own (lib/basic/spawn.h); its
 * stderr is copied to the log and its last line is its message; in hold mode its stdout says when
 * it is ready and its stdin tells it to let go. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "lib/basic/log.h"
#include "lib/basic/spawn.h"
#include "lib/basic/time-util.h"
#include "writers/exec/exec-writer.h"
#include "writers/exec/hook-output.h"

#define KILL_GRACE_USEC (2000 * USEC_PER_MSEC)

/* Collects a hook's stderr: passes it on to the log and remembers its last non-empty line. */
typedef struct line_tracker {
        char cur[MSG_MAX + 1];
        size_t cur_len;
        bool truncated;
        char last[MSG_MAX + 1];
} line_tracker;

static void line_commit(line_tracker *t) {
        size_t n = t->cur_len, s = n;

        if (t->truncated) { /* do not end inside a UTF-8 sequence */
                while (s > 0 && n - s < 3 && ((unsigned char) t->cur[s - 1] & 0xC0) == 0x80)
                        s--;
                if (s > 0) {
                        unsigned char b = (unsigned char) t->cur[s - 1];
                        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
                        if (n - (s - 1) < need)
                                n = s - 1;
                }
        }
        while (n > 0 && strchr(" \t\r\v\f", t->cur[n - 1]))
                n--;
        if (n > 0) {
                memcpy(t->last, t->cur, n);
                t->last[n] = '\0';
        }
        t->cur_len = 0;
        t->truncated = false;
}

static void line_feed(line_tracker *t, const char *buf, size_t n) {
        hook_output_write(hook_output_err_dest(), buf, n);
        for (size_t i = 0; i < n; i++) {
                if (buf[i] == '\n')
                        line_commit(t);
                else if (t->cur_len < MSG_MAX)
                        t->cur[t->cur_len++] = buf[i];
                else
                        t->truncated = true;
        }
}

/* One started hook: its process (leader of its own process group) with the pipes we read (stderr,
 * and stdout in hold mode) and the one we write (its stdin, in hold mode). */
struct hook_proc {
        char *name; /* file name in the hooks directory */
        Spawned proc;
        bool ready, want_ready, timed_out, cancelled;
        line_tracker err;
        char out[MSG_MAX + 1]; /* the stdout line being read (hold mode) */
        size_t out_len;
        sd_event_source *err_src, *out_src, *pid_src;
        /* Watched from the main loop (hook_start_async): the deadline, then the kill's grace. */
        sd_event_source *timer_src;
        bool terminating, killed;
        uint64_t kill_at;
        hook_done_fn done;
        void *done_data;
};

/* Hooks holding a session from Freeze until Thaw or Abort (--hold). */
static hook_proc **holds;
static size_t n_holds;

static void hook_unwatch(hook_proc *hp) {
        hp->err_src = sd_event_source_disable_unref(hp->err_src);
        hp->out_src = sd_event_source_disable_unref(hp->out_src);
        hp->pid_src = sd_event_source_disable_unref(hp->pid_src);
        hp->timer_src = sd_event_source_disable_unref(hp->timer_src);
}

static hook_proc *hook_free(hook_proc *hp) {
        if (!hp)
                return NULL;
        hook_unwatch(hp);
        /* Not closed: a background job the hook left may still write to them. */
        hook_output_linger(&hp->proc.err_fd, hook_output_err_dest());
        hook_output_linger(&hp->proc.out_fd, hook_output_out_dest());
        spawned_done(&hp->proc);
        free(hp->name);
        free(hp);
        return NULL;
}

/* Takes what the hook wrote to stdout (hold mode): a line "ready" marks it ready, other lines
 * go to our stdout. */
static void hook_feed_out(hook_proc *hp, const char *buf, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (buf[i] != '\n') {
                        if (hp->out_len < MSG_MAX)
                                hp->out[hp->out_len++] = buf[i];
                        continue;
                }
                size_t len = hp->out_len;
                while (len > 0 && strchr(" \t\r", hp->out[len - 1]))
                        len--;
                if (len == 5 && memcmp(hp->out, "ready", 5) == 0)
                        hp->ready = true;
                else {
                        hook_output_write(hook_output_out_dest(), hp->out, hp->out_len);
                        hook_output_write(hook_output_out_dest(), "\n", 1);
                }
                hp->out_len = 0;
        }
}

static void on_output(int which, const char *buf, size_t n, void *userdata) {
        hook_proc *hp = userdata;

        if (which == STDOUT_FILENO)
                hook_feed_out(hp, buf, n);
        else
                line_feed(&hp->err, buf, n);
}

static bool on_stop(void *userdata) {
        hook_proc *hp = userdata;
        return hp->want_ready && hp->ready;
}

static size_t on_poll_fill(struct pollfd *p, size_t max, void *userdata) {
        return hook_output_poll_fill(p, max);
}

static void on_poll_done(const struct pollfd *p, size_t n, void *userdata) {
        hook_output_poll_done(p, n);
}

/* How the runner follows a hook: its output as above; earlier hooks' background jobs may write
 * meanwhile, so their pipes keep flowing too. */
static SpawnWatch hook_watch(hook_proc *hp) {
        return (SpawnWatch) { .output = on_output, .stop = on_stop, .poll_fill = on_poll_fill,
                              .poll_done = on_poll_done, .userdata = hp };
}

/* Starts path with arg; in hold mode its stdin and stdout are pipes of ours. */
static hook_proc *hook_start(const char *path, const char *name, const char *arg, char **env, bool hold,
                             char msg[MSG_MAX + 1]) {
        char *argv[] = { (char *) path, (char *) arg, NULL };
        hook_proc *hp = calloc(1, sizeof *hp);
        int out = hook_output_out_dest(), r;

        if (!hp || !(hp->name = strdup(name))) {
                snprintf(msg, MSG_MAX + 1, "out of memory");
                free(hp);
                return NULL;
        }
        SpawnOptions o = {
                .path = path,
                .argv = argv,
                .envp = env,
                .stdin_fd = hold ? SPAWN_PIPE : SPAWN_NULL,
                .stdout_fd = hold ? SPAWN_PIPE : out == STDOUT_FILENO ? SPAWN_INHERIT : out,
                .stderr_fd = SPAWN_PIPE,
                .death_signal = SIGTERM,
        };
        r = spawn_start(&o, &hp->proc);
        if (r < 0) {
                snprintf(msg, MSG_MAX + 1, "%s: %s", hp->proc.pid < 0 ? "cannot fork" : "cannot create pipe",
                         strerror(-r));
                return hook_free(hp);
        }
        return hp;
}

typedef enum pump_result {
        PUMP_EXITED,
        PUMP_READY,
        PUMP_TIMEOUT,
} pump_result;

/* Copies the hook's output until it exits, says "ready" (when want_ready) or the deadline. */
static pump_result hook_pump(hook_proc *hp, uint64_t deadline_usec, bool want_ready) {
        SpawnWatch w = hook_watch(hp);
        int r;

        hp->want_ready = want_ready;
        r = spawn_wait(&hp->proc, deadline_usec, &w);
        if (r == SPAWN_STOPPED)
                return PUMP_READY;
        if (r == SPAWN_EXITED)
                return want_ready && hp->ready ? PUMP_READY : PUMP_EXITED;
        return PUMP_TIMEOUT;
}

/* SIGTERM to the hook's process group, SIGKILL after the grace period; reaps the hook. */
static void hook_kill(hook_proc *hp) {
        SpawnWatch w = hook_watch(hp);
        spawn_terminate(&hp->proc, KILL_GRACE_USEC, &w);
}

static uint64_t hook_deadline(void) {
        return now_monotonic_usec() + (uint64_t) arg_hook_timeout_ms * USEC_PER_MSEC;
}

/* The failure for a hook that has been reaped (0 on success); sets *code and msg, and says how
 * it went on stderr. */
static int32_t hook_result(hook_proc *hp, const char *arg, int *code, char msg[MSG_MAX + 1]) {
        int status = hp->proc.status;
        int32_t failure;

        line_commit(&hp->err);
        if (hp->out_len > 0) { /* a last stdout line without its newline */
                hook_output_write(hook_output_out_dest(), hp->out, hp->out_len);
                hook_output_write(hook_output_out_dest(), "\n", 1);
                hp->out_len = 0;
        }
        if (hp->cancelled) {
                *code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
                snprintf(msg, MSG_MAX + 1, "hook %s stopped: the set was aborted while it ran", hp->name);
                log_msg("%s: hook %s -> stopped: Abort came while it ran", arg, hp->name);
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        if (hp->timed_out) {
                *code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
                snprintf(msg, MSG_MAX + 1, "hook %s timed out after %u ms", hp->name, arg_hook_timeout_ms);
                log_msg("%s: hook %s -> timed out after %u ms, killed", arg, hp->name, arg_hook_timeout_ms);
                return VSS_E_WRITERERROR_TIMEOUT;
        }
        snprintf(msg, MSG_MAX + 1, "%s", hp->err.last);
        if (WIFEXITED(status)) {
                *code = WEXITSTATUS(status);
                if (*code == 0) {
                        log_msg("%s: hook %s -> ok", arg, hp->name);
                        return 0;
                }
                log_msg("%s: hook %s -> failed, exit status %d: %s", arg, hp->name, *code, msg);
                failure = *code == HOOK_EXIT_RETRYABLE ? VSS_E_WRITERERROR_RETRYABLE
                                                        : VSS_E_WRITERERROR_NONRETRYABLE;
        } else {
                *code = 128 + WTERMSIG(status);
                log_msg("%s: hook %s -> killed by signal SIG%s: %s", arg, hp->name,
                        sigabbrev_np(WTERMSIG(status)) ?: "?", msg);
                failure = VSS_E_WRITERERROR_NONRETRYABLE;
        }
        return failure;
}

/* The end of a hook run to its exit (timed_out: past its deadline, killed now): its result, and
 * it is freed. */
static int32_t hook_end(hook_proc *hp, bool timed_out, const char *arg, int *code, char msg[MSG_MAX + 1]) {
        if (timed_out) {
                hp->timed_out = true;
                hook_kill(hp);
        }
        int32_t failure = hook_result(hp, arg, code, msg);
        hook_free(hp);
        return failure;
}

/* Copies what a hook wrote on fd (its stdout or stderr) from the main loop, and drops the fd's
 * source at its end. True when fd was stdout. */
static bool hook_copy_output(hook_proc *hp, int fd) {
        bool out = fd == hp->proc.out_fd;
        SpawnWatch w = hook_watch(hp);

        if (!spawn_read(&hp->proc, out ? STDOUT_FILENO : STDERR_FILENO, &w)) {
                if (out)
                        hp->out_src = sd_event_source_disable_unref(hp->out_src);
                else
                        hp->err_src = sd_event_source_disable_unref(hp->err_src);
        }
        return out;
}

/* While a hook holds: copy its output from the main loop, and say when it dies. */
static int on_hold_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) hook_copy_output(userdata, fd);
        return 0;
}

static int on_hold_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        hook_proc *hp = userdata;

        hp->pid_src = sd_event_source_disable_unref(hp->pid_src);
        log_msg("hook %s exited while holding", hp->name);
        return 0;
}

static void hold_watch(hook_proc *hp) {
        sd_event *e = NULL;

        if (sd_event_default(&e) < 0)
                return;
        if (hp->proc.err_fd >= 0)
                (void) sd_event_add_io(e, &hp->err_src, hp->proc.err_fd, EPOLLIN, on_hold_io, hp);
        if (hp->proc.out_fd >= 0)
                (void) sd_event_add_io(e, &hp->out_src, hp->proc.out_fd, EPOLLIN, on_hold_io, hp);
        if (hp->proc.pidfd >= 0)
                (void) sd_event_add_io(e, &hp->pid_src, hp->proc.pidfd, EPOLLIN, on_hold_exit, hp);
        sd_event_unref(e);
}

hook_proc *hold_take(const char *name) {
        for (size_t i = 0; i < n_holds; i++)
                if (!name || strcmp(holds[i]->name, name) == 0) {
                        hook_proc *hp = holds[i];
                        memmove(holds + i, holds + i + 1, (n_holds - i - 1) * sizeof *holds);
                        n_holds--;
                        return hp;
                }
        return NULL;
}

int32_t hold_release(hook_proc *hp, const char *arg, int *code, char msg[MSG_MAX + 1]) {
        SpawnWatch w = hook_watch(hp);

        hook_unwatch(hp);
        if (spawn_try_reap(&hp->proc)) { /* died before we let it go */
                int status = hp->proc.status;
                spawn_drain(&hp->proc, &w);
                line_commit(&hp->err);
                *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                snprintf(msg, MSG_MAX + 1, "hook %s exited while holding", hp->name);
                log_msg("%s: hook %s -> failed: exited while holding (status %d)", arg, hp->name, *code);
                (void) kill(-hp->proc.pid, SIGKILL); /* anything it left in its group */
                hook_free(hp);
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        if (hp->proc.in_fd >= 0) {
                close(hp->proc.in_fd);
                hp->proc.in_fd = -1;
        }
        return hook_wait(hp, arg, code, msg);
}

/* A ready hook joins the holds; false when out of memory (then it is killed). */
static bool hold_add(hook_proc *hp) {
        hook_proc **a = realloc(holds, (n_holds + 1) * sizeof *holds);

        if (!a) {
                hp->timed_out = false;
                hook_kill(hp);
                hook_free(hp);
                return false;
        }
        holds = a;
        holds[n_holds++] = hp;
        hold_watch(hp);
        return true;
}

int32_t run_hook(const char *path, const char *name, const char *arg, char **env, bool hold, bool *held, int *code,
                 char msg[MSG_MAX + 1]) {
        hook_proc *hp;
        pump_result pr;

        *code = 127;
        if (held)
                *held = false;
        hp = hook_start(path, name, arg, env, hold, msg);
        if (!hp) {
                log_msg("%s: hook %s -> failed: %s", arg, name, msg);
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        pr = hook_pump(hp, hook_deadline(), hold);
        if (pr == PUMP_READY) {
                if (!hold_add(hp)) {
                        snprintf(msg, MSG_MAX + 1, "out of memory");
                        return VSS_E_WRITERERROR_OUTOFRESOURCES;
                }
                log_msg("%s: hook %s -> ready, holding", arg, name);
                *held = true;
                *code = 0;
                msg[0] = '\0';
                return 0;
        }
        return hook_end(hp, pr == PUMP_TIMEOUT, arg, code, msg);
}

void holds_kill_all(void) {
        hook_proc *hp;

        while ((hp = hold_take(NULL))) {
                hook_unwatch(hp);
                log_msg("stopping held hook %s", hp->name);
                hook_kill(hp);
                hook_free(hp);
        }
        free(holds);
        holds = NULL;
}

/* ---- hooks watched from the main loop: the writer answers vssd (status, Abort) meanwhile ---- */

#define GROUP_POLL_USEC (10 * USEC_PER_MSEC) /* how often a terminated group is looked at */
#define NO_PIDFD_POLL_USEC (20 * USEC_PER_MSEC)
#define MIN(a, b) ((a) < (b) ? (a) : (b))

static void async_end(hook_proc *hp, bool ready) {
        SpawnWatch w = hook_watch(hp);

        hook_unwatch(hp);
        if (!ready)
                spawn_drain(&hp->proc, &w);
        hp->done(hp, ready, hp->done_data);
}

static int async_arm(hook_proc *hp, uint64_t usec) {
        int r = sd_event_source_set_time(hp->timer_src, usec);
        return r < 0 ? r : sd_event_source_set_enabled(hp->timer_src, SD_EVENT_ONESHOT);
}

/* SIGTERM to the group now, SIGKILL when it outlives the grace period (the timer looks). */
static void async_terminate(hook_proc *hp) {
        if (hp->terminating)
                return;
        hp->terminating = true;
        if (hp->proc.in_fd >= 0) {
                close(hp->proc.in_fd);
                hp->proc.in_fd = -1;
        }
        spawn_signal(&hp->proc, SIGTERM);
        hp->kill_at = now_monotonic_usec() + KILL_GRACE_USEC;
        (void) async_arm(hp, now_monotonic_usec() + GROUP_POLL_USEC);
}

/* The leader is gone: done, unless a terminated group lingers (then the timer decides). */
static void async_exited(hook_proc *hp) {
        SpawnWatch w = hook_watch(hp);

        hp->pid_src = sd_event_source_disable_unref(hp->pid_src);
        spawn_drain(&hp->proc, &w);
        if (!spawn_try_reap(&hp->proc)) {
                while (waitpid(hp->proc.pid, &hp->proc.status, 0) < 0 && errno == EINTR)
                        ;
                hp->proc.reaped = true;
        }
        if (hp->terminating && !spawn_group_gone(&hp->proc))
                return;
        async_end(hp, hp->want_ready && hp->ready);
}

static int on_async_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        async_exited(userdata);
        return 0;
}

static int on_async_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        hook_proc *hp = userdata;
        bool out = hook_copy_output(hp, fd);
        if (out && hp->want_ready && hp->ready && !hp->terminating)
                async_end(hp, true);
        return 0;
}

static int on_async_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        hook_proc *hp = userdata;
        uint64_t now = now_monotonic_usec();

        if (hp->proc.pidfd < 0 && !hp->proc.reaped && spawn_try_reap(&hp->proc)) {
                async_exited(hp);
                return 0;
        }
        if (!hp->terminating) {
                if (now < hp->kill_at) { /* no pidfd: look again */
                        (void) async_arm(hp, MIN(hp->kill_at, now + NO_PIDFD_POLL_USEC));
                        return 0;
                }
                hp->timed_out = true;
                async_terminate(hp);
                return 0;
        }
        if (hp->proc.reaped && spawn_group_gone(&hp->proc)) {
                async_end(hp, false);
                return 0;
        }
        if (now >= hp->kill_at && !hp->killed) {
                /* SIGKILL takes effect when each member next runs: the group is looked at until
                 * gone, for a bounded time (an orphan's zombie waits for its new parent). */
                spawn_signal(&hp->proc, SIGKILL);
                hp->killed = true;
                hp->kill_at = now + SPAWN_KILLED_WAIT_MSEC * USEC_PER_MSEC;
        } else if (now >= hp->kill_at) {
                SpawnWatch w = hook_watch(hp);
                spawn_terminate(&hp->proc, 0, &w); /* the leader reaped */
                async_end(hp, false);
                return 0;
        }
        (void) async_arm(hp, now + GROUP_POLL_USEC);
        return 0;
}

/* Watches a started (or released) hook from the main loop until its end or the deadline. */
static int async_watch(hook_proc *hp, hook_done_fn done, void *userdata) {
        sd_event *e = NULL;
        uint64_t now = now_monotonic_usec();
        int r;

        hp->done = done;
        hp->done_data = userdata;
        hp->terminating = hp->killed = false;
        hp->kill_at = hook_deadline(); /* until terminating: the hook's deadline */
        r = sd_event_default(&e);
        if (r < 0)
                return r;
        if (hp->proc.err_fd >= 0)
                r = sd_event_add_io(e, &hp->err_src, hp->proc.err_fd, EPOLLIN, on_async_io, hp);
        if (r >= 0 && hp->proc.out_fd >= 0)
                r = sd_event_add_io(e, &hp->out_src, hp->proc.out_fd, EPOLLIN, on_async_io, hp);
        if (r >= 0 && hp->proc.pidfd >= 0)
                r = sd_event_add_io(e, &hp->pid_src, hp->proc.pidfd, EPOLLIN, on_async_exit, hp);
        if (r >= 0)
                r = sd_event_add_time(e, &hp->timer_src, CLOCK_MONOTONIC,
                                      hp->proc.pidfd < 0 ? MIN(hp->kill_at, now + NO_PIDFD_POLL_USEC) : hp->kill_at,
                                      1000, on_async_timer, hp);
        sd_event_unref(e);
        if (r < 0)
                hook_unwatch(hp);
        return r;
}

hook_proc *hook_start_async(const char *path, const char *name, const char *arg, char **env, bool hold,
                            hook_done_fn done, void *userdata, char msg[MSG_MAX + 1]) {
        hook_proc *hp = hook_start(path, name, arg, env, hold, msg);
        int r;

        if (!hp) {
                log_msg("%s: hook %s -> failed: %s", arg, name, msg);
                return NULL;
        }
        hp->want_ready = hold;
        r = async_watch(hp, done, userdata);
        if (r < 0) { /* cannot watch it: end it */
                snprintf(msg, MSG_MAX + 1, "cannot watch hook %s: %s", name, strerror(-r));
                log_msg("%s: hook %s -> failed: %s", arg, name, msg);
                hook_kill(hp);
                hook_free(hp);
                return NULL;
        }
        return hp;
}

bool hold_release_async(hook_proc *hp, hook_done_fn done, void *userdata) {
        hook_unwatch(hp);
        if (spawn_try_reap(&hp->proc)) /* died while holding: hold_release() says so */
                return false;
        if (hp->proc.in_fd >= 0) {
                close(hp->proc.in_fd);
                hp->proc.in_fd = -1;
        }
        hp->want_ready = false;
        if (async_watch(hp, done, userdata) < 0) {
                hp->want_ready = false;
                return false; /* hold_release() waits for it instead */
        }
        return true;
}

void hook_cancel(hook_proc *hp) {
        hp->cancelled = true;
        async_terminate(hp);
}

int32_t hook_async_result(hook_proc *hp, const char *arg, bool ready, int *code, char msg[MSG_MAX + 1]) {
        if (ready) {
                if (!hold_add(hp)) {
                        snprintf(msg, MSG_MAX + 1, "out of memory");
                        *code = 127;
                        return VSS_E_WRITERERROR_OUTOFRESOURCES;
                }
                log_msg("%s: hook %s -> ready, holding", arg, hp->name);
                *code = 0;
                msg[0] = '\0';
                return 0;
        }
        return hook_end(hp, false, arg, code, msg);
}

void hook_stop_now(hook_proc *hp) {
        hook_unwatch(hp);
        hook_kill(hp);
        hook_free(hp);
}

int32_t hook_wait(hook_proc *hp, const char *arg, int *code, char msg[MSG_MAX + 1]) {
        hook_unwatch(hp);
        return hook_end(hp, !hp->proc.reaped && hook_pump(hp, hook_deadline(), false) == PUMP_TIMEOUT, arg, code, msg);
}
