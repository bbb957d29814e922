/**
 * Mounting layers (a container's, a layer's, or read-only an image's top layer), through the
 * driver's mount description and the Mounter's counts; copying paths in and out of mounted
 * layers; and what a mapped layer's mount point sits under. Mounting and unmounting load no
 * node: module (the copy and the owners above a mount point do).
 */
import type { CopyEndpoint } from "../archive/copy.ts";
import { LayerUnknownError, PreconditionError, withContext } from "../errors.ts";
import { NO_ID_MAPS, toContainer } from "../idmap.ts";
import { kernelMountPoints } from "../sys/mount-table.ts";
import { pathExists } from "../sys/path-exists.ts";
import { findContainer, findImage, findLayer } from "./lookup.ts";
import type { StoreParts } from "./parts.ts";
import type { LayerRecord } from "./records.ts";
import { contentMissing, vanishedAmong } from "./vanished-content.ts";
import { nodeFs } from "../sys/node-fs.ts";

export interface MountOptions {
  readOnly?: boolean;
  mountLabel?: string;
  options?: string[];
}

/** Host IDs that own the directories above a mount point and that the layer's ID maps do not cover. */
export interface ParentOwners {
  uids: number[];
  gids: number[];
}

/** Mounts a container's layer or a layer (or, read-only, an image's top layer) and returns the mount point. */
export function mount(parts: StoreParts, ref: string, options: MountOptions): string {
  const { catalog, driver, mounter } = parts;
  let layer: LayerRecord | undefined;
  let volatile = false;
  if (options.readOnly) {
    const image = findImage(parts, ref);
    layer = image?.topLayer ? catalog.getLayer(image.topLayer) : undefined;
  }
  if (!layer) {
    const container = findContainer(parts, ref);
    if (container) {
      layer = catalog.getLayer(container.layer);
      volatile = container.flags.Volatile === true;
    } else {
      layer = findLayer(parts, ref);
    }
  }
  if (!layer || layer.fromReadOnlyStore) throw new LayerUnknownError();
  const found = layer;
  // Mounting under the store's write lock: a deletion marks the layer either before (and the
  // mount is refused) or after (and its unmount sees this mount), never in between.
  return parts.locked(() => {
    if (!catalog.getLayer(found.id)) throw new LayerUnknownError();
    const existing = mounter.mountPoint(found.id);
    if (existing !== undefined) return mounter.mount(found.id, { kind: "directory", path: existing });
    // A layer whose directory vanished is refused with one line saying so, not mounted as a missing path or a cryptic mount(8) failure.
    try {
      const spec = driver.mountSpec(found.id, {
        readOnly: options.readOnly ?? false,
        options: options.options ?? [],
        volatile,
        mountLabel: options.mountLabel ?? found.mountLabel,
      });
      if (spec.kind === "directory" && !pathExists(spec.path)) throw contentMissing(parts, found.id);
      return mounter.mount(found.id, spec);
    } catch (e) {
      throw vanishedAmong(parts, [found.id]) ?? e;
    }
  });
}

/**
 * Unmounts kernel mounts at the mount points of the driver's layers that no count accounts for
 * (left by a process killed while mounting, or a FUSE mount whose program died).
 */
export function releaseUncountedLayerMounts(parts: StoreParts): void {
  const { driver, mounter } = parts;
  const points = kernelMountPoints();
  for (const id of driver.listLayerIds()) {
    const point = driver.mountPoint(id);
    if (points.has(point) && mounter.count(id) === 0) mounter.releaseUncounted(point, points);
  }
}

/** The layer a mount-related reference means: container -> its layer, else layer; images optionally. */
function mountedLayerOf(parts: StoreParts, ref: string, allowImage: boolean): { layer: string; viaImage: boolean } {
  const container = findContainer(parts, ref);
  if (container) return { layer: container.layer, viaImage: false };
  const layer = findLayer(parts, ref);
  if (layer) return { layer: layer.id, viaImage: false };
  if (allowImage) {
    const image = findImage(parts, ref);
    if (image?.topLayer) return { layer: image.topLayer, viaImage: true };
  }
  throw new LayerUnknownError();
}

/** Drops one user of a mount (all with force). Returns "unmounted" when it is no longer mounted, "image" for image refs. */
export function unmount(parts: StoreParts, ref: string, force: boolean): "unmounted" | "still-mounted" | "image" {
  const { layer, viaImage } = mountedLayerOf(parts, ref, true);
  const done = parts.mounter.unmount(layer, force);
  if (viaImage) return "image";
  return done ? "unmounted" : "still-mounted";
}

/** The mount count of a container's or layer's layer. */
export function mountCount(parts: StoreParts, ref: string): number {
  return parts.mounter.count(mountedLayerOf(parts, ref, false).layer);
}

/**
 * The host owners of the directories above a mapped layer's mount point that its maps do not
 * cover (layer-parent-owners); errorPrefix starts the error when the layer is not mounted.
 */
export function parentOwners(parts: StoreParts, layer: LayerRecord, errorPrefix: string): ParentOwners {
  if (layer.uidMap.length === 0 && layer.gidMap.length === 0) return { uids: [], gids: [] };
  const mountPoint = parts.mounter.mountPoint(layer.id);
  if (mountPoint === undefined) throw new PreconditionError(`${errorPrefix}: layer is not mounted`);
  const { lstatSync, statSync } = nodeFs();
  const { dirname } = import.meta.require("node:path") as typeof import("node:path");
  const uids = new Set<number>();
  const gids = new Set<number>();
  // Each directory from the mount point's parent up to, not including, "/" (as containers-storage
  // looks), by what it is and, for a symlink, by where it leads.
  for (let dir = dirname(mountPoint); dir !== "/" && dir !== "."; dir = dirname(dir)) {
    for (const st of [statSync(dir), lstatSync(dir)]) {
      if (toContainer(layer.uidMap, st.uid) < 0) uids.add(st.uid);
      if (toContainer(layer.gidMap, st.gid) < 0) gids.add(st.gid);
    }
  }
  const sorted = (s: Set<number>) => [...s].sort((a, b) => a - b);
  return { uids: sorted(uids), gids: sorted(gids) };
}

/** Copies a host path or a path in a layer to a host path or a path in a layer; layers are mounted for the copy. */
export async function copyPath(
  parts: StoreParts,
  from: { layer?: string; path: string },
  to: { layer?: string; path: string },
  chown?: { uid: number; gid: number },
): Promise<void> {
  const { join, resolve: resolvePath } = import.meta.require("node:path") as typeof import("node:path");
  const mountedHere: string[] = [];
  const open = (side: { layer?: string; path: string }): CopyEndpoint => {
    if (side.layer === undefined) return { root: "/", path: resolvePath(side.path), maps: NO_ID_MAPS };
    const layer = findLayer(parts, side.layer);
    if (!layer) throw new LayerUnknownError(`error finding layer "${side.layer}": layer not known`);
    const root = mount(parts, layer.id, {});
    mountedHere.push(layer.id);
    return { root, path: side.path, maps: { uidMap: layer.uidMap, gidMap: layer.gidMap } };
  };
  try {
    const source = open(from);
    const target = open(to);
    try {
      await (await import("../archive/copy.ts")).copyPath(source, target, chown);
    } catch (e) {
      // A host path as it was given (as 1.43 names it), a path in a layer below its mount point.
      const shown = (side: { layer?: string; path: string }, end: CopyEndpoint) => (side.layer === undefined ? side.path : join(end.root, end.path));
      throw withContext(`error copying "${shown(from, source)}" to "${shown(to, target)}"`, e);
    }
  } finally {
    for (const id of mountedHere) parts.mounter.unmount(id, false);
  }
}
