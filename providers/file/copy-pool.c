/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The threads that finish regular files for the tree copy. The walker (copy.c) still does
 * everything that decides what the copy is: it reads the directories, stats every entry, opens
 * each source and creates its copy (O_EXCL, in walk order; only one thread takes a directory's
 * lock to create in it), makes directories, symlinks and nodes, and decides hard links (a file
 * with several names is finished by the walker itself, before a later name links to it). A file
 * with one name is then copied and given owner, mode, times, xattrs and flags here: kernel time
 * that can use another CPU. Not for clones (reflinks): see copy_pool_use().
 *
 * Each worker has its own CopyContext (copy buffer, stats, fds to sync), merged into the walker's
 * when the pool is drained: before each directory's own metadata, and at the end. Reports of what
 * a target cannot keep go through the lock. The first failing file in walk order decides the
 * error, as without threads: files queued after it are skipped, files before it still run.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/common.h"
#include "copy-private.h"

#define COPY_POOL_AFTER 8U   /* the regular file that starts the pool: smaller copies pay nothing */
#define COPY_POOL_THREADS 4U /* at most; fewer with fewer CPUs */
#define COPY_POOL_QUEUE 16U  /* files queued at most: the walker waits when it is that far ahead */

/* A duplicate of the walker's fd of a directory of the copy, shared by the files queued from it
 * (reports name them by it): the walker closes its own when it leaves the directory, and, after
 * a failure, while files may still be queued. */
typedef struct CopyDir {
        int fd;
        int walker_fd; /* which walker fd it duplicates */
        unsigned refs; /* files, and the pool while it is the current one; under the lock */
} CopyDir;

typedef struct CopyJob {
        int in, out;      /* the source and its new copy */
        CopyDir *dir;
        char *name;       /* of the copy in dir */
        struct stat st;
        uint64_t seq;     /* its place in walk order */
} CopyJob;

typedef struct CopyWorker {
        pthread_t thread;
        CopyPool *pool;
        CopyContext ctx;  /* the worker's own: buffer, stats, fds to sync */
        MetaReport report;
} CopyWorker;

struct CopyPool {
        CopyContext *walker;
        MetaReport *report;        /* the caller's; the walker's context gets it back at the end */
        MetaReport walker_report;  /* the walker's reports, through the lock too */
        pthread_mutex_t lock;
        pthread_cond_t work;       /* a file queued, or stop */
        pthread_cond_t room;       /* a file taken */
        pthread_cond_t idle;       /* nothing queued and nothing running */
        CopyDir *dir;              /* the walker's current directory; NULL after a drain */
        CopyJob queue[COPY_POOL_QUEUE];
        size_t head, n_queued, n_running, n_waiting;
        uint64_t next_seq;
        int error;                 /* of the first failed file in walk order (err_seq) */
        uint64_t err_seq;
        bool stop;
        size_t n_workers;
        CopyWorker workers[COPY_POOL_THREADS];
};

/* With the lock held. */
static void dir_unref(CopyDir *d) {
        if (!d || --d->refs > 0)
                return;
        close(d->fd);
        free(d);
}

static void job_free(CopyJob *j) {
        closep(&j->in);
        closep(&j->out);
        free(j->name);
}

/* One report at a time into the caller's MetaReport (its count and callback are not thread-safe). */
static void pool_lost(const char *path, const char *what, int error, void *userdata) {
        CopyPool *p = userdata;

        pthread_mutex_lock(&p->lock);
        p->report->n_lost++;
        if (p->report->lost)
                p->report->lost(path, what, error, p->report->userdata);
        pthread_mutex_unlock(&p->lock);
}

static void *worker_main(void *arg) {
        CopyWorker *w = arg;
        CopyPool *p = w->pool;

        pthread_mutex_lock(&p->lock);
        for (;;) {
                while (p->n_queued == 0 && !p->stop) {
                        p->n_waiting++;
                        pthread_cond_wait(&p->work, &p->lock);
                        p->n_waiting--;
                }
                if (p->n_queued == 0)
                        break; /* stopped, and nothing left */
                CopyJob j = p->queue[p->head];
                p->head = (p->head + 1) % COPY_POOL_QUEUE;
                p->n_queued--;
                p->n_running++;
                /* A file after the first failed one would not have been copied without threads. */
                bool skip = p->error < 0 && j.seq > p->err_seq;
                pthread_cond_signal(&p->room);
                pthread_mutex_unlock(&p->lock);

                int r = skip ? 0 : copy_regular_finish(&w->ctx, TAKE_FD(j.in), TAKE_FD(j.out), &j.st, j.dir->fd, j.name, 1);
                job_free(&j);

                pthread_mutex_lock(&p->lock);
                dir_unref(j.dir);
                if (r < 0 && (p->error >= 0 || j.seq < p->err_seq)) {
                        p->error = r;
                        p->err_seq = j.seq;
                }
                if (--p->n_running == 0 && p->n_queued == 0)
                        pthread_cond_broadcast(&p->idle);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static unsigned cpus(void) {
        cpu_set_t set;

        /* The CPUs this process may run on (a cgroup or taskset may allow fewer than are online). */
        if (sched_getaffinity(0, sizeof(set), &set) == 0)
                return (unsigned) CPU_COUNT(&set);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned) n : 1;
}

/* After the workers are joined (or none was started). */
static void pool_free(CopyPool *p) {
        for (size_t i = 0; i < p->n_workers; i++) {
                CopyContext *w = &p->workers[i].ctx;
                for (size_t k = 0; k < w->n_fsync; k++)
                        close(w->fsync_fds[k]);
                free(w->buf);
        }
        dir_unref(p->dir);
        pthread_cond_destroy(&p->idle);
        pthread_cond_destroy(&p->room);
        pthread_cond_destroy(&p->work);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

static CopyPool *pool_start(CopyContext *c, unsigned n) {
        CopyPool *p = calloc(1, sizeof(*p));
        sigset_t all, old;

        if (!p)
                return NULL;
        *p = (CopyPool) { .walker = c, .report = c->report };
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->work, NULL);
        pthread_cond_init(&p->room, NULL);
        pthread_cond_init(&p->idle, NULL);
        /* Signals stay with the walker, the thread the process's handlers expect. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (unsigned i = 0; i < n; i++) {
                CopyWorker *w = &p->workers[p->n_workers];
                *w = (CopyWorker) { .pool = p, .ctx = { .sync_fd = -EBADF, .euid = c->euid } };
                if (c->report) {
                        w->report = (MetaReport) { .lost = pool_lost, .userdata = p };
                        w->ctx.report = &w->report;
                }
                if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
                        break;
                p->n_workers++;
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (p->n_workers == 0) {
                pool_free(p);
                return NULL;
        }
        if (c->report) {
                p->walker_report = (MetaReport) { .lost = pool_lost, .userdata = p };
                c->report = &p->walker_report;
        }
        return p;
}

bool copy_pool_use(CopyContext *c) {
        if (c->pool)
                return true;
        if (c->pool_off || ++c->n_regular < COPY_POOL_AFTER)
                return false;
        /* Only a copy that moves data gets threads. Where the files so far were cloned (FICLONE),
         * the filesystem serializes the clones: measured on 2 cores, 200 clones took longer on two
         * threads than on one (XFS), and a tree copy 15% longer with the pool (btrfs). */
        if (c->stats.reflinked_files > 0) {
                c->pool_off = true;
                return false;
        }
        unsigned n = cpus();
        /* Without a pool (one CPU, no threads to be had) the walker copies on, as it did so far. */
        c->pool = n >= 2 ? pool_start(c, n < COPY_POOL_THREADS ? n : COPY_POOL_THREADS) : NULL;
        c->pool_off = !c->pool;
        return c->pool;
}

/* The current directory for a file created in ddfd (the walker's): duplicated once per directory
 * and stretch between drains. Between drains the walker closes no directory, so an fd number
 * that matches is the same directory. */
static int pool_dir(CopyPool *p, int ddfd) {
        if (p->dir && p->dir->walker_fd == ddfd)
                return 0;
        CopyDir *d = malloc(sizeof(*d));
        if (!d)
                return -ENOMEM;
        *d = (CopyDir) { .fd = fcntl(ddfd, F_DUPFD_CLOEXEC, 3), .walker_fd = ddfd, .refs = 1 };
        if (d->fd < 0) {
                int r = -errno;
                free(d);
                return r;
        }
        pthread_mutex_lock(&p->lock);
        dir_unref(p->dir);
        p->dir = d;
        pthread_mutex_unlock(&p->lock);
        return 0;
}

int copy_pool_submit(CopyPool *p, int in, int out, const struct stat *st, int ddfd, const char *dname) {
        CopyJob j = { .in = in, .out = out, .name = strdup(dname), .st = *st };
        int r;

        r = j.name ? pool_dir(p, ddfd) : -ENOMEM;
        if (r >= 0) {
                pthread_mutex_lock(&p->lock);
                while (p->n_queued == COPY_POOL_QUEUE && p->error >= 0)
                        pthread_cond_wait(&p->room, &p->lock);
                r = p->error;
                if (r >= 0) {
                        j.dir = p->dir;
                        j.dir->refs++;
                        j.seq = p->next_seq++;
                        p->queue[(p->head + p->n_queued) % COPY_POOL_QUEUE] = j;
                        p->n_queued++;
                        /* A running worker takes it when done; wake one only when none runs or
                         * files pile up: each wake-up costs the walker a syscall. */
                        if (p->n_waiting > 0 && (p->n_running == 0 || p->n_queued > 1))
                                pthread_cond_signal(&p->work);
                }
                pthread_mutex_unlock(&p->lock);
        }
        if (r < 0)
                job_free(&j);
        return r < 0 ? r : 0;
}

/* Moves what the idle workers counted and keep open into the walker's context. */
static void pool_merge(CopyPool *p) {
        CopyContext *c = p->walker;

        for (size_t i = 0; i < p->n_workers; i++) {
                CopyContext *w = &p->workers[i].ctx;
                if (w->fsync_overflow)
                        copy_track_fsync(c, -1);
                for (size_t k = 0; k < w->n_fsync; k++)
                        copy_track_fsync(c, w->fsync_fds[k]);
                w->n_fsync = 0;
                w->fsync_overflow = false;
                c->stats.files += w->stats.files;
                c->stats.bytes += w->stats.bytes;
                c->stats.reflinked_files += w->stats.reflinked_files;
                w->stats = (CopyStats) { 0 };
        }
}

int copy_pool_drain(CopyPool *p) {
        int r;

        pthread_mutex_lock(&p->lock);
        while (p->n_queued > 0 || p->n_running > 0)
                pthread_cond_wait(&p->idle, &p->lock);
        pool_merge(p);
        dir_unref(TAKE_PTR(p->dir));
        r = p->error;
        pthread_mutex_unlock(&p->lock);
        return r;
}

int copy_pool_end(CopyPool *p, int r) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->lock);
        /* Each worker finishes what is queued first: every queued file comes before whatever the
         * walker failed at, so its error would have come first. */
        for (size_t i = 0; i < p->n_workers; i++)
                pthread_join(p->workers[i].thread, NULL);
        pool_merge(p);
        if (p->error < 0)
                r = p->error;
        p->walker->report = p->report;
        pool_free(p);
        return r;
}
