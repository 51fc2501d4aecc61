/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * vss-writer-postgres — a VSS writer for a PostgreSQL cluster. It publishes the cluster's files
 * (data directory, WAL directory, tablespaces) as one component and makes every shadow copy of
 * them restorable: either crash-consistent (one atomic snapshot of everything) or as a
 * non-exclusive base backup (pg_backup_start/pg_backup_stop) whose backup_label, tablespace_map
 * and WAL it hands the requester to store with the cluster's files (backup.c, label.c). At
 * PostRestore it points pg_wal and the tablespace links at where the requester restored them
 * (restore.c, layout.c). This file is its command line; pg.c is the connection.
 */

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vss/writer.h>

#include "lib/basic/log.h"
#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

#ifndef OPENVSS_VERSION
#define OPENVSS_VERSION "0.1.0"
#endif

const char *const mode_names[_MODE_MAX] = {
        [MODE_AUTO] = "auto",
        [MODE_CRASH] = "crash-consistent",
        [MODE_LABEL] = "backup-label",
};

const char *arg_dsn = "";
const char *arg_name = "postgres";
const char *arg_label_dir = "/var/lib/openvss/postgres-labels";
Mode arg_mode = MODE_AUTO;

static void help(void) {
        printf("Usage:\n"
               "  vss-writer-postgres [--dsn CONNINFO] [--name NAME] [--label-dir DIR]\n"
               "                      [--mode auto|crash-consistent|backup-label]\n"
               "                      [--freeze-timeout MS] [--socket PATH] [--no-reconnect]\n"
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
               "      --no-reconnect      exit (status 1) when vssd cannot be reached or the connection\n"
               "                          drops; by default the writer waits for vssd and subscribes\n"
               "                          again (a new instance id) when vssd restarts\n"
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
               WRITER_HELP_EXIT_STATUS
               "  2  bad usage\n"
               "\n"
               "Example:\n"
               "  vss-writer-postgres --dsn 'host=/run/postgresql user=postgres dbname=postgres'\n");
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "dsn", required_argument, NULL, 'd' },
                { "name", required_argument, NULL, 'n' },
                { "label-dir", required_argument, NULL, 'L' },
                { "mode", required_argument, NULL, 'm' },
                { "freeze-timeout", required_argument, NULL, 't' },
                { "socket", required_argument, NULL, 's' },
                { "no-reconnect", no_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        vss_writer_options opts = { .app_level = VSS_APP_BACK_END, .source_type = VSS_ST_TRANSACTEDDB,
                                    .usage_type = VSS_UT_USERDATA, .reconnect = true };
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

        log_set_ident("vss-writer-postgres");
        while ((c = getopt_long(argc, argv, "d:n:L:m:t:s:h", options, NULL)) >= 0) {
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
                        r = writer_parse_ms(optarg, "freeze timeout", &opts.freeze_window_ms);
                        if (r != 0)
                                return r;
                        break;
                case 's':
                        socket_path = optarg;
                        break;
                case 'R':
                        opts.reconnect = false;
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
                log_msg("cannot create writer: %s", vss_strerror(r));
                return EXIT_USAGE;
        }
        writer_log_name("vss-writer-postgres", arg_name);
        signal(SIGPIPE, SIG_IGN);
        log_msg("mode %s, label directory %s", mode_names[arg_mode], arg_label_dir);
        r = vss_writer_main(w, socket_path, "vss-writer-postgres");
        backup_reset();
        layout_clear(&layout);
        vss_writer_unref(w);
        return r;
}

