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
               "A Volume Shadow Copy writer for a PostgreSQL cluster (PostgreSQL 15 or later).\n"
               "Socket default: $VSS_SOCKET, else /run/openvss/vssd.sock.\n"
               "\n"
               WRITER_HELP_EXIT_STATUS
               "  2  bad usage\n"
               "\n"
               "See vss-writer-postgres(8) for the options, events, modes, errors and restoring.\n");
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
        opterr = 0; /* one message for a bad option: ours */
        while ((c = getopt_long(argc, argv, ":d:n:L:m:t:s:h", options, NULL)) >= 0) {
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
                default: {
                        char why[256];
                        return usage_error("%s", bad_option_text(argc, argv, c, why, sizeof why));
                }
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

