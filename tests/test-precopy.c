/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Copy-ahead passes (precopy.c) on a scratch tree: the passes then the last pass must leave a copy
 * equal to the source as it is at the last pass, whatever changed between passes. TAP output. */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "providers/file/precopy.h"
#include "tests/tap.h"

static char tmp[] = "/tmp/test-precopy-XXXXXX";

/* A shell command; $T is the scratch directory. */
static int sh(const char *cmd) {
        if (setenv("T", tmp, 1) < 0)
                abort();
        return system(cmd);
}

static void put(const char *rel, const char *text) {
        char p[512];
        snprintf(p, sizeof(p), "%s/src/%s", tmp, rel);
        FILE *f = fopen(p, "w");
        if (!f)
                abort();
        fputs(text, f);
        fclose(f);
}

/* Same content, names, types, modes and mtimes (rsync's itemized dry run lists any difference). */
static bool same_tree(const char *dst) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "cd %s && diff -r --no-dereference src %s >/dev/null 2>&1 && "
                 "test -z \"$(rsync -a --dry-run -i -c src/ %s/ 2>&1)\"", tmp, dst, dst);
        return system(cmd) == 0;
}

int main(void) {
        char src[256], dst[256], err[1024] = "";
        PrecopyResult res = {};
        PrecopyFinal *f = NULL;
        int r;

        printf("TAP version 13\n");
        if (!mkdtemp(tmp))
                return 1;
        snprintf(src, sizeof(src), "%s/src", tmp);
        snprintf(dst, sizeof(dst), "%s/dst", tmp);
        sh("mkdir -p $T/src/d/e $T/src/gone && echo a > $T/src/d/e/a && ln -s target $T/src/d/l");
        put("same", "same");
        put("grow", "1");
        put("gone/x", "x");
        put("link1", "linked");
        sh("ln $T/src/link1 $T/src/link2");
        int ix = memfd_create("index", MFD_CLOEXEC);

        r = precopy_run(src, dst, ix, 0, &res, err, sizeof(err));
        CHECK(r == 0, "the passes copy the tree");
        CHECK(res.passes >= 2, "a second pass checks what changed");
        CHECK(same_tree(dst), "the copy equals the source");
        struct stat a, b;
        CHECK(stat(tmp, &a) == 0 && sh("true") == 0, "scratch");
        char p1[512], p2[512];
        snprintf(p1, sizeof(p1), "%s/link1", dst);
        snprintf(p2, sizeof(p2), "%s/link2", dst);
        CHECK(stat(p1, &a) == 0 && stat(p2, &b) == 0 && a.st_ino == b.st_ino, "hard links stay hard links");

        /* Changes after the passes: new, gone, rewritten twice within a tick (same size and
         * mtime set back), a type change, a symlink retargeted, a directory replaced. */
        put("grow", "12345");
        put("new", "new");
        sh("rm -r $T/src/gone && rm $T/src/d/l && ln -s other $T/src/d/l");
        sh("touch -r $T/src/same $T/src/ref");
        put("same", "SAME");
        sh("touch -r $T/src/ref $T/src/same && rm $T/src/ref && rm -r $T/src/d/e && mkdir $T/src/d/e && echo b > $T/src/d/e/b");
        put("link1", "relinked");

        r = precopy_final_begin(src, dst, ix, 0, 0, &f, err, sizeof(err));
        CHECK(r == 0, "the last pass copies the delta");
        uint64_t n = 0, bytes = 0;
        if (f)
                precopy_final_stats(f, &n, &bytes);
        CHECK(n > 0 && n < 12, "the last delta holds only what changed");
        CHECK(f && precopy_final_end(f, NULL, err, sizeof(err)) == 0, "and ends");
        CHECK(same_tree(dst), "the copy equals the changed source");
        CHECK(stat(p1, &a) == 0 && stat(p2, &b) == 0 && a.st_ino == b.st_ino, "a file rewritten in place keeps its links");

        /* Captured into memory, written after: the same result; a budget too small fails. */
        sh("rm -rf $T/dst");
        r = precopy_run(src, dst, ix, 0, &res, err, sizeof(err));
        put("grow", "captured");
        put("new2", "new2");
        f = NULL;
        r = precopy_final_begin(src, dst, ix, 0, 1, &f, err, sizeof(err));
        CHECK(r == -EFBIG && strstr(err, "file_hold_memory_bytes") && strstr(err, "grow"), "a delta over the memory budget fails, naming files");
        r = precopy_final_begin(src, dst, ix, 0, 1 << 20, &f, err, sizeof(err));
        CHECK(r == 0, "the delta is captured");
        CHECK(r == 0 && precopy_final_end(f, NULL, err, sizeof(err)) == 0 && same_tree(dst), "and written out equal to the source");

        /* A deadline already past: -ETIME naming the biggest files. */
        put("grow", "again");
        f = NULL;
        r = precopy_final_begin(src, dst, ix, 1, 0, &f, err, sizeof(err));
        CHECK(r == -ETIME && strstr(err, "grow"), "past the deadline: -ETIME naming the file");

        sh("rm -rf $T");
        printf("1..%u\n", n_tests);
        return n_failed ? 1 : 0;
}
