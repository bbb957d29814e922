/** Picks and builds the driver a store uses. */
import { InitError } from "../errors.ts";
import type { Driver } from "./driver.ts";
import type { Mounter } from "./mounter.ts";
import { VfsDriver, parseVfsOptions } from "./vfs.ts";

export const DRIVER_NAMES = ["overlay", "vfs"] as const;

/** The canonical name of a driver the user asked for (overlay2 is an alias of overlay). */
export function canonicalDriverName(name: string): string {
  return name === "overlay2" ? "overlay" : name;
}

/** The driver a new store gets when none is asked for. */
export function defaultDriverName(): string {
  return "vfs";
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
    default:
      throw new InitError(`failed to GetDriver graph ${name} ${context.graphRoot}: driver not supported`);
  }
}
