/**
 * Recovery, run by every command that opens the store for writing: finishes or undoes the work
 * of writers that died (rows they left 'creating' or 'deleting', see layer-lifecycle.ts), then
 * releases mounts that no process counted.
 */
import { unmountPath } from "../drivers/mounter.ts";
import { isTokenAlive } from "../sys/liveness.ts";
import { crashPoint } from "../util/crash-points.ts";
import { removeContainerDirs } from "./containers.ts";
import { dropLayerRow, makeLayerContent, removeLayerContent } from "./layer-lifecycle.ts";
import { canonical, isLayerMount, isUnder, kernelMounts } from "./mount-table.ts";
import type { StoreParts } from "./parts.ts";
import { NOTHING_APPLIED } from "./records.ts";

/**
 * Layers left 'creating' or 'deleting' by a dead process go away (with the container whose
 * layer it was and its directories), except that a layer whose applydiff was interrupted is
 * kept and emptied; then mounts that no process counted are released.
 */
export async function recover(parts: StoreParts): Promise<void> {
  const { catalog } = parts;
  for (const layer of catalog.unfinishedLayers()) {
    if (layer.owner === parts.token || isTokenAlive(layer.owner)) continue;
    const reset = layer.state === "creating" && layer.onInterrupt === "reset";
    const claimed = parts.tx(() => {
      const current = catalog.unfinishedLayers().find((l) => l.id === layer.id);
      if (!current || current.owner !== layer.owner) return false;
      catalog.setLayerState(layer.id, reset ? "creating" : "deleting", parts.token);
      return true;
    });
    if (!claimed) continue;
    crashPoint("after-recovery-claim");
    try {
      await undoInterrupted(parts, layer.id, reset);
    } catch {
      // Best effort: a leftover that cannot be removed now (a busy mount, say) must not make
      // every command fail. The row stays claimed, the next process retries, `check` reports it.
    }
  }
  try {
    releaseUncountedMounts(parts);
  } catch {
    // As above: `check` reports a mount that could not be released.
  }
}

/** Resets a layer whose applydiff was interrupted, or removes a layer (and the container whose layer it was) left half-made or half-deleted. */
async function undoInterrupted(parts: StoreParts, id: string, reset: boolean): Promise<void> {
  if (reset) return resetInterruptedApply(parts, id);
  const container = parts.catalog.containerOfLayer(id);
  await removeLayerContent(parts, id);
  if (container) removeContainerDirs(parts, container, "whole");
  parts.tx(() => dropLayerRow(parts, id));
}

/**
 * Recovers a layer whose applydiff died half-way: the half-applied files are dropped by making
 * the layer empty on its parent again, keeping its record, names and data items. A layer that
 * has children keeps its content (re-making it would cut them off from it), as after a failed
 * apply. Either way nothing of the interrupted tar is recorded.
 */
async function resetInterruptedApply(parts: StoreParts, id: string): Promise<void> {
  const { catalog } = parts;
  const layer = catalog.getLayer(id, true)!;
  if (catalog.childLayerRows(id).length === 0) {
    await removeLayerContent(parts, id);
    await makeLayerContent(parts, layer);
    parts.driver.flushCreated(id);
  }
  parts.tx(() => {
    catalog.clearLayout(id);
    catalog.recordApplied(id, NOTHING_APPLIED);
    catalog.setLayerState(id, "complete", "");
  });
}

/**
 * Releases what a process that died while mounting left behind. Unmounts kernel mounts at
 * layers' mount points that no row counts (the process died after mount(8), before counting
 * it) and drops rows whose kernel mount is gone. Costs one read of the mount table when there
 * is nothing to do.
 */
function releaseUncountedMounts(parts: StoreParts): void {
  const { mounter, driver } = parts;
  const kernel = kernelMounts();
  const layerMounts = kernel.filter(isLayerMount);
  // vfs "mounts" are directories the kernel never lists: none can go stale, and mounts.db stays closed.
  const hasStale = driver.name !== "vfs" && mounter.staleMounts(new Set(kernel.map((m) => m.path))).length > 0;
  if (layerMounts.length === 0 && !hasStale) return;
  const graph = canonical(parts.options.graphRoot);
  const candidates = layerMounts.filter((m) => isUnder(m.path, graph));
  if (candidates.length === 0 && !hasStale) return;
  const mountPoints = new Set(parts.catalog.layerRows().map((r) => canonical(driver.mountPoint(r.id))));
  const ours = candidates.filter((m) => mountPoints.has(m.path));
  if (ours.length === 0 && !hasStale) return;
  mounter.whileLocked((rows) => {
    // Re-read under the lock: a row may have been counted again meanwhile.
    for (const row of mounter.staleMounts()) mounter.unmount(row.layer, true);
    const counted = new Set(rows.filter((r) => r.kernel && r.count > 0).map((r) => canonical(r.path)));
    const present = new Set(kernelMounts().map((m) => m.path));
    for (const mount of ours) if (!counted.has(mount.path) && present.has(mount.path)) unmountPath(mount.path);
  });
}
