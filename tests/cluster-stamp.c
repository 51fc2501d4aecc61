/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Prints CLOCK_MONOTONIC in nanoseconds: the writers' Freeze and Thaw stamps of the cluster tests
 * (one machine, so every host's stamps are on one clock). */
#include <stdio.h>
#include <time.h>

int main(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        printf("%llu\n", (unsigned long long) ts.tv_sec * 1000000000ull + (unsigned long long) ts.tv_nsec);
        return 0;
}
