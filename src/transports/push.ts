/**
 * push: an image of the store out through a transport. Each layer is exported with the Store's
 * diff (byte-exact when the layer was applied from a tar, so diffIDs survive a round trip),
 * compressed on the diff workers as `diff -c` does, hashed while it is written, and described
 * in a new manifest of the asked type; the config is the image's stored config.
 */
import { CorruptError, ImageUnknownError, NotSupportedError, PreconditionError } from "../errors.ts";
import { Compression } from "../archive/types.ts";
import type { LayerRecord } from "../store/records.ts";
import type { Store } from "../store/store.ts";
import type { Progress } from "../util/progress.ts";
import { openDestination, type TransportOptions } from "./index.ts";
import { exportStream } from "./layer-export.ts";
import { ImageFormatError, MEDIA, layerMediaType, parseConfig, parseManifest, sha256Hex, shortDigest, type LayerCompression } from "./manifest.ts";
import type { Descriptor, RawManifest, StoredLayer } from "./types.ts";

export interface PushOptions {
  /** Default: what the destination takes, else gzip. */
  compression?: LayerCompression;
  /** "oci" or "v2s2"; default: the destination's preferred manifest type. */
  format?: "oci" | "v2s2";
  progress?: Progress;
  /** How to reach a registry (docker://). */
  transport?: TransportOptions;
}

const COMPRESSION: Record<LayerCompression, Compression> = { gzip: Compression.Gzip, zstd: Compression.Zstd, none: Compression.None };

/** The image's layers, base first. */
function layerChain(store: Store, top: string): LayerRecord[] {
  const chain: LayerRecord[] = [];
  for (let id = top; id !== ""; ) {
    const layer = store.layer(id);
    chain.unshift(layer);
    id = layer.parent;
  }
  return chain;
}

/** Pushes one image; returns the digest of the manifest written. */
export async function pushImage(store: Store, imageRef: string, destinationText: string, options: PushOptions): Promise<string> {
  const image = store.findImage(imageRef);
  if (!image) throw new ImageUnknownError();
  const storedManifest = store.bigData("image", image, "manifest");
  if (!storedManifest) throw new PreconditionError(`image ${image.id} has no "manifest" data item, so its config is not known; only pulled images can be pushed`);
  const stored = parseManifest({ bytes: storedManifest, mediaType: "", digest: `sha256:${sha256Hex(storedManifest)}` }, `image ${image.id}: manifest`);
  if (stored.kind !== "image") throw new ImageFormatError(`image ${image.id}: its manifest is an index`);
  const configBytes = store.bigData("image", image, stored.config.digest);
  if (!configBytes) throw new CorruptError(`image ${image.id}: config ${stored.config.digest} is not among its data items`);
  const config = parseConfig(configBytes, `image ${image.id}: config`);
  const layers = image.topLayer ? layerChain(store, image.topLayer) : [];
  if (layers.length !== config.diffIds.length) throw new ImageFormatError(`image ${image.id}: config rootfs.diff_ids has ${config.diffIds.length} entries for ${layers.length} layers`);

  const wantedType = options.format === undefined ? undefined : options.format === "v2s2" ? MEDIA.dockerManifest : MEDIA.ociManifest;
  const destination = await openDestination(destinationText, { manifestType: wantedType ?? MEDIA.ociManifest }, options.transport);
  try {
    const manifestType = wantedType ?? destination.manifestTypes[0]!;
    if (!destination.manifestTypes.includes(manifestType)) {
      throw new NotSupportedError(`${destination.description}: cannot hold ${options.format === "v2s2" ? "Docker schema 2" : "OCI"} manifests (--format ${options.format}); it takes ${destination.manifestTypes.join(", ")}`);
    }
    const compression = options.compression ?? destination.layerCompression ?? "gzip";
    if (destination.layerCompression !== undefined && compression !== destination.layerCompression) {
      throw new NotSupportedError(`${destination.description}: layers are stored uncompressed (--compression-format ${destination.layerCompression}), not ${compression}`);
    }
    const layerType = layerMediaType(manifestType, compression);
    const descriptors: Descriptor[] = [];
    for (const [i, layer] of layers.entries()) {
      const stored = storedLayer(layer, config.diffIds[i]!);
      const label = `Copying blob ${shortDigest(stored.diffId)}`;
      const reused = await destination.reuseLayer?.(stored, manifestType, compression);
      if (reused) {
        options.progress?.item(label).skip();
        descriptors.push(reused);
        continue;
      }
      // The progress line counts the layer's uncompressed tar as the first export writes it.
      const meter = options.progress?.meter(label);
      // A registry upload that fails mid-way may ask for the layer again (a fresh export of the same bytes).
      const exportLayer = () => exportStream((sink) => store.diff(layer.id, undefined, sink, COMPRESSION[compression]));
      const first = exportStream((sink) => store.diff(layer.id, undefined, sink, COMPRESSION[compression], meter));
      const written = await destination.putBlob(first, undefined, exportLayer);
      meter?.finish();
      const descriptor = { mediaType: layerType, digest: written.digest, size: written.size };
      destination.layerPushed?.(stored, descriptor);
      descriptors.push(descriptor);
    }
    const configType = manifestType === MEDIA.dockerManifest ? MEDIA.dockerConfig : MEDIA.ociConfig;
    const configDigest = `sha256:${sha256Hex(configBytes)}`;
    await destination.putBlob(once(configBytes), { digest: configDigest, size: configBytes.byteLength });
    const manifest = manifestBytes(manifestType, { mediaType: configType, digest: configDigest, size: configBytes.byteLength }, descriptors);
    const raw: RawManifest = { bytes: manifest, mediaType: manifestType, digest: `sha256:${sha256Hex(manifest)}` };
    await destination.putManifest(raw);
    await destination.commit();
    return raw.digest;
  } finally {
    options.progress?.end();
    await destination.close();
  }
}

const STORED_COMPRESSION: Partial<Record<Compression, StoredLayer["compression"]>> = { [Compression.Gzip]: "gzip", [Compression.Zstd]: "zstd", [Compression.None]: "none" };

/** What a destination needs to find a blob it may reuse for a layer. */
function storedLayer(layer: LayerRecord, diffId: string): StoredLayer {
  return {
    diffId,
    compressedDigest: layer.compressedDigest,
    compressedSize: layer.compressedSize,
    compression: STORED_COMPRESSION[layer.compression] ?? "other",
  };
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Manifest JSON with fields in the order containers/image writes them. */
function manifestBytes(mediaType: string, config: Descriptor, layers: Descriptor[]): Uint8Array {
  const docker = mediaType === MEDIA.dockerManifest;
  const descriptor = (d: Descriptor) => (docker ? { mediaType: d.mediaType, size: d.size, digest: d.digest } : { mediaType: d.mediaType, digest: d.digest, size: d.size });
  return new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, mediaType, config: descriptor(config), layers: layers.map(descriptor) }));
}
