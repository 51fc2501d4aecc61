/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the store's files share. store.c: the Store object, names, paths and file groups;
 * store-write.c creates and finishes a backup, store-walk.c stores groups of files into it,
 * store-read.c opens one and reads it (the Reader), store-restore.c puts its files back,
 * store-meta.c keeps file flags and the warnings about metadata not kept. */

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "lib/basic/path-util.h"
#include "tools/dir-util.h"
#include "lib/fail.h"
#include "tools/store.h"

#define DOC_PREFIX "openvss/"
#define DATA_PREFIX "data/"
#define INDEX_NAME "index"
#define EXCLUDES_NAME "excludes"
#define FLAGS_NAME "fflags"
#define BUFFER_SIZE (256U * 1024U)
#define WALK_DEPTH_MAX 4096U
#define NAME_SHOWN 256 /* at most this much of an untrusted name goes into a message */

/* Metadata the directory store keeps. File flags are listed in openvss/fflags instead (an
 * immutable copy would make the backup impossible to delete): see store-meta.c. */
#define DISK_STORE_FLAGS                                                                         \
        (ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR | \
         ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS)
/* No ARCHIVE_EXTRACT_SPARSE: holes come back from the stored sparse map anyway, and zeros that
 * were allocated on disk (preallocated database files) should stay allocated. */
/* No ARCHIVE_EXTRACT_FFLAGS: flags are set after the move into place (an immutable file cannot
 * be renamed), the copyable ones only (ext4's extents flag cannot be set on another filesystem). */
/* The restore writes relative names into its staging directory: an absolute one is a bug. */
#define RESTORE_FLAGS (DISK_STORE_FLAGS | ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS)

struct Store {
        char *path;                  /* the archive file, or the directory (canonical), as shown */
        int src_fd;                  /* reading: the backup as opened once (O_PATH), and ... */
        char *src;                   /* ... the path every read goes through (/proc/self/fd/N): what
                                      * was checked stays what is read, whatever is renamed since */
        bool is_dir;
        /* Reading a directory store another user could change: its files are read with that
         * uid's rights (see store-read.c); -1: with ours. */
        int64_t read_uid;
        gid_t read_gid;
        bool writing;
        bool owned;                  /* abort removes the output: we created it (or its contents) */
        bool created_dir;            /* directory store: the directory itself is ours */
        bool failed;                 /* writing went wrong halfway: finishing would hide it */
        int fd;                      /* the archive being written */
        struct archive *out;         /* writing: the tar writer, or write_disk into PATH/data */
        struct archive *rdisk;       /* writing: reads the metadata of source files */
        struct archive_entry_linkresolver *links;
        void *seen;                  /* writing: tsearch set of the index's paths */
        Store *base;                 /* writing an incremental: the backup it is based on (not owned) */
        char **paths;                /* the index: writing, in order, owned; reading, sorted, into index_blob */
        size_t n_paths, n_allocated;
        char *index_blob;
        void *docs;                  /* tsearch set of document names (owned) */
        StoreFileGroup *excludes;    /* writing: owned copies; reading: into excludes_blob */
        size_t n_excludes;
        char *excludes_blob;
        char *buf;
        store_progress_fn progress;
        void *userdata;
        uint64_t files, bytes;
        store_warning_fn warning;
        void *warning_userdata;
        store_boundary_fn boundary;
        void *boundary_userdata;
        uint64_t n_warnings;
        FILE *flags_out;             /* writing a directory store: the openvss/fflags records */
        char *flags_buf;
        size_t flags_len;
        char *flags_blob;            /* reading a directory store: openvss/fflags */
        struct StoreFlag *flags;     /* into flags_blob, sorted by path */
        size_t n_flags;
};

typedef struct StoreFlag {
        const char *path;
        unsigned flags;
} StoreFlag;

/* Flags to set once a restore moved its files into place: the inode written, where it went. */
typedef struct FlagsPendingItem {
        size_t rule;
        char *rel;                   /* relative to the rule's deepest existing directory */
        dev_t dev;
        ino_t ino;
        unsigned flags;
} FlagsPendingItem;
typedef struct FlagsPending {
        FlagsPendingItem *items;
        size_t n;
} FlagsPending;

typedef enum EntryKind { ENTRY_DOCUMENT, ENTRY_DATA } EntryKind;

typedef struct Reader {
        Store *s;
        struct archive *a;
        struct archive_entry *e;                  /* directory store: what read_disk fills */
        struct archive_entry_linkresolver *links; /* directory store: finds hard links */
        size_t skip;                              /* directory store: strlen(path) + 1, cut from names */
        char name[PATH_MAX];                      /* the original path, or the document name */
        char target[PATH_MAX];                    /* a hard link's target, as an original path */
} Reader;

/* archive_read_data_block() on the reader, with the store's reading rights. */
int reader_data_block(Reader *r, const void **buf, size_t *len, la_int64_t *off);

/* store.c */
Store *store_new(void);
void store_free(Store *s);
int fail_archive(char **ret_error, struct archive *a, const char *what, const char *path);
int cmp_str(const void *a, const void *b);  /* tsearch sets of strings */
int cmp_strp(const void *a, const void *b); /* sorted arrays of string pointers */
/* Absolute, no empty, "." or ".." components, no trailing '/' (but "/"), shorter than PATH_MAX. */
bool path_is_normalized(const char *p);
/* A malloc'd copy of in with "//" collapsed and a trailing '/' dropped; -EINVAL for a relative
 * path or one with "." or ".." components. */
int path_clean(const char *in, char **ret);
bool filespec_all(const char *f); /* NULL, "" or "*" */
bool group_match(const StoreFileGroup *g, const char *p, bool is_dir);
bool excluded(const StoreFileGroup *x, size_t n, const char *p, bool is_dir);
bool document_name_ok(const char *name);
bool document_name_reserved(const char *name);
void progress(Store *s, const char *current);
int disk_flags(int flags);

static inline bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}
static inline bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}
static inline void entry_freep(struct archive_entry **e) {
        if (*e)
                archive_entry_free(*e);
}

/* store-read.c */
void reader_close(Reader *r);
int reader_open(Store *s, Reader *r, char **ret_error);
int reader_next(Reader *r, struct archive_entry **ret, EntryKind *ret_kind, char **ret_error);

/* store-meta.c */
void store_warn(Store *s, const char *path, const char *what, const char *error);
bool store_warn_archive(Store *s, struct archive *a, int k, const char *path);
unsigned store_entry_flags(struct archive_entry *e);
int store_note_flags(Store *s, const char *p, struct archive_entry *e);
int store_flags_document(Store *s, const char **ret, size_t *ret_len);
int store_parse_flags(Store *s, size_t len, char **ret_error);
void store_set_entry_flags(Store *s, const char *p, struct archive_entry *e);
int flags_pending_add(FlagsPending *fp, size_t rule, int dirfd, const char *rel, unsigned flags);
void flags_pending_apply(Store *s, FlagsPending *fp, size_t rule, int dirfd, const char *shown);
void flags_pending_free(FlagsPending *fp);
