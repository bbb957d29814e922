/**
 * Images: a top layer, metadata, names and data items. Creating one is a single transaction
 * (insertImage), so that the coming image transports (src/transports/) can hand over a whole
 * image atomically: import its layers with importLayer (each crash-safe on its own), then in
 * one parts.tx call insertImage and writeDataItem (data-items.ts) for the manifest, config and
 * signatures — `importImage(plan)` below is that sequence; nobody sees half an image.
 */
import { IdInUseError, ImageInUseError, LayerUnknownError, NotAnImageError, withContext } from "../errors.ts";
import { unique } from "../util/lists.ts";
import { nowNs } from "../util/time.ts";
import { writeDataItem } from "./data-items.ts";
import { sha256Digest, validateDigest } from "./digest.ts";
import { chosenId, validateId } from "./ids.ts";
import { diffSize } from "./layer-diffs.ts";
import { claimCheckedLayers, removeClaimedLayer } from "./layer-lifecycle.ts";
import { findImage, findLayer, layerById } from "./lookup.ts";
import { checkNamesFree } from "./names.ts";
import type { CatalogParts, StoreParts } from "./parts.ts";
import type { ImageRecord } from "./records.ts";

export interface CreateImageOptions {
  id?: string;
  names: string[];
  /** The top layer's reference; undefined or "" (as containers-storage 1.43 takes it) for an image with no layer. */
  topLayer?: string;
  metadata?: string;
  digest?: string;
}

/** What `importImage` makes: an image, its names and data items, its digest and metadata. */
export interface ImageImportPlan {
  id: string;
  /** "" for an image without layers (a manifest with none, as `umoci new` makes). */
  topLayer: string;
  names: string[];
  /** The manifest digest. */
  digest: string;
  metadata: string;
  /** Data items in the order they are stored: [name, bytes]. */
  bigData: Array<[string, Uint8Array]>;
}

/** The result of deleting one image: the layers it took with it. */
export interface ImageDeletion {
  deletedLayers: string[];
}

/** create-image: checks and inserts the record in one transaction. */
export function createImage(parts: CatalogParts, options: CreateImageOptions): ImageRecord {
  const id = chosenId(options.id);
  if (options.digest !== undefined && options.digest !== "") {
    try {
      validateDigest(options.digest);
    } catch (e) {
      throw withContext(`validating digests for new image: validating image digest "${options.digest}"`, e);
    }
  }
  const names = unique(options.names);
  return parts.tx(() => insertImage(parts, id, names, options));
}

/** Inserts an image record inside the caller's transaction after checking its top layer, ID and names (all validated by the caller). */
export function insertImage(parts: CatalogParts, id: string, names: string[], options: Omit<CreateImageOptions, "id" | "names">): ImageRecord {
  const { catalog } = parts;
  let topLayer = "";
  if (options.topLayer) {
    const layer = findLayer(parts, options.topLayer);
    if (!layer) throw new LayerUnknownError();
    topLayer = layer.id;
  }
  if (catalog.imageExists(id)) throw new IdInUseError(`an image with ID "${id}" already exists: that ID is already in use`);
  checkNamesFree(parts, "image", names);
  catalog.insertImage({
    id,
    digest: options.digest ?? "",
    names,
    namesHistory: [],
    topLayer,
    mappedLayers: [],
    metadata: options.metadata ?? "",
    bigData: [],
    createdNs: nowNs(),
    flags: {},
  });
  return catalog.getImage(id)!;
}

/**
 * Creates an image with its names, data items, digest and metadata in one transaction (as a
 * pull ends), or, when an image with the ID exists, adds the names and items to it. Names move
 * from whichever other image held them, as containers/image's storage destination moves them.
 */
export function importImage(parts: CatalogParts, plan: ImageImportPlan): ImageRecord {
  const { catalog } = parts;
  const id = validateId(plan.id);
  validateDigest(plan.digest);
  const names = unique(plan.names);
  const items = plan.bigData.map(([name, data]) => ({ name, data, digest: sha256Digest(data) }));
  return parts.tx(() => {
    const topLayer = plan.topLayer === "" ? "" : catalog.getLayer(plan.topLayer)?.id;
    if (topLayer === undefined) throw new LayerUnknownError();
    const existing = catalog.getImage(id);
    if (!existing) {
      catalog.insertImage({ id, digest: plan.digest, names: [], namesHistory: [], topLayer, mappedLayers: [], metadata: plan.metadata, bigData: [], createdNs: nowNs(), flags: {} });
    } else if (existing.topLayer !== topLayer) {
      throw new IdInUseError(`an image with ID "${id}" already exists on another top layer: that ID is already in use`);
    }
    for (const item of items) writeDataItem(parts, "image", id, item.name, item.data, item.digest);
    const image = catalog.getImage(id)!;
    catalog.setNames("image", id, unique([...image.names, ...names]));
    if (names.length > 0) catalog.setNamesHistory(id, unique([...[...names].reverse(), ...image.namesHistory]));
    return catalog.getImage(id)!;
  });
}

/** The image's digest list: its digest, then the distinct digests of manifest* items. */
export function imageDigests(image: ImageRecord): string[] {
  const digests = image.digest ? [image.digest] : [];
  for (const item of image.bigData) if (item.name.startsWith("manifest")) digests.push(item.digest);
  return unique(digests);
}

export function imagesByDigest(parts: CatalogParts, digest: string): ImageRecord[] {
  try {
    validateDigest(digest);
  } catch (e) {
    throw withContext(digest, e);
  }
  return parts.roots.listEverywhere((catalog) => catalog.listImages()).filter((image) => imageDigests(image).includes(digest));
}

/**
 * The size shown by `image`: every layer reachable from the top layers plus the data items. As
 * in containers-storage 1.43 it is the size of the record found by the image's ID, the writable
 * store's first (a record add-names made for a read-only image has no data items).
 */
export async function imageSize(parts: StoreParts, shown: ImageRecord): Promise<number> {
  const image = parts.roots.firstFound((c) => c.getImage(shown.id)) ?? shown;
  let total = image.bigData.reduce((sum, item) => sum + item.size, 0);
  const seen = new Set<string>();
  const pending = [image.topLayer, ...image.mappedLayers].filter((l) => l !== "");
  while (pending.length > 0) {
    const id = pending.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const layer = layerById(parts, id);
    if (!layer) throw new LayerUnknownError(`locating layer with ID "${id}": layer not known`);
    total += layer.diffDigest ? layer.diffSize : await diffSize(parts, id);
    if (layer.parent) pending.push(layer.parent);
  }
  return total;
}

/** delete-image: the image and the layers only it used; with test, only computes which layers would go. */
export async function deleteImage(parts: StoreParts, ref: string, test: boolean): Promise<ImageDeletion> {
  const decide = () => {
    const image = findImage(parts, ref);
    if (!image || image.fromReadOnlyStore) throw new NotAnImageError();
    const user = parts.catalog.containersUsingImage(image.id)[0];
    if (user) throw new ImageInUseError(`image used by ${user}: image is in use by a container`);
    return { image, removable: layersOnlyUsedBy(parts, image) };
  };
  if (test) return { deletedLayers: decide().removable };
  // Deciding, dropping the image and claiming its layers happen in one transaction, so that no
  // container or child layer can start using them in between.
  const removable = parts.freeingTx(() => {
    const { image, removable } = decide();
    parts.catalog.deleteObject("image", image.id);
    claimCheckedLayers(parts, removable);
    return removable;
  });
  for (const id of removable) await removeClaimedLayer(parts, id);
  return { deletedLayers: removable };
}

/** Drops an image's record only (`delete`, `wipe`); false when it was gone already. */
export function deleteImageRecord(parts: CatalogParts, id: string): boolean {
  return parts.freeingTx(() => {
    if (!parts.catalog.imageExists(id)) return false;
    parts.catalog.deleteObject("image", id);
    return true;
  });
}

function layersOnlyUsedBy(parts: CatalogParts, image: ImageRecord): string[] {
  const { catalog } = parts;
  const removing = new Set<string>();
  const usedElsewhere = (id: string) =>
    catalog.containerOfLayer(id) !== undefined ||
    catalog.imagesUsingLayer(id).some((other) => other !== image.id) ||
    catalog.childLayerRows(id).some((child) => !removing.has(child));
  const result: string[] = [];
  for (const mapped of image.mappedLayers) {
    if (!usedElsewhere(mapped)) {
      removing.add(mapped);
      result.push(mapped);
    }
  }
  let current = image.topLayer ? catalog.getLayer(image.topLayer) : undefined;
  while (current && !usedElsewhere(current.id)) {
    removing.add(current.id);
    result.push(current.id);
    current = current.parent ? catalog.getLayer(current.parent) : undefined;
  }
  return result;
}
