#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-bench.sh [BUILDDIR]: the freeze window and whole-sequence time for 1, 10, 100 and 1000
# in-process writers, file provider on an empty directory. Builds nothing: run `ninja -C BUILDDIR`
# first. BUILDDIR defaults to ./build. ROUNDS (environment, default 5) sets the rounds per N; each
# number is the median over the rounds. VERBOSE=1 also shows every round on stderr.
#
#   freeze window   first Freeze callback entered -> last Thaw callback returned (in the writers'
#                   process, CLOCK_MONOTONIC; ~ first Freeze sent -> last Thaw answered)
#   whole sequence  vss_backup_new() -> vss_backup_release() returned (in the requester thread)
#   freeze/sequence the share of the sequence spent frozen; comparable across machines of
#                   different speed
#
# Exit status: 0 when every run succeeded, 1 otherwise (the failing run's messages go to stderr).

set -u -o pipefail

build="${1:-./build}"
rounds="${ROUNDS:-5}"
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

fmt='%7s  %18s  %19s  %15s\n'
printf "$fmt" "writers" "freeze window (ms)" "whole sequence (ms)" "freeze/sequence"

err=$(mktemp /tmp/openvss-run-bench.XXXXXX) || exit 1
trap 'rm -f "$err"' EXIT

status=0
for n in 1 10 100 1000; do
        if ! line=$("$bench" --vssd "$vssd" --writers "$n" --rounds "$rounds" 2>"$err"); then
                cat "$err" >&2
                echo "run-bench.sh: bench-sequence failed for $n writers" >&2
                status=1
                continue
        fi
        # Per-round lines only with VERBOSE=1; warnings always.
        if [[ "${VERBOSE:-0}" == 1 ]]; then
                cat "$err" >&2
        else
                grep -v -e ' round [0-9]*: ' -e ' subscribed in ' "$err" >&2 || true
        fi
        read -r got freeze seq <<<"$line"
        if [[ "$got" != "$n" || -z "${seq:-}" ]]; then
                echo "run-bench.sh: unexpected output for $n writers: '$line'" >&2
                status=1
                continue
        fi
        ratio=$(awk -v f="$freeze" -v s="$seq" 'BEGIN { if (s > 0) printf "%.3f", f / s; else print "-" }')
        printf "$fmt" "$n" "$(printf '%.3f' "$freeze")" "$(printf '%.3f' "$seq")" "$ratio"
done
exit "$status"
