/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test harness itself: a test that dies leaves nothing behind (tests/reaper.h). */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/harness.h"

/* Whether a line of the command's output holds s. */
static bool output_has(const char *cmd, const char *s) {
        FILE *f = popen(cmd, "re");
        char *line = NULL;
        size_t size = 0;
        bool found = false;
        while (f && getline(&line, &size, f) > 0)
                found = found || strstr(line, s);
        free(line);
        if (f)
                pclose(f);
        return found;
}

static bool mounted_below(const char *dir) { return output_has("cat /proc/self/mountinfo", dir); }
static bool loop_backed_below(const char *dir) { return output_has("losetup -a", dir); }

/* Every child of ours ends (we are their subreaper: vssd and the reaper the dead test left come
 * to us); false when waitpid() failed otherwise. */
static bool wait_all_children(void) {
        for (;;) {
                if (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
                        continue;
                return errno == ECHILD;
        }
}

static void test_harness_killed_leaves_nothing(void) {
        /* A test SIGKILLed (no atexit, no handler: like meson's timeout or a sanitizer's _exit)
         * with its vssd running and its loop filesystem mounted and frozen: its reaper thaws and
         * unmounts the filesystem, detaches the loop device and removes the directory. */
        if (geteuid() != 0) {
                printf("# skipped: needs root (a loop filesystem)\n");
                return;
        }
        CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
        int p[2];
        CHECK(pipe2(p, O_CLOEXEC) == 0);
        pid_t child = fork();
        if (child == 0) {
                close(p[0]);
                Harness *h = harness_new(NULL);
                const char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "32M");
                int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int frozen = fd >= 0 && ioctl(fd, FIFREEZE, 0) == 0;
                dprintf(p[1], "%s %s %d\n", harness_dir(h), mnt, frozen);
                close(p[1]);
                for (;;)
                        pause();
        }
        close(p[1]);
        char dir[300] = "", mnt[300] = "";
        int frozen = 0;
        FILE *f = fdopen(p[0], "r");
        CHECK(f && fscanf(f, "%299s %299s %d", dir, mnt, &frozen) == 3);
        if (f)
                fclose(f);
        CHECK(frozen == 1);
        CHECK(dir[0] && mounted_below(dir) && loop_backed_below(dir));
        CHECK(kill(child, SIGKILL) == 0);
        CHECK(wait_all_children());
        CHECK(dir[0] && access(dir, F_OK) < 0 && errno == ENOENT);
        CHECK(!mounted_below(dir));
        CHECK(!loop_backed_below(dir));
        (void) prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void test_harness_reaper_ends_with_harness(void) {
        /* Freed the usual way, a harness's reaper finds nothing to do and ends with it: no process
         * of the test's lives on. */
        CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
        Harness *h = harness_new(NULL);
        char dir[300];
        snprintf(dir, sizeof(dir), "%s", harness_dir(h));
        harness_free(h);
        CHECK(wait_all_children());
        CHECK(access(dir, F_OK) < 0 && errno == ENOENT);
        (void) prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static const TestCase cases[] = {
        { "harness-killed-leaves-nothing", test_harness_killed_leaves_nothing },
        { "harness-reaper-ends-with-harness", test_harness_reaper_ends_with_harness },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
