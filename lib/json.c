/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "lib/common.h"
#include "lib/metadata.h"

int metadata_builder_init(struct vss_metadata_builder *md) {
        *md = (struct vss_metadata_builder) {
                .components = json_object_new_array(),
                .excludes = json_object_new_array(),
        };
        if (!md->components || !md->excludes) {
                metadata_builder_done(md);
                return -ENOMEM;
        }
        return 0;
}

void metadata_builder_done(struct vss_metadata_builder *md) {
        json_object_put(md->components);
        json_object_put(md->excludes);
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

VSS_EXPORT int vss_metadata_add_component(vss_metadata_builder *md, const char *logical_path, const char *name,
                                          const char *caption, bool selectable_for_backup,
                                          bool selectable_for_restore) {
        logical_path = strempty(logical_path);
        if (!md || isempty(name) || !string_ok(name, VSS_MAX_NAME) || !string_ok(logical_path, VSS_MAX_STRING) ||
            (caption && !string_ok(caption, VSS_MAX_STRING)))
                return VSS_E_INVALIDARG;
        if (json_object_array_length(md->components) >= VSS_MAX_COMPONENTS)
                return VSS_E_INVALIDARG;
        if (builder_find(md, logical_path, name))
                return VSS_E_INVALIDARG;
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
        if (!md || isempty(path) || !string_ok(path, VSS_MAX_STRING) || (filespec && !string_ok(filespec, VSS_MAX_NAME)))
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

VSS_EXPORT int vss_metadata_add_exclude_files(vss_metadata_builder *md, const char *path, const char *filespec,
                                              bool recursive) {
        if (!md || isempty(path) || !string_ok(path, VSS_MAX_STRING) || (filespec && !string_ok(filespec, VSS_MAX_NAME)))
                return VSS_E_INVALIDARG;
        if (json_object_array_length(md->excludes) >= VSS_MAX_COMPONENTS)
                return VSS_E_INVALIDARG;
        json_object *f = file_desc_new(path, filespec, recursive);
        if (!f)
                return VSS_E_OUTOFMEMORY;
        json_object_array_add(md->excludes, f);
        return 0;
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
        json_object_put(md->restore);
        md->restore = o;
        return 0;
}

int metadata_builder_finish(struct vss_metadata_builder *md, const vss_writer_options *opts, char **ret) {
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX];
        json_object *doc = json_object_new_object();
        if (!doc)
                return -ENOMEM;
        json_object_object_add(doc, "writer_id", json_object_new_string(vss_id_to_string(&opts->class_id, wid)));
        json_object_object_add(doc, "instance_id", json_object_new_string(vss_id_to_string(&opts->instance_id, iid)));
        json_object_object_add(doc, "name", json_object_new_string(opts->name));
        json_object_object_add(doc, "instance_name", json_object_new_string(strempty(opts->instance_name)));
        json_object_object_add(doc, "usage_type", json_object_new_int(opts->usage_type));
        json_object_object_add(doc, "source_type", json_object_new_int(opts->source_type));
        json_object_object_add(doc, "app_level", json_object_new_int(opts->app_level));
        json_object_object_add(doc, "freeze_window_ms", json_object_new_int64(opts->freeze_window_ms));
        json_object_object_add(doc, "restore_method", md->restore ? json_object_get(md->restore) : NULL);
        json_object_object_add(doc, "components", json_object_get(md->components));
        json_object_object_add(doc, "excludes", json_object_get(md->excludes));
        char *s = strdup(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        json_object_put(doc);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* Parsing. The whole vss_writer_metadata is one allocation family: arrays and strings are
 * malloc'd and freed by metadata_free(). */

static const char *get_str(json_object *o, const char *key, size_t max, bool *ok) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||
            (size_t) json_object_get_string_len(v) > max) {
                *ok = false;
                return "";
        }
        return json_object_get_string(v);
}

static int64_t get_int(json_object *o, const char *key, int64_t min, int64_t max, bool *ok) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v))
                return 0; /* optional, 0 is every field's default */
        if (!json_object_is_type(v, json_type_int)) {
                *ok = false;
                return 0;
        }
        int64_t i = json_object_get_int64(v);
        if (i < min || i > max)
                *ok = false;
        return i;
}

static bool get_bool(json_object *o, const char *key, bool *ok) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v))
                return false;
        if (!json_object_is_type(v, json_type_boolean))
                *ok = false;
        return json_object_get_boolean(v);
}

static char *dup_or_flag(const char *s, bool *ok) {
        char *d = strdup(s);
        if (!d)
                *ok = false;
        return d;
}

static int parse_files(json_object *arr, vss_file_desc **ret, size_t *ret_n, bool *ok) {
        size_t n;
        if (!arr) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!json_object_is_type(arr, json_type_array) || (n = json_object_array_length(arr)) > VSS_MAX_COMPONENTS)
                return -EINVAL;
        vss_file_desc *f = calloc(n ? n : 1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        *ret = f;
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(e, json_type_object))
                        return -EINVAL;
                f[i].path = dup_or_flag(get_str(e, "path", VSS_MAX_STRING, ok), ok);
                f[i].filespec = dup_or_flag(get_str(e, "filespec", VSS_MAX_NAME, ok), ok);
                f[i].recursive = get_bool(e, "recursive", ok);
        }
        return 0;
}

static void files_free(const vss_file_desc *f, size_t n) {
        for (size_t i = 0; f && i < n; i++) {
                free((char *) f[i].path);
                free((char *) f[i].filespec);
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
        free(m);
}

int metadata_parse(const char *doc, vss_writer_metadata **ret, const char **ret_error) {
        bool ok = true;
        int r;

        *ret_error = "malformed metadata document";
        if (!doc || strnlen(doc, VSS_MAX_DOCUMENT + 1) > VSS_MAX_DOCUMENT) {
                *ret_error = "metadata document too large";
                return -EINVAL;
        }
        json_tokener *tok = json_tokener_new_ex(32);
        if (!tok)
                return -ENOMEM;
        size_t len = strlen(doc);
        json_object *o = json_tokener_parse_ex(tok, doc, (int) len);
        bool complete = json_tokener_get_error(tok) == json_tokener_success;
        /* One document, nothing after it. */
        for (size_t i = complete ? json_tokener_get_parse_end(tok) : len; i < len; i++)
                if (!strchr(" \t\r\n", doc[i]))
                        complete = false;
        json_tokener_free(tok);
        if (!o || !complete || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EINVAL;
        }

        vss_writer_metadata *m = calloc(1, sizeof(*m));
        if (!m) {
                json_object_put(o);
                return -ENOMEM;
        }
        if (vss_id_from_string(get_str(o, "writer_id", 64, &ok), &m->writer_id) < 0 ||
            vss_id_from_string(get_str(o, "instance_id", 64, &ok), &m->instance_id) < 0)
                ok = false;
        m->name = dup_or_flag(get_str(o, "name", VSS_MAX_NAME, &ok), &ok);
        m->instance_name = dup_or_flag(get_str(o, "instance_name", VSS_MAX_NAME, &ok), &ok);
        if (isempty(m->name))
                ok = false;
        m->usage_type = (vss_usage_type) get_int(o, "usage_type", 0, VSS_UT_OTHER, &ok);
        m->source_type = (vss_source_type) get_int(o, "source_type", 0, VSS_ST_OTHER, &ok);
        m->app_level = (vss_app_level) get_int(o, "app_level", 0, _VSS_APP_LEVEL_MAX - 1, &ok);
        m->freeze_window_ms = (uint32_t) get_int(o, "freeze_window_ms", 0, UINT32_MAX, &ok);

        json_object *rm = json_object_object_get(o, "restore_method");
        if (rm && json_object_is_type(rm, json_type_object)) {
                m->restore_method = (vss_restore_method) get_int(rm, "method", 0, VSS_RME_RESTORE_STOP_START, &ok);
                m->restore_service = dup_or_flag(get_str(rm, "service", VSS_MAX_NAME, &ok), &ok);
                m->reboot_required = get_bool(rm, "reboot_required", &ok);
        } else if (rm)
                ok = false;
        if (!m->restore_service)
                m->restore_service = dup_or_flag("", &ok);

        json_object *comps = json_object_object_get(o, "components");
        size_t n = comps ? json_object_array_length(comps) : 0;
        if (comps && (!json_object_is_type(comps, json_type_array) || n > VSS_MAX_COMPONENTS))
                ok = false;
        else if (n > 0) {
                vss_component_info *c = calloc(n, sizeof(*c));
                if (!c)
                        ok = false;
                m->components = c;
                m->n_components = c ? n : 0;
                for (size_t i = 0; ok && i < n; i++) {
                        json_object *e = json_object_array_get_idx(comps, i);
                        if (!json_object_is_type(e, json_type_object)) {
                                ok = false;
                                break;
                        }
                        c[i].logical_path = dup_or_flag(get_str(e, "logical_path", VSS_MAX_STRING, &ok), &ok);
                        c[i].name = dup_or_flag(get_str(e, "name", VSS_MAX_NAME, &ok), &ok);
                        c[i].caption = dup_or_flag(get_str(e, "caption", VSS_MAX_STRING, &ok), &ok);
                        c[i].selectable_for_backup = get_bool(e, "selectable_for_backup", &ok);
                        c[i].selectable_for_restore = get_bool(e, "selectable_for_restore", &ok);
                        vss_file_desc *files = NULL;
                        r = parse_files(json_object_object_get(e, "files"), &files, &c[i].n_files, &ok);
                        c[i].files = files;
                        if (r < 0)
                                ok = false;
                        if (ok && isempty(c[i].name))
                                ok = false;
                }
        }
        if (ok) {
                vss_file_desc *ex = NULL;
                if (parse_files(json_object_object_get(o, "excludes"), &ex, &m->n_excludes, &ok) < 0)
                        ok = false;
                m->excludes = ex;
        }
        json_object_put(o);
        if (ok)
                m->document = dup_or_flag(doc, &ok);
        if (!ok) {
                metadata_free(m);
                return -EINVAL;
        }
        *ret_error = NULL;
        *ret = m;
        return 0;
}

const vss_component_info *metadata_find_component(const vss_writer_metadata *m, const char *logical_path,
                                                  const char *name) {
        for (size_t i = 0; i < m->n_components; i++)
                if (streq(m->components[i].logical_path, strempty(logical_path)) && streq(m->components[i].name, name))
                        return &m->components[i];
        return NULL;
}
