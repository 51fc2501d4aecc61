/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* tools/manifest.c: vssbackup's record of a backup written and read back, and read strictly
 * (lib/jsonv.h): a key given twice, nesting too deep, unknown or mistyped fields are refused,
 * naming the reason. */

#include <errno.h>
#include <string.h>

#include "lib/basic/macro.h"
#include "tests/check.h"
#include "tools/manifest.h"

int test_failures;

/* Parses text: expect 0 (why NULL), or -EBADMSG with why in the message. */
static void parse(const char *text, const char *why) {
        Manifest m;
        char error[512] = "";
        int r = manifest_parse(text, &m, error, sizeof(error));

        if (!why) {
                if (r != 0)
                        fprintf(stderr, "refused: %s\n  %s\n", text, error);
                CHECK(r == 0);
                return;
        }
        CHECK(r == -EBADMSG);
        if (!strstr(error, why))
                fprintf(stderr, "%s\n  error: \"%s\", expected \"%s\" in it\n", text, error, why);
        CHECK(strstr(error, why));
}

static void test_roundtrip(void) {
        Manifest m = { .type = VSS_BT_INCREMENTAL, .created_usec = 1764633600000000, .base_created_usec = 42 }, got;
        char error[512];
        snprintf(m.base, sizeof(m.base), "/backup/monday.tar.zst");

        _cleanup_free_ char *text = manifest_format(&m);
        CHECK(text);
        CHECK(manifest_parse(text, &got, error, sizeof(error)) == 0);
        CHECK(got.type == VSS_BT_INCREMENTAL);
        CHECK(got.created_usec == m.created_usec);
        CHECK(got.base_created_usec == 42);
        CHECK_STR(got.base, "/backup/monday.tar.zst");
        CHECK(backup_type_from_name("differential") == VSS_BT_DIFFERENTIAL);
        CHECK(backup_type_from_name("weekly") < 0);
}

#define GOOD "\"type\":\"full\",\"created_usec\":1,\"base\":\"\",\"base_created_usec\":0"

static void test_strict(void) {
        parse("{" GOOD "}", NULL);
        parse("{\"format\":\"openvss-vssbackup\",\"version\":1," GOOD "}", NULL);
        /* json-c alone keeps the last of a repeated key: the strict layer refuses it. */
        parse("{\"type\":\"copy\"," GOOD "}", "repeated key");
        parse("{" GOOD ",\"base\":\"/elsewhere\"}", "repeated key");
        parse("{\"t\\u0079pe\":\"copy\"," GOOD "}", "repeated key");
        parse("{\"version\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]," GOOD "}", "nesting too deep");
        parse("{" GOOD ",\"extra\":1}", "extra: unknown field");
        parse("{\"type\":\"weekly\",\"created_usec\":1,\"base\":\"\",\"base_created_usec\":0}", "type: unknown backup type");
        parse("{\"type\":\"full\",\"base\":\"\",\"base_created_usec\":0}", "created_usec: missing");
        parse("{\"type\":\"full\",\"created_usec\":-1,\"base\":\"\",\"base_created_usec\":0}", "created_usec: expected");
        parse("{\"type\":\"full\",\"created_usec\":\"1\",\"base\":\"\",\"base_created_usec\":0}", "created_usec: expected");
        parse("{\"type\":\"full\",\"created_usec\":1,\"base\":7,\"base_created_usec\":0}", "base: expected a string");
        parse("{" GOOD "} {}", "not valid JSON");
        parse("[1]", "must be a JSON object");
        parse("{" GOOD, "truncated");
}

int main(void) {
        test_roundtrip();
        test_strict();
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
