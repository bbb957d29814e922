/**
 * Writing an image to a registry: each blob is skipped when the repository has it (HEAD),
 * else uploaded — small ones in one PUT after the POST that opens the upload, layers streamed
 * in one PATCH (hashed on the way) and closed by a PUT with the digest, resumed or started
 * again when the PATCH fails on the way (upload.ts). A layer the store got
 * from this registry (or pushed there before) is not uploaded at all when the repository
 * already has one of its known compressed blobs, or when the registry can mount that blob
 * from another repository where it was seen (`POST …/uploads/?mount=DIGEST&from=REPO`). The
 * manifest is PUT last, which makes the image visible under its tag.
 */
import { ImageFormatError, MEDIA, layerCompression, layerMediaType, sha256Hex, type LayerCompression } from "../manifest.ts";
import type { ImageName } from "../names.ts";
import type { Descriptor, ImageDestination, RawManifest, StoredLayer, WrittenBlob } from "../types.ts";
import type { BlobHints } from "./blob-hints.ts";
import { RegistryClient, type RegistryOptions } from "./client.ts";
import { BlobUploader } from "./upload.ts";

/** Blobs up to this size whose digest is known are sent in one PUT (retried on faults). */
const MONOLITHIC_MAX = 1 << 20;

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk.slice());
  return Buffer.concat(chunks);
}

class RegistryDestination implements ImageDestination {
  readonly manifestTypes = [MEDIA.ociManifest, MEDIA.dockerManifest];
  private readonly pushScopes: string[];
  private readonly uploader: BlobUploader;

  constructor(
    readonly description: string,
    private readonly name: ImageName,
    private readonly client: RegistryClient,
    private readonly hints: BlobHints | undefined,
  ) {
    this.pushScopes = [`repository:${client.repository}:pull,push`];
    this.uploader = new BlobUploader(client, this.pushScopes);
  }

  private blobPath(digest: string): string {
    return `/v2/${this.client.repository}/blobs/${digest}`;
  }

  /** The size of a blob the repository has, or undefined when it has none. */
  private async headBlob(digest: string): Promise<number | undefined> {
    const response = await this.client.request("HEAD", this.blobPath(digest), { what: `checking for blob ${digest}`, scopes: this.pushScopes, accept: [200, 404] });
    await response.body?.cancel();
    if (response.status !== 200) return undefined;
    return Number(response.headers.get("content-length") ?? -1);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.headBlob(digest)) !== undefined;
  }

  /** Asks the registry to mount a blob from another of its repositories; true when it did (201). */
  private async mountBlob(digest: string, from: string): Promise<boolean> {
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const response = await this.client
      .request("POST", `/v2/${this.client.repository}/blobs/uploads/${query}`, {
        what: `mounting blob ${digest} from ${from}`,
        scopes: [...this.pushScopes, `repository:${from}:pull`],
        accept: [201, 202],
        headers: { "content-length": "0" },
      })
      .catch(() => undefined);
    if (!response) return false;
    await response.body?.cancel();
    if (response.status === 201) return true;
    // 202: the registry opened an ordinary upload instead.
    const location = response.headers.get("location");
    if (location) await this.uploader.cancel(location);
    return false;
  }

  async reuseLayer(layer: StoredLayer, manifestType: string, compression: LayerCompression): Promise<Descriptor | undefined> {
    const registry = this.client.registry;
    const candidates = (this.hints?.knownLayerBlobs(layer.diffId, registry) ?? []).filter((c) => compressionOf(c.mediaType) === compression);
    if (layer.compressedDigest && layer.compression === compression && !candidates.some((c) => c.digest === layer.compressedDigest)) {
      candidates.push({ digest: layer.compressedDigest, mediaType: "", size: layer.compressedSize, repositories: this.hints?.blobRepositories(layer.compressedDigest, registry) ?? [] });
    }
    const mediaType = layerMediaType(manifestType, compression);
    for (const candidate of candidates) {
      const size = await this.headBlob(candidate.digest);
      if (size !== undefined) return this.reused(layer, { mediaType, digest: candidate.digest, size: size >= 0 ? size : candidate.size });
    }
    for (const candidate of candidates) {
      for (const from of candidate.repositories.filter((repository) => repository !== this.client.repository)) {
        if (await this.mountBlob(candidate.digest, from)) return this.reused(layer, { mediaType, digest: candidate.digest, size: candidate.size });
      }
    }
    return undefined;
  }

  private reused(layer: StoredLayer, descriptor: Descriptor): Descriptor {
    this.hints?.rememberBlobLocation(descriptor.digest, this.client.registry, this.client.repository);
    this.hints?.rememberLayerBlob(layer.diffId, descriptor);
    return descriptor;
  }

  layerPushed(layer: StoredLayer, descriptor: Descriptor): void {
    this.hints?.rememberLayerBlob(layer.diffId, descriptor);
  }

  async putBlob(stream: AsyncIterable<Uint8Array>, expected?: { digest?: string; size?: number }, again?: () => AsyncIterable<Uint8Array>): Promise<WrittenBlob> {
    if (expected?.digest !== undefined && (await this.headBlob(expected.digest)) !== undefined) {
      return { digest: expected.digest, size: expected.size ?? -1 };
    }
    let written: WrittenBlob;
    if (expected?.digest !== undefined && expected.size !== undefined && expected.size <= MONOLITHIC_MAX) {
      const bytes = await collect(stream);
      written = { digest: `sha256:${sha256Hex(bytes)}`, size: bytes.byteLength };
      checkExpected(this.client.where, written, expected);
      const location = await this.uploader.start();
      try {
        await this.uploader.finish(location, written.digest, bytes);
      } catch (error) {
        await this.uploader.cancel(location);
        throw error;
      }
    } else {
      written = await this.uploader.upload(stream, again, (result) => checkExpected(this.client.where, result, expected));
    }
    this.hints?.rememberBlobLocation(written.digest, this.client.registry, this.client.repository);
    return written;
  }

  async putManifest(manifest: RawManifest): Promise<void> {
    if (this.name.digest !== undefined && this.name.tag === undefined && this.name.digest !== manifest.digest) {
      throw new ImageFormatError(`${this.description}: the manifest written has digest ${manifest.digest}, not the reference's ${this.name.digest}`);
    }
    const reference = this.name.tag ?? this.name.digest ?? "latest";
    const response = await this.client.request("PUT", `/v2/${this.client.repository}/manifests/${reference}`, {
      what: `writing manifest ${reference}`,
      scopes: this.pushScopes,
      accept: [201, 202, 204],
      headers: { "content-type": manifest.mediaType },
      body: manifest.bytes,
    });
    await response.body?.cancel();
  }

  async commit(): Promise<void> {}

  async close(): Promise<void> {}
}

function compressionOf(mediaType: string): LayerCompression | undefined {
  try {
    return layerCompression({ mediaType, digest: "", size: 0 }, "");
  } catch {
    return undefined;
  }
}

function checkExpected(where: string, written: WrittenBlob, expected?: { digest?: string; size?: number }): void {
  if (expected?.digest !== undefined && expected.digest !== written.digest) throw new ImageFormatError(`${where}: blob ${expected.digest}: digest mismatch (wrote ${written.digest})`);
  if (expected?.size !== undefined && expected.size !== written.size) throw new ImageFormatError(`${where}: blob ${expected.digest ?? written.digest}: size mismatch (wrote ${written.size} bytes, expected ${expected.size})`);
}

/** Opens a registry repository for writing. */
export function openRegistryImageDestination(description: string, name: ImageName, options: RegistryOptions, hints?: BlobHints): ImageDestination {
  return new RegistryDestination(description, name, new RegistryClient(name.domain, name.path, options), hints);
}
