/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "daemon/timer.h"

int timer_later(sd_event *e, sd_event_source **s, uint64_t usec, uint64_t accuracy,
                sd_event_time_handler_t handler, void *userdata) {
        if (!*s)
                return sd_event_add_time_relative(e, s, CLOCK_MONOTONIC, usec, accuracy, handler, userdata);
        int r = sd_event_source_set_time_relative(*s, usec);
        return r < 0 ? r : sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
}
