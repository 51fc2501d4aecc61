/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* transfer: the two-host transfer service of issue 16 and its conservation checker.
 *   transfer init --role sender|receiver --ledger PATH [--balance N]
 *   transfer run --role sender --ledger PATH --peer-port PORT [--socket S] [--name N]
 *                [--interval-ms MS] [--drain-ms MS]
 *   transfer run --role receiver --ledger PATH [--port PORT] [--port-file FILE] [--socket S] [--name N]
 *   transfer check [--json] A-LEDGER B-LEDGER    (exit 0 conserved, 1 not, 2 error) */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transfer.h"

static int usage(const char *why) {
        fprintf(stderr, "transfer: %s\n"
                        "usage: transfer init --role sender|receiver --ledger PATH [--balance N]\n"
                        "       transfer run --role sender|receiver --ledger PATH [--peer-port P | --port P --port-file F]\n"
                        "                    [--socket S] [--name N] [--interval-ms MS] [--drain-ms MS]\n"
                        "       transfer check [--json] A-LEDGER B-LEDGER\n",
                why);
        return 2;
}

static bool number(const char *s, long long min, long long max, long long *ret) {
        char *end = NULL;
        long long v = strtoll(s, &end, 10);
        if (!*s || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

int main(int argc, char *argv[]) {
        static const struct option opts[] = {
                { "role", required_argument, NULL, 'r' },      { "ledger", required_argument, NULL, 'l' },
                { "balance", required_argument, NULL, 'b' },   { "peer-port", required_argument, NULL, 'P' },
                { "port", required_argument, NULL, 'p' },      { "port-file", required_argument, NULL, 'f' },
                { "socket", required_argument, NULL, 's' },    { "name", required_argument, NULL, 'n' },
                { "interval-ms", required_argument, NULL, 'i' }, { "drain-ms", required_argument, NULL, 'd' },
                { "json", no_argument, NULL, 'j' },            {}
        };
        ServiceOptions o = { .name = "transfer", .interval_ms = 5, .drain_ms = 2000 };
        int role = -1;
        long long balance = 1000000, v;
        bool json = false;
        int c;
        if (argc < 2)
                return usage("a command is needed");
        const char *cmd = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'r':
                        if (strcmp(optarg, "sender") != 0 && strcmp(optarg, "receiver") != 0)
                                return usage("--role is sender or receiver");
                        role = strcmp(optarg, "sender") == 0 ? ROLE_SENDER : ROLE_RECEIVER;
                        break;
                case 'l': o.ledger = optarg; break;
                case 's': o.socket = optarg; break;
                case 'n': o.name = optarg; break;
                case 'f': o.port_file = optarg; break;
                case 'j': json = true; break;
                case 'b':
                        if (!number(optarg, 0, 1000000000000LL, &balance))
                                return usage("--balance is a number from 0");
                        break;
                case 'P': case 'p': case 'i': case 'd':
                        if (!number(optarg, c == 'P' ? 1 : 0, c == 'P' || c == 'p' ? 65535 : 600000, &v))
                                return usage("a port or milliseconds out of range");
                        *(c == 'P' ? &o.peer_port : c == 'p' ? &o.port : c == 'i' ? &o.interval_ms : &o.drain_ms) = (int) v;
                        break;
                default:
                        return usage("unknown option");
                }
        }
        if (strcmp(cmd, "check") == 0)
                return argc - optind == 2 ? ledger_check(argv[optind], argv[optind + 1], json)
                                          : usage("check takes two ledgers");
        if (optind != argc || !o.ledger || role < 0)
                return usage("--role and --ledger are needed, and nothing else");
        o.role = (Role) role;
        if (strcmp(cmd, "init") == 0)
                return ledger_init(o.ledger, o.role, balance) < 0 ? 1 : 0;
        if (strcmp(cmd, "run") != 0)
                return usage("unknown command");
        if (o.role == ROLE_SENDER && o.peer_port == 0)
                return usage("a sender needs --peer-port");
        return service_run(&o);
}
