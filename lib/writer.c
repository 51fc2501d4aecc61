/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, writer face: subscribe, answer vssd's events through the application's callbacks, and
 * thaw by ourselves (Abort) when vssd goes away or the Freeze→Thaw window runs out. */

#include <signal.h>
#include <stdarg.h>

#include <systemd/sd-event.h>

#include "lib/client.h"
#include "lib/components.h"

#define DEFAULT_WINDOW_MS 60000u

struct vss_writer {
        vss_writer_options opts;
        char *name, *instance_name;
        vss_writer_callbacks cb;
        void *userdata;

        sd_event *event;
        sd_bus *bus;
        sd_event_source *window;

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

        bool failure_set;
        int32_t failure, app_code;
        char app_msg[VSS_MAX_MESSAGE + 1];
        char errmsg[512];
};

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

/* Their structures end where the size field begins. */
VSS_EXPORT int vss_writer_new_v0_1(
                const vss_writer_options *opts, const vss_writer_callbacks *cb, void *userdata, vss_writer **ret) {
        vss_writer_options o = {};
        vss_writer_callbacks c = {};
        if (opts)
                memcpy(&o, opts, offsetof(vss_writer_options, size));
        if (cb)
                memcpy(&c, cb, offsetof(vss_writer_callbacks, size));
        return vss_writer_new_v0_2(opts ? &o : NULL, cb ? &c : NULL, userdata, ret);
}

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
        sd_bus_flush_close_unref(w->bus);
        sd_event_unref(w->event);
        free(w->name);
        free(w->instance_name);
        free(w);
        return NULL;
}

/* The name before 0.2 (the lifetime convention of <vss/types.h>). */
VSS_EXPORT vss_writer *vss_writer_unref(vss_writer *w) __attribute__((alias("vss_writer_free")));

VSS_EXPORT int vss_writer_attach_event(vss_writer *w, void *sd_event_loop) {
        if (!w || !sd_event_loop || w->bus)
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

static int method_event(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        vss_writer *w = userdata;
        const char *ename, *session, *set_id;
        uint32_t backup_type;
        int component_mode, r;
        char **components = NULL;
        _cleanup_free_ char *doc = NULL;
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
        w->failure_set = false;
        w->failure = w->app_code = 0;
        w->app_msg[0] = 0;

        if (e == VSS_EVENT_IDENTIFY) {
                struct vss_metadata_builder md;
                if (metadata_builder_init(&md) < 0)
                        ok = false;
                else {
                        ok = !w->cb.identify || w->cb.identify(w, &md, w->userdata);
                        if (ok && metadata_builder_finish(&md, &w->opts, &doc) < 0)
                                ok = false;
                        metadata_builder_done(&md);
                }
        } else if (e == VSS_EVENT_THAW && w->self_aborted) {
                /* We thawed early: the copy cannot be called consistent. */
                w->self_aborted = false;
                ok = false;
                vss_writer_set_failure(w, VSS_E_WRITERERROR_TIMEOUT, 0,
                                       "the writer thawed itself before Thaw (window expired or vssd lost)");
        } else if (e == VSS_EVENT_ABORT && w->self_aborted && !w->frozen) {
                w->self_aborted = false; /* already aborted ourselves */
                ok = true;
        } else {
                w->cur_event = e;
                w->in_event = true;
                w->annotated = false;
                ok = run_callback(w, e, &info);
                w->in_event = false;
                /* Annotations go back with the answer, in the document field. */
                if (w->annotated) {
                        const vss_bc_component **list = calloc(w->n_records ? w->n_records : 1, sizeof(*list));
                        for (size_t i = 0; list && i < w->n_records; i++)
                                list[i] = &w->records[i];
                        if (!list || bcd_components_format(list, w->n_records, &doc) < 0)
                                ok = false;
                        free(list);
                }
                if (e == VSS_EVENT_FREEZE && ok) {
                        w->frozen = true;
                        w->frozen_set = info.snapshot_set_id;
                        w->self_aborted = false;
                        uint32_t ms = w->opts.freeze_window_ms ? w->opts.freeze_window_ms : DEFAULT_WINDOW_MS;
                        w->window = sd_event_source_disable_unref(w->window);
                        (void) sd_event_add_time_relative(w->event, &w->window, CLOCK_MONOTONIC,
                                                          (uint64_t) ms * USEC_PER_MSEC, 1000, on_window, w);
                }
                if (e == VSS_EVENT_THAW || e == VSS_EVENT_ABORT) {
                        w->frozen = false;
                        w->window = sd_event_source_disable_unref(w->window);
                }
        }
        for (char **c = components; c && *c; c++)
                free(*c);
        free(components);
        bcd_components_free(w->records, w->n_records);
        w->records = NULL;
        w->n_records = 0;

        if (!ok && !w->failure_set)
                vss_writer_set_failure(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "");
        return sd_bus_reply_method_return(m, "iiss", ok ? 0 : w->failure, ok ? 0 : w->app_code, ok ? "" : w->app_msg,
                                          doc ? doc : "");
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
        SD_BUS_VTABLE_END,
};

static int on_disconnected(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        vss_writer *w = userdata;
        w->lost = true;
        self_abort(w, "the connection to vssd was lost");
        set_errmsg(w, "%s", "the connection to vssd was lost");
        return 0;
}

VSS_EXPORT int vss_writer_subscribe(vss_writer *w, const char *socket_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX];
        int r;

        if (!w)
                return VSS_E_INVALIDARG;
        if (w->bus) {
                set_errmsg(w, "%s", "already subscribed");
                return VSS_E_BAD_STATE;
        }
        if (!w->event) {
                r = sd_event_new(&w->event);
                if (r < 0)
                        return vss_hr_from_errno(r);
        }
        r = vss_connect(socket_path, &w->bus);
        if (r == -EPERM) {
                set_errmsg(w, "%s", "refusing the socket: its listener is neither root nor this user, so not vssd");
                return VSS_E_WRITER_INFRASTRUCTURE;
        }
        if (r < 0) {
                set_errmsg(w, "cannot connect to vssd: %s", strerror(-r));
                return VSS_E_WRITER_INFRASTRUCTURE;
        }
        /* Events are handled by the object; the disconnect is how we learn vssd is gone. */
        r = sd_bus_add_object_vtable(w->bus, NULL, VSS_WRITER_PATH, VSS_WRITER_INTERFACE, writer_vtable, w);
        if (r >= 0)
                r = sd_bus_match_signal(w->bus, NULL, NULL, "/org/freedesktop/DBus/Local", "org.freedesktop.DBus.Local",
                                        "Disconnected", on_disconnected, w);
        if (r >= 0)
                r = sd_bus_attach_event(w->bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r >= 0)
                r = sd_bus_call_method(w->bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "Subscribe", &error, NULL, "ssssuu",
                                       vss_id_to_string(&w->opts.class_id, wid),
                                       vss_id_to_string(&w->opts.instance_id, iid), w->name, w->instance_name,
                                       (uint32_t) w->opts.app_level, w->opts.freeze_window_ms);
        if (r < 0) {
                int32_t hr = vss_hr_from_bus_error(&error, r);
                vss_format_error(w->errmsg, sizeof(w->errmsg), hr, &error, "Subscribe");
                if (!error.message)
                        set_errmsg(w, "Subscribe failed: %s", strerror(-r));
                w->bus = sd_bus_flush_close_unref(w->bus);
                return hr;
        }
        w->lost = false;
        return 0;
}

VSS_EXPORT int vss_writer_unsubscribe(vss_writer *w) {
        if (!w || !w->bus)
                return VSS_E_BAD_STATE;
        self_abort(w, "the writer unsubscribed");
        (void) sd_bus_call_method(w->bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "Unsubscribe", NULL, NULL, NULL);
        w->bus = sd_bus_flush_close_unref(w->bus);
        return 0;
}

VSS_EXPORT int vss_writer_run(vss_writer *w) {
        if (!w || !w->bus)
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
        if (!w || w->bus)
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

VSS_EXPORT int vss_writer_set_failure(vss_writer *w, int32_t failure, int32_t application_code,
                                      const char *application_message) {
        if (!w)
                return VSS_E_INVALIDARG;
        w->failure_set = true;
        w->failure = failure;
        w->app_code = application_code;
        utf8_copy(w->app_msg, sizeof(w->app_msg), application_message);
        return 0;
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

/* The backup components document, from inside an event callback. */

static vss_bc_component *record_find(vss_writer *w, const char *logical_path, const char *name) {
        if (!w || !w->in_event || !name)
                return NULL;
        for (size_t i = 0; i < w->n_records; i++)
                if (streq(w->records[i].logical_path, strempty(logical_path)) && streq(w->records[i].name, name))
                        return &w->records[i];
        return NULL;
}

VSS_EXPORT const vss_bc_component *vss_writer_get_component(vss_writer *w, const char *logical_path,
                                                            const char *name) {
        return record_find(w, logical_path, name);
}

/* Sets a writer-owned field of a record when the current event allows it. */
static int annotate(vss_writer *w, const char *logical_path, const char *name, const vss_event *allowed,
                    size_t n_allowed, const char **field, const char *value, size_t max) {
        if (!w || !w->in_event)
                return VSS_E_BAD_STATE;
        bool ok = false;
        for (size_t i = 0; i < n_allowed; i++)
                ok = ok || w->cur_event == allowed[i];
        if (!ok)
                return VSS_E_BAD_STATE; /* read-only from BackupComplete, and outside its events */
        vss_bc_component *c = record_find(w, logical_path, name);
        if (!c)
                return VSS_E_OBJECT_NOT_FOUND;
        if (field) {
                if (!string_ok(strempty(value), max))
                        return VSS_E_INVALIDARG;
                if (bcd_set(field, value) < 0)
                        return VSS_E_OUTOFMEMORY;
        }
        w->annotated = true;
        return 0;
}

static const vss_event backup_events[] = { VSS_EVENT_PREPARE_BACKUP, VSS_EVENT_PREPARE_SNAPSHOT, VSS_EVENT_FREEZE,
                                           VSS_EVENT_THAW, VSS_EVENT_POST_SNAPSHOT };

VSS_EXPORT int vss_writer_set_backup_stamp(vss_writer *w, const char *logical_path, const char *name,
                                           const char *stamp) {
        vss_bc_component *c = record_find(w, logical_path, name);
        return annotate(w, logical_path, name, backup_events, ELEMENTSOF(backup_events), c ? &c->backup_stamp : NULL,
                        stamp, VSS_MAX_STRING);
}

VSS_EXPORT int vss_writer_add_backup_files(vss_writer *w, const char *logical_path, const char *name, const char *path,
                                           const char *filespec, bool recursive, const char *stored_as) {
        if (!path || path[0] != '/' || !string_ok(path, VSS_MAX_STRING) || !string_ok(strempty(filespec), VSS_MAX_NAME) ||
            !stored_as || stored_as[0] != '/' || !string_ok(stored_as, VSS_MAX_STRING))
                return VSS_E_INVALIDARG;
        int r = annotate(w, logical_path, name, backup_events, ELEMENTSOF(backup_events), NULL, NULL, 0);
        if (r < 0)
                return r;
        r = bcd_add_writer_file(record_find(w, logical_path, name), path, filespec, recursive, stored_as);
        return r == -E2BIG ? VSS_E_INVALIDARG : r < 0 ? VSS_E_OUTOFMEMORY : 0;
}

VSS_EXPORT int vss_writer_set_restore_target(vss_writer *w, const char *logical_path, const char *name,
                                             vss_restore_target target) {
        if ((unsigned) target > VSS_RT_ORIGINAL_LOCATION)
                return VSS_E_INVALIDARG;
        int r = annotate(w, logical_path, name, (vss_event[]) { VSS_EVENT_PRE_RESTORE }, 1, NULL, NULL, 0);
        if (r >= 0)
                record_find(w, logical_path, name)->restore_target = target;
        return r;
}

VSS_EXPORT int vss_writer_set_pre_restore_failure_msg(vss_writer *w, const char *logical_path, const char *name,
                                                      const char *message) {
        vss_bc_component *c = record_find(w, logical_path, name);
        return annotate(w, logical_path, name, (vss_event[]) { VSS_EVENT_PRE_RESTORE }, 1,
                        c ? &c->pre_restore_failure_msg : NULL, message, VSS_MAX_MESSAGE);
}

VSS_EXPORT int vss_writer_set_post_restore_failure_msg(vss_writer *w, const char *logical_path, const char *name,
                                                       const char *message) {
        vss_bc_component *c = record_find(w, logical_path, name);
        return annotate(w, logical_path, name, (vss_event[]) { VSS_EVENT_POST_RESTORE }, 1,
                        c ? &c->post_restore_failure_msg : NULL, message, VSS_MAX_MESSAGE);
}
