/**
 * The Store: the one API commands call. It owns the database transactions and combines them
 * with the driver (layer content) and the mounter (mount counts), keeping DESIGN.md's
 * invariants: rows are written before content exists and marked complete after it is on
 * disk, deletion marks first, and the next writer cleans up after crashed ones.
 */
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { type CopyEndpoint, copyPath } from "../archive/copy.ts";
import { nowNs } from "../util/time.ts";
import { compressingSink } from "../archive/compression.ts";
import { reproduceTar } from "../archive/layout.ts";
import type { ByteSink, ByteSource, Change } from "../archive/types.ts";
import { Compression } from "../archive/types.ts";
import type { Driver } from "../drivers/driver.ts";
import { canonicalDriverName, createDriver, defaultDriverName } from "../drivers/index.ts";
import { Mounter } from "../drivers/mounter.ts";
import {
  ContainerUnknownError,
  IdInUseError,
  ImageInUseError,
  ImageUnknownError,
  InitError,
  LayerInUseError,
  LayerUnknownError,
  NameInUseError,
  NotAContainerError,
  NotALayerError,
  NotAnImageError,
  NotAnyObjectError,
  NotSupportedError,
  StorageError,
} from "../errors.ts";
import { type IdMaps, NO_ID_MAPS, sameMaps } from "../idmap.ts";
import { copyTree } from "../drivers/copy-tree.ts";
import { syncFilesystem } from "../sys/libc.ts";
import { Catalog } from "./catalog.ts";
import { SCHEMA_VERSION, immediate, openDatabase } from "./database.ts";
import { sha256Digest, validateDigest } from "./digest.ts";
import { generateId, validateId } from "./ids.ts";
import { releaseUncountedMounts } from "./check.ts";
import { crashPoint } from "../util/crash-points.ts";
import { isTokenAlive, processToken } from "../sys/liveness.ts";
import type { StoreOptions } from "./options.ts";
import {
  type BigDataInfo,
  type ContainerRecord,
  type ImageRecord,
  type ImageSummary,
  type LayerRecord,
  type LayerSummary,
  NOTHING_APPLIED,
  type ObjectKind,
  newLayerRecord,
} from "./records.ts";

export interface CreateLayerOptions {
  id?: string;
  names: string[];
  parent?: string;
  mountLabel?: string;
  readOnly?: boolean;
  idMaps?: IdMaps;
}

export interface CreateImageOptions {
  id?: string;
  names: string[];
  topLayer?: string;
  metadata?: string;
  digest?: string;
}

export interface CreateContainerOptions {
  id?: string;
  names: string[];
  metadata?: string;
  volatile?: boolean;
  idMaps?: IdMaps;
}

export interface MountOptions {
  readOnly?: boolean;
  mountLabel?: string;
  options?: string[];
}

/** The result of deleting one image: the layers it took with it. */
export interface ImageDeletion {
  deletedLayers: string[];
}

/** Removes duplicates, keeping the first occurrence. */
function unique(items: string[]): string[] {
  return [...new Set(items)];
}

/**
 * Opens the store described by options, creating its directories and database on first use.
 * Unless recover is false (for `check`), the work of crashed writers is cleaned up first.
 */
export async function openStore(options: StoreOptions, { recover = true }: { recover?: boolean } = {}): Promise<Store> {
  for (const dir of [options.graphRoot, options.runRoot]) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new InitError(`creating ${dir}: ${(e as Error).message}`);
    }
  }
  const db = openDatabase(join(options.graphRoot, "oci-storage.db"));
  const catalog = new Catalog(db);
  const driverName = chooseDriver(catalog, options);
  const mounter = new Mounter(options.runRoot);
  const driver = createDriver(driverName, { graphRoot: options.graphRoot, runRoot: options.runRoot, options: options.driverOptions, mounter });
  await driver.init();
  recordDriver(catalog, db, options, driverName);
  const store = new Store(options, db, catalog, driver, mounter);
  if (recover) await store.recover();
  return store;
}

/** An existing store keeps its driver; a new one gets the driver asked for or the default. */
function chooseDriver(catalog: Catalog, options: StoreOptions): string {
  const asked = options.driver === undefined ? undefined : canonicalDriverName(options.driver);
  const recorded = catalog.getInfo("driver");
  if (recorded !== undefined && asked !== undefined && asked !== recorded) {
    throw new InitError(`the store at ${options.graphRoot} uses the ${recorded} driver, not ${asked}; use -s ${recorded} or another --graph`);
  }
  return recorded ?? asked ?? defaultDriverName(options.graphRoot, options.runRoot);
}

/** Records a new store's driver once it has started, so that a driver that fails to start is never recorded. */
function recordDriver(catalog: Catalog, db: Database, options: StoreOptions, name: string): void {
  if (catalog.getInfo("driver") === name) return;
  immediate(db, () => {
    const recorded = catalog.getInfo("driver");
    if (recorded !== undefined && recorded !== name) throw new InitError(`the store at ${options.graphRoot} uses the ${recorded} driver, not ${name}`);
    catalog.setInfo("driver", name);
  });
}

/** Graph roots of read-only image stores named by driver options (`<driver>.imagestore=`, `.additionalimagestore=`). */
export function imageStorePaths(driverOptions: string[]): string[] {
  const paths: string[] = [];
  for (const option of driverOptions) {
    const eq = option.indexOf("=");
    const key = option.slice(0, eq).toLowerCase();
    const bare = key.slice(key.lastIndexOf(".") + 1);
    if (bare === "imagestore" || bare === "additionalimagestore") paths.push(...option.slice(eq + 1).split(",").filter(Boolean));
  }
  return paths;
}

/** Another store's catalog, opened read-only; its layers and images are visible, never written. */
interface ReadOnlyStore {
  root: string;
  catalog: Catalog;
}

/** Where a found object lives: the writable catalog, or a read-only store's. */
interface Located {
  kind: ObjectKind;
  id: string;
  catalog: Catalog;
  readOnly: boolean;
}

export class Store {
  /** This process's liveness token, read from /proc only by commands that write or recover. */
  private get token(): string {
    return processToken();
  }
  private readOnlyStoresCache: ReadOnlyStore[] | undefined;

  constructor(
    readonly options: StoreOptions,
    private readonly db: Database,
    private readonly catalog: Catalog,
    readonly driver: Driver,
    private readonly mounter: Mounter,
  ) {}

  private tx<T>(fn: () => T): T {
    return immediate(this.db, fn);
  }

  get graphRoot(): string {
    return this.options.graphRoot;
  }

  get runRoot(): string {
    return this.options.runRoot;
  }

  /** The version of the SQLite library the store runs on. */
  get sqliteVersion(): string {
    return (this.db.query("SELECT sqlite_version() AS v").get() as { v: string }).v;
  }

  /** The database schema version this build writes. */
  get schemaVersion(): number {
    return SCHEMA_VERSION;
  }

  get driverName(): string {
    return this.driver.name;
  }

  /** The run root's mount counts, for `check`. */
  get mounts(): Mounter {
    return this.mounter;
  }

  /** The writable store's catalog, for `check` (src/store/check.ts); commands use the Store's methods. */
  get catalogForCheck(): Catalog {
    return this.catalog;
  }

  close(): void {
    this.mounter.close();
    this.db.close();
  }

  // ---- recovery ---------------------------------------------------------------------------

  /**
   * Finishes or undoes the work of writers that died: layers left 'creating' or 'deleting' go
   * away (with the container whose layer it was and its directories), except that a layer whose
   * applydiff was interrupted is kept and emptied; then mounts that no process counted are released.
   */
  async recover(): Promise<void> {
    for (const layer of this.catalog.unfinishedLayers()) {
      if (layer.owner === this.token || isTokenAlive(layer.owner)) continue;
      const reset = layer.state === "creating" && layer.onInterrupt === "reset";
      const claimed = this.tx(() => {
        const current = this.catalog.unfinishedLayers().find((l) => l.id === layer.id);
        if (!current || current.owner !== layer.owner) return false;
        this.catalog.setLayerState(layer.id, reset ? "creating" : "deleting", this.token);
        return true;
      });
      if (!claimed) continue;
      crashPoint("after-recovery-claim");
      try {
        await this.undoInterrupted(layer.id, reset);
      } catch {
        // Best effort: a leftover that cannot be removed now (a busy mount, say) must not make
        // every command fail. The row stays claimed, the next process retries, `check` reports it.
      }
    }
    try {
      releaseUncountedMounts(this);
    } catch {
      // As above: `check` reports a mount that could not be released.
    }
  }

  /** Resets a layer whose applydiff was interrupted, or removes a layer (and the container whose layer it was) left half-made or half-deleted. */
  private async undoInterrupted(id: string, reset: boolean): Promise<void> {
    if (reset) return this.resetInterruptedApply(id);
    const container = this.catalog.containerOfLayer(id);
    await this.removeLayerContent(id);
    if (container) this.removeContainerDirs(container, "whole");
    this.tx(() => this.dropLayerRow(id));
  }

  /**
   * Recovers a layer whose applydiff died half-way: the half-applied files are dropped by making
   * the layer empty on its parent again, keeping its record, names and data items. A layer that
   * has children keeps its content (re-making it would cut them off from it), as after a failed
   * apply. Either way nothing of the interrupted tar is recorded.
   */
  private async resetInterruptedApply(id: string): Promise<void> {
    const layer = this.catalog.getLayer(id, true)!;
    if (this.catalog.childLayerRows(id).length === 0) {
      await this.removeLayerContent(id);
      await this.makeLayerContent(layer);
      this.driver.flushCreated(id);
    }
    this.tx(() => {
      this.catalog.clearLayout(id);
      this.catalog.recordApplied(id, NOTHING_APPLIED);
      this.catalog.setLayerState(id, "complete", "");
    });
  }

  // ---- resolving references ----------------------------------------------------------------

  /** The read-only image stores, opened on first use. */
  private get readOnlyStores(): ReadOnlyStore[] {
    if (this.readOnlyStoresCache) return this.readOnlyStoresCache;
    this.readOnlyStoresCache = [];
    for (const root of imageStorePaths(this.options.driverOptions)) {
      if (!existsSync(root)) throw new InitError(`image store ${root}: no such directory`);
      const path = join(root, "oci-storage.db");
      if (!existsSync(path)) continue;
      let db: Database;
      try {
        db = new Database(path, { readonly: true, strict: true });
      } catch (e) {
        throw new InitError(`image store ${root}: ${(e as Error).message}`);
      }
      this.readOnlyStoresCache.push({ root, catalog: new Catalog(db) });
    }
    return this.readOnlyStoresCache;
  }

  /** The catalog a record came from. */
  private catalogOf(record: { fromReadOnlyStore?: string }): Catalog {
    if (record.fromReadOnlyStore === undefined) return this.catalog;
    return this.readOnlyStores.find((s) => s.root === record.fromReadOnlyStore)!.catalog;
  }

  /** The first record lookup finds in the writable catalog, else in a read-only store (marked as that store's). */
  private firstFound<T extends object>(lookup: (catalog: Catalog) => T | undefined): (T & { fromReadOnlyStore?: string }) | undefined {
    const own = lookup(this.catalog);
    if (own) return own;
    for (const ro of this.readOnlyStores) {
      const found = lookup(ro.catalog);
      if (found) return { ...found, fromReadOnlyStore: ro.root };
    }
    return undefined;
  }

  /** A layer by exact ID in the writable store, else in a read-only one. */
  private layerById(id: string): LayerRecord | undefined {
    return this.firstFound((c) => c.getLayer(id));
  }

  /** The layer a reference names (ID, name or unique prefix), or undefined; read-only stores are searched last. */
  findLayer(ref: string): LayerRecord | undefined {
    return this.firstFound((c) => {
      const id = c.resolve("layer", ref);
      return id === undefined ? undefined : c.getLayer(id);
    });
  }

  /** The layer a reference names; LayerUnknownError when there is none. */
  layer(ref: string): LayerRecord {
    const layer = this.findLayer(ref);
    if (!layer) throw new LayerUnknownError();
    return layer;
  }

  /** The image a reference names, or undefined; read-only stores are searched last. */
  findImage(ref: string): ImageRecord | undefined {
    return this.firstFound((c) => {
      const id = c.resolve("image", ref);
      return id === undefined ? undefined : c.getImage(id);
    });
  }

  /** Containers resolve by ID, name, their layer's ID, or unique ID prefix. */
  findContainer(ref: string): ContainerRecord | undefined {
    const id = this.catalog.resolve("container", ref, { byLayer: true });
    return id === undefined ? undefined : this.catalog.getContainer(id);
  }

  /** Looks a reference up as layer, then image, then container (spec §2.4), read-only stores after the writable one per kind. */
  findAny(ref: string): Located | undefined {
    const layer = this.findLayer(ref);
    if (layer) return { kind: "layer", id: layer.id, catalog: this.catalogOf(layer), readOnly: layer.fromReadOnlyStore !== undefined };
    const image = this.findImage(ref);
    if (image) return { kind: "image", id: image.id, catalog: this.catalogOf(image), readOnly: image.fromReadOnlyStore !== undefined };
    const container = this.catalog.resolve("container", ref, { byLayer: true });
    if (container !== undefined) return { kind: "container", id: container, catalog: this.catalog, readOnly: false };
    return undefined;
  }

  // ---- listings ----------------------------------------------------------------------------

  /** Layers in creation order: the writable store's, then each read-only store's. */
  layers(): LayerRecord[] {
    return this.listEverywhere((catalog) => catalog.listLayers());
  }

  images(): ImageRecord[] {
    return this.listEverywhere((catalog) => catalog.listImages());
  }

  /** layers() cut down to IDs and names, for listings that show no more. */
  layerSummaries(): LayerSummary[] {
    return this.listEverywhere((catalog) => catalog.listLayerSummaries());
  }

  /** images() cut down to IDs, names and layers. */
  imageSummaries(): ImageSummary[] {
    return this.listEverywhere((catalog) => catalog.listImageSummaries());
  }

  /** A listing of the writable store, then of each read-only store with its records tagged by that store's root. */
  private listEverywhere<T extends { fromReadOnlyStore?: string }>(list: (catalog: Catalog) => T[]): T[] {
    return [...list(this.catalog), ...this.readOnlyStores.flatMap((ro) => list(ro.catalog).map((record) => ({ ...record, fromReadOnlyStore: ro.root })))];
  }

  containers(): ContainerRecord[] {
    return this.catalog.listContainers();
  }

  // ---- names and metadata --------------------------------------------------------------------

  /** Fails when a name is held by another object of the kind (creation never steals names). */
  private checkNamesFree(kind: ObjectKind, names: string[]): void {
    for (const name of names) {
      const owner = this.catalog.nameOwner(kind, name);
      if (owner === undefined) continue;
      if (kind === "image") throw new NameInUseError(`image name "${name}" is already associated with image "${owner}": that name is already in use`);
      if (kind === "container") {
        throw new NameInUseError(
          `the container name "${name}" is already in use by ${owner}. You have to remove that container to be able to reuse that name: that name is already in use`,
        );
      }
      throw new NameInUseError();
    }
  }

  namesOf(ref: string): string[] {
    const found = this.findAny(ref);
    if (!found) throw new LayerUnknownError();
    return found.catalog.namesOf(found.kind, found.id);
  }

  /** Adds names (or replaces them all) on the object a reference names; names move from other objects of its kind. */
  changeNames(ref: string, names: string[], mode: "add" | "set"): string[] {
    return this.tx(() => {
      const found = this.findAny(ref);
      if (!found) throw new LayerUnknownError();
      // Unlike containers-storage 1.43, objects of read-only stores are never given a writable twin.
      if (found.readOnly) throw found.kind === "image" ? new ImageUnknownError() : new LayerUnknownError();
      const current = this.catalog.namesOf(found.kind, found.id);
      const next = unique(mode === "add" ? [...current, ...names] : names);
      this.catalog.setNames(found.kind, found.id, next);
      if (found.kind === "image" && names.length > 0) {
        const history = this.catalog.getImage(found.id)!.namesHistory;
        const added = unique([...names].reverse());
        this.catalog.setNamesHistory(found.id, unique([...added, ...history]));
      }
      return next;
    });
  }

  metadataOf(ref: string): string | undefined {
    const found = this.findAny(ref);
    return found ? found.catalog.getMetadata(found.kind, found.id) : undefined;
  }

  setMetadata(ref: string, metadata: string): void {
    this.tx(() => {
      const found = this.findAny(ref);
      if (!found || found.readOnly) throw new NotAnyObjectError();
      this.catalog.setMetadata(found.kind, found.id, metadata);
    });
  }

  // ---- layers --------------------------------------------------------------------------------

  /** Inserts a layer row in state 'creating' after checking ID, parent and names. */
  private beginLayer(options: CreateLayerOptions): LayerRecord {
    const id = validateId(options.id ?? generateId());
    const names = unique(options.names);
    return this.tx(() => {
      if (this.catalog.layerRowExists(id)) throw new IdInUseError();
      let parent: LayerRecord | undefined;
      if (options.parent !== undefined) {
        parent = this.findLayer(options.parent);
        if (!parent) throw new LayerUnknownError();
        if (this.catalog.containerOfLayer(parent.id)) throw new StorageError("would-be parent layer is a container");
      }
      this.checkNamesFree("layer", names);
      const maps = options.idMaps ?? (parent ? { uidMap: parent.uidMap, gidMap: parent.gidMap } : NO_ID_MAPS);
      const layer = newLayerRecord(id, {
        names,
        parent: parent?.id ?? "",
        mountLabel: options.mountLabel ?? "",
        createdNs: nowNs(),
        uidMap: maps.uidMap,
        gidMap: maps.gidMap,
        readOnly: options.readOnly ?? false,
      });
      this.catalog.insertLayer(layer, this.token);
      return layer;
    });
  }

  /** Makes the layer's content; on failure removes row and content again. */
  private async buildLayer(layer: LayerRecord, fill?: (layer: LayerRecord) => Promise<void>): Promise<void> {
    crashPoint("after-row-insert");
    try {
      await this.makeLayerContent(layer);
      crashPoint("after-content-created");
      // Content is on disk before the layer is marked complete (an applied tar is flushed by the apply).
      if (fill) await fill(layer);
      else this.driver.flushCreated(layer.id);
    } catch (e) {
      await this.abandonLayer(layer.id);
      throw e;
    }
  }

  /** Makes a layer's directories (vfs: a copy of its parent's tree). */
  private async makeLayerContent(layer: LayerRecord): Promise<void> {
    const parent = layer.parent ? this.layerById(layer.parent) : undefined;
    await this.driver.create(layer.id, {
      parent: parent?.id,
      idMaps: { uidMap: layer.uidMap, gidMap: layer.gidMap },
      parentIdMaps: parent ? { uidMap: parent.uidMap, gidMap: parent.gidMap } : NO_ID_MAPS,
    });
  }

  /** Removes a layer that was being made by this process. */
  private async abandonLayer(id: string): Promise<void> {
    await this.removeLayerContent(id);
    this.tx(() => this.catalog.deleteObject("layer", id));
  }

  private markComplete(id: string): void {
    crashPoint("before-complete");
    this.tx(() => this.catalog.setLayerState(id, "complete", ""));
  }

  async createLayer(options: CreateLayerOptions): Promise<LayerRecord> {
    const layer = this.beginLayer(options);
    await this.buildLayer(layer);
    this.markComplete(layer.id);
    return this.catalog.getLayer(layer.id)!;
  }

  /** create-layer followed by applydiff of source; the layer is removed again if applying fails. */
  async importLayer(options: CreateLayerOptions, source: ByteSource): Promise<LayerRecord> {
    const layer = this.beginLayer(options);
    await this.buildLayer(layer, (l) => this.applyInto(l, source));
    this.markComplete(layer.id);
    return this.catalog.getLayer(layer.id)!;
  }

  /** Applies a tar to a layer being made or re-made, recording its values and layout. */
  private async applyInto(layer: LayerRecord, source: ByteSource): Promise<void> {
    this.tx(() => this.catalog.clearLayout(layer.id));
    let seq = 0;
    const result = await this.driver.applyDiff(layer.id, layer.parent || undefined, source, { uidMap: layer.uidMap, gidMap: layer.gidMap }, (chunk) => {
      const n = seq++;
      this.tx(() => this.catalog.addLayoutChunk(layer.id, n, chunk));
      crashPoint("mid-apply");
    });
    this.tx(() => this.catalog.recordApplied(layer.id, { ...result, hasLayout: true }));
  }

  /**
   * Applies a layer tar to an existing layer. While applying, the layer is hidden and owned by
   * this process, so a crash mid-way leaves no half-applied layer behind: the next writer
   * empties it again (see resetInterruptedApply), and the apply can be repeated.
   */
  async applyDiff(ref: string, source: ByteSource): Promise<void> {
    const layer = this.tx(() => {
      const found = this.findLayer(ref);
      if (!found) throw new LayerUnknownError();
      if (found.fromReadOnlyStore) throw new NotALayerError();
      this.catalog.setLayerState(found.id, "creating", this.token);
      this.catalog.setLayerOnInterrupt(found.id, "reset");
      return found;
    });
    try {
      await this.applyInto(layer, source);
    } finally {
      // A failed apply may have changed some files; the layer stays usable as it is, like containers-storage's.
      this.markComplete(layer.id);
    }
  }

  /** The layer and what a diff, changes or diffsize of it compares with (an unresolvable FROM means the parent). */
  private compareRequest(ref: string, fromRef: string | undefined) {
    const layer = this.layer(ref);
    // An unresolvable FROM falls back to the parent, like containers-storage (spec §3.7, Q-keep).
    const from = fromRef !== undefined ? this.findLayer(fromRef) : undefined;
    const fromId = from?.id ?? (layer.parent || undefined);
    return { layer, request: { id: layer.id, from: fromId, fromIsParent: fromId === (layer.parent || undefined), idMaps: { uidMap: layer.uidMap, gidMap: layer.gidMap } } };
  }

  changes(ref: string, fromRef?: string): Promise<Change[]> {
    return this.driver.changes(this.compareRequest(ref, fromRef).request);
  }

  diffSize(ref: string, fromRef?: string): Promise<number> {
    return this.driver.diffSize(this.compareRequest(ref, fromRef).request);
  }

  /**
   * Writes a layer's diff. Without an explicit compression the layer's last applied input's
   * compression is used; an applied layer compared with its parent is reproduced byte for byte.
   */
  async diff(ref: string, fromRef: string | undefined, sink: ByteSink, compression?: Compression): Promise<void> {
    const { layer, request } = this.compareRequest(ref, fromRef);
    const wanted = compression ?? layer.compression;
    if (wanted === Compression.Bzip2) throw new NotSupportedError("unsupported compression format tar.bz2");
    if (wanted === Compression.Xz) throw new NotSupportedError("unsupported compression format tar.xz");
    const out = compressingSink(sink, wanted);
    if (layer.hasLayout && request.fromIsParent) {
      await reproduceTar(this.catalogOf(layer).layoutChunks(layer.id), this.driver.contentDir(layer.id), out);
    } else {
      await this.driver.diff(request, out);
    }
    await out.close();
  }

  /** Deletes a layer's content after releasing its mounts. */
  private async removeLayerContent(id: string): Promise<void> {
    this.mounter.unmount(id, true);
    await this.driver.remove(id);
  }

  /**
   * Marks a layer as being deleted, removes its content, then its row. The mark is only made
   * while the layer is still complete and `check` passes, in one transaction, so that two
   * processes never delete one layer and nothing starts using it between check and mark.
   * Returns false when the layer was no longer there to delete.
   */
  private async destroyLayer(id: string, check?: () => void): Promise<boolean> {
    const claimed = this.tx(() => {
      if (!this.catalog.getLayer(id)) return false;
      check?.();
      this.catalog.setLayerState(id, "deleting", this.token);
      return true;
    });
    if (!claimed) return false;
    await this.removeClaimedLayer(id);
    return true;
  }

  /** Removes the content and then the row of a layer this process has marked 'deleting'. */
  private async removeClaimedLayer(id: string): Promise<void> {
    crashPoint("after-delete-mark");
    await this.removeLayerContent(id);
    crashPoint("after-content-removed");
    this.tx(() => this.dropLayerRow(id));
  }

  /** Drops the row of a layer whose content is gone, its place in images' mapped layers, and the container whose layer it was. */
  private dropLayerRow(id: string): void {
    const container = this.catalog.containerOfLayer(id);
    if (container) this.catalog.deleteObject("container", container);
    this.catalog.deleteObject("layer", id);
    for (const image of this.catalog.imagesUsingLayer(id)) {
      const record = this.catalog.getImage(image)!;
      if (record.mappedLayers.includes(id)) this.catalog.setMappedLayers(image, record.mappedLayers.filter((l) => l !== id));
    }
  }

  /** Why a layer may not be deleted safely, or undefined when it may (spec §3.5.3). */
  private layerInUse(id: string): StorageError | undefined {
    const child = this.catalog.childLayerRows(id)[0];
    if (child) return new LayerInUseError(`used by layer ${child}: layer has children`);
    const image = this.catalog.imagesUsingLayer(id)[0];
    if (image) return new LayerInUseError(`layer ${id} used by image ${image}: layer is in use by an image`);
    const container = this.catalog.containerOfLayer(id);
    if (container) return new LayerInUseError(`layer ${id} used by container ${container}: layer is in use by a container`);
    return undefined;
  }

  /** delete-layer: refuses layers that children, images or containers still use (checked on the resolved ID). */
  async deleteLayer(ref: string): Promise<void> {
    const layer = this.findLayer(ref);
    if (!layer || layer.fromReadOnlyStore) throw new NotALayerError();
    const deleted = await this.destroyLayer(layer.id, () => {
      const busy = this.layerInUse(layer.id);
      if (busy) throw busy;
    });
    if (!deleted) throw new NotALayerError();
  }

  // ---- layer data ---------------------------------------------------------------------------

  /** The data items of a layer, image or container record. */
  bigDataItems(kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }): BigDataInfo[] {
    return this.catalogOf(record).bigDataOf(kind, record.id);
  }

  /** Reads a named data item of a layer, image or container record. */
  bigData(kind: ObjectKind, record: { id: string; fromReadOnlyStore?: string }, name: string): Uint8Array | undefined {
    return this.catalogOf(record).getBigData(kind, record.id, name);
  }

  /** Stores a data item; image items named manifest* also feed the image's digests (spec §3.2.6). */
  setBigData(kind: ObjectKind, id: string, name: string, data: Uint8Array): void {
    if (name === "") throw new StorageError(`can't set empty name for ${kind} big data item: not a valid name for a big data item`);
    const digest = sha256Digest(data);
    this.tx(() => {
      // The owner was resolved before the data was read; another process may have deleted it since.
      if (kind === "layer" && !this.catalog.getLayer(id)) throw new LayerUnknownError();
      if (kind === "image" && !this.catalog.imageExists(id)) throw new ImageUnknownError(`locating image with ID "${id}": image not known`);
      if (kind === "container" && !this.catalog.containerExists(id)) throw new ContainerUnknownError();
      this.catalog.setBigData(kind, id, name, data, digest);
      if (kind === "image" && name.startsWith("manifest")) {
        const image = this.catalog.getImage(id)!;
        if (image.digest === "") this.catalog.setImageDigest(id, digest);
      }
    });
  }

  // ---- images ---------------------------------------------------------------------------------

  createImage(options: CreateImageOptions): ImageRecord {
    const id = validateId(options.id ?? generateId());
    if (options.digest !== undefined && options.digest !== "") {
      try {
        validateDigest(options.digest);
      } catch (e) {
        throw new StorageError(`validating digests for new image: validating image digest "${options.digest}": ${(e as Error).message}`);
      }
    }
    const names = unique(options.names);
    return this.tx(() => {
      let topLayer = "";
      if (options.topLayer !== undefined) {
        const layer = this.findLayer(options.topLayer);
        if (!layer) throw new LayerUnknownError();
        topLayer = layer.id;
      }
      if (this.catalog.imageExists(id)) throw new IdInUseError(`an image with ID "${id}" already exists: that ID is already in use`);
      this.checkNamesFree("image", names);
      this.catalog.insertImage({
        id,
        digest: options.digest ?? "",
        names,
        namesHistory: [],
        topLayer,
        mappedLayers: [],
        metadata: options.metadata ?? "",
        bigData: [],
        createdNs: nowNs(),
        flags: {},
      });
      return this.catalog.getImage(id)!;
    });
  }

  /** The image's digest list: its digest, then the distinct digests of manifest* items. */
  imageDigests(image: ImageRecord): string[] {
    const digests = image.digest ? [image.digest] : [];
    for (const item of image.bigData) if (item.name.startsWith("manifest")) digests.push(item.digest);
    return unique(digests);
  }

  imagesByDigest(digest: string): ImageRecord[] {
    try {
      validateDigest(digest);
    } catch (e) {
      throw new StorageError(`${digest}: ${(e as Error).message}`);
    }
    return this.images().filter((image) => this.imageDigests(image).includes(digest));
  }

  /** The size shown by `image`: every layer reachable from the top layers plus the data items. */
  async imageSize(image: ImageRecord): Promise<number> {
    let total = image.bigData.reduce((sum, item) => sum + item.size, 0);
    const seen = new Set<string>();
    const pending = [image.topLayer, ...image.mappedLayers].filter((l) => l !== "");
    while (pending.length > 0) {
      const id = pending.pop()!;
      if (seen.has(id)) continue;
      seen.add(id);
      const layer = this.layerById(id);
      if (!layer) throw new LayerUnknownError(`locating layer with ID "${id}": layer not known`);
      total += layer.diffDigest ? layer.diffSize : await this.diffSize(id);
      if (layer.parent) pending.push(layer.parent);
    }
    return total;
  }

  /**
   * Deletes an image and the layers only it used (spec §3.5.4); with test, only computes
   * which layers would go.
   */
  async deleteImage(ref: string, test: boolean): Promise<ImageDeletion> {
    const decide = () => {
      const image = this.findImage(ref);
      if (!image || image.fromReadOnlyStore) throw new NotAnImageError();
      const user = this.catalog.containersUsingImage(image.id)[0];
      if (user) throw new ImageInUseError(`image used by ${user}: image is in use by a container`);
      return { image, removable: this.layersOnlyUsedBy(image) };
    };
    if (test) return { deletedLayers: decide().removable };
    // Deciding, dropping the image and marking its layers happen in one transaction, so that no
    // container or child layer can start using them in between.
    const removable = this.tx(() => {
      const { image, removable } = decide();
      this.catalog.deleteObject("image", image.id);
      for (const id of removable) this.catalog.setLayerState(id, "deleting", this.token);
      return removable;
    });
    for (const id of removable) await this.removeClaimedLayer(id);
    return { deletedLayers: removable };
  }

  private layersOnlyUsedBy(image: ImageRecord): string[] {
    const removing = new Set<string>();
    const usedElsewhere = (id: string) =>
      this.catalog.containerOfLayer(id) !== undefined ||
      this.catalog.imagesUsingLayer(id).some((other) => other !== image.id) ||
      this.catalog.childLayerRows(id).some((child) => !removing.has(child));
    const result: string[] = [];
    for (const mapped of image.mappedLayers) {
      if (!usedElsewhere(mapped)) {
        removing.add(mapped);
        result.push(mapped);
      }
    }
    let current = image.topLayer ? this.catalog.getLayer(image.topLayer) : undefined;
    while (current && !usedElsewhere(current.id)) {
      removing.add(current.id);
      result.push(current.id);
      current = current.parent ? this.catalog.getLayer(current.parent) : undefined;
    }
    return result;
  }

  // ---- containers --------------------------------------------------------------------------------

  async createContainer(imageRef: string, options: CreateContainerOptions): Promise<ContainerRecord> {
    const id = validateId(options.id ?? generateId());
    const names = unique(options.names);
    const image = this.findImage(imageRef);
    if (!image) throw new ImageUnknownError(`locating image with ID "${imageRef}": image not known`);
    this.tx(() => {
      if (this.catalog.containerExists(id)) throw new IdInUseError();
      this.checkNamesFree("container", names);
    });
    const parent = await this.containerParent(image, options.idMaps);
    const layer = this.beginLayer({ names: [], parent, idMaps: options.idMaps });
    await this.buildLayer(layer);
    const flags: Record<string, unknown> = { MountLabel: "", ProcessLabel: "" };
    if (options.volatile) flags.Volatile = true;
    crashPoint("before-complete");
    try {
      this.tx(() => {
        if (this.catalog.containerExists(id)) throw new IdInUseError();
        if (!image.fromReadOnlyStore && !this.catalog.imageExists(image.id)) throw new ImageUnknownError(`locating image with ID "${imageRef}": image not known`);
        this.checkNamesFree("container", names);
        this.catalog.insertContainer({
          id,
          names,
          image: image.id,
          layer: layer.id,
          metadata: options.metadata ?? "",
          bigData: [],
          createdNs: nowNs(),
          uidMap: layer.uidMap,
          gidMap: layer.gidMap,
          flags,
        });
        this.catalog.setLayerState(layer.id, "complete", "");
      });
    } catch (e) {
      await this.abandonLayer(layer.id);
      throw e;
    }
    return this.catalog.getContainer(id)!;
  }

  /**
   * The parent of a new container's layer: the image's top layer when the container's ID maps
   * agree with it, else a mapped copy of it (spec §5), made once per set of maps and listed in
   * the image's mapped-layers. A mapped copy holds the image's whole tree re-owned (it has no
   * parent), so that every lower layer's files are shifted too, on overlay as on vfs; it keeps
   * the top layer's recorded digests and layout, so it diffs as the original.
   */
  private async containerParent(image: ImageRecord, maps: IdMaps | undefined): Promise<string | undefined> {
    if (!image.topLayer) return undefined;
    const top = this.layerById(image.topLayer);
    if (!top) throw new LayerUnknownError();
    if (maps === undefined || sameMaps(maps, top)) return top.id;
    for (const id of image.mappedLayers) {
      const mapped = this.layerById(id);
      if (mapped && sameMaps(maps, mapped)) return mapped.id;
    }
    const copy = this.beginLayer({ names: [], idMaps: maps });
    await this.buildLayer(copy, async () => {
      await this.withLayerView(top, (view) => copyTree(view, this.driver.contentDir(copy.id), { from: top, to: maps }));
      syncFilesystem(this.driver.contentDir(copy.id));
      const source = this.catalogOf(top);
      this.tx(() => {
        let seq = 0;
        for (const chunk of source.layoutChunks(top.id)) this.catalog.addLayoutChunk(copy.id, seq++, chunk);
        this.catalog.recordApplied(copy.id, top);
      });
    });
    this.tx(() => {
      this.catalog.setLayerState(copy.id, "complete", "");
      const current = image.fromReadOnlyStore ? undefined : this.catalog.getImage(image.id);
      if (current) this.catalog.setMappedLayers(image.id, [...current.mappedLayers, copy.id]);
    });
    return copy.id;
  }

  /** Runs fn with the layer's full tree mounted (or the existing mount reused), released afterwards. */
  private async withLayerView<T>(layer: LayerRecord, fn: (path: string) => Promise<T>): Promise<T> {
    const existing = this.mounter.mountPoint(layer.id);
    const spec = existing !== undefined ? { kind: "directory" as const, path: existing } : this.driver.mountSpec(layer.id, { readOnly: true, options: [], volatile: false, mountLabel: "" });
    const path = this.mounter.mount(layer.id, spec);
    try {
      return await fn(path);
    } finally {
      this.mounter.unmount(layer.id, false);
    }
  }

  /** A container's private directory under the graph root (data) or run root (run), created 0700 if missing. */
  containerDir(container: ContainerRecord, where: "data" | "run"): string {
    const base = where === "data" ? this.graphRoot : this.runRoot;
    const dir = join(base, `${this.driverName}-containers`, container.id, "userdata");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  /** The size shown by `container`: its layer's diffsize, its data items and the files in its directories. */
  async containerSize(container: ContainerRecord): Promise<number> {
    let total = await this.diffSize(container.layer);
    for (const item of container.bigData) total += item.size;
    for (const where of ["data", "run"] as const) total += regularFileBytes(this.containerDir(container, where));
    return total;
  }

  async deleteContainer(ref: string): Promise<void> {
    const container = this.findContainer(ref);
    if (!container) throw new NotAContainerError();
    await this.destroyContainer(container, "whole");
  }

  /** Removes a container's layer, record and directories ("userdata" only, as `delete` does, or the whole directory). */
  private async destroyContainer(container: ContainerRecord, dirs: "userdata" | "whole"): Promise<void> {
    const stillThere = () => {
      if (!this.catalog.containerExists(container.id)) throw new NotAContainerError();
    };
    // The layer's 'deleting' mark makes this crash-safe: if this process dies, the next one
    // removes the layer, the container record and the container's directories.
    const claimed = this.tx(() => {
      if (!this.catalog.getLayer(container.layer)) return false;
      stillThere();
      this.catalog.setLayerState(container.layer, "deleting", this.token);
      return true;
    });
    // A layer row that is no longer complete is being deleted by another process, container and all.
    if (!claimed && this.catalog.layerRowExists(container.layer)) throw new NotAContainerError();
    if (!claimed && dirs === "userdata") throw new NotALayerError();
    crashPoint("after-delete-mark");
    this.removeContainerDirs(container.id, dirs);
    crashPoint("mid-container-delete");
    if (claimed) await this.removeLayerContent(container.layer);
    crashPoint("after-content-removed");
    this.tx(() => {
      if (claimed) return this.dropLayerRow(container.layer);
      stillThere();
      this.catalog.deleteObject("container", container.id);
    });
  }

  /** Removes a container's directories under both roots ("userdata" only, as `delete` does, or the whole directory). */
  private removeContainerDirs(id: string, dirs: "userdata" | "whole"): void {
    for (const base of [this.graphRoot, this.runRoot]) {
      const dir = join(base, `${this.driverName}-containers`, id);
      rmSync(dirs === "whole" ? dir : join(dir, "userdata"), { recursive: true, force: true });
    }
  }

  /** `delete`: container, else image (record only), else layer (no safety checks). */
  async deleteAny(ref: string): Promise<void> {
    const container = this.findContainer(ref);
    if (container) return this.destroyContainer(container, "userdata");
    const image = this.findImage(ref);
    if (image && !image.fromReadOnlyStore) {
      this.tx(() => {
        if (!this.catalog.imageExists(image.id)) throw new LayerUnknownError();
        this.catalog.deleteObject("image", image.id);
      });
      return;
    }
    const layer = this.findLayer(ref);
    if (layer && !layer.fromReadOnlyStore && (await this.destroyLayer(layer.id))) return;
    throw new LayerUnknownError();
  }

  // ---- mounting ----------------------------------------------------------------------------------

  /** Mounts a container's layer or a layer (or, read-only, an image's top layer) and returns the mount point. */
  mount(ref: string, options: MountOptions): string {
    let layer: LayerRecord | undefined;
    let volatile = false;
    if (options.readOnly) {
      const image = this.findImage(ref);
      layer = image?.topLayer ? this.catalog.getLayer(image.topLayer) : undefined;
    }
    if (!layer) {
      const container = this.findContainer(ref);
      if (container) {
        layer = this.catalog.getLayer(container.layer);
        volatile = container.flags.Volatile === true;
      } else {
        layer = this.findLayer(ref);
      }
    }
    if (!layer || layer.fromReadOnlyStore) throw new LayerUnknownError();
    const found = layer;
    // Mounting under the store's write lock: a deletion marks the layer either before (and the
    // mount is refused) or after (and its unmount sees this mount), never in between.
    return this.tx(() => {
      if (!this.catalog.getLayer(found.id)) throw new LayerUnknownError();
      const existing = this.mounter.mountPoint(found.id);
      if (existing !== undefined) return this.mounter.mount(found.id, { kind: "directory", path: existing });
      const spec = this.driver.mountSpec(found.id, {
        readOnly: options.readOnly ?? false,
        options: options.options ?? [],
        volatile,
        mountLabel: options.mountLabel ?? found.mountLabel,
      });
      return this.mounter.mount(found.id, spec);
    });
  }

  /** The layer a mount-related reference means: container -> its layer, else layer; images optionally. */
  private mountedLayerOf(ref: string, allowImage: boolean): { layer: string; viaImage: boolean } {
    const container = this.findContainer(ref);
    if (container) return { layer: container.layer, viaImage: false };
    const layer = this.findLayer(ref);
    if (layer) return { layer: layer.id, viaImage: false };
    if (allowImage) {
      const image = this.findImage(ref);
      if (image?.topLayer) return { layer: image.topLayer, viaImage: true };
    }
    throw new LayerUnknownError();
  }


  /** Drops one user of a mount (all with force). Returns "unmounted" when it is no longer mounted, "image" for image refs. */
  unmount(ref: string, force: boolean): "unmounted" | "still-mounted" | "image" {
    const { layer, viaImage } = this.mountedLayerOf(ref, true);
    const done = this.mounter.unmount(layer, force);
    if (viaImage) return "image";
    return done ? "unmounted" : "still-mounted";
  }

  /** The mount count of a container's or layer's layer. */
  mountCount(ref: string): number {
    return this.mounter.count(this.mountedLayerOf(ref, false).layer);
  }

  /** The mount point of a mounted layer, if any. */
  mountPointOf(layerId: string): string | undefined {
    return this.mounter.mountPoint(layerId);
  }

  // ---- copying ------------------------------------------------------------------------------

  /** Copies a host path or a path in a layer to a host path or a path in a layer; layers are mounted for the copy. */
  async copyPath(from: { layer?: string; path: string }, to: { layer?: string; path: string }, chown?: { uid: number; gid: number }): Promise<void> {
    const mountedHere: string[] = [];
    const open = (side: { layer?: string; path: string }): CopyEndpoint => {
      if (side.layer === undefined) return { root: "/", path: resolvePath(side.path), maps: NO_ID_MAPS };
      const layer = this.findLayer(side.layer);
      if (!layer) throw new LayerUnknownError(`error finding layer "${side.layer}": layer not known`);
      const root = this.mount(layer.id, {});
      mountedHere.push(layer.id);
      return { root, path: side.path, maps: { uidMap: layer.uidMap, gidMap: layer.gidMap } };
    };
    try {
      const source = open(from);
      const target = open(to);
      try {
        await copyPath(source, target, chown);
      } catch (e) {
        throw new StorageError(`error copying "${join(source.root, source.path)}" to "${join(target.root, target.path)}": ${(e as Error).message}`);
      }
    } finally {
      for (const id of mountedHere) this.mounter.unmount(id, false);
    }
  }

  // ---- store-wide -----------------------------------------------------------------------------

  status(): Array<[string, string]> {
    return [
      ["Root", this.graphRoot],
      ["Run Root", this.runRoot],
      ["Driver Name", this.driverName],
      ["Driver Options", `[${this.options.driverOptions.join(" ")}]`],
      ...this.driver.status(),
    ];
  }

  /** Releases driver resources; with force unmounts every layer first, else refuses while any is mounted. */
  async shutdown(force: boolean): Promise<void> {
    const mounted = this.mounter.mounted();
    if (mounted.length > 0 && !force) throw new LayerInUseError("a layer is mounted: layer is in use by a container");
    for (const m of mounted) this.mounter.unmount(m.layer, true);
    await this.driver.shutdown();
  }

  /** Deletes every container, image and layer (newest layers first). */
  async wipe(): Promise<void> {
    for (const container of this.containers().reverse()) await this.destroyContainer(container, "whole");
    for (const image of this.catalog.listImages().reverse()) this.tx(() => this.catalog.deleteObject("image", image.id));
    for (const layer of this.catalog.listLayers().reverse()) await this.destroyLayer(layer.id);
  }

}

/** Total size of the regular files below a directory. */
function regularFileBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name)).size;
  }
  return total;
}
