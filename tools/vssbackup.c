/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vssbackup — the reference requester. backup: the whole writer sequence, the selected
 * components' files copied from the shadow copies into a directory or an archive with the
 * backup components document and the writers' metadata. restore: the restore sequence with the
 * writers, files put back where the writers say. exec: any backup tool run against a consistent
 * shadow copy.
 */

#include <getopt.h>

#include <vss/backup.h>

#include "lib/basic/log.h"
#include "lib/basic/parse-util.h"
#include "lib/common.h"
#include "tools/vssbackup.h"

const char *arg_socket;
bool arg_json;
const char *arg_provider;
unsigned arg_retries = 2;

static void help(void) {
        printf("Usage:\n"
               "  vssbackup backup --to DIR|FILE.tar[.gz|.xz|.zst] [--component WRITER:LOGICAL_PATH]...\n"
               "                   [--type full|copy|incremental|differential|log] [--base BACKUP]\n"
               "                   [--for PATH]... [--provider NAME] [--retries N] [--json]\n"
               "  vssbackup restore --from DIR|FILE [--component WRITER:LOGICAL_PATH]... [--to DIR] [--json]\n"
               "  vssbackup exec [--for PATH]... [--type TYPE] [--provider NAME] [--retries N]\n"
               "                 [--at-original] -- COMMAND [ARGS]...\n"
               "\n"
               "The reference OpenVSS requester.\n"
               "\n"
               "Commands:\n"
               "  backup   Runs the backup sequence with every writer (Identify, PrepareForBackup,\n"
               "           PrepareForSnapshot, Freeze, Thaw, PostSnapshot), copies the files of the\n"
               "           selected components from the shadow copies (leaving out the writers'\n"
               "           excluded files), marks each component backed up or not, stores the backup\n"
               "           components document and each writer's metadata with the data, and ends with\n"
               "           BackupComplete. Writer status is printed after each phase. The backup fails\n"
               "           (nothing is kept) when any writer fails.\n"
               "  restore  Runs the restore sequence (PreRestore, the files put back, PostRestore). A\n"
               "           writer failing PreRestore stops the restore before anything is written.\n"
               "           Files go back to their original place, or where the writer asks (its\n"
               "           restore target and alternate location mappings), or under --to. Writers'\n"
               "           restore methods are honoured: restore-if-not-there leaves existing files\n"
               "           alone; custom leaves the files to the writer. An incremental or\n"
               "           differential backup is restored with the backups it is based on, in order,\n"
               "           and files deleted since are removed.\n"
               "           Where a restore writes: with --to DIR, everything (also the places the\n"
               "           backup or a writer names) goes beneath DIR. Otherwise a place a writer or\n"
               "           the backup names, and the original place of a user's writer, is honoured\n"
               "           only where the writer's owner (recorded by vssd) may write itself: that\n"
               "           component fails with VSS_E_WRITERERROR_NONRETRYABLE. Below the destination\n"
               "           no symlink is followed. Files are first written into a private directory\n"
               "           beneath the destination and moved into place only when all of the backup\n"
               "           was read without error; directories that exist keep their owner and mode.\n"
               "  exec     Makes an auto-release shadow copy of each PATH with the writers, runs\n"
               "           COMMAND against it, marks the backup succeeded when COMMAND exits 0,\n"
               "           completes the backup and deletes the shadow copies. In ARGS, {} stands for\n"
               "           the shadow copy of the first PATH. COMMAND's environment has\n"
               "           VSS_SHADOW_PATH (that same path), VSS_SHADOW_PATHS and VSS_ORIGINAL_PATHS\n"
               "           (all of them, separated by newlines, in the same order) and\n"
               "           VSS_SNAPSHOT_SET_ID. The exit status is COMMAND's (128+N if killed by\n"
               "           signal N). With --at-original, COMMAND sees each shadow copy at its\n"
               "           original path instead, the same on every run, so that backup tools that\n"
               "           compare with their last run (restic, borg) find it again.\n"
               "\n"
               "Options:\n"
               "  -t, --to DEST          backup: a directory (created, must be empty) or an archive file\n"
               "                         (must not exist) whose suffix chooses the compression;\n"
               "                         restore: put files under DEST instead (DEST/original/path)\n"
               "  -f, --from SOURCE      restore: the backup (a directory or an archive)\n"
               "  -c, --component W:P    only this component: W is the writer's name or class id,\n"
               "                         P the component's logical path and name (\"path/name\" or\n"
               "                         \"name\"); may repeat. Default: every component\n"
               "      --type TYPE        full (default for backup), copy (default for exec),\n"
               "                         incremental, differential or log\n"
               "  -b, --base BACKUP      incremental: the previous backup; differential: the last\n"
               "                         full backup. Only files changed since it are stored, each\n"
               "                         writer gets its stamps as previous backup stamps, and\n"
               "                         restore finds the base again by this path\n"
               "      --for PATH         the directory to shadow; may repeat. Default for backup: the\n"
               "                         directories of the selected components' files\n"
               "      --provider NAME    backup, exec: the provider that makes the shadow copies (see\n"
               "                         vssadmin list providers; default: chosen by the path). An\n"
               "                         unknown name fails before any writer is frozen\n"
               "      --retries N        backup, exec: when making the shadow copies fails in a way\n"
               "                         VSS calls retryable (a writer's VSS_E_WRITERERROR_RETRYABLE,\n"
               "                         _OUTOFRESOURCES or _TIMEOUT, VSS_E_SNAPSHOT_SET_IN_PROGRESS,\n"
               "                         VSS_E_FLUSH_WRITES_TIMEOUT, VSS_E_HOLD_WRITES_TIMEOUT), abort\n"
               "                         and start over from a new session, up to N more times, after\n"
               "                         1 s, 2 s, 4 s, ... (at most 60 s). Default: 2\n"
               "      --at-original      exec: run COMMAND in a mount namespace of its own where each\n"
               "                         shadow copy is mounted read-only over its original path; {},\n"
               "                         VSS_SHADOW_PATH and VSS_SHADOW_PATHS then name the original\n"
               "                         paths. Only COMMAND and its children see these mounts; they\n"
               "                         end with them, however they end. Not root: needs\n"
               "                         unprivileged user namespaces (then files of other users show\n"
               "                         as owned by nobody); refused before any writer is frozen\n"
               "                         otherwise. Shadow copies are new files: compare by size and\n"
               "                         mtime (restic backup --ignore-inode --ignore-ctime, borg create\n"
               "                         --files-cache=mtime,size). Not the default: COMMAND could not\n"
               "                         write beneath the original paths\n"
               "      --json             print one JSON object instead of text\n"
               "      --socket PATH      vssd's socket (default $VSS_SOCKET, else " VSS_DEFAULT_SOCKET ")\n"
               "  -h, --help             show this help\n"
               "\n"
               "Layout of a backup (a directory or inside the archive):\n"
               "  openvss/backup-components.json   the backup components document\n"
               "  openvss/writer-ID.json           each writer's metadata (ID: its instance id)\n"
               "  openvss/vssbackup.json           type, time and base of this backup\n"
               "  openvss/index                    every file present at backup time\n"
               "  data/ORIGINAL/PATH               the files, by their original absolute path\n"
               "\n"
               "Exit status: 0 success, 1 failure (a writer failed, a copy failed, ...), 2 usage error;\n"
               "exec: the command's.\n"
               "\n"
               "Examples:\n"
               "  vssbackup backup --to /backup/monday.tar.zst\n"
               "  vssbackup backup --type incremental --base /backup/monday.tar.zst --to /backup/tuesday\n"
               "  vssbackup restore --from /backup/tuesday --to /tmp/restored\n"
               "  vssbackup exec --for /srv -- rsync -a {}/ backuphost:/srv/\n"
               "  vssbackup exec --at-original --for /srv -- restic backup --ignore-inode --ignore-ctime /srv\n");
}

int main(int argc, char *argv[]) {
        enum { OPT_JSON = 0x100, OPT_SOCKET, OPT_TYPE, OPT_FOR, OPT_PROVIDER, OPT_RETRIES, OPT_AT_ORIGINAL };
        static const struct option options[] = {
                { "to", required_argument, NULL, 't' },
                { "from", required_argument, NULL, 'f' },
                { "component", required_argument, NULL, 'c' },
                { "base", required_argument, NULL, 'b' },
                { "type", required_argument, NULL, OPT_TYPE },
                { "for", required_argument, NULL, OPT_FOR },
                { "provider", required_argument, NULL, OPT_PROVIDER },
                { "retries", required_argument, NULL, OPT_RETRIES },
                { "at-original", no_argument, NULL, OPT_AT_ORIGINAL },
                { "json", no_argument, NULL, OPT_JSON },
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *to = NULL, *from = NULL, *base = NULL;
        char *specs[VSS_MAX_COMPONENTS], *paths[MAX_VOLUMES];
        size_t n_specs = 0, n_paths = 0;
        int type = -1, c;
        bool have_retries = false, at_original = false;

        log_set_ident("vssbackup");
        if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                help();
                return EXIT_OK;
        }
        if (argc < 2 || argv[1][0] == '-')
                return usage_error("expected a command: backup, restore or exec");
        const char *cmd = argv[1];
        if (!streq(cmd, "backup") && !streq(cmd, "restore") && !streq(cmd, "exec"))
                return usage_error("unknown command '%s'", cmd);
        optind = 2;
        /* "+": stop at the first non-option, so exec's COMMAND keeps its own options. */
        while ((c = getopt_long(argc, argv, "+t:f:c:b:h", options, NULL)) >= 0)
                switch (c) {
                case 't': to = optarg; break;
                case 'f': from = optarg; break;
                case 'b': base = optarg; break;
                case 'c':
                        if (!spec_valid(optarg))
                                return usage_error("--component takes WRITER:LOGICAL_PATH, not '%s'", optarg);
                        if (n_specs == ELEMENTSOF(specs))
                                return usage_error("too many --component options");
                        specs[n_specs++] = optarg;
                        break;
                case OPT_FOR:
                        if (optarg[0] != '/')
                                return usage_error("--for takes an absolute path, not '%s'", optarg);
                        if (n_paths == ELEMENTSOF(paths))
                                return usage_error("at most 64 --for paths");
                        paths[n_paths++] = optarg;
                        break;
                case OPT_TYPE:
                        type = backup_type_from_name(optarg);
                        if (type < 0 || type == VSS_BT_OTHER)
                                return usage_error("unknown backup type '%s' (full, copy, incremental, differential, log)", optarg);
                        break;
                case OPT_PROVIDER:
                        if (!*optarg)
                                return usage_error("--provider needs a name");
                        arg_provider = optarg;
                        break;
                case OPT_RETRIES: {
                        uint64_t n;
                        if (parse_uint(optarg, 100, &n) < 0)
                                return usage_error("--retries takes a number from 0 to 100, not '%s'", optarg);
                        arg_retries = (unsigned) n;
                        have_retries = true;
                        break;
                }
                case OPT_AT_ORIGINAL: at_original = true; break;
                case OPT_JSON: arg_json = true; break;
                case OPT_SOCKET: arg_socket = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return usage_error("bad arguments");
                }

        if (at_original && !streq(cmd, "exec"))
                return usage_error("--at-original is for exec only");
        if (streq(cmd, "backup")) {
                if (!to || from || optind != argc)
                        return usage_error("backup takes --to DEST and no --from or other arguments");
                if (type < 0)
                        type = VSS_BT_FULL;
                bool needs_base = type == VSS_BT_INCREMENTAL || type == VSS_BT_DIFFERENTIAL;
                if (needs_base != (base != NULL))
                        return needs_base ? usage_error("an %s backup needs --base BACKUP", vss_backup_type_name(type))
                                          : usage_error("--base is for incremental and differential backups only");
                return cmd_backup(to, specs, n_specs, type, base, paths, n_paths);
        }
        if (streq(cmd, "restore")) {
                if (!from || base || type >= 0 || n_paths || optind != argc || arg_provider || have_retries)
                        return usage_error("restore takes --from SOURCE, optionally --component and --to");
                if (to && to[0] == 0)
                        return usage_error("--to needs a directory");
                return cmd_restore(from, specs, n_specs, to);
        }
        if (to || from || base || n_specs || optind >= argc)
                return usage_error("exec takes [--for PATH]... [--type TYPE] -- COMMAND [ARGS]...");
        return cmd_exec(paths, n_paths, type < 0 ? VSS_BT_COPY : (vss_backup_type) type, at_original, argv + optind);
}
