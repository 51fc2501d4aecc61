/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Providers on filesystems the tests make themselves (loop devices, as root). */

#include <json-c/json.h>
#include <sys/stat.h>

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

static const TestCase cases[] = {
        { "btrfs-snapshot", test_btrfs_snapshot },
        { "btrfs-failure-leaves-nothing", test_btrfs_failure_leaves_nothing },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
