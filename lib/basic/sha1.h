/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SHA-1 (FIPS 180-4), for name-based (version 5) UUIDs only: not for anything that needs a
 * secure hash. */

#include <stddef.h>
#include <stdint.h>

#define SHA1_DIGEST_SIZE 20

typedef struct sha1_ctx {
        uint32_t h[5];
        uint64_t length;      /* bytes hashed so far */
        uint8_t block[64];
        size_t used;          /* bytes of block filled */
} sha1_ctx;

void sha1_init(sha1_ctx *c);
void sha1_update(sha1_ctx *c, const void *data, size_t size);
void sha1_final(sha1_ctx *c, uint8_t digest[SHA1_DIGEST_SIZE]);
