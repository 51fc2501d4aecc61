/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The shadow lifecycle after creation (see shadows.h): deleting, set removal, unexposing before a
 * delete, and what a restart finishes (the frozen journal first, then interrupted deletes,
 * incomplete sets and auto-release sets).
 *
 * Deleting shadows without stopping the event loop. A shadow is marked 'deleting' in the registry
 * before its data is touched (from then on it is listed nowhere, and a restarted vssd finishes
 * the delete), then its provider removes it in a helper process (`vssd --delete-helper`). One
 * job per shadow: whoever asks to delete a shadow already being deleted waits for that job rather
 * than starting another. The jobs of one provider run one after another, as they did when vssd ran them itself: a provider's
 * delete command need not cope with running alongside itself. */

#include <limits.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>

#include "daemon/delete-helper.h"
#include "daemon/freeze.h"
#include "daemon/log.h"
#include "daemon/shadows.h"
#include "lib/common.h"
#include "lib/openat.h"
#include "providers/mountinfo.h"

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
                char id[VSS_ID_STRING_MAX];
                (void) registry_remove_set(m->registry, &w->set_id);
                shadow_set_dir_remove(m, &w->set_id);
                log_info("snapshot set %s deleted with its %u shadow copies", vss_id_to_string(&w->set_id, id), w->deleted);
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
                /* A provider vssd does not know (any more) cannot delete it: the record is kept. */
                bool known = provider_find(&m->providers, next->rec.provider);
                int r = known ? delete_helper_spawn(&m->children, &m->providers, &next->rec, job_done, job_cancel, next)
                              : -EOPNOTSUPP;
                if (r < 0) {
                        char id[VSS_ID_STRING_MAX];
                        if (known)
                                log_err("cannot start deleting shadow %s: %s",
                                        vss_id_to_string(&next->rec.shadow_id, id), strerror(-r));
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
        /* Not while it is still mounted somewhere: kept, the exposure said. */
        int r = shadow_unexpose_all(m, &rec->shadow_id);
        if (r < 0) {
                log_err("shadow %s is kept: an exposure of it could not be unmounted", vss_id_to_string(&rec->shadow_id, id));
                return r;
        }
        /* Durably marked before anything of it is touched. */
        r = registry_set_deleting(m->registry, &rec->shadow_id, true);
        if (r == -ENOENT)
                return 0; /* gone meanwhile */
        if (r < 0) {
                log_err("cannot mark shadow %s for deletion: %s", vss_id_to_string(&rec->shadow_id, id), strerror(-r));
                return r;
        }
        if (m->stopping)
                return -ESHUTDOWN; /* the next start finishes it */
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

void shadow_set_dir_remove(Manager *m, const vss_id *set_id) {
        char id[VSS_ID_STRING_MAX];
        const char *roots[] = { m->shadow_dir, m->config.file_storage_dir };
        vss_id_to_string(set_id, id);
        for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                _cleanup_free_ char *dir = roots[i] ? path_join(roots[i], id) : NULL;
                /* Fails harmlessly while other shadows of the set remain. */
                if (dir)
                        (void) rmdir(dir);
        }
}

int shadow_exposed_at(Manager *m, const char *at) {
        Exposure ex = {};
        int r = registry_get_exposure(m->registry, at, &ex);
        free(ex.at);
        return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U /* Linux 6.8 */
#endif

/* This boot's id: zeros when it cannot be read. */
static vss_id this_boot(void) {
        sd_id128_t b;
        vss_id id = {};
        if (sd_id128_get_boot(&b) >= 0)
                memcpy(id.bytes, b.bytes, sizeof(id.bytes));
        return id;
}

int mount_identity_of(int fd, MountIdentity *ret) {
        struct statx sx;
        *ret = (MountIdentity) {};
        vss_id boot = this_boot();
        if (vss_id_is_null(&boot))
                return -EOPNOTSUPP;
        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0)
                return -errno;
        if (!(sx.stx_mask & STATX_MNT_ID))
                return -EOPNOTSUPP;
        ret->id = sx.stx_mnt_id;
        ret->boot = boot;
        /* Asked for, stx_mnt_id is the unique one instead; an older kernel says which it gave. */
        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID_UNIQUE, &sx) == 0 &&
            (sx.stx_mask & STATX_MNT_ID_UNIQUE))
                ret->unique = sx.stx_mnt_id;
        return 0;
}

/* Whether the mount root fd is the mount `want` names: by the unique id where both have one
 * (numbers are reused once a mount is gone), else by the number. */
static bool is_mount(int fd, const MountIdentity *want) {
        MountIdentity got;
        if (mount_identity_of(fd, &got) < 0)
                return false;
        return want->unique && got.unique ? want->unique == got.unique : want->id == got.id;
}

/* A mount's root reached from at without following a symlink: the fd, -ENXIO when at is no
 * mount root (nothing mounted there now), -ELOOP for a symlink on the way. */
static int open_mount_root(const char *at) {
        int fd = open_no_symlinks(AT_FDCWD, at, O_PATH | O_DIRECTORY, 0, false);
        if (fd == -ENOENT || fd == -ENOTDIR)
                return -ENXIO;
        if (fd < 0)
                return fd;
        struct statx sx;
        int r = statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, 0, &sx) < 0 ? -errno
                : sx.stx_attributes_mask & sx.stx_attributes & STATX_ATTR_MOUNT_ROOT ? 0 : -ENXIO;
        if (r < 0) {
                close(fd);
                return r;
        }
        return fd;
}

/* The magic link leads to exactly the fd's mount; detached, since the fd itself uses it. */
static int detach(int fd) {
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        return umount2(proc, MNT_DETACH) < 0 ? -errno : 0;
}

bool mount_of_other_boot(const MountIdentity *mi) {
        vss_id boot = this_boot();
        return mi->id && !vss_id_is_null(&mi->boot) && !vss_id_is_null(&boot) && !vss_id_equal(&boot, &mi->boot);
}

int exposure_unmount(const char *at, const MountIdentity *want) {
        vss_id boot = this_boot();
        bool known = want && want->id && !vss_id_is_null(&want->boot) && !vss_id_is_null(&boot);
        /* Mounts end with the boot, and the numbers start again: one recorded before a reboot is
         * gone, and its numbers may be another mount's now. */
        if (known && !vss_id_equal(&boot, &want->boot))
                return -ESTALE;
        _cleanup_close_ int fd = open_mount_root(at);
        if (fd >= 0 && (!known || is_mount(fd, want)))
                return detach(fd);
        /* Not at `at` (any more): a record without the mount's identity stops here, and so does
         * one without the unique id (Linux before 6.8), whose number is another mount's as soon
         * as ours is gone: found only where it was made, as before. */
        if (!known || !want->unique || (fd < 0 && fd != -ENXIO && fd != -ELOOP))
                return fd >= 0 ? -ENXIO : fd;
        /* A rename of a directory above it moves a mount with it: found by its number, checked by
         * its unique id through an fd of the place, so another mount there now is left alone. */
        if (fd >= 0)
                close(TAKE_FD(fd));
        for (unsigned tries = 0; tries < 16; tries++) {
                _cleanup_free_ char *target = NULL;
                int r = mountinfo_target_of(want->id, &target);
                if (r == -ENOENT)
                        return -ESTALE; /* mounted nowhere now */
                if (r < 0)
                        return r;
                _cleanup_close_ int mfd = open_mount_root(target);
                if (mfd == -ELOOP)
                        return -ELOOP;
                MountIdentity got;
                if (mfd >= 0 && mount_identity_of(mfd, &got) >= 0 && got.id == want->id)
                        /* Its number at its place: ours, or ours is gone and the number reused. */
                        return got.unique == want->unique ? detach(mfd) : -ESTALE;
                /* Moved again meanwhile, or a mount over it there: look again. */
        }
        return -EBUSY;
}

int shadow_unexpose(Manager *m, const char *at) {
        /* Only what we exposed is unmounted: never whatever else is mounted there. */
        Exposure ex = {};
        int r = registry_get_exposure(m->registry, at, &ex);
        if (r < 0)
                return r;
        r = exposure_unmount(at, &ex.mount);
        free(ex.at);
        if (r == -ENXIO)
                log_warn("nothing is mounted at %s, where shadow copy was exposed, any more: moved or unmounted by "
                         "someone; forgotten with its shadow", at);
        else if (r == -ESTALE)
                log_info("shadow copy exposed at %s was unmounted by someone; forgotten with its shadow", at);
        else if (r < 0)
                return r;
        return registry_remove_exposure(m->registry, at);
}

int shadow_unexpose_all(Manager *m, const vss_id *shadow_id) {
        Exposure *ex = NULL;
        size_t n = 0;
        int r = registry_list_exposures(m->registry, &ex, &n);
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (vss_id_equal(&ex[i].shadow_id, shadow_id)) {
                        int k = shadow_unexpose(m, ex[i].at);
                        if (k < 0) {
                                log_warn("cannot unexpose %s: %s", ex[i].at, strerror(-k));
                                r = k;
                        }
                }
        exposures_free(ex, n);
        return r < 0 ? r : 0;
}

/* Recovery of flush-and-hold freezes whose commit child is gone (a crash of vssd, a killed
 * child): the journal says which filesystems a set froze, the set's lease file whether they are
 * still ours to thaw. */
int freeze_lease_file(Manager *m, const vss_id *set_id, char *buf, size_t size) {
        char id[VSS_ID_STRING_MAX];
        int n = snprintf(buf, size, "%s/freeze-%s.lease", m->state_dir, vss_id_to_string(set_id, id));
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* A set's journalled freezes, after its commit child is gone: what the lease file says decides.
 * Thawed only when the helper died holding them; a filesystem thawed by the helper and frozen
 * since is someone else's, and is left alone. */
static void frozen_journal_settle(Manager *m, const vss_id *set_id) {
        char lease[PATH_MAX], **mounts = NULL;
        size_t n = 0;
        int r = freeze_lease_file(m, set_id, lease, sizeof(lease));
        if (r >= 0)
                r = freeze_lease_settle(lease, FREEZE_SETTLE_TIMEOUT_MS);
        if (r < 0) {
                log_warn("cannot settle the freeze lease %s: %s; its journal is kept for the next start", lease,
                         strerror(-r));
                return;
        }
        if (r > 0 && registry_list_frozen_of(m->registry, set_id, &mounts, &n) >= 0) {
                for (size_t i = 0; i < n; i++) {
                        int k = freeze_thaw_path(mounts[i]);
                        if (k < 0)
                                log_warn("cannot thaw %s: %s", mounts[i], strerror(-k));
                        else
                                log_info("recovered: thawed %s, which a killed freeze helper left frozen", mounts[i]);
                        free(mounts[i]);
                }
                free(mounts);
                (void) unlink(lease);
        }
        (void) registry_clear_frozen_of(m->registry, set_id);
}

void frozen_journal_recover(Manager *m, const vss_id *set_id) {
        vss_id *sets = NULL;
        size_t n = 0;
        if (set_id) {
                frozen_journal_settle(m, set_id);
                return;
        }
        if (registry_list_frozen_sets(m->registry, &sets, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                frozen_journal_settle(m, &sets[i]);
        free(sets);
}

static void on_recovered(Manager *m, unsigned deleted, unsigned kept, void *userdata) {
        const char *what = userdata;
        if (deleted > 0)
                log_info("recovered: deleted %u shadow copies (%s)", deleted, what);
        if (kept > 0)
                log_warn("recovery: %u shadow copies (%s) are kept; the next start tries again", kept, what);
}

/* Deletes what a previous run left: shadows whose delete it had begun, sets that never committed
 * (vssd died mid-creation) and auto-release sets; persistent, committed ones stay. In the
 * background, like any delete: vssd answers meanwhile, and lists none of them. */
void shadows_recover(Manager *m) {
        ShadowRecord *recs = NULL;
        vss_id *sets = NULL;
        size_t n = 0;

        /* First of all: nothing of ours stays frozen. */
        frozen_journal_recover(m, NULL);
        if (registry_list_deleting(m->registry, &recs, &n) >= 0) {
                shadows_delete(m, recs, n, NULL, on_recovered, NULL, (void *) "interrupted delete");
                shadow_records_free(recs, n);
        }
        if (registry_list_creating_sets(m->registry, &sets, &n) >= 0) {
                for (size_t i = 0; i < n; i++)
                        (void) set_remove(m, &sets[i], on_recovered, NULL, (void *) "incomplete snapshot set");
                free(sets);
        }
        if (registry_list_shadows(m->registry, &recs, &n) >= 0) {
                size_t k = 0;
                for (size_t i = 0; i < n; i++)
                        if (!(recs[i].attributes & VSS_VOLSNAP_ATTR_NO_AUTO_RELEASE)) {
                                ShadowRecord t = recs[k];
                                recs[k++] = recs[i];
                                recs[i] = t;
                        }
                shadows_delete(m, recs, k, NULL, on_recovered, NULL, (void *) "auto-release");
                shadow_records_free(recs, n);
        }
}

