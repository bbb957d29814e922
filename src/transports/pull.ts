/**
 * pull: an image from a transport into the store, as containers/image's containers-storage
 * destination would store it (layer IDs chained from diffIDs, image ID = config digest, the
 * same data items, digest and metadata).
 *
 * Each layer blob is read once: the Store's import hashes the compressed bytes, decompresses,
 * hashes the tar and applies it in one pass, and the digests and sizes are checked before the
 * layer is marked complete. Layers this pull made are removed again if it fails; the image,
 * its names and data items are written in one transaction at the end.
 */
import { InvalidArgumentError, messageOf, withContext } from "../errors.ts";
import type { ImageRecord } from "../store/records.ts";
import type { Store } from "../store/store.ts";
import type { Progress } from "../util/progress.ts";
import { openSource, type TransportOptions } from "./index.ts";
import {
  ImageFormatError,
  checkDiffIdCount,
  choosePlatform,
  formatPlatform,
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
import { BlobPrefetcher } from "./prefetch.ts";
import { parseReference } from "./reference.ts";
import type { Descriptor, ImageSource, Platform, RawManifest } from "./types.ts";

export interface PullOptions {
  /** Names for the image; default: the source's name completed as podman does (if it has one). */
  names?: string[];
  platform: Platform;
  progress?: Progress;
  /** How to reach a registry (docker://). */
  transport?: TransportOptions;
  /** Blobs downloaded at once from a source that allows it (default 3). */
  maxParallel?: number;
}

/** Reads a whole small blob (a config), checking its digest and size. */
async function readSmallBlob(source: ImageSource, descriptor: Descriptor, what: string): Promise<Uint8Array> {
  const reader = await source.blob(descriptor);
  const bytes = new Uint8Array(await new Response(reader.stream as unknown as ReadableStream).arrayBuffer());
  const digest = `sha256:${sha256Hex(bytes)}`;
  if (digest !== descriptor.digest) throw new ImageFormatError(`${source.description}: ${what} ${descriptor.digest}: digest mismatch (read ${digest})`);
  if (bytes.byteLength !== descriptor.size) throw new ImageFormatError(`${source.description}: ${what} ${descriptor.digest}: size mismatch (read ${bytes.byteLength} bytes, the manifest says ${descriptor.size})`);
  return bytes;
}

/** The image manifest to pull: the reference's, or the entry of its index for `platform`. */
async function imageManifest(source: ImageSource, platform: Platform): Promise<{ raw: RawManifest; manifest: ImageManifest }> {
  let raw = await source.manifest();
  let parsed = parseManifest(raw, `${source.description}: manifest ${raw.digest}`);
  if (parsed.kind === "index") {
    const entry = choosePlatform(parsed, platform);
    raw = await source.manifest(entry.digest);
    parsed = parseManifest({ ...raw, mediaType: raw.mediaType || entry.mediaType }, `${source.description}: manifest ${raw.digest}`);
    if (parsed.kind === "index") throw new ImageFormatError(`${source.description}: manifest ${raw.digest} (for ${formatPlatform(platform)}) is an index again`);
  }
  return { raw, manifest: parsed };
}

/** Pulls one image and returns its record. */
export async function pullImage(store: Store, referenceText: string, options: PullOptions): Promise<ImageRecord> {
  const source = await openSource(parseReference(referenceText), options.transport);
  const created: string[] = [];
  let prefetcher: BlobPrefetcher | undefined;
  try {
    const { raw, manifest } = await imageManifest(source, options.platform);
    const configBytes = await readSmallBlob(source, manifest.config, "config");
    const config = parseConfig(configBytes, `${source.description}: config ${manifest.config.digest}`);
    checkDiffIdCount(manifest, config);
    const layerIds = layerIdChain(config.diffIds);
    const missing = manifest.layers.filter((_, i) => store.findLayer(layerIds[i]!)?.id !== layerIds[i]);
    prefetcher = new BlobPrefetcher(source, missing, source.parallelBlobs ? (options.maxParallel ?? 3) : 1);
    let parent: string | undefined;
    for (const [i, descriptor] of manifest.layers.entries()) {
      const id = layerIds[i]!;
      const line = options.progress?.item(`Copying blob ${shortDigest(descriptor.digest)}`, descriptor.size);
      if (!missing.includes(descriptor)) {
        source.layerStored?.(descriptor, config.diffIds[i]!);
        line?.skip();
      } else {
        const reader = await prefetcher.next();
        if (reader.size >= 0 && reader.size !== descriptor.size) {
          throw new ImageFormatError(`${source.description}: layer ${descriptor.digest}: size mismatch (the blob has ${reader.size} bytes, the manifest says ${descriptor.size})`);
        }
        const stream = line ? line.track(reader.stream) : reader.stream;
        await store.importLayer({ id, parent, names: [] }, stream, (applied) => checkApplied(source.description, descriptor, config.diffIds[i]!, i, applied)).catch((error) => {
          throw messageOf(error).includes(descriptor.digest) ? error : withContext(`${source.description}: layer ${descriptor.digest}`, error);
        });
        created.push(id);
        source.layerStored?.(descriptor, config.diffIds[i]!);
      }
      parent = id;
    }
    if (parent === undefined) throw new ImageFormatError(`${source.description}: manifest ${raw.digest} has no layers`);
    const names = options.names ?? defaultNames(source);
    return store.importImage({
      id: imageIdOf(manifest.config.digest),
      topLayer: parent,
      names,
      digest: raw.digest,
      metadata: imageMetadata(raw.digest),
      bigData: imageDataItems(raw, manifest.config.digest, configBytes),
    });
  } catch (error) {
    for (const id of created.reverse()) {
      if (store.findLayer(id)) await store.deleteLayer(id).catch(() => {});
    }
    throw error;
  } finally {
    prefetcher?.close();
    options.progress?.end();
    await source.close();
  }
}

/** Refuses a layer whose applied bytes are not the ones the manifest and config describe. */
function checkApplied(where: string, descriptor: Descriptor, diffId: string, index: number, applied: { compressedDigest: string; compressedSize: number; diffDigest: string }): void {
  if (applied.compressedDigest !== descriptor.digest) throw new ImageFormatError(`${where}: layer ${descriptor.digest}: digest mismatch (read ${applied.compressedDigest})`);
  if (applied.compressedSize !== descriptor.size) throw new ImageFormatError(`${where}: layer ${descriptor.digest}: size mismatch (read ${applied.compressedSize} bytes, the manifest says ${descriptor.size})`);
  if (applied.diffDigest !== diffId) throw new ImageFormatError(`${where}: layer ${descriptor.digest}: uncompressed digest ${applied.diffDigest} does not match the config's rootfs.diff_ids[${index}] ${diffId}`);
}

/** The name podman gives an image pulled from this source: its own name completed with localhost/, if any. */
function defaultNames(source: ImageSource): string[] {
  const name = source.imageName();
  if (name === undefined) return [];
  try {
    return [formatImageName(normalizeLocalName(name))];
  } catch (error) {
    throw new InvalidArgumentError(`${source.description}: ${messageOf(error)}; give the image a name with --name`);
  }
}
