/**
 * The layer lifecycle and its whole crash protocol, in one place:
 *
 *   making:   begin (row 'creating', owned by this process) → build (driver content, flushed)
 *             → complete (row 'complete', in the same transaction as whatever else goes with it);
 *   removing: claim (row 'deleting', owned by this process, in the transaction that checks it may
 *             go) → remove (mounts released, content deleted) → drop (row and what hangs on it).
 *
 * A process that dies at any step leaves a row that is not 'complete' and owned by a dead
 * process; recovery.ts finishes or undoes it. The crash points (src/util/crash-points.ts) mark
 * the moments the crash tests stop at.
 */
import type { ByteSource } from "../archive/types.ts";
import type { LayerPreview } from "../drivers/driver.ts";
import { IdInUseError, LayerInUseError, LayerUnknownError, NotALayerError, PreconditionError } from "../errors.ts";
import { type IdMapsRequest, NO_ID_MAPS, resolveMaps } from "../idmap.ts";
import { crashPoint } from "../util/crash-points.ts";
import { unique } from "../util/lists.ts";
import { nowNs } from "../util/time.ts";
import { chosenId } from "./ids.ts";
import { findLayer, layerById } from "./lookup.ts";
import { checkNamesFree } from "./names.ts";
import type { StoreParts } from "./parts.ts";
import { type LayerRecord, NOTHING_APPLIED, mapsOf, newLayerRecord } from "./records.ts";

export interface CreateLayerOptions {
  id?: string;
  names: string[];
  /** The parent layer's reference; undefined or "" (as containers-storage 1.43 takes it) for none. */
  parent?: string;
  mountLabel?: string;
  metadata?: string;
  readOnly?: boolean;
  /** The maps asked for; an axis not given is the parent's (none for a base layer). */
  idMaps?: IdMapsRequest;
}

/** What a new layer's content starts from instead of its parent's tree (another layer's whole tree, re-owned to the layer's maps), or the tar to be applied on it. */
export interface LayerContentSource {
  template?: LayerRecord;
  preview?: LayerPreview;
}

// ---- making ----------------------------------------------------------------------------------

/** Begin: inserts a layer row in state 'creating' after checking ID, parent and names. */
export function beginLayer(parts: StoreParts, options: CreateLayerOptions): LayerRecord {
  const id = chosenId(options.id);
  const names = unique(options.names);
  return parts.tx(() => {
    if (parts.catalog.layerRowExists(id)) throw new IdInUseError();
    let parent: LayerRecord | undefined;
    if (options.parent) {
      parent = findLayer(parts, options.parent) ?? layerBeingMadeHere(parts, options.parent);
      if (!parent) throw new LayerUnknownError();
      if (parts.catalog.containerOfLayer(parent.id)) throw new PreconditionError("would-be parent layer is a container");
    }
    checkNamesFree(parts, "layer", names);
    const maps = resolveMaps(options.idMaps, parent ? mapsOf(parent) : NO_ID_MAPS);
    const layer = newLayerRecord(id, {
      names,
      parent: parent?.id ?? "",
      mountLabel: options.mountLabel ?? "",
      metadata: options.metadata ?? "",
      createdNs: nowNs(),
      uidMap: maps.uidMap,
      gidMap: maps.gidMap,
      readOnly: options.readOnly ?? false,
    });
    parts.catalog.insertLayer(layer, parts.token);
    return layer;
  });
}

/**
 * Build: makes the layer's content and makes it durable, or lets fill (an apply, say) fill it
 * and make it durable; on failure removes content and row again.
 */
export async function buildLayer(parts: StoreParts, layer: LayerRecord, fill?: (layer: LayerRecord) => Promise<void>, source: LayerContentSource = {}): Promise<void> {
  crashPoint("after-row-insert");
  try {
    await makeLayerContent(parts, layer, source);
    crashPoint("after-content-created");
    // Content is on disk before the layer is marked complete (fill flushes what it wrote, and what create made).
    if (fill) await fill(layer);
    else parts.driver.flushCreated(layer.id);
  } catch (e) {
    await abandonLayer(parts, layer.id).catch(() => {
      // The row stays 'creating', owned by this process: the next command's recovery removes it.
    });
    throw e;
  }
}

/**
 * A layer this process is still making, by exact ID: it may already be a parent (a pull builds
 * the next layer while the one below is flushed), never anything else's.
 */
function layerBeingMadeHere(parts: StoreParts, id: string): LayerRecord | undefined {
  const row = parts.catalog.layerProgress(id);
  return row?.state === "creating" && row.owner === parts.token ? parts.catalog.getLayer(id, true) : undefined;
}

/** How often a layer another process is making is looked at again. */
const MADE_ELSEWHERE_POLL_MS = 50;

/**
 * Waits while another live process makes or removes the layer with this ID (two pulls of one
 * image at once): "complete" once it is there to use, "gone" once its row is (the other process
 * gave up: the caller may make it itself), "stuck" when its maker died (the next writer's
 * recovery removes what it left) or is this process.
 */
export async function layerMadeElsewhere(parts: StoreParts, id: string): Promise<"complete" | "gone" | "stuck"> {
  const { isTokenAlive } = await import("../sys/liveness.ts");
  for (;;) {
    const row = parts.catalog.layerProgress(id);
    if (row === undefined) return "gone";
    if (row.state === "complete") return "complete";
    if (row.owner === parts.token || !isTokenAlive(row.owner)) return "stuck";
    await Bun.sleep(MADE_ELSEWHERE_POLL_MS);
  }
}

/** Makes a layer's content (vfs: a copy of its parent's tree), or a copy of a template layer's, re-owned to its maps. */
export async function makeLayerContent(parts: StoreParts, layer: LayerRecord, source: LayerContentSource = {}): Promise<void> {
  const parent = layer.parent ? (layerById(parts, layer.parent) ?? layerBeingMadeHere(parts, layer.parent)) : undefined;
  await parts.driver.create(layer.id, {
    parent: parent?.id,
    idMaps: mapsOf(layer),
    parentIdMaps: parent ? mapsOf(parent) : NO_ID_MAPS,
    template: source.template ? { id: source.template.id, idMaps: mapsOf(source.template) } : undefined,
    preview: source.preview,
  });
}

/** Removes a layer that was being made by this process: its content first, which frees the space its row needs. */
export async function abandonLayer(parts: StoreParts, id: string): Promise<void> {
  await removeLayerContent(parts, id);
  parts.freeingTx(() => parts.catalog.deleteObject("layer", id));
}

/**
 * Complete: marks a built layer complete, in one transaction with alongside (a container's
 * record, say). A store without a space reserve (made before there was one, or left without
 * one by a full disk) gets it now, while there is room.
 */
export function completeLayer(parts: StoreParts, id: string, alongside?: () => void): void {
  crashPoint("before-complete");
  parts.tx(() => {
    alongside?.();
    parts.catalog.setLayerState(id, "complete", "");
  });
  parts.reserve.ensure();
}

export async function createLayer(parts: StoreParts, options: CreateLayerOptions): Promise<LayerRecord> {
  const layer = beginLayer(parts, options);
  await buildLayer(parts, layer);
  completeLayer(parts, layer.id);
  return parts.catalog.getLayer(layer.id)!;
}

/**
 * create-layer followed by applydiff of source; the layer is removed again if applying fails.
 * `verify` sees the applied values (digests, sizes) before the layer is marked complete and may
 * refuse them by throwing: the layer is then removed and never visible as complete. `preview`,
 * when given, reads the same tar ahead of the apply (a driver that copies the parent leaves
 * out what the tar removes).
 */
export async function importLayer(parts: StoreParts, options: CreateLayerOptions, source: ByteSource, verify?: (applied: LayerRecord) => void, preview?: LayerPreview): Promise<LayerRecord> {
  const layer = await importLayerFlushingBehind(parts, options, source, verify, preview);
  try {
    return await layer.complete();
  } catch (e) {
    await layer.abandon().catch(() => {
      // The row stays 'creating', owned by this process: the next command's recovery removes it.
    });
    throw e;
  }
}

/** A layer whose tar is applied and verified while its content is still being written to disk. */
export interface LayerBeingFlushed {
  readonly id: string;
  /** Marks the layer complete once its content is on disk; throws what the flush failed with (the layer stays, for abandon). */
  complete(): Promise<LayerRecord>;
  /** Removes the layer again, once its flush has ended (a failed flush, or the work it was part of failed). */
  abandon(): Promise<void>;
}

/**
 * importLayer that returns once the tar is applied and verified: the layer's filesystem is
 * flushed on a thread of its own meanwhile, so that the caller can go on (a pull begins the next
 * layer on top of this one) while the kernel writes it back. Until complete() the layer stays
 * 'creating', owned by this process, and a crash removes it as any half-made layer.
 */
export async function importLayerFlushingBehind(
  parts: StoreParts,
  options: CreateLayerOptions,
  source: ByteSource,
  verify?: (applied: LayerRecord) => void,
  preview?: LayerPreview,
): Promise<LayerBeingFlushed> {
  const layer = beginLayer(parts, options);
  // Settles to what the flush failed with, if anything: no rejection waits unobserved for complete().
  let flushed: Promise<{ failure: unknown } | undefined> = Promise.resolve(undefined);
  await buildLayer(
    parts,
    layer,
    async (l) => {
      await applyInto(parts, l, source);
      verify?.(parts.catalog.getLayer(l.id, true)!);
      const { syncFilesystemInBackground } = await import("../sys/background-sync.ts");
      flushed = syncFilesystemInBackground(parts.driver.contentDir(l.id)).then(
        () => undefined,
        (failure: unknown) => ({ failure }),
      );
    },
    { preview },
  );
  return {
    id: layer.id,
    async complete() {
      const outcome = await flushed;
      if (outcome) throw outcome.failure;
      completeLayer(parts, layer.id);
      return parts.catalog.getLayer(layer.id)!;
    },
    async abandon() {
      await flushed;
      await abandonLayer(parts, layer.id);
    },
  };
}

/** Applies a tar to a layer being made or re-made, recording its values and layout; the caller flushes it. */
async function applyInto(parts: StoreParts, layer: LayerRecord, source: ByteSource): Promise<void> {
  parts.tx(() => parts.catalog.clearLayout(layer.id));
  let seq = 0;
  const result = await parts.driver.applyDiff(layer.id, source, mapsOf(layer), (chunk) => {
    const n = seq++;
    parts.tx(() => parts.catalog.addLayoutChunk(layer.id, n, chunk));
    crashPoint("mid-apply");
  });
  parts.tx(() => parts.catalog.recordApplied(layer.id, { ...result, hasLayout: true }));
}

/**
 * Applies a layer tar to an existing layer. While applying, the layer is hidden and owned by
 * this process, so no half-applied layer is ever visible: when the apply fails (a bad tar, a
 * full disk) the layer is emptied again here, and when the process dies the next writer
 * empties it (recovery.ts); either way the apply can be repeated.
 */
export async function applyDiff(parts: StoreParts, ref: string, source: ByteSource): Promise<void> {
  const layer = parts.tx(() => {
    const found = findLayer(parts, ref);
    // A read-only store's layer is not one this store can write to: 1.43 says it does not know it.
    if (!found || found.fromReadOnlyStore) throw new LayerUnknownError();
    parts.catalog.setLayerState(found.id, "creating", parts.token);
    parts.catalog.setLayerOnInterrupt(found.id, "reset");
    return found;
  });
  try {
    await applyInto(parts, layer, source);
    (await import("../sys/libc.ts")).syncFilesystem(parts.driver.contentDir(layer.id));
  } catch (e) {
    await resetLayer(parts, layer.id).catch(() => {
      // The row stays 'creating' (reset on interrupt), owned by this process: the next command's recovery resets it.
    });
    throw e;
  }
  completeLayer(parts, layer.id);
}

/**
 * Makes a layer whose apply failed or was interrupted empty on its parent again, keeping its
 * record, names and data items, and marks it complete with nothing applied. A layer that has
 * children keeps its content (re-making it would cut them off from it). Removing the content
 * first frees the space the rest needs.
 */
export async function resetLayer(parts: StoreParts, id: string): Promise<void> {
  const { catalog } = parts;
  const layer = catalog.getLayer(id, true)!;
  if (catalog.childLayerRows(id).length === 0) {
    await removeLayerContent(parts, id);
    await makeLayerContent(parts, layer);
    parts.driver.flushCreated(id);
  }
  parts.freeingTx(() => {
    catalog.clearLayout(id);
    catalog.recordApplied(id, NOTHING_APPLIED);
    catalog.setLayerState(id, "complete", "");
  });
}

// ---- removing --------------------------------------------------------------------------------

/**
 * Claim: marks a complete layer 'deleting' by this process, in the transaction that runs check
 * (which throws to refuse), so that two processes never delete one layer and nothing starts
 * using it between check and mark. False when the layer was no longer there.
 */
export function claimLayer(parts: StoreParts, id: string, check?: () => void): boolean {
  return parts.freeingTx(() => {
    if (!parts.catalog.getLayer(id)) return false;
    check?.();
    parts.catalog.setLayerState(id, "deleting", parts.token);
    return true;
  });
}

/** Claims layers that the caller's transaction has checked may go (an image's own layers, decided with it). */
export function claimCheckedLayers(parts: StoreParts, ids: string[]): void {
  for (const id of ids) parts.catalog.setLayerState(id, "deleting", parts.token);
}

/** Deletes a layer's content after releasing its mounts, counted or not (one left by a process killed while mounting). */
export async function removeLayerContent(parts: StoreParts, id: string): Promise<void> {
  parts.mounter.unmount(id, true);
  parts.mounter.releaseUncounted(parts.driver.mountPoint(id));
  await parts.driver.remove(id);
}

/**
 * Remove and drop: the content, then the row, of a layer this process has claimed; beforeContent
 * removes what goes with the layer (a container's directories) first.
 */
export async function removeClaimedLayer(parts: StoreParts, id: string, beforeContent?: () => void): Promise<void> {
  crashPoint("after-delete-mark");
  beforeContent?.();
  await removeLayerContent(parts, id);
  crashPoint("after-content-removed");
  parts.freeingTx(() => dropLayerRow(parts, id));
}

/** Claims, removes and drops a layer; false when it was no longer there to delete. */
export async function destroyLayer(parts: StoreParts, id: string, check?: () => void): Promise<boolean> {
  if (!claimLayer(parts, id, check)) return false;
  await removeClaimedLayer(parts, id);
  return true;
}

/** Drop: the row of a layer whose content is gone, its place in images' mapped layers, and the container whose layer it was. */
export function dropLayerRow(parts: StoreParts, id: string): void {
  const { catalog } = parts;
  const container = catalog.containerOfLayer(id);
  if (container) catalog.deleteObject("container", container);
  catalog.deleteObject("layer", id);
  for (const image of catalog.imagesUsingLayer(id)) {
    const record = catalog.getImage(image)!;
    if (record.mappedLayers.includes(id)) catalog.setMappedLayers(image, record.mappedLayers.filter((l) => l !== id));
  }
}

/** Why a layer may not be deleted safely, or undefined when it may (docs/cli-contract.md §3.5.3). */
function layerInUse(parts: StoreParts, id: string): LayerInUseError | undefined {
  const child = parts.catalog.childLayerRows(id)[0];
  if (child) return new LayerInUseError(`used by layer ${child}: layer has children`);
  const image = parts.catalog.imagesUsingLayer(id)[0];
  if (image) return new LayerInUseError(`layer ${id} used by image ${image}: layer is in use by an image`);
  const container = parts.catalog.containerOfLayer(id);
  if (container) return new LayerInUseError(`layer ${id} used by container ${container}: layer is in use by a container`);
  return undefined;
}

/** delete-layer: refuses layers that children, images or containers still use (checked on the resolved ID). */
export async function deleteLayer(parts: StoreParts, ref: string): Promise<void> {
  const layer = findLayer(parts, ref);
  if (!layer || layer.fromReadOnlyStore) throw new NotALayerError();
  const deleted = await destroyLayer(parts, layer.id, () => {
    const busy = layerInUse(parts, layer.id);
    if (busy) throw busy;
  });
  if (!deleted) throw new NotALayerError();
}
