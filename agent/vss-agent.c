/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-agent: this host's part of cluster snapshot sets (DESIGN "Cluster snapshot sets"). It keeps
 * a lease in etcd, registers the host under it, watches for plans naming the host and drives the
 * local vssd through each one, as a requester with create, delete and list rights. It runs only
 * what its own config lists; nothing read from etcd is ever executed. */

#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include <vss/admin.h>

#include "agent/vss-agent.h"
#include "lib/basic/log.h"
#include "lib/basic/parse-util.h"
#include "lib/common.h"
#include "tools/report.h"

#define REFRESH_USEC (30 * USEC_PER_SEC)

static void help(void) {
        printf("Usage: vss-agent --etcd URL[,URL...] --cluster NAME [--host NAME] [--config FILE]\n"
               "                 [--lease-ttl SECONDS] [--cacert FILE] [--cert FILE --key FILE]\n"
               "                 [--user NAME --password-file FILE] [--socket PATH]\n"
               "\n"
               "Runs this host's part of OpenVSS cluster snapshot sets coordinated on etcd.\n"
               "--host defaults to the host name, --config to /etc/openvss/vss-agent.json, --lease-ttl to 5,\n"
               "--socket to $VSS_SOCKET, else " VSS_DEFAULT_SOCKET ". Local records: $STATE_DIRECTORY,\n"
               "else /var/lib/vss-agent. See vss-agent(8).\n");
}

void agent_etcd_failed(Agent *a, int r, const char *what) {
        if (a->etcd_down_since == 0) {
                log_msg("etcd: %s failed: %s", what, etcd_errmsg(a->e));
                a->etcd_down_since = now_monotonic_usec();
        }
        (void) r;
}

static void etcd_answered(Agent *a) {
        if (a->etcd_down_since)
                log_msg("etcd answers again");
        a->etcd_down_since = 0;
}

int agent_put_record(Agent *a, const char *set_id, Phase phase, json_object *writers, json_object *shadows,
                     int32_t error_code, const char *error, int64_t usec_left, const char *job, int job_status) {
        char key[CLUSTER_KEY_MAX];
        json_object *o = cluster_record_to_json(a->host, phase, writers, shadows, error_code, error, usec_left, job,
                                                job_status);
        int64_t rev = 0;
        int r = etcd_put(a->e, cluster_key(key, a->cluster, "sets/%s/hosts/%s", set_id, a->host),
                         json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), 0, &rev);
        if (r >= 0 && rev > a->last_put_rev)
                a->last_put_rev = rev;
        json_object_put(o);
        if (r < 0)
                agent_etcd_failed(a, r, "writing this host's record");
        return r;
}

/* {"host", "writers": [as vssadmin list writers], "providers": [name], "in_doubt": [set]} */
static json_object *host_json(Agent *a) {
        json_object *o = json_object_new_object(), *writers = json_object_new_array(), *providers = json_object_new_array();
        vss_admin *adm = NULL;
        size_t n = 0;
        if (vss_admin_new(&adm) >= 0 && vss_admin_connect(adm, a->socket) >= 0) {
                if (vss_admin_list_writers(adm, &n) >= 0)
                        for (size_t i = 0; i < n; i++)
                                json_object_array_add(writers, admin_writer_json(vss_admin_writer_get(adm, i)));
                if (vss_admin_list_providers(adm, &n) >= 0)
                        for (size_t i = 0; i < n; i++)
                                json_object_array_add(providers, json_object_new_string(vss_admin_provider_get(adm, i)->name));
        } else
                log_msg("cannot list this host's writers: %s", adm ? vss_admin_errmsg(adm) : "out of memory");
        vss_admin_free(adm);
        json_object_object_add(o, "host", json_object_new_string(a->host));
        json_object_object_add(o, "writers", writers);
        json_object_object_add(o, "providers", providers);
        json_object_object_add(o, "in_doubt", agent_in_doubt_json(a));
        return o;
}

int agent_register(Agent *a) {
        char key[CLUSTER_KEY_MAX];
        int r = 0;
        if (a->lease == 0) {
                r = etcd_lease_grant(a->e, a->lease_ttl_s, &a->lease);
                if (r < 0) {
                        agent_etcd_failed(a, r, "granting the lease");
                        return r;
                }
                a->next_keepalive = now_monotonic_usec() + (uint64_t) a->lease_ttl_s * USEC_PER_SEC / 3;
        }
        json_object *o = host_json(a);
        r = etcd_put(a->e, cluster_key(key, a->cluster, "hosts/%s", a->host),
                     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN), a->lease, NULL);
        json_object_put(o);
        if (r < 0) {
                agent_etcd_failed(a, r, "registering the host");
                return r;
        }
        etcd_answered(a);
        a->next_refresh = now_monotonic_usec() + REFRESH_USEC;
        return 0;
}

/* The lease at a third of its TTL; a lease that expired (we were stopped, or etcd was away) is
 * granted anew and the host registered again. */
static void keepalive(Agent *a) {
        int64_t ttl = 0;
        uint64_t now = now_monotonic_usec();
        if (now < a->next_keepalive)
                return;
        a->next_keepalive = now + (uint64_t) a->lease_ttl_s * USEC_PER_SEC / 3;
        int r = a->lease ? etcd_lease_keepalive(a->e, a->lease, &ttl) : -ENOENT;
        if (r == -ENOENT || (r >= 0 && ttl <= 0)) {
                if (a->lease)
                        log_msg("the lease expired; registering again");
                a->lease = 0;
                (void) agent_register(a);
                return;
        }
        if (r < 0) {
                agent_etcd_failed(a, r, "the lease keepalive");
                return;
        }
        etcd_answered(a);
}

static void on_event(Agent *a, const etcd_event *ev) {
        char set_id[64];
        const char *rest = cluster_set_key_rest(ev->kv.key, a->cluster, set_id);
        AgentSet *s = a->set;
        bool mine = s && rest && streq(set_id, s->plan.set_id);
        if (!rest)
                return;
        if (streq(rest, "plan") && !ev->deleted)
                /* Replayed after a set: one written while that set ran found this host busy. */
                agent_set_plan(a, set_id, ev->kv.value,
                               !s && ev->kv.mod_revision < a->busy_until_rev ? a->narrow_set : NULL);
        else if (streq(rest, "decision") && mine && !ev->deleted) {
                s->decision = decision_from_name(ev->kv.value);
                char what[64];
                snprintf(what, sizeof(what), "seen-%s", decision_name(s->decision));
                cluster_trace(a->host, what);
        }
        else if (streq(rest, "coordinator") && mine && ev->deleted)
                s->coordinator_gone = true;
        else if (streq(rest, "delete") && !ev->deleted)
                agent_reconcile(a);
}

/* Plans written while this agent was away that nothing has been decided on yet. */
static void join_waiting_plans(Agent *a, int64_t *ret_revision) {
        char prefix[CLUSTER_KEY_MAX], key[CLUSTER_KEY_MAX], set_id[64];
        etcd_kvs kvs = {};
        int r = etcd_get_prefix(a->e, cluster_key(prefix, a->cluster, "sets/"), &kvs);
        if (r < 0)
                return agent_etcd_failed(a, r, "reading the sets");
        *ret_revision = kvs.revision;
        for (size_t i = 0; i < kvs.n; i++) {
                const char *rest = cluster_set_key_rest(kvs.kvs[i].key, a->cluster, set_id);
                if (!rest || !streq(rest, "plan"))
                        continue;
                bool decided = false, have_record = false;
                cluster_key(key, a->cluster, "sets/%s/", set_id);
                for (size_t j = 0; j < kvs.n; j++) {
                        if (strncmp(kvs.kvs[j].key, key, strlen(key)) != 0)
                                continue;
                        const char *k = kvs.kvs[j].key + strlen(key);
                        decided |= streq(k, "decision");
                        have_record |= strncmp(k, "hosts/", 6) == 0 && streq(k + 6, a->host);
                }
                if (!decided && !have_record)
                        agent_set_plan(a, set_id, kvs.kvs[i].value, NULL);
        }
        etcd_kvs_clear(&kvs);
}

/* Narrows the watch to the set in flight, or widens it back once it ended (see Agent). A watch
 * that cannot be made now is tried again on the next turn; meanwhile the old one goes on. */
static void watch_switch(Agent *a) {
        char key[CLUSTER_KEY_MAX], end[CLUSTER_KEY_MAX];
        etcd_watch *w = NULL;
        int64_t rev = etcd_watch_revision(a->watch);
        if (a->set && !a->narrow && rev > 0) {
                /* sets/SET/coordinator, decision and delete sort before sets/SET/hosts/. */
                cluster_key(key, a->cluster, "sets/%s/", a->set->plan.set_id);
                cluster_key(end, a->cluster, "sets/%s/hosts/", a->set->plan.set_id);
                if (etcd_watch_new_range(a->e, key, end, rev, &w) < 0)
                        return;
                snprintf(a->narrow_set, sizeof(a->narrow_set), "%s", a->set->plan.set_id);
                a->wide_rev = rev;
                a->narrow = true;
        } else if (!a->set && a->narrow) {
                if (etcd_watch_new(a->e, cluster_key(key, a->cluster, "sets/"), a->wide_rev, &w) < 0)
                        return;
                /* Written before this host's last record of the set (its end), a plan found it
                 * busy; without that record (etcd away), what the narrow watch saw last. */
                a->busy_until_rev = rev > a->last_put_rev ? rev : a->last_put_rev;
                a->narrow = false;
        } else
                return;
        etcd_watch_free(a->watch);
        a->watch = w;
}

static int run(Agent *a) {
        char prefix[CLUSTER_KEY_MAX];
        int64_t rev = 0;
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                return log_msg("signalfd: %m"), 1;

        /* etcd may not answer yet (it starts after us, or is away): keep trying, in doubt. */
        while (agent_register(a) < 0) {
                struct pollfd p = { .fd = sfd, .events = POLLIN };
                if (poll(&p, 1, 1000) > 0)
                        return close(sfd), 0;
        }
        agent_reconcile(a);
        join_waiting_plans(a, &rev);
        int r = etcd_watch_new(a->e, cluster_key(prefix, a->cluster, "sets/"), rev ? rev + 1 : 0, &a->watch);
        if (r < 0) {
                log_msg("cannot watch %s: %s", prefix, etcd_errmsg(a->e));
                return close(sfd), 1;
        }
        (void) agent_register(a); /* with what reconciling found */
        sd_notify(0, "READY=1");
        log_msg("host %s of cluster %s: registered, watching %s", a->host, a->cluster, prefix);
        for (;;) {
                struct pollfd p[2] = { { .fd = sfd, .events = POLLIN } };
                etcd_event *ev = NULL;
                /* One wait for whichever comes first: an etcd event, vssd's answer, a signal, the
                 * set's deadline or the lease's keepalive. */
                int timeout = agent_set_wait(a, &p[1]);
                uint64_t now = now_monotonic_usec();
                timeout = MIN(timeout, a->next_keepalive > now ? (int) ((a->next_keepalive - now) / USEC_PER_MSEC + 1) : 0);
                int n = etcd_watch_next(a->watch, timeout, p, p[1].fd >= 0 ? 2 : 1, &ev);
                if (n < 0) {
                        agent_etcd_failed(a, n, "the watch");
                } else {
                        for (int i = 0; i < n; i++)
                                on_event(a, &ev[i]);
                        etcd_events_free(ev, (size_t) n);
                }
                if (p[0].revents & POLLIN)
                        break;
                if (etcd_watch_down(a->watch) && a->etcd_down_since == 0)
                        agent_etcd_failed(a, -ECONNREFUSED, "the watch");
                keepalive(a);
                agent_set_step(a);
                watch_switch(a);
                if (a->in_doubt && !a->set && a->etcd_down_since == 0)
                        agent_reconcile(a);
                if (!a->set && now_monotonic_usec() >= a->next_refresh && a->etcd_down_since == 0)
                        (void) agent_register(a);
        }
        log_msg("stopping");
        agent_set_abort(a, "the agent is stopping");
        if (a->lease)
                (void) etcd_lease_revoke(a->e, a->lease);
        close(sfd);
        return 0;
}

int main(int argc, char *argv[]) {
        enum { OPT_ETCD = 0x100, OPT_CLUSTER, OPT_HOST, OPT_CONFIG, OPT_TTL, OPT_CACERT, OPT_CERT, OPT_KEY, OPT_USER,
               OPT_PASSWORD_FILE, OPT_SOCKET, OPT_VERSION };
        static const struct option options[] = {
                { "etcd", required_argument, NULL, OPT_ETCD },       { "cluster", required_argument, NULL, OPT_CLUSTER },
                { "host", required_argument, NULL, OPT_HOST },       { "config", required_argument, NULL, OPT_CONFIG },
                { "lease-ttl", required_argument, NULL, OPT_TTL },   { "cacert", required_argument, NULL, OPT_CACERT },
                { "cert", required_argument, NULL, OPT_CERT },       { "key", required_argument, NULL, OPT_KEY },
                { "user", required_argument, NULL, OPT_USER },       { "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
                { "socket", required_argument, NULL, OPT_SOCKET },   { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },       {},
        };
        ClusterEtcdArgs ea = {};
        const char *config = "/etc/openvss/vss-agent.json";
        char hostname[256] = "", err[1200], buf[256];
        uint64_t ttl = CLUSTER_LEASE_TTL_S;
        Agent a = { .lease_ttl_s = CLUSTER_LEASE_TTL_S };
        int c;

        log_set_ident("vss-agent");
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                switch (c) {
                case OPT_ETCD: ea.endpoints = optarg; break;
                case OPT_CLUSTER: a.cluster = optarg; break;
                case OPT_HOST: a.host = optarg; break;
                case OPT_CONFIG: config = optarg; break;
                case OPT_TTL:
                        if (parse_uint(optarg, 3600, &ttl) < 0 || ttl < 2)
                                return usage_error("--lease-ttl takes seconds from 2 to 3600, not '%s'", optarg);
                        break;
                case OPT_CACERT: ea.cacert = optarg; break;
                case OPT_CERT: ea.cert = optarg; break;
                case OPT_KEY: ea.key = optarg; break;
                case OPT_USER: ea.user = optarg; break;
                case OPT_PASSWORD_FILE: ea.password_file = optarg; break;
                case OPT_SOCKET: a.socket = optarg; break;
                case 'h': help(); return 0;
                case OPT_VERSION: fputs(VERSION_LINE("vss-agent"), stdout); return 0;
                default: return usage_error("%s", bad_option_text(argc, argv, c, buf, sizeof(buf)));
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        if (!ea.endpoints || !a.cluster)
                return usage_error("%s", "--etcd URL and --cluster NAME are required");
        if (!cluster_name_valid(a.cluster))
                return usage_error("'%s' is not a cluster name ([A-Za-z0-9._-], at most 63)", a.cluster);
        if (!a.host) {
                if (gethostname(hostname, sizeof(hostname) - 1) < 0)
                        return log_msg("gethostname: %m"), 1;
                a.host = hostname;
        }
        if (!cluster_name_valid(a.host))
                return usage_error("'%s' is not a host name ([A-Za-z0-9._-], at most 63); name it with --host", a.host);
        if (!!ea.cert != !!ea.key || !!ea.user != !!ea.password_file)
                return usage_error("%s", "--cert goes with --key, --user with --password-file");
        a.lease_ttl_s = (int64_t) ttl;
        a.state_dir = getenv("STATE_DIRECTORY");
        if (isempty(a.state_dir))
                a.state_dir = "/var/lib/vss-agent";
        if (mkdir(a.state_dir, 0700) < 0 && errno != EEXIST)
                return log_msg("cannot make %s: %m", a.state_dir), 1;
        if (agent_config_load(config, &a.config, err, sizeof(err)) < 0)
                return log_msg("config: %s", err), 1;
        /* etcd decides what this host freezes and cuts: on a host with other users, anyone who
         * can reach an etcd without client certificates or a password decides it too. */
        if (!ea.cert && !ea.user)
                log_msg("warning: etcd at %s is reached with neither client certificates (--cert) nor a user "
                        "(--user): whoever else can reach it can plan, commit, abort and delete this host's "
                        "cluster sets", ea.endpoints);
        if (cluster_etcd_open(&ea, 2000, &a.e, err, sizeof(err)) < 0)
                return log_msg("%s", err), 1;
        int r = run(&a);
        etcd_watch_free(a.watch);
        etcd_free(a.e);
        agent_config_done(&a.config);
        return r;
}
