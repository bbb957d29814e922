/**
 * Whether recovery (recovery.ts) has anything to do, answered at every start without loading
 * it, the driver or the Mounter: so that a store with nothing to recover costs a command one
 * index lookup and, on a driver that mounts, one file test.
 */
import { MOUNT_CHANGE_MARK } from "../drivers/driver.ts";
import { pathExists } from "../sys/path-exists.ts";
import type { CatalogParts } from "./parts.ts";

/** True when a layer row is unfinished, or a kernel mount or unmount was left half done. */
export function recoveryNeeded(parts: CatalogParts, driverName: string): boolean {
  if (parts.catalog.hasUnfinishedLayers()) return true;
  // vfs "mounts" are directories, never left uncounted. Every kernel mount and unmount happens
  // while the change mark exists (the Mounter makes it first and removes it once the count is
  // committed): without it, every kernel mount is counted and there is nothing to release, even
  // while layers are mounted.
  return driverName !== "vfs" && pathExists(`${parts.options.runRoot}/${MOUNT_CHANGE_MARK}`);
}
