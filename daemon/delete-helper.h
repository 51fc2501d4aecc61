/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Deleting a shadow in a program of its own, `vssd --delete-helper` (child_spawn()), not in a
 * fork of vssd: a fork copies vssd's page tables and leaves each of its pages shared
 * copy-on-write, so every page vssd writes afterwards faults (with 1000 writers connected, a
 * quarter of the next sequence). Its cost, the helper's exec, does not grow with vssd. */

#include "daemon/child.h"
#include "daemon/registry.h"
#include "providers/provider.h"

#define DELETE_HELPER_ARG "--delete-helper"

/* rec's provider (one of ps) removes the shadow in the helper; done(result, userdata) follows as
 * with child_run(). 0, or <0 when nothing was started. */
int delete_helper_spawn(Children *c, const Providers *ps, const ShadowRecord *rec, ChildDone done,
                        void (*cancel)(void *userdata), void *userdata);

/* main() of `vssd --delete-helper`: never returns. */
_Noreturn int delete_helper_main(void);
