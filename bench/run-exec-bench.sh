#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-exec-bench.sh [BUILDDIR]: the freeze window of 10 vss-writer-exec writers (issue 14), each
# with one trivial hook, all at one application level (back-end), against one fork+exec+wait of
# that same hook measured in the same run. Builds nothing (run `ninja -C BUILDDIR` first).
# ROUNDS (environment, default 5) rounds; numbers are medians in milliseconds.
#
# A private vssd (its own socket and state directory in a mktemp directory; hold_filesystems
# empty, so it never holds the machine's filesystems) and 10 writers; each round is
# `vssadmin create shadow --provider file` of an empty directory. The hook (#!/bin/sh) appends
# `date +%s%N` to a file on freeze and on thaw and does nothing on the other events:
#
#   freeze window  the earliest freeze timestamp -> the latest thaw timestamp of the round
#   hook           bench/spawn-wait: fork, exec of the hook with "freeze", wait; timed after
#                  each round, the median over the rounds
#   ratio          freeze window / hook; the target is at most 3 (the hooks of separate writers
#                  overlap, so the window holds about one hook for freeze and one for thaw)
#   floor          the same window of the same 20 hooks started directly (posix_spawn), 10 at once for freeze
#                  and, once they all ended, 10 at once for thaw (`spawn-wait --parallel`): what
#                  the machine's cores allow with no vssd and no writer between; the median over
#                  the rounds, and the freeze window / floor. With fewer cores than writers the
#                  hooks queue for a core, and the floor itself is several hooks long.
#
# BENCH_SUMMARY=FILE (environment) appends the figures as key=value lines for bench/summary.sh.
# Exit status: 0 when every run succeeded, 1 otherwise. Everything is removed on exit.

set -u -o pipefail

prog=run-exec-bench.sh
build="$(realpath "${1:-./build}")"
rounds="${ROUNDS:-5}"
n_writers=10
vssd="$build/daemon/vssd"
writer="$build/writers/vss-writer-exec"
vssadmin="$build/tools/vssadmin"
spawn="$build/bench/spawn-wait"

die() { echo "$prog: $*" >&2; exit 1; }
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer (got '$rounds')"
for f in "$vssd" "$writer" "$vssadmin" "$spawn"; do
        [[ -x "$f" ]] || die "$f not found; build first (ninja -C $build)"
done
command -v jq >/dev/null || die "jq not found"

t=$(mktemp -d /tmp/openvss-exec-bench.XXXXXX) || exit 1
pids=()
cleanup() {
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
        wait 2>/dev/null
        rm -rf "$t"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$t/empty" "$t/state" "$t/ts" "$t/ts-ref" "$t/ts-floor" "$t/hooks"
cat >"$t/hooks/10-hook" <<'HOOK'
#!/bin/sh
case "$1" in
freeze|thaw) date +%s%N >>"$BENCH_TS/$1" ;;
esac
exit 0
HOOK
chmod 755 "$t/hooks/10-hook"
for ((i = 0; i < n_writers; i++)); do
        mkdir "$t/hooks$i" && ln "$t/hooks/10-hook" "$t/hooks$i/10-hook" || die "cannot make the hooks"
done

export VSS_SOCKET="$t/vssd.sock"
echo '{"hold_filesystems": []}' >"$t/vssd.json"
"$vssd" --socket "$VSS_SOCKET" --state-dir "$t/state" --config "$t/vssd.json" 2>"$t/vssd.log" &
pids+=($!)
for _ in $(seq 500); do [[ -S "$VSS_SOCKET" ]] && break; sleep 0.01; done
for ((i = 0; i < n_writers; i++)); do
        BENCH_TS="$t/ts" "$writer" --name "exec-bench-$i" --hooks "$t/hooks$i" --app-level back-end \
                2>>"$t/writer.log" &
        pids+=($!)
done
ready=0
for _ in $(seq 300); do
        got=$("$vssadmin" list writers --json 2>/dev/null | jq '[.writers[] | select(.name | startswith("exec-bench-"))] | length' 2>/dev/null)
        [[ "$got" == "$n_writers" ]] && { ready=1; break; }
        sleep 0.1
done
((ready)) || die "the writers did not subscribe: $(tail -5 "$t/vssd.log" "$t/writer.log")"

ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

status=0
: >"$t/window" ; : >"$t/hook" ; : >"$t/floor"
for ((r = 0; r <= rounds; r++)); do
        rm -f "$t/ts/freeze" "$t/ts/thaw"
        if ! "$vssadmin" create shadow --for "$t/empty" --provider file >"$t/create.log" 2>&1; then
                echo "$prog: create shadow failed:" >&2
                tail -20 "$t/create.log" "$t/vssd.log" "$t/writer.log" >&2
                status=1
                break
        fi
        "$vssadmin" delete shadows --all >/dev/null 2>&1
        nf=$(wc -l <"$t/ts/freeze") nt=$(wc -l <"$t/ts/thaw")
        if [[ "$nf" != "$n_writers" || "$nt" != "$n_writers" ]]; then
                echo "$prog: expected $n_writers freeze and thaw hooks, got $nf and $nt" >&2
                status=1
                break
        fi
        hook=$(BENCH_TS="$t/ts-ref" "$spawn" 1 "$t/hooks/10-hook" freeze) || { status=1; break; }
        rm -f "$t/ts-floor/freeze" "$t/ts-floor/thaw"
        BENCH_TS="$t/ts-floor" "$spawn" --parallel "$n_writers" "$t/hooks/10-hook" freeze thaw || { status=1; break; }
        ((r == 0)) && continue # warm-up
        echo $(($(sort -n "$t/ts/thaw" | tail -1) - $(sort -n "$t/ts/freeze" | head -1))) >>"$t/window"
        echo "$hook" >>"$t/hook"
        echo $(($(sort -n "$t/ts-floor/thaw" | tail -1) - $(sort -n "$t/ts-floor/freeze" | head -1))) >>"$t/floor"
done
((status == 0)) || exit 1

w=$(ms "$(median <"$t/window")") h=$(median <"$t/hook") f=$(ms "$(median <"$t/floor")")
h=$(printf '%.1f' "$h")
ratio=$(awk -v a="$w" -v b="$h" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
fratio=$(awk -v a="$w" -v b="$f" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
fmt='%-50s  %18s  %27s  %22s  %31s  %22s\n'
printf "$fmt" "$n_writers vss-writer-exec, 1 trivial hook each, $rounds rounds" "freeze window (ms)" "one hook fork+exec+wait (ms)" "ratio (window / hook)" \
        "floor: same hooks directly (ms)" "window / floor"
printf "$fmt" "one app level (back-end), file provider, empty dir" "$w" "$h" "$ratio" "$f" "$fratio"
if [[ -n "${BENCH_SUMMARY:-}" ]]; then
        { echo "exec.window=$w"; echo "exec.hook=$h"; echo "exec.floor=$f"; } >>"$BENCH_SUMMARY"
fi
exit 0
