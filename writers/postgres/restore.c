/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-postgres: the events of a restore. PreRestore refuses while the server runs;
 * PostRestore readies the restored data directory that holds the set's marker: links and
 * tablespace_map (layout.c, label.c), the label and WAL of an older backup (label.c). */

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "lib/basic/log.h"
#include "lib/basic/time-util.h"
#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

/* Whether the cluster's server is up: it answers (or refuses) connections, or the postmaster of
 * the data directory's postmaster.pid is alive. */
static bool server_running(const char *data_dir, char why[static 256]) {
        const char *const keys[] = { "connect_timeout", "dbname", NULL };
        const char *const values[] = { "5", arg_dsn, NULL };
        PGPing ping = PQpingParams(keys, values, 1);
        char path[PATH_MAX];
        _cleanup_fclose_ FILE *f = NULL;
        long pid = 0;

        if (ping == PQPING_OK || ping == PQPING_REJECT) {
                snprintf(why, 256, "it %s connections", ping == PQPING_OK ? "accepts" : "refuses");
                return true;
        }
        if (!data_dir)
                return false;
        snprintf(path, sizeof path, "%s/postmaster.pid", data_dir);
        f = fopen(path, "re");
        if (f && fscanf(f, "%ld", &pid) == 1 && pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM)) {
                snprintf(why, 256, "its postmaster (pid %ld) is alive", pid);
                return true;
        }
        return false;
}

bool on_pre_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_monotonic_usec();
        char why[256] = "";

        if (server_running(have_layout ? layout.data_dir : NULL, why)) {
                static const char msg[] = "PostgreSQL is running; stop it before restoring";
                for (size_t i = 0; i < info->n_components; i++)
                        (void) vss_writer_set_pre_restore_failure_msg(w, "", info->components[i], msg);
                log_msg("pre-restore: %s", why);
                return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "%s", msg);
        }
        log_msg("pre-restore -> ok (%.1f ms): the server is stopped", (double) (now_monotonic_usec() - t0) / 1000.0);
        return true;
}

/* Reads "key:value" from a backup stamp: value up to the next ';', or to the end for "data"
 * (a path may hold ';'). */
static bool stamp_get(const char *stamp, const char *key, char *buf, size_t size) {
        size_t kl = strlen(key);

        for (const char *p = stamp; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
                const char *s = p;
                if (strncmp(s, "crash-consistent:", 17) == 0)
                        s += 17;
                else if (strncmp(s, "backup-label:", 13) == 0)
                        s += 13;
                if (strncmp(s, key, kl) != 0 || s[kl] != ':')
                        continue;
                s += kl + 1;
                snprintf(buf, size, "%.*s", (int) (streq(key, "data") ? strlen(s) : strcspn(s, ";")), s);
                return true;
        }
        return false;
}

bool on_post_restore(vss_writer *w, const vss_event_info *info, void *userdata) {
        uint64_t t0 = now_monotonic_usec();

        for (size_t i = 0; i < info->n_components; i++) {
                const vss_bc_component *c = vss_writer_get_component(w, "", info->components[i]);
                char set[VSS_ID_STRING_MAX + 8] = "", data[PATH_MAX] = "", target[PATH_MAX], path[PATH_MAX + 32];
                char seen[VSS_ID_STRING_MAX + 8] = "", err[MSG_MAX + 1] = "", src[PATH_MAX + 64];
                _cleanup_fclose_ FILE *f = NULL;
                bool label, stored = false;
                struct stat st;

                if (!c || c->file_restore_status != VSS_RS_ALL) {
                        log_msg("post-restore: %s: files not restored (status %d), nothing to do", info->components[i],
                                c ? (int) c->file_restore_status : -1);
                        continue;
                }
                vss_id set_id;
                /* The set names a directory below the label directory: an id, nothing else ("../"). */
                if (!c->backup_stamp || !stamp_get(c->backup_stamp, "set", set, sizeof set) ||
                    vss_id_from_string(set, &set_id) < 0 ||
                    !stamp_get(c->backup_stamp, "data", data, sizeof data) || data[0] != '/')
                        return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0,
                                    "post-restore: the backup stamp '%s' does not name the snapshot set and data directory",
                                    strempty(c->backup_stamp));
                label = strncmp(c->backup_stamp, "crash-consistent:", 17) != 0;
                restored_path(c, data, target, sizeof target);

                /* Only a directory holding this set's copy is touched: the files may have gone
                 * elsewhere (vssbackup restore --to), and then the one here is someone else's. */
                snprintf(path, sizeof path, "%s/" MARKER, target);
                f = fopen(path, "re");
                if (!f || !fgets(seen, sizeof seen, f) || !streq(seen, set)) {
                        /* A backup holding its label and WAL is whole wherever it went. */
                        if (!label || c->n_writer_files > 0) {
                                log_msg("post-restore -> ok: no copy of set %s at %s; nothing to do", set, target);
                                continue;
                        }
                        char msg[MSG_MAX + 1];
                        snprintf(msg, sizeof msg,
                                 "the restored data directory of set %s is not at %s: before starting PostgreSQL on it, "
                                 "copy %s/%s/backup_label (and tablespace_map) into it and %s/%s/pg_wal/* into its pg_wal",
                                 set, target, arg_label_dir, set, arg_label_dir, set);
                        (void) vss_writer_set_post_restore_failure_msg(w, "", info->components[i], msg);
                        return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-restore: %s", msg);
                }
                if (stat(target, &st) < 0)
                        return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-restore: cannot stat %s: %m", target);
                /* The backup holds backup_label, tablespace_map and the WAL up to the backup's end
                 * among the cluster's files; one made before it did has them in DIR/SET only. */
                snprintf(path, sizeof path, "%s/backup_label", target);
                snprintf(src, sizeof src, "%s/%s", arg_label_dir, set);
                stored = access(path, F_OK) == 0;
                /* Links first: old backups' WAL goes into pg_wal, which may link to the restored
                 * WAL directory; recovery recreates pg_tblspc from the map. */
                if (relocate_links(c, target, st.st_uid, st.st_gid, err) < 0 ||
                    (label && !stored && install_label(src, target, st.st_uid, st.st_gid, err) < 0) ||
                    relocate_map(c, target, st.st_uid, st.st_gid, err) < 0) {
                        (void) vss_writer_set_post_restore_failure_msg(w, "", info->components[i], err);
                        return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "post-restore: %s", err);
                }
                /* Left by a server that ran when the copy was cut; excluded, but an older backup may hold one. */
                snprintf(path, sizeof path, "%s/postmaster.pid", target);
                if (unlink(path) < 0 && errno != ENOENT)
                        log_msg("post-restore: cannot remove %s: %m", path);
                snprintf(path, sizeof path, "%s/" MARKER, target);
                if (unlink(path) < 0)
                        log_msg("post-restore: cannot remove %s: %m", path);
                log_msg("post-restore -> ok (%.1f ms): %s ready for %s; start PostgreSQL on it", (double) (now_monotonic_usec() - t0) / 1000.0,
                        target, !label ? "crash recovery" : stored ? "recovery from the base backup (backup_label and WAL restored with it)"
                                                                   : "recovery from the base backup (backup_label and WAL installed)");
        }
        return true;
}
