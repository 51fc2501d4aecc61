/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The job of one of vssd's helper programs (`vssd --commit-helper`, `vssd --delete-helper`):
 * NUL-separated key, value pairs, written into a memory stream and read by the helper from a
 * descriptor to its end. The helpers are vssd's own binary run afresh, so a job carries what
 * vssd's memory would have given a forked child: settings and the exec providers' commands. */

#include <stdint.h>
#include <stdio.h>

#include "providers/provider.h"

/* At most this much job. */
#define JOB_MAX (1024 * 1024)

void job_put(FILE *f, const char *key, const char *value);
void job_put_u64(FILE *f, const char *key, uint64_t v);
/* Every exec provider of ps: its name, then its commands. */
void job_put_exec(FILE *f, const Providers *ps);

/* Closes the memory stream f of the job in *ret: 0, or -ENOMEM (*ret freed and NULL). */
int job_close(FILE *f, char **ret);
/* The job in a memfd, to be read from its start; <0 on failure. */
int job_memfd(const char *buf, size_t len);

/* In the helper: reads fd to its end and calls set(userdata, key, value) for each pair, in order;
 * the first <0 stops it and is returned. -EINVAL for a job cut short. */
int job_parse(int fd, int (*set)(void *userdata, const char *key, const char *value), void *userdata);
/* One pair job_put_exec() wrote into ps: 1 when key was one, 0 when it is not an exec key, <0 on
 * failure. The strings live until the helper exits. */
int job_set_exec(Providers *ps, const char *key, const char *value);
