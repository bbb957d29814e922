/**
 * The overlay driver: a layer holds only its own changes (`diff/`, an overlayfs upper dir) and
 * is mounted as overlayfs with its parent chain as lower dirs. Layout (docs/cli-contract.md §6.3):
 *
 *   <graphroot>/overlay/l/<LINKID> -> ../<id>/diff   short names that keep lowerdir= short
 *   <graphroot>/overlay/<id>/{diff,work,merged,link,lower}, and empty/ for base layers
 *
 * Mounts run in the l/ directory so that each lower dir costs its bare link name plus a colon
 * (see docs/decisions/0004-overlay-driver.md for why link IDs are 6 characters here).
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statfsSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { applyLayerTar } from "../archive/apply.ts";
import { naiveChanges, naiveDiff, naiveDiffSize } from "../archive/naive-diff.ts";
import { exportOverlayDiff, overlayChanges, overlayDiffSize } from "../archive/overlay-diff.ts";
import type { ApplyResult, ByteSink, ByteSource, Change } from "../archive/types.ts";
import { CorruptError, InitError, InvalidArgumentError, NotSupportedError } from "../errors.ts";
import { type IdMaps, sameMaps } from "../idmap.ts";
import type { CompareRequest, CreateLayerRequest, Driver, KernelMountSpec, MountRequest } from "./driver.ts";
import { kernelMountPoints } from "../sys/mount-table.ts";
import { type Mounter, probeMount } from "./mounter.ts";
import { imageStoresOption, splitDriverOption } from "./options.ts";
import { copyTree } from "./copy-tree.ts";
import { syncFilesystem } from "../sys/libc.ts";

/** Characters of a link ID: base32 (A–Z, 2–7), as containers-storage uses. */
const LINK_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/** 6 characters: 2^30 IDs, and 500 lower dirs take 3.5 KB of the 4 KB option page. */
const LINK_ID_LENGTH = 6;
const LINK_DIR = "l";
const MOUNT_PROGRAM_MARKER = ".has-mount-program";
/** Names in the driver's home that are not layers. */
const RESERVED_NAMES = new Set([LINK_DIR, MOUNT_PROGRAM_MARKER]);
/** The kernel's overlayfs stacks at most this many lower dirs (OVL_MAX_STACK; measured on 6.18). */
export const MAX_LOWER_LAYERS = 500;
/** mount(2) copies one page of option data, including its terminating NUL. */
const MOUNT_OPTIONS_MAX_BYTES = 4095;
const READ_ONLY_MOUNT_OPTIONS = ["ro", "nosuid", "noexec"];

export interface OverlayOptions {
  /** overlay.mountopt: options added to every mount. */
  mountOptions: string[];
  /** overlay.mount_program: a FUSE program (e.g. fuse-overlayfs) run instead of mount(8). */
  mountProgram: string | undefined;
  /** Graph roots of read-only stores whose layers may be lower layers. */
  imageStores: string[];
}

/** Options accepted with the overlay., overlay2. or . prefix (docs/cli-contract.md §6.3); the rest are checked and not needed here. */
const KNOWN_OPTIONS = new Set([
  "mountopt",
  "size",
  "inodes",
  "imagestore",
  "additionalimagestore",
  "additionallayerstore",
  "mount_program",
  "skip_mount_home",
  "ignore_chown_errors",
  "force_mask",
  "override_kernel_check",
]);

/** Parses and checks overlay driver options (KEY=VALUE); unknown keys fail like containers-storage. */
export function parseOverlayOptions(options: string[]): OverlayOptions {
  const result: OverlayOptions = { mountOptions: [], mountProgram: undefined, imageStores: [] };
  for (const option of options) {
    const { key, value } = splitDriverOption(option);
    const match = /^(overlay2?\.|\.)(.*)$/.exec(key);
    const bare = match?.[2] ?? "";
    if (!KNOWN_OPTIONS.has(bare)) throw new InitError(`overlay: Unknown option ${key}`);
    const stores = imageStoresOption(bare, value);
    if (stores) {
      for (const store of stores) {
        if (!isAbsolute(store)) throw new InitError(`overlay: image path ${JSON.stringify(store)} is not absolute.  Can not be relative`);
        result.imageStores.push(store);
      }
      continue;
    }
    switch (bare) {
      case "mountopt":
        result.mountOptions.push(...value.split(",").filter(Boolean));
        break;
      case "mount_program":
        if (value !== "") {
          if (!existsSync(value)) throw new InitError(`overlay: can't stat program ${JSON.stringify(value)}: no such file or directory`);
          result.mountProgram = value;
        }
        break;
      case "size":
      case "inodes":
        if (value !== "" && value !== "0") throw new NotSupportedError(`overlay: ${key} needs project quotas, which this build does not set up`);
        break;
      case "skip_mount_home":
      case "ignore_chown_errors":
      case "override_kernel_check":
        if (!/^(1|0|t|f|true|false|TRUE|FALSE|True|False)$/.test(value)) throw new InitError(`overlay: ${key}: invalid boolean ${JSON.stringify(value)}`);
        break;
      // force_mask and additionallayerstore only matter for rootless and lazy-pull setups; accepted, unused.
    }
  }
  return result;
}

/** Where overlay support is decided: the kernel, tried once per run root. */
export interface OverlaySupport {
  supported: boolean;
  reason: string;
}

/**
 * Whether overlayfs can be mounted over directories of this graph root: root privileges,
 * overlay in the kernel, and a probe mount on the graph root's filesystem. The result is cached
 * in <runroot>/overlay/overlay-{true,false} (the run root is cleared by a reboot).
 */
export function overlaySupport(graphRoot: string, runRoot: string): OverlaySupport {
  const cacheDir = join(runRoot, "overlay");
  for (const answer of [true, false]) {
    const file = join(cacheDir, `overlay-${answer}`);
    if (existsSync(file)) return { supported: answer, reason: readFileSync(file, "utf8") };
  }
  const result = probeOverlay(graphRoot);
  try {
    mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(cacheDir, `overlay-${result.supported}`), result.reason);
  } catch {
    // An unwritable run root only costs another probe next time.
  }
  return result;
}

function probeOverlay(graphRoot: string): OverlaySupport {
  if (process.geteuid?.() !== 0) return { supported: false, reason: "overlay mounts need root" };
  mkdirSync(graphRoot, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(graphRoot, ".overlay-probe-"));
  try {
    for (const sub of ["lower1", "lower2", "upper", "work", "merged"]) mkdirSync(join(dir, sub));
    const failure = probeMount({ kind: "overlay", target: join(dir, "merged"), options: "lowerdir=lower1:lower2,upperdir=upper,workdir=work", cwd: dir });
    if (failure !== undefined) return { supported: false, reason: `a test mount of overlayfs on ${graphRoot} failed: ${failure}` };
    return { supported: true, reason: "" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Names of filesystems by statfs magic, as containers-storage prints them. */
const FILESYSTEM_NAMES = new Map<number, string>([
  [0xef53, "extfs"],
  [0x58465342, "xfs"],
  [0x01021994, "tmpfs"],
  [0x9123683e, "btrfs"],
  [0x794c7630, "overlayfs"],
  [0x2fc12fc1, "zfs"],
  [0x6969, "nfs"],
  [0xf2f52010, "f2fs"],
  [0x858458f6, "ramfs"],
  [0x73717368, "squashfs"],
  [0x52654973, "reiserfs"],
  [0xf15f, "ecryptfs"],
  [0x65735546, "fuse"],
]);

/** Filesystems whose directory entries carry the file type (d_type), which overlayfs needs. */
const D_TYPE_FILESYSTEMS = new Set(["extfs", "xfs", "tmpfs", "btrfs", "zfs", "f2fs", "ramfs", "squashfs", "reiserfs", "nfs"]);

function overlayParameter(name: string): boolean {
  try {
    return readFileSync(`/sys/module/overlay/parameters/${name}`, "utf8").trim() === "Y";
  } catch {
    return false;
  }
}

function newLinkId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(LINK_ID_LENGTH));
  let id = "";
  for (const byte of bytes) id += LINK_ALPHABET[byte & 31];
  return id;
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException)?.code;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** A link of l/ to recreate before mounting. */
type LinkRepair = { path: string; target: string };
/** A link as a mount option names it (bare in l/, or absolute in a read-only store) and the diff dir it leads to. */
type ResolvedLink = { mountName: string; dir: string };

export class OverlayDriver implements Driver {
  readonly name = "overlay" as const;
  private readonly home: string;
  private readonly linkDir: string;
  /** Runtime state in the run root: probe results and temporary read-only views. */
  private readonly runDir: string;

  constructor(
    private readonly graphRoot: string,
    runRoot: string,
    private readonly options: OverlayOptions,
    private readonly mounter: Mounter,
  ) {
    this.home = join(graphRoot, "overlay");
    this.linkDir = join(this.home, LINK_DIR);
    this.runDir = join(runRoot, "overlay");
  }

  async init(): Promise<void> {
    mkdirSync(this.linkDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    const marker = join(this.home, MOUNT_PROGRAM_MARKER);
    if (!existsSync(marker)) writeFileSync(marker, String(this.options.mountProgram !== undefined));
    if (this.options.mountProgram === undefined) {
      const support = overlaySupport(this.graphRoot, dirname(this.runDir));
      if (!support.supported) throw new NotSupportedError(`failed to GetDriver graph overlay ${this.graphRoot}: driver not supported: ${support.reason}`);
    }
    this.mounter.releaseStaleViews(this.runDir);
  }

  /** True when diff/changes/diffsize against the parent may read the upper dir directly. */
  private get nativeDiff(): boolean {
    return this.options.mountProgram === undefined && !overlayParameter("redirect_dir") && !overlayParameter("metacopy");
  }

  // ---- where things are -----------------------------------------------------------------------

  /** A layer's directory here, or in the first read-only store that has it. */
  private layerDir(id: string): string {
    const own = join(this.home, id);
    if (existsSync(own)) return own;
    for (const store of this.options.imageStores) {
      const other = join(store, "overlay", id);
      if (existsSync(other)) return other;
    }
    return own;
  }

  /** Where a link name resolves: here (as the bare name, relative to l/) or in a read-only store (absolute). */
  private linkPath(link: string): { mountName: string; absolute: string } | undefined {
    const own = join(this.linkDir, link);
    if (lstatOrNull(own)) return { mountName: link, absolute: own };
    for (const store of this.options.imageStores) {
      const other = join(store, "overlay", LINK_DIR, link);
      if (lstatOrNull(other)) return { mountName: other, absolute: other };
    }
    return undefined;
  }

  /** Link names of the layer itself and of its lower layers (nearest first). */
  private chain(id: string): { own: string; lowers: string[] } {
    const dir = this.layerDir(id);
    const own = readText(join(dir, "link"));
    if (own === undefined) throw new CorruptError(`overlay: layer ${id} has no link file`);
    const lower = readText(join(dir, "lower"));
    const lowers = lower ? lower.split(":").map((entry) => entry.replace(/^l\//, "")) : [];
    return { own, lowers };
  }

  /**
   * Resolves link names to what a mount option names and the diff dir behind it. A link of this
   * store that is missing but named by some layer's link file is answered as it will be once the
   * Mounter has recreated it (listed in repairs); nothing is written here.
   */
  private resolveLinks(id: string, links: string[], repairs: LinkRepair[] = []): ResolvedLink[] {
    let owners: Map<string, string> | undefined;
    return links.map((link) => {
      const found = this.linkPath(link);
      if (found) return { mountName: found.mountName, dir: resolve(dirname(found.absolute), readlinkSync(found.absolute)) };
      owners ??= this.linkOwners();
      const owner = owners.get(link);
      if (owner === undefined) throw new CorruptError(`overlay: layer ${id}: lower layer link ${LINK_DIR}/${link} is missing`);
      repairs.push({ path: join(this.linkDir, link), target: `../${owner}/diff` });
      return { mountName: link, dir: join(this.home, owner, "diff") };
    });
  }

  /** Link name -> layer, from the link files of this store's layers. */
  private linkOwners(): Map<string, string> {
    const owners = new Map<string, string>();
    for (const id of this.listLayerIds()) {
      const link = readText(join(this.home, id, "link"));
      if (link !== undefined) owners.set(link, id);
    }
    return owners;
  }

  /** The diff dirs of the layer's lower layers, nearest first. */
  private lowerDirs(id: string): string[] {
    return this.resolveLinks(id, this.chain(id).lowers).map(({ dir }) => dir);
  }

  // ---- layers ---------------------------------------------------------------------------------

  async create(id: string, request: CreateLayerRequest): Promise<void> {
    if (RESERVED_NAMES.has(id)) throw new InvalidArgumentError(`layer ID "${id}" is reserved by the overlay driver`);
    await this.remove(id);
    const dir = join(this.home, id);
    mkdirSync(dir, { mode: 0o700 });
    const diff = join(dir, "diff");
    if (request.parent === undefined) {
      mkdirSync(diff);
      chmodSync(diff, 0o555);
      mkdirSync(join(dir, "empty"), { mode: 0o700 });
      if (request.copyOf !== undefined) {
        await copyTree(request.copyOf, diff, { from: request.parentIdMaps, to: request.idMaps });
        syncFilesystem(diff);
      }
    } else {
      if (!sameMaps(request.idMaps, request.parentIdMaps)) {
        throw new NotSupportedError(`overlay: layer ${id} cannot use ID maps different from its parent's: lower layers are not shifted`);
      }
      const parentDir = this.layerDir(request.parent);
      const parentLink = readText(join(parentDir, "link"));
      if (parentLink === undefined) throw new CorruptError(`overlay: parent layer ${request.parent} has no link file`);
      const parentLower = readText(join(parentDir, "lower"));
      const parentRoot = lstatSync(join(parentDir, "diff"));
      mkdirSync(diff);
      chownSync(diff, parentRoot.uid, parentRoot.gid);
      chmodSync(diff, parentRoot.mode & 0o7777);
      writeFileSync(join(dir, "lower"), parentLower ? `${LINK_DIR}/${parentLink}:${parentLower}` : `${LINK_DIR}/${parentLink}`);
    }
    mkdirSync(join(dir, "work"), { mode: 0o700 });
    this.makeLink(id);
  }

  /**
   * Makes a new layer's few files and directories durable with an fsync each, and the
   * directories holding them: much cheaper than flushing the whole filesystem, which on a busy
   * machine writes out every other process's data too.
   */
  flushCreated(id: string): void {
    const dir = join(this.home, id);
    for (const path of [join(dir, "link"), join(dir, "lower"), join(dir, "diff"), join(dir, "work"), join(dir, "empty"), dir, this.linkDir, this.home]) {
      fsyncIfPresent(path);
    }
  }

  /** Gives the layer a fresh link ID: the link file first, so that a crash never leaves an unowned symlink. */
  private makeLink(id: string): void {
    for (;;) {
      const link = newLinkId();
      writeFileSync(join(this.home, id, "link"), link);
      try {
        symlinkSync(`../${id}/diff`, join(this.linkDir, link));
        return;
      } catch (error) {
        if (errorCode(error) !== "EEXIST") throw error;
      }
    }
  }

  async remove(id: string): Promise<void> {
    // create() refuses the driver's own names, and the store then cleans up: keep them.
    if (RESERVED_NAMES.has(id)) return;
    const dir = join(this.home, id);
    if (!existsSync(dir)) return;
    const link = readText(join(dir, "link"));
    if (link !== undefined) {
      const linkFile = join(this.linkDir, link);
      try {
        if (readlinkSync(linkFile) === `../${id}/diff`) unlinkSync(linkFile);
      } catch (error) {
        if (errorCode(error) !== "ENOENT" && errorCode(error) !== "EINVAL") throw error;
      }
    }
    this.mounter.releaseUncounted(join(dir, "merged"));
    rmSync(dir, { recursive: true, force: true });
  }

  exists(id: string): boolean {
    return existsSync(join(this.home, id));
  }

  listLayerIds(): string[] {
    if (!existsSync(this.home)) return [];
    return readdirSync(this.home, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !RESERVED_NAMES.has(entry.name))
      .map((entry) => entry.name);
  }

  applyDiff(id: string, source: ByteSource, idMaps: IdMaps, onLayoutChunk?: (chunk: Uint8Array) => void | Promise<void>): Promise<ApplyResult> {
    return applyLayerTar(join(this.home, id, "diff"), source, { whiteouts: "overlay", idMaps, onLayoutChunk });
  }

  contentDir(id: string): string {
    return join(this.layerDir(id), "diff");
  }

  mountPoint(id: string): string {
    return join(this.home, id, "merged");
  }

  // ---- mounting -------------------------------------------------------------------------------

  mountSpec(id: string, request: MountRequest): KernelMountSpec {
    return this.overlaySpec(id, this.mountPoint(id), request);
  }

  /**
   * The overlayfs mount of a layer at target. Read-write: lowerdir = the parent chain (or the
   * layer's empty/ dir), upperdir = diff, workdir = work, both named through the layer's own
   * link so that the ID's length and characters never reach the option string. Read-only:
   * lower dirs only (the layer's own diff first), at least two as the kernel requires. What must
   * exist or go before mounting (a base layer's empty/, the marker a volatile mount leaves) is in
   * the spec's preparation, which the Mounter runs.
   */
  private overlaySpec(id: string, target: string, request: MountRequest): KernelMountSpec {
    const { own, lowers } = this.chain(id);
    const prepare = { directories: [] as string[], remove: [] as string[], links: [] as LinkRepair[] };
    const [self, ...below] = this.resolveLinks(id, [own, ...lowers], prepare.links);
    const emptyName = `${self!.mountName}/../empty`;
    if (below.length === 0) prepare.directories.push(join(this.layerDir(id), "empty"));
    const options: string[] = [];
    if (request.readOnly) {
      const layers = [self!.mountName, ...below.map((b) => b.mountName)];
      if (layers.length === 1) layers.push(emptyName);
      this.checkDepth(id, layers.length);
      options.push(`lowerdir=${layers.join(":")}`, ...READ_ONLY_MOUNT_OPTIONS);
    } else {
      const layers = below.length > 0 ? below.map((b) => b.mountName) : [emptyName];
      this.checkDepth(id, layers.length);
      options.push(`lowerdir=${layers.join(":")}`, `upperdir=${self!.mountName}`, `workdir=${self!.mountName}/../work`);
      if (request.volatile) options.push("volatile");
      // After a volatile mount the kernel refuses the work dir until this marker is gone.
      prepare.remove.push(join(this.layerDir(id), "work", "work", "incompat", "volatile"));
    }
    options.push(...this.options.mountOptions, ...request.options);
    const joined = options.join(",");
    if (this.options.mountProgram === undefined && Buffer.byteLength(joined) > MOUNT_OPTIONS_MAX_BYTES) {
      throw new NotSupportedError(`overlay: the mount options of layer ${id} take ${Buffer.byteLength(joined)} bytes, more than the kernel's limit of ${MOUNT_OPTIONS_MAX_BYTES}`);
    }
    return { kind: "overlay", target, options: joined, cwd: this.linkDir, program: this.options.mountProgram, prepare };
  }

  private checkDepth(id: string, lowerCount: number): void {
    if (lowerCount > MAX_LOWER_LAYERS) {
      throw new NotSupportedError(`max depth exceeded: layer ${id} needs ${lowerCount} lower layers, overlayfs stacks at most ${MAX_LOWER_LAYERS}`);
    }
  }

  // ---- comparing ------------------------------------------------------------------------------

  changes(request: CompareRequest): Promise<Change[]> {
    if (this.readsUpperDir(request)) return Promise.resolve(overlayChanges(this.contentDir(request.id), this.lowerDirs(request.id), request.idMaps));
    return this.withViews(request, (from, layer) => naiveChanges(from, layer, request.idMaps));
  }

  async diffSize(request: CompareRequest): Promise<number> {
    if (this.readsUpperDir(request)) return overlayDiffSize(this.contentDir(request.id));
    return this.withViews(request, (from, layer) => naiveDiffSize(from, layer, request.idMaps));
  }

  async diff(request: CompareRequest, sink: ByteSink): Promise<void> {
    if (this.readsUpperDir(request)) return exportOverlayDiff(this.contentDir(request.id), this.lowerDirs(request.id), sink, request.idMaps);
    return this.withViews(request, (from, layer) => naiveDiff(from, layer, sink, request.idMaps));
  }

  private readsUpperDir(request: CompareRequest): boolean {
    return request.fromIsParent && this.nativeDiff;
  }

  /**
   * Runs fn with the merged views of FROM (null for none) and the layer: a layer that is
   * mounted already is read through its mount; otherwise the Mounter mounts it read-only in a
   * temporary directory of the run root for the duration of fn.
   */
  private async withViews<T>(request: CompareRequest, fn: (from: string | null, layer: string) => Promise<T>): Promise<T> {
    const made = new Map<string, string>();
    const view = (id: string): string => {
      const existing = this.mounter.mountPoint(id) ?? made.get(id);
      if (existing !== undefined) return existing;
      const target = this.mounter.mountView(this.runDir, (at) => this.overlaySpec(id, at, { readOnly: true, options: [], volatile: false, mountLabel: "" }));
      made.set(id, target);
      return target;
    };
    try {
      const from = request.from === undefined ? null : view(request.from);
      return await fn(from, view(request.id));
    } finally {
      for (const target of made.values()) this.mounter.releaseView(target);
    }
  }

  // ---- store-wide -----------------------------------------------------------------------------

  status(): Array<[string, string]> {
    const backing = FILESYSTEM_NAMES.get(statfsSync(this.home).type) ?? `unknown (0x${statfsSync(this.home).type.toString(16)})`;
    return [
      ["Backing Filesystem", backing],
      ["Supports d_type", String(D_TYPE_FILESYSTEMS.has(backing))],
      ["Native Overlay Diff", String(this.nativeDiff)],
      ["Using metacopy", String(this.options.mountProgram === undefined && overlayParameter("metacopy"))],
    ];
  }

  /**
   * Releases what the driver holds besides counted mounts: temporary views of dead processes,
   * and merged mounts that no count accounts for (left by a process killed while mounting, or
   * a FUSE mount whose program died). This driver makes no private bind mount of its home.
   */
  async shutdown(): Promise<void> {
    this.mounter.releaseStaleViews(this.runDir);
    const prefix = `${this.home}/`;
    const points = kernelMountPoints();
    for (const point of points) {
      if (!point.startsWith(prefix) || !point.endsWith("/merged")) continue;
      const id = point.slice(prefix.length, -"/merged".length);
      if (id.includes("/") || this.mounter.count(id) > 0) continue;
      this.mounter.releaseUncounted(point, points);
    }
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

function lstatOrNull(path: string): ReturnType<typeof lstatSync> | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT" || errorCode(error) === "ENOTDIR") return null;
    throw error;
  }
}
