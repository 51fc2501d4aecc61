/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What vssbackup's commands share: the options, a Run (one command's session, what it reports
 * and its first failure), the volumes to shadow and the opened backups. */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include <vss/backup.h>

#include "lib/basic/macro.h"
#include "tools/manifest.h"
#include "tools/report.h"
#include "tools/store.h"

enum { EXIT_OK = 0, EXIT_FAILED = 1 }; /* EXIT_USAGE: lib/basic/log.h */

#define BCD_NAME "backup-components.json"
#define MAX_CHAIN 64
#define MAX_VOLUMES 64

/* vssbackup.c: the options every command reads. */
extern const char *arg_socket;
extern bool arg_json;
extern const char *arg_provider; /* backup, exec: NULL, vssd chooses by the path */
extern unsigned arg_retries;     /* backup, exec: new attempts after a retryable failure */
extern bool arg_quiet;           /* errors only */
extern FILE *arg_json_out;       /* where --json goes: NULL stdout; exec: stderr or --json-fd */
/* A stream that takes text and keeps none (--quiet). */
FILE *devnull_file(void);

int cmd_backup(const char *dest, char **specs, size_t n_specs, vss_backup_type type, const char *base_path,
               char **paths, size_t n_paths);
int cmd_restore(const char *src, char **specs, size_t n_specs, const char *to);
/* at_original: COMMAND in a mount namespace of its own with each shadow copy over its original path. */
int cmd_exec(char **paths, size_t n_paths, vss_backup_type type, bool at_original, char **argv);

/* vssbackup-run.c: what one run reports: the status after each phase, the components and the
 * first failure. */
typedef struct Run {
        Report r;
        json_object *components;
        const char *command;
        json_object *attempts; /* backup, exec: one entry per attempt; NULL elsewhere */
        unsigned attempt;      /* from 1 */
        bool gave_up;          /* a retryable failure with no retry left */
} Run;

/* Opens the session; false (the failure kept) when vssd cannot be reached. */
bool run_start(Run *run, const char *command);
/* Keeps the failure (the first one only) and returns false. */
bool run_fail(Run *run, int32_t hr, const char *fmt, ...) _printf_(3, 4);
/* A phase that comes also after a failure (exec's BackupComplete, PostRestore), hr the call's:
 * its status is gathered and reported; an earlier failure stays the one the run ends with. */
void run_closing_phase(Run *run, int32_t hr, const char *phase);
/* Prints the result (with extra's members, in --json), releases the session; the exit status. */
int run_finish(Run *run, json_object *extra);
void component_report(Run *run, const vss_writer_metadata *wm, const char *lp, const char *name, bool ok,
                      const char *what);
/* "WRITER:LOGICAL_PATH" as --component takes it, and whether it names a writer's component. */
bool spec_valid(const char *spec);
/* Whether a writer whose record (owner) is in the document is root's or the caller's (or not known
 * to be anybody else's: a document older than owner records). */
bool owner_trusted(const vss_writer_metadata *owner);
/* The name --component's WRITER may give for a writer whose record (owner) is in the document:
 * any user may call a writer "postgres", so only root's writers and those of the user running
 * vssbackup answer to their names; others to their writer ids only (NULL). Owner unknown (a
 * document older than owner records): name. */
const char *spec_name(const vss_writer_metadata *owner, const char *name);
bool spec_matches(const char *spec, const vss_id *writer_id, const char *writer_name, const char *lp,
                  const char *name);
/* The same, or the component lies below the one spec names (its logical path is that one's path
 * and name, or below it): selecting a component selects its component set. */
bool spec_covers(const char *spec, const vss_id *writer_id, const char *writer_name, const char *lp, const char *name);
/* Whether logical path lp is key ("path/name" of a component) or lies below it ("key/..."). */
bool logical_within(const char *lp, const char *key);
/* Store callbacks: a warning about metadata not kept (on stderr, and "warnings" in --json:
 * add_warnings()), progress on a terminal. */
void on_warning(const char *path, const char *what, const char *error, void *userdata);
void add_warnings(json_object *extra);
void on_progress(uint64_t files, uint64_t bytes, const char *current, void *userdata);

/* vssbackup-snapshot.c: volumes, the given paths or the directories holding the components'
 * files, each once (a directory inside another already taken is covered by it). */
typedef struct Volume {
        char *path;
        dev_t dev;               /* its filesystem: a path below it on another is not covered */
        ino_t ino;               /* its directory then: --at-original mounts over nothing else */
        vss_id shadow_id;
        char shadow_path[PATH_MAX];
        uint64_t created_usec;
        bool followed;           /* a filesystem below a root writer's group that the backup followed */
} Volume;

/* path resolved (its directory, for a file) into real, following only symlinks nobody but root
 * could have made (realpath_trusted(), why in *ret_why), and stat'ed into st: 0 or -errno. */
int volume_resolve(const char *path, char real[PATH_MAX], struct stat *st, char **ret_why);
bool volume_add(Run *run, Volume *vols, size_t *n, const char *path);
/* The writer's entry in the live document d (with the owner vssd recorded), or NULL. */
const vss_writer_metadata *document_writer(const vss_backup_document *d, const vss_writer_metadata *wm);
/* Taken by default (no --component, no --for): a component of a user's writer only when every
 * path of it exists and, resolved, is that user's, so a user cannot make root's backup shadow,
 * copy (or fail on) paths not theirs by declaring them, "/" say. true: left out, said on stderr
 * (unless --quiet) with hint, how to take it anyway. */
bool component_left_out(const vss_backup_document *d, const vss_writer_metadata *wm, const vss_component_info *ci,
                        const char *hint);
void volumes_free(Volume *vols, size_t n);
/* Each filesystem mounted below directory path (pseudo filesystems, tmpfs too, aside) that no
 * volume of the set is on, unless known(m) says the caller has it otherwise: its files are in no
 * shadow copy (path's holds its mount point as an empty directory), so a warning (on_warning())
 * saying why. */
void warn_mounts_below(const char *path, const Volume *vols, size_t n_vols, bool (*known)(const char *m, void *userdata),
                       void *userdata, const char *why);
/* The same for the btrfs subvolumes nested below path, which are no mount points (the first
 * only, of subvolumes nested in each other). Without libbtrfsutil: nothing. */
void warn_subvolumes_below(const char *path, const Volume *vols, size_t n_vols, const char *why);
/* Each filesystem below directory path whose files a walk of path misses (path's shadow holds it
 * as an empty directory): the mounts strictly below it (pseudo filesystems, tmpfs too, aside
 * unless pseudo_too), then (with libbtrfsutil) the btrfs subvolumes nested below it that no mount
 * covers, outermost first. fn returning false stops (and so does filesystems_below(), returning
 * false). */
typedef struct FsBelow {
        const char *path;
        dev_t dev;
        const char *source; /* the mount's source (a device, server:path...); NULL for a subvolume */
        bool subvolume;
        bool pseudo;        /* proc, tmpfs, overlay...: no data of its own (only with pseudo_too) */
} FsBelow;
typedef bool (*FsBelowFn)(const FsBelow *fs, void *userdata);
bool filesystems_below(const char *path, bool pseudo_too, FsBelowFn fn, void *userdata);
/* Whether path (resolved) is a directory of root's and every directory above it root's, each
 * writable by nobody else or sticky: nobody but root can swap anything on the way. */
bool root_only_way(const char *path);
/* Whether a volume of the set is on filesystem dev. */
bool volumes_have_dev(const Volume *vols, size_t n_vols, dev_t dev);

/* The innermost volume holding path, or NULL. */
const Volume *volume_of(const Volume *vols, size_t n, const char *path);

/* What backup and exec do on each attempt at the snapshot set. */
typedef struct SnapshotPlan {
        vss_backup_type type;
        char **paths;            /* --for */
        size_t n_paths;
        const char *nothing;     /* the failure when there is nothing to shadow */
        /* After the writers' metadata is gathered, not in component mode (so the document names
         * every writer, with its owner): the components chosen, component mode set by it when it
         * selects (may be NULL). */
        bool (*prepare)(Run *run, void *userdata);
        /* Without --for: the volumes of the components' files. */
        bool (*default_volumes)(Run *run, Volume *vols, size_t *n_vols, void *userdata);
        /* With --for: the volumes of components' files below a --for path on another filesystem
         * (a mount there), which that path's shadow holds only as an empty directory (may be NULL). */
        bool (*nested_volumes)(Run *run, Volume *vols, size_t *n_vols, void *userdata);
        void *userdata;
} SnapshotPlan;

/* Begins the backup, gathers the writers' metadata, prepares, adds the volumes and makes the
 * snapshot set, with status after each phase; after a retryable failure, all of it again from a
 * new session, as --retries allows. ok: whether all went well before (else nothing is done).
 * vols: at most MAX_VOLUMES. */
bool snapshot_attempts(Run *run, bool ok, const SnapshotPlan *plan, Volume *vols, size_t *n_vols, vss_id *set_id);

/* vssbackup-read.c: an opened backup: its store, documents and manifest. */
typedef struct Backup {
        Store *store;
        char *bcd_text;
        vss_backup_document *bcd;
        Manifest manifest;
        int64_t owner; /* who could have written its document: 0 root only, a uid, -1 several users */
} Backup;

/* Opens src, reads and checks its backup components document and manifest. */
bool backup_open(Run *run, const char *src, Backup *bk);
void backup_close(Backup *bk);
/* src and the backups it is based on, oldest first, each checked to be the one the next was
 * based on. */
bool backup_chain_open(Run *run, const char *src, Backup *chain, size_t *ret_n); /* chain: MAX_CHAIN */
