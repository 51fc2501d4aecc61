/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "lib/basic/sha1.h"

static uint32_t rol(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(sha1_ctx *c, const uint8_t *p) {
        uint32_t w[80], a = c->h[0], b = c->h[1], d = c->h[3], e = c->h[4], cc = c->h[2];
        for (unsigned i = 0; i < 16; i++)
                w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16 | (uint32_t) p[4 * i + 2] << 8 |
                       p[4 * i + 3];
        for (unsigned i = 16; i < 80; i++)
                w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        for (unsigned i = 0; i < 80; i++) {
                uint32_t f, k;
                if (i < 20) {
                        f = (b & cc) | (~b & d);
                        k = 0x5a827999;
                } else if (i < 40) {
                        f = b ^ cc ^ d;
                        k = 0x6ed9eba1;
                } else if (i < 60) {
                        f = (b & cc) | (b & d) | (cc & d);
                        k = 0x8f1bbcdc;
                } else {
                        f = b ^ cc ^ d;
                        k = 0xca62c1d6;
                }
                uint32_t t = rol(a, 5) + f + e + k + w[i];
                e = d;
                d = cc;
                cc = rol(b, 30);
                b = a;
                a = t;
        }
        c->h[0] += a;
        c->h[1] += b;
        c->h[2] += cc;
        c->h[3] += d;
        c->h[4] += e;
}

void sha1_init(sha1_ctx *c) {
        *c = (sha1_ctx) { .h = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 } };
}

void sha1_update(sha1_ctx *c, const void *data, size_t size) {
        const uint8_t *p = data;
        c->length += size;
        while (size > 0) {
                size_t n = sizeof(c->block) - c->used;
                if (n > size)
                        n = size;
                memcpy(c->block + c->used, p, n);
                c->used += n;
                p += n;
                size -= n;
                if (c->used == sizeof(c->block)) {
                        sha1_block(c, c->block);
                        c->used = 0;
                }
        }
}

void sha1_final(sha1_ctx *c, uint8_t digest[SHA1_DIGEST_SIZE]) {
        uint64_t bits = c->length * 8;
        uint8_t pad[72] = { 0x80 };
        /* 0x80, zeros up to 56 mod 64, then the length in bits, big-endian. */
        size_t n = (c->used < 56 ? 56 : 120) - c->used;
        for (unsigned i = 0; i < 8; i++)
                pad[n + i] = (uint8_t) (bits >> (56 - 8 * i));
        sha1_update(c, pad, n + 8);
        for (unsigned i = 0; i < 5; i++)
                for (unsigned j = 0; j < 4; j++)
                        digest[4 * i + j] = (uint8_t) (c->h[i] >> (24 - 8 * j));
}
