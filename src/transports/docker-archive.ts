/**
 * The docker-archive: transport: the tarball `docker save` writes and `docker load` reads
 * (manifest.json listing each image's config file, RepoTags and uncompressed layer tars).
 * Reading serves a Docker schema 2 manifest built from manifest.json as containers/image builds
 * it (layer digests = the config's diffIDs), so a pull stores the same IDs and data items.
 * Writing stages the files beside the archive and tars them at commit; layers are uncompressed.
 */
import { existsSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AlreadyExistsError, CorruptError, InvalidArgumentError, NotFoundError, PreconditionError } from "../errors.ts";
import { tarFiles, type LayoutFiles, requireSourcePath } from "./files.ts";
import { LayoutWriter, writeDirectoryTar } from "./layout-writer.ts";
import { ImageFormatError, MEDIA, digestHex, parseConfig, parseManifest, sha256Hex, type LayerCompression } from "./manifest.ts";
import { formatImageName, normalizeDockerName } from "./names.ts";
import { formatReference, type DockerArchiveReference } from "./reference.ts";
import { BlobMissingError, type Descriptor, type DestinationOptions, type ImageDestination, type ImageSource, type RawManifest } from "./types.ts";

interface ArchiveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** manifest.json's entries, checked. */
async function readArchiveManifest(files: LayoutFiles, where: string): Promise<ArchiveEntry[]> {
  const bytes = await files.read("manifest.json");
  if (!bytes) throw new CorruptError(`${where}: not a docker-archive (no manifest.json)`);
  let entries: unknown;
  try {
    entries = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ImageFormatError(`${where}: manifest.json does not parse as JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(entries)) throw new ImageFormatError(`${where}: manifest.json is not a list`);
  entries.forEach((entry: any, i) => {
    if (typeof entry?.Config !== "string") throw new ImageFormatError(`${where}: manifest.json[${i}].Config: missing`);
    if (!Array.isArray(entry.Layers) || entry.Layers.some((l: unknown) => typeof l !== "string")) throw new ImageFormatError(`${where}: manifest.json[${i}].Layers: missing`);
  });
  return entries as ArchiveEntry[];
}

/** A RepoTags entry completed as docker completes it. */
function completeTag(tag: string): string {
  return formatImageName(normalizeDockerName(tag));
}

class DockerArchiveSource implements ImageSource {
  private entry?: ArchiveEntry;
  /** Layer file paths by the digest the built manifest gives them. */
  private readonly layerFiles = new Map<string, string>();
  private configDigest = "";

  constructor(
    readonly description: string,
    private readonly reference: DockerArchiveReference,
    private readonly files: LayoutFiles,
  ) {}

  private async chosenEntry(): Promise<ArchiveEntry> {
    if (this.entry) return this.entry;
    const entries = await readArchiveManifest(this.files, this.description);
    const { name, index } = this.reference;
    let found: ArchiveEntry | undefined;
    if (index !== undefined) {
      found = entries[index];
      if (!found) throw new NotFoundError(`${this.description}: the archive holds ${entries.length} images, there is no @${index}`);
    } else if (name !== undefined) {
      const wanted = formatImageName(name);
      found = entries.find((entry) => (entry.RepoTags ?? []).some((tag) => completeTag(tag) === wanted));
      if (!found) throw new NotFoundError(`${this.description}: no image tagged ${wanted} in the archive`);
    } else {
      if (entries.length !== 1) throw new InvalidArgumentError(`${this.description}: the archive holds ${entries.length} images; name one as docker-archive:FILE:NAME:TAG or :@INDEX`);
      found = entries[0]!;
    }
    return (this.entry = found);
  }

  async manifest(digest?: string): Promise<RawManifest> {
    const entry = await this.chosenEntry();
    const config = await this.files.read(entry.Config);
    if (!config) throw new BlobMissingError(this.description, entry.Config);
    const { diffIds } = parseConfig(config, `${this.description}: ${entry.Config}`);
    if (diffIds.length !== entry.Layers.length) throw new ImageFormatError(`${this.description}: ${entry.Config}: rootfs.diff_ids has ${diffIds.length} entries for ${entry.Layers.length} layers`);
    this.configDigest = `sha256:${sha256Hex(config)}`;
    const layers = entry.Layers.map((path, i) => {
      const file = this.files.open(path);
      if (!file) throw new BlobMissingError(this.description, path);
      this.layerFiles.set(diffIds[i]!, path);
      return { mediaType: MEDIA.dockerLayerGzip, size: file.size, digest: diffIds[i]! };
    });
    // Field order as containers/image marshals its Schema2 manifest.
    const bytes = new TextEncoder().encode(
      JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.dockerManifest, config: { mediaType: MEDIA.dockerConfig, size: config.byteLength, digest: this.configDigest }, layers }),
    );
    const raw = { bytes, mediaType: MEDIA.dockerManifest, digest: `sha256:${sha256Hex(bytes)}` };
    if (digest !== undefined && digest !== raw.digest) throw new BlobMissingError(this.description, digest);
    return raw;
  }

  async blob(descriptor: Descriptor) {
    const entry = await this.chosenEntry();
    const path = descriptor.digest === this.configDigest ? entry.Config : this.layerFiles.get(descriptor.digest);
    const reader = path === undefined ? undefined : this.files.open(path);
    if (!reader) throw new BlobMissingError(this.description, descriptor.digest);
    return reader;
  }

  /** As podman names what it pulls: the NAME:TAG asked for, else every RepoTags entry of the image. */
  imageNames(): string[] {
    if (this.reference.name) return [formatImageName(this.reference.name)];
    return (this.entry?.RepoTags ?? []).map(completeTag);
  }

  async close(): Promise<void> {}
}

/** Opens a docker-archive: file to read. */
export async function openDockerArchiveSource(reference: DockerArchiveReference): Promise<ImageSource> {
  const description = formatReference(reference);
  requireSourcePath(reference.path, description);
  return new DockerArchiveSource(description, reference, tarFiles(reference.path));
}

class DockerArchiveDestination implements ImageDestination {
  readonly manifestTypes = [MEDIA.dockerManifest];
  readonly layerCompression: LayerCompression = "none";
  private readonly layout: LayoutWriter;
  private readonly order: string[] = [];

  constructor(
    readonly description: string,
    private readonly reference: DockerArchiveReference,
    private readonly staging: string,
  ) {
    this.layout = new LayoutWriter(staging, "");
  }

  async hasBlob(): Promise<boolean> {
    return false;
  }

  putBlob(stream: AsyncIterable<Uint8Array>, expected?: { digest?: string; size?: number }) {
    return this.layout.putBlob(stream, expected);
  }

  async putManifest(manifest: RawManifest): Promise<void> {
    const parsed = parseManifest(manifest);
    if (parsed.kind !== "image") throw new ImageFormatError(`${this.description}: cannot store an index`);
    const configFile = `${digestHex(parsed.config.digest)}.json`;
    renameSync(join(this.staging, digestHex(parsed.config.digest)), join(this.staging, configFile));
    const layers = parsed.layers.map((layer) => {
      const file = `${digestHex(layer.digest)}.tar`;
      if (!existsSync(join(this.staging, file))) renameSync(join(this.staging, digestHex(layer.digest)), join(this.staging, file));
      return file;
    });
    const repoTags = this.reference.name ? [formatImageName(this.reference.name)] : [];
    writeFileSync(join(this.staging, "manifest.json"), JSON.stringify([{ Config: configFile, RepoTags: repoTags, Layers: layers }]));
    this.order.push(...new Set(layers), configFile, "manifest.json");
  }

  async commit(): Promise<void> {
    if (this.order.length === 0) throw new PreconditionError(`${this.description}: no manifest was written`);
    await writeDirectoryTar(this.staging, this.reference.path, this.order);
  }

  async close(): Promise<void> {
    rmSync(this.staging, { recursive: true, force: true });
  }
}

/**
 * Opens a docker-archive: file to write at commit: a new or empty file, or a pipe or device.
 * As in containers/image, an existing archive is not added to or replaced.
 */
export async function openDockerArchiveDestination(reference: DockerArchiveReference, _options: DestinationOptions): Promise<ImageDestination> {
  if (reference.index !== undefined) throw new InvalidArgumentError(`${formatReference(reference)}: @INDEX cannot name an image to write`);
  const existing = statSync(reference.path, { throwIfNoEntry: false });
  if (existing?.isFile() && existing.size > 0) throw new AlreadyExistsError(`${formatReference(reference)}: ${reference.path} exists and is not empty: a docker-archive is not modified (remove it or write another file)`);
  return new DockerArchiveDestination(formatReference(reference), reference, LayoutWriter.stagingDirFor(reference.path));
}
