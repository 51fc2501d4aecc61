/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Deleting shadows without stopping the event loop. A shadow is marked 'deleting' in the registry
 * before its data is touched (from then on it is listed nowhere, and a restarted vssd finishes
 * the delete), then its provider removes it in a child process. One job per shadow: whoever asks
 * to delete a shadow already being deleted waits for that job rather than starting another. The
 * jobs of one provider run one after another, as they did when vssd ran them itself: a provider's
 * delete command need not cope with running alongside itself. */

#include <stdlib.h>

#include "daemon/vssd.h"

typedef struct DeleteWaiter {
        Manager *manager;
        unsigned pending, deleted, kept;
        bool remove_set;
        vss_id set_id;
        DeleteDone done;
        void (*cancel)(void *userdata);
        void *userdata;
} DeleteWaiter;

struct ShadowJob {
        Manager *manager;
        ShadowRecord rec;
        uint64_t seq;             /* queued jobs start in this order */
        bool running;
        DeleteWaiter **waiters;
        size_t n_waiters;
        LIST_FIELDS(ShadowJob, jobs);
};

static void waiter_finish(DeleteWaiter *w) {
        Manager *m = w->manager;
        /* The set's record goes once none of its shadows is left (the last one took it along
         * already, unless the set had none). */
        if (w->remove_set && w->kept == 0) {
                (void) registry_remove_set(m->registry, &w->set_id);
                shadow_set_dir_remove(m, &w->set_id);
        }
        w->done(m, w->deleted, w->kept, w->userdata);
        free(w);
}

/* Frees a job already out of the list. */
static ShadowJob *job_free(ShadowJob *j) {
        if (!j)
                return NULL;
        shadow_record_done(&j->rec);
        free(j->waiters);
        free(j);
        return NULL;
}

/* In the child. */
static int job_remove(void *arg) {
        ShadowJob *j = arg;
        const Provider *p = provider_find(j->rec.provider);
        return p ? p->remove(p, j->rec.shadow_path) : -EOPNOTSUPP;
}

static void jobs_run(Manager *m);
static void job_cancel(void *userdata);

static void job_done(int r, void *userdata) {
        ShadowJob *j = userdata;
        Manager *m = j->manager;
        char id[VSS_ID_STRING_MAX];
        bool ok = r >= 0 || r == -ENOENT; /* not there (never made, or gone): only the record is left */
        if (ok) {
                r = registry_remove_shadow(m->registry, &j->rec.shadow_id);
                if (r < 0 && r != -ENOENT)
                        log_err("cannot forget shadow %s: %s; a restart finishes its delete",
                                vss_id_to_string(&j->rec.shadow_id, id), strerror(-r));
                shadow_set_dir_remove(m, &j->rec.set_id);
        } else {
                /* The provider says its data is still there: listed again, to be deleted later. */
                log_err("cannot delete shadow at %s: %s; its record is kept", j->rec.shadow_path, strerror(-r));
                (void) registry_set_deleting(m->registry, &j->rec.shadow_id, false);
        }
        /* Out of the list first: a waiter's callback may ask to delete the shadow again. */
        LIST_REMOVE(jobs, m->jobs, j);
        for (size_t i = 0; i < j->n_waiters; i++) {
                DeleteWaiter *w = j->waiters[i];
                if (ok)
                        w->deleted++;
                else
                        w->kept++;
                if (--w->pending == 0)
                        waiter_finish(w);
        }
        job_free(j);
        jobs_run(m);
}

/* Starts the oldest queued job of every provider that has none running. */
static void jobs_run(Manager *m) {
        if (m->stopping)
                return;
        for (;;) {
                ShadowJob *next = NULL;
                LIST_FOREACH(jobs, j, m->jobs) {
                        if (j->running || (next && next->seq < j->seq))
                                continue;
                        bool busy = false;
                        LIST_FOREACH(jobs, o, m->jobs)
                                busy = busy || (o->running && streq(o->rec.provider, j->rec.provider));
                        if (!busy)
                                next = j;
                }
                if (!next)
                        return;
                next->running = true;
                int r = child_run(&m->children, "shadow delete", job_remove, next, job_done, job_cancel, next);
                if (r < 0) {
                        char id[VSS_ID_STRING_MAX];
                        log_err("cannot start deleting shadow %s: %s", vss_id_to_string(&next->rec.shadow_id, id),
                                strerror(-r));
                        job_done(r, next); /* runs the rest of the queue */
                        return;
                }
        }
}

/* vssd stops with the job in flight: the shadow stays marked, the next start finishes it. */
static void job_cancel(void *userdata) {
        ShadowJob *j = userdata;
        LIST_REMOVE(jobs, j->manager->jobs, j);
        for (size_t i = 0; i < j->n_waiters; i++) {
                DeleteWaiter *w = j->waiters[i];
                if (--w->pending == 0) {
                        if (w->cancel)
                                w->cancel(w->userdata);
                        free(w);
                }
        }
        job_free(j);
}

static ShadowJob *job_find(Manager *m, const vss_id *shadow_id) {
        LIST_FOREACH(jobs, j, m->jobs)
                if (vss_id_equal(&j->rec.shadow_id, shadow_id))
                        return j;
        return NULL;
}

static int job_add_waiter(ShadowJob *j, DeleteWaiter *w) {
        DeleteWaiter **a = realloc(j->waiters, (j->n_waiters + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        j->waiters = a;
        a[j->n_waiters++] = w;
        w->pending++;
        return 0;
}

static int record_copy(const ShadowRecord *from, ShadowRecord *to) {
        *to = (ShadowRecord) {
                .shadow_id = from->shadow_id,
                .set_id = from->set_id,
                .original_path = strdup(from->original_path),
                .shadow_path = strdup(from->shadow_path),
                .provider = strdup(from->provider),
                .created_usec = from->created_usec,
                .attributes = from->attributes,
        };
        if (!to->original_path || !to->shadow_path || !to->provider) {
                shadow_record_done(to);
                return -ENOMEM;
        }
        return 0;
}

/* Starts deleting one shadow, or joins the job already deleting it. */
static int delete_one(Manager *m, const ShadowRecord *rec, DeleteWaiter *w) {
        char id[VSS_ID_STRING_MAX];
        ShadowJob *j = job_find(m, &rec->shadow_id);
        if (j)
                return job_add_waiter(j, w);
        /* Durably marked before anything of it is touched. */
        int r = registry_set_deleting(m->registry, &rec->shadow_id, true);
        if (r == -ENOENT)
                return 0; /* gone meanwhile */
        if (r < 0) {
                log_err("cannot mark shadow %s for deletion: %s", vss_id_to_string(&rec->shadow_id, id), strerror(-r));
                return r;
        }
        if (m->stopping)
                return -ESHUTDOWN; /* the next start finishes it */
        shadow_unexpose_all(m, &rec->shadow_id);
        j = calloc(1, sizeof(*j));
        if (!j || record_copy(rec, &j->rec) < 0) {
                free(j);
                (void) registry_set_deleting(m->registry, &rec->shadow_id, false);
                return -ENOMEM;
        }
        static uint64_t seq = 0;
        j->manager = m;
        j->seq = ++seq;
        r = job_add_waiter(j, w);
        if (r < 0) {
                job_free(j);
                (void) registry_set_deleting(m->registry, &rec->shadow_id, false);
                return r;
        }
        LIST_PREPEND(jobs, m->jobs, j);
        return 0;
}

void shadows_delete(Manager *m, const ShadowRecord *recs, size_t n, const vss_id *set_id, DeleteDone done,
                    void (*cancel)(void *userdata), void *userdata) {
        DeleteWaiter *w = calloc(1, sizeof(*w));
        if (!w) {
                done(m, 0, (unsigned) n + 1, userdata);
                return;
        }
        *w = (DeleteWaiter) {
                .manager = m,
                .pending = 1, /* until every job has been started */
                .remove_set = set_id != NULL,
                .set_id = set_id ? *set_id : (vss_id) {},
                .done = done,
                .cancel = cancel,
                .userdata = userdata,
        };
        for (size_t i = 0; i < n; i++)
                if (delete_one(m, &recs[i], w) < 0)
                        w->kept++;
        jobs_run(m);
        if (--w->pending == 0)
                waiter_finish(w);
}

int set_remove(Manager *m, const vss_id *set_id, DeleteDone done, void (*cancel)(void *userdata), void *userdata) {
        ShadowRecord *recs = NULL;
        size_t n = 0;
        int r = registry_list_set_shadows(m->registry, set_id, true, &recs, &n);
        if (r < 0)
                return r;
        shadows_delete(m, recs, n, set_id, done, cancel, userdata);
        shadow_records_free(recs, n);
        return 0;
}

/* vssd stops: running jobs are killed, queued ones dropped; their shadows stay marked for the
 * next start to finish. */
void deletions_stop(Manager *m) {
        children_stop(&m->children);
        while (m->jobs)
                job_cancel(m->jobs);
}
