#!/bin/bash
# The completion functions against a stub vssadmin (no vssd needed): subcommands, flags, ids from
# "vssadmin list shadows --json", writer and provider names.
set -u
script=$1
stub=$(mktemp -d)
trap 'rm -rf "$stub"' EXIT
cat >"$stub/vssadmin" <<'STUB'
#!/bin/sh
case "$*" in
*"list shadows"*) printf '{\n  "shadows":[\n    {\n      "shadow_id":"11111111-2222-4333-8444-555555555555",\n      "snapshot_set_id":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"\n    },\n    {\n      "shadow_id":"66666666-2222-4333-8444-555555555555",\n      "snapshot_set_id":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"\n    }\n  ]\n}\n' ;;
*"list providers"*) printf '{\n  "providers":[\n    {\n      "name":"btrfs"\n    },\n    {\n      "name":"file"\n    }\n  ]\n}\n' ;;
*"list writers"*) printf '{\n  "writers":[\n    {\n      "name":"sqlite"\n    }\n  ]\n}\n' ;;
esac
STUB
chmod +x "$stub/vssadmin"
failures=0

# complete FUNCTION WORDS...: the last word is the one being completed.
complete_words() {
        local fn=$1
        shift
        PATH="$stub:$PATH" bash -c 'source "$1"; fn=$2; shift 2; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); $fn; echo "${COMPREPLY[*]}"' \
                _ "$script" "$fn" "$@"
}

expect() {
        local want=$1 got
        shift
        got=$(complete_words "$@")
        if [[ $got != "$want" ]]; then
                echo "completing '${*:2}' with $1: got '$got', want '$want'" >&2
                failures=$((failures + 1))
        fi
}

expect "list" _vssadmin vssadmin li
expect "list create delete expose unexpose cluster" _vssadmin vssadmin ""
expect "list create delete" _vssadmin vssadmin cluster ""
expect "hosts writers shadows" _vssadmin vssadmin cluster list ""
expect "--for" _vssadmin vssadmin cluster --etcd http://e:2379 create shadow --fo
expect "shadows" _vssadmin vssadmin cluster delete s
expect "--set" _vssadmin vssadmin cluster delete shadows --se
expect "--lease-ttl" _vss_agent vss-agent --lease
expect "writers providers shadows" _vssadmin vssadmin list ""
expect "shadows" _vssadmin vssadmin delete s
expect "--json" _vssadmin vssadmin list writers --j
expect "--oldest" _vssadmin vssadmin delete shadows --o
expect "11111111-2222-4333-8444-555555555555 66666666-2222-4333-8444-555555555555" _vssadmin vssadmin delete shadows --shadow ""
expect "66666666-2222-4333-8444-555555555555" _vssadmin vssadmin expose --shadow 6
expect "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" _vssadmin vssadmin delete shadows --set ""
expect "btrfs file" _vssadmin vssadmin create shadow --provider ""
expect "backup restore exec" _vssbackup vssbackup ""
expect "--at-original" _vssbackup vssbackup exec --at
expect "--json --json-fd" _vssbackup vssbackup exec --json
expect "incremental" _vssbackup vssbackup backup --type inc
expect "sqlite:" _vssbackup vssbackup backup --component ""
expect "file" _vssbackup vssbackup backup --provider f
expect "--version" _vssbackup vssbackup --v
expect "qemu-ga" _vss_writer vss-writer-exec --compat q
expect "--hooks --hook-timeout --hold --hook-log" _vss_writer vss-writer-exec --ho
expect "backup-label" _vss_writer vss-writer-postgres --mode b
expect "--busy-timeout" _vss_writer vss-writer-sqlite --bu

if ((failures)); then
        echo "$failures completion check(s) failed" >&2
        exit 1
fi
echo "completion: all checks passed"
