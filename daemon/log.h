/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vssd's log lines on stderr: "vssd: message", "vssd: warning: message", "vssd: error: message"
 * (main() sets the ident "vssd"). */

#include "lib/basic/log.h"

#define log_info(...) log_prefixed("", __VA_ARGS__)
#define log_warn(...) log_prefixed("warning: ", __VA_ARGS__)
#define log_err(...) log_prefixed("error: ", __VA_ARGS__)
