/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/basic: the bottom layer every program uses. */

#include <errno.h>
#include <fcntl.h>

#include "lib/basic/fd-util.h"
#include "lib/basic/macro.h"
#include "lib/basic/parse-util.h"
#include "lib/basic/path-util.h"
#include "lib/basic/time-util.h"
#include "tests/check.h"

int test_failures;

static void test_path_within(void) {
        CHECK(path_within("/srv/a", "/srv"));
        CHECK(path_within("/srv", "/srv"));
        CHECK(path_within("/srv/a", "/srv/"));
        CHECK(path_within("/srv", "/srv/"));
        CHECK(!path_within("/srv2", "/srv"));
        CHECK(!path_within("/sr", "/srv"));
        CHECK(path_within("/anything", "/"));
        CHECK(path_within("/", "/"));
        CHECK(!path_within("relative", "/"));
        CHECK_STR(path_under("/srv/a/b", "/srv"), "a/b");
        CHECK_STR(path_under("/srv", "/srv"), "");
        CHECK_STR(path_under("/a", "/"), "a");
        CHECK(path_under("/srvx", "/srv") == NULL);
}

static void test_path_normalize(void) {
        char buf[64], tiny[4];
        CHECK(path_normalize("/a//b/./c/../d/", buf, sizeof buf) == 0);
        CHECK_STR(buf, "/a/b/d");
        CHECK(path_normalize("/../..", buf, sizeof buf) == 0);
        CHECK_STR(buf, "/");
        CHECK(path_normalize("a/b", buf, sizeof buf) == -EINVAL);
        CHECK(path_normalize("/abcdef", tiny, sizeof tiny) == -ENAMETOOLONG);
        CHECK(path_overlaps("/srv/x/../a", "/srv/a/b"));
        CHECK(!path_overlaps("/srv2", "/srv"));
        CHECK(!path_overlaps("srv", "/srv"));
        _cleanup_free_ char *j = path_join("/a/", "b"), *k = path_join("/a", ""), *l = path_join("/a", "b/c");
        CHECK_STR(j, "/a/b");
        CHECK_STR(k, "/a");
        CHECK_STR(l, "/a/b/c");
}

static void test_parse(void) {
        uint64_t v;
        uint32_t u;
        CHECK(parse_uint("0", 10, &v) == 0 && v == 0);
        CHECK(parse_uint("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX);
        CHECK(parse_uint("18446744073709551616", UINT64_MAX, &v) == -ERANGE);
        CHECK(parse_uint("11", 10, &v) == -ERANGE);
        CHECK(parse_uint("", 10, &v) == -EINVAL);
        CHECK(parse_uint("-1", 10, &v) == -EINVAL);
        CHECK(parse_uint("+1", 10, &v) == -EINVAL);
        CHECK(parse_uint(" 1", 10, &v) == -EINVAL);
        CHECK(parse_uint("1ms", 10, &v) == -EINVAL);
        CHECK(parse_msec("30000", &u) == 0 && u == 30000);
        CHECK(parse_uint32("4294967296", &u) == -ERANGE);
}

static void test_fd(void) {
        int p[2];
        _cleanup_free_ char *got = NULL;
        size_t n;
        CHECK(pipe(p) == 0);
        CHECK(write_all(p[1], "hello", 5) == 0);
        close(p[1]);
        CHECK(read_all(p[0], 100, &got, &n) == 0 && n == 5);
        CHECK_STR(got, "hello");
        close(p[0]);

        _cleanup_free_ char *none = NULL;
        CHECK(pipe(p) == 0);
        CHECK(write_all(p[1], "0123456789", 10) == 0);
        close(p[1]);
        CHECK(read_all(p[0], 9, &none, NULL) == -EFBIG && !none);
        close(p[0]);

        _cleanup_free_ char *exact = NULL;
        CHECK(pipe(p) == 0);
        CHECK(write_all(p[1], "0123456789", 10) == 0);
        close(p[1]);
        CHECK(read_all(p[0], 10, &exact, &n) == 0 && n == 10);
        close(p[0]);
}

static void test_time(void) {
        char buf[FORMAT_TIMESTAMP_MAX];
        uint64_t a = now_monotonic_usec(), b = now_monotonic_usec();
        CHECK(b >= a);
        CHECK(now_monotonic_nsec() / 1000 >= b);
        CHECK_STR(format_timestamp(1764070200ULL * USEC_PER_SEC, buf), "2025-11-25T11:30:00Z");
}

static void test_control_len(void) {
        CHECK(control_len("") == 0 && control_len("a") == 0 && control_len("\xc3\xa9") == 0); /* é */
        CHECK(control_len("\n") == 1 && control_len("\033[2J") == 1 && control_len("\x7f") == 1);
        /* C1: U+0085 (NEL), U+009B (CSI); U+00A0 is no control. */
        CHECK(control_len("\xc2\x85") == 2 && control_len("\xc2\x9b" "2J") == 2 && control_len("\xc2\xa0") == 0);
        /* Bidirectional formatting: U+061C, U+200E, U+202E (RLO), U+2066, U+2069; separators. */
        CHECK(control_len("\xd8\x9c") == 2 && control_len("\xe2\x80\x8e") == 3 && control_len("\xe2\x80\xae") == 3);
        CHECK(control_len("\xe2\x81\xa6") == 3 && control_len("\xe2\x81\xa9") == 3 && control_len("\xe2\x80\xa8") == 3);
        /* Their neighbours are text: U+2010 (hyphen), U+2030 (per mille), U+2060 (word joiner). */
        CHECK(control_len("\xe2\x80\x90") == 0 && control_len("\xe2\x80\xb0") == 0 && control_len("\xe2\x81\xa0") == 0);
        /* Cut short: no read past the end. */
        CHECK(control_len("\xc2") == 0 && control_len("\xe2\x80") == 0);
}

int main(void) {
        test_control_len();
        test_path_within();
        test_path_normalize();
        test_parse();
        test_fd();
        test_time();
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
