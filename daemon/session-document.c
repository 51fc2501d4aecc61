/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The session's backup components document: the component records the requester selects and
 * sets properties of, the writers' annotations of them, what each event names, and the document
 * SaveAsDocument returns (header, writers taking part, shadows of the committed set).
 */

#include "daemon/session-internal.h"
#include "lib/components.h"

/* Whose a restore's record is: the uid the document records for the writer that made it (its
 * class and instance), -1 when it records none (a document from before owner_uid). */
static int64_t record_owner(const Session *s, const vss_bc_component *c) {
        for (size_t k = 0; k < s->doc->n_writers; k++) {
                const vss_writer_metadata *w = s->doc->writers[k];
                if (vss_id_equal(&w->writer_id, &c->writer_id) && vss_id_equal(&w->instance_id, &c->instance_id))
                        return w->owner_known ? (int64_t) w->owner_uid : -1;
        }
        return -1;
}

/* A backup's record is the writer instance's that made it. A restore's goes to the running writers
 * of its class (instances change with each run, as in VSS), but only to those of the uid that
 * wrote it: class ids are names' UUIDs, which another user's writer can subscribe with too, and
 * must not then see or annotate root's records. */
bool record_of_slot(const Session *s, const Slot *slot, const vss_bc_component *c) {
        if (!vss_id_equal(&c->writer_id, &slot->class_id))
                return false;
        if (!s->restore)
                return vss_id_equal(&c->instance_id, &slot->instance_id);
        /* A component the writer running now does not declare is none of its: no name a
         * document makes up reaches a writer (its hooks, its restore code). */
        if (slot->metadata && !metadata_find_component(slot->metadata, c->logical_path, c->name))
                return false;
        int64_t owner = record_owner(s, c);
        /* A restore document is the requester's to write: one of a user (who may hold the restore
         * right) reaches only that user's own writers, whatever owners it claims or leaves out. */
        if (!uid_trusted(s->requester_uid))
                return owner >= 0 && (uid_t) owner == slot->uid && slot->uid == s->requester_uid;
        return owner < 0 || (uid_t) owner == slot->uid;
}

char *component_key(const char *logical_path, const char *name) {
        char *k;
        if (asprintf(&k, "%s%s%s", logical_path, isempty(logical_path) ? "" : "/", name) < 0)
                return NULL;
        return k;
}

char **slot_record_keys(Session *s, const Slot *slot) {
        char **keys = calloc(s->doc->n_components + 1, sizeof(char *));
        size_t n = 0;
        for (size_t i = 0; keys && i < s->doc->n_components; i++)
                if (record_of_slot(s, slot, &s->doc->components[i]) &&
                    (keys[n] = component_key(s->doc->components[i].logical_path, s->doc->components[i].name)))
                        n++;
        if (keys && n == 0) {
                free(keys);
                keys = NULL;
        }
        return keys;
}

int slot_records(Session *s, const Slot *slot, char **ret) {
        const vss_bc_component **list = calloc(s->doc->n_components ? s->doc->n_components : 1, sizeof(*list));
        size_t n = 0;
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < s->doc->n_components; i++)
                if (record_of_slot(s, slot, &s->doc->components[i]))
                        list[n++] = &s->doc->components[i];
        int r = n ? bcd_components_format(list, n, ret) : 0;
        free(list);
        return r;
}

/* The slot's record of logical_path/name: in a restore the first of its class that is its own
 * (another uid's writer of that class may have one of the same name), else its instance's. */
static vss_bc_component *slot_record_named(Session *s, const Slot *slot, const char *logical_path, const char *name) {
        for (size_t i = 0; i < s->doc->n_components; i++) {
                const vss_bc_component *c = &s->doc->components[i];
                if (streq(strempty(c->logical_path), strempty(logical_path)) && streq(c->name, name) &&
                    record_of_slot(s, slot, c))
                        return (vss_bc_component *) c; /* the document's own, which is ours to change */
        }
        return NULL;
}

void slot_annotate(Session *s, Slot *slot, vss_event e, const char *json) {
        vss_bc_component *c = NULL;
        size_t n = 0;
        char why[512];
        bool backup = e == VSS_EVENT_PREPARE_BACKUP || e == VSS_EVENT_PREPARE_SNAPSHOT || e == VSS_EVENT_FREEZE ||
                      e == VSS_EVENT_THAW || e == VSS_EVENT_POST_SNAPSHOT;
        if (isempty(json))
                return;
        if (!backup && e != VSS_EVENT_PRE_RESTORE && e != VSS_EVENT_POST_RESTORE) {
                log_warn("writer '%s' annotated the document in %s, where it is read-only; ignored", slot->name,
                         vss_event_name(e));
                return;
        }
        if (bcd_components_parse(json, &c, &n, why, sizeof(why)) < 0) {
                log_warn("writer '%s' sent bad annotations: %s", slot->name, why);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                vss_bc_component *d = slot_record_named(s, slot, c[i].logical_path, c[i].name);
                if (!d) {
                        log_warn("writer '%s' annotated '%s', which is not one of its components here", slot->name,
                                 c[i].name);
                        continue;
                }
                if (backup) {
                        (void) bcd_set(&d->backup_stamp, c[i].backup_stamp);
                        /* The writer's list, whole: it got the record with the list so far. */
                        bcd_writer_files_clear(d);
                        for (size_t k = 0; k < c[i].n_writer_files; k++)
                                (void) bcd_add_writer_file(d, c[i].writer_files[k].path, c[i].writer_files[k].filespec,
                                                           c[i].writer_files[k].recursive, c[i].writer_files[k].destination);
                } else if (e == VSS_EVENT_PRE_RESTORE) {
                        d->restore_target = c[i].restore_target;
                        (void) bcd_set(&d->pre_restore_failure_msg, one_line((char *) c[i].pre_restore_failure_msg));
                } else
                        (void) bcd_set(&d->post_restore_failure_msg, one_line((char *) c[i].post_restore_failure_msg));
        }
        bcd_components_free(c, n);
}

bool slot_record_all(Session *s, const Slot *slot) {
        for (size_t k = 0; slot->metadata && k < slot->metadata->n_components; k++)
                if (!bcd_add_component(s->doc, &slot->class_id, &slot->instance_id,
                                       slot->metadata->components[k].logical_path, slot->metadata->components[k].name))
                        return false;
        return true;
}

void slot_post_restore_wanted(Session *s, Slot *slot) {
        /* VSS: a writer that restores only if a replace fails (VSS_WRE_IF_REPLACE_FAILS) handles
         * PostRestore only when the restore of a component of it did not fully succeed. */
        if (!slot->selected || !slot->metadata || slot->metadata->writer_restore != VSS_WRE_IF_REPLACE_FAILS)
                return;
        for (size_t k = 0; k < s->doc->n_components; k++) {
                const vss_bc_component *c = &s->doc->components[k];
                if (record_of_slot(s, slot, c) && (c->selected_for_restore || !s->component_mode) &&
                    c->file_restore_status != VSS_RS_ALL)
                        return;
        }
        slot->selected = false;
}

int slot_select_for_restore(Session *s, Slot *slot) {
        size_t n = 0;
        bool has_record = false;
        for (size_t k = 0; k < s->doc->n_components; k++) {
                const vss_bc_component *c = &s->doc->components[k];
                if (!record_of_slot(s, slot, c))
                        continue;
                has_record = true;
                if (!c->selected_for_restore)
                        continue;
                /* The writer sees them as its event's components. */
                char **keys = realloc(slot->components, (slot->n_components + 2) * sizeof(char *));
                if (!keys)
                        return -ENOMEM;
                slot->components = keys;
                if (!(keys[slot->n_components] = component_key(c->logical_path, c->name)))
                        return -ENOMEM;
                keys[++slot->n_components] = NULL;
                n++;
        }
        const vss_writer_metadata *wm = slot->metadata;
        for (size_t k = 0; !wm && k < s->doc->n_writers; k++)
                if (vss_id_equal(&s->doc->writers[k]->writer_id, &slot->class_id))
                        wm = s->doc->writers[k];
        /* VSS: a writer takes part in a restore through its components: in component mode one
         * selected, else one the document holds. A restore with no document (OpenVSS's, addressed
         * to the writers running now) has them all: a user's (one given the restore right), only
         * that user's, or root's writers would run their restore code at a user's word. */
        bool involved = s->component_mode ? n > 0
                                          : has_record || (s->doc->n_components == 0 &&
                                                           (uid_trusted(s->requester_uid) || slot->uid == s->requester_uid));
        slot->selected = involved && !(wm && wm->writer_restore == VSS_WRE_NEVER);
        return 0;
}

int method_initialize_for_restore(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *doc;
        BEGIN(CALL_INITIALIZE_FOR_RESTORE);
        char why[512];
        vss_backup_document *d = NULL;
        if (sd_bus_message_read(msg, "s", &doc) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "backup components document missing");
        /* "": no document, a restore addressed to the writers that run (non-component mode). */
        if (!isempty(doc)) {
                if (bcd_parse(doc, &d, why, sizeof(why)) < 0)
                        return reply_error(error, VSS_E_INVALID_XML_DOCUMENT, "bad backup components document: %s", why);
                bcd_free(s->doc);
                s->doc = d;
                s->component_mode = d->component_mode;
                s->backup_type = d->backup_type;
                /* What the writers are told of the backup being restored (its Context). */
                s->partial = d->partial_file_support;
                s->bootable = d->bootable_system_state;
                s->context = d->context;
        }
        s->restore = true;
        s->phase = seq_next(s->phase, CALL_INITIALIZE_FOR_RESTORE);
        return sd_bus_reply_method_return(msg, NULL);
}

static Slot *slot_find(Session *s, const vss_id *iid, const vss_id *wid) {
        for (size_t i = 0; i < s->n_slots; i++)
                if (vss_id_equal(&s->slots[i].instance_id, iid) && (!wid || vss_id_equal(&s->slots[i].class_id, wid)))
                        return &s->slots[i];
        return NULL;
}

static int read_component(sd_bus_message *msg, Session *s, Slot **ret_slot, const vss_component_info **ret_comp,
                          sd_bus_error *error) {
        const char *iid, *wid, *lp, *name;
        vss_id i, w;
        if (sd_bus_message_read(msg, "ssss", &iid, &wid, &lp, &name) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "bad arguments");
        if (vss_id_from_string(iid, &i) < 0 || vss_id_from_string(wid, &w) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "instance and writer ids must be UUIDs");
        Slot *slot = slot_find(s, &i, &w);
        if (!slot || !slot->metadata)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no writer %s (instance %s) in this session", wid, iid);
        const vss_component_info *comp = metadata_find_component(slot->metadata, lp, name);
        if (!comp)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "writer '%s' has no component '%s%s%s'", slot->name, lp,
                                   isempty(lp) ? "" : "/", name);
        *ret_slot = slot;
        *ret_comp = comp;
        return 0;
}

int method_add_component(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Slot *slot;
        const vss_component_info *comp;
        size_t total = 0;
        BEGIN(CALL_ADD_COMPONENT);
        int r = read_component(msg, s, &slot, &comp, error);
        if (r < 0)
                return r;
        /* A component not selectable for backup is a required one: VSS has the requester add it
         * explicitly too ("Working with Selectability For Backup"). */
        for (size_t i = 0; i < s->n_slots; i++)
                total += s->slots[i].n_components;
        if (total >= VSS_MAX_COMPONENTS)
                return reply_error(error, VSS_E_INVALIDARG, "too many components (%d)", VSS_MAX_COMPONENTS);
        _cleanup_free_ char *key = component_key(comp->logical_path, comp->name);
        if (!key)
                return -ENOMEM;
        for (size_t i = 0; i < slot->n_components; i++)
                if (streq(slot->components[i], key))
                        return reply_error(error, VSS_E_OBJECT_ALREADY_EXISTS, "component '%s' is already selected", key);
        char **n = realloc(slot->components, (slot->n_components + 2) * sizeof(char *));
        if (!n)
                return -ENOMEM;
        slot->components = n;
        if (!bcd_add_component(s->doc, &slot->class_id, &slot->instance_id, comp->logical_path, comp->name))
                return -ENOMEM;
        n[slot->n_components++] = TAKE_PTR(key);
        n[slot->n_components] = NULL;
        return sd_bus_reply_method_return(msg, NULL);
}

int method_set_backup_succeeded(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Slot *slot;
        const vss_component_info *comp;
        int ok;
        BEGIN(CALL_SET_BACKUP_SUCCEEDED);
        int r = read_component(msg, s, &slot, &comp, error);
        if (r < 0)
                return r;
        if (sd_bus_message_read(msg, "b", &ok) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "bad arguments");
        vss_bc_component *rec = bcd_find(s->doc, &slot->class_id, &slot->instance_id, comp->logical_path, comp->name);
        if (!rec)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND, "component '%s' of '%s' is not part of this backup",
                                   comp->name, slot->name);
        rec->backup_succeeded = ok;
        log_info("component '%s' of '%s' backed up: %s", comp->name, slot->name, ok ? "succeeded" : "failed");
        return sd_bus_reply_method_return(msg, NULL);
}

/* SetComponentProperty: one setter for the requester's fields of a component record. */

typedef enum PropertyWhen { WHEN_BACKUP, WHEN_RESTORE, WHEN_RESTORE_FILES } PropertyWhen;

typedef struct Property {
        const char *name;
        const char *type;
        PropertyWhen when;
} Property;

static const Property properties[] = {
        { "backup-options", "s", WHEN_BACKUP },
        { "previous-backup-stamp", "s", WHEN_BACKUP },
        { "selected-for-restore", "b", WHEN_RESTORE },
        { "additional-restores", "b", WHEN_RESTORE },
        { "restore-options", "s", WHEN_RESTORE },
        { "new-target", "(ssbs)", WHEN_RESTORE },
        { "file-restore-status", "u", WHEN_RESTORE_FILES },
};

static bool property_valid_now(const Session *s, PropertyWhen when) {
        switch (when) {
        case WHEN_BACKUP: return !s->restore && (s->phase == PHASE_METADATA || s->phase == PHASE_SET_STARTED);
        case WHEN_RESTORE: return s->restore && (s->phase == PHASE_RESTORE_INIT || s->phase == PHASE_METADATA);
        case WHEN_RESTORE_FILES: return s->restore && s->phase == PHASE_PRE_RESTORED;
        }
        return false;
}

/* The record a requester names: in a restore one of the document's, in a backup one of a component
 * it may back up (created on first use; component mode needs AddComponent first). */
static vss_bc_component *record_for_request(Session *s, const char *iid, const char *wid, const char *lp,
                                            const char *name, sd_bus_error *error) {
        vss_id i, w;
        if (vss_id_from_string(iid, &i) < 0 || vss_id_from_string(wid, &w) < 0) {
                reply_error(error, VSS_E_INVALIDARG, "instance and writer ids must be UUIDs");
                return NULL;
        }
        vss_bc_component *c = bcd_find(s->doc, &w, &i, lp, name);
        if (c || s->restore) {
                if (!c)
                        reply_error(error, VSS_E_OBJECT_NOT_FOUND, "the document has no component '%s%s%s' of writer %s",
                                    lp, isempty(lp) ? "" : "/", name, wid);
                return c;
        }
        Slot *slot = slot_find(s, &i, &w);
        const vss_component_info *comp = slot && slot->metadata ? metadata_find_component(slot->metadata, lp, name) : NULL;
        if (!comp) {
                reply_error(error, VSS_E_OBJECT_NOT_FOUND, "no component '%s%s%s' of writer %s (instance %s) in this session",
                            lp, isempty(lp) ? "" : "/", name, wid, iid);
                return NULL;
        }
        if (s->component_mode) {
                reply_error(error, VSS_E_OBJECT_NOT_FOUND, "component '%s' is not selected (AddComponent)", comp->name);
                return NULL;
        }
        c = bcd_add_component(s->doc, &w, &i, lp, name);
        if (!c)
                reply_error(error, VSS_E_INVALIDARG, "too many components (%d)", VSS_MAX_COMPONENTS);
        return c;
}

/* Reads the property's value (the variant is entered) into the record. */
static int property_set(Session *s, vss_bc_component *c, const Property *p, sd_bus_message *msg, sd_bus_error *error) {
        const char *prop = p->name;
        if (streq(p->type, "s")) {
                const char *v;
                if (sd_bus_message_read(msg, "s", &v) < 0 || !string_ok(v, VSS_MAX_STRING))
                        return reply_error(error, VSS_E_INVALIDARG, "'%s' is at most %d bytes", prop, VSS_MAX_STRING);
                const char **field = streq(prop, "backup-options") ? &c->backup_options
                                   : streq(prop, "previous-backup-stamp") ? &c->previous_backup_stamp
                                                                          : &c->restore_options;
                return bcd_set(field, v) < 0 ? -ENOMEM : 0;
        }
        if (streq(p->type, "b")) {
                int v;
                if (sd_bus_message_read(msg, "b", &v) < 0)
                        return reply_error(error, VSS_E_INVALIDARG, "bad value");
                if (streq(prop, "selected-for-restore")) {
                        /* Selectability for restore is not checked: VSS lets a component that was
                         * explicitly backed up (every record here is) always be selected; the flag
                         * matters only for subcomponents included with their parent. */
                        /* VSS: a component of a writer that is not running cannot be selected. */
                        const vss_writer_metadata *wm = vss_backup_document_writer(s->doc, c);
                        bool running = false;
                        LIST_FOREACH(writers, w, s->manager->writers)
                                running = running || vss_id_equal(&w->class_id, &c->writer_id);
                        if (v && !running)
                                return reply_error(error, VSS_E_OBJECT_NOT_FOUND,
                                                   "writer '%s' of component '%s' is not running", wm ? wm->name : "?",
                                                   c->name);
                        c->selected_for_restore = v;
                } else
                        c->additional_restores = v;
                return 0;
        }
        if (streq(p->type, "u")) {
                uint32_t v;
                if (sd_bus_message_read(msg, "u", &v) < 0 || v > VSS_RS_FAILED)
                        return reply_error(error, VSS_E_INVALIDARG, "file restore status must be 0..%d", VSS_RS_FAILED);
                c->file_restore_status = v;
                return 0;
        }
        const char *path, *spec, *dest;
        int rec;
        if (sd_bus_message_read(msg, "(ssbs)", &path, &spec, &rec, &dest) < 0 || !string_ok(path, VSS_MAX_STRING) ||
            !string_ok(spec, VSS_MAX_NAME) || !string_ok(dest, VSS_MAX_STRING) || path[0] != '/' || dest[0] != '/')
                return reply_error(error, VSS_E_INVALIDARG, "a new target needs absolute paths of at most %d bytes",
                                   VSS_MAX_STRING);
        /* As in VSS, the files must be one of the component's file sets, exactly. */
        const vss_writer_metadata *wm = vss_backup_document_writer(s->doc, c);
        const vss_component_info *ci = wm ? metadata_find_component(wm, c->logical_path, c->name) : NULL;
        bool known = false;
        char want[PATH_MAX + 2], have[PATH_MAX + 2];
        for (size_t i = 0; ci && !known && i < ci->n_files; i++)
                known = path_normalize(path, want, sizeof(want)) >= 0 &&
                        path_normalize(ci->files[i].path, have, sizeof(have)) >= 0 && streq(want, have) &&
                        streq(spec, ci->files[i].filespec) && !rec == !ci->files[i].recursive;
        if (!known)
                return reply_error(error, VSS_E_OBJECT_NOT_FOUND,
                                   "component '%s' has no file set %s (%s%s): a new target names one of its own",
                                   c->name, path, spec, rec ? ", recursive" : "");
        int r = bcd_add_new_target(c, path, spec, rec, dest);
        if (r == -E2BIG)
                return reply_error(error, VSS_E_INVALIDARG, "too many new targets for '%s'", c->name);
        return r < 0 ? r : 0;
}

int method_set_component_property(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *iid, *wid, *lp, *name, *prop, *contents;
        const Property *p = NULL;
        char type;
        int r;
        BEGIN(CALL_SET_COMPONENT_PROPERTY);
        if (sd_bus_message_read(msg, "sssss", &iid, &wid, &lp, &name, &prop) < 0)
                return reply_error(error, VSS_E_INVALIDARG, "bad arguments");
        for (size_t i = 0; i < ELEMENTSOF(properties); i++)
                if (streq(properties[i].name, prop))
                        p = &properties[i];
        if (!p)
                return reply_error(error, VSS_E_INVALIDARG, "unknown component property '%s'", prop);
        if (sd_bus_message_peek_type(msg, &type, &contents) < 0 || type != 'v' || !streq(contents, p->type))
                return reply_error(error, VSS_E_INVALIDARG, "property '%s' takes a value of type '%s'", prop, p->type);
        if (!property_valid_now(s, p->when))
                return reply_error(error, VSS_E_BAD_STATE, "'%s' cannot be set now (session is %s)", prop,
                                   session_phase_name(s->phase));
        vss_bc_component *c = record_for_request(s, iid, wid, lp, name, error);
        if (!c)
                return -EINVAL;
        r = sd_bus_message_enter_container(msg, 'v', contents);
        if (r < 0)
                return r;
        r = property_set(s, c, p, msg, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, NULL);
}

/* SaveAsDocument: the document with its header and, for a backup, the writers taking part and the
 * shadows of the committed set. */
int method_save_as_document(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *json = NULL;
        BEGIN(CALL_SAVE_AS_DOCUMENT);
        vss_backup_document *d = s->doc;
        if (!s->restore) {
                d->backup_type = s->backup_type ? s->backup_type : VSS_BT_FULL;
                d->component_mode = s->component_mode;
                d->bootable_system_state = s->bootable;
                d->partial_file_support = s->partial;
                d->context = s->context;
                for (size_t i = 0; i < s->n_slots; i++)
                        if (s->slots[i].metadata && (!s->component_mode || s->slots[i].n_components > 0) &&
                            !s->slots[i].left_out && !s->slots[i].unheard && bcd_add_writer(d, s->slots[i].metadata, (uint32_t) s->slots[i].owner_uid) < 0)
                                return -ENOMEM;
                if (s->set_committed && d->n_shadows == 0) {
                        d->snapshot_set_id = s->set_id;
                        d->created_usec = s->created_usec;
                        for (size_t i = 0; i < s->n_volumes; i++) {
                                Volume *v = &s->volumes[i];
                                if (bcd_add_shadow(d, &v->shadow_id, v->path, strempty(v->shadow_path), v->provider->name) < 0)
                                        return -ENOMEM;
                        }
                }
        }
        if (bcd_format(d, &json) < 0)
                return -ENOMEM;
        return sd_bus_reply_method_return(msg, "s", json);
}
