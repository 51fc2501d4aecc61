#!/bin/bash
# Fuzzes the parsers of untrusted input with libFuzzer: scripts/fuzz.sh [SECONDS_PER_TARGET]
# (default 60).
#
# Builds each target of fuzz/ with clang -fsanitize=fuzzer,address,undefined straight from the
# sources (lib/common.c metadata.c jsonv.c components.c for the document parsers; vssd's daemon/ and
# providers/ sources too for config and exec-output), then runs it for SECONDS on a scratch copy of
# its corpus, fuzz/corpus/<target>/, with fuzz/<target>.dict as dictionary if there is one, else
# fuzz/openvss.dict. The wire target drives a real vssd: $FUZZ_VSSD (default build/daemon/vssd,
# built beforehand; build-asan's catches more); its coverage does not guide libFuzzer. The tree is not changed, except
# that a crash (also a leak, a timeout or running out of memory) is saved with its report in
# fuzz/crashers/<target>/; see fuzz/README.md for what to do with it. New interesting inputs are
# only counted; set FUZZ_NEW_INPUTS=DIR to have them copied to DIR for review.
# Ends with a table (target, runs, corpus size, result); exits 1 if any target crashed.
#
# Environment: FUZZ_CC (default clang), FUZZ_TARGETS (default: all), FUZZ_NEW_INPUTS, FUZZ_VSSD.
set -euo pipefail
shopt -s nullglob

usage() {
        echo "usage: $0 [SECONDS_PER_TARGET]" >&2
        exit 2
}
[ $# -le 1 ] || usage
secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
        usage
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cc=${FUZZ_CC:-clang}
read -r -a targets <<<"${FUZZ_TARGETS:-writer-metadata backup-document component-records config exec-output wire}"
lib_sources=(common.c metadata.c jsonv.c components.c) # libvss_common in lib/meson.build
# vssd_lib and providers_lib (daemon/meson.build, providers/meson.build), for config and exec-output.
vssd_sources=(daemon/manager.c daemon/session.c daemon/bus.c daemon/config.c daemon/registry.c daemon/sequence.c
              daemon/freeze.c daemon/expose.c providers/providers.c providers/file/file.c providers/file/copy.c
              providers/btrfs/btrfs.c providers/exec/exec.c)
vssd=${FUZZ_VSSD:-$root/build/daemon/vssd}

command -v "$cc" >/dev/null || { echo "fuzz.sh: $cc not found (clang with libFuzzer is needed)" >&2; exit 1; }
deps_cflags=$(pkg-config --cflags json-c libsystemd)
deps_libs=$(pkg-config --libs json-c libsystemd)
vssd_libs=$(pkg-config --libs sqlite3 libbtrfsutil)

work=$(mktemp -d "${TMPDIR:-/tmp}/openvss-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# As meson builds them (C17, _GNU_SOURCE), plus the sanitizers; UB aborts instead of going on.
# shellcheck disable=SC2206 # pkg-config output is meant to split
cflags=(-std=c17 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=all
        -Wall -Wextra -Wno-unused-parameter -I"$root/include" -I"$root" $deps_cflags)
# shellcheck disable=SC2206
libs=($deps_libs)
# shellcheck disable=SC2206
more_libs=($vssd_libs)

echo "== building with $("$cc" --version | head -n 1)"
objs=()
for src in "${lib_sources[@]}"; do
        obj="$work/${src%.c}.o"
        "$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$root/lib/$src" -o "$obj"
        objs+=("$obj")
done
vssd_objs=()
for t in "${targets[@]}"; do
        [ -f "$root/fuzz/fuzz-$t.c" ] || { echo "fuzz.sh: no target fuzz/fuzz-$t.c" >&2; exit 1; }
        extra=()
        case $t in
        config | exec-output)
                if [ ${#vssd_objs[@]} -eq 0 ]; then
                        for src in "${vssd_sources[@]}"; do
                                obj="$work/${src//\//_}.o"
                                "$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link,address,undefined -c "$root/$src" -o "$obj"
                                vssd_objs+=("$obj")
                        done
                fi
                extra=("${vssd_objs[@]}" "${more_libs[@]}")
                ;;
        wire)
                [ -x "$vssd" ] || { echo "fuzz.sh: $vssd not found: build it, or set FUZZ_VSSD" >&2; exit 1; }
                extra=(-DVSSD_PATH="\"$vssd\"" "$root/tests/vssd-process.c")
                ;;
        esac
        "$cc" "${cflags[@]}" -fsanitize=fuzzer,address,undefined "$root/fuzz/fuzz-$t.c" "${extra[@]}" "${objs[@]}" \
                "${libs[@]}" -o "$work/fuzz-$t"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer >/dev/null; then
        ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
        export ASAN_SYMBOLIZER_PATH
fi

crashed=0
rows=()
for t in "${targets[@]}"; do
        seeds="$root/fuzz/corpus/$t"
        corpus="$work/corpus/$t"
        artifacts="$work/artifacts/$t"
        log="$work/$t.log"
        mkdir -p "$corpus" "$artifacts"
        seed_files=("$seeds"/*)
        [ ${#seed_files[@]} -eq 0 ] || cp -p "${seed_files[@]}" "$corpus"/
        n_seeds=$(find "$corpus" -type f | wc -l)
        dict=()
        if [ -f "$root/fuzz/$t.dict" ]; then
                dict=(-dict="$root/fuzz/$t.dict")
        elif [ -f "$root/fuzz/openvss.dict" ]; then
                dict=(-dict="$root/fuzz/openvss.dict")
        fi
        # The wire target waits on vssd (deadlines of 300 ms, calls of up to 3 s): a longer timeout.
        limits=(-max_len=65536 -timeout=10)
        [ "$t" != wire ] || limits=(-max_len=8192 -timeout=120)

        echo "== fuzz-$t: ${secs}s from $n_seeds seeds"
        status=0
        "$work/fuzz-$t" -max_total_time="$secs" "${limits[@]}" -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict[@]}" "$corpus" >"$log" 2>&1 || status=$?

        # Runs: the final stats, or after a crash the last status line (#N ...).
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n 1)
        runs=${runs:-?}
        n_corpus=$(find "$corpus" -type f | wc -l)
        new=0
        for f in "$corpus"/*; do
                [ -e "$seeds/$(basename "$f")" ] && continue
                new=$((new + 1))
                if [ -n "${FUZZ_NEW_INPUTS:-}" ]; then
                        mkdir -p "$FUZZ_NEW_INPUTS/$t"
                        cp "$f" "$FUZZ_NEW_INPUTS/$t/"
                fi
        done

        found=$(find "$artifacts" -type f | sort)
        if [ "$status" -eq 0 ] && [ -z "$found" ]; then
                result="ok"
        else
                crashed=1
                dest="$root/fuzz/crashers/$t"
                mkdir -p "$dest"
                kinds=()
                while IFS= read -r a; do
                        [ -n "$a" ] || continue
                        name=$(basename "$a")
                        cp "$a" "$dest/$name"
                        cp "$log" "$dest/$name.log"
                        kinds+=("${name%%-*}") # crash, leak, timeout, oom, slow-unit
                        echo "   saved fuzz/crashers/$t/$name (report: $name.log)"
                done <<<"$found"
                [ -n "$found" ] || cp "$log" "$dest/failed-$(date +%Y%m%d-%H%M%S).log"
                result="FAILED (exit $status)"
                [ ${#kinds[@]} -eq 0 ] || result="FAILED (exit $status: ${kinds[*]})"
                # The report: the sanitizer's or the invariant's message, then the first frames that
                # are not libFuzzer's or the sanitizers' own.
                grep -E -m 6 'ERROR|SUMMARY|invariant failed|runtime error' "$log" | sed 's/^/   /' || true
                grep -E '^ +#[0-9]+ ' "$log" | grep -v -E 'fuzzer::|__sanitizer|__interceptor|libc\.so|abort\.c|raise\.c|pthread_kill|libc.start|in main |in _start ' |
                        head -n 10 | sed 's/^/   /' || true
        fi
        echo "   $runs runs, corpus $n_seeds -> $n_corpus ($new new, not added to fuzz/corpus), $result"
        rows+=("$t|$runs|$n_seeds -> $n_corpus (+$new)|$result")
done

echo
printf '%-20s %12s %20s  %s\n' target runs "corpus (new)" result
for r in "${rows[@]}"; do
        IFS='|' read -r t runs size result <<<"$r"
        printf '%-20s %12s %20s  %s\n' "$t" "$runs" "$size" "$result"
done
if [ "$crashed" -ne 0 ]; then
        echo
        echo "Crashes saved in fuzz/crashers/; once understood, copy each into its corpus under a telling"
        echo "name so that meson test replays it (fuzz/README.md), e.g.:"
        echo "    cp fuzz/crashers/TARGET/crash-SHA1 fuzz/corpus/TARGET/crash-WHAT.json"
fi
exit "$crashed"
