/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vss-writer-exec: which hooks an event runs, with which argument and in which order, natively and
 * as QEMU's guest agent (fsfreeze-hook.d) or VMware Tools (backupScripts.d) would run them. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/basic/fd-util.h"
#include "lib/basic/macro.h"
#include "writers/exec/exec-writer.h"

static char **frozen;
static size_t n_frozen;

void frozen_clear(void) {
        for (size_t i = 0; i < n_frozen; i++)
                free(frozen[i]);
        free(frozen);
        frozen = NULL;
        n_frozen = 0;
}

bool frozen_add(const char *name) {
        char **a = realloc(frozen, (n_frozen + 1) * sizeof *frozen), *s = strdup(name);
        if (!a || !s) {
                free(s);
                if (a)
                        frozen = a;
                return false;
        }
        frozen = a;
        frozen[n_frozen++] = s;
        return true;
}

/* qemu's scripts/qemu-guest-agent/fsfreeze-hook, is_ignored_file(). */
static bool qemu_ga_ignored(const char *name) {
        static const char *const suffixes[] = { "~",          ".bak",      ".orig",      ".rpmnew",
                                                ".rpmorig",   ".rpmsave",  ".sample",    ".dpkg-old",
                                                ".dpkg-new",  ".dpkg-tmp", ".dpkg-dist", ".dpkg-bak",
                                                ".dpkg-backup", ".dpkg-remove" };
        size_t n = strlen(name);

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t k = strlen(suffixes[i]);
                if (n >= k && strcmp(name + n - k, suffixes[i]) == 0)
                        return true;
        }
        return false;
}

/* Whether the directory entry is a hook in the current mode. */
static bool is_hook(const char *name, const char *path) {
        struct stat st;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                return false;
        switch (arg_compat) {
        case COMPAT_QEMU_GA: /* what the shell glob matches (no dot files), not ignored, [ -x ]; and regular */
                if (name[0] == '.' || qemu_ga_ignored(name))
                        return false;
                return stat(path, &st) == 0 && S_ISREG(st.st_mode) && faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
        case COMPAT_VMWARE: /* every regular file (File_IsFile), executable or not */
                return stat(path, &st) == 0 && S_ISREG(st.st_mode);
        default:
                return stat(path, &st) == 0 && S_ISREG(st.st_mode) && faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
        }
}

int32_t hook_trusted(const char *path, const char *name, char *msg) {
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
                /* A symlink (a packaged script, say): where it leads must be as safe as the hooks
                 * directory, or it could be swapped between this check and the run. */
                char real[PATH_MAX];
                char *slash = realpath(path, real) ? strrchr(real, '/') : NULL;
                if (slash)
                        *slash = 0;
                int dfd = slash ? open(slash == real ? "/" : real, O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
                int r = dfd >= 0 ? dir_chain_trusted(dfd, real, geteuid(), NULL, 0) : -errno;
                if (dfd >= 0)
                        close(dfd);
                if (r < 0) {
                        snprintf(msg, MSG_MAX + 1, "hook %s leads to %s, %s: not run", name, slash ? real : "nowhere",
                                 r == -EPERM ? "a directory another user could change" : strerror(-r));
                        return VSS_E_WRITERERROR_NONRETRYABLE;
                }
        }
        if (stat(path, &st) < 0) {
                snprintf(msg, MSG_MAX + 1, "hook %s: %s", name, strerror(errno));
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        /* What another user could write would run as ours. */
        char why[NAME_MAX + 64];
        if (stat_trusted(&st, geteuid(), false, name, why, sizeof(why)) < 0) {
                snprintf(msg, MSG_MAX + 1, "hook %s: not run (it would run as uid %u)", why, (unsigned) geteuid());
                return VSS_E_WRITERERROR_NONRETRYABLE;
        }
        return 0;
}

/* The hooks of the directory, in byte order of their names. Returns -1 with errno set. */
int list_hooks(char ***ret) {
        struct dirent **ents = NULL;
        char **names = NULL;
        int n, k = 0;

        n = scandir(arg_hooks, &ents, NULL, alphasort); /* C locale: strcoll() is strcmp() */
        if (n < 0)
                return -1;
        names = calloc((size_t) n + 1, sizeof *names);
        for (int i = 0; i < n; i++) {
                char path[PATH_MAX];
                if (names && snprintf(path, sizeof path, "%s/%s", arg_hooks, ents[i]->d_name) < (int) sizeof path &&
                    is_hook(ents[i]->d_name, path)) {
                        names[k] = strdup(ents[i]->d_name);
                        if (names[k])
                                k++;
                }
                free(ents[i]);
        }
        free(ents);
        if (!names) {
                errno = ENOMEM;
                return -1;
        }
        *ret = names;
        return k;
}

void free_names(char **names, int n) {
        for (int i = 0; names && i < n; i++)
                free(names[i]);
        free(names);
}

plan plan_for(vss_event event) {
        const char *name = vss_event_name(event) ?: "unknown";

        switch (arg_compat) {
        case COMPAT_QEMU_GA:
                if (event == VSS_EVENT_FREEZE)
                        return (plan) { PLAN_DIRECTORY, "freeze", false, false, true };
                if (event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT)
                        return (plan) { PLAN_FROZEN, "thaw", false, true, false };
                return (plan) { PLAN_NOTHING, name, false, false, false };
        case COMPAT_VMWARE:
                if (event == VSS_EVENT_FREEZE)
                        return (plan) { PLAN_DIRECTORY, "freeze", false, false, true };
                if (event == VSS_EVENT_THAW)
                        return (plan) { PLAN_FROZEN, "thaw", true, true, false };
                if (event == VSS_EVENT_ABORT)
                        return (plan) { PLAN_FROZEN, "freezeFail", true, true, false };
                return (plan) { PLAN_NOTHING, name, false, false, false };
        default: {
                bool reverse = event == VSS_EVENT_THAW || event == VSS_EVENT_ABORT;
                return (plan) { PLAN_DIRECTORY, name, reverse, reverse || event == VSS_EVENT_BACKUP_SHUTDOWN, false };
        }
        }
}

char **frozen_take(size_t *ret_n) {
        char **names = frozen;

        *ret_n = n_frozen;
        frozen = NULL;
        n_frozen = 0;
        return names;
}
