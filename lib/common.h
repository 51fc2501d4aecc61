/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Internal helpers shared by libvss and vssd. Not installed. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/basic/macro.h"
#include "lib/basic/path-util.h"
#include "lib/basic/time-util.h"

#include <vss/types.h>
#include <vss/writer.h>

#define VSS_DEFAULT_SOCKET "/run/openvss/vssd.sock"
#define VSS_BUS_PATH "/org/openvss/vssd"
#define VSS_BUS_INTERFACE "org.openvss.Coordinator1"
#define VSS_WRITER_PATH "/org/openvss/writer"
#define VSS_WRITER_INTERFACE "org.openvss.Writer1"
#define VSS_ERROR_PREFIX "org.openvss.Error."

/* Limits on what a client can make vssd allocate (documented in the interface XML). */
#define VSS_MAX_STRING 4096
#define VSS_MAX_NAME 255
#define VSS_MAX_MESSAGE 1023
#define VSS_MAX_DOCUMENT (1024 * 1024)
#define VSS_MAX_COMPONENTS 1024
#define VSS_MAX_VOLUMES 64
#define VSS_MAX_SESSIONS_PER_CONNECTION 16
#define VSS_MAX_WRITERS 4096
#define VSS_MAX_WRITERS_PER_UID 256 /* for users other than root */
/* What the metadata of one user's writers may add up to in a session (root's: no limit). */
#define VSS_MAX_METADATA_PER_UID (4U * 1024U * 1024U)
#define VSS_MAX_CONNECTIONS 8192
/* Defaults of vssd's per-client limits (config keys of the same names, lowercase); root is
 * exempt. A uid's connections leave room for all its writers (one connection each) and a few
 * requesters; the call burst for a backup of the most components (about 4 calls each). */
#define VSS_MAX_CONNECTIONS_PER_UID (VSS_MAX_WRITERS_PER_UID + 16)
#define VSS_MAX_SESSIONS_PER_UID 64
#define VSS_MAX_CALLS_PER_SECOND 500
#define VSS_MAX_CALL_BURST 5000
/* What a client's connection may make vssd hold (config keys of the same names, lowercase; root is
 * exempt): an incoming message at most the largest legal one, a restore document (16 MiB) and the
 * rest of its call; two of those in part over all of a uid's connections; outgoing messages the
 * client leaves unread (vssd reads none of its calls while one waits) up to this many, then it is
 * closed. */
#define VSS_MAX_MESSAGE_BYTES (16 * 1024 * 1024 + 64 * 1024)
#define VSS_MAX_INPUT_BYTES_PER_UID (2 * (uint64_t) VSS_MAX_MESSAGE_BYTES)
#define VSS_MAX_QUEUED_MESSAGES 256
/* Connections past max_connections_per_uid kept just long enough to tell why; more are closed. */
#define VSS_CONNECTION_GRACE 8
#define VSS_MAX_FREEZE_WINDOW_MS (10u * 60u * 1000u)


/* Map an -errno to an HRESULT for callers of the public API. */
int32_t vss_hr_from_errno(int r);


/* Name-based writer class id when a writer gives none: an RFC 4122 version-5 UUID of the name. */
void vss_id_from_name(const char *name, vss_id *ret);

/* A string is acceptable on the wire: valid UTF-8 is checked by sd-bus, we check length. */
static inline bool string_ok(const char *s, size_t max) { return s && strnlen(s, max + 1) <= max; }
/* Every byte of each control (control_len()) in s becomes c, in place; NULL stays NULL. */
static inline char *controls_replaced(char *s, char c) {
        for (char *p = s; p && *p;) {
                size_t n = control_len(p);
                if (n > 0)
                        memset(p, c, n);
                p += n > 0 ? n : 1;
        }
        return s;
}
/* s made one line of text for logs and terminals: control characters become spaces. */
static inline char *one_line(char *s) {
        return controls_replaced(s, ' ');
}
/* A name shown in logs and terminals: no control character (control_len()). */
static inline bool name_printable(const char *s) {
        for (; s && *s; s++)
                if (control_len(s) > 0)
                        return false;
        return true;
}

/* Copies src into dst (size bytes), cut at a character boundary, invalid UTF-8 replaced by '?':
 * D-Bus strings must be valid UTF-8; control characters replaced by spaces (a message is one
 * line of text). */
void utf8_copy(char *dst, size_t size, const char *src);
