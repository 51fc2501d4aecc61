/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssd's configuration: a JSON object. Unknown keys and out-of-range values are errors, so a typo
 * never silently leaves a default in place. Example:
 *   { "backup_group": "vss-backup",
 *     "rights": { "list": ["@vss-backup", "alice"], "delete": ["@vss-admin"] },
 *     "max_connections_per_uid": 272, "max_sessions_per_uid": 64,
 *     "max_calls_per_second": 500, "max_call_burst": 5000,
 *     "max_message_bytes": 16842752, "max_input_bytes_per_uid": 33685504, "max_queued_messages": 256,
 *     "writer_classes": { "3f1c…-uuid": "postgres" },
 *     "timeouts": { "identify_ms": 10000, "freeze_window_ms": 60000, ... } }
 * Rights name users, or groups as "@group" (a user and a group may share a name, and which one is
 * meant must not be a guess). Names resolve at load: an unknown one is an error. A right not
 * configured goes to the backup group (list, create, restore) or to root alone (delete). */

#include <grp.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stddef.h>
#include <pwd.h>

#include "daemon/config.h"
#include "lib/common.h"
#include "lib/jsonv.h"

static const struct {
        const char *key;
        size_t offset;
} timeout_keys[] = {
#define T(k) { #k, offsetof(Timeouts, k) }
        T(identify_ms), T(prepare_backup_ms), T(prepare_snapshot_ms), T(freeze_window_ms), T(post_snapshot_ms),
        T(backup_complete_ms), T(backup_shutdown_ms), T(restore_ms), T(status_ms), T(max_freeze_window_ms),
#undef T
};

static void strv_free_n(char **l, size_t n) {
        for (size_t i = 0; l && i < n; i++)
                free(l[i]);
        free(l);
}

_printf_(2, 3) static int fail(char **ret_error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(ret_error, fmt, ap) < 0)
                *ret_error = NULL;
        va_end(ap);
        return -EINVAL;
}

/* An integer in [min, max]; the error names the key (e.g. "timeouts.identify_ms"). */
static int parse_int(json_object *val, const char *key, int64_t min, int64_t max, int64_t *ret, char **ret_error) {
        int64_t v = json_object_get_int64(val);
        if (!json_object_is_type(val, json_type_int) || v < min || v > max)
                return fail(ret_error, "%s: must be an integer from %" PRId64 " to %" PRId64, key, min, max);
        *ret = v;
        return 0;
}

static int parse_timeouts(Timeouts *t, json_object *o, char **ret_error) {
        if (!json_object_is_type(o, json_type_object))
                return fail(ret_error, "%s: must be an object", "timeouts");
        json_object_object_foreach(o, key, val) {
                size_t i;
                for (i = 0; i < ELEMENTSOF(timeout_keys); i++)
                        if (streq(timeout_keys[i].key, key))
                                break;
                if (i == ELEMENTSOF(timeout_keys))
                        return fail(ret_error, "unknown key timeouts.%s", key);
                char name[96];
                int64_t v = 0;
                snprintf(name, sizeof(name), "timeouts.%s", key);
                if (parse_int(val, name, 1, 24 * 3600 * 1000, &v, ret_error) < 0)
                        return -EINVAL;
                *(uint32_t *) ((char *) t + timeout_keys[i].offset) = (uint32_t) v;
        }
        return 0;
}

/* "providers": [{"type": "exec", "name": N, "create": CMD, "delete": CMD, "expose": CMD}] */
static int parse_providers(Providers *ps, json_object *arr, char **ret_error) {
        if (!json_object_is_type(arr, json_type_array))
                return fail(ret_error, "%s: must be an array", "providers");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *o = json_object_array_get_idx(arr, i);
                const char *f[5] = {};
                static const char *const keys[5] = { "type", "name", "create", "delete", "expose" };
                if (!json_object_is_type(o, json_type_object))
                        return fail(ret_error, "%s: entries must be objects", "providers");
                json_object_object_foreach(o, key, val) {
                        size_t k;
                        for (k = 0; k < 5 && !streq(keys[k], key); k++)
                                ;
                        if (k == 5)
                                return fail(ret_error, "unknown key providers[].%s", key);
                        if (!json_object_is_type(val, json_type_string) || !string_ok(json_object_get_string(val), VSS_MAX_STRING))
                                return fail(ret_error, "providers[].%s: must be a string", key);
                        f[k] = json_object_get_string(val);
                }
                if (!f[0] || !streq(f[0], "exec"))
                        return fail(ret_error, "providers[].type: %s", "only \"exec\" providers are configured");
                if (isempty(f[1]) || isempty(f[2]) || isempty(f[3]))
                        return fail(ret_error, "providers[]: %s", "name, create and delete are required");
                int r = providers_add_exec(ps, f[1], f[2], f[3], f[4]);
                if (r == -EEXIST)
                        return fail(ret_error, "providers[]: a provider named '%s' exists already", f[1]);
                if (r < 0)
                        return fail(ret_error, "providers[]: cannot add '%s' (too many?)", f[1]);
        }
        return 0;
}

static const char *const right_names[_RIGHT_MAX] = {
        [RIGHT_LIST] = "list",
        [RIGHT_CREATE] = "create",
        [RIGHT_DELETE] = "delete",
        [RIGHT_RESTORE] = "restore",
};

const char *right_name(Right r) {
        return r < _RIGHT_MAX ? right_names[r] : "?";
}

static int holders_add_gid(RightHolders *h, gid_t gid) {
        gid_t *n = realloc(h->gids, (h->n_gids + 1) * sizeof(gid_t));
        if (!n)
                return -ENOMEM;
        h->gids = n;
        h->gids[h->n_gids++] = gid;
        return 0;
}

/* "rights": {"list": ["user", "@group", ...], "create": [...], "delete": [...], "restore": [...]} */
static int parse_rights(Config *c, bool set[_RIGHT_MAX], json_object *o, char **ret_error) {
        if (!json_object_is_type(o, json_type_object))
                return fail(ret_error, "%s: must be an object", "rights");
        json_object_object_foreach(o, key, val) {
                Right r;
                for (r = 0; r < _RIGHT_MAX && !streq(right_names[r], key); r++)
                        ;
                if (r == _RIGHT_MAX)
                        return fail(ret_error, "unknown key rights.%s (rights are list, create, delete, restore)", key);
                if (!json_object_is_type(val, json_type_array) || json_object_array_length(val) > 1024)
                        return fail(ret_error, "rights.%s: must be an array of user names and @group names", key);
                RightHolders *h = &c->rights[r];
                set[r] = true;
                for (size_t i = 0; i < json_object_array_length(val); i++) {
                        json_object *e = json_object_array_get_idx(val, i);
                        const char *name = json_object_get_string(e);
                        char what[96];
                        snprintf(what, sizeof(what), "rights.%s", key);
                        if (!json_object_is_type(e, json_type_string) || !string_ok(name, VSS_MAX_NAME) || isempty(name) ||
                            streq(name, "@")) {
                                return fail(ret_error, "%s: entries must be user names or @group names", what);
                        }
                        if (name[0] == '@') {
                                struct group *g = getgrnam(name + 1);
                                if (!g) {
                                        return fail(ret_error, "%s: no group '%s'", what, name + 1);
                                }
                                if (holders_add_gid(h, g->gr_gid) < 0)
                                        return -ENOMEM;
                        } else {
                                struct passwd *pw = getpwnam(name);
                                if (!pw) {
                                        return fail(ret_error, "%s: no user '%s' (a group is written '@%s')", what, name,
                                                     name);
                                }
                                uid_t *n = realloc(h->uids, (h->n_uids + 1) * sizeof(uid_t));
                                if (!n)
                                        return -ENOMEM;
                                h->uids = n;
                                h->uids[h->n_uids++] = pw->pw_uid;
                        }
                }
        }
        return 0;
}

/* "writer_classes": {"CLASS-UUID": "user", ...}: those class ids belong to those users from the
 * start, so a writer class is its owner's even before (and while) its writer runs. */
static int parse_classes(Config *c, json_object *o, char **ret_error) {
        if (!json_object_is_type(o, json_type_object) || json_object_object_length(o) > VSS_MAX_WRITERS)
                return fail(ret_error, "%s: must be an object of class ids and user names", "writer_classes");
        c->classes = calloc(json_object_object_length(o) + 1, sizeof(*c->classes));
        if (!c->classes)
                return -ENOMEM;
        json_object_object_foreach(o, key, val) {
                vss_id id;
                const char *user = json_object_get_string(val);
                struct passwd *pw = json_object_is_type(val, json_type_string) && string_ok(user, VSS_MAX_NAME)
                                            ? getpwnam(user)
                                            : NULL;
                if (vss_id_from_string(key, &id) < 0 || vss_id_is_null(&id))
                        return fail(ret_error, "writer_classes: '%s' is not a writer class id (a UUID)", key);
                if (!pw)
                        return fail(ret_error, "writer_classes.%s: must name an existing user", key);
                c->classes[c->n_classes++] = (struct ClassBinding) { .class_id = id, .uid = pw->pw_uid };
        }
        return 0;
}

/* An array of absolute paths (mount points), at most 4096. */
static int parse_paths(json_object *val, const char *key, char ***ret, size_t *ret_n, char **ret_error) {
        if (!json_object_is_type(val, json_type_array) || json_object_array_length(val) > 4096)
                return fail(ret_error, "%s: must be an array of absolute paths", key);
        size_t n = json_object_array_length(val);
        char **l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(val, i);
                const char *p = json_object_get_string(e);
                if (!json_object_is_type(e, json_type_string) || !string_ok(p, VSS_MAX_STRING) || p[0] != '/') {
                        strv_free_n(l, i);
                        return fail(ret_error, "%s: entries must be absolute paths", key);
                }
                if (!(l[i] = strdup(p))) {
                        strv_free_n(l, i);
                        return -ENOMEM;
                }
        }
        strv_free_n(*ret, *ret_n);
        *ret = l;
        *ret_n = n;
        return 0;
}

/* The integer keys: [min, max], and where each goes. */
static const struct {
        const char *key;
        int64_t min, max;
        size_t offset, size;
} int_keys[] = {
#define I(k, field, lo, hi) { k, lo, hi, offsetof(Config, field), sizeof(((Config *) NULL)->field) }
        I("hold_window_ms", hold_window_ms, 1, 600000),
        I("max_shadows_per_volume", max_shadows_per_volume, 1, 4096),
        I("user_set_idle_ms", user_set_idle_ms, 100, 86400000),
        I("file_storage_budget_bytes", file_budget_bytes, 0, INT64_MAX), /* 0: no limit */
        I("file_hold_memory_bytes", file_hold_memory_bytes, 1, INT64_MAX),
        I("max_connections_per_uid", max_connections_per_uid, 1, VSS_MAX_CONNECTIONS),
        I("max_sessions_per_uid", max_sessions_per_uid, 1, 65536),
        I("max_calls_per_second", max_calls_per_second, 1, 1000000),
        I("max_call_burst", max_call_burst, 1, 1000000),
        /* sd-bus refuses 128 MiB and more itself. */
        I("max_message_bytes", max_message_bytes, 4096, 128 * 1024 * 1024 - 1),
        I("max_input_bytes_per_uid", max_input_bytes_per_uid, 4096, INT64_MAX),
        I("max_queued_messages", max_queued_messages, 1, 1000000),
#undef I
};

/* A string member that is an absolute path (file_storage_dir) or a name (backup_group). */
static int parse_string(json_object *val, const char *key, bool path, char **ret, char **ret_error) {
        const char *v = json_object_get_string(val);
        if (!json_object_is_type(val, json_type_string) || !string_ok(v, path ? VSS_MAX_STRING : VSS_MAX_NAME) ||
            (path ? v[0] != '/' : !*v))
                return fail(ret_error, path ? "%s: must be an absolute path" : "%s: must be a group name", key);
        free(*ret);
        return (*ret = strdup(v)) ? 0 : -ENOMEM;
}

/* One top-level key of the configuration. */
static int parse_key(Config *c, bool rights_set[_RIGHT_MAX], const char *key, json_object *val, char **ret_error) {
        for (size_t i = 0; i < ELEMENTSOF(int_keys); i++) {
                if (!streq(int_keys[i].key, key))
                        continue;
                int64_t v = 0;
                int r = parse_int(val, key, int_keys[i].min, int_keys[i].max, &v, ret_error);
                char *field = (char *) c + int_keys[i].offset;
                if (int_keys[i].size == sizeof(uint32_t))
                        *(uint32_t *) field = (uint32_t) v;
                else
                        *(uint64_t *) field = (uint64_t) v;
                return r;
        }
        if (streq(key, "timeouts"))
                return parse_timeouts(&c->timeouts, val, ret_error);
        if (streq(key, "hold_filesystems")) {
                /* "all" (every source filesystem that can be frozen) or mount points */
                c->hold_all = json_object_is_type(val, json_type_string) && streq(json_object_get_string(val), "all");
                if (c->hold_all)
                        return 0;
                return json_object_is_type(val, json_type_array)
                               ? parse_paths(val, key, &c->hold_filesystems, &c->n_hold_filesystems, ret_error)
                               : fail(ret_error, "%s: must be \"all\" or an array of mount points", key);
        }
        if (streq(key, "hold_exclude"))
                return parse_paths(val, key, &c->hold_exclude, &c->n_hold_exclude, ret_error);
        if (streq(key, "file_storage_dir"))
                return parse_string(val, key, true, &c->file_storage_dir, ret_error);
        if (streq(key, "backup_group"))
                return parse_string(val, key, false, &c->backup_group, ret_error);
        if (streq(key, "rights"))
                return parse_rights(c, rights_set, val, ret_error);
        if (streq(key, "writer_classes"))
                return parse_classes(c, val, ret_error);
        if (streq(key, "providers"))
                return parse_providers(&c->providers, val, ret_error);
        return fail(ret_error, "unknown key %s", key);
}

/* The file, through the strict JSON layer: one object, no key twice, bounded size and depth. */
static int parse_file(Config *c, bool rights_set[_RIGHT_MAX], const char *path, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = fopen(path, "re");
        if (f) {
                text = malloc(CONFIG_MAX_BYTES + 2);
                size = text ? fread(text, 1, CONFIG_MAX_BYTES + 1, f) : 0;
                if (text)
                        text[size] = 0;
                fclose(f);
        }
        if (!text || size == 0 || strlen(text) != size)
                return fail(ret_error, "cannot read or parse %s", path);
        JsonReader v = {};
        json_object *o = jv_parse(&v, text, CONFIG_MAX_BYTES, path);
        if (!o) {
                if (strstr(v.error, ": repeated key"))
                        return fail(ret_error, "%s: %s", path, v.error);
                size_t n = strlen(v.error), k = strlen(" must be a JSON object");
                if (n >= k && streq(v.error + n - k, " must be a JSON object"))
                        return fail(ret_error, "%s: must be a JSON object", path);
                return fail(ret_error, "cannot read or parse %s", path);
        }
        int r = 0;
        json_object_object_foreach(o, key, val) {
                r = parse_key(c, rights_set, key, val, ret_error);
                if (r < 0)
                        break;
        }
        json_object_put(o);
        return r;
}

/* What the file left out, and the rules between keys. */
static int config_finish(Config *c, const bool rights_set[_RIGHT_MAX], char **ret_error) {
        /* Else a uid's largest message would wait for room forever. */
        if (c->max_input_bytes_per_uid < c->max_message_bytes)
                return fail(ret_error, "%s: must be at least max_message_bytes", "max_input_bytes_per_uid");
        if (c->timeouts.freeze_window_ms > c->timeouts.max_freeze_window_ms)
                c->timeouts.freeze_window_ms = c->timeouts.max_freeze_window_ms;
        if (!c->backup_group && !(c->backup_group = strdup("vss-backup")))
                return -ENOMEM;
        /* Rights left out: list, create and restore to the backup group (root alone when it does
         * not exist), delete to root alone: backup operators make and use shadow copies, only an
         * administrator throws them away. */
        for (Right r = 0; r < _RIGHT_MAX; r++)
                if (!rights_set[r] && r != RIGHT_DELETE)
                        c->backup_group_rights |= 1u << r;
        return 0;
}

int config_backup_group(Config *c) {
        if (c->backup_group_resolved)
                return 0;
        c->backup_group_resolved = true;
        struct group *g = c->backup_group_rights ? getgrnam(c->backup_group) : NULL;
        for (Right r = 0; g && r < _RIGHT_MAX; r++)
                if ((c->backup_group_rights & (1u << r)) && holders_add_gid(&c->rights[r], g->gr_gid) < 0)
                        return -ENOMEM;
        return 0;
}

int config_load(Config *c, const char *path, char **ret_error) {
        bool rights_set[_RIGHT_MAX] = {};
        *c = (Config) {
                .timeouts = timeouts_default,
                .hold_window_ms = 10000,
                .max_shadows_per_volume = 64,
                .user_set_idle_ms = 600000,
                .max_connections_per_uid = VSS_MAX_CONNECTIONS_PER_UID,
                .max_sessions_per_uid = VSS_MAX_SESSIONS_PER_UID,
                .max_calls_per_second = VSS_MAX_CALLS_PER_SECOND,
                .max_call_burst = VSS_MAX_CALL_BURST,
                .max_message_bytes = VSS_MAX_MESSAGE_BYTES,
                .max_input_bytes_per_uid = VSS_MAX_INPUT_BYTES_PER_UID,
                .max_queued_messages = VSS_MAX_QUEUED_MESSAGES,
                .hold_all = true,
                .file_hold_memory_bytes = 256ULL << 20,
        };
        *ret_error = NULL;
        int r = path ? parse_file(c, rights_set, path, ret_error) : 0;
        if (r >= 0)
                r = config_finish(c, rights_set, ret_error);
        if (r < 0)
                config_done(c);
        return r;
}

void config_done(Config *c) {
        free(c->classes);
        c->classes = NULL;
        c->n_classes = 0;
        free(c->backup_group);
        strv_free_n(c->hold_filesystems, c->n_hold_filesystems);
        strv_free_n(c->hold_exclude, c->n_hold_exclude);
        free(c->file_storage_dir);
        c->hold_filesystems = c->hold_exclude = NULL;
        c->n_hold_filesystems = c->n_hold_exclude = 0;
        c->file_storage_dir = NULL;
        providers_done(&c->providers);
        c->backup_group = NULL;
        for (Right r = 0; r < _RIGHT_MAX; r++) {
                free(c->rights[r].uids);
                free(c->rights[r].gids);
                c->rights[r] = (RightHolders) {};
        }
}
