/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Opens path (relative to dirfd, or absolute when !beneath) following no symlink on the way,
 * the last component included (ELOOP), like openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
 * plus RESOLVE_BENEATH when beneath: EXDEV for an absolute path or a way above dirfd). Where the
 * kernel has no openat2 (before 5.6, or under valgrind) the same is done one component at a time
 * from dirfd, refusing ".." altogether. O_CLOEXEC always. Returns the fd or a negative errno. */
int open_no_symlinks(int dirfd, const char *path, int flags, mode_t mode, bool beneath);
