/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A child of vssd that makes part of a snapshot set (the copy-ahead, or the provider commit): the
 * child, its pipe of reports read as they come, the watch of its exit and the window that bounds
 * it. The child reports "INDEX\tLOCATION" for each shadow it made (passed on at once, so vssd dying
 * before the child ends cannot lose where a shadow is), "C\t" once its cut is made (what it does
 * after, making the shadows durable, need not keep writers frozen), "E\tMESSAGE" when it fails,
 * "D\t" when all is done and durable and it exits well (reported as its exit: the exit of a
 * process takes a millisecond and more, which the sequence need not wait for) and, from a
 * prepared helper (commit_spawn()), "L\t" once it is started and loaded (its job is all it has
 * left to read) and "R\t" once it is ready to be told to go.
 * One runs at a time per Commit; the owner is called back, never the other way round.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

typedef struct CommitOps {
        /* The child made shadow `index` of the set, at location. */
        void (*location)(void *userdata, size_t index, const char *location);
        /* The child ended: code is its exit status (-1 when killed by a signal), msg the reason it
         * reported ("" when none), or it said "D" (COMMIT_OK: only its exit is left, reaped
         * later). A new child may start from here on. */
        void (*exited)(void *userdata, int code, const char *msg);
        /* The window ran out while the child runs. */
        void (*window)(void *userdata);
        /* The child made its cut (once, while it still runs; the window is disarmed): the writers
         * may go on. Its exit still decides whether the set is made. NULL: not told. */
        void (*cut)(void *userdata);
        /* A prepared child reported it is loaded ("L\t") or ready to go ("R\t"), or died before
         * (failed_start). */
        void (*ready)(void *userdata);
} CommitOps;

typedef struct Commit {
        const CommitOps *ops;
        void *userdata;
        pid_t pid;                /* -1 when none runs */
        bool going;               /* told to go: its end is reported (ops->exited) */
        bool cut;                 /* it reported its cut (ops->cut was called) */
        bool finished;            /* it reported "D" (ops->exited was called): only its reaping is left */
        bool wait_exit;           /* the owner's: its sequence goes on when the child exits */
        bool ready;               /* a prepared child reported it is ready */
        bool loaded;              /* an exec'd helper reported its start done: only its job is left to read */
        bool failed_start;        /* a prepared child died before it was ready */
        bool wait_ready;          /* the owner's: its sequence goes on when the child is ready */
        uint64_t ready_ms;        /* commit_arm_ready()'s bound */
        int go_fd;                /* a prepared child waits for a byte on it */
        int job_fd;               /* an early helper's job socket, until its job is sent (commit_send_job()) */
        int fd;                   /* the child's reports, read as they come */
        sd_event_source *child_source, *window_source, *io_source;
        char buf[PATH_MAX + 64];  /* a report line being read */
        size_t len;
        char msg[1024];           /* the child's reason, when it failed */
} Commit;

/* Before any other call: nothing runs. */
void commit_init(Commit *c);

/* At most this many descriptors of the caller's are kept open in the child. */
#define COMMIT_MAX_KEEP 64

/* A helper program: argv run as vssd's own binary (posix_spawn: no copy of vssd's page tables,
 * and no page shared copy-on-write once it runs), its report pipe on COMMIT_FD_REPORT, the go
 * socket on COMMIT_FD_GO (commit_wait_go()), job_fd on COMMIT_FD_JOB and keep[i] (n_keep at most
 * COMMIT_MAX_KEEP) on COMMIT_FD_KEEP + i; nothing else open. It waits to be told to go
 * (commit_go()); until then its death is not reported: commit_go() fails instead. A prepared
 * child that is not wanted any more goes with commit_cancel() (or commit_kill(),
 * commit_abandon()); it also dies with vssd. 0 when it runs: ops->exited follows its end. <0 when
 * it could not start or be watched, *ret_why saying which (nothing runs then). */
#define COMMIT_FD_REPORT 3
#define COMMIT_FD_GO 4
#define COMMIT_FD_JOB 5
#define COMMIT_FD_KEEP 6
int commit_spawn(Commit *c, sd_event *e, char *const argv[], int job_fd, const int *keep, size_t n_keep,
                 const CommitOps *ops, void *userdata, const char **ret_why);
/* A helper started before its job is known: commit_spawn() with job_fd one end of a socket pair,
 * the other kept as c->job_fd. It reads its job to the end, so it waits (loaded) until
 * commit_send_job() sends it. */
int commit_spawn_early(Commit *c, sd_event *e, char *const argv[], const CommitOps *ops, void *userdata,
                       const char **ret_why);
/* Hands the child of src (its watchers and pipes) to dst, whose owner ops and userdata are from
 * now on; src runs nothing afterwards. dst must run nothing. */
void commit_move(Commit *dst, Commit *src, const CommitOps *ops, void *userdata);
/* Sends an early helper its whole job and closes the socket: 0, or <0 when it cannot (none waits
 * for a job, the helper is gone, or the job does not fit the socket's buffer: the caller starts
 * another helper then). */
int commit_send_job(Commit *c, const void *job, size_t len);
/* In the prepared child: waits to be told to go (true), or for vssd to go away (false). */
bool commit_wait_go(int go_fd);

/* 0 when the prepared child runs now (ops->exited follows its end); <0 when there is none or it
 * died waiting (nothing runs then). */
int commit_go(Commit *c);
/* Started, waiting to be told to go. */
bool commit_prepared(const Commit *c);
/* Told to go and not yet exited (reaped), nor reported done ("D"). */
bool commit_running(const Commit *c);
/* Kills and reaps a prepared child not yet told to go; true when there was one. */
bool commit_cancel(Commit *c);

/* A prepared child not ready ("R\t") within ms is killed and reported as failed_start (ops->ready,
 * msg saying so). */
int commit_arm_ready(Commit *c, sd_event *e, uint64_t ms);

/* ops->window after ms, unless the child has ended by then. */
int commit_arm_window(Commit *c, sd_event *e, uint64_t ms);

/* Kills the running child, if any: its exit is reported as usual (a prepared one is cancelled). */
void commit_kill(Commit *c);

/* vssd stops: kills and reaps the running (or prepared) child and drops the watchers, without
 * ops->exited. True when a child ran, told to go, whose end was not reported (its watch is gone
 * now). */
bool commit_abandon(Commit *c);

/* Frees the watchers and the pipe; the Commit itself is its owner's. */
void commit_done(Commit *c);
