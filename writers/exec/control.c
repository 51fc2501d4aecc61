/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec: what hooks are told (the VSS_* environment) and what they answer (the
 * VSS_CONTROL file's lines, applied to the backup components document). */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/basic/log.h"
#include "lib/basic/macro.h"
#include "lib/basic/spawn.h"
#include "writers/exec/exec-writer.h"

#define CONTROL_MAX (64 * 1024)

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

/* The variables describing the document's records, in the order of doc_field. */
typedef enum doc_field {
        DOC_PREVIOUS_BACKUP_STAMPS,
        DOC_BACKUP_OPTIONS,
        DOC_RESTORE_STATUS,
        DOC_RESTORE_TARGET_DIRS,
        DOC_CONTROL,
        _DOC_MAX,
} doc_field;

/* The variables every event's hooks get, before the document's (vars[ENV_DOC + doc_field]). */
enum {
        ENV_EVENT,
        ENV_WRITER_NAME,
        ENV_SET_ID,
        ENV_BACKUP_TYPE,
        ENV_COMPONENTS,
        ENV_PARTIAL,
        ENV_BOOTABLE,
        ENV_CONTEXT,
        ENV_SESSION_ID,
        ENV_VOLUMES,
        ENV_DOC,
};

_Static_assert(ELEMENTSOF(((event_env *) 0)->vars) == ENV_DOC + _DOC_MAX, "event_env.vars: ENV_DOC + _DOC_MAX");

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

/* Closes f, an open_memstream() of *buf: what it holds, or NULL (freed) when a write or the close
 * failed. */
static char *memstream_end(FILE *f, char **buf) {
        bool bad = ferror(f);
        if (fclose(f) != 0 || bad) {
                free(*buf);
                *buf = NULL;
        }
        return TAKE_PTR(*buf);
}

/* "VAR=NAME=VALUE NAME=VALUE ...": one field of the records of the event's components, for those
 * where it is not empty. Returns NULL when out of memory. */
static char *doc_var(vss_writer *w, const vss_event_info *info, doc_field field) {
        bool restore = info->event == VSS_EVENT_PRE_RESTORE || info->event == VSS_EVENT_POST_RESTORE;
        char *buf = NULL;
        size_t len = 0;
        bool first = true;
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
        return memstream_end(f, &buf);
}

/* "VSS_VOLUMES=PATH PATH ...": the set's paths, each one word (put_encoded: a path may hold
 * spaces). NULL when out of memory. */
static char *volumes_var(const vss_event_info *info) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        fputs("VSS_VOLUMES=", f);
        for (size_t i = 0; info && i < info->n_volumes; i++) {
                if (i > 0)
                        fputc(' ', f);
                put_encoded(f, info->volumes[i]);
        }
        return memstream_end(f, &buf);
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

static void control_warn(unsigned line, const char *fmt, ...) _printf_(2, 3);
static void control_warn(unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&what, fmt, ap);
        va_end(ap);
        log_msg("VSS_CONTROL line %u: %s", line, r < 0 ? "(out of memory)" : what);
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

void control_apply(vss_writer *w, vss_event event, const char *path) {
        char *buf = malloc(CONTROL_MAX + 1);
        size_t len = 0;
        unsigned lineno = 0;
        int fd;

        if (!buf) {
                log_msg("cannot read VSS_CONTROL file: out of memory");
                return;
        }
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno != ENOENT) /* a hook may remove it */
                        log_msg("cannot read VSS_CONTROL file %s: %m", path);
                free(buf);
                return;
        }
        while (len < CONTROL_MAX + 1) {
                ssize_t k = read(fd, buf + len, CONTROL_MAX + 1 - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        log_msg("cannot read VSS_CONTROL file %s: %m", path);
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
                log_msg("VSS_CONTROL file is larger than 64 KiB; ignoring what follows byte %zu", len);
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

int32_t event_env_build(event_env *e, vss_writer *w, vss_event event, const vss_event_info *info,
                        char msg[MSG_MAX + 1]) {
        const char *name = vss_event_name(event) ?: "unknown", *bt = "";
        char id[VSS_ID_STRING_MAX] = "", sid[VSS_ID_STRING_MAX] = "", **extra = e->vars;
        _cleanup_free_ char *comps = NULL;
        size_t len = 0;
        bool oom = false;
        FILE *f;

        *e = (event_env) {};
        if (info) {
                if (!vss_id_is_null(&info->snapshot_set_id))
                        vss_id_to_string(&info->snapshot_set_id, id);
                if (!vss_id_is_null(&info->session_id))
                        vss_id_to_string(&info->session_id, sid);
                if (info->backup_type != VSS_BT_UNDEFINED)
                        bt = vss_backup_type_name(info->backup_type) ?: "";
        }
        f = open_memstream(&comps, &len);
        if (f) {
                for (size_t i = 0; info && i < info->n_components; i++)
                        fprintf(f, "%s%s", i > 0 ? " " : "", info->components[i]);
                fclose(f);
        }
        if (info)
                /* VSS_CONTROL, the file it names and the environment wait for a hook to run
                 * (event_env_ready): an event with no hook makes no file. */
                for (doc_field i = 0; i < DOC_CONTROL; i++)
                        oom = oom || !(extra[ENV_DOC + i] = doc_var(w, info, i));
        else /* Identify: none of them, not even inherited */
                for (doc_field i = 0; i < _DOC_MAX; i++)
                        oom = oom || !(extra[ENV_DOC + i] = strdup(doc_vars[i]));
        if (oom || !comps || !(extra[ENV_VOLUMES] = volumes_var(info)) || asprintf(&extra[ENV_EVENT], "VSS_EVENT=%s", name) < 0 ||
            asprintf(&extra[ENV_WRITER_NAME], "VSS_WRITER_NAME=%s", arg_name) < 0 ||
            asprintf(&extra[ENV_SET_ID], "VSS_SNAPSHOT_SET_ID=%s", id) < 0 ||
            asprintf(&extra[ENV_BACKUP_TYPE], "VSS_BACKUP_TYPE=%s", bt) < 0 ||
            asprintf(&extra[ENV_COMPONENTS], "VSS_COMPONENTS=%s", comps) < 0 ||
            asprintf(&extra[ENV_PARTIAL], "VSS_PARTIAL_FILE_SUPPORT=%d", info && info->partial_file_support) < 0 ||
            asprintf(&extra[ENV_BOOTABLE], "VSS_BOOTABLE_SYSTEM_STATE=%d", info && info->bootable_system_state) < 0 ||
            asprintf(&extra[ENV_CONTEXT], "VSS_CONTEXT=0x%x", info ? info->context : 0) < 0 ||
            asprintf(&extra[ENV_SESSION_ID], "VSS_SESSION_ID=%s", sid) < 0) {
                snprintf(msg, MSG_MAX + 1, "out of memory");
                return VSS_E_WRITERERROR_OUTOFRESOURCES;
        }
        return 0;
}

int32_t event_env_ready(event_env *e, bool must_run, char msg[MSG_MAX + 1]) {
        int32_t failure = 0;
        if (e->env)
                return 0;
        /* Identify has VSS_CONTROL named already, unset: it gets no file. */
        if (!e->control && !e->vars[ENV_DOC + DOC_CONTROL]) {
                e->control = control_create();
                if (!e->control) {
                        failure = errno == ENOMEM || errno == ENOSPC || errno == EDQUOT || errno == EMFILE ||
                                                  errno == ENFILE
                                          ? VSS_E_WRITERERROR_OUTOFRESOURCES
                                          : VSS_E_WRITERERROR_NONRETRYABLE;
                        snprintf(msg, MSG_MAX + 1, "cannot create the VSS_CONTROL file: %m");
                        if (!must_run)
                                return failure;
                        /* The hooks run without it (VSS_CONTROL unset), and the failure is said. */
                        if (!(e->vars[ENV_DOC + DOC_CONTROL] = strdup(doc_vars[DOC_CONTROL]))) {
                                snprintf(msg, MSG_MAX + 1, "out of memory");
                                return VSS_E_WRITERERROR_OUTOFRESOURCES;
                        }
                }
        }
        if ((!e->vars[ENV_DOC + DOC_CONTROL] &&
             asprintf(&e->vars[ENV_DOC + DOC_CONTROL], "%s=%s", doc_vars[DOC_CONTROL], e->control) < 0) ||
            !(e->env = spawn_env(e->vars, ELEMENTSOF(e->vars)))) {
                snprintf(msg, MSG_MAX + 1, "out of memory");
                return VSS_E_WRITERERROR_OUTOFRESOURCES;
        }
        return failure;
}

void event_env_done(event_env *e) {
        if (e->control && unlink(e->control) < 0 && errno != ENOENT)
                log_msg("cannot remove %s: %m", e->control);
        free(e->env);
        for (size_t i = 0; i < ELEMENTSOF(e->vars); i++)
                free(e->vars[i]);
        free(e->control);
        *e = (event_env) {};
}
