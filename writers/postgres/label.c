/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-postgres: the base backup's label and WAL, kept at PostSnapshot and installed into the
 * restored data directory at PostRestore. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/common.h"
#include "writers/postgres/writer-postgres.h"

/* Copies src to dst (created with mode, owned by uid:gid), fsynced. Returns 0 or -errno. */
int copy_file(const char *src, const char *dst, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
        _cleanup_close_ int out = -1;
        char buf[1 << 16];
        ssize_t k;

        if (in < 0)
                return -errno;
        /* Root writes into directories the cluster's owner controls: never through a link. */
        out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        if (out < 0)
                return -errno;
        while ((k = read(in, buf, sizeof buf)) != 0) {
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                for (ssize_t done = 0; done < k;) {
                        ssize_t n = write(out, buf + done, (size_t) (k - done));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0)
                                return -errno;
                        done += n;
                }
        }
        if ((uid != (uid_t) -1 && fchown(out, uid, gid) < 0 && geteuid() == 0) || fchmod(out, mode) < 0 || fsync(out) < 0)
                return -errno;
        return 0;
}

int write_text(const char *path, const char *text, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
        size_t n = strlen(text);

        if (fd < 0)
                return -errno;
        if (write(fd, text, n) != (ssize_t) n)
                return errno ? -errno : -EIO;
        if ((uid != (uid_t) -1 && fchown(fd, uid, gid) < 0 && geteuid() == 0) || fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Whether name is a WAL segment file name: 24 hexadecimal digits. */
bool is_segment(const char *name) {
        return strlen(name) == 24 && strspn(name, "0123456789ABCDEF") == 24;
}

/* Saves the segments from first to last (inclusive, one timeline) of the live WAL directory into
 * dir: the copy may hold them only in part, and recovery needs them up to the backup's end. */
int save_wal(const char *wal, const char *dir, const char *first, const char *last, uid_t uid, gid_t gid, size_t *ret_n,
             char err[static MSG_MAX + 1]) {
        struct dirent **ents = NULL;
        int n, r = 0;
        size_t copied = 0;
        bool have_first = false, have_last = false;

        n = scandir(wal, &ents, NULL, alphasort);
        if (n < 0) {
                snprintf(err, MSG_MAX + 1, "cannot read %s: %m", wal);
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                const char *s = ents[i]->d_name;
                char src[PATH_MAX], dst[PATH_MAX];

                if (r < 0 || !is_segment(s) || strncmp(s, first, 8) != 0 || strcmp(s + 8, first + 8) < 0 ||
                    strcmp(s + 8, last + 8) > 0)
                        continue;
                snprintf(src, sizeof src, "%s/%s", wal, s);
                snprintf(dst, sizeof dst, "%s/%s", dir, s);
                r = copy_file(src, dst, 0600, uid, gid);
                if (r < 0)
                        snprintf(err, MSG_MAX + 1, "cannot save %s: %s", src, strerror(-r));
                have_first = have_first || streq(s, first);
                have_last = have_last || streq(s, last);
                copied++;
        }
        for (int i = 0; i < n; i++)
                free(ents[i]);
        free(ents);
        if (r >= 0 && (!have_first || !have_last)) {
                snprintf(err, MSG_MAX + 1,
                         "WAL segment %s was removed before it could be saved (raise wal_keep_size or set up WAL archiving)",
                         have_first ? last : first);
                r = -ENOENT;
        }
        *ret_n = copied;
        return r;
}

int mkdir_p_private(const char *path) {
        char buf[PATH_MAX];

        snprintf(buf, sizeof buf, "%s", path);
        for (char *p = buf + 1; *p; p++)
                if (*p == '/') {
                        *p = '\0';
                        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        *p = '/';
                }
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* Installs the backup_label, tablespace_map and WAL segments a set's label directory holds into
 * the restored data directory: for backups that did not store them with the cluster's files. */
int install_label(const char *dir, const char *target, uid_t uid, gid_t gid, char err[static MSG_MAX + 1]) {
        char src[PATH_MAX + 32], dst[PATH_MAX + 64], wal[PATH_MAX + 16];
        struct dirent **ents = NULL;
        int n, r = 0;

        snprintf(src, sizeof src, "%s/backup_label", dir);
        snprintf(dst, sizeof dst, "%s/backup_label", target);
        if ((r = copy_file(src, dst, 0600, uid, gid)) < 0) {
                snprintf(err, MSG_MAX + 1, "cannot install %s as %s: %s", src, dst, strerror(-r));
                return r;
        }
        snprintf(src, sizeof src, "%s/tablespace_map", dir);
        snprintf(dst, sizeof dst, "%s/tablespace_map", target);
        if (access(src, F_OK) == 0 && (r = copy_file(src, dst, 0600, uid, gid)) < 0) {
                snprintf(err, MSG_MAX + 1, "cannot install %s as %s: %s", src, dst, strerror(-r));
                return r;
        }
        /* pg_wal may lead elsewhere (a WAL disk): only into a directory of the cluster's owner,
         * who could otherwise point it at any directory and have root write segments there. */
        char real[PATH_MAX];
        struct stat st;
        snprintf(dst, sizeof dst, "%s/pg_wal", target);
        if (!realpath(dst, real) || stat(real, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid) {
                snprintf(err, MSG_MAX + 1, "%s is not a directory of the cluster's owner (uid %u): no WAL installed "
                         "there", dst, (unsigned) uid);
                return -EPERM;
        }
        snprintf(wal, sizeof wal, "%s/pg_wal", dir);
        n = scandir(wal, &ents, NULL, alphasort);
        if (n < 0) {
                snprintf(err, MSG_MAX + 1, "cannot read %s: %m", wal);
                return -errno;
        }
        /* The saved segments are newer than the copied ones, never shorter: they replace them. */
        for (int i = 0; i < n; i++) {
                if (r >= 0 && is_segment(ents[i]->d_name)) {
                        snprintf(src, sizeof src, "%s/%s", wal, ents[i]->d_name);
                        snprintf(dst, sizeof dst, "%s/%s", real, ents[i]->d_name);
                        if ((r = copy_file(src, dst, 0600, uid, gid)) < 0)
                                snprintf(err, MSG_MAX + 1, "cannot install %s as %s: %s", src, dst, strerror(-r));
                }
                free(ents[i]);
        }
        free(ents);
        return r;
}

int relocate_map(const vss_bc_component *c, const char *target, uid_t uid, gid_t gid, char err[static MSG_MAX + 1]) {
        char path[PATH_MAX + 32];
        _cleanup_fclose_ FILE *in = NULL;
        _cleanup_free_ char *line = NULL, *text = NULL;
        size_t n = 0, size = 0;
        bool changed = false;
        FILE *out;
        int fd, r;

        snprintf(path, sizeof path, "%s/tablespace_map", target);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        in = fd >= 0 ? fdopen(fd, "re") : NULL;
        if (!in) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                if (r == -ENOENT)
                        return 0;
                snprintf(err, MSG_MAX + 1, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        out = open_memstream(&text, &size);
        if (!out) {
                snprintf(err, MSG_MAX + 1, "out of memory");
                return -ENOMEM;
        }
        while (getline(&line, &n, in) > 0) {
                char moved[PATH_MAX];
                size_t k = strcspn(line, " ");

                line[strcspn(line, "\n")] = '\0';
                if (line[k] != ' ') {
                        fprintf(out, "%s\n", line);
                        continue;
                }
                restored_path(c, line + k + 1, moved, sizeof moved);
                changed = changed || !streq(moved, line + k + 1);
                fprintf(out, "%.*s %s\n", (int) k, line, moved);
        }
        if (fclose(out) != 0) {
                snprintf(err, MSG_MAX + 1, "out of memory");
                return -ENOMEM;
        }
        if (!changed)
                return 0;
        /* Recovery makes pg_tblspc's links from the map: it must name where the tablespaces are now. */
        r = write_text(path, text, 0600, uid, gid);
        if (r < 0)
                snprintf(err, MSG_MAX + 1, "cannot write %s: %s", path, strerror(-r));
        else
                log_msg("post-restore: %s names the restored tablespace locations", path);
        return r;
}
