/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Failure messages for functions that return -errno and explain why in a malloc'd *ret_error. */

#include "lib/basic/macro.h"

/* Sets *ret_error (unless ret_error is NULL or it is set already: the first error explains the
 * failure, later ones are its consequences) and returns r. */
int fail(char **ret_error, int r, const char *fmt, ...) _printf_(3, 4);
/* fail(ret_error, -ENOMEM, "out of memory"). */
int fail_oom(char **ret_error);
