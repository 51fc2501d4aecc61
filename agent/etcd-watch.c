/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Watches: a streaming POST /v3/watch on its own easy handle, driven by curl's multi interface.
 * The gateway writes one JSON message per line ({"result": WatchResponse} or {"error": ...}). When
 * the stream ends the watch starts a new one on the next endpoint, from the revision after the
 * last event it handed out (or after the store's revision when it was created), so nothing is
 * lost or repeated. */

#include <errno.h>
#include <inttypes.h>

#include "etcd-internal.h"
#include "lib/basic/time-util.h"
#include "lib/jsonv.h"

#define MAX_LINE ETCD_MAX_ANSWER
#define RETRY_MAX_MS 1000u

struct etcd_watch {
        etcd *e;
        char *prefix;           /* the keys watched: those under it, or [prefix, range_end) */
        char *range_end;
        int64_t next_rev;       /* where the next stream starts; 0: now */
        int64_t stream_start;   /* where the current one started: older events are repeats */
        CURLM *multi;
        CURL *curl;
        struct curl_slist *headers;
        size_t endpoint;
        bool running, connected;
        bool stream_failed;     /* its message already says why it ends */
        int fatal;              /* returned from now on (-ESTALE, -EACCES) */
        int pending;            /* returned once (a malformed stream) */
        char *line;
        size_t line_len;
        etcd_event *queue;
        size_t n_queue;
        uint64_t retry_at_ms;
        unsigned failures;
        char url[512];
        /* A silent stream is checked by a range on its endpoint: a stopped etcd (SIGSTOP, a hung
         * process) keeps the TCP connection up and the stream looks fine. */
        CURL *probe;
        struct curl_slist *probe_headers;
        bool probing;
        uint64_t last_data_ms;
        char probe_url[512];
};

static size_t discard(char *p, size_t size, size_t n, void *userdata);

void etcd_events_free(etcd_event *ev, size_t n) {
        if (!ev)
                return;
        for (size_t i = 0; i < n; i++)
                etcd_kv_clear(&ev[i].kv);
        free(ev);
}

etcd_watch *etcd_watch_free(etcd_watch *w) {
        if (!w)
                return NULL;
        if (w->curl) {
                if (w->running)
                        (void) curl_multi_remove_handle(w->multi, w->curl);
                curl_easy_cleanup(w->curl);
        }
        if (w->probe) {
                if (w->probing)
                        (void) curl_multi_remove_handle(w->multi, w->probe);
                curl_easy_cleanup(w->probe);
        }
        if (w->multi)
                curl_multi_cleanup(w->multi);
        curl_slist_free_all(w->headers);
        curl_slist_free_all(w->probe_headers);
        etcd_events_free(w->queue, w->n_queue);
        free(w->line);
        free(w->prefix);
        free(w->range_end);
        free(w);
        return NULL;
}

bool etcd_watch_connected(const etcd_watch *w) {
        return w && w->running && w->connected;
}

bool etcd_watch_down(const etcd_watch *w) {
        return w && !etcd_watch_connected(w) && w->failures > 0;
}

int64_t etcd_watch_revision(const etcd_watch *w) {
        return w ? w->next_rev : 0;
}

static int add_keys(const etcd_watch *w, json_object *o) {
        return w->range_end ? etcd_json_add_range(o, w->prefix, w->range_end) : etcd_json_add_key(o, w->prefix, true);
}

static int queue_events(etcd_watch *w, json_object *events) {
        if (!events)
                return 0;
        if (!json_object_is_type(events, json_type_array))
                return -EPROTO;
        size_t n = json_object_array_length(events);
        etcd_event *q = realloc(w->queue, (w->n_queue + n + 1) * sizeof(etcd_event));
        if (!q)
                return -ENOMEM;
        w->queue = q;
        for (size_t i = 0; i < n; i++) {
                json_object *ev = json_object_array_get_idx(events, i), *kv = NULL, *type = NULL;
                etcd_event x = {};
                if (!json_object_object_get_ex(ev, "kv", &kv))
                        return -EPROTO;
                (void) json_object_object_get_ex(ev, "type", &type);
                if (type && !json_object_is_type(type, json_type_string))
                        return -EPROTO;
                x.deleted = type && streq(json_object_get_string(type), "DELETE");
                int r = etcd_parse_kv(kv, &x.kv);
                if (r < 0)
                        return r;
                if (x.kv.mod_revision < w->stream_start) {
                        etcd_kv_clear(&x.kv); /* already handed out before the stream broke */
                        continue;
                }
                /* Events of one transaction share a revision: the next stream starts after it. */
                if (x.kv.mod_revision + 1 > w->next_rev)
                        w->next_rev = x.kv.mod_revision + 1;
                w->queue[w->n_queue++] = x;
        }
        return 0;
}

/* One message of the stream. < 0: the stream is to be dropped (the code says why). */
static int handle_message(etcd_watch *w, const char *text) {
        JsonReader v = {};
        _cleanup_(json_putp) json_object *o = jv_parse(&v, text, MAX_LINE, "etcd's watch message");
        if (!o)
                return etcd_fail(w->e, -EPROTO, "%s: %s", w->url, v.error);
        json_object *res = NULL, *err = NULL, *h = NULL, *x = NULL;
        if (json_object_object_get_ex(o, "error", &err)) {
                /* etcd ended the stream (no leader, shutting down, canceled): another one follows;
                 * only a refusal of our credentials is the caller's to know. */
                int r = etcd_error_from_json(w->e, json_object_is_type(err, json_type_object) ? err : o);
                return r == -EACCES ? r : -ECONNREFUSED;
        }
        if (!json_object_object_get_ex(o, "result", &res) || !json_object_is_type(res, json_type_object))
                return etcd_fail(w->e, -EPROTO, "%s: a watch message without a result", w->url);
        int64_t rev = 0, compact = 0;
        if (!json_object_object_get_ex(res, "header", &h) || etcd_json_i64(h, "revision", &rev) < 0 ||
            etcd_json_i64(res, "compact_revision", &compact) < 0)
                return etcd_fail(w->e, -EPROTO, "%s: a malformed watch message", w->url);
        if (json_object_object_get_ex(res, "canceled", &x) && json_object_get_boolean(x)) {
                json_object *reason = NULL;
                (void) json_object_object_get_ex(res, "cancel_reason", &reason);
                const char *why = reason ? json_object_get_string(reason) : "";
                if (compact > 0)
                        return w->fatal = etcd_fail(w->e, -ESTALE, "etcd watch of %s: revision %" PRId64
                                                    " is compacted (oldest kept: %" PRId64 ")", w->prefix,
                                                    w->next_rev, compact);
                if (strstr(why, "permission denied"))
                        return w->fatal = etcd_fail(w->e, -EACCES, "etcd watch of %s: %s", w->prefix, why);
                return etcd_fail(w->e, -ECONNREFUSED, "etcd canceled the watch of %s: %s", w->prefix, why);
        }
        if (json_object_object_get_ex(res, "created", &x) && json_object_get_boolean(x)) {
                w->connected = true;
                w->failures = 0;
                if (w->next_rev == 0)
                        w->next_rev = w->stream_start = rev + 1;
        }
        json_object *events = NULL;
        (void) json_object_object_get_ex(res, "events", &events);
        int r = queue_events(w, events);
        return r == -EPROTO ? etcd_fail(w->e, r, "%s: a malformed watch event", w->url) : r;
}

/* A message ended the stream: a malformed one or refused credentials are told to the caller once;
 * a token etcd no longer knows is fetched again for the next stream. */
static void message_failed(etcd_watch *w, int r) {
        w->stream_failed = true;
        if (r == -EACCES && strstr(etcd_errmsg(w->e), "invalid auth token")) {
                free(w->e->token);
                w->e->token = NULL;
        } else if (r == -EPROTO || r == -EACCES || r == -ENOMEM)
                w->pending = r;
}

static size_t stream_write(char *p, size_t size, size_t n, void *userdata) {
        etcd_watch *w = userdata;
        size_t len = size * n;
        w->last_data_ms = now_monotonic_msec();
        if (w->line_len + len > MAX_LINE) {
                w->pending = etcd_fail(w->e, -EPROTO, "%s: a watch message larger than %u bytes", w->url, MAX_LINE);
                return 0;
        }
        char *l = realloc(w->line, w->line_len + len + 1);
        if (!l)
                return 0;
        memcpy(l + w->line_len, p, len);
        w->line = l;
        w->line_len += len;
        l[w->line_len] = 0;
        char *nl;
        while ((nl = memchr(w->line, '\n', w->line_len))) {
                *nl = 0;
                int r = strspn(w->line, " \t\r") == (size_t) (nl - w->line) ? 0 : handle_message(w, w->line);
                size_t rest = w->line_len - (size_t) (nl + 1 - w->line);
                memmove(w->line, nl + 1, rest + 1);
                w->line_len = rest;
                if (r < 0) {
                        message_failed(w, r);
                        return 0; /* ends the transfer; a new stream follows */
                }
        }
        return len;
}

static int start_stream(etcd_watch *w) {
        etcd *e = w->e;
        int r = etcd_ensure_token(e);
        if (r < 0)
                return r;
        json_object *req = json_object_new_object(), *create = json_object_new_object();
        if (!req || !create || json_object_object_add(req, "create_request", create) < 0) {
                json_object_put(create);
                json_object_put(req);
                return -ENOMEM;
        }
        r = add_keys(w, create);
        if (r >= 0 && w->next_rev > 0) {
                char buf[32];
                snprintf(buf, sizeof(buf), "%" PRId64, w->next_rev);
                if (json_object_object_add(create, "start_revision", json_object_new_string(buf)) < 0)
                        r = -ENOMEM;
        }
        const char *body = r >= 0 ? json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN) : NULL;
        curl_slist_free_all(w->headers);
        w->headers = r >= 0 ? etcd_headers(e) : NULL;
        /* gRPC metadata through the gateway: etcd ends the stream when its member has had no leader
         * for a few election timeouts (clientv3's WithRequireLeader), so a watch on a member cut
         * off from the quorum moves to another one instead of waiting there for ever. */
        struct curl_slist *h = w->headers ? curl_slist_append(w->headers, "Grpc-Metadata-hasleader: true") : NULL;
        if (!h) {
                curl_slist_free_all(w->headers);
                w->headers = NULL;
        }
        snprintf(w->url, sizeof(w->url), "%s/v3/watch", e->endpoints[w->endpoint % e->n_endpoints]);
        if (!body || !w->headers || curl_easy_setopt(w->curl, CURLOPT_URL, w->url) != CURLE_OK ||
            curl_easy_setopt(w->curl, CURLOPT_COPYPOSTFIELDS, body) != CURLE_OK ||
            curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->headers) != CURLE_OK ||
            curl_multi_add_handle(w->multi, w->curl) != CURLM_OK) {
                json_object_put(req);
                return r < 0 ? r : -ENOMEM;
        }
        json_object_put(req);
        w->stream_start = w->next_rev;
        w->last_data_ms = now_monotonic_msec();
        w->stream_failed = false;
        w->line_len = 0;
        w->running = true;
        w->connected = false;
        return 0;
}

int etcd_watch_new_range(etcd *e, const char *key, const char *range_end, int64_t start_revision, etcd_watch **ret) {
        if (!e || !key || start_revision < 0 || !ret)
                return e ? etcd_fail(e, -EINVAL, "etcd watch: bad arguments") : -EINVAL;
        etcd_watch *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->e = e;
        w->next_rev = start_revision;
        w->endpoint = e->current;
        if (!(w->prefix = strdup(key)) || (range_end && !(w->range_end = strdup(range_end))) || !(w->multi = curl_multi_init()) || !(w->curl = curl_easy_init()) ||
            etcd_setup_curl(e, w->curl, false) < 0 ||
            curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, stream_write) != CURLE_OK ||
            curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w) != CURLE_OK || !(w->probe = curl_easy_init()) ||
            etcd_setup_curl(e, w->probe, true) < 0 ||
            curl_easy_setopt(w->probe, CURLOPT_WRITEFUNCTION, discard) != CURLE_OK) {
                etcd_watch_free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

int etcd_watch_new(etcd *e, const char *prefix, int64_t start_revision, etcd_watch **ret) {
        return etcd_watch_new_range(e, prefix, NULL, start_revision, ret);
}

static size_t discard(char *p, size_t size, size_t n, void *userdata) {
        return size * n;
}

static uint64_t idle_ms(const etcd_watch *w) {
        return w->e->timeout_ms < 500 ? 1000 : 2 * (uint64_t) w->e->timeout_ms;
}

/* The stream is down; the next one goes to the next endpoint, soon. */
static void drop_stream(etcd_watch *w) {
        (void) curl_multi_remove_handle(w->multi, w->curl);
        w->running = w->connected = false;
        w->endpoint = (w->endpoint + 1) % w->e->n_endpoints;
        unsigned delay = 50u << (w->failures < 5 ? w->failures : 5);
        w->failures++;
        w->retry_at_ms = now_monotonic_msec() + (delay < RETRY_MAX_MS ? delay : RETRY_MAX_MS);
}

static void start_probe(etcd_watch *w) {
        json_object *req = json_object_new_object();
        const char *body = NULL;
        if (req && add_keys(w, req) >= 0 &&
            json_object_object_add(req, "limit", json_object_new_string("1")) >= 0 &&
            json_object_object_add(req, "keys_only", json_object_new_boolean(true)) >= 0 &&
            /* A local read (no raft round): it asks only whether the member answers; losing the
             * quorum is hasleader's to find. */
            json_object_object_add(req, "serializable", json_object_new_boolean(true)) >= 0)
                body = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
        curl_slist_free_all(w->probe_headers);
        w->probe_headers = body ? etcd_headers(w->e) : NULL;
        snprintf(w->probe_url, sizeof(w->probe_url), "%s/v3/kv/range", w->e->endpoints[w->endpoint]);
        if (w->probe_headers && curl_easy_setopt(w->probe, CURLOPT_URL, w->probe_url) == CURLE_OK &&
            curl_easy_setopt(w->probe, CURLOPT_COPYPOSTFIELDS, body) == CURLE_OK &&
            curl_easy_setopt(w->probe, CURLOPT_HTTPHEADER, w->probe_headers) == CURLE_OK &&
            curl_multi_add_handle(w->multi, w->probe) == CURLM_OK)
                w->probing = true;
        json_object_put(req);
}

static void probe_done(etcd_watch *w, CURLcode cc) {
        long status = 0;
        (void) curl_easy_getinfo(w->probe, CURLINFO_RESPONSE_CODE, &status);
        (void) curl_multi_remove_handle(w->multi, w->probe);
        w->probing = false;
        if (!w->running)
                return;
        if (cc == CURLE_OK && status == 200) {
                w->last_data_ms = now_monotonic_msec();
                return;
        }
        int r = cc != CURLE_OK ? etcd_curl_error(w->e, w->probe, cc, w->probe_url)
                               : etcd_fail(w->e, -ETIMEDOUT, "%s: HTTP %ld", w->probe_url, status);
        char why[sizeof(w->e->errmsg)];
        memcpy(why, w->e->errmsg, sizeof(why));
        (void) etcd_fail(w->e, r, "etcd watch of %s: silent for %" PRIu64 " ms, and its member does not answer (%s)",
                         w->prefix, idle_ms(w), why);
        drop_stream(w);
}

static void collect_done(etcd_watch *w) {
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(w->multi, &left))) {
                if (m->msg != CURLMSG_DONE)
                        continue;
                CURLcode cc = m->data.result;
                if (m->easy_handle == w->probe) {
                        probe_done(w, cc);
                        continue;
                }
                /* An answer that is no stream (an error JSON before the stream began) has no '\n'. */
                if (!w->stream_failed && w->line_len > 0 && strspn(w->line, " \t\r") != w->line_len) {
                        int r = handle_message(w, w->line);
                        if (r < 0)
                                message_failed(w, r);
                }
                w->line_len = 0;
                if (w->stream_failed)
                        ; /* handle_message() said why */
                else if (cc != CURLE_OK)
                        (void) etcd_curl_error(w->e, w->curl, cc, w->url);
                else
                        (void) etcd_fail(w->e, -ECONNREFUSED, "%s: the watch stream ended", w->url);
                drop_stream(w);
        }
}

static int take_events(etcd_watch *w, etcd_event **ret) {
        int n = (int) w->n_queue;
        *ret = TAKE_PTR(w->queue);
        w->n_queue = 0;
        return n;
}

int etcd_watch_next(etcd_watch *w, int timeout_ms, struct pollfd *extra, size_t nextra, etcd_event **ret_events) {
        if (!w || !ret_events || (nextra && !extra) || nextra > 64)
                return -EINVAL;
        *ret_events = NULL;
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_monotonic_msec() + (uint64_t) timeout_ms;
        for (size_t i = 0; i < nextra; i++)
                extra[i].revents = 0;
        for (;;) {
                int still = 0, r;
                if (w->n_queue)
                        return take_events(w, ret_events);
                if (w->fatal)
                        return w->fatal;
                if (w->pending) {
                        r = w->pending;
                        w->pending = 0;
                        return r;
                }
                uint64_t now = now_monotonic_msec();
                if (!w->running && now >= w->retry_at_ms) {
                        r = start_stream(w);
                        if (r == -ENOMEM || (r == -EACCES && !strstr(etcd_errmsg(w->e), "invalid auth token")))
                                return r;
                        if (r < 0) { /* no endpoint for the token right now: later */
                                w->retry_at_ms = now + RETRY_MAX_MS;
                                w->failures++;
                        }
                }
                if (w->running && !w->probing && now >= w->last_data_ms + idle_ms(w))
                        start_probe(w);
                if (curl_multi_perform(w->multi, &still) != CURLM_OK)
                        return -ENOMEM;
                collect_done(w);
                if (w->n_queue || w->fatal || w->pending)
                        continue;
                now = now_monotonic_msec();
                if (now >= deadline)
                        return 0;
                uint64_t wait = deadline - now, due = !w->running ? w->retry_at_ms
                                                  : !w->probing  ? w->last_data_ms + idle_ms(w) : UINT64_MAX;
                if (due < now + wait)
                        wait = due > now ? due - now : 0;
                struct curl_waitfd fds[64];
                for (size_t i = 0; i < nextra; i++)
                        fds[i] = (struct curl_waitfd) { .fd = extra[i].fd, .events = extra[i].events & (POLLIN | POLLPRI | POLLOUT) };
                if (curl_multi_poll(w->multi, fds, (unsigned) nextra, (int) (wait > INT32_MAX ? INT32_MAX : wait), NULL) != CURLM_OK)
                        return -ENOMEM;
                /* curl reports only IN, PRI and OUT of the caller's fds; poll(2) tells HUP and ERR too. */
                if (nextra && poll(extra, nextra, 0) > 0) {
                        if (curl_multi_perform(w->multi, &still) != CURLM_OK)
                                return -ENOMEM;
                        collect_done(w);
                        return w->n_queue ? take_events(w, ret_events) : 0;
                }
        }
}
