/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What every writer program does the same way: its log's name, an event's failure, the
 * millisecond options. On lib/basic/log.h: usage errors say "PROG: ..." and the rest
 * "PROG[NAME]: ...". */

#include <stdbool.h>
#include <stdint.h>

#include <vss/writer.h>

#include "lib/basic/macro.h"

/* From now on the log's ident is "prog[name]" (name at most 255 bytes). */
void writer_log_name(const char *prog, const char *name);

/* Sets the current event's failure (msg formatted, at most 1023 bytes) and logs it as
 * "failed 0xHR (code CODE): MSG"; returns false for the callback to return. */
bool writer_fail(vss_writer *w, int32_t hr, int32_t code, const char *fmt, ...) _printf_(4, 5);

/* A number of milliseconds (what names it in the error); 0 or the usage error's exit status
 * ("invalid WHAT 'S', expected milliseconds"). */
int writer_parse_ms(const char *s, const char *what, uint32_t *ret);

/* The end of every writer's --help. */
#define WRITER_HELP_EXIT_STATUS                                              \
        "Exit status:\n"                                                     \
        "  0  stopped by SIGTERM or SIGINT\n"                                \
        "  1  could not register with vssd, or lost the connection to it\n"
