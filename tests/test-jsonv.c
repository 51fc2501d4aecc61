/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lib/jsonv: jv_parse() refuses what json-c alone would take: a repeated key (at any depth, named
 * in the error), nesting past 16, data after the document, anything but an object, a raw control
 * character in a string, a lone surrogate. */

#include "lib/jsonv.h"
#include "tests/check.h"

int test_failures;

/* The error jv_parse() gives for text, or "ok". */
static const char *parse(const char *text) {
        static JsonReader v;
        v = (JsonReader) {};
        json_object *o = jv_parse(&v, text, 4096, "doc");
        json_object_put(o);
        return o ? "ok" : v.error;
}

int main(void) {
        CHECK_STR(parse("{\"a\": 1, \"b\": {\"c\": [1, {\"d\": \"}\\\",{\"}], \"e\": []}, \"f\": null}"), "ok");
        CHECK_STR(parse(" {\"a\": [[[]]], \"b\": {}, \"c\": {\"c\": {\"c\": true}}} \n"), "ok");
        CHECK_STR(parse("{\"a\": 1, \"a\": 2}"), "a: repeated key");
        CHECK_STR(parse("{\"a\": {\"x\": 1}, \"b\": 2, \"a\": {\"x\": 1}}"), "a: repeated key");
        CHECK_STR(parse("{\"b\": {\"c\": [1, {\"d\": 2, \"d\": 3}]}}"), "b.c[1].d: repeated key");
        CHECK_STR(parse("{\"x\": {\"a\": 1, \"b\": 2, \"a\": 3}}"), "x.a: repeated key");
        /* The same key written two ways is still the same key. */
        CHECK_STR(parse("{\"k\\u0061\": 1, \"ka\": 2}"), "ka: repeated key");
        CHECK_STR(parse("{\"a\": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}"), "doc is not valid JSON: nesting too deep");
        CHECK_STR(parse("{\"a\": 1} {}"), "doc is not valid JSON: unexpected character");
        CHECK_STR(parse("[1]"), "doc must be a JSON object");
        /* A control character raw in a string (JSON wants it escaped), a lone surrogate. */
        CHECK_STR(parse("{\"a\": \"x\\u0001y\\n\\\"\"}"), "ok");
        CHECK_STR(parse("{\"a\": \"x\001y\"}"), "doc has a control character in a string (offset 8): JSON wants it escaped");
        CHECK_STR(parse("{\"a\": \"x\ty\"}"), "doc has a control character in a string (offset 8): JSON wants it escaped");
        CHECK_STR(parse("{\"a\": \"\\ud83d\\ude00\", \"b\": \"\\u00e9\"}"), "ok");
        CHECK_STR(parse("{\"a\": \"\\ud800\"}"), "doc has a lone UTF-16 surrogate in a string (offset 8)");
        CHECK_STR(parse("{\"a\": \"\\udc00x\"}"), "doc has a lone UTF-16 surrogate in a string (offset 8)");
        CHECK_STR(parse("{\"a\": \"\\ud800\\u0041\"}"), "doc has a lone UTF-16 surrogate in a string (offset 8)");
        if (test_failures)
                fprintf(stderr, "%d check(s) failed\n", test_failures);
        return test_failures ? 1 : 0;
}
