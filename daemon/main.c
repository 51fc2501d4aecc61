/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vssd: the OpenVSS coordinator. Boring on purpose: parse arguments, build the manager, listen,
 * run the loop. */

#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <systemd/sd-daemon.h>

#include "daemon/commit-helper.h"
#include "daemon/delete-helper.h"
#include "daemon/expose.h"
#include "daemon/log.h"
#include "daemon/manager.h"
#include "daemon/reload.h"
#include "lib/common.h"

static void help(void) {
        printf("Usage: vssd [--socket PATH] [--state-dir DIR] [--config FILE]\n"
               "       vssd --help | --version\n"
               "\n"
               "The OpenVSS coordinator: drives writers through the shadow copy sequence for\n"
               "requesters. Runs in the foreground, logs to standard error, tells systemd when ready.\n"
               "Socket default: $VSS_SOCKET, else %s; state: /var/lib/openvss.\n"
               "Exit status: 0 after a clean stop, 1 on a startup failure, 2 on a usage error.\n"
               "\n"
               "See vssd(8), and vssd.json(5) for the configuration.\n",
               VSS_DEFAULT_SOCKET);
}

/* Read when present and no --config names another file (what vssd.service runs with). */
#define VSSD_DEFAULT_CONFIG "/etc/openvss/vssd.json"

/* The configuration file to read: --config's, else the default one when it exists, else none. */
static const char *config_file(const char *given) {
        if (given)
                return given;
        return access(VSSD_DEFAULT_CONFIG, F_OK) == 0 ? VSSD_DEFAULT_CONFIG : NULL;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) sd_notify(0, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* SIGHUP: the configuration again (the same --config, or the default file as it is now). */
static const char *config_arg;
static int on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        (void) sd_notify(0, "RELOADING=1\nSTATUS=Reloading the configuration");
        (void) manager_reload(userdata, config_file(config_arg));
        (void) sd_notify(0, "READY=1\nSTATUS=Listening");
        return 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' },  { "state-dir", required_argument, NULL, 'd' },
                { "config", required_argument, NULL, 'c' },  { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },       {},
        };
        const char *socket_path = getenv("VSS_SOCKET"), *state_dir = "/var/lib/openvss", *config_path = NULL;
        Manager *m = NULL;
        Config config;
        char *error = NULL;
        int c, r;

        log_set_ident("vssd");
        /* The provider commit of a set and a shadow's delete, started by vssd itself
         * (commit-helper.h, delete-helper.h). */
        if (argc >= 2 && argc <= 3 && streq(argv[1], COMMIT_HELPER_ARG)) {
                const char *flag = argc == 3 ? argv[2] : "";
                if (argc == 2 || streq(flag, COMMIT_HELPER_MOUNTS_ARG) || streq(flag, COMMIT_HELPER_PRECOPY_ARG))
                        commit_helper_main(streq(flag, COMMIT_HELPER_MOUNTS_ARG), streq(flag, COMMIT_HELPER_PRECOPY_ARG));
        }
        if (argc == 2 && streq(argv[1], DELETE_HELPER_ARG))
                delete_helper_main();
        if (isempty(socket_path))
                socket_path = VSS_DEFAULT_SOCKET;
        while ((c = getopt_long(argc, argv, "s:d:c:h", options, NULL)) >= 0) {
                switch (c) {
                case 's': socket_path = optarg; break;
                case 'd': state_dir = optarg; break;
                case 'c': config_path = optarg; break;
                case 'h': help(); return 0;
                case 'V': puts("vssd (OpenVSS) " OPENVSS_VERSION); return 0;
                default:
                        fprintf(stderr, "Try 'vssd --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vssd: unexpected argument '%s'\nTry 'vssd --help'.\n", argv[optind]);
                return 2;
        }
        config_arg = config_path;
        config_path = config_file(config_path);
        r = config_load(&config, config_path, &error);
        if (r < 0) {
                fprintf(stderr, "vssd: bad configuration: %s\n", error ? error : strerror(-r));
                free(error);
                return 2;
        }

        /* Many writers mean many connections. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        /* A writer that vanishes mid-write must not kill us. */
        signal(SIGPIPE, SIG_IGN);
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = manager_new(socket_path, state_dir, &config, &m);
        if (r < 0) {
                fprintf(stderr, "vssd: %s\n", strerror(-r));
                config_done(&config);
                return 1;
        }
        r = manager_start(m);
        if (r < 0) {
                fprintf(stderr, "vssd: cannot start on %s (state %s): %s\n", socket_path, state_dir, strerror(-r));
                manager_free(m);
                return 1;
        }
        exposures_restore(m);
        (void) sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, NULL);
        (void) sd_event_add_signal(m->event, NULL, SIGINT, on_signal, NULL);
        (void) sd_event_add_signal(m->event, NULL, SIGHUP, on_reload, m);
        log_info("listening on %s%s, state in %s", m->socket_path, m->socket_activated ? " (socket activation)" : "",
                 state_dir);
        /* What starting took (the configuration's JSON, the registry's first reads) goes back to
         * the system before vssd sits idle. */
        (void) malloc_trim(0);
        (void) sd_notify(0, "READY=1\nSTATUS=Listening");
        r = sd_event_loop(m->event);
        (void) sd_notify(0, "STOPPING=1"); /* also after a fatal loop error */
        manager_free(m);
        return r < 0 ? 1 : 0;
}
