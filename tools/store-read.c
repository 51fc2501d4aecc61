/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Reading a backup: opening it (an archive is read through once and checked), its documents, and
 * the Reader that store-restore.c walks the stored files with. */

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/basic/fd-util.h"
#include "lib/common.h"
#include "tools/beneath.h"
#include "tools/store-internal.h"

/* Root reading a directory store another user could change takes that user's rights on files
 * (fsuid and fsgid; no supplementary groups) for each read: what a symlink swapped in mid-read
 * leads to is read only if that user could read it anyway. Root's come back after each read
 * (its writes, the restore, need them). */
static void as_reader(const Store *s) {
        if (s->read_uid >= 0) {
                (void) setfsgid(s->read_gid);
                (void) setfsuid((uid_t) s->read_uid);
        }
}

static void as_self(const Store *s) {
        if (s->read_uid >= 0) {
                (void) setfsuid(geteuid());
                (void) setfsgid(getegid());
        }
}

/* Whose rights a directory store is read with. Not root: ours, which read nothing we could not.
 * A user's (the top directory theirs): that user's. Root's: ours, when nobody else may change
 * anything in it (the top, openvss/ and data/ root's and written by nobody else, data/ reached by
 * nobody else: the stored files keep their owners); otherwise refused. */
static int dir_store_reader(Store *s, char **ret_error) {
        struct stat top, st;
        if (geteuid() != 0)
                return 0;
        if (fstat(s->src_fd, &top) < 0)
                return fail(ret_error, -errno, "%s: %m", s->path);
        if (top.st_uid != 0) {
                struct passwd *pw = getpwuid(top.st_uid);
                s->read_uid = top.st_uid;
                s->read_gid = pw ? pw->pw_gid : 65534; /* unknown: nogroup, never a group of ours */
                if (setgroups(0, NULL) < 0)
                        return fail(ret_error, -errno, "cannot drop supplementary groups to read %s: %m", s->path);
                as_reader(s);
                bool taken = setfsuid((uid_t) -1) == (int) top.st_uid; /* says the fsuid now */
                as_self(s);
                return taken ? 0 : fail(ret_error, -EPERM, "%s: cannot take the rights of uid %u, whose it is, to "
                                        "read it", s->path, (unsigned) top.st_uid);
        }
        static const struct { const char *name; mode_t others; } parts[] = {
                { ".", S_IWGRP | S_IWOTH }, { "openvss", S_IWGRP | S_IWOTH }, { "data", 077 },
        };
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                if (fstatat(s->src_fd, parts[i].name, &st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return fail(ret_error, -errno, "%s/%s: %m", s->path, parts[i].name);
                }
                if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & parts[i].others))
                        return fail(ret_error, -EPERM, "%s/%s: %s (mode %04o, uid %u): root's backup, but others may "
                                    "change it; restore from a backup only root can change (chmod 700 %s/data)",
                                    s->path, parts[i].name, S_ISDIR(st.st_mode) ? "open to others" : "not a directory",
                                    (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid, s->path);
        }
        return 0;
}

int reader_data_block(Reader *r, const void **buf, size_t *len, la_int64_t *off) {
        as_reader(r->s);
        int k = archive_read_data_block(r->a, buf, len, off);
        as_self(r->s);
        return k;
}

/* "data/a/b" (or "data/a/b/") to "/a/b" in buf: 1; "data" or "data/": 0 (the root, nothing to do);
 * anything unsafe or invalid: -EBADMSG. */
static int data_name_to_path(const char *name, char buf[static PATH_MAX]) {
        size_t n;

        if (streq(name, "data") || streq(name, DATA_PREFIX))
                return 0;
        if (!startswith(name, DATA_PREFIX))
                return -EBADMSG;
        n = strnlen(name, PATH_MAX + 8) - strlen(DATA_PREFIX);
        if (n + 1 >= PATH_MAX)
                return -EBADMSG;
        buf[0] = '/';
        memcpy(buf + 1, name + strlen(DATA_PREFIX), n + 1);
        if (n > 1 && buf[n] == '/')
                buf[n] = 0;
        return path_is_normalized(buf) ? 1 : -EBADMSG;
}

static bool file_exists_at(const char *dir, const char *name) {
        _cleanup_free_ char *p = NULL;
        struct stat st;

        return asprintf(&p, "%s/%s", dir, name) >= 0 && lstat(p, &st) >= 0;
}

/* Reads dir/name, a regular file of at most max bytes, NUL-terminated; messages name it as
 * s->path/openvss/name (dir is the path it is read through). */
static int read_file_at(const Store *s, const char *dir, const char *name, size_t max, const char *what, char **ret,
                        size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *at = NULL, *p = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        size_t len = 0;
        int r;

        if (asprintf(&at, "%s/%s", dir, name) < 0 || asprintf(&p, "%s/openvss/%s", s->path, name) < 0)
                return fail_oom(ret_error);
        as_reader(s);
        fd = open(at, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int e = errno;
        as_self(s);
        if (fd < 0)
                return fail(ret_error, -e, "%s: %s", p, strerror(e));
        if (fstat(fd, &st) < 0)
                return fail(ret_error, -errno, "%s: %m", p);
        if (!S_ISREG(st.st_mode))
                return fail(ret_error, -EBADMSG, "%s: not a regular file", p);
        if ((uint64_t) st.st_size > max)
                return fail(ret_error, -EFBIG, "%s is larger than %zu bytes", what, max);
        /* max + 1: read_all() refuses a file of exactly its max bytes. */
        r = read_all(fd, max + 1, &buf, &len);
        if (r == -EFBIG || (r >= 0 && len > max)) /* grew since */
                return fail(ret_error, -EFBIG, "%s is larger than %zu bytes", what, max);
        if (r < 0)
                return fail(ret_error, r, "reading %s: %s", p, strerror(-r));
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

/* The data of the current archive entry, at most max bytes, NUL-terminated. */
static int read_entry_data(struct archive *a, struct archive_entry *e, size_t max, const char *what, char **ret,
                           size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        int64_t size = archive_entry_size(e);
        size_t got = 0;

        if (!archive_entry_size_is_set(e) || size < 0)
                return fail(ret_error, -EBADMSG, "%s has no size in the archive", what);
        if ((uint64_t) size > max)
                return fail(ret_error, -EFBIG, "%s is larger than %zu bytes", what, max);
        buf = malloc((size_t) size + 1);
        if (!buf)
                return fail_oom(ret_error);
        while (got < (size_t) size) {
                la_ssize_t k = archive_read_data(a, buf + got, (size_t) size - got);
                if (k < 0)
                        return fail_archive(ret_error, a, "reading", what);
                if (k == 0)
                        return fail(ret_error, -EBADMSG, "%s is truncated", what);
                got += (size_t) k;
        }
        buf[got] = 0;
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}


void reader_close(Reader *r) {
        if (r->a)
                archive_read_free(r->a);
        if (r->e)
                archive_entry_free(r->e);
        if (r->links)
                archive_entry_linkresolver_free(r->links);
        *r = (Reader) {};
}

int reader_open(Store *s, Reader *r, char **ret_error) {
        _cleanup_free_ char *data = NULL;

        *r = (Reader) { .s = s };
        if (s->is_dir) {
                r->a = archive_read_disk_new();
                r->e = archive_entry_new();
                r->links = archive_entry_linkresolver_new();
                data = path_join(s->src, "data");
                if (!r->a || !r->e || !r->links || !data)
                        return fail_oom(ret_error);
                archive_entry_linkresolver_set_strategy(r->links, ARCHIVE_FORMAT_TAR);
                /* Reading the stored copies must not change their atimes, which are the data. Not
                 * in a store read with a user's rights: O_NOATIME needs the file's owner, and a
                 * user's store is that user's to keep. */
                if (s->read_uid < 0)
                        archive_read_disk_set_behavior(r->a, ARCHIVE_READDISK_RESTORE_ATIME);
                as_reader(s);
                int k = archive_read_disk_open(r->a, data);
                as_self(s);
                if (k != ARCHIVE_OK)
                        return fail_archive(ret_error, r->a, "opening the data of", s->path);
                r->skip = strlen(s->src) + 1;
                return 0;
        }

        /* Only tar, and only the compressions we write: nothing here runs external programs. */
        r->a = archive_read_new();
        if (!r->a)
                return fail_oom(ret_error);
        archive_read_support_format_tar(r->a);
        archive_read_support_filter_gzip(r->a);
        archive_read_support_filter_xz(r->a);
        archive_read_support_filter_zstd(r->a);
        if (archive_read_open_filename(r->a, s->src, 64 * 1024) != ARCHIVE_OK)
                return fail_archive(ret_error, r->a, "opening", s->path);
        return 0;
}

/* The next entry: 1 (*ret_kind says which; r->name holds the original path or document name,
 * r->target a hard link's target), 0 at the end. Names are checked here, for every reader. */
int reader_next(Reader *r, struct archive_entry **ret, EntryKind *ret_kind, char **ret_error) {
        for (;;) {
                struct archive_entry *e = r->e, *spare = NULL;
                const char *name, *hl, *sl;
                int k;

                if (r->s->is_dir) {
                        archive_entry_clear(e);
                        as_reader(r->s);
                        k = archive_read_next_header2(r->a, e);
                        as_self(r->s);
                } else
                        k = archive_read_next_header(r->a, &e);
                if (k == ARCHIVE_EOF)
                        return 0;
                if (k != ARCHIVE_OK)
                        return fail_archive(ret_error, r->a, "reading", r->s->path);

                if (r->s->is_dir) {
                        _cleanup_free_ char *rel = NULL;

                        if (archive_entry_filetype(e) == AE_IFDIR) {
                                as_reader(r->s);
                                archive_read_disk_descend(r->a);
                                as_self(r->s);
                        }
                        name = archive_entry_pathname(e);
                        if (!name || strlen(name) < r->skip)
                                continue;
                        rel = strdup(name + r->skip);
                        if (!rel)
                                return fail_oom(ret_error);
                        archive_entry_copy_pathname(e, rel);
                        archive_entry_linkify(r->links, &e, &spare);
                        if (spare)
                                archive_entry_free(spare);
                }

                name = archive_entry_pathname(e);
                if (!name)
                        return fail(ret_error, -EBADMSG, "%s: an archive entry has no name", r->s->path);
                if (startswith(name, DOC_PREFIX)) {
                        const char *doc = name + strlen(DOC_PREFIX);
                        if (!document_name_ok(doc) || archive_entry_filetype(e) != AE_IFREG)
                                return fail(ret_error, -EBADMSG, "%s: unexpected entry '%.*s'", r->s->path,
                                            NAME_SHOWN, name);
                        strcpy(r->name, doc);
                        *ret_kind = ENTRY_DOCUMENT;
                        *ret = e;
                        return 1;
                }
                k = data_name_to_path(name, r->name);
                if (k < 0)
                        return fail(ret_error, -EBADMSG, "%s: archive entry '%.*s' has an unsafe or invalid name",
                                    r->s->path, NAME_SHOWN, name);
                if (k == 0)
                        continue;
                hl = archive_entry_hardlink(e);
                if (hl && data_name_to_path(hl, r->target) <= 0)
                        return fail(ret_error, -EBADMSG,
                                    "%s: archive entry '%.*s' is a hard link to '%.*s', outside the backup's data",
                                    r->s->path, NAME_SHOWN, name, NAME_SHOWN, hl);
                sl = archive_entry_symlink(e);
                if (sl && strnlen(sl, PATH_MAX) >= PATH_MAX)
                        return fail(ret_error, -EBADMSG, "%s: archive entry '%.*s' has a symlink target too long",
                                    r->s->path, NAME_SHOWN, name);
                if (r->s->is_dir)
                        store_set_entry_flags(r->s, r->name, e);
                *ret_kind = ENTRY_DATA;
                *ret = e;
                return 1;
        }
}

/* Sorted pointers into the NUL-separated index, each a normalized path. */
static int parse_index(Store *s, size_t len, char **ret_error) {
        size_t n = 0;

        if (len > 0 && s->index_blob[len - 1] != 0)
                return fail(ret_error, -EBADMSG, "%s: openvss/index is truncated", s->path);
        for (size_t i = 0; i < len; i++)
                n += s->index_blob[i] == 0;
        s->paths = calloc(n ? n : 1, sizeof *s->paths);
        if (!s->paths)
                return fail_oom(ret_error);
        for (char *p = s->index_blob; p < s->index_blob + len; p += strlen(p) + 1) {
                if (!path_is_normalized(p))
                        return fail(ret_error, -EBADMSG, "%s: openvss/index holds an invalid path '%.*s'", s->path,
                                    NAME_SHOWN, p);
                s->paths[s->n_paths++] = p;
        }
        qsort(s->paths, s->n_paths, sizeof *s->paths, cmp_strp);
        return 0;
}

/* Records of path, filespec, "1"|"0". */
static int parse_excludes(Store *s, size_t len, char **ret_error) {
        char *p = s->excludes_blob, *end = s->excludes_blob + len;

        if (len > 0 && end[-1] != 0)
                return fail(ret_error, -EBADMSG, "%s: openvss/excludes is truncated", s->path);
        while (p < end) {
                StoreFileGroup g = { .path = p }, *x;
                p += strlen(p) + 1;
                if (p >= end)
                        break;
                g.filespec = p;
                p += strlen(p) + 1;
                if (p >= end || !path_is_normalized(g.path) || (!streq(p, "0") && !streq(p, "1")))
                        return fail(ret_error, -EBADMSG, "%s: openvss/excludes is malformed", s->path);
                g.recursive = streq(p, "1");
                p += 2;
                x = reallocarray(s->excludes, s->n_excludes + 1, sizeof *x);
                if (!x)
                        return fail_oom(ret_error);
                s->excludes = x;
                s->excludes[s->n_excludes++] = g;
        }
        if (p != end)
                return fail(ret_error, -EBADMSG, "%s: openvss/excludes is malformed", s->path);
        return 0;
}

/* Reads an archive through once: the index and excludes, the document names, and every name
 * checked, so a truncated, corrupt or unsafe archive fails here rather than halfway through a
 * restore. */
/* Adds a copy of p to the tsearch set *set. */
static int set_add(void **set, const char *p) {
        char *copy = strdup(p);
        const void *n = copy ? tsearch(copy, set, cmp_str) : NULL;

        if (!n || *(char *const *) n != copy)
                free(copy);
        return n ? 0 : -ENOMEM;
}

/* A data entry against those before it: nothing may lie below a non-directory (a file, or a
 * symlink that writing through would follow), and a hard link must name an earlier file. So an
 * archive that would be refused halfway through a restore is refused before it starts. */
static int check_data_entry(Store *s, Reader *rd, struct archive_entry *e, void **nondirs, void **files,
                            char **ret_error) {
        char prefix[PATH_MAX];
        mode_t type = archive_entry_filetype(e);

        for (const char *c = strchr(rd->name + 1, '/'); c; c = strchr(c + 1, '/')) {
                memcpy(prefix, rd->name, (size_t) (c - rd->name));
                prefix[c - rd->name] = 0;
                const char *k = prefix;
                if (tfind(k, nondirs, cmp_str))
                        return fail(ret_error, -EBADMSG, "%s: archive entry 'data%.*s' lies below 'data%.*s', which is "
                                    "not a directory", s->path, NAME_SHOWN, rd->name, NAME_SHOWN, prefix);
        }
        if (archive_entry_hardlink(e) && !tfind(rd->target, files, cmp_str))
                return fail(ret_error, -EBADMSG, "%s: archive entry 'data%.*s' is a hard link to 'data%.*s', which is "
                            "no earlier file of the archive", s->path, NAME_SHOWN, rd->name, NAME_SHOWN, rd->target);
        if (type != AE_IFDIR && set_add(nondirs, rd->name) < 0)
                return fail_oom(ret_error);
        if (type == AE_IFREG && set_add(files, rd->name) < 0)
                return fail_oom(ret_error);
        return 0;
}

static int scan_archive(Store *s, size_t *ret_index_len, size_t *ret_excl_len, char **ret_error) {
        void *nondirs = NULL, *files = NULL;
        Reader rd;
        struct archive_entry *e;
        EntryKind kind;
        int r;

        r = reader_open(s, &rd, ret_error);
        while (r >= 0 && (r = reader_next(&rd, &e, &kind, ret_error)) > 0) {
                char *copy;
                const void *n;

                if (kind != ENTRY_DOCUMENT) {
                        /* Its data is read (and so checked) when the next header is. */
                        r = check_data_entry(s, &rd, e, &nondirs, &files, ret_error);
                        continue;
                }
                if (streq(rd.name, INDEX_NAME) && !s->index_blob)
                        r = read_entry_data(rd.a, e, STORE_INDEX_MAX, "openvss/index", &s->index_blob, ret_index_len,
                                            ret_error);
                else if (streq(rd.name, EXCLUDES_NAME) && !s->excludes_blob)
                        r = read_entry_data(rd.a, e, STORE_DOCUMENT_MAX, "openvss/excludes", &s->excludes_blob,
                                            ret_excl_len, ret_error);
                else if (document_name_reserved(rd.name))
                        r = fail(ret_error, -EBADMSG, "%s: openvss/%s is in the archive twice", s->path, rd.name);
                else {
                        copy = strdup(rd.name);
                        n = copy ? tsearch(copy, &s->docs, cmp_str) : NULL;
                        if (!n)
                                r = fail_oom(ret_error);
                        if (!n || *(char *const *) n != copy)
                                free(copy);
                }
        }
        reader_close(&rd);
        tdestroy(nondirs, free);
        tdestroy(files, free);
        if (r < 0)
                return r;
        if (!s->index_blob)
                return fail(ret_error, -EBADMSG,
                            "%s: no openvss/index: not an OpenVSS backup, or a truncated or unfinished one", s->path);
        return 0;
}

/* A directory store's documents: the index, excludes and flags, read with the rights
 * dir_store_reader() says. */
static int dir_store_read(Store *s, size_t *n_index, size_t *n_excl, char **ret_error) {
        int r = dir_store_reader(s, ret_error);
        if (r < 0)
                return r;
        _cleanup_free_ char *docs = path_join(s->src, "openvss");
        if (!docs)
                r = fail_oom(ret_error);
        else if (!file_exists_at(docs, INDEX_NAME))
                r = fail(ret_error, -EBADMSG, "%s: no openvss/index: not an OpenVSS backup, or an unfinished one",
                         s->path);
        else {
                r = read_file_at(s, docs, INDEX_NAME, STORE_INDEX_MAX, "openvss/index", &s->index_blob, n_index,
                                 ret_error);
                if (r >= 0 && file_exists_at(docs, EXCLUDES_NAME))
                        r = read_file_at(s, docs, EXCLUDES_NAME, STORE_DOCUMENT_MAX, "openvss/excludes",
                                         &s->excludes_blob, n_excl, ret_error);
                if (r >= 0 && file_exists_at(docs, FLAGS_NAME)) {
                        size_t n_flags = 0;
                        r = read_file_at(s, docs, FLAGS_NAME, STORE_INDEX_MAX, "openvss/fflags", &s->flags_blob,
                                         &n_flags, ret_error);
                        if (r >= 0)
                                r = store_parse_flags(s, n_flags, ret_error);
                }
        }
        return r;
}

int store_open(const char *src, Store **ret, char **ret_error) {
        size_t n_index = 0, n_excl = 0;
        struct stat st;
        Store *s;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (isempty(src) || !ret)
                return fail(ret_error, -EINVAL, "no backup given");
        /* Opened once: every later read goes through this fd (s->src), so a backup renamed or
         * replaced by a symlink after its owner was checked is not another one read instead.
         * Root follows no symlink another user could have made on the way there. */
        _cleanup_free_ char *resolved = NULL;
        _cleanup_close_ int fd = geteuid() == 0 ? beneath_open_trusted(src, O_PATH, &resolved, ret_error)
                                                : open(src, O_PATH | O_CLOEXEC);
        if (fd < 0 && geteuid() == 0)
                return fd;
        if (fd < 0 || fstat(fd, &st) < 0)
                return fail(ret_error, -errno, "%s: %m", src);
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
                return fail(ret_error, -EBADMSG, "%s: neither a directory nor an archive file", src);

        s = store_new();
        if (!s)
                return fail_oom(ret_error);
        s->is_dir = S_ISDIR(st.st_mode);
        s->path = !s->is_dir ? strdup(src) : resolved ? TAKE_PTR(resolved) : realpath(src, NULL);
        s->src_fd = TAKE_FD(fd);
        if (!s->path || asprintf(&s->src, "/proc/self/fd/%d", s->src_fd) < 0)
                r = fail(ret_error, -errno, "%s: %m", src);
        else if (s->is_dir)
                r = dir_store_read(s, &n_index, &n_excl, ret_error);
        else
                r = scan_archive(s, &n_index, &n_excl, ret_error);
        if (r >= 0)
                r = parse_index(s, n_index, ret_error);
        if (r >= 0 && s->excludes_blob)
                r = parse_excludes(s, n_excl, ret_error);
        if (r < 0) {
                store_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int store_get_document(Store *s, const char *name, size_t max, char **ret_data, size_t *ret_len, char **ret_error) {
        _cleanup_free_ char *what = NULL;
        struct archive_entry *e;
        EntryKind kind;
        Reader rd;
        int r;

        if (ret_error)
                *ret_error = NULL;
        if (!s || s->writing)
                return fail(ret_error, -EBADF, "the backup is not open for reading");
        if (!document_name_ok(name))
                return fail(ret_error, -EINVAL, "invalid document name '%.*s'", NAME_SHOWN, strempty(name));
        if (asprintf(&what, "document %s", name) < 0)
                return fail_oom(ret_error);

        if (s->is_dir) {
                _cleanup_free_ char *docs = path_join(s->src, "openvss");
                size_t len;
                if (!docs)
                        return fail_oom(ret_error);
                if (!file_exists_at(docs, name))
                        return fail(ret_error, -ENOENT, "%s is not in the backup", what);
                r = read_file_at(s, docs, name, max, what, ret_data, &len, ret_error);
                if (r >= 0 && ret_len)
                        *ret_len = len;
                return r;
        }

        if (!document_name_reserved(name) && !tfind(name, &s->docs, cmp_str))
                return fail(ret_error, -ENOENT, "%s is not in the backup", what);
        r = reader_open(s, &rd, ret_error);
        while (r >= 0 && (r = reader_next(&rd, &e, &kind, ret_error)) > 0)
                if (kind == ENTRY_DOCUMENT && streq(rd.name, name)) {
                        size_t len;
                        r = read_entry_data(rd.a, e, max, what, ret_data, &len, ret_error);
                        if (r >= 0 && ret_len)
                                *ret_len = len;
                        reader_close(&rd);
                        return r;
                }
        reader_close(&rd);
        return r < 0 ? r : fail(ret_error, -ENOENT, "%s is not in the backup", what);
}

