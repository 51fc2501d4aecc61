/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The org.openvss.Coordinator1 method table and its handlers (userdata: the Connection). Each
 * handler decodes, calls the logic of its module, and encodes: subscribe and list_writers in
 * writer.c; create/release session and unsubscribe in manager.c; the admin shadow calls in
 * admin.c; exposures in expose.c; explain_volume in hold.c; the session's calls in session*.c. */

#include <systemd/sd-bus.h>

#define VSS_METHODS(X)                                                                            \
        X(subscribe) X(unsubscribe) X(create_session) X(release_session) X(list_writers)         \
        X(list_providers) X(list_shadows) X(get_snapshot_properties) X(delete_shadows)           \
        X(initialize_for_backup) X(initialize_for_restore) X(set_context) X(set_backup_state)    \
        X(gather_writer_metadata) X(add_component) X(start_snapshot_set) X(add_to_snapshot_set)  \
        X(prepare_for_backup) X(do_snapshot_set) X(set_backup_succeeded) X(backup_complete)      \
        X(abort_backup) X(pre_restore) X(post_restore) X(cancel) X(gather_writer_status)         \
        X(expose_shadow) X(unexpose_shadow) X(list_exposures) X(set_component_property)           \
        X(save_as_document) X(explain_volume) X(do_snapshot_set_paused) X(wait_paused)           \
        X(continue_snapshot_set)
#define VSS_DECLARE_METHOD(n) int method_##n(sd_bus_message *msg, void *userdata, sd_bus_error *error);
VSS_METHODS(VSS_DECLARE_METHOD)
extern const sd_bus_vtable coordinator_vtable[];
/* org.freedesktop.DBus.Hello at /org/freedesktop/DBus, for tools that expect a bus. */
extern const sd_bus_vtable hello_vtable[];
