/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The file provider cuts one instant: it holds the source filesystem (a loop filesystem the test
 * makes; the machine's own are never held) while it copies the last delta, copied ahead before. */

#include <fcntl.h>
#include <limits.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/common.h"
#include "tests/harness.h"

#define N_FILES 10
#define GEN_WIDTH 20
/* Big enough that copying a file takes about as long as rewriting one: a copy that is not one
 * instant shows it. The generation is at the start and at the end of each file. */
#define FILE_SIZE (128 * 1024)

static void fill(char *buf, unsigned long long g) {
        memset(buf, '.', FILE_SIZE);
        snprintf(buf, GEN_WIDTH + 2, "%0*llu\n", GEN_WIDTH, g);
        snprintf(buf + FILE_SIZE - GEN_WIDTH - 2, GEN_WIDTH + 2, "%0*llu\n", GEN_WIDTH, g);
        buf[FILE_SIZE - 1] = '\n';
}

static unsigned rounds(void) {
        const char *full = getenv("OPENVSS_CHECK_FULL");
        return full && streq(full, "1") ? 20 : 10;
}

/* fork() for a child that dies with the test: 0 in the child, its pid in the test. */
static pid_t fork_dying_with_us(void) {
        pid_t pid = fork();
        if (pid < 0)
                abort();
        if (pid == 0)
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        return pid;
}

/* A process that rewrites f0..f9 in order, each holding the generation number, for ever, with
 * nothing telling it to pause: the files up to some point hold g, the rest g-1, at any instant. */
static pid_t start_generations(const char *dir) {
        char path[600];
        static char buf[FILE_SIZE];
        fill(buf, 0);
        for (unsigned i = 0; i < N_FILES; i++) {
                snprintf(path, sizeof(path), "%s/f%u", dir, i);
                int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || write(fd, buf, FILE_SIZE) != FILE_SIZE)
                        abort();
                close(fd);
        }
        pid_t pid = fork_dying_with_us();
        if (pid > 0)
                return pid;
        for (unsigned long long g = 1;; g++) {
                fill(buf, g);
                for (unsigned i = 0; i < N_FILES; i++) {
                        snprintf(path, sizeof(path), "%s/f%u", dir, i);
                        int fd = open(path, O_WRONLY | O_CLOEXEC);
                        if (fd < 0 || pwrite(fd, buf, FILE_SIZE, 0) != FILE_SIZE)
                                _exit(1);
                        close(fd);
                }
        }
}

static void stop(pid_t pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

/* Takes one shadow of dir; 1 when its files look like one instant (g..g, g-1..g-1), 0 when torn,
 * -1 when no shadow was made. *ret_attrs: its attributes. */
static int shadow_instant(Harness *h, const char *dir, long long *ret_attrs) {
        int st;
        json_object *o = harness_json(h, &st, "vssadmin create shadow --for %s --json", dir);
        json_object *arr = o ? json_object_object_get(o, "shadows") : NULL;
        if (st != 0 || !arr || json_object_array_length(arr) != 1) {
                json_object_put(o);
                return -1;
        }
        json_object *s = json_object_array_get_idx(arr, 0);
        const char *spath = json_str(s, "shadow_path");
        *ret_attrs = json_object_get_int64(json_object_object_get(s, "attributes"));
        unsigned long long g[N_FILES];
        bool ok = true;
        static char buf[FILE_SIZE + 1];
        for (unsigned i = 0; i < N_FILES; i++) {
                char path[700];
                snprintf(path, sizeof(path), "%s/f%u", spath, i);
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
                if (fd >= 0)
                        close(fd);
                CHECK(n == FILE_SIZE);
                g[i] = strtoull(buf, NULL, 10);
                /* A file copied while it was rewritten holds two generations. */
                if (n == FILE_SIZE && strtoull(buf + FILE_SIZE - GEN_WIDTH - 2, NULL, 10) != g[i])
                        ok = false;
                if (i > 0 && !(g[i] == g[i - 1] || g[i] + 1 == g[i - 1]))
                        ok = false;
                if (i > 0 && g[i] + 1 < g[0])
                        ok = false;
        }
        /* One step at most: g..g then g-1..g-1. */
        unsigned steps = 0;
        for (unsigned i = 1; i < N_FILES; i++)
                steps += g[i] != g[i - 1];
        if (steps > 1)
                ok = false;
        if (!ok) {
                fprintf(stderr, "torn shadow:");
                for (unsigned i = 0; i < N_FILES; i++)
                        fprintf(stderr, " %llu", g[i]);
                fprintf(stderr, "\n");
        }
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --set %s >/dev/null", json_str(o, "snapshot_set_id")) == 0);
        json_object_put(o);
        return ok ? 1 : 0;
}

static void generations(bool hold, bool shared_storage) {
        /* Holding off: hold_filesystems lists nothing. */
        Harness *h = harness_new(hold ? NULL : "{\"hold_filesystems\": []}");
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char dir[400], state[400];
        snprintf(dir, sizeof(dir), "%s/data", mnt);
        snprintf(state, sizeof(state), "%s/state", mnt);
        CHECK(mkdir(dir, 0755) == 0);
        if (shared_storage)
                harness_restart_vssd_at(h, state);
        pid_t pid = start_generations(dir);
        unsigned torn = 0, made = 0;
        for (unsigned i = 0; i < rounds(); i++) {
                long long attrs = 0;
                int r = shadow_instant(h, dir, &attrs);
                CHECK(r >= 0);
                if (r < 0)
                        continue;
                made++;
                torn += r == 0;
                CHECK(!!(attrs & OPENVSS_ATTR_NOT_POINT_IN_TIME) == !hold);
        }
        stop(pid);
        if (hold)
                CHECK(torn == 0);
        printf("# %s: %u of %u shadows torn\n", hold ? "held" : "not held", torn, made);
        fprintf(stderr, "%s: %u of %u shadows torn\n", hold ? "held" : "not held", torn, made);
}

/* A process that writes n to A (on one filesystem), then n to B (on another), n = 1, 2, ...: at any
 * instant A holds B's number or one more. */
static pid_t start_pairs(const char *a, const char *b) {
        pid_t pid = fork_dying_with_us();
        if (pid > 0)
                return pid;
        int fa = open(a, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), fb = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        char buf[24];
        for (unsigned long long n = 1; fa >= 0 && fb >= 0; n++) {
                snprintf(buf, sizeof(buf), "%020llu\n", n);
                if (pwrite(fa, buf, 21, 0) != 21 || pwrite(fb, buf, 21, 0) != 21)
                        break;
        }
        _exit(1);
}

static unsigned long long number_in(const char *dir, const char *name) {
        char path[700], buf[32] = "";
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
        if (fd >= 0)
                close(fd);
        return n > 0 ? strtoull(buf, NULL, 10) : 0;
}

/* A process that stores n into mm (through a shared writable mapping), then writes n to log, n =
 * 1, 2, ...: at any instant mm holds log's number or one more. */
static pid_t start_mapped_pairs(const char *mm, const char *log) {
        pid_t pid = fork_dying_with_us();
        if (pid > 0)
                return pid;
        int fm = open(mm, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), fl = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fm < 0 || fl < 0 || ftruncate(fm, 4096) < 0)
                _exit(1);
        char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fm, 0);
        char buf[24];
        for (unsigned long long n = 1; map != MAP_FAILED; n++) {
                snprintf(buf, sizeof(buf), "%020llu\n", n);
                memcpy(map, buf, 21);
                if (pwrite(fl, buf, 21, 0) != 21)
                        break;
                usleep(500);
        }
        _exit(1);
}

/* hold-mmap-writes: a file written through a shared mapping changes no timestamp while its page
 * stays dirty, so the copy-ahead's last held pass, which goes by timestamps, would keep an earlier
 * pass's copy of it: each shadow of the held ext4 directory has the mapped file's number equal
 * to the written file's, or one more. */
static void test_hold_mmap_writes(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char dir[400], mm[450], log[450];
        snprintf(dir, sizeof(dir), "%s/data", mnt);
        snprintf(mm, sizeof(mm), "%s/mm.bin", dir);
        snprintf(log, sizeof(log), "%s/log.txt", dir);
        CHECK(mkdir(dir, 0755) == 0);
        pid_t pid = start_mapped_pairs(mm, log);
        for (int i = 0; i < 3000 && number_in(dir, "log.txt") < 10; i++) /* under way */
                usleep(1000);
        for (unsigned i = 0; i < 5; i++) {
                int st;
                json_object *o = harness_json(h, &st, "vssadmin create shadow --for %s --json", dir);
                json_object *arr = o ? json_object_object_get(o, "shadows") : NULL;
                CHECK(st == 0 && arr && json_object_array_length(arr) == 1);
                if (st != 0 || !arr || json_object_array_length(arr) != 1) {
                        json_object_put(o);
                        break;
                }
                const char *spath = json_str(json_object_array_get_idx(arr, 0), "shadow_path");
                unsigned long long nm = number_in(spath, "mm.bin"), nl = number_in(spath, "log.txt");
                CHECK(nl > 0 && (nm == nl || nm == nl + 1));
                if (!(nl > 0 && (nm == nl || nm == nl + 1)))
                        fprintf(stderr, "round %u: mapped file %llu, written file %llu\n", i, nm, nl);
                CHECK(harness_sh(h, NULL, "vssadmin delete shadows --set %s >/dev/null", json_str(o, "snapshot_set_id")) == 0);
                json_object_put(o);
        }
        stop(pid);
}

/* hold-with-btrfs-snapshot: a set of a btrfs subvolume (its own snapshot) and a held ext4
 * directory (flush-and-hold) is cut while the ext4 is held: a writer that writes the btrfs file,
 * then the ext4 one, finds in the shadows the ext4 file's number or one less in the btrfs file,
 * never more (the snapshot taken after the release held writes the ext4 copy does not: a
 * database's pages without their log). */
static void test_hold_with_btrfs_snapshot(void) {
        Harness *h = harness_new(NULL);
        char *bt = strdup(harness_loop_fs(h, "mkfs.btrfs -q", "256M"));
        char *ex = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char sub[400], dir[400], a[450], b[450];
        snprintf(sub, sizeof(sub), "%s/sub", bt);
        snprintf(dir, sizeof(dir), "%s/data", ex);
        CHECK(harness_sh(h, NULL, "btrfs -q subvolume create '%s' >/dev/null && mkdir '%s'", sub, dir) == 0);
        snprintf(a, sizeof(a), "%s/a", sub);
        snprintf(b, sizeof(b), "%s/b", dir);
        pid_t pid = start_pairs(a, b);
        for (unsigned i = 0; i < rounds(); i++) {
                int st;
                json_object *o = harness_json(h, &st, "vssadmin create shadow --for %s --for %s --json", sub, dir);
                json_object *arr = o ? json_object_object_get(o, "shadows") : NULL;
                CHECK(st == 0 && arr && json_object_array_length(arr) == 2);
                if (st != 0 || !arr || json_object_array_length(arr) != 2) {
                        json_object_put(o);
                        break;
                }
                unsigned long long na = 0, nb = 0;
                for (size_t k = 0; k < 2; k++) {
                        json_object *sh = json_object_array_get_idx(arr, k);
                        const char *orig = json_str(sh, "original_path"), *spath = json_str(sh, "shadow_path");
                        if (streq(orig, sub))
                                na = number_in(spath, "a");
                        else
                                nb = number_in(spath, "b");
                }
                CHECK(na > 0 && nb > 0 && (na == nb || na == nb + 1));
                if (!(na > 0 && nb > 0 && (na == nb || na == nb + 1)))
                        fprintf(stderr, "round %u: btrfs file %llu, held ext4 file %llu\n", i, na, nb);
                CHECK(harness_sh(h, NULL, "vssadmin delete shadows --set %s >/dev/null", json_str(o, "snapshot_set_id")) == 0);
                json_object_put(o);
        }
        stop(pid);
        free(bt);
}

static void test_hold_generations(void) {
        generations(true, false);
}

static void test_hold_generations_shared_storage(void) {
        generations(true, true);
}

static void test_hold_generations_unheld(void) {
        generations(false, false);
}

/* A big file rewritten without pause goes whole into every pass; a hold window it cannot fit
 * fails the set with VSS_E_HOLD_WRITES_TIMEOUT naming it, and leaves nothing frozen or made. */
/* A shadow of mnt/data the hold window refuses while pid runs (stopped after): VSS_E_HOLD_WRITES_TIMEOUT
 * naming biggest, known before Freeze (the writer never frozen for nothing). */
static void hold_refused(Harness *h, const char *mnt, pid_t pid, const char *biggest) {
        char *out = NULL;
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s/data --json", mnt) != 0);
        stop(pid);
        CHECK(out && strstr(out, "VSS_E_HOLD_WRITES_TIMEOUT") && strstr(out, biggest));
        if (out)
                fprintf(stderr, "%s\n", out);
        free(out);
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot abort backup-shutdown");
        free(ev);
}

static void test_hold_window_too_small(void) {
        Harness *h = harness_new("{\"hold_window_ms\": 5}");
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "256M");
        char *out = NULL;
        CHECK(harness_sh(h, NULL, "mkdir %s/data && head -c 67108864 /dev/urandom > %s/data/big && echo small > %s/data/small",
                         mnt, mnt, mnt) == 0);
        harness_writer(h, "w", NULL);
        pid_t pid = fork();
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                char path[600];
                snprintf(path, sizeof(path), "%s/data/big", mnt);
                static char buf[1 << 16];
                for (unsigned long long k = 0;; k++) {
                        int fd = open(path, O_WRONLY | O_CLOEXEC);
                        memset(buf, (int) (k & 0xff), sizeof(buf));
                        if (fd < 0 || pwrite(fd, buf, sizeof(buf), (off_t) ((k % 1024) * sizeof(buf))) < 0)
                                _exit(1);
                        close(fd);
                }
        }
        hold_refused(h, mnt, pid, "big (67108864 bytes)");
        /* Writable again, and no shadow kept. */
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo x > %s/after && sync %s/after'", mnt, mnt) == 0);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && strstr(out, "No items found"));
        free(out);
        CHECK(harness_count_shadow_files(h) == 0);
}

/* hold-window-mapped-too-big: a file mapped shared and writable goes whole into the held pass;
 * one that cannot be copied within the hold window fails the set before Freeze, naming it, even
 * when nothing else changes. */
static void test_hold_window_mapped_too_big(void) {
        Harness *h = harness_new("{\"hold_window_ms\": 5}");
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "256M");
        char path[600];
        CHECK(harness_sh(h, NULL, "mkdir %s/data && head -c 67108864 /dev/urandom > %s/data/mapped && "
                                  "head -c 16777216 /dev/urandom > %s/data/other", mnt, mnt, mnt) == 0);
        snprintf(path, sizeof(path), "%s/data/mapped", mnt);
        harness_writer(h, "w", NULL);
        int pipefd[2];
        CHECK(pipe(pipefd) == 0);
        pid_t pid = fork_dying_with_us();
        if (pid == 0) {
                int fd = open(path, O_RDWR | O_CLOEXEC);
                void *map = fd >= 0 ? mmap(NULL, 67108864, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
                if (map == MAP_FAILED || write(pipefd[1], "m", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        char c;
        CHECK(read(pipefd[0], &c, 1) == 1); /* mapped */
        hold_refused(h, mnt, pid, "mapped (67108864 bytes, mapped shared and writable by a process)");
        close(pipefd[0]), close(pipefd[1]);
        CHECK(harness_count_shadow_files(h) == 0);
}

/* The storage shares the held filesystem: the last delta is read into memory while held; one over
 * file_hold_memory_bytes fails the set, clearly, never a silent copy without the hold. */
static void test_hold_memory_budget(void) {
        Harness *h = harness_new("{\"file_hold_memory_bytes\": 4096}");
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char state[400], *out = NULL;
        snprintf(state, sizeof(state), "%s/state", mnt);
        harness_restart_vssd_at(h, state);
        CHECK(harness_sh(h, NULL, "mkdir %s/data && head -c 100000 /dev/urandom > %s/data/hot", mnt, mnt) == 0);
        pid_t pid = fork();
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                char path[600];
                snprintf(path, sizeof(path), "%s/data/hot", mnt);
                for (;;) {
                        int fd = open(path, O_WRONLY | O_CLOEXEC);
                        if (fd < 0 || pwrite(fd, "x", 1, 0) < 0)
                                _exit(1);
                        close(fd);
                }
        }
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s/data --json", mnt) != 0);
        stop(pid);
        CHECK(out && strstr(out, "file_hold_memory_bytes") && strstr(out, "hot (100000 bytes)"));
        if (out)
                fprintf(stderr, "%s\n", out);
        free(out);
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo x > %s/after && sync %s/after'", mnt, mnt) == 0);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && strstr(out, "No items found"));
        free(out);
        CHECK(harness_count_shadow_files(h) == 0);
}

/* A filesystem frozen by someone else fails the set and stays theirs (frozen). */
static void test_hold_frozen_elsewhere(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char *out = NULL;
        CHECK(harness_sh(h, NULL, "mkdir %s/data && echo a > %s/data/a && sync && fsfreeze -f %s", mnt, mnt, mnt) == 0);
        int rc = harness_sh(h, &out, "timeout 60 vssadmin create shadow --for %s/data --json", mnt);
        /* Still frozen (theirs): freezing it again is refused. Then thawed, always. */
        int frozen = harness_sh(h, NULL, "fsfreeze -f %s 2>/dev/null", mnt);
        harness_sh(h, NULL, "fsfreeze -u %s", mnt);
        CHECK(rc != 0 && rc != 124);
        CHECK(frozen != 0);
        CHECK(out && strstr(out, "frozen"));
        free(out);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && strstr(out, "No items found"));
        free(out);
        /* What was copied ahead is gone too. */
        CHECK(harness_count_shadow_files(h) == 0);
}

/* vssd holds only the filesystems it chose: a writer that makes a directory on a held volume's
 * path a symlink to another filesystem (one not to be held) after the volume was added fails the
 * set, and that filesystem is never frozen. */
static void test_hold_path_swapped(void) {
        Harness *h = harness_new(NULL);
        char *a = strdup(harness_loop_fs(h, "mkfs.ext4 -q", "64M"));
        char *b = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char config[PATH_MAX], hook[3 * PATH_MAX + 256], *out = NULL, *log = NULL;
        CHECK(harness_sh(h, NULL, "mkdir -p %s/d1/data %s/data && echo a > %s/d1/data/a", a, b, a) == 0);
        snprintf(config, sizeof(config), "%s/vssd.json", harness_dir(h));
        CHECK(harness_sh(h, NULL, "printf '{\"hold_filesystems\": [\"%s\"]}' > %s", a, config) == 0);
        harness_restart_vssd(h);
        snprintf(hook, sizeof(hook),
                 "#!/bin/sh\n"
                 "[ \"$1\" = prepare-snapshot ] && [ ! -L %s/d1 ] && mv %s/d1 %s/d1.real && ln -s %s %s/d1\n"
                 "exit 0\n", a, a, a, b, a);
        harness_hook(h, "20-swap", hook);
        char comp[PATH_MAX + 16];
        snprintf(comp, sizeof(comp), "data=%s/d1/data", a);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "swapper", args);
        int rc = harness_sh(h, &out, "vssadmin create shadow --for %s/d1/data 2>&1", a);
        /* Refused by the copy-ahead (it reaches the source without symlinks) or, without one, by
         * the freeze's check. */
        CHECK(rc != 0);
        CHECK(out && (strstr(out, "symbolic link") || strstr(out, "was replaced")));
        free(out);
        CHECK(harness_sh(h, &log, "cat %s/vssd.log", harness_dir(h)) == 0);
        CHECK(log && !strstr(log, "held the filesystems"));
        free(log);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && strstr(out, "No items found"));
        free(out);
        free(a);
}

static int count(const char *hay, const char *needle) {
        int n = 0;
        for (const char *p = hay; p && (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* vssadmin says which shadows will be one instant, why not when not, and marks each shadow that is
 * not, once. */
static void test_hold_explain(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char *data = harness_make_data(h, "plain"), *out = NULL;
        CHECK(harness_sh(h, NULL, "mkdir %s/data && echo a > %s/data/a", mnt, mnt) == 0);
        int st;
        json_object *o = harness_json(h, &st, "vssadmin list providers --for %s/data --for %s --json", mnt, data);
        json_object *v = o ? json_object_object_get(o, "volumes") : NULL;
        CHECK(st == 0 && v && json_object_array_length(v) == 2);
        if (v && json_object_array_length(v) == 2) {
                json_object *a = json_object_array_get_idx(v, 0), *b = json_object_array_get_idx(v, 1);
                CHECK(json_object_get_boolean(json_object_object_get(a, "point_in_time")));
                CHECK(!json_object_get_boolean(json_object_object_get(b, "point_in_time")));
                CHECK(strstr(json_str(b, "why"), "hold_exclude"));
        }
        json_object_put(o);
        CHECK(harness_sh(h, &out, "vssadmin list providers --for %s", data) == 0);
        CHECK(out && strstr(out, "not point-in-time"));
        free(out);

        /* One held volume and one not: the one not is marked, once, when made and when listed. */
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s/data --for %s", mnt, data) == 0);
        CHECK(count(out, "Not point-in-time") == 1);
        free(out);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(count(out, "Not point-in-time") == 1);
        free(out);
        /* vssbackup says it too, once per shadow. */
        CHECK(harness_sh(h, &out, "vssbackup exec --for %s/data --for %s -- true 2>&1", mnt, data) == 0);
        CHECK(count(out, "not point-in-time") == 1 && strstr(out, data));
        free(out);
}

/* file_storage_dir puts the shadows on another filesystem: with the state directory on the held
 * one, the last delta is still copied while held (not through memory), and the shadow is one
 * instant; deleting it leaves nothing in the storage. */
static void test_hold_storage_elsewhere(void) {
        char link[64];
        snprintf(link, sizeof(link), "/tmp/openvss-hold-storage-%d", (int) getpid());
        char cfg[200];
        snprintf(cfg, sizeof(cfg), "{\"file_storage_dir\": \"%s\", \"file_hold_memory_bytes\": 1}", link);
        Harness *h = harness_new(cfg);
        char *src = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char *store = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char dir[400], state[400], *out = NULL;
        (void) unlink(link);
        CHECK(symlink(store, link) == 0);
        snprintf(dir, sizeof(dir), "%s/data", src);
        snprintf(state, sizeof(state), "%s/state", src);
        CHECK(mkdir(dir, 0755) == 0);
        harness_restart_vssd_at(h, state);
        pid_t pid = start_generations(dir);
        long long attrs = 0;
        /* A memory budget of 1 byte: had the delta gone through memory, this would fail. */
        for (unsigned i = 0; i < 3; i++)
                CHECK(shadow_instant(h, dir, &attrs) == 1);
        CHECK(!(attrs & OPENVSS_ATTR_NOT_POINT_IN_TIME));
        stop(pid);
        CHECK(harness_sh(h, &out, "find %s -mindepth 1 -maxdepth 1 ! -name lost+found | wc -l", store) == 0);
        CHECK(out && atoi(out) == 0);
        free(out);
        (void) unlink(link);
}

/* The requester dies while the volume is being copied ahead: the writer gets Abort, nothing of the
 * copy is kept, nothing is frozen, and a new set can start. */
static void test_hold_requester_killed_during_copy_ahead(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "1G");
        char *out = NULL;
        CHECK(harness_sh(h, NULL, "mkdir %s/data && for i in $(seq 600); do head -c 1048576 /dev/zero > %s/data/f$i; done",
                         mnt, mnt) == 0);
        harness_writer(h, "w", NULL);
        pid_t req = fork();
        if (req == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "exec " VSSADMIN_DIR "/vssadmin create shadow --for %s/data >/dev/null 2>&1", mnt);
                execl("/bin/sh", "sh", "-c", cmd, NULL);
                _exit(127);
        }
        /* The copy-ahead has begun once the shadow's directory exists under the state directory. */
        CHECK(harness_sh(h, &out, "for i in $(seq 2000); do [ -n \"$(find %s/shadows -mindepth 2 -maxdepth 2 2>/dev/null)\" ] "
                                  "&& echo started && break; sleep 0.01; done", harness_state_dir(h)) == 0);
        bool started = out && strstr(out, "started");
        free(out);
        /* It runs in a helper program, not in a fork of vssd (whose pages would stay shared
         * copy-on-write into the freeze window). */
        static const char precopy[] = "vssd\0--commit-helper\0--precopy";
        CHECK(harness_vssd_child(h, precopy, sizeof(precopy)) > 0);
        kill(req, SIGKILL);
        waitpid(req, NULL, 0);
        CHECK(started);
        /* The set goes: the writer gets Abort; nothing is kept. */
        CHECK(harness_sh(h, &out, "for i in $(seq 600); do grep -q 'w abort' %s/log && echo aborted && break; sleep 0.05; done",
                         harness_dir(h)) == 0);
        CHECK(out && strstr(out, "aborted"));
        free(out);
        char *ev = harness_events(h, "w");
        CHECK(ev && !strstr(ev, "freeze"));
        free(ev);
        CHECK(harness_sh(h, &out, "for i in $(seq 600); do [ -z \"$(find %s/shadows -mindepth 1 2>/dev/null)\" ] && echo empty "
                                  "&& break; sleep 0.05; done", harness_state_dir(h)) == 0);
        CHECK(out && strstr(out, "empty"));
        free(out);
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo x > %s/after && sync %s/after'", mnt, mnt) == 0);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        vss_backup_release(b);
}

/* Pids of a process's children (of its main thread), into ret; how many. */
static size_t children_of(pid_t pid, pid_t *ret, size_t max) {
        char path[64];
        size_t n = 0;
        int c;
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) pid, (int) pid);
        FILE *f = fopen(path, "re");
        while (f && n < max && fscanf(f, "%d", &c) == 1)
                ret[n++] = c;
        if (f)
                fclose(f);
        return n;
}

/* A held set of a loop filesystem under way, its writer "w" inside Freeze (blocked there for
 * `block`): the session, with *ret_mnt the mount point, *ret_async the DoSnapshotSet and
 * *ret_commit the commit helper (<= 0 when none was found). */
static vss_backup *held_set_in_freeze(Harness *h, const char *block, char **ret_mnt, vss_async **ret_async,
                                      pid_t *ret_commit) {
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        char data[PATH_MAX];
        CHECK(harness_sh(h, NULL, "mkdir %s/data && echo a > %s/data/a && sync", mnt, mnt) == 0);
        snprintf(data, sizeof(data), "%s/data", mnt);
        harness_writer(h, "w", NULL);
        harness_set(h, "w", "freeze", block);
        vss_backup *b = harness_session(h);
        *ret_async = NULL;
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set(b, ret_async), 0);
        CHECK(harness_wait_started(h, "w", "freeze"));
        static const char helper[] = "vssd\0--commit-helper\0--with-mounts";
        *ret_commit = harness_vssd_child(h, helper, sizeof(helper));
        *ret_mnt = mnt;
        return b;
}

/* The set ends made: Thaw and PostSnapshot, no Abort, and the filesystem takes writes. */
static void held_set_made(Harness *h, vss_backup *b, vss_async *a, const char *mnt) {
        CHECK_HR(a ? vss_async_wait(a, 30000) : -1, 0);
        vss_async_unref(a);
        char *ev = harness_events(h, "w");
        CHECK(ev && strstr(ev, "thaw") && strstr(ev, "post-snapshot") && !strstr(ev, "abort"));
        free(ev);
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo x > %s/after && sync %s/after'", mnt, mnt) == 0);
        vss_backup_release(b);
}

/* The freeze helper is forked and set up before the first Freeze (the window holds its FIFREEZE,
 * not its start): while the writer handles Freeze, the commit helper has its child and the
 * filesystem takes writes; the set is then made as ever. */
static void test_hold_freeze_helper_ready(void) {
        Harness *h = harness_new(NULL);
        char *mnt;
        vss_async *a;
        pid_t commit, kids[8];
        vss_backup *b = held_set_in_freeze(h, "block 2", &mnt, &a, &commit);
        CHECK(commit > 0 && children_of(commit, kids, 8) == 1);
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo x > %s/probe && sync %s/probe'", mnt, mnt) == 0);
        held_set_made(h, b, a, mnt);
}

/* The commit helper, ready with its freeze helper set up, is killed while the writer handles
 * Freeze: the freeze helper goes with it (nothing was frozen), a new commit helper makes the
 * set, and nothing is left frozen or half-made. */
static void test_hold_helper_killed_while_ready(void) {
        Harness *h = harness_new(NULL);
        char *mnt, *out = NULL;
        vss_async *a;
        pid_t commit, kids[8];
        vss_backup *b = held_set_in_freeze(h, "block 1", &mnt, &a, &commit);
        CHECK(commit > 0 && children_of(commit, kids, 8) == 1);
        if (commit > 0)
                CHECK(kill(commit, SIGKILL) == 0);
        held_set_made(h, b, a, mnt);
        CHECK(harness_sh(h, &out, "ls %s | grep -c lease || true", harness_state_dir(h)) == 0);
        CHECK(out && atoi(out) == 0);
        free(out);
}

static const TestCase cases[] = {
        { "hold-requester-killed-during-copy-ahead", test_hold_requester_killed_during_copy_ahead },
        { "hold-storage-elsewhere", test_hold_storage_elsewhere },
        { "hold-explain", test_hold_explain },
        { "hold-with-btrfs-snapshot", test_hold_with_btrfs_snapshot },
        { "hold-mmap-writes", test_hold_mmap_writes },
        { "hold-window-mapped-too-big", test_hold_window_mapped_too_big },
        { "hold-generations", test_hold_generations },
        { "hold-generations-shared-storage", test_hold_generations_shared_storage },
        { "hold-generations-unheld", test_hold_generations_unheld },
        { "hold-window-too-small", test_hold_window_too_small },
        { "hold-memory-budget", test_hold_memory_budget },
        { "hold-frozen-elsewhere", test_hold_frozen_elsewhere },
        { "hold-path-swapped", test_hold_path_swapped },
        { "hold-freeze-helper-ready", test_hold_freeze_helper_ready },
        { "hold-helper-killed-while-ready", test_hold_helper_killed_while_ready },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
