/**
 * pull: an image from a transport into the store, as containers/image's containers-storage
 * destination would store it (layer IDs chained from diffIDs, image ID = config digest, the
 * same data items, digest and metadata).
 *
 * Each layer blob is applied in one pass: the Store's import hashes the compressed bytes,
 * decompresses, hashes the tar and applies it, and the digests and sizes are checked before the
 * layer is marked complete. A blob that is on this host may be read once more before (a preview:
 * vfs leaves out of its copy of the parent what the layer removes). Layers this pull made are removed again if it fails; each image,
 * its names and data items are written in one transaction at the end. An image picked from an
 * index keeps the index too, as containers/image keeps it: the image's digest is the index's,
 * and the index's bytes are a data item beside the image's manifest.
 */
import { IdInUseError, InvalidArgumentError, messageOf, withContext } from "../errors.ts";
import type { ImageImportPlan } from "../store/images.ts";
import type { LayerPreview } from "../drivers/driver.ts";
import type { CreateLayerOptions, LayerBeingFlushed } from "../store/layer-lifecycle.ts";
import type { ImageRecord, LayerRecord } from "../store/records.ts";
import { crashPoint } from "../util/crash-points.ts";
import type { Progress } from "../util/progress.ts";
import type { Store } from "../store/store.ts";
import { openSource, type TransportOptions } from "./index.ts";
import {
  ImageFormatError,
  checkDiffIdCount,
  choosePlatform,
  imageDataItems,
  imageIdOf,
  imageMetadata,
  layerIdChain,
  parseConfig,
  parseManifest,
  sha256Hex,
  shortDigest,
  type ImageManifest,
} from "./manifest.ts";
import { formatImageName, normalizeLocalName } from "./names.ts";
import { LayerCompletions } from "./layer-completions.ts";
import { BlobPrefetcher } from "./prefetch.ts";
import { parseReference } from "./reference.ts";
import type { Descriptor, ImageSource, Platform, RawManifest } from "./types.ts";

export interface PullOptions {
  /** Names for the image; default: the source's name completed as podman does (if it has one). */
  names?: string[];
  platform: Platform;
  /** From an index, every image (names go to the one `platform` picks), not just the one for `platform`. */
  all?: boolean;
  progress?: Progress;
  /** How to reach a registry (docker://). */
  transport?: TransportOptions;
  /** Blobs downloaded at once from a source that allows it (default 3). */
  maxParallel?: number;
}

/** Reads a whole small blob (a config), checking its digest and size. */
async function readSmallBlob(source: ImageSource, descriptor: Descriptor, what: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of (await source.blob(descriptor)).stream) chunks.push(chunk.slice());
  const bytes = Buffer.concat(chunks);
  const digest = `sha256:${sha256Hex(bytes)}`;
  if (digest !== descriptor.digest) throw new ImageFormatError(`${source.description}: ${what} ${descriptor.digest}: digest mismatch (read ${digest})`);
  if (bytes.byteLength !== descriptor.size) throw new ImageFormatError(`${source.description}: ${what} ${descriptor.digest}: size mismatch (read ${bytes.byteLength} bytes, the manifest says ${descriptor.size})`);
  return bytes;
}

/** One image to store: its manifest, and the index it was picked from (if any). */
interface Instance {
  raw: RawManifest;
  manifest: ImageManifest;
  list?: RawManifest;
  /** Whether the image gets the pull's names (with --all, only the one --platform picks). */
  named: boolean;
}

/** Buildkit's attestation manifests in an index: metadata about an image, not images. */
function isAttestation(entry: Descriptor): boolean {
  return entry.annotations?.["vnd.docker.reference.type"] === "attestation-manifest";
}

/** The manifest of an index entry, checked against the entry. */
async function entryManifest(source: ImageSource, list: RawManifest, entry: Descriptor): Promise<{ raw: RawManifest; manifest: ImageManifest }> {
  const raw = await source.manifest(entry.digest);
  const what = `${source.description}: manifest ${entry.digest}`;
  if (raw.bytes.byteLength !== entry.size) throw new ImageFormatError(`${what}: size mismatch (read ${raw.bytes.byteLength} bytes, the index says ${entry.size})`);
  const manifest = parseManifest({ ...raw, mediaType: raw.mediaType || entry.mediaType }, what);
  if (manifest.kind === "index") throw new ImageFormatError(`${what}: an index inside the index ${list.digest} is not supported`);
  return { raw, manifest };
}

/** The images to pull: the reference's image, or from an index the entry for `platform` (or, with all, every image). */
async function instancesToPull(source: ImageSource, platform: Platform, all: boolean): Promise<Instance[]> {
  const top = await source.manifest();
  const parsed = parseManifest(top, `${source.description}: manifest ${top.digest}`);
  if (parsed.kind === "image") return [{ raw: top, manifest: parsed, named: true }];
  if (!all) return [{ ...(await entryManifest(source, top, choosePlatform(parsed, platform))), list: top, named: true }];
  let chosen: Descriptor | undefined;
  try {
    chosen = choosePlatform(parsed, platform);
  } catch {
    chosen = undefined; // no image for this platform: every image is stored, none named
  }
  const instances: Instance[] = [];
  for (const entry of parsed.manifests.filter((e) => !isAttestation(e))) {
    instances.push({ ...(await entryManifest(source, top, entry)), list: top, named: entry === chosen });
  }
  if (instances.length === 0) throw new ImageFormatError(`${source.description}: the index ${top.digest} lists no images`);
  return instances;
}

/**
 * Imports one image's layers (those not in the store yet), base first, recording each it made
 * in `created`; returns the plan of its image. Blobs are read ahead, up to `maxParallel` at once, where
 * the source allows it (prefetch.ts); each is applied in turn as it streams, on top of the one
 * before while that one is still being flushed (layer-completions.ts).
 */
async function importInstance(store: Store, source: ImageSource, instance: Instance, names: string[], created: string[], options: PullOptions): Promise<ImageImportPlan> {
  const { raw, manifest, list } = instance;
  const configBytes = await readSmallBlob(source, manifest.config, "config");
  const config = parseConfig(configBytes, `${source.description}: config ${manifest.config.digest}`);
  checkDiffIdCount(manifest, config);
  const layerIds = layerIdChain(config.diffIds);
  const missing = manifest.layers.filter((_, i) => store.findLayer(layerIds[i]!)?.id !== layerIds[i]);
  // Only a registry's blobs are read ahead; a local layout's or archive's are read in turn, never copied.
  const prefetcher = new BlobPrefetcher(source, missing, source.parallelBlobs ? (options.maxParallel ?? 3) : 0);
  const completions = new LayerCompletions((id) => created.push(id));
  try {
    let parent: string | undefined;
    for (const [i, descriptor] of manifest.layers.entries()) {
      const id = layerIds[i]!;
      const line = options.progress?.item(`Copying blob ${shortDigest(descriptor.digest)}`, descriptor.size);
      if (missing.includes(descriptor)) {
        const reader = await prefetcher.next();
        if (reader.size >= 0 && reader.size !== descriptor.size) {
          throw new ImageFormatError(`${source.description}: layer ${descriptor.digest}: size mismatch (the blob has ${reader.size} bytes, the manifest says ${descriptor.size})`);
        }
        const stream = line ? line.track(reader.stream) : reader.stream;
        // A blob that is local can be read ahead (vfs then leaves out of its copy of the parent what the layer removes).
        const preview = reader.reread && parent !== undefined ? { read: reader.reread, digest: reader.rereadPrivate ? undefined : descriptor.digest } : undefined;
        try {
          const verify = (applied: LayerRecord) => checkApplied(source.description, descriptor, config.diffIds[i]!, i, applied);
          const made = await importUnlessMadeElsewhere(store, { id, parent, names: [] }, stream, verify, preview);
          if (made) completions.add(made);
          else {
            // Another pull made it meanwhile: its download is closed unread.
            for await (const _ of reader.stream) break;
            line?.skip();
          }
        } catch (error) {
          throw await explainLayerFailure(source, descriptor, error);
        }
        completions.check();
      } else {
        line?.skip();
      }
      source.layerStored?.(descriptor, config.diffIds[i]!);
      parent = id;
    }
    await completions.finish();
    return {
      id: imageIdOf(manifest.config.digest),
      topLayer: parent ?? "",
      names: instance.named ? names : [],
      digest: (list ?? raw).digest,
      metadata: imageMetadata(raw.digest),
      bigData: imageDataItems(raw, manifest.config.digest, configBytes, list),
    };
  } catch (error) {
    await completions.abandon();
    throw error;
  } finally {
    prefetcher.close();
  }
}

/**
 * Imports a layer, unless another process is making the same layer (a pull of the same image
 * at the same time): then waits for it and returns undefined once it is complete, or imports it
 * after all if that process gave it up. The layer's row is checked before the stream is read.
 */
async function importUnlessMadeElsewhere(
  store: Store,
  options: CreateLayerOptions & { id: string },
  stream: AsyncIterable<Uint8Array>,
  verify: (applied: LayerRecord) => void,
  preview: LayerPreview | undefined,
): Promise<LayerBeingFlushed | undefined> {
  for (;;) {
    try {
      return await store.importLayerFlushingBehind(options, stream, verify, preview);
    } catch (error) {
      if (!(error instanceof IdInUseError)) throw error;
      const elsewhere = await store.layerMadeElsewhere(options.id);
      if (elsewhere === "complete") return undefined;
      if (elsewhere === "stuck") throw error;
    }
  }
}

/**
 * Pulls the image a reference names (from an index: the one for the platform; with `all`,
 * every image it lists) and returns the records of the images stored.
 */
export async function pullImages(store: Store, referenceText: string, options: PullOptions): Promise<ImageRecord[]> {
  const source = await openSource(parseReference(referenceText), options.transport);
  const created: string[] = [];
  try {
    const instances = await instancesToPull(source, options.platform, options.all === true);
    const names = options.names ?? defaultNames(source);
    const plans: ImageImportPlan[] = [];
    for (const instance of instances) plans.push(await importInstance(store, source, instance, names, created, options));
    crashPoint("before-image-commit");
    return plans.map((plan) => store.importImage(plan));
  } catch (error) {
    for (const id of created.reverse()) {
      if (store.findLayer(id)) await store.deleteLayer(id).catch(() => {});
    }
    throw error;
  } finally {
    options.progress?.end();
    await source.close();
  }
}

/**
 * The error to report for a layer whose import failed: a blob that does not decompress or
 * apply is first read again whole, so that corrupt bytes are reported as the digest mismatch
 * they are; any other failure is named with the blob (unless it names it already).
 */
async function explainLayerFailure(source: ImageSource, descriptor: Descriptor, error: unknown): Promise<unknown> {
  if (error instanceof ImageFormatError || messageOf(error).includes(descriptor.digest)) return error;
  const where = `${source.description}: layer ${descriptor.digest}`;
  try {
    const hasher = new Bun.CryptoHasher("sha256");
    for await (const chunk of (await source.blob(descriptor)).stream) hasher.update(chunk);
    const digest = `sha256:${hasher.digest("hex")}`;
    if (digest !== descriptor.digest) return new ImageFormatError(`${where}: digest mismatch (read ${digest})`);
  } catch {
    // Reading it again failed too: the first error says why.
  }
  return withContext(where, error);
}

/** Refuses a layer whose applied bytes are not the ones the manifest and config describe. */
function checkApplied(where: string, descriptor: Descriptor, diffId: string, index: number, applied: { compressedDigest: string; compressedSize: number; diffDigest: string }): void {
  if (applied.compressedDigest !== descriptor.digest) throw new ImageFormatError(`${where}: layer ${descriptor.digest}: digest mismatch (read ${applied.compressedDigest})`);
  if (applied.compressedSize !== descriptor.size) throw new ImageFormatError(`${where}: layer ${descriptor.digest}: size mismatch (read ${applied.compressedSize} bytes, the manifest says ${descriptor.size})`);
  if (applied.diffDigest !== diffId) throw new ImageFormatError(`${where}: layer ${descriptor.digest}: uncompressed digest ${applied.diffDigest} does not match the config's rootfs.diff_ids[${index}] ${diffId}`);
}

/** The names podman gives an image pulled from this source: its own names completed with localhost/. */
function defaultNames(source: ImageSource): string[] {
  try {
    return [...new Set(source.imageNames().map((name) => formatImageName(normalizeLocalName(name))))];
  } catch (error) {
    throw new InvalidArgumentError(`${source.description}: ${messageOf(error)}; give the image a name with --name`);
  }
}
