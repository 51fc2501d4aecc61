/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Shared by the fuzz targets (fuzz/fuzz-*.c). Each target is a libFuzzer entry point; clang
 * builds link it with -fsanitize=fuzzer (scripts/fuzz.sh), gcc builds with fuzz/replay.c, which
 * runs it on the saved corpus (meson test fuzz/<name>). An invariant that does not hold is a
 * crash: the target prints what went wrong and calls abort().
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string: the parsers see the bytes up to the first NUL, if there is one. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                abort();
        if (size)
                memcpy(s, data, size);
        s[size] = 0;
        return s;
}

#define FUZZ_ERRSIZE 512
#define FUZZ_ERR_FILL 'X'

/* Before a parse: empty message, the rest of the buffer a non-NUL filler, so a message that
 * is not NUL-terminated shows. */
static inline void fuzz_err_reset(char err[static FUZZ_ERRSIZE]) {
        memset(err, FUZZ_ERR_FILL, FUZZ_ERRSIZE);
        err[0] = 0;
}

#define fuzz_assert(cond, ...)                                                                   \
        do {                                                                                     \
                if (!(cond)) {                                                                   \
                        fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
                        fprintf(stderr, __VA_ARGS__);                                            \
                        fputc('\n', stderr);                                                     \
                        abort();                                                                 \
                }                                                                                \
        } while (0)

/* After a parse: a success leaves the buffer as it was (empty); a failure leaves a non-empty,
 * NUL-terminated message within the buffer. */
static inline void fuzz_check_err(const char *what, int r, const char err[static FUZZ_ERRSIZE]) {
        if (r == 0) {
                fuzz_assert(err[0] == 0, "%s succeeded but wrote an error: %.80s", what, err);
                return;
        }
        const char *nul = memchr(err, 0, FUZZ_ERRSIZE);
        fuzz_assert(nul != NULL, "%s failed (%d) with an unterminated error message", what, r);
        fuzz_assert(nul > err, "%s failed (%d) with an empty error message", what, r);
}

/* A string field of a parsed document: never NULL, at most max bytes. */
#define fuzz_check_str(s, max)                                                                    \
        fuzz_assert((s) != NULL && strlen(s) <= (max), "%s is NULL or longer than %zu bytes", #s, \
                    (size_t) (max))
