/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vssbackup — the reference requester. backup: the whole writer sequence, the selected
 * components' files copied from the shadow copies into a directory or an archive with the
 * backup components document and the writers' metadata. restore: the restore sequence with the
 * writers, files put back where the writers say. exec: any backup tool run against a consistent
 * shadow copy.
 */

#include <fcntl.h>
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
bool arg_quiet;
FILE *arg_json_out;

static void help(void) {
        printf("Usage:\n"
               "  vssbackup backup --to DIR|FILE.tar[.gz|.xz|.zst] [--component WRITER:LOGICAL_PATH]...\n"
               "                   [--type full|copy|incremental|differential|log] [--base BACKUP]\n"
               "                   [--for PATH]... [--provider NAME] [--retries N] [--json] [--quiet]\n"
               "  vssbackup restore --from DIR|FILE [--component WRITER:LOGICAL_PATH]... [--to DIR]\n"
               "                    [--json] [--quiet]\n"
               "  vssbackup exec [--for PATH]... [--type TYPE] [--provider NAME] [--retries N]\n"
               "                 [--at-original] [--json [--json-fd N]] [--quiet] -- COMMAND [ARGS]...\n"
               "  vssbackup --help | --version\n"
               "\n"
               "The reference OpenVSS requester: backs up and restores with the writers, or runs any\n"
               "backup tool against a consistent shadow copy ({} in ARGS: the shadow copy's path).\n"
               "exec --json writes its JSON object to stderr, or to file descriptor N with --json-fd N:\n"
               "stdout is COMMAND's. Other options: --socket PATH (default $VSS_SOCKET, else\n"
               "" VSS_DEFAULT_SOCKET ").\n"
               "Exit status: 0 success, 1 failure, 2 usage error; exec: the command's.\n"
               "\n"
               "See vssbackup(1) for the commands, options, backup layout and recipes.\n");
}

FILE *devnull_file(void) {
        static FILE *f;
        if (!f)
                f = fopen("/dev/null", "we");
        return f ? f : stderr;
}

/* getopt's own messages are off (opterr = 0): the one message is ours. */
static int bad_option(int argc, char *argv[], int c) {
        char buf[256];
        return usage_error("%s", bad_option_text(argc, argv, c, buf, sizeof(buf)));
}

static int parse_json_fd(const char *s, int *ret) {
        uint64_t n;
        if (parse_uint(s, INT_MAX, &n) < 0 || n < 3)
                return -EINVAL;
        *ret = (int) n;
        return 0;
}

/* Where --json, text and progress go; -1 to go on, else the exit status of a usage error. */
static int setup_output(const char *cmd, int json_fd) {
        if (json_fd >= 0 && (!streq(cmd, "exec") || !arg_json))
                return usage_error("--json-fd is for exec --json only");
        if (streq(cmd, "exec") && arg_json) {
                /* stdout is COMMAND's: the object goes where it cannot mix with COMMAND's output. */
                if (json_fd >= 0 && fcntl(json_fd, F_SETFD, FD_CLOEXEC) < 0) /* not COMMAND's */
                        return usage_error("--json-fd %d: %s", json_fd, strerror(errno));
                arg_json_out = json_fd >= 0 ? fdopen(json_fd, "w") : stderr;
                if (!arg_json_out)
                        return usage_error("--json-fd %d: %s", json_fd, strerror(errno));
        }
        /* Errors only: the text that says what was done goes nowhere (exec's stdout is COMMAND's). */
        if (arg_quiet && !arg_json && !streq(cmd, "exec") && !freopen("/dev/null", "w", stdout))
                return usage_error("cannot open /dev/null: %s", strerror(errno));
        progress_enable(!arg_quiet && !arg_json);
        return -1;
}

int main(int argc, char *argv[]) {
        enum { OPT_JSON = 0x100, OPT_SOCKET, OPT_TYPE, OPT_FOR, OPT_PROVIDER, OPT_RETRIES, OPT_AT_ORIGINAL,
               OPT_VERSION, OPT_JSON_FD };
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
                { "quiet", no_argument, NULL, 'q' },
                { "version", no_argument, NULL, OPT_VERSION },
                { "json-fd", required_argument, NULL, OPT_JSON_FD },
                {},
        };
        const char *to = NULL, *from = NULL, *base = NULL;
        char *specs[VSS_MAX_COMPONENTS], *paths[MAX_VOLUMES];
        size_t n_specs = 0, n_paths = 0;
        int type = -1, c;
        bool have_retries = false, at_original = false;
        int json_fd = -1, r;

        log_set_ident("vssbackup");
        if (argc >= 2 && streq(argv[1], "--version"))
                return fputs(VERSION_LINE("vssbackup"), stdout), EXIT_OK;
        if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h")))
                return help(), EXIT_OK;
        if (argc < 2 || argv[1][0] == '-')
                return usage_error("expected a command first: backup, restore or exec");
        const char *cmd = argv[1];
        if (!streq(cmd, "backup") && !streq(cmd, "restore") && !streq(cmd, "exec"))
                return usage_error("unknown command '%s' (backup, restore or exec)", cmd);
        optind = 2;
        opterr = 0;
        /* "+": stop at the first non-option, so exec's COMMAND keeps its own options. */
        while ((c = getopt_long(argc, argv, "+:t:f:c:b:hq", options, NULL)) >= 0)
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
                case OPT_JSON_FD:
                        if (parse_json_fd(optarg, &json_fd) < 0)
                                return usage_error("--json-fd takes an open file descriptor, 3 or more, not '%s'", optarg);
                        break;
                case 'q': arg_quiet = true; break;
                case OPT_VERSION: fputs(VERSION_LINE("vssbackup"), stdout); return EXIT_OK;
                case OPT_SOCKET: arg_socket = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return bad_option(argc, argv, c);
                }

        r = setup_output(cmd, json_fd);
        if (r >= 0)
                return r;
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
