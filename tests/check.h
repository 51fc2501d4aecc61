/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Check macros shared by every test program: a failed check is reported and counted, and the
 * test goes on so one run shows every failure. The program defines test_failures. */

#include <stdio.h>
#include <string.h>

#include <vss/types.h>

extern int test_failures;
#define CHECK(cond)                                                                              \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
                        test_failures++;                                                         \
                }                                                                                \
        } while (0)
#define CHECK_HR(expr, want)                                                                               \
        do {                                                                                               \
                int32_t _hr = (int32_t) (expr), _w = (int32_t) (want);                                     \
                if (_hr != _w) {                                                                           \
                        fprintf(stderr, "%s:%d: %s = 0x%08x (%s), expected 0x%08x (%s)\n", __FILE__, __LINE__, \
                                #expr, (uint32_t) _hr, vss_error_name(_hr) ? vss_error_name(_hr) : "?",      \
                                (uint32_t) _w, vss_error_name(_w) ? vss_error_name(_w) : "?");             \
                        test_failures++;                                                                   \
                }                                                                                          \
        } while (0)
#define CHECK_STR(a, b)                                                                                       \
        do {                                                                                                  \
                const char *_a = (a), *_b = (b);                                                              \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                                      \
                        fprintf(stderr, "%s:%d: %s\n   got:      \"%s\"\n   expected: \"%s\"\n", __FILE__, __LINE__, \
                                #a, _a ? _a : "(null)", _b ? _b : "(null)");                                 \
                        test_failures++;                                                                      \
                }                                                                                             \
        } while (0)

