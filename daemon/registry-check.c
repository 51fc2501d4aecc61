/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The registry file looked at before vssd opens it for writing: a registry vssd cannot use is
 * refused with a message that says what is wrong and what to do, and is left exactly as it was
 * (SQLite is let near it read-only, and only once the file is known to be a database). */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/registry-sqlite.h"
#include "lib/common.h"
#include "registry.h"

#ifndef SQLITE_OPEN_NOFOLLOW
#define SQLITE_OPEN_NOFOLLOW 0
#endif

#define ASIDE "move it aside (vssd then starts with an empty registry and forgets the shadow copies it recorded)"

_printf_(4, 5) static int fail(int r, char *errbuf, size_t errlen, const char *fmt, ...) {
        va_list ap;

        if (errbuf && errlen > 0) {
                va_start(ap, fmt);
                vsnprintf(errbuf, errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

static int corrupt(const char *path, const char *why, char *errbuf, size_t errlen) {
        return fail(-EBADMSG, errbuf, errlen,
                    "%s is corrupt (%s); vssd has not touched it. Restore it from a backup, or " ASIDE ".", path, why);
}

/* Read-only: what SQLite says, then the schema version, then every page. */
static int check_contents(const char *path, int known_version, char *errbuf, size_t errlen) {
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        int rc, version = 0, r = 0;
        char why[256] = "";

        if (registry_sqlite_load() < 0)
                return fail(-ELIBACC, errbuf, errlen, "%s", registry_sqlite_error());
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(s);
                if (rc == SQLITE_ROW) {
                        version = sqlite3_column_int(s, 0);
                        rc = SQLITE_OK;
                }
                sqlite3_finalize(s);
                s = NULL;
        }
        if (rc == SQLITE_OK && (version > known_version || version < 0)) {
                r = fail(-EPROTONOSUPPORT, errbuf, errlen,
                         "%s has schema version %d, newer than the %d this vssd knows: a newer OpenVSS wrote it, and "
                         "vssd has not touched it. Run that newer vssd, or " ASIDE ".",
                         path, version, known_version);
                goto finish;
        }
        /* Every page, so a truncated or damaged file is found now, not in the middle of recovery. */
        if (rc == SQLITE_OK)
                rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &s, NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(s);
                if (rc == SQLITE_ROW) {
                        const char *res = (const char *) sqlite3_column_text(s, 0);
                        if (!res || !streq(res, "ok")) {
                                snprintf(why, sizeof(why), "%s", res ? res : "integrity check failed");
                                rc = SQLITE_CORRUPT;
                        } else
                                rc = SQLITE_OK;
                }
                sqlite3_finalize(s);
        }
        if (rc != SQLITE_OK) {
                int primary = rc & 0xff;
                if (!why[0])
                        snprintf(why, sizeof(why), "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
                        r = corrupt(path, why, errbuf, errlen);
                else if (primary == SQLITE_NOMEM)
                        r = fail(-ENOMEM, errbuf, errlen, "%s: out of memory", path);
                else
                        r = fail(-EIO, errbuf, errlen, "%s cannot be read (%s); vssd has not touched it.", path, why);
        }
finish:
        sqlite3_close(db);
        registry_sqlite_unload();
        return r;
}

int registry_check_file(const char *state_dir, const char *path, int known_version, char *errbuf, size_t errlen) {
        static const char magic[16] = "SQLite format 3";
        char header[16];
        struct stat st;
        int fd;
        ssize_t k;

        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return 0; /* a new registry */
                return fail(-errno, errbuf, errlen, "%s cannot be examined: %s", path, strerror(errno));
        }
        if (S_ISLNK(st.st_mode))
                return fail(-ELOOP, errbuf, errlen,
                            "%s is a symbolic link; vssd opens its registry only as a file of its own, and has not "
                            "touched it. Replace the link with the file it points to, or remove it (vssd then starts "
                            "with an empty registry).",
                            path);
        if (!S_ISREG(st.st_mode))
                return fail(-EBADF, errbuf, errlen,
                            "%s is not a regular file; vssd has not touched it. Remove it or move it aside.", path);

        /* Writable, file and directory (SQLite makes its -wal and -shm files next to it). Root
         * ignores modes: a read-only mount or an immutable file is what stops it. */
        fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || access(state_dir, W_OK) < 0) {
                int e = errno;
                if (fd >= 0)
                        (void) close(fd);
                if (e == EROFS || e == EACCES || e == EPERM)
                        return fail(-e, errbuf, errlen,
                                    "%s is read-only (%s); vssd must write its registry and has not touched it. Make "
                                    "it and %s writable (mount the filesystem read-write, chattr -i) and start vssd "
                                    "again.",
                                    path, strerror(e), state_dir);
                return fail(-e, errbuf, errlen, "%s cannot be opened: %s", path, strerror(e));
        }
        k = read(fd, header, sizeof header);
        (void) close(fd);
        if (k == 0)
                return 0; /* created by an earlier start that got no further: a new registry */
        if (k != (ssize_t) sizeof header || memcmp(header, magic, sizeof magic) != 0)
                return corrupt(path, "not an SQLite database", errbuf, errlen);

        return check_contents(path, known_version, errbuf, errlen);
}
