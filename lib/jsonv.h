/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Strict reading of untrusted JSON documents: one document with nothing after it, a size and
 * depth limit, only known keys, typed fields with bounds. The first problem found is kept as a
 * message naming the field ("components[2].files[0].path: expected a string of at most 4096
 * bytes"), and reading goes on harmlessly so callers check once at the end.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct JsonReader {
        char path[256];   /* where we are, e.g. "components[2]" */
        char error[512];  /* the first problem, or "" */
} JsonReader;

static inline bool jv_failed(const JsonReader *v) { return v->error[0] != 0; }
/* The end of a read: -EINVAL with the message copied into err (if any) when it failed, else 0. */
int jv_error(const JsonReader *v, char *err, size_t errsize);
void jv_fail(JsonReader *v, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define JV_MAX_DEPTH 16

/* Parses text (at most max bytes, nesting at most JV_MAX_DEPTH deep) as one JSON object, with no
 * key twice in any object. what names the document in errors. NULL on failure, with the reason
 * in v. */
json_object *jv_parse(JsonReader *v, const char *text, size_t max, const char *what);

/* Descending into a member or an array element: returns the old path length for jv_leave(). */
size_t jv_enter_key(JsonReader *v, const char *key);
size_t jv_enter_index(JsonReader *v, size_t i);
static inline void jv_leave(JsonReader *v, size_t len) { v->path[len] = 0; }

/* Fails on any key of o not in the NULL-terminated list. */
void jv_only_keys(JsonReader *v, json_object *o, const char *const *keys);

/* Typed members. A missing optional member gives the default; strings come back "" on failure. */
const char *jv_string(JsonReader *v, json_object *o, const char *key, size_t max, bool required);
int64_t jv_int(JsonReader *v, json_object *o, const char *key, int64_t min, int64_t max, int64_t def);
bool jv_bool(JsonReader *v, json_object *o, const char *key, bool def);
/* An array member (optional: NULL when absent) of at most max elements. */
json_object *jv_array(JsonReader *v, json_object *o, const char *key, size_t max, bool required);
/* An object member or array element. */
json_object *jv_object(JsonReader *v, json_object *o, const char *key, bool required);
json_object *jv_element_object(JsonReader *v, json_object *arr, size_t i);
/* A copy of s; a failed allocation marks the reader failed (the caller frees NULL harmlessly). */
char *jv_dup(JsonReader *v, const char *s);
