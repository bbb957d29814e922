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

/**
 * The maps a command asks a new layer or container for: an axis left undefined was not given
 * (a layer then inherits its parent's); an empty list means host IDs (--hostuidmap).
 */
export interface IdMapsRequest {
  uidMap?: IdMapping[];
  gidMap?: IdMapping[];
}

/** The requested maps, each axis not given taken from inherited. */
export function resolveMaps(request: IdMapsRequest | undefined, inherited: IdMaps): IdMaps {
  return { uidMap: request?.uidMap ?? inherited.uidMap, gidMap: request?.gidMap ?? inherited.gidMap };
}

/** The host IDs unmappable container IDs become (the kernel's overflow IDs, /proc/sys/kernel/overflow{u,g}id). */
export interface OverflowIds {
  uid: number;
  gid: number;
}

/**
 * Re-owns a host owner from one set of maps to another, as containers-storage 1.43 shifts a
 * layer's files: host -> container through `from` (when it maps anything), then container ->
 * host through `to` (when it maps anything), where a container ID `to` lacks becomes the
 * overflow ID. An owner `from` cannot map gives undefined (the shift must fail), except 0:0 (a
 * parent that should have been mapped and was not), which is taken as container root.
 */
export function shiftOwner(from: IdMaps, to: IdMaps, uid: number, gid: number, overflow: OverflowIds): { uid: number; gid: number } | undefined {
  let cuid = uid;
  let cgid = gid;
  if (!isIdentity(from)) {
    cuid = toContainer(from.uidMap, uid);
    cgid = toContainer(from.gidMap, gid);
    if (cuid < 0 || cgid < 0) {
      if (uid !== 0 || gid !== 0) return undefined;
      cuid = 0;
      cgid = 0;
    }
  }
  if (isIdentity(to)) return { uid: cuid, gid: cgid };
  const huid = toHost(to.uidMap, cuid);
  const hgid = toHost(to.gidMap, cgid);
  return { uid: huid < 0 ? overflow.uid : huid, gid: hgid < 0 ? overflow.gid : hgid };
}

/**
 * The host owner of container root under maps, which a new layer's top directory gets: as in
 * containers-storage, a map of one single ID gives that ID, and a map without container ID 0
 * leaves the owner to the process (0 here).
 */
export function rootOwner(maps: IdMaps): { uid: number; gid: number } {
  const root = (map: IdMapping[]) => (map.length === 1 && map[0]!.size === 1 ? map[0]!.hostId : Math.max(toHost(map, 0), 0));
  return { uid: root(maps.uidMap), gid: root(maps.gidMap) };
}
