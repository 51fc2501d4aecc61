/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <libmount.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "providers/mountinfo.h"

static bool holds(const char *target, const char *path) {
        size_t n = strlen(target);
        return n == 1 || (strncmp(path, target, n) == 0 && (path[n] == '/' || path[n] == 0));
}

int mountinfo_find(const char *path, const char *fstype, char **ret_target, char **ret_source, dev_t *ret_dev) {
        struct libmnt_table *tb = mnt_new_table();
        struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
        struct libmnt_fs *fs, *best = NULL;
        size_t best_len = 0;
        int r = tb && it ? mnt_table_parse_file(tb, "/proc/self/mountinfo") : -ENOMEM;

        while (r >= 0 && mnt_table_next_fs(tb, it, &fs) == 0) {
                const char *target = mnt_fs_get_target(fs), *type = mnt_fs_get_fstype(fs);
                if (!target || target[0] != '/' || (fstype && (!type || strcmp(type, fstype) != 0)) ||
                    !holds(target, path) || strlen(target) < best_len)
                        continue;
                best = fs;
                best_len = strlen(target);
        }
        if (r >= 0 && !best)
                r = -ENOENT;
        if (r >= 0) {
                const char *source = mnt_fs_get_source(best);
                char *t = ret_target ? strdup(mnt_fs_get_target(best)) : NULL;
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
                                *ret_dev = mnt_fs_get_devno(best);
                        r = 0;
                }
        }
        mnt_free_iter(it);
        mnt_unref_table(tb);
        return r < 0 ? r : 0;
}
