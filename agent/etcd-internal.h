/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What agent/etcd.c, etcd-kv.c and etcd-watch.c share: the handle, the request path with fail-over
 * and auth, base64 and the readers of etcd's JSON (int64 as strings, bytes as base64). */

#include <curl/curl.h>
#include <json-c/json.h>

#include "etcd.h"
#include "lib/basic/macro.h"

/* Largest answer read (a prefix range of every host's status); larger ones fail with -EPROTO. */
#define ETCD_MAX_ANSWER (64u << 20)

struct etcd {
        char **endpoints;       /* "http://h:p", no trailing '/' */
        size_t n_endpoints, current;
        char *cacert, *cert, *key, *user, *password;
        int timeout_ms;
        char *token;            /* from /v3/auth/authenticate, or NULL */
        bool auth_off;          /* a user is set but etcd has auth disabled */
        CURL *curl;             /* reused: one connection per endpoint stays open */
        bool curl_global;       /* curl_global_init() done: etcd_free() undoes it */
        char errmsg[512];
};

static inline void json_putp(json_object **o) { json_object_put(*o); }

int etcd_fail(etcd *e, int r, const char *fmt, ...) _printf_(3, 4);

/* TLS files, timeouts, keepalive and no proxy on a new easy handle; unary: a whole-request timeout. */
int etcd_setup_curl(etcd *e, CURL *c, bool unary);
/* The header list for a request: JSON, plus the token when there is one. */
struct curl_slist *etcd_headers(etcd *e);
/* Fetches a token when a user is set and none is held. */
int etcd_ensure_token(etcd *e);
/* From a transport failure to the header's codes, with a message naming the URL. */
int etcd_curl_error(etcd *e, CURL *c, CURLcode cc, const char *url);
/* From an etcd error JSON ({"error","message","code"} or the stream's {"grpc_code",...}) to a code. */
int etcd_error_from_json(etcd *e, json_object *err);

/* POSTs req (consumed) to path on the current endpoint, failing over in order, re-authenticating
 * once when the token was refused. *ret: the answer object. */
int etcd_call(etcd *e, const char *path, json_object *req, json_object **ret);

/* base64 (RFC 4648, padded). etcd_b64 returns NULL only when out of memory. */
char *etcd_b64(const void *data, size_t len);
int etcd_unb64(const char *s, char **ret, size_t *ret_len); /* NUL-terminated; -EINVAL if not base64 */

/* Readers of etcd's JSON; a missing member is 0 / "" (proto3 omits defaults). -EPROTO if malformed. */
int etcd_json_i64(json_object *o, const char *key, int64_t *ret);
int etcd_json_bytes(json_object *o, const char *key, char **ret, size_t *ret_len);
int etcd_parse_kv(json_object *o, etcd_kv *ret);
int etcd_parse_kvs(json_object *arr, etcd_kvs *r); /* appends */
void etcd_kv_clear(etcd_kv *kv);

/* The JSON of a key and the end of its prefix range ("range_end"): adds "key" (and "range_end"). */
int etcd_json_add_key(json_object *o, const char *key, bool prefix);
/* "key" and "range_end": the keys in [key, range_end). */
int etcd_json_add_range(json_object *o, const char *key, const char *range_end);
