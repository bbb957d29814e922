/**
 * The vfs driver: every layer is a complete directory tree, made by copying its parent.
 * Simple, portable and slow to create; no kernel mounts.
 */
import type { ApplyResult, ByteSink, ByteSource, Change } from "../archive/types.ts";
import { InitError } from "../errors.ts";
import { syncFilesystem } from "../sys/libc.ts";
import { pathExists } from "../sys/path-exists.ts";
import { type IdMaps, rootOwner } from "../idmap.ts";
import { booleanOption, imageStoresOption, splitDriverOption } from "./options.ts";
import { type CompareRequest, type CreateLayerRequest, type Driver, type LayerPreview, type MountSpec, comparedMaps } from "./driver.ts";
import type { CopyOmissions } from "../archive/layer-removals.ts";
import { isOwnerRefused } from "../archive/owners.ts";
import { nodeFs } from "../sys/node-fs.ts";


export interface VfsOptions {
  /** Graph roots of read-only stores whose layers may be parents. */
  imageStores: string[];
  /** vfs.ignore_chown_errors: owners the kernel refuses are left as created (rootless stores). */
  ignoreChownErrors: boolean;
}

/** Accepted vfs options (with the vfs. or . prefix) and the check of a KEY=VALUE list (docs/cli-contract.md §6.2). */
export function parseVfsOptions(options: string[]): VfsOptions {
  const result: VfsOptions = { imageStores: [], ignoreChownErrors: false };
  for (const option of options) {
    const { key, value } = splitDriverOption(option);
    const bare = /^(vfs)?\.(.*)$/.exec(key)?.[2];
    const stores = bare === undefined ? undefined : imageStoresOption(bare, value);
    if (stores) result.imageStores.push(...stores);
    else if (bare === "ignore_chown_errors") result.ignoreChownErrors = booleanOption("vfs", key, value);
    else if (key === "vfs.mountopt") throw new InitError("vfs driver does not support mount options");
    else throw new InitError(`vfs driver does not support ${key} options`);
  }
  return result;
}

/**
 * What a copy of the parent at parentDir may leave out because the layer applied next removes
 * it (docs/benchmarks.md, Registries). Nothing when the preview cannot be read or does not have
 * its digest: the apply reads the layer again and reports what is wrong with it.
 */
async function omissionsOf(preview: LayerPreview, parentDir: string): Promise<CopyOmissions | undefined> {
  const { scanLayerRemovals, omissionsIn } = await import("../archive/layer-removals.ts");
  try {
    const removals = await scanLayerRemovals(preview.read(), preview.digest);
    return removals && omissionsIn(removals, parentDir);
  } catch {
    return undefined;
  }
}

export class VfsDriver implements Driver {
  readonly name = "vfs" as const;
  private readonly home: string;

  constructor(
    graphRoot: string,
    private readonly options: VfsOptions,
  ) {
    this.home = `${graphRoot}/vfs/dir`;
  }

  async init(): Promise<void> {
    if (!pathExists(this.home)) nodeFs().mkdirSync(this.home, { recursive: true, mode: 0o700 });
  }

  /** A new layer is a copy of its parent's tree: one flush of the filesystem covers all its files. */
  flushCreated(id: string): void {
    syncFilesystem(this.contentDir(id));
  }

  /** A layer's directory here, or in the first read-only store that has it. */
  private dirOf(id: string): string {
    const own = `${this.home}/${id}`;
    if (this.options.imageStores.length === 0 || pathExists(own)) return own;
    // Image store roots are the user's strings ("/ro/", "/a/../b"): joined as node:path does.
    const { join } = import.meta.require("node:path") as typeof import("node:path");
    for (const store of this.options.imageStores) {
      const other = join(store, "vfs", "dir", id);
      if (pathExists(other)) return other;
    }
    return own;
  }

  /** A copy of the template's or parent's tree, re-owned to the layer's maps; a base layer is an empty dir owned by container root. */
  async create(id: string, request: CreateLayerRequest): Promise<void> {
    const { chownSync, mkdirSync, rmSync } = nodeFs();
    const dir = `${this.home}/${id}`;
    rmSync(dir, { recursive: true, force: true });
    const source = request.template ?? (request.parent === undefined ? undefined : { id: request.parent, idMaps: request.parentIdMaps });
    if (source === undefined) {
      mkdirSync(dir, { mode: 0o555 });
      const root = rootOwner(request.idMaps);
      try {
        chownSync(dir, root.uid, root.gid);
      } catch (error) {
        // Not root and not in a user namespace: with ignore_chown_errors the layer is the user's.
        if (!(this.options.ignoreChownErrors && isOwnerRefused(error))) throw error;
      }
      return;
    }
    mkdirSync(dir, { mode: 0o700 });
    const from = this.dirOf(source.id);
    const omit = request.preview && !request.template ? await omissionsOf(request.preview, from) : undefined;
    await (await import("./copy-tree.ts")).copyTree(from, dir, { from: source.idMaps, to: request.idMaps, omit });
  }

  async remove(id: string): Promise<void> {
    nodeFs().rmSync(`${this.home}/${id}`, { recursive: true, force: true });
  }

  exists(id: string): boolean {
    return pathExists(`${this.home}/${id}`);
  }

  /** A vfs layer is its directory alone: nothing else to go wrong. */
  layoutProblems(): string[] {
    return [];
  }

  repairLayout(): void {}

  listLayerIds(): string[] {
    return pathExists(this.home) ? nodeFs().readdirSync(this.home) : [];
  }

  async applyDiff(id: string, source: ByteSource, idMaps: IdMaps, onLayoutChunk?: (chunk: Uint8Array) => void | Promise<void>): Promise<ApplyResult> {
    return (await import("../archive/apply.ts")).applyLayerTar(`${this.home}/${id}`, source, {
      whiteouts: "remove",
      idMaps,
      onLayoutChunk,
      ignoreChownErrors: this.options.ignoreChownErrors,
    });
  }

  contentDir(id: string): string {
    return this.dirOf(id);
  }

  mountPoint(id: string): string {
    return this.dirOf(id);
  }

  mountSpec(id: string): MountSpec {
    return { kind: "directory", path: this.dirOf(id) };
  }

  /** The reference tree (null: empty) and the layer's tree. */
  private trees(request: CompareRequest): [string | null, string] {
    return [request.from === undefined ? null : this.dirOf(request.from), this.dirOf(request.id)];
  }

  // The archive code is loaded by the commands that compare layers, not by every user of the driver.
  async changes(request: CompareRequest): Promise<Change[]> {
    return (await import("../archive/naive-diff.ts")).naiveChanges(...this.trees(request), comparedMaps(request));
  }

  async diffSize(request: CompareRequest): Promise<number> {
    return (await import("../archive/naive-diff.ts")).naiveDiffSize(...this.trees(request), comparedMaps(request));
  }

  async diff(request: CompareRequest, sink: ByteSink): Promise<void> {
    return (await import("../archive/naive-diff.ts")).naiveDiff(...this.trees(request), sink, comparedMaps(request));
  }

  status(): Array<[string, string]> {
    return [];
  }

  async shutdown(): Promise<void> {}
}
