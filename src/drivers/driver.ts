/**
 * The storage driver contract. A driver owns the directories of layers under
 * <graphroot>/<driver name>/ and nothing else: it never touches the database (the Store passes
 * in what it needs) and it never mounts by itself (it describes mounts as data, and the
 * Mounter runs them and counts them in the run root).
 */
import type { ApplyResult, ByteSink, ByteSource, Change } from "../archive/types.ts";
import type { ComparedMaps } from "../archive/naive-diff.ts";
import type { IdMaps } from "../idmap.ts";

/** The file in the run root where the Mounter keeps its counts; made by the first mount, before it mounts anything. */
export const MOUNT_COUNTS_FILE = "mounts.db";
/**
 * The file in the run root that exists while a kernel mount is being made or ended: the Mounter
 * makes it (holding the counts' lock) before it runs mount(8) or umount(8), and removes it (holding
 * the lock again) once the count is committed. Left behind, it means a process died between the
 * kernel and the count; while it is absent every kernel mount is counted, so a command at start
 * need not read the mount table (nor open the counts) to release what nobody counts.
 */
export const MOUNT_CHANGE_MARK = "mounts.changing";

/** A kernel (or FUSE) mount described as data; making it is the Mounter's job. */
export interface KernelMountSpec {
  kind: "overlay";
  /** Where the merged view appears. */
  target: string;
  /** The -o option string for mount(8), e.g. "lowerdir=l/A:l/B,upperdir=...,workdir=...". */
  options: string;
  /** Directory to run mount(8) in, so that relative lower dirs stay short. */
  cwd: string;
  /** A FUSE program (e.g. fuse-overlayfs) to run instead of mount(8). */
  program?: string;
  /** What the Mounter does just before mounting: directories to make (0700), paths to remove, symlinks to make. */
  prepare?: { directories?: string[]; remove?: string[]; links?: Array<{ path: string; target: string }> };
}

/** A mount described as data. "directory" needs no kernel mount (vfs). Describing one changes nothing on disk. */
export type MountSpec = { kind: "directory"; path: string } | KernelMountSpec;

/** A layer to see as a read-only merged tree, and how to mount it when it has no mount of its own. */
export interface ViewRequest {
  layer: string;
  /** The read-only mount of the layer at target. */
  describe: (target: string) => KernelMountSpec;
}

/**
 * Read-only merged trees of layers, for a driver that compares layers by their full trees (the
 * Mounter provides them; the driver never mounts by itself).
 */
export interface LayerViews {
  /** Runs fn with a read-only tree of each layer: its live mount, or a temporary view that is released when fn ends. */
  withViews<T>(requests: ViewRequest[], fn: (paths: string[]) => Promise<T>): Promise<T>;
  /** Releases temporary views whose owning process is gone. */
  releaseStale(): void;
}

export interface MountRequest {
  readOnly: boolean;
  /** Extra mount options (overlay.mountopt, mount --opt), comma-separated. */
  options: string[];
  volatile: boolean;
  mountLabel: string;
}

/**
 * A new layer. Its content starts as its parent's tree, or as its template's (a copy of another
 * layer: an image's mapped top layer), re-owned from that layer's ID maps to the new layer's
 * when they differ; a base layer without a template starts empty, owned by container root.
 */
export interface CreateLayerRequest {
  /** Parent layer ID (the layer's recorded parent), or undefined for a base layer. */
  parent: string | undefined;
  idMaps: IdMaps;
  /** Maps of the parent. */
  parentIdMaps: IdMaps;
  /** A layer whose whole tree the new layer starts as, with that layer's maps (instead of the parent's tree). */
  template?: { id: string; idMaps: IdMaps };
  /** The layer tar that will be applied next, readable ahead (vfs leaves out of its copy what the tar removes). */
  preview?: LayerPreview;
}

/** A layer tar that can be read before it is applied. */
export interface LayerPreview {
  read(): ByteSource;
  /** The digest its bytes must have to be trusted; none when they come from a private file that the apply reads too. */
  digest?: string;
}

/** The reference a diff, changes or diffsize compares against. */
export interface CompareRequest {
  id: string;
  /** The layer compared with; undefined means an empty tree. */
  from: string | undefined;
  /** True when `from` is the layer's own parent (lets overlay read its upper dir directly). */
  fromIsParent: boolean;
  /** The layer's maps: owners are compared and exported as container IDs. */
  idMaps: IdMaps;
  /** The maps of `from`. */
  fromIdMaps: IdMaps;
}

/** The maps of both sides of a comparison, as the generic comparison (archive/naive-diff.ts) takes them. */
export function comparedMaps(request: CompareRequest): ComparedMaps {
  return { from: request.fromIdMaps, layer: request.idMaps };
}

export interface Driver {
  readonly name: "vfs" | "overlay";
  /** Creates the driver's home and any one-time state (overlay: probes, private mount). */
  init(): Promise<void>;
  /** Makes a layer as CreateLayerRequest describes (vfs: a full copy of the parent). Idempotent over a half-made directory. */
  create(id: string, request: CreateLayerRequest): Promise<void>;
  /** Makes what create() made durable, before the layer is marked complete. */
  flushCreated(id: string): void;
  /** Removes a layer's directories; missing ones are not an error. */
  remove(id: string): Promise<void>;
  /** True when the layer's directory exists. */
  exists(id: string): boolean;
  /** Layer IDs that have a directory here, for consistency checks. */
  listLayerIds(): string[];
  /** What is wrong in the driver's own bookkeeping of a layer, one line each, for `check` (overlay: its l/ short link). */
  layoutProblems(id: string): string[];
  /** Repairs what layoutProblems reports, from the layer's own files (`check --repair`). */
  repairLayout(id: string): void;
  /** Applies a layer tar on top of the layer's content. */
  applyDiff(id: string, source: ByteSource, idMaps: IdMaps, onLayoutChunk?: (chunk: Uint8Array) => void | Promise<void>): Promise<ApplyResult>;
  /** The directory holding the files that belong to this layer (vfs: the full tree; overlay: diff/). */
  contentDir(id: string): string;
  /** Where the layer appears when mounted (printed by `mount`). */
  mountPoint(id: string): string;
  /** Describes how to mount the layer, as data: no file is made or removed (the Mounter prepares and mounts). */
  mountSpec(id: string, request: MountRequest): MountSpec;
  changes(request: CompareRequest): Promise<Change[]>;
  diffSize(request: CompareRequest): Promise<number>;
  /** Writes the differences as an uncompressed layer tar. */
  diff(request: CompareRequest, sink: ByteSink): Promise<void>;
  /** `status` lines after the common ones. */
  status(): Array<[string, string]>;
  /** Releases driver-wide resources (overlay: temporary views of dead processes). */
  shutdown(): Promise<void>;
}
