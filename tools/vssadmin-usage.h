/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* "vssadmin: MESSAGE" and "Try 'vssadmin --help'." on stderr; returns EXIT_USAGE. */
int vssadmin_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
