/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Lexical path operations: none of these looks at the filesystem. */

#include <stdbool.h>
#include <stddef.h>

/* path is dir or below it. A trailing '/' of dir is ignored; "/" holds every absolute path. Both
 * should be normalized (see path_normalize): "a/../b" is not resolved here. */
bool path_within(const char *path, const char *dir);

/* What follows dir in path: "" for dir itself, "a/b" for dir/a/b; NULL when path is not within. */
const char *path_under(const char *path, const char *dir);

/* One path is within the other, after normalizing both. */
bool path_overlaps(const char *a, const char *b);

/* Absolute path to its lexical normal form in buf: "//" and "." dropped, ".." takes back one
 * component but never climbs above "/", no trailing '/'. -EINVAL for a relative path,
 * -ENAMETOOLONG when buf is too small. */
int path_normalize(const char *path, char *buf, size_t size);

/* a + "/" + b (b relative, may be empty: then a copy of a); NULL when out of memory. */
char *path_join(const char *a, const char *b);
