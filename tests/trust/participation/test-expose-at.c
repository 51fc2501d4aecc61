/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where a shadow copy may be exposed (issue 10, item 9): `vssadmin expose --at` mounts only on an
 * existing, empty directory owned by root (the only caller allowed to expose) or the caller,
 * named without symbolic links. What a real unprivileged user makes, a symlink into a place of
 * root's or a directory of its own, is refused, and nothing is mounted. Nor can such a user turn
 * an unexpose onto another mount, or have it forget an exposure that is still mounted.
 */

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

/* trust-unexpose-swapped: root exposed a shadow at DIR/pub/mnt, DIR being bob's. Bob makes pub a
 * symlink to a directory of root's holding another mount at mnt: unexpose refuses, unmounting
 * neither. Bob moves pub away and makes a new pub/mnt: unexpose says nothing is mounted there and
 * keeps the record (the exposure is still mounted, moved). Put back, it unexposes. */
static void test_unexpose_swapped(void) {
        Harness *h = harness_for_users(CONFIG_BASE "}");
        char *data = harness_make_data(h, "data"), *o = NULL;
        int st = -1;
        json_object *out = harness_json(h, &st, "vssadmin create shadow --json --for '%s'", data), *shadows = NULL;
        char id[64] = "";
        if (out && json_object_object_get_ex(out, "shadows", &shadows) && json_object_array_length(shadows) == 1)
                snprintf(id, sizeof(id), "%s", json_str(json_object_array_get_idx(shadows, 0), "shadow_id"));
        json_object_put(out);
        CHECK(id[0]);
        char dir[PATH_MAX], at[PATH_MAX + 16], decoy[PATH_MAX + 16], cmd[4 * PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/bobs", harness_dir(h));
        snprintf(at, sizeof(at), "%s/pub/mnt", dir);
        snprintf(decoy, sizeof(decoy), "%s/other/mnt", harness_dir(h));
        CHECK(mkdir(dir, 0755) == 0 && chown(dir, uid_of(BOB), (gid_t) -1) == 0);
        CHECK(harness_sh(h, NULL, "mkdir -p '%s' '%s' && mount --bind '%s' '%s'", at, decoy, data, decoy) == 0);
        CHECK(harness_sh(h, NULL, "vssadmin expose --shadow %s --at '%s' >/dev/null", id, at) == 0);

        snprintf(cmd, sizeof(cmd), "mv '%s/pub' '%s/pub.real' && ln -s '%s/other' '%s/pub'", dir, dir, harness_dir(h), dir);
        run_as(BOB, bob_moves, h, &(Move) { cmd }, "bob swaps pub for a symlink");
        CHECK(harness_sh(h, &o, "vssadmin unexpose --at '%s' 2>&1", at) == 1);
        CHECK(o && strstr(o, "symbolic link"));
        free(o);
        CHECK(mounted_at(h, decoy));
        snprintf(cmd, sizeof(cmd), "%s/pub.real/mnt", dir);
        CHECK(mounted_at(h, cmd));

        snprintf(cmd, sizeof(cmd), "rm '%s/pub' && mkdir -p '%s/pub/mnt'", dir, dir);
        run_as(BOB, bob_moves, h, &(Move) { cmd }, "bob makes a new pub/mnt");
        CHECK(harness_sh(h, &o, "vssadmin unexpose --at '%s' 2>&1", at) == 1);
        CHECK(o && strstr(o, "nothing is mounted"));
        free(o);
        CHECK(harness_sh(h, &o, "vssadmin list shadows") == 0);
        CHECK(o && strstr(o, "Exposed at") && strstr(o, at));
        free(o);

        snprintf(cmd, sizeof(cmd), "rm -r '%s/pub' && mv '%s/pub.real' '%s/pub'", dir, dir, dir);
        run_as(BOB, bob_moves, h, &(Move) { cmd }, "bob puts pub back");
        CHECK(harness_sh(h, NULL, "vssadmin unexpose --at '%s' >/dev/null", at) == 0);
        CHECK(!mounted_at(h, at));
        CHECK(mounted_at(h, decoy));
        CHECK(harness_sh(h, NULL, "umount '%s'", decoy) == 0);
}

static const TestCase cases[] = {
        { "trust-expose-at-refusals", test_expose_at_refusals },
        { "trust-unexpose-swapped", test_unexpose_swapped },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
