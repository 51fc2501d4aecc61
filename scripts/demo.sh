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
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$work"
}
trap cleanup EXIT INT TERM

export VSS_SOCKET=$work/vssd.sock
mkdir -p "$work/data/db" "$work/data/www"
echo "id,name" > "$work/data/db/table.csv"
echo "<h1>hello</h1>" > "$work/data/www/index.html"

echo "== starting vssd on $VSS_SOCKET"
"$bin/daemon/vssd" --state-dir "$work/state" 2>"$work/vssd.log" &
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
shadow=$("$bin/tools/vssadmin" list shadows --json | sed -n 's/.*"shadow_path":"\([^"]*\)".*/\1/p' | head -1)
(cd "$shadow" && find . -type f | sort)

echo "== vssbackup backup: the same sequence, the components' files stored in an archive"
"$bin/tools/vssbackup" backup --to "$work/backup.tar.zst"
echo "== a file is lost; vssbackup restore puts it back (PreRestore and PostRestore to the writers)"
rm "$work/data/db/table.csv"
"$bin/tools/vssbackup" restore --from "$work/backup.tar.zst"
cat "$work/data/db/table.csv"
echo "== vssbackup exec: any tool against a consistent shadow copy"
"$bin/tools/vssbackup" exec --for "$work/data" -- sh -c 'echo "tar sees:"; tar -C {} -cf - . | tar -tf - | sort' 2>/dev/null

echo "== writer status as the admin sees it now"
"$bin/tools/vssadmin" list writers
echo "== done; stopping vssd and the writers"
