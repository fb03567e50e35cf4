# bash completion for xichanctl -- installed by `make install` as
# $(PREFIX)/share/bash-completion/completions/xichanctl, where
# bash-completion loads it the first time xichanctl is completed.
#
# Completes the commands, each command's options (as `xichanctl help CMD`
# lists them), the values of --kind, --format, --unbound and create's
# first argument, and object names: those of `xichanctl list --json` in the
# namespace the line names so far (--name/--namespace, --runtime-dir), which
# needs a daemon; without one nothing is offered.  Plain bash: it uses
# COMP_WORDS and compgen only, so it works without the bash-completion
# package too (source it from ~/.bashrc then).

_xichanctl_objects()
{
    local ns=() i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        case $w in
        --namespace | --runtime-dir) ns+=("$w" "${COMP_WORDS[i + 1]}") ;;
        --name) ((i < cmd_at)) && ns+=(--namespace "${COMP_WORDS[i + 1]}") ;; # after: create's
        esac
    done
    xichanctl "${ns[@]}" list --json 2>/dev/null |
        grep -o '"name":"[^"\\]*"' | sed 's/^"name":"//; s/"$//'
}

_xichanctl()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev= cword=$COMP_CWORD cmd= cmd_at=0 i w opts
    local words=("${COMP_WORDS[@]}")
    ((cword > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

    local commands="list show stats sessions watch create destroy put get peek purge metrics stop
                    cleanup gc help"
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        case $w in
        --name | --namespace | --runtime-dir | --kind | --format | --unbound | --timeout | \
            --interval | --count | --maxsize | --output) ((i++)) ;;
        -*) ;;
        *) cmd=$w cmd_at=$i; break ;;
        esac
    done

    case $prev in
    --kind) COMPREPLY=($(compgen -W "queue channel" -- "$cur")); return ;;
    --format) COMPREPLY=($(compgen -W "str bytes json" -- "$cur")); return ;;
    --unbound) COMPREPLY=($(compgen -W "replace error remove" -- "$cur")); return ;;
    --runtime-dir) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    --output) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
    --name | --namespace | --timeout | --interval | --count | --maxsize) return ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--name --namespace --runtime-dir --json --help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    if [[ $cur == -* ]]; then
        # The command's own options, from its help text.
        opts=$(xichanctl help "$cmd" 2>/dev/null | grep -o -- '--[a-z-]*' | sort -u)
        COMPREPLY=($(compgen -W "$opts --json --help" -- "$cur"))
        return
    fi
    case $cmd in
    help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
    create) [[ $prev == create ]] && COMPREPLY=($(compgen -W "queue channel" -- "$cur")) ;;
    show | destroy | put | get | peek | purge)
        [[ $prev == "$cmd" || $prev == --kind* ]] &&
            mapfile -t COMPREPLY < <(compgen -W "$(_xichanctl_objects)" -- "$cur")
        ;;
    esac
}

complete -F _xichanctl xichanctl
