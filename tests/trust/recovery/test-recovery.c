/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Trust boundaries, recovery (issue 10, items 10, 14, 15): a restarted vssd touches nothing that
 * is not its own. Needs root: loop filesystems, FIFREEZE, mounts, the test users.
 *
 * trust-restart-keeps-admin-freeze   vssd killed mid-hold, its lease helper thaws, the admin
 *                                    freezes the filesystem: the restarted vssd leaves it frozen
 * trust-state-full                   a full state directory is INSUFFICIENT_STORAGE, named
 * trust-bad-registry                 a corrupt, truncated, newer-schema or symlinked registry.db:
 *                                    vssd exits 1, says what and what to do, touches nothing
 * trust-registry-read-only           the same for a registry on a read-only filesystem
 * trust-writer-class-survives-restart  a writer class id stays its user's across a restart
 */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/common.h"
#include "tests/users.h"

/* ---- item 10 ---- */

static char frozen_mnt[600];

/* Whatever happens, the admin's freeze of a filesystem this test made does not outlive it. Runs
 * before the harness's own cleanup (atexit order), which unmounts it. */
static void thaw_at_exit(void) {
        if (frozen_mnt[0]) {
                char cmd[700];
                snprintf(cmd, sizeof(cmd), "fsfreeze -u '%s' 2>/dev/null", frozen_mnt);
                if (system(cmd) < 0)
                        fprintf(stderr, "cannot run fsfreeze -u\n");
        }
}

static void test_restart_keeps_admin_freeze(void) {
        Harness *h = harness_new("{\"hold_window_ms\": 30000, \"providers\": [{\"type\": \"exec\", \"name\": \"image\", "
                                 "\"create\": \"touch $HARNESS_DIR/exec-started; sleep 60; echo $HARNESS_DIR/none\", "
                                 "\"delete\": \"true\"}]}");
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M"), *out = NULL;
        snprintf(frozen_mnt, sizeof(frozen_mnt), "%s", mnt);
        atexit(thaw_at_exit);

        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
                _exit(harness_sh(h, NULL, "vssadmin create shadow --for %s --provider image >/dev/null 2>&1", mnt));
        CHECK(harness_sh(h, &out, "for i in $(seq 600); do [ -e %s/exec-started ] && echo started && break; sleep 0.05; done",
                         harness_dir(h)) == 0);
        CHECK(out && strstr(out, "started"));
        free(out);
        out = NULL;

        /* vssd dies mid-hold; its lease helper thaws. The moment it has, the admin freezes the
         * filesystem for a purpose of their own (fsfreeze -f fails while it is still frozen). */
        harness_kill_vssd(h);
        CHECK(harness_sh(h, &out, "for i in $(seq 600); do fsfreeze -f %s 2>/dev/null && echo frozen && break; sleep 0.05; done",
                         mnt) == 0);
        CHECK(out && strstr(out, "frozen"));
        free(out);
        waitpid(pid, NULL, 0);

        /* The restarted vssd recovers: the admin's freeze is not its to thaw. FITHAW by the admin
         * succeeds only if the filesystem is still frozen. */
        harness_restart_vssd(h);
        CHECK(harness_sh(h, NULL, "fsfreeze -u %s", mnt) == 0);
        frozen_mnt[0] = 0;

        /* And recovery is done with it: a second restart has nothing to thaw either. */
        snprintf(frozen_mnt, sizeof(frozen_mnt), "%s", mnt);
        CHECK(harness_sh(h, NULL, "fsfreeze -f %s", mnt) == 0);
        harness_restart_vssd(h);
        CHECK(harness_sh(h, NULL, "fsfreeze -u %s", mnt) == 0);
        frozen_mnt[0] = 0;
        CHECK(harness_sh(h, &out, "sqlite3 %s/registry.db 'SELECT count(*) FROM frozen'", harness_state_dir(h)) == 0);
        CHECK(out && atoi(out) == 0);
        free(out);
}

/* ---- item 14 ---- */

/* A snapshot set of data must fail for want of space in the state directory, and say so. */
static void check_state_full(Harness *h, const char *data) {
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, data, NULL, NULL), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), VSS_E_INSUFFICIENT_STORAGE);
        const char *msg = vss_backup_errmsg(b);
        if (!msg || !strstr(msg, harness_state_dir(h)) || !strstr(msg, "full")) {
                fprintf(stderr, "message: %s\n", msg ? msg : "(none)");
                CHECK(!"the message names the full state directory");
        }
        vss_backup_release(b);
        /* Nothing half-made is left. */
        CHECK(harness_count_shadow_files(h) == 0);
}

static void test_state_full(void) {
        Harness *h = harness_new(NULL);
        char *data = harness_make_data(h, "data"), big[600];
        snprintf(big, sizeof(big), "%s/big", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -p %s && head -c 2000000 /dev/urandom > %s/blob", big, big) == 0);
        harness_state_on_tmpfs(h, "512k");

        /* Room for the registry, not for the file provider's copy. */
        check_state_full(h, big);

        /* Full to the last block: not even the registry can record the set. */
        (void) harness_sh(h, NULL, "head -c 8M /dev/zero > %s/filler 2>/dev/null", harness_state_dir(h));
        check_state_full(h, data);
}

static char *sha(Harness *h, const char *path) {
        char *out = NULL;
        CHECK(harness_sh(h, &out, "sha256sum < '%s'", path) == 0);
        return out;
}

/* vssd on state_dir must refuse to start, naming registry.db and the words in want; the file
 * (or the symlink's target) must stay as it was. */
static void check_refused(Harness *h, const char *state_dir, const char *file, const char *const *want) {
        char *before = sha(h, file), *after, *out = NULL;
        int st = harness_sh(h, &out, "%s --state-dir %s --socket %s/s.sock 2>&1", VSSD_PATH, state_dir, state_dir);
        CHECK(st == 1);
        bool ok = out && strstr(out, "registry.db");
        for (size_t i = 0; want[i]; i++)
                ok = ok && strstr(out, want[i]);
        if (!ok) {
                fprintf(stderr, "%s: status %d, stderr: %s\n", state_dir, st, out ? out : "(none)");
                CHECK(!"vssd names registry.db, what is wrong and what to do");
        }
        after = sha(h, file);
        CHECK(before && after && streq(before, after));
        free(before);
        free(after);
        free(out);
}

/* A registry as vssd leaves it after a run, checkpointed into one file, padded so that half of it
 * misses real pages. */
static void make_registry(Harness *h, char *ret, size_t size) {
        snprintf(ret, size, "%s/good.db", harness_dir(h));
        harness_kill_vssd(h);
        CHECK(harness_sh(h, NULL,
                         "sqlite3 %s/registry.db 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null && cp %s/registry.db %s && "
                         "sqlite3 %s 'PRAGMA journal_mode=DELETE; CREATE TABLE pad(x); "
                         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) "
                         "INSERT INTO pad SELECT randomblob(2000) FROM n;' >/dev/null",
                         harness_state_dir(h), harness_state_dir(h), ret, ret) == 0);
}

static void test_bad_registry(void) {
        Harness *h = harness_new(NULL);
        char good[600], dir[700], file[800];
        make_registry(h, good, sizeof(good));

        static const char *const corrupt[] = { "corrupt", "move it aside", NULL };
        snprintf(dir, sizeof(dir), "%s/corrupt", harness_dir(h));
        snprintf(file, sizeof(file), "%s/registry.db", dir);
        CHECK(harness_sh(h, NULL, "mkdir %s && head -c 65536 /dev/urandom > %s", dir, file) == 0);
        check_refused(h, dir, file, corrupt);

        snprintf(dir, sizeof(dir), "%s/truncated", harness_dir(h));
        snprintf(file, sizeof(file), "%s/registry.db", dir);
        CHECK(harness_sh(h, NULL, "mkdir %s && cp %s %s && truncate -s $(( $(stat -c %%s %s) / 2 )) %s", dir, good, file,
                         good, file) == 0);
        check_refused(h, dir, file, corrupt);

        static const char *const newer[] = { "newer", "schema", NULL };
        snprintf(dir, sizeof(dir), "%s/newer", harness_dir(h));
        snprintf(file, sizeof(file), "%s/registry.db", dir);
        CHECK(harness_sh(h, NULL, "mkdir %s && cp %s %s && sqlite3 %s 'PRAGMA user_version = 1000'", dir, good, file,
                         file) == 0);
        check_refused(h, dir, file, newer);

        static const char *const link[] = { "symbolic link", NULL };
        snprintf(dir, sizeof(dir), "%s/symlink", harness_dir(h));
        snprintf(file, sizeof(file), "%s/target.db", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir %s && cp %s %s && ln -s %s %s/registry.db", dir, good, file, file, dir) == 0);
        check_refused(h, dir, file, link);
}

static void test_registry_read_only(void) {
        Harness *h = harness_new(NULL);
        char good[600], dir[700], file[800];
        make_registry(h, good, sizeof(good));
        static const char *const ro[] = { "read-only", NULL };
        snprintf(dir, sizeof(dir), "%s/ro", harness_dir(h));
        snprintf(file, sizeof(file), "%s/registry.db", dir);
        CHECK(harness_sh(h, NULL, "mkdir %s && mount -t tmpfs -o size=4m tmpfs %s && cp %s %s && mkdir %s/shadows && "
                                  "mount -o remount,ro %s",
                         dir, dir, good, file, dir, dir) == 0);
        check_refused(h, dir, file, ro);
        CHECK(harness_sh(h, NULL, "umount %s", dir) == 0);
}

/* ---- item 15 ---- */

#define ALICE_CLASS "5b1d2e4f-aaaa-4bbb-8ccc-000000000015"

static void bob_takes_alices_class(Harness *h, void *userdata) {
        sd_bus *bus = connect_or_die(h);
        CHECK_HR(call(bus, "Subscribe", "ssssuu", ALICE_CLASS, "5b1d2e4f-aaaa-4bbb-8ccc-0000000015b0", "aw", "", 0u, 0u),
                 VSS_E_ACCESSDENIED);
        CHECK(strstr(last_msg, "belongs to another user") != NULL);
        sd_bus_flush_close_unref(bus);
}

static void test_writer_class_survives_restart(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        pid_t w = writer_as(h, ALICE, "aw", ALICE_CLASS);
        stop_writer(w);

        /* vssd restarts while alice's writer is away: bob comes first, and is refused. */
        harness_restart_vssd(h);
        run_as(BOB, bob_takes_alices_class, h, NULL, "bob taking alice's class after a restart");
        CHECK(!writer_listed(h, "aw"));

        /* Alice's own writer subscribes as before. */
        w = writer_as(h, ALICE, "aw", ALICE_CLASS);
        CHECK(writer_listed(h, "aw"));
        stop_writer(w);
}

static const TestCase cases[] = {
        { "trust-restart-keeps-admin-freeze", test_restart_keeps_admin_freeze },
        { "trust-state-full", test_state_full },
        { "trust-bad-registry", test_bad_registry },
        { "trust-registry-read-only", test_registry_read_only },
        { "trust-writer-class-survives-restart", test_writer_class_survives_restart },
        {},
};

int main(int argc, char *argv[]) {
        if (geteuid() != 0) {
                fprintf(stderr, "test-recovery: needs root (loop filesystems, fsfreeze, mounts, users)\n");
                return 77;
        }
        return test_main(argc, argv, cases);
}
