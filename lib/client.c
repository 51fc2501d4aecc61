/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <sys/socket.h>
#include <sys/un.h>

#include "lib/client.h"

int vss_connect(const char *socket_path, sd_bus **ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        sd_bus *bus = NULL;
        int r;

        if (!socket_path)
                socket_path = getenv("VSS_SOCKET");
        if (isempty(socket_path))
                socket_path = VSS_DEFAULT_SOCKET;
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, socket_path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        /* Only vssd speaks for vssd: the listener must be root, or this very user (a private vssd
         * of one's own, as tests and the demo run). Anyone else could feed a writer events or a
         * requester made-up answers through a socket path it controls. */
        struct ucred cred;
        socklen_t len = sizeof(cred);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (cred.uid != 0 && cred.uid != geteuid())
                return -EPERM;
        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_fd(bus, fd, fd);
        /* vssd passes no fds and refuses to: not asking saves waiting for its refusal. */
        if (r >= 0)
                r = sd_bus_negotiate_fds(bus, false);
        if (r >= 0) {
                TAKE_FD(fd);
                r = sd_bus_start(bus);
        }
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

int32_t vss_hr_from_bus_error(const sd_bus_error *e, int r) {
        if (e && e->name && strncmp(e->name, VSS_ERROR_PREFIX, strlen(VSS_ERROR_PREFIX)) == 0) {
                int32_t hr = vss_error_from_name(e->name + strlen(VSS_ERROR_PREFIX));
                if (hr != 0)
                        return hr;
        }
        if (e && e->name && (sd_bus_error_has_name(e, SD_BUS_ERROR_NO_MEMORY)))
                return VSS_E_OUTOFMEMORY;
        if (e && e->name && (sd_bus_error_has_name(e, SD_BUS_ERROR_INVALID_ARGS)))
                return VSS_E_INVALIDARG;
        if (e && e->name && sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED))
                return VSS_E_ACCESSDENIED;
        /* Anything else (no reply, disconnect, unknown method) is the infrastructure failing. */
        if (r == -ENOMEM)
                return VSS_E_OUTOFMEMORY;
        return VSS_E_WRITER_INFRASTRUCTURE;
}

void vss_format_error(char *buf, size_t size, int32_t hr, const sd_bus_error *e, const char *what) {
        const char *name = vss_error_name(hr);
        snprintf(buf, size, "%s%s%s (0x%08x): %s", what ? what : "", what ? ": " : "", name ? name : "error",
                 (uint32_t) hr, e && e->message ? e->message : vss_strerror(hr));
}
