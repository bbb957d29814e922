/**
 * Resolving references (ID, name or unique ID prefix) to records. Layers and images are looked
 * up in the writable store first, then in each read-only store; containers only in the writable one.
 */
import { LayerUnknownError } from "../errors.ts";
import type { Catalog } from "./catalog.ts";
import type { CatalogParts } from "./parts.ts";
import type { ContainerRecord, ImageRecord, LayerRecord, ObjectKind } from "./records.ts";

/** Where a found object lives: the writable catalog, or a read-only store's. */
export interface Located {
  kind: ObjectKind;
  id: string;
  catalog: Catalog;
  readOnly: boolean;
}

/** A layer by exact ID in the writable store, else in a read-only one. */
export function layerById(parts: CatalogParts, id: string): LayerRecord | undefined {
  return parts.roots.firstFound((c) => c.getLayer(id));
}

/** The layer a reference names, or undefined; read-only stores are searched last. */
export function findLayer(parts: CatalogParts, ref: string): LayerRecord | undefined {
  return parts.roots.firstFound((c) => {
    const id = c.resolve("layer", ref);
    return id === undefined ? undefined : c.getLayer(id);
  });
}

/** The layer a reference names; LayerUnknownError when there is none. */
export function requireLayer(parts: CatalogParts, ref: string): LayerRecord {
  const layer = findLayer(parts, ref);
  if (!layer) throw new LayerUnknownError();
  return layer;
}

/** The image a reference names, or undefined; read-only stores are searched last. */
export function findImage(parts: CatalogParts, ref: string): ImageRecord | undefined {
  return parts.roots.firstFound((c) => {
    const id = c.resolve("image", ref);
    return id === undefined ? undefined : c.getImage(id);
  });
}

/** Containers resolve by ID, name, their layer's ID, or unique ID prefix. */
export function findContainer(parts: CatalogParts, ref: string): ContainerRecord | undefined {
  const id = parts.catalog.resolve("container", ref, { byLayer: true });
  return id === undefined ? undefined : parts.catalog.getContainer(id);
}

/** Looks a reference up as layer, then image, then container (docs/cli-contract.md §2.4), read-only stores after the writable one per kind. */
export function findAny(parts: CatalogParts, ref: string): Located | undefined {
  const layer = findLayer(parts, ref);
  if (layer) return { kind: "layer", id: layer.id, catalog: parts.roots.catalogOf(layer), readOnly: layer.fromReadOnlyStore !== undefined };
  const image = findImage(parts, ref);
  if (image) return { kind: "image", id: image.id, catalog: parts.roots.catalogOf(image), readOnly: image.fromReadOnlyStore !== undefined };
  const container = parts.catalog.resolve("container", ref, { byLayer: true });
  if (container !== undefined) return { kind: "container", id: container, catalog: parts.catalog, readOnly: false };
  return undefined;
}
