/** The kernel's mount table as the Store's recovery and `check` read it, and which of its mounts are layer mounts. */
import { readFileSync, realpathSync } from "node:fs";

export interface KernelMount {
  path: string;
  fsType: string;
  /** The path inside the mounted filesystem that appears at the mount point ("/" unless a bind mount). */
  root: string;
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The kernel's mount table for this process's mount namespace. */
export function kernelMounts(): KernelMount[] {
  const mounts: KernelMount[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    const separator = fields.indexOf("-");
    if (separator < 0 || fields.length < separator + 2) continue;
    mounts.push({ root: unescapeMountField(fields[3]!), path: unescapeMountField(fields[4]!), fsType: fields[separator + 1]! });
  }
  return mounts;
}

/** The path with symlinks resolved, or the path itself when it cannot be resolved. */
export function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function isUnder(path: string, dir: string): boolean {
  return path.startsWith(`${dir}/`);
}

/** Layer mounts the driver makes: overlayfs (or a FUSE overlay) mounted fresh, not bind mounts of a directory. */
export function isLayerMount(mount: KernelMount): boolean {
  return (mount.fsType === "overlay" || mount.fsType.startsWith("fuse.")) && mount.root === "/";
}
