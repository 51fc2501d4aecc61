#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-compat-bench.sh [BUILDDIR]: ten trivial fsfreeze-hook.d hooks around a filesystem freeze,
# run by OpenVSS (vss-writer-exec --compat qemu-ga under a private vssd, the loop filesystem held
# frozen by an exec provider) and by the QEMU guest agent (Debian's qemu-guest-agent, qemu-ga in
# unix-listen mode with its stock fsfreeze-hook script), side by side in one run. Both freeze
# only an ext4 loop filesystem the benchmark makes. Root; builds nothing (run `ninja -C BUILDDIR`
# first); ROUNDS (environment, default 10) rounds each, alternating which side goes first;
# numbers are medians in milliseconds.
#
#   freeze window  first hook entered with freeze -> last hook entered with thaw (timestamps the
#                  hooks write, the same hooks and the same cost on both sides). OpenVSS runs the
#                  whole writer sequence inside it (Freeze, the provider's flush-and-hold, Thaw);
#                  qemu-ga its freeze-list and thaw commands.
#   end to end     OpenVSS: `vssadmin create shadow --provider hold` (connection, Identify,
#                  PrepareForBackup, PrepareForSnapshot, Freeze, FIFREEZE, the provider command,
#                  FITHAW, Thaw, PostSnapshot, BackupComplete, the registry); qemu-ga: a client
#                  sending guest-fsfreeze-freeze-list and guest-fsfreeze-thaw over its socket,
#                  timed inside the client (connect to the thaw's answer), so the Python
#                  interpreter's start-up does not count against qemu-ga.
#   floor          the same ten hooks started directly (bench/spawn-wait --in-order, posix_spawn), each with
#                  freeze in name order, then each with thaw: the freeze window no agent can go
#                  below, as the hooks run one after the other. Printed below, with OpenVSS's
#                  window over it.
#
# Exit status: 0 when every run succeeded, 1 otherwise. Everything it made (mount, loop device,
# processes) is removed on exit, also on failure or interruption; the filesystem is thawed first.

set -u -o pipefail

prog=run-compat-bench.sh
build="$(realpath "${1:-./build}")"
rounds="${ROUNDS:-10}"
vssd="$build/daemon/vssd"
writer="$build/writers/vss-writer-exec"
vssadmin="$build/tools/vssadmin"
spawn="$build/bench/spawn-wait"
qga=/usr/sbin/qemu-ga
qga_hook=/etc/qemu/fsfreeze-hook

die() { echo "$prog: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (loop device, mount, FIFREEZE)"
for f in "$vssd" "$writer" "$vssadmin" "$spawn"; do
        [[ -x "$f" ]] || die "$f not found; build first (ninja -C $build)"
done
[[ -x "$qga" && -r "$qga_hook" ]] || die "qemu-ga not found: apt-get install qemu-guest-agent"
command -v python3 >/dev/null || die "python3 is needed for the qemu-ga client"

t=$(mktemp -d /tmp/openvss-compat-bench.XXXXXX) || exit 1
mnt="$t/mnt" loop= pids=()
cleanup() {
        # Thaw before anything else: never leave our filesystem frozen.
        [[ -n "$loop" ]] && fsfreeze -u "$mnt" 2>/dev/null
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
        wait 2>/dev/null
        [[ -n "$loop" ]] && { umount "$mnt" 2>/dev/null || umount -l "$mnt"; losetup -d "$loop"; }
        rm -rf "$t"
}
trap cleanup EXIT INT TERM

truncate -s 64M "$t/fs.img"
mkfs.ext4 -q "$t/fs.img" || die "mkfs.ext4 failed"
loop=$(losetup --find --show "$t/fs.img") || die "losetup failed"
mkdir -p "$mnt" && mount "$loop" "$mnt" || die "mount failed"
echo data >"$mnt/file"

# Ten trivial hooks; the first records when freeze began, the last when thaw reached it.
mkdir -p "$t/hooks/fsfreeze-hook.d" "$t/state" "$t/qga-state"
for i in 01 02 03 04 05 06 07 08 09 10; do
        cat >"$t/hooks/fsfreeze-hook.d/$i-hook" <<HOOK
#!/bin/sh
case "\${0##*/} \$1" in
"01-hook freeze") date +%s%N >"$t/freeze-start" ;;
"10-hook thaw") date +%s%N >"$t/thaw-end" ;;
esac
exit 0
HOOK
        chmod 755 "$t/hooks/fsfreeze-hook.d/$i-hook"
done
# qemu-ga runs its stock script, which finds fsfreeze-hook.d beside itself; only its log moves.
sed "s|^LOGFILE=.*|LOGFILE=$t/qga-hook.log|" "$qga_hook" >"$t/hooks/fsfreeze-hook"
chmod 755 "$t/hooks/fsfreeze-hook"

export VSS_SOCKET="$t/vssd.sock"
cat >"$t/vssd.json" <<EOF
{ "providers": [ { "type": "exec", "name": "hold", "create": "/bin/echo $t/shadow", "delete": "/bin/true" } ] }
EOF
"$vssd" --socket "$VSS_SOCKET" --state-dir "$t/state" --config "$t/vssd.json" 2>"$t/vssd.log" &
pids+=($!)
for _ in $(seq 500); do [[ -S "$VSS_SOCKET" ]] && break; sleep 0.01; done
"$writer" --name bench --hooks "$t/hooks/fsfreeze-hook.d" --compat qemu-ga 2>"$t/writer.log" &
pids+=($!)
for _ in $(seq 500); do "$vssadmin" list writers 2>/dev/null | grep -q "'bench'" && break; sleep 0.01; done

"$qga" -m unix-listen -p "$t/qga.sock" -F"$t/hooks/fsfreeze-hook" -t "$t/qga-state" -f "$t/qga.pid" \
        -l "$t/qga.log" &
pids+=($!)
for _ in $(seq 500); do [[ -S "$t/qga.sock" ]] && break; sleep 0.01; done
[[ -S "$t/qga.sock" ]] || die "qemu-ga did not start: $(cat "$t/qga.log")"

qga_cycle() {
        python3 - "$t/qga.sock" "$mnt" <<'PY'
import json, socket, sys, time
start = time.monotonic_ns()
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
def call(cmd, args=None):
    f.write(json.dumps({"execute": cmd, **({"arguments": args} if args else {})}) + "\n")
    f.flush()
    r = json.loads(f.readline())
    if "error" in r:
        sys.exit("qemu-ga: %s: %s" % (cmd, r["error"]))
    return r["return"]
if call("guest-fsfreeze-freeze-list", {"mountpoints": [sys.argv[2]]}) != 1:
    sys.exit("qemu-ga froze an unexpected number of filesystems")
call("guest-fsfreeze-thaw")
print(time.monotonic_ns() - start)  # the client's own time, without Python's start-up
PY
}

vss_cycle() {
        "$vssadmin" create shadow --for "$mnt" --provider hold >"$t/create.log" 2>&1 &&
                "$vssadmin" delete shadows --all >/dev/null 2>&1
}

now_ns() { date +%s%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }

floor_cycle() {
        "$spawn" --in-order freeze thaw "$t"/hooks/fsfreeze-hook.d/??-hook
}

# One timed run: end to end around the client, window from the hooks' timestamps.
status=0
measure() {
        local side=$1 s e out
        rm -f "$t/freeze-start" "$t/thaw-end"
        s=$(now_ns)
        if ! out=$("${side}_cycle"); then
                echo "$prog: $side round failed" >&2
                cat "$t/create.log" "$t/writer.log" "$t/qga.log" 2>/dev/null | tail -20 >&2
                status=1
                return
        fi
        e=$(now_ns)
        if [[ ! -s "$t/freeze-start" || ! -s "$t/thaw-end" ]]; then
                echo "$prog: $side did not run the hooks" >&2
                status=1
                return
        fi
        [[ $side == qga ]] && e=$((s + out))
        echo $((e - s)) >>"$t/$side-e2e"
        echo $(($(cat "$t/thaw-end") - $(cat "$t/freeze-start"))) >>"$t/$side-window"
}

: >"$t/vss-e2e" ; : >"$t/vss-window" ; : >"$t/qga-e2e" ; : >"$t/qga-window" ; : >"$t/floor-e2e" ; : >"$t/floor-window"
vss_cycle && qga_cycle >/dev/null || die "warm-up failed: $(tail -5 "$t/create.log" "$t/qga.log")"
for r in $(seq "$rounds"); do
        if ((r % 2)); then measure vss; measure qga; else measure qga; measure vss; fi
        ((status == 0)) && measure floor
        ((status == 0)) || break
done

vw=$(median <"$t/vss-window") ve=$(median <"$t/vss-e2e") qw=$(median <"$t/qga-window") qe=$(median <"$t/qga-e2e")
fmt='%-40s  %18s  %15s\n'
printf "$fmt" "10 trivial hooks, $rounds rounds, medians" "freeze window (ms)" "end to end (ms)"
printf "$fmt" "OpenVSS: vss-writer-exec --compat qemu-ga" "$(ms "$vw")" "$(ms "$ve")"
printf "$fmt" "qemu-ga (unix-listen, fsfreeze-hook)" "$(ms "$qw")" "$(ms "$qe")"
awk -v a="$vw" -v b="$qw" -v c="$ve" -v d="$qe" \
        'BEGIN { if (b > 0 && d > 0) printf "%-40s  %17.2fx  %14.2fx\n", "ratio OpenVSS / qemu-ga", a / b, c / d }'
fw=$(median <"$t/floor-window")
printf "$fmt" "floor: the same hooks directly, in order" "$(ms "$fw")" "-"
awk -v a="$vw" -v b="$fw" -v q="$qw" \
        'BEGIN { if (b > 0) printf "%-40s  %17.2fx  %15s\n", "ratio OpenVSS / floor", a / b, sprintf("(floor/qemu-ga %.2fx)", b / q) }'
# BENCH_SUMMARY=FILE (environment): the figures as key=value lines for bench/summary.sh (issue 14).
if [[ -n "${BENCH_SUMMARY:-}" ]]; then
        { echo "qga.openvss=$(ms "$vw")"; echo "qga.qemu-ga=$(ms "$qw")"; echo "qga.floor=$(ms "$fw")"; } >>"$BENCH_SUMMARY"
fi
exit $status
