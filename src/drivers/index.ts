/** Picks and builds the driver a store uses. */
import { NotSupportedError } from "../errors.ts";
import type { Driver } from "./driver.ts";
import type { Mounter } from "./mounter.ts";
import { OverlayDriver, overlaySupport, parseOverlayOptions } from "./overlay.ts";
import { VfsDriver, parseVfsOptions } from "./vfs.ts";

export const DRIVER_NAMES = ["overlay", "vfs"] as const;

/** The canonical name of a driver the user asked for (overlay2 is an alias of overlay). */
export function canonicalDriverName(name: string): string {
  return name === "overlay2" ? "overlay" : name;
}

/**
 * The driver a new store gets when none is asked for: overlay where this machine can mount it
 * over the graph root (probed once per run root, docs/cli-contract.md §1.4 auto-detection), else vfs.
 */
export function defaultDriverName(graphRoot: string, runRoot: string): string {
  return overlaySupport(graphRoot, runRoot).supported ? "overlay" : "vfs";
}

export interface DriverContext {
  graphRoot: string;
  runRoot: string;
  options: string[];
  mounter: Mounter;
}

/** Builds a driver by name; unknown names fail like containers-storage. */
export function createDriver(name: string, context: DriverContext): Driver {
  switch (name) {
    case "vfs":
      return new VfsDriver(context.graphRoot, parseVfsOptions(context.options));
    case "overlay":
      return new OverlayDriver(context.graphRoot, context.runRoot, parseOverlayOptions(context.options), context.mounter);
    default:
      throw new NotSupportedError(`failed to GetDriver graph ${name} ${context.graphRoot}: driver not supported`);
  }
}
