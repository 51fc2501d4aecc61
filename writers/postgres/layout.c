/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-postgres: where the cluster's files are, and where a restore put them. */

#include <dirent.h>
#include <libmount.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "lib/basic/log.h"
#include "lib/basic/time-util.h"
#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

#define BTRFS_MAGIC 0x9123683EL

Layout layout;
bool have_layout;

void layout_clear(Layout *l) {
        free(l->data_dir);
        free(l->wal_dir);
        for (size_t i = 0; i < l->n_tablespaces; i++)
                free(l->tablespaces[i]);
        free(l->tablespaces);
        *l = (Layout) {};
}

int layout_add_tablespace(Layout *l, const char *path) {
        char **a = realloc(l->tablespaces, (l->n_tablespaces + 1) * sizeof(char *));
        if (!a)
                return -ENOMEM;
        l->tablespaces = a;
        if (!(a[l->n_tablespaces] = strdup(path)))
                return -ENOMEM;
        l->n_tablespaces++;
        return 0;
}

/* Restores happen while the server is down, and a writer that fails Identify takes no part. */
void layout_save(const Layout *l, const char *dir) {
        char path[PATH_MAX], tmp[PATH_MAX + 8];
        FILE *f;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                log_msg("cannot create %s: %m", dir);
                return;
        }
        snprintf(path, sizeof path, "%s/layout", dir);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        f = fopen(tmp, "we");
        if (!f) {
                log_msg("cannot write %s: %m", tmp);
                return;
        }
        fprintf(f, "data %s\n", l->data_dir);
        if (l->wal_dir)
                fprintf(f, "wal %s\n", l->wal_dir);
        for (size_t i = 0; i < l->n_tablespaces; i++)
                fprintf(f, "tablespace %s\n", l->tablespaces[i]);
        if (fclose(f) != 0 || rename(tmp, path) < 0) {
                log_msg("cannot write %s: %m", path);
                unlink(tmp);
        }
}

bool layout_load(Layout *l, const char *dir) {
        char path[PATH_MAX];
        _cleanup_free_ char *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0;

        snprintf(path, sizeof path, "%s/layout", dir);
        f = fopen(path, "re");
        if (!f)
                return false;
        while (getline(&line, &n, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, "data ", 5) == 0 && !l->data_dir)
                        l->data_dir = strdup(line + 5);
                else if (strncmp(line, "wal ", 4) == 0 && !l->wal_dir)
                        l->wal_dir = strdup(line + 4);
                else if (strncmp(line, "tablespace ", 11) == 0)
                        (void) layout_add_tablespace(l, line + 11);
        }
        if (!l->data_dir || l->data_dir[0] != '/') {
                layout_clear(l);
                return false;
        }
        return true;
}

void restored_path(const vss_bc_component *c, const char *data, char *buf, size_t size) {
        size_t n = strlen(data);
        for (size_t i = 0; i < c->n_new_targets; i++)
                if (path_within(data, c->new_targets[i].path)) {
                        snprintf(buf, size, "%s%s", c->new_targets[i].destination, data + strlen(c->new_targets[i].path));
                        return;
                }
        /* A tablespace's file group is its version directory (LOCATION/PG_15_...): the location
         * went where that directory's parent went. */
        for (size_t i = 0; i < c->n_new_targets; i++) {
                const char *p = c->new_targets[i].path, *d = c->new_targets[i].destination;
                if (strncmp(p, data, n) != 0 || p[n] != '/' || strchr(p + n + 1, '/'))
                        continue;
                size_t dl = strlen(d), nl = strlen(p + n);
                if (dl > nl && streq(d + dl - nl, p + n)) {
                        snprintf(buf, size, "%.*s", (int) (dl - nl), d);
                        return;
                }
        }
        snprintf(buf, size, "%s", data);
}


/* Replaces the symbolic link at path when its target was restored elsewhere. */
static int relocate_link(const vss_bc_component *c, const char *path, uid_t uid, gid_t gid, char err[static MSG_MAX + 1]) {
        char target[PATH_MAX], moved[PATH_MAX], tmp[PATH_MAX + 16];
        ssize_t n = readlink(path, target, sizeof target - 1);

        if (n < 0) {
                snprintf(err, MSG_MAX + 1, "cannot read the link %s: %m", path);
                return -errno;
        }
        target[n] = '\0';
        restored_path(c, target, moved, sizeof moved);
        if (streq(moved, target))
                return 0;
        /* A new link renamed over the old one: the link is never missing. */
        snprintf(tmp, sizeof tmp, "%s.openvss-tmp", path);
        (void) unlink(tmp);
        if (symlink(moved, tmp) < 0 || (lchown(tmp, uid, gid) < 0 && geteuid() == 0) || rename(tmp, path) < 0) {
                int r = -errno;
                snprintf(err, MSG_MAX + 1, "cannot point %s at %s: %s", path, moved, strerror(-r));
                (void) unlink(tmp);
                return r;
        }
        log_msg("post-restore: %s now points at %s (was %s)", path, moved, target);
        return 0;
}

int relocate_links(const vss_bc_component *c, const char *data_dir, uid_t uid, gid_t gid, char err[static MSG_MAX + 1]) {
        char path[PATH_MAX + 300];
        struct stat st;
        DIR *d;
        struct dirent *e;
        int r = 0;

        snprintf(path, sizeof path, "%s/pg_wal", data_dir);
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode) && (r = relocate_link(c, path, uid, gid, err)) < 0)
                return r;
        snprintf(path, sizeof path, "%s/pg_tblspc", data_dir);
        d = opendir(path);
        if (!d)
                return 0; /* none (PostgreSQL makes it when needed) */
        while (r >= 0 && (e = readdir(d))) {
                snprintf(path, sizeof path, "%s/pg_tblspc/%s", data_dir, e->d_name);
                if (e->d_name[0] != '.' && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
                        r = relocate_link(c, path, uid, gid, err);
        }
        closedir(d);
        return r;
}

/* LOCATION/PG_<major>_<catalog version>, the cluster's own directory in a tablespace location,
 * or NULL when there is none to be found (then the location is taken whole, as before). */
static char *version_dir(const char *loc, int major) {
        char prefix[32];
        char *found = NULL;
        snprintf(prefix, sizeof prefix, "PG_%d_", major);
        DIR *d = opendir(loc);
        for (struct dirent *e; d && !found && (e = readdir(d));)
                if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && asprintf(&found, "%s/%s", loc, e->d_name) < 0)
                        found = NULL;
        if (d)
                closedir(d);
        return found;
}

/* Configuration files kept outside the data directory (Debian's /etc/postgresql/15/main) are not
 * the cluster's files: not in the component. Said once, so the admin backs them up with the
 * system's configuration. */
static void note_config_outside(PGconn *c, const char *data_dir) {
        static bool noted;
        static const char *const settings[] = { "config_file", "hba_file", "ident_file" };
        char outside[3 * PATH_MAX] = "";
        if (noted)
                return;
        noted = true;
        for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                char sql[64];
                snprintf(sql, sizeof(sql), "SHOW %s", settings[i]);
                PGresult *res = PQexec(c, sql);
                if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                    !path_within(PQgetvalue(res, 0, 0), data_dir)) {
                        size_t len = strlen(outside);
                        snprintf(outside + len, sizeof(outside) - len, "%s%s", len ? ", " : "", PQgetvalue(res, 0, 0));
                }
                PQclear(res);
        }
        if (outside[0])
                log_msg("identify: %s: outside the data directory, not in the component; back them up with the "
                        "system's configuration (a restored cluster needs them)", outside);
}

/* Asks the server where its files are. */
bool layout_query(vss_writer *w, Layout *l) {
        _cleanup_free_ char *wal_link = NULL;
        char target[PATH_MAX];
        PGconn *c = pg_connect();
        PGresult *res = NULL;
        bool ok = false;
        struct stat st;

        if (!c || PQstatus(c) != CONNECTION_OK) {
                fail_connect(w, c, "identify");
                PQfinish(c);
                return false;
        }
        res = query(w, c, "identify: SHOW data_directory", "SHOW data_directory");
        if (!res)
                goto out;
        if (PQntuples(res) != 1 || !realpath(PQgetvalue(res, 0, 0), target)) {
                writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "identify: cannot resolve the data directory %s: %m",
                     PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "(none)");
                goto out;
        }
        l->data_dir = strdup(target);
        PQclear(res);
        if (l->data_dir)
                note_config_outside(c, l->data_dir);
        /* A symlinked pg_wal (initdb --waldir) lives elsewhere and is copied as its own group. */
        if (!l->data_dir || asprintf(&wal_link, "%s/pg_wal", l->data_dir) < 0) {
                writer_fail(w, VSS_E_WRITERERROR_OUTOFRESOURCES, 0, "identify: out of memory");
                res = NULL;
                goto out;
        }
        if (lstat(wal_link, &st) == 0 && S_ISLNK(st.st_mode) && realpath(wal_link, target) &&
            !path_within(target, l->data_dir) && !(l->wal_dir = strdup(target))) {
                writer_fail(w, VSS_E_WRITERERROR_OUTOFRESOURCES, 0, "identify: out of memory");
                res = NULL;
                goto out;
        }
        res = query(w, c, "identify: server_version_num", "SHOW server_version_num");
        if (!res)
                goto out;
        int major = atoi(PQgetvalue(res, 0, 0)) / 10000;
        PQclear(res);
        res = query(w, c, "identify: listing tablespaces",
                    "SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace "
                    "WHERE pg_tablespace_location(oid) <> '' ORDER BY spcname");
        if (!res)
                goto out;
        for (int i = 0; i < PQntuples(res); i++) {
                const char *loc = PQgetvalue(res, i, 1);
                /* Inside the data directory (PostgreSQL warns about that): already covered. */
                if (path_within(loc, l->data_dir))
                        continue;
                /* Only this cluster's version directory of it (PG_15_202209061): a location may
                 * hold other major versions' clusters, which are not this one's to back up or
                 * prune at a restore. */
                _cleanup_free_ char *own = version_dir(loc, major);
                if (layout_add_tablespace(l, own ? own : loc) < 0) {
                        writer_fail(w, VSS_E_WRITERERROR_OUTOFRESOURCES, 0, "identify: out of memory");
                        goto out;
                }
        }
        ok = true;
out:
        PQclear(res);
        PQfinish(c);
        if (!ok)
                layout_clear(l);
        return ok;
}

/* A path of the cluster (WAL directory, tablespace) on the data directory's filesystem, and below
 * the data directory itself (resolved): a requester takes the data directory as one volume, so one
 * snapshot holds the path with it. Outside it, the path is a volume of its own, cut apart. */
static bool under_data_dir(const char *data_dir, const char *path, dev_t dev) {
        struct stat st;
        _cleanup_free_ char *d = realpath(data_dir, NULL), *p = realpath(path, NULL);
        return stat(path, &st) == 0 && st.st_dev == dev && d && p && path_within(p, d);
}

/* Whether a filesystem is mounted strictly below dir (resolved): its shadow holds only an empty
 * directory there (pg_wal mounted from another disk, say). Unreadable table: assume so. */
static bool mount_below(const char *dir) {
        _cleanup_free_ char *d = realpath(dir, NULL);
        /* util-linux's libmount reads the table (and its escapes), as everywhere in OpenVSS. */
        struct libmnt_table *tb = d ? mnt_new_table_from_file("/proc/self/mountinfo") : NULL;
        struct libmnt_iter *it = tb ? mnt_new_iter(MNT_ITER_FORWARD) : NULL;
        struct libmnt_fs *fs;
        bool below = !it;
        while (!below && mnt_table_next_fs(tb, it, &fs) == 0) {
                const char *target = mnt_fs_get_target(fs);
                below = target && !streq(target, d) && path_within(target, d);
        }
        mnt_free_iter(it);
        mnt_unref_table(tb);
        return below;
}

/* Whether a directory of dir (one level), or of dir/base (a database's), is on another device
 * than dev: a nested btrfs subvolume, which no mount table shows and the data directory's
 * snapshot holds as an empty directory. Unreadable: assume so. */
static bool subvolume_below(const char *dir, dev_t dev, bool descend) {
        DIR *d = opendir(dir);
        struct dirent *e;
        bool below = !d;
        while (!below && (e = readdir(d))) {
                struct stat st;
                if ((e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) || streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        below = true;
                else if (!S_ISDIR(st.st_mode))
                        continue;
                else if (st.st_dev != dev)
                        below = true;
                else if (descend && streq(e->d_name, "base")) {
                        char sub[PATH_MAX];
                        snprintf(sub, sizeof sub, "%s/base", dir);
                        below = subvolume_below(sub, dev, false);
                }
        }
        if (d)
                closedir(d);
        return below;
}

/* Whether one snapshot of the data directory holds the whole cluster at one instant: everything
 * on one btrfs subvolume (the btrfs provider snapshots a subvolume atomically; each subvolume has
 * its own st_dev) and below the data directory. A WAL directory or tablespace outside it is a
 * volume of its own in the set, snapshotted apart from the data directory, and the file provider
 * copies file by file while a running server writes: such copies are usable only as a base
 * backup. */
bool cluster_on_one_device(const Layout *l, bool *btrfs) {
        struct stat st;
        struct statfs sf;

        if (stat(l->data_dir, &st) < 0 || statfs(l->data_dir, &sf) < 0)
                return false;
        *btrfs = (unsigned long) sf.f_type == (unsigned long) BTRFS_MAGIC;
        if (l->wal_dir && !under_data_dir(l->data_dir, l->wal_dir, st.st_dev))
                return false;
        /* Nothing mounted below it either: pg_wal (or a relation directory) on another filesystem
         * is held by the data directory's snapshot as an empty directory. */
        if (mount_below(l->data_dir) || subvolume_below(l->data_dir, st.st_dev, true))
                return false;
        for (size_t i = 0; i < l->n_tablespaces; i++)
                if (!under_data_dir(l->data_dir, l->tablespaces[i], st.st_dev))
                        return false;
        return true;
}

/* Identify: the layout as the server says it is now, else as it was last seen (DIR/layout). */
bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata) {
        uint64_t t0 = now_monotonic_usec();
        Layout l = {};
        char caption[PATH_MAX + 32], sub[PATH_MAX + 16];
        int r;

        if (layout_query(w, &l)) {
                layout_save(&l, arg_label_dir);
                layout_clear(&layout);
                layout = l;
                have_layout = true;
        } else if (have_layout || layout_load(&layout, arg_label_dir)) {
                /* Down for a restore, most likely: publish the layout last seen. */
                log_msg("identify: server unreachable; publishing the layout last seen (data directory %s)",
                        layout.data_dir);
                have_layout = true;
                (void) vss_writer_set_failure(w, VSS_S_OK, 0, NULL); /* the unreachable server is no failure here */
        } else
                return false; /* the failure query()/fail_connect() set */

        snprintf(caption, sizeof caption, "PostgreSQL cluster %s", layout.data_dir);
        r = vss_metadata_add_component(md, "", COMPONENT, caption, true, true);
        if (r >= 0)
                r = vss_metadata_add_files(md, "", COMPONENT, layout.data_dir, "*", true);
        if (r >= 0 && layout.wal_dir)
                r = vss_metadata_add_files(md, "", COMPONENT, layout.wal_dir, "*", true);
        for (size_t i = 0; r >= 0 && i < layout.n_tablespaces; i++)
                r = vss_metadata_add_files(md, "", COMPONENT, layout.tablespaces[i], "*", true);
        /* Runtime files: a copied postmaster.pid would stop the restored server from starting. */
        if (r >= 0)
                r = vss_metadata_add_exclude_files(md, layout.data_dir, "postmaster.pid", false);
        if (r >= 0)
                r = vss_metadata_add_exclude_files(md, layout.data_dir, "postmaster.opts", false);
        snprintf(sub, sizeof sub, "%s/pg_stat_tmp", layout.data_dir);
        if (r >= 0)
                r = vss_metadata_add_exclude_files(md, sub, "*", true);
        if (r >= 0)
                r = vss_metadata_set_restore_method(md, VSS_RME_STOP_RESTORE_START, "postgresql", false);
        if (r >= 0)
                r = vss_metadata_set_writer_restore(md, VSS_WRE_ALWAYS);
        if (r < 0)
                return writer_fail(w, VSS_E_WRITERERROR_NONRETRYABLE, 0, "identify: cannot build metadata: %s", vss_strerror(r));
        log_msg("identify -> ok (%.1f ms): data %s, wal %s, %zu tablespace(s)", (double) (now_monotonic_usec() - t0) / 1000.0,
                layout.data_dir, layout.wal_dir ? layout.wal_dir : "inside", layout.n_tablespaces);
        return true;
}
