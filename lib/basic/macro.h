/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The bottom layer: macros every other file uses. Internal, never installed. */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _printf_(a, b) __attribute__((format(printf, a, b)))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

static inline void freep(void *p) { free(*(void **) p); }
static inline void closep(int *fd) { if (*fd >= 0) close(*fd); }
static inline void fclosep(FILE **f) { if (*f) fclose(*f); }
#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void *take_ptr_(void **p) { void *r = *p; *p = NULL; return r; }
#define TAKE_PTR(p) take_ptr_((void **) &(p))
static inline int take_fd_(int *fd) { int r = *fd; *fd = -1; return r; }
#define TAKE_FD(fd) take_fd_(&(fd))

static inline bool streq(const char *a, const char *b) { return strcmp(a, b) == 0; }
static inline const char *strempty(const char *s) { return s ? s : ""; }
static inline bool isempty(const char *s) { return !s || !*s; }
/* A control character (C0 or DEL): a newline would forge a log line, an escape reach a terminal. */
static inline bool char_is_control(char c) { return (unsigned char) c < 0x20 || c == 0x7f; }
/* The bytes of the control at s, 0 when there is none (or s is at its end): an ASCII one
 * (char_is_control()), a C1 control in UTF-8 (U+0080-U+009F; terminals take U+009B as CSI), a
 * line or paragraph separator (U+2028, U+2029) or a bidirectional formatting character (U+061C,
 * U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), which reorder what a terminal shows so that text
 * passes for other text. */
static inline size_t control_len(const char *s) {
        const unsigned char *p = (const unsigned char *) s;
        if (p[0] == 0)
                return 0;
        if (char_is_control((char) p[0]))
                return 1;
        if ((p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) || (p[0] == 0xd8 && p[1] == 0x9c))
                return 2;
        if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae)))
                return 3;
        if (p[0] == 0xe2 && p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9)
                return 3;
        return 0;
}
