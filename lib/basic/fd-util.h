/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes all n bytes, retrying after EINTR and short writes. 0 or -errno. */
int write_all(int fd, const void *buf, size_t n);

/* Reads until EOF into a NUL-terminated buffer of at most max bytes (-EFBIG past that).
 * 0 or -errno; *ret_len may be NULL. */
int read_all(int fd, size_t max, char **ret, size_t *ret_len);

/* Whether nobody but root and uid may change what st is: owned by one of them and writable by
 * nobody else, or (sticky_ok) a sticky directory others may write, whose entries are safe from
 * them (/tmp). 0, or -EPERM with why in why (unless NULL): "NAME belongs to uid N" or "NAME may be
 * written by others (mode M)". */
struct stat;
int stat_trusted(const struct stat *st, uid_t uid, bool sticky_ok, const char *name, char *why, size_t size);

/* Whether nobody but root and uid can rename or replace anything on the way to the directory fd:
 * fd and every directory above it stat_trusted(), sticky ones allowed. 0; -EPERM with why naming
 * the first that is not (path: fd's, cut short to name it; why may be NULL); or a negative errno. */
int dir_chain_trusted(int fd, const char *path, uid_t uid, char *why, size_t size);
