/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <mntent.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/client.h"
#include "tests/harness.h"
#include "tests/reaper.h"

int test_failures;

#define MAX_CHILDREN 64

struct Harness {
        char dir[256];
        char socket[300];
        char state[300];
        char config[300];
        bool have_config;
        bool state_mounted;
        char loop_dev[4][64];
        char loop_mnt[4][300];
        size_t n_loops;
        pid_t vssd;
        int reaper; /* reaper_watch(): cleans up dir if the test dies without freeing this */
        pid_t children[MAX_CHILDREN];
        size_t n_children;
};

static Harness *current;
static pid_t creator; /* forked children must not clean up the parent's harness */

static const char hook_script[] =
        "#!/bin/sh\n"
        "# Test hook: log the event, then do what ctl/NAME.EVENT says.\n"
        "d=\"$HARNESS_DIR\"\n"
        "echo \"$VSS_WRITER_NAME $1\" >> \"$d/log\"\n"
        "f=\"$d/ctl/$VSS_WRITER_NAME.$1\"\n"
        "[ -f \"$f\" ] || exit 0\n"
        "read what a b < \"$f\"\n"
        "case \"$what\" in\n"
        "fail) echo \"$b\" >&2; exit \"$a\";;\n"
        "hang) exec sleep 1000;;\n"
        "block) touch \"$f.started\"; sleep \"$a\"; exit 0;;\n"
        "wait) touch \"$f.started\"; i=0\n"
        "  while [ ! -e \"$f.go\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n"
        "  rm -f \"$f.go\"; exit 0;;\n"
        "esac\n"
        "exit 0\n";

static void die(const char *what) {
        fprintf(stderr, "harness: %s: %m\n", what);
        exit(99);
}

static void write_file(const char *path, const char *content, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t) strlen(content))
                die(path);
        close(fd);
}

static char *read_file(const char *path) {
        FILE *f = fopen(path, "re");
        if (!f)
                return strdup("");
        char *buf = NULL;
        size_t n = 0;
        ssize_t k = getdelim(&buf, &n, 0, f);
        fclose(f);
        if (k < 0) {
                free(buf);
                return strdup("");
        }
        return buf;
}

static void child_setup(const char *logname) {
        char path[512];
        /* Nothing a test starts may outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        snprintf(path, sizeof(path), "%s/%s", current->dir, logname);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                /* stdout too: a hook's orphaned grandchild must not hold the test runner's pipe. */
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
        }
        sigset_t mask;
        sigemptyset(&mask);
        sigprocmask(SIG_SETMASK, &mask, NULL);
}

/* Runs path with argv, under $HARNESS_WRAPPER (e.g. "valgrind --error-exitcode=99 ...") when set. */
static _Noreturn void exec_wrapped(const char *path, const char *const *argv) {
        const char *wrapper = getenv("HARNESS_WRAPPER");
        const char *full[64];
        size_t n = 0;
        char *w = NULL;
        if (wrapper && *wrapper) {
                w = strdup(wrapper);
                for (char *tok = strtok(w, " "); tok && n < 32; tok = strtok(NULL, " "))
                        full[n++] = tok;
        }
        full[n++] = path;
        for (size_t i = 1; argv[i] && n < 63; i++)
                full[n++] = argv[i];
        full[n] = NULL;
        execvp(full[0], (char *const *) full);
        _exit(127);
}

static void start_vssd(Harness *h) {
        char notify[300];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(notify, sizeof(notify), "%s/notify", h->dir);
        unlink(notify);
        int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify);
        if (nfd < 0 || bind(nfd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                die("notify socket");

        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                child_setup("vssd.log");
                setenv("NOTIFY_SOCKET", notify, 1);
                const char *argv[] = { "vssd", "--socket", h->socket, "--state-dir", h->state,
                                       h->have_config ? "--config" : NULL, h->config, NULL };
                exec_wrapped(VSSD_PATH, argv);
        }
        h->vssd = pid;
        /* Ready when vssd says so. */
        struct pollfd p = { .fd = nfd, .events = POLLIN };
        char buf[256];
        for (;;) {
                if (poll(&p, 1, 10000) <= 0)
                        die("vssd did not become ready");
                ssize_t n = recv(nfd, buf, sizeof(buf) - 1, 0);
                if (n > 0) {
                        buf[n] = 0;
                        if (strstr(buf, "READY=1"))
                                break;
                }
        }
        close(nfd);
}

static void cleanup_at_exit(void) {
        if (getpid() == creator)
                harness_free(current);
}

/* Tests never hold the machine's own filesystems: unless the test's config speaks of holding, every
 * mount present now goes into hold_exclude, so only loop filesystems the test makes are held. A
 * config that is not a JSON object (a test of config errors) is left as it is. */
static char *config_excluding_mounts(const char *config) {
        json_object *o = config ? json_tokener_parse(config) : json_object_new_object();
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return config ? strdup(config) : NULL;
        }
        if (!json_object_object_get_ex(o, "hold_exclude", NULL) && !json_object_object_get_ex(o, "hold_filesystems", NULL)) {
                json_object *arr = json_object_new_array();
                FILE *f = setmntent("/proc/self/mounts", "re");
                struct mntent *m;
                while (f && (m = getmntent(f)))
                        json_object_array_add(arr, json_object_new_string(m->mnt_dir));
                if (f)
                        endmntent(f);
                json_object_object_add(o, "hold_exclude", arr);
        }
        char *r = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return r;
}

Harness *harness_new(const char *config) {
        Harness *h = calloc(1, sizeof(*h));
        char path[512];
        snprintf(h->dir, sizeof(h->dir), "/tmp/openvss-test-XXXXXX");
        if (!mkdtemp(h->dir))
                die("mkdtemp");
        h->reaper = reaper_watch(h->dir);
        current = h;
        if (!creator)
                atexit(cleanup_at_exit);
        creator = getpid();
        signal(SIGPIPE, SIG_IGN);
        snprintf(h->socket, sizeof(h->socket), "%s/vssd.sock", h->dir);
        snprintf(h->state, sizeof(h->state), "%s/state", h->dir);
        snprintf(path, sizeof(path), "%s/ctl", h->dir);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/hooks", h->dir);
        mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/hooks/10-test", h->dir);
        write_file(path, hook_script, 0755);
        snprintf(path, sizeof(path), "%s/log", h->dir);
        write_file(path, "", 0644);
        _cleanup_free_ char *text = config_excluding_mounts(config);
        if (text) {
                snprintf(h->config, sizeof(h->config), "%s/vssd.json", h->dir);
                write_file(h->config, text, 0644);
                h->have_config = true;
        }
        setenv("HARNESS_DIR", h->dir, 1);
        setenv("VSS_SOCKET", h->socket, 1);
        start_vssd(h);
        return h;
}

void harness_hook(Harness *h, const char *name, const char *script) {
        char path[600];
        snprintf(path, sizeof(path), "%s/hooks/%s", h->dir, name);
        write_file(path, script, 0755);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

static void dump(Harness *h, const char *name) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", h->dir, name);
        char *s = read_file(path);
        if (*s)
                fprintf(stderr, "---- %s ----\n%s", name, s);
        free(s);
}

/* Waits up to ms for pid; returns its status, or -1 when it had to be killed. */
static int stop_child(pid_t pid, int sig, int ms) {
        int status;
        kill(pid, sig);
        for (int i = 0; i < ms / 10; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
}

void harness_free(Harness *h) {
        if (!h)
                return;
        /* Writers and vssd are stopped the polite way, so leaks and errors (ASan, valgrind) show
         * in their exit status: a writer exits 0 (or 1: vssd gone), vssd exits 0. A writer stuck
         * in a hanging hook cannot answer SIGTERM and is killed. */
        for (size_t i = 0; i < h->n_children; i++) {
                if (h->children[i] <= 0)
                        continue;
                int st = stop_child(h->children[i], SIGTERM, 3000);
                if (st >= 0 && !(WIFEXITED(st) && WEXITSTATUS(st) <= 1) && !(WIFSIGNALED(st) && (WTERMSIG(st) == SIGTERM || WTERMSIG(st) == SIGKILL))) {
                        fprintf(stderr, "harness: writer pid %d ended badly (status 0x%x)\n", (int) h->children[i], st);
                        test_failures++;
                }
        }
        if (h->vssd > 0) {
                int st = stop_child(h->vssd, SIGTERM, 20000);
                if (!(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                        fprintf(stderr, "harness: vssd did not exit cleanly on SIGTERM (status 0x%x)\n", st);
                        test_failures++;
                }
        }
        if (test_failures || getenv("HARNESS_DUMP")) {
                dump(h, "vssd.log");
                dump(h, "log");
                DIR *d = opendir(h->dir);
                struct dirent *de;
                while (d && (de = readdir(d)))
                        if (strncmp(de->d_name, "writer-", 7) == 0)
                                dump(h, de->d_name);
                if (d)
                        closedir(d);
        }
        if (h->state_mounted)
                (void) umount2(h->state, MNT_DETACH);
        for (size_t i = 0; i < h->n_loops; i++) {
                char cmd[512];
                /* A test that froze its filesystem and failed before thawing it must not leave it
                 * frozen (FITHAW of a filesystem not frozen is EINVAL, harmless). */
                int fd = open(h->loop_mnt[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0) {
                        (void) ioctl(fd, FITHAW, 0);
                        close(fd);
                }
                if (umount2(h->loop_mnt[i], 0) < 0)
                        (void) umount2(h->loop_mnt[i], MNT_DETACH);
                snprintf(cmd, sizeof(cmd), "losetup -d %s", h->loop_dev[i]);
                if (system(cmd) != 0)
                        fprintf(stderr, "harness: cannot detach %s\n", h->loop_dev[i]);
        }
        nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        if (h->reaper >= 0)
                close(h->reaper); /* it finds nothing left */
        if (current == h)
                current = NULL;
        free(h);
}

const char *harness_socket(Harness *h) { return h->socket; }
const char *harness_dir(Harness *h) { return h->dir; }
const char *harness_state_dir(Harness *h) { return h->state; }
pid_t harness_vssd_pid(Harness *h) { return h->vssd; }

/* Whether /proc/PID/cmdline starts with the len bytes of cmdline. */
static bool cmdline_is(pid_t pid, const char *cmdline, size_t len) {
        char path[64], buf[256];
        snprintf(path, sizeof(path), "/proc/%d/cmdline", (int) pid);
        FILE *f = fopen(path, "re");
        size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
        if (f)
                fclose(f);
        return n >= len && memcmp(buf, cmdline, len) == 0;
}

pid_t harness_vssd_child(Harness *h, const char *cmdline, size_t len) {
        for (int i = 0; i < 1000; i++) {
                char dir[64], path[128];
                snprintf(dir, sizeof(dir), "/proc/%d/task", (int) h->vssd);
                DIR *d = opendir(dir);
                struct dirent *de;
                pid_t found = -1;
                while (d && found < 0 && (de = readdir(d))) {
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s/children", dir, de->d_name);
                        FILE *f = fopen(path, "re");
                        int pid;
                        while (f && found < 0 && fscanf(f, "%d", &pid) == 1)
                                if (cmdline_is(pid, cmdline, len))
                                        found = pid;
                        if (f)
                                fclose(f);
                }
                if (d)
                        closedir(d);
                if (found > 0)
                        return found;
                usleep(10000);
        }
        return -1;
}

static bool writer_listed(Harness *h, const char *name) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *n, *a, *b, *c, *d, *e;
        uint32_t s;
        int32_t f, g;
        uint64_t t;
        bool found = false;
        if (vss_connect(h->socket, &bus) < 0)
                return false;
        if (sd_bus_call_method(bus, NULL, VSS_BUS_PATH, VSS_BUS_INTERFACE, "ListWriters", NULL, &reply, NULL) < 0)
                return false;
        if (sd_bus_message_enter_container(reply, 'a', "(sssuiissst)") < 0)
                return false;
        while (sd_bus_message_read(reply, "(sssuiissst)", &n, &a, &b, &s, &f, &g, &c, &d, &e, &t) > 0)
                if (streq(n, name))
                        found = true;
        return found;
}

static void sleep_ms(int ms) {
        struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

pid_t harness_writer(Harness *h, const char *name, const char *const *extra) {
        char hooks[300], logname[300];
        const char *argv[32];
        size_t n = 0;
        snprintf(hooks, sizeof(hooks), "%s/hooks", h->dir);
        snprintf(logname, sizeof(logname), "writer-%s.log", name);
        argv[n++] = "vss-writer-exec";
        argv[n++] = "--name";
        argv[n++] = name;
        argv[n++] = "--hooks";
        argv[n++] = hooks;
        for (size_t i = 0; extra && extra[i] && n < 30; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;

        pid_t pid = fork();
        if (pid < 0)
                die("fork");
        if (pid == 0) {
                child_setup(logname);
                exec_wrapped(WRITER_EXEC_PATH, argv);
        }
        if (h->n_children < MAX_CHILDREN)
                h->children[h->n_children++] = pid;
        for (int i = 0; i < 2000; i++) {
                if (writer_listed(h, name))
                        return pid;
                sleep_ms(10);
        }
        fprintf(stderr, "harness: writer %s did not subscribe\n", name);
        exit(99);
}

void harness_set(Harness *h, const char *writer, const char *event, const char *behaviour) {
        char path[512], content[512];
        snprintf(path, sizeof(path), "%s/ctl/%s.%s", h->dir, writer, event);
        snprintf(content, sizeof(content), "%s\n", behaviour);
        write_file(path, content, 0644);
}

void harness_go(Harness *h, const char *writer, const char *event) {
        char path[512];
        snprintf(path, sizeof(path), "%s/ctl/%s.%s.go", h->dir, writer, event);
        write_file(path, "", 0644);
}

bool harness_wait_started(Harness *h, const char *writer, const char *event) {
        char path[512];
        snprintf(path, sizeof(path), "%s/ctl/%s.%s.started", h->dir, writer, event);
        for (int i = 0; i < 2000; i++) {
                if (access(path, F_OK) == 0)
                        return true;
                sleep_ms(10);
        }
        return false;
}

char *harness_read(Harness *h, const char *name) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", h->dir, name);
        return read_file(path);
}

char *harness_log(Harness *h) {
        char path[512];
        snprintf(path, sizeof(path), "%s/log", h->dir);
        char *s = read_file(path);
        /* One line per event: join with ", " for readable comparisons. */
        size_t len = strlen(s);
        while (len > 0 && s[len - 1] == '\n')
                s[--len] = 0;
        char *out = malloc(len * 2 + 1), *o = out;
        for (char *p = s; *p; p++) {
                if (*p == '\n') {
                        *o++ = ',';
                        *o++ = ' ';
                } else
                        *o++ = *p;
        }
        *o = 0;
        free(s);
        return out;
}

bool harness_wait_event(Harness *h, const char *writer, const char *event, int timeout_ms) {
        for (int waited = 0;; waited += 10) {
                char *ev = harness_events(h, writer);
                bool seen = strstr(ev, event) != NULL;
                free(ev);
                if (seen)
                        return true;
                if (waited >= timeout_ms)
                        return false;
                usleep(10000);
        }
}

char *harness_events(Harness *h, const char *writer) {
        char path[512], line[512];
        snprintf(path, sizeof(path), "%s/log", h->dir);
        FILE *f = fopen(path, "re");
        size_t cap = 4096, len = 0;
        char *out = calloc(1, cap);
        size_t wl = strlen(writer);
        while (f && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                if (strncmp(line, writer, wl) != 0 || line[wl] != ' ')
                        continue;
                const char *ev = line + wl + 1;
                if (len + strlen(ev) + 2 >= cap)
                        out = realloc(out, cap *= 2);
                len += (size_t) sprintf(out + len, "%s%s", len ? " " : "", ev);
        }
        if (f)
                fclose(f);
        return out;
}

void harness_clear_log(Harness *h) {
        char path[512];
        snprintf(path, sizeof(path), "%s/log", h->dir);
        write_file(path, "", 0644);
}

uint64_t harness_stop_vssd(Harness *h, int *ret_status) {
        uint64_t start = now_monotonic_usec(), took = UINT64_MAX;
        *ret_status = -1;
        if (h->vssd <= 0)
                return took;
        kill(h->vssd, SIGTERM);
        /* Polled, not slept on: the test bounds how long it may take. */
        while (now_monotonic_usec() - start < 10 * USEC_PER_SEC) {
                if (waitpid(h->vssd, ret_status, WNOHANG) == h->vssd) {
                        took = now_monotonic_usec() - start;
                        break;
                }
                usleep(1000);
        }
        if (took == UINT64_MAX) {
                kill(h->vssd, SIGKILL);
                waitpid(h->vssd, NULL, 0);
        }
        h->vssd = 0;
        return took;
}

void harness_kill_vssd(Harness *h) {
        if (h->vssd > 0) {
                kill(h->vssd, SIGKILL);
                waitpid(h->vssd, NULL, 0);
        }
        h->vssd = 0;
}

void harness_restart_vssd(Harness *h) {
        harness_kill_vssd(h);
        start_vssd(h);
}

static int counted;
static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (ftw->level > 0)
                counted++;
        return 0;
}

int harness_count_shadow_files(Harness *h) {
        char path[512];
        snprintf(path, sizeof(path), "%s/shadows", h->state);
        counted = 0;
        nftw(path, count_entry, 16, FTW_PHYS);
        return counted;
}

int harness_sh(Harness *h, char **out, const char *fmt, ...) {
        char cmd[4096], full[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        snprintf(full, sizeof(full), "PATH=%s:%s:$PATH; %s", VSSADMIN_DIR, WRITER_EXEC_DIR, cmd);
        FILE *p = popen(full, "re");
        if (!p)
                die("popen");
        size_t cap = 4096, len = 0;
        char *buf = calloc(1, cap);
        size_t k;
        while ((k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
                len += k;
                if (len + 1 >= cap)
                        buf = realloc(buf, cap *= 2);
        }
        buf[len] = 0;
        int status = pclose(p);
        if (out)
                *out = buf;
        else
                free(buf);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

char *harness_make_data(Harness *h, const char *name) {
        static char path[3][512];
        static int k;
        char *p = path[k++ % 3], f[600];
        snprintf(p, 512, "%s/%s", h->dir, name);
        mkdir(p, 0755);
        snprintf(f, sizeof(f), "%s/a.txt", p);
        write_file(f, "hello, shadow\n", 0644);
        snprintf(f, sizeof(f), "%s/sub", p);
        mkdir(f, 0755);
        snprintf(f, sizeof(f), "%s/sub/b.txt", p);
        write_file(f, "second file\n", 0600);
        return p;
}

vss_backup *harness_session(Harness *h) {
        vss_backup *b = NULL;
        if (vss_backup_new(h->socket, &b) < 0 || vss_backup_initialize_for_backup(b) < 0 ||
            vss_backup_set_backup_state(b, false, false, VSS_BT_FULL, false) < 0 ||
            vss_backup_gather_writer_metadata_sync(b) < 0) {
                fprintf(stderr, "harness: cannot open a backup session: %s\n", b ? vss_backup_errmsg(b) : "");
                exit(99);
        }
        return b;
}

const vss_writer_status *status_of(vss_backup *b, const char *name, vss_writer_status *buf) {
        for (size_t i = 0; i < vss_backup_writer_status_count(b); i++)
                if (vss_backup_writer_status_get(b, i, buf) >= 0 && streq(buf->name, name))
                        return buf;
        return NULL;
}

int test_main(int argc, char *argv[], const TestCase *cases) {
        int failed = 0, passed = 0;
        for (const TestCase *c = cases; c->name; c++) {
                if (argc > 1 && !streq(argv[1], c->name))
                        continue;
                int before = test_failures;
                c->fn();
                if (current) {
                        harness_free(current);
                        current = NULL;
                }
                if (test_failures > before) {
                        printf("not ok - %s\n", c->name);
                        failed++;
                } else {
                        printf("ok - %s\n", c->name);
                        passed++;
                }
        }
        if (passed + failed == 0) {
                fprintf(stderr, "no test named '%s'\n", argc > 1 ? argv[1] : "");
                return 2;
        }
        return failed ? 1 : 0;
}

void harness_state_on_tmpfs(Harness *h, const char *size) {
        char opts[64];
        harness_kill_vssd(h);
        mkdir(h->state, 0700);
        snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
        if (mount("tmpfs", h->state, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
                die("mount tmpfs");
        h->state_mounted = true;
        start_vssd(h);
}

char *harness_loop_fs(Harness *h, const char *mkfs, const char *size) {
        char *out = NULL;
        size_t i = h->n_loops;
        if (i >= 4)
                die("too many loop filesystems");
        char mnt[300];
        snprintf(mnt, sizeof(mnt), "%s/mnt%zu", h->dir, i);
        memcpy(h->loop_mnt[i], mnt, sizeof(mnt));
        if (harness_sh(h, &out, "truncate -s %s %s/img%zu && losetup --find --show %s/img%zu", size, h->dir, i, h->dir, i) != 0)
                die("losetup");
        snprintf(h->loop_dev[i], sizeof(h->loop_dev[i]), "%.*s", (int) strcspn(out, "\n"), out);
        free(out);
        h->n_loops++; /* detached at free from here on, whatever fails next */
        if (harness_sh(h, NULL, "%s %s >/dev/null 2>&1 && mkdir -p %s && mount %s %s", mkfs, h->loop_dev[i],
                       h->loop_mnt[i], h->loop_dev[i], h->loop_mnt[i]) != 0)
                die("mkfs/mount");
        return h->loop_mnt[i];
}

void harness_restart_vssd_at(Harness *h, const char *state_dir) {
        harness_kill_vssd(h);
        snprintf(h->state, sizeof(h->state), "%s", state_dir);
        start_vssd(h);
}

json_object *harness_json(Harness *h, int *ret_status, const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL, *out = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (r < 0)
                die("vasprintf");
        *ret_status = harness_sh(h, &out, "%s", cmd);
        json_object *o = out ? json_tokener_parse(out) : NULL;
        if (!o || !json_object_is_type(o, json_type_object)) {
                fprintf(stderr, "not a JSON object from `%s` (status %d):\n%s\n", cmd, *ret_status, out ? out : "");
                test_failures++;
                json_object_put(o);
                return NULL;
        }
        return o;
}

const char *json_str(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : "(missing)";
}

json_object *json_phase(json_object *out, const char *phase, const char *name) {
        json_object *phases = NULL;
        if (!out || !json_object_object_get_ex(out, "phases", &phases) || !json_object_is_type(phases, json_type_array))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(phases); i++) {
                json_object *p = json_object_array_get_idx(phases, i), *ws = NULL;
                if (!streq(json_str(p, "phase"), phase) || !json_object_object_get_ex(p, "writers", &ws) ||
                    !json_object_is_type(ws, json_type_array))
                        continue;
                for (size_t k = 0; k < json_object_array_length(ws); k++)
                        if (streq(json_str(json_object_array_get_idx(ws, k), "name"), name))
                                return json_object_array_get_idx(ws, k);
        }
        return NULL;
}
