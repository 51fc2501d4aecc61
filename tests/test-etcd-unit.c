/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The parts of agent/etcd that need no etcd: base64, etcd's JSON (int64 as strings, key ranges,
 * kvs), option checks. */

#include <errno.h>

#include "agent/etcd-internal.h"
#include "tests/check.h"

int test_failures;

static void test_base64(void) {
        static const char *const vectors[][2] = { /* RFC 4648, section 10 */
                { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
                { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
        };
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                char *b = etcd_b64(vectors[i][0], strlen(vectors[i][0])), *d = NULL;
                size_t n = 99;
                CHECK_STR(b, vectors[i][1]);
                CHECK(etcd_unb64(vectors[i][1], &d, &n) == 0);
                CHECK(n == strlen(vectors[i][0]) && d && memcmp(d, vectors[i][0], n) == 0 && d[n] == 0);
                free(b);
                free(d);
        }
        /* Every byte value and length, there and back. */
        unsigned char bytes[300];
        for (size_t i = 0; i < sizeof(bytes); i++)
                bytes[i] = (unsigned char) (i * 7 + 3);
        for (size_t len = 0; len <= sizeof(bytes); len += 1 + len / 8) {
                char *b = etcd_b64(bytes, len), *d = NULL;
                size_t n = 0;
                CHECK(b && strlen(b) == (len + 2) / 3 * 4);
                CHECK(b && etcd_unb64(b, &d, &n) == 0 && n == len && memcmp(d, bytes, len) == 0);
                free(b);
                free(d);
        }
        static const char *const bad[] = { "Zg=", "Z===", "Zm9v\n", "Zm=v", "@@@@", "Zg==Zg==", " Zm9v", "Zm9", "=" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *d = NULL;
                size_t n = 0;
                int r = etcd_unb64(bad[i], &d, &n);
                if (r != -EINVAL)
                        fprintf(stderr, "accepted bad base64 \"%s\"\n", bad[i]);
                CHECK(r == -EINVAL && !d);
        }
}

static int64_t i64_of(const char *json, int *ret) {
        json_object *o = json_tokener_parse(json);
        int64_t v = -1;
        *ret = etcd_json_i64(o, "n", &v);
        json_object_put(o);
        return v;
}

static void test_json(void) {
        int r;
        CHECK(i64_of("{\"n\": \"123\"}", &r) == 123 && r == 0);
        CHECK(i64_of("{\"n\": \"-5\"}", &r) == -5 && r == 0);
        CHECK(i64_of("{\"n\": 42}", &r) == 42 && r == 0);
        CHECK(i64_of("{\"n\": \"9223372036854775807\"}", &r) == INT64_MAX && r == 0);
        CHECK(i64_of("{}", &r) == 0 && r == 0); /* proto3 leaves zeros out */
        (void) i64_of("{\"n\": \"9223372036854775808\"}", &r);
        CHECK(r == -EPROTO);
        (void) i64_of("{\"n\": \"12abc\"}", &r);
        CHECK(r == -EPROTO);
        (void) i64_of("{\"n\": \"\"}", &r);
        CHECK(r == -EPROTO);
        (void) i64_of("{\"n\": true}", &r);
        CHECK(r == -EPROTO);
        (void) i64_of("{\"n\": 1.5}", &r);
        CHECK(r == -EPROTO);

        /* Prefix ranges. */
        static const char *const ranges[][3] = {
                { "/a/", "L2Ev", "L2Ew" },   /* "/a/" .. "/a0" */
                { "", "AA==", "AA==" },      /* every key */
                { "\xff", "/w==", "AA==" },  /* nothing above: to the end */
                { "a\xff", "Yf8=", "Yg==" }, /* "a\xff" .. "b" */
        };
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++) {
                json_object *o = json_object_new_object(), *k = NULL, *e = NULL;
                CHECK(etcd_json_add_key(o, ranges[i][0], true) == 0);
                CHECK(json_object_object_get_ex(o, "key", &k) && json_object_object_get_ex(o, "range_end", &e));
                CHECK_STR(json_object_get_string(k), ranges[i][1]);
                CHECK_STR(json_object_get_string(e), ranges[i][2]);
                json_object_put(o);
        }

        /* kvs: bytes decoded, numbers read, a key with a NUL or no key refused. */
        json_object *o = json_tokener_parse("{\"key\": \"Zm9v\", \"value\": \"YmFy\", \"create_revision\": \"2\","
                                            " \"mod_revision\": \"3\", \"version\": \"2\", \"lease\": \"77\"}");
        etcd_kv kv = {};
        CHECK(etcd_parse_kv(o, &kv) == 0);
        CHECK_STR(kv.key, "foo");
        CHECK_STR(kv.value, "bar");
        CHECK(kv.value_len == 3 && kv.create_revision == 2 && kv.mod_revision == 3 && kv.version == 2 && kv.lease == 77);
        etcd_kv_clear(&kv);
        json_object_put(o);
        static const char *const badkv[] = { "{\"value\": \"YmFy\"}", "{\"key\": \"Zm8AbQ==\"}", "{\"key\": 5}",
                                             "{\"key\": \"Zm9v\", \"version\": \"x\"}", "[]" };
        for (size_t i = 0; i < ELEMENTSOF(badkv); i++) {
                o = json_tokener_parse(badkv[i]);
                CHECK(etcd_parse_kv(o, &kv) == -EPROTO);
                CHECK(!kv.key);
                json_object_put(o);
        }
}

static void test_options(void) {
        etcd *e = NULL;
        static const char *const bad[] = { "", ",", "ftp://h:1", "http://", "https://", "127.0.0.1:2379",
                                           "http://h:1,h:2" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                etcd_options o = { .endpoints = bad[i] };
                CHECK(etcd_new(&o, &e) == -EINVAL && !e);
        }
        etcd_options o = { .endpoints = NULL };
        CHECK(etcd_new(&o, &e) == -EINVAL);
        o = (etcd_options) { .endpoints = "http://h:1", .user = "u" };
        CHECK(etcd_new(&o, &e) == -EINVAL);
        o = (etcd_options) { .endpoints = "http://h:1", .cert = "c" };
        CHECK(etcd_new(&o, &e) == -EINVAL);
        o = (etcd_options) { .endpoints = "http://h:1", .timeout_ms = -1 };
        CHECK(etcd_new(&o, &e) == -EINVAL);
        o = (etcd_options) { .endpoints = "http://a:1/,https://b:2" };
        CHECK(etcd_new(&o, &e) == 0);
        CHECK(e && e->n_endpoints == 2 && streq(e->endpoints[0], "http://a:1") && e->timeout_ms == 2000);
        CHECK_STR(etcd_errmsg(e), "no error");
        CHECK_STR(etcd_errmsg(NULL), "no error");
        etcd_kvs r = {};
        CHECK(etcd_get(e, "", &r) == -EINVAL);
        CHECK(strstr(etcd_errmsg(e), "no key"));
        etcd_kvs_clear(&r);
        etcd_kvs_clear(NULL);
        CHECK(etcd_free(e) == NULL);
        CHECK(etcd_free(NULL) == NULL);
        etcd_events_free(NULL, 0);
        CHECK(etcd_watch_free(NULL) == NULL);
        CHECK(!etcd_watch_connected(NULL));
}

int main(void) {
        test_base64();
        test_json();
        test_options();
        return test_failures ? 1 : 0;
}
