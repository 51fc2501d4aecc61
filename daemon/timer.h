/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

/* A one-shot timer usec from now on *s (made on first use, re-armed after), so a source is made
 * once and kept. 0, or <0 when it cannot be armed. */
int timer_later(sd_event *e, sd_event_source **s, uint64_t usec, uint64_t accuracy,
                sd_event_time_handler_t handler, void *userdata);
