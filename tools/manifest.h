/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vssbackup's own record of a backup, openvss/vssbackup.json: its type, time and base. Read from
 * backups anyone may have written, so through the strict JSON layer (lib/jsonv.h). */

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include <vss/backup.h>

#define MANIFEST_NAME "vssbackup.json"
#define MANIFEST_MAX 65536

typedef struct Manifest {
        vss_backup_type type;
        uint64_t created_usec;
        char base[PATH_MAX];         /* the backup this one is based on, "" for none */
        uint64_t base_created_usec;  /* its created_usec */
} Manifest;

/* The backup type named s ("full", "incremental", ...): a vss_backup_type, or -1. */
int backup_type_from_name(const char *s);

/* m as the JSON document vssbackup stores: malloc'd, NULL when out of memory. */
char *manifest_format(const Manifest *m);

/* Reads text: one JSON object of the fields manifest_format() writes, each key once, nested at
 * most 16 deep, of at most MANIFEST_MAX bytes. 0, or -EBADMSG with the reason in error (size
 * bytes). */
int manifest_parse(const char *text, Manifest *ret, char *error, size_t size);
