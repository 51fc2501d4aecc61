#!/bin/bash
# `make check`: the whole suite on the normal build, again on an ASan+UBSan build, then the unit
# tests and the integration tests that do not depend on tight deadlines (the fault matrix's vetoes,
# and its crashes around the freeze: the other crashes run on the normal and ASan builds) with
# vssd and the writers under valgrind (leaks and memory errors fail them).
# Heavy scenarios (suite 'heavy': real servers under load, many backups) run once, on the normal
# build, at a reduced count; OPENVSS_CHECK_FULL=1 (`make check-full`) runs them at full count.
# Ends with one line: N passed, N failed, N skipped.
set -uo pipefail
build=${1:-build}
asan=${2:-build-asan}
jobs=$(nproc)
passed=0 failed=0 skipped=0 status=0

tally() {
        local counts
        # The log of the run just made: meson names a wrapped run's log after its wrapper
        # (testlog-valgrind.json).
        local log
        log=$(ls -t "$1"/meson-logs/testlog*.json | head -n 1)
        counts=$(python3 - "$log" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
)
        read -r p f s <<<"$counts"
        passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

suite() {
        local dir=$1; shift
        echo "== $*" >&2
        meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "$@" || status=1
        tally "$dir"
}

suite "$build"

if [ -z "${OPENVSS_SKIP_ASAN:-}" ]; then
        [ -f "$asan/build.ninja" ] || meson setup "$asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
        ninja -C "$asan" >/dev/null || { echo "ASan build failed" >&2; exit 1; }
        # Not under ASan, only in the normal build: the PostgreSQL pgbench round trips and the
        # memory flood, whose time is the server's or the flood's, not more of our code's paths
        # (the brief: servers under load run once); restic and borg under `exec --at-original`,
        # whose time is theirs (vssbackup-exec-nothing-stays runs that path under ASan); the
        # btrfs fidelity case, whose copy paths (reflink) fidelity-xfs runs.
        asan_skip='integration/(postgres-pgbench-roundtrip(-btrfs)?|trust-flood-memory|vssbackup-exec-(restic|borg)|fidelity-btrfs)$'
        mapfile -t asan_tests < <(meson test -C "$asan" --list --no-suite heavy 2>/dev/null |
                sed -n 's|^openvss:[^ ]* / ||p' | grep -vE "$asan_skip")
        suite "$asan" "${asan_tests[@]}"
fi

# Not under valgrind: integration/expose, whose mounts use the new mount API (open_tree,
# move_mount, mount_setattr) that Debian 12's valgrind 3.19 cannot run.
if [ -z "${OPENVSS_SKIP_VALGRIND:-}" ]; then
        vg="valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --track-fds=no"
        suite "$build" --suite unit --wrapper "$vg"
        HARNESS_WRAPPER="$vg" suite "$build" \
                integration/full-sequence integration/identify-failure integration/veto-freeze integration/veto-thaw \
                integration/veto-post-snapshot integration/writer-killed-mid-freeze \
                integration/requester-killed-mid-freeze integration/concurrent-sets integration/bad-state \
                integration/bad-input integration/session-isolation integration/restore-status-direct \
                integration/component-mode integration/provider-failure integration/persistent-survives-restart \
                integration/create-shadow-json integration/create-shadow-veto integration/delete-shadows \
                integration/list-writers-as-of integration/btrfs-snapshot integration/exec-flush-and-hold \
                integration/shadow-limits integration/vssbackup-roundtrip-archive \
                integration/vssbackup-prerestore-veto integration/vssbackup-incremental \
                integration/vssbackup-roundtrip-dir integration/vssbackup-bad-backups integration/document-backup \
                integration/document-restore integration/exec-delete-fails-keeps-record integration/compat-vmware \
                integration/compat-qemu-ga integration/auth-requester-in-group integration/auth-writer-any-user \
                integration/auth-session-isolation-users integration/auth-rights integration/auth-fake-vssd \
                faults/requester-killed-mid-freeze integration/pause-continue integration/pause-abort-before-commit \
                integration/pause-requester-killed-before-commit integration/pause-writer-lost \
                faults/veto-prepare-snapshot faults/veto-freeze faults/veto-thaw faults/veto-post-snapshot \
                faults/crash-freeze faults/crash-thaw faults/crash-abort
        # The etcd client runs in the test program itself (etcd, a Go program, is not traced); its
        # other tests run under ASan+UBSan above.
        suite "$build" --wrapper "$vg" integration/etcd-kv integration/etcd-txn integration/etcd-watch-restart \
                integration/etcd-malformed
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
