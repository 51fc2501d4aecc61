/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "lib/basic/macro.h"
#include "lib/basic/time-util.h"

/* Not NSEC_PER_SEC: some files define their own, signed. */
static const uint64_t nsec_per_sec = 1000000000ULL, nsec_per_usec = 1000ULL;

uint64_t now_clock_nsec(clockid_t clock) {
        struct timespec ts;
        /* Only an invalid clock id fails, and every caller passes a constant. */
        (void) clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * nsec_per_sec + (uint64_t) ts.tv_nsec;
}

uint64_t now_clock_usec(clockid_t clock) {
        return now_clock_nsec(clock) / nsec_per_usec;
}

char *format_timestamp(uint64_t usec, char *buf) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, FORMAT_TIMESTAMP_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
}
