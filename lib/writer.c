/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, writer face: subscribe, answer vssd's events through the application's callbacks, and
 * thaw by ourselves (Abort) when vssd goes away or the Freeze→Thaw window runs out; with
 * opts.reconnect, wait for vssd and subscribe again when it comes back.
 *
 * The connection's I/O is ours, not sd_bus_attach_event()'s: that adds a prepare callback per bus
 * which sd-event runs on every loop iteration, so a process holding N writers would pay O(N) per
 * message. Here each bus has an io source and a time source, re-armed only after its own
 * sd_bus_process(), so a message costs O(1) whatever the number of writers. The io source is
 * edge-triggered: sd-event dispatches one source per iteration and each epoll_wait would poll
 * every level-triggered socket still readable again (a Freeze to 1000 writers: O(N) per message).
 * A socket left unread (the per-wakeup limit) is run again through the time source. */

#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>

#include <systemd/sd-event.h>

#include "lib/writer-internal.h"

#define DEFAULT_WINDOW_MS 60000u
/* Reconnecting: the first retry after this, doubling up to the maximum (plus up to half of it at
 * random, so that many writers do not all knock at once). */
#define RETRY_MIN_MS 50u
#define RETRY_MAX_MS 5000u
/* Messages handled per wakeup of one bus, so that one busy connection does not starve others. */
#define MAX_PROCESS_PER_WAKEUP 64


_printf_(2, 3) static void set_errmsg(vss_writer *w, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->errmsg, sizeof(w->errmsg), fmt, ap);
        va_end(ap);
}

/* Copies a caller-filled structure whose last field of this version is size_t size (0: this
 * version's layout). A larger structure, from a newer header, is accepted when its fields unknown
 * here are all zero; a smaller non-zero size is no layout that ever had the field. */
#define COPY_SIZED(dst, src) copy_sized((dst), (src), sizeof(*(dst)), offsetof(__typeof__(*(dst)), size))
_Static_assert(offsetof(vss_writer_options, size) + sizeof(size_t) == sizeof(vss_writer_options), "size is last");
_Static_assert(offsetof(vss_writer_callbacks, size) + sizeof(size_t) == sizeof(vss_writer_callbacks), "size is last");

static int copy_sized(void *dst, const void *src, size_t dst_size, size_t size_offset) {
        size_t size;
        memcpy(&size, (const char *) src + size_offset, sizeof(size));
        if (size != 0 && size < dst_size)
                return -EINVAL;
        for (size_t i = dst_size; i < size; i++)
                if (((const char *) src)[i] != 0)
                        return -EINVAL;
        memcpy(dst, src, dst_size);
        return 0;
}

/* vss_writer_new has two versions: LIBVSS_0.2's (the default: structures with their size field)
 * and LIBVSS_0.1's, for programs built before it. Neither is defined under the plain name.
 * (.symver rather than the symver attribute, which clang lacks.) */
__asm__(".symver vss_writer_new_v0_2, vss_writer_new@@LIBVSS_0.2");
__asm__(".symver vss_writer_new_v0_1, vss_writer_new@LIBVSS_0.1");
int vss_writer_new_v0_2(const vss_writer_options *opts_in, const vss_writer_callbacks *cb, void *userdata,
                        vss_writer **ret);
int vss_writer_new_v0_1(const vss_writer_options *opts, const vss_writer_callbacks *cb, void *userdata,
                        vss_writer **ret);

VSS_EXPORT int vss_writer_new_v0_2(
                const vss_writer_options *opts_in, const vss_writer_callbacks *cb, void *userdata, vss_writer **ret) {
        vss_writer_options o;
        vss_writer_callbacks c = {};
        if (!opts_in || !ret || COPY_SIZED(&o, opts_in) < 0 || (cb && COPY_SIZED(&c, cb) < 0))
                return VSS_E_INVALIDARG;
        const vss_writer_options *opts = &o;
        if (isempty(opts->name) || !string_ok(opts->name, VSS_MAX_NAME) ||
            (opts->instance_name && !string_ok(opts->instance_name, VSS_MAX_NAME)) ||
            (unsigned) opts->app_level >= _VSS_APP_LEVEL_MAX || opts->freeze_window_ms > VSS_MAX_FREEZE_WINDOW_MS)
                return VSS_E_INVALIDARG;
        vss_writer *w = calloc(1, sizeof(*w));
        if (!w)
                return VSS_E_OUTOFMEMORY;
        w->opts = *opts;
        w->opts.size = sizeof(w->opts);
        w->name = strdup(opts->name);
        w->instance_name = strdup(strempty(opts->instance_name));
        if (!w->name || !w->instance_name) {
                vss_writer_free(w);
                return VSS_E_OUTOFMEMORY;
        }
        w->opts.name = w->name;
        w->opts.instance_name = w->instance_name;
        if (vss_id_is_null(&w->opts.class_id))
                vss_id_from_name(w->name, &w->opts.class_id);
        if (vss_id_is_null(&w->opts.instance_id))
                vss_id_new(&w->opts.instance_id);
        w->cb = c;
        w->userdata = userdata;
        *ret = w;
        return 0;
}

/* Their structures end where the fields of 0.2 (reconnect, size) begin. */
VSS_EXPORT int vss_writer_new_v0_1(
                const vss_writer_options *opts, const vss_writer_callbacks *cb, void *userdata, vss_writer **ret) {
        vss_writer_options o = {};
        vss_writer_callbacks c = {};
        if (opts)
                memcpy(&o, opts, offsetof(vss_writer_options, reconnect));
        if (cb)
                memcpy(&c, cb, offsetof(vss_writer_callbacks, size));
        return vss_writer_new_v0_2(opts ? &o : NULL, cb ? &c : NULL, userdata, ret);
}

static void bus_drop(vss_writer *w);
static void deferred_free(vss_writer *w, vss_writer_deferred *d);

static void self_abort(vss_writer *w, const char *why) {
        if (!w->frozen)
                return;
        w->frozen = false;
        w->self_aborted = true;
        w->window = sd_event_source_disable_unref(w->window);
        fprintf(stderr, "libvss: writer '%s' thaws itself: %s\n", w->name, why);
        if (w->cb.abort) {
                vss_event_info info = { .event = VSS_EVENT_ABORT, .snapshot_set_id = w->frozen_set };
                w->cb.abort(w, &info, w->userdata);
        }
}

VSS_EXPORT vss_writer *vss_writer_free(vss_writer *w) {
        if (!w)
                return NULL;
        self_abort(w, "the writer is being freed");
        w->window = sd_event_source_disable_unref(w->window);
        w->retry = sd_event_source_disable_unref(w->retry);
        while (w->deferred)
                deferred_free(w, w->deferred);
        bus_drop(w);
        sd_event_unref(w->event);
        writer_context_clear(w);
        free(w->socket_path);
        free(w->name);
        free(w->instance_name);
        free(w);
        return NULL;
}

/* The name before 0.2 (the lifetime convention of <vss/types.h>). */
VSS_EXPORT vss_writer *vss_writer_unref(vss_writer *w) __attribute__((alias("vss_writer_free")));

VSS_EXPORT int vss_writer_attach_event(vss_writer *w, void *sd_event_loop) {
        if (!w || !sd_event_loop || w->subscribed)
                return VSS_E_BAD_STATE;
        sd_event_unref(w->event);
        w->event = sd_event_ref(sd_event_loop);
        return 0;
}

static int on_window(sd_event_source *s, uint64_t usec, void *userdata) {
        self_abort(userdata, "its Freeze→Thaw window expired");
        return 0;
}

static bool run_callback(vss_writer *w, vss_event e, vss_event_info *info) {
        vss_writer_event_fn fn = NULL;
        switch (e) {
        case VSS_EVENT_PREPARE_BACKUP: fn = w->cb.prepare_backup; break;
        case VSS_EVENT_PREPARE_SNAPSHOT: fn = w->cb.prepare_snapshot; break;
        case VSS_EVENT_FREEZE: fn = w->cb.freeze; break;
        case VSS_EVENT_THAW: fn = w->cb.thaw; break;
        case VSS_EVENT_POST_SNAPSHOT: fn = w->cb.post_snapshot; break;
        case VSS_EVENT_ABORT: fn = w->cb.abort; break;
        case VSS_EVENT_BACKUP_COMPLETE: fn = w->cb.backup_complete; break;
        case VSS_EVENT_BACKUP_SHUTDOWN: fn = w->cb.backup_shutdown; break;
        case VSS_EVENT_PRE_RESTORE: fn = w->cb.pre_restore; break;
        case VSS_EVENT_POST_RESTORE: fn = w->cb.post_restore; break;
        default: break;
        }
        return fn ? fn(w, info, w->userdata) : true;
}

/* A writer's answer to an event, now or after vss_writer_defer(). */
struct vss_writer_deferred {
        vss_writer_deferred *next;
        sd_bus_message *msg;
        vss_event event;
        vss_id set_id;
        vss_bc_component *records;
        size_t n_records;
        bool annotated;
        unsigned aborts; /* w->aborts when it was deferred */
};

/* What an event's answer does to the writer (frozen or not, the window) and its document from
 * the annotations; returns ok, false when the document cannot be made. stale: a Freeze answered
 * after an Abort or a lost connection came. */
static bool event_finish(vss_writer *w, vss_event e, const vss_id *set_id, bool ok, bool stale, char **doc) {
        /* Annotations go back with the answer, in the document field. */
        if (w->annotated) {
                const vss_bc_component **list = calloc(w->n_records ? w->n_records : 1, sizeof(*list));
                for (size_t i = 0; list && i < w->n_records; i++)
                        list[i] = &w->records[i];
                if (!list || bcd_components_format(list, w->n_records, doc) < 0)
                        ok = false;
                free(list);
        }
        if (e == VSS_EVENT_FREEZE && ok) {
                w->frozen = true;
                w->frozen_set = *set_id;
                w->self_aborted = false;
                uint32_t ms = w->opts.freeze_window_ms ? w->opts.freeze_window_ms : DEFAULT_WINDOW_MS;
                w->window = sd_event_source_disable_unref(w->window);
                (void) sd_event_add_time_relative(w->event, &w->window, CLOCK_MONOTONIC, (uint64_t) ms * USEC_PER_MSEC,
                                                  1000, on_window, w);
                /* Frozen after the set was given up: nobody will say Thaw, so thaw now. */
                if (stale)
                        self_abort(w, "the set was aborted while it froze");
        }
        if (e == VSS_EVENT_THAW || e == VSS_EVENT_ABORT) {
                w->frozen = false;
                w->window = sd_event_source_disable_unref(w->window);
        }
        return ok;
}

/* A failure set is the answer even when the callback returned true: Microsoft documents a
 * writer's veto as SetWriterFailure() and returning TRUE (Identify aside: method_event() clears
 * it when identify returned true). A callback that failed without setting
 * one (or set S_OK) fails with VSS_E_WRITERERROR_NONRETRYABLE. */
static int event_reply(vss_writer *w, sd_bus_message *m, bool ok, const char *doc) {
        if (!ok && w->failure == 0)
                vss_writer_set_failure(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "");
        bool failed = w->failure != 0;
        return sd_bus_reply_method_return(m, "iiss", failed ? w->failure : 0, failed ? w->app_code : 0,
                                          failed ? w->app_msg : "", doc ? doc : "");
}

static int method_event(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        vss_writer *w = userdata;
        const char *ename, *session, *set_id;
        uint32_t backup_type;
        int component_mode, r;
        char **components = NULL;
        _cleanup_free_ char *doc = NULL;
        vss_writer_deferred *d = NULL;
        bool ok;

        r = sd_bus_message_read(m, "sssub", &ename, &session, &set_id, &backup_type, &component_mode);
        if (r < 0)
                return r;
        r = sd_bus_message_read_strv(m, &components);
        if (r < 0)
                return r;
        const char *records;
        char why[512] = "";
        int e = vss_event_from_name(ename);
        r = sd_bus_message_read(m, "s", &records);
        if (r >= 0 && !isempty(records) && bcd_components_parse(records, &w->records, &w->n_records, why, sizeof(why)) < 0)
                r = -EINVAL;
        if (e < 0 || r < 0) {
                for (char **c = components; c && *c; c++)
                        free(*c);
                free(components);
                if (e < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "unknown event '%s'", ename);
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "bad component records: %s", why);
        }
        size_t n = 0;
        while (components && components[n])
                n++;
        vss_event_info info = {
                .event = e,
                .backup_type = backup_type,
                .component_mode = component_mode,
                .n_components = n,
                .components = (const char *const *) components,
        };
        (void) vss_id_from_string(set_id, &info.snapshot_set_id);
        if (e != VSS_EVENT_IDENTIFY)
                (void) vss_id_from_string(session, &info.session_id);
        writer_context_fill(w, session, &info);
        w->failure = w->app_code = 0;
        w->app_msg[0] = 0;

        if (e == VSS_EVENT_IDENTIFY) {
                struct vss_metadata_builder md;
                if (metadata_builder_init(&md) < 0)
                        ok = false;
                else {
                        ok = !w->cb.identify || w->cb.identify(w, &md, w->userdata);
                        /* VSS forbids SetWriterFailure in OnIdentify: only false fails it (a
                         * failure set on the way to a fallback that worked is not a veto). */
                        if (ok)
                                w->failure = 0;
                        if (ok && metadata_builder_finish(&md, &w->opts, &doc) < 0)
                                ok = false;
                        metadata_builder_done(&md);
                }
        } else if (e == VSS_EVENT_THAW && w->self_aborted) {
                /* We thawed early: the copy cannot be called consistent. The set's Abort that
                 * follows finds self_aborted still set: OnAbort runs once per set. */
                ok = false;
                vss_writer_set_failure(w, VSS_E_WRITERERROR_TIMEOUT, 0,
                                       "the writer thawed itself before Thaw (window expired or vssd lost)");
        } else if (e == VSS_EVENT_ABORT && w->self_aborted && !w->frozen && vss_id_equal(&info.snapshot_set_id, &w->frozen_set)) {
                w->self_aborted = false; /* already aborted ourselves */
                ok = true;
        } else {
                w->cur_event = e;
                w->in_event = true;
                w->annotated = false;
                w->deferring = NULL;
                if (e == VSS_EVENT_ABORT)
                        w->aborts++;
                ok = run_callback(w, e, &info);
                w->in_event = false;
                d = w->deferring;
                if (d) {
                        /* Answered later, by vss_writer_complete(); the records go with it. */
                        w->deferring = NULL;
                        d->msg = sd_bus_message_ref(m);
                        d->event = e;
                        d->set_id = info.snapshot_set_id;
                        d->records = w->records;
                        d->n_records = w->n_records;
                        d->annotated = w->annotated;
                        d->aborts = w->aborts;
                        w->records = NULL;
                        w->n_records = 0;
                } else
                        ok = event_finish(w, e, &info.snapshot_set_id, ok, false, &doc);
        }
        /* Nothing more of the session comes after its BackupShutdown (a restore's PostRestore). */
        if (e == VSS_EVENT_BACKUP_SHUTDOWN || e == VSS_EVENT_POST_RESTORE)
                writer_context_forget(w, session);
        for (char **c = components; c && *c; c++)
                free(*c);
        free(components);
        bcd_components_free(w->records, w->n_records);
        w->records = NULL;
        w->n_records = 0;
        if (d)
                return 1; /* no answer yet */
        return event_reply(w, m, ok, doc);
}

static int method_ping(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return sd_bus_reply_method_return(m, NULL);
}

static const sd_bus_vtable writer_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Event",
                                SD_BUS_ARGS("s", event, "s", session_id, "s", snapshot_set_id, "u", backup_type, "b",
                                            component_mode, "as", components, "s", records),
                                SD_BUS_RESULT("i", failure, "i", application_code, "s", application_message, "s",
                                              document),
                                method_event, 0),
        SD_BUS_METHOD("Ping", "", "", method_ping, 0),
        SD_BUS_METHOD_WITH_ARGS("Context", SD_BUS_ARGS("s", session_id, "s", context), SD_BUS_NO_RESULT,
                                writer_method_context, 0),
        SD_BUS_VTABLE_END,
};

/* ---- the connection's I/O (see the top of this file) ---- */

static void bus_drop(vss_writer *w) {
        w->bus_io = sd_event_source_disable_unref(w->bus_io);
        w->bus_time = sd_event_source_disable_unref(w->bus_time);
        w->bus = sd_bus_flush_close_unref(w->bus);
        w->connected = w->bus_failed = false;
}

/* Tells the io and time sources what the bus waits for now: after every sd_bus_process() and
 * every message sent outside it. A message already read (a reply's neighbour, say) makes the
 * timeout 0, so it is processed on the next iteration. */
static int bus_arm(vss_writer *w, bool more) {
        uint64_t until;
        int r;
        if (!sd_bus_is_open(w->bus)) {
                /* Closing: the next sd_bus_process() closes the socket, and epoll must forget it
                 * first (a forked child holding the socket would keep it registered, pointing
                 * at a freed source). Then the closing is processed at once. */
                w->bus_io = sd_event_source_disable_unref(w->bus_io);
                w->bus_until = 0;
                r = sd_event_source_set_time(w->bus_time, 0);
                return r < 0 ? r : sd_event_source_set_enabled(w->bus_time, SD_EVENT_ONESHOT);
        }
        int events = sd_bus_get_events(w->bus);
        if (events < 0)
                return events;
        /* Changed only: each change is an epoll_ctl(), which also reports what is ready now. */
        if ((uint32_t) events != w->bus_io_events) {
                r = sd_event_source_set_io_events(w->bus_io, (uint32_t) events | EPOLLET);
                if (r < 0)
                        return r;
                w->bus_io_events = (uint32_t) events;
        }
        r = sd_bus_get_timeout(w->bus, &until);
        if (r < 0)
                return r;
        if (r == 0)
                until = UINT64_MAX;
        if (more)
                until = 0; /* the socket may hold more: no edge will say so */
        if (until == w->bus_until)
                return 0;
        w->bus_until = until;
        if (until == UINT64_MAX)
                return sd_event_source_set_enabled(w->bus_time, SD_EVENT_OFF);
        r = sd_event_source_set_time(w->bus_time, until);
        return r < 0 ? r : sd_event_source_set_enabled(w->bus_time, SD_EVENT_ONESHOT);
}

static void retry_schedule(vss_writer *w);

/* The bus is gone: wait and reconnect, or say it is lost (vss_writer_run() then returns). */
static void connection_lost(vss_writer *w) {
        bool was_connected = w->connected;
        bus_drop(w);
        if (!w->opts.reconnect || w->give_up || !w->subscribed) {
                w->lost = true;
                return;
        }
        if (was_connected)
                fprintf(stderr, "libvss: writer '%s' lost its connection to vssd; reconnecting\n", w->name);
        retry_schedule(w);
}

static int bus_process(vss_writer *w) {
        sd_bus *bus = sd_bus_ref(w->bus);
        int r = 0;
        unsigned i;
        /* A callback may unsubscribe (w->bus then changes); the bus lives until we are done. */
        for (i = 0; i < MAX_PROCESS_PER_WAKEUP && w->bus == bus && !w->bus_failed; i++) {
                if (w->bus_io && !sd_bus_is_open(bus)) /* see bus_arm() */
                        w->bus_io = sd_event_source_disable_unref(w->bus_io);
                r = sd_bus_process(bus, NULL);
                if (r <= 0)
                        break;
        }
        /* r > 0 at the limit: more may wait in the socket. 0: sd-bus read until it would block. */
        if (w->bus == bus && !w->bus_failed && (r < 0 || bus_arm(w, r > 0) < 0)) {
                w->aborts++;
                self_abort(w, "the connection to vssd was lost");
                set_errmsg(w, "%s", "the connection to vssd was lost");
                w->bus_failed = true;
        }
        if (w->bus == bus && w->bus_failed)
                connection_lost(w);
        sd_bus_unref(bus);
        return 0;
}

static int on_bus_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        return bus_process(userdata);
}

static int on_bus_time(sd_event_source *s, uint64_t usec, void *userdata) {
        vss_writer *w = userdata;
        w->bus_until = UINT64_MAX; /* a oneshot: off now */
        return bus_process(w);
}

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        vss_writer *w = userdata;
        w->aborts++; /* a Freeze deferred now can no longer count */
        self_abort(w, "the connection to vssd was lost");
        set_errmsg(w, "%s", "the connection to vssd was lost");
        w->bus_failed = true; /* dropped once sd_bus_process() returns */
        return 0;
}

/* Connects (w->bus) and sets up the writer object and the bus's sources; 0 or -errno, the
 * connect's own errors as vss_connect() gives them. */
static int bus_open(vss_writer *w) {
        int r = vss_connect(w->socket_path, &w->bus);
        if (r < 0)
                return r;
        /* Events are handled by the object; the disconnect is how we learn vssd is gone. */
        r = sd_bus_add_object_vtable(w->bus, NULL, VSS_WRITER_PATH, VSS_WRITER_INTERFACE, writer_vtable, w);
        if (r >= 0)
                r = sd_bus_match_signal(w->bus, NULL, NULL, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                        "Disconnected", on_disconnected, w);
        if (r >= 0)
                r = sd_event_add_io(w->event, &w->bus_io, sd_bus_get_fd(w->bus), 0, on_bus_io, w);
        if (r >= 0)
                r = sd_event_add_time(w->event, &w->bus_time, CLOCK_MONOTONIC, 0, 1, on_bus_time, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->bus_time, SD_EVENT_OFF);
        w->bus_io_events = 0;
        w->bus_until = UINT64_MAX;
        if (r < 0) {
                bus_drop(w);
                return r == -ENOMEM ? r : -EIO;
        }
        return 0;
}

static int subscribe_message(vss_writer *w, sd_bus_message **ret) {
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX];
        int r = sd_bus_message_new_method_call(w->bus, ret, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "Subscribe");
        if (r >= 0)
                r = sd_bus_message_append(*ret, "ssssuu", vss_id_to_string(&w->opts.class_id, wid),
                                          vss_id_to_string(&w->opts.instance_id, iid), w->name, w->instance_name,
                                          (uint32_t) w->opts.app_level, w->opts.freeze_window_ms);
        return r;
}

static void subscribed(vss_writer *w) {
        w->connected = w->was_subscribed = true;
        w->lost = w->give_up = false;
        w->retry_ms = 0;
}

/* A Subscribe of reconnecting came back. */
static int on_resubscribed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        vss_writer *w = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        char iid[VSS_ID_STRING_MAX];

        if (!e) {
                fprintf(stderr, "libvss: writer '%s' subscribed%s as instance %s\n", w->name,
                        w->was_subscribed ? " again" : "", vss_id_to_string(&w->opts.instance_id, iid));
                subscribed(w);
                return 0;
        }
        int32_t hr = vss_hr_from_bus_error(e, sd_bus_message_get_errno(m));
        vss_format_error(w->errmsg, sizeof(w->errmsg), hr, e, "Subscribe");
        /* vssd refuses this identity for good; anything else (vssd going away again, its limits)
         * may pass. */
        if (hr == VSS_E_INVALIDARG || hr == VSS_E_ACCESSDENIED) {
                fprintf(stderr, "libvss: writer '%s' stops reconnecting: %s\n", w->name, w->errmsg);
                w->give_up = true;
        }
        w->bus_failed = true;
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        vss_writer *w = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

        w->retry = sd_event_source_disable_unref(w->retry);
        /* vssd may still hold the old instance (a connection it has not seen close): a new one. */
        if (w->was_subscribed)
                vss_id_new(&w->opts.instance_id);
        int r = bus_open(w);
        if (r >= 0)
                r = subscribe_message(w, &m);
        if (r >= 0)
                r = sd_bus_call_async(w->bus, NULL, m, on_resubscribed, w, 0);
        if (r >= 0)
                r = bus_arm(w, false);
        if (r < 0) {
                bus_drop(w);
                retry_schedule(w);
        }
        return 0;
}

static void retry_schedule(vss_writer *w) {
        w->retry_ms = !w->retry_ms ? RETRY_MIN_MS : w->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : w->retry_ms * 2;
        uint64_t usec = (uint64_t) w->retry_ms * USEC_PER_MSEC;
        usec += (now_monotonic_usec() ^ (uintptr_t) w) % (usec / 2 + 1);
        w->retry = sd_event_source_disable_unref(w->retry);
        if (sd_event_add_time_relative(w->event, &w->retry, CLOCK_MONOTONIC, usec, USEC_PER_MSEC, on_retry, w) < 0) {
                set_errmsg(w, "%s", "cannot wait for vssd: no timer");
                w->lost = true;
        }
}

VSS_EXPORT int vss_writer_subscribe(vss_writer *w, const char *socket_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!w)
                return VSS_E_INVALIDARG;
        if (w->subscribed) {
                set_errmsg(w, "%s", "already subscribed");
                return VSS_E_BAD_STATE;
        }
        if (!w->event) {
                r = sd_event_new(&w->event);
                if (r < 0)
                        return vss_hr_from_errno(r);
        }
        free(w->socket_path);
        w->socket_path = NULL;
        if (socket_path && !(w->socket_path = strdup(socket_path)))
                return VSS_E_OUTOFMEMORY;
        r = bus_open(w);
        if (r == -EPERM) {
                set_errmsg(w, "%s", "refusing the socket: its listener is neither root nor this user, so not vssd");
                return VSS_E_WRITER_INFRASTRUCTURE;
        }
        if (r < 0 && w->opts.reconnect && r != -ENAMETOOLONG && r != -ENOMEM) {
                /* vssd is not there yet: the writer waits for it on its event loop. */
                fprintf(stderr, "libvss: writer '%s' waits for vssd (cannot connect: %s)\n", w->name, strerror(-r));
                w->subscribed = true;
                w->lost = w->give_up = false;
                w->retry_ms = 0;
                retry_schedule(w);
                return w->lost ? VSS_E_OUTOFMEMORY : 0;
        }
        if (r < 0) {
                set_errmsg(w, "cannot connect to vssd: %s", strerror(-r));
                return VSS_E_WRITER_INFRASTRUCTURE;
        }
        r = subscribe_message(w, &m);
        if (r >= 0)
                r = sd_bus_call(w->bus, m, 0, &error, NULL);
        if (r >= 0)
                r = bus_arm(w, false);
        if (r < 0) {
                int32_t hr = vss_hr_from_bus_error(&error, r);
                vss_format_error(w->errmsg, sizeof(w->errmsg), hr, &error, "Subscribe");
                if (!error.message)
                        set_errmsg(w, "Subscribe failed: %s", strerror(-r));
                bus_drop(w);
                return hr;
        }
        w->subscribed = true;
        subscribed(w);
        return 0;
}

VSS_EXPORT int vss_writer_unsubscribe(vss_writer *w) {
        if (!w || !w->subscribed)
                return VSS_E_BAD_STATE;
        self_abort(w, "the writer unsubscribed");
        w->retry = sd_event_source_disable_unref(w->retry);
        if (w->connected)
                (void) sd_bus_call_method(w->bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "Unsubscribe", NULL, NULL, NULL);
        bus_drop(w);
        w->subscribed = false;
        return 0;
}

VSS_EXPORT int vss_writer_run(vss_writer *w) {
        if (!w || !w->subscribed)
                return VSS_E_BAD_STATE;
        w->exit_requested = false;
        while (!w->exit_requested && !w->lost) {
                int r = sd_event_run(w->event, UINT64_MAX);
                if (r < 0) {
                        set_errmsg(w, "event loop failed: %s", strerror(-r));
                        return VSS_E_WRITER_INFRASTRUCTURE;
                }
                if (sd_event_get_state(w->event) == SD_EVENT_FINISHED)
                        break;
        }
        return w->lost ? VSS_E_WRITER_INFRASTRUCTURE : 0;
}

VSS_EXPORT void vss_writer_exit(vss_writer *w) {
        if (w)
                w->exit_requested = true;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        vss_writer_exit(userdata);
        return 0;
}

VSS_EXPORT int vss_writer_main(vss_writer *w, const char *socket_path, const char *prog) {
        sigset_t mask;
        int r;
        if (!w || w->subscribed)
                return 1;
        prog = prog ? prog : "writer";
        /* SIGTERM and SIGINT end the loop; the caller's vss_writer_free() then aborts a freeze. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (!w->event && sd_event_default(&w->event) < 0) {
                fprintf(stderr, "%s: cannot set up the event loop\n", prog);
                return 1;
        }
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || sd_event_add_signal(w->event, NULL, SIGTERM, on_stop_signal, w) < 0 ||
            sd_event_add_signal(w->event, NULL, SIGINT, on_stop_signal, w) < 0) {
                fprintf(stderr, "%s: cannot handle SIGTERM and SIGINT\n", prog);
                return 1;
        }
        r = vss_writer_subscribe(w, socket_path);
        if (r < 0) {
                fprintf(stderr, "%s[%s]: cannot subscribe: %s\n", prog, w->name, *w->errmsg ? w->errmsg : vss_strerror(r));
                return 1;
        }
        if (w->connected) /* else libvss said it waits for vssd */
                fprintf(stderr, "%s[%s]: subscribed\n", prog, w->name);
        r = vss_writer_run(w);
        if (r < 0) {
                fprintf(stderr, "%s[%s]: connection to vssd lost: %s\n", prog, w->name,
                        *w->errmsg ? w->errmsg : vss_strerror(r));
                return 1;
        }
        return 0;
}

VSS_EXPORT int vss_writer_get_fd(vss_writer *w) {
        if (!w || !w->event)
                return VSS_E_BAD_STATE;
        return sd_event_get_fd(w->event);
}

VSS_EXPORT int vss_writer_dispatch(vss_writer *w) {
        if (!w || !w->event)
                return VSS_E_BAD_STATE;
        int r;
        do
                r = sd_event_run(w->event, 0);
        while (r > 0);
        if (r < 0)
                return VSS_E_WRITER_INFRASTRUCTURE;
        return w->lost ? VSS_E_WRITER_INFRASTRUCTURE : 0;
}

VSS_EXPORT vss_writer_deferred *vss_writer_defer(vss_writer *w) {
        if (!w || !w->in_event || w->resumed)
                return NULL;
        if (!w->deferring) {
                w->deferring = calloc(1, sizeof(*w->deferring));
                if (!w->deferring)
                        return NULL;
                w->deferring->next = w->deferred;
                w->deferred = w->deferring;
        }
        return w->deferring;
}

static bool deferred_known(vss_writer *w, vss_writer_deferred *d) {
        for (vss_writer_deferred *i = w->deferred; i; i = i->next)
                if (i == d && i->msg)
                        return true;
        return false;
}

static void deferred_free(vss_writer *w, vss_writer_deferred *d) {
        for (vss_writer_deferred **p = &w->deferred; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        break;
                }
        sd_bus_message_unref(d->msg);
        bcd_components_free(d->records, d->n_records);
        free(d);
}

VSS_EXPORT int vss_writer_resume(vss_writer *w, vss_writer_deferred *d) {
        if (!w || w->in_event || !deferred_known(w, d))
                return VSS_E_BAD_STATE;
        w->in_event = true;
        w->resumed = d;
        w->cur_event = d->event;
        w->records = d->records;
        w->n_records = d->n_records;
        w->annotated = d->annotated;
        w->failure = w->app_code = 0;
        w->app_msg[0] = 0;
        return 0;
}

VSS_EXPORT int vss_writer_complete(vss_writer *w, vss_writer_deferred *d, bool ok) {
        _cleanup_free_ char *doc = NULL;
        if (!w || (w->in_event && w->resumed != d) || !deferred_known(w, d))
                return VSS_E_BAD_STATE;
        if (!w->resumed)
                (void) vss_writer_resume(w, d);
        ok = event_finish(w, d->event, &d->set_id, ok, d->aborts != w->aborts, &doc);
        d->records = w->records; /* annotations may have grown the records */
        w->records = NULL;
        w->n_records = 0;
        w->in_event = false;
        w->resumed = NULL;
        sd_bus *bus = sd_bus_message_get_bus(d->msg);
        int r = event_reply(w, d->msg, ok, doc);
        /* Sent outside sd_bus_process(): what is left to write needs POLLOUT. */
        if (w->bus && bus == w->bus && !w->bus_failed)
                (void) bus_arm(w, false);
        deferred_free(w, d);
        return r < 0 ? VSS_E_WRITER_INFRASTRUCTURE : 0;
}

VSS_EXPORT const vss_writer_options *vss_writer_get_options(vss_writer *w) {
        return w ? &w->opts : NULL;
}

VSS_EXPORT bool vss_writer_is_frozen(vss_writer *w) {
        return w && w->frozen;
}

VSS_EXPORT const char *vss_writer_errmsg(vss_writer *w) {
        return w ? w->errmsg : "no writer";
}
