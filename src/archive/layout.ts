/**
 * Byte-exact re-export of an applied layer tar (docs/cli-contract.md §4.5).
 *
 * While readTar reads a layer, a LayoutRecorder keeps every byte that is not regular-file
 * content (header blocks, PAX/GNU extension blocks, padding, end-of-archive blocks and any
 * trailing bytes, exactly as read) and, per regular file with content, its archive path, size
 * and CRC-32. reproduceTar later replays those bytes and streams the file contents from the
 * layer directory, checking size and CRC of each file.
 *
 * Record format, version 1. The recorder emits a sequence of chunks; each chunk is one zstd
 * frame whose content is:
 *
 *   byte 0        format version (1)
 *   then records, none crossing a chunk boundary:
 *     0x01 RAW    u32le length, then that many bytes copied to the output as they are
 *     0x02 FILE   LEB128 size, u32le CRC-32 of the content, LEB128 path length, path (UTF-8);
 *                 `size` bytes of content come from the file at that path under the root
 *     0x03 END    LEB128 total length of the tar stream; the last record of the last chunk
 *
 * Consecutive raw bytes share one RAW record; a chunk is closed once it holds about 1 MiB, so
 * memory stays bounded however many entries a layer has.
 */
import fs from "node:fs";
import { ArchiveError } from "../errors.ts";
import type { ByteSink } from "./types.ts";
import { cleanComponents } from "./paths.ts";
import { type DirectoryCache, isConfinedFailure, resolveConfined } from "./confined-path.ts";

const FORMAT_VERSION = 1;
const RECORD_RAW = 0x01;
const RECORD_FILE = 0x02;
const RECORD_END = 0x03;
const CHUNK_SIZE = 1 << 20;
/** Room for the largest fixed part of a record (tag, two varints, a u32). */
const RECORD_OVERHEAD = 32;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

function writeU32(into: Uint8Array, at: number, value: number): void {
  into[at] = value & 0xff;
  into[at + 1] = (value >>> 8) & 0xff;
  into[at + 2] = (value >>> 16) & 0xff;
  into[at + 3] = (value >>> 24) & 0xff;
}

function readU32(from: Uint8Array, at: number): number {
  return (from[at]! | (from[at + 1]! << 8) | (from[at + 2]! << 16) | (from[at + 3]! << 24)) >>> 0;
}

function writeVarint(into: Uint8Array, at: number, value: number): number {
  let v = value;
  let pos = at;
  while (v >= 0x80) {
    into[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  into[pos++] = v;
  return pos;
}

/** Collects the layout of a tar stream into compressed chunks, handed to `onChunk` in order. */
export class LayoutRecorder {
  private buffer = new Uint8Array(CHUNK_SIZE + RECORD_OVERHEAD);
  private used = 0;
  /** Position of the length field of the RAW record still being appended to, or -1. */
  private openRawAt = -1;
  private total = 0;
  private readonly ready: Uint8Array[] = [];
  private finished = false;

  constructor(private readonly onChunk: (chunk: Uint8Array) => void | Promise<void>) {
    this.startChunk();
  }

  /** True when finished chunks wait for deliver(). */
  get hasPendingChunks(): boolean {
    return this.ready.length > 0;
  }

  /** Records bytes that are reproduced as they are (copied now; the caller may reuse `bytes`). */
  raw(bytes: Uint8Array): void {
    this.total += bytes.length;
    let from = 0;
    while (from < bytes.length) {
      if (this.used >= CHUNK_SIZE - 5) this.closeChunk();
      if (this.openRawAt < 0) {
        this.buffer[this.used] = RECORD_RAW;
        this.openRawAt = this.used + 1;
        this.used += 5;
      }
      const take = Math.min(CHUNK_SIZE - this.used, bytes.length - from);
      this.buffer.set(bytes.subarray(from, from + take), this.used);
      this.used += take;
      from += take;
      writeU32(this.buffer, this.openRawAt, this.used - this.openRawAt - 4);
    }
  }

  /** Records a regular file's content by path, size and CRC-32 (Bun.hash.crc32 chained over the content). */
  file(path: string, size: number, crc: number): void {
    this.total += size;
    const pathBytes = utf8Encoder.encode(path);
    this.reserve(RECORD_OVERHEAD + pathBytes.length);
    let pos = this.used;
    this.buffer[pos++] = RECORD_FILE;
    pos = writeVarint(this.buffer, pos, size);
    writeU32(this.buffer, pos, crc >>> 0);
    pos = writeVarint(this.buffer, pos + 4, pathBytes.length);
    this.buffer.set(pathBytes, pos);
    this.used = pos + pathBytes.length;
  }

  /** Hands finished chunks to the callback, in order. */
  async deliver(): Promise<void> {
    while (this.ready.length > 0) await this.onChunk(this.ready.shift()!);
  }

  /** Writes the END record and delivers the last chunk; calling it again does nothing. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.reserve(RECORD_OVERHEAD);
    this.buffer[this.used] = RECORD_END;
    this.used = writeVarint(this.buffer, this.used + 1, this.total);
    this.closeChunk();
    await this.deliver();
  }

  /** Makes room for a record of `length` bytes, closing the chunk (or growing the buffer for a huge record). */
  private reserve(length: number): void {
    this.openRawAt = -1;
    if (this.used + length <= this.buffer.length && this.used < CHUNK_SIZE) return;
    if (this.used > 1) this.closeChunk();
    if (1 + length > this.buffer.length) {
      const larger = new Uint8Array(1 + length + RECORD_OVERHEAD);
      larger.set(this.buffer.subarray(0, this.used));
      this.buffer = larger;
    }
  }

  private startChunk(): void {
    this.buffer[0] = FORMAT_VERSION;
    this.used = 1;
    this.openRawAt = -1;
  }

  private closeChunk(): void {
    this.ready.push(Bun.zstdCompressSync(this.buffer.subarray(0, this.used), { level: 1 }));
    if (this.buffer.length > CHUNK_SIZE + RECORD_OVERHEAD) this.buffer = new Uint8Array(CHUNK_SIZE + RECORD_OVERHEAD);
    this.startChunk();
  }
}

function corrupt(why: string): ArchiveError {
  return new ArchiveError(`layer layout data is corrupt: ${why}`);
}

function integrityFailure(path: string): ArchiveError {
  return new ArchiveError(`file integrity checksum failed for ${JSON.stringify(path)}`);
}

/** Reads records out of one decompressed chunk. */
class RecordCursor {
  position = 1;
  constructor(readonly data: Uint8Array) {}

  get atEnd(): boolean {
    return this.position >= this.data.length;
  }

  byte(): number {
    if (this.position >= this.data.length) throw corrupt("record cut short");
    return this.data[this.position++]!;
  }

  u32(): number {
    if (this.position + 4 > this.data.length) throw corrupt("record cut short");
    const value = readU32(this.data, this.position);
    this.position += 4;
    return value;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 0x80;
      if (scale > 2 ** 56) throw corrupt("number too large");
    }
  }

  bytes(length: number): Uint8Array {
    if (this.position + length > this.data.length) throw corrupt("record cut short");
    const view = this.data.subarray(this.position, this.position + length);
    this.position += length;
    return view;
  }
}

const OUTPUT_BUFFER_SIZE = 1 << 20;
/** Largest piece of a file read at once; at most OUTPUT_BUFFER_SIZE. */
const READ_SIZE = OUTPUT_BUFFER_SIZE;

/**
 * Coalesces small pieces into large sink writes. The buffer is reused when the sink is done with
 * a chunk once written (fresh memory costs a page fault per 4 KiB); otherwise every buffer handed
 * to the sink is fresh.
 */
class OutputBuffer {
  private buffer = Buffer.allocUnsafe(OUTPUT_BUFFER_SIZE);
  private used = 0;
  written = 0;

  constructor(private readonly sink: ByteSink) {}

  /** A view of `length` (≤ buffer size) free bytes to fill; commit() makes them part of the output. */
  async space(length: number): Promise<Uint8Array> {
    if (this.used + length > this.buffer.length) await this.flush();
    return this.buffer.subarray(this.used, this.used + length);
  }

  commit(length: number): void {
    this.used += length;
    this.written += length;
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length > OUTPUT_BUFFER_SIZE / 4) {
      await this.flush();
      await this.sink.write(bytes);
      this.written += bytes.length;
      return;
    }
    (await this.space(bytes.length)).set(bytes);
    this.commit(bytes.length);
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.buffer.subarray(0, this.used);
    if (!this.sink.consumesChunks) this.buffer = Buffer.allocUnsafe(OUTPUT_BUFFER_SIZE);
    this.used = 0;
    await this.sink.write(full);
  }
}

/** Finds files under a root the way extraction placed them: symlinks are followed but never leave the root. */
class RootedLookup {
  private readonly directories: DirectoryCache = new Map();

  constructor(private readonly root: string) {}

  /** The host path of an archive path's file (its last component not followed), or null when a parent directory is missing. */
  hostPath(archivePath: string): string | null {
    const parts = cleanComponents(archivePath);
    if (parts.length === 0) return null;
    const result = resolveConfined(this.root, parts, { followLast: false, cache: this.directories });
    return isConfinedFailure(result) ? null : `${this.root}/${result}`;
  }
}

/** Opens a regular file without following a final symlink; returns null when absent or not a regular file of `size` bytes. */
function openChecked(hostPath: string | null, size: number): number | null {
  if (hostPath === null) return null;
  let fd: number;
  try {
    fd = fs.openSync(hostPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile() || stat.size !== size) {
    fs.closeSync(fd);
    return null;
  }
  return fd;
}

function readFully(fd: number, into: Uint8Array, position: number): boolean {
  let filled = 0;
  while (filled < into.length) {
    const n = fs.readSync(fd, into, filled, into.length - filled, position + filled);
    if (n === 0) return false;
    filled += n;
  }
  return true;
}

/** Reads a file's content straight into the output (in pieces of at most the buffer size), checking its CRC-32. */
async function copyFileContent(out: OutputBuffer, fd: number, path: string, size: number, crc: number): Promise<void> {
  let actual = 0;
  for (let position = 0; position < size; position += READ_SIZE) {
    const length = Math.min(READ_SIZE, size - position);
    const space = await out.space(length);
    if (!readFully(fd, space, position)) throw integrityFailure(path);
    actual = Bun.hash.crc32(space, actual);
    out.commit(length);
  }
  if (actual !== crc) throw integrityFailure(path);
}

/**
 * Rebuilds the original uncompressed tar byte for byte, reading file contents from `root` and
 * verifying sizes and checksums. Does not close the sink.
 */
export async function reproduceTar(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, root: string, sink: ByteSink): Promise<void> {
  const out = new OutputBuffer(sink);
  const lookup = new RootedLookup(root.replace(/\/+$/, "") || "/");
  let ended = false;
  for await (const compressed of chunks) {
    if (ended) throw corrupt("data after the end record");
    let data: Uint8Array;
    try {
      data = Bun.zstdDecompressSync(compressed);
    } catch {
      throw corrupt("a chunk does not decompress");
    }
    if (data[0] !== FORMAT_VERSION) throw corrupt(`unknown format version ${data[0]}`);
    const records = new RecordCursor(data);
    while (!records.atEnd) {
      if (ended) throw corrupt("records after the end record");
      const tag = records.byte();
      if (tag === RECORD_RAW) {
        await out.write(records.bytes(records.u32()));
      } else if (tag === RECORD_FILE) {
        const size = records.varint();
        const crc = records.u32();
        const path = utf8Decoder.decode(records.bytes(records.varint()));
        const fd = openChecked(lookup.hostPath(path), size);
        if (fd === null) throw integrityFailure(path);
        try {
          await copyFileContent(out, fd, path, size, crc);
        } finally {
          fs.closeSync(fd);
        }
      } else if (tag === RECORD_END) {
        const total = records.varint();
        if (total !== out.written) throw corrupt(`length ${out.written} differs from the recorded ${total}`);
        ended = true;
      } else {
        throw corrupt(`unknown record type ${tag}`);
      }
    }
  }
  if (!ended) throw corrupt("the end record is missing");
  await out.flush();
}
