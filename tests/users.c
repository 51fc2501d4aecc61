/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Test users and raw calls for tests that run clients as real unprivileged users (see users.h). */

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/client.h"
#include "tests/users.h"

/* Users and groups. */

static bool in_group(const char *user, const char *group) {
        struct passwd *pw = getpwnam(user);
        struct group *g = getgrnam(group);
        gid_t groups[256];
        int n = ELEMENTSOF(groups);
        if (!pw || !g || getgrouplist(user, pw->pw_gid, groups, &n) < 0)
                return false;
        for (int i = 0; i < n; i++)
                if (groups[i] == g->gr_gid)
                        return true;
        return false;
}

/* useradd/groupadd lock /etc/passwd: tests running in parallel take turns, and retry when
 * something else holds it. */
static void run_retrying(const char *cmd) {
        for (int i = 0; i < 20; i++) {
                if (system(cmd) == 0)
                        return;
                usleep(200 * 1000);
        }
        fprintf(stderr, "test-users: '%s' failed\n", cmd);
        exit(99);
}

void ensure_users(void) {
        int fd = open("/run/lock/openvss-test-users.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || flock(fd, LOCK_EX) < 0) {
                fprintf(stderr, "test-users: cannot lock the user list: %m\n");
                exit(99);
        }
        if (!getgrnam(GROUP))
                run_retrying("groupadd " GROUP);
        static const char *const users[] = { ALICE, BOB, CAROL };
        for (size_t i = 0; i < ELEMENTSOF(users); i++) {
                char cmd[256];
                if (!getpwnam(users[i])) {
                        snprintf(cmd, sizeof(cmd), "useradd -M -s /usr/sbin/nologin %s", users[i]);
                        run_retrying(cmd);
                }
                bool want = !streq(users[i], BOB);
                if (want && !in_group(users[i], GROUP)) {
                        snprintf(cmd, sizeof(cmd), "usermod -aG " GROUP " %s", users[i]);
                        run_retrying(cmd);
                }
                if (!want && in_group(users[i], GROUP)) {
                        snprintf(cmd, sizeof(cmd), "gpasswd -d %s " GROUP " >/dev/null", users[i]);
                        run_retrying(cmd);
                }
        }
        close(fd);
}

uid_t uid_of(const char *user) {
        struct passwd *pw = getpwnam(user);
        return pw ? pw->pw_uid : (uid_t) -1;
}

/* vssd as root, reachable by the test users: they may traverse the harness directory (the
 * socket is 0777) and their writers' hooks append to the shared log. */
Harness *harness_for_users(const char *config) {
        ensure_users();
        Harness *h = harness_new(config);
        char path[512];
        chmod(harness_dir(h), 0711);
        snprintf(path, sizeof(path), "%s/log", harness_dir(h));
        chmod(path, 0666);
        return h;
}

void drop_to(const char *user) {
        struct passwd *pw = getpwnam(user);
        if (!pw || initgroups(user, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
                fprintf(stderr, "test-users: cannot become %s: %m\n", user);
                _exit(99);
        }
        /* Really unprivileged: no way back. */
        if (setuid(0) == 0 || getuid() != pw->pw_uid || geteuid() != pw->pw_uid) {
                fprintf(stderr, "test-users: still privileged as %s\n", user);
                _exit(99);
        }
}


/* Runs fn as user in a child; its CHECKs count there and come back as its exit status. */
pid_t spawn_as(const char *user, UserFn fn, Harness *h, void *userdata) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                exit(99);
        }
        if (pid == 0) {
                drop_to(user);
                /* After drop_to(): changing credentials clears the parent-death signal. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(99);
                test_failures = 0;
                fn(h, userdata);
                fflush(NULL);
                _exit(test_failures ? 1 : 0);
        }
        return pid;
}

void wait_ok(pid_t pid, const char *what) {
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "test-users: %s failed (status 0x%x)\n", what, st);
                test_failures++;
        }
}

void run_as(const char *user, UserFn fn, Harness *h, void *userdata, const char *what) {
        wait_ok(spawn_as(user, fn, h, userdata), what);
}

/* Raw calls, for exact codes and messages. */

char last_msg[1024];

static int32_t callv(sd_bus *bus, sd_bus_message **reply, const char *method, const char *types, va_list ap) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_methodv(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, method, &e, reply, types, ap);
        snprintf(last_msg, sizeof(last_msg), "%s", e.message ? e.message : "");
        int32_t hr = r < 0 ? vss_hr_from_bus_error(&e, r) : 0;
        sd_bus_error_free(&e);
        return hr;
}

int32_t call(sd_bus *bus, const char *method, const char *types, ...) {
        va_list ap;
        va_start(ap, types);
        int32_t hr = callv(bus, NULL, method, types, ap);
        va_end(ap);
        return hr;
}

/* A call whose reply is one string (a session id, ...), copied to out. */
int32_t call_s(sd_bus *bus, char *out, size_t size, const char *method, const char *types, ...) {
        sd_bus_message *reply = NULL;
        const char *s = NULL;
        va_list ap;
        va_start(ap, types);
        int32_t hr = callv(bus, &reply, method, types, ap);
        va_end(ap);
        if (hr == 0 && sd_bus_message_read(reply, "s", &s) >= 0)
                snprintf(out, size, "%s", s);
        sd_bus_message_unref(reply);
        return hr;
}

/* A call without arguments, keeping its reply. */
int32_t call_reply(sd_bus *bus, sd_bus_message **reply, const char *method) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, method, &e, reply, NULL);
        snprintf(last_msg, sizeof(last_msg), "%s", e.message ? e.message : "");
        int32_t hr = r < 0 ? vss_hr_from_bus_error(&e, r) : 0;
        sd_bus_error_free(&e);
        return hr;
}

/* Number of entries of a listing (ListShadows, ListWriters); -1 on error. */
int count_listed(sd_bus *bus, const char *method, const char *sig) {
        sd_bus_message *reply = NULL;
        int n = -1;
        if (call_reply(bus, &reply, method) == 0) {
                n = 0;
                if (sd_bus_message_enter_container(reply, 'a', sig) >= 0)
                        while (sd_bus_message_skip(reply, sig) > 0)
                                n++;
        }
        sd_bus_message_unref(reply);
        return n;
}

sd_bus *connect_or_die(Harness *h) {
        sd_bus *bus = NULL;
        if (vss_connect(harness_socket(h), &bus) < 0) {
                fprintf(stderr, "test-users: cannot connect to %s\n", harness_socket(h));
                _exit(99);
        }
        return bus;
}

int count_as_root(Harness *h, const char *method, const char *sig) {
        sd_bus *bus = connect_or_die(h);
        int n = count_listed(bus, method, sig);
        sd_bus_flush_close_unref(bus);
        return n;
}


bool writer_listed(Harness *h, const char *name) {
        sd_bus *bus = connect_or_die(h);
        sd_bus_message *reply = NULL;
        bool found = false;
        if (call_reply(bus, &reply, "ListWriters") == 0 &&
            sd_bus_message_enter_container(reply, 'a', WRITER_SIG) >= 0) {
                const char *n, *a, *b, *c, *d, *e;
                uint32_t s;
                int32_t f, g;
                uint64_t t;
                while (sd_bus_message_read(reply, WRITER_SIG, &n, &a, &b, &s, &f, &g, &c, &d, &e, &t) > 0)
                        found = found || streq(n, name);
        }
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(bus);
        return found;
}

void stop_writer(pid_t pid) {
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
}

/* vss-writer-exec run by user, with the harness hooks; waits until vssd lists it. */
pid_t writer_as(Harness *h, const char *user, const char *name, const char *class_id) {
        return writer_as_args(h, user, name, class_id, NULL);
}

pid_t writer_as_args(Harness *h, const char *user, const char *name, const char *class_id, const char *const *extra) {
        char hooks[512], logname[512];
        snprintf(hooks, sizeof(hooks), "%s/hooks", harness_dir(h));
        snprintf(logname, sizeof(logname), "%s/writer-%s.log", harness_dir(h), name);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd = open(logname, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                drop_to(user);
                /* Again: changing credentials cleared it, and a writer reconnects for ever. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1)
                        _exit(99);
                const char *argv[64] = { "vss-writer-exec", "--name", name, "--hooks", hooks };
                size_t n = 5;
                for (size_t i = 0; extra && extra[i] && n < 60; i++)
                        argv[n++] = extra[i];
                if (class_id) {
                        argv[n++] = "--writer-id";
                        argv[n++] = class_id;
                }
                argv[n] = NULL;
                execv(WRITER_EXEC_PATH, (char *const *) argv);
                _exit(127);
        }
        int st;
        for (int i = 0; i < 3000; i++) {
                if (writer_listed(h, name))
                        return pid;
                if (waitpid(pid, &st, WNOHANG) == pid) {
                        fprintf(stderr, "test-users: writer %s of %s ended (status 0x%x) before it subscribed\n", name,
                                user, st);
                        pid = 0;
                        break;
                }
                usleep(10 * 1000);
        }
        fprintf(stderr, "test-users: writer %s of %s did not subscribe\n", name, user);
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "cat %s >&2", logname);
        (void) system(cmd);
        if (pid > 0)
                stop_writer(pid);
        test_failures++;
        exit(1);
}

char *id_spec(char *buf, size_t size, const char *writer, const char *component) {
        vss_id id;
        char s[VSS_ID_STRING_MAX];
        vss_id_from_name(writer, &id);
        snprintf(buf, size, "%s:%s", vss_id_to_string(&id, s), component);
        return buf;
}
