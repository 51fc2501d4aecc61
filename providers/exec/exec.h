/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The part of the exec provider that reads what a command printed: pure functions, so that
 * fuzz/fuzz-exec-output.c can drive them with arbitrary output. */

#include <stddef.h>

/* The last line of a command's output buf[0..len): the output is read as a C string (up to the
 * first NUL, if any); when it has no NUL, trailing newlines, carriage returns and spaces are
 * dropped first. The line is the text after the last remaining '\n' (all of it when there is
 * none), possibly empty. Returns 0 with a malloc'ed copy in *ret_line, or -ENOMEM. */
int exec_output_last_line(const char *buf, size_t len, char **ret_line);

/* Whether line is acceptable as the location of a new shadow: non-empty and shorter than
 * PATH_MAX. Returns 0 or -EBADMSG. */
int exec_location_check(const char *line);
