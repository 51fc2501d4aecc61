/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The client end of the wire, shared by both faces of libvss and by the tools. */

#include <systemd/sd-bus.h>

#include "lib/common.h"

/* Connects to vssd's socket (NULL: $VSS_SOCKET or the default) and starts a peer-to-peer bus. */
int vss_connect(const char *socket_path, sd_bus **ret);
/* The HRESULT carried by a D-Bus error: org.openvss.Error.NAME, or infrastructure failures. */
int32_t vss_hr_from_bus_error(const sd_bus_error *e, int r);
/* Formats "NAME: message" for a handle's last-error buffer. */
void vss_format_error(char *buf, size_t size, int32_t hr, const sd_bus_error *e, const char *what);
