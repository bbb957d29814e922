/**
 * The oci: and oci-archive: transports: an OCI image layout (image-spec image-layout.md) in a
 * directory, or the same layout as an uncompressed tar. An image is picked from index.json by
 * its org.opencontainers.image.ref.name annotation, or is the only entry when no ref is given.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CorruptError, InvalidArgumentError, NotFoundError, PreconditionError } from "../errors.ts";
import { directoryFiles, tarFiles, type LayoutFiles, requireSourcePath } from "./files.ts";
import { ImageFormatError, MEDIA, digestHex, parseDescriptor, parseJsonObject, parseManifest, sha256Hex } from "./manifest.ts";
import { LayoutWriter, checkBlobsPresent, removeEmptyDirectories, underDirectoryLock, writeDirectoryTar } from "./layout-writer.ts";
import { formatReference, type OciReference } from "./reference.ts";
import { BlobMissingError, type Descriptor, type DestinationOptions, type ImageDestination, type ImageSource, type RawManifest } from "./types.ts";

const REF_NAME = "org.opencontainers.image.ref.name";
/** The annotation docker's and buildkit's OCI exports put the full image name in. */
const CONTAINERD_IMAGE_NAME = "io.containerd.image.name";

/** The path of a blob inside a layout. */
export function blobPath(digest: string): string {
  return `blobs/${digest.slice(0, digest.indexOf(":"))}/${digestHex(digest)}`;
}

/** index.json's entries, checked. */
async function readIndex(files: LayoutFiles, where: string): Promise<Descriptor[]> {
  const bytes = await files.read("index.json");
  if (!bytes) throw new CorruptError(`${where}: not an OCI image layout (no index.json)`);
  const json = parseJsonObject(bytes, `${where}: index.json`);
  if (!Array.isArray(json.manifests)) throw new ImageFormatError(`${where}: index.json: manifests: missing`);
  return json.manifests.map((entry: unknown, i: number) => parseDescriptor(entry, `${where}: index.json: manifests[${i}]`));
}

class OciSource implements ImageSource {
  private entry: Descriptor | undefined;

  constructor(
    readonly description: string,
    private readonly reference: OciReference,
    private readonly files: LayoutFiles,
  ) {}

  async manifest(digest?: string): Promise<RawManifest> {
    const descriptor = digest === undefined ? await this.topEntry() : { digest, mediaType: "", size: -1 };
    const bytes = await this.files.read(blobPath(descriptor.digest));
    if (!bytes) throw new BlobMissingError(this.description, descriptor.digest);
    const actual = `sha256:${sha256Hex(bytes)}`;
    if (actual !== descriptor.digest) throw new ImageFormatError(`${this.description}: manifest ${descriptor.digest}: digest mismatch (the blob's is ${actual})`);
    if (descriptor.size >= 0 && descriptor.size !== bytes.byteLength) throw new ImageFormatError(`${this.description}: manifest ${descriptor.digest}: size mismatch (read ${bytes.byteLength} bytes, index.json says ${descriptor.size})`);
    return { bytes, mediaType: descriptor.mediaType, digest: actual };
  }

  private async topEntry(): Promise<Descriptor> {
    if (this.entry) return this.entry;
    const entries = await readIndex(this.files, this.description);
    const ref = this.reference.ref;
    if (ref === undefined) {
      if (entries.length !== 1) throw new InvalidArgumentError(`${this.description}: the layout holds ${entries.length} images; name one as ${this.reference.transport}:PATH:REF`);
      return (this.entry = entries[0]!);
    }
    const found = entries.find((entry) => entry.annotations?.[REF_NAME] === ref);
    if (!found) throw new NotFoundError(`${this.description}: no image with ref name "${ref}" in index.json`);
    return (this.entry = found);
  }

  async blob(descriptor: Descriptor) {
    const reader = this.files.open(blobPath(descriptor.digest));
    if (!reader) throw new BlobMissingError(this.description, descriptor.digest);
    return reader;
  }

  /**
   * As podman names what it pulls: from oci:, the REF given; from oci-archive:, the chosen
   * index.json entry's annotations (containerd's image name, else its ref name), so an archive
   * pulled without REF is still named.
   */
  imageNames(): string[] {
    const name = this.reference.transport === "oci" ? this.reference.ref : this.entry?.annotations?.[CONTAINERD_IMAGE_NAME] || this.entry?.annotations?.[REF_NAME];
    return name ? [name] : [];
  }

  async close(): Promise<void> {}
}

/** Opens an oci: directory or oci-archive: file to read. */
export async function openOciSource(reference: OciReference): Promise<ImageSource> {
  const description = formatReference(reference);
  requireSourcePath(reference.path, description);
  const files = reference.transport === "oci" ? directoryFiles(reference.path) : tarFiles(reference.path);
  return new OciSource(description, reference, files);
}

async function* bytesOnce(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** The blobs (paths in the layout) that index.json reaches: manifests, nested indexes, configs and layers. */
async function blobsInUse(dir: string): Promise<Set<string>> {
  const files = directoryFiles(dir);
  const used = new Set<string>();
  const pending: unknown[] = existsSync(join(dir, "index.json")) ? await readIndex(files, dir) : [];
  while (pending.length > 0) {
    const digest = (pending.pop() as { digest?: unknown } | null)?.digest;
    if (typeof digest !== "string" || !digest.includes(":") || used.has(blobPath(digest))) continue;
    used.add(blobPath(digest));
    const bytes = await files.read(blobPath(digest));
    if (!bytes || bytes.byteLength > 4 << 20) continue;
    try {
      const json = parseJsonObject(bytes, digest);
      for (const field of [json.manifests, json.layers, [json.config]]) if (Array.isArray(field)) pending.push(...field);
    } catch {
      // A layer or config blob, not JSON of a manifest: nothing more reached from it.
    }
  }
  return used;
}

class OciDestination implements ImageDestination {
  /** As in containers/image: an OCI layout holds OCI manifests only. */
  readonly manifestTypes = [MEDIA.ociManifest];
  private manifestEntry: Descriptor | undefined;
  /** The blobs (paths in the layout) the manifest needs: itself, its config and its layers. */
  private imageBlobs: string[] = [];
  private committed = false;

  constructor(
    readonly description: string,
    private readonly reference: OciReference,
    private readonly layout: LayoutWriter,
    /** For oci-archive: the directory the layout is built in, tarred to the file at commit. */
    private readonly staging?: string,
    /** For oci: whether this push made the layout's directory (then a push that fails removes it, if nothing else is in it). */
    private readonly madeDirectory = false,
  ) {}

  hasBlob(digest: string) {
    return Promise.resolve(this.layout.has(blobPath(digest)));
  }

  putBlob(stream: AsyncIterable<Uint8Array>, expected?: { digest?: string; size?: number }) {
    return this.layout.putBlob(stream, expected);
  }

  async putManifest(manifest: RawManifest): Promise<void> {
    await this.layout.putBlob(bytesOnce(manifest.bytes), { digest: manifest.digest });
    this.manifestEntry = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.bytes.byteLength };
    const parsed = parseManifest(manifest);
    this.imageBlobs = [manifest.digest, ...(parsed.kind === "image" ? [parsed.config, ...parsed.layers].map((blob) => blob.digest) : [])].map(blobPath);
    if (this.reference.ref) this.manifestEntry.annotations = { [REF_NAME]: this.reference.ref };
  }

  async commit(): Promise<void> {
    if (!this.manifestEntry) throw new PreconditionError(`${this.description}: no manifest was written`);
    if (this.staging) {
      await this.writeIndex();
      await writeDirectoryTar(this.staging, this.reference.path);
    } else {
      await underDirectoryLock(this.layout.root, () => {
        checkBlobsPresent(this.layout.root, this.imageBlobs, this.description);
        return this.writeIndex();
      });
    }
    this.committed = true;
  }

  /**
   * index.json with this image's entry, as containers/image adds one: the REF moves to it from
   * an entry that had it (which stays, without a name); an entry of the same manifest without
   * a name is replaced; otherwise the entry is appended. One image can so have several REFs.
   */
  private async writeIndex(): Promise<void> {
    const dir = this.layout.root;
    const entry = this.manifestEntry!;
    const manifests = existsSync(join(dir, "index.json")) ? await readIndex(directoryFiles(dir), this.description) : [];
    const ref = this.reference.ref;
    const named = ref === undefined ? undefined : manifests.find((m) => m.annotations?.[REF_NAME] === ref);
    if (named) {
      const { [REF_NAME]: _moved, ...others } = named.annotations!;
      named.annotations = Object.keys(others).length > 0 ? others : undefined;
    }
    const unnamedSame = manifests.findIndex((m) => m.digest === entry.digest && !m.annotations?.[REF_NAME]);
    if (unnamedSame >= 0) manifests[unnamedSame] = entry;
    else manifests.push(entry);
    const index = { schemaVersion: 2, manifests };
    writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    writeFileSync(join(dir, "index.json.tmp"), JSON.stringify(index));
    renameSync(join(dir, "index.json.tmp"), join(dir, "index.json"));
  }

  /**
   * Without a commit, takes back the blobs this push wrote, but those an image in index.json
   * uses (another push into the layout may have found them there meanwhile), and the
   * directories it made if nothing else is in them.
   */
  async close(): Promise<void> {
    if (this.staging) rmSync(this.staging, { recursive: true, force: true });
    if (this.staging || this.committed) return;
    const dir = this.reference.path;
    await underDirectoryLock(dir, async () => {
      const inUse = await blobsInUse(dir);
      this.layout.removeWritten((path) => inUse.has(path));
      if (this.madeDirectory) removeEmptyDirectories([join(dir, "blobs", "sha256"), join(dir, "blobs"), dir]);
    });
  }
}

/** Opens an oci: directory (made if missing, merged into if present) or oci-archive: file to write. */
export async function openOciDestination(reference: OciReference, _options: DestinationOptions): Promise<ImageDestination> {
  const description = formatReference(reference);
  if (reference.transport === "oci") {
    const made = !existsSync(reference.path);
    mkdirSync(reference.path, { recursive: true });
    return new OciDestination(description, reference, new LayoutWriter(reference.path), undefined, made);
  }
  const staging = LayoutWriter.stagingDirFor(reference.path);
  return new OciDestination(description, reference, new LayoutWriter(staging), staging);
}
