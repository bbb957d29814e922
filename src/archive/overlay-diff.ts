/**
 * Reads an overlay layer's own directory (its upper dir, `diff/`) natively, without mounting
 * or comparing whole trees: its changes against the layers below (docs/cli-contract.md §3.7.3), its
 * size (§3.7.4) and its diff tar with overlay whiteouts turned back into AUFS ones (§4.4).
 *
 * Overlay stores a deletion as a character device 0:0 and a replaced directory as a directory
 * with the xattr trusted.overlay.opaque=y. Everything else in the upper dir is new or changed
 * content, so only its paths need looking up in the lower layers.
 */
import { lstatSync, readdirSync, type BigIntStats, type Dirent } from "node:fs";
import type { IdMaps } from "../idmap.ts";
import { getXattr, listXattrs } from "../sys/libc.ts";
import { metadataDiffers } from "./changes.ts";
import { compareBytes } from "../util/byte-order.ts";
import { TreeTarWriter, entryFromStat } from "./export.ts";
import { ChangeKind, type ByteSink, type Change, type TarEntry } from "./types.ts";
import { OPAQUE_MARKER, WHITEOUT_PREFIX } from "./whiteouts.ts";

/** The xattr overlayfs marks an opaque directory with (value "y"). */
export const OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque";
/** overlayfs keeps its own bookkeeping in these xattrs; the merged view never shows them. */
const OVERLAY_PRIVATE_XATTR_PREFIX = "trusted.overlay.";

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException)?.code;
}

function joinPath(root: string, rel: string): string {
  return rel === "" ? root : `${root}/${rel}`;
}

function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true });
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") return null;
    throw error;
  }
}

/** True for an overlay whiteout: a character device with device number 0:0. */
export function isWhiteout(stats: BigIntStats): boolean {
  return stats.isCharacterDevice() && stats.rdev === 0n;
}

/** True when the directory at path is marked opaque. */
export function isOpaqueDirectory(path: string): boolean {
  const value = getXattr(path, OVERLAY_OPAQUE_XATTR);
  return value !== null && value.length === 1 && value[0] === 0x79;
}

function sortedEntries(path: string): Dirent[] {
  return readdirSync(path, { withFileTypes: true }).sort((a, b) => compareBytes(a.name, b.name));
}

/**
 * The changes of an overlay layer against the merged view of its lower layers (nearest
 * first), with exactly the naive comparison's rules and order (see compareTrees): only paths
 * present in the upper dir are looked at, each looked up in the lower layers.
 */
export function overlayChanges(upper: string, lowers: string[], maps: IdMaps): Change[] {
  const walker = new UpperWalker(upper, lowers, maps);
  walker.directory("", walker.rootLayers(), true, false);
  return walker.changes;
}

class UpperWalker {
  readonly changes: Change[] = [];

  constructor(
    private readonly upper: string,
    private readonly lowers: string[],
    private readonly maps: IdMaps,
  ) {}

  /** Indices of the lower layers whose root is visible: down to the first opaque root. */
  rootLayers(): number[] {
    const layers: number[] = [];
    for (let i = 0; i < this.lowers.length; i++) {
      layers.push(i);
      if (isOpaqueDirectory(this.lowers[i]!)) break;
    }
    return layers;
  }

  /**
   * Records the changes below the upper directory rel. lowerLayers are the lower layers whose
   * directory rel makes up the merged lower directory (none when lower has no directory there);
   * hidden says the merged upper directory shows nothing of the lower one (an opaque ancestor).
   */
  directory(rel: string, lowerLayers: number[], reported: boolean, hidden: boolean): void {
    const start = this.changes.length;
    const upperPath = joinPath(this.upper, rel);
    const lowerNames = this.lowerChildren(rel, lowerLayers);
    const opaque = hidden || (lowerNames.size > 0 && isOpaqueDirectory(upperPath));
    const present = new Set<string>();
    const whiteouts: string[] = [];
    for (const child of sortedEntries(upperPath)) {
      const childRel = rel === "" ? child.name : `${rel}/${child.name}`;
      if (child.isCharacterDevice() && isWhiteout(lstatSync(joinPath(this.upper, childRel), { bigint: true }))) {
        whiteouts.push(child.name);
        continue;
      }
      present.add(child.name);
      const provider = lowerNames.get(child.name);
      if (provider === undefined) {
        this.changes.push({ path: `/${childRel}`, kind: ChangeKind.Add });
        if (child.isDirectory()) this.directory(childRel, [], true, false);
        continue;
      }
      const upperStats = lstatSync(joinPath(this.upper, childRel), { bigint: true });
      const lowerStats = lstatSync(joinPath(this.lowers[provider]!, childRel), { bigint: true });
      const changed = this.differ(lowerStats, upperStats, joinPath(this.lowers[provider]!, childRel), joinPath(this.upper, childRel));
      if (changed) this.changes.push({ path: `/${childRel}`, kind: ChangeKind.Modify });
      if (upperStats.isDirectory()) {
        const below = lowerStats.isDirectory() ? this.childLayers(lowerLayers, provider, childRel) : [];
        this.directory(childRel, below, changed, opaque);
      }
    }
    const deleted = opaque ? [...lowerNames.keys()].filter((name) => !present.has(name)) : whiteouts.filter((name) => lowerNames.has(name));
    for (const name of deleted.sort(compareBytes)) this.changes.push({ path: `/${rel === "" ? name : `${rel}/${name}`}`, kind: ChangeKind.Delete });
    if (!reported && this.changes.length > start) this.changes.splice(start, 0, { path: `/${rel}`, kind: ChangeKind.Modify });
  }

  /** Names in the merged lower directory rel, each with the index of the layer that provides it. */
  private lowerChildren(rel: string, layers: number[]): Map<string, number> {
    const names = new Map<string, number>();
    const hidden = new Set<string>();
    for (const layer of layers) {
      let entries: Dirent[];
      try {
        entries = readdirSync(joinPath(this.lowers[layer]!, rel), { withFileTypes: true });
      } catch (error) {
        const code = errorCode(error);
        if (code === "ENOENT" || code === "ENOTDIR") continue;
        throw error;
      }
      for (const entry of entries) {
        if (names.has(entry.name) || hidden.has(entry.name)) continue;
        if (entry.isCharacterDevice() && isWhiteout(lstatSync(joinPath(this.lowers[layer]!, rel === "" ? entry.name : `${rel}/${entry.name}`), { bigint: true }))) {
          hidden.add(entry.name);
        } else {
          names.set(entry.name, layer);
        }
      }
    }
    return names;
  }

  /** The layers (from the providing one down) whose directory childRel merges into the lower view. */
  private childLayers(parentLayers: number[], provider: number, childRel: string): number[] {
    const layers: number[] = [];
    for (const layer of parentLayers) {
      if (layer < provider) continue;
      const path = joinPath(this.lowers[layer]!, childRel);
      const stats = lstatOrNull(path);
      if (stats === null) continue;
      if (!stats.isDirectory()) break;
      layers.push(layer);
      if (isOpaqueDirectory(path)) break;
    }
    return layers;
  }

  /** The §3.7.3 "different" rule, ignoring overlayfs's private xattrs. */
  private differ(lower: BigIntStats, upper: BigIntStats, lowerPath: string, upperPath: string): boolean {
    return metadataDiffers(lower, upper, { lower: this.maps, upper: this.maps }) || !sameVisibleXattrs(lowerPath, upperPath);
  }
}

function visibleXattrs(path: string): string[] {
  return listXattrs(path)
    .filter((name) => !name.startsWith(OVERLAY_PRIVATE_XATTR_PREFIX))
    .sort();
}

function sameVisibleXattrs(lowerPath: string, upperPath: string): boolean {
  const lowerNames = visibleXattrs(lowerPath);
  const upperNames = visibleXattrs(upperPath);
  if (lowerNames.length !== upperNames.length) return false;
  for (let i = 0; i < lowerNames.length; i++) {
    const name = lowerNames[i]!;
    if (name !== upperNames[i]) return false;
    if (!Buffer.from(getXattr(lowerPath, name) ?? []).equals(getXattr(upperPath, name) ?? new Uint8Array())) return false;
  }
  return true;
}

/**
 * The size of an overlay layer's own content (§3.7.4, overlay with FROM = parent): the sizes of
 * the non-directories in its upper dir, hard links counted once, whiteouts 0.
 */
export function overlayDiffSize(upper: string): number {
  let size = 0;
  const seenInodes = new Set<bigint>();
  const pending = [upper];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        pending.push(path);
        continue;
      }
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      const stats = lstatSync(path, { bigint: true });
      if (stats.nlink > 1n) {
        if (seenInodes.has(stats.ino)) continue;
        seenInodes.add(stats.ino);
      }
      size += Number(stats.size);
    }
  }
  return size;
}

/**
 * Writes an overlay layer's upper dir as an uncompressed layer tar (§4.4): every entry in
 * depth-first order with sorted siblings, a whiteout device as an empty `DIR/.wh.NAME` (mode 0,
 * the device's owner and mtime), and an opaque directory that also exists in a lower layer as
 * its directory entry followed by `DIR/.wh..wh..opq`. The output depends only on the upper
 * dir's content, so it is byte-stable.
 */
export async function exportOverlayDiff(upper: string, lowers: string[], sink: ByteSink, maps: IdMaps): Promise<void> {
  const writer = new TreeTarWriter(sink, upper, maps);
  const existsBelow = (rel: string) => lowers.some((lower) => lstatOrNull(joinPath(lower, rel)) !== null);
  if (lowers.length > 0 && isOpaqueDirectory(upper)) await writer.add(opaqueMarker("", lstatSync(upper, { bigint: true }), maps, upper));
  const walk = async (rel: string): Promise<void> => {
    for (const child of sortedEntries(joinPath(upper, rel))) {
      const childRel = rel === "" ? child.name : `${rel}/${child.name}`;
      const stats = lstatSync(joinPath(upper, childRel), { bigint: true });
      if (isWhiteout(stats)) {
        const device = entryFromStat(upper, childRel, maps, stats);
        if (device !== null) await writer.add(asWhiteout(device, rel, child.name));
        continue;
      }
      const entry = await writer.addFile(childRel, stats);
      if (entry?.type !== "dir") continue;
      if (isOpaqueDirectory(joinPath(upper, childRel)) && existsBelow(childRel)) await writer.add(opaqueMarker(childRel, stats, maps, upper));
      await walk(childRel);
    }
  };
  await walk("");
  await writer.finish();
}

/** A whiteout device's entry turned into the AUFS whiteout file `DIR/.wh.NAME`. */
function asWhiteout(device: TarEntry, dirRel: string, name: string): TarEntry {
  return {
    ...device,
    path: `${dirRel === "" ? "" : `${dirRel}/`}${WHITEOUT_PREFIX}${name}`,
    type: "file",
    mode: 0,
    size: 0,
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
  };
}

/** The `.wh..wh..opq` marker of an opaque directory: regular, empty, the directory's permission bits and owner, mtime 0. */
function opaqueMarker(dirRel: string, dirStats: BigIntStats, maps: IdMaps, upper: string): TarEntry {
  const dirEntry = dirRel === "" ? rootEntry(upper, dirStats, maps) : entryFromStat(upper, dirRel, maps, dirStats)!;
  return {
    ...dirEntry,
    path: `${dirRel === "" ? "" : `${dirRel}/`}${OPAQUE_MARKER}`,
    type: "file",
    mode: Number(dirStats.mode) & 0o777,
    size: 0,
    mtimeNs: 0n,
    linkTarget: "",
    xattrs: new Map(),
  };
}

/** entryFromStat for the layer root itself (whose relative path is empty). */
function rootEntry(upper: string, stats: BigIntStats, maps: IdMaps): TarEntry {
  const slash = upper.lastIndexOf("/");
  const entry = entryFromStat(upper.slice(0, slash), upper.slice(slash + 1), maps, stats)!;
  return { ...entry, path: "" };
}
