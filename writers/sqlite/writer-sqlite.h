/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* vss-writer-sqlite's parts: the command line and configuration file (main.c), the events on the
 * databases (events.c) and the backup stamp (stamp.c). */

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include <vss/writer.h>

#define DEFAULT_NAME "sqlite"
#define DEFAULT_BUSY_TIMEOUT_MS 5000u
#define DEFAULT_FREEZE_WINDOW_MS 60000u /* vssd's default when we ask for none */
#define MSG_MAX 1023

typedef struct database {
        char *name;   /* component name */
        char *path;   /* canonical absolute path of the main file */
        char *dir;    /* its directory */
        char *base;   /* its base name */
        sqlite3 *db;  /* our connection: from PrepareForSnapshot to Thaw/Abort/BackupShutdown */
        bool locked;  /* BEGIN IMMEDIATE holds the write lock */
        char stamp[64]; /* read under the lock; "" when it could not be */
} database;

/* main.c: the command line. */
extern database *arg_databases;
extern size_t arg_n_databases;
extern uint32_t arg_busy_timeout_ms;
extern vss_writer_options arg_opts;

/* events.c: the writer's callbacks; db_release_all() ends every transaction and connection. */
bool on_identify(vss_writer *w, vss_metadata_builder *md, void *userdata);
bool on_prepare_snapshot(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_freeze(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_release(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_post_snapshot(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_backup_shutdown(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_pre_restore(vss_writer *w, const vss_event_info *info, void *userdata);
bool on_post_restore(vss_writer *w, const vss_event_info *info, void *userdata);
void db_release_all(const char *why);
