/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Backup Components Document: one JSON object (docs/backup-components-document.md) that vssd
 * keeps per session, sends to writers in pieces with their events, and a requester saves with
 * its backup and hands back for the restore.
 */

#include "lib/common.h"
#include "lib/jsonv.h"
#include "lib/components.h"

#define BCD_FORMAT "openvss-backup-components"
#define BCD_MAX_SHADOWS VSS_MAX_VOLUMES
#define BCD_MAX_WRITERS 1024
#define BCD_MAX_NEW_TARGETS 64
#define BCD_MAX_WRITER_FILES 64

vss_backup_document *bcd_new(void) {
        vss_backup_document *d = calloc(1, sizeof(*d));
        if (d)
                d->version = 1;
        return d;
}

void bcd_component_done(vss_bc_component *c) {
        free((char *) c->logical_path);
        free((char *) c->name);
        free((char *) c->backup_options);
        free((char *) c->backup_stamp);
        free((char *) c->previous_backup_stamp);
        free((char *) c->restore_options);
        free((char *) c->pre_restore_failure_msg);
        free((char *) c->post_restore_failure_msg);
        mappings_free(c->new_targets, c->n_new_targets);
        bcd_writer_files_clear(c);
        *c = (vss_bc_component) {};
}

void bcd_components_free(vss_bc_component *c, size_t n) {
        for (size_t i = 0; c && i < n; i++)
                bcd_component_done(&c[i]);
        free(c);
}

void bcd_clear_shadows(vss_backup_document *d) {
        for (size_t i = 0; i < d->n_shadows; i++) {
                free((char *) d->shadows[i].original_path);
                free((char *) d->shadows[i].shadow_path);
                free((char *) d->shadows[i].provider);
        }
        free((void *) d->shadows);
        d->shadows = NULL;
        d->n_shadows = 0;
        d->snapshot_set_id = (vss_id) {};
        d->created_usec = 0;
}

void bcd_free(vss_backup_document *d) {
        if (!d)
                return;
        bcd_clear_shadows(d);
        for (size_t i = 0; i < d->n_writers; i++)
                metadata_free(d->writers[i]);
        free((void *) d->writers);
        bcd_components_free((vss_bc_component *) d->components, d->n_components);
        free(d);
}

VSS_EXPORT vss_backup_document *vss_backup_document_free(vss_backup_document *d) {
        bcd_free(d);
        return NULL;
}

int bcd_set(const char **field, const char *value) {
        char *v = strdup(strempty(value));
        if (!v)
                return -ENOMEM;
        free((char *) *field);
        *field = v;
        return 0;
}

/* Every string field of a new record is "" rather than NULL, so readers never check. */
static int component_init(vss_bc_component *c, const vss_id *writer_id, const vss_id *instance_id,
                          const char *logical_path, const char *name) {
        *c = (vss_bc_component) { .writer_id = *writer_id, .instance_id = *instance_id, .restore_target = VSS_RT_ORIGINAL };
        const char **fields[] = { &c->logical_path, &c->name, &c->backup_options, &c->backup_stamp,
                                  &c->previous_backup_stamp, &c->restore_options, &c->pre_restore_failure_msg,
                                  &c->post_restore_failure_msg };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (bcd_set(fields[i], i == 0 ? logical_path : i == 1 ? name : "") < 0) {
                        bcd_component_done(c);
                        return -ENOMEM;
                }
        return 0;
}

static bool component_matches(const vss_bc_component *c, const vss_id *writer_id, const vss_id *instance_id,
                              const char *logical_path, const char *name) {
        return vss_id_equal(&c->writer_id, writer_id) && (!instance_id || vss_id_equal(&c->instance_id, instance_id)) &&
               streq(c->logical_path, strempty(logical_path)) && streq(c->name, strempty(name));
}

vss_bc_component *bcd_find(vss_backup_document *d, const vss_id *writer_id, const vss_id *instance_id,
                           const char *logical_path, const char *name) {
        for (size_t i = 0; d && i < d->n_components; i++)
                if (component_matches(&d->components[i], writer_id, instance_id, logical_path, name))
                        return (vss_bc_component *) &d->components[i];
        return NULL;
}

VSS_EXPORT const vss_bc_component *vss_backup_document_find(const vss_backup_document *d, const vss_id *writer_id,
                                                            const vss_id *instance_id, const char *logical_path,
                                                            const char *name) {
        if (!d || !writer_id)
                return NULL;
        return bcd_find((vss_backup_document *) d, writer_id, instance_id, logical_path, name);
}

VSS_EXPORT const vss_writer_metadata *vss_backup_document_writer(const vss_backup_document *d,
                                                                 const vss_bc_component *c) {
        for (size_t i = 0; d && c && i < d->n_writers; i++)
                if (vss_id_equal(&d->writers[i]->writer_id, &c->writer_id) &&
                    vss_id_equal(&d->writers[i]->instance_id, &c->instance_id))
                        return d->writers[i];
        return NULL;
}

vss_bc_component *bcd_add_component(vss_backup_document *d, const vss_id *writer_id, const vss_id *instance_id,
                                    const char *logical_path, const char *name) {
        vss_bc_component *c = bcd_find(d, writer_id, instance_id, logical_path, name);
        if (c)
                return c;
        if (d->n_components >= VSS_MAX_COMPONENTS)
                return NULL;
        vss_bc_component *n = realloc((void *) d->components, (d->n_components + 1) * sizeof(*n));
        if (!n)
                return NULL;
        d->components = n;
        if (component_init(&n[d->n_components], writer_id, instance_id, logical_path, name) < 0)
                return NULL;
        return &n[d->n_components++];
}

void bcd_remove_instance(vss_backup_document *d, const vss_id *writer_id, const vss_id *instance_id) {
        vss_bc_component *c = (vss_bc_component *) d->components;
        size_t k = 0;
        for (size_t i = 0; i < d->n_components; i++) {
                if (vss_id_equal(&c[i].writer_id, writer_id) && vss_id_equal(&c[i].instance_id, instance_id))
                        bcd_component_done(&c[i]);
                else
                        c[k++] = c[i];
        }
        d->n_components = k;
        /* And the writer's entry, when a document was asked for before it was left out. */
        k = 0;
        vss_writer_metadata **w = (vss_writer_metadata **) d->writers;
        for (size_t i = 0; i < d->n_writers; i++) {
                if (vss_id_equal(&w[i]->instance_id, instance_id))
                        metadata_free(w[i]);
                else
                        w[k++] = w[i];
        }
        d->n_writers = k;
}

/* Appends (path, filespec or "*", recursive, destination) to a record's array of mappings:
 * new_targets or writer_files. */
static int mapping_append(const vss_file_mapping **array, size_t *n, size_t max, const char *path,
                          const char *filespec, bool recursive, const char *destination) {
        if (*n >= max)
                return -E2BIG;
        vss_file_mapping *a = realloc((void *) *array, (*n + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        *array = a;
        vss_file_mapping *f = &a[*n];
        *f = (vss_file_mapping) { .recursive = recursive };
        if (bcd_set(&f->path, path) < 0 || bcd_set(&f->filespec, isempty(filespec) ? "*" : filespec) < 0 ||
            bcd_set(&f->destination, destination) < 0) {
                free((char *) f->path);
                free((char *) f->filespec);
                free((char *) f->destination);
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

int bcd_add_new_target(vss_bc_component *c, const char *path, const char *filespec, bool recursive,
                       const char *destination) {
        return mapping_append(&c->new_targets, &c->n_new_targets, BCD_MAX_NEW_TARGETS, path, filespec, recursive,
                              destination);
}

void bcd_writer_files_clear(vss_bc_component *c) {
        mappings_free(c->writer_files, c->n_writer_files);
        c->writer_files = NULL;
        c->n_writer_files = 0;
}

int bcd_add_writer_file(vss_bc_component *c, const char *path, const char *filespec, bool recursive,
                        const char *stored_as) {
        return mapping_append(&c->writer_files, &c->n_writer_files, BCD_MAX_WRITER_FILES, path, filespec, recursive,
                              stored_as);
}

int bcd_add_writer(vss_backup_document *d, const vss_writer_metadata *m, uint32_t owner_uid) {
        vss_writer_metadata *copy = NULL;
        for (size_t i = 0; i < d->n_writers; i++)
                if (vss_id_equal(&d->writers[i]->instance_id, &m->instance_id))
                        return 0;
        if (d->n_writers >= BCD_MAX_WRITERS)
                return -E2BIG;
        int r = metadata_parse(m->document, &copy, NULL, 0);
        if (r < 0)
                return r;
        copy->owner_known = true;
        copy->owner_uid = owner_uid;
        vss_writer_metadata **n = realloc((void *) d->writers, (d->n_writers + 1) * sizeof(*n));
        if (!n) {
                metadata_free(copy);
                return -ENOMEM;
        }
        n[d->n_writers++] = copy;
        d->writers = n;
        return 0;
}

int bcd_add_shadow(vss_backup_document *d, const vss_id *shadow_id, const char *original_path,
                   const char *shadow_path, const char *provider) {
        if (d->n_shadows >= BCD_MAX_SHADOWS)
                return -E2BIG;
        vss_bc_shadow *n = realloc((void *) d->shadows, (d->n_shadows + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        d->shadows = n;
        vss_bc_shadow *sh = &n[d->n_shadows];
        *sh = (vss_bc_shadow) { .shadow_id = *shadow_id };
        if (bcd_set(&sh->original_path, original_path) < 0 || bcd_set(&sh->shadow_path, shadow_path) < 0 ||
            bcd_set(&sh->provider, provider) < 0) {
                free((char *) sh->original_path);
                free((char *) sh->shadow_path);
                free((char *) sh->provider);
                return -ENOMEM;
        }
        d->n_shadows++;
        return 0;
}

/* Writing. */

static void add_str(json_object *o, const char *key, const char *value) {
        json_object_object_add(o, key, json_object_new_string(strempty(value)));
}

static void add_id(json_object *o, const char *key, const vss_id *id) {
        char buf[VSS_ID_STRING_MAX];
        add_str(o, key, vss_id_is_null(id) ? "" : vss_id_to_string(id, buf));
}

/* [{path, filespec, recursive, <dest_key>}]: a record's new_targets ("destination") or
 * writer_files ("stored_as"). */
static json_object *mappings_to_json(const vss_file_mapping *f, size_t n, const char *dest_key) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++) {
                json_object *e = json_object_new_object();
                if (!e)
                        break;
                add_str(e, "path", f[i].path);
                add_str(e, "filespec", f[i].filespec);
                json_object_object_add(e, "recursive", json_object_new_boolean(f[i].recursive));
                add_str(e, dest_key, f[i].destination);
                json_object_array_add(a, e);
        }
        return a;
}

static json_object *component_to_json(const vss_bc_component *c) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        add_id(o, "writer_id", &c->writer_id);
        add_id(o, "instance_id", &c->instance_id);
        add_str(o, "logical_path", c->logical_path);
        add_str(o, "name", c->name);
        json_object_object_add(o, "backup_succeeded", json_object_new_boolean(c->backup_succeeded));
        add_str(o, "backup_options", c->backup_options);
        add_str(o, "backup_stamp", c->backup_stamp);
        add_str(o, "previous_backup_stamp", c->previous_backup_stamp);
        json_object_object_add(o, "selected_for_restore", json_object_new_boolean(c->selected_for_restore));
        json_object_object_add(o, "additional_restores", json_object_new_boolean(c->additional_restores));
        add_str(o, "restore_options", c->restore_options);
        json_object_object_add(o, "restore_target", json_object_new_int(c->restore_target));
        json_object_object_add(o, "file_restore_status", json_object_new_int(c->file_restore_status));
        add_str(o, "pre_restore_failure_msg", c->pre_restore_failure_msg);
        add_str(o, "post_restore_failure_msg", c->post_restore_failure_msg);
        json_object_object_add(o, "new_targets", mappings_to_json(c->new_targets, c->n_new_targets, "destination"));
        json_object_object_add(o, "writer_files", mappings_to_json(c->writer_files, c->n_writer_files, "stored_as"));
        return o;
}

static int to_string(json_object *o, char **ret) {
        const char *s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
        char *d = s ? strdup(s) : NULL;
        json_object_put(o);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}

static json_object *components_to_json(const vss_bc_component *const *c, size_t n) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; a && i < n; i++)
                json_object_array_add(a, component_to_json(c[i]));
        return a;
}

int bcd_components_format(const vss_bc_component *const *c, size_t n, char **ret) {
        json_object *o = json_object_new_object();
        if (o)
                json_object_object_add(o, "components", components_to_json(c, n));
        return to_string(o, ret);
}

int bcd_format(const vss_backup_document *d, char **ret) {
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        add_str(o, "format", BCD_FORMAT);
        json_object_object_add(o, "version", json_object_new_int((int) d->version));
        json_object_object_add(o, "backup_type", json_object_new_int(d->backup_type));
        json_object_object_add(o, "component_mode", json_object_new_boolean(d->component_mode));
        json_object_object_add(o, "bootable_system_state", json_object_new_boolean(d->bootable_system_state));
        json_object_object_add(o, "partial_file_support", json_object_new_boolean(d->partial_file_support));
        json_object_object_add(o, "context", json_object_new_int64(d->context));
        add_id(o, "snapshot_set_id", &d->snapshot_set_id);
        json_object_object_add(o, "created_usec", json_object_new_int64((int64_t) d->created_usec));
        json_object *sh = json_object_new_array();
        for (size_t i = 0; sh && i < d->n_shadows; i++) {
                json_object *e = json_object_new_object();
                if (!e)
                        break;
                add_id(e, "shadow_id", &d->shadows[i].shadow_id);
                add_str(e, "original_path", d->shadows[i].original_path);
                add_str(e, "shadow_path", d->shadows[i].shadow_path);
                add_str(e, "provider", d->shadows[i].provider);
                json_object_array_add(sh, e);
        }
        json_object_object_add(o, "shadows", sh);
        json_object *w = json_object_new_array();
        for (size_t i = 0; w && i < d->n_writers; i++) {
                json_object *e = json_tokener_parse(d->writers[i]->document);
                /* Next to the writer's own fields: vssd's record of who the writer was. */
                if (e && d->writers[i]->owner_known)
                        json_object_object_add(e, "owner_uid", json_object_new_int64(d->writers[i]->owner_uid));
                json_object_array_add(w, e);
        }
        json_object_object_add(o, "writers", w);
        json_object *c = json_object_new_array();
        for (size_t i = 0; c && i < d->n_components; i++)
                json_object_array_add(c, component_to_json(&d->components[i]));
        json_object_object_add(o, "components", c);
        return to_string(o, ret);
}

/* Reading. */

static const char *const component_keys[] = {
        "writer_id", "instance_id", "logical_path", "name", "backup_succeeded", "backup_options", "backup_stamp",
        "previous_backup_stamp", "selected_for_restore", "additional_restores", "restore_options",
        "restore_target", "file_restore_status", "pre_restore_failure_msg", "post_restore_failure_msg",
        "new_targets", "writer_files", NULL,
};

/* The array under key of a record: new_targets (dest_key "destination") or writer_files
 * ("stored_as"), both absolute paths, each entry appended with add. */
static void mappings_from_json(JsonReader *v, json_object *o, const char *key, size_t max, const char *dest_key,
                               vss_bc_component *c,
                               int (*add)(vss_bc_component *c, const char *path, const char *filespec,
                                          bool recursive, const char *destination)) {
        json_object *t = jv_array(v, o, key, max, false);
        size_t n = t ? json_object_array_length(t) : 0, l = jv_enter_key(v, key);
        for (size_t i = 0; i < n && !jv_failed(v); i++) {
                json_object *e = jv_element_object(v, t, i);
                if (!e)
                        break;
                size_t li = jv_enter_index(v, i);
                jv_only_keys(v, e, (const char *const[]) { "path", "filespec", "recursive", dest_key, NULL });
                const char *path = jv_string(v, e, "path", VSS_MAX_STRING, true);
                const char *spec = jv_string(v, e, "filespec", VSS_MAX_NAME, false);
                bool rec = jv_bool(v, e, "recursive", false);
                const char *dest = jv_string(v, e, dest_key, VSS_MAX_STRING, true);
                if (!jv_failed(v) && (path[0] != '/' || dest[0] != '/'))
                        jv_fail(v, path[0] != '/' ? "path" : dest_key, "must be an absolute path");
                if (!jv_failed(v) && add(c, path, spec, rec, dest) < 0)
                        jv_fail(v, NULL, "out of memory");
                jv_leave(v, li);
        }
        jv_leave(v, l);
}

static void component_from_json(JsonReader *v, json_object *o, vss_bc_component *c) {
        vss_id wid = {}, iid = {};
        jv_only_keys(v, o, component_keys);
        jv_id(v, o, "writer_id", &wid, false);
        jv_id(v, o, "instance_id", &iid, false);
        const char *lp = jv_string(v, o, "logical_path", VSS_MAX_STRING, false);
        const char *name = jv_string(v, o, "name", VSS_MAX_NAME, true);
        if (!jv_failed(v) && isempty(name))
                jv_fail(v, "name", "must not be empty");
        if (jv_failed(v))
                return;
        if (component_init(c, &wid, &iid, lp, name) < 0) {
                jv_fail(v, NULL, "out of memory");
                return;
        }
        c->backup_succeeded = jv_bool(v, o, "backup_succeeded", false);
        c->selected_for_restore = jv_bool(v, o, "selected_for_restore", false);
        c->additional_restores = jv_bool(v, o, "additional_restores", false);
        c->restore_target = (vss_restore_target) jv_int(v, o, "restore_target", 0, VSS_RT_ORIGINAL_LOCATION, VSS_RT_ORIGINAL);
        /* VSS: a target no writer set is VSS_RT_ORIGINAL; UNDEFINED is an error state (documents
         * written before said 0). */
        if (c->restore_target == VSS_RT_UNDEFINED)
                c->restore_target = VSS_RT_ORIGINAL;
        c->file_restore_status = (vss_file_restore_status) jv_int(v, o, "file_restore_status", 0, VSS_RS_FAILED, 0);
        static const struct { const char *key; size_t off, max; } strs[] = {
                { "backup_options", offsetof(vss_bc_component, backup_options), VSS_MAX_STRING },
                { "backup_stamp", offsetof(vss_bc_component, backup_stamp), VSS_MAX_STRING },
                { "previous_backup_stamp", offsetof(vss_bc_component, previous_backup_stamp), VSS_MAX_STRING },
                { "restore_options", offsetof(vss_bc_component, restore_options), VSS_MAX_STRING },
                { "pre_restore_failure_msg", offsetof(vss_bc_component, pre_restore_failure_msg), VSS_MAX_MESSAGE },
                { "post_restore_failure_msg", offsetof(vss_bc_component, post_restore_failure_msg), VSS_MAX_MESSAGE },
        };
        for (size_t i = 0; i < ELEMENTSOF(strs) && !jv_failed(v); i++)
                if (bcd_set((const char **) ((char *) c + strs[i].off),
                            jv_string(v, o, strs[i].key, strs[i].max, false)) < 0)
                        jv_fail(v, NULL, "out of memory");
        mappings_from_json(v, o, "new_targets", BCD_MAX_NEW_TARGETS, "destination", c, bcd_add_new_target);
        mappings_from_json(v, o, "writer_files", BCD_MAX_WRITER_FILES, "stored_as", c, bcd_add_writer_file);
}

/* The array of component records under "components" of o. */
static vss_bc_component *components_from_json(JsonReader *v, json_object *o, size_t *ret_n) {
        json_object *arr = jv_array(v, o, "components", VSS_MAX_COMPONENTS, true);
        size_t n = arr ? json_object_array_length(arr) : 0, l = jv_enter_key(v, "components");
        vss_bc_component *c = calloc(n ? n : 1, sizeof(*c));
        *ret_n = 0;
        if (!c)
                jv_fail(v, NULL, "out of memory");
        for (size_t i = 0; c && i < n && !jv_failed(v); i++) {
                json_object *e = jv_element_object(v, arr, i);
                if (!e)
                        break;
                size_t li = jv_enter_index(v, i);
                component_from_json(v, e, &c[i]);
                *ret_n = i + 1;
                for (size_t k = 0; k < i && !jv_failed(v); k++)
                        if (component_matches(&c[k], &c[i].writer_id, &c[i].instance_id, c[i].logical_path, c[i].name))
                                jv_fail(v, "name", "component listed twice");
                jv_leave(v, li);
        }
        jv_leave(v, l);
        return c;
}

int bcd_components_parse(const char *json, vss_bc_component **ret, size_t *ret_n, char *err, size_t errsize) {
        JsonReader v = {};
        size_t n = 0;
        vss_bc_component *c = NULL;
        json_object *o = jv_parse(&v, json, VSS_MAX_DOCUMENT, "component records");
        if (o) {
                jv_only_keys(&v, o, (const char *const[]) { "components", NULL });
                c = components_from_json(&v, o, &n);
        }
        json_object_put(o);
        if (jv_error(&v, err, errsize) < 0) {
                bcd_components_free(c, n);
                return -EINVAL;
        }
        *ret = c;
        *ret_n = n;
        return 0;
}

static const char *const document_keys[] = {
        "format", "version", "backup_type", "component_mode", "bootable_system_state", "partial_file_support",
        "context", "snapshot_set_id", "created_usec", "shadows", "writers", "components", NULL,
};

static void shadows_from_json(JsonReader *v, json_object *o, vss_backup_document *d) {
        json_object *arr = jv_array(v, o, "shadows", BCD_MAX_SHADOWS, false);
        size_t n = arr ? json_object_array_length(arr) : 0, l = jv_enter_key(v, "shadows");
        for (size_t i = 0; i < n && !jv_failed(v); i++) {
                json_object *e = jv_element_object(v, arr, i);
                if (!e)
                        break;
                size_t li = jv_enter_index(v, i);
                vss_id id = {};
                jv_only_keys(v, e, (const char *const[]) { "shadow_id", "original_path", "shadow_path", "provider", NULL });
                jv_id(v, e, "shadow_id", &id, false);
                const char *orig = jv_string(v, e, "original_path", VSS_MAX_STRING, true);
                const char *sp = jv_string(v, e, "shadow_path", VSS_MAX_STRING, true);
                const char *prov = jv_string(v, e, "provider", VSS_MAX_NAME, true);
                if (!jv_failed(v) && orig[0] != '/')
                        jv_fail(v, "original_path", "must be an absolute path");
                if (!jv_failed(v) && bcd_add_shadow(d, &id, orig, sp, prov) < 0)
                        jv_fail(v, NULL, "out of memory");
                jv_leave(v, li);
        }
        jv_leave(v, l);
}

static void writers_from_json(JsonReader *v, json_object *o, vss_backup_document *d) {
        json_object *arr = jv_array(v, o, "writers", BCD_MAX_WRITERS, false);
        size_t n = arr ? json_object_array_length(arr) : 0, l = jv_enter_key(v, "writers");
        if (n > 0) {
                d->writers = calloc(n, sizeof(*d->writers));
                if (!d->writers)
                        jv_fail(v, NULL, "out of memory");
        }
        for (size_t i = 0; d->writers && i < n && !jv_failed(v); i++) {
                json_object *e = jv_element_object(v, arr, i);
                if (!e)
                        break;
                /* Each writer's document is held to the writer metadata rules, size included. */
                size_t li = jv_enter_index(v, i);
                /* owner_uid is vssd's, not the writer's: taken out before the writer's document
                 * is read (a writer's own metadata with it is refused as an unknown field). */
                json_object *owner = NULL;
                int64_t owner_uid = 0;
                if (json_object_object_get_ex(e, "owner_uid", &owner)) {
                        owner_uid = jv_int(v, e, "owner_uid", 0, UINT32_MAX - 1, 0);
                        json_object_object_del(e, "owner_uid");
                }
                vss_writer_metadata *m = jv_failed(v) ? NULL : metadata_from_json(v, e);
                if (m && owner) {
                        m->owner_known = true;
                        m->owner_uid = (uint32_t) owner_uid;
                }
                if (m)
                        ((vss_writer_metadata **) d->writers)[d->n_writers++] = m;
                const char *text = json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN);
                if (!jv_failed(v) && strlen(text) > VSS_MAX_DOCUMENT)
                        jv_fail(v, NULL, "writer metadata document larger than %d bytes", VSS_MAX_DOCUMENT);
                if (m && !jv_failed(v))
                        m->document = jv_dup(v, text);
                for (size_t k = 0; m && k + 1 < d->n_writers && !jv_failed(v); k++)
                        if (vss_id_equal(&d->writers[k]->instance_id, &m->instance_id))
                                jv_fail(v, "instance_id", "writer listed twice");
                jv_leave(v, li);
        }
        jv_leave(v, l);
}

int bcd_parse(const char *json, vss_backup_document **ret, char *err, size_t errsize) {
        JsonReader v = {};
        vss_backup_document *d = NULL;
        json_object *o = jv_parse(&v, json, VSS_MAX_BC_DOCUMENT, "backup components document");
        if (o && !(d = bcd_new()))
                jv_fail(&v, NULL, "out of memory");
        if (d) {
                jv_only_keys(&v, o, document_keys);
                jv_check_format(&v, o, BCD_FORMAT);
                d->backup_type = (vss_backup_type) jv_int(&v, o, "backup_type", 0, VSS_BT_OTHER, 0);
                d->component_mode = jv_bool(&v, o, "component_mode", false);
                d->bootable_system_state = jv_bool(&v, o, "bootable_system_state", false);
                d->partial_file_support = jv_bool(&v, o, "partial_file_support", false);
                d->context = (uint32_t) jv_int(&v, o, "context", 0, UINT32_MAX, 0);
                jv_id(&v, o, "snapshot_set_id", &d->snapshot_set_id, true);
                d->created_usec = (uint64_t) jv_int(&v, o, "created_usec", 0, INT64_MAX, 0);
                if (!jv_failed(&v))
                        shadows_from_json(&v, o, d);
                if (!jv_failed(&v))
                        writers_from_json(&v, o, d);
                if (!jv_failed(&v)) {
                        size_t n = 0;
                        d->components = components_from_json(&v, o, &n);
                        d->n_components = n;
                }
        }
        json_object_put(o);
        if (jv_error(&v, err, errsize) < 0) {
                bcd_free(d);
                return -EINVAL;
        }
        *ret = d;
        return 0;
}

VSS_EXPORT int vss_backup_document_parse(const char *json, vss_backup_document **ret, char *errbuf, size_t errsize) {
        if (!ret)
                return VSS_E_INVALIDARG;
        return vss_hr_from_errno(bcd_parse(json, ret, errbuf, errsize)); /* -EINVAL: VSS_E_INVALIDARG */
}
