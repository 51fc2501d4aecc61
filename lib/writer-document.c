/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libvss, writer face: what a writer says of an event beside succeeding or not: its failure, and
 * the backup components document, read and annotated from an event callback (or a deferred
 * event made current again with vss_writer_resume()). */

#include "lib/writer-internal.h"

VSS_EXPORT int vss_writer_set_failure(vss_writer *w, int32_t failure, int32_t application_code,
                                      const char *application_message) {
        if (!w)
                return VSS_E_INVALIDARG;
        w->failure = failure;
        w->app_code = application_code;
        utf8_copy(w->app_msg, sizeof(w->app_msg), application_message);
        return 0;
}

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
