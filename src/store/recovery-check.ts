/**
 * Whether recovery (recovery.ts) has anything to do, answered at every start without loading
 * it, the driver or the Mounter: so that a store with nothing to recover costs a command one
 * index lookup and, on a driver that mounts, one file test.
 */
import { MOUNTS_ACTIVE_FILE } from "../drivers/driver.ts";
import type { CatalogParts } from "./parts.ts";

/** True when a layer row is unfinished, or counted kernel mounts may need comparing with the kernel's table. */
export async function recoveryNeeded(parts: CatalogParts, driverName: string): Promise<boolean> {
  if (parts.catalog.hasUnfinishedLayers()) return true;
  // vfs "mounts" are directories, never left uncounted nor stale. Any kernel mount is made after
  // the active mark exists (the Mounter makes it first, and removes it when the last counted kernel
  // mount ends or recovery found none): without it, there is nothing to release.
  return driverName !== "vfs" && (await Bun.file(`${parts.options.runRoot}/${MOUNTS_ACTIVE_FILE}`).exists());
}
