/**
 * Streaming tar reader. It understands v7, ustar, star, GNU (long names,
 * long links, base-256 numbers) and PAX (extended and global headers, SCHILY.xattr.*), is
 * tolerant of archives without end-of-archive blocks, and yields entry bodies as views of the
 * incoming chunks without buffering them. It can hand everything that is not file content to
 * a LayoutRecorder for byte-exact re-export (layout.ts). The writer is tar-writer.ts.
 */
import { ArchiveError } from "../errors.ts";
import type { LayoutRecorder } from "./layout.ts";
import {
  BLOCK_SIZE,
  TypeFlag,
  dataLength,
  entryTypeOf,
  invalidHeader,
  paddingOf,
  parseHeaderBlock,
  parsePaxInteger,
  parsePaxRecords,
  parsePaxTime,
  type HeaderFields,
  type PaxRecords,
  utf8Text,
} from "./tar-header.ts";
import type { ByteSource, EntryType, TarEntry } from "./types.ts";

export interface TarItem {
  entry: TarEntry;
  body: ByteSource;
}

const EMPTY = Buffer.alloc(0);
const EMPTY_BODY: ByteSource = {
  async *[Symbol.asyncIterator]() {},
};
/** PAX and GNU extension headers larger than this are refused (Go's limit too). */
const MAX_EXTENSION_SIZE = 1 << 20;

function unexpectedEof(where: string, offset: number, path?: string): ArchiveError {
  const what = path === undefined ? where : `${where} ${JSON.stringify(path)}`;
  return new ArchiveError(`unexpected EOF: the tar stream ends inside ${what} at byte offset ${offset}`);
}

/**
 * Pulls bytes from a source: zero-copy pieces, or exact-length reads that copy only when a read
 * spans chunks. Chunks are viewed as Buffers so that header text decodes without TextDecoder.
 */
class InputCursor {
  private chunk: Buffer = EMPTY;
  private position = 0;
  private ended = false;
  /** Bytes consumed so far. */
  offset = 0;

  constructor(private readonly iterator: AsyncIterator<Uint8Array>) {}

  private async pull(): Promise<boolean> {
    while (!this.ended) {
      const result = await this.iterator.next();
      if (result.done) {
        this.ended = true;
        break;
      }
      const value = result.value;
      if (value.length > 0) {
        this.chunk = value instanceof Buffer ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
        this.position = 0;
        return true;
      }
    }
    return false;
  }

  /** The next up to `max` bytes as a view of the input, or null at the end. */
  async next(max: number): Promise<Uint8Array | null> {
    if (this.position >= this.chunk.length && !(await this.pull())) return null;
    const end = Math.min(this.chunk.length, this.position + max);
    const piece = this.chunk.subarray(this.position, end);
    this.offset += end - this.position;
    this.position = end;
    return piece;
  }

  /** Exactly `length` bytes when the current chunk holds them (no waiting), else undefined. */
  take(length: number): Uint8Array | undefined {
    if (this.chunk.length - this.position < length) return undefined;
    const view = this.chunk.subarray(this.position, this.position + length);
    this.position += length;
    this.offset += length;
    return view;
  }

  /** Exactly `length` bytes; null when the input ends before the first byte; throws when it ends in between. */
  async read(length: number, what: string, path?: string): Promise<Uint8Array | null> {
    const start = this.offset;
    const first = await this.next(length);
    if (first === null) return null;
    if (first.length === length) return first;
    const whole = Buffer.allocUnsafe(length);
    whole.set(first);
    let filled = first.length;
    while (filled < length) {
      const piece = await this.next(length - filled);
      if (piece === null) throw unexpectedEof(what, start, path);
      whole.set(piece, filled);
      filled += piece.length;
    }
    return whole;
  }

  /** Consumes `length` bytes if the current chunk holds them (passing them to `visit`); false when it does not. */
  skipBuffered(length: number, visit?: (piece: Uint8Array) => void): boolean {
    if (this.chunk.length - this.position < length) return false;
    if (length > 0) {
      const piece = this.take(length)!;
      if (visit) visit(piece);
    }
    return true;
  }

  /** Consumes exactly `length` bytes, passing each piece to `visit`. */
  async skip(length: number, what: string, path: string | undefined, visit?: (piece: Uint8Array) => void): Promise<void> {
    let left = length;
    while (left > 0) {
      const piece = await this.next(left);
      if (piece === null) throw unexpectedEof(what, this.offset, path);
      visit?.(piece);
      left -= piece.length;
    }
  }

  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.iterator.return?.();
    }
  }
}

/** Where a reader is within one entry's body; shared by the body iterator and the reader loop. */
interface BodyState {
  remaining: number;
  crc: number;
  live: boolean;
}

function bodyIterator(input: InputCursor, state: BodyState, path: string, recording: boolean): ByteSource {
  return {
    async *[Symbol.asyncIterator]() {
      if (!state.live) throw new ArchiveError(`tar entry ${JSON.stringify(path)}: content read after moving to the next entry`);
      while (state.remaining > 0) {
        const piece = await input.next(state.remaining);
        if (piece === null) throw unexpectedEof("the content of", input.offset, path);
        state.remaining -= piece.length;
        if (recording) state.crc = Bun.hash.crc32(piece, state.crc);
        yield piece;
      }
    },
  };
}

/** Extension headers read so far that apply to the next real entry. */
interface PendingExtensions {
  pax?: PaxRecords;
  longName?: string;
  longLink?: string;
}

function cString(data: Uint8Array): string {
  const nul = data.indexOf(0);
  return utf8Text(nul < 0 ? data : data.subarray(0, nul));
}

function applyPax(entry: TarEntry, fields: HeaderFields, records: PaxRecords, global: boolean, offset: number): void {
  for (const [key, value] of records.values) {
    if (key.startsWith("GNU.sparse.")) throw new ArchiveError(`archive/tar: sparse files are not supported (entry at byte offset ${offset})`);
    if (value === "") continue;
    switch (key) {
      case "path":
        if (!global) entry.path = value;
        break;
      case "linkpath":
        if (!global) entry.linkTarget = value;
        break;
      case "size": {
        const size = parsePaxInteger(value);
        if (size === null || size < 0) throw invalidHeader(offset, `bad PAX size ${JSON.stringify(value)}`);
        if (!global) fields.size = size;
        break;
      }
      case "uid":
      case "gid": {
        const id = parsePaxInteger(value);
        if (id === null || id < 0) throw invalidHeader(offset, `bad PAX ${key} ${JSON.stringify(value)}`);
        entry[key] = id;
        break;
      }
      case "uname":
        entry.uname = value;
        break;
      case "gname":
        entry.gname = value;
        break;
      case "mtime":
        entry.mtimeNs = parsePaxTime(value, offset);
        break;
    }
  }
  for (const [name, value] of records.xattrs) entry.xattrs.set(name, value);
}

/**
 * Reads entries one by one; the body of an entry must be consumed (or is skipped automatically)
 * before the next. After the end-of-archive blocks, the rest of the stream is read (and recorded)
 * too, so that a measure() around the source sees every byte.
 */
export async function* readTar(source: ByteSource, options: { recorder?: LayoutRecorder } = {}): AsyncGenerator<TarItem> {
  const input = new InputCursor(source[Symbol.asyncIterator]());
  const recorder = options.recorder;
  const record = recorder ? (piece: Uint8Array) => recorder.raw(piece) : undefined;
  let globals: PaxRecords | undefined;
  let pending: PendingExtensions = {};
  try {
    for (;;) {
      if (recorder?.hasPendingChunks) await recorder.deliver();
      const headerOffset = input.offset;
      const block = input.take(BLOCK_SIZE) ?? (await input.read(BLOCK_SIZE, "a header"));
      if (block === null) {
        if (pending.pax || pending.longName !== undefined || pending.longLink !== undefined) throw unexpectedEof("an extended header's entry", headerOffset);
        break;
      }
      record?.(block);
      const fields = parseHeaderBlock(block, headerOffset);
      if (fields === "zero") {
        const second = await input.read(BLOCK_SIZE, "the end-of-archive blocks");
        if (second === null) break;
        record?.(second);
        if (parseHeaderBlock(second, headerOffset + BLOCK_SIZE) !== "zero") throw invalidHeader(headerOffset + BLOCK_SIZE, "a header after a zero block");
        for (;;) {
          const rest = await input.next(Number.MAX_SAFE_INTEGER);
          if (rest === null) break;
          record?.(rest);
          if (recorder?.hasPendingChunks) await recorder.deliver();
        }
        break;
      }

      const typeflag = fields.typeflag;
      if (typeflag === TypeFlag.PaxExtended || typeflag === TypeFlag.PaxGlobal || typeflag === TypeFlag.GnuLongName || typeflag === TypeFlag.GnuLongLink) {
        if (fields.size > MAX_EXTENSION_SIZE) throw invalidHeader(headerOffset, "extension header larger than 1 MiB");
        const data = (await input.read(fields.size, "an extension header")) ?? EMPTY;
        if (data.length < fields.size) throw unexpectedEof("an extension header", headerOffset);
        record?.(data);
        // Parsed before the padding is read: data may be a view of an input buffer that the next read refills.
        if (typeflag === TypeFlag.PaxExtended) pending.pax = parsePaxRecords(data, headerOffset);
        else if (typeflag === TypeFlag.PaxGlobal) globals = mergeGlobals(globals, parsePaxRecords(data, headerOffset));
        else if (typeflag === TypeFlag.GnuLongName) pending.longName = cString(data);
        else pending.longLink = cString(data);
        await input.skip(paddingOf(fields.size), "an extension header", undefined, record);
        continue;
      }

      const entry: TarEntry = {
        path: pending.longName ?? fields.name,
        type: "file",
        mode: fields.mode & 0o7777,
        uid: fields.uid,
        gid: fields.gid,
        uname: fields.uname,
        gname: fields.gname,
        size: 0,
        mtimeNs: fields.mtimeNs,
        linkTarget: pending.longLink ?? fields.linkname,
        devMajor: fields.devMajor,
        devMinor: fields.devMinor,
        xattrs: new Map(),
      };
      if (globals) applyPax(entry, fields, globals, true, headerOffset);
      if (pending.pax) applyPax(entry, fields, pending.pax, false, headerOffset);
      pending = {};

      const type: EntryType | null = entryTypeOf(typeflag, entry.path);
      if (type === null) {
        throw new ArchiveError(`archive/tar: unsupported entry type ${JSON.stringify(String.fromCharCode(typeflag))} for ${JSON.stringify(entry.path)}`);
      }
      entry.type = type;
      const length = dataLength(typeflag, fields.size);

      if (type === "file" && length > 0) {
        entry.size = length;
        const state: BodyState = { remaining: length, crc: 0, live: true };
        try {
          yield { entry, body: bodyIterator(input, state, entry.path, recorder !== undefined) };
        } finally {
          state.live = false;
        }
        if (state.remaining > 0) {
          const addToCrc = recorder ? (piece: Uint8Array) => (state.crc = Bun.hash.crc32(piece, state.crc)) : undefined;
          if (!input.skipBuffered(state.remaining, addToCrc)) await input.skip(state.remaining, "the content of", entry.path, addToCrc);
          state.remaining = 0;
        }
        recorder?.file(entry.path, length, state.crc);
      } else {
        yield { entry, body: EMPTY_BODY };
        if (!input.skipBuffered(length, record)) await input.skip(length, "the content of", entry.path, record);
      }
      const padding = paddingOf(length);
      if (!input.skipBuffered(padding, record)) await input.skip(padding, "the padding after", entry.path, record);
    }
    if (recorder) await recorder.finish();
  } finally {
    await input.close();
  }
}

function mergeGlobals(previous: PaxRecords | undefined, next: PaxRecords): PaxRecords {
  if (!previous) return next;
  const values = new Map(previous.values);
  for (const [key, value] of next.values) {
    if (value === "") values.delete(key);
    else values.set(key, value);
  }
  const xattrs = new Map(previous.xattrs);
  for (const [key, value] of next.xattrs) xattrs.set(key, value);
  return { values, xattrs };
}
