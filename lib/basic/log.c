/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdarg.h>

#include "lib/basic/log.h"

static const char *ident = "openvss";

void log_set_ident(const char *s) {
        ident = s;
}

const char *log_ident(void) {
        return ident;
}

void log_prefixed(const char *prefix, const char *fmt, ...) {
        va_list ap;

        /* One line per call, built first, so lines of concurrent writers do not interleave. */
        char *msg = NULL;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s%s\n", ident, prefix, r < 0 ? fmt : msg);
        free(msg);
}

void log_msg(const char *fmt, ...) {
        va_list ap;
        char *msg = NULL;

        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s: %s\n", ident, r < 0 ? fmt : msg);
        free(msg);
}

int usage_error(const char *fmt, ...) {
        va_list ap;
        int n = (int) strcspn(ident, "[");

        fprintf(stderr, "%.*s: ", n, ident);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry '%.*s --help' for more information.\n", n, ident);
        return EXIT_USAGE;
}

char *bad_option_text(int argc, char *argv[], int c, char *buf, size_t size) {
        const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        if (c == ':')
                snprintf(buf, size, "option '%s' needs a value", arg);
        else if (optopt > 0 && optopt < 0x100)
                snprintf(buf, size, "unknown option '-%c'", optopt);
        else
                snprintf(buf, size, "unknown option '%s'", arg);
        return buf;
}
