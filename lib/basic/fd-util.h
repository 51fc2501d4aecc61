/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes, retrying after EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);

/* Reads until EOF into a NUL-terminated buffer of at most max bytes (-EFBIG past that).
 * 0 or -errno; *ret_len may be NULL. */
int read_all(int fd, size_t max, char **ret, size_t *ret_len);

/* Whether nobody but root and uid can rename or replace anything on the way to the directory fd:
 * fd and every directory above it owned by root or uid, and writable by nobody else unless sticky
 * (/tmp). 0; -EPERM for the first that is not, *ret_up levels above fd (0: fd), its stat in
 * *ret_bad; or a negative errno. */
struct stat;
int dir_chain_trusted(int fd, uid_t uid, unsigned *ret_up, struct stat *ret_bad);
