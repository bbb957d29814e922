/**
 * Streaming tar writer: ustar headers, with PAX records where ustar cannot hold a value, the way
 * Go's archive/tar writes by default. The reader is tar-reader.ts.
 */
import { ArchiveError } from "../errors.ts";
import { BLOCK_SIZE, TypeFlag, formatPaxRecords, formatUstarBlock, isAscii, paddingOf, splitUstarName } from "./tar-header.ts";
import type { ByteSink, ByteSource, EntryType, TarEntry } from "./types.ts";

const TYPEFLAG_OF: Record<EntryType, number> = {
  file: TypeFlag.Regular,
  hardlink: TypeFlag.HardLink,
  symlink: TypeFlag.Symlink,
  char: TypeFlag.Char,
  block: TypeFlag.Block,
  dir: TypeFlag.Dir,
  fifo: TypeFlag.Fifo,
};

const OUTPUT_BUFFER_SIZE = 256 * 1024;
/** Body pieces at least this large go to the sink as they are instead of being copied. */
const DIRECT_WRITE_SIZE = 64 * 1024;
const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function toAscii(text: string): string {
  return isAscii(text) ? text : text.replace(/[^\x00-\x7f]/g, "");
}

/** Seconds rounded to the nearest second (ties up), as Go's writer stores mtime in ustar. */
function roundedSeconds(ns: bigint): number {
  const shifted = ns + 500_000_000n;
  let seconds = shifted / 1_000_000_000n;
  if (shifted < 0n && seconds * 1_000_000_000n !== shifted) seconds -= 1n;
  return Number(seconds);
}

/**
 * Writes a tar stream to a sink: ustar headers, PAX records where ustar cannot hold a value.
 * Chunks handed to the sink are never reused by the writer, and body chunks of a ByteSource
 * may be passed on as they are, so sources must not reuse their buffers either.
 */
export class TarWriter {
  private buffer = new Uint8Array(OUTPUT_BUFFER_SIZE);
  private used = 0;

  constructor(private readonly sink: ByteSink) {}

  /**
   * Writes header(s), then the body (exactly entry.size bytes for files; body may be a ByteSource
   * or Uint8Array) and padding.
   */
  async add(entry: TarEntry, body?: ByteSource | Uint8Array): Promise<void> {
    const size = entry.type === "file" ? entry.size : 0;
    let pax: Map<string, string | Uint8Array> | undefined;
    const needPax = (key: string, value: string | Uint8Array) => (pax ??= new Map()).set(key, value);

    let name = entry.path;
    let prefix = "";
    if (name.length > 100 || !isAscii(name)) {
      const split = isAscii(name) ? splitUstarName(name) : null;
      if (split) ({ prefix, name } = split);
      else {
        needPax("path", entry.path);
        name = toAscii(name).slice(0, 100);
      }
    }
    let linkname = entry.type === "symlink" || entry.type === "hardlink" ? entry.linkTarget : "";
    if (linkname.length > 100 || !isAscii(linkname)) {
      needPax("linkpath", linkname);
      linkname = toAscii(linkname).slice(0, 100);
    }
    let uname = entry.uname;
    if (uname.length > 32 || !isAscii(uname)) {
      needPax("uname", uname);
      uname = toAscii(uname).slice(0, 32);
    }
    let gname = entry.gname;
    if (gname.length > 32 || !isAscii(gname)) {
      needPax("gname", gname);
      gname = toAscii(gname).slice(0, 32);
    }
    let { uid, gid } = entry;
    if (uid < 0 || uid > MAX_OCTAL_8) {
      needPax("uid", String(uid));
      uid = 0;
    }
    if (gid < 0 || gid > MAX_OCTAL_8) {
      needPax("gid", String(gid));
      gid = 0;
    }
    let sizeField = size;
    if (size > MAX_OCTAL_12) {
      needPax("size", String(size));
      sizeField = 0;
    }
    let mtimeSeconds = roundedSeconds(entry.mtimeNs);
    if (mtimeSeconds < 0 || mtimeSeconds > MAX_OCTAL_12) {
      needPax("mtime", String(mtimeSeconds));
      mtimeSeconds = 0;
    }
    for (const [key, value] of entry.xattrs) needPax(`SCHILY.xattr.${key}`, value);

    if (pax) await this.writePaxHeader(entry.path, formatPaxRecords(pax));
    formatUstarBlock(
      {
        name,
        prefix,
        mode: entry.mode & 0o177777,
        uid,
        gid,
        size: sizeField,
        mtimeSeconds,
        typeflag: TYPEFLAG_OF[entry.type],
        linkname,
        uname,
        gname,
        devMajor: entry.devMajor,
        devMinor: entry.devMinor,
      },
      await this.reserve(BLOCK_SIZE),
    );
    if (size > 0) await this.writeBody(entry.path, size, body);
    await this.writeZeros(paddingOf(size));
  }

  /** Two 512-byte zero blocks, no padding to 10240 (docs/cli-contract.md §4.4). Does not close the sink. */
  async finish(): Promise<void> {
    await this.writeZeros(2 * BLOCK_SIZE);
    await this.flush();
  }

  private async writePaxHeader(path: string, data: Uint8Array): Promise<void> {
    const slash = path.replace(/\/+$/, "").lastIndexOf("/");
    const headerName = toAscii(slash < 0 ? `PaxHeaders.0/${path}` : `${path.slice(0, slash)}/PaxHeaders.0/${path.slice(slash + 1)}`)
      .slice(0, 100)
      .replace(/\/+$/, "");
    formatUstarBlock(
      {
        name: headerName,
        prefix: "",
        mode: 0,
        uid: 0,
        gid: 0,
        size: data.length,
        mtimeSeconds: 0,
        typeflag: TypeFlag.PaxExtended,
        linkname: "",
        uname: "",
        gname: "",
        devMajor: 0,
        devMinor: 0,
      },
      await this.reserve(BLOCK_SIZE),
    );
    await this.writeBytes(data);
    await this.writeZeros(paddingOf(data.length));
  }

  private async writeBody(path: string, size: number, body: ByteSource | Uint8Array | undefined): Promise<void> {
    let written = 0;
    const tooLong = () => new ArchiveError(`tar entry ${JSON.stringify(path)}: content is longer than its size ${size}`);
    if (body instanceof Uint8Array) {
      if (body.length > size) throw tooLong();
      await this.writeBytes(body);
      written = body.length;
    } else if (body) {
      for await (const piece of body) {
        if (written + piece.length > size) throw tooLong();
        await this.writeBytes(piece);
        written += piece.length;
      }
    }
    if (written !== size) throw new ArchiveError(`tar entry ${JSON.stringify(path)}: content is ${written} bytes, shorter than its size ${size}`);
  }

  /** A zeroed view of `length` (≤ buffer size) bytes in the output buffer, flushing first when needed. */
  private async reserve(length: number): Promise<Uint8Array> {
    if (this.used + length > this.buffer.length) await this.flush();
    const view = this.buffer.subarray(this.used, this.used + length);
    this.used += length;
    return view;
  }

  /** Hands the filled part of the buffer to the sink; the sink may keep it, so a fresh (zeroed) buffer follows. */
  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.buffer.subarray(0, this.used);
    this.buffer = new Uint8Array(OUTPUT_BUFFER_SIZE);
    this.used = 0;
    await this.sink.write(full);
  }

  private async writeBytes(bytes: Uint8Array): Promise<void> {
    if (bytes.length >= DIRECT_WRITE_SIZE) {
      await this.flush();
      await this.sink.write(bytes);
      return;
    }
    if (this.used + bytes.length > this.buffer.length) await this.flush();
    this.buffer.set(bytes, this.used);
    this.used += bytes.length;
  }

  /** Unused buffer space is always zero (buffers are fresh and filled front to back), so zeros only advance. */
  private async writeZeros(length: number): Promise<void> {
    if (this.used + length > this.buffer.length) await this.flush();
    this.used += length;
  }
}
