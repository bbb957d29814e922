/**
 * Reading an image from a registry: the manifest by tag or digest with the Accept list of the
 * types pull understands (OCI and Docker schema 2 manifests and indexes), blobs through
 * blob-reader.ts. Blobs may be read several at once (`parallelBlobs`).
 */
import { ImageFormatError, MEDIA, sha256Hex } from "../manifest.ts";
import { formatImageName, type ImageName } from "../names.ts";
import type { BlobReader, Descriptor, ImageSource, RawManifest } from "../types.ts";
import { openBlob } from "./blob-reader.ts";
import type { BlobHints } from "./blob-hints.ts";
import { RegistryClient, type RegistryOptions } from "./client.ts";

/** The manifest types asked for, preferred first (containers/image asks for the same, less schema 1). */
export const MANIFEST_ACCEPT = [MEDIA.ociManifest, MEDIA.dockerManifest, MEDIA.ociIndex, MEDIA.dockerList].join(", ");

/** Manifests larger than this are refused (containers/image's limit). */
const MAX_MANIFEST_BYTES = 4 << 20;

/** Reads a manifest by tag or digest; the digest is checked when the reference has one. */
export async function fetchManifest(client: RegistryClient, reference: string): Promise<RawManifest> {
  const response = await client.request("GET", `/v2/${client.repository}/manifests/${reference}`, {
    what: `reading manifest ${reference}`,
    scopes: [`repository:${client.repository}:pull`],
    headers: { accept: MANIFEST_ACCEPT },
  });
  const declared = Number(response.headers.get("content-length") ?? 0);
  if (declared > MAX_MANIFEST_BYTES) {
    await response.body?.cancel();
    throw new ImageFormatError(`${client.where}: manifest ${reference} is ${declared} bytes, more than the ${MAX_MANIFEST_BYTES} allowed`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new ImageFormatError(`${client.where}: manifest ${reference} is more than ${MAX_MANIFEST_BYTES} bytes`);
  const digest = `sha256:${sha256Hex(bytes)}`;
  if (reference.includes(":") && reference !== digest) throw new ImageFormatError(`${client.where}: manifest ${reference}: digest mismatch (the registry sent ${digest})`);
  const mediaType = (response.headers.get("content-type") ?? "").split(";")[0]!.trim();
  return { bytes, mediaType, digest };
}

class RegistrySource implements ImageSource {
  readonly parallelBlobs = true;

  constructor(
    readonly description: string,
    private readonly name: ImageName,
    private readonly client: RegistryClient,
    private readonly hints: BlobHints | undefined,
  ) {}

  manifest(digest?: string): Promise<RawManifest> {
    return fetchManifest(this.client, digest ?? this.name.digest ?? this.name.tag ?? "latest");
  }

  async blob(descriptor: Descriptor): Promise<BlobReader> {
    return openBlob(this.client, descriptor.digest, descriptor.size);
  }

  /** Remembers that this repository holds the layer's blob, and which diffID it holds. */
  layerStored(descriptor: Descriptor, diffId: string): void {
    this.hints?.rememberBlobLocation(descriptor.digest, this.client.registry, this.client.repository);
    this.hints?.rememberLayerBlob(diffId, descriptor);
  }

  imageNames(): string[] {
    return [formatImageName(this.name)];
  }

  async close(): Promise<void> {}
}

/** Opens a registry image for reading. */
export function openRegistryImageSource(description: string, name: ImageName, options: RegistryOptions, hints?: BlobHints): ImageSource {
  return new RegistrySource(description, name, new RegistryClient(name.domain, name.path, options), hints);
}
