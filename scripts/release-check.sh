#!/usr/bin/env bash
# Proves that the release binaries (npm run release -> dist/release) run where users put them.
#
#   x64          Both x64 binaries in a bare Debian minbase root file system made by debootstrap
#                (nothing else installed; /proc mounted), each with a vfs and an overlay store:
#                create a layer, apply a real tar (part of the root file system, made by GNU tar),
#                get it back byte for byte, make an image and a container, mount it, write into
#                it, see the change in changes/diff, check, delete. First, what happens without
#                /proc (a plain chroot): Bun aborts before any of our code runs (README says so).
#   arm64        The arm64 binary in an arm64 minbase, through qemu-user-static (binfmt_misc):
#                version, the vfs and overlay scenarios, check. Making that minbase runs dpkg
#                under emulation: 12+ minutes the first time (then it comes from the cache).
#   arm64-quick  The same in the first stage of an arm64 minbase (debootstrap --foreign: every
#                package's files, unconfigured; made without emulation in about 2 minutes):
#                version and the vfs scenario, with check. CI runs this one.
#   container    The x64 binary in a scratch-style image (the binary and the libraries ldd lists,
#                nothing else), run by crun with a config.json written here: the vfs scenario.
#
# Usage: scripts/release-check.sh [--refresh] [x64] [arm64|arm64-quick] [container]
#        No part named: x64 arm64 container (what a maintainer runs before publishing).
#        --refresh makes the minbase root file systems again instead of taking them from the cache.
# Needs root, debootstrap, and for its parts qemu-user-static + binfmt-support, crun.
# Environment:
#   RELEASE_DIR          the binaries and SHA256SUMS (default: dist/release)
#   RELEASE_CHECK_CACHE  where the minbase root file systems are kept as tarballs, so that reruns
#                        take seconds (default: ${XDG_CACHE_HOME:-$HOME/.cache}/oci-storage/release-check)
#   DEBIAN_MIRROR, DEBIAN_SUITE  default: the mirror apt uses for this system's suite
#                        (apt-get indextargets, i.e. /etc/apt/sources.list*), and apt's proxy if any
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
release_dir=${RELEASE_DIR:-$repo/dist/release}
cache=${RELEASE_CHECK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/oci-storage/release-check}
refresh=0
parts=()
for arg in "$@"; do
  case $arg in
    --refresh) refresh=1 ;;
    x64 | arm64 | arm64-quick | container) parts+=("$arg") ;;
    *) echo "release-check: unknown part \"$arg\" (usage: $0 [--refresh] [x64] [arm64|arm64-quick] [container])" >&2; exit 2 ;;
  esac
done
[[ ${#parts[@]} -gt 0 ]] || parts=(x64 arm64 container)

die() { echo "release-check: $*" >&2; exit 1; }
step() { echo "== $*"; }
ok() { echo "   ok: $*"; }

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, mount)"
for tool in debootstrap chroot sha256sum tar zstd; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install debootstrap zstd)"
done
chroot=$(command -v chroot)

work=$(mktemp -d "${TMPDIR:-/var/tmp}/oci-storage-release-check.XXXXXX")
cleanup() {
  # Everything this script (or the binaries it ran) mounted lies below $work: unmount deepest first.
  local mounts
  mounts=$(awk -v w="$work" '$5 == w || index($5, w "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  for m in $mounts; do umount -l "$m" 2>/dev/null || true; done
  if awk -v w="$work" 'index($5, w "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "release-check: mounts remain below $work; left in place" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

step "checksums in $release_dir"
[[ -f $release_dir/SHA256SUMS ]] || die "no $release_dir/SHA256SUMS: run npm run release first"
(cd "$release_dir" && sha256sum -c --strict --quiet SHA256SUMS) || die "SHA256SUMS does not match the files in $release_dir"
ok "$(wc -l <"$release_dir/SHA256SUMS") files match SHA256SUMS"

# ---- Debian minbase root file systems, cached as tarballs ----------------------------------------

suite=${DEBIAN_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-}")}
[[ -n $suite ]] || die "cannot tell this system's Debian suite; set DEBIAN_SUITE"
mirror=${DEBIAN_MIRROR:-$(apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)' 'Identifier: Packages' 2>/dev/null | awk -v s="$suite" '$2 == s { print $1; exit }')}
[[ -n $mirror ]] || die "no apt source for $suite in /etc/apt/sources.list*; set DEBIAN_MIRROR"
# debootstrap fetches with wget, which reads the proxy from the environment rather than apt's configuration.
eval "$(apt-config shell http_proxy Acquire::http::Proxy https_proxy Acquire::https::Proxy)"
export http_proxy=${http_proxy:-} https_proxy=${https_proxy:-}
[[ -n $http_proxy ]] || unset http_proxy
[[ -n $https_proxy ]] || unset https_proxy

# qemu-user-static registers qemu-aarch64 with the F flag, so arm64 programs run inside a chroot too.
ensure_arm64_emulation() {
  command -v qemu-aarch64-static >/dev/null || die "qemu-user-static is not installed"
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
  fi
  if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null; then
    command -v update-binfmts >/dev/null || die "binfmt-support is not installed (apt-get install binfmt-support)"
    update-binfmts --enable qemu-aarch64 || die "cannot register qemu-aarch64 with binfmt_misc"
    echo "   registered qemu-aarch64 with binfmt_misc (as installing qemu-user-static does on a systemd host)"
  fi
  grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 is registered without the F flag: chroots cannot find the emulator"
}

# minbase ARCH full|foreign DEST: a minbase root file system in DEST, from the cache or debootstrap.
minbase() {
  local arch=$1 stage=$2 dest=$3
  local tarball=$cache/$suite-$arch-minbase.tar.zst
  [[ $stage == foreign ]] && tarball=$cache/$suite-$arch-minbase-first-stage.tar.zst
  if [[ $refresh -eq 1 || ! -s $tarball ]]; then
    local build="$work/debootstrap-$arch-$stage" started=$SECONDS
    local args=(--variant=minbase --arch="$arch")
    [[ $stage == foreign ]] && args+=(--foreign)
    echo "   debootstrap ${args[*]} $suite from $mirror (log: $build.log)"
    if ! debootstrap "${args[@]}" "$suite" "$build" "$mirror" >"$build.log" 2>&1; then
      tail -5 "$build.log" >&2
      die "debootstrap failed for $arch ($stage); is $mirror reachable?"
    fi
    rm -f "$build"/var/cache/apt/archives/*.deb # as apt-get clean leaves it: the packages are installed
    mkdir -p "$cache"
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$build" --zstd -cf "$tarball.tmp.$$" .
    mv "$tarball.tmp.$$" "$tarball"
    rm -rf "$build"
    echo "   made in $((SECONDS - started)) s, cached as $tarball"
  fi
  mkdir -p "$dest"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$dest" --zstd -xf "$tarball"
}

# ---- the store scenario, run through a runner that invokes the binary where it was put -------------

# The runner: a function that runs the binary under test with its arguments (chroot or container).
runner=
run() { "$runner" "$@"; }

input_dir=$work/input
# input_tar ROOT: the "real tar" every scenario applies: part of a Debian root file system, by GNU tar.
input_tar() {
  mkdir -p "$input_dir"
  tar -C "$1" --numeric-owner -cf "$input_dir/input.tar" etc usr/sbin
  input_sum=$(sha256sum <"$input_dir/input.tar")
  tar -xOf "$input_dir/input.tar" etc/debian_version >"$input_dir/debian_version"
}

# scenario LABEL HOST_ROOT DRIVER: the store round trip; HOST_ROOT is where the binary's / is on this host.
scenario() {
  local label=$1 host_root=$2 driver=$3
  local s=(--graph "/var/lib/oci-storage-check/$label" --run "/run/oci-storage-check/$label" --storage-driver "$driver")
  local base path layer
  base=$(run "${s[@]}" create-layer -n base)
  base=${base%%$'\n'*}
  run "${s[@]}" applydiff -f /release-check/input.tar base
  [[ $(run "${s[@]}" diff -u base | sha256sum) == "$input_sum" ]] || die "$label: diff -u of the applied layer differs from the tar"
  ok "$label: layer $base holds the tar; diff -u gives it back byte for byte"
  run "${s[@]}" create-image -n image base >/dev/null
  run "${s[@]}" create-container -n box image >/dev/null
  path=$(run "${s[@]}" mount box)
  if [[ $driver == overlay ]]; then
    [[ $(findmnt -n -o FSTYPE --mountpoint "$host_root$path") == overlay ]] || die "$label: $path is not an overlay mount"
  fi
  cmp -s "$host_root$path/etc/debian_version" "$input_dir/debian_version" || die "$label: the mounted container does not show the image's files"
  echo "written by release-check" >"$host_root$path/release-check-was-here"
  run "${s[@]}" unmount box >/dev/null
  ok "$label: image and container made; container mounted at $path ($driver) shows the image, takes a write"
  layer=$(run "${s[@]}" container box | sed -n 's/^Layer: //p')
  # Outputs are read whole before they are searched: grep -q in a pipe could cut a writer short (SIGPIPE).
  local changes listing
  changes=$(run "${s[@]}" changes "$layer")
  grep -qx 'Add "/release-check-was-here"' <<<"$changes" || die "$label: changes does not list the new file: $changes"
  listing=$(run "${s[@]}" diff "$layer" | tar -t)
  grep -qx 'release-check-was-here' <<<"$listing" || die "$label: diff of the container layer lacks the new file"
  run "${s[@]}" check >/dev/null || die "$label: check found problems"
  ok "$label: changes and diff show the write; check is clean"
  run "${s[@]}" delete-container box >/dev/null
  run "${s[@]}" delete-image image >/dev/null 2>&1
  [[ -z $(run "${s[@]}" layers) && -z $(run "${s[@]}" images) && -z $(run "${s[@]}" containers) ]] || die "$label: objects left after deleting"
  run "${s[@]}" check >/dev/null || die "$label: check found problems after deleting"
  ok "$label: deleted; the store is empty and check is clean"
}

# ---- chroot into a minbase -------------------------------------------------------------------------

chroot_root=
chroot_binary() { env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$chroot" "$chroot_root" /usr/local/bin/oci-storage "$@"; }

# check_in_chroot ROOT TARGET LABEL DRIVER...: the binary for TARGET as /usr/local/bin/oci-storage in ROOT.
check_in_chroot() {
  local root=$1 target=$2 label=$3
  shift 3
  install -D -m 0755 "$release_dir/oci-storage-$target" "$root/usr/local/bin/oci-storage"
  chroot_root=$root
  runner=chroot_binary
  local version
  version=$(run version)
  grep -qx "Target: $target" <<<"$version" || die "$target: version says $(grep Target <<<"$version")"
  ok "$target: version: $(tr '\n' ' ' <<<"$version")"
  for driver in "$@"; do scenario "$label-$driver" "$root" "$driver"; done
}

check_without_proc() {
  local root=$1 out status=0
  install -m 0755 "$release_dir/oci-storage-linux-x64" "$root/usr/local/bin/oci-storage"
  out=$(env -i PATH=/usr/bin:/bin "$chroot" "$root" /usr/local/bin/oci-storage version 2>&1) || status=$?
  [[ $status -ne 0 && $out == *"Bun has crashed"* ]] || die "without /proc the binary did not crash as README says (exit $status): $(head -3 <<<"$out")"
  ok "without /proc: exit $status, \"$(grep -m1 'Bun has crashed' <<<"$out")\" (README: /proc must be mounted)"
}

# mountpoint DIR: DIR as a directory below $work to mount on. The kernel follows a symlink there (the
# first stage of debootstrap leaves proc -> /proc), which would mount over this host's own directory.
mountpoint_in_work() {
  [[ -L $1 ]] && rm "$1"
  mkdir -p "$1"
  [[ $(realpath -e "$1") == "$work"/* ]] || die "refusing to mount on $1: it leads outside $work"
}

# What the scenarios need mounted in a root file system: /proc (Bun needs it) and the input, read-only.
mount_in() {
  mountpoint_in_work "$1/proc"
  mount -t proc proc "$1/proc"
  mountpoint_in_work "$1/release-check"
  mount --bind "$input_dir" "$1/release-check"
  mount -o remount,bind,ro "$1/release-check"
}

unmount_in() {
  umount "$1/release-check" "$1/proc"
}

check_x64() {
  step "x64: bare Debian $suite minbase (amd64)"
  local root=$work/amd64
  minbase amd64 full "$root"
  input_tar "$root"
  check_without_proc "$root"
  mount_in "$root"
  for target in linux-x64 linux-x64-baseline; do
    check_in_chroot "$root" "$target" "$target" vfs overlay
  done
  # A fresh install's default store (no options): overlay where the kernel has it, as root.
  local status
  status=$(run status 2>&1)
  grep -qx 'Driver Name: overlay' <<<"$status" || die "the default store does not use overlay: $status"
  ok "with no options, the default store /var/lib/oci-storage uses overlay"
  unmount_in "$root"
}

check_arm64() {
  local stage=$1 drivers=(vfs)
  [[ $stage == full ]] && drivers+=(overlay)
  step "arm64 ($stage minbase): through qemu-aarch64"
  ensure_arm64_emulation
  local root=$work/arm64-$stage
  minbase arm64 "$stage" "$root"
  input_tar "$root"
  mount_in "$root"
  check_in_chroot "$root" linux-arm64 "linux-arm64" "${drivers[@]}"
  unmount_in "$root"
}

# ---- a scratch-style container image run by crun ---------------------------------------------------

bundle=
crun_sequence=0
# crun in a host with cgroup v1 and v2 side by side ("hybrid") refuses to start; a private mount
# namespace with cgroup2 alone at /sys/fs/cgroup satisfies it (no cgroup is used: manager disabled).
crun_needs_unified_view=0
crun_binary() {
  local args="" arg
  for arg in /usr/local/bin/oci-storage "$@"; do
    arg=${arg//\\/\\\\}
    args+="${args:+, }\"${arg//\"/\\\"}\""
  done
  write_container_config "$args"
  crun_sequence=$((crun_sequence + 1))
  local id="oci-storage-check-$$-$crun_sequence"
  if [[ $crun_needs_unified_view -eq 1 ]]; then
    unshare --mount --propagation private sh -c 'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec crun --cgroup-manager=disabled run --bundle "$1" "$2"' sh "$bundle" "$id"
  else
    crun --cgroup-manager=disabled run --bundle "$bundle" "$id"
  fi
}

write_container_config() {
  local caps='"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_MKNOD", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETUID"'
  cat >"$bundle/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": [ $1 ],
    "env": [ "PATH=/usr/local/bin", "HOME=/" ],
    "cwd": "/",
    "capabilities": { "bounding": [ $caps ], "effective": [ $caps ], "permitted": [ $caps ] },
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": false },
  "hostname": "oci-storage-check",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "mode=755", "size=1m" ] },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": [ "nosuid", "nodev", "mode=1777" ] },
    { "destination": "/release-check", "type": "bind", "source": "$input_dir", "options": [ "rbind", "ro" ] }
  ],
  "linux": {
    "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" }, { "type": "network" } ],
    "maskedPaths": [ "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware" ],
    "readonlyPaths": [ "/proc/sys", "/proc/sysrq-trigger" ]
  }
}
EOF
}

check_container() {
  step "container: scratch-style image with the x64 binary, run by crun"
  command -v crun >/dev/null || die "crun is not installed (apt-get install crun)"
  local binary=$release_dir/oci-storage-linux-x64
  bundle=$work/bundle
  mkdir -p "$bundle/rootfs/usr/local/bin"
  install -m 0755 "$binary" "$bundle/rootfs/usr/local/bin/oci-storage"
  # The libraries the dynamic linker loads for the binary (ldd), and nothing else.
  local libraries
  libraries=$(ldd "$binary" | grep -o '/[^ ]*' | sort -u)
  for lib in $libraries; do cp -L --parents "$lib" "$bundle/rootfs/"; done
  echo "   image contents: /usr/local/bin/oci-storage $(tr '\n' ' ' <<<"$libraries")"
  if [[ $(stat -f -c %T /sys/fs/cgroup) != cgroup2fs && $(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null) == cgroup2fs ]]; then
    crun_needs_unified_view=1
  fi
  if [[ ! -s $input_dir/input.tar ]]; then
    minbase amd64 full "$work/amd64"
    input_tar "$work/amd64"
  fi
  runner=crun_binary
  local version
  version=$(run version)
  grep -qx "Target: linux-x64" <<<"$version" || die "container: version says $(grep Target <<<"$version")"
  ok "container: version: $(tr '\n' ' ' <<<"$version")"
  # No mount(8) in the image: the default store falls back to vfs (overlay needs mount(8) and CAP_SYS_ADMIN).
  local status
  status=$(run status 2>&1)
  grep -qx 'Driver Name: vfs' <<<"$status" || die "container: the default store does not fall back to vfs: $status"
  ok "container: with no options the store uses vfs (the image has no mount(8))"
  scenario container-vfs "$bundle/rootfs" vfs
}

for part in "${parts[@]}"; do
  case $part in
    x64) check_x64 ;;
    arm64) check_arm64 full ;;
    arm64-quick) check_arm64 foreign ;;
    container) check_container ;;
  esac
done
step "release-check passed: ${parts[*]}"
