/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Access: the rights a connection holds, the limits on its calls, and VSS errors on the wire. */

#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vss/backup.h>

#include "daemon/access.h"
#include "daemon/log.h"
#include "lib/common.h"
#include "lib/components.h"

/* vssd's own user counts as root: a vssd run unprivileged (benchmarks) trusts its own user's
 * writers (and requesters) as root's are trusted. */
bool uid_trusted(uid_t uid) {
        return uid == 0 || uid == geteuid();
}

/* How long vssd waits for the child: a lookup the user made slow answers "cannot reach". */
#define REACHABLE_WAIT_MS 1000

int path_reachable_by(const struct ucred *who, const char *path) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* Its account's groups, as the rights take them; its ids as the effective ones
                 * only: real and saved stay root's, so the user can neither signal the child (stop
                 * it, and vssd with it) nor pass a FUSE mount's owner check (a lookup held there). */
                struct passwd *pw = getpwuid(who->uid);
                if ((pw ? initgroups(pw->pw_name, who->gid) : setgroups(0, NULL)) < 0 ||
                    setresgid((gid_t) -1, who->gid, (gid_t) -1) < 0 || setresuid((uid_t) -1, who->uid, (uid_t) -1) < 0)
                        _exit(EPERM);
                char *r = realpath(path, NULL);
                _exit(r ? 0 : errno ? errno : EIO);
        }
        int status = 0, pfd = (int) syscall(SYS_pidfd_open, pid, 0);
        struct pollfd p = { .fd = pfd, .events = POLLIN };
        if (pfd < 0 || poll(&p, 1, REACHABLE_WAIT_MS) <= 0)
                (void) kill(pid, SIGKILL); /* too slow (or it cannot be watched): not reached */
        if (pfd >= 0)
                close(pfd);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) ? -WEXITSTATUS(status) : -ETIMEDOUT;
}

int reply_errorv(sd_bus_error *error, int32_t hr, const char *fmt, va_list ap) {
        char name[128], msg[512];
        const char *n = vss_error_name(hr);

        snprintf(name, sizeof(name), VSS_ERROR_PREFIX "%s", n ? n : "E_UNEXPECTED");
        vsnprintf(msg, sizeof(msg), fmt, ap);
        return sd_bus_error_set(error, name, msg);
}

int reply_error(sd_bus_error *error, int32_t hr, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = reply_errorv(error, hr, fmt, ap);
        va_end(ap);
        return r;
}

int reply_array(sd_bus_message *msg, const char *element, size_t n, ReplyAppend append, void *userdata) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', element);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = append(reply, i, userdata);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* The method a connection is serving now, for the log. */
static const char *current_member(Connection *c) {
        sd_bus_message *m = c->bus ? sd_bus_get_current_message(c->bus) : NULL;
        return strempty(m ? sd_bus_message_get_member(m) : NULL);
}

void log_refusal(Connection *c, const char *what) {
        log_warn("refused %s to uid %u (pid %d): %s", current_member(c), (unsigned) c->cred.uid, (int) c->cred.pid, what);
}

int check_right(Connection *c, Right right, sd_bus_error *error) {
        if (c->rights & (1u << right))
                return 0;
        return reply_error(error, VSS_E_ACCESSDENIED, "uid %u lacks the '%s' right (granted by vssd's config \"rights\"; "
                           "by default %s)", (unsigned) c->cred.uid, right_name(right),
                           right == RIGHT_DELETE ? "root only" : "root and the backup group");
}

/* The rights of a uid: its own and those of the groups its account is in (the passwd and group
 * databases, as for a login, not the peer's current supplementary groups). */
unsigned rights_of(Config *config, uid_t uid) {
        if (uid == 0)
                return (1u << _RIGHT_MAX) - 1;
        if (config_backup_group(config) < 0)
                log_err("out of memory: group '%s' may lack some of its default rights", config->backup_group);
        _cleanup_free_ gid_t *groups = NULL;
        int n = 0;
        struct passwd *pw = getpwuid(uid);
        if (pw) {
                int want = 64;
                for (int tries = 0; tries < 4; tries++) {
                        gid_t *g = realloc(groups, (size_t) want * sizeof(gid_t));
                        if (!g)
                                break;
                        groups = g;
                        n = want;
                        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) >= 0)
                                break;
                        want = n > want ? n : want * 2;
                        n = 0;
                }
        }
        unsigned rights = 0;
        for (Right r = 0; r < _RIGHT_MAX; r++) {
                const RightHolders *h = &config->rights[r];
                bool has = false;
                for (size_t i = 0; !has && i < h->n_uids; i++)
                        has = h->uids[i] == uid;
                for (size_t i = 0; !has && i < h->n_gids; i++)
                        for (int k = 0; !has && k < n; k++)
                                has = groups[k] == h->gids[i];
                if (has)
                        rights |= 1u << r;
        }
        return rights;
}

/* A method call's string arguments, each at most VSS_MAX_STRING bytes (the restore document
 * excepted: the parser bounds it). One check for every method, so no handler can miss it. */
static int check_strings(sd_bus_message *msg, sd_bus_error *error) {
        const char *member = sd_bus_message_get_member(msg);
        bool is_restore = streq(strempty(member), "InitializeForRestore");
        int r = 0;
        for (unsigned arg = 1;; arg++) {
                char type, t[2] = {};
                const char *contents, *v;
                r = sd_bus_message_peek_type(msg, &type, &contents);
                if (r <= 0)
                        break;
                if (type == 's') {
                        r = sd_bus_message_read_basic(msg, 's', &v);
                        if (r < 0)
                                break;
                        size_t max = is_restore && arg == 2 ? VSS_MAX_BC_DOCUMENT : VSS_MAX_STRING;
                        if (strnlen(v, max + 1) > max) {
                                r = reply_error(error, VSS_E_INVALIDARG, "%s: argument %u is %zu bytes, at most %zu",
                                                strempty(member), arg, strlen(v), max);
                                break;
                        }
                        continue;
                }
                _cleanup_free_ char *sig = NULL;
                if (type == SD_BUS_TYPE_ARRAY)
                        r = asprintf(&sig, "a%s", contents);
                else if (type == SD_BUS_TYPE_STRUCT)
                        r = asprintf(&sig, "(%s)", contents);
                else if (type == SD_BUS_TYPE_DICT_ENTRY)
                        r = asprintf(&sig, "{%s}", contents);
                else {
                        t[0] = type;
                        r = (sig = strdup(t)) ? 0 : -1;
                }
                if (r < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = sd_bus_message_skip(msg, sig);
                if (r < 0)
                        break;
        }
        int k = sd_bus_message_rewind(msg, true);
        return r < 0 ? r : k < 0 ? k : 0;
}

/* Runs before any method handler (after the connection limit): the call rate, the string sizes. */
int access_check_call(Connection *c, sd_bus_message *msg, sd_bus_error *error) {
        const Config *config = &c->manager->config;
        if (c->cred.uid != 0) {
                /* A token bucket: max_call_burst calls at once, max_calls_per_second sustained. */
                uint64_t now = now_monotonic_usec();
                c->tokens += (double) (now - c->tokens_usec) * config->max_calls_per_second / USEC_PER_SEC;
                if (c->tokens > config->max_call_burst)
                        c->tokens = config->max_call_burst;
                c->tokens_usec = now;
                if (c->tokens < 1.0) {
                        /* Once per connection: a flood must not flood the journal too. */
                        if (!c->rate_logged)
                                log_refusal(c, "call rate limit reached (later refusals on this connection are not logged)");
                        c->rate_logged = true;
                        return reply_error(error, VSS_E_OUTOFMEMORY,
                                           "uid %u: call rate limit reached (%u calls at once, %u per second); "
                                           "%s refused, try again later", (unsigned) c->cred.uid,
                                           config->max_call_burst, config->max_calls_per_second,
                                           strempty(sd_bus_message_get_member(msg)));
                }
                c->tokens -= 1.0;
        }
        if (streq(strempty(sd_bus_message_get_interface(msg)), VSS_BUS_INTERFACE))
                return check_strings(msg, error);
        return 0;
}

