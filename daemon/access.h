/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who may do what, how much, and how a refusal reaches the wire: the rights a uid holds (from the
 * config), the per-call checks run before any handler (connection limit, call rate, string
 * sizes), and VSS errors as D-Bus errors. */

#include <stdarg.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "daemon/connection.h"
#include "lib/basic/macro.h"

/* A D-Bus error named after the VSS code hr (org.openvss.Error.E_...), with the message. Returns
 * the negative errno sd-bus derives, for a handler to return. */
int reply_error(sd_bus_error *error, int32_t hr, const char *fmt, ...) _printf_(3, 4);
/* Root, or vssd's own user: trusted as root is (writers, requesters). */
bool uid_trusted(uid_t uid);
/* Whether who (its uid, gid and its account's groups) reaches path, in a child whose effective
 * ids are its: 0, or the negative errno its realpath() met (-EACCES, -ENOENT; -ETIMEDOUT past a
 * second, the child killed). A user asking vssd about a path learns nothing it could not see
 * itself. Forks and waits (a second at most); for a user's calls only. */
int path_reachable_by(const struct ucred *who, const char *path);
int reply_errorv(sd_bus_error *error, int32_t hr, const char *fmt, va_list ap) _printf_(3, 0);

/* Answers msg with an array of n elements of signature element (e.g. "(ss)"), each appended by
 * append(reply, i, userdata). Returns what sd_bus_send() does, or the first failure. */
typedef int (*ReplyAppend)(sd_bus_message *reply, size_t i, void *userdata);
int reply_array(sd_bus_message *msg, const char *element, size_t n, ReplyAppend append, void *userdata);

/* Refuses with VSS_E_ACCESSDENIED, naming the uid and the right, unless the connection holds it. */
int check_right(Connection *c, Right right, sd_bus_error *error);
/* Logs a refused call once, with who asked: "refused METHOD to uid U (pid P): what". */
void log_refusal(Connection *c, const char *what);

/* The rights (1 << Right) of a uid: its own and those of the groups its account is in. */
unsigned rights_of(Config *config, uid_t uid);

/* Before any handler of a method call: refuses the call past the connection's limits (a
 * connection over max_connections_per_uid is answered and closed: then 1), past the call rate, or
 * with a string argument too long (then a negative errno, the error set). 0: dispatch it. */
int access_check_call(Connection *c, sd_bus_message *msg, sd_bus_error *error);
