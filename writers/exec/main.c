/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * vss-writer-exec — a VSS writer whose every event runs the executable files of a hooks directory.
 * It lets shell scripts take part in shadow copies, and it is OpenVSS's test writer. This file is
 * its command line; exec-writer.h lists the other parts.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vss/writer.h>

#include "lib/basic/log.h"
#include "lib/basic/macro.h"
#include "lib/basic/parse-util.h"
#include "writers/exec/exec-writer.h"
#include "writers/exec/hook-output.h"
#include "writers/writer-util.h"

#ifndef OPENVSS_VERSION
#define OPENVSS_VERSION "0.1.0"
#endif

typedef struct component {
        const char *name;
        const char *path;
} component;

typedef struct mapping {
        const char *path;
        const char *destination;
} mapping;

const char *arg_name;
const char *arg_hooks;
compat_mode arg_compat = COMPAT_NONE;
unsigned arg_hook_timeout_ms = 30000;
bool arg_hold;
static component *arg_components;
static size_t arg_n_components;
static vss_restore_method arg_restore_method = VSS_RME_RESTORE_IF_CAN_REPLACE;
static vss_writer_restore arg_writer_restore = VSS_WRE_ALWAYS;
static mapping *arg_alternates;
static size_t arg_n_alternates;

/* Names on the command line, by enum value. */
static const char *const restore_methods[] = {
        [VSS_RME_RESTORE_IF_NOT_THERE] = "restore-if-not-there",
        [VSS_RME_RESTORE_IF_CAN_REPLACE] = "restore-if-can-replace",
        [VSS_RME_STOP_RESTORE_START] = "stop-restore-start",
        [VSS_RME_RESTORE_TO_ALTERNATE_LOCATION] = "restore-to-alternate-location",
        [VSS_RME_CUSTOM] = "custom",
};
static const char *const writer_restores[] = {
        [VSS_WRE_NEVER] = "never",
        [VSS_WRE_IF_REPLACE_FAILS] = "if-replace-fails",
        [VSS_WRE_ALWAYS] = "always",
};

static bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        int r = 0;

        if (!run_event(w, VSS_EVENT_IDENTIFY, NULL))
                return false;
        for (size_t i = 0; i < arg_n_components && r >= 0; i++) {
                const component *c = &arg_components[i];
                r = vss_metadata_add_component(md, "", c->name, c->name, true, true);
                if (r >= 0)
                        r = vss_metadata_add_files(md, "", c->name, c->path, "*", true);
        }
        if (r >= 0)
                r = vss_metadata_set_restore_method(md, arg_restore_method, NULL, false);
        if (r >= 0)
                r = vss_metadata_set_writer_restore(md, arg_writer_restore);
        for (size_t i = 0; i < arg_n_alternates && r >= 0; i++)
                r = vss_metadata_add_alternate_location_mapping(md, arg_alternates[i].path, "*", true,
                                                                arg_alternates[i].destination);
        if (r < 0) {
                log_msg("cannot build metadata: %s", vss_strerror(r));
                vss_writer_set_failure(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "cannot build writer metadata");
                return false;
        }
        return true;
}

static bool on_event(vss_writer *w, const vss_event_info *info, void *userdata) {
        return run_event(w, info->event, info);
}

static void help(void) {
        printf("Usage:\n"
               "  vss-writer-exec --name NAME --hooks DIR [--writer-id UUID] [--instance-id UUID]\n"
               "                  [--component NAME=PATH]... [--freeze-timeout MS]\n"
               "                  [--app-level front-end|back-end|system] [--socket PATH] [--no-reconnect]\n"
               "                  [--restore-method METHOD] [--writer-restore WHEN]\n"
               "                  [--alternate-location PATH=DEST]...\n"
               "                  [--compat qemu-ga|vmware] [--hook-timeout MS] [--hold]\n"
               "                  [--hook-log FILE]\n"
               "  vss-writer-exec --help | --version\n"
               "\n"
               "A Volume Shadow Copy writer that runs scripts. It registers with vssd under NAME and,\n"
               "on every event it receives (Identify included), runs the executable regular files of\n"
               "DIR in byte order of their names (reverse order for thaw and abort). The directory is\n"
               "read again for every event.\n"
               "\n"
               "Options:\n"
               "  -n, --name NAME            writer name (required, at most 255 bytes)\n"
               "  -d, --hooks DIR            hooks directory (required)\n"
               "  -w, --writer-id UUID       writer class id (default: derived from NAME)\n"
               "  -i, --instance-id UUID     writer instance id (default: random)\n"
               "  -c, --component NAME=PATH  declare a component NAME covering all files under the\n"
               "                             absolute PATH, recursively; may be repeated\n"
               "  -t, --freeze-timeout MS    Freeze-to-Thaw window in milliseconds (0: vssd default, 60 s)\n"
               "  -l, --app-level LEVEL      front-end (default), back-end or system: the Freeze order\n"
               "  -s, --socket PATH          vssd socket (default: $VSS_SOCKET or /run/openvss/vssd.sock)\n"
               "      --no-reconnect         exit (status 1) when vssd cannot be reached or the connection\n"
               "                             drops; by default the writer waits for vssd and subscribes\n"
               "                             again (a new instance id) when vssd restarts\n"
               "      --restore-method METHOD\n"
               "                             how the components' files are to be restored, as declared in\n"
               "                             the metadata: restore-if-not-there, restore-if-can-replace\n"
               "                             (default), stop-restore-start, restore-to-alternate-location\n"
               "                             or custom\n"
               "      --writer-restore WHEN  whether the writer takes part in restores (pre-restore and\n"
               "                             post-restore): never, if-replace-fails (only when files could\n"
               "                             not be replaced in place) or always (default)\n"
               "      --alternate-location PATH=DEST\n"
               "                             files under the absolute PATH, recursively, that cannot be\n"
               "                             restored in place go under the absolute DEST instead; may be\n"
               "                             repeated\n"
               "      --compat qemu-ga|vmware\n"
               "                             run DIR as a QEMU guest agent fsfreeze-hook.d or a VMware\n"
               "                             Tools backupScripts.d directory, see below (default: none,\n"
               "                             the native hook protocol)\n"
               "      --hook-timeout MS      how long a hook may run, in milliseconds (default 30000);\n"
               "                             see Timeouts\n"
               "      --hold                 on freeze, a hook may hold a session until thaw; see Hold\n"
               "      --hook-log FILE        append hooks' stdout and stderr to FILE (created 0640), as\n"
               "                             qemu's fsfreeze-hook does to /var/log/qga-fsfreeze-hook.log\n"
               "                             (default: the writer's own stdout and stderr); see Output\n"
               "  -h, --help                 show this help\n"
               "      --version              show the version\n"
               "\n"
               "Hook protocol:\n"
               "  Each hook is run with the event name as its only argument: identify, prepare-backup,\n"
               "  prepare-snapshot, freeze, thaw, post-snapshot, abort, backup-complete,\n"
               "  backup-shutdown, pre-restore or post-restore. Its stdin is /dev/null; for its stdout\n"
               "  and stderr see Output. It receives SIGTERM if the writer dies.\n"
               "  Exit 0 means success. Exit 75 fails the event with VSS_E_WRITERERROR_RETRYABLE; any\n"
               "  other status, death by a signal or failure to execute fails it with\n"
               "  VSS_E_WRITERERROR_NONRETRYABLE. The application code reported is the exit status\n"
               "  (128+N for signal N); the application message is the last non-empty line the hook\n"
               "  wrote to stderr (at most 1023 bytes). The first failing hook stops the event, except\n"
               "  for thaw, abort and backup-shutdown, where all hooks run and the first failure is\n"
               "  reported. A failing identify hook makes the writer fail Identify.\n"
               "  While hooks run, the writer handles no other request: keep them short.\n"
               "  The writer reports one status per event (the first failure), so it prints every hook's\n"
               "  result on stderr: 'vss-writer-exec[NAME]: ARG: hook FILE -> ok|failed, exit status N:\n"
               "  MESSAGE|killed by signal SIGX|timed out after MS ms, killed|ready, holding'.\n"
               "\n"
"Output:\n"
               "  A hook's stdout is the writer's stdout (with --hook-log: FILE, opened for appending).\n"
               "  Its stderr is a pipe the writer reads: the text is copied to the writer's stderr (or\n"
               "  FILE), and the last line the hook wrote before it exited is its message. A job the\n"
               "  hook leaves in the background (qemu's mysql-flush.sh.sample does) may keep writing to\n"
               "  both after the hook exited: its stderr stays open and is copied on until the job\n"
               "  closes it, even after the writer exits (a process of the writer's takes over), so\n"
               "  such a job never gets SIGPIPE or EBADF from the writer. Its later lines are not the\n"
               "  message of any event.\n"
               "\n"
               "Timeouts:\n"
               "  A hook still running after --hook-timeout MS (a hold hook: not ready by then, or not\n"
               "  gone that long after its stdin was closed) gets SIGTERM, and SIGKILL 2 s later; both go\n"
               "  to its process group (each hook leads a group of its own), so what it started goes too.\n"
               "  The event then fails with VSS_E_WRITERERROR_TIMEOUT, application code 128+signal and\n"
               "  message 'hook FILE timed out after MS ms'. This holds in every mode.\n"
               "\n"
               "Compatibility modes (--compat):\n"
               "  Hooks written for another agent run unchanged. Only Freeze, Thaw and Abort run hooks;\n"
               "  every other event succeeds without running anything. The control file and the VSS_*\n"
               "  variables are still provided. Unlike those agents, a failing (or timed out) freeze hook\n"
               "  vetoes the set: Freeze fails with VSS_E_WRITERERROR_NONRETRYABLE (RETRYABLE for exit\n"
               "  75) and the hook's code and message, and the hooks after it are not run.\n"
               "  qemu-ga   as qemu's scripts/qemu-guest-agent/fsfreeze-hook: the hooks are the names the\n"
               "            shell glob DIR/* yields (no names starting with '.'), in byte order, minus\n"
               "            names ending in ~ .bak .orig .rpmnew .rpmorig .rpmsave .sample .dpkg-old\n"
               "            .dpkg-new .dpkg-tmp .dpkg-dist .dpkg-bak .dpkg-backup .dpkg-remove, minus\n"
               "            what is not executable ([ -x ]) and, unlike the script, what is not a\n"
               "            regular file (a subdirectory: qemu would try to run it and ignore the error).\n"
               "            Freeze: each hook gets 'freeze', in name order. Thaw: the hooks that got\n"
               "            freeze and succeeded get 'thaw', in name order (as the script runs them),\n"
               "            all of them, the first failure reported. Abort: the same 'thaw' to the hooks\n"
               "            whose freeze succeeded (after a vetoed freeze, the ones before the failing\n"
               "            one); nothing when this writer got no Freeze.\n"
               "  vmware    as open-vm-tools' vmbackup (scriptOps.c): the scripts are every regular file\n"
               "            of DIR (dot files too), in strcmp order; a file that is not executable is\n"
               "            still run and so fails (as it does there). Freeze: 'freeze' in order; when\n"
               "            one fails, the scripts before it get 'freezeFail' at once, in reverse order\n"
               "            (the failing one does not), and Freeze fails. Thaw: 'thaw' in reverse order\n"
               "            to every script that got freeze; all run, the first failure reported.\n"
               "            Abort after a successful Freeze (the snapshot failed after the freeze):\n"
               "            'freezeFail' in reverse order, as VMware does when the snapshot fails after\n"
               "            the freeze scripts ran. The legacy /usr/sbin/pre-freeze-script and\n"
               "            post-thaw-script are not run (link them into DIR if needed).\n"
               "\n"
               "Hold (--hold), in every mode:\n"
               "  On freeze, each hook is started with the freeze argument, its stdin a pipe from the\n"
               "  writer and its stdout a pipe to it. It is ready when it writes the line 'ready' to\n"
               "  stdout: it then keeps running, holding (a database session with a lock, say), and the\n"
               "  next hook starts. A hook that exits 0 without saying ready is an ordinary hook. On\n"
               "  Thaw or Abort (vmware: also freezeFail), in the hook's place in the order, the writer\n"
               "  does not run it again but closes its stdin (EOF: let go now) and waits for it, up to\n"
               "  the hook timeout (then SIGTERM, SIGKILL); its exit status is its result for that\n"
               "  event. A hold hook that exits before that fails the event with\n"
               "  VSS_E_WRITERERROR_NONRETRYABLE, message 'hook FILE exited while holding'. Its other\n"
               "  stdout lines are copied to the writer's stdout (or the --hook-log file). Held hooks\n"
               "  are killed when the writer exits, and get SIGTERM if it dies.\n"
               "\n"
               "Environment (set for hooks):\n"
               "  VSS_EVENT            the event name, as in the argument\n"
               "  VSS_WRITER_NAME      NAME\n"
               "  VSS_SNAPSHOT_SET_ID  the snapshot set id, or empty (identify, restore events)\n"
               "  VSS_BACKUP_TYPE      full, incremental, differential, log, copy, other, or empty\n"
               "  VSS_COMPONENTS       the selected components, separated by spaces, or empty\n"
               "  The variables below are set for every event but identify, where they are unset.\n"
               "  Lists are of NAME=VALUE words separated by single spaces, one per selected component\n"
               "  NAME, in VSS_COMPONENTS order, for the components where VALUE is not empty. In VALUE,\n"
               "  '%%', space and control characters are written as %%XX (hexadecimal byte, upper case):\n"
               "  %%25, %%20, %%0A for newline, %%09 for tab; '=' is not encoded (NAME has none).\n"
               "  VSS_PREVIOUS_BACKUP_STAMPS\n"
               "                       the backup stamps the requester passed back (incremental and\n"
               "                       differential backups): NAME=STAMP...\n"
               "  VSS_BACKUP_OPTIONS   the requester's backup options: NAME=OPTIONS...\n"
               "  VSS_RESTORE_STATUS   pre-restore and post-restore: NAME=STATUS... where STATUS is how\n"
               "                       the requester's file restore went: undefined, none, all or failed;\n"
               "                       empty for other events\n"
               "  VSS_RESTORE_TARGET_DIRS\n"
               "                       pre-restore and post-restore: NAME=DIR... for the components the\n"
               "                       requester restores elsewhere, DIR being the destination of the\n"
               "                       first new target; empty for other events\n"
               "  VSS_CONTROL          a control file, empty when the event starts, see below\n"
               "Environment (read):\n"
               "  VSS_SOCKET           vssd socket when --socket is not given\n"
               "  TMPDIR               where VSS_CONTROL files are made (default: /tmp)\n"
               "\n"
               "Control file:\n"
               "  Hooks annotate the backup components document by appending lines to $VSS_CONTROL (the\n"
               "  same file for all hooks of an event: append, do not truncate). The writer reads it once\n"
               "  all hooks have run, even when one failed, then removes it. Only its first 64 KiB are\n"
               "  read (more is ignored, with a warning). Blank lines and lines starting with '#' are\n"
               "  skipped; fields are separated by spaces or tabs, and the last one is the rest of the\n"
               "  line, taken verbatim (not %%-decoded):\n"
               "    backup-stamp NAME STAMP...\n"
               "        sets the backup stamp of component NAME, for the requester to pass back in a\n"
               "        later incremental or differential backup (prepare-backup to post-snapshot; at\n"
               "        most 4096 bytes)\n"
               "    restore-target NAME original|alternate|directed|original-location\n"
               "        sets where component NAME is restored (pre-restore)\n"
               "    failure-message NAME TEXT...\n"
               "        sets the pre-restore failure message of NAME in pre-restore and its post-restore\n"
               "        failure message in post-restore (at most 1023 bytes)\n"
               "  NAME must be one of the event's components. A line with an unknown verb or component,\n"
               "  or one that the event does not allow (a backup stamp in backup-complete, say), is\n"
               "  reported on stderr as 'VSS_CONTROL line N: ...' and ignored; it never fails the event.\n"
               "\n"
               WRITER_HELP_EXIT_STATUS
               "  2  bad usage\n"
               "\n"
               "Example:\n"
               "  vss-writer-exec --name pgsql --hooks /etc/openvss/hooks/pgsql \\\n"
               "      --component data=/var/lib/postgresql --app-level back-end --freeze-timeout 30000\n"
               "  where /etc/openvss/hooks/pgsql/10-checkpoint runs CHECKPOINT on freeze.\n");
}

/* --component NAME=PATH and --alternate-location PATH=DEST (optarg is modified). */
static int add_component(char *arg) {
        char *eq = strchr(arg, '=');

        if (!eq || eq == arg || eq[1] != '/' || memchr(arg, '/', (size_t) (eq - arg)))
                return usage_error("invalid component '%s', expected NAME=/ABSOLUTE/PATH", arg);
        *eq = '\0';
        for (size_t i = 0; i < arg_n_components; i++)
                if (strcmp(arg_components[i].name, arg) == 0)
                        return usage_error("duplicate component '%s'", arg);
        component *a = realloc(arg_components, (arg_n_components + 1) * sizeof(component));
        if (!a)
                return usage_error("%s", "out of memory");
        arg_components = a;
        arg_components[arg_n_components++] = (component) { arg, eq + 1 };
        return 0;
}

static int add_alternate(char *arg) {
        char *eq = strchr(arg, '=');

        if (!eq || arg[0] != '/' || eq[1] != '/')
                return usage_error("invalid --alternate-location '%s', expected /ABSOLUTE/PATH=/ABSOLUTE/DESTINATION",
                                   arg);
        if ((size_t) (eq - arg) >= PATH_MAX || strlen(eq + 1) >= PATH_MAX)
                return usage_error("%s", "invalid --alternate-location: a path is longer than 4095 bytes");
        mapping *m = realloc(arg_alternates, (arg_n_alternates + 1) * sizeof(mapping));
        if (!m)
                return usage_error("%s", "out of memory");
        *eq = '\0';
        arg_alternates = m;
        arg_alternates[arg_n_alternates++] = (mapping) { arg, eq + 1 };
        return 0;
}

enum {
        ARG_RESTORE_METHOD = 0x100,
        ARG_WRITER_RESTORE,
        ARG_ALTERNATE_LOCATION,
        ARG_COMPAT,
        ARG_HOOK_TIMEOUT,
        ARG_HOLD,
        ARG_HOOK_LOG,
        ARG_NO_RECONNECT,
};

/* The options that are not the writer's own (vss_writer_options). */
static int parse_hook_option(int c, char *arg, const char **hook_log) {
        uint64_t u;
        int r;

        switch (c) {
        case ARG_RESTORE_METHOD:
                r = table_lookup(restore_methods, ELEMENTSOF(restore_methods), arg);
                if (r < 0)
                        return usage_error("invalid --restore-method '%s', expected restore-if-not-there, "
                                           "restore-if-can-replace, stop-restore-start, "
                                           "restore-to-alternate-location or custom",
                                           arg);
                arg_restore_method = (vss_restore_method) r;
                return 0;
        case ARG_WRITER_RESTORE:
                r = table_lookup(writer_restores, ELEMENTSOF(writer_restores), arg);
                if (r < 0)
                        return usage_error("invalid --writer-restore '%s', expected never, if-replace-fails or always",
                                           arg);
                arg_writer_restore = (vss_writer_restore) r;
                return 0;
        case ARG_ALTERNATE_LOCATION:
                return add_alternate(arg);
        case ARG_COMPAT:
                if (strcmp(arg, "qemu-ga") == 0)
                        arg_compat = COMPAT_QEMU_GA;
                else if (strcmp(arg, "vmware") == 0)
                        arg_compat = COMPAT_VMWARE;
                else if (strcmp(arg, "none") == 0)
                        arg_compat = COMPAT_NONE;
                else
                        return usage_error("invalid --compat '%s', expected qemu-ga, vmware or none", arg);
                return 0;
        case ARG_HOOK_TIMEOUT:
                if (parse_uint(arg, INT_MAX, &u) < 0 || u == 0)
                        return usage_error("invalid --hook-timeout '%s', expected milliseconds (1 or more)", arg);
                arg_hook_timeout_ms = (unsigned) u;
                return 0;
        case ARG_HOLD:
                arg_hold = true;
                return 0;
        case ARG_HOOK_LOG:
                if (!*arg)
                        return usage_error("%s", "invalid --hook-log '', expected a file");
                *hook_log = arg;
                return 0;
        default:
                return usage_error("%s", "invalid usage");
        }
}

/* 0 to go on, -1 after --help or --version, else the exit status of a usage error. */
static int parse_args(int argc, char *argv[], vss_writer_options *opts, const char **socket_path,
                      const char **hook_log) {
        static const struct option options[] = {
                { "name", required_argument, NULL, 'n' },
                { "writer-id", required_argument, NULL, 'w' },
                { "instance-id", required_argument, NULL, 'i' },
                { "hooks", required_argument, NULL, 'd' },
                { "component", required_argument, NULL, 'c' },
                { "freeze-timeout", required_argument, NULL, 't' },
                { "app-level", required_argument, NULL, 'l' },
                { "socket", required_argument, NULL, 's' },
                { "restore-method", required_argument, NULL, ARG_RESTORE_METHOD },
                { "writer-restore", required_argument, NULL, ARG_WRITER_RESTORE },
                { "alternate-location", required_argument, NULL, ARG_ALTERNATE_LOCATION },
                { "compat", required_argument, NULL, ARG_COMPAT },
                { "hook-timeout", required_argument, NULL, ARG_HOOK_TIMEOUT },
                { "hold", no_argument, NULL, ARG_HOLD },
                { "hook-log", required_argument, NULL, ARG_HOOK_LOG },
                { "no-reconnect", no_argument, NULL, ARG_NO_RECONNECT },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        static const char *const levels[] = { "front-end", "back-end", "system" };
        int c, r;

        while ((c = getopt_long(argc, argv, "n:w:i:d:c:t:l:s:h", options, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        arg_name = optarg;
                        break;
                case 'w':
                case 'i':
                        if (vss_id_from_string(optarg, c == 'w' ? &opts->class_id : &opts->instance_id) < 0)
                                return usage_error("invalid UUID: '%s'", optarg);
                        break;
                case 'd':
                        arg_hooks = optarg;
                        break;
                case 'c':
                        r = add_component(optarg);
                        if (r != 0)
                                return r;
                        break;
                case 't':
                        r = writer_parse_ms(optarg, "freeze timeout", &opts->freeze_window_ms);
                        if (r != 0)
                                return r;
                        break;
                case 'l':
                        for (r = 0; r < _VSS_APP_LEVEL_MAX && strcmp(optarg, levels[r]) != 0; r++)
                                ;
                        if (r == _VSS_APP_LEVEL_MAX)
                                return usage_error("invalid application level '%s'", optarg);
                        opts->app_level = (vss_app_level) r;
                        break;
                case 's':
                        *socket_path = optarg;
                        break;
                case 'h':
                        help();
                        return -1;
                case 'V':
                        printf("vss-writer-exec (OpenVSS) %s\n", OPENVSS_VERSION);
                        return -1;
                case ARG_NO_RECONNECT:
                        opts->reconnect = false;
                        break;
                default:
                        r = parse_hook_option(c, optarg, hook_log);
                        if (r != 0)
                                return r;
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        if (!arg_name || !*arg_name || strlen(arg_name) > 255)
                return usage_error("%s", arg_name ? "--name must be 1 to 255 bytes" : "--name is required");
        if (!arg_hooks)
                return usage_error("%s", "--hooks is required");
        return 0;
}

/* Checks the hooks directory and readies where hooks' output goes. 0 or the exit status. */
static int setup(const char *hook_log) {
        DIR *d = opendir(arg_hooks);
        int r;

        if (!d) {
                log_msg("cannot read hooks directory %s: %m", arg_hooks);
                return EXIT_USAGE;
        }
        closedir(d);
        /* Keep fds 0-2 taken so that no pipe of ours lands there. */
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
                        return 1;
        signal(SIGPIPE, SIG_IGN); /* reset to default in hooks */
        if (hook_log) {
                r = hook_output_open_log(hook_log);
                if (r < 0) {
                        log_msg("cannot open hook log %s: %s", hook_log, strerror(-r));
                        return EXIT_USAGE;
                }
        }
        return 0;
}

int main(int argc, char *argv[]) {
        vss_writer_options opts = { .app_level = VSS_APP_FRONT_END, .reconnect = true };
        vss_writer_callbacks cb = { .identify = on_identify };
        vss_writer_event_fn *fns[] = { &cb.prepare_backup, &cb.prepare_snapshot, &cb.freeze, &cb.thaw,
                                       &cb.post_snapshot, &cb.abort, &cb.backup_complete,
                                       &cb.backup_shutdown, &cb.pre_restore, &cb.post_restore };
        const char *socket_path = NULL, *hook_log = NULL;
        vss_writer *w = NULL;
        int r;

        log_set_ident("vss-writer-exec");
        r = parse_args(argc, argv, &opts, &socket_path, &hook_log);
        if (r != 0)
                return r < 0 ? 0 : r;
        r = setup(hook_log);
        if (r != 0)
                return r;
        opts.name = arg_name;
        for (size_t i = 0; i < ELEMENTSOF(fns); i++)
                *fns[i] = on_event;

        r = vss_writer_new(&opts, &cb, NULL, &w);
        if (r < 0) {
                log_msg("cannot create writer: %s", vss_strerror(r));
                return EXIT_USAGE;
        }
        writer_log_name("vss-writer-exec", arg_name);

        /* SIGTERM/SIGINT end the loop; they stay blocked here and are unblocked in hooks. */
        r = vss_writer_main(w, socket_path, "vss-writer-exec");
        vss_writer_unref(w); /* a frozen writer thaws itself here: held hooks are let go */
        holds_kill_all();
        hook_output_handoff(); /* after the last hook: what they left behind may still write */
        frozen_clear();
        free(arg_components);
        free(arg_alternates);
        return r;
}
