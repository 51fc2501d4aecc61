/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vssbackup — the reference requester. backup: the whole writer sequence, the selected
 * components' files copied from the shadow copies into a directory or an archive with the
 * backup components document and the writers' metadata. restore: the restore sequence with the
 * writers, files put back where the writers say. exec: any backup tool run against a consistent
 * shadow copy.
 */

#include <ctype.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <vss/backup.h>

#include "lib/common.h"
#include "tools/attempts.h"
#include "tools/report.h"
#include "tools/restore-where.h"
#include "tools/store.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define BCD_NAME "backup-components.json"
#define MANIFEST_NAME "vssbackup.json"
#define MAX_CHAIN 64

static const char *arg_socket;
static bool arg_json;
static const char *arg_provider; /* backup, exec: NULL, vssd chooses by the path */
static unsigned arg_retries = 2;  /* backup, exec: new attempts after a retryable failure */

static void help(void) {
        printf("Usage:\n"
               "  vssbackup backup --to DIR|FILE.tar[.gz|.xz|.zst] [--component WRITER:LOGICAL_PATH]...\n"
               "                   [--type full|copy|incremental|differential|log] [--base BACKUP]\n"
               "                   [--for PATH]... [--provider NAME] [--retries N] [--json]\n"
               "  vssbackup restore --from DIR|FILE [--component WRITER:LOGICAL_PATH]... [--to DIR] [--json]\n"
               "  vssbackup exec [--for PATH]... [--type TYPE] [--provider NAME] [--retries N]\n"
               "                 -- COMMAND [ARGS]...\n"
               "\n"
               "The reference OpenVSS requester.\n"
               "\n"
               "Commands:\n"
               "  backup   Runs the backup sequence with every writer (Identify, PrepareForBackup,\n"
               "           PrepareForSnapshot, Freeze, Thaw, PostSnapshot), copies the files of the\n"
               "           selected components from the shadow copies (leaving out the writers'\n"
               "           excluded files), marks each component backed up or not, stores the backup\n"
               "           components document and each writer's metadata with the data, and ends with\n"
               "           BackupComplete. Writer status is printed after each phase. The backup fails\n"
               "           (nothing is kept) when any writer fails.\n"
               "  restore  Runs the restore sequence (PreRestore, the files put back, PostRestore). A\n"
               "           writer failing PreRestore stops the restore before anything is written.\n"
               "           Files go back to their original place, or where the writer asks (its\n"
               "           restore target and alternate location mappings), or under --to. Writers'\n"
               "           restore methods are honoured: restore-if-not-there leaves existing files\n"
               "           alone; custom leaves the files to the writer. An incremental or\n"
               "           differential backup is restored with the backups it is based on, in order,\n"
               "           and files deleted since are removed.\n"
               "           Where a restore writes: with --to DIR, everything (also the places the\n"
               "           backup or a writer names) goes beneath DIR. Otherwise a place a writer or\n"
               "           the backup names, and the original place of a user's writer, is honoured\n"
               "           only where the writer's owner (recorded by vssd) may write itself: that\n"
               "           component fails with VSS_E_WRITERERROR_NONRETRYABLE. Below the destination\n"
               "           no symlink is followed. Files are first written into a private directory\n"
               "           beneath the destination and moved into place only when all of the backup\n"
               "           was read without error; directories that exist keep their owner and mode.\n"
               "  exec     Makes an auto-release shadow copy of each PATH with the writers, runs\n"
               "           COMMAND against it, marks the backup succeeded when COMMAND exits 0,\n"
               "           completes the backup and deletes the shadow copies. In ARGS, {} stands for\n"
               "           the shadow copy of the first PATH. COMMAND's environment has\n"
               "           VSS_SHADOW_PATH (that same path), VSS_SHADOW_PATHS and VSS_ORIGINAL_PATHS\n"
               "           (all of them, separated by newlines, in the same order) and\n"
               "           VSS_SNAPSHOT_SET_ID. The exit status is COMMAND's (128+N if killed by\n"
               "           signal N).\n"
               "\n"
               "Options:\n"
               "  -t, --to DEST          backup: a directory (created, must be empty) or an archive file\n"
               "                         (must not exist) whose suffix chooses the compression;\n"
               "                         restore: put files under DEST instead (DEST/original/path)\n"
               "  -f, --from SOURCE      restore: the backup (a directory or an archive)\n"
               "  -c, --component W:P    only this component: W is the writer's name or class id,\n"
               "                         P the component's logical path and name (\"path/name\" or\n"
               "                         \"name\"); may repeat. Default: every component\n"
               "      --type TYPE        full (default for backup), copy (default for exec),\n"
               "                         incremental, differential or log\n"
               "  -b, --base BACKUP      incremental: the previous backup; differential: the last\n"
               "                         full backup. Only files changed since it are stored, each\n"
               "                         writer gets its stamps as previous backup stamps, and\n"
               "                         restore finds the base again by this path\n"
               "      --for PATH         the directory to shadow; may repeat. Default for backup: the\n"
               "                         directories of the selected components' files\n"
               "      --provider NAME    backup, exec: the provider that makes the shadow copies (see\n"
               "                         vssadmin list providers; default: chosen by the path). An\n"
               "                         unknown name fails before any writer is frozen\n"
               "      --retries N        backup, exec: when making the shadow copies fails in a way\n"
               "                         VSS calls retryable (a writer's VSS_E_WRITERERROR_RETRYABLE,\n"
               "                         _OUTOFRESOURCES or _TIMEOUT, VSS_E_SNAPSHOT_SET_IN_PROGRESS,\n"
               "                         VSS_E_FLUSH_WRITES_TIMEOUT, VSS_E_HOLD_WRITES_TIMEOUT), abort\n"
               "                         and start over from a new session, up to N more times, after\n"
               "                         1 s, 2 s, 4 s, ... (at most 60 s). Default: 2\n"
               "      --json             print one JSON object instead of text\n"
               "      --socket PATH      vssd's socket (default $VSS_SOCKET, else " VSS_DEFAULT_SOCKET ")\n"
               "  -h, --help             show this help\n"
               "\n"
               "Layout of a backup (a directory or inside the archive):\n"
               "  openvss/backup-components.json   the backup components document\n"
               "  openvss/writer-ID.json           each writer's metadata (ID: its instance id)\n"
               "  openvss/vssbackup.json           type, time and base of this backup\n"
               "  openvss/index                    every file present at backup time\n"
               "  data/ORIGINAL/PATH               the files, by their original absolute path\n"
               "\n"
               "Exit status: 0 success, 1 failure (a writer failed, a copy failed, ...), 2 usage error;\n"
               "exec: the command's.\n"
               "\n"
               "Examples:\n"
               "  vssbackup backup --to /backup/monday.tar.zst\n"
               "  vssbackup backup --type incremental --base /backup/monday.tar.zst --to /backup/tuesday\n"
               "  vssbackup restore --from /backup/tuesday --to /tmp/restored\n"
               "  vssbackup exec --for /srv -- rsync -a {}/ backuphost:/srv/\n");
}

static int usage(const char *fmt, const char *arg) {
        fprintf(stderr, "vssbackup: ");
        fprintf(stderr, fmt, arg);
        fprintf(stderr, "\nTry 'vssbackup --help' for more information.\n");
        return EXIT_USAGE;
}

/* What one run reports: the status after each phase, the components and the first failure. */
typedef struct Run {
        Report r;
        json_object *components;
        const char *command;
        json_object *attempts; /* backup, exec: one entry per attempt; NULL elsewhere */
        unsigned attempt;      /* from 1 */
        bool gave_up;          /* a retryable failure with no retry left */
} Run;

static void component_report(Run *run, const vss_writer_metadata *wm, const char *lp, const char *name, bool ok,
                             const char *what) {
        char wid[VSS_ID_STRING_MAX], iid[VSS_ID_STRING_MAX];
        json_object *o = json_object_new_object();
        json_object_object_add(o, "writer", json_object_new_string(wm->name));
        json_object_object_add(o, "writer_id", json_object_new_string(id_string(&wm->writer_id, wid)));
        json_object_object_add(o, "instance_id", json_object_new_string(id_string(&wm->instance_id, iid)));
        json_object_object_add(o, "logical_path", json_object_new_string(lp));
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "succeeded", json_object_new_boolean(ok));
        json_object_array_add(run->components, o);
        if (!arg_json)
                printf("Component '%s%s%s' of writer '%s': %s\n", lp, isempty(lp) ? "" : "/", name, wm->name, what);
}

static bool run_fail(Run *run, int32_t hr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* After an attempt at the snapshot set failed: if the failure is retryable and retries are left,
 * ends the session (vssd aborts what it had begun, writers thaw), waits and opens a new one.
 * False when the failure stands. */
static bool retry_snapshot(Run *run) {
        char hex[16];
        Report *c = &run->r;
        if (!run->attempts || !c->error_hr || !hr_retryable(c->error_hr))
                return false;
        if (run->attempt > arg_retries) {
                run->gave_up = true;
                return false;
        }
        unsigned delay = retry_delay_s(run->attempt);
        json_object_array_add(run->attempts, attempt_json(c, run->attempt, delay));
        fprintf(stderr, "vssbackup: attempt %u of %u failed: %s (%s): %s; retrying in %u s\n", run->attempt,
                arg_retries + 1, strempty(vss_error_name(c->error_hr)), hex32(c->error_hr, hex), c->error_msg, delay);
        vss_backup_release(c->b);
        c->b = NULL;
        struct timespec ts = { .tv_sec = delay };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        json_object_put(c->phases);
        json_object_put(run->components);
        c->phases = json_object_new_array();
        run->components = json_object_new_array();
        c->error_hr = 0;
        c->error_msg[0] = 0;
        run->attempt++;
        int32_t hr = vss_backup_new(arg_socket, &c->b);
        if (hr < 0)
                return run_fail(run, hr, "cannot open a session with vssd (is it running? $VSS_SOCKET)");
        return true;
}

static int finish(Run *run, json_object *extra) {
        char hex[16];
        Report *c = &run->r;
        if (arg_json) {
                json_object *out = json_object_new_object();
                json_object_object_add(out, "command", json_object_new_string(run->command));
                json_object_object_add(out, "result", json_object_new_string(c->error_hr ? "failed" : "ok"));
                if (c->error_hr) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "code", json_object_new_string(hex32(c->error_hr, hex)));
                        json_object_object_add(e, "name", json_object_new_string(strempty(vss_error_name(c->error_hr))));
                        json_object_object_add(e, "message", json_object_new_string(c->error_msg));
                        json_object_object_add(out, "error", e);
                }
                json_object_object_foreach(extra, k, v) json_object_object_add(out, k, json_object_get(v));
                if (run->attempts) {
                        json_object_array_add(run->attempts, attempt_json(c, run->attempt, 0));
                        json_object_object_add(out, "attempts", json_object_get(run->attempts));
                }
                json_object_object_add(out, "components", json_object_get(run->components));
                json_object_object_add(out, "phases", json_object_get(c->phases));
                print_json(out);
                json_object_put(out);
        }
        if (c->error_hr)
                fprintf(stderr, "vssbackup: %s failed: %s (%s): %s\n", run->command,
                        strempty(vss_error_name(c->error_hr)), hex32(c->error_hr, hex), c->error_msg);
        if (run->gave_up)
                fprintf(stderr, "vssbackup: the failure is retryable; gave up after %u attempt%s (--retries %u)\n",
                        run->attempt, run->attempt == 1 ? "" : "s", arg_retries);
        else if (run->attempts && !c->error_hr && run->attempt > 1 && !arg_json)
                fprintf(c->out ? c->out : stdout, "Succeeded on attempt %u\n", run->attempt);
        json_object_put(run->attempts);
        json_object_put(extra);
        json_object_put(run->components);
        json_object_put(c->phases);
        vss_backup_release(c->b);
        return c->error_hr ? EXIT_FAILED : EXIT_OK;
}

static bool run_fail(Run *run, int32_t hr, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool run_fail(Run *run, int32_t hr, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        report_fail(&run->r, hr, msg);
        return false;
}

static bool run_start(Run *run, const char *command) {
        *run = (Run) { .r = { .phases = json_object_new_array(), .json = arg_json },
                       .components = json_object_new_array(), .command = command, .attempt = 1 };
        int32_t hr = vss_backup_new(arg_socket, &run->r.b);
        if (hr < 0)
                return run_fail(run, hr, "cannot open a session with vssd (is it running? $VSS_SOCKET)");
        return true;
}

/* Component selection. */

typedef struct Selected {
        const vss_writer_metadata *wm;
        const vss_component_info *ci;
} Selected;


/* "WRITER:LOGICAL_PATH" against a writer and one of its components. */
static bool spec_matches(const char *spec, const vss_id *writer_id, const char *writer_name, const char *lp,
                         const char *name) {
        const char *colon = strchr(spec, ':');
        char wid[VSS_ID_STRING_MAX], key[VSS_MAX_STRING + VSS_MAX_NAME + 2];
        vss_id id;
        if (!colon)
                return false;
        size_t wl = (size_t) (colon - spec);
        _cleanup_free_ char *w = strndup(spec, wl);
        if (!w)
                return false;
        bool writer = streq(w, writer_name) ||
                      (vss_id_from_string(w, &id) >= 0 && streq(vss_id_to_string(&id, wid), id_string(writer_id, key)));
        snprintf(key, sizeof(key), "%s%s%s", lp, isempty(lp) ? "" : "/", name);
        return writer && streq(colon + 1, key);
}

static bool spec_valid(const char *spec) {
        const char *colon = strchr(spec, ':');
        return colon && colon != spec && colon[1] && strlen(spec) < VSS_MAX_STRING;
}

/* The components to back up: the --component ones, or every selectable one. */
static bool select_components(Run *run, char **specs, size_t n_specs, Selected **ret, size_t *ret_n) {
        vss_backup *b = run->r.b;
        size_t total = 0, n = 0;
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++)
                total += vss_backup_metadata_get(b, i)->n_components;
        Selected *sel = calloc(total ? total : 1, sizeof(*sel));
        bool *used = calloc(n_specs ? n_specs : 1, sizeof(bool));
        if (!sel || !used) {
                free(sel);
                free(used);
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        }
        for (size_t i = 0; i < vss_backup_metadata_count(b); i++) {
                const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                for (size_t k = 0; k < wm->n_components; k++) {
                        const vss_component_info *ci = &wm->components[k];
                        bool want = n_specs == 0;
                        for (size_t s = 0; s < n_specs; s++)
                                if (spec_matches(specs[s], &wm->writer_id, wm->name, ci->logical_path, ci->name)) {
                                        want = true;
                                        used[s] = true;
                                }
                        if (want)
                                sel[n++] = (Selected) { wm, ci };
                }
        }
        for (size_t s = 0; s < n_specs; s++)
                if (!used[s]) {
                        free(sel);
                        free(used);
                        return run_fail(run, VSS_E_OBJECT_NOT_FOUND, "no writer has the component '%s'", specs[s]);
                }
        free(used);
        *ret = sel;
        *ret_n = n;
        return true;
}

/* Volumes: the given paths, or the directories holding the selected components' files, each
 * once (a directory inside another already taken is covered by it). */
typedef struct Volume {
        char *path;
        vss_id shadow_id;
        char shadow_path[PATH_MAX];
        uint64_t created_usec;
} Volume;

static bool volume_add(Run *run, Volume *vols, size_t *n, const char *path) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(path, real) || stat(real, &st) < 0)
                return run_fail(run, VSS_E_OBJECT_NOT_FOUND, "cannot resolve '%s': %s", path, strerror(errno));
        if (!S_ISDIR(st.st_mode)) {
                char *slash = strrchr(real, '/');
                if (slash == real)
                        slash[1] = 0;
                else
                        *slash = 0;
        }
        for (size_t i = 0; i < *n; i++)
                if (path_within(real, vols[i].path))
                        return true;
        if (*n >= 64)
                return run_fail(run, VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED, "more than 64 volumes");
        /* A new volume may cover ones taken before: keep only the outer one. */
        size_t k = 0;
        for (size_t i = 0; i < *n; i++) {
                if (path_within(vols[i].path, real))
                        free(vols[i].path);
                else
                        vols[k++] = vols[i];
        }
        *n = k;
        vols[*n] = (Volume) { .path = strdup(real) };
        if (!vols[*n].path)
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        (*n)++;
        return true;
}

static void volumes_free(Volume *vols, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(vols[i].path);
}

static const Volume *volume_of(const Volume *vols, size_t n, const char *path) {
        const Volume *best = NULL;
        for (size_t i = 0; i < n; i++)
                if (path_within(path, vols[i].path) && (!best || strlen(vols[i].path) > strlen(best->path)))
                        best = &vols[i];
        return best;
}

/* The snapshot: start a set, add the volumes, prepare, do it; status after each phase. */
static bool make_snapshot(Run *run, Volume *vols, size_t n_vols, vss_id *set_id) {
        vss_backup *b = run->r.b;
        if (!report_step(&run->r, vss_backup_start_snapshot_set(b, set_id)))
                return false;
        for (size_t i = 0; i < n_vols; i++)
                if (!report_step(&run->r, vss_backup_add_to_snapshot_set(b, vols[i].path, arg_provider, &vols[i].shadow_id)))
                        return false;
        if (!report_step(&run->r, vss_backup_prepare_for_backup_sync(b)) || !report_phase(&run->r, "prepare-for-backup"))
                return false;
        int32_t hr = vss_backup_do_snapshot_set_sync(b);
        bool st_ok = report_phase(&run->r, "do-snapshot-set");
        if (hr < 0)
                run->r.error_hr = 0; /* the operation's own error names the cause */
        if (!report_step(&run->r, hr) || !st_ok)
                return false;
        for (size_t i = 0; i < n_vols; i++) {
                vss_snapshot_prop p;
                if (!report_step(&run->r, vss_backup_get_snapshot_properties(b, &vols[i].shadow_id, &p)))
                        return false;
                snprintf(vols[i].shadow_path, sizeof(vols[i].shadow_path), "%s", p.shadow_path);
                vols[i].created_usec = p.created_usec;
                /* Said once per shadow, never silently: only the writers made this copy consistent. */
                if (p.attributes & OPENVSS_ATTR_NOT_POINT_IN_TIME)
                        fprintf(stderr, "vssbackup: the shadow copy of %s is not point-in-time: its filesystem was not held "
                                "frozen while it was copied (see vssadmin list providers --for %s)\n", p.original_path,
                                p.original_path);
        }
        return true;
}

/* Metadata a target filesystem could not keep (an xattr, an ACL, a file flag): not a failure (the
 * data and everything else are there), but never silent: one line each on stderr, and "warnings"
 * in --json. */
static json_object *warnings;

static void on_warning(const char *path, const char *what, const char *error, void *userdata) {
        json_object *o = json_object_new_object();

        fprintf(stderr, "vssbackup: warning: %s: %s not kept: %s\n", path, what, error);
        if (!warnings)
                warnings = json_object_new_array();
        json_object_object_add(o, "path", json_object_new_string(path));
        json_object_object_add(o, "what", json_object_new_string(what));
        json_object_object_add(o, "error", json_object_new_string(error));
        json_object_array_add(warnings, o);
}

static void add_warnings(json_object *extra) {
        json_object_object_add(extra, "warnings", warnings ? json_object_get(warnings) : json_object_new_array());
}

/* Progress on a terminal, at most ten times a second. */
static void progress(uint64_t files, uint64_t bytes, const char *current, void *userdata) {
        static uint64_t last;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
        if (now - last < 100 && current)
                return;
        last = now;
        fprintf(stderr, "\r\033[K%llu files, %.1f MiB%s%.60s", (unsigned long long) files, (double) bytes / 1048576.0,
                current ? "  " : "\n", current ? current : "");
}

static int put_document(Run *run, Store *st, const char *name, const char *data) {
        _cleanup_free_ char *err = NULL;
        int r = store_put_document(st, name, data, strlen(data), &err);
        if (r < 0)
                run_fail(run, VSS_E_UNEXPECTED, "cannot store %s: %s", name, err ? err : strerror(-r));
        return r;
}

/* vssbackup's own record of a backup: its type, time and base. */
typedef struct Manifest {
        vss_backup_type type;
        uint64_t created_usec;
        char base[PATH_MAX];
        uint64_t base_created_usec;
} Manifest;

static char *manifest_format(const Manifest *m) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "format", json_object_new_string("openvss-vssbackup"));
        json_object_object_add(o, "version", json_object_new_int(1));
        json_object_object_add(o, "type", json_object_new_string(vss_backup_type_name(m->type)));
        json_object_object_add(o, "created_usec", json_object_new_int64((int64_t) m->created_usec));
        json_object_object_add(o, "base", json_object_new_string(m->base));
        json_object_object_add(o, "base_created_usec", json_object_new_int64((int64_t) m->base_created_usec));
        char *s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        return s;
}

static int type_from_name(const char *s) {
        for (int t = VSS_BT_FULL; t <= VSS_BT_OTHER; t++)
                if (streq(s, vss_backup_type_name((vss_backup_type) t)))
                        return t;
        return -1;
}

/* An opened backup: its store, documents and manifest. */
typedef struct Backup {
        Store *store;
        char *bcd_text;
        vss_backup_document *bcd;
        Manifest manifest;
        int64_t owner; /* who could have written its document: 0 root only, a uid, -1 several users */
} Backup;

static void backup_close(Backup *bk) {
        store_close(bk->store);
        free(bk->bcd_text);
        vss_backup_document_free(bk->bcd);
        *bk = (Backup) {};
}

static bool backup_open(Run *run, const char *src, Backup *bk) {
        _cleanup_free_ char *err = NULL, *man = NULL;
        char why[512];
        size_t len;
        *bk = (Backup) { .owner = backup_owner(src, BCD_NAME) };
        int r = store_open(src, &bk->store, &err);
        if (r < 0)
                return run_fail(run, VSS_E_OBJECT_NOT_FOUND, "cannot open backup %s: %s", src, err ? err : strerror(-r));
        store_set_warning(bk->store, on_warning, NULL);
        free(err);
        err = NULL;
        r = store_get_document(bk->store, BCD_NAME, STORE_DOCUMENT_MAX, &bk->bcd_text, &len, &err);
        if (r >= 0 && strlen(bk->bcd_text) != len)
                r = -EINVAL;
        if (r < 0)
                return run_fail(run, VSS_E_INVALIDARG, "%s has no readable backup components document: %s", src,
                                err ? err : strerror(-r));
        if (vss_backup_document_parse(bk->bcd_text, &bk->bcd, why, sizeof(why)) < 0)
                return run_fail(run, VSS_E_INVALIDARG, "%s: bad backup components document: %s", src, why);
        free(err);
        err = NULL;
        r = store_get_document(bk->store, MANIFEST_NAME, 65536, &man, &len, &err);
        json_object *o = r >= 0 ? json_tokener_parse(man) : NULL;
        json_object *t, *c, *base, *bc;
        if (!o || !json_object_object_get_ex(o, "type", &t) || !json_object_object_get_ex(o, "created_usec", &c) ||
            !json_object_object_get_ex(o, "base", &base) || !json_object_object_get_ex(o, "base_created_usec", &bc) ||
            type_from_name(strempty(json_object_get_string(t))) < 0 || !json_object_is_type(base, json_type_string) ||
            json_object_get_string_len(base) >= PATH_MAX) {
                json_object_put(o);
                return run_fail(run, VSS_E_INVALIDARG, "%s: missing or bad %s", src, MANIFEST_NAME);
        }
        bk->manifest.type = (vss_backup_type) type_from_name(json_object_get_string(t));
        bk->manifest.created_usec = (uint64_t) json_object_get_int64(c);
        bk->manifest.base_created_usec = (uint64_t) json_object_get_int64(bc);
        snprintf(bk->manifest.base, sizeof(bk->manifest.base), "%s", json_object_get_string(base));
        json_object_put(o);
        return true;
}

/* The file groups of a component as the store takes them. */
static StoreFileGroup *groups_of(const vss_file_desc *f, size_t n) {
        StoreFileGroup *g = calloc(n ? n : 1, sizeof(*g));
        for (size_t i = 0; g && i < n; i++)
                g[i] = (StoreFileGroup) { f[i].path, f[i].filespec, f[i].recursive };
        return g;
}

static bool copy_component(Run *run, Store *st, const Selected *s, const Volume *vols, size_t n_vols,
                           uint64_t since_usec) {
        _cleanup_free_ StoreFileGroup *groups = groups_of(s->ci->files, s->ci->n_files);
        _cleanup_free_ StoreFileGroup *ex = groups_of(s->wm->excludes, s->wm->n_excludes);
        if (!groups || !ex)
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        for (size_t i = 0; i < s->ci->n_files; i++) {
                _cleanup_free_ char *err = NULL;
                const Volume *v = volume_of(vols, n_vols, groups[i].path);
                if (!v)
                        return run_fail(run, VSS_E_WRITERERROR_INCONSISTENTSNAPSHOT,
                                        "%s of component '%s' is on no volume of the snapshot set", groups[i].path,
                                        s->ci->name);
                int r = store_add_files(st, v->shadow_path, v->path, &groups[i], ex, s->wm->n_excludes, since_usec, &err);
                if (r < 0)
                        return run_fail(run, VSS_E_UNEXPECTED, "copying %s of component '%s': %s", groups[i].path,
                                        s->ci->name, err ? err : strerror(-r));
        }
        return true;
}

/* Whether every file under path (itself included, symlinks not followed) belongs to uid: a
 * user's writer may hand the requester only files its owner owns, never make a more privileged
 * requester read someone else's. ret_bad: the first file that does not (static buffer). */
static uid_t files_owner_want;
static char files_owner_bad[PATH_MAX];
static int check_owner(const char *fpath, const struct stat *st, int type, struct FTW *ftw) {
        if (type != FTW_NS && type != FTW_DNR && st->st_uid == files_owner_want)
                return 0;
        snprintf(files_owner_bad, sizeof(files_owner_bad), "%s", fpath);
        return 1;
}

static bool files_owned_by(const char *path, uid_t uid) {
        files_owner_want = uid;
        files_owner_bad[0] = 0;
        return nftw(path, check_owner, 16, FTW_PHYS) == 0;
}

/* The owner vssd recorded for the writer of this component in the live document. */
static const vss_writer_metadata *document_writer(const vss_backup_document *d, const vss_writer_metadata *wm) {
        for (size_t i = 0; i < d->n_writers; i++)
                if (vss_id_equal(&d->writers[i]->instance_id, &wm->instance_id))
                        return d->writers[i];
        return NULL;
}

/* The files the component's writer made after the shadows were cut (its record's writer_files),
 * read where they are now and stored as the component's files at their stored_as paths. Stored
 * first, whatever the backup type, so that they take the place of the shadow's older copies.
 * A writer that is not root's may name only files its owner owns. */
static bool copy_writer_files(Run *run, Store *st, const vss_backup_document *d, const Selected *s) {
        const vss_bc_component *c = vss_backup_document_find(d, &s->wm->writer_id, &s->wm->instance_id,
                                                             s->ci->logical_path, s->ci->name);
        const vss_writer_metadata *owner = document_writer(d, s->wm);
        for (size_t i = 0; c && i < c->n_writer_files; i++) {
                const vss_file_mapping *f = &c->writer_files[i];
                StoreFileGroup g = { f->destination, f->filespec, f->recursive };
                _cleanup_free_ char *err = NULL;
                if (!owner || !owner->owner_known)
                        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                        "writer files of component '%s': vssd recorded no owner for its writer",
                                        s->ci->name);
                if (owner->owner_uid != 0 && !files_owned_by(f->path, (uid_t) owner->owner_uid))
                        return run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                        "writer files of component '%s': %s does not belong to the writer's owner "
                                        "(uid %u); a writer hands over only its owner's files", s->ci->name,
                                        files_owner_bad[0] ? files_owner_bad : f->path, (unsigned) owner->owner_uid);
                int r = store_add_files(st, f->path, f->destination, &g, NULL, 0, 0, &err);
                if (r < 0)
                        return run_fail(run, VSS_E_UNEXPECTED, "copying %s (as %s) of component '%s': %s", f->path,
                                        f->destination, s->ci->name, err ? err : strerror(-r));
        }
        return true;
}

static int cmd_backup(const char *dest, char **specs, size_t n_specs, vss_backup_type type, const char *base_path,
                      char **paths, size_t n_paths) {
        Run run;
        Backup base = {};
        Store *st = NULL;
        Selected *sel = NULL;
        size_t n_sel = 0, n_vols = 0;
        Volume vols[64];
        vss_id set_id = {};
        Manifest man = { .type = type };
        _cleanup_free_ char *err = NULL, *bcd = NULL;
        bool all_ok = true;

        if (run_start(&run, "backup") && base_path && backup_open(&run, base_path, &base)) {
                if (type == VSS_BT_DIFFERENTIAL && base.manifest.type != VSS_BT_FULL)
                        run_fail(&run, VSS_E_INVALIDARG, "the base of a differential backup must be a full backup; %s is %s",
                                 base_path, vss_backup_type_name(base.manifest.type));
                else if (base.manifest.type == VSS_BT_COPY)
                        run_fail(&run, VSS_E_INVALIDARG, "%s is a copy backup, which no backup is based on", base_path);
                char real[PATH_MAX];
                if (!realpath(base_path, real))
                        run_fail(&run, VSS_E_OBJECT_NOT_FOUND, "cannot resolve %s", base_path);
                snprintf(man.base, sizeof(man.base), "%s", real);
                man.base_created_usec = base.manifest.created_usec;
        }
        vss_backup *b = run.r.b;
        bool ok = !run.r.error_hr;
        if (ok) {
                int r = store_create(dest, &st, &err);
                if (r < 0)
                        ok = run_fail(&run, VSS_E_INVALIDARG, "cannot write the backup to %s: %s", dest,
                                      err ? err : strerror(-r));
                else {
                        store_set_warning(st, on_warning, NULL);
                        if (isatty(STDERR_FILENO) && !arg_json)
                                store_set_progress(st, progress, NULL);
                }
        }
        run.attempts = json_object_new_array();
        /* Retries restart from a new session; the destination, still empty, stays. */
        for (;;) {
                ok = ok && report_step(&run.r, vss_backup_initialize_for_backup(b)) &&
                     report_step(&run.r, vss_backup_set_backup_state(b, n_specs > 0, false, type, false)) &&
                     report_step(&run.r, vss_backup_gather_writer_metadata_sync(b)) &&
                     select_components(&run, specs, n_specs, &sel, &n_sel);
                for (size_t i = 0; ok && i < n_sel; i++) {
                        const Selected *s = &sel[i];
                        if (n_specs > 0)
                                ok = report_step(&run.r, vss_backup_add_component(b, &s->wm->instance_id, &s->wm->writer_id,
                                                                                  s->ci->logical_path, s->ci->name));
                        /* The writer reads the stamp its component got in the base backup. */
                        const vss_bc_component *prev = base.bcd ? vss_backup_document_find(base.bcd, &s->wm->writer_id, NULL,
                                                                                         s->ci->logical_path, s->ci->name)
                                                                : NULL;
                        if (ok && prev && !isempty(prev->backup_stamp))
                                ok = report_step(&run.r, vss_backup_set_previous_backup_stamp(b, &s->wm->instance_id, &s->wm->writer_id,
                                                                                              s->ci->logical_path, s->ci->name,
                                                                                              prev->backup_stamp));
                }
                for (size_t i = 0; ok && i < n_paths; i++)
                        ok = volume_add(&run, vols, &n_vols, paths[i]);
                for (size_t i = 0; ok && n_paths == 0 && i < n_sel; i++)
                        for (size_t k = 0; ok && k < sel[i].ci->n_files; k++)
                                ok = volume_add(&run, vols, &n_vols, sel[i].ci->files[k].path);
                if (ok && n_vols == 0)
                        ok = run_fail(&run, VSS_E_OBJECT_NOT_FOUND, "nothing to back up: no writer has components; give --for PATH");
                ok = ok && make_snapshot(&run, vols, n_vols, &set_id);
                if (ok || !retry_snapshot(&run))
                        break;
                /* A new session: everything again. */
                b = run.r.b;
                free(sel);
                sel = NULL;
                n_sel = 0;
                volumes_free(vols, n_vols);
                n_vols = 0;
                ok = true;
        }

        if (ok) {
                man.created_usec = vols[0].created_usec;
                /* Incremental and differential: files changed since the base was cut. */
                uint64_t since = base.bcd ? base.manifest.created_usec : 0;
                vss_backup_document *now = NULL;
                ok = report_step(&run.r, vss_backup_get_document(b, &now));
                for (size_t i = 0; ok && i < n_sel; i++) {
                        const Selected *s = &sel[i];
                        char saved[1024] = "";
                        bool c_ok = copy_writer_files(&run, st, now, s) && copy_component(&run, st, s, vols, n_vols, since);
                        if (!c_ok) {
                                snprintf(saved, sizeof(saved), "%s", run.r.error_msg);
                                all_ok = false;
                        }
                        (void) vss_backup_set_backup_succeeded(b, &s->wm->instance_id, &s->wm->writer_id,
                                                               s->ci->logical_path, s->ci->name, c_ok);
                        component_report(&run, s->wm, s->ci->logical_path, s->ci->name, c_ok,
                                         c_ok ? "backed up" : saved);
                }
                vss_backup_document_free(now);
                ok = ok && report_step(&run.r, vss_backup_save_as_document(b, &bcd));
        }
        if (ok) {
                char name[64], iid[VSS_ID_STRING_MAX];
                _cleanup_free_ char *m = manifest_format(&man);
                ok = m && put_document(&run, st, BCD_NAME, bcd) >= 0 && put_document(&run, st, MANIFEST_NAME, m) >= 0;
                for (size_t i = 0; ok && i < vss_backup_metadata_count(b); i++) {
                        const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                        snprintf(name, sizeof(name), "writer-%s.json", id_string(&wm->instance_id, iid));
                        ok = put_document(&run, st, name, wm->document) >= 0;
                }
        }
        if (ok && report_step(&run.r, vss_backup_backup_complete_sync(b)))
                ok = report_phase(&run.r, "backup-complete") && ok;
        if (st) {
                free(err);
                err = NULL;
                /* A backup whose writers failed is no backup: nothing is kept. A component that
                 * failed to copy is kept, marked failed in the document. */
                if (!ok)
                        store_abort(st);
                else if (store_finish(st, &err) < 0)
                        run_fail(&run, VSS_E_UNEXPECTED, "cannot finish %s: %s", dest, strempty(err));
        }
        if (ok && !all_ok && !run.r.error_hr)
                run_fail(&run, VSS_E_UNEXPECTED, "some components could not be copied");
        if (!arg_json && !run.r.error_hr)
                printf("Backup (%s) written to %s\n", vss_backup_type_name(type), dest);
        json_object *extra = json_object_new_object();
        char sid[VSS_ID_STRING_MAX];
        json_object_object_add(extra, "destination", json_object_new_string(dest));
        json_object_object_add(extra, "type", json_object_new_string(vss_backup_type_name(type)));
        json_object_object_add(extra, "snapshot_set_id",
                               json_object_new_string(vss_id_is_null(&set_id) ? "" : id_string(&set_id, sid)));
        json_object_object_add(extra, "base", json_object_new_string(man.base));
        add_warnings(extra);
        backup_close(&base);
        volumes_free(vols, n_vols);
        free(sel);
        return finish(&run, extra);
}

/* Restore. */

static bool component_wanted(const vss_backup_document *d, const vss_bc_component *c, char **specs, size_t n_specs) {
        const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
        if (!wm || !c->backup_succeeded)
                return false;
        if (n_specs == 0)
                return true;
        for (size_t s = 0; s < n_specs; s++)
                if (spec_matches(specs[s], &c->writer_id, wm->name, c->logical_path, c->name))
                        return true;
        return false;
}

/* Puts one component's files back from each backup of the chain, oldest first. With to, every
 * destination (the original path, or one the backup or the writer names) is taken beneath to; else
 * one the backup or the writer names (and, for a user's writer, its original paths) is honoured
 * only where the writer's owner may write itself. */
static bool restore_component(Run *run, Backup *chain, size_t n_chain, const vss_backup_document *d,
                              const vss_bc_component *c, const char *to, uint64_t *ret_files) {
        const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
        const vss_backup_document *doc = chain[n_chain - 1].bcd;
        const vss_bc_component *bc = vss_backup_document_find(doc, &c->writer_id, &c->instance_id, c->logical_path,
                                                              c->name);
        const vss_component_info *ci = NULL;
        int64_t owner = writer_owner(wm, chain[n_chain - 1].owner);
        for (size_t i = 0; i < wm->n_components; i++)
                if (streq(wm->components[i].logical_path, c->logical_path) && streq(wm->components[i].name, c->name))
                        ci = &wm->components[i];
        if (!ci)
                return run_fail(run, VSS_E_INVALIDARG, "component '%s' is not in its writer's metadata", c->name);
        StoreRestoreRule *rules = calloc(ci->n_files ? ci->n_files : 1, sizeof(*rules));
        bool ok = rules != NULL, wished = false;
        if (!ok)
                return run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        for (size_t i = 0; ok && i < ci->n_files; i++) {
                char *dest = NULL;
                /* Never "in place" for want of memory: a failure here fails the component. */
                ok = restore_destination(wm, bc, c->restore_target, ci->files[i].path, &dest) >= 0;
                rules[i] = (StoreRestoreRule) {
                        .from = { ci->files[i].path, ci->files[i].filespec, ci->files[i].recursive },
                        .no_overwrite = wm->restore_method == VSS_RME_RESTORE_IF_NOT_THERE,
                };
                if (ok && to) {
                        char *under = NULL;
                        ok = asprintf(&under, "%s%s", to, dest ? dest : ci->files[i].path) >= 0;
                        free(dest);
                        dest = ok ? under : NULL;
                        rules[i].beneath = to;
                } else if (ok && dest) {
                        wished = true;
                        if (owner < 0) {
                                run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE,
                                         "component '%s' of writer '%s': destination %s is not honoured: %s, and a "
                                         "destination from a writer or a backup is honoured only where the writer's "
                                         "owner may write itself (restore with --to DIR to put it beneath DIR)",
                                         c->name, wm->name, dest,
                                         wm->owner_known ? "the backup could have been written by another user than "
                                                           "the writer's owner"
                                                         : "the backup records no owner for the writer");
                                free(dest);
                                dest = NULL;
                                ok = false;
                        }
                        rules[i].owner_check = true;
                        rules[i].owner_uid = owner < 0 ? 0 : (uint32_t) owner;
                } else if (ok && owner > 0) {
                        /* In place, for a user's writer: its own paths, as far as that user may write
                         * there (a symlink the user put on the way is not followed). A document that
                         * vouches for no owner keeps the old way: the parent resolved. */
                        wished = true;
                        rules[i].owner_check = true;
                        rules[i].owner_uid = (uint32_t) owner;
                }
                rules[i].to = dest;
        }
        if (!ok && !run->r.error_hr)
                run_fail(run, VSS_E_OUTOFMEMORY, "out of memory");
        *ret_files = 0;
        for (size_t k = 0; ok && k < n_chain; k++) {
                _cleanup_free_ char *err = NULL;
                /* Files deleted since the older backups go away with the newest one's index. */
                int r = store_restore(chain[k].store, rules, ci->n_files, n_chain > 1 && k == n_chain - 1, &err);
                if (r == -EPERM && wished)
                        ok = run_fail(run, VSS_E_WRITERERROR_NONRETRYABLE, "component '%s' of writer '%s' not restored: %s",
                                      c->name, wm->name, err ? err : strerror(-r));
                else if (r < 0)
                        ok = run_fail(run, VSS_E_UNEXPECTED, "restoring component '%s': %s", c->name, err ? err : strerror(-r));
                else
                        *ret_files += (uint64_t) r;
        }
        for (size_t i = 0; i < ci->n_files; i++)
                free((char *) rules[i].to);
        free(rules);
        return ok;
}

static int cmd_restore(const char *src, char **specs, size_t n_specs, const char *to) {
        Run run;
        Backup chain[MAX_CHAIN];
        size_t n_chain = 0;
        vss_backup_document *d = NULL;
        char real_to[PATH_MAX];

        bool ok = run_start(&run, "restore");
        if (ok && to) {
                if (mkdir(to, 0755) < 0 && errno != EEXIST)
                        ok = run_fail(&run, VSS_E_INVALIDARG, "cannot create %s: %s", to, strerror(errno));
                else if (!realpath(to, real_to))
                        ok = run_fail(&run, VSS_E_INVALIDARG, "cannot resolve %s: %s", to, strerror(errno));
                to = real_to;
        }
        /* The chain, newest first while reading it, then reversed. */
        const char *next = src;
        while (ok && next) {
                if (n_chain == MAX_CHAIN) {
                        ok = run_fail(&run, VSS_E_INVALIDARG, "more than %d backups in the chain of %s", MAX_CHAIN, src);
                        break;
                }
                ok = backup_open(&run, next, &chain[n_chain]);
                if (!ok)
                        break;
                Backup *bk = &chain[n_chain++];
                if (n_chain > 1 && bk->manifest.created_usec != chain[n_chain - 2].manifest.base_created_usec)
                        ok = run_fail(&run, VSS_E_INVALIDARG, "%s is not the backup %s was based on (it was replaced?)",
                                      next, n_chain > 1 ? "the next one" : src);
                next = isempty(bk->manifest.base) ? NULL : bk->manifest.base;
        }
        for (size_t i = 0; i < n_chain / 2; i++) {
                Backup t = chain[i];
                chain[i] = chain[n_chain - 1 - i];
                chain[n_chain - 1 - i] = t;
        }
        vss_backup *b = run.r.b;
        const vss_backup_document *doc = n_chain ? chain[n_chain - 1].bcd : NULL;
        size_t n_wanted = 0;
        ok = ok && report_step(&run.r, vss_backup_initialize_for_restore(b, chain[n_chain - 1].bcd_text)) &&
             report_step(&run.r, vss_backup_gather_writer_metadata_sync(b));
        for (size_t i = 0; ok && i < doc->n_components; i++) {
                const vss_bc_component *c = &doc->components[i];
                if (!component_wanted(doc, c, specs, n_specs))
                        continue;
                n_wanted++;
                ok = report_step(&run.r, vss_backup_set_selected_for_restore(b, &c->instance_id, &c->writer_id,
                                                                             c->logical_path, c->name, true));
                /* Writers learn where their files go (PostRestore checks them there). */
                const vss_writer_metadata *wm = vss_backup_document_writer(doc, c);
                for (size_t k = 0; ok && to && k < wm->n_components; k++) {
                        const vss_component_info *ci = &wm->components[k];
                        if (!streq(ci->logical_path, c->logical_path) || !streq(ci->name, c->name))
                                continue;
                        for (size_t f = 0; ok && f < ci->n_files; f++) {
                                _cleanup_free_ char *dest = NULL, *wish = NULL;
                                /* Where restore_component puts them: beneath to, whatever the backup says. */
                                if (restore_destination(wm, c, c->restore_target, ci->files[f].path, &wish) < 0 ||
                                    asprintf(&dest, "%s%s", to, wish ? wish : ci->files[f].path) < 0)
                                        ok = run_fail(&run, VSS_E_OUTOFMEMORY, "out of memory");
                                else
                                        ok = report_step(&run.r, vss_backup_add_new_target(b, &c->instance_id, &c->writer_id,
                                                                                           c->logical_path, c->name,
                                                                                           ci->files[f].path,
                                                                                           ci->files[f].filespec,
                                                                                           ci->files[f].recursive, dest));
                        }
                }
        }
        for (size_t s = 0; ok && s < n_specs; s++) {
                bool found = false;
                for (size_t i = 0; i < doc->n_components; i++)
                        found = found || component_wanted(doc, &doc->components[i], &specs[s], 1);
                if (!found)
                        ok = run_fail(&run, VSS_E_OBJECT_NOT_FOUND, "the backup has no successfully backed up component '%s'",
                                      specs[s]);
        }
        if (ok && n_wanted == 0)
                ok = run_fail(&run, VSS_E_OBJECT_NOT_FOUND, "the backup has no component to restore");
        /* A writer failing PreRestore stops the restore here, before any file is written. */
        ok = ok && report_step(&run.r, vss_backup_pre_restore_sync(b)) && report_phase(&run.r, "pre-restore");
        ok = ok && report_step(&run.r, vss_backup_get_document(b, &d));
        for (size_t i = 0; ok && i < d->n_components; i++) {
                const vss_bc_component *c = &d->components[i];
                const vss_writer_metadata *wm = vss_backup_document_writer(d, c);
                if (!c->selected_for_restore || !wm)
                        continue;
                uint64_t files = 0;
                vss_file_restore_status rs;
                bool c_ok = true;
                char what[1200];
                if (!isempty(c->pre_restore_failure_msg)) {
                        rs = VSS_RS_NONE;
                        c_ok = false;
                        snprintf(what, sizeof(what), "not restored: %s", c->pre_restore_failure_msg);
                        run_fail(&run, VSS_E_WRITERERROR_NONRETRYABLE, "writer '%s' refused component '%s': %s", wm->name,
                                 c->name, c->pre_restore_failure_msg);
                } else if (wm->restore_method == VSS_RME_CUSTOM) {
                        rs = VSS_RS_NONE;
                        snprintf(what, sizeof(what), "left to the writer (custom restore method)");
                } else {
                        c_ok = restore_component(&run, chain, n_chain, d, c, to, &files);
                        rs = c_ok ? VSS_RS_ALL : VSS_RS_FAILED;
                        if (c_ok)
                                snprintf(what, sizeof(what), "restored (%llu files)", (unsigned long long) files);
                        else
                                snprintf(what, sizeof(what), "restore failed: %s", run.r.error_msg);
                }
                component_report(&run, wm, c->logical_path, c->name, c_ok, what);
                if (!report_step(&run.r, vss_backup_set_file_restore_status(b, &c->instance_id, &c->writer_id,
                                                                             c->logical_path, c->name, rs)))
                        ok = false;
        }
        /* PostRestore comes whenever PreRestore did, so writers restart what they stopped. */
        if (run.r.b && d) {
                int32_t saved_hr = run.r.error_hr;
                run.r.error_hr = 0;
                if (report_step(&run.r, vss_backup_post_restore_sync(b)))
                        report_phase(&run.r, "post-restore");
                if (saved_hr)
                        run.r.error_hr = saved_hr;
        }
        if (!arg_json && !run.r.error_hr)
                printf("Restored from %s%s%s\n", src, to ? " to " : "", to ? to : "");
        json_object *extra = json_object_new_object();
        json_object_object_add(extra, "source", json_object_new_string(src));
        json_object_object_add(extra, "to", json_object_new_string(to ? to : ""));
        json_object *ch = json_object_new_array();
        for (size_t i = 0; i < n_chain; i++)
                json_object_array_add(ch, json_object_new_string(vss_backup_type_name(chain[i].manifest.type)));
        json_object_object_add(extra, "chain", ch);
        add_warnings(extra);
        for (size_t i = 0; i < n_chain; i++)
                backup_close(&chain[i]);
        vss_backup_document_free(d);
        return finish(&run, extra);
}

/* exec. */

static pid_t child_pid;

static void forward_signal(int sig) {
        if (child_pid > 0)
                kill(child_pid, sig);
}

static char *replace_braces(const char *arg, const char *with) {
        size_t n = 0;
        for (const char *p = strstr(arg, "{}"); p; p = strstr(p + 2, "{}"))
                n++;
        char *out = malloc(strlen(arg) + n * strlen(with) + 1), *o = out;
        if (!out)
                return NULL;
        for (const char *p = arg; *p;) {
                if (p[0] == '{' && p[1] == '}') {
                        o = stpcpy(o, with);
                        p += 2;
                } else
                        *o++ = *p++;
        }
        *o = 0;
        return out;
}

static int run_command(char **argv, const Volume *vols, size_t n_vols, const vss_id *set_id) {
        char sid[VSS_ID_STRING_MAX];
        size_t argc = 0;
        while (argv[argc])
                argc++;
        char **args = calloc(argc + 1, sizeof(char *));
        char *shadows = NULL, *origs = NULL;
        size_t ls = 0, lo = 0;
        FILE *fs = open_memstream(&shadows, &ls), *fo = open_memstream(&origs, &lo);
        for (size_t i = 0; fs && fo && i < n_vols; i++) {
                fprintf(fs, "%s%s", i ? "\n" : "", vols[i].shadow_path);
                fprintf(fo, "%s%s", i ? "\n" : "", vols[i].path);
        }
        if (fs)
                fclose(fs);
        if (fo)
                fclose(fo);
        for (size_t i = 0; args && i < argc; i++)
                args[i] = replace_braces(argv[i], vols[0].shadow_path);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
                /* The shadow copies end with us: so does the command. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (!args || !shadows || !origs || setenv("VSS_SHADOW_PATH", vols[0].shadow_path, 1) < 0 ||
                    setenv("VSS_SHADOW_PATHS", shadows, 1) < 0 || setenv("VSS_ORIGINAL_PATHS", origs, 1) < 0 ||
                    setenv("VSS_SNAPSHOT_SET_ID", vss_id_to_string(set_id, sid), 1) < 0)
                        _exit(127);
                execvp(args[0], args);
                fprintf(stderr, "vssbackup: cannot run %s: %s\n", args[0], strerror(errno));
                _exit(127);
        }
        int status = -1;
        if (pid > 0) {
                child_pid = pid;
                struct sigaction sa = { .sa_handler = forward_signal, .sa_flags = SA_RESTART };
                sigaction(SIGINT, &sa, NULL);
                sigaction(SIGTERM, &sa, NULL);
                sigaction(SIGHUP, &sa, NULL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                child_pid = 0;
        }
        for (size_t i = 0; args && i < argc; i++)
                free(args[i]);
        free(args);
        free(shadows);
        free(origs);
        if (pid < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmd_exec(char **paths, size_t n_paths, vss_backup_type type, char **argv) {
        Run run;
        Volume vols[64];
        size_t n_vols = 0;
        vss_id set_id = {};
        int code = -1;

        bool ok = run_start(&run, "exec");
        run.r.out = stderr; /* stdout is the command's */
        vss_backup *b = run.r.b;
        run.attempts = json_object_new_array();
        for (;;) {
                ok = ok && report_step(&run.r, vss_backup_initialize_for_backup(b)) &&
                     report_step(&run.r, vss_backup_set_backup_state(b, false, false, type, false)) &&
                     report_step(&run.r, vss_backup_gather_writer_metadata_sync(b));
                for (size_t i = 0; ok && i < n_paths; i++)
                        ok = volume_add(&run, vols, &n_vols, paths[i]);
                for (size_t i = 0; ok && n_paths == 0 && i < vss_backup_metadata_count(b); i++) {
                        const vss_writer_metadata *wm = vss_backup_metadata_get(b, i);
                        for (size_t k = 0; ok && k < wm->n_components; k++)
                                for (size_t f = 0; ok && f < wm->components[k].n_files; f++)
                                        ok = volume_add(&run, vols, &n_vols, wm->components[k].files[f].path);
                }
                if (ok && n_vols == 0)
                        ok = run_fail(&run, VSS_E_OBJECT_NOT_FOUND, "nothing to shadow: no writer has components; give --for PATH");
                ok = ok && make_snapshot(&run, vols, n_vols, &set_id);
                if (ok || !retry_snapshot(&run))
                        break;
                /* A new session: everything again. */
                b = run.r.b;
                volumes_free(vols, n_vols);
                n_vols = 0;
                ok = true;
        }
        if (ok) {
                if (!arg_json)
                        fprintf(stderr, "vssbackup: running %s against %s\n", argv[0], vols[0].shadow_path);
                code = run_command(argv, vols, n_vols, &set_id);
                if (code < 0)
                        ok = run_fail(&run, VSS_E_UNEXPECTED, "cannot start %s: %s", argv[0], strerror(errno));
                else if (code != 0)
                        run_fail(&run, VSS_E_UNEXPECTED, "%s exited with status %d", argv[0], code);
                /* The command's verdict is each component's. */
                vss_backup_document *d = NULL;
                if (ok && vss_backup_get_document(b, &d) >= 0)
                        for (size_t i = 0; i < d->n_components; i++)
                                (void) vss_backup_set_backup_succeeded(b, &d->components[i].instance_id,
                                                                       &d->components[i].writer_id,
                                                                       d->components[i].logical_path,
                                                                       d->components[i].name, code == 0);
                vss_backup_document_free(d);
                int32_t saved = run.r.error_hr;
                run.r.error_hr = 0;
                if (report_step(&run.r, vss_backup_backup_complete_sync(b)))
                        report_phase(&run.r, "backup-complete");
                if (saved)
                        run.r.error_hr = saved;
        }
        json_object *extra = json_object_new_object();
        json_object_object_add(extra, "exit_status", json_object_new_int(code));
        volumes_free(vols, n_vols);
        int r = finish(&run, extra); /* releasing the session deletes the shadow copies */
        return code >= 0 ? code : r == EXIT_OK ? EXIT_FAILED : r;
}

int main(int argc, char *argv[]) {
        enum { OPT_JSON = 0x100, OPT_SOCKET, OPT_TYPE, OPT_FOR, OPT_PROVIDER, OPT_RETRIES };
        static const struct option options[] = {
                { "to", required_argument, NULL, 't' },
                { "from", required_argument, NULL, 'f' },
                { "component", required_argument, NULL, 'c' },
                { "base", required_argument, NULL, 'b' },
                { "type", required_argument, NULL, OPT_TYPE },
                { "for", required_argument, NULL, OPT_FOR },
                { "provider", required_argument, NULL, OPT_PROVIDER },
                { "retries", required_argument, NULL, OPT_RETRIES },
                { "json", no_argument, NULL, OPT_JSON },
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *to = NULL, *from = NULL, *base = NULL;
        char *specs[VSS_MAX_COMPONENTS], *paths[64];
        size_t n_specs = 0, n_paths = 0;
        int type = -1, c;
        bool have_retries = false;

        if (argc >= 2 && (streq(argv[1], "--help") || streq(argv[1], "-h"))) {
                help();
                return EXIT_OK;
        }
        if (argc < 2 || argv[1][0] == '-')
                return usage("expected a command: backup, restore or exec", NULL);
        const char *cmd = argv[1];
        if (!streq(cmd, "backup") && !streq(cmd, "restore") && !streq(cmd, "exec"))
                return usage("unknown command '%s'", cmd);
        optind = 2;
        /* "+": stop at the first non-option, so exec's COMMAND keeps its own options. */
        while ((c = getopt_long(argc, argv, "+t:f:c:b:h", options, NULL)) >= 0)
                switch (c) {
                case 't': to = optarg; break;
                case 'f': from = optarg; break;
                case 'b': base = optarg; break;
                case 'c':
                        if (!spec_valid(optarg))
                                return usage("--component takes WRITER:LOGICAL_PATH, not '%s'", optarg);
                        if (n_specs == ELEMENTSOF(specs))
                                return usage("too many --component options%s", "");
                        specs[n_specs++] = optarg;
                        break;
                case OPT_FOR:
                        if (optarg[0] != '/')
                                return usage("--for takes an absolute path, not '%s'", optarg);
                        if (n_paths == ELEMENTSOF(paths))
                                return usage("at most 64 --for paths%s", "");
                        paths[n_paths++] = optarg;
                        break;
                case OPT_TYPE:
                        type = type_from_name(optarg);
                        if (type < 0 || type == VSS_BT_OTHER)
                                return usage("unknown backup type '%s' (full, copy, incremental, differential, log)", optarg);
                        break;
                case OPT_PROVIDER:
                        if (!*optarg)
                                return usage("--provider needs a name%s", "");
                        arg_provider = optarg;
                        break;
                case OPT_RETRIES: {
                        char *end;
                        errno = 0;
                        unsigned long n = strtoul(optarg, &end, 10);
                        if (!isdigit((unsigned char) optarg[0]) || *end || errno || n > 100)
                                return usage("--retries takes a number from 0 to 100, not '%s'", optarg);
                        arg_retries = (unsigned) n;
                        have_retries = true;
                        break;
                }
                case OPT_JSON: arg_json = true; break;
                case OPT_SOCKET: arg_socket = optarg; break;
                case 'h': help(); return EXIT_OK;
                default: return usage("bad arguments%s", "");
                }

        if (streq(cmd, "backup")) {
                if (!to || from || optind != argc)
                        return usage("backup takes --to DEST and no --from or other arguments%s", "");
                if (type < 0)
                        type = VSS_BT_FULL;
                bool needs_base = type == VSS_BT_INCREMENTAL || type == VSS_BT_DIFFERENTIAL;
                if (needs_base != (base != NULL))
                        return usage(needs_base ? "an %s backup needs --base BACKUP" : "--base is for incremental and "
                                                                                       "differential backups only%s",
                                     needs_base ? vss_backup_type_name(type) : "");
                return cmd_backup(to, specs, n_specs, type, base, paths, n_paths);
        }
        if (streq(cmd, "restore")) {
                if (!from || base || type >= 0 || n_paths || optind != argc || arg_provider || have_retries)
                        return usage("restore takes --from SOURCE, optionally --component and --to%s", "");
                if (to && to[0] == 0)
                        return usage("--to needs a directory%s", "");
                return cmd_restore(from, specs, n_specs, to);
        }
        if (to || from || base || n_specs || optind >= argc)
                return usage("exec takes [--for PATH]... [--type TYPE] -- COMMAND [ARGS]...%s", "");
        return cmd_exec(paths, n_paths, type < 0 ? VSS_BT_COPY : (vss_backup_type) type, argv + optind);
}
