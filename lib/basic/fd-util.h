/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes, retrying after EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);

/* Reads until EOF into a NUL-terminated buffer of at most max bytes (-EFBIG past that).
 * 0 or -errno; *ret_len may be NULL. */
int read_all(int fd, size_t max, char **ret, size_t *ret_len);
