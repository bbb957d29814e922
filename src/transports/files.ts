/**
 * The files of an image layout, read where they are: in a directory (oci:) or as members of an
 * uncompressed tar (oci-archive:, docker-archive:). A tar is indexed once by reading only its
 * headers (seeking over the data); each member is then streamed straight from its offset, so a
 * layer in an archive is read once and never copied to a temporary file.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { join, normalize, posix } from "node:path";
import { CorruptError, NotSupportedError, SystemError, ioError, messageOf } from "../errors.ts";
import { BLOCK_SIZE, TypeFlag, dataLength, parseHeaderBlock, parsePaxRecords, utf8Text } from "../archive/tar-header.ts";
import type { BlobReader } from "./types.ts";

/** Read access to the files of a layout by their path inside it ("index.json", "blobs/sha256/…"). */
export interface LayoutFiles {
  /** The whole file, or undefined if it does not exist. */
  read(path: string): Promise<Uint8Array | undefined>;
  /** A stream of the file and its size, or undefined if it does not exist. */
  open(path: string): BlobReader | undefined;
}

const CHUNK = 1 << 20;

/**
 * Streams [start, start + length) of a file with readSync into two buffers used in turn (no
 * allocation per chunk), as import-layer reads its input: a chunk stays valid until two more
 * have been read, so a consumer must use or copy it before asking for the one after next.
 */
async function* readRange(path: string, start: number, length: number): AsyncGenerator<Uint8Array> {
  const fd = openSync(path, "r");
  try {
    const size = Math.min(CHUNK, length);
    const buffers = [new Uint8Array(size), new Uint8Array(size)];
    let position = start;
    const end = start + length;
    for (let turn = 0; position < end; turn ^= 1) {
      const buffer = buffers[turn]!;
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, end - position), position);
      if (n === 0) throw new CorruptError(`read ${path}: unexpected end of file`);
      position += n;
      yield buffer.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** Checks that the path a source reference names exists: if not, the one line naming the reference and the path. */
export function requireSourcePath(path: string, description: string): void {
  if (!existsSync(path)) throw new SystemError(`${description}: ${path}: no such file or directory`, "ENOENT");
}

/** The files of a directory. */
export function directoryFiles(dir: string): LayoutFiles {
  const sizeOf = (path: string) => {
    try {
      const stat = statSync(join(dir, path));
      return stat.isFile() ? stat.size : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    async read(path) {
      return sizeOf(path) === undefined ? undefined : new Uint8Array(await Bun.file(join(dir, path)).arrayBuffer());
    },
    open(path) {
      const size = sizeOf(path);
      return size === undefined ? undefined : { stream: readRange(join(dir, path), 0, size), size };
    },
  };
}

interface Member {
  offset: number;
  size: number;
  /** For a symlink or hard link, the member it points at (a path inside the archive). */
  link?: string;
}

/** "./a/b" and "a//b" → "a/b". */
function cleanPath(path: string): string {
  return normalize(`/${path}`).slice(1).replace(/\/$/, "");
}

/** Indexes an uncompressed tar's members by reading their headers only. */
export function tarFiles(archive: string): LayoutFiles {
  const members = new Map<string, Member>();
  let fd: number;
  try {
    fd = openSync(archive, "r");
  } catch (error) {
    throw ioError("open", archive, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new NotSupportedError(`${archive}: not a regular file: an archive is read by seeking to its members, so save it to a file first`);
    const total = stat.size;
    const block = new Uint8Array(BLOCK_SIZE);
    let offset = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    while (offset + BLOCK_SIZE <= total) {
      readSync(fd, block, 0, BLOCK_SIZE, offset);
      if (offset === 0 && (block[0] === 0x1f || block[0] === 0x28)) throw new NotSupportedError(`${archive}: compressed archives are not supported; decompress it first`);
      let header;
      try {
        header = parseHeaderBlock(block, offset);
      } catch (error) {
        throw new CorruptError(`${archive}: not a tar archive: ${messageOf(error)}`);
      }
      if (header === "zero") break;
      const dataOffset = offset + BLOCK_SIZE;
      const dataSize = dataLength(header.typeflag, header.size);
      const readData = () => {
        const data = new Uint8Array(dataSize);
        readSync(fd, data, 0, dataSize, dataOffset);
        return data;
      };
      if (header.typeflag === TypeFlag.GnuLongName) longName = utf8Text(readData()).replace(/\0+$/, "");
      else if (header.typeflag === TypeFlag.PaxExtended) paxPath = parsePaxRecords(readData(), dataOffset).values.get("path");
      else if (header.typeflag !== TypeFlag.PaxGlobal && header.typeflag !== TypeFlag.GnuLongLink) {
        const name = cleanPath(paxPath ?? longName ?? header.name);
        longName = paxPath = undefined;
        if (header.typeflag === TypeFlag.Regular || header.typeflag === TypeFlag.RegularOld) members.set(name, { offset: dataOffset, size: header.size });
        else if (header.typeflag === TypeFlag.Symlink) members.set(name, { offset: 0, size: 0, link: cleanPath(posix.join(posix.dirname(name), header.linkname)) });
        else if (header.typeflag === TypeFlag.HardLink) members.set(name, { offset: 0, size: 0, link: cleanPath(header.linkname) });
      }
      offset = dataOffset + Math.ceil(dataSize / BLOCK_SIZE) * BLOCK_SIZE;
    }
  } finally {
    closeSync(fd);
  }
  const find = (path: string): Member | undefined => {
    let member = members.get(cleanPath(path));
    for (let hops = 0; member?.link !== undefined && hops < 16; hops++) member = members.get(member.link);
    return member?.link === undefined ? member : undefined;
  };
  return {
    async read(path) {
      const member = find(path);
      if (!member) return undefined;
      const data = new Uint8Array(member.size);
      const fd = openSync(archive, "r");
      try {
        readSync(fd, data, 0, member.size, member.offset);
      } finally {
        closeSync(fd);
      }
      return data;
    },
    open(path) {
      const member = find(path);
      return member ? { stream: readRange(archive, member.offset, member.size), size: member.size } : undefined;
    },
  };
}
