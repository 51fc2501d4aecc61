/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-postgres: the events of a backup. PrepareForSnapshot checkpoints and, in backup-label
 * mode, starts a non-exclusive base backup on a session kept until PostSnapshot, which ends it and
 * hands the requester the label and WAL (label.c) to store with the cluster's files. */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "lib/basic/log.h"
#include "lib/basic/time-util.h"
#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

/* The snapshot set in progress. */
typedef struct Backup {
        PGconn *conn;          /* the session that called pg_backup_start (label mode) */
        Mode mode;             /* MODE_CRASH or MODE_LABEL, decided at PrepareForSnapshot */
        char set_id[VSS_ID_STRING_MAX];
        char marker[PATH_MAX]; /* the marker written into the live data directory, or "" */
        char lsn[64];
        uint64_t t_start;
} Backup;

static Backup backup;

void backup_reset(void) {
        if (backup.conn) /* ending the session ends a non-exclusive backup */
                PQfinish(backup.conn);
        if (backup.marker[0] && unlink(backup.marker) < 0 && errno != ENOENT)
                log_msg("cannot remove %s: %m", backup.marker);
        backup = (Backup) {};
}

/* Runs sql on the backup session and keeps its one value as the backup's LSN; false, the backup
 * reset, when it fails. */
static bool query_lsn(vss_writer *w, const char *what, const char *sql) {
        PGresult *res = query(w, backup.conn, what, sql);

        if (!res) {
                backup_reset();
                return false;
        }
        snprintf(backup.lsn, sizeof backup.lsn, "%s", PQgetvalue(res, 0, 0));
        PQclear(res);
        return true;
}

bool on_prepare_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        PGresult *res;
        struct stat st;
        bool btrfs = false, one = false;
        char stamp[PATH_MAX + 200];
        int r;

        backup_reset();
        backup.t_start = now_monotonic_usec();
        vss_id_to_string(&info->snapshot_set_id, backup.set_id);
        if (!have_layout)
                return writer_fail(w, VSS_E_WRITERERROR_RETRYABLE, 0, "prepare-snapshot: the cluster was not identified");
        one = cluster_on_one_device(&layout, &btrfs);
        backup.mode = arg_mode != MODE_AUTO ? arg_mode : one && btrfs ? MODE_CRASH : MODE_LABEL;
        if (backup.mode == MODE_CRASH && !one)
                return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0,
                            "prepare-snapshot: --mode crash-consistent needs the WAL and tablespaces on the data "
                            "directory's filesystem, below the data directory");

        backup.conn = pg_connect();
        if (!backup.conn || PQstatus(backup.conn) != CONNECTION_OK) {
                fail_connect(w, backup.conn, "prepare-snapshot");
                backup_reset();
                return false;
        }
        /* The slow part, before anyone is frozen: later checkpoints, and recovery, have little to do. */
        res = query(w, backup.conn, "prepare-snapshot: CHECKPOINT", "CHECKPOINT");
        if (!res) {
                backup_reset();
                return false;
        }
        PQclear(res);

        /* The marker tells PostRestore that a directory holds this set's copy of the cluster. */
        snprintf(backup.marker, sizeof backup.marker, "%s/" MARKER, layout.data_dir);
        r = stat(layout.data_dir, &st) < 0 ? -errno : write_text(backup.marker, backup.set_id, 0600, st.st_uid, st.st_gid);
        if (r < 0) {
                writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0,
                     "prepare-snapshot: cannot write %s: %s (run the writer as root or as the cluster's owner)",
                     backup.marker, strerror(-r));
                backup.marker[0] = '\0';
                backup_reset();
                return false;
        }

        if (backup.mode == MODE_CRASH) {
                if (!query_lsn(w, "prepare-snapshot", "SELECT pg_current_wal_lsn()"))
                        return false;
                PQfinish(backup.conn);
                backup.conn = NULL;
                snprintf(stamp, sizeof stamp, "crash-consistent:lsn:%s;set:%s;data:%s", backup.lsn, backup.set_id,
                         layout.data_dir);
                log_msg("prepare-snapshot: crash-consistent: the whole cluster is on one btrfs subvolume%s; "
                        "checkpoint done at %s",
                        arg_mode == MODE_CRASH ? " (forced by --mode)" : "", backup.lsn);
        } else {
                /* Non-exclusive: this session must stay open until pg_backup_stop() at PostSnapshot. */
                if (!query_lsn(w, "prepare-snapshot: pg_backup_start", "SELECT pg_backup_start('openvss', true)"))
                        return false;
                snprintf(stamp, sizeof stamp, "backup-label:start:%s;set:%s;data:%s", backup.lsn, backup.set_id,
                         layout.data_dir);
                log_msg("prepare-snapshot: base backup started at %s (the cluster is not on one atomic snapshot)",
                        backup.lsn);
        }
        r = vss_writer_set_backup_stamp(w, "", COMPONENT, stamp);
        if (r < 0)
                log_msg("cannot set the backup stamp: %s", vss_strerror(r));
        log_msg("prepare-snapshot -> ok (%.1f ms)", (double) (now_monotonic_usec() - backup.t_start) / 1000.0);
        return true;
}

bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_monotonic_usec();
        PGresult *res;

        /* Nothing to hold: the base backup (or the atomic snapshot) makes the copy recoverable. The
         * backup session must still be there, or the backup was cancelled. */
        if (backup.mode == MODE_LABEL) {
                if (!backup.conn)
                        return writer_fail(w, VSS_E_WRITERERROR_RETRYABLE, 0, "freeze: no base backup in progress");
                res = query(w, backup.conn, "freeze: the backup session is gone", "SELECT 1");
                if (!res)
                        return false;
                PQclear(res);
        }
        log_msg("freeze -> ok (%.1f ms)", (double) (now_monotonic_usec() - t0) / 1000.0);
        return true;
}

bool on_thaw(vss_writer *w, const vss_event_info *info, void *userdata) {
        log_msg("thaw -> ok");
        return true;
}

bool on_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_monotonic_usec();
        char dir[PATH_MAX], wal[PATH_MAX + 8], path[PATH_MAX + 32], first[32] = "", stamp[PATH_MAX + 200];
        char live_wal[PATH_MAX + 8], as[PATH_MAX + 32];
        struct stat st;
        char err[MSG_MAX + 1] = "";
        const char *label, *spcmap, *p;
        PGresult *res;
        size_t n_wal = 0;
        bool ok = false;
        int r;

        if (backup.mode != MODE_LABEL) {
                log_msg("post-snapshot -> ok (crash-consistent; whole set %.1f ms)",
                        (double) (now_monotonic_usec() - backup.t_start) / 1000.0);
                backup_reset();
                return true;
        }
        if (!backup.conn)
                return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: no base backup in progress");
        /* Waits for the WAL to be archived when archiving is on, so that restore_command finds it;
         * a broken archive_command must not outlast vssd's PostSnapshot deadline (60 s default). */
        res = query(w, backup.conn, "post-snapshot", "SET statement_timeout = '50s'");
        if (!res) {
                backup_reset();
                return false;
        }
        PQclear(res);
        res = query(w, backup.conn, "post-snapshot: pg_backup_stop",
                    "SELECT b.labelfile, b.spcmapfile, b.lsn, pg_walfile_name(b.lsn) FROM pg_backup_stop(true) b");
        if (!res) {
                backup_reset();
                return false;
        }
        label = PQgetvalue(res, 0, 0);
        spcmap = PQgetisnull(res, 0, 1) ? "" : PQgetvalue(res, 0, 1);
        snprintf(backup.lsn, sizeof backup.lsn, "%s", PQgetvalue(res, 0, 2));
        p = strstr(label, "(file ");
        if (p)
                snprintf(first, sizeof first, "%.24s", p + 6);
        if (!is_segment(first)) {
                writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot find the start WAL file in the backup label");
                goto out;
        }
        snprintf(dir, sizeof dir, "%s/%s", arg_label_dir, backup.set_id);
        snprintf(wal, sizeof wal, "%s/pg_wal", dir);
        if ((r = mkdir_p_private(dir)) < 0 || (r = mkdir_p_private(wal)) < 0) {
                writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot create %s: %s", wal, strerror(-r));
                goto out;
        }
        /* Owned and moded as the cluster's files: they are restored as such. */
        if (stat(layout.data_dir, &st) < 0 || (chown(wal, st.st_uid, st.st_gid) < 0 && geteuid() == 0)) {
                writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot give %s to the cluster's owner: %m", wal);
                goto out;
        }
        snprintf(path, sizeof path, "%s/backup_label", dir);
        r = write_text(path, label, 0600, st.st_uid, st.st_gid);
        if (r >= 0 && *spcmap) {
                snprintf(path, sizeof path, "%s/tablespace_map", dir);
                r = write_text(path, spcmap, 0600, st.st_uid, st.st_gid);
        }
        if (r < 0) {
                writer_fail(w, r == -ENOSPC ? VSS_E_WRITERERROR_OUTOFRESOURCES : VSS_E_WRITERERROR_NONRETRYABLE, 0,
                     "post-snapshot: cannot write %s: %s", path, strerror(-r));
                goto out;
        }
        if (layout.wal_dir)
                snprintf(live_wal, sizeof live_wal, "%s", layout.wal_dir);
        else
                snprintf(live_wal, sizeof live_wal, "%s/pg_wal", layout.data_dir);
        r = save_wal(live_wal, wal, first, PQgetvalue(res, 0, 3), st.st_uid, st.st_gid, &n_wal, err);
        if (r < 0) {
                writer_fail(w, r == -ENOSPC ? VSS_E_WRITERERROR_OUTOFRESOURCES : VSS_E_WRITERERROR_NONRETRYABLE, 0,
                     "post-snapshot: %s", err);
                goto out;
        }
        /* Written after the copy was cut: the requester stores them as the cluster's own files,
         * in place of the copy's, so that the backup alone restores to a cluster that starts. */
        snprintf(path, sizeof path, "%s/backup_label", dir);
        snprintf(as, sizeof as, "%s/backup_label", layout.data_dir);
        r = vss_writer_add_backup_files(w, "", COMPONENT, path, "*", false, as);
        if (r >= 0 && *spcmap) {
                snprintf(path, sizeof path, "%s/tablespace_map", dir);
                snprintf(as, sizeof as, "%s/tablespace_map", layout.data_dir);
                r = vss_writer_add_backup_files(w, "", COMPONENT, path, "*", false, as);
        }
        if (r >= 0) {
                snprintf(path, sizeof path, "%s", wal);
                r = vss_writer_add_backup_files(w, "", COMPONENT, wal, "*", false, live_wal);
        }
        if (r < 0) {
                writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot add %s to the backup: %s", path,
                     vss_strerror(r));
                goto out;
        }
        snprintf(stamp, sizeof stamp, "lsn:%s;set:%s;data:%s", backup.lsn, backup.set_id, layout.data_dir);
        r = vss_writer_set_backup_stamp(w, "", COMPONENT, stamp);
        if (r < 0)
                log_msg("cannot set the backup stamp: %s", vss_strerror(r));
        log_msg("post-snapshot -> ok (%.1f ms; whole set %.1f ms): base backup ended at %s; backup_label and %zu WAL "
                "segment(s) from %s saved in %s",
                (double) (now_monotonic_usec() - t0) / 1000.0, (double) (now_monotonic_usec() - backup.t_start) / 1000.0, backup.lsn,
                n_wal, first, dir);
        ok = true;
out:
        PQclear(res);
        backup_reset();
        return ok;
}

bool on_abort(vss_writer *w, const vss_event_info *info, void *userdata) {
        if (backup.conn || backup.marker[0])
                log_msg("abort: %s", backup.conn ? "cancelling the base backup" : "cleaning up");
        backup_reset();
        return true;
}

bool on_backup_shutdown(vss_writer *w, const vss_event_info *info, void *userdata) {
        /* A set that ended before PostSnapshot: no backup left running, no marker left behind. */
        if (backup.conn || backup.marker[0]) {
                log_msg("backup-shutdown: ending the unfinished base backup");
                backup_reset();
        }
        return true;
}
