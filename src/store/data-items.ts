/** Named data items (big data) of layers, images and containers: a manifest, a config, anything keyed by name. */
import { ContainerUnknownError, ImageUnknownError, InvalidArgumentError, LayerUnknownError } from "../errors.ts";
import type { Catalog } from "./catalog.ts";
import { sha256Digest } from "./digest.ts";
import type { CatalogParts } from "./parts.ts";
import type { BigDataInfo, ObjectKind } from "./records.ts";

/** The data items of a layer, image or container record. */
export function bigDataItems(parts: CatalogParts, kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }): BigDataInfo[] {
  return parts.roots.catalogOf(record).bigDataOf(kind, record.id);
}

/**
 * Reads a named data item of a layer, image or container record. An image's item is read, as
 * containers-storage 1.43 reads it, from the first store (writable, then read-only) whose image
 * with that ID has it: the writable record add-names makes for a read-only image has none itself.
 */
export function bigData(parts: CatalogParts, kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }, name: string): Uint8Array | undefined {
  if (kind !== "image") return parts.roots.catalogOf(record).getBigData(kind, record.id, name);
  return parts.roots.firstFound((c) => {
    const data = c.getBigData(kind, record.id, name);
    return data ? { data } : undefined;
  })?.data;
}

/** The size and digest of a named data item, found as bigData finds it. */
export function bigDataItem(parts: CatalogParts, kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }, name: string): BigDataInfo | undefined {
  const inStore = (c: Catalog) => c.bigDataOf(kind, record.id).find((item) => item.name === name);
  if (kind !== "image") return inStore(parts.roots.catalogOf(record));
  const found = parts.roots.firstFound(inStore);
  return found && { name: found.name, size: found.size, digest: found.digest };
}

/** Stores a data item in its own transaction (see writeDataItem). */
export function setBigData(parts: CatalogParts, kind: ObjectKind, id: string, name: string, data: Uint8Array): void {
  if (name === "") throw new InvalidArgumentError(`can't set empty name for ${kind} big data item: not a valid name for a big data item`);
  const digest = sha256Digest(data);
  parts.tx(() => writeDataItem(parts, kind, id, name, data, digest));
}

/**
 * Stores a data item inside the caller's transaction, after checking that its owner still
 * exists; image items named manifest* also feed the image's digest (docs/cli-contract.md §3.2.6).
 */
export function writeDataItem(parts: CatalogParts, kind: ObjectKind, id: string, name: string, data: Uint8Array, digest: string): void {
  const { catalog } = parts;
  // The owner was resolved before the data was read; another process may have deleted it since.
  if (kind === "layer" && !catalog.getLayer(id)) throw new LayerUnknownError();
  if (kind === "image" && !catalog.imageExists(id)) throw new ImageUnknownError(`locating image with ID "${id}": image not known`);
  if (kind === "container" && !catalog.containerExists(id)) throw new ContainerUnknownError();
  catalog.setBigData(kind, id, name, data, digest);
  if (kind === "image" && name.startsWith("manifest")) {
    const image = catalog.getImage(id)!;
    if (image.digest === "") catalog.setImageDigest(id, digest);
  }
}
