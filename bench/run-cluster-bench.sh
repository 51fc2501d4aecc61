#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-cluster-bench.sh [BUILDDIR]: issue 16's scale row. bench-cluster with 1, 3, 10 and 30 hosts
# on this machine (vssd + vss-agent + one in-process stamp writer each, one etcd): the cluster
# freeze window (first Freeze to last Thaw across hosts) against a local set's measured in the same
# run, their difference and its growth per host. HOSTS overrides the host counts, ROUNDS the sets
# per count (default 5). Appends cluster.N.* to $BENCH_SUMMARY when set. ON_MEMORY=1 puts etcd's
# data dir (and the hosts' directories) on /dev/shm, to show what etcd's fsync per write costs; the
# reported figure is the one on disk (ON_MEMORY unset), keys cluster.mem.N.* then. BENCH_VERBOSE=1
# prints each set's per-host Freeze/Thaw and the agents' and coordinator's steps (VSS_CLUSTER_TRACE).

set -u -o pipefail
build="${1:-./build}"
bin="$build/bench/bench-cluster"
[[ -x "$bin" ]] || { echo "run-cluster-bench.sh: $bin not built" >&2; exit 1; }
command -v etcd >/dev/null || { echo "run-cluster-bench.sh: etcd not installed (apt-get install etcd-server)" >&2; exit 1; }
out=$(mktemp /tmp/openvss-cluster-bench.XXXXXX) || exit 1
trap 'rm -f "$out"' EXIT
key=cluster
if [[ "${ON_MEMORY:-}" == 1 ]]; then
        export TMPDIR=/dev/shm
        key=cluster.mem
        echo "etcd on memory: data dirs under $TMPDIR (no fsync cost)"
fi
# shellcheck disable=SC2086
CLUSTER_LIGHT_WRITERS=1 "$bin" -s "${ROUNDS:-5}" ${HOSTS:-1 3 10 30} | tee "$out"
status=${PIPESTATUS[0]}
if [[ -n "${BENCH_SUMMARY:-}" ]]; then
        awk -v k="$key" '$1 ~ /^[0-9]+$/ { printf "%s.%s.window=%s\n%s.%s.single=%s\n%s.%s.added=%s\n", k, $1, $2, k, $1, $3, k, $1, $4 }' \
                "$out" >>"$BENCH_SUMMARY"
fi
exit "$status"
