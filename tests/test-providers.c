/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Providers on filesystems the tests make themselves (loop devices, as root). */

#include <json-c/json.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "lib/common.h"
#include "tests/harness.h"

/* Runs `vssadmin create shadow` and returns the first shadow object (caller puts the root). */
static json_object *create_shadow(Harness *h, const char *path, const char *provider, json_object **ret_root) {
        char *out = NULL;
        int rc = harness_sh(h, &out, "vssadmin create shadow --for %s %s%s --json", path, provider ? "--provider " : "",
                            provider ? provider : "");
        CHECK(rc == 0);
        json_object *root = json_tokener_parse(out ? out : "");
        free(out);
        *ret_root = root;
        json_object *shadows = root ? json_object_object_get(root, "shadows") : NULL;
        CHECK(shadows && json_object_array_length(shadows) == 1);
        return shadows && json_object_array_length(shadows) == 1 ? json_object_array_get_idx(shadows, 0) : NULL;
}

static const char *field(json_object *o, const char *key) {
        return o ? json_object_get_string(json_object_object_get(o, key)) : NULL;
}

static void test_btrfs_snapshot(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "256M");
        char vol[400], sub[450];
        snprintf(vol, sizeof(vol), "%s/vol", mnt);
        snprintf(sub, sizeof(sub), "%s/sub", vol);
        CHECK(harness_sh(h, NULL, "btrfs -q subvolume create %s && mkdir %s && echo data > %s/file && "
                                  "head -c 1000000 /dev/urandom > %s/blob", vol, sub, sub, vol) == 0);
        harness_writer(h, "w", NULL);

        /* A subvolume is shadowed by the btrfs provider without being asked. */
        json_object *root = NULL, *s = create_shadow(h, vol, NULL, &root);
        CHECK_STR(field(s, "provider"), "btrfs");
        const char *spath = field(s, "shadow_path");
        CHECK(spath && strncmp(spath, mnt, strlen(mnt)) == 0 && strstr(spath, "/.openvss/"));
        CHECK(harness_sh(h, NULL, "diff -r %s %s", vol, spath) == 0);
        /* It is a read-only subvolume. */
        char *out = NULL;
        CHECK(harness_sh(h, &out, "btrfs property get -ts %s ro", spath) == 0);
        CHECK(out && strstr(out, "ro=true"));
        free(out);
        CHECK(harness_sh(h, NULL, "touch %s/new 2>/dev/null", spath) != 0);
        char snap[600];
        snprintf(snap, sizeof(snap), "%s", spath ? spath : "");
        json_object_put(root);

        /* A path inside a subvolume: the subvolume is snapshotted, the shadow path is the path in it. */
        s = create_shadow(h, sub, NULL, &root);
        CHECK_STR(field(s, "provider"), "btrfs");
        CHECK_STR(field(s, "original_path"), sub);
        spath = field(s, "shadow_path");
        CHECK(spath && strlen(spath) > 4 && streq(spath + strlen(spath) - 4, "/sub"));
        CHECK(harness_sh(h, NULL, "diff -r %s %s", sub, spath) == 0);
        json_object_put(root);

        /* The file provider still works here when named (reflinks on btrfs). */
        s = create_shadow(h, sub, "file", &root);
        CHECK_STR(field(s, "provider"), "file");
        CHECK(harness_sh(h, NULL, "diff -r %s %s", sub, field(s, "shadow_path")) == 0);
        json_object_put(root);

        /* Deleting removes the snapshots and their set directories. */
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --all >/dev/null") == 0);
        CHECK(access(snap, F_OK) < 0);
        CHECK(harness_sh(h, &out, "find %s/.openvss -mindepth 1 | wc -l", mnt) == 0);
        CHECK(out && atoi(out) == 0);
        free(out);
        CHECK(harness_sh(h, &out, "btrfs subvolume list %s | wc -l", mnt) == 0);
        CHECK(out && atoi(out) == 1); /* only vol */
        free(out);
}

static void test_btrfs_failure_leaves_nothing(void) {
        /* A writer vetoes Thaw: the snapshot already cut must be deleted. */
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "256M");
        char vol[400], *out = NULL;
        snprintf(vol, sizeof(vol), "%s/vol", mnt);
        CHECK(harness_sh(h, NULL, "btrfs -q subvolume create %s && echo x > %s/f", vol, vol) == 0);
        harness_writer(h, "w", NULL);
        harness_set(h, "w", "thaw", "fail 75 lost my place");
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --json", vol) == 1);
        CHECK(out && strstr(out, "VSS_E_WRITERERROR_RETRYABLE"));
        free(out);
        CHECK(harness_sh(h, &out, "btrfs subvolume list %s | wc -l", mnt) == 0);
        CHECK(out && atoi(out) == 1);
        free(out);
}

/* btrfs-path-swapped: between AddToSnapshotSet and the cut, the subvolume at the volume's path
 * is renamed away and a plain directory put there (what a user who owns the path can do). The
 * snapshot would be of the subvolume holding it now (the filesystem's top), put where the shadow
 * path cut short by another length says: outside .openvss, left behind by a delete. The set
 * fails instead, and nothing is made. */
static void test_btrfs_path_swapped(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "256M");
        char dir[600], x[700], old[720], *out = NULL;
        /* The length that puts the old cut at MNT/.op: 8 + 71 = 83, the length of "/.openvss/SET/SHADOW" less 4. */
        snprintf(dir, sizeof(dir), "%s/home/%0*d", mnt, 71, 0);
        snprintf(x, sizeof(x), "%s/x", dir);
        snprintf(old, sizeof(old), "%s.old", x);
        CHECK(harness_sh(h, NULL, "mkdir -p %s && btrfs -q subvolume create %s && echo data > %s/f", dir, x, x) == 0);
        harness_writer(h, "w", NULL);
        vss_backup *b = harness_session(h);
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, x, "btrfs", NULL), 0);
        CHECK(rename(x, old) == 0 && mkdir(x, 0755) == 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK(vss_backup_do_snapshot_set_sync(b) < 0);
        vss_backup_release(b);
        CHECK(harness_sh(h, &out, "btrfs subvolume list %s | wc -l", mnt) == 0);
        CHECK(out && atoi(out) == 1); /* x.old alone */
        free(out);
        CHECK(harness_sh(h, &out, "ls -A %s | tr '\\n' ' '", mnt) == 0);
        CHECK(out && (streq(out, "home ") || streq(out, ".openvss home ")));
        if (out && !streq(out, "home ") && !streq(out, ".openvss home "))
                fprintf(stderr, "top of the filesystem: %s\n", out);
        free(out);
        /* Nor an empty directory of the set left in .openvss. */
        CHECK(harness_sh(h, &out, "ls -A %s/.openvss 2>/dev/null | wc -l", mnt) == 0);
        CHECK(out && atoi(out) == 0);
        free(out);
}

/* btrfs-openvss-theirs: the mount's root may be written by others (1777) and a user made
 * .openvss there first: shadows would land in a directory of theirs. Refused, nothing made in it. */
static void test_btrfs_openvss_theirs(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.btrfs -q", "256M");
        char vol[400], *out = NULL;
        snprintf(vol, sizeof(vol), "%s/vol", mnt);
        CHECK(harness_sh(h, NULL, "chmod 1777 %s && btrfs -q subvolume create %s && echo x > %s/f && "
                                  "mkdir %s/.openvss && chown 4242 %s/.openvss", mnt, vol, vol, mnt, mnt) == 0);
        harness_writer(h, "w", NULL);
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --provider btrfs --json", vol) == 1);
        free(out);
        /* The refusal names the directory and why, not a bare 'Operation not permitted'. */
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --provider btrfs --json | jq -r .error.message",
                         vol) == 0);
        CHECK(out && strstr(out, "/.openvss is owned by uid 4242 with mode 0755") && strstr(out, mnt));
        if (out && !strstr(out, "uid 4242"))
                fprintf(stderr, "message: %s", out);
        free(out);
        CHECK(harness_sh(h, &out, "ls -A %s/.openvss | wc -l; btrfs subvolume list %s | wc -l", mnt, mnt) == 0);
        CHECK(out && streq(out, "0\n1\n"));
        free(out);
}

static long used_mib(Harness *h, const char *mnt) {
        char *out = NULL;
        long v = -1;
        if (harness_sh(h, &out, "sync; df --output=used -B1M %s | tail -1", mnt) == 0 && out)
                v = atol(out);
        free(out);
        return v;
}

static void test_xfs_reflink(void) {
        /* The file provider reflinks on XFS: a 64 MiB file's shadow takes no new data blocks. The
         * state directory must be on the same filesystem for that. */
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.xfs -q -m reflink=1", "512M");
        char data[400], state[400];
        snprintf(data, sizeof(data), "%s/data", mnt);
        snprintf(state, sizeof(state), "%s/state", mnt);
        CHECK(harness_sh(h, NULL, "mkdir %s && head -c 67108864 /dev/urandom > %s/big", data, data) == 0);
        harness_restart_vssd_at(h, state);
        harness_writer(h, "w", NULL);
        long before = used_mib(h, mnt);
        json_object *root = NULL;
        json_object *s = create_shadow(h, data, "file", &root);
        CHECK(harness_sh(h, NULL, "cmp %s/big %s/big", data, field(s, "shadow_path")) == 0);
        long after = used_mib(h, mnt);
        CHECK(before > 64 && after >= before && after - before < 16);
        json_object_put(root);
}

/* The test exec provider: proves the filesystem is held frozen (a write started during the hold
 * does not finish), then copies the loop image, and prints where the copy is. */
static const char exec_create[] =
        "#!/bin/sh\n"
        "set -e\n"
        "d=\"$HARNESS_DIR\"\n"
        "echo \"$VSS_PROVIDER $VSS_VOLUME $VSS_DEVICE $VSS_MOUNT_POINT $VSS_SNAPSHOT_SET_ID $VSS_SHADOW_ID\" > \"$d/exec-env\"\n"
        "if [ -f \"$d/exec-sleep\" ]; then touch \"$d/exec-started\"; sleep \"$(cat \"$d/exec-sleep\")\"; fi\n"
        /* An application writing during the hold: a process of its own, not of the command's group. */
        "setsid sh -c 'echo during > \"$VSS_MOUNT_POINT/written-during-hold\"; sync \"$VSS_MOUNT_POINT/written-during-hold\"; "
        "touch \"$HARNESS_DIR/write-done\"' &\n"
        "sleep 0.5\n"
        "if [ -e \"$d/write-done\" ]; then echo unblocked > \"$d/hold-result\"; else echo blocked > \"$d/hold-result\"; fi\n"
        "cp --sparse=always \"$d/img0\" \"$d/shadow-$VSS_SHADOW_ID.img\"\n"
        "echo \"$d/shadow-$VSS_SHADOW_ID.img\"\n";

/* It also notes the command line of its nearest ancestor that is vssd's binary. */
static const char exec_delete[] = "#!/bin/sh\n"
                                  "echo \"$VSS_SNAPSHOT_SET_ID $VSS_SHADOW_ID\" > \"$HARNESS_DIR/exec-delete-env\"\n"
                                  "p=$PPID\n"
                                  "while [ \"$p\" -gt 1 ]; do\n"
                                  "  c=$(tr '\\0' ' ' < /proc/$p/cmdline)\n"
                                  "  case \"$c\" in *vssd*) echo \"$c\" > \"$HARNESS_DIR/exec-delete-vssd\"; break ;; esac\n"
                                  "  p=$(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f2)\n"
                                  "done\n"
                                  "rm -f \"$VSS_SHADOW_PATH\"\n";

static Harness *exec_harness(const char *hold_ms, char **ret_mnt) {
        char cfg[1024], path[600];
        /* Commands run with /bin/sh -c and see vssd's environment, where the harness dir is. */
        snprintf(cfg, sizeof(cfg),
                 "{\"hold_window_ms\": %s, \"providers\": [{\"type\": \"exec\", \"name\": \"image\", "
                 "\"create\": \"sh $HARNESS_DIR/exec-create\", \"delete\": \"sh $HARNESS_DIR/exec-delete\"}]}",
                 hold_ms);
        Harness *h = harness_new(cfg);
        snprintf(path, sizeof(path), "%s/exec-create", harness_dir(h));
        FILE *f = fopen(path, "we");
        CHECK(f && fputs(exec_create, f) >= 0);
        if (f)
                fclose(f);
        snprintf(path, sizeof(path), "%s/exec-delete", harness_dir(h));
        f = fopen(path, "we");
        CHECK(f && fputs(exec_delete, f) >= 0);
        if (f)
                fclose(f);
        *ret_mnt = harness_loop_fs(h, "mkfs.ext4 -q", "64M");
        return h;
}

/* hold-exclude-other-mount: hold_exclude names a filesystem's mount; another mount of the same
 * filesystem (a bind mount here, a btrfs subvolume's alike) is the same filesystem, which a freeze
 * would freeze whole: an exec provider's volume there is refused too. */
static void test_hold_exclude_other_mount(void) {
        char *mnt;
        Harness *h = exec_harness("10000", &mnt);
        char bind[600], *out = NULL;
        snprintf(bind, sizeof(bind), "%s/bind", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -p %s/sub/x %s && mount --bind %s/sub %s", mnt, bind, mnt, bind) == 0);
        CHECK(harness_sh(h, NULL, "jq --arg m %s '.hold_exclude += [$m]' %s/vssd.json > %s/vssd.json.new && "
                                  "mv %s/vssd.json.new %s/vssd.json", mnt, harness_dir(h), harness_dir(h),
                         harness_dir(h), harness_dir(h)) == 0);
        harness_restart_vssd(h);
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s/x --provider image 2>&1", bind) == 1);
        CHECK(out && strstr(out, "hold_exclude keeps from being held"));
        if (out && !strstr(out, "hold_exclude keeps from being held"))
                fprintf(stderr, "create said: %s\n", out);
        free(out);
        CHECK(harness_sh(h, NULL, "umount %s", bind) == 0);
}

static bool file_has(Harness *h, const char *name, const char *text) {
        char *out = NULL;
        bool ok = harness_sh(h, &out, "cat %s/%s 2>/dev/null", harness_dir(h), name) == 0 && out && strstr(out, text);
        free(out);
        return ok;
}

static void test_exec_flush_and_hold(void) {
        char *mnt;
        Harness *h = exec_harness("10000", &mnt);
        harness_writer(h, "w", NULL);
        /* What hold_exclude lists (the machine's own filesystems, in every test) is never frozen,
         * not by an exec provider either: refused when added. */
        char *refused = NULL, *mine = harness_make_data(h, "on-root");
        CHECK(harness_sh(h, &refused, "vssadmin create shadow --for %s --provider image 2>&1", mine) == 1);
        CHECK(refused && strstr(refused, "hold_exclude keeps from being held"));
        free(refused);
        json_object *root = NULL;
        json_object *s = create_shadow(h, mnt, "image", &root);
        CHECK_STR(field(s, "provider"), "image");
        const char *loc = field(s, "shadow_path");
        CHECK(loc && strstr(loc, "/shadow-") && access(loc, F_OK) == 0);
        /* The write started during the hold was blocked, and finished after the thaw. */
        CHECK(file_has(h, "hold-result", "blocked"));
        char *out = NULL;
        CHECK(harness_sh(h, &out, "for i in $(seq 100); do [ -e %s/write-done ] && echo done && break; sleep 0.05; done",
                         harness_dir(h)) == 0);
        CHECK(out && strstr(out, "done"));
        free(out);
        CHECK(file_has(h, "exec-env", "image "));
        CHECK(file_has(h, "exec-env", "/dev/loop"));
        /* Deleting runs the delete command, which gets the shadow's ids beside its location. */
        char copy[600], ids[200];
        snprintf(copy, sizeof(copy), "%s", loc ? loc : "");
        snprintf(ids, sizeof(ids), "%s %s", field(s, "snapshot_set_id"), field(s, "shadow_id"));
        json_object_put(root);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --all >/dev/null") == 0);
        CHECK(access(copy, F_OK) < 0);
        CHECK(file_has(h, "exec-delete-env", ids));
        /* It ran under vssd's delete helper, a program of its own, not a fork of vssd (which would
         * leave every page of vssd's shared copy-on-write). */
        CHECK(file_has(h, "exec-delete-vssd", "--delete-helper"));

        /* vssd never holds frozen the filesystem its own state is on (here: the test's loop fs). */
        char state[500];
        snprintf(state, sizeof(state), "%s/state", mnt);
        harness_restart_vssd_at(h, state);
        CHECK(harness_sh(h, &out, "mkdir -p %s/data && vssadmin create shadow --for %s/data --provider image --json", mnt,
                         mnt) == 1);
        CHECK(out && strstr(out, "VSS_E_VOLUME_NOT_SUPPORTED") && strstr(out, "state directory"));
        free(out);
}

/* A shadow its provider cannot delete is never forgotten: its record stays (listed, deletable
 * later), here when an auto-release set ends with a delete command that fails. */
static void test_exec_delete_fails_keeps_record(void) {
        char *mnt, *out = NULL;
        Harness *h = exec_harness("10000", &mnt);
        harness_writer(h, "w", NULL);
        vss_backup *b = harness_session(h);
        vss_id shadow;
        vss_snapshot_prop p;
        CHECK_HR(vss_backup_start_snapshot_set(b, NULL), 0);
        CHECK_HR(vss_backup_add_to_snapshot_set(b, mnt, "image", &shadow), 0);
        CHECK_HR(vss_backup_prepare_for_backup_sync(b), 0);
        CHECK_HR(vss_backup_do_snapshot_set_sync(b), 0);
        CHECK_HR(vss_backup_get_snapshot_properties(b, &shadow, &p), 0);
        CHECK(access(p.shadow_path, F_OK) == 0);
        CHECK(harness_sh(h, NULL, "echo 'echo cannot reach the storage >&2; exit 1' > %s/exec-delete", harness_dir(h)) == 0);
        vss_backup_release(b); /* auto-release: vssd deletes the set now, and the delete fails */
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && strstr(out, p.shadow_path));
        free(out);
        CHECK(access(p.shadow_path, F_OK) == 0);
        /* Kept across a restart too (listed again once the restarted vssd's delete has failed
         * again in the background), and deleted once the command works again. */
        harness_restart_vssd(h);
        CHECK(harness_sh(h, NULL, "for i in $(seq 200); do vssadmin list shadows --json | grep -qF '%s' && exit 0; "
                         "sleep 0.05; done; exit 1", p.shadow_path) == 0);
        CHECK(harness_sh(h, NULL, "printf '%%s' '%s' > %s/exec-delete", "rm -f \"$VSS_SHADOW_PATH\"", harness_dir(h)) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --all >/dev/null") == 0);
        CHECK(access(p.shadow_path, F_OK) < 0);
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && !strstr(out, "shadow_id"));
        free(out);
}

static void test_exec_hold_timeout(void) {
        char *mnt;
        Harness *h = exec_harness("700", &mnt);
        harness_writer(h, "w", NULL);
        harness_sh(h, NULL, "echo 5 > %s/exec-sleep", harness_dir(h));
        char *out = NULL;
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --provider image --json", mnt) == 1);
        CHECK(out && strstr(out, "VSS_E_HOLD_WRITES_TIMEOUT"));
        free(out);
        char *ev = harness_events(h, "w");
        CHECK_STR(ev, "identify prepare-backup prepare-snapshot freeze abort backup-shutdown");
        free(ev);
        /* Writable again, and nothing of the set left. */
        CHECK(harness_sh(h, NULL, "timeout 5 sh -c 'echo x > %s/after && sync'", mnt) == 0);
        CHECK(harness_sh(h, &out, "ls %s | grep -c '^shadow-' || true", harness_dir(h)) == 0);
        CHECK(out && atoi(out) == 0);
        free(out);
}

static void test_exec_vssd_killed_during_hold(void) {
        char *mnt;
        Harness *h = exec_harness("30000", &mnt);
        harness_writer(h, "w", NULL);
        harness_sh(h, NULL, "echo 20 > %s/exec-sleep", harness_dir(h));
        pid_t pid = fork();
        if (pid == 0) {
                char cmd[600];
                snprintf(cmd, sizeof(cmd), "vssadmin create shadow --for %s --provider image >/dev/null 2>&1", mnt);
                _exit(harness_sh(h, NULL, "%s", cmd));
        }
        char *out = NULL;
        CHECK(harness_sh(h, &out, "for i in $(seq 400); do [ -e %s/exec-started ] && echo started && break; sleep 0.05; done",
                         harness_dir(h)) == 0);
        CHECK(out && strstr(out, "started"));
        free(out);
        /* Frozen now: a write blocks. vssd dies; the lease helper thaws within a second. */
        harness_kill_vssd(h);
        CHECK(harness_sh(h, NULL, "timeout 1 sh -c 'echo x > %s/after-kill && sync %s/after-kill'", mnt, mnt) == 0);
        waitpid(pid, NULL, 0);
        /* The restarted vssd keeps nothing of the unfinished set. */
        harness_restart_vssd(h);
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && strstr(out, "\"shadows\":[\n  ]"));
        free(out);
}

/* Where a shadow is, is recorded as soon as it is made: vssd killed while the next volume of the
 * set is still being cut, the restarted vssd deletes the first shadow by its real location. */
static void test_exec_vssd_killed_location_kept(void) {
        char *mnt, mnt2[600], *out = NULL;
        Harness *h = exec_harness("30000", &mnt);
        snprintf(mnt2, sizeof(mnt2), "%s", harness_loop_fs(h, "mkfs.ext4 -q", "64M"));
        harness_writer(h, "w", NULL);
        CHECK(harness_sh(h, NULL,
                         "printf '%%s\\n' '#!/bin/sh' 'd=\"$HARNESS_DIR\"' "
                         "'if [ \"$VSS_MOUNT_POINT\" = \"%s\" ]; then touch \"$d/slow-started\"; sleep 30; fi' "
                         "'cp --sparse=always \"$d/img0\" \"$d/shadow-$VSS_SHADOW_ID.img\"' "
                         "'echo \"$d/shadow-$VSS_SHADOW_ID.img\"' > %s/exec-create",
                         mnt2, harness_dir(h)) == 0);
        pid_t pid = fork();
        if (pid == 0) {
                char cmd[1400];
                snprintf(cmd, sizeof(cmd), "vssadmin create shadow --for %s --for %s --provider image >/dev/null 2>&1",
                         mnt, mnt2);
                _exit(harness_sh(h, NULL, "%s", cmd));
        }
        CHECK(harness_sh(h, &out, "for i in $(seq 400); do [ -e %s/slow-started ] && echo started && break; sleep 0.05; done",
                         harness_dir(h)) == 0);
        CHECK(out && strstr(out, "started"));
        free(out);
        /* The first volume's shadow exists; vssd dies before the set is done. */
        CHECK(harness_sh(h, &out, "ls %s | grep -c '^shadow-.*img$'", harness_dir(h)) == 0);
        CHECK(out && atoi(out) == 1);
        free(out);
        harness_kill_vssd(h);
        waitpid(pid, NULL, 0);
        harness_restart_vssd(h);
        /* Recovery (in the background) removes it by its real location: nothing is left behind. */
        CHECK(harness_sh(h, NULL, "for i in $(seq 200); do ls %s | grep -q '^shadow-.*img$' || exit 0; sleep 0.05; done; "
                         "exit 1", harness_dir(h)) == 0);
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && !strstr(out, "shadow_id"));
        free(out);
}

static void test_provider_honesty(void) {
        /* Providers say what they support and whether a multi-volume set is atomic; a set that is
         * not says so in its shadows' properties. */
        char *mnt;
        Harness *h = exec_harness("10000", &mnt);
        char *out = NULL;
        CHECK(harness_sh(h, &out, "vssadmin list providers --json") == 0);
        json_object *root = json_tokener_parse(out ? out : "");
        free(out);
        json_object *arr = root ? json_object_object_get(root, "providers") : NULL;
        int seen = 0;
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *p = json_object_array_get_idx(arr, i);
                const char *name = field(p, "name");
                bool atomic = json_object_get_boolean(json_object_object_get(p, "atomic"));
                CHECK(field(p, "supports") && strlen(field(p, "supports")) > 0);
                if (streq(name, "file") || streq(name, "btrfs")) {
                        CHECK(!atomic);
                        seen++;
                }
                if (streq(name, "image")) {
                        CHECK(atomic);
                        seen++;
                }
        }
        CHECK(seen == 3);
        json_object_put(root);

        char *a = harness_make_data(h, "a"), *b = harness_make_data(h, "b");
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --for %s --json", a, b) == 0);
        root = json_tokener_parse(out ? out : "");
        free(out);
        arr = root ? json_object_object_get(root, "shadows") : NULL;
        CHECK(arr && json_object_array_length(arr) == 2);
        for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
                json_object *sh = json_object_array_get_idx(arr, i);
                CHECK(!json_object_get_boolean(json_object_object_get(sh, "atomic")));
                CHECK(json_object_get_int64(json_object_object_get(sh, "attributes")) & OPENVSS_ATTR_NOT_ATOMIC);
        }
        json_object_put(root);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && strstr(out, "Not atomic across volumes"));
        free(out);
        /* One volume is trivially atomic. */
        json_object *s = create_shadow(h, a, NULL, &root);
        CHECK(s && json_object_get_boolean(json_object_object_get(s, "atomic")));
        json_object_put(root);
}

static char *shadow_id_of(json_object *s) {
        const char *id = field(s, "shadow_id");
        return strdup(id ? id : "");
}

static void test_shadow_limits(void) {
        /* At most two shadows per volume here, and 3 MB for the file provider's shadows. */
        Harness *h = harness_new("{\"max_shadows_per_volume\": 2, \"file_storage_budget_bytes\": 3000000}");
        char *a = harness_make_data(h, "a"), *big = harness_make_data(h, "big"), *out = NULL;
        harness_writer(h, "w", NULL);
        json_object *root = NULL;
        char *first = shadow_id_of(create_shadow(h, a, NULL, &root));
        json_object_put(root);
        char *second = shadow_id_of(create_shadow(h, a, NULL, &root));
        json_object_put(root);
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --json", a) == 1);
        CHECK(out && strstr(out, "VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED"));
        free(out);
        /* The oldest goes; then there is room again. */
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --for %s --oldest >/dev/null", a) == 0);
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && !strstr(out, first) && strstr(out, second));
        free(out);
        CHECK(create_shadow(h, a, NULL, &root) != NULL);
        json_object_put(root);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --for %s/nothing-here --oldest 2>/dev/null", a) == 1);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --for %s 2>/dev/null", a) == 2);

        /* Past the storage budget: refused before anything is copied. */
        CHECK(harness_sh(h, NULL, "head -c 2000000 /dev/urandom > %s/blob", big) == 0);
        free(shadow_id_of(create_shadow(h, big, NULL, &root)));
        json_object_put(root);
        int before = harness_count_shadow_files(h);
        CHECK(harness_sh(h, &out, "vssadmin create shadow --for %s --json", big) == 1);
        CHECK(out && strstr(out, "VSS_E_INSUFFICIENT_STORAGE") && strstr(out, "budget"));
        free(out);
        CHECK(harness_count_shadow_files(h) == before);
        free(first);
        free(second);
}

static bool is_mounted(Harness *h, const char *dir) {
        return harness_sh(h, NULL, "findmnt -rn --mountpoint %s >/dev/null", dir) == 0;
}

static void test_expose(void) {
        char *mnt, *out = NULL;
        Harness *h = exec_harness("10000", &mnt);
        char *data = harness_make_data(h, "data");
        char at1[600], at2[600];
        snprintf(at1, sizeof(at1), "%s/at1", harness_dir(h));
        snprintf(at2, sizeof(at2), "%s/at2", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir %s %s && echo before > %s/before && sync", at1, at2, mnt) == 0);

        /* A directory shadow: a read-only bind mount. */
        json_object *root = NULL;
        char *id = shadow_id_of(create_shadow(h, data, NULL, &root));
        json_object_put(root);
        CHECK(harness_sh(h, &out, "vssadmin expose --shadow %s --at %s", id, at1) == 0);
        CHECK(out && strstr(out, "exposed read-only at"));
        free(out);
        CHECK(is_mounted(h, at1));
        CHECK(harness_sh(h, NULL, "diff -r %s %s", data, at1) == 0);
        CHECK(harness_sh(h, NULL, "touch %s/new 2>/dev/null", at1) != 0);
        /* What users wrote grants nothing through it: no setuid bit, no device node. */
        CHECK(harness_sh(h, NULL, "findmnt -no OPTIONS --mountpoint %s | grep -w nosuid | grep -qw nodev", at1) == 0);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && strstr(out, "Exposed at: ") && strstr(out, at1));
        free(out);
        CHECK(harness_sh(h, &out, "vssadmin list shadows --json") == 0);
        CHECK(out && strstr(out, "\"exposed_at\":\"") != NULL);
        free(out);
        /* One place, one exposure. */
        CHECK(harness_sh(h, NULL, "vssadmin expose --shadow %s --at %s 2>/dev/null", id, at1) == 1);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at %s >/dev/null", at1) == 0);
        CHECK(!is_mounted(h, at1));
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at %s 2>/dev/null", at1) == 1);

        /* An image made by the exec provider: a read-only loop mount, gone with its shadow. */
        char *img = shadow_id_of(create_shadow(h, mnt, "image", &root));
        json_object_put(root);
        CHECK(harness_sh(h, NULL, "vssadmin expose --shadow %s --at %s >/dev/null", img, at2) == 0);
        CHECK(is_mounted(h, at2));
        CHECK(harness_sh(h, &out, "cat %s/before", at2) == 0 && out && strstr(out, "before"));
        free(out);
        CHECK(harness_sh(h, NULL, "touch %s/new 2>/dev/null", at2) != 0);
        CHECK(harness_sh(h, NULL, "findmnt -no OPTIONS --mountpoint %s | grep -w nosuid | grep -qw nodev", at2) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --all >/dev/null") == 0);
        CHECK(!is_mounted(h, at2));
        CHECK(harness_sh(h, &out, "losetup -a | grep -c shadow- || true") == 0 && out && atoi(out) == 0);
        free(out);

        /* Bad requests change nothing. */
        CHECK(harness_sh(h, NULL, "vssadmin expose --shadow %s --at %s 2>/dev/null", id, at1) == 1); /* deleted */
        CHECK(harness_sh(h, NULL, "vssadmin expose --shadow %s --at /nonexistent/x 2>/dev/null", id) == 1);
        CHECK(harness_sh(h, NULL, "vssadmin expose --at %s 2>/dev/null", at1) == 2);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose 2>/dev/null") == 2);
        CHECK(harness_sh(h, NULL, "vssadmin expose --shadow not-an-id --at %s 2>/dev/null", at1) == 2);
        free(id);
        free(img);
}

/* vssd's config goes through the strict JSON layer: a key given twice (json-c alone would keep the
 * last one silently) is refused like any bad configuration, exit status 2, naming the key. */
/* vssd opens libmount at its first mount lookup, so an idle vssd does without it. When it cannot
 * be loaded, vssd still starts and serves, and the volume's explanation says why its filesystem
 * is unknown (a broken libmount.so.1 found first through LD_LIBRARY_PATH). */
static void test_libmount_missing(void) {
        char lib[] = "/tmp/openvss-libmount.XXXXXX", fake[PATH_MAX], *out = NULL;
        CHECK(mkdtemp(lib) != NULL);
        snprintf(fake, sizeof(fake), "%s/libmount.so.1", lib);
        FILE *f = fopen(fake, "we");
        CHECK(f && fputs("not a library\n", f) >= 0 && fclose(f) == 0);
        setenv("LD_LIBRARY_PATH", lib, 1);
        Harness *h = harness_new(NULL); /* vssd inherits it */
        unsetenv("LD_LIBRARY_PATH");
        char *data = harness_make_data(h, "data");
        CHECK(harness_sh(h, &out, "vssadmin list providers --for '%s'", data) == 0);
        CHECK(out && strstr(out, "not point-in-time") && strstr(out, "cannot load libmount.so.1"));
        free(out);
        harness_free(h);
        CHECK(unlink(fake) == 0 && rmdir(lib) == 0);
}

static void test_config_repeated_key(void) {
        Harness *h = harness_new(NULL);
        char *out = NULL;
        CHECK(harness_sh(h, &out, "printf '{\"hold_window_ms\": 5000, \"hold_window_ms\": 6000}' > %s/twice.json; "
                                  "%s --config %s/twice.json --socket %s/x.sock --state-dir %s/x 2>&1",
                         harness_dir(h), VSSD_PATH, harness_dir(h), harness_dir(h), harness_dir(h)) == 2);
        CHECK(out && strstr(out, "vssd: bad configuration: ") && strstr(out, "hold_window_ms: repeated key"));
        free(out);
        out = NULL;
        /* Nested objects too; the same key in two different objects is fine. */
        CHECK(harness_sh(h, &out, "printf '{\"timeouts\": {\"status_ms\": 5000, \"status_ms\": 5000}}' > %s/twice.json; "
                                  "%s --config %s/twice.json --socket %s/x.sock --state-dir %s/x 2>&1",
                         harness_dir(h), VSSD_PATH, harness_dir(h), harness_dir(h), harness_dir(h)) == 2);
        CHECK(out && strstr(out, "timeouts.status_ms: repeated key"));
        free(out);
        harness_free(h);
}

static const TestCase cases[] = {
        { "expose", test_expose },
        { "config-repeated-key", test_config_repeated_key },
        { "libmount-missing", test_libmount_missing },
        { "exec-delete-fails-keeps-record", test_exec_delete_fails_keeps_record },
        { "exec-vssd-killed-location-kept", test_exec_vssd_killed_location_kept },
        { "shadow-limits", test_shadow_limits },
        { "provider-honesty", test_provider_honesty },
        { "xfs-reflink", test_xfs_reflink },
        { "exec-flush-and-hold", test_exec_flush_and_hold },
        { "exec-hold-timeout", test_exec_hold_timeout },
        { "exec-vssd-killed-during-hold", test_exec_vssd_killed_during_hold },
        { "btrfs-snapshot", test_btrfs_snapshot },
        { "btrfs-failure-leaves-nothing", test_btrfs_failure_leaves_nothing },
        { "btrfs-path-swapped", test_btrfs_path_swapped },
        { "btrfs-openvss-theirs", test_btrfs_openvss_theirs },
        { "hold-exclude-other-mount", test_hold_exclude_other_mount },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
