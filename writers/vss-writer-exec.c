/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * vss-writer-exec — a VSS writer whose every event runs the executable files of a hooks directory.
 * It lets shell scripts take part in shadow copies, and it is OpenVSS's test writer.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include <vss/writer.h>

#include "hook-output.h"

#ifndef OPENVSS_VERSION
#define OPENVSS_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2
#define HOOK_EXIT_RETRYABLE 75
#define MSG_MAX 1023
#define CONTROL_MAX (64 * 1024)
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

extern char **environ;

typedef struct component {
        const char *name;
        const char *path;
} component;

typedef struct mapping {
        const char *path;
        const char *destination;
} mapping;

static const char *arg_name;
static const char *arg_hooks;
static component *arg_components;
static size_t arg_n_components;
static vss_restore_method arg_restore_method = VSS_RME_RESTORE_IF_CAN_REPLACE;
static vss_writer_restore arg_writer_restore = VSS_WRE_ALWAYS;
static mapping *arg_alternates;
static size_t arg_n_alternates;

/* Names on the command line and in the hooks' environment and control file, by enum value. */
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
static const char *const restore_targets[] = {
        [VSS_RT_ORIGINAL] = "original",
        [VSS_RT_ALTERNATE] = "alternate",
        [VSS_RT_DIRECTED] = "directed",
        [VSS_RT_ORIGINAL_LOCATION] = "original-location",
};
static const char *const restore_statuses[] = {
        [VSS_RS_UNDEFINED] = "undefined",
        [VSS_RS_NONE] = "none",
        [VSS_RS_ALL] = "all",
        [VSS_RS_FAILED] = "failed",
};

/* The index of s in a table above, or -1. */
static int table_lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (table[i] && strcmp(table[i], s) == 0)
                        return (int) i;
        return -1;
}

/* Collects a hook's stderr: passes it on to the log and remembers its last non-empty line. */
typedef struct line_tracker {
        char cur[MSG_MAX + 1];
        size_t cur_len;
        bool truncated;
        char last[MSG_MAX + 1];
} line_tracker;

static void line_commit(line_tracker *t) {
        size_t n = t->cur_len, s = n;

        if (t->truncated) { /* do not end inside a UTF-8 sequence */
                while (s > 0 && n - s < 3 && ((unsigned char) t->cur[s - 1] & 0xC0) == 0x80)
                        s--;
                if (s > 0) {
                        unsigned char b = (unsigned char) t->cur[s - 1];
                        size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
                        if (n - (s - 1) < need)
                                n = s - 1;
                }
        }
        while (n > 0 && strchr(" \t\r\v\f", t->cur[n - 1]))
                n--;
        if (n > 0) {
                memcpy(t->last, t->cur, n);
                t->last[n] = '\0';
        }
        t->cur_len = 0;
        t->truncated = false;
}

static void line_feed(line_tracker *t, const char *buf, size_t n) {
        hook_output_write(hook_output_err_dest(), buf, n);
        for (size_t i = 0; i < n; i++) {
                if (buf[i] == '\n')
                        line_commit(t);
                else if (t->cur_len < MSG_MAX)
                        t->cur[t->cur_len++] = buf[i];
                else
                        t->truncated = true;
        }
}

/* Whether the environment entry "NAME=..." is of the variable of var ("NAME=VALUE" or "NAME"). */
static bool env_is(const char *entry, const char *var) {
        size_t len = strcspn(var, "=");
        return strncmp(entry, var, len) == 0 && entry[len] == '=';
}

/* The hook's environment: ours, with the VSS_* variables below replaced. An entry of extra
 * without '=' names a variable to remove. */
static char **build_env(char *const extra[], size_t n_extra) {
        size_t n = 0, k = 0;

        while (environ[n])
                n++;
        char **env = calloc(n + n_extra + 1, sizeof(char *));
        if (!env)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                bool replaced = false;
                for (size_t j = 0; j < n_extra && !replaced; j++)
                        replaced = env_is(environ[i], extra[j]);
                if (!replaced)
                        env[k++] = environ[i];
        }
        for (size_t j = 0; j < n_extra; j++)
                if (strchr(extra[j], '='))
                        env[k++] = extra[j];
        return env;
}

/* The variables describing the document's records, in the order of doc_field. */
typedef enum doc_field {
        DOC_PREVIOUS_BACKUP_STAMPS,
        DOC_BACKUP_OPTIONS,
        DOC_RESTORE_STATUS,
        DOC_RESTORE_TARGET_DIRS,
        DOC_CONTROL,
        _DOC_MAX,
} doc_field;

static const char *const doc_vars[_DOC_MAX] = {
        [DOC_PREVIOUS_BACKUP_STAMPS] = "VSS_PREVIOUS_BACKUP_STAMPS",
        [DOC_BACKUP_OPTIONS] = "VSS_BACKUP_OPTIONS",
        [DOC_RESTORE_STATUS] = "VSS_RESTORE_STATUS",
        [DOC_RESTORE_TARGET_DIRS] = "VSS_RESTORE_TARGET_DIRS",
        [DOC_CONTROL] = "VSS_CONTROL",
};

/* Writes s with '%', space and control characters as %XX, so that it is one word of a list. */
static void put_encoded(FILE *f, const char *s) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p == '%' || *p == ' ' || *p < 0x20 || *p == 0x7F)
                        fprintf(f, "%%%02X", *p);
                else
                        fputc(*p, f);
}

/* "VAR=NAME=VALUE NAME=VALUE ...": one field of the records of the event's components, for those
 * where it is not empty. Returns NULL when out of memory. */
static char *doc_var(vss_writer *w, const vss_event_info *info, doc_field field) {
        bool restore = info->event == VSS_EVENT_PRE_RESTORE || info->event == VSS_EVENT_POST_RESTORE;
        char *buf = NULL;
        size_t len = 0;
        bool first = true, bad;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        fprintf(f, "%s=", doc_vars[field]);
        for (size_t i = 0; i < info->n_components; i++) {
                const vss_bc_component *c = vss_writer_get_component(w, "", info->components[i]);
                const char *v = NULL;

                if (!c)
                        continue;
                switch (field) {
                case DOC_PREVIOUS_BACKUP_STAMPS:
                        v = c->previous_backup_stamp;
                        break;
                case DOC_BACKUP_OPTIONS:
                        v = c->backup_options;
                        break;
                case DOC_RESTORE_STATUS:
                        if (restore && (unsigned) c->file_restore_status < ELEMENTSOF(restore_statuses))
                                v = restore_statuses[c->file_restore_status];
                        break;
                case DOC_RESTORE_TARGET_DIRS:
                        if (restore && c->n_new_targets > 0)
                                v = c->new_targets[0].destination;
                        break;
                default:
                        break;
                }
                if (!v || !*v)
                        continue;
                fprintf(f, "%s%s=", first ? "" : " ", info->components[i]);
                put_encoded(f, v);
                first = false;
        }
        bad = ferror(f);
        if (fclose(f) != 0 || bad) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Creates the empty control file in $TMPDIR or /tmp; returns its path, or NULL with errno set. */
static char *control_create(void) {
        const char *dir = getenv("TMPDIR");
        char *path;
        int fd;

        if (!dir || !*dir)
                dir = "/tmp";
        if (asprintf(&path, "%s/vss-writer-exec.XXXXXX", dir) < 0) {
                errno = ENOMEM;
                return NULL;
        }
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                free(path);
                errno = e;
                return NULL;
        }
        close(fd);
        return path;
}

static void control_warn(unsigned line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void control_warn(unsigned line, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "vss-writer-exec[%s]: VSS_CONTROL line %u: ", arg_name, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* Splits off the next word of *p (separated by spaces or tabs) and skips the blanks after it. */
static char *next_word(char **p) {
        char *word = *p, *end = word + strcspn(word, " \t");

        *p = end + strspn(end, " \t");
        *end = '\0';
        return word;
}

/* Applies one line of the control file (NUL-terminated, without its newline). */
static void control_line(vss_writer *w, vss_event event, unsigned lineno, char *line, size_t len) {
        const char *ename = vss_event_name(event) ?: "unknown";
        char *p = line + strspn(line, " \t");
        const char *verb, *cname, *value;
        int r, t;

        if (strlen(line) != len) {
                control_warn(lineno, "contains a NUL byte; ignored");
                return;
        }
        if (!*p || *p == '#')
                return;
        verb = next_word(&p);
        cname = next_word(&p);
        value = p; /* the rest of the line, verbatim */
        if (strcmp(verb, "backup-stamp") != 0 && strcmp(verb, "restore-target") != 0 &&
            strcmp(verb, "failure-message") != 0) {
                control_warn(lineno, "unknown verb '%s', expected backup-stamp, restore-target or failure-message; ignored",
                             verb);
                return;
        }
        if (!*cname || !*value) {
                control_warn(lineno, "%s: expected '%s NAME %s'; ignored", verb, verb,
                             strcmp(verb, "backup-stamp") == 0     ? "STAMP"
                             : strcmp(verb, "restore-target") == 0 ? "TARGET"
                                                                   : "MESSAGE");
                return;
        }
        if (!vss_writer_get_component(w, "", cname)) {
                control_warn(lineno, "%s: unknown component '%s' (not one of this %s event's components); ignored",
                             verb, cname, ename);
                return;
        }
        if (strcmp(verb, "backup-stamp") == 0)
                r = vss_writer_set_backup_stamp(w, "", cname, value);
        else if (strcmp(verb, "restore-target") == 0) {
                size_t n = strlen(value);
                while (n > 0 && strchr(" \t\r", value[n - 1]))
                        n--;
                line[value - line + n] = '\0';
                t = table_lookup(restore_targets, ELEMENTSOF(restore_targets), value);
                if (t < 0) {
                        control_warn(lineno,
                                     "restore-target %s: unknown target '%s', expected original, alternate, directed "
                                     "or original-location; ignored",
                                     cname, value);
                        return;
                }
                r = vss_writer_set_restore_target(w, "", cname, (vss_restore_target) t);
        } else if (event == VSS_EVENT_POST_RESTORE)
                r = vss_writer_set_post_restore_failure_msg(w, "", cname, value);
        else
                r = vss_writer_set_pre_restore_failure_msg(w, "", cname, value);
        if (r < 0)
                control_warn(lineno, "%s %s: refused in %s: %s (%s); ignored", verb, cname, ename, vss_strerror(r),
                             vss_error_name(r) ?: "?");
}

/* Reads the control file the hooks wrote (its first 64 KiB) and applies its lines. */
static void control_apply(vss_writer *w, vss_event event, const char *path) {
        char *buf = malloc(CONTROL_MAX + 1);
        size_t len = 0;
        unsigned lineno = 0;
        int fd;

        if (!buf) {
                fprintf(stderr, "vss-writer-exec[%s]: cannot read VSS_CONTROL file: out of memory\n", arg_name);
                return;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno != ENOENT) /* a hook may remove it */
                        fprintf(stderr, "vss-writer-exec[%s]: cannot read VSS_CONTROL file %s: %m\n", arg_name, path);
                free(buf);
                return;
        }
        while (len < CONTROL_MAX + 1) {
                ssize_t k = read(fd, buf + len, CONTROL_MAX + 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        fprintf(stderr, "vss-writer-exec[%s]: cannot read VSS_CONTROL file %s: %m\n", arg_name, path);
                        len = 0;
                        break;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        close(fd);
        if (len > CONTROL_MAX) { /* keep the complete lines of the first 64 KiB */
                bool complete = buf[CONTROL_MAX] == '\n';
                len = CONTROL_MAX;
                while (!complete && len > 0 && buf[len - 1] != '\n')
                        len--;
                fprintf(stderr,
                        "vss-writer-exec[%s]: VSS_CONTROL file is larger than 64 KiB; ignoring what follows byte %zu\n",
                        arg_name, len);
        }
        for (size_t pos = 0; pos < len;) {
                char *line = buf + pos, *nl = memchr(line, '\n', len - pos);
                size_t n = nl ? (size_t) (nl - line) : len - pos;

                line[n] = '\0'; /* buf has room for one more byte than len */
                pos += n + 1;
                control_line(w, event, ++lineno, line, n);
        }
        free(buf);
}

/* Compatibility modes: which hooks run, with which argument, in which order. */
typedef enum compat_mode {
        COMPAT_NONE,
        COMPAT_QEMU_GA,
        COMPAT_VMWARE,
} compat_mode;

static compat_mode arg_compat = COMPAT_NONE;
static unsigned arg_hook_timeout_ms = 30000;
static bool arg_hold;

#define KILL_GRACE_MS 2000
#define LINGER_POLL_MAX 64

/* One started hook: its process (leader of its own process group), the pipes we read (stderr,
 * and stdout in hold mode) and the one we write (its stdin, in hold mode). */
typedef struct hook_proc {
        char *name; /* file name in the hooks directory */
        pid_t pid;
        int pidfd, err_fd, out_fd, in_fd;
        bool reaped, ready, timed_out;
        int status;
        line_tracker err;
        char out[MSG_MAX + 1]; /* the stdout line being read (hold mode) */
        size_t out_len;
        sd_event_source *err_src, *out_src, *pid_src;
} hook_proc;

/* The hooks that got "freeze" and succeeded (compat modes), in the order they ran; what Thaw and
 * Abort undo. */
static char **frozen;
static size_t n_frozen;

/* Hooks holding a session from Freeze until Thaw or Abort (--hold). */
static hook_proc **holds;
static size_t n_holds;

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void safe_close(int *fd) {
        if (*fd >= 0)
                close(*fd);
        *fd = -1;
}

static void hook_unwatch(hook_proc *hp) {
        hp->err_src = sd_event_source_disable_unref(hp->err_src);
        hp->out_src = sd_event_source_disable_unref(hp->out_src);
        hp->pid_src = sd_event_source_disable_unref(hp->pid_src);
}

static hook_proc *hook_free(hook_proc *hp) {
        if (!hp)
                return NULL;
        hook_unwatch(hp);
        /* Not closed: a background job the hook left may still write to them. */
        hook_output_linger(&hp->err_fd, hook_output_err_dest());
        hook_output_linger(&hp->out_fd, hook_output_out_dest());
        safe_close(&hp->in_fd);
        safe_close(&hp->pidfd);
        free(hp->name);
        free(hp);
        return NULL;
}

/* Starts path with arg; in hold mode its stdin and stdout are pipes of ours. */
static hook_proc *hook_start(const char *path, const char *name, const char *arg, char **env, bool hold,
                             char msg[MSG_MAX + 1]) {
        char *argv[] = { (char *) path, (char *) arg, NULL };
        pid_t parent = getpid();
        int e[2] = { -1, -1 }, o[2] = { -1, -1 }, in[2] = { -1, -1 };
        hook_proc *hp = calloc(1, sizeof *hp);

        if (!hp || !(hp->name = strdup(name))) {
                snprintf(msg, MSG_MAX + 1, "out of memory");
                free(hp);
                return NULL;
        }
        hp->pidfd = hp->err_fd = hp->out_fd = hp->in_fd = -1;
        if (pipe2(e, O_CLOEXEC) < 0 || (hold && (pipe2(o, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0))) {
                snprintf(msg, MSG_MAX + 1, "cannot create pipe: %m");
                goto fail;
        }
        hp->pid = fork();
        if (hp->pid < 0) {
                snprintf(msg, MSG_MAX + 1, "cannot fork: %m");
                goto fail;
        }
        if (hp->pid == 0) { /* child: async-signal-safe calls only */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                (void) setpgid(0, 0); /* its own group, so that a timeout kills what it started */
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(127);
                int nul = hold ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
                int out = hold ? o[1] : hook_output_out_dest();
                if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(e[1], STDERR_FILENO) < 0 ||
                    (out != STDOUT_FILENO && dup2(out, STDOUT_FILENO) < 0))
                        _exit(127);
                close_range(3, ~0U, 0);
                execve(path, argv, env);
                const char *parts[] = { "cannot execute ", path, ": ", strerrordesc_np(errno) ?: "error", "\n" };
                for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
                        if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0)
                                break;
                _exit(127);
        }
        (void) setpgid(hp->pid, hp->pid); /* also here: no race with a kill of the group */
        close(e[1]);
        hp->err_fd = e[0];
        if (hold) {
                close(o[1]);
                close(in[0]);
                hp->out_fd = o[0];
                hp->in_fd = in[1];
        }
        hp->pidfd = pidfd_open(hp->pid, 0);
        return hp;
fail:
        for (int i = 0; i < 2; i++) {
                safe_close(&e[i]);
                safe_close(&o[i]);
                safe_close(&in[i]);
        }
        return hook_free(hp);
}

/* Reaps the hook if it has exited. */
static bool hook_try_reap(hook_proc *hp) {
        if (hp->reaped)
                return true;
        pid_t r = waitpid(hp->pid, &hp->status, WNOHANG);
        if (r == hp->pid || (r < 0 && errno == ECHILD)) {
                if (r < 0)
                        hp->status = 127 << 8;
                hp->reaped = true;
        }
        return hp->reaped;
}

/* Takes what the hook wrote to stdout (hold mode): a line "ready" marks it ready, other lines
 * go to our stdout. */
static void hook_feed_out(hook_proc *hp, const char *buf, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (buf[i] != '\n') {
                        if (hp->out_len < MSG_MAX)
                                hp->out[hp->out_len++] = buf[i];
                        continue;
                }
                size_t len = hp->out_len;
                while (len > 0 && strchr(" \t\r", hp->out[len - 1]))
                        len--;
                if (len == 5 && memcmp(hp->out, "ready", 5) == 0)
                        hp->ready = true;
                else {
                        hook_output_write(hook_output_out_dest(), hp->out, hp->out_len);
                        hook_output_write(hook_output_out_dest(), "\n", 1);
                }
                hp->out_len = 0;
        }
}

/* Reads once from the hook's stderr or stdout; closes the fd at EOF. Returns false at EOF/error. */
static bool hook_read(hook_proc *hp, bool out) {
        int *fd = out ? &hp->out_fd : &hp->err_fd;
        char buf[4096];
        ssize_t k;

        if (*fd < 0)
                return false;
        k = read(*fd, buf, sizeof buf);
        if (k > 0) {
                if (out)
                        hook_feed_out(hp, buf, (size_t) k);
                else
                        line_feed(&hp->err, buf, (size_t) k);
                return true;
        }
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
                return true;
        safe_close(fd);
        return false;
}

/* Takes whatever is buffered in the pipes without blocking. */
static void hook_drain(hook_proc *hp) {
        for (int i = 0; i < 2; i++) {
                int fd = i ? hp->out_fd : hp->err_fd;
                if (fd < 0)
                        continue;
                fcntl(fd, F_SETFL, O_NONBLOCK);
                for (;;) {
                        char buf[4096];
                        ssize_t k = read(fd, buf, sizeof buf);
                        if (k > 0) {
                                if (i)
                                        hook_feed_out(hp, buf, (size_t) k);
                                else
                                        line_feed(&hp->err, buf, (size_t) k);
                                continue;
                        }
                        if (k < 0 && errno == EINTR)
                                continue;
                        break;
                }
        }
}

typedef enum pump_result {
        PUMP_EXITED,
        PUMP_READY,
        PUMP_TIMEOUT,
} pump_result;

/* Copies the hook's output until it exits, says "ready" (when want_ready) or the deadline. */
static pump_result hook_pump(hook_proc *hp, uint64_t deadline, bool want_ready) {
        for (;;) {
                struct pollfd pfd[3 + LINGER_POLL_MAX];
                nfds_t n = 0, first_linger;
                int idx_err = -1, idx_out = -1, idx_pid = -1, timeout;
                uint64_t now;

                if (want_ready && hp->ready)
                        return PUMP_READY;
                if (hp->pidfd < 0 && hook_try_reap(hp)) {
                        hook_drain(hp);
                        return PUMP_EXITED;
                }
                now = now_ms();
                if (now >= deadline)
                        return PUMP_TIMEOUT;
                timeout = (int) (deadline - now > INT_MAX ? INT_MAX : deadline - now);
                if (hp->pidfd < 0 && timeout > 50) /* no pidfd: look for its exit now and then */
                        timeout = 50;
                if (hp->err_fd >= 0) {
                        idx_err = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = hp->err_fd, .events = POLLIN };
                }
                if (hp->out_fd >= 0) {
                        idx_out = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = hp->out_fd, .events = POLLIN };
                }
                if (hp->pidfd >= 0) {
                        idx_pid = (int) n;
                        pfd[n++] = (struct pollfd) { .fd = hp->pidfd, .events = POLLIN };
                }
                /* Earlier hooks' background jobs may write meanwhile: keep their pipes flowing. */
                first_linger = n;
                n += hook_output_poll_fill(pfd + n, LINGER_POLL_MAX);
                if (poll(pfd, n, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        return PUMP_TIMEOUT;
                }
                hook_output_poll_done(pfd + first_linger, n - first_linger);
                if (idx_pid >= 0 && pfd[idx_pid].revents) {
                        /* exited: take what is buffered, then stop (a daemon it started may keep
                         * the pipes open) */
                        hook_drain(hp);
                        while (!hp->reaped && waitpid(hp->pid, &hp->status, 0) < 0 && errno == EINTR)
                                ;
                        hp->reaped = true;
                        return want_ready && hp->ready ? PUMP_READY : PUMP_EXITED;
                }
                if (idx_err >= 0 && pfd[idx_err].revents)
                        hook_read(hp, false);
                if (idx_out >= 0 && pfd[idx_out].revents)
                        hook_read(hp, true);
        }
}

/* SIGTERM to the hook's process group, SIGKILL after KILL_GRACE_MS; reaps the hook. */
static void hook_kill(hook_proc *hp) {
        uint64_t deadline = now_ms() + KILL_GRACE_MS;

        safe_close(&hp->in_fd);
        if (!hp->reaped) {
                (void) kill(-hp->pid, SIGTERM);
                (void) kill(hp->pid, SIGTERM);
        } else
                (void) kill(-hp->pid, SIGTERM);
        for (;;) {
                hook_drain(hp);
                if (hook_try_reap(hp) && kill(-hp->pid, 0) < 0 && errno == ESRCH)
                        break;
                if (now_ms() >= deadline) {
                        (void) kill(-hp->pid, SIGKILL);
                        if (!hp->reaped) {
                                (void) kill(hp->pid, SIGKILL);
                                while (waitpid(hp->pid, &hp->status, 0) < 0 && errno == EINTR)
                                        ;
                                hp->reaped = true;
                        }
                        break;
                }
                usleep(10 * 1000);
        }
        hook_drain(hp);
}

/* The failure for a hook that has been reaped (0 on success); sets *code and msg, and says how
 * it went on stderr. */
static int32_t hook_result(hook_proc *hp, const char *arg, int *code, char msg[MSG_MAX + 1]) {
        int32_t failure;

        line_commit(&hp->err);
        if (hp->out_len > 0) { /* a last stdout line without its newline */
                hook_output_write(hook_output_out_dest(), hp->out, hp->out_len);
                hook_output_write(hook_output_out_dest(), "\n", 1);
                hp->out_len = 0;
        }
        if (hp->timed_out) {
                *code = WIFSIGNALED(hp->status) ? 128 + WTERMSIG(hp->status) : WEXITSTATUS(hp->status);
                snprintf(msg, MSG_MAX + 1, "hook %s timed out after %u ms", hp->name, arg_hook_timeout_ms);
                fprintf(stderr, "vss-writer-exec[%s]: %s: hook %s -> timed out after %u ms, killed\n", arg_name, arg,
                        hp->name, arg_hook_timeout_ms);
                return VSS_E_WRITERERROR_TIMEOUT;
        }
        snprintf(msg, MSG_MAX + 1, "%s", hp->err.last);
        if (WIFEXITED(hp->status)) {
                *code = WEXITSTATUS(hp->status);
                if (*code == 0) {
                        fprintf(stderr, "vss-writer-exec[%s]: %s: hook %s -> ok\n", arg_name, arg, hp->name);
                        return 0;
                }
                fprintf(stderr, "vss-writer-exec[%s]: %s: hook %s -> failed, exit status %d: %s\n", arg_name, arg,
                        hp->name, *code, msg);
                failure = *code == HOOK_EXIT_RETRYABLE ? VSS_E_WRITERERROR_RETRYABLE
                                                        : VSS_E_WRITERERROR_NONRETRYABLE;
        } else {
                *code = 128 + WTERMSIG(hp->status);
                fprintf(stderr, "vss-writer-exec[%s]: %s: hook %s -> killed by signal SIG%s: %s\n", arg_name, arg,
                        hp->name, sigabbrev_np(WTERMSIG(hp->status)) ?: "?", msg);
                failure = VSS_E_WRITERERROR_NONRETRYABLE;
        }
        return failure;
}

/* While a hook holds: copy its output from the main loop, and say when it dies. */
static int on_hold_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        hook_proc *hp = userdata;
        bool out = fd == hp->out_fd;

        if (!hook_read(hp, out)) {
                if (out)
                        hp->out_src = sd_event_source_disable_unref(hp->out_src);
                else
                        hp->err_src = sd_event_source_disable_unref(hp->err_src);
        }
        return 0;
}

static int on_hold_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        hook_proc *hp = userdata;

        hp->pid_src = sd_event_source_disable_unref(hp->pid_src);
        fprintf(stderr, "vss-writer-exec[%s]: hook %s exited while holding\n", arg_name, hp->name);
        return 0;
}

static void hold_watch(hook_proc *hp) {
        sd_event *e = NULL;

        if (sd_event_default(&e) < 0)
                return;
        if (hp->err_fd >= 0)
                (void) sd_event_add_io(e, &hp->err_src, hp->err_fd, EPOLLIN, on_hold_io, hp);
        if (hp->out_fd >= 0)
                (void) sd_event_add_io(e, &hp->out_src, hp->out_fd, EPOLLIN, on_hold_io, hp);
        if (hp->pidfd >= 0)
                (void) sd_event_add_io(e, &hp->pid_src, hp->pidfd, EPOLLIN, on_hold_exit, hp);
        sd_event_unref(e);
}

static hook_proc *hold_take(const char *name) {
        for (size_t i = 0; i < n_holds; i++)
                if (!name || strcmp(holds[i]->name, name) == 0) {
                        hook_proc *hp = holds[i];
                        memmove(holds + i, holds + i + 1, (n_holds - i - 1) * sizeof *holds);
                        n_holds--;
                        return hp;
                }
        return NULL;
}

/* Ends a hold: closes the hook's stdin and waits for it (up to the hook timeout, then kills it);
 * its exit status is its result for arg. */
static int32_t hold_release(hook_proc *hp, const char *arg, int *code, char msg[MSG_MAX + 1]) {
        int32_t failure;

        hook_unwatch(hp);
        if (hook_try_reap(hp)) { /* died before we let it go */
                hook_drain(hp);
                line_commit(&hp->err);
                *code = WIFEXITED(hp->status) ? WEXITSTATUS(hp->status) : 128 + WTERMSIG(hp->status);
                snprintf(msg, MSG_MAX + 1, "hook %s exited while holding", hp->name);
                fprintf(stderr, "vss-writer-exec[%s]: %s: hook %s -> failed: exited while holding (status %d)\n",
                        arg_name, arg, hp->name, *code);
                (void) kill(-hp->pid, SIGKILL); /* anything it left in its group */
                hook_free(hp);
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        safe_close(&hp->in_fd);
        if (hook_pump(hp, now_ms() + arg_hook_timeout_ms, false) == PUMP_TIMEOUT) {
                hp->timed_out = true;
                hook_kill(hp);
        }
        failure = hook_result(hp, arg, code, msg);
        hook_free(hp);
        return failure;
}

/* Runs one hook to its end (or, with hold, until it is ready: *held then says so and the hook
 * joins the holds). Returns its failure (0 on success), sets *code and msg. */
static int32_t run_hook(const char *path, const char *name, const char *arg, char **env, bool hold, bool *held,
                        int *code, char msg[MSG_MAX + 1]) {
        hook_proc *hp;
        int32_t failure;
        pump_result pr;

        *code = 127;
        if (held)
                *held = false;
        hp = hook_start(path, name, arg, env, hold, msg);
        if (!hp) {
                fprintf(stderr, "vss-writer-exec[%s]: %s: hook %s -> failed: %s\n", arg_name, arg, name, msg);
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        pr = hook_pump(hp, now_ms() + arg_hook_timeout_ms, hold);
        if (pr == PUMP_READY) {
                hook_proc **a = realloc(holds, (n_holds + 1) * sizeof *holds);
                if (!a) {
                        hp->timed_out = false;
                        hook_kill(hp);
                        hook_free(hp);
                        snprintf(msg, MSG_MAX + 1, "out of memory");
                        return VSS_E_WRITERERROR_OUTOFRESOURCES;
                }
                holds = a;
                holds[n_holds++] = hp;
                hold_watch(hp);
                fprintf(stderr, "vss-writer-exec[%s]: %s: hook %s -> ready, holding\n", arg_name, arg, name);
                *held = true;
                *code = 0;
                msg[0] = '\0';
                return 0;
        }
        if (pr == PUMP_TIMEOUT) {
                hp->timed_out = true;
                hook_kill(hp);
        }
        failure = hook_result(hp, arg, code, msg);
        hook_free(hp);
        return failure;
}

static void holds_kill_all(void) {
        hook_proc *hp;

        while ((hp = hold_take(NULL))) {
                hook_unwatch(hp);
                fprintf(stderr, "vss-writer-exec[%s]: stopping held hook %s\n", arg_name, hp->name);
                hook_kill(hp);
                hook_free(hp);
        }
        free(holds);
        holds = NULL;
}

static void frozen_clear(void) {
        for (size_t i = 0; i < n_frozen; i++)
                free(frozen[i]);
        free(frozen);
        frozen = NULL;
        n_frozen = 0;
}

static bool frozen_add(const char *name) {
        char **a = realloc(frozen, (n_frozen + 1) * sizeof *frozen), *s = strdup(name);
        if (!a || !s) {
                free(s);
                if (a)
                        frozen = a;
                return false;
        }
        frozen = a;
        frozen[n_frozen++] = s;
        return true;
}

/* qemu's scripts/qemu-guest-agent/fsfreeze-hook, is_ignored_file(). */
static bool qemu_ga_ignored(const char *name) {
        static const char *const suffixes[] = { "~",          ".bak",      ".orig",      ".rpmnew",
                                                ".rpmorig",   ".rpmsave",  ".sample",    ".dpkg-old",
                                                ".dpkg-new",  ".dpkg-tmp", ".dpkg-dist", ".dpkg-bak",
                                                ".dpkg-backup", ".dpkg-remove" };
        size_t n = strlen(name);

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t k = strlen(suffixes[i]);
                if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
                        return true;
        }
        return false;
}

/* Whether the directory entry is a hook in the current mode. */
static bool is_hook(const char *name, const char *path) {
        struct stat st;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        switch (arg_compat) {
        case COMPAT_QEMU_GA: /* what the shell glob matches (no dot files), not ignored, [ -x ]; and regular */
                if (name[0] == '.' || qemu_ga_ignored(name))
                        return false;
                return stat(path, &st) == 0 && S_ISREG(st.st_mode) && faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
        case COMPAT_VMWARE: /* every regular file (File_IsFile), executable or not */
                return stat(path, &st) == 0 && S_ISREG(st.st_mode);
        default:
                return stat(path, &st) == 0 && S_ISREG(st.st_mode) && faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
        }
}

/* The hooks of the directory, in byte order of their names. Returns -1 with errno set. */
static int list_hooks(char ***ret) {
        struct dirent **ents = NULL;
        char **names = NULL;
        int n, k = 0;

        n = scandir(arg_hooks, &ents, NULL, alphasort); /* C locale: strcoll() is strcmp() */
        if (n < 0)
                return -1;
        names = calloc((size_t) n + 1, sizeof *names);
        for (int i = 0; i < n; i++) {
                char path[PATH_MAX];
                if (names && snprintf(path, sizeof path, "%s/%s", arg_hooks, ents[i]->d_name) < (int) sizeof path &&
                    is_hook(ents[i]->d_name, path)) {
                        names[k] = strdup(ents[i]->d_name);
                        if (names[k])
                                k++;
                }
                free(ents[i]);
        }
        free(ents);
        if (!names) {
                errno = ENOMEM;
                return -1;
        }
        *ret = names;
        return k;
}

static void free_names(char **names, int n) {
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
}

/* What an event does in the current mode. */
typedef enum plan_source {
        PLAN_NOTHING,
        PLAN_DIRECTORY, /* the directory's hooks, read now */
        PLAN_FROZEN,    /* the hooks that got freeze */
} plan_source;

typedef struct plan {
        plan_source source;
        const char *arg;
        bool reverse, run_all, record;
} plan;

static plan plan_for(vss_event event) {
        const char *name = vss_event_name(event) ?: "unknown";

        switch (arg_compat) {
        case COMPAT_QEMU_GA:
                if (event == VSS_EVENT_FREEZE)
                        return (plan) { PLAN_DIRECTORY, "freeze", false, false, true };
                if (event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT)
                        return (plan) { PLAN_FROZEN, "thaw", false, true, false };
                return (plan) { PLAN_NOTHING, name, false, false, false };
        case COMPAT_VMWARE:
                if (event == VSS_EVENT_FREEZE)
                        return (plan) { PLAN_DIRECTORY, "freeze", false, false, true };
                if (event == VSS_EVENT_THAW)
                        return (plan) { PLAN_FROZEN, "thaw", true, true, false };
                if (event == VSS_EVENT_ABORT)
                        return (plan) { PLAN_FROZEN, "freezeFail", true, true, false };
                return (plan) { PLAN_NOTHING, name, false, false, false };
        default: {
                bool reverse = event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT;
                return (plan) { PLAN_DIRECTORY, name, reverse, reverse || event == VSS_EVENT_BACKUP_SHUTDOWN, false };
        }
        }
}

/* Runs the hooks of an event; returns the callback's result. info is NULL for Identify. */
static bool run_event(vss_writer *w, vss_event event, const vss_event_info *info) {
        const char *name = vss_event_name(event) ?: "unknown";
        plan pl = plan_for(event);
        bool hold = arg_hold && event == VSS_EVENT_FREEZE;
        bool release = event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT;
        char id[VSS_ID_STRING_MAX] = "", msg[MSG_MAX + 1] = "", hmsg[MSG_MAX + 1];
        const char *bt = "";
        char *comps = NULL, *control = NULL, *extra[5 + _DOC_MAX] = { NULL }, **env = NULL, **names = NULL;
        int32_t failure = 0;
        int code = 0, hcode, n = -1;
        size_t len = 0, ran = 0;
        bool oom = false;
        FILE *f;

        if (pl.source == PLAN_NOTHING)
                return true;
        if (event == VSS_EVENT_FREEZE) { /* a new set: nothing can be left, but be sure */
                frozen_clear();
                holds_kill_all();
        }
        if (info) {
                if (!vss_id_is_null(&info->snapshot_set_id))
                        vss_id_to_string(&info->snapshot_set_id, id);
                if (info->backup_type != VSS_BT_UNDEFINED)
                        bt = vss_backup_type_name(info->backup_type) ?: "";
        }
        f = open_memstream(&comps, &len);
        if (f) {
                for (size_t i = 0; info && i < info->n_components; i++)
                        fprintf(f, "%s%s", i > 0 ? " " : "", info->components[i]);
                fclose(f);
        }
        if (info) {
                control = control_create();
                if (!control) {
                        failure = errno == ENOMEM || errno == ENOSPC || errno == EDQUOT || errno == EMFILE ||
                                                  errno == ENFILE
                                          ? VSS_E_WRITERERROR_OUTOFRESOURCES
                                          : VSS_E_WRITERERROR_NONRETRYABLE;
                        snprintf(msg, sizeof msg, "cannot create the VSS_CONTROL file: %m");
                        goto finish;
                }
                for (doc_field i = 0; i < DOC_CONTROL; i++)
                        oom = oom || !(extra[5 + i] = doc_var(w, info, i));
                oom = oom || asprintf(&extra[5 + DOC_CONTROL], "%s=%s", doc_vars[DOC_CONTROL], control) < 0;
        } else /* Identify: none of them, not even inherited */
                for (doc_field i = 0; i < _DOC_MAX; i++)
                        oom = oom || !(extra[5 + i] = strdup(doc_vars[i]));
        if (oom || !comps || asprintf(&extra[0], "VSS_EVENT=%s", name) < 0 ||
            asprintf(&extra[1], "VSS_WRITER_NAME=%s", arg_name) < 0 ||
            asprintf(&extra[2], "VSS_SNAPSHOT_SET_ID=%s", id) < 0 ||
            asprintf(&extra[3], "VSS_BACKUP_TYPE=%s", bt) < 0 ||
            asprintf(&extra[4], "VSS_COMPONENTS=%s", comps) < 0 || !(env = build_env(extra, ELEMENTSOF(extra)))) {
                failure = VSS_E_WRITERERROR_OUTOFRESOURCES;
                snprintf(msg, sizeof msg, "out of memory");
                goto finish;
        }

        if (pl.source == PLAN_FROZEN) {
                names = frozen; /* taken: Thaw and Abort undo the freeze once */
                n = (int) n_frozen;
                frozen = NULL;
                n_frozen = 0;
        } else {
                n = list_hooks(&names);
                if (n < 0) {
                        failure = VSS_E_WRITERERROR_NONRETRYABLE;
                        snprintf(msg, sizeof msg, "cannot read hooks directory %s: %m", arg_hooks);
                        goto finish;
                }
        }
        for (int i = 0; i < n; i++) {
                const char *hook = names[pl.reverse ? n - 1 - i : i];
                hook_proc *hp = release ? hold_take(hook) : NULL;
                char path[PATH_MAX];
                int32_t r;
                bool held = false;

                if (hp)
                        r = hold_release(hp, pl.arg, &hcode, hmsg);
                else if (snprintf(path, sizeof path, "%s/%s", arg_hooks, hook) >= (int) sizeof path) {
                        r = VSS_E_WRITERERROR_NONRETRYABLE;
                        hcode = 127;
                        snprintf(hmsg, sizeof hmsg, "hook path too long: %s", hook);
                } else
                        r = run_hook(path, hook, pl.arg, env, hold, &held, &hcode, hmsg);
                ran++;
                if (r == 0 && pl.record && !frozen_add(hook) && failure == 0) {
                        r = VSS_E_WRITERERROR_OUTOFRESOURCES;
                        snprintf(hmsg, sizeof hmsg, "out of memory");
                }
                if (r != 0 && failure == 0) {
                        failure = r;
                        code = hcode;
                        memcpy(msg, hmsg, sizeof msg);
                }
                if (failure != 0 && !pl.run_all)
                        break;
        }
        /* Holds whose hook is gone from the directory (native mode) end too. */
        for (hook_proc *hp; release && (hp = hold_take(NULL));) {
                int32_t r = hold_release(hp, pl.arg, &hcode, hmsg);
                ran++;
                if (r != 0 && failure == 0) {
                        failure = r;
                        code = hcode;
                        memcpy(msg, hmsg, sizeof msg);
                }
        }
        /* VMware: a failed freeze sends freezeFail at once to the scripts that got freeze, in
         * reverse order (their failures are only logged). */
        if (event == VSS_EVENT_FREEZE && failure != 0 && arg_compat == COMPAT_VMWARE) {
                char **done = frozen;
                size_t n_done = n_frozen;
                frozen = NULL;
                n_frozen = 0;
                for (size_t i = n_done; i-- > 0;) {
                        hook_proc *hp = hold_take(done[i]);
                        char path[PATH_MAX];
                        if (hp)
                                (void) hold_release(hp, "freezeFail", &hcode, hmsg);
                        else if (snprintf(path, sizeof path, "%s/%s", arg_hooks, done[i]) < (int) sizeof path)
                                (void) run_hook(path, done[i], "freezeFail", env, false, NULL, &hcode, hmsg);
                        free(done[i]);
                }
                free(done);
        }
        /* Even after a failure: a failing pre-restore hook may leave its failure message. */
        if (control)
                control_apply(w, event, control);

finish:
        if (failure == 0)
                fprintf(stderr, "vss-writer-exec[%s]: %s -> ok (%zu hook%s)\n", arg_name, name, ran,
                        ran == 1 ? "" : "s");
        else {
                fprintf(stderr, "vss-writer-exec[%s]: %s -> failed 0x%08x (code %d): %s\n", arg_name, name,
                        (unsigned) failure, code, msg);
                vss_writer_set_failure(w, failure, code, msg);
        }
        if (control && unlink(control) < 0 && errno != ENOENT)
                fprintf(stderr, "vss-writer-exec[%s]: cannot remove %s: %m\n", arg_name, control);
        free_names(names, n);
        free(env);
        for (size_t i = 0; i < ELEMENTSOF(extra); i++)
                free(extra[i]);
        free(control);
        free(comps);
        return failure == 0;
}

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
                fprintf(stderr, "vss-writer-exec[%s]: cannot build metadata: %s\n", arg_name, vss_strerror(r));
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
               "                  [--app-level front-end|back-end|system] [--socket PATH]\n"
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
               "Exit status:\n"
               "  0  stopped by SIGTERM or SIGINT\n"
               "  1  could not register with vssd, or lost the connection to it\n"
               "  2  bad usage\n"
               "\n"
               "Example:\n"
               "  vss-writer-exec --name pgsql --hooks /etc/openvss/hooks/pgsql \\\n"
               "      --component data=/var/lib/postgresql --app-level back-end --freeze-timeout 30000\n"
               "  where /etc/openvss/hooks/pgsql/10-checkpoint runs CHECKPOINT on freeze.\n");
}

static int usage_error(const char *fmt, const char *arg) {
        fprintf(stderr, "vss-writer-exec: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\nTry 'vss-writer-exec --help' for more information.\n");
        return EXIT_USAGE;
}

int main(int argc, char *argv[]) {
        enum {
                ARG_RESTORE_METHOD = 0x100,
                ARG_WRITER_RESTORE,
                ARG_ALTERNATE_LOCATION,
                ARG_COMPAT,
                ARG_HOOK_TIMEOUT,
                ARG_HOLD,
                ARG_HOOK_LOG,
        };
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
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        static const char *const levels[] = { "front-end", "back-end", "system" };
        vss_writer_options opts = { .app_level = VSS_APP_FRONT_END };
        vss_writer_callbacks cb = { .identify = on_identify };
        const char *socket_path = NULL, *hook_log = NULL;
        vss_writer *w = NULL;
        DIR *d;
        int c, r;

        while ((c = getopt_long(argc, argv, "n:w:i:d:c:t:l:s:h", options, NULL)) >= 0) {
                char *end, *eq;
                unsigned long ul;

                switch (c) {
                case 'n':
                        arg_name = optarg;
                        break;
                case 'w':
                case 'i':
                        if (vss_id_from_string(optarg, c == 'w' ? &opts.class_id : &opts.instance_id) < 0)
                                return usage_error("invalid UUID: '%s'", optarg);
                        break;
                case 'd':
                        arg_hooks = optarg;
                        break;
                case 'c':
                        eq = strchr(optarg, '=');
                        if (!eq || eq == optarg || eq[1] != '/' || memchr(optarg, '/', (size_t) (eq - optarg)))
                                return usage_error("invalid component '%s', expected NAME=/ABSOLUTE/PATH", optarg);
                        *eq = '\0';
                        for (size_t i = 0; i < arg_n_components; i++)
                                if (strcmp(arg_components[i].name, optarg) == 0)
                                        return usage_error("duplicate component '%s'", optarg);
                        component *a = realloc(arg_components, (arg_n_components + 1) * sizeof(component));
                        if (!a)
                                return usage_error("%s", "out of memory");
                        arg_components = a;
                        arg_components[arg_n_components++] = (component) { optarg, eq + 1 };
                        break;
                case 't':
                        errno = 0;
                        ul = strtoul(optarg, &end, 10);
                        if (!*optarg || *optarg == '-' || *optarg == '+' || *end || errno || ul > UINT32_MAX)
                                return usage_error("invalid freeze timeout '%s', expected milliseconds", optarg);
                        opts.freeze_window_ms = (uint32_t) ul;
                        break;
                case 'l':
                        for (r = 0; r < _VSS_APP_LEVEL_MAX && strcmp(optarg, levels[r]) != 0; r++)
                                ;
                        if (r == _VSS_APP_LEVEL_MAX)
                                return usage_error("invalid application level '%s'", optarg);
                        opts.app_level = (vss_app_level) r;
                        break;
                case 's':
                        socket_path = optarg;
                        break;
                case ARG_RESTORE_METHOD:
                        r = table_lookup(restore_methods, ELEMENTSOF(restore_methods), optarg);
                        if (r < 0)
                                return usage_error("invalid --restore-method '%s', expected restore-if-not-there, "
                                                   "restore-if-can-replace, stop-restore-start, "
                                                   "restore-to-alternate-location or custom",
                                                   optarg);
                        arg_restore_method = (vss_restore_method) r;
                        break;
                case ARG_WRITER_RESTORE:
                        r = table_lookup(writer_restores, ELEMENTSOF(writer_restores), optarg);
                        if (r < 0)
                                return usage_error("invalid --writer-restore '%s', expected never, if-replace-fails "
                                                   "or always",
                                                   optarg);
                        arg_writer_restore = (vss_writer_restore) r;
                        break;
                case ARG_ALTERNATE_LOCATION:
                        eq = strchr(optarg, '=');
                        if (!eq || optarg[0] != '/' || eq[1] != '/')
                                return usage_error("invalid --alternate-location '%s', expected "
                                                   "/ABSOLUTE/PATH=/ABSOLUTE/DESTINATION",
                                                   optarg);
                        if ((size_t) (eq - optarg) >= PATH_MAX || strlen(eq + 1) >= PATH_MAX)
                                return usage_error("%s", "invalid --alternate-location: a path is longer than 4095 bytes");
                        mapping *m = realloc(arg_alternates, (arg_n_alternates + 1) * sizeof(mapping));
                        if (!m)
                                return usage_error("%s", "out of memory");
                        *eq = '\0';
                        arg_alternates = m;
                        arg_alternates[arg_n_alternates++] = (mapping) { optarg, eq + 1 };
                        break;
                case ARG_COMPAT:
                        if (strcmp(optarg, "qemu-ga") == 0)
                                arg_compat = COMPAT_QEMU_GA;
                        else if (strcmp(optarg, "vmware") == 0)
                                arg_compat = COMPAT_VMWARE;
                        else if (strcmp(optarg, "none") == 0)
                                arg_compat = COMPAT_NONE;
                        else
                                return usage_error("invalid --compat '%s', expected qemu-ga, vmware or none", optarg);
                        break;
                case ARG_HOOK_TIMEOUT:
                        errno = 0;
                        ul = strtoul(optarg, &end, 10);
                        if (!*optarg || *optarg == '-' || *optarg == '+' || *end || errno || ul == 0 || ul > INT_MAX)
                                return usage_error("invalid --hook-timeout '%s', expected milliseconds (1 or more)",
                                                   optarg);
                        arg_hook_timeout_ms = (unsigned) ul;
                        break;
                case ARG_HOLD:
                        arg_hold = true;
                        break;
                case ARG_HOOK_LOG:
                        if (!*optarg)
                                return usage_error("%s", "invalid --hook-log '', expected a file");
                        hook_log = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("vss-writer-exec (OpenVSS) %s\n", OPENVSS_VERSION);
                        return 0;
                default:
                        return usage_error("%s", "invalid usage");
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'", argv[optind]);
        if (!arg_name || !*arg_name || strlen(arg_name) > 255)
                return usage_error("%s", arg_name ? "--name must be 1 to 255 bytes" : "--name is required");
        if (!arg_hooks)
                return usage_error("%s", "--hooks is required");
        d = opendir(arg_hooks);
        if (!d) {
                fprintf(stderr, "vss-writer-exec: cannot read hooks directory %s: %m\n", arg_hooks);
                return EXIT_USAGE;
        }
        closedir(d);
        opts.name = arg_name;

        /* Keep fds 0-2 taken so that no pipe of ours lands there. */
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
                        return 1;
        signal(SIGPIPE, SIG_IGN); /* reset to default in hooks */
        if (hook_log) {
                r = hook_output_open_log(hook_log);
                if (r < 0) {
                        fprintf(stderr, "vss-writer-exec: cannot open hook log %s: %s\n", hook_log, strerror(-r));
                        return EXIT_USAGE;
                }
        }

        {
                vss_writer_event_fn *fns[] = { &cb.prepare_backup, &cb.prepare_snapshot, &cb.freeze, &cb.thaw,
                                               &cb.post_snapshot, &cb.abort, &cb.backup_complete,
                                               &cb.backup_shutdown, &cb.pre_restore, &cb.post_restore };
                for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
                        *fns[i] = on_event;
        }

        r = vss_writer_new(&opts, &cb, NULL, &w);
        if (r < 0) {
                fprintf(stderr, "vss-writer-exec: cannot create writer: %s\n", vss_strerror(r));
                return EXIT_USAGE;
        }

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
