/**
 * The dir: transport of containers/image (`skopeo copy … dir:PATH`): a directory holding the
 * manifest as manifest.json, every blob as a file named by its digest's hex, and a `version`
 * file. An index copied with `skopeo copy --all` keeps each image's manifest as
 * `<hex>.manifest.json` beside it. Images read from dir: get no name (as podman names them).
 */
import { type Stats, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AlreadyExistsError, CorruptError, PreconditionError } from "../errors.ts";
import { directoryFiles, type LayoutFiles, requireSourcePath } from "./files.ts";
import { LayoutWriter, lockDirectory, removeEmptyDirectories } from "./layout-writer.ts";
import { type ImageManifest, type ManifestIndex, ImageFormatError, MEDIA, digestHex, manifestMediaType, parseJsonObject, parseManifest, sha256Hex } from "./manifest.ts";
import { type DirReference, formatReference } from "./reference.ts";
import { BlobMissingError, type Descriptor, type ImageDestination, type ImageSource, type RawManifest } from "./types.ts";

const MANIFEST_FILE = "manifest.json";
const VERSION_FILE = "version";
const VERSION_TEXT = "Directory Transport Version: 1.1\n";

class DirSource implements ImageSource {
  constructor(
    readonly description: string,
    private readonly files: LayoutFiles,
  ) {}

  /** manifest.json, or an index entry's `<hex>.manifest.json`, checked against its digest. */
  async manifest(digest?: string): Promise<RawManifest> {
    const bytes = await this.files.read(digest === undefined ? MANIFEST_FILE : `${digestHex(digest)}.manifest.json`);
    if (!bytes) {
      if (digest !== undefined) throw new BlobMissingError(this.description, digest);
      throw new CorruptError(`${this.description}: not a dir: image (no ${MANIFEST_FILE})`);
    }
    const actual = `sha256:${sha256Hex(bytes)}`;
    if (digest !== undefined && actual !== digest) throw new ImageFormatError(`${this.description}: manifest ${digest}: digest mismatch (the file's is ${actual})`);
    return { bytes, mediaType: manifestMediaType(parseJsonObject(bytes, `${this.description}: manifest ${actual}`)), digest: actual };
  }

  async blob(descriptor: Descriptor) {
    const reader = this.files.open(digestHex(descriptor.digest));
    if (!reader) throw new BlobMissingError(this.description, descriptor.digest);
    return reader;
  }

  imageNames(): string[] {
    return [];
  }

  async close(): Promise<void> {}
}

/** Opens a dir: directory to read. */
export async function openDirSource(reference: DirReference): Promise<ImageSource> {
  const description = formatReference(reference);
  requireSourcePath(reference.path, description);
  return new DirSource(description, directoryFiles(reference.path));
}

/** The files of an image's blobs in a dir: directory. */
function blobFiles(manifest: ImageManifest): string[] {
  return [manifest.config, ...manifest.layers].map((blob) => digestHex(blob.digest));
}

/** The parsed manifest in a file of the directory, or undefined (none, or not a manifest). */
async function manifestIn(dir: string, file: string): Promise<ImageManifest | ManifestIndex | undefined> {
  try {
    const bytes = await directoryFiles(dir).read(file);
    return bytes && parseManifest({ bytes, mediaType: "", digest: `sha256:${sha256Hex(bytes)}` });
  } catch {
    return undefined;
  }
}

/**
 * The files of the dir: image in the directory now, which a new image replaces: its blobs, an
 * index's image manifests (`<hex>.manifest.json`) and their blobs, and signatures.
 */
async function replacedFiles(dir: string): Promise<string[]> {
  const files = readdirSync(dir).filter((name) => /^([0-9a-f]{64}\.)?signature-\d+$/.test(name));
  const top = await manifestIn(dir, MANIFEST_FILE);
  const images = top?.kind === "image" ? [top] : [];
  for (const entry of top?.kind === "index" ? top.manifests : []) {
    files.push(`${digestHex(entry.digest)}.manifest.json`);
    const image = await manifestIn(dir, `${digestHex(entry.digest)}.manifest.json`);
    if (image?.kind === "image") images.push(image);
  }
  return [...files, ...images.flatMap(blobFiles)];
}

/**
 * Writes an image into a dir: directory: blobs under their hex names, then at commit the
 * `version` file and manifest.json (renamed into place), and only then the files of the image
 * it replaces are removed. An unfinished push removes what it added and leaves the old image.
 * Pushes into one directory run one after another (its lock is held from open to close).
 */
class DirDestination implements ImageDestination {
  readonly manifestTypes = [MEDIA.ociManifest, MEDIA.dockerManifest];
  private readonly layout: LayoutWriter;
  private manifest: RawManifest | undefined;
  private committed = false;

  constructor(
    readonly description: string,
    private readonly dir: string,
    /** Whether this push made the directory (then a push that fails removes it, if nothing else is in it). */
    private readonly madeDirectory: boolean,
    /** The directory's lock, held from open to close: pushes into one dir: run one after another. */
    private readonly lock: { release(): void },
  ) {
    this.layout = new LayoutWriter(dir, "");
  }

  async hasBlob(digest: string): Promise<boolean> {
    return this.layout.has(digestHex(digest));
  }

  putBlob(stream: AsyncIterable<Uint8Array>, expected?: { digest?: string; size?: number }) {
    return this.layout.putBlob(stream, expected);
  }

  async putManifest(manifest: RawManifest): Promise<void> {
    this.manifest = manifest;
  }

  async commit(): Promise<void> {
    if (!this.manifest) throw new PreconditionError(`${this.description}: no manifest was written`);
    const parsed = parseManifest(this.manifest);
    if (parsed.kind !== "image") throw new ImageFormatError(`${this.description}: cannot store an index`);
    await this.replaceImage(this.manifest, parsed);
  }

  /** Puts the manifest in place, then removes the files of the image it replaces that this one does not use. */
  private async replaceImage(manifest: RawManifest, parsed: ImageManifest): Promise<void> {
    const ours = blobFiles(parsed);
    const replaced = await replacedFiles(this.dir);
    writeFileSync(join(this.dir, VERSION_FILE), VERSION_TEXT);
    const temporary = join(this.dir, `.partial-manifest-${process.pid}`);
    await Bun.write(temporary, manifest.bytes);
    renameSync(temporary, join(this.dir, MANIFEST_FILE));
    this.committed = true;
    for (const name of replaced) if (!ours.includes(name)) rmSync(join(this.dir, name), { force: true });
  }

  /** Without a commit, takes back the blobs this push wrote and a directory it made; then lets the next push in. */
  async close(): Promise<void> {
    try {
      if (this.committed) return;
      this.layout.removeWritten();
      if (this.madeDirectory) removeEmptyDirectories([this.dir]);
    } finally {
      this.lock.release();
    }
  }
}

/**
 * Opens a dir: directory to write, holding its lock until the push ends: made when missing; an
 * existing one must be empty or hold a dir: image (its `version` file), which the new image
 * replaces. As in containers/image, any other directory is refused rather than overwritten.
 */
export async function openDirDestination(reference: DirReference): Promise<ImageDestination> {
  const description = formatReference(reference);
  let stat: Stats | undefined;
  let lock: { release(): void };
  // A push that made the directory and failed removes it: whoever waited for its lock starts again.
  for (;;) {
    stat = statSync(reference.path, { throwIfNoEntry: false });
    if (stat === undefined) mkdirSync(reference.path, { recursive: true });
    else if (!stat.isDirectory()) throw new AlreadyExistsError(`${description}: ${reference.path} exists and is not a directory`);
    lock = await lockDirectory(reference.path);
    if (existsSync(reference.path)) break;
    lock.release();
  }
  if (readdirSync(reference.path).length > 0 && !existsSync(join(reference.path, VERSION_FILE))) {
    lock.release();
    throw new AlreadyExistsError(`${description}: ${reference.path} is not empty and holds no dir: image; not overwriting it`);
  }
  return new DirDestination(description, reference.path, stat === undefined, lock);
}
