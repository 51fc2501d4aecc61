#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-all.sh [BUILDDIR]: `make bench`. Runs every benchmark (run-bench.sh, run-exec-bench.sh,
# compat/run-compat-bench.sh, run-provider-bench.sh, run-cluster-bench.sh; each keeps its own
# output), then prints issue 14's and issue 16's tables from their figures with the targets beside them (summary.sh). ROUNDS
# (environment) is passed on. Exit status 1 when any of them failed, after running the others.

set -u -o pipefail

build="${1:-./build}"
here=$(dirname "$0")
sum=$(mktemp /tmp/openvss-bench-summary.XXXXXX) || exit 1
trap 'rm -f "$sum"' EXIT
export BENCH_SUMMARY="$sum"

status=0
for s in run-bench.sh run-exec-bench.sh compat/run-compat-bench.sh run-provider-bench.sh run-cluster-bench.sh; do
        echo
        echo "== bench/$s"
        bash "$here/$s" "$build" || { echo "run-all.sh: bench/$s failed" >&2; status=1; }
done
bash "$here/summary.sh" "$sum"
exit "$status"
