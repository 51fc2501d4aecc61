#!/bin/bash
# heavy/package: builds the Debian packages (dpkg-buildpackage -us -uc -b, tests off), checks
# them with lintian (no error), unpacks them into a fresh root (dpkg-deb -x: no chroot or
# debootstrap here), does by hand what their maintainer scripts do (sysusers.d, tmpfiles.d,
# checks that the scripts carry those steps), checks the units, and runs a full backup and restore
# with the installed programs and library only: vssd on a private socket and state directory,
# the installed exec and SQLite writers, vssadmin and vssbackup. Like tests/harness.c, vssd's
# config holds none of the machine's filesystems (every mount point in hold_exclude).
# Usage: test-package.sh SOURCE_DIR. Exit 77 (skipped) without root or the packaging tools.
# OPENVSS_PACKAGE_DEBS=DIR takes the packages (and .changes) built in DIR instead of building;
# KEEP=1 keeps the temporary directory.
set -euo pipefail
src=$(cd "${1:?usage: test-package.sh SOURCE_DIR}" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (vssd, the file provider)"
for t in dpkg-buildpackage dh lintian dpkg-deb systemd-sysusers systemd-tmpfiles sqlite3; do
        command -v "$t" >/dev/null || skip "$t missing (scripts/install-deps.sh installs it)"
done

tmp=$(mktemp -d /tmp/openvss-package.XXXXXX)
pids=()
cleanup() {
        local p
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
        [ -n "${KEEP:-}" ] && { echo "kept $tmp"; return; }
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/vssd.log" ] && sed 's/^/vssd: /' "$tmp/vssd.log" >&2; exit 1; }
step() { echo "== $*"; }

if [ -n "${OPENVSS_PACKAGE_DEBS:-}" ]; then
        cp "$OPENVSS_PACKAGE_DEBS"/*.deb "$OPENVSS_PACKAGE_DEBS"/*.changes "$OPENVSS_PACKAGE_DEBS"/*.buildinfo "$tmp/"
else
        # A clean copy of the sources: no build directories, nothing a build left behind.
        step "copy the sources"
        mkdir "$tmp/src"
        if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
                (cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$tmp/src")
        else
                (cd "$src" && tar --exclude='./build*' --exclude='./obj-*' -cf - .) | tar -C "$tmp/src" -xf -
        fi

        step "dpkg-buildpackage -us -uc -b"
        (cd "$tmp/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
                >"$tmp/build.log" 2>&1 || { tail -50 "$tmp/build.log"; fail "dpkg-buildpackage"; }
fi
changes=$(ls "$tmp"/openvss_*.changes)
for p in openvss openvss-writer-sqlite openvss-writer-postgres libvss0 libvss-dev; do
        ls "$tmp"/${p}_*.deb >/dev/null 2>&1 || fail "no package $p"
done

step "lintian"
lintian --tag-display-limit 0 "$changes" >"$tmp/lintian.log" 2>&1 || true
cat "$tmp/lintian.log"
! grep -q '^E: ' "$tmp/lintian.log" || fail "lintian reports errors"

step "unpack into a fresh root"
root=$tmp/root
mkdir -p "$root/etc"
: >"$root/etc/group"
: >"$root/etc/passwd"
for deb in $(ls "$tmp"/*.deb | grep -v -- -dbgsym_); do
        dpkg-deb -x "$deb" "$root"
        mkdir -p "$tmp/control/$(basename "$deb" .deb)"
        dpkg-deb -e "$deb" "$tmp/control/$(basename "$deb" .deb)"
done
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
for f in usr/sbin/vssd usr/bin/vssadmin usr/libexec/openvss/vssadmin-cluster usr/sbin/vss-agent usr/bin/vssbackup usr/bin/vss-writer-exec usr/bin/vss-writer-sqlite \
         usr/bin/vss-writer-postgres "usr/lib/$ma/libvss.so.0" "usr/lib/$ma/pkgconfig/libvss.pc" \
         usr/include/vss/writer.h lib/systemd/system/vssd.service lib/systemd/system/vssd.socket \
         lib/systemd/system/vss-writer-exec@.service lib/systemd/system/vss-writer-sqlite@.service \
         lib/systemd/system/vss-writer-postgres@.service usr/lib/sysusers.d/openvss.conf \
         usr/lib/tmpfiles.d/openvss.conf usr/share/dbus-1/interfaces/org.openvss.Coordinator1.xml \
         usr/share/doc/openvss/examples/vssd.json.example etc/openvss/hooks.d; do
        [ -e "$root/$f" ] || fail "not installed: /$f"
done
# Built for the system, not the build tree: no RUNPATH into it.
for f in usr/sbin/vssd usr/bin/vss-writer-exec "usr/lib/$ma/libvss.so.0"; do
        dyn=$(readelf -d "$root/$f")
        ! grep -qE 'R(UN)?PATH' <<<"$dyn" || fail "/$f has an RPATH"
done

# What postinst does: dh_installsysusers and dh_installtmpfiles snippets, units enabled.
step "maintainer scripts, by hand"
post=$tmp/control/$(basename "$(ls "$tmp"/openvss_*.deb)" .deb)/postinst
grep -q 'systemd-sysusers' "$post" || fail "postinst does not create the group"
grep -q 'systemd-tmpfiles' "$post" || fail "postinst does not create the directories"
grep -q 'vssd.socket' "$post" || fail "postinst does not enable vssd.socket"
# Template instances (and the agent) are stopped on removal and restarted on upgrade: no
# program of a removed or replaced package runs on as a deleted binary.
for p in openvss:vss-writer-exec openvss-writer-sqlite:vss-writer-sqlite openvss-writer-postgres:vss-writer-postgres; do
        d=$tmp/control/$(basename "$(ls "$tmp"/${p%%:*}_*.deb)" .deb)
        grep -q "systemctl stop '${p#*:}@\*.service'" "$d/prerm" || fail "${p%%:*}'s prerm does not stop ${p#*:}@*"
        grep -q "systemctl try-restart '${p#*:}@\*.service'" "$d/postinst" || fail "${p%%:*}'s postinst does not restart ${p#*:}@*"
done
grep -q 'RestartPreventExitStatus=2' "$root/lib/systemd/system/vssd.service" 2>/dev/null || [ ! -e "$root/lib/systemd/system/vssd.service" ] ||
        fail "vssd.service restarts on a bad configuration"
systemd-sysusers --root="$root" >/dev/null
grep -q '^vss-backup:' "$root/etc/group" || fail "no group vss-backup after sysusers"
systemd-tmpfiles --root="$root" --create >/dev/null
[ "$(stat -c %a "$root/var/lib/openvss")" = 700 ] || fail "/var/lib/openvss is not 0700"
[ "$(stat -c %a "$root/run/openvss")" = 755 ] || fail "/run/openvss is not 0755"

step "units"
# Offline checks; systemd-analyze verify needs a running manager and the programs at their
# paths, neither of which a test may have.
grep -q '^Type=notify' "$root/lib/systemd/system/vssd.service" || fail "vssd.service is not Type=notify"
grep -q '^ExecStart=/usr/sbin/vssd' "$root/lib/systemd/system/vssd.service" || fail "vssd.service ExecStart"
grep -q '^ListenStream=/run/openvss/vssd.sock' "$root/lib/systemd/system/vssd.socket" || fail "vssd.socket path"
for u in exec sqlite postgres; do
        grep -q "^ExecStart=/usr/bin/vss-writer-$u --name %i" "$root/lib/systemd/system/vss-writer-$u@.service" \
                || fail "vss-writer-$u@.service ExecStart"
done
# systemd-analyze verify from the host (it checks every directive); our programs are not at
# their paths there, which is all it may say.
(cd "$root/lib/systemd/system" && systemd-analyze verify --man=no vssd.service vssd.socket \
        vss-writer-exec@.service vss-writer-sqlite@.service vss-writer-postgres@.service) >"$tmp/verify.log" 2>&1 || true
! grep -v 'Command /usr/s\?bin/vss[a-z-]* is not executable' "$tmp/verify.log" || fail "systemd-analyze verify"
# The exposure each service is left with (informative: vssd's job needs most of what it has).
for u in vssd.service vss-writer-exec@.service vss-writer-sqlite@.service vss-writer-postgres@.service; do
        systemd-analyze security --offline=yes "$root/lib/systemd/system/$u" 2>/dev/null | tail -1 || true
done

# The installed programs, with the installed library only.
export LD_LIBRARY_PATH=$root/usr/lib/$ma
for p in usr/sbin/vssd usr/bin/vssadmin usr/bin/vssbackup usr/bin/vss-writer-exec usr/bin/vss-writer-sqlite \
         usr/bin/vss-writer-postgres; do
        # Read whole first: with pipefail, `ldd | grep -q` fails when grep's early exit leaves ldd
        # a SIGPIPE.
        deps=$(ldd "$root/$p")
        if grep -q 'libvss\.so' <<<"$deps"; then
                grep -q "libvss\.so\.0 => $root/usr/lib/$ma/libvss.so.0" <<<"$deps" || fail "/$p: not the installed libvss"
        fi
        "$root/$p" --help >/dev/null || fail "/$p --help"
done

step "libvss-dev: pkg-config and a program built against it"
cat >"$tmp/client.c" <<'C'
#include <vss/writer.h>
int main(void) { return vss_strerror(0) ? 0 : 1; }
C
flags=$(PKG_CONFIG_PATH=$root/usr/lib/$ma/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root pkg-config --cflags --libs libvss) \
        || fail "pkg-config libvss"
gcc -o "$tmp/client" "$tmp/client.c" $flags || fail "cannot build against libvss-dev"
"$tmp/client" || fail "a program linked with the installed libvss"

step "a full backup and restore with the installed programs"
# The annotated example, without its comments, is a config vssd accepts; hold none of the
# machine's own filesystems.
grep -v '^ *//' "$root/usr/share/doc/openvss/examples/vssd.json.example" >"$tmp/example.json"
python3 - "$tmp/example.json" "$tmp/vssd.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
mounts = sorted({l.split()[4] for l in open('/proc/self/mountinfo')})
c["hold_exclude"] = [m.encode().decode('unicode_escape') for m in mounts]
json.dump(c, open(sys.argv[2], "w"), indent=1)
PY
export VSS_SOCKET=$tmp/run/vssd.sock
mkdir -p "$tmp/run" "$tmp/data/sub" "$tmp/hooks"
"$root/usr/sbin/vssd" --socket "$VSS_SOCKET" --state-dir "$tmp/state" --config "$tmp/vssd.json" >"$tmp/vssd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
        [ -S "$VSS_SOCKET" ] && "$root/usr/bin/vssadmin" list writers >/dev/null 2>&1 && break
        kill -0 "${pids[0]}" 2>/dev/null || fail "vssd exited"
        sleep 0.1
done
"$root/usr/bin/vssadmin" list writers >/dev/null || fail "vssd does not answer"

echo "first" >"$tmp/data/a.txt"
head -c 300000 /dev/urandom >"$tmp/data/sub/b.bin"
sqlite3 "$tmp/data/app.db" 'PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (42);' >/dev/null
cat >"$tmp/hooks/10-log" <<SH
#!/bin/sh
echo "\$1" >>"$tmp/events"
SH
chmod +x "$tmp/hooks/10-log"
"$root/usr/bin/vss-writer-exec" --name pkg-exec --hooks "$tmp/hooks" --component "files=$tmp/data" \
        >"$tmp/writer-exec.log" 2>&1 &
pids+=($!)
"$root/usr/bin/vss-writer-sqlite" --name pkg-sqlite --database "app=$tmp/data/app.db" >"$tmp/writer-sqlite.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
        n=$("$root/usr/bin/vssadmin" list writers | grep -cE "Writer name: 'pkg-(exec|sqlite)'" || true)
        [ "$n" = 2 ] && break
        sleep 0.1
done
[ "$n" = 2 ] || fail "the installed writers did not subscribe"

"$root/usr/bin/vssadmin" create shadow --for "$tmp/data" --json >"$tmp/shadow.json" || fail "vssadmin create shadow"
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); assert o["result"]=="ok", o; assert o["shadows"], o' \
        "$tmp/shadow.json" || fail "create shadow: $(cat "$tmp/shadow.json")"
grep -qx freeze "$tmp/events" && grep -qx thaw "$tmp/events" || fail "the exec writer's hooks did not run"
shadows=$("$root/usr/bin/vssadmin" list shadows)
grep -q "$tmp/data" <<<"$shadows" || fail "list shadows"
"$root/usr/bin/vssadmin" delete shadows --all >/dev/null || fail "delete shadows"

"$root/usr/bin/vssbackup" backup --to "$tmp/backup.tar.gz" --for "$tmp/data" >"$tmp/backup.log" 2>&1 \
        || { cat "$tmp/backup.log"; fail "vssbackup backup"; }
"$root/usr/bin/vssbackup" restore --from "$tmp/backup.tar.gz" --to "$tmp/restored" >"$tmp/restore.log" 2>&1 \
        || { cat "$tmp/restore.log"; fail "vssbackup restore"; }
cmp "$tmp/data/a.txt" "$tmp/restored$tmp/data/a.txt" || fail "a.txt not restored"
cmp "$tmp/data/sub/b.bin" "$tmp/restored$tmp/data/sub/b.bin" || fail "b.bin not restored"
[ "$(sqlite3 "$tmp/restored$tmp/data/app.db" 'SELECT x FROM t')" = 42 ] || fail "app.db not restored"
grep -qx post-restore "$tmp/events" || fail "the exec writer saw no restore"

kill -TERM "${pids[0]}"
wait "${pids[0]}" || fail "vssd did not stop cleanly"
echo "OK: packages built, lintian clean, installed programs made a backup and restored it"
