/**
 * The overlay driver: a layer holds only its own changes (`diff/`, an overlayfs upper dir) and
 * is mounted as overlayfs with its parent chain as lower dirs. Where things are on disk and the
 * short l/ links are overlay-layout.ts; the mount description is overlay-mount.ts; options and
 * kernel support are overlay-options.ts and overlay-support.ts. Comparing two layers reads the
 * upper dir directly where overlayfs allows it, else compares read-only merged views that the
 * Mounter provides (LayerViews).
 */
import { chmodSync, chownSync, closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ApplyResult, ByteSink, ByteSource, Change } from "../archive/types.ts";
import { InvalidArgumentError, NotSupportedError } from "../errors.ts";
import { type IdMaps, rootOwner, sameMaps } from "../idmap.ts";
import { syncFilesystem } from "../sys/libc.ts";
import { type CompareRequest, type CreateLayerRequest, type Driver, type KernelMountSpec, type LayerViews, type MountRequest, type ViewRequest, comparedMaps } from "./driver.ts";
import { OverlayLayout, errorCode } from "./overlay-layout.ts";
import { describeOverlayMount } from "./overlay-mount.ts";
import type { OverlayOptions } from "./overlay-options.ts";
import { nativeDiffPossible, overlayStatus, overlaySupport } from "./overlay-support.ts";

const READ_ONLY_VIEW: MountRequest = { readOnly: true, options: [], volatile: false, mountLabel: "" };

export class OverlayDriver implements Driver {
  readonly name = "overlay" as const;
  private readonly layout: OverlayLayout;

  /** views: the read-only merged trees compared when the upper dir cannot be read directly. */
  constructor(
    private readonly graphRoot: string,
    /** Runtime state in the run root: the kernel probe's answer. */
    private readonly runRoot: string,
    private readonly options: OverlayOptions,
    private readonly views: LayerViews,
  ) {
    this.layout = new OverlayLayout(graphRoot, options.imageStores);
  }

  async init(): Promise<void> {
    mkdirSync(this.layout.linkDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(this.runRoot, "overlay"), { recursive: true, mode: 0o700 });
    if (!existsSync(this.layout.mountProgramMarker)) writeFileSync(this.layout.mountProgramMarker, String(this.options.mountProgram !== undefined));
    if (this.options.mountProgram === undefined) {
      const support = overlaySupport(this.graphRoot, this.runRoot);
      if (!support.supported) throw new NotSupportedError(`failed to GetDriver graph overlay ${this.graphRoot}: driver not supported: ${support.reason}`);
    }
    this.views.releaseStale();
  }

  // ---- layers ---------------------------------------------------------------------------------

  /**
   * A layer on a parent with the same ID maps holds only its own changes over the parent's
   * chain. A layer that starts from a template, or whose maps differ from its parent's, holds a
   * whole re-owned copy of that layer's merged tree and stacks on nothing: overlayfs cannot
   * shift the owners of lower layers, so they are copied (as containers-storage's chown-style
   * shifting copies every file up).
   */
  async create(id: string, request: CreateLayerRequest): Promise<void> {
    if (this.layout.isReserved(id)) throw new InvalidArgumentError(`layer ID "${id}" is reserved by the overlay driver`);
    await this.remove(id);
    const dir = this.layout.ownDir(id);
    mkdirSync(dir, { mode: 0o700 });
    const diff = join(dir, "diff");
    const source = request.template ?? (request.parent === undefined ? undefined : { id: request.parent, idMaps: request.parentIdMaps });
    if (source === undefined || request.template !== undefined || !sameMaps(request.idMaps, source.idMaps)) {
      mkdirSync(diff);
      chmodSync(diff, 0o555);
      const root = rootOwner(request.idMaps);
      chownSync(diff, root.uid, root.gid);
      mkdirSync(join(dir, "empty"), { mode: 0o700 });
      if (source !== undefined) {
        const { copyTree } = await import("./copy-tree.ts");
        await this.views.withViews([this.viewOf(source.id)], ([tree]) => copyTree(tree!, diff, { from: source.idMaps, to: request.idMaps }));
        syncFilesystem(diff);
      }
    } else {
      const lower = this.layout.lowerEntryOver(source.id);
      const parentRoot = lstatSync(join(this.layout.layerDir(source.id), "diff"));
      mkdirSync(diff);
      chownSync(diff, parentRoot.uid, parentRoot.gid);
      chmodSync(diff, parentRoot.mode & 0o7777);
      writeFileSync(join(dir, "lower"), lower);
    }
    mkdirSync(join(dir, "work"), { mode: 0o700 });
    this.layout.makeLink(id);
  }

  /**
   * Makes a new layer's few files and directories durable with an fsync each, and the
   * directories holding them: much cheaper than flushing the whole filesystem, which on a busy
   * machine writes out every other process's data too.
   */
  flushCreated(id: string): void {
    const dir = this.layout.ownDir(id);
    for (const path of [join(dir, "link"), join(dir, "lower"), join(dir, "diff"), join(dir, "work"), join(dir, "empty"), dir, this.layout.linkDir, this.layout.home]) {
      fsyncIfPresent(path);
    }
  }

  /** Removes the layer's directories and its short link; the Store has released its mounts first. */
  async remove(id: string): Promise<void> {
    // create() refuses the driver's own names, and the store then cleans up: keep them.
    if (this.layout.isReserved(id)) return;
    const dir = this.layout.ownDir(id);
    if (!existsSync(dir)) return;
    this.layout.removeLink(id);
    rmSync(dir, { recursive: true, force: true });
  }

  exists(id: string): boolean {
    return existsSync(this.layout.ownDir(id));
  }

  listLayerIds(): string[] {
    return this.layout.listLayerIds();
  }

  /** A missing or misdirected l/ short link (a cleanup script removed it, a backup lacked it); mounts recreate those they need. */
  layoutProblems(id: string): string[] {
    const problem = this.layout.linkProblem(id);
    return problem === undefined ? [] : [problem];
  }

  repairLayout(id: string): void {
    this.layout.repairLink(id);
  }

  async applyDiff(id: string, source: ByteSource, idMaps: IdMaps, onLayoutChunk?: (chunk: Uint8Array) => void | Promise<void>): Promise<ApplyResult> {
    return (await import("../archive/apply.ts")).applyLayerTar(join(this.layout.ownDir(id), "diff"), source, {
      whiteouts: "overlay",
      idMaps,
      onLayoutChunk,
      ignoreChownErrors: this.options.ignoreChownErrors,
    });
  }

  contentDir(id: string): string {
    return join(this.layout.layerDir(id), "diff");
  }

  mountPoint(id: string): string {
    return join(this.layout.ownDir(id), "merged");
  }

  mountSpec(id: string, request: MountRequest): KernelMountSpec {
    return describeOverlayMount(this.layout, this.options, id, this.mountPoint(id), request);
  }

  // ---- comparing ------------------------------------------------------------------------------

  // The archive code is loaded by the commands that compare layers, not by every user of the driver.
  async changes(request: CompareRequest): Promise<Change[]> {
    if (this.readsUpperDir(request)) return (await import("../archive/overlay-diff.ts")).overlayChanges(this.contentDir(request.id), this.layout.lowerDirs(request.id), request.idMaps);
    const { naiveChanges } = await import("../archive/naive-diff.ts");
    return this.withViews(request, (from, layer) => naiveChanges(from, layer, comparedMaps(request)));
  }

  async diffSize(request: CompareRequest): Promise<number> {
    if (this.readsUpperDir(request)) return (await import("../archive/overlay-diff.ts")).overlayDiffSize(this.contentDir(request.id));
    const { naiveDiffSize } = await import("../archive/naive-diff.ts");
    return this.withViews(request, (from, layer) => naiveDiffSize(from, layer, comparedMaps(request)));
  }

  async diff(request: CompareRequest, sink: ByteSink): Promise<void> {
    if (this.readsUpperDir(request)) return (await import("../archive/overlay-diff.ts")).exportOverlayDiff(this.contentDir(request.id), this.layout.lowerDirs(request.id), sink, request.idMaps);
    const { naiveDiff } = await import("../archive/naive-diff.ts");
    return this.withViews(request, (from, layer) => naiveDiff(from, layer, sink, comparedMaps(request)));
  }

  /** True when the layer's upper dir holds exactly its changes over FROM: FROM is its parent and the layer is stacked on it (not a re-owned copy). */
  private readsUpperDir(request: CompareRequest): boolean {
    if (!request.fromIsParent || !nativeDiffPossible(this.options)) return false;
    const { lowers } = this.layout.chain(request.id);
    if (request.from === undefined) return lowers.length === 0;
    return lowers[0] === this.layout.chain(request.from).own;
  }

  /** A read-only view of a layer's merged tree. */
  private viewOf(layer: string): ViewRequest {
    return { layer, describe: (target: string) => describeOverlayMount(this.layout, this.options, layer, target, READ_ONLY_VIEW) };
  }

  /** Runs fn with the read-only merged trees of FROM (null for none) and the layer. */
  private withViews<T>(request: CompareRequest, fn: (from: string | null, layer: string) => Promise<T>): Promise<T> {
    const layers = request.from === undefined ? [request.id] : [request.from, request.id];
    return this.views.withViews(layers.map((layer) => this.viewOf(layer)), (paths) => (request.from === undefined ? fn(null, paths[0]!) : fn(paths[0]!, paths[1]!)));
  }

  // ---- store-wide -----------------------------------------------------------------------------

  status(): Array<[string, string]> {
    return overlayStatus(this.layout.home, this.options);
  }

  /** Releases temporary views of dead processes (the Store releases layer mounts). This driver makes no private bind mount of its home. */
  async shutdown(): Promise<void> {
    this.views.releaseStale();
  }
}

/** fsync of a file or directory; one that create() did not make (lower, empty) is skipped. */
function fsyncIfPresent(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return;
    throw error;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
