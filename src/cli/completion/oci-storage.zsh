#compdef oci-storage
# zsh completion for oci-storage, printed by `oci-storage completion zsh`. Every answer comes
# from the program itself (`oci-storage __complete -- WORD...`), so it matches the installed
# version: commands, options, option values and the names of the layers, images and
# containers in the store that the global options on the command line select.

_oci-storage() {
    local out kind prefix flags line value description program=${words[1]}
    local -a lines candidates
    [[ $program == "~/"* ]] && program=$HOME/${program#"~/"}
    out=$("$program" __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    lines=("${(@f)out}")
    kind=$lines[1] prefix=$lines[2] flags=$lines[3]
    case $kind in
    files | directories)
        [[ -n $prefix ]] && compset -P "${(b)prefix}"
        if [[ $kind == files ]]; then _files; else _directories; fi
        return
        ;;
    esac
    for line in "${(@)lines[4,-1]}"; do
        value=${line%%$'\t'*}
        description=
        [[ $line == *$'\t'* ]] && description=${line#*$'\t'}
        candidates+=("${value//:/\\:}${description:+:$description}")
    done
    (( $#candidates )) || return 1
    if [[ $flags == nospace ]]; then
        _describe -t values value candidates -S ''
    else
        _describe -t values value candidates
    fi
}

if [[ $funcstack[1] == _oci-storage ]]; then
    _oci-storage "$@"
else
    compdef _oci-storage oci-storage
fi
