/** The kernel's mount table as the Store's recovery and `check` read it, and which of its mounts are layer mounts. */
import { realpathSync } from "node:fs";

export { type KernelMount, kernelMounts } from "../sys/mount-table.ts";
import type { KernelMount } from "../sys/mount-table.ts";

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
