#!/bin/bash
# The fault-injection matrix (issue 6, item 3): runs every case of tests/faults/test-faults
# (each against its own vssd and writers) and prints one table: case | expected | observed |
# result. Cases listed in test-faults.c's KNOWN_BUGS print "KNOWN BUG" instead of failing.
# Exit status: 0 when every case is ok (or a known bug), 1 otherwise.
#
#   scripts/fault-matrix.sh [BUILDDIR]        JOBS=N runs N cases at once (default: nproc)
#   CASES="veto-freeze hang-thaw" scripts/fault-matrix.sh build   runs only those
set -uo pipefail
build=${1:-build}
exe="$build/tests/faults/test-faults"
jobs=${JOBS:-$(nproc)}

if [ ! -x "$exe" ]; then
        echo "fault-matrix: $exe not found; build it first (ninja -C $build tests/faults/test-faults)" >&2
        exit 2
fi
# The cases need the daemon and tools the tests run.
if [ -f "$build/build.ninja" ] &&
   ! ninja -C "$build" daemon/vssd tools/vssadmin tools/vssbackup writers/vss-writer-exec tests/faults/test-faults >/dev/null; then
        echo "fault-matrix: warning: ninja failed, running the binaries already built" >&2
fi

out=$(mktemp -d /tmp/fault-matrix.XXXXXX)
trap 'rm -rf "$out"' EXIT
cases=${CASES:-$("$exe" --list | awk '{print $1}')}
start=$(date +%s)

# One process per case, at most $jobs at a time; each writes its stdout and stderr apart.
printf '%s\n' $cases | xargs -P "$jobs" -I{} sh -c '"$1" "$2" >"$3/$2.out" 2>"$3/$2.err"; echo $? >"$3/$2.rc"' sh "$exe" {} "$out"

failed=0 known=0 ok=0
rows=()
for c in $cases; do
        line=$(grep -m1 "^MATRIX $c " "$out/$c.out" 2>/dev/null)
        rc=$(cat "$out/$c.rc" 2>/dev/null || echo "?")
        if [ -z "$line" ]; then
                expected="?" observed="(no result, exit $rc)" result="FAIL"
        else
                read -r _ _ e o r <<<"$line"
                expected=${e#expected=} observed=${o#observed=} result=$r
        fi
        case $result in
        ok) [ "$rc" = 0 ] || result="FAIL"; ;;
        KNOWN-BUG) result="KNOWN BUG" ;;
        *) result="FAIL" ;;
        esac
        case $result in
        ok) ok=$((ok + 1)) ;;
        "KNOWN BUG") known=$((known + 1)) ;;
        *) failed=$((failed + 1)) ;;
        esac
        rows+=("$c|$expected|$observed|$result")
done

# The table: observed is printed as "same" when it equals expected, so differences stand out.
{
        echo "case|expected|observed|result"
        for r in "${rows[@]}"; do
                IFS='|' read -r c e o res <<<"$r"
                [ "$e" = "$o" ] && o="(same)"
                echo "$c|$e|$o|$res"
        done
} | column -t -s '|' -o ' | '

echo
echo "$ok ok, $known known bugs, $failed failed, $(( $(date +%s) - start )) s ($jobs at a time)"
if [ "$failed" -gt 0 ]; then
        for r in "${rows[@]}"; do
                IFS='|' read -r c _ _ res <<<"$r"
                if [ "$res" = FAIL ]; then
                        echo "---- $c (stderr, last 40 lines)"
                        tail -40 "$out/$c.err"
                fi
        done >&2
        exit 1
fi
exit 0
