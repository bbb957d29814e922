#!/bin/sh
# Installs oci-storage with its manual pages and shell completion:
#   PREFIX/bin/oci-storage
#   PREFIX/share/man/man1/oci-storage.1 and oci-storage-COMMAND.1 for every command
#   PREFIX/share/bash-completion/completions/oci-storage
#   PREFIX/share/zsh/site-functions/_oci-storage
#   PREFIX/share/fish/vendor_completions.d/oci-storage.fish
# The pages and scripts come from the binary itself (`oci-storage man`, `oci-storage completion`),
# so the binary must be able to run here (same CPU, /proc mounted).
#
# Usage: scripts/install.sh [--prefix DIR] [--destdir DIR] [BINARY]
#   --prefix   where to install (default /usr/local)
#   --destdir  a staging root to install into, as DESTDIR in `make install` (default: none)
#   BINARY     the binary to install (default dist/oci-storage; or a release file such as
#              oci-storage-linux-x64, installed under the name oci-storage)
set -eu

prefix=/usr/local
destdir=
binary=$(dirname "$0")/../dist/oci-storage
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --destdir=*) destdir=${1#--destdir=}; shift ;;
    -*) echo "install.sh: unknown option $1 (usage: $0 [--prefix DIR] [--destdir DIR] [BINARY])" >&2; exit 2 ;;
    *) binary=$1; shift ;;
  esac
done
[ -f "$binary" ] || { echo "install.sh: no binary at $binary (npm run build, or name a release file)" >&2; exit 1; }

root=$destdir$prefix
installed=$root/bin/oci-storage
install -D -m 0755 "$binary" "$installed"
"$installed" man >/dev/null || { echo "install.sh: $installed does not run on this machine" >&2; exit 1; }

mandir=$root/share/man/man1
mkdir -p "$mandir"
"$installed" man >"$mandir/oci-storage.1"
# The commands, as completion lists them (the first three lines say what kind of answer it is).
"$installed" __complete -- "" | tail -n +4 | cut -f1 | while read -r command; do
  "$installed" man "$command" >"$mandir/oci-storage-$command.1"
done

install -D -m 0644 /dev/null "$root/share/bash-completion/completions/oci-storage"
"$installed" completion bash >"$root/share/bash-completion/completions/oci-storage"
install -D -m 0644 /dev/null "$root/share/zsh/site-functions/_oci-storage"
"$installed" completion zsh >"$root/share/zsh/site-functions/_oci-storage"
install -D -m 0644 /dev/null "$root/share/fish/vendor_completions.d/oci-storage.fish"
"$installed" completion fish >"$root/share/fish/vendor_completions.d/oci-storage.fish"

echo "installed $installed, $(ls "$mandir" | grep -c '^oci-storage') manual pages in $mandir, completion for bash, zsh and fish"
