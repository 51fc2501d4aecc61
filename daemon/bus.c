/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.openvss.Coordinator1 method table (data/org.openvss.Coordinator1.xml documents it).
 * Handlers decode, call the logic, and encode; they live in manager.c and session.c. */

#include <stdio.h>

#include "daemon/access.h"
#include "daemon/bus.h"
#include "daemon/connection.h"
#include "lib/common.h"

#define SID "s", session_id

/* Every refusal of access is logged once, with who asked, whichever module refused. */
static int logged(Connection *c, const sd_bus_error *error, int r) {
        if (sd_bus_error_has_name(error, VSS_ERROR_PREFIX "E_ACCESSDENIED"))
                log_refusal(c, error->message);
        return r;
}
#define VSS_LOGGED_METHOD(n)                                                                      \
        static int logged_##n(sd_bus_message *msg, void *userdata, sd_bus_error *error) {         \
                return logged(userdata, error, method_##n(msg, userdata, error));                  \
        }
VSS_METHODS(VSS_LOGGED_METHOD)

const sd_bus_vtable coordinator_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Subscribe",
                                SD_BUS_ARGS("s", writer_id, "s", instance_id, "s", name, "s", instance_name, "u",
                                            app_level, "u", freeze_window_ms),
                                SD_BUS_NO_RESULT, logged_subscribe, 0),
        SD_BUS_METHOD_WITH_ARGS("Unsubscribe", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, logged_unsubscribe, 0),
        SD_BUS_METHOD_WITH_ARGS("CreateSession", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", session_id), logged_create_session, 0),
        SD_BUS_METHOD_WITH_ARGS("ReleaseSession", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_release_session, 0),
        SD_BUS_METHOD_WITH_ARGS("InitializeForBackup", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_initialize_for_backup, 0),
        SD_BUS_METHOD_WITH_ARGS("InitializeForRestore", SD_BUS_ARGS(SID, "s", document), SD_BUS_NO_RESULT,
                                logged_initialize_for_restore, 0),
        SD_BUS_METHOD_WITH_ARGS("SetContext", SD_BUS_ARGS(SID, "u", context), SD_BUS_NO_RESULT, logged_set_context, 0),
        SD_BUS_METHOD_WITH_ARGS("SetBackupState",
                                SD_BUS_ARGS(SID, "b", select_components, "b", bootable_system_state, "u", backup_type,
                                            "b", partial_file_support),
                                SD_BUS_NO_RESULT, logged_set_backup_state, 0),
        SD_BUS_METHOD_WITH_ARGS("GatherWriterMetadata", SD_BUS_ARGS(SID), SD_BUS_RESULT("as", documents),
                                logged_gather_writer_metadata, 0),
        SD_BUS_METHOD_WITH_ARGS("AddComponent",
                                SD_BUS_ARGS(SID, "s", instance_id, "s", writer_id, "s", logical_path, "s", name),
                                SD_BUS_NO_RESULT, logged_add_component, 0),
        SD_BUS_METHOD_WITH_ARGS("StartSnapshotSet", SD_BUS_ARGS(SID), SD_BUS_RESULT("s", snapshot_set_id),
                                logged_start_snapshot_set, 0),
        SD_BUS_METHOD_WITH_ARGS("AddToSnapshotSet", SD_BUS_ARGS(SID, "s", path, "s", provider),
                                SD_BUS_RESULT("s", shadow_id), logged_add_to_snapshot_set, 0),
        SD_BUS_METHOD_WITH_ARGS("PrepareForBackup", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_prepare_for_backup, 0),
        SD_BUS_METHOD_WITH_ARGS("DoSnapshotSet", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_do_snapshot_set, 0),
        SD_BUS_METHOD_WITH_ARGS("DoSnapshotSetPaused", SD_BUS_ARGS(SID, "u", flags), SD_BUS_NO_RESULT,
                                logged_do_snapshot_set_paused, 0),
        SD_BUS_METHOD_WITH_ARGS("WaitPaused", SD_BUS_ARGS(SID), SD_BUS_RESULT("u", point, "t", usec_left),
                                logged_wait_paused, 0),
        SD_BUS_METHOD_WITH_ARGS("ContinueSnapshotSet", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_continue_snapshot_set,
                                0),
        SD_BUS_METHOD_WITH_ARGS("SetBackupSucceeded",
                                SD_BUS_ARGS(SID, "s", instance_id, "s", writer_id, "s", logical_path, "s", name, "b",
                                            succeeded),
                                SD_BUS_NO_RESULT, logged_set_backup_succeeded, 0),
        SD_BUS_METHOD_WITH_ARGS("SetComponentProperty",
                                SD_BUS_ARGS(SID, "s", instance_id, "s", writer_id, "s", logical_path, "s", name, "s",
                                            property, "v", value),
                                SD_BUS_NO_RESULT, logged_set_component_property, 0),
        SD_BUS_METHOD_WITH_ARGS("SaveAsDocument", SD_BUS_ARGS(SID), SD_BUS_RESULT("s", document),
                                logged_save_as_document, 0),
        SD_BUS_METHOD_WITH_ARGS("BackupComplete", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_backup_complete, 0),
        SD_BUS_METHOD_WITH_ARGS("AbortBackup", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_abort_backup, 0),
        SD_BUS_METHOD_WITH_ARGS("PreRestore", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_pre_restore, 0),
        SD_BUS_METHOD_WITH_ARGS("PostRestore", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_post_restore, 0),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_ARGS(SID), SD_BUS_NO_RESULT, logged_cancel, 0),
        SD_BUS_METHOD_WITH_ARGS("GatherWriterStatus", SD_BUS_ARGS(SID), SD_BUS_RESULT("a(sssuiiss)", status),
                                logged_gather_writer_status, 0),
        SD_BUS_METHOD_WITH_ARGS("GetSnapshotProperties", SD_BUS_ARGS("s", shadow_id),
                                SD_BUS_RESULT("(sssssttu)", shadow), logged_get_snapshot_properties, 0),
        SD_BUS_METHOD_WITH_ARGS("ListWriters", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sssuiissst)", writers),
                                logged_list_writers, 0),
        SD_BUS_METHOD_WITH_ARGS("ListProviders", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sssssb)", providers),
                                logged_list_providers, 0),
        SD_BUS_METHOD_WITH_ARGS("ExplainVolume", SD_BUS_ARGS("s", path),
                                SD_BUS_RESULT("s", provider, "b", point_in_time, "s", why), logged_explain_volume, 0),
        SD_BUS_METHOD_WITH_ARGS("ListShadows", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sssssttu)", shadows),
                                logged_list_shadows, 0),
        SD_BUS_METHOD_WITH_ARGS("DeleteShadows", SD_BUS_ARGS("s", kind, "s", id), SD_BUS_RESULT("u", deleted),
                                logged_delete_shadows, 0),
        SD_BUS_METHOD_WITH_ARGS("ExposeShadow", SD_BUS_ARGS("s", shadow_id, "s", at), SD_BUS_RESULT("s", exposed_at),
                                logged_expose_shadow, 0),
        SD_BUS_METHOD_WITH_ARGS("UnexposeShadow", SD_BUS_ARGS("s", at), SD_BUS_NO_RESULT, logged_unexpose_shadow, 0),
        SD_BUS_METHOD_WITH_ARGS("ListExposures", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ss)", exposures), logged_list_exposures,
                                0),
        SD_BUS_VTABLE_END,
};

/* Generic D-Bus tools speak to a bus first: busctl --address= and GDBus send Hello and wait for
 * a unique name before anything else. vssd is no bus, but answers Hello with a name of its own
 * making (Peer's Ping and GetMachineId sd-bus answers itself, on every path). */
static int method_hello(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        static unsigned long long next = 1;
        char name[32];
        snprintf(name, sizeof(name), ":1.%llu", next++);
        return sd_bus_reply_method_return(msg, "s", name);
}

const sd_bus_vtable hello_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("Hello", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", unique_name), method_hello, 0),
        SD_BUS_VTABLE_END,
};
