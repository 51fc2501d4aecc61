/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where a shadow copy may be exposed (issue 10, item 9): `vssadmin expose --at` mounts only on an
 * existing, empty directory owned by root (the only caller allowed to expose) or the caller,
 * named without symbolic links. What a real unprivileged user makes, a symlink into a place of
 * root's or a directory of its own, is refused, and nothing is mounted. Nor can such a user turn
 * an unexpose onto another mount, or, by moving it, keep an exposure mounted once it is unexposed
 * or its shadow copy deleted.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <json-c/json.h>

#include "lib/common.h"
#include "tests/users.h"

/* Lines of the mount table that name the harness directory. */
static int mounts_under(Harness *h) {
        char *out = NULL;
        int n = -1;
        if (harness_sh(h, &out, "grep -c -F -- '%s' /proc/self/mountinfo || true", harness_dir(h)) == 0 && out)
                n = atoi(out);
        free(out);
        return n;
}

/* A wrongly made mount is not left behind: everything mounted under the harness directory goes
 * (this test makes no other mounts there). */
static void unmount_all_under(Harness *h) {
        (void) harness_sh(h, NULL, "awk -v d='%s' 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | "
                                   "sort -r | xargs -r -n1 umount -l", harness_dir(h));
}

typedef struct BobsPlaces {
        char dir[PATH_MAX];      /* bob's own directory, in which he makes the rest */
        char target[PATH_MAX];   /* an empty directory of root's */
} BobsPlaces;

static void bob_makes_places(Harness *h, void *userdata) {
        const BobsPlaces *p = userdata;
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/link", p->dir);
        CHECK(symlink(p->target, path) == 0);
        snprintf(path, sizeof(path), "%s/dirlink", p->dir);
        CHECK(symlink(harness_dir(h), path) == 0);
        snprintf(path, sizeof(path), "%s/mine", p->dir);
        CHECK(mkdir(path, 0755) == 0);
}

/* vssadmin expose as root: exit status 1, the message names why, and no new mount. */
static void refused(Harness *h, const char *id, const char *at, const char *why) {
        char *out = NULL;
        int before = mounts_under(h);
        CHECK(harness_sh(h, &out, "vssadmin expose --shadow %s --at '%s' 2>&1", id, at) == 1);
        CHECK(out && strstr(out, "E_INVALIDARG") && strstr(out, why));
        if (!out || !strstr(out, why))
                fprintf(stderr, "   expose --at %s said: %s\n", at, strempty(out));
        free(out);
        CHECK(mounts_under(h) == before);
        if (mounts_under(h) != before)
                unmount_all_under(h);
        CHECK(harness_sh(h, &out, "vssadmin list shadows") == 0);
        CHECK(out && !strstr(out, "Exposed at"));
        free(out);
}

/* trust-expose-at-refusals */
static void test_expose_at_refusals(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data");
        int st = -1;
        json_object *out = harness_json(h, &st, "vssadmin create shadow --json --for '%s'", data), *shadows = NULL;
        CHECK(st == 0);
        CHECK(out && json_object_object_get_ex(out, "shadows", &shadows) && json_object_array_length(shadows) == 1);
        char id[64] = "";
        if (shadows && json_object_array_length(shadows) == 1)
                snprintf(id, sizeof(id), "%s", json_str(json_object_array_get_idx(shadows, 0), "shadow_id"));
        json_object_put(out);

        BobsPlaces p;
        snprintf(p.dir, sizeof(p.dir), "%s/bobs", harness_dir(h));
        snprintf(p.target, sizeof(p.target), "%s/empty", harness_dir(h));
        CHECK(mkdir(p.dir, 0755) == 0 && chown(p.dir, uid_of(BOB), (gid_t) -1) == 0);
        CHECK(mkdir(p.target, 0755) == 0);
        run_as(BOB, bob_makes_places, h, &p, "bob making places to expose at");
        int before = mounts_under(h);
        CHECK(before >= 0);

        char at[PATH_MAX + 32];
        /* A symlink to an empty directory of root's, and a path through one. */
        snprintf(at, sizeof(at), "%s/link", p.dir);
        refused(h, id, at, "symbolic link");
        snprintf(at, sizeof(at), "%s/dirlink/empty", p.dir);
        refused(h, id, at, "symbolic link");
        /* A directory that is not empty. */
        refused(h, id, data, "not empty");
        /* An empty directory of another user's. */
        snprintf(at, sizeof(at), "%s/mine", p.dir);
        refused(h, id, at, "belongs to uid");
        CHECK(mounts_under(h) == before);

        /* The same directory named plainly is fine, and its real path is what is recorded. */
        char *o = NULL;
        CHECK(harness_sh(h, &o, "vssadmin expose --shadow %s --at '%s//./empty/'", id, harness_dir(h)) == 0);
        CHECK(o && strstr(o, p.target));
        free(o);
        CHECK(mounts_under(h) == before + 1);
        CHECK(harness_sh(h, NULL, "diff -r '%s' '%s'", data, p.target) == 0);
        CHECK(harness_sh(h, NULL, "touch '%s/new' 2>/dev/null", p.target) != 0);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at '%s' >/dev/null", p.target) == 0);
        CHECK(mounts_under(h) == before);
        if (mounts_under(h) != before)
                unmount_all_under(h);
}

typedef struct Move {
        const char *cmd; /* a shell command bob runs */
} Move;

static void bob_moves(Harness *h, void *userdata) {
        const Move *mv = userdata;
        CHECK(harness_sh(h, NULL, "%s", mv->cmd) == 0);
}

/* Whether something is mounted at path. */
static bool mounted_at(Harness *h, const char *path) {
        return harness_sh(h, NULL, "findmnt -rn --mountpoint '%s' >/dev/null", path) == 0;
}

/* The one shadow of a new set of data's, exposed at `at`; its id to id. */
static void expose_new(Harness *h, const char *data, const char *at, char *id, size_t size) {
        int st = -1;
        json_object *out = harness_json(h, &st, "vssadmin create shadow --json --for '%s'", data), *shadows = NULL;
        id[0] = 0;
        if (out && json_object_object_get_ex(out, "shadows", &shadows) && json_object_array_length(shadows) == 1)
                snprintf(id, size, "%s", json_str(json_object_array_get_idx(shadows, 0), "shadow_id"));
        json_object_put(out);
        CHECK(id[0]);
        CHECK(harness_sh(h, NULL, "mkdir -p '%s' && vssadmin expose --shadow %s --at '%s' >/dev/null", at, id, at) == 0);
}

/* Whether `vssadmin list shadows` names an exposure at `at`. */
static bool listed_at(Harness *h, const char *at) {
        char *o = NULL;
        bool listed = harness_sh(h, &o, "vssadmin list shadows") == 0 && o && strstr(o, "Exposed at") && strstr(o, at);
        free(o);
        return listed;
}

/* trust-unexpose-swapped: root exposed a shadow at DIR/pub/mnt, DIR being bob's; another mount
 * (the decoy) is at a place of root's, other/mnt. vssd records which mount the exposure is, and
 * only that mount is ever unmounted, wherever a rename moved it:
 * - bob moves pub away and makes pub a symlink to `other`: unexpose detaches the exposure where
 *   it went (pub.real/mnt), not the decoy the path now leads to;
 * - bob moves pub2 away, makes a new pub2/mnt, and a mount of someone else's comes to be there
 *   (root's tmpfs): deleting the shadow detaches the exposure where it went and leaves the tmpfs;
 * - root unmounted an exposure by hand: unexpose forgets it and unmounts nothing else. */
static void test_unexpose_swapped(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data");
        char id[64], dir[PATH_MAX], at[PATH_MAX + 16], decoy[PATH_MAX + 16], cmd[4 * PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/bobs", harness_dir(h));
        snprintf(decoy, sizeof(decoy), "%s/other/mnt", harness_dir(h));
        CHECK(mkdir(dir, 0755) == 0 && chown(dir, uid_of(BOB), (gid_t) -1) == 0);
        CHECK(harness_sh(h, NULL, "mkdir -p '%s' && mount --bind '%s' '%s'", decoy, data, decoy) == 0);
        int before = mounts_under(h);

        snprintf(at, sizeof(at), "%s/pub/mnt", dir);
        expose_new(h, data, at, id, sizeof(id));
        CHECK(mounts_under(h) == before + 1);
        snprintf(cmd, sizeof(cmd), "mv '%s/pub' '%s/pub.real' && ln -s '%s/other' '%s/pub'", dir, dir, harness_dir(h), dir);
        run_as(BOB, bob_moves, h, &(Move) { cmd }, "bob swaps pub for a symlink");
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at '%s' >/dev/null", at) == 0);
        CHECK(mounted_at(h, decoy));
        snprintf(cmd, sizeof(cmd), "%s/pub.real/mnt", dir);
        CHECK(!mounted_at(h, cmd));
        CHECK(!listed_at(h, at));
        CHECK(mounts_under(h) == before);

        snprintf(at, sizeof(at), "%s/pub2/mnt", dir);
        expose_new(h, data, at, id, sizeof(id));
        snprintf(cmd, sizeof(cmd), "mv '%s/pub2' '%s/pub2.moved' && mkdir -p '%s'", dir, dir, at);
        run_as(BOB, bob_moves, h, &(Move) { cmd }, "bob moves pub2 away and makes a new pub2/mnt");
        CHECK(harness_sh(h, NULL, "mount -t tmpfs -o size=1m someones '%s'", at) == 0);
        CHECK(mounts_under(h) == before + 2);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --shadow %s >/dev/null", id) == 0);
        CHECK(harness_sh(h, NULL, "findmnt -rn -t tmpfs --mountpoint '%s' >/dev/null", at) == 0);
        snprintf(cmd, sizeof(cmd), "%s/pub2.moved/mnt", dir);
        CHECK(!mounted_at(h, cmd));
        CHECK(!listed_at(h, at));
        CHECK(mounts_under(h) == before + 1);
        CHECK(harness_sh(h, NULL, "umount '%s'", at) == 0);

        snprintf(at, sizeof(at), "%s/pub3/mnt", dir);
        expose_new(h, data, at, id, sizeof(id));
        CHECK(harness_sh(h, NULL, "umount '%s'", at) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at '%s' >/dev/null", at) == 0);
        CHECK(!listed_at(h, at));
        CHECK(mounted_at(h, decoy));
        CHECK(mounts_under(h) == before);
        if (mounts_under(h) != before)
                unmount_all_under(h);
        CHECK(harness_sh(h, NULL, "umount '%s'", decoy) == 0);
}

/* trust-unexpose-covered: bob moves the exposure away and a mount comes over it where it went.
 * Unexposing finds the place but not the exposure at its top: nothing is unmounted, the record
 * stays; deleting the shadow keeps it (it is still mounted). Uncovered, unexpose detaches it. */
static void test_unexpose_covered(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data"), *o = NULL;
        char id[64], dir[PATH_MAX], at[PATH_MAX + 16], moved[PATH_MAX + 16], cmd[4 * PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/bobs", harness_dir(h));
        snprintf(at, sizeof(at), "%s/pub/mnt", dir);
        snprintf(moved, sizeof(moved), "%s/away/mnt", dir);
        CHECK(mkdir(dir, 0755) == 0 && chown(dir, uid_of(BOB), (gid_t) -1) == 0);
        expose_new(h, data, at, id, sizeof(id));
        int before = mounts_under(h);
        snprintf(cmd, sizeof(cmd), "mv '%s/pub' '%s/away'", dir, dir);
        run_as(BOB, bob_moves, h, &(Move) { cmd }, "bob moves pub away");
        CHECK(harness_sh(h, NULL, "mount -t tmpfs -o size=1m over '%s'", moved) == 0);
        CHECK(harness_sh(h, &o, "vssadmin unexpose --at '%s' 2>&1", at) == 1);
        CHECK(o && strstr(o, "nothing unmounted"));
        free(o);
        CHECK(listed_at(h, at));
        CHECK(mounts_under(h) == before + 1);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --shadow %s >/dev/null 2>&1", id) != 0);
        CHECK(harness_sh(h, &o, "vssadmin list shadows") == 0);
        CHECK(o && strstr(o, id));
        free(o);
        CHECK(harness_sh(h, NULL, "umount '%s'", moved) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at '%s' >/dev/null", at) == 0);
        CHECK(!listed_at(h, at) && !mounted_at(h, moved));
        CHECK(mounts_under(h) == before - 1);
        if (mounts_under(h) != before - 1)
                unmount_all_under(h);
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

/* trust-unexpose-other-boot: an exposure's record from before a reboot names mount numbers that
 * are another mount's now (they start again at each boot). vssd, starting, would mount it again
 * (cli-expose-after-reboot); its path is not empty here (what is mounted there now), so the record
 * is forgotten, and nothing is unmounted: not that other mount (here a decoy whose numbers the
 * record is given), not what is at its path. */
static void test_unexpose_other_boot(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data");
        char id[64], at[PATH_MAX + 16], decoy[PATH_MAX + 16];
        snprintf(at, sizeof(at), "%s/pub/mnt", harness_dir(h));
        snprintf(decoy, sizeof(decoy), "%s/other/mnt", harness_dir(h));
        CHECK(harness_sh(h, NULL, "mkdir -p '%s' && mount --bind '%s' '%s'", decoy, data, decoy) == 0);
        expose_new(h, data, at, id, sizeof(id));

        struct statx sx;
        uint64_t mnt_id = 0, unique = 0;
        CHECK(statx(AT_FDCWD, decoy, 0, STATX_MNT_ID, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID));
        mnt_id = sx.stx_mnt_id;
        if (statx(AT_FDCWD, decoy, 0, STATX_MNT_ID_UNIQUE, &sx) == 0 && (sx.stx_mask & STATX_MNT_ID_UNIQUE))
                unique = sx.stx_mnt_id;
        int st = -1;
        CHECK(harness_stop_vssd(h, &st) != UINT64_MAX);
        CHECK(harness_sh(h, NULL,
                         "sqlite3 '%s/registry.db' \"UPDATE exposures SET mount_id = %" PRIu64 ", mount_unique = %" PRIu64
                         ", boot_id = '00000000-0000-4000-8000-000000000001'\"",
                         harness_state_dir(h), mnt_id, unique) == 0);
        harness_restart_vssd(h);
        CHECK(harness_sh(h, NULL, "for i in $(seq 500); do grep -q 'is not exposed again' %s/vssd.log && exit 0; "
                                  "sleep 0.01; done; exit 1", harness_dir(h)) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at '%s' 2>&1 | grep -q VSS_E_OBJECT_NOT_FOUND", at) == 0);
        CHECK(!listed_at(h, at));
        CHECK(mounted_at(h, decoy));
        CHECK(mounted_at(h, at));
        CHECK(harness_sh(h, NULL, "umount '%s'; umount '%s'", at, decoy) == 0);
}

static const TestCase cases[] = {
        { "trust-expose-at-refusals", test_expose_at_refusals },
        { "trust-unexpose-swapped", test_unexpose_swapped },
        { "trust-unexpose-other-boot", test_unexpose_other_boot },
        { "trust-unexpose-covered", test_unexpose_covered },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
