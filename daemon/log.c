/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssd's log lines, with a syslog priority prefix when stderr is the journal. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "daemon/log.h"
#include "lib/common.h"

/* stderr is the journal's stream when $JOURNAL_STREAM ("DEV:INO") names stderr's own file: a
 * child whose stderr was redirected elsewhere inherits the variable but not the match. */
static bool stderr_is_journal(void) {
        static int known = -1;
        if (known < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long long dev, ino;
                struct stat st;
                known = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                        (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
        }
        return known;
}

void vssd_log(int priority, const char *prefix, const char *fmt, ...) {
        va_list ap;
        char *msg = NULL;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        /* One line, whatever a client sent (writer messages, names, paths): a newline would forge
         * a log line (with its own priority, in the journal), an escape would reach a terminal. */
        (void) controls_replaced(r < 0 ? NULL : msg, '?');
        /* One write per line, so lines of children sharing stderr do not interleave. */
        if (stderr_is_journal())
                fprintf(stderr, "<%d>%s: %s%s\n", priority, log_ident(), prefix, r < 0 ? fmt : msg);
        else
                log_prefixed(prefix, "%s", r < 0 ? fmt : msg);
        free(msg);
}
