/**
 * Differences between two directory trees by naive comparison (docs/cli-contract.md §3.7.3) and the
 * size of those differences (§3.7.4).
 */
import { lstatSync, readdirSync, type BigIntStats } from "node:fs";
import { toContainer, type IdMapping, type IdMaps } from "../idmap.ts";
import { listXattrs, getXattr } from "../sys/libc.ts";
import { ChangeKind, type Change } from "./types.ts";
import { compareBytes } from "../util/byte-order.ts";

const S_IFMT = 0o170000n;
const S_IFDIR = 0o040000n;

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException)?.code;
}

/**
 * Naive comparison (docs/cli-contract.md §3.7.3 rules): upper vs lower (null = empty tree). Depth-first, siblings sorted by name
 * (byte order), each directory's own line before its children; a dir containing changes is Modify (except the root).
 * Owners compared after mapping host -> container with each tree's maps.
 */
export async function compareTrees(lower: string | null, upper: string, maps: { lower: IdMaps; upper: IdMaps }): Promise<Change[]> {
  const comparer = new TreeComparer(lower, upper, maps);
  comparer.compareDirectory("", lower !== null, true);
  return comparer.changes;
}

class TreeComparer {
  readonly changes: Change[] = [];

  constructor(
    private readonly lower: string | null,
    private readonly upper: string,
    private readonly maps: { lower: IdMaps; upper: IdMaps },
  ) {}

  /** Records changes below the upper directory rel; lowerIsDirectory says whether lower has a directory there. */
  compareDirectory(rel: string, lowerIsDirectory: boolean, reported: boolean): void {
    const start = this.changes.length;
    const upperChildren = readdirSync(joinPath(this.upper, rel), { withFileTypes: true }).sort((a, b) => compareBytes(a.name, b.name));
    const lowerNames = lowerIsDirectory ? new Set(readSortedNames(joinPath(this.lower!, rel))) : new Set<string>();
    for (const child of upperChildren) {
      const childRel = rel === "" ? child.name : `${rel}/${child.name}`;
      if (!lowerNames.has(child.name)) {
        this.changes.push({ path: `/${childRel}`, kind: ChangeKind.Add });
        if (child.isDirectory()) this.compareDirectory(childRel, false, true);
        continue;
      }
      lowerNames.delete(child.name);
      const upperStats = this.lstatOrNull(this.upper, childRel);
      const lowerStats = this.lstatOrNull(this.lower!, childRel);
      if (upperStats === null) continue;
      if (lowerStats === null) {
        this.changes.push({ path: `/${childRel}`, kind: ChangeKind.Add });
        if (upperStats.isDirectory()) this.compareDirectory(childRel, false, true);
        continue;
      }
      const changed = this.differ(lowerStats, upperStats, childRel);
      if (changed) this.changes.push({ path: `/${childRel}`, kind: ChangeKind.Modify });
      if (upperStats.isDirectory()) this.compareDirectory(childRel, lowerStats.isDirectory(), changed);
    }
    for (const name of lowerNames) this.changes.push({ path: rel === "" ? `/${name}` : `/${rel}/${name}`, kind: ChangeKind.Delete });
    if (!reported && this.changes.length > start) this.changes.splice(start, 0, { path: `/${rel}`, kind: ChangeKind.Modify });
  }

  private lstatOrNull(root: string, rel: string): BigIntStats | null {
    try {
      return lstatSync(joinPath(root, rel), { bigint: true });
    } catch (error) {
      if (errorCode(error) === "ENOENT") return null;
      throw error;
    }
  }

  /** The §3.7.3 "different" rule. */
  private differ(lower: BigIntStats, upper: BigIntStats, rel: string): boolean {
    return metadataDiffers(lower, upper, this.maps) || !sameXattrs(joinPath(this.lower!, rel), joinPath(this.upper, rel));
  }
}

/** The §3.7.3 "different" rule without xattrs: type and permission bits, device, owner (as container IDs), and for non-directories size and mtime. */
export function metadataDiffers(lower: BigIntStats, upper: BigIntStats, maps: { lower: IdMaps; upper: IdMaps }): boolean {
  if (lower.mode !== upper.mode || lower.rdev !== upper.rdev) return true;
  if (containerId(maps.lower.uidMap, lower.uid) !== containerId(maps.upper.uidMap, upper.uid)) return true;
  if (containerId(maps.lower.gidMap, lower.gid) !== containerId(maps.upper.gidMap, upper.gid)) return true;
  if ((lower.mode & S_IFMT) !== S_IFDIR) return lower.size !== upper.size || !sameMtime(lower.mtimeNs, upper.mtimeNs);
  return false;
}

function joinPath(root: string, rel: string): string {
  return rel === "" ? root : `${root}/${rel}`;
}

function readSortedNames(path: string): string[] {
  return readdirSync(path).sort(compareBytes);
}

/** Host ID -> container ID; an ID outside the map compares as itself. */
function containerId(map: IdMapping[], hostId: bigint): number {
  const id = Number(hostId);
  const mapped = toContainer(map, id);
  return mapped < 0 ? id : mapped;
}

/** Same seconds, and same nanoseconds unless either side has none (a filesystem without ns precision). */
function sameMtime(a: bigint, b: bigint): boolean {
  if (a === b) return true;
  const second = 1_000_000_000n;
  const aNs = a % second;
  const bNs = b % second;
  return a / second === b / second && (aNs === 0n || bNs === 0n);
}

function sameXattrs(lowerPath: string, upperPath: string): boolean {
  const lowerNames = listXattrs(lowerPath);
  const upperNames = listXattrs(upperPath);
  if (lowerNames.length !== upperNames.length) return false;
  if (lowerNames.length === 0) return true;
  lowerNames.sort();
  upperNames.sort();
  for (let i = 0; i < lowerNames.length; i++) {
    const name = lowerNames[i]!;
    if (name !== upperNames[i]) return false;
    if (!Buffer.from(getXattr(lowerPath, name) ?? []).equals(getXattr(upperPath, name) ?? new Uint8Array())) return false;
  }
  return true;
}

/** Sum of sizes of added/modified non-directories (symlink = target length, hard links once, deletions 0) — §3.7.4. */
export async function sizeOfChanges(upper: string, changes: Change[]): Promise<number> {
  let size = 0;
  const seenInodes = new Set<string>();
  for (const change of changes) {
    if (change.kind === ChangeKind.Delete) continue;
    let stats;
    try {
      stats = lstatSync(upper + change.path, { bigint: true });
    } catch (error) {
      if (errorCode(error) === "ENOENT") continue;
      throw error;
    }
    if (stats.isDirectory()) continue;
    if (stats.nlink > 1n) {
      const inode = `${stats.dev}:${stats.ino}`;
      if (seenInodes.has(inode)) continue;
      seenInodes.add(inode);
    }
    size += Number(stats.size);
  }
  return size;
}
