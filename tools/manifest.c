/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/basic/macro.h"
#include "lib/jsonv.h"
#include "tools/manifest.h"

int backup_type_from_name(const char *s) {
        for (int t = VSS_BT_FULL; t <= VSS_BT_OTHER; t++)
                if (streq(s, vss_backup_type_name((vss_backup_type) t)))
                        return t;
        return -1;
}

char *manifest_format(const Manifest *m) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "format", json_object_new_string("openvss-vssbackup"));
        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "type", json_object_new_string(vss_backup_type_name(m->type)));
        json_object_object_add(o, "created_usec", json_object_new_int64((int64_t) m->created_usec));
        json_object_object_add(o, "base", json_object_new_string(m->base));
        json_object_object_add(o, "base_created_usec", json_object_new_int64((int64_t) m->base_created_usec));
        char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

/* A required non-negative integer member. */
static uint64_t usec_member(JsonReader *v, json_object *o, const char *key) {
        int64_t i = jv_int(v, o, key, 0, INT64_MAX, -1);
        if (i < 0)
                jv_fail(v, key, "missing");
        return i < 0 ? 0 : (uint64_t) i;
}

int manifest_parse(const char *text, Manifest *ret, char *error, size_t size) {
        static const char *const keys[] = { "format", "version", "type", "created_usec", "base", "base_created_usec",
                                            NULL };
        JsonReader v = {};
        Manifest m = {};

        json_object *o = jv_parse(&v, text, MANIFEST_MAX, "the document");
        if (o) {
                jv_only_keys(&v, o, keys);
                (void) jv_string(&v, o, "format", 64, false);
                (void) jv_int(&v, o, "version", 0, INT32_MAX, 1);
                const char *type = jv_string(&v, o, "type", 64, true);
                if (!jv_failed(&v) && backup_type_from_name(type) < 0)
                        jv_fail(&v, "type", "unknown backup type '%s'", type);
                m.type = (vss_backup_type) backup_type_from_name(type);
                m.created_usec = usec_member(&v, o, "created_usec");
                snprintf(m.base, sizeof(m.base), "%s", jv_string(&v, o, "base", PATH_MAX - 1, true));
                m.base_created_usec = usec_member(&v, o, "base_created_usec");
        }
        json_object_put(o);
        if (jv_failed(&v)) {
                snprintf(error, size, "%s", v.error);
                return -EBADMSG;
        }
        *ret = m;
        return 0;
}
