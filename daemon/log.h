/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vssd's log lines on stderr: "vssd: message", "vssd: warning: message", "vssd: error: message"
 * (main() sets the ident "vssd"). When stderr is the journal ($JOURNAL_STREAM names it, as
 * systemd sets it for a service), each line starts with its syslog priority ("<3>", "<4>",
 * "<6>"), which journald takes as the priority and strips; elsewhere the lines are as above. */

#include <syslog.h>

#include "lib/basic/log.h"

void vssd_log(int priority, const char *prefix, const char *fmt, ...) _printf_(3, 4);

#define log_info(...) vssd_log(LOG_INFO, "", __VA_ARGS__)
#define log_warn(...) vssd_log(LOG_WARNING, "warning: ", __VA_ARGS__)
#define log_err(...) vssd_log(LOG_ERR, "error: ", __VA_ARGS__)
