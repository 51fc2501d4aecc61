/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The etcd handle: options, the request path (fail-over, auth token, error mapping), base64. */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <sys/socket.h>

#include "etcd-internal.h"
#include "lib/jsonv.h"

int etcd_fail(etcd *e, int r, const char *fmt, ...) {
        if (e) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->errmsg, sizeof(e->errmsg), fmt, ap);
                va_end(ap);
        }
        return r;
}

const char *etcd_errmsg(const etcd *e) {
        return e && e->errmsg[0] ? e->errmsg : "no error";
}

static int split_endpoints(etcd *e, const char *list) {
        _cleanup_free_ char *copy = strdup(list);
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                size_t n = strlen(t);
                while (n > 0 && t[n - 1] == '/')
                        n--;
                if (strncmp(t, "http://", 7) != 0 && strncmp(t, "https://", 8) != 0)
                        return etcd_fail(e, -EINVAL, "etcd endpoint \"%s\": expected http://HOST:PORT or https://HOST:PORT", t);
                if (n <= strlen("https://") - (t[4] == ':'))
                        return etcd_fail(e, -EINVAL, "etcd endpoint \"%s\" has no host", t);
                char **a = realloc(e->endpoints, (e->n_endpoints + 1) * sizeof(char *));
                if (!a)
                        return -ENOMEM;
                e->endpoints = a;
                if (!(a[e->n_endpoints] = strndup(t, n)))
                        return -ENOMEM;
                e->n_endpoints++;
        }
        if (e->n_endpoints == 0)
                return etcd_fail(e, -EINVAL, "no etcd endpoint given");
        return 0;
}

static int dup_opt(const char *s, char **ret) {
        if (!s)
                return 0;
        return (*ret = strdup(s)) ? 0 : -ENOMEM;
}

int etcd_new(const etcd_options *o, etcd **ret) {
        if (!o || !ret || !o->endpoints || o->timeout_ms < 0)
                return -EINVAL;
        if (!o->user != !o->password || !o->cert != !o->key)
                return -EINVAL;
        etcd *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->timeout_ms = o->timeout_ms ? o->timeout_ms : 2000;
        int r = split_endpoints(e, o->endpoints);
        if (r >= 0)
                r = dup_opt(o->cacert, &e->cacert);
        if (r >= 0)
                r = dup_opt(o->cert, &e->cert);
        if (r >= 0)
                r = dup_opt(o->key, &e->key);
        if (r >= 0)
                r = dup_opt(o->user, &e->user);
        if (r >= 0)
                r = dup_opt(o->password, &e->password);
        /* Counted by libcurl: each call is undone by one curl_global_cleanup() in etcd_free(). */
        if (r >= 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                r = -ENOMEM;
        else if (r >= 0)
                e->curl_global = true;
        if (r >= 0 && !(e->curl = curl_easy_init()))
                r = -ENOMEM;
        if (r >= 0)
                r = etcd_setup_curl(e, e->curl, true);
        if (r < 0) {
                etcd_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

etcd *etcd_free(etcd *e) {
        if (!e)
                return NULL;
        bool global = e->curl_global;
        if (e->curl)
                curl_easy_cleanup(e->curl);
        for (size_t i = 0; i < e->n_endpoints; i++)
                free(e->endpoints[i]);
        free(e->endpoints);
        free(e->cacert);
        free(e->cert);
        free(e->key);
        free(e->user);
        if (e->password)
                explicit_bzero(e->password, strlen(e->password));
        free(e->password);
        free(e->token);
        free(e);
        if (global)
                curl_global_cleanup();
        return NULL;
}

/* A dead peer (link cut, host gone) on a quiet connection: keepalive probes every second after a
 * short idle time, and the kernel gives up once they go unanswered for the timeout. */
static int sockopt_cb(void *userdata, curl_socket_t fd, curlsocktype purpose) {
        const etcd *e = userdata;
        unsigned t = (unsigned) e->timeout_ms;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &t, sizeof(t));
        return CURL_SOCKOPT_OK;
}

int etcd_setup_curl(etcd *e, CURL *c, bool unary) {
        long idle = e->timeout_ms >= 2000 ? e->timeout_ms / 1000 : 1;
        bool ok = curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                  /* etcd is reached directly, never through an http_proxy of the environment. */
                  curl_easy_setopt(c, CURLOPT_PROXY, "") == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) e->timeout_ms) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, unary ? (long) e->timeout_ms : 0L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, idle) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 1L) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_SOCKOPTFUNCTION, sockopt_cb) == CURLE_OK &&
                  curl_easy_setopt(c, CURLOPT_SOCKOPTDATA, e) == CURLE_OK;
        if (ok && e->cacert)
                ok = curl_easy_setopt(c, CURLOPT_CAINFO, e->cacert) == CURLE_OK;
        if (ok && e->cert)
                ok = curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert) == CURLE_OK &&
                     curl_easy_setopt(c, CURLOPT_SSLKEY, e->key) == CURLE_OK;
        return ok ? 0 : etcd_fail(e, -ENOMEM, "cannot set up libcurl");
}

struct curl_slist *etcd_headers(etcd *e) {
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        if (h && e->token) {
                _cleanup_free_ char *line = NULL;
                if (asprintf(&line, "Authorization: %s", e->token) < 0) {
                        curl_slist_free_all(h);
                        return NULL;
                }
                struct curl_slist *h2 = curl_slist_append(h, line);
                if (!h2) {
                        curl_slist_free_all(h);
                        return NULL;
                }
                h = h2;
        }
        return h;
}

int etcd_curl_error(etcd *e, CURL *c, CURLcode cc, const char *url) {
        long os_errno = 0;
        (void) curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
        int r;
        if (cc == CURLE_OPERATION_TIMEDOUT)
                return etcd_fail(e, -ETIMEDOUT, "%s: no answer within %d ms", url, e->timeout_ms);
        if (cc == CURLE_OUT_OF_MEMORY)
                return etcd_fail(e, -ENOMEM, "%s: out of memory", url);
        if (os_errno == EHOSTUNREACH || os_errno == ENETUNREACH)
                r = -EHOSTUNREACH;
        else if (os_errno == ETIMEDOUT)
                r = -ETIMEDOUT;
        else
                r = -ECONNREFUSED; /* refused, reset, TLS handshake failed: nothing usable there */
        return etcd_fail(e, r, "%s: %s", url, curl_easy_strerror(cc));
}

typedef struct Buffer {
        char *data;
        size_t size;
        bool too_large;
} Buffer;

static size_t buffer_write(char *p, size_t size, size_t n, void *userdata) {
        Buffer *b = userdata;
        size_t len = size * n;
        if (b->size + len > ETCD_MAX_ANSWER) {
                b->too_large = true;
                return 0;
        }
        char *d = realloc(b->data, b->size + len + 1);
        if (!d)
                return 0;
        memcpy(d + b->size, p, len);
        b->size += len;
        d[b->size] = 0;
        b->data = d;
        return len;
}

int etcd_error_from_json(etcd *e, json_object *err) {
        json_object *m = NULL, *c = NULL;
        if (!json_object_object_get_ex(err, "message", &m))
                (void) json_object_object_get_ex(err, "error", &m);
        if (!json_object_object_get_ex(err, "code", &c))
                (void) json_object_object_get_ex(err, "grpc_code", &c);
        const char *msg = json_object_is_type(m, json_type_string) ? json_object_get_string(m) : "(no message)";
        int code = json_object_is_type(c, json_type_int) ? json_object_get_int(c) : -1;
        int r;
        /* gRPC codes as etcd's rpctypes use them. */
        if (code == 7 || code == 16 || strstr(msg, "authentication failed") || strstr(msg, "user name is empty"))
                r = -EACCES;
        else if (code == 5 && strstr(msg, "lease not found"))
                r = -ENOENT;
        else if (code == 14 || code == 4)
                r = -ETIMEDOUT; /* no leader, request timed out: another member may do better */
        else
                r = -EPROTO;
        return etcd_fail(e, r, "etcd: %s (code %d)", msg, code);
}

/* One POST to one endpoint. > 0: the endpoint failed (transport, garbage, unavailable): try the
 * next one; the code is in *ret_code. 0: *ret is etcd's answer. < 0: a final error. */
static int post_once(etcd *e, const char *endpoint, const char *path, const char *body, json_object **ret,
                     int *ret_code) {
        _cleanup_free_ char *url = NULL;
        if (asprintf(&url, "%s%s", endpoint, path) < 0)
                return -ENOMEM;
        struct curl_slist *h = etcd_headers(e);
        if (!h)
                return -ENOMEM;
        Buffer b = {};
        CURL *c = e->curl;
        CURLcode cc = CURLE_OK;
        if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buffer_write) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &b) != CURLE_OK)
                cc = CURLE_OUT_OF_MEMORY;
        else
                cc = curl_easy_perform(c);
        (void) curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        curl_slist_free_all(h);
        _cleanup_free_ char *text = b.data;
        if (b.too_large) {
                *ret_code = etcd_fail(e, -EPROTO, "%s: answer larger than %u bytes", url, ETCD_MAX_ANSWER);
                return 1;
        }
        if (cc != CURLE_OK) {
                *ret_code = etcd_curl_error(e, c, cc, url);
                return *ret_code == -ENOMEM ? -ENOMEM : 1;
        }
        long status = 0;
        (void) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        JsonReader v = {};
        json_object *o = jv_parse(&v, text ? text : "", ETCD_MAX_ANSWER, "etcd's answer");
        if (!o) {
                *ret_code = etcd_fail(e, -EPROTO, "%s: HTTP %ld, not etcd's JSON: %s", url, status, v.error);
                return 1;
        }
        json_object *err = NULL;
        if (status != 200 || json_object_object_get_ex(o, "error", &err)) {
                int r = etcd_error_from_json(e, o);
                json_object_put(o);
                if (r == -ETIMEDOUT) {
                        *ret_code = r;
                        return 1;
                }
                return r;
        }
        *ret = o;
        return 0;
}

static int authenticate(etcd *e) {
        _cleanup_(json_putp) json_object *req = json_object_new_object();
        if (!req || json_object_object_add(req, "name", json_object_new_string(e->user)) < 0 ||
            json_object_object_add(req, "password", json_object_new_string(e->password)) < 0)
                return -ENOMEM;
        const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        int code = -ECONNREFUSED;
        for (size_t k = 0; k < e->n_endpoints; k++) {
                size_t i = (e->current + k) % e->n_endpoints;
                json_object *o = NULL;
                int r = post_once(e, e->endpoints[i], "/v3/auth/authenticate", body, &o, &code);
                if (r > 0)
                        continue;
                /* As clientv3 does: a user given to an etcd without auth is no error. Asked again
                 * when etcd later wants a user. */
                if (r == -EPROTO && strstr(e->errmsg, "authentication is not enabled")) {
                        e->auth_off = true;
                        return 0;
                }
                if (r < 0)
                        return r;
                json_object *t = NULL;
                if (!json_object_object_get_ex(o, "token", &t) || !json_object_is_type(t, json_type_string)) {
                        json_object_put(o);
                        return etcd_fail(e, -EPROTO, "%s/v3/auth/authenticate: no token in the answer", e->endpoints[i]);
                }
                free(e->token);
                e->token = strdup(json_object_get_string(t));
                json_object_put(o);
                e->current = i;
                return e->token ? 0 : -ENOMEM;
        }
        return code;
}

int etcd_ensure_token(etcd *e) {
        return e->user && !e->token && !e->auth_off ? authenticate(e) : 0;
}

int etcd_call(etcd *e, const char *path, json_object *req, json_object **ret) {
        if (!req)
                return -ENOMEM;
        const char *body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        int r = body ? 0 : -ENOMEM, code = -ECONNREFUSED, worst = -ECONNREFUSED;
        char worstmsg[sizeof(e->errmsg)] = "";
        bool reauthenticated = false;
        for (size_t k = 0; r >= 0 && k < e->n_endpoints; k++) {
                r = etcd_ensure_token(e);
                if (r < 0)
                        break;
                size_t i = (e->current + k) % e->n_endpoints;
                r = post_once(e, e->endpoints[i], path, body, ret, &code);
                if (r == 0) {
                        e->current = i;
                        break;
                }
                /* An expired or revoked token (etcd restarted, simple tokens live 5 minutes), or auth
                 * enabled since we looked: authenticate once more. */
                if (r == -EACCES && e->user && !reauthenticated &&
                    (strstr(e->errmsg, "invalid auth token") || strstr(e->errmsg, "user name is empty"))) {
                        e->auth_off = false;
                        reauthenticated = true;
                        free(e->token);
                        e->token = NULL;
                        k--;
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                r = 0;
                /* Report the most telling failure: an endpoint that answered late or wrongly says
                 * more than one that was down. */
                if (worst == -ECONNREFUSED || code != -ECONNREFUSED) {
                        worst = code;
                        memcpy(worstmsg, e->errmsg, sizeof(worstmsg));
                }
                if (k + 1 == e->n_endpoints) {
                        r = worst;
                        memcpy(e->errmsg, worstmsg, sizeof(worstmsg));
                }
        }
        json_object_put(req);
        return r;
}

char *etcd_b64(const void *data, size_t len) {
        if (len > (SIZE_MAX / 4 - 2) * 3 || len > INT32_MAX / 2)
                return NULL;
        char *out = malloc((len + 2) / 3 * 4 + 1);
        if (out)
                (void) EVP_EncodeBlock((unsigned char *) out, data, (int) len);
        return out;
}

int etcd_unb64(const char *s, char **ret, size_t *ret_len) {
        size_t n = strlen(s);
        /* EVP_DecodeBlock skips blanks and decodes padding as zero bytes: accept only the strict form. */
        if (n % 4 != 0 || n > INT32_MAX || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != n)
                return -EINVAL;
        size_t pad = n >= 1 && s[n - 1] == '=' ? (n >= 2 && s[n - 2] == '=' ? 2 : 1) : 0;
        if (memchr(s, '=', n - pad))
                return -EINVAL;
        unsigned char *out = malloc(n / 4 * 3 + 1);
        if (!out)
                return -ENOMEM;
        int m = n ? EVP_DecodeBlock(out, (const unsigned char *) s, (int) n) : 0;
        if (m < 0 || (size_t) m < pad) {
                free(out);
                return -EINVAL;
        }
        out[m - pad] = 0;
        *ret_len = (size_t) m - pad;
        *ret = (char *) out;
        return 0;
}
