/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A subscribed writer: one per connection at most. Its class id is bound to a uid (by the config,
 * else by the first uid that registers it, for good, in the registry). Its last known status
 * is kept for ListWriters. writer.c knows no session: the Manager tells them when a writer goes. */

#include <stdint.h>

#include <vss/types.h>

#include "daemon/connection.h"
#include "daemon/list.h"
#include "daemon/sequence.h"
#include "lib/common.h"

struct Writer {
        Manager *manager;
        Connection *connection;
        vss_id class_id;
        vss_id instance_id;
        char name[VSS_MAX_NAME + 1];
        char instance_name[VSS_MAX_NAME + 1];
        vss_app_level level;
        uint32_t window_ms;
        /* Admin view: last known status, the session it comes from and when. */
        StatusSlot last;
        char last_note[128];
        vss_id last_session;
        uint64_t last_usec;
        LIST_FIELDS(Writer, writers);
};

/* The class bindings earlier runs recorded in the registry. */
int writer_load_bindings(Manager *m);
/* Unlinks and frees w (its sessions must have been told: session_writer_gone()). */
Writer *writer_free(Writer *w);
/* Keeps a slot's status as the writer's last known one, for ListWriters; note: "aborted", ... */
void writer_note_status(Writer *w, const vss_id *session_id, const StatusSlot *status, const char *note);
