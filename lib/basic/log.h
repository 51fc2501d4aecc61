/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* stderr logging and usage errors for every program, with printf checking. */

#include "lib/basic/macro.h"

/* Names the program in messages: "vssd", "vss-writer-sqlite[NAME]". Kept by pointer. */
void log_set_ident(const char *ident);
const char *log_ident(void);

/* "IDENT: message\n" on stderr, one line: control characters in message shown escaped (\n, \xHH). */
void log_msg(const char *fmt, ...) _printf_(1, 2);
/* "IDENT: PREFIXmessage\n" on stderr. */
void log_prefixed(const char *prefix, const char *fmt, ...) _printf_(2, 3);

#define EXIT_USAGE 2
/* "PROGRAM: message\nTry 'PROGRAM --help' for more information.\n" on stderr; returns EXIT_USAGE.
 * PROGRAM is the ident up to its first '['. */
int usage_error(const char *fmt, ...) _printf_(1, 2);

/* What getopt_long() (with opterr = 0) refused, c its return value: "unknown option '--x'" or
 * "option '--x' needs a value", into buf. */
char *bad_option_text(int argc, char *argv[], int c, char *buf, size_t size);
