/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Writer status as vssadmin and vssbackup print it, and the bookkeeping of a sequence that
 * gathers status after each phase. */

#include <json-c/json.h>

#include <vss/backup.h>

char *id_string(const vss_id *id, char buf[static VSS_ID_STRING_MAX]);
char *hex32(int32_t v, char buf[static 16]);
/* Windows' wording for a writer's last error ("No error", "Timed out", ...). */
const char *last_error_text(int32_t failure);
json_object *status_json(const char *name, const char *wid, const char *iid, uint32_t state, int32_t failure,
                         int32_t code, const char *msg, const char *note);
void status_text(FILE *f, const char *indent, const char *name, const char *wid, const char *iid, uint32_t state,
                 int32_t failure, int32_t code, const char *msg, const char *note);
void print_json(json_object *o);

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
