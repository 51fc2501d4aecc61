/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "lib/basic/log.h"

/* Writer status as vssadmin and vssbackup print it, and the bookkeeping of a sequence that
 * gathers status after each phase. */

#include <stdbool.h>
#include <stdio.h>
#include <json-c/json.h>

#include <vss/admin.h>
#include <vss/backup.h>

#include "lib/basic/macro.h"

char *id_string(const vss_id *id, char buf[static VSS_ID_STRING_MAX]);
char *hex32(int32_t v, char buf[static 16]);
/* Windows' wording for a writer's last error ("No error", "Timed out", ...). */
const char *last_error_text(int32_t failure);
json_object *status_json(const char *name, const char *wid, const char *iid, uint32_t state, int32_t failure,
                         int32_t code, const char *msg, const char *note);
void status_text(FILE *f, const char *indent, const char *name, const char *wid, const char *iid, uint32_t state,
                 int32_t failure, int32_t code, const char *msg, const char *note);
void print_json(json_object *o);
/* A writer as `vssadmin list writers --json` has it: status_json() with "as_of". */
json_object *admin_writer_json(const vss_admin_writer *w);
/* A shadow as `vssadmin list shadows --json` has it ("exposed_at" null). */
json_object *shadow_json(const char *sid, const char *setid, const char *orig, const char *spath, const char *prov,
                         uint64_t created, uint32_t attrs);
/* The same from a snapshot's properties. */
json_object *shadow_prop_json(const vss_snapshot_prop *p);

typedef struct Report {
        vss_backup *b;
        bool json;               /* print nothing as text */
        FILE *out;               /* where text goes; NULL: stdout */
        json_object *phases;     /* [{phase, writers: [status]}] */
        int32_t error_hr;        /* the first failure, 0 if none */
        char error_msg[1024];
} Report;

/* Keeps the first failure. */
void report_fail(Report *c, int32_t hr, const char *msg);
/* Gathers writer status after a phase, prints it (text) or records it (JSON); false when a
 * writer failed. */
bool report_phase(Report *c, const char *phase);
/* {code, name, message}: the failure kept. */
json_object *report_error_json(const Report *c);
/* hr of a libvss call: false (and the failure kept) when it failed. */
bool report_step(Report *c, int32_t hr);

/* libvss's messages read "Method: NAME (0x...): cause"; the tools print the name and the code
 * themselves, so they keep only the cause. */
const char *error_cause(const char *msg);
/* Why vssd could not be reached or refused a session (hr from vss_backup_new(), or the admin
 * connection's failure) and what fixes it, into buf. socket: as given (NULL: the default). */
char *vssd_failure_text(const char *socket, int32_t hr, char *buf, size_t size);
/* The JSON object a tool prints when it fails before it could do anything:
 * {"result": "failed", "error": {code, name, message}}. */
json_object *failure_json(int32_t hr, const char *message);
void print_json_to(FILE *f, json_object *o);

/* One status line on a terminal (stderr) for a long step, replaced by the next and cleared by
 * progress_clear(), so that what follows starts on a clean line. Off unless progress_enable(). */
void progress_enable(bool on);
bool progress_enabled(void);
void progress_status(const char *fmt, ...) _printf_(1, 2);
void progress_clear(void);


/* "NAME (OpenVSS) X.Y.Z": every program's --version. */
#define VERSION_LINE(name) name " (OpenVSS) " OPENVSS_VERSION "\n"
