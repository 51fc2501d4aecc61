/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The writer face's handle, shared by lib/writer.c (life, connection, events) and
 * lib/writer-document.c (the backup components document seen from a callback). */

#include <systemd/sd-event.h>

#include "lib/client.h"
#include "lib/components.h"


/* Sessions a writer keeps what vssd said of at once: more than run at once (one set in creation
 * machine-wide; a few more waiting for BackupComplete), few enough that a flood costs little. */
#define WRITER_CONTEXTS_MAX 32

struct vss_writer {
        vss_writer_options opts;
        char *name, *instance_name;
        vss_writer_callbacks cb;
        void *userdata;

        sd_event *event;
        sd_bus *bus;
        sd_event_source *bus_io, *bus_time; /* the bus's own I/O (see the top of this file) */
        uint32_t bus_io_events;             /* what bus_io waits for now (edge-triggered) */
        uint64_t bus_until;                 /* when bus_time fires; UINT64_MAX: off */
        sd_event_source *window;
        sd_event_source *retry;             /* reconnecting: the next attempt */
        char *socket_path;                  /* as given to subscribe, for reconnecting */
        unsigned retry_ms;

        bool subscribed;   /* between vss_writer_subscribe() and unsubscribe, connected or not */
        bool bus_failed;   /* the bus is gone (seen inside sd_bus_process): drop it after */
        bool give_up;      /* vssd refused us for good: no more reconnecting */
        bool was_subscribed; /* a Subscribe succeeded once: the next one takes a new instance id */
        bool connected;    /* w->bus is subscribed (not connecting, not waiting for vssd) */

        bool frozen;       /* got Freeze, no Thaw or Abort yet */
        vss_id frozen_set; /* the snapshot set of that Freeze: a self-abort names it */
        bool self_aborted; /* thawed itself; the next Thaw fails with a timeout */
        bool exit_requested, lost;

        /* The current event's component records (backup components document) and whether the
         * callback annotated any: valid only while a callback runs. */
        vss_event cur_event;
        bool in_event, annotated;
        vss_bc_component *records;
        size_t n_records;

        /* Deferred events (vss_writer_defer()): the one the running callback deferred, the one
         * made current by vss_writer_resume(), and all of them not yet completed. */
        vss_writer_deferred *deferring, *resumed, *deferred;
        unsigned aborts; /* Aborts and lost connections so far: a Freeze deferred before one is stale */

        int32_t failure, app_code;
        char app_msg[VSS_MAX_MESSAGE + 1];
        char errmsg[512];

        /* What vssd said of sessions beside their events (lib/writer-context.c): one each until its
         * BackupShutdown; past WRITER_CONTEXTS_MAX, the least recently said of is replaced. */
        struct WriterContext {
                char *session;
                bool partial, bootable;
                uint32_t context;
                char **volumes;
                size_t n_volumes;
                uint64_t said; /* when, in w->ctx_said's count */
        } ctx[WRITER_CONTEXTS_MAX];
        uint64_t ctx_said;
};

/* lib/writer-context.c: the session's settings and volumes from vssd's Context call; a later
 * one of the same session replaces what it said. */
int writer_method_context(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* Fills info's settings and volumes from the context, for a backup's event of its session. */
void writer_context_fill(const vss_writer *w, const char *session, vss_event_info *info);
void writer_context_clear(vss_writer *w); /* all of them */
/* The session ended for the writer (its BackupShutdown is handled): what was said of it goes. */
void writer_context_forget(vss_writer *w, const char *session);
