# bash completion for OpenVSS: vssadmin, vssbackup, vss-agent and the writers.      -*- shell-script -*-
# SPDX-License-Identifier: LGPL-2.1-or-later
# Installed once per command name, so bash-completion loads it for whichever is typed first.
# Shadow and set ids, writer and provider names come from vssadmin --json (the vssd named by
# --socket on the line, else $VSS_SOCKET); nothing is offered when vssd cannot be reached.

# The value of --socket on the line, as arguments for vssadmin.
__openvss_socket_args() {
        local i
        for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
                if [[ ${COMP_WORDS[i]} == --socket ]]; then
                        printf -- '--socket\n%s\n' "${COMP_WORDS[i + 1]}"
                        return
                fi
        done
}

# Values of a JSON key in the output of vssadmin ARGS... --json, one a line.
__openvss_json_values() {
        local key=$1 IFS=$'\n'
        shift
        local -a sock=($(__openvss_socket_args))
        "${VSSADMIN:-vssadmin}" "$@" "${sock[@]}" --json 2>/dev/null |
                sed -n 's/^.*"'"$key"'" *: *"\([^"]*\)".*$/\1/p' | sort -u
}

__openvss_reply() { # words current
        local IFS=$' \t\n'
        COMPREPLY=($(compgen -W "$1" -- "$2"))
}

__openvss_reply_dirs() {
        local IFS=$'\n'
        COMPREPLY=($(compgen -d -- "$1"))
}

__openvss_reply_files() {
        local IFS=$'\n'
        COMPREPLY=($(compgen -f -- "$1"))
}

# vssadmin cluster ...: etcd is not asked (completing must not hang on an unreachable cluster).
_vssadmin_cluster() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        local verb= noun= i w
        case $prev in
        --cacert | --cert | --key | --password-file) __openvss_reply_files "$cur"; return ;;
        --etcd | --cluster | --for | --job | --lease-ttl | --set | --user | --*-deadline | --frozen-margin) return ;;
        esac
        for ((i = 2; i < COMP_CWORD; i++)); do
                w=${COMP_WORDS[i]}
                case $w in
                --json) ;;
                -*) ((i++)) ;;
                *) if [[ -z $verb ]]; then verb=$w; elif [[ -z $noun ]]; then noun=$w; fi ;;
                esac
        done
        if [[ $cur == -* ]]; then
                local opts="--etcd --cluster --json --cacert --cert --key --user --password-file"
                case $verb in
                create) opts+=" --for --job --lease-ttl --prepared-deadline --ready-deadline --complete-deadline --frozen-margin" ;;
                delete) opts+=" --set" ;;
                esac
                __openvss_reply "$opts" "$cur"
                return
        fi
        case $verb in
        "") __openvss_reply "list create delete" "$cur" ;;
        list) [[ -z $noun ]] && __openvss_reply "hosts writers shadows" "$cur" ;;
        create) [[ -z $noun ]] && __openvss_reply "shadow" "$cur" ;;
        delete) [[ -z $noun ]] && __openvss_reply "shadows" "$cur" ;;
        esac
}

_vssadmin() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        local verb= noun= i w
        COMPREPLY=()
        if ((COMP_CWORD > 1)) && [[ ${COMP_WORDS[1]} == cluster ]]; then
                _vssadmin_cluster
                return
        fi
        case $prev in
        --for | --at) __openvss_reply_dirs "$cur"; return ;;
        --socket) __openvss_reply_files "$cur"; return ;;
        --provider) __openvss_reply "$(__openvss_json_values name list providers)" "$cur"; return ;;
        --shadow) __openvss_reply "$(__openvss_json_values shadow_id list shadows)" "$cur"; return ;;
        --set) __openvss_reply "$(__openvss_json_values snapshot_set_id list shadows)" "$cur"; return ;;
        esac
        for ((i = 1; i < COMP_CWORD; i++)); do
                w=${COMP_WORDS[i]}
                case $w in
                --for | --at | --socket | --provider | --shadow | --set) ((i++)) ;;
                -*) ;;
                *) if [[ -z $verb ]]; then verb=$w; elif [[ -z $noun ]]; then noun=$w; fi ;;
                esac
        done
        local common="--json --quiet --socket --help"
        if [[ $cur == -* ]]; then
                case $verb in
                list) [[ $noun == providers ]] && common+=" --for" ;;
                create) common+=" --for --provider" ;;
                delete) common+=" --shadow --set --all --for --oldest" ;;
                expose) common+=" --shadow --at" ;;
                unexpose) common+=" --at" ;;
                "") common+=" --version" ;;
                esac
                __openvss_reply "$common" "$cur"
                return
        fi
        case $verb in
        "") __openvss_reply "list create delete expose unexpose cluster" "$cur" ;;
        list) [[ -z $noun ]] && __openvss_reply "writers providers shadows" "$cur" ;;
        create) [[ -z $noun ]] && __openvss_reply "shadow" "$cur" ;;
        delete) [[ -z $noun ]] && __openvss_reply "shadows" "$cur" ;;
        esac
}

_vssbackup() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        local cmd=${COMP_WORDS[1]} i
        COMPREPLY=()
        if ((COMP_CWORD == 1)); then
                if [[ $cur == -* ]]; then
                        __openvss_reply "--help --version" "$cur"
                else
                        __openvss_reply "backup restore exec" "$cur"
                fi
                return
        fi
        # exec: after "--" the words are COMMAND's.
        for ((i = 2; i < COMP_CWORD; i++)); do
                if [[ ${COMP_WORDS[i]} == -- && $cmd == exec ]]; then
                        if ((i + 1 == COMP_CWORD)); then
                                local IFS=$'\n'
                                COMPREPLY=($(compgen -c -- "$cur"))
                        elif declare -F _command_offset >/dev/null; then
                                _command_offset $((i + 1))
                        else
                                __openvss_reply_files "$cur"
                        fi
                        return
                fi
        done
        case $prev in
        -t | --to | -f | --from | -b | --base | --socket) __openvss_reply_files "$cur"; return ;;
        --for) __openvss_reply_dirs "$cur"; return ;;
        --type) __openvss_reply "full copy incremental differential log" "$cur"; return ;;
        --provider) __openvss_reply "$(__openvss_json_values name list providers)" "$cur"; return ;;
        -c | --component)
                # WRITER: then the component, which only the writer's metadata knows.
                local names=$(__openvss_json_values name list writers | sed 's/$/:/')
                __openvss_reply "$names" "$cur"
                compopt -o nospace 2>/dev/null
                return ;;
        --retries | --json-fd) return ;;
        esac
        local opts="--json --quiet --socket --help"
        case $cmd in
        backup) opts+=" --to --component --type --base --for --provider --retries" ;;
        restore) opts+=" --from --component --to" ;;
        exec) opts+=" --for --type --provider --retries --at-original --json-fd --" ;;
        esac
        [[ $cur == -* || -z $cur ]] && __openvss_reply "$opts" "$cur"
}

_vss_writer() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        local opts="--name --freeze-timeout --socket --help --version" prog=${COMP_WORDS[0]##*/}
        COMPREPLY=()
        # -c and -d mean different options in different writers.
        case $prog:$prev in
        vss-writer-exec:-d) __openvss_reply_dirs "$cur"; return ;;
        vss-writer-sqlite:-d | vss-writer-sqlite:-c) __openvss_reply_files "$cur"; return ;;
        esac
        case $prev in
        --hooks | -L | --label-dir) __openvss_reply_dirs "$cur"; return ;;
        --database | --config | --hook-log | --socket | -s) __openvss_reply_files "$cur"; return ;;
        -l | --app-level) __openvss_reply "front-end back-end system" "$cur"; return ;;
        --restore-method)
                __openvss_reply "restore-if-not-there restore-if-can-replace stop-restore-start restore-to-alternate-location custom" "$cur"
                return ;;
        --writer-restore) __openvss_reply "never if-replace-fails always" "$cur"; return ;;
        --compat) __openvss_reply "qemu-ga vmware none" "$cur"; return ;;
        -m | --mode) __openvss_reply "auto crash-consistent backup-label" "$cur"; return ;;
        -n | --name | -w | --writer-id | -i | --instance-id | -t | --freeze-timeout | --hook-timeout | \
                -b | --busy-timeout | --dsn | -c | --component | --alternate-location) return ;;
        esac
        case $prog in
        vss-writer-exec)
                opts+=" --hooks --writer-id --instance-id --component --app-level --restore-method --writer-restore"
                opts+=" --alternate-location --compat --hook-timeout --hold --hook-log" ;;
        vss-writer-sqlite) opts+=" --database --config --busy-timeout" ;;
        vss-writer-postgres) opts+=" --dsn --label-dir --mode" ;;
        esac
        __openvss_reply "$opts" "$cur"
}

_vss_agent() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        COMPREPLY=()
        case $prev in
        --config | --cacert | --cert | --key | --password-file | --socket) __openvss_reply_files "$cur"; return ;;
        --etcd | --cluster | --host | --lease-ttl | --user) return ;;
        esac
        __openvss_reply "--etcd --cluster --host --config --lease-ttl --cacert --cert --key --user --password-file --socket --help --version" "$cur"
}

complete -F _vssadmin vssadmin
complete -F _vssbackup vssbackup
complete -F _vss_writer vss-writer-exec vss-writer-sqlite vss-writer-postgres
complete -F _vss_agent vss-agent
