/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent/etcd.h against a real etcd (tests/etcd-harness.c): keys, transactions, leases, watches
 * (also across a restart), HTTPS with client certificates, auth, fail-over, timeouts and
 * malformed answers. Skips (77) where etcd is not installed. */

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/etcd.h"
#include "lib/basic/macro.h"
#include "tests/check.h"
#include "tests/etcd-harness.h"

int test_failures;

static EtcdHarness *harness(size_t n, bool tls) {
        EtcdHarness *h = etcd_harness_new(n, tls);
        if (!h) {
                fprintf(stderr, "cannot start etcd\n");
                exit(1);
        }
        return h;
}

static etcd *client(const char *endpoints, int timeout_ms) {
        etcd *e = NULL;
        etcd_options o = { .endpoints = endpoints, .timeout_ms = timeout_ms };
        CHECK(etcd_new(&o, &e) == 0);
        if (!e)
                exit(1);
        return e;
}

static void test_kv(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 0);
        etcd_kvs r = {};
        int64_t rev = 0, rev2 = 0, n = -1;

        CHECK(etcd_get(e, "/t/a", &r) == 0);
        CHECK(r.n == 0 && r.revision >= 1);
        etcd_kvs_clear(&r);
        CHECK(etcd_put(e, "/t/a", "one", 0, &rev) == 0);
        CHECK(etcd_put(e, "/t/b", "two", 0, &rev2) == 0);
        CHECK(rev2 == rev + 1);
        CHECK(etcd_put(e, "/t/a", "", 0, NULL) == 0); /* empty values are values */
        CHECK(etcd_put(e, "/t/a", "uno \xc3\xa9 \"{}\"\n", 0, NULL) == 0);
        CHECK(etcd_put(e, "/tz", "outside", 0, NULL) == 0);
        CHECK(etcd_get(e, "/t/a", &r) == 0);
        CHECK(r.n == 1);
        if (r.n == 1) {
                CHECK_STR(r.kvs[0].key, "/t/a");
                CHECK_STR(r.kvs[0].value, "uno \xc3\xa9 \"{}\"\n");
                CHECK(r.kvs[0].value_len == strlen("uno \xc3\xa9 \"{}\"\n"));
                CHECK(r.kvs[0].version == 3 && r.kvs[0].create_revision == rev && r.kvs[0].lease == 0);
                CHECK(r.kvs[0].mod_revision == r.revision - 1);
        }
        etcd_kvs_clear(&r);
        CHECK(etcd_get_prefix(e, "/t/", &r) == 0);
        CHECK(r.n == 2);
        if (r.n == 2) {
                CHECK_STR(r.kvs[0].key, "/t/a");
                CHECK_STR(r.kvs[1].key, "/t/b");
                CHECK_STR(r.kvs[1].value, "two");
        }
        etcd_kvs_clear(&r);
        CHECK(etcd_get_prefix(e, "", &r) == 0); /* everything */
        CHECK(r.n == 3);
        etcd_kvs_clear(&r);
        CHECK(etcd_delete(e, "/t/nothing", false, &n) == 0 && n == 0);
        CHECK(etcd_delete(e, "/t/", true, &n) == 0 && n == 2);
        CHECK(etcd_get_prefix(e, "/t/", &r) == 0 && r.n == 0);
        etcd_kvs_clear(&r);
        CHECK(etcd_get(e, "/tz", &r) == 0 && r.n == 1);
        etcd_kvs_clear(&r);

        /* Bad arguments send nothing. */
        CHECK(etcd_get(e, "", &r) == -EINVAL);
        CHECK(etcd_put(e, "", "x", 0, NULL) == -EINVAL);
        CHECK(etcd_put(e, "/k", NULL, 0, NULL) == -EINVAL);
        CHECK(etcd_delete(e, "", false, NULL) == -EINVAL);
        CHECK(etcd_get(NULL, "/k", &r) == -EINVAL);
        /* A put on a lease that does not exist. */
        CHECK(etcd_put(e, "/k", "v", 12345, NULL) == -ENOENT);
        CHECK(strstr(etcd_errmsg(e), "lease not found"));
        etcd_free(e);
        etcd_harness_free(h);
}

static void test_txn(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 0);
        bool ok = false;
        etcd_kvs got = {};

        /* Create only if absent (version 0 and create_revision 0 both mean absent). */
        etcd_cmp absent = { .key = "/d", .target = ETCD_CMP_VERSION, .result = ETCD_CMP_EQUAL, .number = 0 };
        etcd_op put = { .type = ETCD_OP_PUT, .key = "/d", .value = "snapshot" };
        etcd_op get = { .type = ETCD_OP_GET, .key = "/d" };
        CHECK(etcd_txn(e, &absent, 1, &put, 1, &get, 1, &ok, &got) == 0);
        CHECK(ok && got.n == 0);
        etcd_kvs_clear(&got);
        CHECK(etcd_txn(e, &absent, 1, &put, 1, &get, 1, &ok, &got) == 0);
        CHECK(!ok && got.n == 1 && streq(got.kvs[0].value, "snapshot"));
        etcd_kvs_clear(&got);
        etcd_cmp absent2 = { .key = "/d", .target = ETCD_CMP_CREATE_REVISION, .result = ETCD_CMP_EQUAL, .number = 0 };
        CHECK(etcd_txn(e, &absent2, 1, NULL, 0, NULL, 0, &ok, NULL) == 0 && !ok);

        /* Compare-and-swap on the value: snapshot -> freeze, only from snapshot. */
        etcd_cmp is_snap = { .key = "/d", .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .value = "snapshot" };
        etcd_op to_freeze[] = { { .type = ETCD_OP_PUT, .key = "/d", .value = "freeze" },
                                { .type = ETCD_OP_GET, .key = "/d" },
                                { .type = ETCD_OP_PUT, .key = "/log/1", .value = "x" },
                                { .type = ETCD_OP_GET, .key = "/log/", .prefix = true } };
        CHECK(etcd_txn(e, &is_snap, 1, to_freeze, 4, NULL, 0, &ok, &got) == 0);
        CHECK(ok && got.n == 2);
        if (got.n == 2)
                CHECK(streq(got.kvs[0].value, "freeze") && streq(got.kvs[1].key, "/log/1"));
        etcd_kvs_clear(&got);
        CHECK(etcd_txn(e, &is_snap, 1, to_freeze, 1, NULL, 0, &ok, NULL) == 0 && !ok);
        etcd_cmp not_abort = { .key = "/d", .target = ETCD_CMP_VALUE, .result = ETCD_CMP_NOT_EQUAL, .value = "abort" };
        etcd_cmp ver = { .key = "/d", .target = ETCD_CMP_VERSION, .result = ETCD_CMP_GREATER, .number = 1 };
        etcd_cmp both[] = { not_abort, ver };
        CHECK(etcd_txn(e, both, 2, NULL, 0, NULL, 0, &ok, NULL) == 0 && ok);
        ver.result = ETCD_CMP_LESS;
        both[1] = ver;
        CHECK(etcd_txn(e, both, 2, NULL, 0, NULL, 0, &ok, NULL) == 0 && !ok);

        /* mod_revision: a swap that loses to a writer in between. */
        etcd_kvs r = {};
        CHECK(etcd_get(e, "/d", &r) == 0 && r.n == 1);
        int64_t mod = r.n ? r.kvs[0].mod_revision : 0;
        etcd_kvs_clear(&r);
        etcd_cmp unchanged = { .key = "/d", .target = ETCD_CMP_MOD_REVISION, .result = ETCD_CMP_EQUAL, .number = mod };
        CHECK(etcd_put(e, "/d", "abort", 0, NULL) == 0);
        CHECK(etcd_txn(e, &unchanged, 1, to_freeze, 1, NULL, 0, &ok, NULL) == 0 && !ok);

        /* Lease: "my coordinator key still exists under my lease". */
        int64_t lease = 0;
        CHECK(etcd_lease_grant(e, 30, &lease) == 0 && lease > 0);
        CHECK(etcd_put(e, "/coord", "me", lease, NULL) == 0);
        etcd_cmp mine = { .key = "/coord", .target = ETCD_CMP_LEASE, .result = ETCD_CMP_EQUAL, .number = lease };
        CHECK(etcd_txn(e, &mine, 1, NULL, 0, NULL, 0, &ok, NULL) == 0 && ok);
        CHECK(etcd_lease_revoke(e, lease) == 0);
        CHECK(etcd_txn(e, &mine, 1, NULL, 0, NULL, 0, &ok, NULL) == 0 && !ok);

        /* Incomplete compares and operations send nothing. */
        etcd_cmp bad = { .key = "/d", .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL };
        CHECK(etcd_txn(e, &bad, 1, NULL, 0, NULL, 0, &ok, NULL) == -EINVAL);
        etcd_op badop = { .type = ETCD_OP_PUT, .key = "/d" };
        CHECK(etcd_txn(e, NULL, 0, &badop, 1, NULL, 0, &ok, NULL) == -EINVAL);
        CHECK(etcd_txn(e, NULL, 1, NULL, 0, NULL, 0, &ok, NULL) == -EINVAL);
        etcd_free(e);
        etcd_harness_free(h);
}

static void test_lease(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 0);
        int64_t id = 0, ttl = -1;
        CHECK(etcd_lease_grant(e, 2, &id) == 0);
        CHECK(etcd_put(e, "/host/a", "alive", id, NULL) == 0);
        etcd_kvs r = {};
        CHECK(etcd_get(e, "/host/a", &r) == 0 && r.n == 1 && r.kvs[0].lease == id);
        etcd_kvs_clear(&r);
        CHECK(etcd_lease_keepalive(e, id, &ttl) == 0 && ttl == 2);

        /* Expiry deletes the leased key: wait for it through a watch, not a sleep. */
        etcd_watch *w = NULL;
        CHECK(etcd_watch_new(e, "/host/", 0, &w) == 0);
        etcd_event *ev = NULL;
        int n = w ? etcd_watch_next(w, 10000, NULL, 0, &ev) : -1;
        CHECK(n == 1 && ev[0].deleted && streq(ev[0].kv.key, "/host/a"));
        etcd_events_free(ev, n > 0 ? (size_t) n : 0);
        etcd_watch_free(w);
        CHECK(etcd_lease_keepalive(e, id, &ttl) == -ENOENT && ttl == 0);
        CHECK(etcd_lease_revoke(e, id) == -ENOENT);
        CHECK(etcd_put(e, "/host/a", "again", id, NULL) == -ENOENT);

        CHECK(etcd_lease_grant(e, 60, &id) == 0);
        CHECK(etcd_put(e, "/host/b", "alive", id, NULL) == 0);
        CHECK(etcd_lease_revoke(e, id) == 0);
        CHECK(etcd_get(e, "/host/b", &r) == 0 && r.n == 0);
        etcd_kvs_clear(&r);
        CHECK(etcd_lease_grant(e, 0, &id) == -EINVAL);
        CHECK(etcd_lease_keepalive(e, 0, &ttl) == -EINVAL);
        etcd_free(e);
        etcd_harness_free(h);
}

static const struct {
        const char *name;
        void (*fn)(void);
} cases[] = {
        { "etcd-kv", test_kv },
        { "etcd-txn", test_txn },
        { "etcd-lease", test_lease },
        {},
};

int main(int argc, char *argv[]) {
        if (!etcd_harness_available()) {
                fprintf(stderr, "etcd is not installed (Debian: etcd-server etcd-client): skipped\n");
                return 77;
        }
        int run = 0;
        for (size_t i = 0; cases[i].name; i++) {
                if (argc > 1 && !streq(argv[1], cases[i].name))
                        continue;
                int before = test_failures;
                cases[i].fn();
                printf("%s - %s\n", test_failures > before ? "not ok" : "ok", cases[i].name);
                run++;
        }
        if (!run) {
                fprintf(stderr, "no test named '%s'\n", argc > 1 ? argv[1] : "");
                return 2;
        }
        return test_failures ? 1 : 0;
}
