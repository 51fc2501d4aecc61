/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <libmount.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/mountinfo.h"

/* libmount is opened at the first lookup, not at vssd's start: an idle vssd keeps it and what it
 * pulls in (libblkid, libselinux, libpcre2: about 450 KiB resident) out of memory. */
static struct {
        struct libmnt_table *(*new_table)(void);
        struct libmnt_iter *(*new_iter)(int);
        int (*parse_file)(struct libmnt_table *, const char *);
        int (*next_fs)(struct libmnt_table *, struct libmnt_iter *, struct libmnt_fs **);
        const char *(*get_target)(struct libmnt_fs *);
        const char *(*get_fstype)(struct libmnt_fs *);
        const char *(*get_source)(struct libmnt_fs *);
        dev_t (*get_devno)(struct libmnt_fs *);
        void (*free_iter)(struct libmnt_iter *);
        void (*unref_table)(struct libmnt_table *);
        int (*get_id)(struct libmnt_fs *);
} mnt;
static char load_error[256];

static int load_libmount(void) {
        static int loaded; /* 1 loaded, < 0 failed (for good) */
        if (loaded)
                return loaded < 0 ? loaded : 0;
        void *h = dlopen("libmount.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
#define SYM(field, name) (*(void **) &mnt.field = h ? dlsym(h, #name) : NULL)
        bool ok = SYM(new_table, mnt_new_table) && SYM(new_iter, mnt_new_iter) &&
                  SYM(parse_file, mnt_table_parse_file) && SYM(next_fs, mnt_table_next_fs) &&
                  SYM(get_target, mnt_fs_get_target) && SYM(get_fstype, mnt_fs_get_fstype) &&
                  SYM(get_source, mnt_fs_get_source) && SYM(get_devno, mnt_fs_get_devno) &&
                  SYM(free_iter, mnt_free_iter) && SYM(unref_table, mnt_unref_table) &&
                  SYM(get_id, mnt_fs_get_id);
#undef SYM
        if (!ok) {
                const char *e = dlerror();
                snprintf(load_error, sizeof(load_error), "cannot load libmount.so.1 (util-linux): %s",
                         e ? e : "unknown error");
                loaded = -ELIBACC;
                return loaded;
        }
        loaded = 1;
        return 0;
}

int mountinfo_load(void) {
        return load_libmount();
}

const char *mountinfo_load_error(void) {
        return load_error[0] ? load_error : NULL;
}

/* The mount table, parsed, and an iterator over it: 0, or a negative errno; table_close() frees
 * what was made either way. */
static int table_open(struct libmnt_table **ret_tb, struct libmnt_iter **ret_it) {
        *ret_tb = NULL;
        *ret_it = NULL;
        int k = load_libmount();
        if (k < 0)
                return k;
        *ret_tb = mnt.new_table();
        *ret_it = mnt.new_iter(MNT_ITER_FORWARD);
        return *ret_tb && *ret_it ? mnt.parse_file(*ret_tb, "/proc/self/mountinfo") : -ENOMEM;
}

static void table_close(struct libmnt_table *tb, struct libmnt_iter *it) {
        if (it)
                mnt.free_iter(it);
        if (tb)
                mnt.unref_table(tb);
}

static bool holds(const char *target, const char *path) {
        size_t n = strlen(target);
        return n == 1 || (strncmp(path, target, n) == 0 && (path[n] == '/' || path[n] == 0));
}

int mountinfo_find(const char *path, const char *fstype, char **ret_target, char **ret_source, dev_t *ret_dev) {
        struct libmnt_table *tb;
        struct libmnt_iter *it;
        struct libmnt_fs *fs, *best = NULL;
        size_t best_len = 0;
        int r = table_open(&tb, &it);

        while (r >= 0 && mnt.next_fs(tb, it, &fs) == 0) {
                const char *target = mnt.get_target(fs), *type = mnt.get_fstype(fs);
                if (!target || target[0] != '/' || (fstype && (!type || strcmp(type, fstype) != 0)) ||
                    !holds(target, path) || strlen(target) < best_len)
                        continue;
                best = fs;
                best_len = strlen(target);
        }
        if (r >= 0 && !best)
                r = -ENOENT;
        if (r >= 0) {
                const char *source = mnt.get_source(best);
                char *t = ret_target ? strdup(mnt.get_target(best)) : NULL;
                char *s = ret_source ? strdup(source ? source : "") : NULL;
                if ((ret_target && !t) || (ret_source && !s)) {
                        free(t);
                        free(s);
                        r = -ENOMEM;
                } else {
                        if (ret_target)
                                *ret_target = t;
                        if (ret_source)
                                *ret_source = s;
                        if (ret_dev)
                                *ret_dev = mnt.get_devno(best);
                        r = 0;
                }
        }
        table_close(tb, it);
        return r < 0 ? r : 0;
}

int mountinfo_target_of(uint64_t id, char **ret_target) {
        if (id == 0 || id > INT_MAX)
                return -ENOENT;
        struct libmnt_table *tb;
        struct libmnt_iter *it;
        struct libmnt_fs *fs;
        const char *target = NULL;
        int r = table_open(&tb, &it);
        while (r >= 0 && !target && mnt.next_fs(tb, it, &fs) == 0)
                if (mnt.get_id(fs) == (int) id)
                        target = mnt.get_target(fs);
        if (r >= 0)
                r = !target || target[0] != '/' ? -ENOENT : (*ret_target = strdup(target)) ? 0 : -ENOMEM;
        table_close(tb, it);
        return r < 0 ? r : 0;
}

int mountinfo_any_of_dev(dev_t dev, char *const *targets, size_t n) {
        struct libmnt_table *tb;
        struct libmnt_iter *it;
        struct libmnt_fs *fs;
        int r = table_open(&tb, &it), found = 0;
        while (r >= 0 && !found && mnt.next_fs(tb, it, &fs) == 0) {
                const char *t = mnt.get_target(fs);
                if (!t || mnt.get_devno(fs) != dev)
                        continue;
                for (size_t i = 0; i < n && !found; i++)
                        found = targets[i] && strcmp(targets[i], t) == 0;
        }
        table_close(tb, it);
        return r < 0 ? r : found;
}
