/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Everything a file has survives a shadow copy by the file provider, a backup to a directory and
 * to every tar flavour, a restore, and `vssbackup exec -- cp -a`: contents, holes, modes, owners,
 * mtimes (ns), hard links, symlinks, fifos, device nodes, xattrs of every namespace, POSIX ACLs
 * (access and default), file capabilities and chattr attributes (immutable, append-only, nodump,
 * noatime), on ext4, XFS and btrfs. What a target filesystem cannot keep is reported, per file. */

#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "lib/common.h"
#include "tests/harness.h"

/* Immutable and append-only files would keep the harness from cleaning up should a mount stay
 * busy: they are made mutable again at exit, also after a failure. */
static char protected_dirs[4][PATH_MAX];
static size_t n_protected;

static void unprotect_all(void) {
        for (size_t i = 0; i < n_protected; i++) {
                char cmd[PATH_MAX + 64];
                snprintf(cmd, sizeof(cmd), "chattr -R -i -a %s >/dev/null 2>&1", protected_dirs[i]);
                (void) !system(cmd);
        }
}

static void protect_later(const char *dir) {
        if (n_protected == 0)
                atexit(unprotect_all); /* after harness_new: runs before the harness's cleanup */
        if (n_protected < ELEMENTSOF(protected_dirs))
                snprintf(protected_dirs[n_protected++], PATH_MAX, "%s", dir);
}

/* The tree under test: one of each kind, each carrying what it can. */
static const char populate[] =
        "set -e; cd \"$1\"\n"
        "head -c 300000 /dev/urandom > file; chmod 640 file; chown 1234:2345 file\n"
        "setfattr -n user.color -v blue file; setfattr -n trusted.secret -v 42 file\n"
        "setfattr -n security.openvss -v label file\n"
        "setfacl -m u:1234:rw,g:2345:r file\n"
        "truncate -s 20M sparse; printf head | dd of=sparse conv=notrunc status=none; echo tail >> sparse\n"
        "echo linked > hl1; ln hl1 hl2\n"
        "ln -s file sym; ln -s /nowhere dangling\n"
        "mkfifo fifo; mknod null c 1 3\n"
        "mkdir dir; echo inner > dir/inner; setfacl -m u:1234:rx dir; setfacl -d -m u:1234:rwx,g::r dir\n"
        "echo inherits > dir/inherited\n"
        "echo cap > capfile; chmod 755 capfile; setcap cap_net_bind_service+ep capfile\n"
        "echo d > nodump; chattr +d nodump; echo A > noatime; chattr +A noatime\n"
        "echo a > appendonly; chattr +a appendonly\n"
        "echo i > immutable; ln immutable immutable-link; chattr +i immutable\n"
        "mkdir frozen; echo x > frozen/x; chattr +i frozen\n"
        "for f in file sparse hl1 dir/inner capfile nodump noatime; do\n"
        "        touch -h -d '2001-02-03 04:05:06.123456789' $f; done\n"
        "touch -h -d '2002-03-04 05:06:07.987654321' sym dir\n";

/* A text of everything compared, in name order, one section per tool (a few processes per tree,
 * not a few per file). $2 = "noflags": without chattr attributes (cp does not copy them). atimes
 * and ctimes differ by nature; directory sizes are the filesystem's. "sparse": fewer blocks than
 * half the size. */
static const char describe[] =
        "set -o pipefail; cd \"$1\" || exit 1\n"
        "each() { find . \"$@\" -print0 | LC_ALL=C sort -z; }\n"
        "each ! -type d | xargs -0 stat -c '%n %a %u %g %s %y %F %t %T %h'\n"
        "each -type d | xargs -0 stat -c '%n %a %u %g %y %F'\n"
        "each -type f | xargs -0 sha256sum\n"
        "each -type f | xargs -0 stat -c '%n %b %s' | awk '$2 * 512 < $3 / 2 { print $1, \"sparse\" }'\n"
        "each -type f | xargs -0 getcap\n"
        "each | xargs -0 getfattr -h -d -m- -e hex\n"
        "each ! -type l | xargs -0 getfacl\n"
        "[ \"$2\" = noflags ] || each \\( -type f -o -type d \\) | xargs -0 lsattr -d\n";

static char *scripts_dir(Harness *h) {
        static char dir[PATH_MAX];
        char p[PATH_MAX + 32];
        snprintf(dir, sizeof(dir), "%s/fidelity", harness_dir(h));
        (void) mkdir(dir, 0755);
        snprintf(p, sizeof(p), "%s/populate", dir);
        FILE *f = fopen(p, "we");
        CHECK(f && fputs(populate, f) >= 0 && fclose(f) == 0);
        snprintf(p, sizeof(p), "%s/describe", dir);
        f = fopen(p, "we");
        CHECK(f && fputs(describe, f) >= 0 && fclose(f) == 0);
        return dir;
}

static char *tree_text(Harness *h, const char *path, bool flags) {
        char *out = NULL;
        CHECK(harness_sh(h, &out, "bash %s/fidelity/describe %s %s", harness_dir(h), path, flags ? "" : "noflags") == 0);
        return out;
}

/* Equal, or a failure showing the difference. */
static void check_same(Harness *h, const char *want, const char *got, const char *what) {
        if (want && got && streq(want, got))
                return;
        char a[PATH_MAX], b[PATH_MAX];
        snprintf(a, sizeof(a), "%s/want", harness_dir(h));
        snprintf(b, sizeof(b), "%s/got", harness_dir(h));
        FILE *f = fopen(a, "we");
        if (f) {
                fputs(strempty(want), f);
                fclose(f);
        }
        f = fopen(b, "we");
        if (f) {
                fputs(strempty(got), f);
                fclose(f);
        }
        fprintf(stderr, "%s differs from the original:\n", what);
        (void) harness_sh(h, NULL, "diff -u %s %s >&2", a, b);
        CHECK(!"trees differ");
}

static json_object *created_shadow(Harness *h, const char *path) {
        int st;
        json_object *out = harness_json(h, &st, "vssadmin create shadow --for %s --provider file --json", path);
        CHECK(st == 0);
        return out;
}

static const char *shadow_path(json_object *out) {
        json_object *shadows = out ? json_object_object_get(out, "shadows") : NULL;
        json_object *s = shadows && json_object_array_length(shadows) == 1 ? json_object_array_get_idx(shadows, 0) : NULL;
        CHECK(s);
        return s ? json_object_get_string(json_object_object_get(s, "shadow_path")) : NULL;
}

static size_t n_warnings(json_object *out) {
        json_object *w = out ? json_object_object_get(out, "warnings") : NULL;
        return w ? json_object_array_length(w) : (size_t) -1;
}

static void roundtrip(const char *mkfs, const char *size) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, mkfs, size);
        char data[PATH_MAX], state[PATH_MAX], comp[PATH_MAX + 8];
        int st;

        protect_later(mnt);
        scripts_dir(h);
        snprintf(data, sizeof(data), "%s/data", mnt);
        CHECK(mkdir(data, 0755) == 0);
        CHECK(harness_sh(h, NULL, "sh %s/fidelity/populate %s", harness_dir(h), data) == 0);
        /* The shadows on the same filesystem, so the file provider reflinks where it can. */
        snprintf(state, sizeof(state), "%s/state", mnt);
        harness_restart_vssd_at(h, state);
        snprintf(comp, sizeof(comp), "app=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "app", args);
        _cleanup_free_ char *want = tree_text(h, data, true), *want_noflags = tree_text(h, data, false);
        /* The description sees what it compares. */
        CHECK(want && strstr(want, "----i-") && strstr(want, "-----a-") && strstr(want, "cap_net_bind_service=ep"));
        CHECK(want && strstr(want, "./sparse sparse") && strstr(want, "trusted.secret=0x3432") &&
              strstr(want, "security.openvss=") && strstr(want, "default:user:1234:rwx") &&
              strstr(want, "character special file 1 3") && strstr(want, "./hl2 644 0 0 7"));

        /* The shadow copy itself. */
        json_object *out = created_shadow(h, data);
        const char *sp = shadow_path(out);
        if (sp) {
                _cleanup_free_ char *got = tree_text(h, sp, true);
                check_same(h, want, got, "the file provider's shadow copy");
        }
        json_object_put(out);
        CHECK(harness_sh(h, NULL, "vssadmin delete shadows --all >/dev/null") == 0);

        /* Backups in every store, each restored into a fresh directory on the same filesystem. */
        const char *stores[] = { "bk-dir", "bk.tar", "bk.tar.gz", "bk.tar.zst" };
        for (size_t i = 0; i < ELEMENTSOF(stores); i++) {
                char dest[PATH_MAX + 16], to[PATH_MAX + 16], restored[2 * PATH_MAX + 32];
                snprintf(dest, sizeof(dest), "%s/%s", mnt, stores[i]);
                snprintf(to, sizeof(to), "%s/restore-%zu", mnt, i);
                snprintf(restored, sizeof(restored), "%s%s", to, data);
                out = harness_json(h, &st, "vssbackup backup --provider file --to %s --json", dest);
                CHECK(st == 0);
                CHECK_STR(json_str(out, "result"), "ok");
                CHECK(n_warnings(out) == 0);
                json_object_put(out);
                out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", dest, to);
                CHECK(st == 0);
                CHECK_STR(json_str(out, "result"), "ok");
                CHECK(n_warnings(out) == 0);
                json_object_put(out);
                _cleanup_free_ char *got = tree_text(h, restored, true);
                char what[PATH_MAX];
                snprintf(what, sizeof(what), "the restore of %s", stores[i]);
                check_same(h, want, got, what);
        }

        /* What a program run against the shadow sees: cp keeps all but chattr attributes. */
        char copy[PATH_MAX + 8];
        snprintf(copy, sizeof(copy), "%s/copy", mnt);
        CHECK(harness_sh(h, NULL, "vssbackup exec --provider file --for %s -- cp -a --preserve=all {} %s", data, copy) == 0);
        _cleanup_free_ char *got = tree_text(h, copy, false);
        check_same(h, want_noflags, got, "cp -a of the shadow");
        unprotect_all();
}

static void test_ext4(void) {
        roundtrip("mkfs.ext4 -q", "256M");
}

static void test_xfs(void) {
        roundtrip("mkfs.xfs -q -m reflink=1", "320M");
}

static void test_btrfs(void) {
        roundtrip("mkfs.btrfs -q", "256M");
}

/* btrfs keeps a compression flag (and its btrfs.compression xattr) XFS has no such thing for: a
 * restore onto XFS and a shadow on XFS keep everything else and name, per file, what they could
 * not keep; the restore still succeeds. */
static bool has_warning(json_object *out, const char *path, const char *what) {
        json_object *w = out ? json_object_object_get(out, "warnings") : NULL;
        for (size_t i = 0; w && i < json_object_array_length(w); i++) {
                json_object *o = json_object_array_get_idx(w, i);
                if (streq(json_str(o, "path"), path) && streq(json_str(o, "what"), what) && *json_str(o, "error"))
                        return true;
        }
        return false;
}

static void test_unkeepable(void) {
        Harness *h = harness_new(NULL);
        char *src = harness_loop_fs(h, "mkfs.btrfs -q", "256M");
        char *dst = harness_loop_fs(h, "mkfs.xfs -q", "320M");
        char data[PATH_MAX], state[PATH_MAX], comp[PATH_MAX + 8], dest[PATH_MAX + 8], to[PATH_MAX + 8];
        char want_path[2 * PATH_MAX];
        char *o = NULL;
        int st;

        protect_later(src);
        protect_later(dst);
        snprintf(data, sizeof(data), "%s/data", src);
        CHECK(harness_sh(h, NULL, "mkdir %s && echo squeeze > %s/packed && chattr +c %s/packed && "
                                  "setfattr -n user.kept -v yes %s/packed", data, data, data, data) == 0);

        /* vssbackup: a backup on btrfs (its shadows there too) restored onto XFS: warnings with
         * path, what and error, on stderr and in --json; the exit status stays 0. */
        snprintf(state, sizeof(state), "%s/state", src);
        harness_restart_vssd_at(h, state);
        snprintf(comp, sizeof(comp), "app=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "app", args);
        snprintf(dest, sizeof(dest), "%s/bk.tar", src);
        snprintf(to, sizeof(to), "%s/restore", dst);
        json_object *out = harness_json(h, &st, "vssbackup backup --provider file --to %s --json", dest);
        CHECK(st == 0);
        CHECK(n_warnings(out) == 0);
        json_object_put(out);
        out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json 2>%s/stderr", dest, to, harness_dir(h));
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        snprintf(want_path, sizeof(want_path), "%s%s/packed", to, data);
        CHECK(has_warning(out, want_path, "flag +c"));
        CHECK(has_warning(out, want_path, "xattrs")); /* btrfs.compression */
        CHECK(n_warnings(out) == 2);
        json_object_put(out);
        CHECK(harness_sh(h, NULL, "grep -q 'warning: %s: flag +c not kept: Operation not supported' %s/stderr",
                         want_path, harness_dir(h)) == 0);
        CHECK(harness_sh(h, &o, "cat %s && getfattr --absolute-names -n user.kept --only-values %s", want_path,
                         want_path) == 0);
        CHECK_STR(o, "squeeze\nyes");
        free(o);
        o = NULL;

        /* The file provider with its shadows on XFS: the shadow is made, vssd's log names the
         * file and what it lost. */
        snprintf(state, sizeof(state), "%s/state", dst);
        harness_restart_vssd_at(h, state);
        out = created_shadow(h, data);
        const char *sp = shadow_path(out);
        CHECK(sp && harness_sh(h, &o, "getfattr --absolute-names -n user.kept --only-values %s/packed", sp) == 0);
        CHECK_STR(o, "yes");
        free(o);
        CHECK(harness_sh(h, NULL, "grep -q 'provider file: shadow .*/packed: flag +c not kept' %s/vssd.log",
                         harness_dir(h)) == 0);
        CHECK(harness_sh(h, NULL, "grep -q 'provider file: shadow .* of %s: 2 item(s) of metadata not kept' %s/vssd.log",
                         data, harness_dir(h)) == 0);
        json_object_put(out);
        unprotect_all();
}

/* An incremental chain over protected files: the full backup's restore makes them immutable or
 * append-only, and the incremental's restore still replaces (or, deleted since, removes) them,
 * and sets their flags again. */
static void test_chain(void) {
        Harness *h = harness_new(NULL);
        char *mnt = harness_loop_fs(h, "mkfs.ext4 -q", "128M");
        char data[PATH_MAX], state[PATH_MAX], comp[PATH_MAX + 8], full[PATH_MAX + 8], inc[PATH_MAX + 8];
        char alt[PATH_MAX + 8], restored[2 * PATH_MAX + 16];
        char *o = NULL;
        int st;

        protect_later(mnt);
        snprintf(data, sizeof(data), "%s/data", mnt);
        CHECK(harness_sh(h, NULL, "mkdir %s && cd %s && echo v1 > locked && chattr +i locked && echo log > gone && "
                                  "chattr +a gone", data, data) == 0);
        snprintf(state, sizeof(state), "%s/state", mnt);
        harness_restart_vssd_at(h, state);
        snprintf(comp, sizeof(comp), "app=%s", data);
        const char *const args[] = { "--component", comp, NULL };
        harness_writer(h, "app", args);
        snprintf(full, sizeof(full), "%s/full", mnt);
        snprintf(inc, sizeof(inc), "%s/inc.tar", mnt);
        snprintf(alt, sizeof(alt), "%s/alt", mnt);
        snprintf(restored, sizeof(restored), "%s%s", alt, data);
        CHECK(harness_sh(h, NULL, "vssbackup backup --provider file --to %s >/dev/null", full) == 0);
        CHECK(harness_sh(h, NULL, "cd %s && chattr -i locked && echo v2 > locked && chattr +i locked && "
                                  "chattr -a gone && rm gone", data) == 0);
        CHECK(harness_sh(h, NULL, "vssbackup backup --provider file --type incremental --base %s --to %s >/dev/null",
                         full, inc) == 0);

        json_object *out = harness_json(h, &st, "vssbackup restore --from %s --to %s --json", inc, alt);
        CHECK(st == 0);
        CHECK_STR(json_str(out, "result"), "ok");
        json_object_put(out);
        CHECK(harness_sh(h, &o, "cd %s && cat locked && lsattr locked | cut -c1-6 && ls", restored) == 0);
        CHECK_STR(o, "v2\n----i-\nlocked\n");
        free(o);
        unprotect_all();
}

static const TestCase cases[] = {
        { "fidelity-ext4", test_ext4 },
        { "fidelity-xfs", test_xfs },
        { "fidelity-btrfs", test_btrfs },
        { "fidelity-unkeepable", test_unkeepable },
        { "fidelity-chain", test_chain },
        {},
};

int main(int argc, char *argv[]) {
        return test_main(argc, argv, cases);
}
