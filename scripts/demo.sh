#!/bin/bash
# The main job on the embedded default: a private vssd, two sample writers, a shadow copy of a
# sample directory with the `file` provider, writer status after each phase. Everything it
# starts is stopped and removed on exit, also on failure.
set -euo pipefail
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build" && pwd)
work=$(mktemp -d /tmp/openvss-demo-XXXXXX)
pids=()
loopdev=""
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        if mountpoint -q "$work/loop" 2>/dev/null; then
                fsfreeze -u "$work/loop" 2>/dev/null || true
                umount "$work/loop" || umount -l "$work/loop" || true
        fi
        [ -z "$loopdev" ] || losetup -d "$loopdev" 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT INT TERM

export VSS_SOCKET=$work/vssd.sock
mkdir -p "$work/data/db" "$work/data/www"
echo "id,name" > "$work/data/db/table.csv"
echo "<h1>hello</h1>" > "$work/data/www/index.html"

# The demo never holds the machine's own filesystems: every mount there is now is excluded. As
# root, it makes a loop filesystem of its own, which is held (one instant).
{
        printf '{"hold_exclude": ['
        sep=""
        while read -r m; do
                m=$(printf "%b" "$m")
                m=${m//\\/\\\\}
                printf '%s"%s"' "$sep" "${m//\"/\\\"}"
                sep=", "
        done < <(findmnt -rn -o TARGET)
        printf ']}\n'
} >"$work/vssd.json"
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && truncate -s 64M "$work/loop.img" &&
        loopdev=$(losetup --find --show "$work/loop.img" 2>/dev/null) && mkfs.ext4 -q "$loopdev" &&
        mkdir -p "$work/loop" && mount "$loopdev" "$work/loop"; then
        mkdir -p "$work/loop/data"
        echo "held" > "$work/loop/data/file"
else
        [ -z "$loopdev" ] || { losetup -d "$loopdev"; loopdev=""; }
fi

echo "== starting vssd on $VSS_SOCKET"
"$bin/daemon/vssd" --state-dir "$work/state" --config "$work/vssd.json" 2>"$work/vssd.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$VSS_SOCKET" ] && break; sleep 0.05; done

echo "== starting two sample writers (front-end 'web', back-end 'db')"
"$bin/writers/vss-writer-exec" --name web --hooks "$top/examples/hooks/web" --app-level front-end \
        --component www="$work/data/www" 2>"$work/web.log" &
pids+=($!)
"$bin/writers/vss-writer-exec" --name db --hooks "$top/examples/hooks/db" --app-level back-end \
        --component db="$work/data/db" --freeze-timeout 10000 2>"$work/db.log" &
pids+=($!)
for _ in $(seq 100); do
        [ "$("$bin/tools/vssadmin" list writers 2>/dev/null | grep -c '^Writer name')" = 2 ] && break
        sleep 0.05
done
"$bin/tools/vssadmin" list writers

echo "== vssadmin create shadow --for $work/data"
"$bin/tools/vssadmin" create shadow --for "$work/data"

echo
echo "== vssadmin list shadows"
"$bin/tools/vssadmin" list shadows
echo "== the shadow's content"
# The first one; sed reads to the end (with pipefail, `| head` may leave it a SIGPIPE).
shadow=$("$bin/tools/vssadmin" list shadows --json | sed -n 's/.*"shadow_path":"\([^"]*\)".*/\1/p' | sed -n 1p)
(cd "$shadow" && find . -type f | sort)

echo "== vssbackup backup: the same sequence, the components' files stored in an archive"
"$bin/tools/vssbackup" backup --to "$work/backup.tar.zst"
echo "== a file is lost; vssbackup restore puts it back (PreRestore and PostRestore to the writers)"
rm "$work/data/db/table.csv"
"$bin/tools/vssbackup" restore --from "$work/backup.tar.zst"
cat "$work/data/db/table.csv"
echo "== vssbackup exec: any tool against a consistent shadow copy"
"$bin/tools/vssbackup" exec --for "$work/data" -- sh -c 'echo "tar sees:"; tar -C {} -cf - . | tar -tf - | sort' 2>/dev/null

if mountpoint -q "$work/loop" 2>/dev/null; then
        echo "== flush-and-hold: a loop filesystem the demo made is held while its last changes are copied"
        "$bin/tools/vssadmin" list providers --for "$work/loop/data" --for "$work/data" | grep -A1 '^Shadow copies'
        "$bin/tools/vssadmin" create shadow --for "$work/loop/data"
else
        echo "== (not root: no loop filesystem to show a held shadow on; the shadows above are not point-in-time)"
fi

echo "== writer status as the admin sees it now"
"$bin/tools/vssadmin" list writers
echo "== done; stopping vssd and the writers"
