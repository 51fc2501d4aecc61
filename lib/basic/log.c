/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/basic/log.h"

static const char *ident = "openvss";

void log_set_ident(const char *s) {
        ident = s;
}

const char *log_ident(void) {
        return ident;
}

/* msg as one line of text: a control character (a newline, an escape; control_len(): a C1 or a
 * bidirectional one too) as \n, \t, \r or \xHH per byte, so a path or name from another user (a
 * writer's metadata) reaches a terminal or a log as text, never as an escape sequence, reordered
 * or on a line of its own. Newlines ending msg (a library's error text) are dropped. NULL when out
 * of memory. */
static char *printable(const char *msg) {
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                n--;
        char *out = malloc(4 * n + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0, left = 0; i < n; i++) {
                unsigned char c = (unsigned char) msg[i];
                if (left == 0)
                        left = control_len(msg + i);
                if (left == 0)
                        *o++ = (char) c;
                else if (c == '\n' || c == '\t' || c == '\r') {
                        *o++ = '\\';
                        *o++ = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
                } else
                        o += sprintf(o, "\\x%02x", c);
                left -= left > 0;
        }
        *o = 0;
        return out;
}

static void log_vline(const char *prefix, const char *fmt, va_list ap) {
        /* One line per call, built first, so lines of concurrent writers do not interleave. */
        char *msg = NULL, *line = NULL;
        if (vasprintf(&msg, fmt, ap) >= 0)
                line = printable(msg);
        fprintf(stderr, "%s: %s%s\n", ident, prefix, line ? line : "(a message was lost: out of memory)");
        free(line);
        free(msg);
}

void log_prefixed(const char *prefix, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_vline(prefix, fmt, ap);
        va_end(ap);
}

void log_msg(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_vline("", fmt, ap);
        va_end(ap);
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
