# fish completion for oci-storage, printed by `oci-storage completion fish`. Every answer comes
# from the program itself (`oci-storage __complete -- WORD...`), so it matches the installed
# version: commands, options, option values and the names of the layers, images and
# containers in the store that the global options on the command line select.

function __oci_storage_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l out ($tokens[1] __complete -- $tokens[2..-1] $current 2>/dev/null)
    or return
    switch "$out[1]"
        case files directories
            set -l prefix $out[2]
            set -l path (string sub -s (math (string length -- "$prefix") + 1) -- $current)
            set -l paths
            if test "$out[1]" = files
                set paths (__fish_complete_path $path)
            else
                set paths (__fish_complete_directories $path)
            end
            for found in $paths
                echo $prefix$found
            end
        case '*'
            printf '%s\n' $out[4..-1]
    end
end

complete -c oci-storage -f -a '(__oci_storage_complete)'
