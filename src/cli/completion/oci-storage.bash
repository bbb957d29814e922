# bash completion for oci-storage                                  -*- shell-script -*-
# Printed by `oci-storage completion bash`. Every answer comes from the program itself
# (`oci-storage __complete -- WORD...`), so it matches the installed version: commands,
# options, option values and the names of the layers, images and containers in the store
# that the global options on the command line select.

_oci_storage() {
    local words=() word line=${COMP_LINE:0:COMP_POINT} i
    # bash splits words at COMP_WORDBREAKS (the ":" of image names, the "=" of --opt=value):
    # join back what was typed without a space between.
    for ((i = 0; i <= COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if ((i == 0)) || [[ $line == [[:space:]]* ]]; then
            words+=("$word")
        else
            words[${#words[@]} - 1]+=$word
        fi
        line=${line#"${line%%[![:space:]]*}"}
        line=${line#"$word"}
    done
    local cur=${words[${#words[@]} - 1]} program=${words[0]}
    [[ $program == "~/"* ]] && program=$HOME/${program#"~/"}

    local out
    out=$("$program" __complete -- "${words[@]:1}" 2>/dev/null) || return 0
    local lines=()
    mapfile -t lines <<<"$out"
    local kind=${lines[0]} prefix=${lines[1]} flags=${lines[2]}

    COMPREPLY=()
    case $kind in
    files | directories)
        local path=${cur#"$prefix"} found=()
        if [[ $kind == files ]]; then
            mapfile -t found < <(compgen -f -- "$path")
        else
            mapfile -t found < <(compgen -d -- "$path")
        fi
        for word in "${found[@]}"; do COMPREPLY+=("$prefix$word"); done
        compopt -o filenames 2>/dev/null
        ;;
    *)
        # Names may hold characters the shell would split or expand ("my web"): quoted as typed.
        for line in "${lines[@]:3}"; do
            printf -v word '%q' "${line%%$'\t'*}"
            COMPREPLY+=("$word")
        done
        [[ $flags == nospace ]] && compopt -o nospace 2>/dev/null
        ;;
    esac

    # bash replaces only the part of the word after its last COMP_WORDBREAKS character.
    local keep=""
    for ((i = ${#cur} - 1; i >= 0; i--)); do
        if [[ $COMP_WORDBREAKS == *"${cur:i:1}"* ]]; then
            keep=${cur:0:i+1}
            break
        fi
    done
    if [[ -n $keep ]]; then
        for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$keep"}; done
    fi
    return 0
}

complete -F _oci_storage oci-storage
