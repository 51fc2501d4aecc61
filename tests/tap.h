/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* TAP output for the unit tests that print one line a check ("ok N - name"), each one program:
 * a failed check is counted and the test goes on. main() ends with printf("1..%u\n", n_tests)
 * and returns n_failed > 0. */

#include <stdbool.h>
#include <stdio.h>

static unsigned n_tests, n_failed;

static inline void check_(bool ok, const char *name, const char *file, int line) {
        printf("%sok %u - %s\n", ok ? "" : "not ", ++n_tests, name);
        if (!ok) {
                printf("#   failed at %s:%d\n", file, line);
                n_failed++;
        }
}
#define CHECK(cond, name) check_((cond), (name), __FILE__, __LINE__)
