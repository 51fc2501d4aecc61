/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "lib/basic/log.h"
#include "lib/basic/parse-util.h"
#include "writers/writer-util.h"

#define MSG_MAX 1023

void writer_log_name(const char *prog, const char *name) {
        static char ident[64 + 256 + 3];

        snprintf(ident, sizeof ident, "%s[%s]", prog, name);
        log_set_ident(ident);
}

bool writer_fail(vss_writer *w, int32_t hr, int32_t code, const char *fmt, ...) {
        char msg[MSG_MAX + 1];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_msg("failed 0x%08x (code %" PRId32 "): %s", (unsigned) hr, code, msg);
        vss_writer_set_failure(w, hr, code, msg);
        return false;
}

int writer_parse_ms(const char *s, const char *what, uint32_t *ret) {
        if (parse_msec(s, ret) < 0)
                return usage_error("invalid %s '%s', expected milliseconds", what, s);
        return 0;
}
