/** User and group ID mappings between a container's view and the host (docs/cli-contract.md §5). */

/** One range: container IDs [containerId, containerId+size) are host IDs [hostId, hostId+size). */
export interface IdMapping {
  containerId: number;
  hostId: number;
  size: number;
}

/** The pair of maps a layer or container carries; empty lists mean "no mapping". */
export interface IdMaps {
  uidMap: IdMapping[];
  gidMap: IdMapping[];
}

export const NO_ID_MAPS: IdMaps = Object.freeze({ uidMap: [], gidMap: [] }) as IdMaps;

/** True when neither map has a range. */
export function isIdentity(maps: IdMaps): boolean {
  return maps.uidMap.length === 0 && maps.gidMap.length === 0;
}

/** Container ID -> host ID; unmapped IDs (outside every range) are returned unchanged when the map is empty, else -1. */
export function toHost(map: IdMapping[], id: number): number {
  if (map.length === 0) return id;
  for (const r of map) if (id >= r.containerId && id < r.containerId + r.size) return r.hostId + (id - r.containerId);
  return -1;
}

/** Host ID -> container ID; the inverse of toHost. */
export function toContainer(map: IdMapping[], id: number): number {
  if (map.length === 0) return id;
  for (const r of map) if (id >= r.hostId && id < r.hostId + r.size) return r.containerId + (id - r.hostId);
  return -1;
}

/** Two maps are equal when they have the same ranges in the same order. */
export function sameMaps(a: IdMaps, b: IdMaps): boolean {
  const eq = (x: IdMapping[], y: IdMapping[]) =>
    x.length === y.length && x.every((r, i) => r.containerId === y[i]!.containerId && r.hostId === y[i]!.hostId && r.size === y[i]!.size);
  return eq(a.uidMap, b.uidMap) && eq(a.gidMap, b.gidMap);
}
