/** Picks and builds the driver a store uses. */
import { join } from "node:path";
import { NotSupportedError } from "../errors.ts";
import type { Driver } from "./driver.ts";
import type { Mounter } from "./mounter.ts";
import { OverlayDriver } from "./overlay.ts";
import { parseOverlayOptions } from "./overlay-options.ts";
import { overlaySupport } from "./overlay-support.ts";
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
  /** The Mounter: a driver gets from it only the temporary views it may need (LayerViews). */
  mounter: Mounter;
}

/** Builds a driver by name; unknown names fail like containers-storage. */
export function createDriver(name: string, context: DriverContext): Driver {
  switch (name) {
    case "vfs":
      return new VfsDriver(context.graphRoot, parseVfsOptions(context.options));
    case "overlay":
      return new OverlayDriver(context.graphRoot, context.runRoot, parseOverlayOptions(context.options), context.mounter.views(join(context.runRoot, "overlay")));
    default:
      throw new NotSupportedError(`failed to GetDriver graph ${name} ${context.graphRoot}: driver not supported`);
  }
}
