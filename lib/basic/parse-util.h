/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

/* A whole string of decimal digits (no sign, no blanks, no suffix) not above max.
 * 0, -EINVAL (not a number) or -ERANGE (above max). */
int parse_uint(const char *s, uint64_t max, uint64_t *ret);
int parse_uint32(const char *s, uint32_t *ret);

/* Milliseconds as the command lines and configs take them: a plain number of milliseconds. */
static inline int parse_msec(const char *s, uint32_t *ret) { return parse_uint32(s, ret); }
