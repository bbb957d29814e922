/**
 * Store records as containers-storage prints them in JSON (docs/cli-contract.md §2.7): fixed key order,
 * "omit if empty" keys left out, map-shaped values with byte-sorted keys.
 */
import { formatTimestamp, sortedRecord } from "../cli/format.ts";
import type { IdMapping } from "../idmap.ts";
import type { BigDataInfo, ContainerRecord, ImageRecord, LayerRecord } from "../store/records.ts";

type Json = Record<string, unknown>;

/** Adds key only when value is non-empty (non-empty string/array/object, non-zero number, true). */
function put(out: Json, key: string, value: unknown): void {
  if (value === undefined || value === null || value === "" || value === 0 || value === false) return;
  if (Array.isArray(value) && value.length === 0) return;
  if (typeof value === "object" && !Array.isArray(value) && Object.keys(value as object).length === 0) return;
  out[key] = value;
}

function mapsJson(map: IdMapping[]) {
  return map.map((r) => ({ container_id: r.containerId, host_id: r.hostId, size: r.size }));
}

/** Flags as a byte-ordered record; undefined (left out) when there are none, as for most records. */
function sortedFlags(flags: Record<string, unknown>) {
  const entries = Object.entries(flags);
  return entries.length === 0 ? undefined : sortedRecord(entries);
}

export function layerJson(layer: LayerRecord): Json {
  const out: Json = { id: layer.id };
  put(out, "names", layer.names);
  put(out, "parent", layer.parent);
  put(out, "metadata", layer.metadata);
  put(out, "mountlabel", layer.mountLabel);
  out.created = formatTimestamp(layer.createdNs);
  put(out, "compressed-diff-digest", layer.compressedDigest);
  put(out, "compressed-size", layer.compressedSize);
  put(out, "diff-digest", layer.diffDigest);
  put(out, "diff-size", layer.diffSize);
  put(out, "compression", layer.compression);
  put(out, "uidset", layer.uidset);
  put(out, "gidset", layer.gidset);
  put(out, "flags", sortedFlags(layer.flags));
  put(out, "uidmap", mapsJson(layer.uidMap));
  put(out, "gidmap", mapsJson(layer.gidMap));
  put(out, "big-data-names", layer.bigDataNames);
  return out;
}

function bigDataJson(out: Json, items: BigDataInfo[]): void {
  put(out, "big-data-names", items.map((i) => i.name));
  put(out, "big-data-sizes", sortedRecord(items.map((i) => [i.name, i.size])));
  put(out, "big-data-digests", sortedRecord(items.map((i) => [i.name, i.digest])));
}

export function imageJson(image: ImageRecord): Json {
  const out: Json = { id: image.id };
  put(out, "digest", image.digest);
  put(out, "names", image.names);
  put(out, "names-history", image.namesHistory);
  put(out, "layer", image.topLayer);
  put(out, "mapped-layers", image.mappedLayers);
  put(out, "metadata", image.metadata);
  bigDataJson(out, image.bigData);
  out.created = formatTimestamp(image.createdNs);
  put(out, "flags", sortedFlags(image.flags));
  return out;
}

export function containerJson(container: ContainerRecord): Json {
  const out: Json = { id: container.id };
  put(out, "names", container.names);
  out.image = container.image;
  out.layer = container.layer;
  put(out, "metadata", container.metadata);
  bigDataJson(out, container.bigData);
  out.created = formatTimestamp(container.createdNs);
  put(out, "uidmap", mapsJson(container.uidMap));
  put(out, "gidmap", mapsJson(container.gidMap));
  put(out, "flags", sortedFlags(container.flags));
  return out;
}
