/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Keys, transactions and leases: /v3/kv/{range,put,deleterange,txn}, /v3/lease/{grant,keepalive,revoke}. */

#include <errno.h>
#include <inttypes.h>

#include "etcd-internal.h"

int etcd_json_i64(json_object *o, const char *key, int64_t *ret) {
        json_object *m = NULL;
        if (!json_object_object_get_ex(o, key, &m) || !m) {
                *ret = 0;
                return 0;
        }
        /* The gateway writes int64 as a JSON string (proto3 JSON); a plain number is taken too. */
        if (json_object_is_type(m, json_type_int)) {
                errno = 0;
                *ret = json_object_get_int64(m);
                return errno ? -EPROTO : 0;
        }
        if (!json_object_is_type(m, json_type_string))
                return -EPROTO;
        const char *s = json_object_get_string(m);
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || *end)
                return -EPROTO;
        *ret = v;
        return 0;
}

int etcd_json_bytes(json_object *o, const char *key, char **ret, size_t *ret_len) {
        json_object *m = NULL;
        if (!json_object_object_get_ex(o, key, &m) || !m)
                m = NULL;
        else if (!json_object_is_type(m, json_type_string))
                return -EPROTO;
        int r = etcd_unb64(m ? json_object_get_string(m) : "", ret, ret_len);
        return r == -EINVAL ? -EPROTO : r;
}

void etcd_kv_clear(etcd_kv *kv) {
        free(kv->key);
        free(kv->value);
        *kv = (etcd_kv) {};
}

int etcd_parse_kv(json_object *o, etcd_kv *ret) {
        if (!json_object_is_type(o, json_type_object))
                return -EPROTO;
        etcd_kv kv = {};
        size_t klen = 0;
        int r = etcd_json_bytes(o, "key", &kv.key, &klen);
        if (r >= 0)
                r = etcd_json_bytes(o, "value", &kv.value, &kv.value_len);
        if (r >= 0)
                r = etcd_json_i64(o, "create_revision", &kv.create_revision);
        if (r >= 0)
                r = etcd_json_i64(o, "mod_revision", &kv.mod_revision);
        if (r >= 0)
                r = etcd_json_i64(o, "version", &kv.version);
        if (r >= 0)
                r = etcd_json_i64(o, "lease", &kv.lease);
        if (r >= 0 && (klen == 0 || strlen(kv.key) != klen))
                r = -EPROTO; /* keys are C strings here: a NUL inside cannot be passed back */
        if (r < 0) {
                etcd_kv_clear(&kv);
                return r;
        }
        *ret = kv;
        return 0;
}

int etcd_parse_kvs(json_object *arr, etcd_kvs *r) {
        if (!arr)
                return 0;
        if (!json_object_is_type(arr, json_type_array))
                return -EPROTO;
        size_t n = json_object_array_length(arr);
        if (n == 0)
                return 0;
        etcd_kv *kvs = realloc(r->kvs, (r->n + n) * sizeof(etcd_kv));
        if (!kvs)
                return -ENOMEM;
        r->kvs = kvs;
        for (size_t i = 0; i < n; i++) {
                int k = etcd_parse_kv(json_object_array_get_idx(arr, i), &r->kvs[r->n]);
                if (k < 0)
                        return k;
                r->n++;
        }
        return 0;
}

void etcd_kvs_clear(etcd_kvs *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                etcd_kv_clear(&r->kvs[i]);
        free(r->kvs);
        *r = (etcd_kvs) {};
}

static int add_b64(json_object *o, const char *name, const void *data, size_t len) {
        _cleanup_free_ char *b = etcd_b64(data, len);
        if (!b)
                return -ENOMEM;
        return json_object_object_add(o, name, json_object_new_string(b)) < 0 ? -ENOMEM : 0;
}

int etcd_json_add_range(json_object *o, const char *key, const char *range_end) {
        int r = add_b64(o, "key", key, strlen(key));
        return r < 0 ? r : add_b64(o, "range_end", range_end, strlen(range_end));
}

int etcd_json_add_key(json_object *o, const char *key, bool prefix) {
        size_t n = strlen(key);
        if (!prefix)
                return add_b64(o, "key", key, n);
        /* The range [prefix, prefix with its last byte below 0xff incremented); "\0" for an empty
         * or all-0xff prefix: every key from there on. */
        _cleanup_free_ char *end = strdup(key);
        if (!end)
                return -ENOMEM;
        size_t m = n;
        while (m > 0 && (unsigned char) end[m - 1] == 0xff)
                m--;
        int r = add_b64(o, "key", n ? key : "", n ? n : 1);
        if (r < 0)
                return r;
        if (m == 0)
                return add_b64(o, "range_end", "", 1);
        end[m - 1]++;
        return add_b64(o, "range_end", end, m);
}

static int add_i64(json_object *o, const char *name, int64_t v) {
        /* Written as a string, as the gateway itself does: JSON numbers lose precision past 2^53. */
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return json_object_object_add(o, name, json_object_new_string(buf)) < 0 ? -ENOMEM : 0;
}

static int header_revision(json_object *o, int64_t *ret) {
        json_object *h = NULL;
        if (!json_object_object_get_ex(o, "header", &h) || !json_object_is_type(h, json_type_object))
                return -EPROTO;
        return etcd_json_i64(h, "revision", ret);
}

static int bad_answer(etcd *e, const char *what) {
        return etcd_fail(e, -EPROTO, "etcd's answer to %s is malformed", what);
}

static int range(etcd *e, const char *key, bool prefix, etcd_kvs *ret) {
        if (!e || !key || !ret || (!prefix && !*key))
                return e ? etcd_fail(e, -EINVAL, "etcd range: no key") : -EINVAL;
        json_object *req = json_object_new_object(), *o = NULL;
        int r = req ? etcd_json_add_key(req, key, prefix) : -ENOMEM;
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        r = etcd_call(e, "/v3/kv/range", req, &o);
        if (r < 0)
                return r;
        etcd_kvs res = {};
        json_object *kvs = NULL;
        (void) json_object_object_get_ex(o, "kvs", &kvs);
        r = header_revision(o, &res.revision);
        if (r >= 0)
                r = etcd_parse_kvs(kvs, &res);
        json_object_put(o);
        if (r < 0) {
                etcd_kvs_clear(&res);
                return r == -EPROTO ? bad_answer(e, "a range") : r;
        }
        *ret = res;
        return 0;
}

int etcd_get(etcd *e, const char *key, etcd_kvs *ret) {
        return range(e, key, false, ret);
}

int etcd_get_prefix(etcd *e, const char *prefix, etcd_kvs *ret) {
        return range(e, prefix, true, ret);
}

static int put_json(json_object *o, const char *key, const char *value, int64_t lease) {
        int r = etcd_json_add_key(o, key, false);
        if (r >= 0)
                r = add_b64(o, "value", value, strlen(value));
        if (r >= 0 && lease)
                r = add_i64(o, "lease", lease);
        return r;
}

int etcd_put(etcd *e, const char *key, const char *value, int64_t lease, int64_t *ret_revision) {
        if (!e || !key || !*key || !value || lease < 0)
                return e ? etcd_fail(e, -EINVAL, "etcd put: no key or value") : -EINVAL;
        json_object *req = json_object_new_object(), *o = NULL;
        int r = req ? put_json(req, key, value, lease) : -ENOMEM;
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        r = etcd_call(e, "/v3/kv/put", req, &o);
        if (r < 0)
                return r;
        int64_t rev = 0;
        r = header_revision(o, &rev);
        json_object_put(o);
        if (r < 0)
                return bad_answer(e, "a put");
        if (ret_revision)
                *ret_revision = rev;
        return 0;
}

int etcd_delete(etcd *e, const char *key, bool prefix, int64_t *ret_deleted) {
        if (!e || !key || (!prefix && !*key))
                return e ? etcd_fail(e, -EINVAL, "etcd delete: no key") : -EINVAL;
        json_object *req = json_object_new_object(), *o = NULL;
        int r = req ? etcd_json_add_key(req, key, prefix) : -ENOMEM;
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        r = etcd_call(e, "/v3/kv/deleterange", req, &o);
        if (r < 0)
                return r;
        int64_t n = 0;
        r = etcd_json_i64(o, "deleted", &n);
        json_object_put(o);
        if (r < 0)
                return bad_answer(e, "a delete");
        if (ret_deleted)
                *ret_deleted = n;
        return 0;
}

/* etcdserverpb's enums by number (the gateway takes numbers or names). */
static const int cmp_target_pb[] = {
        [ETCD_CMP_VERSION] = 0, [ETCD_CMP_CREATE_REVISION] = 1, [ETCD_CMP_MOD_REVISION] = 2,
        [ETCD_CMP_VALUE] = 3,   [ETCD_CMP_LEASE] = 4,
};
static const int cmp_result_pb[] = {
        [ETCD_CMP_EQUAL] = 0, [ETCD_CMP_GREATER] = 1, [ETCD_CMP_LESS] = 2, [ETCD_CMP_NOT_EQUAL] = 3,
};
static const char *const cmp_field[] = {
        [ETCD_CMP_VERSION] = "version", [ETCD_CMP_CREATE_REVISION] = "create_revision",
        [ETCD_CMP_MOD_REVISION] = "mod_revision", [ETCD_CMP_LEASE] = "lease",
};

static json_object *cmp_json(const etcd_cmp *c) {
        if (!c->key || !*c->key || (unsigned) c->target > ETCD_CMP_LEASE || (unsigned) c->result > ETCD_CMP_LESS ||
            (c->target == ETCD_CMP_VALUE && !c->value))
                return NULL;
        json_object *o = json_object_new_object();
        int r = o ? etcd_json_add_key(o, c->key, false) : -ENOMEM;
        if (r >= 0 && json_object_object_add(o, "target", json_object_new_int(cmp_target_pb[c->target])) < 0)
                r = -ENOMEM;
        if (r >= 0 && json_object_object_add(o, "result", json_object_new_int(cmp_result_pb[c->result])) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = c->target == ETCD_CMP_VALUE ? add_b64(o, "value", c->value, strlen(c->value))
                                                : add_i64(o, cmp_field[c->target], c->number);
        if (r < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static json_object *op_json(const etcd_op *op) {
        static const char *const names[] = { [ETCD_OP_PUT] = "request_put", [ETCD_OP_DELETE] = "request_delete_range",
                                             [ETCD_OP_GET] = "request_range" };
        if ((unsigned) op->type > ETCD_OP_GET || !op->key || (!op->prefix && !*op->key) ||
            (op->type == ETCD_OP_PUT && (!op->value || op->prefix || op->lease < 0)))
                return NULL;
        json_object *o = json_object_new_object(), *inner = json_object_new_object();
        int r = o && inner ? 0 : -ENOMEM;
        if (r >= 0)
                r = op->type == ETCD_OP_PUT ? put_json(inner, op->key, op->value, op->lease)
                                            : etcd_json_add_key(inner, op->key, op->prefix);
        if (r >= 0 && json_object_object_add(o, names[op->type], inner) >= 0)
                return o;
        json_object_put(inner);
        json_object_put(o);
        return NULL;
}

static int add_array(json_object *req, const char *name, size_t n, const void *items, bool cmp) {
        json_object *a = json_object_new_array();
        if (!a || json_object_object_add(req, name, a) < 0) {
                json_object_put(a);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *x = cmp ? cmp_json((const etcd_cmp *) items + i) : op_json((const etcd_op *) items + i);
                if (!x || json_object_array_add(a, x) < 0) {
                        json_object_put(x);
                        return -EINVAL;
                }
        }
        return 0;
}

/* The kvs of every response_range in the branch taken, in order. */
static int txn_gets(json_object *o, etcd_kvs *ret) {
        json_object *resps = NULL;
        if (!json_object_object_get_ex(o, "responses", &resps) || !resps)
                return 0;
        if (!json_object_is_type(resps, json_type_array))
                return -EPROTO;
        for (size_t i = 0; i < json_object_array_length(resps); i++) {
                json_object *rr = NULL, *kvs = NULL;
                if (!json_object_object_get_ex(json_object_array_get_idx(resps, i), "response_range", &rr))
                        continue;
                (void) json_object_object_get_ex(rr, "kvs", &kvs);
                int r = etcd_parse_kvs(kvs, ret);
                if (r < 0)
                        return r;
        }
        return 0;
}

int etcd_txn(etcd *e, const etcd_cmp *cmp, size_t ncmp, const etcd_op *then, size_t nthen,
             const etcd_op *else_, size_t nelse, bool *ret_succeeded, etcd_kvs *ret_get) {
        if (!e || (ncmp && !cmp) || (nthen && !then) || (nelse && !else_))
                return e ? etcd_fail(e, -EINVAL, "etcd txn: bad arguments") : -EINVAL;
        json_object *req = json_object_new_object(), *o = NULL;
        int r = req ? 0 : -ENOMEM;
        if (r >= 0)
                r = add_array(req, "compare", ncmp, cmp, true);
        if (r >= 0)
                r = add_array(req, "success", nthen, then, false);
        if (r >= 0)
                r = add_array(req, "failure", nelse, else_, false);
        if (r < 0) {
                json_object_put(req);
                return r == -EINVAL ? etcd_fail(e, r, "etcd txn: a compare or an operation is incomplete") : r;
        }
        r = etcd_call(e, "/v3/kv/txn", req, &o);
        if (r < 0)
                return r;
        etcd_kvs gets = {};
        json_object *s = NULL;
        bool ok = json_object_object_get_ex(o, "succeeded", &s) && json_object_get_boolean(s);
        r = header_revision(o, &gets.revision);
        if (r >= 0 && ret_get)
                r = txn_gets(o, &gets);
        json_object_put(o);
        if (r < 0) {
                etcd_kvs_clear(&gets);
                return r == -EPROTO ? bad_answer(e, "a txn") : r;
        }
        if (ret_succeeded)
                *ret_succeeded = ok;
        if (ret_get)
                *ret_get = gets;
        return 0;
}

int etcd_lease_grant(etcd *e, int64_t ttl_s, int64_t *ret_id) {
        if (!e || ttl_s <= 0 || !ret_id)
                return e ? etcd_fail(e, -EINVAL, "etcd lease grant: bad TTL") : -EINVAL;
        json_object *req = json_object_new_object(), *o = NULL;
        int r = req ? add_i64(req, "TTL", ttl_s) : -ENOMEM;
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        r = etcd_call(e, "/v3/lease/grant", req, &o);
        if (r < 0)
                return r;
        int64_t id = 0;
        r = etcd_json_i64(o, "ID", &id);
        json_object_put(o);
        if (r < 0 || id <= 0)
                return bad_answer(e, "a lease grant");
        *ret_id = id;
        return 0;
}

int etcd_lease_keepalive(etcd *e, int64_t id, int64_t *ret_ttl) {
        if (!e || id <= 0)
                return e ? etcd_fail(e, -EINVAL, "etcd lease keepalive: bad lease id") : -EINVAL;
        json_object *req = json_object_new_object(), *o = NULL, *res = NULL;
        int r = req ? add_i64(req, "ID", id) : -ENOMEM;
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        /* A stream in gRPC; over the gateway one request in the body gives one {"result": ...}. */
        r = etcd_call(e, "/v3/lease/keepalive", req, &o);
        if (r < 0)
                return r;
        int64_t ttl = 0;
        if (!json_object_object_get_ex(o, "result", &res) || !json_object_is_type(res, json_type_object) ||
            etcd_json_i64(res, "TTL", &ttl) < 0) {
                json_object_put(o);
                return bad_answer(e, "a lease keepalive");
        }
        json_object_put(o);
        if (ret_ttl)
                *ret_ttl = ttl > 0 ? ttl : 0;
        if (ttl <= 0)
                return etcd_fail(e, -ENOENT, "etcd lease %" PRIx64 " is gone (expired or revoked)", (uint64_t) id);
        return 0;
}

int etcd_lease_revoke(etcd *e, int64_t id) {
        if (!e || id <= 0)
                return e ? etcd_fail(e, -EINVAL, "etcd lease revoke: bad lease id") : -EINVAL;
        json_object *req = json_object_new_object(), *o = NULL;
        int r = req ? add_i64(req, "ID", id) : -ENOMEM;
        if (r < 0) {
                json_object_put(req);
                return r;
        }
        /* 3.4 serves /v3/lease/revoke and the older /v3/kv/lease/revoke; the former is current. */
        r = etcd_call(e, "/v3/lease/revoke", req, &o);
        json_object_put(o);
        return r;
}
