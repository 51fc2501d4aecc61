/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * vss-writer-sqlite — a VSS writer for SQLite databases. It checkpoints the write-ahead log before
 * the freeze, holds each database's write lock while the shadow copy is cut (so no transaction is
 * half in the copy), stamps backups with what tells the database's versions apart and checks
 * restored databases with PRAGMA integrity_check. This file is its command line and configuration
 * file; writer-sqlite.h lists the other parts.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include <vss/writer.h>

#include "lib/basic/fd-util.h"
#include "lib/basic/log.h"
#include "lib/common.h"
#include "lib/jsonv.h"
#include "writers/sqlite/writer-sqlite.h"
#include "writers/writer-util.h"

#ifndef OPENVSS_VERSION
#define OPENVSS_VERSION "0.1.0"
#endif

database *arg_databases;
size_t arg_n_databases;
static const char *arg_name;
static char *arg_name_config; /* the name from --config, owned */
uint32_t arg_busy_timeout_ms = DEFAULT_BUSY_TIMEOUT_MS;
static bool arg_have_freeze_window, arg_have_busy_timeout;
vss_writer_options arg_opts = { .app_level = VSS_APP_BACK_END, .reconnect = true };

static void help(void) {
        printf("Usage:\n"
               "  vss-writer-sqlite (--database [NAME=]PATH | --config FILE) [--database [NAME=]PATH]...\n"
               "                    [--name NAME] [--freeze-timeout MS] [--busy-timeout MS]\n"
               "                    [--socket PATH] [--no-reconnect]\n"
               "  vss-writer-sqlite --help | --version\n"
               "\n"
               "A Volume Shadow Copy writer for SQLite databases: no transaction is ever half in a copy.\n"
               "Socket default: $VSS_SOCKET, else /run/openvss/vssd.sock.\n"
               "\n"
               WRITER_HELP_EXIT_STATUS
               "  2  bad usage\n"
               "\n"
               "See vss-writer-sqlite(8) for the options, components, events and configuration file.\n");
}

/* Adds the database of a --database argument or a "databases" entry: "PATH" or "NAME=PATH". */
static int add_database(const char *arg) {
        static const char header[16] = "SQLite format 3";
        _cleanup_free_ char *name = NULL, *real = NULL;
        const char *path = arg, *eq = strchr(arg, '=');
        char buf[16];
        struct stat st;
        database *a;
        int fd;

        if (arg[0] != '/' && eq) {
                name = strndup(arg, (size_t) (eq - arg));
                path = eq + 1;
                if (!name)
                        return usage_error("out of memory");
                if (!*name || strchr(name, '/') || strlen(name) > VSS_MAX_NAME)
                        return usage_error("invalid database name '%s', expected 1 to 255 bytes without '/'", name);
        }
        if (path[0] != '/')
                return usage_error("invalid database '%s': the path must be absolute ([NAME=]/ABSOLUTE/PATH)", arg);
        real = realpath(path, NULL);
        if (!real || stat(real, &st) < 0)
                return usage_error("cannot use database %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return usage_error("cannot use database %s: not a regular file", path);
        /* An empty file is an empty database to SQLite; anything else must carry the header. */
        if (st.st_size > 0) {
                fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return usage_error("cannot read database %s: %s", path, strerror(errno));
                ssize_t k = read(fd, buf, sizeof buf);
                close(fd);
                if (k != (ssize_t) sizeof buf || memcmp(buf, header, sizeof buf) != 0)
                        return usage_error("%s is not an SQLite 3 database", path);
        }
        char *slash = strrchr(real, '/');
        const char *base = slash + 1;
        /* File groups name the files exactly; a wildcard in the name would match others too. */
        if (strpbrk(base, "*?[]\\"))
                return usage_error("cannot use database %s: its file name contains a wildcard character", path);
        if (!name && !(name = strdup(base)))
                return usage_error("out of memory");
        for (size_t i = 0; i < arg_n_databases; i++) {
                if (streq(arg_databases[i].path, real))
                        return usage_error("database %s given twice", real);
                if (streq(arg_databases[i].name, name))
                        return usage_error("two databases named '%s'; name one with --database NAME=PATH", name);
        }
        a = realloc(arg_databases, (arg_n_databases + 1) * sizeof(database));
        if (!a)
                return usage_error("out of memory");
        arg_databases = a;
        database *d = &arg_databases[arg_n_databases];
        *d = (database) { .name = TAKE_PTR(name) };
        d->base = strdup(base);
        d->dir = slash == real ? strdup("/") : strndup(real, (size_t) (slash - real));
        d->path = TAKE_PTR(real);
        arg_n_databases++;
        if (!d->base || !d->dir)
                return usage_error("out of memory");
        return 0;
}

#define CONFIG_MAX (1024 * 1024)

/* "databases": an array of strings, copied into *ret_databases (*ret_n of them). */
static int config_databases(const char *file, json_object *v, char ***ret_databases, size_t *ret_n) {
        if (!json_object_is_type(v, json_type_array))
                return usage_error("configuration %s: \"databases\" must be an array of strings", file);
        size_t n = json_object_array_length(v);
        char **list = calloc(n + 1, sizeof(char *));
        int r = 0;
        for (size_t i = 0; list && i < n; i++) {
                json_object *e = json_object_array_get_idx(v, i);
                if (!json_object_is_type(e, json_type_string)) {
                        r = usage_error("configuration %s: databases[%zu] must be a string", file, i);
                        break;
                }
                list[i] = strdup(json_object_get_string(e));
        }
        if (!list && !r)
                r = usage_error("out of memory");
        *ret_databases = list;
        *ret_n = list ? n : 0;
        return r;
}

/* The configuration file, read through the strict JSON layer: one object, nested at most 16 deep,
 * no key given twice, only the keys below. The command line's options win over it. */
static int load_config(const char *file, char ***ret_databases, size_t *ret_n) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        JsonReader v = {};
        json_object *o;
        int r = fd < 0 ? -errno : read_all(fd, CONFIG_MAX, &text, NULL);

        if (r < 0)
                return usage_error("cannot read configuration %s: %s", file, strerror(-r));
        o = jv_parse(&v, text, CONFIG_MAX, "the file");
        if (!o)
                return usage_error("cannot read configuration %s: %s", file, v.error);
        r = 0;
        json_object_object_foreach(o, key, val) {
                if (r)
                        break;
                if (streq(key, "databases"))
                        r = config_databases(file, val, ret_databases, ret_n);
                else if (streq(key, "name")) {
                        if (!json_object_is_type(val, json_type_string))
                                r = usage_error("configuration %s: \"name\" must be a string", file);
                        else {
                                free(arg_name_config);
                                arg_name_config = strdup(json_object_get_string(val));
                        }
                } else if (streq(key, "freeze_timeout_ms") || streq(key, "busy_timeout_ms")) {
                        int64_t n = json_object_get_int64(val);
                        if (!json_object_is_type(val, json_type_int) || n < 0 || n > UINT32_MAX)
                                r = usage_error("configuration %s: \"%s\" must be an integer from 0 to 4294967295",
                                                file, key);
                        else if (streq(key, "freeze_timeout_ms")) {
                                if (!arg_have_freeze_window)
                                        arg_opts.freeze_window_ms = (uint32_t) n;
                        } else if (!arg_have_busy_timeout)
                                arg_busy_timeout_ms = (uint32_t) n;
                } else
                        r = usage_error("configuration %s: unknown key \"%s\"", file, key);
        }
        json_object_put(o);
        return r;
}

static void free_args(void) {
        db_release_all("exit");
        for (size_t i = 0; i < arg_n_databases; i++) {
                free(arg_databases[i].name);
                free(arg_databases[i].path);
                free(arg_databases[i].dir);
                free(arg_databases[i].base);
        }
        free(arg_databases);
        free(arg_name_config);
}

static int parse_args(int argc, char *argv[], const char **ret_socket) {
        static const struct option options[] = {
                { "database", required_argument, NULL, 'd' },
                { "config", required_argument, NULL, 'c' },
                { "name", required_argument, NULL, 'n' },
                { "freeze-timeout", required_argument, NULL, 't' },
                { "busy-timeout", required_argument, NULL, 'b' },
                { "socket", required_argument, NULL, 's' },
                { "no-reconnect", no_argument, NULL, 'R' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { NULL, 0, NULL, 0 },
        };
        const char **dbs = NULL, *config = NULL;
        size_t n_dbs = 0;
        char **cfg_dbs = NULL;
        size_t n_cfg = 0;
        int c, r = 0;

        opterr = 0; /* one message for a bad option: ours */
        while ((c = getopt_long(argc, argv, ":d:c:n:t:b:s:h", options, NULL)) >= 0) {
                switch (c) {
                case 'd': {
                        const char **a = realloc(dbs, (n_dbs + 1) * sizeof(char *));
                        if (!a) {
                                r = usage_error("out of memory");
                                goto out;
                        }
                        dbs = a;
                        dbs[n_dbs++] = optarg;
                        break;
                }
                case 'c':
                        if (config) {
                                r = usage_error("--config given twice");
                                goto out;
                        }
                        config = optarg;
                        break;
                case 'n':
                        arg_name = optarg;
                        break;
                case 't':
                        r = writer_parse_ms(optarg, "freeze timeout", &arg_opts.freeze_window_ms);
                        arg_have_freeze_window = true;
                        break;
                case 'b':
                        r = writer_parse_ms(optarg, "busy timeout", &arg_busy_timeout_ms);
                        arg_have_busy_timeout = true;
                        break;
                case 's':
                        *ret_socket = optarg;
                        break;
                case 'R':
                        arg_opts.reconnect = false;
                        break;
                case 'h':
                        help();
                        r = -1;
                        goto out;
                case 'V':
                        printf("vss-writer-sqlite (OpenVSS) %s\nSQLite %s\n", OPENVSS_VERSION, sqlite3_libversion());
                        r = -1;
                        goto out;
                default: {
                        char why[256];
                        r = usage_error("%s", bad_option_text(argc, argv, c, why, sizeof why));
                        goto out;
                }
                }
                if (r)
                        goto out;
        }
        if (optind < argc) {
                r = usage_error("unexpected argument '%s'", argv[optind]);
                goto out;
        }
        if (config) {
                r = load_config(config, &cfg_dbs, &n_cfg);
                if (r)
                        goto out;
        }
        for (size_t i = 0; i < n_cfg && !r; i++)
                r = add_database(cfg_dbs[i]);
        for (size_t i = 0; i < n_dbs && !r; i++)
                r = add_database(dbs[i]);
        if (r)
                goto out;
        if (arg_n_databases == 0) {
                r = usage_error("no database given; use --database PATH or a --config file with \"databases\"");
                goto out;
        }
        if (!arg_name)
                arg_name = arg_name_config ?: DEFAULT_NAME;
        if (!*arg_name || strlen(arg_name) > VSS_MAX_NAME)
                r = usage_error("the writer name must be 1 to 255 bytes");
out:
        for (size_t i = 0; i < n_cfg; i++)
                free(cfg_dbs[i]);
        free(cfg_dbs);
        free(dbs);
        return r;
}

/* SQLite opens a database's files itself (the database, -journal, -wal, -shm) and follows a
 * hot-journal check with an open() of the journal. A FIFO put in one's place by whoever may write
 * the directory would block that open(), and with it this writer's whole loop: its freeze-window
 * timer, and the locks it holds on the other databases, for as long as the FIFO's owner likes.
 * So SQLite's unix VFS opens through this: without blocking, and only a regular file or a
 * directory (SQLite opens the directory to sync it), or /dev/urandom (its randomness). */
static int open_regular(const char *path, int flags, int mode) {
        int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, mode);
        struct stat st;
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
                                   (S_ISCHR(st.st_mode) && streq(path, "/dev/urandom")))) {
                close(fd);
                errno = ENXIO; /* SQLite: cannot open */
                return -1;
        }
        if (!(flags & O_NONBLOCK))
                (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        return fd;
}

static int sqlite_open_regular_only(void) {
        sqlite3_vfs *vfs = sqlite3_vfs_find("unix");
        if (!vfs || !vfs->xSetSystemCall ||
            vfs->xSetSystemCall(vfs, "open", (sqlite3_syscall_ptr) open_regular) != SQLITE_OK) {
                log_msg("cannot make SQLite open files without blocking: its unix VFS takes no system call");
                return -ENOSYS;
        }
        return 0;
}

int main(int argc, char *argv[]) {
        vss_writer_callbacks cb = {
                .identify = on_identify,
                .prepare_snapshot = on_prepare_snapshot,
                .freeze = on_freeze,
                .thaw = on_release,
                .abort = on_release,
                .post_snapshot = on_post_snapshot,
                .backup_shutdown = on_backup_shutdown,
                .pre_restore = on_pre_restore,
                .post_restore = on_post_restore,
        };
        const char *socket_path = NULL;
        vss_writer *w = NULL;
        int r;

        log_set_ident("vss-writer-sqlite");
        if (sqlite_open_regular_only() < 0)
                return 1;
        r = parse_args(argc, argv, &socket_path);
        if (r != 0) {
                free_args();
                return r < 0 ? 0 : r;
        }
        arg_opts.name = arg_name;
        arg_opts.usage_type = VSS_UT_USERDATA;
        arg_opts.source_type = VSS_ST_TRANSACTEDDB;

        r = vss_writer_new(&arg_opts, &cb, NULL, &w);
        if (r < 0) {
                log_msg("cannot create writer: %s", vss_strerror(r));
                free_args();
                return EXIT_USAGE;
        }
        writer_log_name("vss-writer-sqlite", arg_name);

        /* SIGTERM/SIGINT end the loop; vss_writer_unref() then aborts a freeze, releasing the locks. */
        r = vss_writer_main(w, socket_path, "vss-writer-sqlite");
        vss_writer_unref(w);
        free_args();
        return r;
}
