/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Writer class ids are RFC 4122 version-5 UUIDs over the documented namespace: SHA-1 against
 * FIPS 180 vectors, the ids against Python's uuid.uuid5 (values computed with it). */

#include "lib/basic/macro.h"
#include "lib/basic/sha1.h"
#include "lib/common.h"
#include "tests/check.h"

int test_failures;

static void hex(const uint8_t *d, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", d[i]);
}

static void check_sha1(const char *data, size_t repeat, const char *want) {
        sha1_ctx c;
        uint8_t d[SHA1_DIGEST_SIZE];
        char got[2 * SHA1_DIGEST_SIZE + 1];
        sha1_init(&c);
        for (size_t i = 0; i < repeat; i++)
                sha1_update(&c, data, strlen(data));
        sha1_final(&c, d);
        hex(d, sizeof(d), got);
        CHECK_STR(got, want);
}

static void check_id(const char *name, const char *want) {
        vss_id id;
        char buf[VSS_ID_STRING_MAX];
        vss_id_from_name(name, &id);
        CHECK_STR(vss_id_to_string(&id, buf), want);
}

int main(void) {
        check_sha1("", 1, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        check_sha1("abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d");
        check_sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
                   "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        /* 55, 56 and 64 bytes: the padding's edge cases. */
        check_sha1("a", 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
        check_sha1("0123456789012345678901234567890123456789012345678901234", 1,
                   "9f3a4ce7f66b1b74c34da2c5d732c39f81e0f8df");
        check_sha1("01234567890123456789012345678901234567890123456789012345", 1,
                   "0a40b8fbdaafb7c29651618ac15d27e772287130");
        check_sha1("0123456789012345678901234567890123456789012345678901234567890123", 1,
                   "cf0800f7644ace3cb4c3fa33388d3ba0ea3c8b6e");
        /* python3 -c 'import uuid; ns = uuid.uuid5(uuid.NAMESPACE_URL, "urn:openvss:writer-class");
         *             print(ns, uuid.uuid5(ns, NAME))' */
        check_id("vss-writer-sqlite", "57dd0ea7-8367-5fb9-b925-2d57049ca337");
        check_id("fe", "da02c1d0-9890-56c3-bca1-dbc049e0d659");
        check_id("\xc3\xa9", "7972bf0c-7cbb-5f98-8223-e57b4af960c9");
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
