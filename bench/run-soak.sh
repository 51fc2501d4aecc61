#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-soak.sh [BUILDDIR] [CYCLES]: CYCLES (default 1000) back-to-back backup sequences against a
# private vssd with 20 in-process writers, the file provider on a small directory, and the
# requester SIGKILLed at a random step every 50 cycles (bench/soak.c says exactly what is checked).
# Prints vssd's RSS, open descriptors and remaining shadows every 100 cycles:
#
#     cycle   rss_kib    fds  shadows_left   seconds
#
# then the verdict: memory at most +10% over the sample after the first 100 cycles (the warm-up),
# the same descriptors, no shadow left. Builds nothing: run `ninja -C BUILDDIR` first (BUILDDIR
# defaults to ./build). Environment: WRITERS (default 20), KILL_EVERY (default 50), SEED (default:
# from the clock; printed, so a failing run can be repeated).
#
# Exit status: 0 when every cycle passed and the verdict holds, 1 otherwise (vssd's log on stderr).

set -u -o pipefail

build="${1:-./build}"
cycles="${2:-1000}"
soak="$build/bench/soak"
vssd="$build/daemon/vssd"

for f in "$soak" "$vssd"; do
        if [[ ! -x "$f" ]]; then
                echo "run-soak.sh: $f not found or not executable; build first (ninja -C $build)" >&2
                exit 1
        fi
done
if ! [[ "$cycles" =~ ^[0-9]+$ ]] || [[ "$cycles" -eq 0 ]]; then
        echo "usage: $0 [BUILDDIR] [CYCLES]" >&2
        exit 2
fi

args=(--vssd "$vssd" --cycles "$cycles" --writers "${WRITERS:-20}" --kill-every "${KILL_EVERY:-50}")
[[ -z "${SEED:-}" ]] || args+=(--seed "$SEED")
exec "$soak" "${args[@]}"
