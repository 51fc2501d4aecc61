/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * vss-writer-postgres — a VSS writer for a PostgreSQL cluster. It publishes the cluster's files
 * (data directory, WAL directory, tablespaces) as one component and makes every shadow copy of
 * them restorable: either crash-consistent (one atomic snapshot of everything) or as a
 * non-exclusive base backup (pg_backup_start/pg_backup_stop) whose backup_label, tablespace_map
 * and WAL it hands the requester to store with the cluster's files (label.c). At PostRestore it
 * points pg_wal and the tablespace links at where the requester restored them (layout.c).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <systemd/sd-event.h>

#include <vss/writer.h>

#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

#ifndef OPENVSS_VERSION
#define OPENVSS_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2
#define COMPONENT "cluster"
#define MARKER "openvss-snapshot-set"

typedef enum Mode {
        MODE_AUTO,
        MODE_CRASH,
        MODE_LABEL,
} Mode;

static const char *const mode_names[] = {
        [MODE_AUTO] = "auto",
        [MODE_CRASH] = "crash-consistent",
        [MODE_LABEL] = "backup-label",
};

const char *arg_dsn = "";
static const char *arg_name = "postgres";
static const char *arg_label_dir = "/var/lib/openvss/postgres-labels";
static Mode arg_mode = MODE_AUTO;

/* The snapshot set in progress. */
typedef struct Backup {
        PGconn *conn;          /* the session that called pg_backup_start (label mode) */
        Mode mode;             /* MODE_CRASH or MODE_LABEL, decided at PrepareForSnapshot */
        char set_id[VSS_ID_STRING_MAX];
        char marker[PATH_MAX]; /* the marker written into the live data directory, or "" */
        char lsn[64];
        uint64_t t_start;
} Backup;

static Layout layout;
static bool have_layout;
static Backup backup;

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

void log_msg(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "vss-writer-postgres[%s]: ", arg_name);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

static bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        uint64_t t0 = now_usec();
        Layout l = {};
        char caption[PATH_MAX + 32], sub[PATH_MAX + 16];
        int r;

        if (layout_query(w, &l)) {
                layout_save(&l, arg_label_dir);
                layout_clear(&layout);
                layout = l;
                have_layout = true;
        } else if (have_layout || layout_load(&layout, arg_label_dir)) {
                /* Down for a restore, most likely: publish the layout last seen. */
                log_msg("identify: server unreachable; publishing the layout last seen (data directory %s)",
                        layout.data_dir);
                have_layout = true; /* a callback that succeeds reports no failure */
        } else
                return false; /* the failure query()/fail_connect() set */

        snprintf(caption, sizeof caption, "PostgreSQL cluster %s", layout.data_dir);
        r = vss_metadata_add_component(md, "", COMPONENT, caption, true, true);
        if (r >= 0)
                r = vss_metadata_add_files(md, "", COMPONENT, layout.data_dir, "*", true);
        if (r >= 0 && layout.wal_dir)
                r = vss_metadata_add_files(md, "", COMPONENT, layout.wal_dir, "*", true);
        for (size_t i = 0; r >= 0 && i < layout.n_tablespaces; i++)
                r = vss_metadata_add_files(md, "", COMPONENT, layout.tablespaces[i], "*", true);
        /* Runtime files: a copied postmaster.pid would stop the restored server from starting. */
        if (r >= 0)
                r = vss_metadata_add_exclude_files(md, layout.data_dir, "postmaster.pid", false);
        if (r >= 0)
                r = vss_metadata_add_exclude_files(md, layout.data_dir, "postmaster.opts", false);
        snprintf(sub, sizeof sub, "%s/pg_stat_tmp", layout.data_dir);
        if (r >= 0)
                r = vss_metadata_add_exclude_files(md, sub, "*", true);
        if (r >= 0)
                r = vss_metadata_set_restore_method(md, VSS_RME_STOP_RESTORE_START, "postgresql", false);
        if (r >= 0)
                r = vss_metadata_set_writer_restore(md, VSS_WRE_ALWAYS);
        if (r < 0)
                return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "identify: cannot build metadata: %s", vss_strerror(r));
        log_msg("identify -> ok (%.1f ms): data %s, wal %s, %zu tablespace(s)", (double) (now_usec() - t0) / 1000.0,
                layout.data_dir, layout.wal_dir ? layout.wal_dir : "inside", layout.n_tablespaces);
        return true;
}

static void backup_reset(void) {
        if (backup.conn) /* ending the session ends a non-exclusive backup */
                PQfinish(backup.conn);
        if (backup.marker[0] && unlink(backup.marker) < 0 && errno != ENOENT)
                log_msg("cannot remove %s: %m", backup.marker);
        backup = (Backup) {};
}

static bool on_prepare_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        PGresult *res;
        struct stat st;
        bool btrfs = false, one = false;
        char stamp[PATH_MAX + 200];
        int r;

        backup_reset();
        backup.t_start = now_usec();
        vss_id_to_string(&info->snapshot_set_id, backup.set_id);
        if (!have_layout)
                return fail(w, VSS_E_WRITERERROR_RETRYABLE, 0, "prepare-snapshot: the cluster was not identified");
        one = cluster_on_one_device(&layout, &btrfs);
        backup.mode = arg_mode != MODE_AUTO ? arg_mode : one && btrfs ? MODE_CRASH : MODE_LABEL;
        if (backup.mode == MODE_CRASH && !one)
                return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0,
                            "prepare-snapshot: --mode crash-consistent needs the data directory, WAL and tablespaces "
                            "on one filesystem");

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
                fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0,
                     "prepare-snapshot: cannot write %s: %s (run the writer as root or as the cluster's owner)",
                     backup.marker, strerror(-r));
                backup.marker[0] = '\0';
                backup_reset();
                return false;
        }

        if (backup.mode == MODE_CRASH) {
                res = query(w, backup.conn, "prepare-snapshot", "SELECT pg_current_wal_lsn()");
                if (!res) {
                        backup_reset();
                        return false;
                }
                snprintf(backup.lsn, sizeof backup.lsn, "%s", PQgetvalue(res, 0, 0));
                PQclear(res);
                PQfinish(backup.conn);
                backup.conn = NULL;
                snprintf(stamp, sizeof stamp, "crash-consistent:lsn:%s;set:%s;data:%s", backup.lsn, backup.set_id,
                         layout.data_dir);
                log_msg("prepare-snapshot: crash-consistent: the whole cluster is on one btrfs subvolume%s; "
                        "checkpoint done at %s",
                        arg_mode == MODE_CRASH ? " (forced by --mode)" : "", backup.lsn);
        } else {
                /* Non-exclusive: this session must stay open until pg_backup_stop() at PostSnapshot. */
                res = query(w, backup.conn, "prepare-snapshot: pg_backup_start", "SELECT pg_backup_start('openvss', true)");
                if (!res) {
                        backup_reset();
                        return false;
                }
                snprintf(backup.lsn, sizeof backup.lsn, "%s", PQgetvalue(res, 0, 0));
                PQclear(res);
                snprintf(stamp, sizeof stamp, "backup-label:start:%s;set:%s;data:%s", backup.lsn, backup.set_id,
                         layout.data_dir);
                log_msg("prepare-snapshot: base backup started at %s (the cluster is not on one atomic snapshot)",
                        backup.lsn);
        }
        r = vss_writer_set_backup_stamp(w, "", COMPONENT, stamp);
        if (r < 0)
                log_msg("cannot set the backup stamp: %s", vss_strerror(r));
        log_msg("prepare-snapshot -> ok (%.1f ms)", (double) (now_usec() - backup.t_start) / 1000.0);
        return true;
}

static bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_usec();
        PGresult *res;

        /* Nothing to hold: the base backup (or the atomic snapshot) makes the copy recoverable. The
         * backup session must still be there, or the backup was cancelled. */
        if (backup.mode == MODE_LABEL) {
                if (!backup.conn)
                        return fail(w, VSS_E_WRITERERROR_RETRYABLE, 0, "freeze: no base backup in progress");
                res = query(w, backup.conn, "freeze: the backup session is gone", "SELECT 1");
                if (!res)
                        return false;
                PQclear(res);
        }
        log_msg("freeze -> ok (%.1f ms)", (double) (now_usec() - t0) / 1000.0);
        return true;
}

static bool on_thaw(vss_writer *w, const vss_event_info *info, void *userdata) {
        log_msg("thaw -> ok");
        return true;
}

static bool on_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_usec();
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
                        (double) (now_usec() - backup.t_start) / 1000.0);
                backup_reset();
                return true;
        }
        if (!backup.conn)
                return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: no base backup in progress");
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
                fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot find the start WAL file in the backup label");
                goto out;
        }
        snprintf(dir, sizeof dir, "%s/%s", arg_label_dir, backup.set_id);
        snprintf(wal, sizeof wal, "%s/pg_wal", dir);
        if ((r = mkdir_p_private(dir)) < 0 || (r = mkdir_p_private(wal)) < 0) {
                fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot create %s: %s", wal, strerror(-r));
                goto out;
        }
        /* Owned and moded as the cluster's files: they are restored as such. */
        if (stat(layout.data_dir, &st) < 0 || (chown(wal, st.st_uid, st.st_gid) < 0 && geteuid() == 0)) {
                fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot give %s to the cluster's owner: %m", wal);
                goto out;
        }
        snprintf(path, sizeof path, "%s/backup_label", dir);
        r = write_text(path, label, 0600, st.st_uid, st.st_gid);
        if (r >= 0 && *spcmap) {
                snprintf(path, sizeof path, "%s/tablespace_map", dir);
                r = write_text(path, spcmap, 0600, st.st_uid, st.st_gid);
        }
        if (r < 0) {
                fail(w, r == -ENOSPC ? VSS_E_WRITERERROR_OUTOFRESOURCES : VSS_E_WRITERERROR_NONRETRYABLE, 0,
                     "post-snapshot: cannot write %s: %s", path, strerror(-r));
                goto out;
        }
        if (layout.wal_dir)
                snprintf(live_wal, sizeof live_wal, "%s", layout.wal_dir);
        else
                snprintf(live_wal, sizeof live_wal, "%s/pg_wal", layout.data_dir);
        r = save_wal(live_wal, wal, first, PQgetvalue(res, 0, 3), st.st_uid, st.st_gid, &n_wal, err);
        if (r < 0) {
                fail(w, r == -ENOSPC ? VSS_E_WRITERERROR_OUTOFRESOURCES : VSS_E_WRITERERROR_NONRETRYABLE, 0,
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
                fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-snapshot: cannot add %s to the backup: %s", path,
                     vss_strerror(r));
                goto out;
        }
        snprintf(stamp, sizeof stamp, "lsn:%s;set:%s;data:%s", backup.lsn, backup.set_id, layout.data_dir);
        r = vss_writer_set_backup_stamp(w, "", COMPONENT, stamp);
        if (r < 0)
                log_msg("cannot set the backup stamp: %s", vss_strerror(r));
        log_msg("post-snapshot -> ok (%.1f ms; whole set %.1f ms): base backup ended at %s; backup_label and %zu WAL "
                "segment(s) from %s saved in %s",
                (double) (now_usec() - t0) / 1000.0, (double) (now_usec() - backup.t_start) / 1000.0, backup.lsn,
                n_wal, first, dir);
        ok = true;
out:
        PQclear(res);
        backup_reset();
        return ok;
}

static bool on_abort(vss_writer *w, const vss_event_info *info, void *userdata) {
        if (backup.conn || backup.marker[0])
                log_msg("abort: %s", backup.conn ? "cancelling the base backup" : "cleaning up");
        backup_reset();
        return true;
}

/* Whether the cluster's server is up: it answers (or refuses) connections, or the postmaster of
 * the data directory's postmaster.pid is alive. */
static bool server_running(const char *data_dir, char why[static 256]) {
        const char *const keys[] = { "connect_timeout", "dbname", NULL };
        const char *const values[] = { "5", arg_dsn, NULL };
        PGPing ping = PQpingParams(keys, values, 1);
        char path[PATH_MAX];
        _cleanup_fclose_ FILE *f = NULL;
        long pid = 0;

        if (ping == PQPING_OK || ping == PQPING_REJECT) {
                snprintf(why, 256, "it %s connections", ping == PQPING_OK ? "accepts" : "refuses");
                return true;
        }
        if (!data_dir)
                return false;
        snprintf(path, sizeof path, "%s/postmaster.pid", data_dir);
        f = fopen(path, "re");
        if (f && fscanf(f, "%ld", &pid) == 1 && pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM)) {
                snprintf(why, 256, "its postmaster (pid %ld) is alive", pid);
                return true;
        }
        return false;
}

static bool on_pre_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_usec();
        char why[256] = "";

        if (server_running(have_layout ? layout.data_dir : NULL, why)) {
                static const char msg[] = "PostgreSQL is running; stop it before restoring";
                for (size_t i = 0; i < info->n_components; i++)
                        (void) vss_writer_set_pre_restore_failure_msg(w, "", info->components[i], msg);
                log_msg("pre-restore: %s", why);
                return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "%s", msg);
        }
        log_msg("pre-restore -> ok (%.1f ms): the server is stopped", (double) (now_usec() - t0) / 1000.0);
        return true;
}

/* Reads "key:value" from a backup stamp: value up to the next ';', or to the end for "data"
 * (a path may hold ';'). */
static bool stamp_get(const char *stamp, const char *key, char *buf, size_t size) {
        size_t kl = strlen(key);

        for (const char *p = stamp; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
                const char *s = p;
                if (strncmp(s, "crash-consistent:", 17) == 0)
                        s += 17;
                else if (strncmp(s, "backup-label:", 13) == 0)
                        s += 13;
                if (strncmp(s, key, kl) != 0 || s[kl] != ':')
                        continue;
                s += kl + 1;
                snprintf(buf, size, "%.*s", (int) (streq(key, "data") ? strlen(s) : strcspn(s, ";")), s);
                return true;
        }
        return false;
}

static bool on_post_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_usec();

        for (size_t i = 0; i < info->n_components; i++) {
                const vss_bc_component *c = vss_writer_get_component(w, "", info->components[i]);
                char set[VSS_ID_STRING_MAX + 8] = "", data[PATH_MAX] = "", target[PATH_MAX], path[PATH_MAX + 32];
                char seen[VSS_ID_STRING_MAX + 8] = "", err[MSG_MAX + 1] = "", src[PATH_MAX + 64];
                _cleanup_fclose_ FILE *f = NULL;
                bool label, stored = false;
                struct stat st;

                if (!c || c->file_restore_status != VSS_RS_ALL) {
                        log_msg("post-restore: %s: files not restored (status %d), nothing to do", info->components[i],
                                c ? (int) c->file_restore_status : -1);
                        continue;
                }
                if (!c->backup_stamp || !stamp_get(c->backup_stamp, "set", set, sizeof set) ||
                    !stamp_get(c->backup_stamp, "data", data, sizeof data) || data[0] != '/')
                        return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0,
                                    "post-restore: the backup stamp '%s' does not name the snapshot set and data directory",
                                    strempty(c->backup_stamp));
                label = strncmp(c->backup_stamp, "crash-consistent:", 17) != 0;
                restored_path(c, data, target, sizeof target);

                /* Only a directory holding this set's copy is touched: the files may have gone
                 * elsewhere (vssbackup restore --to), and then the one here is someone else's. */
                snprintf(path, sizeof path, "%s/" MARKER, target);
                f = fopen(path, "re");
                if (!f || !fgets(seen, sizeof seen, f) || !streq(seen, set)) {
                        /* A backup holding its label and WAL is whole wherever it went. */
                        if (!label || c->n_writer_files > 0) {
                                log_msg("post-restore -> ok: no copy of set %s at %s; nothing to do", set, target);
                                continue;
                        }
                        char msg[MSG_MAX + 1];
                        snprintf(msg, sizeof msg,
                                 "the restored data directory of set %s is not at %s: before starting PostgreSQL on it, "
                                 "copy %s/%s/backup_label (and tablespace_map) into it and %s/%s/pg_wal/* into its pg_wal",
                                 set, target, arg_label_dir, set, arg_label_dir, set);
                        (void) vss_writer_set_post_restore_failure_msg(w, "", info->components[i], msg);
                        return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-restore: %s", msg);
                }
                if (stat(target, &st) < 0)
                        return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-restore: cannot stat %s: %m", target);
                /* The backup holds backup_label, tablespace_map and the WAL up to the backup's end
                 * among the cluster's files; one made before it did has them in DIR/SET only. */
                snprintf(path, sizeof path, "%s/backup_label", target);
                snprintf(src, sizeof src, "%s/%s", arg_label_dir, set);
                stored = access(path, F_OK) == 0;
                /* Links first: old backups' WAL goes into pg_wal, which may link to the restored
                 * WAL directory; recovery recreates pg_tblspc from the map. */
                if (relocate_links(c, target, st.st_uid, st.st_gid, err) < 0 ||
                    (label && !stored && install_label(src, target, st.st_uid, st.st_gid, err) < 0) ||
                    relocate_map(c, target, st.st_uid, st.st_gid, err) < 0) {
                        (void) vss_writer_set_post_restore_failure_msg(w, "", info->components[i], err);
                        return fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-restore: %s", err);
                }
                /* Left by a server that ran when the copy was cut; excluded, but an older backup may hold one. */
                snprintf(path, sizeof path, "%s/postmaster.pid", target);
                if (unlink(path) < 0 && errno != ENOENT)
                        log_msg("post-restore: cannot remove %s: %m", path);
                snprintf(path, sizeof path, "%s/" MARKER, target);
                if (unlink(path) < 0)
                        log_msg("post-restore: cannot remove %s: %m", path);
                log_msg("post-restore -> ok (%.1f ms): %s ready for %s; start PostgreSQL on it", (double) (now_usec() - t0) / 1000.0,
                        target, !label ? "crash recovery" : stored ? "recovery from the base backup (backup_label and WAL restored with it)"
                                                                   : "recovery from the base backup (backup_label and WAL installed)");
        }
        return true;
}

static bool on_backup_shutdown(vss_writer *w, const vss_event_info *info, void *userdata) {
        /* A set that ended before PostSnapshot: no backup left running, no marker left behind. */
        if (backup.conn || backup.marker[0]) {
                log_msg("backup-shutdown: ending the unfinished base backup");
                backup_reset();
        }
        return true;
}

static void help(void) {
        printf("Usage:\n"
               "  vss-writer-postgres [--dsn CONNINFO] [--name NAME] [--label-dir DIR]\n"
               "                      [--mode auto|crash-consistent|backup-label]\n"
               "                      [--freeze-timeout MS] [--socket PATH]\n"
               "  vss-writer-postgres --help | --version\n"
               "\n"
               "A Volume Shadow Copy writer for a PostgreSQL cluster (PostgreSQL 15 or later). It\n"
               "registers with vssd under NAME as a back-end writer and publishes one component,\n"
               "'cluster': the data directory, the WAL directory when pg_wal links outside it, and\n"
               "each tablespace, recursively, leaving out postmaster.pid, postmaster.opts and\n"
               "pg_stat_tmp/. Restore method: stop-restore-start (service 'postgresql').\n"
               "\n"
               "Options:\n"
               "  -d, --dsn CONNINFO      libpq connection string or URI (default: empty, libpq's\n"
               "                          defaults and PG* environment variables). The role needs\n"
               "                          to read data_directory (superuser or pg_read_all_settings)\n"
               "                          and to run CHECKPOINT (pg_checkpoint) and pg_backup_start/\n"
               "                          pg_backup_stop (EXECUTE granted, or superuser)\n"
               "  -n, --name NAME         writer name (default: postgres)\n"
               "  -L, --label-dir DIR     where backup labels and the WAL they need are made for the\n"
               "                          requester to store, and the last known layout is kept\n"
               "                          (default: /var/lib/openvss/postgres-labels)\n"
               "  -m, --mode MODE         how copies are made consistent (default: auto, see below)\n"
               "  -t, --freeze-timeout MS\n"
               "                          Freeze-to-Thaw window in milliseconds (0: vssd default, 60 s)\n"
               "  -s, --socket PATH       vssd socket (default: $VSS_SOCKET or /run/openvss/vssd.sock)\n"
               "  -h, --help              show this help\n"
               "      --version           show the version\n"
               "\n"
               "Events:\n"
               "  identify          connects, asks the server for data_directory and its tablespaces.\n"
               "                    When the server cannot be reached, the layout last seen (kept in\n"
               "                    DIR/layout) is published, so that restores, which happen while the\n"
               "                    server is stopped, include the writer; with none seen yet Identify\n"
               "                    fails, retryable, with libpq's message.\n"
               "  prepare-snapshot  CHECKPOINT, then writes DATA_DIR/" MARKER " (the set id) so that\n"
               "                    post-restore recognizes the copy; in backup-label mode, starts a\n"
               "                    non-exclusive base backup, pg_backup_start('openvss', true), on a\n"
               "                    session kept open until post-snapshot.\n"
               "  freeze, thaw      nothing is held: the base backup, or the atomic snapshot, makes\n"
               "                    the copy recoverable. Freeze checks the backup session is alive.\n"
               "  post-snapshot     backup-label mode: pg_backup_stop(true) (which waits for WAL\n"
               "                    archiving when archive_mode is on, at most 50 s); keeps the label in\n"
               "                    DIR/SET/backup_label (and tablespace_map) and copies the WAL\n"
               "                    segments from the backup's start to its end into DIR/SET/pg_wal,\n"
               "                    owned by the cluster's owner; names them in the component's\n"
               "                    writer_files, so that the requester stores them as DATA_DIR/\n"
               "                    backup_label, DATA_DIR/tablespace_map and the WAL directory's\n"
               "                    segments. Removes the marker from the live data directory.\n"
               "  abort, backup-shutdown\n"
               "                    end an unfinished base backup and remove the marker.\n"
               "  pre-restore       fails when the server is running (it accepts or refuses\n"
               "                    connections, or the postmaster of DATA_DIR/postmaster.pid lives):\n"
               "                    'PostgreSQL is running; stop it before restoring'.\n"
               "  post-restore      in the restored data directory (in place, or the requester's new\n"
               "                    target), if it holds the set's marker: points pg_wal and the\n"
               "                    pg_tblspc links, and tablespace_map's locations, at where the\n"
               "                    requester's new targets put them; for a backup that does not\n"
               "                    hold backup_label (made by an older writer), installs it, the\n"
               "                    tablespace_map and the WAL from DIR/SET; removes a stale\n"
               "                    postmaster.pid and the marker. It does not start the server.\n"
               "\n"
               "Modes:\n"
               "  crash-consistent  the copy is one atomic snapshot of the whole cluster, and the\n"
               "                    server recovers from it as after a power loss. Only true when the\n"
               "                    provider snapshots everything at one instant; the writer cannot\n"
               "                    see the provider.\n"
               "  backup-label      the copy is a base backup: valid whatever the provider does (the\n"
               "                    file provider copies file by file while the server writes). It\n"
               "                    needs the backup_label and the WAL up to the backup's end, which\n"
               "                    are written after the copy was cut: the writer keeps them in\n"
               "                    DIR/SET and the requester stores them in the backup as the\n"
               "                    cluster's files (vssbackup does). The backup alone restores, on\n"
               "                    any machine, to a data directory that recovers from the base\n"
               "                    backup, even when no writer takes part in the restore. A\n"
               "                    requester that ignores writer_files leaves them out: then DIR/SET\n"
               "                    is needed at restore. WAL segments recycled before post-snapshot\n"
               "                    fail it (raise wal_keep_size).\n"
               "  auto (default)    crash-consistent when the data directory, WAL and tablespaces are\n"
               "                    on one btrfs subvolume (the btrfs provider snapshots it\n"
               "                    atomically), backup-label otherwise.\n"
               "  The component's backup stamp says which: 'crash-consistent:lsn:LSN;set:SET;data:DIR'\n"
               "  (LSN after the checkpoint) or 'lsn:STOP_LSN;set:SET;data:DIR'.\n"
               "\n"
               "Errors:\n"
               "  A connection failure fails the event with VSS_E_WRITERERROR_RETRYABLE; an SQL error\n"
               "  with VSS_E_WRITERERROR_NONRETRYABLE (insufficient privilege, 42501, among them), or\n"
               "  VSS_E_WRITERERROR_OUTOFRESOURCES for class 53 (out of memory, disk full), or\n"
               "  RETRYABLE for classes 08 and 57P (connection lost, server shutting down). The\n"
               "  application message is what failed and PostgreSQL's message, with the SQLSTATE\n"
               "  ('prepare-snapshot: CHECKPOINT: ERROR:  permission denied ... (SQLSTATE 42501)');\n"
               "  the application code is the SQLSTATE read as a base-36 number (42501 -> 6818257),\n"
               "  0 when there is none (connection failures).\n"
               "\n"
               "Restoring:\n"
               "  Stop the server, restore (vssbackup restore --from BACKUP [--to DIR]), start the\n"
               "  server on the restored data directory. The writer prepares the copy where the\n"
               "  requester's new targets say it went (vssbackup sets them for --to), else in place.\n"
               "  With --to DIR, vssbackup restores the WAL directory and the tablespaces under DIR\n"
               "  too, and post-restore points pg_wal, pg_tblspc/OID and tablespace_map there. A\n"
               "  writer that never saw the cluster (no server, no DIR/layout) fails Identify and\n"
               "  takes no part: an in-place restore still starts (the links name the original\n"
               "  places, where the files went); under --to, fix the links by hand.\n"
               "  When the copy is not there (a requester put it elsewhere without saying so),\n"
               "  post-restore fails for a backup without backup_label and says which files to\n"
               "  copy by hand.\n"
               "  DIR/SET is never removed by the writer: delete it once the backup of set SET is\n"
               "  stored.\n"
               "\n"
               "Exit status:\n"
               "  0  stopped by SIGTERM or SIGINT\n"
               "  1  could not register with vssd, or lost the connection to it\n"
               "  2  bad usage\n"
               "\n"
               "Example:\n"
               "  vss-writer-postgres --dsn 'host=/run/postgresql user=postgres dbname=postgres'\n");
}

static int usage_error(const char *fmt, const char *arg) {
        fprintf(stderr, "vss-writer-postgres: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\nTry 'vss-writer-postgres --help' for more information.\n");
        return EXIT_USAGE;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "dsn", required_argument, NULL, 'd' },
                { "name", required_argument, NULL, 'n' },
                { "label-dir", required_argument, NULL, 'L' },
                { "mode", required_argument, NULL, 'm' },
                { "freeze-timeout", required_argument, NULL, 't' },
                { "socket", required_argument, NULL, 's' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        vss_writer_options opts = { .app_level = VSS_APP_BACK_END, .source_type = VSS_ST_TRANSACTEDDB,
                                    .usage_type = VSS_UT_USERDATA };
        vss_writer_callbacks cb = {
                .identify = on_identify,
                .prepare_snapshot = on_prepare_snapshot,
                .freeze = on_freeze,
                .thaw = on_thaw,
                .post_snapshot = on_post_snapshot,
                .abort = on_abort,
                .backup_shutdown = on_backup_shutdown,
                .pre_restore = on_pre_restore,
                .post_restore = on_post_restore,
        };
        const char *socket_path = NULL;
        vss_writer *w = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "d:n:L:m:t:s:h", options, NULL)) >= 0) {
                char *end;
                unsigned long ul;

                switch (c) {
                case 'd':
                        arg_dsn = optarg;
                        break;
                case 'n':
                        arg_name = optarg;
                        break;
                case 'L':
                        if (optarg[0] != '/' || strlen(optarg) > PATH_MAX - 128)
                                return usage_error("invalid --label-dir '%s', expected an absolute path", optarg);
                        arg_label_dir = optarg;
                        break;
                case 'm':
                        for (r = 0; r < (int) ELEMENTSOF(mode_names) && !streq(optarg, mode_names[r]); r++)
                                ;
                        if (r == (int) ELEMENTSOF(mode_names))
                                return usage_error("invalid --mode '%s', expected auto, crash-consistent or backup-label",
                                                   optarg);
                        arg_mode = (Mode) r;
                        break;
                case 't':
                        errno = 0;
                        ul = strtoul(optarg, &end, 10);
                        if (!*optarg || *optarg == '-' || *optarg == '+' || *end || errno || ul > UINT32_MAX)
                                return usage_error("invalid freeze timeout '%s', expected milliseconds", optarg);
                        opts.freeze_window_ms = (uint32_t) ul;
                        break;
                case 's':
                        socket_path = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("vss-writer-postgres (OpenVSS) %s\n", OPENVSS_VERSION);
                        return 0;
                default:
                        return usage_error("%s", "invalid usage");
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        if (!*arg_name || strlen(arg_name) > 255)
                return usage_error("%s", "--name must be 1 to 255 bytes");
        opts.name = arg_name;

        r = vss_writer_new(&opts, &cb, NULL, &w);
        if (r < 0) {
                fprintf(stderr, "vss-writer-postgres: cannot create writer: %s\n", vss_strerror(r));
                return EXIT_USAGE;
        }
        signal(SIGPIPE, SIG_IGN);
        log_msg("mode %s, label directory %s", mode_names[arg_mode], arg_label_dir);
        r = vss_writer_main(w, socket_path, "vss-writer-postgres");
        backup_reset();
        layout_clear(&layout);
        vss_writer_unref(w);
        return r;
}
