/**
 * The shared vocabulary of the archive package: tar entries, byte sources and sinks, layer
 * changes and the values recorded when a layer tar is applied. Kept apart from the code so
 * that the tar codec, apply, changes and export modules (and the drivers) agree on one shape.
 */
import type { IdMaps } from "../idmap.ts";

/** A stream of bytes, e.g. Bun.stdin.stream(), Bun.file(p).stream() or an async generator. */
export type ByteSource = AsyncIterable<Uint8Array>;

/** Counts the bytes of a layer tar as they are written, told first how many to expect (when that is known). */
export interface TarMeter {
  expect(total: number | undefined): void;
  add(bytes: number): void;
}

/** Where bytes go (stdout, a file, a compressor). write may apply back-pressure by returning a promise. */
export interface ByteSink {
  write(chunk: Uint8Array): void | Promise<void>;
  /** True when write() is done with the chunk once it returns (or its promise resolves), so the writer may reuse it. */
  readonly consumesChunks?: boolean;
  /** Flushes and finishes the output. */
  close(): Promise<void>;
}

export type EntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

/** One tar entry, after PAX and GNU extensions are folded in. */
export interface TarEntry {
  /** The name as the archive gives it (not cleaned; may start with "./" or "/"). */
  path: string;
  type: EntryType;
  /** Permission bits including setuid, setgid and sticky (mask 0o7777); entries written from the file system also carry the file type bits (S_IFDIR…), as Go's do. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Size of the entry's content (0 for all but regular files). */
  size: number;
  /** Modification time in nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** Link target for symlinks and hard links. */
  linkTarget: string;
  devMajor: number;
  devMinor: number;
  /** Extended attributes from PAX SCHILY.xattr.* records, in archive order. */
  xattrs: Map<string, Uint8Array>;
}

/** Input compression, numbered as containers-storage records it (docs/cli-contract.md §4.1). */
export enum Compression {
  None = 0,
  Bzip2 = 1,
  Gzip = 2,
  Xz = 3,
  Zstd = 4,
}

/** What applying a layer tar records about the stream (docs/cli-contract.md §4.3). */
export interface ApplyResult {
  compressedDigest: string;
  compressedSize: number;
  diffDigest: string;
  diffSize: number;
  compression: Compression;
  uidset: number[];
  gidset: number[];
}

/**
 * How a driver stores deletions: "remove" deletes the hidden paths from a full copy (vfs);
 * "overlay" writes character devices 0:0 and marks opaque directories with the
 * trusted.overlay.opaque xattr.
 */
export type WhiteoutStyle = "remove" | "overlay";

export interface ApplyOptions {
  whiteouts: WhiteoutStyle;
  /** Owners in the tar are container IDs; content is stored shifted through these maps. */
  idMaps: IdMaps;
  /** Receives the layout chunks for byte-exact re-export (see layout.ts). */
  onLayoutChunk?: (chunk: Uint8Array) => void | Promise<void>;
  /** An owner the kernel refuses (EPERM, EINVAL: not mapped in this user namespace) is left as created, as the driver option asks. */
  ignoreChownErrors?: boolean;
}

export enum ChangeKind {
  Modify = 0,
  Add = 1,
  Delete = 2,
}

/** One difference between a layer and the tree it is compared with; path is absolute ("/etc/hosts"). */
export interface Change {
  path: string;
  kind: ChangeKind;
}
