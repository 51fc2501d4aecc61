/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "lib/jsonv.h"

void jv_fail(JsonReader *v, const char *key, const char *fmt, ...) {
        if (jv_failed(v))
                return; /* the first problem is the one worth reporting */
        char what[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        const char *sep = v->path[0] && key ? "." : "";
        if (v->path[0] || key)
                snprintf(v->error, sizeof(v->error), "%s%s%s: %s", v->path, sep, key ? key : "", what);
        else
                snprintf(v->error, sizeof(v->error), "%s", what);
}

/* json-c keeps the last of repeated keys silently; the text is walked beside the parsed tree to
 * refuse them. The text is valid JSON here (json-c parsed it), nested at most 16 deep. */
static const char *skip_blanks(const char *p) {
        return p + strspn(p, " \t\r\n");
}

static const char *skip_string(const char *p) {
        for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                        p++;
        return *p ? p + 1 : p;
}

static const char *skip_value(const char *p) {
        size_t depth = 0;

        p = skip_blanks(p);
        if (*p != '"' && *p != '{' && *p != '[')
                return p + strcspn(p, ",}] \t\r\n"); /* number, true, false, null */
        do {
                if (*p == '"')
                        p = skip_string(p);
                else {
                        if (*p == '{' || *p == '[')
                                depth++;
                        else if (*p == '}' || *p == ']')
                                depth--;
                        p++;
                }
        } while (depth > 0 && *p);
        return p;
}

static const char *check_value(JsonReader *v, const char *p, json_object *o);

/* The members of an object, from its '{': p at the key on each turn, returns the value's start. */
static const char *member_value(const char *key) {
        return skip_blanks(skip_blanks(skip_string(key)) + 1);
}

static const char *next_member(const char *value) {
        const char *p = skip_blanks(skip_value(value));
        return *p == ',' ? skip_blanks(p + 1) : p;
}

static const char *check_object(JsonReader *v, const char *start, json_object *o) {
        struct json_object_iterator it = json_object_iter_begin(o), end = json_object_iter_end(o);
        const char *p;
        size_t n = 0;

        /* Keys first: the text's keys are the parsed ones in order until one repeats. */
        for (p = skip_blanks(start + 1); *p == '"' && !jv_failed(v); p = next_member(member_value(p)), n++) {
                const char *k = p + 1;
                size_t klen = (size_t) (skip_string(p) - 1 - k);
                bool done = json_object_iter_equal(&it, &end);
                const char *name = done ? NULL : json_object_iter_peek_name(&it);
                if (!memchr(k, '\\', klen) && (!name || strlen(name) != klen || memcmp(name, k, klen) != 0)) {
                        char key[128];
                        snprintf(key, sizeof key, "%.*s", (int) (klen < 100 ? klen : 100), k);
                        jv_fail(v, key, "repeated key");
                }
                if (!done)
                        json_object_iter_next(&it);
        }
        if (!jv_failed(v) && n != (size_t) json_object_object_length(o))
                jv_fail(v, NULL, "repeated key");
        /* Then the values. */
        it = json_object_iter_begin(o);
        for (p = skip_blanks(start + 1); *p == '"' && !jv_failed(v);) {
                size_t l = jv_enter_key(v, json_object_iter_peek_name(&it));
                p = next_member(check_value(v, member_value(p), json_object_iter_peek_value(&it)));
                jv_leave(v, l);
                json_object_iter_next(&it);
        }
        return *p ? p + 1 : p;
}

static const char *check_array(JsonReader *v, const char *start, json_object *a) {
        const char *p = skip_blanks(start + 1);
        size_t n = json_object_array_length(a);

        for (size_t i = 0; i < n && *p != ']' && *p && !jv_failed(v); i++) {
                size_t l = jv_enter_index(v, i);
                p = skip_blanks(check_value(v, p, json_object_array_get_idx(a, i)));
                jv_leave(v, l);
                if (*p == ',')
                        p = skip_blanks(p + 1);
        }
        return skip_value(start);
}

/* Checks the value at p, parsed as o; returns where it ends. */
static const char *check_value(JsonReader *v, const char *p, json_object *o) {
        p = skip_blanks(p);
        if (*p == '{' && json_object_is_type(o, json_type_object))
                return check_object(v, p, o);
        if (*p == '[' && json_object_is_type(o, json_type_array))
                return check_array(v, p, o);
        return skip_value(p);
}

int jv_error(const JsonReader *v, char *err, size_t errsize) {
        if (!jv_failed(v))
                return 0;
        if (err && errsize)
                snprintf(err, errsize, "%s", v->error);
        return -EINVAL;
}

/* The value of the 4 hex digits at p, or -1. */
static long hex4(const char *p) {
        long u = 0;
        for (int i = 0; i < 4; i++) {
                char c = p[i];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0)
                        return -1;
                u = u * 16 + d;
        }
        return u;
}

/* What json-c takes and JSON does not: a raw control character in a string (JSON wants it
 * escaped), and a \u escape of a lone UTF-16 surrogate (no character, and no UTF-8 either).
 * Other parsers (Python's json) refuse both, so one writer's document would fail a requester's
 * whole gather. The text is valid JSON otherwise (json-c parsed it). */
static void check_strings(JsonReader *v, const char *text, const char *what) {
        bool in = false;
        for (const char *p = text; *p && !jv_failed(v); p++) {
                unsigned char c = (unsigned char) *p;
                if (!in || c == '"') {
                        in = in ? false : c == '"';
                        continue;
                }
                if (c < 0x20) {
                        jv_fail(v, NULL, "%s has a control character in a string (offset %zu): JSON wants it escaped",
                                what, (size_t) (p - text));
                        return;
                }
                if (c != '\\' || !*++p || *p != 'u')
                        continue;
                long u = hex4(p + 1), lo = u >= 0xd800 && u <= 0xdbff && p[5] == '\\' && p[6] == 'u' ? hex4(p + 7) : -1;
                if (lo >= 0xdc00 && lo <= 0xdfff)
                        p += 6; /* a pair: its second half */
                else if (u >= 0xd800 && u <= 0xdfff) {
                        jv_fail(v, NULL, "%s has a lone UTF-16 surrogate in a string (offset %zu)", what, (size_t) (p - text));
                        return;
                }
                p += 4;
        }
}

json_object *jv_parse(JsonReader *v, const char *text, size_t max, const char *what) {
        if (!text || strnlen(text, max + 1) > max) {
                jv_fail(v, NULL, "%s larger than %zu bytes", what, max);
                return NULL;
        }
        json_tokener *tok = json_tokener_new_ex(JV_MAX_DEPTH);
        if (!tok) {
                jv_fail(v, NULL, "out of memory");
                return NULL;
        }
        /* Standard JSON only, and valid UTF-8 (documents travel as D-Bus strings). */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        size_t len = strlen(text);
        json_object *o = json_tokener_parse_ex(tok, text, (int) len);
        enum json_tokener_error err = json_tokener_get_error(tok);
        size_t end = err == json_tokener_success ? json_tokener_get_parse_end(tok) : len;
        json_tokener_free(tok);
        if (err == json_tokener_continue)
                jv_fail(v, NULL, "%s is truncated", what);
        else if (err != json_tokener_success)
                jv_fail(v, NULL, "%s is not valid JSON: %s", what, json_tokener_error_desc(err));
        else if (!json_object_is_type(o, json_type_object))
                jv_fail(v, NULL, "%s must be a JSON object", what);
        for (size_t i = end; !jv_failed(v) && i < len; i++)
                if (!strchr(" \t\r\n", text[i]))
                        jv_fail(v, NULL, "%s has data after its end (offset %zu)", what, i);
        if (!jv_failed(v))
                check_strings(v, text, what);
        if (!jv_failed(v))
                (void) check_value(v, text, o);
        if (jv_failed(v)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

size_t jv_enter_key(JsonReader *v, const char *key) {
        size_t len = strlen(v->path);
        snprintf(v->path + len, sizeof(v->path) - len, "%s%s", len ? "." : "", key);
        return len;
}

size_t jv_enter_index(JsonReader *v, size_t i) {
        size_t len = strlen(v->path);
        snprintf(v->path + len, sizeof(v->path) - len, "[%zu]", i);
        return len;
}

void jv_only_keys(JsonReader *v, json_object *o, const char *const *keys) {
        json_object_object_foreach(o, k, val) {
                (void) val;
                bool known = false;
                for (const char *const *p = keys; *p && !known; p++)
                        known = strcmp(*p, k) == 0;
                if (!known) {
                        jv_fail(v, k, "unknown field");
                        return;
                }
        }
}

static json_object *member(JsonReader *v, json_object *o, const char *key, bool required) {
        json_object *m = NULL;
        if (!json_object_object_get_ex(o, key, &m)) {
                if (required)
                        jv_fail(v, key, "missing");
        } else if (!m)
                jv_fail(v, key, "must not be null");
        return m;
}

const char *jv_string(JsonReader *v, json_object *o, const char *key, size_t max, bool required) {
        json_object *m = member(v, o, key, required);
        if (!m)
                return "";
        if (!json_object_is_type(m, json_type_string) || (size_t) json_object_get_string_len(m) > max) {
                jv_fail(v, key, "expected a string of at most %zu bytes", max);
                return "";
        }
        const char *s = json_object_get_string(m);
        if (strlen(s) != (size_t) json_object_get_string_len(m)) {
                jv_fail(v, key, "contains a NUL character");
                return "";
        }
        return s;
}

int64_t jv_int(JsonReader *v, json_object *o, const char *key, int64_t min, int64_t max, int64_t def) {
        json_object *m = member(v, o, key, false);
        if (!m)
                return def;
        int64_t i = json_object_get_int64(m);
        /* json-c saturates numbers that do not fit: the bounds themselves are taken as overflow. */
        if (!json_object_is_type(m, json_type_int) || i < min || i > max || i == INT64_MAX || i == INT64_MIN) {
                jv_fail(v, key, "expected an integer from %lld to %lld", (long long) min, (long long) max);
                return def;
        }
        return i;
}

bool jv_bool(JsonReader *v, json_object *o, const char *key, bool def) {
        json_object *m = member(v, o, key, false);
        if (!m)
                return def;
        if (!json_object_is_type(m, json_type_boolean)) {
                jv_fail(v, key, "expected true or false");
                return def;
        }
        return json_object_get_boolean(m);
}

json_object *jv_array(JsonReader *v, json_object *o, const char *key, size_t max, bool required) {
        json_object *m = member(v, o, key, required);
        if (!m)
                return NULL;
        if (!json_object_is_type(m, json_type_array)) {
                jv_fail(v, key, "expected an array");
                return NULL;
        }
        if (json_object_array_length(m) > max) {
                jv_fail(v, key, "more than %zu entries", max);
                return NULL;
        }
        return m;
}

json_object *jv_object(JsonReader *v, json_object *o, const char *key, bool required) {
        json_object *m = member(v, o, key, required);
        if (m && !json_object_is_type(m, json_type_object)) {
                jv_fail(v, key, "expected an object");
                return NULL;
        }
        return m;
}

json_object *jv_element_object(JsonReader *v, json_object *arr, size_t i) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(e, json_type_object)) {
                size_t l = jv_enter_index(v, i);
                jv_fail(v, NULL, "expected an object");
                jv_leave(v, l);
                return NULL;
        }
        return e;
}

char *jv_dup(JsonReader *v, const char *s) {
        char *d = strdup(s);
        if (!d)
                jv_fail(v, NULL, "out of memory");
        return d;
}
