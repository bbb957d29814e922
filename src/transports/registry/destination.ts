/**
 * Writing an image to a registry: each blob is skipped when the repository has it (HEAD),
 * else uploaded — small ones in one PUT after the POST that opens the upload, layers streamed
 * in one PATCH (hashed on the way) and closed by a PUT with the digest. A layer the store got
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

  constructor(
    readonly description: string,
    private readonly name: ImageName,
    private readonly client: RegistryClient,
    private readonly hints: BlobHints | undefined,
  ) {
    this.pushScopes = [`repository:${client.repository}:pull,push`];
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

  /** Opens an upload session (or mounts `mount` from repository `from`); returns the response. */
  private startUpload(mount?: { digest: string; from: string }): Promise<Response> {
    const query = mount ? `?mount=${encodeURIComponent(mount.digest)}&from=${encodeURIComponent(mount.from)}` : "";
    const scopes = mount ? [...this.pushScopes, `repository:${mount.from}:pull`] : this.pushScopes;
    return this.client.request("POST", `/v2/${this.client.repository}/blobs/uploads/${query}`, {
      what: mount ? `mounting blob ${mount.digest} from ${mount.from}` : "starting a blob upload",
      scopes,
      accept: mount ? [201, 202] : [202],
      headers: { "content-length": "0" },
    });
  }

  private location(response: Response, what: string): string {
    const location = response.headers.get("location");
    if (!location) throw new ImageFormatError(`${this.client.where}: ${what}: the registry gave no upload location`);
    return location;
  }

  private async cancelUpload(location: string): Promise<void> {
    await this.client.request("DELETE", location, { what: "cancelling an upload", scopes: this.pushScopes, accept: [204, 404], retry: false }).then((r) => r.body?.cancel()).catch(() => {});
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
        const response = await this.startUpload({ digest: candidate.digest, from }).catch(() => undefined);
        if (!response) continue;
        await response.body?.cancel();
        if (response.status === 201) return this.reused(layer, { mediaType, digest: candidate.digest, size: candidate.size });
        await this.cancelUpload(this.location(response, "mounting a blob"));
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

  async putBlob(stream: AsyncIterable<Uint8Array>, expected?: { digest?: string; size?: number }): Promise<WrittenBlob> {
    if (expected?.digest !== undefined && (await this.headBlob(expected.digest)) !== undefined) {
      return { digest: expected.digest, size: expected.size ?? -1 };
    }
    const started = this.location(await this.startUpload(), "starting a blob upload");
    let location = started;
    try {
      let written: WrittenBlob;
      if (expected?.digest !== undefined && expected.size !== undefined && expected.size <= MONOLITHIC_MAX) {
        const bytes = await collect(stream);
        written = { digest: `sha256:${sha256Hex(bytes)}`, size: bytes.byteLength };
        checkExpected(this.client.where, written, expected);
        await this.finishUpload(location, written.digest, bytes);
      } else {
        const hasher = new Bun.CryptoHasher("sha256");
        let size = 0;
        const hashed = (async function* () {
          for await (const chunk of stream) {
            hasher.update(chunk);
            size += chunk.byteLength;
            yield chunk;
          }
        })();
        const patched = await this.client.request("PATCH", location, { what: "uploading a blob", scopes: this.pushScopes, accept: [202], headers: { "content-type": "application/octet-stream" }, body: hashed });
        await patched.body?.cancel();
        location = patched.headers.get("location") ?? location;
        written = { digest: `sha256:${hasher.digest("hex")}`, size };
        checkExpected(this.client.where, written, expected);
        await this.finishUpload(location, written.digest);
      }
      this.hints?.rememberBlobLocation(written.digest, this.client.registry, this.client.repository);
      return written;
    } catch (error) {
      await this.cancelUpload(location);
      throw error;
    }
  }

  private async finishUpload(location: string, digest: string, body?: Uint8Array): Promise<void> {
    const url = new URL(location, "http://placeholder/");
    url.searchParams.set("digest", digest);
    const target = /^https?:\/\//.test(location) ? url.href : `${url.pathname}${url.search}`;
    const response = await this.client.request("PUT", target, {
      what: `finishing the upload of blob ${digest}`,
      scopes: this.pushScopes,
      accept: [201, 204],
      headers: { "content-type": "application/octet-stream" },
      body: body ?? new Uint8Array(),
    });
    await response.body?.cancel();
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
