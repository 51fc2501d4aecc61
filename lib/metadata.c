/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "lib/common.h"
#include "lib/jsonv.h"
#include "lib/metadata.h"

int metadata_builder_init(struct vss_metadata_builder *md) {
        *md = (struct vss_metadata_builder) {
                .components = json_object_new_array(),
                .excludes = json_object_new_array(),
                .mappings = json_object_new_array(),
        };
        if (!md->components || !md->excludes || !md->mappings) {
                metadata_builder_done(md);
                return -ENOMEM;
        }
        return 0;
}

void metadata_builder_done(struct vss_metadata_builder *md) {
        json_object_put(md->components);
        json_object_put(md->excludes);
        json_object_put(md->mappings);
        json_object_put(md->restore);
        *md = (struct vss_metadata_builder) {};
}

static json_object *file_desc_new(const char *path, const char *filespec, bool recursive) {
        json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "filespec", json_object_new_string(filespec ? filespec : "*"));
        json_object_object_add(o, "recursive", json_object_new_boolean(recursive));
        return o;
}

static json_object *builder_find(struct vss_metadata_builder *md, const char *logical_path, const char *name) {
        size_t n = json_object_array_length(md->components);
        for (size_t i = 0; i < n; i++) {
                json_object *c = json_object_array_get_idx(md->components, i);
                if (streq(json_object_get_string(json_object_object_get(c, "logical_path")), logical_path) &&
                    streq(json_object_get_string(json_object_object_get(c, "name")), name))
                        return c;
        }
        return NULL;
}

/* VSS: a file group's path has no wildcards; a filespec names files, not directories (no
 * separator); a component's name is no logical path (no separator: "a" + "b/c" would be "a/b" +
 * "c"). */
static bool path_plain(const char *path) {
        return !strpbrk(path, "*?[");
}

static bool name_plain(const char *name) {
        return !name || !strchr(name, '/');
}

/* A file group's path and filespec (NULL: "*"), as every builder function takes them. */
static bool file_group_ok(const char *path, const char *filespec) {
        return !isempty(path) && path[0] == '/' && string_ok(path, VSS_MAX_STRING) && path_plain(path) &&
               (!filespec || string_ok(filespec, VSS_MAX_NAME)) && name_plain(filespec);
}

VSS_EXPORT int vss_metadata_add_component(vss_metadata_builder *md, const char *logical_path, const char *name,
                                          const char *caption, bool selectable_for_backup,
                                          bool selectable_for_restore) {
        logical_path = strempty(logical_path);
        if (!md || isempty(name) || !string_ok(name, VSS_MAX_NAME) || !string_ok(logical_path, VSS_MAX_STRING) ||
            (caption && !string_ok(caption, VSS_MAX_STRING)) || !name_plain(name))
                return VSS_E_INVALIDARG;
        if (json_object_array_length(md->components) >= VSS_MAX_COMPONENTS)
                return VSS_E_INVALIDARG;
        if (builder_find(md, logical_path, name))
                return VSS_E_OBJECT_ALREADY_EXISTS; /* VSS: the same logical path and name twice */
        json_object *c = json_object_new_object();
        if (!c)
                return VSS_E_OUTOFMEMORY;
        json_object_object_add(c, "logical_path", json_object_new_string(logical_path));
        json_object_object_add(c, "name", json_object_new_string(name));
        json_object_object_add(c, "caption", json_object_new_string(caption ? caption : name));
        json_object_object_add(c, "selectable_for_backup", json_object_new_boolean(selectable_for_backup));
        json_object_object_add(c, "selectable_for_restore", json_object_new_boolean(selectable_for_restore));
        json_object_object_add(c, "files", json_object_new_array());
        json_object_array_add(md->components, c);
        return 0;
}

VSS_EXPORT int vss_metadata_add_files(vss_metadata_builder *md, const char *logical_path, const char *name,
                                      const char *path, const char *filespec, bool recursive) {
        if (!md || !file_group_ok(path, filespec))
                return VSS_E_INVALIDARG;
        json_object *c = builder_find(md, strempty(logical_path), strempty(name));
        if (!c)
                return VSS_E_OBJECT_NOT_FOUND;
        json_object *files = json_object_object_get(c, "files");
        if (json_object_array_length(files) >= VSS_MAX_COMPONENTS)
                return VSS_E_INVALIDARG;
        json_object *f = file_desc_new(path, filespec, recursive);
        if (!f)
                return VSS_E_OUTOFMEMORY;
        json_object_array_add(files, f);
        return 0;
}

/* Appends a file entry (with destination, if not NULL) to one of the builder's arrays. */
static int32_t files_append(json_object *array, const char *path, const char *filespec, bool recursive,
                            const char *destination) {
        if (!file_group_ok(path, filespec) || json_object_array_length(array) >= VSS_MAX_COMPONENTS)
                return VSS_E_INVALIDARG;
        json_object *f = file_desc_new(path, filespec, recursive);
        if (!f)
                return VSS_E_OUTOFMEMORY;
        if (destination)
                json_object_object_add(f, "destination", json_object_new_string(destination));
        json_object_array_add(array, f);
        return 0;
}

VSS_EXPORT int vss_metadata_add_exclude_files(vss_metadata_builder *md, const char *path, const char *filespec,
                                              bool recursive) {
        return md ? files_append(md->excludes, path, filespec, recursive, NULL) : VSS_E_INVALIDARG;
}

VSS_EXPORT int vss_metadata_set_restore_method(vss_metadata_builder *md, vss_restore_method method,
                                               const char *service, bool reboot_required) {
        if (!md || (unsigned) method > VSS_RME_RESTORE_STOP_START || (service && !string_ok(service, VSS_MAX_NAME)))
                return VSS_E_INVALIDARG;
        json_object *o = json_object_new_object();
        if (!o)
                return VSS_E_OUTOFMEMORY;
        json_object_object_add(o, "method", json_object_new_int((int) method));
        json_object_object_add(o, "service", json_object_new_string(strempty(service)));
        json_object_object_add(o, "reboot_required", json_object_new_boolean(reboot_required));
        json_object_object_add(o, "writer_restore", json_object_new_int(md->writer_restore));
        json_object_put(md->restore);
        md->restore = o;
        return 0;
}

VSS_EXPORT int vss_metadata_set_writer_restore(vss_metadata_builder *md, vss_writer_restore writer_restore) {
        if (!md || (unsigned) writer_restore > VSS_WRE_ALWAYS)
                return VSS_E_INVALIDARG;
        md->writer_restore = writer_restore;
        if (!md->restore)
                return vss_metadata_set_restore_method(md, VSS_RME_UNDEFINED, NULL, false);
        json_object_object_add(md->restore, "writer_restore", json_object_new_int(writer_restore));
        return 0;
}

VSS_EXPORT int vss_metadata_add_alternate_location_mapping(vss_metadata_builder *md, const char *path,
                                                           const char *filespec, bool recursive,
                                                           const char *destination) {
        if (!md || isempty(destination) || destination[0] != '/' || !string_ok(destination, VSS_MAX_STRING))
                return VSS_E_INVALIDARG;
        return files_append(md->mappings, path, filespec, recursive, destination);
}

int metadata_builder_finish(struct vss_metadata_builder *md, const vss_writer_options *opts, char **ret) {
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX];
        json_object *doc = json_object_new_object();
        if (!doc)
                return -ENOMEM;
        json_object_object_add(doc, "format", json_object_new_string("openvss-writer-metadata"));
        json_object_object_add(doc, "version", json_object_new_int(1));
        json_object_object_add(doc, "writer_id", json_object_new_string(vss_id_to_string(&opts->class_id, wid)));
        json_object_object_add(doc, "instance_id", json_object_new_string(vss_id_to_string(&opts->instance_id, iid)));
        json_object_object_add(doc, "name", json_object_new_string(opts->name));
        json_object_object_add(doc, "instance_name", json_object_new_string(strempty(opts->instance_name)));
        json_object_object_add(doc, "usage_type", json_object_new_int(opts->usage_type));
        json_object_object_add(doc, "source_type", json_object_new_int(opts->source_type));
        json_object_object_add(doc, "app_level", json_object_new_int(opts->app_level));
        json_object_object_add(doc, "freeze_window_ms", json_object_new_int64(opts->freeze_window_ms));
        if (md->restore)
                json_object_object_add(doc, "restore_method", json_object_get(md->restore));
        json_object_object_add(doc, "components", json_object_get(md->components));
        json_object_object_add(doc, "excludes", json_object_get(md->excludes));
        json_object_object_add(doc, "alternate_location_mappings", json_object_get(md->mappings));
        char *s = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        json_object_put(doc);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Parsing. The whole vss_writer_metadata is one allocation family: arrays and strings are
 * malloc'd and freed by metadata_free(). */

static const char *const file_keys[] = { "path", "filespec", "recursive", "destination", NULL };

/* One {path, filespec, recursive[, destination]} entry. */
static void parse_file(JsonReader *v, json_object *e, bool mapping, vss_file_mapping *f) {
        jv_only_keys(v, e, mapping ? file_keys : (const char *const[]) { "path", "filespec", "recursive", NULL });
        const char *path = jv_string(v, e, "path", VSS_MAX_STRING, true);
        if (!jv_failed(v) && path[0] != '/')
                jv_fail(v, "path", "must be an absolute path");
        else if (!jv_failed(v) && !path_plain(path))
                jv_fail(v, "path", "must hold no wildcard (the filespec says which files)");
        f->path = jv_dup(v, path);
        f->filespec = jv_dup(v, jv_string(v, e, "filespec", VSS_MAX_NAME, true));
        if (f->filespec && !name_plain(f->filespec))
                jv_fail(v, "filespec", "names files in path, not directories: no '/'");
        f->recursive = jv_bool(v, e, "recursive", false);
        if (mapping) {
                const char *dest = jv_string(v, e, "destination", VSS_MAX_STRING, true);
                if (!jv_failed(v) && dest[0] != '/')
                        jv_fail(v, "destination", "must be an absolute path");
                f->destination = jv_dup(v, dest);
        }
}

/* The array under key, into elements of elem_size bytes whose head is a vss_file_desc (or, with
 * mapping, a vss_file_mapping). *ret_n counts the entries to free even after a failure. */
static void *parse_files(JsonReader *v, json_object *o, const char *key, bool mapping, size_t *ret_n) {
        json_object *arr = jv_array(v, o, key, VSS_MAX_COMPONENTS, false);
        size_t n = arr ? json_object_array_length(arr) : 0;
        size_t size = mapping ? sizeof(vss_file_mapping) : sizeof(vss_file_desc);
        *ret_n = 0;
        if (n == 0)
                return NULL;
        char *f = calloc(n, size);
        if (!f) {
                jv_fail(v, NULL, "out of memory");
                return NULL;
        }
        size_t l = jv_enter_key(v, key);
        for (size_t i = 0; i < n && !jv_failed(v); i++) {
                json_object *e = jv_element_object(v, arr, i);
                if (!e)
                        break;
                size_t li = jv_enter_index(v, i);
                vss_file_mapping m = {};
                parse_file(v, e, mapping, &m);
                memcpy(f + i * size, &m, size); /* vss_file_desc is vss_file_mapping's head */
                *ret_n = i + 1;
                jv_leave(v, li);
        }
        jv_leave(v, l);
        return f;
}

static void files_free(const vss_file_desc *f, size_t n) {
        for (size_t i = 0; f && i < n; i++) {
                free((char *) f[i].path);
                free((char *) f[i].filespec);
        }
        free((void *) f);
}

void mappings_free(const vss_file_mapping *f, size_t n) {
        for (size_t i = 0; f && i < n; i++) {
                free((char *) f[i].path);
                free((char *) f[i].filespec);
                free((char *) f[i].destination);
        }
        free((void *) f);
}

void metadata_free(vss_writer_metadata *m) {
        if (!m)
                return;
        free((char *) m->name);
        free((char *) m->instance_name);
        free((char *) m->restore_service);
        free((char *) m->document);
        for (size_t i = 0; m->components && i < m->n_components; i++) {
                const vss_component_info *c = &m->components[i];
                free((char *) c->logical_path);
                free((char *) c->name);
                free((char *) c->caption);
                files_free(c->files, c->n_files);
        }
        free((void *) m->components);
        files_free(m->excludes, m->n_excludes);
        mappings_free(m->alternate_mappings, m->n_alternate_mappings);
        free(m);
}

VSS_EXPORT vss_writer_metadata *vss_writer_metadata_free(vss_writer_metadata *m) {
        metadata_free(m);
        return NULL;
}

static const char *const metadata_keys[] = {
        "format", "version", "writer_id", "instance_id", "name", "instance_name", "usage_type", "source_type",
        "app_level", "freeze_window_ms", "restore_method", "components", "excludes", "alternate_location_mappings",
        NULL,
};
static const char *const component_keys[] = {
        "logical_path", "name", "caption", "selectable_for_backup", "selectable_for_restore", "files", NULL,
};

void jv_check_format(JsonReader *v, json_object *o, const char *format) {
        if (!streq(jv_string(v, o, "format", 64, true), format) && !jv_failed(v))
                jv_fail(v, "format", "expected \"%s\"", format);
        jv_int(v, o, "version", 1, 1, 0); /* the only version there is */
        if (!jv_failed(v) && !json_object_object_get_ex(o, "version", NULL))
                jv_fail(v, "version", "missing");
}

void jv_id(JsonReader *v, json_object *o, const char *key, vss_id *ret, bool allow_null) {
        const char *s = jv_string(v, o, key, 64, true);
        if (jv_failed(v))
                return;
        if (allow_null && isempty(s)) {
                *ret = (vss_id) {};
                return;
        }
        if (vss_id_from_string(s, ret) < 0)
                jv_fail(v, key, "expected a UUID");
        else if (vss_id_is_null(ret))
                jv_fail(v, key, "must not be the null UUID"); /* it is written as "" */
}

/* Reads a writer metadata document already parsed into o. */
vss_writer_metadata *metadata_from_json(JsonReader *v, json_object *o) {
        vss_writer_metadata *m = calloc(1, sizeof(*m));
        if (!m) {
                jv_fail(v, NULL, "out of memory");
                return NULL;
        }
        jv_only_keys(v, o, metadata_keys);
        jv_check_format(v, o, "openvss-writer-metadata");
        jv_id(v, o, "writer_id", &m->writer_id, false);
        jv_id(v, o, "instance_id", &m->instance_id, false);
        m->name = jv_dup(v, jv_string(v, o, "name", VSS_MAX_NAME, true));
        if (!jv_failed(v) && isempty(m->name))
                jv_fail(v, "name", "must not be empty");
        m->instance_name = jv_dup(v, jv_string(v, o, "instance_name", VSS_MAX_NAME, false));
        m->usage_type = (vss_usage_type) jv_int(v, o, "usage_type", 0, VSS_UT_OTHER, 0);
        m->source_type = (vss_source_type) jv_int(v, o, "source_type", 0, VSS_ST_OTHER, 0);
        m->app_level = (vss_app_level) jv_int(v, o, "app_level", 0, _VSS_APP_LEVEL_MAX - 1, 0);
        m->freeze_window_ms = (uint32_t) jv_int(v, o, "freeze_window_ms", 0, UINT32_MAX, 0);

        json_object *rm = jv_object(v, o, "restore_method", false);
        if (rm) {
                size_t l = jv_enter_key(v, "restore_method");
                jv_only_keys(v, rm, (const char *const[]) { "method", "service", "reboot_required", "writer_restore", NULL });
                m->restore_method = (vss_restore_method) jv_int(v, rm, "method", 0, VSS_RME_RESTORE_STOP_START, 0);
                m->restore_service = jv_dup(v, jv_string(v, rm, "service", VSS_MAX_NAME, false));
                m->reboot_required = jv_bool(v, rm, "reboot_required", false);
                m->writer_restore = (vss_writer_restore) jv_int(v, rm, "writer_restore", 0, VSS_WRE_ALWAYS, 0);
                jv_leave(v, l);
        }
        if (!m->restore_service)
                m->restore_service = jv_dup(v, "");

        json_object *comps = jv_array(v, o, "components", VSS_MAX_COMPONENTS, false);
        size_t n = comps ? json_object_array_length(comps) : 0;
        vss_component_info *c = n ? calloc(n, sizeof(*c)) : NULL;
        if (n && !c)
                jv_fail(v, NULL, "out of memory");
        m->components = c;
        size_t l = jv_enter_key(v, "components");
        for (size_t i = 0; c && i < n && !jv_failed(v); i++) {
                json_object *e = jv_element_object(v, comps, i);
                if (!e)
                        break;
                m->n_components = i + 1;
                size_t li = jv_enter_index(v, i);
                jv_only_keys(v, e, component_keys);
                c[i].logical_path = jv_dup(v, jv_string(v, e, "logical_path", VSS_MAX_STRING, false));
                c[i].name = jv_dup(v, jv_string(v, e, "name", VSS_MAX_NAME, true));
                if (!jv_failed(v) && isempty(c[i].name))
                        jv_fail(v, "name", "must not be empty");
                else if (!jv_failed(v) && !name_plain(c[i].name))
                        jv_fail(v, "name", "must hold no '/' (the logical path is the component's place)");
                c[i].caption = jv_dup(v, jv_string(v, e, "caption", VSS_MAX_STRING, false));
                c[i].selectable_for_backup = jv_bool(v, e, "selectable_for_backup", true);
                c[i].selectable_for_restore = jv_bool(v, e, "selectable_for_restore", true);
                c[i].files = parse_files(v, e, "files", false, &c[i].n_files);
                for (size_t k = 0; k < i && !jv_failed(v); k++)
                        if (streq(c[k].logical_path, c[i].logical_path) && streq(c[k].name, c[i].name))
                                jv_fail(v, "name", "component listed twice");
                jv_leave(v, li);
        }
        jv_leave(v, l);
        if (!jv_failed(v))
                m->excludes = parse_files(v, o, "excludes", false, &m->n_excludes);
        if (!jv_failed(v))
                m->alternate_mappings = parse_files(v, o, "alternate_location_mappings", true, &m->n_alternate_mappings);
        return m;
}

int metadata_parse(const char *doc, vss_writer_metadata **ret, char *err, size_t errsize) {
        JsonReader v = {};
        vss_writer_metadata *m = NULL;
        json_object *o = jv_parse(&v, doc, VSS_MAX_DOCUMENT, "writer metadata document");
        if (o)
                m = metadata_from_json(&v, o);
        json_object_put(o);
        if (!jv_failed(&v))
                m->document = jv_dup(&v, doc);
        if (jv_error(&v, err, errsize) < 0) {
                metadata_free(m);
                return -EINVAL;
        }
        *ret = m;
        return 0;
}

VSS_EXPORT int vss_writer_metadata_parse(const char *json, vss_writer_metadata **ret, char *errbuf, size_t errsize) {
        if (!ret)
                return VSS_E_INVALIDARG;
        return vss_hr_from_errno(metadata_parse(json, ret, errbuf, errsize)); /* -EINVAL: VSS_E_INVALIDARG */
}

const vss_component_info *metadata_find_component(const vss_writer_metadata *m, const char *logical_path,
                                                  const char *name) {
        for (size_t i = 0; i < m->n_components; i++)
                if (streq(m->components[i].logical_path, strempty(logical_path)) && streq(m->components[i].name, name))
                        return &m->components[i];
        return NULL;
}
