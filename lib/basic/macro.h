/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The bottom layer: macros every other file uses. Internal, never installed. */

#include <stdbool.h>
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
