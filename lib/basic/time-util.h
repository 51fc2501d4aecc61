/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Clocks. Monotonic for deadlines and durations, realtime only for what is shown or stored. */

#include <stdint.h>
#include <time.h>

uint64_t now_clock_usec(clockid_t clock);
uint64_t now_clock_nsec(clockid_t clock);
static inline uint64_t now_realtime_usec(void) { return now_clock_usec(CLOCK_REALTIME); }
static inline uint64_t now_monotonic_usec(void) { return now_clock_usec(CLOCK_MONOTONIC); }
static inline uint64_t now_monotonic_msec(void) { return now_clock_usec(CLOCK_MONOTONIC) / 1000u; }
static inline uint64_t now_monotonic_nsec(void) { return now_clock_nsec(CLOCK_MONOTONIC); }

#define FORMAT_TIMESTAMP_MAX 32
/* "2026-11-25T11:30:00Z" (UTC, whole seconds) into buf of FORMAT_TIMESTAMP_MAX bytes. */
char *format_timestamp(uint64_t usec, char *buf);
