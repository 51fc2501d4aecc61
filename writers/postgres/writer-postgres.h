/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vss-writer-postgres's parts: the command line (main.c), the connection (pg.c), the cluster's
 * layout and Identify (layout.c), the events of a backup (backup.c) and of a restore (restore.c),
 * and the base backup's label and WAL (label.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <libpq-fe.h>

#include <vss/writer.h>

#include "lib/basic/log.h"
#include "lib/basic/path-util.h"
#include "writers/writer-util.h"

#define MSG_MAX 1023
#define COMPONENT "cluster"
#define MARKER "openvss-snapshot-set"

typedef enum Mode {
        MODE_AUTO,
        MODE_CRASH,
        MODE_LABEL,
        _MODE_MAX,
} Mode;

/* main.c: the command line. */
extern const char *const mode_names[_MODE_MAX];
extern const char *arg_dsn;
extern const char *arg_name;
extern const char *arg_label_dir;
extern Mode arg_mode;

/* A connection with arg_dsn (libpq's defaults under it), its notices logged. */
PGconn *pg_connect(void);
/* Fails the event for a connection that could not be made: retryable, the server may come back. */
bool fail_connect(vss_writer *w, PGconn *c, const char *what);
/* Runs a query expecting rows (or a command); on failure reports it and returns NULL. */
PGresult *query(vss_writer *w, PGconn *c, const char *what, const char *sql);

/* layout.c: where the cluster keeps its files, as last identified. */
typedef struct Layout {
        char *data_dir;
        char *wal_dir; /* NULL when pg_wal is a directory inside data_dir */
        char **tablespaces;
        size_t n_tablespaces;
} Layout;

void layout_clear(Layout *l);
int layout_add_tablespace(Layout *l, const char *path);
/* DIR/layout: the last layout seen, for Identify while the server is down. */
void layout_save(const Layout *l, const char *dir);
bool layout_load(Layout *l, const char *dir);
/* Asks the server where its files are; fails the event when it cannot. */
bool layout_query(vss_writer *w, Layout *l);
/* Whether one snapshot of the data directory's filesystem holds the whole cluster at once;
 * *btrfs: whether that filesystem is btrfs. */
bool cluster_on_one_device(const Layout *l, bool *btrfs);
/* The layout last seen (have_layout), and the Identify that publishes it. */
extern Layout layout;
extern bool have_layout;
bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata);

/* backup.c: the events of a backup; backup_reset() ends an unfinished one. */
bool on_prepare_snapshot(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_thaw(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_abort(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_backup_shutdown(vss_writer *w, const vss_event_info *info, void *userdata);
void backup_reset(void);

/* restore.c: the events of a restore. */
bool on_pre_restore(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_post_restore(vss_writer *w, const vss_event_info *info, void *userdata);

/* Where the requester restored path: under the component's new target that holds it, else in
 * place. */
void restored_path(const vss_bc_component *c, const char *path, char *buf, size_t size);
/* Points the restored data directory's pg_wal and pg_tblspc/OID symbolic links at where the
 * requester restored their targets. Returns 0 or -errno with err set. */
int relocate_links(const vss_bc_component *c, const char *data_dir, uid_t uid, gid_t gid, char err[static MSG_MAX + 1]);

int copy_file(const char *src, const char *dst, mode_t mode, uid_t uid, gid_t gid);
int write_text(const char *path, const char *text, mode_t mode, uid_t uid, gid_t gid);
int mkdir_p_private(const char *path);
bool is_segment(const char *name);
/* Copies the WAL segments first..last (one timeline) of wal_dir into dir, owned by uid:gid;
 * *ret_n counts them. */
int save_wal(const char *wal_dir, const char *dir, const char *first, const char *last, uid_t uid, gid_t gid,
             size_t *ret_n, char err[static MSG_MAX + 1]);
/* Copies backup_label, tablespace_map and the WAL segments of dir (a set's label directory, for a
 * backup that did not store them with the cluster) into the restored data directory target. */
int install_label(const char *dir, const char *target, uid_t uid, gid_t gid, char err[static MSG_MAX + 1]);
/* Rewrites target/tablespace_map (if any) with each location where restored_path() says it went. */
int relocate_map(const vss_bc_component *c, const char *target, uid_t uid, gid_t gid, char err[static MSG_MAX + 1]);
