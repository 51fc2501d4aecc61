#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-cluster-bench.sh [BUILDDIR]: issue 16's scale row. bench-cluster with 1, 3, 10 and 30 hosts
# on this machine (vssd + vss-agent + one in-process stamp writer each, one etcd): the cluster
# freeze window (first Freeze to last Thaw across hosts) against a local set's measured in the same
# run, their difference and its growth per host. HOSTS overrides the host counts, ROUNDS the sets
# per count (default 5). Appends cluster.N.* to $BENCH_SUMMARY when set.

set -u -o pipefail
build="${1:-./build}"
bin="$build/bench/bench-cluster"
[[ -x "$bin" ]] || { echo "run-cluster-bench.sh: $bin not built" >&2; exit 1; }
command -v etcd >/dev/null || { echo "run-cluster-bench.sh: etcd not installed (apt-get install etcd-server)" >&2; exit 1; }
out=$(mktemp /tmp/openvss-cluster-bench.XXXXXX) || exit 1
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
CLUSTER_LIGHT_WRITERS=1 "$bin" -s "${ROUNDS:-5}" ${HOSTS:-1 3 10 30} | tee "$out"
status=${PIPESTATUS[0]}
if [[ -n "${BENCH_SUMMARY:-}" ]]; then
        awk '$1 ~ /^[0-9]+$/ { printf "cluster.%s.window=%s\ncluster.%s.single=%s\ncluster.%s.added=%s\n", $1, $2, $1, $3, $1, $4 }' \
                "$out" >>"$BENCH_SUMMARY"
fi
exit "$status"
