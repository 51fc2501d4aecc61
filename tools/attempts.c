/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "lib/common.h"
#include "tools/attempts.h"

bool hr_retryable(int32_t hr) {
        return hr == VSS_E_WRITERERROR_RETRYABLE || hr == VSS_E_WRITERERROR_OUTOFRESOURCES ||
               hr == VSS_E_WRITERERROR_TIMEOUT || hr == VSS_E_SNAPSHOT_SET_IN_PROGRESS ||
               hr == VSS_E_FLUSH_WRITES_TIMEOUT || hr == VSS_E_HOLD_WRITES_TIMEOUT;
}

unsigned retry_delay_s(unsigned n) {
        return n > 6 ? 60 : 1u << (n - 1);
}

json_object *attempt_json(const Report *c, unsigned n, unsigned retry_in_s) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "attempt", json_object_new_int((int) n));
        json_object_object_add(a, "result", json_object_new_string(c->error_hr ? "failed" : "ok"));
        if (c->error_hr) {
                json_object_object_add(a, "error", report_error_json(c));
                json_object_object_add(a, "retryable", json_object_new_boolean(hr_retryable(c->error_hr)));
        }
        if (retry_in_s) {
                json_object_object_add(a, "retry_in_s", json_object_new_int((int) retry_in_s));
                json_object_object_add(a, "phases", json_object_get(c->phases));
        }
        return a;
}
