#!/bin/sh
# Lints built man pages: mandoc at level error, and groff must say nothing (bad escapes, macros).
status=0
for page in "$@"; do
        mandoc -T lint -W error "$page" || status=1
        if command -v groff >/dev/null; then
                out=$(groff -man -ww -z "$page" 2>&1)
                if [ -n "$out" ]; then
                        printf '%s\n' "$out"
                        status=1
                fi
        fi
        # Each page names itself and has the sections a reader looks for.
        for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
                grep -q "^\.SH \"\?$section\"\?" "$page" || { echo "$page: no $section section"; status=1; }
        done
done
exit $status
