/**
 * The Store: the one API commands (and the coming image transports) call. It is a thin front:
 * each method hands the shared parts (parts.ts) to the part that owns the job —
 *
 *   layer-lifecycle.ts  making and removing layers, the crash protocol
 *   recovery.ts         cleaning up after writers that died
 *   check.ts            `check` and `check --repair`
 *   read-only-stores.ts other stores' layers and images, visible but never written
 *   lookup.ts           references to records;  names.ts  names and metadata
 *   images.ts / containers.ts / data-items.ts / layer-diffs.ts / mounts.ts
 *
 * and keeps DESIGN.md's invariants through them: rows are written before content exists and
 * marked complete after it is on disk, deletion marks first, the next writer cleans up.
 *
 * What a command does not use costs it nothing: records are read as soon as the database is
 * open, while the driver, the Mounter and the parts that work on layer content (containers,
 * mounts, recovery, check) are loaded by the first method that needs them (`content()`).
 */
import type { Database } from "bun:sqlite";
import type { ByteSink, ByteSource, Change, Compression, TarMeter } from "../archive/types.ts";
import { canonicalDriverName, defaultDriverName } from "../drivers/index.ts";
import type { LayerPreview } from "../drivers/driver.ts";
import { InitError, LayerInUseError, LayerUnknownError } from "../errors.ts";
import * as blobLocations from "./blob-locations.ts";
import { Catalog } from "./catalog.ts";
import type { Finding, RepairOutcome } from "./check.ts";
import type { CreateContainerOptions } from "./containers.ts";
import * as dataItems from "./data-items.ts";
import { SCHEMA_VERSION, openDatabase } from "./database.ts";
import * as images from "./images.ts";
import * as diffs from "./layer-diffs.ts";
import * as layers from "./layer-lifecycle.ts";
import * as lookup from "./lookup.ts";
import type { MountOptions, ParentOwners } from "./mounts.ts";
import * as names from "./names.ts";
import type { StoreOptions } from "./options.ts";
import { type CatalogParts, type StoreParts, catalogParts, withContent } from "./parts.ts";
import type { BigDataInfo, ContainerRecord, ImageRecord, ImageSummary, LayerRecord, LayerSummary, ListingLines, ObjectKind } from "./records.ts";
import { recoveryNeeded } from "./recovery-check.ts";

export type { KnownLayerBlob, LayerBlob } from "./blob-locations.ts";
export type { CreateContainerOptions };
export type { CreateImageOptions, ImageDeletion } from "./images.ts";
export type { CreateLayerOptions } from "./layer-lifecycle.ts";
export type { MountOptions, ParentOwners } from "./mounts.ts";
export { imageStorePaths } from "./read-only-stores.ts";

/** How openStore opens a store. */
export interface OpenStoreOptions {
  /** False for `check`, which must see what crashed writers left. */
  recover?: boolean;
  /** Receives the one line said when recovery has to wait (a full or read-only graph root). */
  notice?: (line: string) => void;
}

/**
 * Opens the store described by options, creating its graph root and database on first use.
 * Unless recover is false (for `check`), the work of crashed writers is cleaned up first; when
 * the graph root cannot take the writes that needs, that waits for a later command and notice
 * says so once. The driver is started here only for a new store (so that a driver that fails
 * to start is never recorded) or when driver options are given (so that bad ones fail every
 * command, as in 1.43); otherwise by the first command that needs layer content, which also
 * makes the run root.
 */
export async function openStore(options: StoreOptions, { recover = true, notice }: OpenStoreOptions = {}): Promise<Store> {
  const database = await openDatabase(options.graphRoot, "oci-storage.db");
  const { db } = database;
  const catalog = new Catalog(db);
  const base = catalogParts(options, { ...database, path: `${options.graphRoot}/oci-storage.db` }, catalog);
  const recorded = catalog.getInfo("driver");
  const store = new Store(db, base, await chooseDriver(recorded, options));
  if (recorded === undefined || options.driverOptions.length > 0) await store.content();
  if (recorded === undefined) recordDriver(base, store.driverName);
  if (recover) {
    const deferred = await store.recover();
    if (deferred) notice?.(deferred);
  }
  return store;
}

/** An existing store keeps its driver; a new one gets the driver asked for or the default. */
async function chooseDriver(recorded: string | undefined, options: StoreOptions): Promise<string> {
  const asked = options.driver === undefined ? undefined : canonicalDriverName(options.driver);
  if (recorded !== undefined && asked !== undefined && asked !== recorded) {
    throw new InitError(`the store at ${options.graphRoot} uses the ${recorded} driver, not ${asked}; use -s ${recorded} or another --graph`);
  }
  return recorded ?? asked ?? (await defaultDriverName(options.graphRoot, options.runRoot));
}

/**
 * Records a new store's driver once it has started, so that a driver that fails to start is
 * never recorded; a new store gets its space reserve then too.
 */
function recordDriver(parts: CatalogParts, name: string): void {
  parts.tx(() => {
    const recorded = parts.catalog.getInfo("driver");
    if (recorded !== undefined && recorded !== name) throw new InitError(`the store at ${parts.options.graphRoot} uses the ${recorded} driver, not ${name}`);
    parts.catalog.setInfo("driver", name);
  });
  parts.reserve.make();
}

export class Store {
  private loading: Promise<StoreParts> | undefined;
  /** The content parts once loaded (for close). */
  private loaded: StoreParts | undefined;

  constructor(
    private readonly db: Database,
    private readonly parts: CatalogParts,
    /** The store's driver: recorded in its database, or chosen for a new store. */
    readonly driverName: string,
  ) {}

  /** The parts with layer content: the driver (started), the Mounter, this process's token; loaded on first use. */
  async content(): Promise<StoreParts> {
    this.loading ??= withContent(this.parts, this.driverName);
    this.loaded = await this.loading;
    return this.loaded;
  }

  get options(): StoreOptions {
    return this.parts.options;
  }

  get graphRoot(): string {
    return this.parts.options.graphRoot;
  }

  get runRoot(): string {
    return this.parts.options.runRoot;
  }

  /** The version of the SQLite library the store runs on. */
  get sqliteVersion(): string {
    return (this.db.query("SELECT sqlite_version() AS v").get() as { v: string }).v;
  }

  /** The database schema version this build writes. */
  get schemaVersion(): number {
    return SCHEMA_VERSION;
  }

  /** Closes the database and the mount counts; a space reserve given up by a deletion is made again. */
  close(): void {
    this.loaded?.mounter.close();
    this.parts.catalog.finalize();
    this.db.close();
    this.parts.reserve.restore();
  }

  // ---- recovery and check (recovery.ts, check.ts) ------------------------------------------------

  /**
   * Finishes or undoes the work of writers that died, then releases mounts no process counted;
   * loads nothing when there is nothing to do. Returns the line to say when that had to wait
   * because the graph root takes no writes.
   */
  async recover(): Promise<string | undefined> {
    if (!recoveryNeeded(this.parts, this.driverName)) return undefined;
    const [parts, { recover }] = await Promise.all([this.content(), import("./recovery.ts")]);
    return recover(parts);
  }

  /** Every inconsistency in the store right now (`check`). */
  async check(): Promise<Finding[]> {
    const [parts, { checkStore }] = await Promise.all([this.content(), import("./check.ts")]);
    return checkStore(parts);
  }

  /** Repairs what can be repaired and reports every problem found (`check --repair`). */
  async repair(): Promise<RepairOutcome[]> {
    const [parts, { repairStore }] = await Promise.all([this.content(), import("./check.ts")]);
    return repairStore(parts);
  }

  // ---- resolving references (lookup.ts) ----------------------------------------------------------

  /** The layer a reference names (ID, name or unique prefix), or undefined; read-only stores are searched last. */
  findLayer(ref: string): LayerRecord | undefined {
    return lookup.findLayer(this.parts, ref);
  }

  /** The layer a reference names; LayerUnknownError when there is none. */
  layer(ref: string): LayerRecord {
    return lookup.requireLayer(this.parts, ref);
  }

  /** The image a reference names, or undefined; read-only stores are searched last. */
  findImage(ref: string): ImageRecord | undefined {
    return lookup.findImage(this.parts, ref);
  }

  /** Containers resolve by ID, name, their layer's ID, or unique ID prefix. */
  findContainer(ref: string): ContainerRecord | undefined {
    return lookup.findContainer(this.parts, ref);
  }

  // ---- listings (read-only-stores.ts) ------------------------------------------------------------

  /** Layers in creation order: the writable store's, then each read-only store's. */
  layers(): LayerRecord[] {
    return this.parts.roots.listEverywhere((catalog) => catalog.listLayers());
  }

  images(): ImageRecord[] {
    return this.parts.roots.listEverywhere((catalog) => catalog.listImages());
  }

  /** The `images` text listing, made by the database (lines: how each image's lines look); read-only stores' images follow. */
  imageListing(lines: ListingLines): string {
    return this.parts.roots.textEverywhere((catalog) => catalog.listingText("image", lines));
  }

  /** The `containers` text listing, made by the database (lines: how each container's lines look). */
  containerListing(lines: ListingLines): string {
    return this.parts.catalog.listingText("container", lines);
  }

  /** layers() cut down to IDs and names, for listings that show no more. */
  layerSummaries(): LayerSummary[] {
    return this.parts.roots.listEverywhere((catalog) => catalog.listLayerSummaries());
  }

  /** images() cut down to IDs, names and layers. */
  imageSummaries(): ImageSummary[] {
    return this.parts.roots.listEverywhere((catalog) => catalog.listImageSummaries());
  }

  containers(): ContainerRecord[] {
    return this.parts.catalog.listContainers();
  }

  // ---- names and metadata (names.ts) -------------------------------------------------------------

  namesOf(ref: string): string[] {
    return names.namesOf(this.parts, ref);
  }

  /** Adds names (or replaces them all) on the object a reference names; names move from other objects of its kind. */
  changeNames(ref: string, newNames: string[], mode: "add" | "set"): string[] {
    return names.changeNames(this.parts, ref, newNames, mode);
  }

  metadataOf(ref: string): string | undefined {
    return names.metadataOf(this.parts, ref);
  }

  setMetadata(ref: string, metadata: string): void {
    names.setMetadata(this.parts, ref, metadata);
  }

  // ---- layers (layer-lifecycle.ts, layer-diffs.ts) -----------------------------------------------

  async createLayer(options: layers.CreateLayerOptions): Promise<LayerRecord> {
    return layers.createLayer(await this.content(), options);
  }

  /**
   * create-layer followed by applydiff of source; the layer is removed again if applying fails.
   * `verify` sees the applied values before the layer is marked complete and may refuse them;
   * `preview` reads the same tar ahead (vfs then leaves out of its copy what the tar removes).
   */
  async importLayer(options: layers.CreateLayerOptions, source: ByteSource, verify?: (applied: LayerRecord) => void, preview?: LayerPreview): Promise<LayerRecord> {
    return layers.importLayer(await this.content(), options, source, verify, preview);
  }

  /** importLayer that returns while the layer is still flushed; its complete() marks it complete (layer-lifecycle.ts). */
  async importLayerFlushingBehind(
    options: layers.CreateLayerOptions,
    source: ByteSource,
    verify?: (applied: LayerRecord) => void,
    preview?: LayerPreview,
  ): Promise<layers.LayerBeingFlushed> {
    return layers.importLayerFlushingBehind(await this.content(), options, source, verify, preview);
  }

  /** Waits while another process makes or removes the layer with this ID (layer-lifecycle.ts). */
  async layerMadeElsewhere(id: string): Promise<"complete" | "gone" | "stuck"> {
    return layers.layerMadeElsewhere(await this.content(), id);
  }

  /** Applies a layer tar to an existing layer; a crash mid-way leaves it as it was before. */
  async applyDiff(ref: string, source: ByteSource): Promise<void> {
    return layers.applyDiff(await this.content(), ref, source);
  }

  /** delete-layer: refuses layers that children, images or containers still use. */
  async deleteLayer(ref: string): Promise<void> {
    return layers.deleteLayer(await this.content(), ref);
  }

  async changes(ref: string, fromRef?: string): Promise<Change[]> {
    return diffs.changes(await this.content(), ref, fromRef);
  }

  async diffSize(ref: string, fromRef?: string): Promise<number> {
    return diffs.diffSize(await this.content(), ref, fromRef);
  }

  /** Writes a layer's diff (by default compressed as its last applied input was); meter counts its uncompressed bytes. */
  async diff(ref: string, fromRef: string | undefined, sink: ByteSink, compression?: Compression, meter?: TarMeter): Promise<void> {
    return diffs.diff(await this.content(), ref, fromRef, sink, compression, meter);
  }

  // ---- data items (data-items.ts) ----------------------------------------------------------------

  /** The data items of a layer, image or container record. */
  bigDataItems(kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }): BigDataInfo[] {
    return dataItems.bigDataItems(this.parts, kind, record);
  }

  /** Reads a named data item of a layer, image or container record (an image's from the first store whose image with that ID has it). */
  bigData(kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }, name: string): Uint8Array | undefined {
    return dataItems.bigData(this.parts, kind, record, name);
  }

  /** The size and digest of a named data item, found as bigData finds it. */
  bigDataItem(kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }, name: string): BigDataInfo | undefined {
    return dataItems.bigDataItem(this.parts, kind, record, name);
  }

  /** Stores a data item; image items named manifest* also feed the image's digests. */
  setBigData(kind: ObjectKind, id: string, name: string, data: Uint8Array): void {
    dataItems.setBigData(this.parts, kind, id, name, data);
  }

  // ---- images (images.ts) ------------------------------------------------------------------------

  createImage(options: images.CreateImageOptions): ImageRecord {
    return images.createImage(this.parts, options);
  }

  /** An image with its names, data items, digest and metadata in one transaction (a pull's end). */
  importImage(plan: images.ImageImportPlan): ImageRecord {
    return images.importImage(this.parts, plan);
  }

  /** The image's digest list: its digest, then the distinct digests of manifest* items. */
  imageDigests(image: ImageRecord): string[] {
    return images.imageDigests(image);
  }

  imagesByDigest(digest: string): ImageRecord[] {
    return images.imagesByDigest(this.parts, digest);
  }

  /** The size shown by `image`: every layer reachable from the top layers plus the data items. */
  async imageSize(image: ImageRecord): Promise<number> {
    return images.imageSize(await this.content(), image);
  }

  /** Deletes an image and the layers only it used; with test, only computes which layers would go. */
  async deleteImage(ref: string, test: boolean): Promise<images.ImageDeletion> {
    return images.deleteImage(await this.content(), ref, test);
  }

  // ---- containers (containers.ts) ----------------------------------------------------------------

  /** A container on the image imageRef names; "" (as in containers-storage 1.43) makes one on no image. */
  async createContainer(imageRef: string, options: CreateContainerOptions): Promise<ContainerRecord> {
    const [parts, containers] = await this.withPart(import("./containers.ts"));
    return containers.createContainer(parts, imageRef, options);
  }

  /** A container's private directory under the graph root (data) or run root (run), created 0700 if missing. */
  async containerDir(container: ContainerRecord, where: "data" | "run"): Promise<string> {
    const [parts, containers] = await this.withPart(import("./containers.ts"));
    return containers.containerDir(parts, container, where);
  }

  /** The size shown by `container`: its layer's diffsize, its data items and the files in its directories. */
  async containerSize(container: ContainerRecord): Promise<number> {
    const [parts, containers] = await this.withPart(import("./containers.ts"));
    return containers.containerSize(parts, container);
  }

  async deleteContainer(ref: string): Promise<void> {
    const [parts, containers] = await this.withPart(import("./containers.ts"));
    return containers.deleteContainer(parts, ref);
  }

  /** `delete`: container, else image (record only), else layer (no safety checks). */
  async deleteAny(ref: string): Promise<void> {
    const container = this.findContainer(ref);
    if (container) {
      const [parts, containers] = await this.withPart(import("./containers.ts"));
      return containers.destroyContainer(parts, container, "userdata");
    }
    const image = this.findImage(ref);
    if (image && !image.fromReadOnlyStore) {
      if (!images.deleteImageRecord(this.parts, image.id)) throw new LayerUnknownError();
      return;
    }
    const layer = this.findLayer(ref);
    if (layer && !layer.fromReadOnlyStore && (await layers.destroyLayer(await this.content(), layer.id))) return;
    throw new LayerUnknownError();
  }

  // ---- mounts (mounts.ts) ------------------------------------------------------------------------

  /** Mounts a container's layer or a layer (or, read-only, an image's top layer) and returns the mount point. */
  async mount(ref: string, options: MountOptions): Promise<string> {
    const [parts, mounts] = await this.withPart(import("./mounts.ts"));
    return mounts.mount(parts, ref, options);
  }

  /** Drops one user of a mount (all with force). Returns "unmounted" when it is no longer mounted, "image" for image refs. */
  async unmount(ref: string, force: boolean): Promise<"unmounted" | "still-mounted" | "image"> {
    const [parts, mounts] = await this.withPart(import("./mounts.ts"));
    return mounts.unmount(parts, ref, force);
  }

  /** The mount count of a container's or layer's layer. */
  async mountCount(ref: string): Promise<number> {
    const [parts, mounts] = await this.withPart(import("./mounts.ts"));
    return mounts.mountCount(parts, ref);
  }

  /** The mount points of mounted layers, by layer ID. */
  async mountPoints(): Promise<Map<string, string>> {
    return new Map((await this.content()).mounter.mounted().map((m) => [m.layer, m.path]));
  }

  /** Host owners of the directories above a mapped layer's mount point that its maps do not cover. */
  async parentOwners(layer: LayerRecord, errorPrefix: string): Promise<ParentOwners> {
    const [parts, mounts] = await this.withPart(import("./mounts.ts"));
    return mounts.parentOwners(parts, layer, errorPrefix);
  }

  /** Copies a host path or a path in a layer to a host path or a path in a layer; layers are mounted for the copy. */
  async copyPath(from: { layer?: string; path: string }, to: { layer?: string; path: string }, chown?: { uid: number; gid: number }): Promise<void> {
    const [parts, mounts] = await this.withPart(import("./mounts.ts"));
    return mounts.copyPath(parts, from, to, chown);
  }

  // ---- registry blob locations: hints for push (blob-locations.ts) ------------------------------

  /** Remembers that registry/repository holds the blob; a store that cannot be written skips it (returns false). */
  rememberBlobLocation(digest: string, registry: string, repository: string): boolean {
    return blobLocations.rememberBlobLocation(this.parts, digest, registry, repository);
  }

  /** Remembers that a compressed blob holds the layer with this diffID; a store that cannot be written skips it (returns false). */
  rememberLayerBlob(diffId: string, blob: blobLocations.LayerBlob): boolean {
    return blobLocations.rememberLayerBlob(this.parts, diffId, blob);
  }

  /** The compressed blobs known to hold a layer, each with the repositories of `registry` known to hold it. */
  knownLayerBlobs(diffId: string, registry: string): blobLocations.KnownLayerBlob[] {
    return blobLocations.knownLayerBlobs(this.parts, diffId, registry);
  }

  /** The repositories of `registry` known to hold a blob. */
  blobRepositories(digest: string, registry: string): string[] {
    return blobLocations.blobRepositories(this.parts, digest, registry);
  }

  // ---- store-wide --------------------------------------------------------------------------------

  async status(): Promise<Array<[string, string]>> {
    return [
      ["Root", this.graphRoot],
      ["Run Root", this.runRoot],
      ["Driver Name", this.driverName],
      ["Driver Options", `[${this.options.driverOptions.join(" ")}]`],
      ...(await this.content()).driver.status(),
    ];
  }

  /** Releases driver resources; with force unmounts every layer first, else refuses while any is mounted; mounts no count accounts for go too. */
  async shutdown(force: boolean): Promise<void> {
    const [parts, mounts] = await this.withPart(import("./mounts.ts"));
    const mounted = parts.mounter.mounted();
    if (mounted.length > 0 && !force) throw new LayerInUseError("a layer is mounted: layer is in use by a container");
    for (const m of mounted) parts.mounter.unmount(m.layer, true);
    mounts.releaseUncountedLayerMounts(parts);
    await parts.driver.shutdown();
  }

  /** Deletes every container, image and layer (newest layers first). */
  async wipe(): Promise<void> {
    const [parts, containers] = await this.withPart(import("./containers.ts"));
    for (const container of this.containers().reverse()) await containers.destroyContainer(parts, container, "whole");
    for (const image of this.parts.catalog.listImages().reverse()) images.deleteImageRecord(this.parts, image.id);
    for (const layer of this.parts.catalog.listLayers().reverse()) await layers.destroyLayer(parts, layer.id);
  }

  /** The content parts together with a part module that works on layer content, both loaded on first use. */
  private withPart<M>(part: Promise<M>): Promise<[StoreParts, M]> {
    return Promise.all([this.content(), part]);
  }
}
