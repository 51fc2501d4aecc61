/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SIGHUP's reload: reads the configuration at path (NULL: the defaults) and puts it in place
 * without dropping a client; a configuration that fails to parse is refused (logged) and the
 * old one kept. Returns 0 or the load's error. */

#include "daemon/manager.h"

int manager_reload(Manager *m, const char *path);
