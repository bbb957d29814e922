/**
 * Recovery, run by every command that opens the store for writing: finishes or undoes the work
 * of writers that died (rows they left 'creating' or 'deleting', see layer-lifecycle.ts), then
 * releases mounts that no process counted.
 */
import { unmountPath } from "../drivers/mounter.ts";
import { IoError, asStorageError, messageOf } from "../errors.ts";
import { isTokenAlive } from "../sys/liveness.ts";
import { crashPoint } from "../util/crash-points.ts";
import { removeContainerDirs } from "./containers.ts";
import { dropLayerRow, removeLayerContent, resetLayer } from "./layer-lifecycle.ts";
import { canonical, isLayerMount, isUnder, kernelMounts } from "./mount-table.ts";
import type { StoreParts } from "./parts.ts";
import { isOutOfSpace } from "./read-only-database.ts";

/**
 * Layers left 'creating' or 'deleting' by a dead process go away (with the container whose
 * layer it was and its directories), except that a layer whose applydiff was interrupted is
 * kept and emptied; then mounts that no process counted are released. When the graph root
 * takes no writes (read-only, or full even after giving up the space reserve), the layers
 * stay as they are and the line to say so is returned: a later command finishes the work.
 */
export async function recover(parts: StoreParts): Promise<string | undefined> {
  const { catalog } = parts;
  const orphaned = catalog.unfinishedLayers().filter((layer) => layer.owner !== parts.token && !isTokenAlive(layer.owner));
  for (const layer of orphaned) {
    const reset = layer.state === "creating" && layer.onInterrupt === "reset";
    let claimed: boolean;
    try {
      claimed = await claimOrphan(parts, layer, reset);
    } catch (e) {
      if (!(asStorageError(e) instanceof IoError)) throw e;
      return `cleaning up after interrupted commands (${orphaned.length} layer${orphaned.length === 1 ? "" : "s"}) must wait for a command that can write: ${messageOf(e)}`;
    }
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
  return undefined;
}

/**
 * Claims a dead process's layer for this one; false when another process claimed it first. A
 * layer that is going anyway whose claim finds no room (the dead process was deleting it and
 * had used up the space reserve) loses its content first: only dead processes worked on it,
 * and removing it twice is harmless. Then the claim has the space it needs.
 */
async function claimOrphan(parts: StoreParts, layer: { id: string; owner: string }, reset: boolean): Promise<boolean> {
  const { catalog } = parts;
  const claim = () =>
    parts.freeingTx(() => {
      const current = catalog.unfinishedLayers().find((l) => l.id === layer.id);
      if (!current || current.owner !== layer.owner) return false;
      catalog.setLayerState(layer.id, reset ? "creating" : "deleting", parts.token);
      return true;
    });
  try {
    return claim();
  } catch (e) {
    if (reset || parts.readOnly || !isOutOfSpace(e)) throw e;
    await removeLayerContent(parts, layer.id);
    return claim();
  }
}

/** Resets a layer whose applydiff was interrupted, or removes a layer (and the container whose layer it was) left half-made or half-deleted. */
async function undoInterrupted(parts: StoreParts, id: string, reset: boolean): Promise<void> {
  if (reset) return resetLayer(parts, id);
  const container = parts.catalog.containerOfLayer(id);
  await removeLayerContent(parts, id);
  if (container) removeContainerDirs(parts, container, "whole");
  parts.freeingTx(() => dropLayerRow(parts, id));
}

/**
 * Releases what a process that died while mounting or unmounting left behind, when it left the
 * change mark (mounter.ts): unmounts kernel mounts at layers' mount points that no row counts
 * (it died after mount(8), before counting it) and drops rows whose kernel mount is gone (it
 * died after umount(8)). All of it under the counts' lock, so that no mount is under way while
 * the table is compared, and the mark is removed only then.
 */
function releaseUncountedMounts(parts: StoreParts): void {
  const { mounter, driver } = parts;
  // vfs "mounts" are directories the kernel never lists, and mounts.db stays closed.
  if (driver.name === "vfs" || !mounter.changeMarked) return;
  const graph = canonical(parts.options.graphRoot);
  mounter.whileLocked((rows) => {
    const kernel = kernelMounts();
    for (const row of mounter.staleMounts(new Set(kernel.map((m) => m.path)))) mounter.unmount(row.layer, true);
    const candidates = kernel.filter((m) => isLayerMount(m) && isUnder(m.path, graph));
    if (candidates.length > 0) {
      const mountPoints = new Set(parts.catalog.layerRows().map((r) => canonical(driver.mountPoint(r.id))));
      const counted = new Set(rows.filter((r) => r.kernel && r.count > 0).map((r) => canonical(r.path)));
      for (const mount of candidates) if (mountPoints.has(mount.path) && !counted.has(mount.path)) unmountPath(mount.path);
    }
    mounter.forgetChangeMark();
  });
}
