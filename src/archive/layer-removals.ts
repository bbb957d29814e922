/**
 * What a layer tar removes from its parent's tree, found by reading the layer once before it is
 * applied, so that a driver that starts a layer as a copy of its parent (vfs) can leave those
 * paths out of the copy instead of copying them and deleting them again.
 *
 * Leaving a path out gives the same tree as copying it and letting the apply remove it only when
 * nothing in the layer reaches the path before the entry that removes it: the apply of an entry
 * looks at (and may write) its own path and every directory above it, and a hard link also its
 * target's. So a whiteout `D/.wh.X` (removal of `D/X`) counts only when no earlier entry's path or
 * link target is `D/X` or below it, and an opaque marker `D/.wh..wh..opq` (removal of what `D`
 * held) only when no earlier entry is below `D`. Paths are compared as written (cleaned), which is
 * what the apply walks only where no directory on the way is a symlink: a layer that has a
 * symlink or hard link (which may name a symlink) above another of its entries removes nothing
 * here, and `omissionsIn` refuses a parent tree in which a directory an entry passes through is a
 * symlink. A directory that lost an entry gets the time of the copy as its modification time, as
 * the removal would have given it.
 */
import { lstatSync } from "node:fs";
import { openDecompressed } from "./compression.ts";
import { openMeasuredInput } from "./measured-input.ts";
import { cleanComponents } from "./paths.ts";
import { readTar } from "./tar-reader.ts";
import type { ByteSource } from "./types.ts";
import { whiteoutMeaning } from "./whiteouts.ts";

/** What a layer removes from its parent's tree, as relative paths ("" is the root). */
export interface LayerRemovals {
  /** Paths removed whole (whiteouts). */
  paths: string[];
  /** Directories whose contents are removed (opaque directories); the directory itself stays. */
  contentsOf: string[];
  /** Directories the layer's entries pass through: all must be directories (or missing) in the parent, not symlinks. */
  passesThrough: string[];
}

/** Paths a copy of the parent's tree leaves out (see copy-tree.ts). */
export interface CopyOmissions {
  paths: Set<string>;
  contentsOf: Set<string>;
}

/**
 * The removals of a (possibly compressed) layer tar; undefined when it removes nothing that can
 * be left out, or when a digest is given and the bytes read are not that digest (bytes that the
 * apply reads again from a file that someone may change meanwhile must be checked; a private
 * file's need not).
 */
export async function scanLayerRemovals(source: ByteSource, digest?: string): Promise<LayerRemovals | undefined> {
  const scan = new RemovalScan();
  if (digest === undefined) {
    for await (const { entry } of readTar((await openDecompressed(source)).stream)) scan.add(entry.path, entry.type, entry.linkTarget);
    return scan.result();
  }
  const input = await openMeasuredInput(source);
  for await (const { entry } of readTar(input.tar)) scan.add(entry.path, entry.type, entry.linkTarget);
  return (await input.finish()).compressed.digest === digest ? scan.result() : undefined;
}

/** The omissions for a copy of `parentRoot`, or undefined when an entry would pass through a symlink there. */
export function omissionsIn(removals: LayerRemovals, parentRoot: string): CopyOmissions | undefined {
  for (const dir of removals.passesThrough) {
    try {
      if (lstatSync(`${parentRoot}/${dir}`).isSymbolicLink()) return undefined;
    } catch {
      // Missing (or unreadable: the apply meets the same): nothing of the parent's is walked there.
    }
  }
  return { paths: new Set(removals.paths), contentsOf: new Set(removals.contentsOf) };
}

function joined(parts: string[], count = parts.length): string {
  return parts.slice(0, count).join("/");
}

/** Collects, entry by entry, the removals and the paths each entry reaches first. */
class RemovalScan {
  private position = 0;
  /** Each path an entry reaches (its own, its directories, a link's target), with the first position. */
  private readonly firstReached = new Map<string, number>();
  /** Whiteout targets and opaque directories, with the position of their first removal. */
  private readonly removed = new Map<string, number>();
  private readonly emptied = new Map<string, number>();
  /** Paths the layer makes as symlinks or hard links. */
  private readonly links = new Set<string>();
  private readonly directories = new Set<string>();

  add(path: string, type: string, linkTarget: string): void {
    const index = this.position++;
    const parts = cleanComponents(path);
    this.reach(parts, index);
    if (type === "hardlink") this.reach(cleanComponents(linkTarget), index);
    if (type === "symlink" || type === "hardlink") this.links.add(joined(parts));
    // AUFS metadata (.wh..wh.plnk/…) is not a removal; neither is a whiteout of "", "." or "..".
    const whiteout = whiteoutMeaning(parts);
    if (whiteout === undefined || whiteout === "metadata" || whiteout === "ignored") return;
    const dir = joined(parts, parts.length - 1);
    if (whiteout === "opaque") {
      if (!this.emptied.has(dir)) this.emptied.set(dir, index);
      return;
    }
    const target = dir === "" ? whiteout.hides : `${dir}/${whiteout.hides}`;
    if (!this.removed.has(target)) this.removed.set(target, index);
  }

  /** Records the path and every directory above it as reached at this position. */
  private reach(parts: string[], index: number): void {
    for (let count = 0; count <= parts.length; count++) {
      const path = joined(parts, count);
      if (count < parts.length) this.directories.add(path);
      if (!this.firstReached.has(path)) this.firstReached.set(path, index);
    }
  }

  result(): LayerRemovals | undefined {
    for (const dir of this.directories) if (this.links.has(dir)) return undefined;
    // The first position at which something at or below each path is reached.
    const reachedBelow = new Map<string, number>();
    for (const [path, index] of this.firstReached) {
      for (let at = path; ; at = at.slice(0, Math.max(0, at.lastIndexOf("/")))) {
        if (!((reachedBelow.get(at) ?? Infinity) <= index)) reachedBelow.set(at, index);
        if (at === "") break;
      }
    }
    const paths = [...this.removed].filter(([path, index]) => (reachedBelow.get(path) ?? Infinity) >= index).map(([path]) => path);
    const contentsOf = [...this.emptied].filter(([dir, index]) => this.firstBelow(dir) >= index).map(([dir]) => dir);
    if (paths.length === 0 && contentsOf.length === 0) return undefined;
    return { paths, contentsOf, passesThrough: [...this.directories].filter((dir) => dir !== "") };
  }

  /** The first position at which a path strictly below dir is reached. */
  private firstBelow(dir: string): number {
    let first = Infinity;
    const prefix = dir === "" ? "" : `${dir}/`;
    for (const [path, index] of this.firstReached) if (path !== dir && path.startsWith(prefix) && index < first) first = index;
    return first;
  }
}
