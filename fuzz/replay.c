/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A main() for fuzz targets built without libFuzzer (gcc, the ASan build): runs
 * LLVMFuzzerTestOneInput() once on each file of each directory (not recursively) or file named on
 * the command line, in name order. Prints "ok - N inputs from DIR" per argument. Exits non-zero
 * when an argument is missing, unreadable or an empty directory; a failed invariant aborts.
 *
 *     fuzz-writer-metadata fuzz/corpus/writer-metadata [more dirs or files...]
 */

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz/fuzz.h"

/* Sanitizer runtimes call this before they end the process; absent in plain builds. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static char current[4096]; /* the input being run, named when it crashes */

static void name_current(void) {
        static const char prefix[] = "replay: crashed on input ";
        if (!current[0])
                return;
        /* Only async-signal-safe calls here. */
        (void) !write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
        (void) !write(STDERR_FILENO, current, strlen(current));
        (void) !write(STDERR_FILENO, "\n", 1);
}

static void on_signal(int sig) {
        name_current();
        signal(sig, SIG_DFL);
        raise(sig);
}

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        if (!f) {
                fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        size_t cap = 4096, len = 0;
        uint8_t *buf = malloc(cap);
        for (size_t n; buf && (n = fread(buf + len, 1, cap - len, f)) > 0;) {
                len += n;
                if (len == cap) {
                        uint8_t *b = realloc(buf, cap *= 2);
                        if (!b)
                                free(buf);
                        buf = b;
                }
        }
        bool bad = ferror(f) || !buf;
        fclose(f);
        if (bad) {
                fprintf(stderr, "replay: %s: read failed\n", path);
                free(buf);
                return -1;
        }
        snprintf(current, sizeof(current), "%s", path);
        LLVMFuzzerTestOneInput(buf, len);
        current[0] = 0;
        free(buf);
        return 0;
}

static int compare_names(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Runs every regular file of dir; returns how many, or -1. */
static long run_dir(const char *dir) {
        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
                return -1;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        long count = 0;
        for (struct dirent *e; (e = readdir(d));) {
                if (e->d_name[0] == '.')
                        continue; /* ".", "..", and hidden files such as editor leftovers */
                if (n == cap) {
                        char **p = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));
                        if (!p)
                                abort();
                        names = p;
                }
                if (!(names[n++] = strdup(e->d_name)))
                        abort();
        }
        closedir(d);
        if (n)
                qsort(names, n, sizeof(*names), compare_names);
        for (size_t i = 0; i < n; i++) {
                char path[4096];
                struct stat st;
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (run_file(path) < 0)
                        count = -1;
                else if (count >= 0)
                        count++;
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return count;
}

int main(int argc, char **argv) {
        int status = 0;
        if (argc < 2) {
                fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
                return 2;
        }
        if (__sanitizer_set_death_callback)
                __sanitizer_set_death_callback(name_current);
        signal(SIGABRT, on_signal);
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        signal(SIGFPE, on_signal);
        signal(SIGILL, on_signal);
        for (int i = 1; i < argc; i++) {
                struct stat st;
                long n;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        status = 1;
                        continue;
                }
                n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) < 0 ? -1 : 1;
                if (n <= 0) {
                        if (n == 0)
                                fprintf(stderr, "replay: %s: no inputs\n", argv[i]);
                        status = 1;
                        continue;
                }
                printf("ok - %ld inputs from %s\n", n, argv[i]);
                fflush(stdout);
        }
        return status;
}
