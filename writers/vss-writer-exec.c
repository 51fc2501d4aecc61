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
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include <vss/writer.h>

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

/* Collects a hook's stderr: passes it through and remembers its last non-empty line. */
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
        for (size_t done = 0; done < n;) { /* pass through */
                ssize_t k = write(STDERR_FILENO, buf + done, n - done);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                done += (size_t) k;
        }
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

/* Runs one hook. Returns its failure (0 on success), sets *code and msg. */
static int32_t run_hook(const char *path, const char *event, char **env, int *code, char msg[MSG_MAX + 1]) {
        line_tracker t = { .cur_len = 0 };
        char *argv[] = { (char *) path, (char *) event, NULL };
        pid_t parent = getpid(), pid;
        int p[2], status;

        *code = 127;
        if (pipe2(p, O_CLOEXEC) < 0) {
                snprintf(msg, MSG_MAX + 1, "cannot create pipe: %m");
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        pid = fork();
        if (pid < 0) {
                snprintf(msg, MSG_MAX + 1, "cannot fork: %m");
                close(p[0]);
                close(p[1]);
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        if (pid == 0) { /* child: async-signal-safe calls only */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(127);
                int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(p[1], STDERR_FILENO) < 0)
                        _exit(127);
                close_range(3, ~0U, 0);
                execve(path, argv, env);
                const char *parts[] = { "cannot execute ", path, ": ", strerrordesc_np(errno) ?: "error", "\n" };
                for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
                        if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0)
                                break;
                _exit(127);
        }
        close(p[1]);

        /* Read stderr until EOF, or until the hook exits: a daemon it started may keep the pipe. */
        int pidfd = pidfd_open(pid, 0);
        struct pollfd pfd[2] = { { .fd = p[0], .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
        char buf[4096];
        ssize_t k;
        for (;;) {
                if (poll(pfd, pidfd >= 0 ? 2 : 1, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (pidfd >= 0 && pfd[1].revents) { /* exited: take what is buffered, then stop */
                        fcntl(p[0], F_SETFL, O_NONBLOCK);
                        while ((k = read(p[0], buf, sizeof buf)) > 0)
                                line_feed(&t, buf, (size_t) k);
                        break;
                }
                if (pfd[0].revents) {
                        k = read(p[0], buf, sizeof buf);
                        if (k > 0)
                                line_feed(&t, buf, (size_t) k);
                        else if (k == 0 || (errno != EINTR && errno != EAGAIN))
                                break;
                }
        }
        line_commit(&t);
        close(p[0]);
        if (pidfd >= 0)
                close(pidfd);

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        snprintf(msg, MSG_MAX + 1, "cannot wait for hook: %m");
                        return VSS_E_WRITERERROR_NONRETRYABLE;
                }
        snprintf(msg, MSG_MAX + 1, "%s", t.last);
        if (WIFEXITED(status)) {
                *code = WEXITSTATUS(status);
                if (*code == 0)
                        return 0;
                fprintf(stderr, "vss-writer-exec[%s]: hook %s exited with status %d\n", arg_name, path, *code);
                return *code == HOOK_EXIT_RETRYABLE ? VSS_E_WRITERERROR_RETRYABLE : VSS_E_WRITERERROR_NONRETRYABLE;
        }
        *code = 128 + WTERMSIG(status);
        fprintf(stderr, "vss-writer-exec[%s]: hook %s killed by signal SIG%s\n", arg_name, path,
                sigabbrev_np(WTERMSIG(status)) ?: "?");
        return VSS_E_WRITERERROR_NONRETRYABLE;
}

/* Runs the hooks of an event; returns the callback's result. info is NULL for Identify. */
static bool run_event(vss_writer *w, vss_event event, const vss_event_info *info) {
        const char *name = vss_event_name(event) ?: "unknown";
        bool reverse = event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT;
        bool run_all = reverse || event == VSS_EVENT_BACKUP_SHUTDOWN;
        char id[VSS_ID_STRING_MAX] = "", msg[MSG_MAX + 1] = "", hmsg[MSG_MAX + 1];
        const char *bt = "";
        char *comps = NULL, *control = NULL, *extra[5 + _DOC_MAX] = { NULL }, **env = NULL;
        struct dirent **ents = NULL;
        int32_t failure = 0;
        int code = 0, hcode, n = -1;
        size_t len = 0;
        bool oom = false;
        FILE *f;

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

        n = scandir(arg_hooks, &ents, NULL, alphasort);
        if (n < 0) {
                failure = VSS_E_WRITERERROR_NONRETRYABLE;
                snprintf(msg, sizeof msg, "cannot read hooks directory %s: %m", arg_hooks);
                goto finish;
        }
        for (int i = 0; i < n; i++) {
                const char *hook = ents[reverse ? n - 1 - i : i]->d_name;
                char path[PATH_MAX];
                struct stat st;

                if (snprintf(path, sizeof path, "%s/%s", arg_hooks, hook) >= (int) sizeof path ||
                    stat(path, &st) < 0 || !S_ISREG(st.st_mode) || faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0)
                        continue;
                int32_t r = run_hook(path, name, env, &hcode, hmsg);
                if (r != 0 && failure == 0) {
                        failure = r;
                        code = hcode;
                        memcpy(msg, hmsg, sizeof msg);
                }
                if (failure != 0 && !run_all)
                        break;
        }
        /* Even after a failure: a failing pre-restore hook may leave its failure message. */
        if (control)
                control_apply(w, event, control);

finish:
        if (failure == 0)
                fprintf(stderr, "vss-writer-exec[%s]: %s -> ok\n", arg_name, name);
        else {
                fprintf(stderr, "vss-writer-exec[%s]: %s -> failed 0x%08x (code %d): %s\n", arg_name, name,
                        (unsigned) failure, code, msg);
                vss_writer_set_failure(w, failure, code, msg);
        }
        if (control && unlink(control) < 0 && errno != ENOENT)
                fprintf(stderr, "vss-writer-exec[%s]: cannot remove %s: %m\n", arg_name, control);
        for (int i = 0; i < n; i++)
                free(ents[i]);
        free(ents);
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

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        vss_writer_exit(userdata);
        return 0;
}

static void help(void) {
        printf("Usage:\n"
               "  vss-writer-exec --name NAME --hooks DIR [--writer-id UUID] [--instance-id UUID]\n"
               "                  [--component NAME=PATH]... [--freeze-timeout MS]\n"
               "                  [--app-level front-end|back-end|system] [--socket PATH]\n"
               "                  [--restore-method METHOD] [--writer-restore WHEN]\n"
               "                  [--alternate-location PATH=DEST]...\n"
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
               "  -h, --help                 show this help\n"
               "      --version              show the version\n"
               "\n"
               "Hook protocol:\n"
               "  Each hook is run with the event name as its only argument: identify, prepare-backup,\n"
               "  prepare-snapshot, freeze, thaw, post-snapshot, abort, backup-complete,\n"
               "  backup-shutdown, pre-restore or post-restore. Its stdin is /dev/null, its stdout is\n"
               "  ours; its stderr is copied to ours. It receives SIGTERM if the writer dies.\n"
               "  Exit 0 means success. Exit 75 fails the event with VSS_E_WRITERERROR_RETRYABLE; any\n"
               "  other status, death by a signal or failure to execute fails it with\n"
               "  VSS_E_WRITERERROR_NONRETRYABLE. The application code reported is the exit status\n"
               "  (128+N for signal N); the application message is the last non-empty line the hook\n"
               "  wrote to stderr (at most 1023 bytes). The first failing hook stops the event, except\n"
               "  for thaw, abort and backup-shutdown, where all hooks run and the first failure is\n"
               "  reported. A failing identify hook makes the writer fail Identify.\n"
               "  While hooks run, the writer handles no other request: keep them short.\n"
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

static const char *errmsg(vss_writer *w, int r) {
        const char *m = vss_writer_errmsg(w);
        return m && *m ? m : vss_strerror(r);
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
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        static const char *const levels[] = { "front-end", "back-end", "system" };
        vss_writer_options opts = { .app_level = VSS_APP_FRONT_END };
        vss_writer_callbacks cb = { .identify = on_identify };
        const char *socket_path = NULL;
        vss_writer *w = NULL;
        sd_event *e = NULL;
        sigset_t mask;
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

        /* SIGTERM/SIGINT stop the loop; they stay blocked here and are unblocked in hooks. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || sd_event_default(&e) < 0 ||
            sd_event_add_signal(e, NULL, SIGTERM, on_signal, w) < 0 ||
            sd_event_add_signal(e, NULL, SIGINT, on_signal, w) < 0) {
                fprintf(stderr, "vss-writer-exec: cannot set up the event loop\n");
                r = 1;
                goto out;
        }
        r = vss_writer_attach_event(w, e);
        if (r < 0) {
                fprintf(stderr, "vss-writer-exec: cannot attach the event loop: %s\n", errmsg(w, r));
                r = 1;
                goto out;
        }

        r = vss_writer_subscribe(w, socket_path);
        if (r < 0) {
                fprintf(stderr, "vss-writer-exec[%s]: cannot subscribe: %s\n", arg_name,
                        errmsg(w, r));
                r = 1;
                goto out;
        }
        fprintf(stderr, "vss-writer-exec[%s]: subscribed\n", arg_name);

        r = vss_writer_run(w);
        if (r < 0) {
                fprintf(stderr, "vss-writer-exec[%s]: connection to vssd lost: %s\n", arg_name,
                        errmsg(w, r));
                r = 1;
        } else
                r = 0;
out:
        vss_writer_unref(w);
        sd_event_unref(e);
        free(arg_components);
        free(arg_alternates);
        return r;
}
