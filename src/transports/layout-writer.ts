/**
 * Writing a layout's files: blobs by digest (written to a temporary name, checked, renamed),
 * and turning a staged layout directory into an uncompressed tar (for oci-archive: and
 * docker-archive:, whose blob sizes are only known once compressed).
 */
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative } from "node:path";
import { fileSink } from "../archive/compression.ts";
import { TarWriter } from "../archive/tar-writer.ts";
import type { TarEntry } from "../archive/types.ts";
import { CorruptError, PreconditionError } from "../errors.ts";
import { lockFile } from "../sys/libc.ts";
import { digestHex } from "./manifest.ts";
import type { WrittenBlob } from "./types.ts";

/** Blobs into a layout directory; remembers what it added so an unfinished push can take it back. */
export class LayoutWriter {
  private readonly written: string[] = [];

  constructor(
    readonly root: string,
    /** Where blobs go inside root, named by their digest's hex: blobs/sha256 in an OCI layout, root itself in dir: and a docker-archive. */
    private readonly blobDir = join("blobs", "sha256"),
  ) {}

  /**
   * A new empty directory for staging an archive: beside `file`, or in the temporary directory
   * when `file` is written to directly (its directory, e.g. /dev, is no place for layers).
   */
  static stagingDirFor(file: string): string {
    return mkdtempSync(join(writtenInPlace(file) ? tmpdir() : dirname(file), `.${basename(file)}.staging-`));
  }

  has(path: string): boolean {
    return existsSync(join(this.root, path));
  }

  /** Writes a blob into the blob directory, hashing as it writes; a mismatch with `expected` keeps nothing. */
  async putBlob(stream: AsyncIterable<Uint8Array>, expected?: { digest?: string; size?: number }): Promise<WrittenBlob> {
    const dir = join(this.root, this.blobDir);
    mkdirSync(dir, { recursive: true });
    const temporary = join(dir, `.partial-${process.pid}-${this.written.length}-${Math.random().toString(36).slice(2)}`);
    const sink = fileSink(temporary);
    const hasher = new Bun.CryptoHasher("sha256");
    let size = 0;
    try {
      for await (const chunk of stream) {
        hasher.update(chunk);
        size += chunk.length;
        await sink.write(chunk);
      }
      await sink.close();
      const digest = `sha256:${hasher.digest("hex")}`;
      if (expected?.digest !== undefined && expected.digest !== digest) throw new CorruptError(`blob ${expected.digest}: digest mismatch: wrote ${digest}`);
      if (expected?.size !== undefined && expected.size !== size) throw new CorruptError(`blob ${digest}: size mismatch: wrote ${size} bytes, expected ${expected.size}`);
      const final = join(dir, digestHex(digest));
      if (!existsSync(final)) {
        renameSync(temporary, final);
        this.written.push(final);
      }
      return { digest, size };
    } finally {
      rmSync(temporary, { force: true });
    }
  }

  /** Removes the blobs this writer added, but those `keep` (given a path relative to root) says to keep. */
  removeWritten(keep: (path: string) => boolean = () => false): void {
    for (const path of this.written) if (!keep(relative(this.root, path))) rmSync(path, { force: true });
  }
}

/**
 * Takes an exclusive flock on a destination directory, waiting for other pushes into it;
 * `release` gives it back. The lock goes with the descriptor, also when the process dies.
 */
export async function lockDirectory(dir: string): Promise<{ release(): void }> {
  const fd = openSync(dir, "r");
  try {
    while (!lockFile(fd, true, false)) await Bun.sleep(5);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return { release: () => closeSync(fd) };
}

/**
 * Runs `update` holding the directory's lock, so that pushes into one layout change its
 * index (and take back their blobs) one at a time: none loses another's entry or blobs.
 */
export async function underDirectoryLock<T>(dir: string, update: () => Promise<T>): Promise<T> {
  const lock = await lockDirectory(dir);
  try {
    return await update();
  } finally {
    lock.release();
  }
}

/**
 * Checks, at commit, that the blobs an image needs (paths inside root) are all there: a push
 * into the same layout that failed may have taken back one this push found there and did not
 * write again. Such a push fails rather than commit an entry without it.
 */
export function checkBlobsPresent(root: string, paths: string[], where: string): void {
  const missing = paths.find((path) => !existsSync(join(root, path)));
  if (missing !== undefined) throw new PreconditionError(`${where}: ${missing} was removed by another push into the same place meanwhile; push again`);
}

/**
 * Removes each directory in turn if it is empty (what an unfinished push made and left
 * empty); one that holds anything, such as what another push wrote meanwhile, stays.
 */
export function removeEmptyDirectories(dirs: string[]): void {
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      return;
    }
  }
}

/** The entry of a staged file, directory or symlink, with fixed owner and time (reproducible archives). */
function entryOf(path: string, full: string): TarEntry {
  const stat = lstatSync(full);
  const type = stat.isDirectory() ? "dir" : stat.isSymbolicLink() ? "symlink" : "file";
  return {
    path: type === "dir" ? `${path}/` : path,
    type,
    mode: type === "dir" ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    uname: "",
    gname: "",
    size: type === "file" ? stat.size : 0,
    mtimeNs: 0n,
    linkTarget: type === "symlink" ? readlinkSync(full) : "",
    devMajor: 0,
    devMinor: 0,
    xattrs: new Map(),
  };
}

/**
 * Whether an archive at `path` is written through the path itself rather than made beside it
 * and renamed over it: when the path is a symlink (`/dev/stdout`), a FIFO or a device, which a
 * rename would replace instead of writing to.
 */
function writtenInPlace(path: string): boolean {
  const stat = lstatSync(path, { throwIfNoEntry: false });
  return stat !== undefined && !stat.isFile();
}

/**
 * Writes a directory's tree as an uncompressed tar to `file`: via a temporary name, then
 * renamed over it; a symlink, pipe or device (`docker-archive:/dev/stdout`) is written through.
 */
export async function writeDirectoryTar(dir: string, file: string, order?: string[]): Promise<void> {
  const direct = writtenInPlace(file);
  const temporary = direct ? file : `${file}.partial-${process.pid}`;
  const sink = fileSink(temporary);
  const writer = new TarWriter(sink);
  try {
    const paths = order ?? (readdirSync(dir, { recursive: true }) as string[]).sort();
    for (const path of paths) {
      const full = join(dir, path);
      const entry = entryOf(path, full);
      await writer.add(entry, entry.type === "file" ? (Bun.file(full).stream() as unknown as AsyncIterable<Uint8Array>) : undefined);
    }
    await writer.finish();
    await sink.close();
    if (!direct) renameSync(temporary, file);
  } finally {
    if (!direct) rmSync(temporary, { force: true });
  }
}
