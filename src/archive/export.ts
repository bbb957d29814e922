/**
 * Writes a list of changes of a directory tree as a layer tar (docs/cli-contract.md §4.4), and turns
 * files of a tree into tar entries (reused by drivers that read their own upper directories).
 */
import { closeSync, constants, lstatSync, openSync, readFileSync, readlinkSync, readSync, type BigIntStats } from "node:fs";
import { ArchiveError } from "../errors.ts";
import { toContainer, type IdMaps } from "../idmap.ts";
import { devMajorMinor, getXattr, listXattrs } from "../sys/libc.ts";
import { compareBytes } from "../util/byte-order.ts";
import { TarWriter } from "./tar-writer.ts";
import { ChangeKind, type ByteSink, type ByteSource, type Change, type EntryType, type TarEntry } from "./types.ts";
import { WHITEOUT_PREFIX } from "./whiteouts.ts";

const NS_PER_SECOND = 1_000_000_000n;
/** Files up to this size are read in one piece; larger ones are streamed in chunks of this size. */
const FILE_CHUNK_BYTES = 1024 * 1024;

/**
 * Writes the changes as an uncompressed tar (docs/cli-contract.md §4.4): entries sorted by path, parent dirs included as dir entries,
 * names relative without "./", dirs end with "/", uname/gname from /etc/passwd and /etc/group, deletions as empty
 * whiteout files `.wh.NAME`, owners mapped back to container IDs, hard links within the export as tar hard links.
 */
export async function exportChanges(upper: string, changes: Change[], sink: ByteSink, maps: IdMaps): Promise<void> {
  const writer = new TreeTarWriter(sink, upper, maps);
  for (const change of withParentDirectories(changes)) {
    const rel = change.path.replace(/^\/+/, "");
    if (rel === "") continue;
    if (change.kind === ChangeKind.Delete) {
      await writer.add(whiteoutEntry(rel, BigInt(Date.now()) * 1_000_000n));
      continue;
    }
    const stats = lstatOrNull(`${upper}/${rel}`);
    if (stats !== null) await writer.addFile(rel, stats);
  }
  await writer.finish();
}

/**
 * The one writer of a tree's files as tar entries (export, overlay diffs, copy): owners mapped to
 * container IDs, file contents streamed, later names of an inode written as hard links.
 */
export class TreeTarWriter {
  private readonly writer: TarWriter;
  private readonly links = new HardLinkTracker();

  constructor(
    sink: ByteSink,
    private readonly root: string,
    private readonly maps: IdMaps,
  ) {
    this.writer = new TarWriter(sink);
  }

  /** Writes an entry made by the caller (a whiteout, an opaque marker). */
  add(entry: TarEntry): Promise<void> {
    return this.writer.add(entry);
  }

  /**
   * Writes root/rel as an entry, after adjust (a new name, other owners) when given. Returns the
   * entry, or null for what a tar cannot hold (a socket).
   */
  async addFile(rel: string, stats?: BigIntStats, adjust?: (entry: TarEntry) => void): Promise<TarEntry | null> {
    stats ??= lstatSync(`${this.root}/${rel}`, { bigint: true });
    const entry = entryFromStat(this.root, rel, this.maps, stats);
    if (entry === null) return null;
    adjust?.(entry);
    if (this.links.linkTarget(entry, stats) !== undefined || entry.type !== "file") await this.writer.add(entry);
    else await this.writer.add(entry, fileBody(`${this.root}/${rel}`, entry.size));
    return entry;
  }

  /** Writes the end of the archive. */
  finish(): Promise<void> {
    return this.writer.finish();
  }
}

/** Changes sorted by path, with a Modify for every ancestor directory that is not listed itself. */
function withParentDirectories(changes: Change[]): Change[] {
  const listed = new Set(changes.map((change) => change.path));
  const all = [...changes];
  for (const change of changes) {
    for (let slash = change.path.lastIndexOf("/"); slash > 0; slash = change.path.lastIndexOf("/", slash - 1)) {
      const parent = change.path.slice(0, slash);
      if (listed.has(parent)) break;
      listed.add(parent);
      all.push({ path: parent, kind: ChangeKind.Modify });
    }
  }
  return all.sort((a, b) => compareBytes(a.path, b.path));
}

function lstatOrNull(path: string): BigIntStats | null {
  try {
    return lstatSync(path, { bigint: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** The whiteout for a deleted path: an empty regular file DIR/.wh.NAME, mode 0, owned by 0:0. */
export function whiteoutEntry(rel: string, mtimeNs: bigint): TarEntry {
  const slash = rel.lastIndexOf("/");
  const path = `${rel.slice(0, slash + 1)}${WHITEOUT_PREFIX}${rel.slice(slash + 1)}`;
  return { path, type: "file", mode: 0, uid: 0, gid: 0, uname: "", gname: "", size: 0, mtimeNs: roundToSecond(mtimeNs), linkTarget: "", devMajor: 0, devMinor: 0, xattrs: new Map() };
}

/** Remembers regular files with several links; later names of the same inode become tar hard links. */
export class HardLinkTracker {
  private readonly firstNames = new Map<string, string>();

  /** Turns entry into a hard link when its inode was written before (returns the target); else remembers it. */
  linkTarget(entry: TarEntry, stats: BigIntStats): string | undefined {
    if (entry.type === "dir" || stats.nlink < 2n) return undefined;
    const inode = `${stats.dev}:${stats.ino}`;
    const first = this.firstNames.get(inode);
    if (first === undefined) {
      this.firstNames.set(inode, entry.path);
      return undefined;
    }
    entry.type = "hardlink";
    entry.linkTarget = first;
    entry.size = 0;
    return first;
  }
}

/**
 * The tar entry for root/relPath (relPath without a leading "/"): type, mode with setuid/setgid/sticky and the file type bits, owner
 * mapped to container IDs, names from the host's passwd/group, mtime truncated to the second (as
 * containers-storage's FileInfoHeader does), link target, device numbers and the exported xattrs. null for sockets.
 */
export function entryFromStat(root: string, relPath: string, maps: IdMaps, stats?: BigIntStats): TarEntry | null {
  const path = `${root}/${relPath}`;
  stats ??= lstatSync(path, { bigint: true });
  const type = entryType(stats);
  if (type === null) return null;
  const hostUid = Number(stats.uid);
  const hostGid = Number(stats.gid);
  const uid = toContainer(maps.uidMap, hostUid);
  if (uid < 0) throw new ArchiveError(`/${relPath} is owned by host UID ${hostUid}, which the layer's UID map does not cover`);
  const gid = toContainer(maps.gidMap, hostGid);
  if (gid < 0) throw new ArchiveError(`/${relPath} is owned by host GID ${hostGid}, which the layer's GID map does not cover`);
  const [devMajor, devMinor] = type === "char" || type === "block" ? devMajorMinor(stats.rdev) : [0, 0];
  return {
    path: type === "dir" ? `${relPath}/` : relPath,
    type,
    // With the file type bits, as containers-storage writes them (Go 1.8's FileInfoHeader, kept by its fillGo18FileTypeBits).
    mode: Number(stats.mode) & 0o177777,
    uid,
    gid,
    uname: hostNames().users.get(hostUid) ?? "",
    gname: hostNames().groups.get(hostGid) ?? "",
    size: type === "file" ? Number(stats.size) : 0,
    mtimeNs: truncateToSecond(stats.mtimeNs),
    linkTarget: type === "symlink" ? readlinkSync(path) : "",
    devMajor,
    devMinor,
    xattrs: exportedXattrs(path),
  };
}

function entryType(stats: BigIntStats): EntryType | null {
  if (stats.isFile()) return "file";
  if (stats.isDirectory()) return "dir";
  if (stats.isSymbolicLink()) return "symlink";
  if (stats.isCharacterDevice()) return "char";
  if (stats.isBlockDevice()) return "block";
  if (stats.isFIFO()) return "fifo";
  return null;
}

/** Whole seconds, as containers-storage's FileInfoHeader truncates a file's mtime (so a diff applied elsewhere compares equal, §3.7.3). */
function truncateToSecond(ns: bigint): bigint {
  const floor = ns / NS_PER_SECOND;
  return (ns < 0n && floor * NS_PER_SECOND !== ns ? floor - 1n : floor) * NS_PER_SECOND;
}

function roundToSecond(ns: bigint): bigint {
  const half = NS_PER_SECOND / 2n;
  const shifted = ns >= 0n ? ns + half : ns - half;
  return (shifted / NS_PER_SECOND) * NS_PER_SECOND;
}

/** The xattrs containers-storage exports: security.capability and user.*, sorted by name. */
function exportedXattrs(path: string): Map<string, Uint8Array> {
  const xattrs = new Map<string, Uint8Array>();
  const names = listXattrs(path).filter((name) => name === "security.capability" || name.startsWith("user."));
  for (const name of names.sort()) {
    const value = getXattr(path, name);
    if (value !== null) xattrs.set(name, value);
  }
  return xattrs;
}

/**
 * Exactly size bytes of the file at path: small files in one piece, larger ones as a stream. A file that
 * shrank meanwhile is padded with zeros and one that grew is cut, so the tar stays well-formed.
 */
export function fileBody(path: string, size: number): Uint8Array | ByteSource {
  if (size <= FILE_CHUNK_BYTES) {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return readExactly(fd, size);
    } finally {
      closeSync(fd);
    }
  }
  return streamFile(path, size);
}

async function* streamFile(path: string, size: number): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    for (let remaining = size; remaining > 0; ) {
      const chunk = readExactly(fd, Math.min(remaining, FILE_CHUNK_BYTES));
      remaining -= chunk.length;
      yield chunk;
    }
  } finally {
    closeSync(fd);
  }
}

function readExactly(fd: number, length: number): Uint8Array {
  const buffer = Buffer.allocUnsafe(length);
  for (let filled = 0; filled < length; ) {
    const read = readSync(fd, buffer, filled, length - filled, null);
    if (read === 0) {
      buffer.fill(0, filled);
      break;
    }
    filled += read;
  }
  return buffer;
}

interface HostNames {
  users: Map<number, string>;
  groups: Map<number, string>;
}

let cachedHostNames: HostNames | undefined;

/** User and group names by ID from /etc/passwd and /etc/group, read once; the first line for an ID wins. */
function hostNames(): HostNames {
  cachedHostNames ??= { users: readIdFile("/etc/passwd"), groups: readIdFile("/etc/group") };
  return cachedHostNames;
}

function readIdFile(path: string): Map<number, string> {
  const names = new Map<number, string>();
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return names;
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields.length < 3 || fields[0] === "" || line.startsWith("#")) continue;
    const id = Number(fields[2]);
    if (Number.isInteger(id) && fields[2] !== "" && !names.has(id)) names.set(id, fields[0]!);
  }
  return names;
}
