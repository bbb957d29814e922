/**
 * Containers: a writable layer on an image (or on a mapped top layer of it), a record,
 * and private directories under the graph root and the run root. They are made and removed
 * through the layer lifecycle, so a crash at any point is cleaned up with their layer.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { IdInUseError, ImageUnknownError, NotAContainerError, NotALayerError } from "../errors.ts";
import { type IdMapsRequest, NO_ID_MAPS, resolveMaps } from "../idmap.ts";
import { crashPoint } from "../util/crash-points.ts";
import { unique } from "../util/lists.ts";
import { nowNs } from "../util/time.ts";
import { chosenId } from "./ids.ts";
import { diffSize } from "./layer-diffs.ts";
import { abandonLayer, beginLayer, buildLayer, claimLayer, completeLayer, removeClaimedLayer } from "./layer-lifecycle.ts";
import { findContainer, findImage } from "./lookup.ts";
import { imageLayerForMaps } from "./mapped-layers.ts";
import { checkNamesFree } from "./names.ts";
import type { StoreParts } from "./parts.ts";
import type { ContainerRecord } from "./records.ts";

export interface CreateContainerOptions {
  id?: string;
  names: string[];
  metadata?: string;
  volatile?: boolean;
  /** The maps asked for; an axis not given means none (host IDs), as containers-storage 1.43 takes it. */
  idMaps?: IdMapsRequest;
}

/**
 * Makes a container on the image imageRef names, or, when imageRef is "" (as containers-storage
 * 1.43 takes it), on no image: an empty layer of its own. Its layer goes on the image's top
 * layer, or on a mapped top layer when the maps asked for differ from the top layer's
 * (mapped-layers.ts). The layer's maps are those asked for; an axis not given is that of the
 * layer it goes on. The record keeps the maps asked for, as containers-storage does.
 */
export async function createContainer(parts: StoreParts, imageRef: string, options: CreateContainerOptions): Promise<ContainerRecord> {
  const { catalog } = parts;
  const id = chosenId(options.id);
  const names = unique(options.names);
  const image = imageRef === "" ? undefined : findImage(parts, imageRef);
  if (imageRef !== "" && !image) throw new ImageUnknownError(`locating image with ID "${imageRef}": image not known`);
  parts.tx(() => {
    if (catalog.containerExists(id)) throw new IdInUseError();
    checkNamesFree(parts, "container", names);
  });
  const asked = resolveMaps(options.idMaps, NO_ID_MAPS);
  const parent = image?.topLayer ? await imageLayerForMaps(parts, image, asked) : undefined;
  const layer = beginLayer(parts, { names: [], parent: parent?.id, idMaps: options.idMaps });
  await buildLayer(parts, layer);
  const flags: Record<string, unknown> = { MountLabel: "", ProcessLabel: "" };
  if (options.volatile) flags.Volatile = true;
  try {
    completeLayer(parts, layer.id, () => {
      if (catalog.containerExists(id)) throw new IdInUseError();
      if (image && !image.fromReadOnlyStore && !catalog.imageExists(image.id)) throw new ImageUnknownError(`locating image with ID "${imageRef}": image not known`);
      checkNamesFree(parts, "container", names);
      catalog.insertContainer({
        id,
        names,
        image: image?.id ?? "",
        layer: layer.id,
        metadata: options.metadata ?? "",
        bigData: [],
        createdNs: nowNs(),
        uidMap: asked.uidMap,
        gidMap: asked.gidMap,
        flags,
      });
    });
  } catch (e) {
    await abandonLayer(parts, layer.id).catch(() => {});
    throw e;
  }
  return catalog.getContainer(id)!;
}

/** Where containers' private directories live under a root (the graph root or the run root). */
export function containersHome(parts: StoreParts, base: string): string {
  return join(base, `${parts.driver.name}-containers`);
}

/** A container's private directory under the graph root (data) or run root (run), created 0700 if missing. */
export function containerDir(parts: StoreParts, container: ContainerRecord, where: "data" | "run"): string {
  const base = where === "data" ? parts.options.graphRoot : parts.options.runRoot;
  const dir = join(containersHome(parts, base), container.id, "userdata");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** The size shown by `container`: its layer's diffsize, its data items and the files in its directories. */
export async function containerSize(parts: StoreParts, container: ContainerRecord): Promise<number> {
  let total = await diffSize(parts, container.layer);
  for (const item of container.bigData) total += item.size;
  for (const where of ["data", "run"] as const) total += regularFileBytes(containerDir(parts, container, where));
  return total;
}

export async function deleteContainer(parts: StoreParts, ref: string): Promise<void> {
  const container = findContainer(parts, ref);
  if (!container) throw new NotAContainerError();
  await destroyContainer(parts, container, "whole");
}

/** Removes a container's layer, record and directories ("userdata" only, as `delete` does, or the whole directory). */
export async function destroyContainer(parts: StoreParts, container: ContainerRecord, dirs: "userdata" | "whole"): Promise<void> {
  const stillThere = () => {
    if (!parts.catalog.containerExists(container.id)) throw new NotAContainerError();
  };
  // The layer's 'deleting' mark makes this crash-safe: if this process dies, the next one
  // removes the layer, the container record and the container's directories.
  const claimed = claimLayer(parts, container.layer, stillThere);
  const removeDirs = () => {
    removeContainerDirs(parts, container.id, dirs);
    crashPoint("mid-container-delete");
  };
  if (claimed) return removeClaimedLayer(parts, container.layer, removeDirs);
  // A layer row that is no longer complete is being deleted by another process, container and all.
  if (parts.catalog.layerRowExists(container.layer)) throw new NotAContainerError();
  if (dirs === "userdata") throw new NotALayerError();
  // A container whose layer is gone: its directories, then its record.
  crashPoint("after-delete-mark");
  removeDirs();
  crashPoint("after-content-removed");
  parts.freeingTx(() => {
    stillThere();
    parts.catalog.deleteObject("container", container.id);
  });
}

/** Removes a container's directories under both roots ("userdata" only, as `delete` does, or the whole directory). */
export function removeContainerDirs(parts: StoreParts, id: string, dirs: "userdata" | "whole"): void {
  for (const base of [parts.options.graphRoot, parts.options.runRoot]) {
    const dir = join(containersHome(parts, base), id);
    rmSync(dirs === "whole" ? dir : join(dir, "userdata"), { recursive: true, force: true });
  }
}

/** Total size of the regular files below a directory. */
function regularFileBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}
