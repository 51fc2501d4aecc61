#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-provider-bench.sh [BUILDDIR]: shadow creation time of each provider against the same raw
# operation done by hand on the same data in the same run, as a ratio. Builds nothing: run
# `ninja -C BUILDDIR` first. BUILDDIR defaults to ./build. Needs root (loop devices, mounts,
# fsfreeze), mkfs.btrfs, mkfs.xfs, mkfs.ext4, btrfs, losetup, fsfreeze, jq.
#
# It makes its own loop filesystems in a mktemp directory (btrfs 1G, XFS with reflink 1G, ext4
# 256M), copies one data set into each (200 files of 256 KiB random data and one 64 MiB file),
# and starts a private vssd whose state directory is on the XFS filesystem (so the file provider
# reflinks there, and copies from ext4 are real copies), with one exec provider, "image", that
# copies the ext4 loop image, and one vss-writer-exec with an empty hooks directory (so the whole
# writer sequence runs, with a writer that does nothing). Cases:
#
#   provider               OpenVSS                                   by hand
#   btrfs on btrfs         vssadmin create shadow --provider btrfs   btrfs subvolume snapshot -r SRC DST
#   file on xfs (reflink)  vssadmin create shadow --provider file    cp -a --reflink=always SRC DST (same XFS)
#   file on ext4 (copy)    vssadmin create shadow --provider file    cp -a SRC DST (DST on the XFS, like the state dir)
#   image (exec) on ext4   vssadmin create shadow --provider image   fsfreeze -f MNT; cp --sparse=always IMG OUT;
#                                                                    fsfreeze -u MNT
#   file on xfs, metadata  vssadmin create shadow --provider file    cp -a --preserve=all --reflink=always SRC DST
#                          (the data set again, each file with a user.* xattr, a POSIX ACL and the nodump
#                          attribute, every tenth with a file capability: what the file provider copies
#                          besides data, against cp copying the same xattrs; cp leaves chattr attributes)
#
# vssd holds no source for these rows (hold_filesystems is empty; the exec provider is flush-and-
# hold by itself). Below them, "held" rows (issue 14): file on xfs and file on ext4 again with vssd
# restarted to hold those two filesystems (copy-ahead, then the last delta while frozen), against
# the same by-hand copies, with a raw FIFREEZE+FITHAW of the source filesystem (two ioctls in one
# process) timed after each round beside them.
#
# The OpenVSS time is measured around the vssadmin call (process start to exit: connection, the
# whole writer sequence, the provider, the set journal); the by-hand time around the command(s).
# ROUNDS (environment, default 5) rounds per case, after one untimed warm-up round that also
# checks the copies' contents (diff -r against the source; e2fsck -fn on the images); each number
# is the median over the rounds. The side that goes first alternates from round to round; every
# copy (the shadow, or the hand-made one) is deleted, untimed, before the next timed operation,
# and `sync` runs, untimed, just before each. Page caches stay warm.
# VERBOSE=1 shows every round on stderr.
#
# BENCH_SUMMARY=FILE (environment) appends the figures as key=value lines for bench/summary.sh.
# Exit status: 0 when everything succeeded, 1 otherwise (messages and vssd's log on stderr).
# Everything it made is removed on exit, including on failure or interruption.

# shellcheck disable=SC2317,SC2059 # functions called indirectly; printf formats are ours
set -u -o pipefail

prog=run-provider-bench.sh
build="${1:-./build}"
rounds="${ROUNDS:-5}"
vssd="$build/daemon/vssd"
vssadmin="$build/tools/vssadmin"
wexec="$build/writers/vss-writer-exec"

die() {
        echo "$prog: $*" >&2
        exit 1
}
say() {
        [[ "${VERBOSE:-0}" == 1 ]] && echo "$prog: [${SECONDS}s] $*" >&2
        return 0
}

[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer (got '$rounds')"
[[ $EUID -eq 0 ]] || die "must run as root (loop devices, mounts, fsfreeze)"
for f in "$vssd" "$vssadmin" "$wexec"; do
        [[ -x "$f" ]] || die "$f not found or not executable; build first (ninja -C $build)"
done
for c in mkfs.btrfs mkfs.xfs mkfs.ext4 btrfs losetup fsfreeze findmnt jq mountpoint setfattr setfacl setcap chattr python3; do
        command -v "$c" >/dev/null || die "$c not found"
done
# Absolute paths: vssd and the provider commands run with other working directories.
vssd=$(realpath "$vssd") vssadmin=$(realpath "$vssadmin") wexec=$(realpath "$wexec")

work=$(mktemp -d /tmp/openvss-provider-bench.XXXXXX) || die "mktemp failed"
vssd_pid=""
writer_pid=""
cleaned=0
status=0

# Waits up to $2 tenths of a second for pid $1 to exit after SIGTERM, then kills it.
stop_pid() {
        local pid=$1 n=$2 i
        [[ -n "$pid" ]] || return 0
        kill -TERM "$pid" 2>/dev/null || return 0
        for ((i = 0; i < n; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
                echo "$prog: pid $pid did not exit on SIGTERM; killing it" >&2
                kill -KILL "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
        return 0
}

# Our mount points, deepest first.
our_mounts() {
        findmnt -rn -o TARGET | grep -F "$work/" | sort -r
}

cleanup() {
        ((cleaned)) && return
        cleaned=1
        trap '' INT TERM
        local m img dev left=0
        # Never leave a filesystem frozen: thaw first (errors ignored: most are not frozen).
        for m in "$work/btrfs" "$work/xfs" "$work/ext4" "$work/hold" "$work/hstore"; do
                mountpoint -q "$m" 2>/dev/null && fsfreeze -u "$m" 2>/dev/null
        done
        stop_pid "$writer_pid" 30
        stop_pid "$vssd_pid" 200
        for m in "$work/btrfs" "$work/xfs" "$work/ext4"; do
                mountpoint -q "$m" 2>/dev/null && fsfreeze -u "$m" 2>/dev/null
        done
        while read -r m; do
                [[ -n "$m" ]] || continue
                umount "$m" 2>/dev/null || umount -l "$m" || echo "$prog: cannot unmount $m" >&2
        done < <(our_mounts)
        for img in "$work"/*.img; do
                [[ -e "$img" ]] || continue
                for dev in $(losetup -n -O NAME -j "$img" 2>/dev/null); do
                        losetup -d "$dev" || echo "$prog: cannot detach $dev" >&2
                done
        done
        # Check nothing of ours is left.
        if losetup -a 2>/dev/null | grep -qF "$work/"; then
                echo "$prog: loop devices left:" >&2
                losetup -a | grep -F "$work/" >&2
                left=1
        fi
        if findmnt -rn -t btrfs,xfs,ext4 -o TARGET,SOURCE | grep -qF "$work/"; then
                echo "$prog: mounts left:" >&2
                findmnt -rn -t btrfs,xfs,ext4 -o TARGET,SOURCE | grep -F "$work/" >&2
                left=1
        fi
        if [[ -n "$vssd_pid" ]] && kill -0 "$vssd_pid" 2>/dev/null; then
                echo "$prog: vssd (pid $vssd_pid) is still running" >&2
                left=1
        fi
        if [[ -n "$writer_pid" ]] && kill -0 "$writer_pid" 2>/dev/null; then
                echo "$prog: vss-writer-exec (pid $writer_pid) is still running" >&2
                left=1
        fi
        if ((left)); then
                echo "$prog: not removing $work (something of it is still in use)" >&2
                status=1
        else
                rm -rf "$work"
        fi
}
trap 'cleanup; exit $status' EXIT
trap 'echo "$prog: interrupted" >&2; status=130; exit 130' INT
trap 'echo "$prog: terminated" >&2; status=143; exit 143' TERM

show_logs() {
        local f
        for f in "$work/vssd.log" "$work/writer.log"; do
                if [[ -s "$f" ]]; then
                        echo "---- last lines of $(basename "$f") ----" >&2
                        tail -n 40 "$f" >&2
                fi
        done
}

fail() {
        echo "$prog: $*" >&2
        show_logs
        status=1
        exit 1
}

# Runs a shell command quietly; on failure shows its output and fails.
run() {
        local out
        if ! out=$("$@" 2>&1); then
                printf '%s\n' "$out" >&2
                fail "failed: $*"
        fi
}

# make_fs NAME SIZE MKFS...: a loop filesystem mounted on $work/NAME.
make_fs() {
        local name=$1 size=$2 dev
        shift 2
        run truncate -s "$size" "$work/$name.img"
        dev=$(losetup --find --show "$work/$name.img") || fail "losetup $work/$name.img failed"
        run "$@" "$dev"
        run mkdir -p "$work/$name"
        run mount "$dev" "$work/$name"
}

# ---- filesystems and the data set ----

say "making the filesystems"
make_fs btrfs 1G mkfs.btrfs -q -f
make_fs xfs 1G mkfs.xfs -q -f -m reflink=1
# No lazy inode table / journal init: ext4lazyinit would write in the background while we time.
make_fs ext4 256M mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0

B="$work/btrfs" X="$work/xfs" E="$work/ext4"
img="$work/ext4.img"
dataset="$work/dataset"
run mkdir "$dataset"
for ((i = 0; i < 200; i++)); do
        head -c 262144 /dev/urandom >"$dataset/f$i" || fail "cannot write the data set"
done
head -c 67108864 /dev/urandom >"$dataset/big" || fail "cannot write the data set"

say "copying the data set in"
run btrfs -q subvolume create "$B/vol"
run cp -a "$dataset/." "$B/vol/"
run mkdir "$X/data" "$E/data"
run cp -a "$dataset/." "$X/data/"
run cp -a "$dataset/." "$E/data/"
run mkdir "$X/meta"
run cp -a "$dataset/." "$X/meta/"
n=0
for f in "$X"/meta/*; do
        run setfattr -n user.bench -v "$n" "$f"
        run setfacl -m u:1234:r "$f"
        run chattr +d "$f"
        ((n++ % 10)) || run setcap cap_net_bind_service+ep "$f"
done
run mkdir "$X/state" "$work/hooks" "$work/image-shadows"
sync

# ---- vssd, the exec provider and a writer ----

# The create command runs under /bin/sh -c while vssd holds the filesystem frozen; its last line
# of output is the shadow's location.
create_cmd="out='$work/image-shadows/'\"\$VSS_SHADOW_ID\".img && cp --sparse=always '$img' \"\$out\" && echo \"\$out\""
delete_cmd="rm -f \"\$VSS_SHADOW_PATH\""
# The main rows hold no source (hold_filesystems empty): the file provider copies in one pass
# while the writer is frozen, like cp. The exec provider "image" is flush-and-hold by nature
# (vssd freezes the ext4 around its command whatever hold_filesystems says). The "held" rows
# below restart vssd with the XFS and the ext4 listed (copy-ahead, then the last delta frozen).
write_config() {
        jq -n --arg c "$create_cmd" --arg d "$delete_cmd" --argjson held "$2" \
                '{hold_window_ms: 60000, hold_filesystems: $held,
                  providers: [{type: "exec", name: "image", create: $c, delete: $d}]}' >"$1" ||
                fail "cannot write the vssd config"
}
write_config "$work/vssd.json" '[]'
write_config "$work/vssd-held.json" "$(jq -n --arg x "$X" --arg e "$E" '[$x, $e]')"

export VSS_SOCKET="$work/vssd.sock"
# start_daemons CONFIG: (re)starts vssd with CONFIG and the writer, and waits until both are up.
start_daemons() {
        local config=$1 i ready providers p
        say "starting vssd ($config) and the writer"
        stop_pid "$writer_pid" 30
        writer_pid=""
        stop_pid "$vssd_pid" 200
        "$vssd" --socket "$VSS_SOCKET" --state-dir "$X/state" --config "$config" >>"$work/vssd.log" 2>&1 &
        vssd_pid=$!
        ready=0
        for ((i = 0; i < 100; i++)); do
                kill -0 "$vssd_pid" 2>/dev/null || fail "vssd exited at start"
                if providers=$("$vssadmin" list providers --json 2>/dev/null); then
                        ready=1
                        break
                fi
                sleep 0.1
        done
        ((ready)) || fail "vssd did not answer within 10 s"
        for p in btrfs file image; do
                jq -e --arg p "$p" '[.. | objects | select(.name? == $p)] | length > 0' <<<"$providers" >/dev/null ||
                        fail "vssd does not list provider '$p': $providers"
        done

        "$wexec" --name provider-bench --hooks "$work/hooks" >>"$work/writer.log" 2>&1 &
        writer_pid=$!
        ready=0
        for ((i = 0; i < 100; i++)); do
                kill -0 "$writer_pid" 2>/dev/null || fail "vss-writer-exec exited at start"
                if "$vssadmin" list writers --json 2>/dev/null |
                        jq -e '[.writers[] | select(.name == "provider-bench")] | length > 0' >/dev/null 2>&1; then
                        ready=1
                        break
                fi
                sleep 0.1
        done
        ((ready)) || fail "the writer did not subscribe within 10 s"
}
start_daemons "$work/vssd.json"

# ---- timing ----

now_us() {
        local t=$EPOCHREALTIME
        echo "${t//[!0-9]/}" # seconds.microseconds, whatever the locale's decimal point
}

# The last OpenVSS shadow: its set id and path.
shadow_set="" shadow_path=""

# openvss PATH PROVIDER: times `vssadmin create shadow`; prints microseconds.
openvss() {
        local path=$1 provider=$2 t0 t1 rc
        sync
        t0=$(now_us)
        "$vssadmin" create shadow --for "$path" --provider "$provider" --json >"$work/create.json" 2>"$work/create.err"
        rc=$?
        t1=$(now_us)
        if ((rc != 0)) || ! jq -e '.result == "ok"' "$work/create.json" >/dev/null 2>&1; then
                echo "$prog: vssadmin create shadow --for $path --provider $provider failed (exit $rc):" >&2
                cat "$work/create.json" "$work/create.err" >&2
                return 1
        fi
        local got
        got=$(jq -r '.shadows | length' "$work/create.json")
        [[ "$got" == 1 ]] || { echo "$prog: $provider: expected 1 shadow, got $got" >&2; return 1; }
        shadow_set=$(jq -r '.snapshot_set_id' "$work/create.json")
        shadow_path=$(jq -r '.shadows[0].shadow_path' "$work/create.json")
        got=$(jq -r '.shadows[0].provider' "$work/create.json")
        [[ "$got" == "$provider" ]] || { echo "$prog: asked for provider $provider, the shadow is by '$got'" >&2; return 1; }
        [[ -e "$shadow_path" ]] || { echo "$prog: $provider: shadow path '$shadow_path' does not exist" >&2; return 1; }
        echo $((t1 - t0))
}

openvss_delete() {
        local p=$shadow_path
        "$vssadmin" delete shadows --set "$shadow_set" >/dev/null 2>"$work/delete.err" || {
                echo "$prog: vssadmin delete shadows --set $shadow_set failed:" >&2
                cat "$work/delete.err" >&2
                return 1
        }
        [[ ! -e "$p" ]] || { echo "$prog: shadow '$p' still exists after delete" >&2; return 1; }
}

# timed CMD...: times a command (after an untimed sync); prints microseconds.
timed() {
        local t0 t1
        sync
        t0=$(now_us)
        "$@" >"$work/hand.out" 2>&1 || {
                echo "$prog: failed: $*" >&2
                cat "$work/hand.out" >&2
                return 1
        }
        t1=$(now_us)
        echo $((t1 - t0))
}

# The by-hand operations, where they put their copy, and how to undo them.
hand_btrfs() { btrfs -q subvolume snapshot -r "$B/vol" "$B/hand"; }
undo_btrfs() { btrfs -q subvolume delete "$B/hand"; }
hand_xfs() { cp -a --reflink=always "$X/data" "$X/hand"; }
undo_xfs() { rm -rf "$X/hand"; }
hand_ext4() { cp -a "$E/data" "$X/hand-ext4"; }
undo_ext4() { rm -rf "$X/hand-ext4"; }
hand_image() {
        local rc=0
        fsfreeze -f "$E" || return 1
        cp --sparse=always "$img" "$work/image-hand.img" || rc=1
        fsfreeze -u "$E" || rc=1
        return "$rc"
}
undo_image() { rm -f "$work/image-hand.img"; }
hand_xfsmeta() { cp -a --preserve=all --reflink=always "$X/meta" "$X/hand-meta"; }
undo_xfsmeta() { rm -rf "$X/hand-meta"; }
declare -A hand_copy=([btrfs]="$B/hand" [xfs]="$X/hand" [ext4]="$X/hand-ext4" [image]="$work/image-hand.img"
                      [xfsmeta]="$X/hand-meta")

# After a delete: deleted btrfs subvolumes are cleaned in the background after a commit; commit
# now and wait for the cleaner, so the cleaning does not land in the next timing.
settle() {
        if [[ "$1" == btrfs ]]; then
                btrfs -q filesystem sync "$B" && btrfs -q subvolume sync "$B"
        fi
}

# Untimed checks of the warm-up round's copies: check_KEY COPY.
check_tree() { diff -r "$1" "$2" >/dev/null || { echo "$prog: $2 differs from $1" >&2; return 1; }; }
check_btrfs() { check_tree "$B/vol" "$1"; }
check_xfs() { check_tree "$X/data" "$1"; }
check_ext4() { check_tree "$E/data" "$1"; }
check_xfsmeta() {
        check_tree "$X/meta" "$1" || return 1
        [[ "$(cd "$X/meta" && getfattr -R -d -m- -e hex .)" == "$(cd "$1" && getfattr -R -d -m- -e hex .)" ]] ||
                { echo "$prog: $1 does not have the xattrs (ACLs, capabilities) of $X/meta" >&2; return 1; }
}
check_image() {
        e2fsck -fn "$1" >"$work/fsck.out" 2>&1 || {
                echo "$prog: $1 is not a clean ext4 image:" >&2
                cat "$work/fsck.out" >&2
                return 1
        }
}

median_ms() {
        printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 }
                END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f", m / 1000 }'
}

# One timed side of a round, then its check (warm-up only), delete and settle, so each timed
# operation starts from the same state. side_openvss/side_hand KEY PATH PROVIDER CHECK; set us.
side_openvss() {
        local key=$1 path=$2 provider=$3 check=$4
        us=$(openvss "$path" "$provider") || return 1
        # The command substitution ran in a subshell: read the shadow back.
        shadow_set=$(jq -r '.snapshot_set_id' "$work/create.json")
        shadow_path=$(jq -r '.shadows[0].shadow_path' "$work/create.json")
        if ((check)); then "check_$key" "$shadow_path" || return 1; fi
        openvss_delete || return 1
        settle "$key" >"$work/undo.out" 2>&1 || { cat "$work/undo.out" >&2; return 1; }
}
side_hand() {
        local key=$1 check=$4
        us=$(timed "hand_$key") || return 1
        if ((check)); then "check_$key" "${hand_copy[$key]}" || return 1; fi
        { "undo_$key" && settle "$key"; } >"$work/undo.out" 2>&1 || {
                echo "$prog: undo_$key failed:" >&2
                cat "$work/undo.out" >&2
                return 1
        }
}

# bench KEY PATH PROVIDER [MNT]: sets row_openvss and row_hand (median ms), or returns 1. Round 0
# is the warm-up; the side that goes first alternates. With MNT, also row_raw: a raw
# FIFREEZE+FITHAW of MNT timed after each round, inside one process (no process start counted).
bench() {
        local key=$1 path=$2 provider=$3 mnt=${4:-} r us us_o us_h check
        local -a o=() h=() raw=()
        for ((r = 0; r <= rounds; r++)); do
                check=$((r == 0))
                if ((r % 2)); then
                        side_hand "$key" "$path" "$provider" "$check" || return 1
                        us_h=$us
                        side_openvss "$key" "$path" "$provider" "$check" || return 1
                        us_o=$us
                else
                        side_openvss "$key" "$path" "$provider" "$check" || return 1
                        us_o=$us
                        side_hand "$key" "$path" "$provider" "$check" || return 1
                        us_h=$us
                fi
                if ((r == 0)); then
                        say "$key: warm-up: OpenVSS $((us_o / 1000)) ms, by hand $((us_h / 1000)) ms (not counted)"
                else
                        o+=("$us_o")
                        h+=("$us_h")
                        say "$key: round $r: OpenVSS $((us_o / 1000)) ms, by hand $((us_h / 1000)) ms"
                        if [[ -n "$mnt" ]]; then
                                sync
                                us=$(raw_freeze "$mnt") || return 1
                                raw+=("$us")
                        fi
                fi
                kill -0 "$vssd_pid" 2>/dev/null || { echo "$prog: vssd is gone" >&2; return 1; }
        done
        row_openvss=$(median_ms "${o[@]}")
        row_hand=$(median_ms "${h[@]}")
        row_raw=-
        [[ -z "$mnt" ]] || row_raw=$(median_ms "${raw[@]}")
}
# raw_freeze MNT: FIFREEZE then FITHAW of MNT; prints the microseconds between.
raw_freeze() {
        python3 - "$1" <<'PY'
import fcntl, os, sys, time
FIFREEZE, FITHAW = 0xC0045877, 0xC0045878  # _IOWR('X', 119 / 120, int)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
t = time.monotonic_ns()
fcntl.ioctl(fd, FIFREEZE, 0)
fcntl.ioctl(fd, FITHAW, 0)
print((time.monotonic_ns() - t) // 1000)
PY
}

cases=(
        "btrfs|$B/vol|btrfs|btrfs on btrfs|btrfs subvolume snapshot -r SRC DST"
        "xfs|$X/data|file|file on xfs (reflink)|cp -a --reflink=always SRC DST (same XFS)"
        "ext4|$E/data|file|file on ext4 (copy)|cp -a SRC DST (ext4 -> the XFS holding the state dir)"
        "image|$E|image|image (exec) on ext4|fsfreeze -f MNT; cp --sparse=always IMG OUT; fsfreeze -u MNT"
        "xfsmeta|$X/meta|file|file on xfs, metadata|cp -a --preserve=all --reflink=always SRC DST (same XFS)"
)

echo "OpenVSS provider benchmark: $rounds rounds (+1 warm-up) per case, medians; data set: 200 x 256 KiB + 1 x 64 MiB"
echo "writers: 1 vss-writer-exec with an empty hooks dir (the whole writer sequence runs; its hooks do nothing)"
echo
fmt='%-22s  %12s  %12s  %26s\n'
printf "$fmt" "provider" "OpenVSS (ms)" "by hand (ms)" "ratio (OpenVSS / by hand)"
for c in "${cases[@]}"; do
        IFS='|' read -r key path provider label _ <<<"$c"
        if bench "$key" "$path" "$provider"; then
                ratio=$(awk -v a="$row_openvss" -v b="$row_hand" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
                printf "$fmt" "$label" "$row_openvss" "$row_hand" "$ratio"
                [[ -n "${BENCH_SUMMARY:-}" ]] &&
                        { echo "provider.$key.openvss=$row_openvss"; echo "provider.$key.hand=$row_hand"; } >>"$BENCH_SUMMARY"
        else
                printf "$fmt" "$label" "failed" "failed" "-"
                echo "$prog: case '$label' failed" >&2
                status=1
                if ! kill -0 "$vssd_pid" 2>/dev/null; then
                        wait "$vssd_pid" 2>/dev/null
                        echo "$prog: vssd exited (status $?); not running the other cases" >&2
                        break
                fi
        fi
done
((status == 0)) || show_logs
echo
echo "by hand:"
for c in "${cases[@]}"; do
        IFS='|' read -r _ _ _ label hand <<<"$c"
        printf '  %-22s  %s\n' "$label" "$hand"
done

# ---- the file rows again, with vssd holding the sources ----
held_cases=(
        "xfs|$X/data|file|file on xfs, held|$X"
        "ext4|$E/data|file|file on ext4, held|$E"
)
echo
echo "held: the file rows with vssd holding the source filesystem (hold_filesystems lists it): copy-ahead,"
echo "then the last delta while it is frozen; by hand as above; raw FIFREEZE+FITHAW of that filesystem beside"
hfmt='%-22s  %12s  %12s  %26s  %20s\n'
printf "$hfmt" "provider" "OpenVSS (ms)" "by hand (ms)" "ratio (OpenVSS / by hand)" "FIFREEZE+FITHAW (ms)"
if kill -0 "$vssd_pid" 2>/dev/null; then
        start_daemons "$work/vssd-held.json"
        for c in "${held_cases[@]}"; do
                IFS='|' read -r key path provider label mnt <<<"$c"
                if bench "$key" "$path" "$provider" "$mnt"; then
                        ratio=$(awk -v a="$row_openvss" -v b="$row_hand" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
                        printf "$hfmt" "$label" "$row_openvss" "$row_hand" "$ratio" "$row_raw"
                        [[ -n "${BENCH_SUMMARY:-}" ]] &&
                                { echo "provider.${key}_held.openvss=$row_openvss"; echo "provider.${key}_held.hand=$row_hand"
                                  echo "provider.${key}_held.raw=$row_raw"; } >>"$BENCH_SUMMARY"
                else
                        printf "$hfmt" "$label" "failed" "failed" "-" "-"
                        echo "$prog: case '$label' failed" >&2
                        status=1
                        kill -0 "$vssd_pid" 2>/dev/null || break
                fi
        done
        ((status == 0)) || show_logs
fi

# ---- flush-and-hold of the file provider: how long the source is held ----
#
# A 1 GiB tree (1024 x 1 MiB) on its own ext4 (held), of which one 1 MiB file is rewritten
# without pause during the whole create; the storage on its own XFS (a real copy, no reflink). The
# file provider copies ahead, then holds the ext4 only for the last delta. From vssd's log, per
# round: how long the filesystem was held (freeze, last delta, thaw) and how long the first,
# full copy pass took, in the same run; their ratio must be at most 5 %. Raw FIFREEZE+FITHAW of
# the same filesystem by hand for comparison. vssd is restarted for this with hold_filesystems
# listing only that ext4 (never the machine's own filesystems).
hold_bench() {
        local H="$work/hold" S="$work/hstore" r held full hot_pid
        local -a hs=() fs=() raw=()
        make_fs hold 1400M mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0
        make_fs hstore 1600M mkfs.xfs -q -f
        run mkdir "$H/data" "$S/state"
        for ((i = 0; i < 1024; i++)); do
                head -c 1048576 /dev/urandom >"$H/data/f$i" || return 1
        done
        sync
        jq -n --arg h "$H" '{hold_window_ms: 10000, hold_filesystems: [$h]}' >"$work/vssd-hold.json" || return 1
        stop_pid "$writer_pid" 30
        writer_pid=""
        stop_pid "$vssd_pid" 200
        "$vssd" --socket "$VSS_SOCKET" --state-dir "$S/state" --config "$work/vssd-hold.json" >>"$work/vssd.log" 2>&1 &
        vssd_pid=$!
        for ((i = 0; i < 100; i++)); do
                "$vssadmin" list providers >/dev/null 2>&1 && break
                sleep 0.1
        done
        ( while :; do dd if=/dev/urandom of="$H/data/f0" bs=1M count=1 conv=notrunc status=none; done ) &
        hot_pid=$!
        for ((r = 0; r <= rounds; r++)); do
                : >"$work/vssd-round.log"
                local before
                before=$(wc -l <"$work/vssd.log")
                openvss "$H/data" file >/dev/null || { stop_pid "$hot_pid" 10; return 1; }
                shadow_set=$(jq -r '.snapshot_set_id' "$work/create.json")
                shadow_path=$(jq -r '.shadows[0].shadow_path' "$work/create.json")
                tail -n +"$((before + 1))" "$work/vssd.log" >"$work/vssd-round.log"
                held=$(sed -n 's/.*held the filesystems of [0-9]* volumes for \([0-9]*\) us.*/\1/p' "$work/vssd-round.log" | tail -1)
                full=$(sed -n 's/.*the first (a full copy, [0-9]* bytes) took \([0-9]*\) us.*/\1/p' "$work/vssd-round.log" | tail -1)
                openvss_delete || { stop_pid "$hot_pid" 10; return 1; }
                [[ -n "$held" && -n "$full" ]] || { echo "$prog: no hold timing in vssd's log" >&2; stop_pid "$hot_pid" 10; return 1; }
                say "hold: round $r: held $((held / 1000)) ms, full copy $((full / 1000)) ms"
                if ((r > 0)); then
                        hs+=("$held")
                        fs+=("$full")
                fi
                local t0 t1
                sync
                t0=$(now_us)
                fsfreeze -f "$H" && fsfreeze -u "$H" || { stop_pid "$hot_pid" 10; return 1; }
                t1=$(now_us)
                ((r > 0)) && raw+=("$((t1 - t0))")
        done
        stop_pid "$hot_pid" 10
        row_held=$(median_ms "${hs[@]}")
        row_full=$(median_ms "${fs[@]}")
        row_raw=$(median_ms "${raw[@]}")
}
echo
echo "flush-and-hold (file provider): 1 GiB tree (1024 x 1 MiB) on ext4, 1 MiB rewritten throughout; storage on XFS"
hfmt='%-34s  %14s  %14s  %12s  %20s\n'
printf "$hfmt" "case" "held (ms)" "full copy (ms)" "ratio" "FIFREEZE+FITHAW (ms)"
if hold_bench; then
        ratio=$(awk -v a="$row_held" -v b="$row_full" 'BEGIN { if (b > 0) printf "%.1f %%", 100 * a / b; else print "-" }')
        printf "$hfmt" "file, held, 1 MiB of 1 GiB changed" "$row_held" "$row_full" "$ratio" "$row_raw"
        [[ -n "${BENCH_SUMMARY:-}" ]] &&
                { echo "hold.held=$row_held"; echo "hold.full=$row_full"; echo "hold.raw=$row_raw"; } >>"$BENCH_SUMMARY"
        awk -v a="$row_held" -v b="$row_full" 'BEGIN { exit !(b > 0 && a / b <= 0.05) }' ||
                { echo "$prog: the hold took more than 5 % of a full copy's time" >&2; status=1; }
else
        printf "$hfmt" "file, held, 1 MiB of 1 GiB changed" "failed" "failed" "-" "-"
        echo "$prog: the flush-and-hold case failed" >&2
        status=1
fi
for m in "$work/hold" "$work/hstore"; do
        mountpoint -q "$m" 2>/dev/null && fsfreeze -u "$m" 2>/dev/null
done
say "done; cleaning up"
exit $status
