/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "writers/sqlite/stamp.h"

/* The wal-index header (https://sqlite.org/walformat.html#the_wal_index_file_format), native
 * byte order: mxFrame at 16, the salts at 32. */
#define WALINDEX_MXFRAME 16
#define WALINDEX_SALT 32

static int journal_is_wal(sqlite3 *db, int *ret) {
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, "PRAGMA main.journal_mode", -1, &st, NULL);

        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *mode = (const char *) sqlite3_column_text(st, 0);
                *ret = mode && sqlite3_stricmp(mode, "wal") == 0;
                rc = SQLITE_OK;
        }
        sqlite3_finalize(st);
        return rc;
}

int sqlite_stamp(sqlite3 *db, char *buf, size_t size) {
        sqlite3_file *f = NULL;
        int wal = 0, rc;

        rc = journal_is_wal(db, &wal);
        if (rc != SQLITE_OK)
                return rc;
        rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f);
        if (rc != SQLITE_OK)
                return rc;
        if (!f || !f->pMethods)
                return SQLITE_MISUSE;
        if (wal) {
                volatile void *map = NULL;
                unsigned char h[48];
                uint32_t mx, salt[2];

                /* Region 0 is mapped already: our open transaction reads through it. */
                if (f->pMethods->iVersion < 2 || !f->pMethods->xShmMap)
                        return SQLITE_MISUSE;
                rc = f->pMethods->xShmMap(f, 0, 32768, 0, &map);
                if (rc != SQLITE_OK)
                        return rc;
                if (!map)
                        return SQLITE_CANTOPEN;
                memcpy(h, (const void *) map, sizeof h);
                memcpy(&mx, h + WALINDEX_MXFRAME, sizeof mx);
                memcpy(salt, h + WALINDEX_SALT, sizeof salt);
                snprintf(buf, size, "wal:%08x%08x:%u", (unsigned) salt[0], (unsigned) salt[1], (unsigned) mx);
        } else {
                unsigned char b[4];

                rc = f->pMethods->xRead(f, b, sizeof b, 24);
                if (rc != SQLITE_OK)
                        return rc;
                snprintf(buf, size, "change-counter:%u",
                         (unsigned) ((uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3]));
        }
        return SQLITE_OK;
}
