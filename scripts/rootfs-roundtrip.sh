#!/usr/bin/env bash
# Applies a real root filesystem tar with the compiled binary and exports it again, checking
# that the export is byte-identical (same sha256) and printing time and peak memory of each
# step. Usage: scripts/rootfs-roundtrip.sh ROOTFS.tar [vfs|overlay]
# (A Debian minbase tar: debootstrap --variant=minbase bookworm DIR && tar -C DIR --numeric-owner --xattrs -cf rootfs.tar .)
set -euo pipefail
tar_file=$(realpath "$1")
driver=${2:-vfs}
binary=$(realpath "$(dirname "$0")/../dist/oci-storage")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
store=("$binary" --graph "$work/graph" --run "$work/run" --storage-driver "$driver")

echo "input:  $(stat -c %s "$tar_file") bytes, sha256 $(sha256sum < "$tar_file" | cut -d' ' -f1)"
/usr/bin/time -f "import-layer: %e s, peak RSS %M KB" "${store[@]}" import-layer -i base -f "$tar_file" >/dev/null
/usr/bin/time -f "diff -u:      %e s, peak RSS %M KB" "${store[@]}" diff -u -f "$work/export.tar" base
echo "export: $(stat -c %s "$work/export.tar") bytes, sha256 $(sha256sum < "$work/export.tar" | cut -d' ' -f1)"
cmp -s "$tar_file" "$work/export.tar" && echo "identical: yes" || { echo "identical: NO"; exit 1; }
"${store[@]}" shutdown -f
