/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-postgres: where the cluster's files are, and where a restore put them. */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

void layout_clear(Layout *l) {
        free(l->data_dir);
        free(l->wal_dir);
        for (size_t i = 0; i < l->n_tablespaces; i++)
                free(l->tablespaces[i]);
        free(l->tablespaces);
        *l = (Layout) {};
}

bool path_within(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0' || (n > 0 && dir[n - 1] == '/'));
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
        for (size_t i = 0; i < c->n_new_targets; i++)
                if (path_within(data, c->new_targets[i].path)) {
                        snprintf(buf, size, "%s%s", c->new_targets[i].destination, data + strlen(c->new_targets[i].path));
                        return;
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
