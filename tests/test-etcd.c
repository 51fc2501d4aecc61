/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* agent/etcd.h against a real etcd (tests/etcd-harness.c): keys, transactions, leases, watches
 * (also across a restart), HTTPS with client certificates, auth, fail-over, timeouts and
 * malformed answers. Skips (77) where etcd is not installed. */

#include <errno.h>
#include <fcntl.h>
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
#include "lib/basic/time-util.h"
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
        int64_t rev = 0;
        CHECK(etcd_lease_grant(e, 2, &id) == 0);
        CHECK(etcd_put(e, "/host/a", "alive", id, &rev) == 0);
        etcd_kvs r = {};
        CHECK(etcd_get(e, "/host/a", &r) == 0 && r.n == 1 && r.kvs[0].lease == id);
        etcd_kvs_clear(&r);
        CHECK(etcd_lease_keepalive(e, id, &ttl) == 0 && ttl == 2);

        /* Expiry deletes the leased key: wait for it through a watch, not a sleep. */
        etcd_watch *w = NULL;
        CHECK(etcd_watch_new(e, "/host/", rev + 1, &w) == 0);
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


/* Events of w until want have come (or 10 s pass): appended to *all. */
static size_t collect(etcd_watch *w, size_t want, etcd_event **all, size_t *n) {
        uint64_t deadline = now_monotonic_msec() + 10000;
        while (*n < want && now_monotonic_msec() < deadline) {
                etcd_event *ev = NULL;
                int k = etcd_watch_next(w, 200, NULL, 0, &ev);
                CHECK(k >= 0);
                if (k < 0)
                        break;
                /* No event in the 200 ms (k == 0): ev stays NULL, which memcpy() may not take. */
                if (k > 0) {
                        *all = realloc(*all, (*n + (size_t) k + 1) * sizeof(etcd_event));
                        memcpy(*all + *n, ev, (size_t) k * sizeof(etcd_event));
                        *n += (size_t) k;
                }
                free(ev);
        }
        return *n;
}

static bool wait_connected(etcd_watch *w) {
        uint64_t deadline = now_monotonic_msec() + 10000;
        while (!etcd_watch_connected(w) && now_monotonic_msec() < deadline) {
                etcd_event *ev = NULL;
                int k = etcd_watch_next(w, 50, NULL, 0, &ev);
                CHECK(k == 0);
                etcd_events_free(ev, k > 0 ? (size_t) k : 0);
        }
        return etcd_watch_connected(w);
}

static void test_watch(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 0);
        etcd_watch *w = NULL;
        int64_t first = 0;
        CHECK(etcd_watch_new(e, "/w/", 0, &w) == 0);
        CHECK(!etcd_watch_connected(w));
        CHECK(wait_connected(w));
        CHECK(etcd_put(e, "/w/a", "1", 0, &first) == 0);
        CHECK(etcd_put(e, "/x/outside", "no", 0, NULL) == 0);
        CHECK(etcd_put(e, "/w/b", "2", 0, NULL) == 0);
        CHECK(etcd_delete(e, "/w/a", false, NULL) == 0);
        etcd_op two[] = { { .type = ETCD_OP_PUT, .key = "/w/c", .value = "3" },
                          { .type = ETCD_OP_PUT, .key = "/w/d", .value = "4" } };
        bool ok = false;
        CHECK(etcd_txn(e, NULL, 0, two, 2, NULL, 0, &ok, NULL) == 0 && ok);
        etcd_event *all = NULL;
        size_t n = 0;
        CHECK(collect(w, 5, &all, &n) == 5);
        if (n == 5) {
                CHECK(!all[0].deleted && streq(all[0].kv.key, "/w/a") && streq(all[0].kv.value, "1"));
                CHECK(all[0].kv.mod_revision == first);
                CHECK(!all[1].deleted && streq(all[1].kv.key, "/w/b") && all[1].kv.mod_revision == first + 2);
                CHECK(all[2].deleted && streq(all[2].kv.key, "/w/a") && streq(all[2].kv.value, ""));
                CHECK(all[3].kv.mod_revision == all[4].kv.mod_revision); /* one transaction */
                CHECK(streq(all[3].kv.key, "/w/c") && streq(all[4].kv.key, "/w/d"));
        }
        etcd_events_free(all, n);
        etcd_watch_free(w);

        /* From a past revision: the history again, in order. */
        CHECK(etcd_watch_new(e, "/w/", first, &w) == 0);
        all = NULL, n = 0;
        CHECK(collect(w, 5, &all, &n) == 5);
        CHECK(n == 5 && streq(all[0].kv.key, "/w/a") && all[2].deleted);
        etcd_events_free(all, n);
        etcd_watch_free(w);

        /* A compacted start revision. */
        CHECK(etcd_harness_ctl(h, NULL, "compact %" PRId64, first + 2) == 0);
        CHECK(etcd_watch_new(e, "/w/", first, &w) == 0);
        etcd_event *ev = NULL;
        uint64_t deadline = now_monotonic_msec() + 10000;
        int k = 0;
        while (k == 0 && now_monotonic_msec() < deadline)
                k = etcd_watch_next(w, 200, NULL, 0, &ev);
        CHECK(k == -ESTALE);
        CHECK(strstr(etcd_errmsg(e), "compacted"));
        CHECK(etcd_watch_next(w, 0, NULL, 0, &ev) == -ESTALE);
        etcd_watch_free(w);
        CHECK(etcd_watch_new(e, NULL, 0, &w) == -EINVAL);
        CHECK(etcd_watch_new(e, "/w/", -1, &w) == -EINVAL);
        etcd_free(e);
        etcd_harness_free(h);
}

/* A range [key, range_end): keys outside it are not seen; a watch started at another's revision
 * goes on where that one stopped, with nothing lost or seen twice (vss-agent narrows its watch to
 * the set in flight and widens it again so). */
static void test_watch_range(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 0);
        etcd_watch *w = NULL, *narrow = NULL;
        CHECK(etcd_watch_new(e, "/s/", 0, &w) == 0);
        CHECK(etcd_watch_revision(w) == 0 && !etcd_watch_down(w));
        CHECK(wait_connected(w));
        CHECK(etcd_watch_revision(w) > 0);
        CHECK(etcd_put(e, "/s/1/plan", "p", 0, NULL) == 0);
        etcd_event *all = NULL;
        size_t n = 0;
        CHECK(collect(w, 1, &all, &n) == 1 && streq(all[0].kv.key, "/s/1/plan"));
        int64_t rev = etcd_watch_revision(w);
        CHECK(n == 1 && rev == all[0].kv.mod_revision + 1);
        etcd_events_free(all, n);

        CHECK(etcd_watch_new_range(e, "/s/1/", "/s/1/hosts/", rev, &narrow) == 0);
        CHECK(etcd_put(e, "/s/1/hosts/h1", "r", 0, NULL) == 0);     /* outside */
        CHECK(etcd_put(e, "/s/2/plan", "p", 0, NULL) == 0);          /* outside */
        CHECK(etcd_put(e, "/s/1/decision", "freeze", 0, NULL) == 0);
        CHECK(etcd_delete(e, "/s/1/coordinator", false, NULL) == 0); /* nothing there: no event */
        CHECK(etcd_put(e, "/s/1/coordinator", "c", 0, NULL) == 0);
        all = NULL, n = 0;
        CHECK(collect(narrow, 2, &all, &n) == 2);
        CHECK(n == 2 && streq(all[0].kv.key, "/s/1/decision") && streq(all[1].kv.key, "/s/1/coordinator"));
        etcd_events_free(all, n);
        etcd_watch_free(narrow);

        /* The wide one again from where it was: all it missed, in order, once. */
        etcd_watch_free(w);
        CHECK(etcd_watch_new(e, "/s/", rev, &w) == 0);
        all = NULL, n = 0;
        CHECK(collect(w, 4, &all, &n) == 4);
        CHECK(n == 4 && streq(all[0].kv.key, "/s/1/hosts/h1") && streq(all[1].kv.key, "/s/2/plan") &&
              streq(all[2].kv.key, "/s/1/decision") && streq(all[3].kv.key, "/s/1/coordinator"));
        etcd_events_free(all, n);
        etcd_event *ev = NULL;
        CHECK(etcd_watch_next(w, 300, NULL, 0, &ev) == 0);
        etcd_watch_free(w);
        CHECK(etcd_watch_new_range(e, NULL, "/z", 0, &w) == -EINVAL);
        etcd_free(e);
        etcd_harness_free(h);
}

/* etcd stopped and started again on its data: the watch comes back by itself, from where it
 * was, and neither loses nor repeats an event. */
static void test_watch_restart(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 500);
        etcd_watch *w = NULL;
        CHECK(etcd_watch_new(e, "/r/", 0, &w) == 0);
        CHECK(wait_connected(w));
        CHECK(etcd_put(e, "/r/1", "before", 0, NULL) == 0);
        etcd_event *all = NULL;
        size_t n = 0;
        CHECK(collect(w, 1, &all, &n) == 1);

        CHECK(etcd_harness_stop(h, 0) == 0);
        etcd_event *ev = NULL;
        uint64_t deadline = now_monotonic_msec() + 10000;
        while (etcd_watch_connected(w) && now_monotonic_msec() < deadline)
                CHECK(etcd_watch_next(w, 100, NULL, 0, &ev) == 0);
        CHECK(!etcd_watch_connected(w));
        CHECK(etcd_watch_next(w, 300, NULL, 0, &ev) == 0); /* retries while down, quietly */
        CHECK(etcd_put(e, "/r/x", "down", 0, NULL) == -ECONNREFUSED);

        CHECK(etcd_harness_start(h, 0, true) == 0);
        CHECK(etcd_put(e, "/r/2", "while the watch was away", 0, NULL) == 0);
        CHECK(collect(w, 2, &all, &n) == 2);
        CHECK(etcd_watch_connected(w));
        CHECK(etcd_put(e, "/r/3", "after", 0, NULL) == 0);
        CHECK(collect(w, 3, &all, &n) == 3);
        CHECK(etcd_watch_next(w, 300, NULL, 0, &ev) == 0); /* nothing twice */
        CHECK(n == 3);
        if (n == 3)
                CHECK(streq(all[0].kv.key, "/r/1") && streq(all[1].kv.key, "/r/2") && streq(all[2].kv.key, "/r/3"));
        etcd_events_free(all, n);
        etcd_watch_free(w);
        etcd_free(e);
        etcd_harness_free(h);
}

/* etcd stopped with SIGSTOP: the connection stays up, the watch finds the silence out by itself
 * (a probe of its member), says it is down, and is back with nothing lost once etcd goes on. */
static void test_watch_stopped(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 500);
        etcd_watch *w = NULL;
        CHECK(etcd_watch_new(e, "/s/", 0, &w) == 0);
        CHECK(wait_connected(w));
        CHECK(etcd_harness_kill(h, 0, SIGSTOP) == 0);
        etcd_event *ev = NULL;
        uint64_t t0 = now_monotonic_msec(), deadline = t0 + 10000;
        while (etcd_watch_connected(w) && now_monotonic_msec() < deadline)
                CHECK(etcd_watch_next(w, 100, NULL, 0, &ev) == 0);
        CHECK(!etcd_watch_connected(w));
        fprintf(stderr, "stopped etcd seen after %" PRIu64 " ms: %s\n", now_monotonic_msec() - t0, etcd_errmsg(e));
        CHECK(etcd_harness_kill(h, 0, SIGCONT) == 0);
        CHECK(etcd_put(e, "/s/1", "v", 0, NULL) == 0);
        etcd_event *all = NULL;
        size_t n = 0;
        CHECK(collect(w, 1, &all, &n) == 1);
        CHECK(etcd_watch_next(w, 300, NULL, 0, &ev) == 0);
        CHECK(n == 1 && streq(all[0].kv.key, "/s/1"));
        etcd_events_free(all, n);
        etcd_watch_free(w);
        etcd_free(e);
        etcd_harness_free(h);
}

/* The caller's own descriptors beside the watch. */
static void test_watch_extra_fds(void) {
        EtcdHarness *h = harness(1, false);
        etcd *e = client(h->endpoints, 0);
        etcd_watch *w = NULL;
        int p[2];
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        CHECK(etcd_watch_new(e, "/f/", 0, &w) == 0);
        CHECK(wait_connected(w));
        struct pollfd extra[2] = { { .fd = p[0], .events = POLLIN }, { .fd = -1 } };
        etcd_event *ev = NULL;
        CHECK(etcd_watch_next(w, 0, extra, 2, &ev) == 0 && extra[0].revents == 0);
        CHECK(write(p[1], "x", 1) == 1);
        CHECK(etcd_watch_next(w, 10000, extra, 2, &ev) == 0 && ev == NULL);
        CHECK(extra[0].revents & POLLIN);
        char c;
        CHECK(read(p[0], &c, 1) == 1);
        CHECK(etcd_put(e, "/f/k", "v", 0, NULL) == 0);
        int k = etcd_watch_next(w, 10000, extra, 2, &ev);
        CHECK(k == 1 && extra[0].revents == 0);
        etcd_events_free(ev, k > 0 ? (size_t) k : 0);
        close(p[1]);
        CHECK(etcd_watch_next(w, 10000, extra, 2, &ev) == 0);
        CHECK(extra[0].revents & POLLHUP);
        close(p[0]);
        etcd_watch_free(w);
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
        { "etcd-watch", test_watch },
        { "etcd-watch-range", test_watch_range },
        { "etcd-watch-restart", test_watch_restart },
        { "etcd-watch-stopped", test_watch_stopped },
        { "etcd-watch-extra-fds", test_watch_extra_fds },
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
