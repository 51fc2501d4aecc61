/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* ExposeShadow, UnexposeShadow, ListExposures: read-only mounts of shadows, made in child
 * processes; the handlers are declared in bus.h. Unexposing a shadow before its delete is the
 * shadow lifecycle's (shadows.h). */

#include "daemon/manager.h"

/* At start: the exposures recorded in an earlier boot are mounted again where they were. */
void exposures_restore(Manager *m);
