/**
 * Picks and builds the driver a store uses. A driver's module (and the archive code and node:
 * modules it imports) is loaded only when a command needs layer content: listing and lookups
 * never load one.
 */
import { NotSupportedError } from "../errors.ts";
import type { Driver } from "./driver.ts";
import type { Mounter } from "./mounter.ts";

export const DRIVER_NAMES = ["overlay", "vfs"] as const;

/** The canonical name of a driver the user asked for (overlay2 is an alias of overlay). */
export function canonicalDriverName(name: string): string {
  return name === "overlay2" ? "overlay" : name;
}

/**
 * The driver a new store gets when none is asked for: overlay where this machine can mount it
 * over the graph root (probed once per run root, docs/cli-contract.md §1.4 auto-detection), else vfs.
 */
export async function defaultDriverName(graphRoot: string, runRoot: string): Promise<string> {
  const { overlaySupport } = await import("./overlay-support.ts");
  return overlaySupport(graphRoot, runRoot).supported ? "overlay" : "vfs";
}

export interface DriverContext {
  graphRoot: string;
  runRoot: string;
  options: string[];
  /** The Mounter: a driver gets from it only the temporary views it may need (LayerViews). */
  mounter: Mounter;
}

/** Builds a driver by name, loading its module; unknown names fail like containers-storage. */
export async function createDriver(name: string, context: DriverContext): Promise<Driver> {
  switch (name) {
    case "vfs": {
      const { VfsDriver, parseVfsOptions } = await import("./vfs.ts");
      return new VfsDriver(context.graphRoot, parseVfsOptions(context.options));
    }
    case "overlay": {
      const [{ OverlayDriver }, { parseOverlayOptions }] = await Promise.all([import("./overlay.ts"), import("./overlay-options.ts")]);
      return new OverlayDriver(context.graphRoot, context.runRoot, parseOverlayOptions(context.options), context.mounter.views(`${context.runRoot}/overlay`));
    }
    default:
      throw new NotSupportedError(`failed to GetDriver graph ${name} ${context.graphRoot}: driver not supported`);
  }
}
