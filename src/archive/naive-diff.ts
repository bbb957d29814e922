/**
 * The generic comparison any driver can offer: changes, their size and a layer tar, found by
 * walking two full trees (the reference, or none for an empty tree, and the layer's). Drivers
 * that know their own changes (overlay's upper dir) use this only when they cannot.
 */
import type { IdMaps } from "../idmap.ts";
import { compareTrees, sizeOfChanges } from "./changes.ts";
import { exportChanges } from "./export.ts";
import type { ByteSink, Change } from "./types.ts";

/** ID maps of the two trees compared: owners are compared as container IDs, each tree's through its own maps. */
export interface ComparedMaps {
  from: IdMaps;
  layer: IdMaps;
}

/** The changes that turn tree `from` (null: an empty tree) into tree `layer`. */
export function naiveChanges(from: string | null, layer: string, maps: ComparedMaps): Promise<Change[]> {
  return compareTrees(from, layer, { lower: maps.from, upper: maps.layer });
}

/** The size of what a layer tar of those changes would hold. */
export async function naiveDiffSize(from: string | null, layer: string, maps: ComparedMaps): Promise<number> {
  return sizeOfChanges(layer, await naiveChanges(from, layer, maps));
}

/** Writes those changes as an uncompressed layer tar (owners as the layer's container IDs). */
export async function naiveDiff(from: string | null, layer: string, sink: ByteSink, maps: ComparedMaps): Promise<void> {
  await exportChanges(layer, await naiveChanges(from, layer, maps), sink, maps.layer);
}
