/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/fs.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/basic/path-util.h"
#include "reaper.h"

#define REAPER_MOUNTS_MAX 64

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
        char *w = s;
        for (char *r = s; *r; r++)
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char) ((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 3;
                } else
                        *w++ = *r;
        *w = 0;
}

static int longer_first(const void *a, const void *b) {
        size_t la = strlen(*(char *const *) a), lb = strlen(*(char *const *) b);
        return la < lb ? 1 : la > lb ? -1 : 0;
}

/* One pass over the mounts at or below dir, deepest first: thawed (a test that died holding one
 * must not leave it frozen; FITHAW of one not frozen is EINVAL, harmless), then detached. The
 * number found: stacked mounts need another pass. */
static size_t unmount_below(const char *dir) {
        char *found[REAPER_MOUNTS_MAX];
        size_t n = 0;
        FILE *f = fopen("/proc/self/mountinfo", "re");
        char *line = NULL;
        size_t size = 0;
        while (f && n < REAPER_MOUNTS_MAX && getline(&line, &size, f) > 0) {
                char target[4096];
                /* ID PARENT MAJ:MIN ROOT TARGET ... */
                if (sscanf(line, "%*s %*s %*s %*s %4095s", target) != 1)
                        continue;
                unescape(target);
                if (path_within(target, dir) && (found[n] = strdup(target)))
                        n++;
        }
        free(line);
        if (f)
                fclose(f);
        qsort(found, n, sizeof(found[0]), longer_first);
        for (size_t i = 0; i < n; i++) {
                int fd = open(found[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0) {
                        (void) ioctl(fd, FITHAW, 0);
                        close(fd);
                }
                (void) umount2(found[i], MNT_DETACH | UMOUNT_NOFOLLOW);
                free(found[i]);
        }
        return n;
}

/* Loop devices backed by a file in dir are detached (lazily, by the kernel, while still open). */
static void detach_loops(const char *dir) {
        DIR *d = opendir("/sys/block");
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (strncmp(de->d_name, "loop", 4) != 0)
                        continue;
                char path[512], backing[4096] = "";
                snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue; /* not bound */
                ssize_t k = read(fd, backing, sizeof(backing) - 1);
                close(fd);
                if (k <= 0)
                        continue;
                backing[k] = 0;
                backing[strcspn(backing, "\n")] = 0;
                if (!path_within(backing, dir))
                        continue;
                snprintf(path, sizeof(path), "/dev/%s", de->d_name);
                fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd >= 0) {
                        (void) ioctl(fd, LOOP_CLR_FD, 0);
                        close(fd);
                }
        }
        if (d)
                closedir(d);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) (flag == FTW_DP ? rmdir(path) : unlink(path));
        return 0;
}

static void reap(const char *dir) {
        for (int pass = 0; pass < 8 && unmount_below(dir) > 0; pass++)
                ;
        detach_loops(dir);
        /* Processes that die with the test (PR_SET_PDEATHSIG) may write into dir for a moment
         * more: try again for a few seconds. FTW_MOUNT: never into a mount that stayed. */
        for (int i = 0; i < 100 && access(dir, F_OK) == 0; i++) {
                (void) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
                if (access(dir, F_OK) == 0) {
                        struct timespec ts = { 0, 50 * 1000 * 1000 };
                        nanosleep(&ts, NULL);
                }
        }
}

/* The reaper itself: waits for every copy of the pipe's write end to close, then cleans up. */
static _Noreturn void reaper_run(const char *dir, int fd) {
        /* Out of the test's process group (meson's timeout kills the group) and off its output
         * (meson reads it to the end), holding no other descriptor of the test's: another
         * reaper's pipe held here would never close. */
        (void) setsid();
        if (dup2(fd, 3) < 0)
                _exit(1);
        (void) close_range(4, ~0U, 0);
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
                (void) dup2(null, 0);
                (void) dup2(null, 1);
                (void) dup2(null, 2);
        }
        (void) chdir("/");
        char c;
        ssize_t k;
        while ((k = read(3, &c, 1)) > 0 || (k < 0 && errno == EINTR))
                ;
        reap(dir);
        _exit(0); /* not exit(): the test's atexit handlers and sanitizers' checks are the test's */
}

int reaper_watch(const char *dir) {
        int p[2];
        if (!dir || dir[0] != '/' || !dir[1] || pipe2(p, O_CLOEXEC) < 0)
                return -1;
        /* Forked twice, so the reaper is no child of the test's (whose waitpid() calls it would
         * confuse) but init's, or a subreaper's the test may be. */
        pid_t pid = fork();
        if (pid == 0) {
                close(p[1]);
                pid_t r = fork();
                if (r == 0)
                        reaper_run(dir, p[0]);
                _exit(r < 0 ? 1 : 0);
        }
        close(p[0]);
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                close(p[1]);
                return -1;
        }
        return p[1];
}
