#!/bin/bash
# `make check` three times in a row while stress-ng loads both cores and the disk beside it: the
# suite asserts what the contract guarantees, so it must pass on a busy machine too.
set -uo pipefail
build=${1:-build}
asan=${2:-build-asan}
runs=${OPENVSS_LOAD_RUNS:-3}
command -v stress-ng >/dev/null || {
        [ "$(id -u)" -eq 0 ] || { echo "stress-ng is missing: apt-get install stress-ng" >&2; exit 1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >&2
}
# Built first, unloaded: the load is for the tests.
make -C "$(dirname "$0")/.." build BUILD="$build" >&2 || exit 1
stress-ng --cpu 2 --io 1 --timeout 0 --quiet &
load=$!
trap 'kill $load 2>/dev/null; wait $load 2>/dev/null' EXIT
ok=0
for i in $(seq 1 "$runs"); do
        echo "== run $i of $runs, under load" >&2
        start=$(date +%s)
        if bash "$(dirname "$0")/check.sh" "$build" "$asan"; then
                ok=$((ok + 1))
                echo "== run $i passed in $(( $(date +%s) - start )) s" >&2
        else
                echo "== run $i FAILED after $(( $(date +%s) - start )) s" >&2
        fi
done
echo "$ok of $runs runs under load passed"
[ "$ok" -eq "$runs" ]
