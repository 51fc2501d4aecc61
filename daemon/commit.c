/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Commit object (commit.h), and the body of the provider commit child: flush-and-hold volumes
 * first, under a freeze lease, then the others.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "daemon/child.h"
#include "daemon/commit.h"
#include "daemon/freeze.h"
#include "daemon/hold.h"
#include "daemon/session-internal.h"
#include "lib/basic/macro.h"
#include "lib/basic/parse-util.h"
#include "lib/basic/path-util.h"
#include "lib/basic/time-util.h"
#include "providers/file/precopy.h"

void commit_init(Commit *c) {
        *c = (Commit) { .pid = -1, .fd = -1, .go_fd = -1, .job_fd = -1 };
}

/* One report line: "E\tMESSAGE", "L\t" (loaded), "R\t" (ready to go), "C\t" (the cut), "D\t"
 * (done: on_io() reports it) or "INDEX\tLOCATION", passed on to the owner. */
static void commit_line(Commit *c, char *line) {
        char *tab = strchr(line, '\t');
        if (!tab)
                return;
        *tab = 0;
        if (streq(line, "R") || streq(line, "L")) {
                bool *flag = streq(line, "R") ? &c->ready : &c->loaded;
                if (c->pid <= 0 || *flag)
                        return;
                *flag = true;
                /* Told to go once loaded, it says R later: the window then bounds its commit. */
                if (c->going)
                        return;
                c->window_source = sd_event_source_disable_unref(c->window_source); /* its start bound */
                if (c->ops->ready)
                        c->ops->ready(c->userdata);
                return;
        }
        if (streq(line, "C")) {
                /* Read only after the child exited: its exit status is what counts then. */
                if (c->pid <= 0 || c->cut || !c->ops->cut)
                        return;
                c->cut = true;
                /* The writers go on now: the window no longer bounds what the child does. */
                c->window_source = sd_event_source_disable_unref(c->window_source);
                c->ops->cut(c->userdata);
                return;
        }
        if (streq(line, "D")) {
                /* Read only after the child exited (pid -1 then): its exit status is reported. */
                if (c->pid > 0 && c->going)
                        c->finished = true;
                return;
        }
        if (streq(line, "E")) {
                snprintf(c->msg, sizeof(c->msg), "%s", tab + 1);
                return;
        }
        uint64_t index;
        if (parse_uint(line, SIZE_MAX, &index) < 0)
                return;
        c->ops->location(c->userdata, (size_t) index, tab + 1);
}

/* Handles every complete line the child has written so far (the pipe is non-blocking). */
static void commit_drain(Commit *c) {
        while (c->fd >= 0) {
                if (c->len == sizeof(c->buf) - 1)
                        c->len = 0; /* longer than any line of ours: dropped */
                ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        if (n == 0) /* the child is done writing: nothing more will come */
                                c->io_source = sd_event_source_disable_unref(c->io_source);
                        return;
                }
                c->len += (size_t) n;
                char *start = c->buf, *end = c->buf + c->len, *nl;
                while ((nl = memchr(start, '\n', (size_t) (end - start)))) {
                        *nl = 0;
                        commit_line(c, start);
                        start = nl + 1;
                }
                c->len = (size_t) (end - start);
                memmove(c->buf, start, c->len);
        }
}

static int on_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        Commit *c = userdata;
        bool finished = c->finished;
        commit_drain(c);
        /* Done: its end is reported now, the last thing done here (the owner may free c). It is
         * reaped when it exits, quietly. */
        if (!finished && c->finished)
                c->ops->exited(c->userdata, COMMIT_OK, "");
        return 0;
}

/* Reads what is left and closes the pipe. */
static void commit_close(Commit *c) {
        commit_drain(c);
        c->io_source = sd_event_source_disable_unref(c->io_source);
        if (c->fd >= 0)
                close(TAKE_FD(c->fd));
        c->len = 0;
}

/* The sockets a prepared child waits on: to be told to go, and (an early helper) for its job. */
static void close_control(Commit *c) {
        if (c->go_fd >= 0)
                close(TAKE_FD(c->go_fd));
        if (c->job_fd >= 0)
                close(TAKE_FD(c->job_fd));
}

/* The child is gone (reaped): its watchers and what is left of its pipes go. */
static void commit_gone(Commit *c) {
        c->child_source = sd_event_source_disable_unref(c->child_source);
        c->window_source = sd_event_source_disable_unref(c->window_source);
        c->pid = -1;
        close_control(c);
        commit_close(c); /* what it wrote last */
}

/* A child that said "D" is reaped: its end was reported then, nothing is now. */
static void commit_finished_gone(Commit *c) {
        c->going = c->finished = false;
        commit_gone(c);
}

static int on_child_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        Commit *c = userdata;
        if (c->finished) {
                commit_finished_gone(c);
                return 0;
        }
        bool going = c->going, unready = !going && !c->ready;
        c->going = false;
        commit_gone(c);
        /* A helper that died before it was ready: its owner waits no more (commit_go() fails). */
        if (unready) {
                c->failed_start = true;
                if (c->ops->ready)
                        c->ops->ready(c->userdata);
        }
        /* A prepared child that died waiting is reported by commit_go(), never here. */
        if (going)
                c->ops->exited(c->userdata, si->si_code == CLD_EXITED ? si->si_status : -1, c->msg);
        return 0;
}

static int on_window(sd_event_source *src, uint64_t usec, void *userdata) {
        Commit *c = userdata;
        c->ops->window(c->userdata);
        return 0;
}

/* The parent's side of a started child: its report pipe read as it comes, its exit watched. */
static int commit_watch(Commit *c, sd_event *e, pid_t pid, int report_fd, int go_fd, const CommitOps *ops,
                        void *userdata, const char **ret_why) {
        /* One done but not yet reaped goes first: it has no more than its exit left, which it
         * made at the lowest priority (commit_child()); waited for, it gets vssd's back. */
        if (c->finished && c->pid > 0) {
                (void) setpriority(PRIO_PROCESS, (id_t) c->pid, 0);
                (void) waitpid(c->pid, NULL, 0);
                commit_finished_gone(c);
        }
        c->ops = ops;
        c->userdata = userdata;
        c->fd = report_fd;
        c->go_fd = go_fd;
        c->going = false;
        c->cut = c->finished = c->wait_exit = c->ready = c->loaded = c->wait_ready = c->failed_start = false;
        c->pid = pid;
        c->len = 0;
        c->msg[0] = 0;
        (void) fcntl(c->fd, F_SETFL, O_NONBLOCK);
        /* Reports are read as they come: a failed watch only delays them to the child's exit. */
        (void) sd_event_add_io(e, &c->io_source, c->fd, EPOLLIN, on_io, c);
        int r = sd_event_add_child(e, &c->child_source, pid, WEXITED, on_child_exit, c);
        if (r < 0) {
                (void) commit_cancel(c);
                *ret_why = "cannot watch the provider";
                return r;
        }
        return 0;
}

/* The report pipe (fds[0] read, fds[1] write) and the go socket (go[0] the child's). */
static int commit_pipes(int fds[2], int go[2]) {
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        /* A socket, not a pipe: a byte sent to a child that died waiting fails without SIGPIPE. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) < 0) {
                int r = -errno;
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        /* Room for every report, so the child never blocks on a parent that waits for its exit. */
        (void) fcntl(fds[1], F_SETPIPE_SZ, 1024 * 1024);
        return 0;
}

/* In a prepared child: waits for the go byte; false when vssd is gone or sent something else. */
bool commit_wait_go(int go_fd) {
        char b = 0;
        ssize_t k;
        do
                k = read(go_fd, &b, 1);
        while (k < 0 && errno == EINTR);
        return k == 1 && b == 'g';
}

int commit_spawn(Commit *c, sd_event *e, char *const argv[], int job_fd, const int *keep, size_t n_keep,
                 const CommitOps *ops, void *userdata, const char **ret_why) {
        int r, fds[2], go[2];
        *ret_why = "cannot start the provider";
        if (n_keep > COMMIT_MAX_KEEP)
                return -E2BIG;
        if ((r = commit_pipes(fds, go)) < 0)
                return r;
        /* spawn_self() puts them on 3 and up: COMMIT_FD_REPORT, _GO, _JOB, _KEEP. */
        _Static_assert(COMMIT_FD_REPORT == 3 && COMMIT_MAX_KEEP + 3 <= SPAWN_MAX_FDS, "the helper's descriptors");
        int want[COMMIT_MAX_KEEP + 3] = { fds[1], go[0], job_fd };
        for (size_t i = 0; i < n_keep; i++)
                want[3 + i] = keep[i];
        pid_t pid = -1;
        /* The helper keeps vssd's signal mask: it goes by SIGKILL (its death signal, commit_kill()). */
        r = spawn_self(argv, want, 3 + n_keep, false, &pid);
        close(fds[1]);
        close(go[0]);
        if (r < 0) {
                close(fds[0]);
                close(go[1]);
                return r;
        }
        return commit_watch(c, e, pid, fds[0], go[1], ops, userdata, ret_why);
}

int commit_spawn_early(Commit *c, sd_event *e, char *const argv[], const CommitOps *ops, void *userdata,
                       const char **ret_why) {
        int job[2];
        *ret_why = "cannot start the provider";
        /* A socket, not a pipe: a job sent to a helper that died fails without SIGPIPE. */
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, job) < 0)
                return -errno;
        int r = commit_spawn(c, e, argv, job[1], NULL, 0, ops, userdata, ret_why);
        close(job[1]);
        if (r < 0) {
                close(job[0]);
                return r;
        }
        c->job_fd = job[0];
        return 0;
}

void commit_move(Commit *dst, Commit *src, const CommitOps *ops, void *userdata) {
        *dst = *src;
        dst->ops = ops;
        dst->userdata = userdata;
        sd_event_source *sources[] = { dst->child_source, dst->window_source, dst->io_source };
        for (size_t i = 0; i < ELEMENTSOF(sources); i++)
                if (sources[i])
                        (void) sd_event_source_set_userdata(sources[i], dst);
        commit_init(src);
}

int commit_send_job(Commit *c, const void *job, size_t len) {
        if (!commit_prepared(c) || c->job_fd < 0)
                return -ESRCH;
        int r = 0;
        for (size_t at = 0; at < len && r >= 0;) {
                /* Never blocking: a job larger than the socket's buffer takes another helper. */
                ssize_t n = send(c->job_fd, (const char *) job + at, len - at, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno != EINTR)
                        r = -errno;
                else if (n == 0)
                        r = -EPIPE;
                else if (n > 0)
                        at += (size_t) n;
        }
        close(TAKE_FD(c->job_fd)); /* the end of the job: the helper reads it to here */
        return r;
}

int commit_go(Commit *c) {
        if (c->pid <= 0 || c->going || c->go_fd < 0)
                return -ESRCH;
        ssize_t n = send(c->go_fd, "g", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(TAKE_FD(c->go_fd));
        if (n != 1) {
                (void) commit_cancel(c);
                return -ESRCH;
        }
        c->going = true;
        return 0;
}

bool commit_prepared(const Commit *c) {
        return c->pid > 0 && !c->going;
}

bool commit_running(const Commit *c) {
        return c->pid > 0 && c->going && !c->finished;
}

bool commit_cancel(Commit *c) {
        if (c->pid <= 0 || c->going)
                return false;
        (void) kill(c->pid, SIGKILL);
        (void) waitpid(c->pid, NULL, 0);
        commit_gone(c);
        return true;
}

static int on_ready_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        Commit *c = userdata;
        c->window_source = sd_event_source_disable_unref(c->window_source);
        if (!commit_prepared(c) || c->ready || c->loaded)
                return 0;
        (void) commit_cancel(c);
        snprintf(c->msg, sizeof(c->msg), "the provider commit helper was not ready within %" PRIu64 " ms", c->ready_ms);
        c->failed_start = true;
        if (c->ops->ready)
                c->ops->ready(c->userdata);
        return 0;
}

int commit_arm_ready(Commit *c, sd_event *e, uint64_t ms) {
        if (c->window_source)
                return 0;
        c->ready_ms = ms;
        return sd_event_add_time_relative(e, &c->window_source, CLOCK_MONOTONIC, ms * USEC_PER_MSEC, 1000,
                                          on_ready_timeout, c);
}

int commit_arm_window(Commit *c, sd_event *e, uint64_t ms) {
        /* From now, not from the loop's cached now (this iteration's start): the owner measures
         * the windows against the clock, and an early end would find none run out. */
        return sd_event_add_time(e, &c->window_source, CLOCK_MONOTONIC, now_monotonic_usec() + ms * USEC_PER_MSEC,
                                 1000, on_window, c);
}

void commit_kill(Commit *c) {
        if (commit_cancel(c))
                return;
        if (c->pid > 0)
                (void) kill(c->pid, SIGKILL);
}

bool commit_abandon(Commit *c) {
        bool ran = commit_running(c);
        if (c->pid > 0) {
                (void) kill(c->pid, SIGKILL);
                (void) waitpid(c->pid, NULL, 0);
                c->pid = -1;
        }
        c->going = c->finished = false;
        c->child_source = sd_event_source_disable_unref(c->child_source);
        c->window_source = sd_event_source_disable_unref(c->window_source);
        close_control(c);
        return ran;
}

void commit_done(Commit *c) {
        c->child_source = sd_event_source_disable_unref(c->child_source);
        c->window_source = sd_event_source_disable_unref(c->window_source);
        c->io_source = sd_event_source_disable_unref(c->io_source);
        if (c->fd >= 0)
                close(TAKE_FD(c->fd));
        close_control(c);
}

/* The provider commit child. Each made shadow is reported to the parent as "INDEX<TAB>LOCATION" so
 * a failure can delete it; a failure as "E<TAB>MESSAGE". */

static _Noreturn void commit_fail(int fd, int code, const char *fmt, ...) _printf_(3, 4);
static _Noreturn void commit_fail(int fd, int code, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        dprintf(fd, "E\t%s\n", msg);
        _exit(code);
}

static bool no_space(int r) {
        return r == -ENOSPC || r == -EDQUOT;
}

bool volume_held(const Volume *v) {
        return v->provider->hold || (v->provider == &provider_file && v->held);
}

typedef struct CommitChild {
        Session *s;
        int fd;
        uint32_t hold_ms;
        FreezeLease *lease;      /* the held volumes' freeze, until released */
        uint64_t deadline;       /* of the hold (CLOCK_MONOTONIC); 0 when nothing is held */
        PrecopyFinal *finals[VSS_MAX_VOLUMES];
        void *pending[VSS_MAX_VOLUMES]; /* what a provider left to make durable after the cut */
        char err[1024];
} CommitChild;

typedef struct Report {
        int fd;
        size_t index;
} Report;

static void report_location(const char *location, void *userdata) {
        const Report *rep = userdata;
        dprintf(rep->fd, "%zu\t%s\n", rep->index, location);
}

/* What the shadow's filesystem cannot keep of a copied-ahead tree goes to vssd's log. */
static void final_meta_lost(const char *path, const char *what, int error, void *userdata) {
        const Volume *v = userdata;
        char id[VSS_ID_STRING_MAX];
        log_warn("provider file: shadow %s: %s: %s not kept: %s", vss_id_to_string(&v->shadow_id, id), path, what,
                 strerror(error));
}

static _Noreturn void freeze_fail(CommitChild *c, int r) {
        commit_fail(c->fd, r == -EBUSY ? COMMIT_FROZEN_ELSEWHERE : COMMIT_FAILED, "cannot freeze: %s",
                    c->err[0] ? c->err : strerror(-r));
}

/* The flush-and-hold volumes' lease, prepared before the go: its helper forked and set up, so that
 * the window holds only its FIFREEZE (the fork, the page faults after it and the mount lookups
 * took 1-2 ms there). NULL when nothing is held; a failure exits, before anything is frozen. */
FreezeLease *commit_child_prepare(Session *s, int fd) {
        CommitChild c = { .s = s, .fd = fd };
        const char *held[VSS_MAX_VOLUMES];
        size_t n_held = 0;
        FreezeLease *l = NULL;
        for (size_t i = 0; i < s->n_volumes; i++)
                if (volume_held(&s->volumes[i]))
                        held[n_held++] = s->volumes[i].path;
        if (n_held == 0)
                return NULL;
        char lease_file[PATH_MAX];
        int r = freeze_lease_file(s->manager, &s->set_id, lease_file, sizeof(lease_file));
        if (r >= 0)
                r = freeze_lease_prepare(held, n_held, FREEZE_PATHS_RESOLVED, lease_file, &l, c.err, sizeof(c.err));
        /* This set's lease file, left by a helper of the set that died waiting to go (its freeze
         * helper, which froze nothing, may still be on its way out): settled, then made anew. A
         * file whose helper died holding freezes stays for the recovery that thaws them. */
        if (r == -EEXIST && freeze_lease_settle(lease_file, FREEZE_SETTLE_TIMEOUT_MS) == 0)
                r = freeze_lease_prepare(held, n_held, FREEZE_PATHS_RESOLVED, lease_file, &l, c.err, sizeof(c.err));
        if (r < 0)
                freeze_fail(&c, r);
        return l;
}

/* Freezes the flush-and-hold volumes under the prepared lease (its helper thaws them at the hold
 * deadline or if we die). Returns how many; *ret_since is when holding began. */
static size_t child_freeze(CommitChild *c, uint64_t *ret_since) {
        size_t n_held = 0;
        for (size_t i = 0; i < c->s->n_volumes; i++)
                n_held += volume_held(&c->s->volumes[i]);
        *ret_since = now_monotonic_usec(); /* the freezes' flushes count: writes wait for them */
        if (!c->lease)
                return 0;
        c->err[0] = 0;
        int r = freeze_lease_freeze(&c->lease, c->hold_ms, c->err, sizeof(c->err));
        if (r < 0)
                freeze_fail(c, r);
        c->deadline = now_monotonic_usec() + (uint64_t) c->hold_ms * USEC_PER_MSEC;
        return n_held;
}

/* A copied-ahead volume's last delta, while held: copied now, or captured in memory when the
 * storage is on a held filesystem and written after the release. */
static void child_final_begin(CommitChild *c, size_t i) {
        Volume *v = &c->s->volumes[i];
        c->err[0] = 0;
        int r = precopy_final_begin(v->path, v->shadow_path, v->index_fd, c->deadline,
                                    v->storage_shared ? c->s->manager->config.file_hold_memory_bytes : 0, &c->finals[i],
                                    c->err, sizeof(c->err));
        if (r >= 0)
                return;
        int k = c->lease ? freeze_lease_release(c->lease) : 0;
        if (r == -ETIME || k == -ETIME)
                commit_fail(c->fd, COMMIT_HOLD_TIMEOUT, "provider file on %s: %s", v->path,
                            c->err[0] ? c->err : "the hold window was exceeded");
        commit_fail(c->fd, no_space(r) ? COMMIT_NOSPACE : COMMIT_FAILED, "provider file on %s: %s", v->path,
                    c->err[0] ? c->err : strerror(-r));
}

/* The provider makes volume i's shadow (by the hold deadline when held). */
static void child_create(CommitChild *c, size_t i, bool held) {
        Session *s = c->s;
        Volume *v = &s->volumes[i];
        char sid[VSS_ID_STRING_MAX], shid[VSS_ID_STRING_MAX], why[PATH_MAX + 256] = "";
        Report rep = { .fd = c->fd, .index = i };
        ShadowRequest req = {
                .report_location = report_location,
                .userdata = &rep,
                .source = v->path,
                .set_id = vss_id_to_string(&s->set_id, sid),
                .shadow_id = vss_id_to_string(&v->shadow_id, shid),
                .shadow_path = v->shadow_path,
                .deadline_usec = held ? c->deadline : 0,
                .ret_pending = v->provider->finish ? &c->pending[i] : NULL,
                .err = why,
                .err_size = sizeof(why),
        };
        char *loc = NULL;
        int r = v->provider->create(v->provider, &req, &loc);
        if (r >= 0)
                dprintf(c->fd, "%zu\t%s\n", i, loc ? loc : v->shadow_path);
        free(loc);
        if (r >= 0)
                return;
        int k = c->lease ? freeze_lease_release(c->lease) : 0;
        if (r == -ETIME || k == -ETIME)
                commit_fail(c->fd, COMMIT_HOLD_TIMEOUT, "provider %s on %s: the hold window was exceeded", v->provider->name,
                            v->path);
        const char *st = s->manager->state_dir;
        if (no_space(r) && v->shadow_path && path_within(v->shadow_path, st))
                dprintf(c->fd, "E\tthe state directory %s is full: provider %s cannot keep the shadow copy of %s there "
                        "(%s); free space there and try again\n", st, v->provider->name, v->path, strerror(-r));
        else
                dprintf(c->fd, "E\tprovider %s failed on %s: %s\n", v->provider->name, v->path, why[0] ? why : strerror(-r));
        _exit(no_space(r) ? COMMIT_NOSPACE : COMMIT_FAILED);
}

/* Ends the hold: the writes go on. The freeze helper is reaped after "C" (commit_child()): its exit
 * need not hold back the writers' Thaw. */
static void child_release(CommitChild *c, size_t n_held, uint64_t held_since) {
        if (!c->lease)
                return;
        int r = freeze_lease_thaw(c->lease);
        /* How long the writes were held, for people (and the benchmark). */
        log_info("held the filesystems of %zu volumes for %" PRIu64 " us", n_held, now_monotonic_usec() - held_since);
        if (r < 0)
                (void) freeze_lease_release(TAKE_PTR(c->lease));
        if (r == -ETIME)
                commit_fail(c->fd, COMMIT_HOLD_TIMEOUT, "the hold window of %u ms was exceeded", c->hold_ms);
        if (r < 0)
                commit_fail(c->fd, COMMIT_FAILED, "cannot thaw: %s", strerror(-r));
}

/* The deltas captured while held are written now. */
static void child_finals(CommitChild *c) {
        Session *s = c->s;
        char shid[VSS_ID_STRING_MAX];
        for (size_t i = 0; i < s->n_volumes; i++) {
                if (!c->finals[i])
                        continue;
                MetaReport report = { .lost = final_meta_lost, .userdata = &s->volumes[i] };
                c->err[0] = 0;
                int r = precopy_final_end(TAKE_PTR(c->finals[i]), &report, c->err, sizeof(c->err));
                if (r >= 0 && report.n_lost > 0)
                        log_warn("provider file: shadow %s of %s: %" PRIu64 " item(s) of metadata not kept "
                                 "(see above)", vss_id_to_string(&s->volumes[i].shadow_id, shid),
                                 s->volumes[i].path, report.n_lost);
                if (r < 0)
                        commit_fail(c->fd, no_space(r) ? COMMIT_NOSPACE : COMMIT_FAILED, "provider file on %s: %s",
                                    s->volumes[i].path, c->err[0] ? c->err : strerror(-r));
                dprintf(c->fd, "%zu\t%s\n", i, s->volumes[i].shadow_path);
        }
}

/* After the cut: what the providers left to make durable, while the writers go on. */
static void child_finish(CommitChild *c) {
        Session *s = c->s;
        for (size_t i = 0; i < s->n_volumes; i++) {
                Volume *v = &s->volumes[i];
                if (!c->pending[i])
                        continue;
                int r = v->provider->finish(v->provider, TAKE_PTR(c->pending[i]));
                if (r < 0)
                        commit_fail(c->fd, no_space(r) ? COMMIT_NOSPACE : COMMIT_FAILED,
                                    "provider %s cannot make the shadow copy of %s durable: %s", v->provider->name, v->path,
                                    strerror(-r));
        }
}

/* Whether volume i, a snapshot of its own instant (btrfs), is cut while the held filesystems are:
 * after their release, writes an application ordered after theirs (a database's pages after
 * their log) could be in it without what they followed. Not when a held filesystem is of its
 * type (a btrfs subvolume's snapshot would wait on the frozen filesystem until the hold ran out). */
static bool instant_in_hold(const Session *s, size_t i) {
        struct statfs a, b;
        if (!s->volumes[i].provider->instant || statfs(s->volumes[i].path, &a) < 0)
                return false;
        for (size_t k = 0; k < s->n_volumes; k++)
                if (volume_held(&s->volumes[k]) && (statfs(s->volumes[k].path, &b) < 0 || b.f_type == a.f_type))
                        return false;
        return true;
}

_Noreturn void commit_child(Session *s, int fd, FreezeLease *lease) {
        CommitChild c = { .s = s, .fd = fd, .hold_ms = s->manager->config.hold_window_ms, .lease = lease };
        uint64_t held_since;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (file_budget_exceeded(s, false))
                commit_fail(fd, COMMIT_NOSPACE, "the file provider's storage budget of %" PRIu64 " bytes would be exceeded",
                            s->manager->config.file_budget_bytes);
        bool in_hold[VSS_MAX_VOLUMES];
        for (size_t i = 0; i < s->n_volumes; i++)
                in_hold[i] = volume_held(&s->volumes[i]) || (c.lease && instant_in_hold(s, i));
        size_t n_held = child_freeze(&c, &held_since);
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < s->n_volumes; i++) {
                        Volume *v = &s->volumes[i];
                        if (in_hold[i] != (pass == 0))
                                continue;
                        if (v->precopied)
                                child_final_begin(&c, i);
                        else
                                child_create(&c, i, pass == 0);
                }
                if (pass == 0)
                        child_release(&c, n_held, held_since);
        }
        /* The cut is made: the held deltas are captured (or copied), the other volumes copied. vssd
         * thaws the writers now; the rest is written and synced meanwhile, and a failure in it still
         * fails the set (vssd commits it only on our exit status). */
        dprintf(fd, "C\t\n");
        (void) freeze_lease_release(TAKE_PTR(c.lease)); /* thawed already: only its exit is left */
        child_finals(&c);
        child_finish(&c);
        /* What is left is our exit, a process's teardown (2 ms of CPU on a small VM): at the lowest
         * priority, so vssd, woken by "D", and the writers it thaws get the CPU first. "D" goes
         * before the drop: at nice 19 it would wait for them (and vssd records the set on it). */
        dprintf(fd, "D\t\n");
        (void) setpriority(PRIO_PROCESS, 0, 19);
        _exit(COMMIT_OK);
}
