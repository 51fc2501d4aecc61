#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# summary.sh FILE: issue 14's table from the key=value lines the benchmark scripts appended to
# FILE (their BENCH_SUMMARY): each case as measured, the reference measured in the same run where
# there is one (a peer or the raw operation) and the ratio, the target, and whether it is met.
# Cases a script did not measure (it failed, or was not run) show "-". Exit status 0.

set -u -o pipefail

file=${1:?usage: summary.sh FILE}
declare -A v
while IFS='=' read -r k val; do
        [[ -n "$k" ]] && v[$k]=$val
done <"$file"

get() { echo "${v[$1]:--}"; }
# A time in ms with one decimal (the scripts print up to three).
get1() { local x; x=$(get "$1"); [[ "$x" == - ]] && echo - || printf '%.1f' "$x"; }
# ok EXPR: "yes"/"no" from an awk condition on numbers, "-" when something is missing.
ok() {
        local expr=$1 a
        shift
        for a in "$@"; do [[ "$a" == - ]] && { echo -; return; }; done
        awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" -v d="${4:-0}" "BEGIN { print ($expr) ? \"yes\" : \"no\" }"
}
ratio() {
        [[ "$1" == - || "$2" == - ]] && { echo -; return; }
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'
}
# unit VALUE... UNIT: the values joined by " / " with the unit, or "-" when all are missing.
unit() {
        local u=${*: -1} out="" x any=0
        for x in "${@:1:$#-1}"; do
                [[ "$x" != - ]] && any=1
                out+="${out:+ / }$x"
        done
        ((any)) && echo "$out $u" || echo -
}
mib() { [[ "$1" == - ]] && echo - || awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

fmt='%-64s | %23s | %21s | %7s | %22s | %4s\n'
echo
echo "issue 14's table (this run; reference = the peer or raw operation, measured in the same run)"
printf "$fmt" "case" "OpenVSS" "reference" "ratio" "target" "met"
printf "$fmt" "" "" "" "" "" "" | tr ' |' '-+'

for n in 1 10 100; do
        f=$(get1 "seq.$n.freeze")
        case $n in 1) tgt=2 ;; 10) tgt=3 ;; 100) tgt=10 ;; esac
        label="$n in-process writers: freeze window"
        ((n == 1)) && label="1 in-process writer, file provider, empty dir: freeze window"
        printf "$fmt" "$label" "$(unit "$f" ms)" "-" "-" "<= $tgt ms" "$(ok "a <= $tgt" "$f")"
done
f=$(get1 seq.1000.freeze) s=$(get1 seq.1000.sequence)
printf "$fmt" "1000 in-process writers: freeze window / whole sequence" "$(unit "$f" "$s" ms)" "-" "-" "<= 50 / <= 400 ms" \
        "$(ok 'a <= 50 && b <= 400' "$f" "$s")"
for seg in 1-10 10-100 100-1000; do
        printf "$fmt" "  scaling $seg writers: freeze / sequence, per writer" \
                "$(unit "$(get "slope.$seg.freeze")" "$(get "slope.$seg.sequence")" ms)" "-" "-" "linear (flat slopes)" "-"
done
for n in 1 10 100; do
        f=$(get1 "held.$n.freeze") raw=$(get1 "held.$n.raw")
        printf "$fmt" "  $n writer(s), empty dir on an ext4 loop fs held for the cut" "$(unit "$f" ms)" \
                "$(unit "$raw" "ms raw")" "$(ratio "$f" "$raw")" "(floor: raw freeze)" "-"
done
w=$(get exec.window) h=$(get exec.hook)
printf "$fmt" "10 vss-writer-exec, 1 trivial hook each, 1 level: freeze window" "$(unit "$w" ms)" "$(unit "$h" "ms 1 hook")" \
        "$(ratio "$w" "$h")" "<= 3x one hook" "$(ok 'a <= 3 * b' "$w" "$h")"
a=$(get qga.openvss) b=$(get qga.qemu-ga)
printf "$fmt" "--compat qemu-ga, 10 hooks: freeze window vs qemu-ga itself" "$(unit "$a" ms)" "$(unit "$b" "ms qemu-ga")" "$(ratio "$a" "$b")" \
        "<= 0.2x qemu-ga" "$(ok 'a <= 0.2 * b' "$a" "$b")"
a=$(get provider.btrfs.openvss) b=$(get provider.btrfs.hand)
printf "$fmt" "vssadmin create shadow on btrfs vs btrfs subvolume snapshot -r" "$(unit "$a" ms)" "$(unit "$b" "ms raw")" "$(ratio "$a" "$b")" \
        "<= 1.2x raw + 5 ms" "$(ok 'a <= 1.2 * b + 5' "$a" "$b")"
a=$(get provider.xfs.openvss) b=$(get provider.xfs.hand)
printf "$fmt" "file provider on XFS (reflink) vs cp -a --reflink=always" "$(unit "$a" ms)" "$(unit "$b" "ms cp")" "$(ratio "$a" "$b")" \
        "<= 1.2x cp + 5 ms" "$(ok 'a <= 1.2 * b + 5' "$a" "$b")"
for k in xfs ext4; do
        a=$(get "provider.${k}_held.openvss") b=$(get "provider.${k}_held.hand") raw=$(get "provider.${k}_held.raw")
        printf "$fmt" "  file provider on $k, source held (raw freeze $raw ms), vs cp" "$(unit "$a" ms)" \
                "$(unit "$b" "ms cp")" "$(ratio "$a" "$b")" "(not a target)" "-"
done
i=$(get seq.1.rss_idle_kib) r=$(get seq.1000.rss_kib)
printf "$fmt" "vssd RSS idle / with 1000 writers subscribed (VmRSS)" "$(mib "$i") / $(mib "$r")" "-" "-" \
        "<= 4 / <= 64 MiB" "$(ok 'a <= 4096' "$i")/$(ok 'a <= 65536' "$r")"
a=$(get hold.held) b=$(get hold.full) raw=$(get hold.raw)
printf "$fmt" "file copy-ahead + hold, 1 GiB ext4, 1 MiB changed: held" "$(unit "$a" ms)" "$(unit "$b" "ms full")" "$(ratio "$a" "$b")" \
        "<= 0.05x full copy" "$(ok 'a <= 0.05 * b' "$a" "$b")"
printf "$fmt" "  (raw FIFREEZE+FITHAW of that filesystem)" "-" "$(unit "$raw" ms)" "-" "-" "-"

# Issue 16: what a cluster set adds to the freeze window, against a local set in the same run.
echo
echo "issue 16's scale row (cluster freeze window: first Freeze to last Thaw across hosts)"
printf "$fmt" "case" "cluster" "local set (same run)" "added" "target" "met"
printf "$fmt" "" "" "" "" "" "" | tr ' |' '-+'
for n in 1 3 10 30; do
        c=$(get "cluster.$n.window") l=$(get "cluster.$n.single") d=$(get "cluster.$n.added")
        [[ "$c" == - ]] && continue
        tgt="-" met="-"
        ((n == 10)) && tgt="<= +30 ms" met=$(ok 'a <= 30' "$d")
        printf "$fmt" "$n host(s), vssd + vss-agent + 1 writer each, one etcd" "$(unit "$c" ms)" "$(unit "$l" ms)" \
                "$(unit "$d" ms)" "$tgt" "$met"
done
exit 0
