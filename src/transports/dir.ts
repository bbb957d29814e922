/**
 * The dir: transport of containers/image (`skopeo copy … dir:PATH`): a directory holding the
 * manifest as manifest.json, every blob as a file named by its digest's hex, and a `version`
 * file. An index copied with `skopeo copy --all` keeps each image's manifest as
 * `<hex>.manifest.json` beside it. Images read from dir: get no name (as podman names them).
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AlreadyExistsError, CorruptError, PreconditionError, SystemError } from "../errors.ts";
import { directoryFiles, type LayoutFiles } from "./files.ts";
import { LayoutWriter, removeEmptyDirectories } from "./layout-writer.ts";
import { ImageFormatError, MEDIA, digestHex, manifestMediaType, parseJsonObject, parseManifest, sha256Hex } from "./manifest.ts";
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
  if (!existsSync(reference.path)) throw new SystemError(`${description}: ${reference.path}: no such file or directory`, "ENOENT");
  return new DirSource(description, directoryFiles(reference.path));
}

/**
 * Writes an image into a dir: directory: blobs under their hex names, then at commit the
 * `version` file and manifest.json (renamed into place), and only then the files of the image
 * it replaces are removed. An unfinished push removes what it added and leaves the old image.
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
    writeFileSync(join(this.dir, VERSION_FILE), VERSION_TEXT);
    const temporary = join(this.dir, `.${MANIFEST_FILE}.partial-${process.pid}`);
    await Bun.write(temporary, this.manifest.bytes);
    renameSync(temporary, join(this.dir, MANIFEST_FILE));
    this.committed = true;
    const kept = new Set([VERSION_FILE, MANIFEST_FILE, ...[parsed.config, ...parsed.layers].map((blob) => digestHex(blob.digest))]);
    for (const name of readdirSync(this.dir)) if (!kept.has(name)) rmSync(join(this.dir, name), { force: true });
  }

  async close(): Promise<void> {
    if (this.committed) return;
    this.layout.removeWritten();
    if (this.madeDirectory) removeEmptyDirectories([this.dir]);
  }
}

/**
 * Opens a dir: directory to write: made when missing; an existing one must be empty or hold a
 * dir: image (its `version` file), which the new image replaces. As in containers/image, any
 * other directory is refused rather than overwritten.
 */
export async function openDirDestination(reference: DirReference): Promise<ImageDestination> {
  const description = formatReference(reference);
  const stat = statSync(reference.path, { throwIfNoEntry: false });
  if (stat === undefined) mkdirSync(reference.path, { recursive: true });
  else if (!stat.isDirectory()) throw new AlreadyExistsError(`${description}: ${reference.path} exists and is not a directory`);
  else if (readdirSync(reference.path).length > 0 && !existsSync(join(reference.path, VERSION_FILE))) {
    throw new AlreadyExistsError(`${description}: ${reference.path} is not empty and holds no dir: image; not overwriting it`);
  }
  return new DirDestination(description, reference.path, stat === undefined);
}
