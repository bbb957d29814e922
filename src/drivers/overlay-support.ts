/**
 * What the kernel and the backing filesystem offer the overlay driver: whether overlayfs can be
 * mounted at all (probed once per run root), whether the upper dir can be read as a layer's
 * diff, and the facts `status` prints.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { probeMount } from "./mounter.ts";
import type { OverlayOptions } from "./overlay-options.ts";

/** Where overlay support is decided: the kernel, tried once per run root. */
export interface OverlaySupport {
  supported: boolean;
  reason: string;
}

/**
 * Whether overlayfs can be mounted over directories of this graph root: root privileges,
 * overlay in the kernel, and a probe mount on the graph root's filesystem. The result is cached
 * in <runroot>/overlay/overlay-{true,false} (the run root is cleared by a reboot).
 */
export function overlaySupport(graphRoot: string, runRoot: string): OverlaySupport {
  const cacheDir = join(runRoot, "overlay");
  for (const answer of [true, false]) {
    const file = join(cacheDir, `overlay-${answer}`);
    if (existsSync(file)) return { supported: answer, reason: readFileSync(file, "utf8") };
  }
  const { final, ...result } = probeOverlay(graphRoot);
  if (!final) return result;
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(cacheDir, `overlay-${result.supported}`), result.reason);
  } catch {
    // An unwritable run root only costs another probe next time.
  }
  return result;
}

/** Errors that say the graph root takes no new directory now (full, read-only), not that overlay cannot work on it. */
const CANNOT_WRITE = new Set(["EROFS", "ENOSPC", "EDQUOT"]);

function probeOverlay(graphRoot: string): OverlaySupport & { final: boolean } {
  if (process.geteuid?.() !== 0) return { supported: false, reason: "overlay mounts need root", final: true };
  let dir: string;
  try {
    mkdirSync(graphRoot, { recursive: true, mode: 0o700 });
    dir = mkdtempSync(join(graphRoot, ".overlay-probe-"));
  } catch (e) {
    if (!CANNOT_WRITE.has((e as NodeJS.ErrnoException).code ?? "")) throw e;
    // A full or read-only graph root cannot hold a probe, but its layers can still be read
    // (docs/robustness.md): the kernel's word is taken, and the probe runs once the root has room.
    const known = readFileSync("/proc/filesystems", "utf8").includes("\toverlay\n");
    return { supported: known, reason: known ? "" : "the kernel has no overlayfs", final: false };
  }
  try {
    for (const sub of ["lower1", "lower2", "upper", "work", "merged"]) mkdirSync(join(dir, sub));
    const failure = probeMount({ kind: "overlay", target: join(dir, "merged"), options: "lowerdir=lower1:lower2,upperdir=upper,workdir=work", cwd: dir });
    if (failure !== undefined) return { supported: false, reason: `a test mount of overlayfs on ${graphRoot} failed: ${failure}`, final: true };
    return { supported: true, reason: "", final: true };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Names of filesystems by statfs magic, as containers-storage prints them. */
const FILESYSTEM_NAMES = new Map<number, string>([
  [0xef53, "extfs"],
  [0x58465342, "xfs"],
  [0x01021994, "tmpfs"],
  [0x9123683e, "btrfs"],
  [0x794c7630, "overlayfs"],
  [0x2fc12fc1, "zfs"],
  [0x6969, "nfs"],
  [0xf2f52010, "f2fs"],
  [0x858458f6, "ramfs"],
  [0x73717368, "squashfs"],
  [0x52654973, "reiserfs"],
  [0xf15f, "ecryptfs"],
  [0x65735546, "fuse"],
]);

/** Filesystems whose directory entries carry the file type (d_type), which overlayfs needs. */
const D_TYPE_FILESYSTEMS = new Set(["extfs", "xfs", "tmpfs", "btrfs", "zfs", "f2fs", "ramfs", "squashfs", "reiserfs", "nfs"]);

function overlayParameter(name: string): boolean {
  try {
    return readFileSync(`/sys/module/overlay/parameters/${name}`, "utf8").trim() === "Y";
  } catch {
    return false;
  }
}

/** True when diff/changes/diffsize against the parent may read the upper dir directly (no FUSE program, no redirect_dir, no metacopy). */
export function nativeDiffPossible(options: OverlayOptions): boolean {
  return options.mountProgram === undefined && !overlayParameter("redirect_dir") && !overlayParameter("metacopy");
}

/** The driver's `status` lines, as containers-storage prints them, for the driver's home at home. */
export function overlayStatus(home: string, options: OverlayOptions): Array<[string, string]> {
  const type = statfsSync(home).type;
  const backing = FILESYSTEM_NAMES.get(type) ?? `unknown (0x${type.toString(16)})`;
  return [
    ["Backing Filesystem", backing],
    ["Supports d_type", String(D_TYPE_FILESYSTEMS.has(backing))],
    ["Native Overlay Diff", String(nativeDiffPossible(options))],
    ["Using metacopy", String(options.mountProgram === undefined && overlayParameter("metacopy"))],
  ];
}
