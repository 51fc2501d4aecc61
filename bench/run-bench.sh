#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-bench.sh [BUILDDIR]: the freeze window and whole-sequence time for 1, 10, 100 and 1000
# in-process writers, file provider on an empty directory. Builds nothing: run `ninja -C BUILDDIR`
# first. BUILDDIR defaults to ./build. ROUNDS (environment, default 5) sets the rounds per N; each
# number is the median over the rounds (ROUNDS_LARGE, default min(ROUNDS, 3), sets them for
# 1000 writers). VERBOSE=1 also shows every round on stderr.
#
#   freeze window   first Freeze callback entered -> last Thaw callback returned (in the writers'
#                   process, CLOCK_MONOTONIC; ~ first Freeze sent -> last Thaw answered)
#   whole sequence  vss_backup_new() -> vss_backup_release() returned (in the requester thread)
#   freeze/sequence the share of the sequence spent frozen; comparable across machines of
#                   different speed
#   vssd RSS        (columns added for issue 14) vssd's VmRSS from /proc right after it started
#                   (idle, no writer) and after the last round with the N writers still subscribed
#
# Below the table (issue 14): the per-writer slope of both times between 1 and 10, 10 and 100,
# 100 and 1000 writers and overall (linear cost: the slopes stay flat as N grows); then, as root,
# the same sequence with 1, 10 and 100 writers shadowing an empty directory on an ext4 loop
# filesystem this script makes, which vssd holds frozen for the cut (hold_filesystems lists only
# it), with a raw FIFREEZE+FITHAW of that filesystem timed after each round beside it.
# BENCH_SUMMARY=FILE (environment) appends the figures as key=value lines for bench/summary.sh.
#
# Exit status: 0 when every run succeeded, 1 otherwise (the failing run's messages go to stderr).

set -u -o pipefail

build="${1:-./build}"
rounds="${ROUNDS:-5}"
# 1000 writers: at most 3 rounds unless ROUNDS_LARGE says otherwise (keeps `make bench` short).
rounds_large="${ROUNDS_LARGE:-$((rounds < 3 ? rounds : 3))}"
bench="$build/bench/bench-sequence"
vssd="$build/daemon/vssd"

for f in "$bench" "$vssd"; do
        if [[ ! -x "$f" ]]; then
                echo "run-bench.sh: $f not found or not executable; build first (ninja -C $build)" >&2
                exit 1
        fi
done

# bench-sequence raises the soft RLIMIT_NOFILE itself; 1000 writers need ~1000 descriptors here
# and as many in vssd, which inherits the raised limit.
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited && "$hard" -lt 2100 ]]; then
        echo "run-bench.sh: warning: the hard open-file limit is $hard; 1000 writers may not fit" >&2
fi

fmt='%7s  %18s  %19s  %15s  %19s  %14s\n'
printf "$fmt" "writers" "freeze window (ms)" "whole sequence (ms)" "freeze/sequence" "vssd RSS idle (KiB)" "vssd RSS (KiB)"

err=$(mktemp /tmp/openvss-run-bench.XXXXXX) || exit 1
loopdir=""
loopdev=""
cleanup() {
        rm -f "$err"
        [[ -n "$loopdir" ]] || return 0
        mountpoint -q "$loopdir/mnt" 2>/dev/null && { fsfreeze -u "$loopdir/mnt" 2>/dev/null; umount "$loopdir/mnt" || umount -l "$loopdir/mnt"; }
        [[ -n "$loopdev" ]] && losetup -d "$loopdev"
        rm -rf "$loopdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

summary() {
        [[ -n "${BENCH_SUMMARY:-}" ]] && echo "$1=$2" >>"$BENCH_SUMMARY"
        return 0
}

# run_seq N [ARGS...]: runs bench-sequence; sets freeze seq rss_idle rss raw, or returns 1.
run_seq() {
        local n=$1 line got r=$rounds
        shift
        ((n >= 1000)) && r=$rounds_large
        if ! line=$("$bench" --vssd "$vssd" --writers "$n" --rounds "$r" "$@" 2>"$err"); then
                cat "$err" >&2
                echo "run-bench.sh: bench-sequence failed for $n writers" >&2
                return 1
        fi
        # Per-round lines only with VERBOSE=1; warnings always.
        if [[ "${VERBOSE:-0}" == 1 ]]; then
                cat "$err" >&2
        else
                grep -v -e ' round [0-9]*: ' -e ' subscribed in ' "$err" >&2 || true
        fi
        read -r got freeze seq rss_idle rss raw <<<"$line"
        if [[ "$got" != "$n" || -z "${raw:-}" ]]; then
                echo "run-bench.sh: unexpected output for $n writers: '$line'" >&2
                return 1
        fi
}

status=0
declare -A F S
for n in 1 10 100 1000; do
        if ! run_seq "$n"; then
                status=1
                continue
        fi
        ratio=$(awk -v f="$freeze" -v s="$seq" 'BEGIN { if (s > 0) printf "%.3f", f / s; else print "-" }')
        printf "$fmt" "$n" "$(printf '%.3f' "$freeze")" "$(printf '%.3f' "$seq")" "$ratio" "$rss_idle" "$rss"
        F[$n]=$freeze S[$n]=$seq
        summary "seq.$n.freeze" "$freeze"
        summary "seq.$n.sequence" "$seq"
        summary "seq.$n.rss_idle_kib" "$rss_idle"
        summary "seq.$n.rss_kib" "$rss"
done

# Scaling: the cost per added writer between successive N, and overall.
echo
sfmt='%-16s  %26s  %27s\n'
printf "$sfmt" "scaling" "freeze window (ms/writer)" "whole sequence (ms/writer)"
slope() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.4f", (b - a) / n }'; }
for seg in "1 10" "10 100" "100 1000" "1 1000"; do
        read -r a b <<<"$seg"
        [[ -n "${F[$a]:-}" && -n "${F[$b]:-}" ]] || continue
        fs=$(slope "${F[$a]}" "${F[$b]}" $((b - a))) ss=$(slope "${S[$a]}" "${S[$b]}" $((b - a)))
        printf "$sfmt" "$a -> $b writers" "$fs" "$ss"
        summary "slope.$a-$b.freeze" "$fs"
        summary "slope.$a-$b.sequence" "$ss"
done

# Held: the same with the data directory on a loop filesystem vssd holds frozen for the cut.
echo
if [[ $EUID -ne 0 ]] || ! command -v mkfs.ext4 >/dev/null || ! command -v losetup >/dev/null; then
        echo "held rows skipped: they need root, mkfs.ext4 and losetup (a loop filesystem to freeze)"
        exit "$status"
fi
hfmt='%7s  %18s  %19s  %15s  %20s\n'
echo "held: an empty directory on an ext4 loop filesystem that vssd holds frozen for the cut (file provider)"
printf "$hfmt" "writers" "freeze window (ms)" "whole sequence (ms)" "freeze/sequence" "FIFREEZE+FITHAW (ms)"
loopdir=$(mktemp -d /tmp/openvss-run-bench-hold.XXXXXX) || exit 1
if ! { truncate -s 64M "$loopdir/fs.img" && loopdev=$(losetup --find --show "$loopdir/fs.img") &&
       mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$loopdev" && mkdir "$loopdir/mnt" &&
       mount "$loopdev" "$loopdir/mnt" && mkdir "$loopdir/mnt/empty"; } >"$err" 2>&1; then
        cat "$err" >&2
        echo "run-bench.sh: cannot make the loop filesystem for the held rows" >&2
        exit 1
fi
for n in 1 10 100; do
        if ! run_seq "$n" --data-dir "$loopdir/mnt/empty" --hold; then
                status=1
                continue
        fi
        ratio=$(awk -v f="$freeze" -v s="$seq" 'BEGIN { if (s > 0) printf "%.3f", f / s; else print "-" }')
        printf "$hfmt" "$n" "$(printf '%.3f' "$freeze")" "$(printf '%.3f' "$seq")" "$ratio" "$(printf '%.3f' "$raw")"
        summary "held.$n.freeze" "$freeze"
        summary "held.$n.sequence" "$seq"
        summary "held.$n.raw" "$raw"
done
exit "$status"

