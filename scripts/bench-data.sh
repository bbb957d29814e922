#!/usr/bin/env bash
# Builds the benchmark data once into a cache directory (default: <repo>/.bench):
#   rootfs/          a Debian bookworm minbase tree made with debootstrap
#   data/base.tar    that tree as a GNU tar (numeric owners, sorted names)
#   data/base.tar.gz, data/base.tar.zst   the same tar compressed
#   data/upper.tar   a layer on top of it: modified, added and deleted files (.wh. whiteouts,
#                    one opaque directory), like a package install plus configuration
# Installs what it needs from Debian's packages when missing. Rebuilds nothing that exists
# unless --force is given.
#
# Usage: scripts/bench-data.sh [--out DIR] [--rootfs DIR] [--force]
#   --rootfs DIR (or BENCH_ROOTFS=DIR) reuses an existing debootstrap tree instead of making one.
set -euo pipefail

# Bump when the recipe below changes, so that old caches are rebuilt.
RECIPE_VERSION=1

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_DIR:-$repo/.bench}
rootfs=${BENCH_ROOTFS:-}
force=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --rootfs) rootfs=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-data: unknown argument: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
data=$out/data
log() { echo "bench-data: $*" >&2; }

install_missing() {
  local wanted=() pair
  for pair in containers-storage:containers-storage skopeo:skopeo debootstrap:debootstrap zstd:zstd gzip:gzip \
              tar:tar python3:python3 /usr/bin/time:time; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || wanted+=("${pair#*:}")
  done
  [ ${#wanted[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || { log "missing packages ${wanted[*]} and not root to install them"; exit 1; }
  log "installing ${wanted[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null
}

make_rootfs() {
  if [ -n "$rootfs" ]; then
    [ -d "$rootfs/usr/bin" ] || { log "$rootfs is not a root filesystem"; exit 1; }
    return 0
  fi
  rootfs=$out/rootfs
  [ -f "$out/rootfs.complete" ] && [ $force -eq 0 ] && return 0
  rm -rf "$rootfs" "$out/rootfs.complete"
  log "debootstrap --variant=minbase bookworm $rootfs (a few minutes; log in $out/debootstrap.log)"
  debootstrap --variant=minbase bookworm "$rootfs" >"$out/debootstrap.log" 2>&1 \
    || { log "debootstrap failed, see $out/debootstrap.log"; exit 1; }
  touch "$out/rootfs.complete"
}

# Writes the upper layer's tree into $1: files as they should read after the layer is applied,
# plus empty .wh.NAME files for deletions and .wh..wh..opq for the opaque directory.
stage_upper() {
  local stage=$1
  rm -rf "$stage"
  mkdir -p "$stage"
  (
    cd "$rootfs"
    # Modified: the package database, account files and every dpkg file list (text appended),
    # and two shared libraries rewritten in place (same name, new bytes).
    modified=(etc/passwd etc/group etc/shadow etc/bash.bashrc var/lib/dpkg/status)
    while IFS= read -r f; do modified+=("$f"); done < <(find var/lib/dpkg/info -name '*.list' | sort)
    while IFS= read -r f; do modified+=("$f"); done < <(find usr/lib/x86_64-linux-gnu -maxdepth 1 -type f \( -name 'libc.so.6' -o -name 'libstdc++.so.6*' \) | sort)
    cp -a --parents "${modified[@]}" "$stage/"
    for f in "${modified[@]}"; do
      case $f in
        *.so*) python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[-4096:]=bytes(4096); open(p,"wb").write(b)' "$stage/$f" ;;
        *) echo "# changed by the benchmark's upper layer" >>"$stage/$f" ;;
      esac
    done
  )
  # Deleted: whole documentation trees, most translations, some programs.
  mkdir -p "$stage/usr/share/locale" "$stage/usr/bin"
  touch "$stage/usr/share/.wh.doc" "$stage/usr/share/.wh.man" "$stage/usr/share/.wh.info"
  for d in "$rootfs"/usr/share/locale/*/; do
    name=$(basename "$d")
    case $name in de|fr|es) ;; *) touch "$stage/usr/share/locale/.wh.$name" ;; esac
  done
  for f in perl5.36.0 uncompress gunzip zcat; do
    [ -e "$rootfs/usr/bin/$f" ] && touch "$stage/usr/bin/.wh.$f"
  done
  # Opaque: the time zone database replaced by two zones.
  mkdir -p "$stage/usr/share/zoneinfo/Etc"
  touch "$stage/usr/share/zoneinfo/.wh..wh..opq"
  cp -a "$rootfs/usr/share/zoneinfo/Etc/UTC" "$stage/usr/share/zoneinfo/Etc/UTC"
  cp -a "$rootfs/usr/share/zoneinfo/Europe/Berlin" "$stage/usr/share/zoneinfo/Berlin"
  # Added: an application tree of about 3000 files of mixed sizes, one large file,
  # symlinks and hard links, deterministic content.
  python3 - "$stage/opt/app" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(6)
words = [b"layer", b"store", b"image", b"container", b"mount", b"diff", b"apply", b"tar", b"\n"]
def content(size):
    if rng.random() < 0.5:
        return rng.randbytes(size)
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])
count = 0
for top in range(30):
    for sub in range(10):
        d = os.path.join(root, f"pkg{top:02}", f"mod{sub}")
        os.makedirs(d, exist_ok=True)
        for i in range(10):
            size = min(int(rng.lognormvariate(8, 1.6)), 2 << 20)
            path = os.path.join(d, f"file{i}.dat")
            with open(path, "wb") as f:
                f.write(content(size))
            os.chmod(path, 0o755 if i == 0 else 0o644)
            count += 1
        os.symlink("file0.dat", os.path.join(d, "current"))
        os.link(os.path.join(d, "file1.dat"), os.path.join(d, "file1.link"))
with open(os.path.join(root, "big.bin"), "wb") as f:
    for _ in range(48):
        f.write(rng.randbytes(1 << 20))
os.symlink("/opt/app/big.bin", os.path.join(root, "big.current"))
os.mkfifo(os.path.join(root, "control.fifo"))
print(f"{count + 1} files", file=sys.stderr)
PY
  chown -R 1000:1000 "$stage/opt/app/pkg00"
  # Directories that exist below keep their metadata (owner, mode, mtime) from the base.
  (cd "$stage" && find . -depth -type d -print0) | while IFS= read -r -d '' d; do
    if [ -d "$rootfs/$d" ]; then
      chown --reference="$rootfs/$d" "$stage/$d"
      chmod --reference="$rootfs/$d" "$stage/$d"
      touch -r "$rootfs/$d" "$stage/$d"
    fi
  done
}

build_data() {
  if [ -f "$data/complete" ] && [ "$(cat "$data/complete")" = "$RECIPE_VERSION" ] && [ $force -eq 0 ]; then
    log "data is up to date in $data"
    return 0
  fi
  rm -rf "$data"
  mkdir -p "$data"
  log "base.tar from $rootfs"
  tar --create --file="$data/base.tar" --directory="$rootfs" --numeric-owner --sort=name --format=gnu .
  log "base.tar.gz"
  gzip -6 --no-name --stdout "$data/base.tar" >"$data/base.tar.gz"
  log "base.tar.zst"
  zstd -q -3 -T0 "$data/base.tar" -o "$data/base.tar.zst"
  log "upper.tar"
  stage_upper "$out/upper-stage"
  tar --create --file="$data/upper.tar" --directory="$out/upper-stage" --numeric-owner --sort=name --format=gnu .
  rm -rf "$out/upper-stage"
  {
    echo "rootfs: $rootfs"
    for f in base.tar base.tar.gz base.tar.zst upper.tar; do
      printf '%s: %s bytes, %s entries\n' "$f" "$(stat -c %s "$data/$f")" "$(tar -tf "$data/$f" | wc -l)"
    done
    printf 'upper.tar whiteouts: %s\n' "$(tar -tf "$data/upper.tar" | grep -c '/\.wh\.')"
  } >"$data/MANIFEST"
  echo "$RECIPE_VERSION" >"$data/complete"
  cat "$data/MANIFEST" >&2
}

install_missing
make_rootfs
build_data
