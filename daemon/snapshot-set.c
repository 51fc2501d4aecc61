/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session's snapshot set: its start (one in creation machine-wide), the volumes added to it
 * and what makes one acceptable, which writers it involves, its record in the registry before
 * anything is made, and its deletion.
 */

#include <sys/stat.h>

#include "daemon/hold.h"
#include "daemon/session-internal.h"
#include "lib/basic/path-util.h"
#include "lib/basic/time-util.h"
#include "lib/components.h"

/* Root's wait for a user's set to give way (below): while it lasts, only root starts a set. */
#define TRUSTED_FIRST_USEC (120 * USEC_PER_SEC)

/* A user's set in creation gives way to root's (and, idle, to anyone's: user_set_idle()): one user
 * holding StartSnapshotSet open would otherwise keep every set on the machine out. It is aborted
 * as by its own AbortBackup: at once between steps (its writers that prepared get Abort) or paused
 * in DoSnapshotSet, after PrepareForBackup when in it; in another step it is marked, and aborts
 * when the step ends (session_begin_call()). A DoSnapshotSet under way, bounded by the writers'
 * timeouts, ends first, unmarked. True when the set is no longer in creation. */
bool set_give_way(Session *h) {
        if (h->busy && h->op == CALL_DO_SNAPSHOT_SET && !h->paused)
                return false;
        h->gives_way = true;
        if (!h->busy)
                log_info("a user's snapshot set in creation (uid %u) gives way to another's", (unsigned) h->requester_uid);
        (void) abort_backup_do(h, NULL, VSS_E_SNAPSHOT_SET_IN_PROGRESS, GAVE_WAY);
        return h->manager->creating != h;
}

/* Another user's set started user_set_idle_ms ago or more and not in a step now (or paused in
 * DoSnapshotSet): one user cannot keep the others' sets out either, however it keeps its session
 * busy with queries. A set that works through its steps is done long before. */
static bool user_set_idle(const Session *s, const Session *h) {
        return !uid_trusted(h->requester_uid) && h->requester_uid != s->requester_uid &&
               (!h->busy || (h->op == CALL_DO_SNAPSHOT_SET && h->paused)) &&
               now_monotonic_usec() - h->set_started_usec >= (uint64_t) s->manager->config.user_set_idle_ms * USEC_PER_MSEC;
}

static int set_in_progress(Session *s, sd_bus_error *error) {
        Manager *m = s->manager;
        Session *h = m->creating;
        bool trusted = uid_trusted(s->requester_uid);
        if (!h && (trusted || now_monotonic_usec() >= m->trusted_first_until_usec))
                return 0;
        if (!h)
                return reply_error(error, VSS_E_SNAPSHOT_SET_IN_PROGRESS,
                                   "root's requester waits to start a snapshot set; try again in a moment");
        if (!trusted && user_set_idle(s, h))
                return set_give_way(h) ? 0 : reply_error(error, VSS_E_SNAPSHOT_SET_IN_PROGRESS,
                                                           "an idle snapshot set of another user gives way; try again "
                                                           "in a moment");
        if (!trusted || uid_trusted(h->requester_uid))
                return reply_error(error, VSS_E_SNAPSHOT_SET_IN_PROGRESS,
                                   "another snapshot set is in creation; only one at a time machine-wide");
        if (set_give_way(h))
                return 0;
        m->trusted_first_until_usec = now_monotonic_usec() + TRUSTED_FIRST_USEC;
        return reply_error(error, VSS_E_SNAPSHOT_SET_IN_PROGRESS,
                           "a user's snapshot set in creation gives way to root's once its current step ends; "
                           "try again in a moment");
}

int method_start_snapshot_set(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        char id[VSS_ID_STRING_MAX];
        BEGIN(CALL_START_SNAPSHOT_SET);
        Manager *m = s->manager;
        if (s->context == VSS_CTX_ALL)
                return reply_error(error, VSS_E_BAD_STATE, "VSS_CTX_ALL is a context for queries, not for making a set");
        if (m->creating != s) {
                int r = set_in_progress(s, error);
                if (r < 0)
                        return r;
        }
        if (uid_trusted(s->requester_uid))
                m->trusted_first_until_usec = 0;
        s->gives_way = false;
        s->set_started_usec = now_monotonic_usec();
        if (vss_id_new(&s->set_id) < 0)
                return -ENOMEM;
        s->set_made = false;
        m->creating = s;
        s->phase = seq_next(s->phase, CALL_START_SNAPSHOT_SET);
        int r = sd_bus_reply_method_return(msg, "s", vss_id_to_string(&s->set_id, id));
        /* The earliest point at which the session is known to make a snapshot set (a restore
         * session may not start one, and many backup sessions only gather metadata or status):
         * the set takes the spare helper, or starts one whose exec and loading (~8 ms) overlap
         * AddToSnapshotSet and PrepareForBackup instead of delaying the first Freeze. At most one
         * set is in creation machine-wide (m->creating); its end without a commit kills its
         * helper (creating_done()). After the reply, so the requester does not wait for it. */
        set_helper_start(s);
        return r;
}

static bool same_filesystem(const char *a, const char *b) {
        struct stat sa, sb;
        char ma[PATH_MAX], mb[PATH_MAX], da[PATH_MAX], db[PATH_MAX];
        if (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev)
                return true;
        /* Subvolumes and bind mounts show other st_dev values over one filesystem. */
        return mount_of(a, NULL, ma, sizeof(ma), da, sizeof(da)) >= 0 && mount_of(b, NULL, mb, sizeof(mb), db, sizeof(db)) >= 0 &&
               da[0] == '/' && streq(da, db);
}

/* Counted by the registry: listing every shadow made AddToSnapshotSet cost as much as they are many. */
static unsigned shadows_of_volume(Manager *m, const char *path) {
        unsigned k = 0;
        if (registry_count_volume_shadows(m->registry, path, &k) < 0)
                return 0;
        return k;
}

/* One path within the other: a set may hold neither vssd's state nor the file provider's storage. */
static bool overlap(const char *a, const char *b) {
        return b && (path_within(a, b) || path_within(b, a));
}

/* The new volume's ids, its shadow's path and, for the file provider, whether it will be held. */
static int volume_init(Session *s, Volume *v, const Provider *p, const char *real, char id[VSS_ID_STRING_MAX]) {
        Manager *m = s->manager;
        char sid[VSS_ID_STRING_MAX];
        *v = (Volume) { .provider = p, .path = strdup(real), .index_fd = -EBADF };
        const char *dir = p == &provider_file ? file_storage_dir(m) : m->shadow_dir;
        if (!v->path || vss_id_new(&v->shadow_id) < 0 ||
            (p->shadow_path ? p->shadow_path(real, vss_id_to_string(&s->set_id, sid), vss_id_to_string(&v->shadow_id, id),
                                             &v->shadow_path)
                            : asprintf(&v->shadow_path, "%s/%s/%s", dir, vss_id_to_string(&s->set_id, sid),
                                       vss_id_to_string(&v->shadow_id, id))) < 0 ||
            (p == &provider_file && hold_decide(m, v) < 0)) {
                free(v->path);
                free(v->shadow_path);
                *v = (Volume) {};
                return -ENOMEM;
        }
        return 0;
}

int method_add_to_snapshot_set(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *path, *pname;
        char real[PATH_MAX], id[VSS_ID_STRING_MAX];
        _cleanup_free_ char *state = NULL;
        BEGIN(CALL_ADD_TO_SNAPSHOT_SET);
        Manager *m = s->manager;
        if (sd_bus_message_read(msg, "ss", &path, &pname) < 0 || !string_ok(path, VSS_MAX_STRING))
                return reply_error(error, VSS_E_INVALIDARG, "bad path");
        if (path[0] != '/')
                return reply_error(error, VSS_E_INVALIDARG, "path '%s' is not absolute", path);
        /* The create right is a backup operator's: any path, as root resolves it. */
        int r = volume_realpath(path, NULL, real, error);
        if (r < 0)
                return r;
        state = realpath(m->state_dir, NULL);
        if (overlap(real, state))
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED, "'%s' overlaps vssd's state directory %s", real, state);
        _cleanup_free_ char *storage = m->config.file_storage_dir ? realpath(m->config.file_storage_dir, NULL) : NULL;
        if (overlap(real, storage))
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED, "'%s' overlaps the file provider's storage %s", real,
                                   storage);
        const Provider *p = isempty(pname) ? provider_choose(&m->providers, real) : provider_find(&m->providers, pname);
        if (!p)
                return reply_error(error, isempty(pname) ? VSS_E_VOLUME_NOT_SUPPORTED : VSS_E_OBJECT_NOT_FOUND,
                                   isempty(pname) ? "no provider supports '%s'" : "no provider named '%s'",
                                   isempty(pname) ? real : pname);
        if (p->supports(p, real) < 0)
                return reply_error(error, isempty(pname) ? VSS_E_VOLUME_NOT_SUPPORTED : VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
                                   "provider '%s' does not support '%s'", p->name, real);
        for (size_t i = 0; i < s->n_volumes; i++)
                if (streq(s->volumes[i].path, real))
                        return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "'%s' is already in the set", real);
        /* A provider that holds what it shadows (an exec provider) holds nothing hold_exclude
         * lists either: those are the filesystems the admin said are never frozen. */
        char why[PATH_MAX + 128];
        if (p->hold && hold_excluded(m, real, why, sizeof(why)))
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "provider '%s' holds what it shadows "
                                   "frozen, and %s", p->name, why);
        /* vssd never writes to a filesystem it holds frozen: not the one with its own state. */
        if (p->hold && state && same_filesystem(real, state))
                return reply_error(error, VSS_E_VOLUME_NOT_SUPPORTED,
                                   "'%s' is on the filesystem of vssd's state directory, which vssd cannot hold frozen", real);
        if (s->n_volumes >= VSS_MAX_VOLUMES)
                return reply_error(error, VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED, "a set holds at most %d volumes",
                                   VSS_MAX_VOLUMES);
        /* The last quarter of a volume's shadows is root's: a user with the create right, who may
         * not delete, could otherwise fill a volume's count and keep root's sets of it out. */
        unsigned existing = shadows_of_volume(m, real), most = m->config.max_shadows_per_volume;
        bool trusted = uid_trusted(s->requester_uid);
        if (!trusted)
                most -= (most + 3) / 4; /* at least one: with a limit of 1, a user's set makes none */
        if (existing >= most)
                return reply_error(error, VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED,
                                   "'%s' has %u shadow copies, the most allowed%s; delete some first", real, existing,
                                   trusted ? "" : " to a user's set (the rest are kept for root's)");
        Volume *v = &s->volumes[s->n_volumes];
        if (volume_init(s, v, p, real, id) < 0)
                return -ENOMEM;
        s->n_volumes++;
        /* A user's writer left unheard at PrepareForBackup (the volumes then did not meet its
         * components) would now take part, without having been prepared: refused. */
        for (size_t i = 0; s->phase == PHASE_PREPARED && i < s->n_slots; i++)
                if (s->slots[i].unheard && slot_takes_part(s, &s->slots[i])) {
                        s->n_volumes--;
                        free(v->path);
                        free(v->shadow_path);
                        free(v->not_held_why);
                        *v = (Volume) {};
                        return reply_error(error, VSS_E_BAD_STATE,
                                           "%s holds components of writer '%s' (uid %u), which was not involved at "
                                           "PrepareForBackup; add the volumes before PrepareForBackup",
                                           real, s->slots[i].name, (unsigned) s->slots[i].uid);
                }
        if (p == &provider_file && !v->held)
                log_info("the shadow copy of %s will not be point-in-time: %s", real, v->not_held_why);
        return sd_bus_reply_method_return(msg, "s", id);
}

/* Whether path exists (not followed) and belongs to uid. */
static bool path_owned_by(const char *path, uint32_t uid) {
        struct stat st;
        return lstat(path, &st) == 0 && st.st_uid == uid;
}

bool slot_trusted(const Slot *slot) {
        return uid_trusted(slot->uid);
}

static WriterFacts writer_facts(const Session *s, const Slot *slot) {
        return (WriterFacts) {
                .component_mode = s->component_mode,
                .selected = slot->selected,
                .root = slot_trusted(slot),
                .metadata = slot->metadata,
                .uid = slot->uid,
                .owns = path_owned_by,
        };
}

/* Whether the writer of slot takes part in the set of the volumes added so far (writer_takes_part). */
bool slot_takes_part(const Session *s, const Slot *slot) {
        const char *paths[VSS_MAX_VOLUMES];
        for (size_t i = 0; i < s->n_volumes; i++)
                paths[i] = s->volumes[i].path;
        WriterFacts f = writer_facts(s, slot);
        return writer_takes_part(&f, paths, s->n_volumes);
}

/* Whether the set's volume i is one the writer of slot may be told of: any, for root's writers;
 * for a user's, one its components meet as writer_takes_part() has it, whatever the mode. */
bool slot_may_see_volume(const Session *s, const Slot *slot, size_t i) {
        WriterFacts f = writer_facts(s, slot);
        if (f.root)
                return true;
        f.component_mode = false;
        const char *path = s->volumes[i].path;
        return writer_takes_part(&f, &path, 1);
}

void choose_participants(Session *s) {
        for (size_t i = 0; i < s->n_slots; i++) {
                Slot *slot = &s->slots[i];
                /* Component mode keeps its selection rules; selected is false for the others. A
                 * context without writers (file share backup, NAS rollback, client accessible)
                 * leaves every writer out. */
                slot->left_out = slot->selected &&
                                 ((s->context & VSS_VOLSNAP_ATTR_NO_WRITERS) || !slot_takes_part(s, slot));
                if (slot->left_out) {
                        /* Nothing of it is backed up: the document has no records of it either. */
                        bcd_remove_instance(s->doc, &slot->class_id, &slot->instance_id);
                        log_info("writer '%s' (uid %u) is not involved in the snapshot set", slot->name,
                                 (unsigned) slot->uid);
                        note_status(s, slot);
                }
        }
}

/* The set's directory in file_storage_dir: the file provider's shadows go there. */
static int storage_dir_make(Session *s, const char *id) {
        Manager *m = s->manager;
        char dir[PATH_MAX];
        if (!m->config.file_storage_dir)
                return 0;
        snprintf(dir, sizeof(dir), "%s/%s", m->config.file_storage_dir, id);
        (void) mkdir(m->config.file_storage_dir, 0700);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                int r = -errno;
                snprintf(dir, sizeof(dir), "cannot make the set's directory in file_storage_dir %s: %s",
                         m->config.file_storage_dir, strerror(-r));
                request_abort(s, r == -ENOSPC || r == -EDQUOT ? VSS_E_INSUFFICIENT_STORAGE : VSS_E_UNEXPECTED_PROVIDER_ERROR,
                              dir);
                return r;
        }
        return 0;
}

int set_register(Session *s) {
        Manager *m = s->manager;
        uint64_t now = now_realtime_usec();
        uint32_t attrs = s->context;
        if (s->set_registered)
                return 0;
        /* Honest properties: a set of several volumes is atomic only if one provider cuts them all
         * at one instant. */
        for (size_t i = 1; i < s->n_volumes; i++)
                if (s->volumes[i].provider != s->volumes[0].provider || !s->volumes[0].provider->atomic)
                        attrs |= OPENVSS_ATTR_NOT_ATOMIC;

        ShadowRecord recs[VSS_MAX_VOLUMES];
        for (size_t i = 0; i < s->n_volumes; i++)
                recs[i] = (ShadowRecord) {
                        .shadow_id = s->volumes[i].shadow_id,
                        .set_id = s->set_id,
                        .original_path = s->volumes[i].path,
                        .shadow_path = s->volumes[i].shadow_path,
                        .provider = (char *) s->volumes[i].provider->name,
                        .created_usec = now,
                        /* Not held: the copy is not one instant; said once per shadow, never silently. */
                        .attributes = attrs | (s->volumes[i].provider == &provider_file && !s->volumes[i].held
                                                       ? OPENVSS_ATTR_NOT_POINT_IN_TIME
                                                       : 0),
                };
        int r = registry_add_set_shadows(m->registry, &s->set_id, s->context, now, recs, s->n_volumes);
        s->set_registered = r >= 0;
        if (r < 0) {
                state_abort(s, r, "cannot record the snapshot set");
                return r;
        }
        return 0;
}

int set_dirs_make(Session *s) {
        Manager *m = s->manager;
        char dir[PATH_MAX], id[VSS_ID_STRING_MAX];
        snprintf(dir, sizeof(dir), "%s/%s", m->shadow_dir, vss_id_to_string(&s->set_id, id));
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                state_abort(s, -errno, "cannot record the snapshot set");
                return -1;
        }
        return storage_dir_make(s, id);
}

/* Deletes the set's shadows through the registry, which has every one of them (journalled before
 * anything is made, each location as soon as it is known), in child processes; then next(s).
 * What a provider could not remove stays recorded, with its set: a restarted vssd tries again. */
typedef struct SetDeletion {
        Session *session;
        void (*next)(Session *s);
} SetDeletion;

static void set_deletion_cancel(void *userdata) {
        SetDeletion *d = userdata;
        session_unref(d->session);
        free(d);
}

static void on_set_deleted(Manager *m, unsigned deleted, unsigned kept, void *userdata) {
        SetDeletion *d = userdata;
        Session *s = d->session;
        if (kept == 0)
                s->set_registered = s->set_committed = false;
        if (d->next)
                d->next(s);
        set_deletion_cancel(d);
}

void set_delete(Session *s, void (*next)(Session *s)) {
        if (!s->restore)
                bcd_clear_shadows(s->doc); /* the document names no deleted shadow */
        if (s->set_registered) {
                SetDeletion *d = calloc(1, sizeof(*d));
                if (d) {
                        *d = (SetDeletion) { .session = session_ref(s), .next = next };
                        int r = set_remove(s->manager, &s->set_id, on_set_deleted, set_deletion_cancel, d);
                        if (r >= 0)
                                return;
                        set_deletion_cancel(d);
                        if (r == -ENOENT) /* nothing of it is recorded any more */
                                s->set_registered = s->set_committed = false;
                }
        } else if (s->n_volumes > 0)
                shadow_set_dir_remove(s->manager, &s->set_id);
        if (next)
                next(s);
}
