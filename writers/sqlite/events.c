/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-sqlite: the events on the databases. PrepareForSnapshot checkpoints the write-ahead
 * log, Freeze takes each database's write lock (BEGIN IMMEDIATE) and reads its backup stamp under
 * it, Thaw and Abort let go; PostRestore checks the restored files with PRAGMA integrity_check. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/basic/log.h"
#include "lib/basic/time-util.h"
#include "lib/common.h"
#include "writers/sqlite/stamp.h"
#include "writers/sqlite/writer-sqlite.h"
#include "writers/writer-util.h"

#define INTEGRITY_ROWS_MAX 8 /* integrity_check lines kept in a failure message */

/* Whether the event concerns db: all databases outside component mode, else the selected ones. */
static bool selected(const vss_event_info *info, const database *d) {
        if (!info->component_mode)
                return true;
        for (size_t i = 0; i < info->n_components; i++)
                if (streq(info->components[i], d->name))
                        return true;
        return false;
}

/* Ends our transaction, if any, and closes our connection; sqlite3_close_v2() would roll back
 * too, but an explicit ROLLBACK releases the lock even if a statement were still pending. */
static void db_release(database *d, const char *why) {
        if (!d->db)
                return;
        if (!sqlite3_get_autocommit(d->db) && sqlite3_exec(d->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
                log_msg("%s: ROLLBACK failed: %s", d->name, sqlite3_errmsg(d->db));
        if (d->locked)
                log_msg("%s: write lock released (%s)", d->name, why);
        d->locked = false;
        sqlite3_close_v2(d->db);
        d->db = NULL;
}

void db_release_all(const char *why) {
        for (size_t i = 0; i < arg_n_databases; i++)
                db_release(&arg_databases[i], why);
}

/* Opens our connection to d; no SQLITE_OPEN_CREATE: a database that vanished must not come back
 * empty. On failure returns the SQLite code and leaves the message in msg. */
static int db_open(database *d, char msg[MSG_MAX + 1]) {
        int rc;

        if (d->db)
                return SQLITE_OK;
        rc = sqlite3_open_v2(d->path, &d->db, SQLITE_OPEN_READWRITE, NULL);
        if (rc != SQLITE_OK) {
                snprintf(msg, MSG_MAX + 1, "%s", d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc));
                sqlite3_close_v2(d->db);
                d->db = NULL;
                return rc;
        }
        sqlite3_extended_result_codes(d->db, 1);
        return SQLITE_OK;
}

bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
        int r = 0;

        for (size_t i = 0; i < arg_n_databases && r >= 0; i++) {
                const database *d = &arg_databases[i];
                _cleanup_free_ char *caption = NULL;

                if (asprintf(&caption, "SQLite database %s", d->path) < 0)
                        r = -ENOMEM;
                if (r >= 0)
                        r = vss_metadata_add_component(md, "", d->name, caption, true, true);
                /* Exact names in the database's directory, not recursive: the main file and the
                 * files SQLite keeps beside it (write-ahead log, its index, rollback journal). */
                for (size_t k = 0; k < ELEMENTSOF(suffixes) && r >= 0; k++) {
                        _cleanup_free_ char *spec = NULL;
                        if (asprintf(&spec, "%s%s", d->base, suffixes[k]) < 0)
                                r = -ENOMEM;
                        else
                                r = vss_metadata_add_files(md, "", d->name, d->dir, spec, false);
                }
        }
        if (r >= 0)
                r = vss_metadata_set_restore_method(md, VSS_RME_RESTORE_IF_CAN_REPLACE, NULL, false);
        if (r >= 0)
                r = vss_metadata_set_writer_restore(md, VSS_WRE_ALWAYS);
        if (r < 0)
                return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "cannot build writer metadata: %s",
                            r == -ENOMEM ? "out of memory" : vss_strerror(r));
        log_msg("identify -> ok (%zu databases)", arg_n_databases);
        return true;
}

/* The slow part, before the freeze: move the write-ahead log into the main file so the copy is
 * small and a restore starts without a log to replay. */
bool on_prepare_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        char msg[MSG_MAX + 1];

        for (size_t i = 0; i < arg_n_databases; i++) {
                database *d = &arg_databases[i];
                int rc, log_frames = 0, done = 0;

                if (!selected(info, d))
                        continue;
                rc = db_open(d, msg);
                if (rc != SQLITE_OK)
                        return writer_fail(w, VSS_E_WRITERERROR_RETRYABLE, rc, "%s: cannot open %s: %s", d->name, d->path, msg);
                sqlite3_busy_timeout(d->db, (int) arg_busy_timeout_ms);
                /* A fresh connection knows the database is in WAL mode only once it has read it. */
                rc = sqlite3_exec(d->db, "PRAGMA schema_version", NULL, NULL, NULL);
                if (rc == SQLITE_OK) {
                        rc = sqlite3_wal_checkpoint_v2(d->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames, &done);
                        /* Busy readers or writers keep the log from being emptied; that only makes
                         * the copy bigger: the log is part of the component, and the freeze's
                         * lock keeps it whole. */
                        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
                                log_msg("%s: checkpoint could not finish (%s, %d of %d frames copied); the log is "
                                        "backed up with the database", d->name, sqlite3_errmsg(d->db), done, log_frames);
                                continue;
                        }
                }
                if (rc != SQLITE_OK) {
                        int32_t failure = (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED
                                                  ? VSS_E_WRITERERROR_RETRYABLE
                                                  : VSS_E_WRITERERROR_NONRETRYABLE;
                        bool r = writer_fail(w, failure, rc, "%s: checkpoint failed: %s", d->name, sqlite3_errmsg(d->db));
                        db_release(d, "prepare-snapshot failed");
                        return r;
                }
                log_msg("%s: checkpointed", d->name);
        }
        return true;
}

/* The write lock is waited for by trying it every LOCK_POLL_USEC until the deadline (usec), not
 * with SQLite's own busy handler, whose sleeps grow to 100 ms: an application that commits back
 * to back leaves the lock free for microseconds between two transactions, which a try every
 * 100 ms almost never meets (a backup under such a load failed three attempts in a row). */
#define LOCK_POLL_USEC 200
static int lock_busy(void *userdata, int tries) {
        const uint64_t *deadline = userdata;
        if (now_monotonic_usec() >= *deadline)
                return 0;
        struct timespec ts = { 0, LOCK_POLL_USEC * 1000L };
        (void) nanosleep(&ts, NULL);
        return 1;
}

/* Takes every selected database's write lock, waiting for running transactions to end, but not
 * for long: the lock waits share the lesser of the busy timeout and half the freeze window, the
 * rest being for the other writers and the provider. */
bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint32_t window = arg_opts.freeze_window_ms ?: DEFAULT_FREEZE_WINDOW_MS;
        uint64_t deadline = now_monotonic_msec() + (arg_busy_timeout_ms < window / 2 ? arg_busy_timeout_ms : window / 2);
        char msg[MSG_MAX + 1];

        for (size_t i = 0; i < arg_n_databases; i++) {
                database *d = &arg_databases[i];
                uint64_t now = now_monotonic_msec();
                int rc;

                if (!selected(info, d))
                        continue;
                rc = db_open(d, msg);
                if (rc != SQLITE_OK) {
                        db_release_all("freeze failed");
                        return writer_fail(w, VSS_E_WRITERERROR_RETRYABLE, rc, "%s: cannot open %s: %s", d->name, d->path,
                                    msg);
                }
                uint64_t until = (now < deadline ? deadline : now) * 1000;
                sqlite3_busy_handler(d->db, lock_busy, &until);
                rc = sqlite3_exec(d->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
                sqlite3_busy_timeout(d->db, (int) arg_busy_timeout_ms); /* until points into this frame */
                if (rc != SQLITE_OK) {
                        bool ret = writer_fail(w, VSS_E_WRITERERROR_RETRYABLE, rc, "%s: cannot take the write lock: %s",
                                        d->name, sqlite3_errmsg(d->db));
                        db_release_all("freeze failed");
                        return ret;
                }
                d->locked = true;
                /* Under the lock the stamp cannot change before the copy is cut. */
                rc = sqlite_stamp(d->db, d->stamp, sizeof d->stamp);
                if (rc != SQLITE_OK) {
                        log_msg("%s: cannot read the backup stamp of %s: %s", d->name, d->path, sqlite3_errstr(rc));
                        d->stamp[0] = '\0';
                }
                log_msg("%s: write lock taken", d->name);
        }
        return true;
}

/* Thaw and Abort (also the one libvss runs by itself when the window expires or vssd is gone). */
bool on_release(vss_writer *w, const vss_event_info *info, void *userdata) {
        db_release_all(vss_event_name(info->event));
        return true;
}

bool on_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        for (size_t i = 0; i < arg_n_databases; i++) {
                database *d = &arg_databases[i];
                int r;

                /* Only a stamp read under the lock describes the copy; without one, none. */
                if (!selected(info, d) || !d->stamp[0])
                        continue;
                r = vss_writer_set_backup_stamp(w, "", d->name, d->stamp);
                d->stamp[0] = '\0';
                if (r < 0)
                        return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "%s: cannot set the backup stamp: %s",
                                    d->name, vss_strerror(r));
        }
        return true;
}

bool on_backup_shutdown(vss_writer *w, const vss_event_info *info, void *userdata) {
        db_release_all("backup-shutdown"); /* e.g. PrepareForSnapshot ran but Freeze never came */
        return true;
}

/* The first process but this one that has path open (its pid, its name in comm), or 0: a file
 * replaced under an open connection goes on being written unlinked, and those writes are lost.
 * Only the processes this writer may look into are seen (all of them as root). */
static pid_t open_elsewhere(const char *path, char comm[64]) {
        struct stat want, st;
        pid_t found = 0;
        DIR *proc = stat(path, &want) == 0 ? opendir("/proc") : NULL;
        for (struct dirent *de; proc && !found && (de = readdir(proc));) {
                char *end, p[64];
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 0 || pid == getpid())
                        continue;
                snprintf(p, sizeof p, "/proc/%ld/fd", pid);
                DIR *fds = opendir(p);
                for (struct dirent *f; fds && !found && (f = readdir(fds));)
                        if (f->d_name[0] != '.' && fstatat(dirfd(fds), f->d_name, &st, 0) == 0 &&
                            st.st_dev == want.st_dev && st.st_ino == want.st_ino)
                                found = (pid_t) pid;
                if (fds)
                        closedir(fds);
                if (found) {
                        snprintf(p, sizeof p, "/proc/%ld/comm", pid);
                        FILE *f = fopen(p, "re");
                        if (!f || !fgets(comm, 64, f))
                                snprintf(comm, 64, "?");
                        comm[strcspn(comm, "\n")] = 0;
                        one_line(comm); /* any user names its own processes */
                        if (f)
                                fclose(f);
                }
        }
        if (proc)
                closedir(proc);
        return found;
}

/* The process holding a lock on the database or its -shm (a connection in WAL mode holds one on
 * the -shm as long as it is open; one in a transaction holds one on the database), or 0. Needs no
 * privilege over that process, unlike open_elsewhere(): a daemon of another user is seen too. */
static pid_t locked_elsewhere(const char *path) {
        const char *suffixes[] = { "-shm", "" };
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                char p[PATH_MAX + 8];
                snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
                int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (fd < 0)
                        continue;
                struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET }; /* the whole file */
                bool held = fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
                close(fd);
                if (held)
                        return fl.l_pid > 0 ? fl.l_pid : -1;
        }
        return 0;
}

/* restore-if-can-replace: a database some process has open cannot be replaced (its writes would
 * go to the old, unlinked file), so PreRestore refuses it, before anything is written. */
bool on_pre_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        db_release_all("pre-restore"); /* the files are about to be replaced under us */
        for (size_t i = 0; i < arg_n_databases; i++) {
                database *d = &arg_databases[i];
                const vss_bc_component *c = vss_writer_get_component(w, "", d->name);
                char comm[64], msg[MSG_MAX + 1];
                if (!c || !c->selected_for_restore || c->n_new_targets > 0)
                        continue;
                pid_t pid = open_elsewhere(d->path, comm);
                if (pid == 0 && (pid = locked_elsewhere(d->path)) != 0)
                        snprintf(comm, sizeof comm, "it holds a lock on it");
                if (pid == 0)
                        continue;
                snprintf(msg, sizeof msg, "%s is open in process %d (%s); stop it before restoring", d->path, (int) pid,
                         comm);
                vss_writer_set_pre_restore_failure_msg(w, "", d->name, msg);
                return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "%s: %s", d->name, msg);
        }
        return true;
}

/* Runs PRAGMA integrity_check on the restored database at path. Returns the SQLite code (or
 * SQLITE_CORRUPT when the check reports problems) with what went wrong in msg. */
static int check_integrity(const char *path, char msg[MSG_MAX + 1]) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        size_t len = 0;
        int rc, rows = 0;
        bool ok = false;

        msg[0] = '\0';
        if (access(path, F_OK) < 0) {
                snprintf(msg, MSG_MAX + 1, "%s: %s", path, strerror(errno));
                return SQLITE_CANTOPEN;
        }
        /* Read-write, for a restored write-ahead log to be recovered; never create. */
        rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
        if (rc == SQLITE_OK) {
                sqlite3_busy_timeout(db, (int) arg_busy_timeout_ms);
                rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
        }
        while (rc == SQLITE_OK || rc == SQLITE_ROW) {
                rc = sqlite3_step(st);
                if (rc != SQLITE_ROW)
                        break;
                const char *line = (const char *) sqlite3_column_text(st, 0);
                if (rows == 0 && line && streq(line, "ok"))
                        ok = true;
                else if (rows < INTEGRITY_ROWS_MAX && len < MSG_MAX)
                        len += (size_t) snprintf(msg + len, MSG_MAX + 1 - len, "%s%s", len ? "; " : "",
                                                 line ?: "(null)");
                rows++;
        }
        if (rc != SQLITE_DONE) {
                snprintf(msg, MSG_MAX + 1, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
                ok = false;
        } else if (!ok || rows != 1) {
                ok = false;
                rc = SQLITE_CORRUPT;
        }
        sqlite3_finalize(st);
        sqlite3_close_v2(db);
        return ok ? SQLITE_OK : rc;
}

bool on_post_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        int32_t failure = 0;
        int code = 0;
        char first[MSG_MAX + 1] = "";

        for (size_t i = 0; i < arg_n_databases; i++) {
                database *d = &arg_databases[i];
                const vss_bc_component *c = vss_writer_get_component(w, "", d->name);
                _cleanup_free_ char *target = NULL;
                char msg[MSG_MAX + 1], full[MSG_MAX + 1];
                const char *path = d->path;
                int rc;

                if (!c || !c->selected_for_restore || c->file_restore_status == VSS_RS_NONE)
                        continue;
                /* Restored elsewhere: the files went under the first new target's destination. */
                if (c->n_new_targets > 0) {
                        if (asprintf(&target, "%s/%s", c->new_targets[0].destination, d->base) < 0)
                                return writer_fail(w, VSS_E_WRITERERROR_OUTOFRESOURCES, 0, "out of memory");
                        path = target;
                }
                rc = check_integrity(path, msg);
                if (rc == SQLITE_OK) {
                        log_msg("%s: integrity check of %s: ok", d->name, path);
                        continue;
                }
                snprintf(full, sizeof full, "integrity check of %s failed: %s", path, msg);
                log_msg("%s: %s", d->name, full);
                vss_writer_set_post_restore_failure_msg(w, "", d->name, full);
                if (!failure) {
                        failure = VSS_E_WRITERERROR_NONRETRYABLE;
                        code = rc;
                        snprintf(first, sizeof first, "%s: %s", d->name, full);
                }
        }
        if (failure)
                return writer_fail(w, failure, code, "%s", first);
        return true;
}
