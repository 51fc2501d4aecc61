/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssadmin's usage message, shared by vssadmin and vssadmin-cluster. */

#include <stdarg.h>
#include <stdio.h>

#include "lib/basic/log.h"
#include "tools/vssadmin-usage.h"

/* Not lib/basic's usage_error(): vssadmin's wording ("Try 'vssadmin --help'.") is a contract. */
int vssadmin_usage(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "vssadmin: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\nTry 'vssadmin --help'.\n");
        va_end(ap);
        return EXIT_USAGE;
}
