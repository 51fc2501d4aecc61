/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdarg.h>
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

/* Keys in text[0, end): strings followed by ':' (text is valid JSON). */
static size_t text_keys(const char *text, size_t end) {
        size_t n = 0;
        for (size_t i = 0; i < end; i++) {
                if (text[i] != '"')
                        continue;
                for (i++; i < end && text[i] != '"'; i++)
                        if (text[i] == '\\')
                                i++;
                size_t k = i + 1;
                while (k < end && strchr(" \t\r\n", text[k]))
                        k++;
                n += k < end && text[k] == ':';
        }
        return n;
}

static size_t tree_keys(json_object *o) {
        size_t n = 0;
        if (json_object_is_type(o, json_type_object)) {
                json_object_object_foreach(o, k, val) {
                        (void) k;
                        n += 1 + tree_keys(val);
                }
        } else if (json_object_is_type(o, json_type_array))
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        n += tree_keys(json_object_array_get_idx(o, i));
        return n;
}

/* Whether an object of text (valid JSON: json-c parsed it) has a key twice; json-c would keep the
 * last one silently. Keys are compared as written. The first repeated key goes to ret. */
static int repeated_key(const char *t, size_t len, char *ret, size_t size) {
        size_t first[JV_MAX_DEPTH + 2]; /* per open object or array: its first key in spans[] */
        bool object[JV_MAX_DEPTH + 2];
        struct { size_t at, n; } *spans = NULL;
        size_t depth = 0, n_spans = 0, cap = 0;
        int r = 0;
        for (size_t i = 0; r == 0 && i < len; i++) {
                if (t[i] == '{' || t[i] == '[') {
                        if (depth >= JV_MAX_DEPTH + 1)
                                break; /* json-c refused deeper already */
                        first[depth] = n_spans;
                        object[depth++] = t[i] == '{';
                } else if ((t[i] == '}' || t[i] == ']') && depth > 0)
                        n_spans = first[--depth];
                else if (t[i] == '"') {
                        size_t at = ++i;
                        while (i < len && t[i] != '"')
                                i += t[i] == '\\' ? 2 : 1;
                        size_t n = i - at, k = i + 1;
                        while (k < len && strchr(" \t\r\n", t[k]))
                                k++;
                        if (depth == 0 || !object[depth - 1] || k >= len || t[k] != ':')
                                continue; /* a value, not a key */
                        for (size_t j = first[depth - 1]; r == 0 && j < n_spans; j++)
                                if (spans[j].n == n && memcmp(t + spans[j].at, t + at, n) == 0) {
                                        snprintf(ret, size, "%.*s", (int) (n < 200 ? n : 200), t + at);
                                        r = 1;
                                }
                        if (n_spans == cap) {
                                void *a = realloc(spans, (cap = cap ? cap * 2 : 64) * sizeof(*spans));
                                if (!a) {
                                        r = -ENOMEM;
                                        break;
                                }
                                spans = a;
                        }
                        spans[n_spans].at = at;
                        spans[n_spans++].n = n;
                }
        }
        free(spans);
        return r;
}

int jv_error(const JsonReader *v, char *err, size_t errsize) {
        if (!jv_failed(v))
                return 0;
        if (err && errsize)
                snprintf(err, errsize, "%s", v->error);
        return -EINVAL;
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
        char key[256];
        int k = jv_failed(v) ? 0 : repeated_key(text, len, key, sizeof(key));
        if (k < 0)
                jv_fail(v, NULL, "out of memory");
        else if (k > 0)
                jv_fail(v, NULL, "%s has the key \"%s\" more than once in an object", what, key);
        /* Keys written differently ("\u0061" and "a"): json-c kept the last, so the tree has fewer
         * keys than the text. */
        else if (!jv_failed(v) && tree_keys(o) != text_keys(text, end))
                jv_fail(v, NULL, "%s has a key more than once in an object", what);
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
