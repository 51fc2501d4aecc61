/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Retrying a snapshot set: which failures VSS calls transient, how long to wait, and how an
 * attempt is reported. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "tools/report.h"

/* Failures VSS documents as transient, where the whole operation is to be tried again: a writer
 * that says so, ran out of resources or outlasted its freeze window; another snapshot set being
 * made; the provider not flushing or holding writes in time. */
bool hr_retryable(int32_t hr);
/* Seconds to wait after failed attempt n (from 1): 1, 2, 4, ... at most 60. */
unsigned retry_delay_s(unsigned n);
/* {attempt, result, error?, retryable?, retry_in_s?, phases?}: attempt n as c has it; a failed
 * attempt that is retried (retry_in_s > 0) keeps its phases. */
json_object *attempt_json(const Report *c, unsigned n, unsigned retry_in_s);
