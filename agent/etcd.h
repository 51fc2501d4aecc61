/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * agent/etcd.h — a small client of etcd's v3 JSON API (etcd 3.4's gRPC gateway, "/v3/..."), over
 * HTTP and HTTPS, on libcurl and json-c. Used by vss-agent and `vssadmin cluster`.
 *
 * Keys and values are C strings here; the module base64-encodes them on the wire. Every function
 * returns >= 0 on success or a negative errno-style code, and keeps a message for the last failure in
 * etcd_errmsg():
 *   -EINVAL     a NULL or a bad argument (nothing sent)
 *   -ENOMEM
 *   -ECONNREFUSED / -EHOSTUNREACH / -ETIMEDOUT   no endpoint answered within the timeout
 *   -EACCES     authentication failed or permission denied (etcd auth)
 *   -EPROTO     etcd answered with something that is not its JSON, or an error JSON
 *   -ENOENT     lease not found (keepalive/revoke of an expired or unknown lease)
 * Endpoints are tried in order; a failing endpoint is skipped (fail-over), the next request starts
 * with the one that last answered. Not thread-safe: one etcd handle per thread.
 */

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct etcd etcd;

typedef struct etcd_options {
        const char *endpoints;  /* "http://127.0.0.1:2379[,https://h:2379...]", required */
        const char *cacert;     /* PEM file to verify the server (HTTPS), or NULL */
        const char *cert;       /* client certificate PEM (TLS client auth), or NULL */
        const char *key;        /* its key */
        const char *user;       /* etcd auth user (a token is fetched from /v3/auth/authenticate and */
        const char *password;   /*   fetched again when etcd says it is invalid), or NULL */
        int timeout_ms;         /* per request to one endpoint (a request that fails over may take
                                   one per endpoint); 0: 2000 */
} etcd_options;

int etcd_new(const etcd_options *o, etcd **ret); /* copies o; no network I/O yet */
etcd *etcd_free(etcd *e);                          /* accepts NULL, returns NULL */
const char *etcd_errmsg(const etcd *e);            /* never NULL */

typedef struct etcd_kv {
        char *key;
        char *value;            /* NUL-terminated; value_len excludes the NUL */
        size_t value_len;
        int64_t create_revision, mod_revision, version, lease;
} etcd_kv;

typedef struct etcd_kvs {
        etcd_kv *kvs;
        size_t n;
        int64_t revision;       /* the store's revision at the time of the answer */
} etcd_kvs;
void etcd_kvs_clear(etcd_kvs *r);                  /* frees contents, zeroes; accepts empty */

int etcd_get(etcd *e, const char *key, etcd_kvs *ret);           /* exactly key: n is 0 or 1 */
int etcd_get_prefix(etcd *e, const char *prefix, etcd_kvs *ret); /* every key starting with prefix */
int etcd_put(etcd *e, const char *key, const char *value, int64_t lease, int64_t *ret_revision);
int etcd_delete(etcd *e, const char *key, bool prefix, int64_t *ret_deleted);

/* Transactions (compare-and-swap). */
typedef enum { ETCD_CMP_VALUE, ETCD_CMP_VERSION, ETCD_CMP_CREATE_REVISION, ETCD_CMP_MOD_REVISION,
               ETCD_CMP_LEASE } etcd_cmp_target;
typedef enum { ETCD_CMP_EQUAL, ETCD_CMP_NOT_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS } etcd_cmp_result;
typedef struct etcd_cmp {
        const char *key;
        etcd_cmp_target target;
        etcd_cmp_result result;
        const char *value;      /* ETCD_CMP_VALUE */
        int64_t number;         /* the others (VERSION 0 / CREATE_REVISION 0 = key absent) */
} etcd_cmp;
typedef enum { ETCD_OP_PUT, ETCD_OP_DELETE, ETCD_OP_GET } etcd_op_type;
typedef struct etcd_op {
        etcd_op_type type;
        const char *key;
        const char *value;      /* PUT */
        int64_t lease;          /* PUT: 0 or a lease id */
        bool prefix;            /* DELETE, GET */
} etcd_op;
/* Runs then[] if every compare holds, otherwise else_[]. *ret_succeeded says which. ret_get
 * (optional) receives the kvs of every GET op of the branch taken, in order, concatenated. */
int etcd_txn(etcd *e, const etcd_cmp *cmp, size_t ncmp, const etcd_op *then, size_t nthen,
             const etcd_op *else_, size_t nelse, bool *ret_succeeded, etcd_kvs *ret_get);

/* Leases. keepalive is one round trip; *ret_ttl 0 (and -ENOENT) when the lease is gone. */
int etcd_lease_grant(etcd *e, int64_t ttl_s, int64_t *ret_id);
int etcd_lease_keepalive(etcd *e, int64_t id, int64_t *ret_ttl);
int etcd_lease_revoke(etcd *e, int64_t id);

/* Watches: a streaming POST /v3/watch on its own curl handle, driven by curl's multi interface so
 * a caller can wait on it beside its own fds. Events are delivered in revision order; when the
 * stream breaks (etcd restarted, endpoint down) the watch reconnects (fail-over) from the last
 * revision seen + 1, so no event is lost or repeated; a compacted start revision gives -ESTALE. */
typedef struct etcd_event {
        bool deleted;           /* DELETE (kv.value empty) or PUT */
        etcd_kv kv;
} etcd_event;
typedef struct etcd_watch etcd_watch;
/* Watches every key under prefix from start_revision (0: from now). The watch uses e (endpoints,
 * token, etcd_errmsg() for its failures): free it before e. */
int etcd_watch_new(etcd *e, const char *prefix, int64_t start_revision, etcd_watch **ret);
/* The same for the keys in [key, range_end). */
int etcd_watch_new_range(etcd *e, const char *key, const char *range_end, int64_t start_revision, etcd_watch **ret);
etcd_watch *etcd_watch_free(etcd_watch *w);
/* Waits up to timeout_ms (-1: forever) for events on the watch or input on one of extra[] (their
 * revents are set, as poll(2)). Returns the number of events stored in *ret_events (a malloc'd
 * array, free with etcd_events_free), 0 on timeout or when only an extra fd is ready, or a
 * negative code. While the stream is down it keeps retrying and returns 0 at the timeout;
 * etcd_watch_connected() tells whether the stream is up right now. */
int etcd_watch_next(etcd_watch *w, int timeout_ms, struct pollfd *extra, size_t nextra,
                    etcd_event **ret_events);
bool etcd_watch_connected(const etcd_watch *w);
/* The stream failed and is not up again yet (a watch still making its first stream is not down). */
bool etcd_watch_down(const etcd_watch *w);
/* The revision the watch goes on from: after the last event it handed out, or after the store's
 * revision when its first stream began; 0 while that is not known yet. A new watch started there
 * misses nothing and repeats nothing of this one's. */
int64_t etcd_watch_revision(const etcd_watch *w);
void etcd_events_free(etcd_event *ev, size_t n);
