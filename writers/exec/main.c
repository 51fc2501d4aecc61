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
#include <sys/stat.h>
#include <unistd.h>

#include <vss/writer.h>

#include "lib/basic/fd-util.h"
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
        char *path; /* resolved(), ours */
} component;

typedef struct mapping {
        char *path; /* resolved(), ours */
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
        return job_event(w, info);
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
               "A Volume Shadow Copy writer that runs the executables of DIR on every event, with the\n"
               "event name as argument. --compat runs hooks written for qemu's fsfreeze-hook (names\n"
               "such as *.dpkg-old skipped) or VMware Tools (freezeFail when a freeze fails).\n"
               "Socket default: $VSS_SOCKET, else /run/openvss/vssd.sock.\n"
               "\n"
               WRITER_HELP_EXIT_STATUS
               "  2  bad usage\n"
               "\n"
               "See vss-writer-exec(8) for the options, the hook protocol, timeouts, hold, the\n"
               "environment and the control file.\n");
}

/* path with its symlinks resolved when it exists (vssd and requesters compare paths as written:
 * a component through /var/lib/mysql -> /srv/mysql must say /srv/mysql to meet a set of /srv);
 * as given otherwise. Allocated; NULL only without memory. */
static char *resolved(const char *path) {
        char *r = realpath(path, NULL);
        return r ? r : strdup(path);
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
        arg_components[arg_n_components] = (component) { arg, resolved(eq + 1) };
        if (!arg_components[arg_n_components].path)
                return usage_error("%s", "out of memory");
        arg_n_components++;
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
        arg_alternates[arg_n_alternates] = (mapping) { resolved(arg), eq + 1 };
        if (!arg_alternates[arg_n_alternates].path)
                return usage_error("%s", "out of memory");
        arg_n_alternates++;
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

        opterr = 0; /* one message for a bad option: ours */
        while ((c = getopt_long(argc, argv, ":n:w:i:d:c:t:l:s:h", options, NULL)) >= 0) {
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
                case '?':
                case ':': {
                        char why[256];
                        return usage_error("%s", bad_option_text(argc, argv, c, why, sizeof why));
                }
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
        /* A program another user could put there (or swap the directory for) would run as us. */
        char real[PATH_MAX], why[PATH_MAX + 64];
        const char *shown = realpath(arg_hooks, real) ? real : arg_hooks;
        struct stat st;
        r = dir_chain_trusted(dirfd(d), shown, geteuid(), why, sizeof(why));
        /* Sticky is no answer for the hooks directory itself: another user could add a hook. */
        if (r == 0)
                r = fstat(dirfd(d), &st) < 0 ? -errno : stat_trusted(&st, geteuid(), false, shown, why, sizeof(why));
        closedir(d);
        if (r == -EPERM) {
                log_msg("hooks directory %s: %s, who could put a program there that would run as uid %u", arg_hooks, why,
                        (unsigned) geteuid());
                return EXIT_USAGE;
        }
        if (r < 0) {
                log_msg("cannot check hooks directory %s: %s", arg_hooks, strerror(-r));
                return EXIT_USAGE;
        }
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
        jobs_stop_all(w); /* a Freeze under way is undone, a Thaw or Abort run to its end */
        vss_writer_unref(w); /* a frozen writer thaws itself here: held hooks are let go */
        holds_kill_all();
        hook_output_handoff(); /* after the last hook: what they left behind may still write */
        frozen_clear();
        for (size_t i = 0; i < arg_n_components; i++)
                free(arg_components[i].path);
        for (size_t i = 0; i < arg_n_alternates; i++)
                free(arg_alternates[i].path);
        free(arg_components);
        free(arg_alternates);
        return r;
}
