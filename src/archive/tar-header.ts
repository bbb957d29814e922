/**
 * Tar header blocks and PAX records: parsing one 512-byte header block (v7, ustar, star, GNU,
 * with octal or base-256 numbers) and formatting ustar blocks and PAX record data. Stream
 * handling lives in tar.ts; this module only turns bytes into values and back.
 */
import { ArchiveError } from "../errors.ts";
import type { EntryType } from "./types.ts";

export const BLOCK_SIZE = 512;

/** The zero bytes that follow a body of this size to fill its last block. */
export function paddingOf(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

/** Typeflag bytes this codec knows. */
export const TypeFlag = {
  RegularOld: 0, // '\0'
  Regular: 0x30, // '0'
  HardLink: 0x31,
  Symlink: 0x32,
  Char: 0x33,
  Block: 0x34,
  Dir: 0x35,
  Fifo: 0x36,
  Contiguous: 0x37,
  PaxExtended: 0x78, // 'x'
  PaxGlobal: 0x67, // 'g'
  GnuLongName: 0x4c, // 'L'
  GnuLongLink: 0x4b, // 'K'
} as const;

/** The fields of one header block as stored (before PAX or GNU long names are folded in). */
export interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  typeflag: number;
  linkname: string;
  uname: string;
  gname: string;
  devMajor: number;
  devMinor: number;
}

const utf8Encoder = new TextEncoder();
const NS_PER_SECOND = 1_000_000_000n;

/** "archive/tar: invalid tar header" plus where, the message Go's reader gives for a bad block. */
export function invalidHeader(offset: number, why: string): ArchiveError {
  return new ArchiveError(`archive/tar: invalid tar header (${why} at byte offset ${offset})`);
}

/** A NUL-terminated string field (UTF-8; Buffer's decoder is several times faster than TextDecoder here). */
function fieldString(block: Buffer, start: number, length: number): string {
  if (block[start] === 0) return "";
  const limit = start + length;
  let end = start + 1;
  while (end < limit && block[end] !== 0) end++;
  return block.toString("utf8", start, end);
}

/** Remembers the last value of a short field: owner names repeat from header to header. */
class RepeatedField {
  private readonly bytes: Uint8Array;
  private length = -1;
  private value = "";

  constructor(
    private readonly start: number,
    private readonly size: number,
  ) {
    this.bytes = new Uint8Array(size);
  }

  read(block: Buffer): string {
    const { start, size, bytes } = this;
    let n = 0;
    let same = true;
    while (n < size && block[start + n] !== 0) {
      if (same && bytes[n] !== block[start + n]) same = false;
      n++;
    }
    if (same && n === this.length) return this.value;
    this.value = n === 0 ? "" : block.toString("utf8", start, start + n);
    this.length = n;
    bytes.set(block.subarray(start, start + n));
    return this.value;
  }
}

const unameField = new RepeatedField(265, 32);
const gnameField = new RepeatedField(297, 32);

/** Bytes as UTF-8 text, without TextDecoder's per-call overhead. */
export function utf8Text(bytes: Uint8Array): string {
  return (bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)).toString("utf8");
}

/** A plain octal field (leading and trailing spaces or NULs allowed), or -1 when it is not one. */
function octal(block: Uint8Array, start: number, length: number): number {
  const end = start + length;
  let i = start;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
  }
  if (i < end && block[i] === 0) return value;
  for (; i < end; i++) if (block[i] !== 0x20 && block[i] !== 0) return -1;
  return value;
}

/** A base-256 field (GNU extension: high bit of the first byte set, two's complement). */
function base256(block: Uint8Array, start: number, length: number): bigint | null {
  const negative = (block[start]! & 0x40) !== 0;
  const invert = negative ? 0xff : 0;
  let value = 0n;
  for (let i = 0; i < length; i++) {
    let c = block[start + i]! ^ invert;
    if (i === 0) c &= 0x7f;
    value = (value << 8n) | BigInt(c);
  }
  if (value >= 1n << 63n) return null;
  return negative ? -value - 1n : value;
}

/** A numeric field as a safe integer; throws "invalid tar header" when malformed or too large. */
function numberField(block: Uint8Array, start: number, length: number, what: string, offset: number): number {
  const value = octal(block, start, length);
  if (value >= 0) return value;
  if (block[start]! & 0x80) {
    const big = base256(block, start, length);
    if (big !== null && big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(big);
  }
  throw invalidHeader(offset, `bad ${what} field`);
}

/** The size field: base-256 may encode negative numbers, which no entry can have (Go refuses them too). */
function sizeField(block: Uint8Array, offset: number): number {
  const size = numberField(block, 124, 12, "size", offset);
  if (size < 0) throw invalidHeader(offset, "bad size field");
  return size;
}

/** The mtime field in nanoseconds (base-256 values may exceed the safe integer range). */
function mtimeField(block: Uint8Array, offset: number): bigint {
  const seconds = octal(block, 136, 12);
  if (seconds >= 0) return toNanoseconds(seconds);
  const big = block[136]! & 0x80 ? base256(block, 136, 12) : null;
  if (big === null) throw invalidHeader(offset, "bad mtime field");
  return big * NS_PER_SECOND;
}

function hasMagic(block: Uint8Array, magic: readonly number[], at: number): boolean {
  for (let i = 0; i < magic.length; i++) if (block[at + i] !== magic[i]) return false;
  return true;
}

const USTAR_MAGIC = [0x75, 0x73, 0x74, 0x61, 0x72, 0x00]; // "ustar\0"
const GNU_MAGIC = [0x75, 0x73, 0x74, 0x61, 0x72, 0x20, 0x20, 0x00]; // "ustar  \0" (magic + version)
const STAR_TRAILER = [0x74, 0x61, 0x72, 0x00]; // "tar\0" at 508

/** The checksum some old writers computed with signed bytes. */
function signedChecksum(block: Uint8Array): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (i >= 148 && i < 156) continue;
    const c = block[i]!;
    sum += c > 127 ? c - 256 : c;
  }
  return sum;
}

/**
 * Parses one header block. Returns "zero" for an all-zero block (end-of-archive marker) and
 * throws ArchiveError when the checksum or a numeric field is wrong.
 */
export function parseHeaderBlock(bytes: Uint8Array, offset: number): HeaderFields | "zero" {
  const block = bytes instanceof Buffer ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, BLOCK_SIZE);
  let unsigned = 8 * 0x20;
  for (let i = 0; i < 148; i++) unsigned += block[i]!;
  for (let i = 156; i < BLOCK_SIZE; i++) unsigned += block[i]!;
  if (unsigned === 8 * 0x20) {
    let allZero = true;
    for (let i = 148; i < 156; i++) if (block[i] !== 0) allZero = false;
    if (allZero) return "zero";
  }
  const stored = octal(block, 148, 8);
  if (stored < 0 || (stored !== unsigned && stored !== signedChecksum(block))) throw invalidHeader(offset, "checksum mismatch");

  const isUstar = hasMagic(block, USTAR_MAGIC, 257);
  const isGnu = !isUstar && hasMagic(block, GNU_MAGIC, 257);
  let name = fieldString(block, 0, 100);
  let uname = "";
  let gname = "";
  let devMajor = 0;
  let devMinor = 0;
  if (isUstar || isGnu) {
    uname = unameField.read(block);
    gname = gnameField.read(block);
    devMajor = numberField(block, 329, 8, "devmajor", offset);
    devMinor = numberField(block, 337, 8, "devminor", offset);
  }
  if (isUstar) {
    const prefixLength = hasMagic(block, STAR_TRAILER, 508) ? 131 : 155;
    const prefix = fieldString(block, 345, prefixLength);
    if (prefix !== "") name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: numberField(block, 100, 8, "mode", offset),
    uid: numberField(block, 108, 8, "uid", offset),
    gid: numberField(block, 116, 8, "gid", offset),
    size: sizeField(block, offset),
    mtimeNs: mtimeField(block, offset),
    typeflag: block[156]!,
    linkname: fieldString(block, 157, 100),
    uname,
    gname,
    devMajor,
    devMinor,
  };
}

let lastSeconds = 0;
let lastNanoseconds = 0n;

/** Seconds to nanoseconds; consecutive headers usually share an mtime, so the last result is reused. */
function toNanoseconds(seconds: number): bigint {
  if (seconds !== lastSeconds) {
    lastSeconds = seconds;
    lastNanoseconds = BigInt(seconds) * NS_PER_SECOND;
  }
  return lastNanoseconds;
}

/** Body length that follows a header: header-only types carry no data whatever their size field says. */
export function dataLength(typeflag: number, size: number): number {
  switch (typeflag) {
    case TypeFlag.HardLink:
    case TypeFlag.Symlink:
    case TypeFlag.Char:
    case TypeFlag.Block:
    case TypeFlag.Dir:
    case TypeFlag.Fifo:
      return 0;
    default:
      return size;
  }
}

const ENTRY_TYPES: Record<number, EntryType | undefined> = {
  [TypeFlag.Regular]: "file",
  [TypeFlag.Contiguous]: "file",
  [TypeFlag.HardLink]: "hardlink",
  [TypeFlag.Symlink]: "symlink",
  [TypeFlag.Char]: "char",
  [TypeFlag.Block]: "block",
  [TypeFlag.Dir]: "dir",
  [TypeFlag.Fifo]: "fifo",
};

/** The entry type for a typeflag, or null for one this codec does not handle. */
export function entryTypeOf(typeflag: number, name: string): EntryType | null {
  if (typeflag === TypeFlag.RegularOld) return name.endsWith("/") ? "dir" : "file";
  return ENTRY_TYPES[typeflag] ?? null;
}

/** PAX records of one extended header: text values by key, xattr values as raw bytes. */
export interface PaxRecords {
  values: Map<string, string>;
  xattrs: Map<string, Uint8Array>;
}

const XATTR_PREFIX = "SCHILY.xattr.";

/** Parses the data of a PAX 'x' or 'g' header ("<length> <key>=<value>\n" records). */
export function parsePaxRecords(data: Uint8Array, offset: number): PaxRecords {
  const values = new Map<string, string>();
  const xattrs = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // some writers pad the record data with NULs
    let length = 0;
    let i = pos;
    while (i < data.length && data[i]! >= 0x30 && data[i]! <= 0x39) length = length * 10 + (data[i++]! - 0x30);
    const recordEnd = pos + length;
    if (i === pos || data[i] !== 0x20 || length === 0 || recordEnd > data.length || data[recordEnd - 1] !== 0x0a) {
      throw invalidHeader(offset, "malformed PAX record");
    }
    const keyStart = i + 1;
    let equals = keyStart;
    while (equals < recordEnd && data[equals] !== 0x3d) equals++;
    if (equals >= recordEnd || equals === keyStart) throw invalidHeader(offset, "malformed PAX record");
    const key = utf8Text(data.subarray(keyStart, equals));
    const value = data.subarray(equals + 1, recordEnd - 1);
    // A copy (Buffer's slice() would be a view): the input's buffer may be refilled after this entry.
    if (key.startsWith(XATTR_PREFIX)) xattrs.set(key.slice(XATTR_PREFIX.length), new Uint8Array(value));
    else values.set(key, utf8Text(value));
    pos = recordEnd;
  }
  return { values, xattrs };
}

/** Parses a PAX time value ("1700000000", "1700000000.123456789", "-1.5") to nanoseconds. */
export function parsePaxTime(text: string, offset: number): bigint {
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(text);
  if (!match) throw invalidHeader(offset, `bad PAX time ${JSON.stringify(text)}`);
  const fraction = (match[3] ?? "").slice(0, 9).padEnd(9, "0");
  const magnitude = BigInt(match[2]!) * NS_PER_SECOND + BigInt(fraction);
  return match[1] ? -magnitude : magnitude;
}

/** Parses a PAX decimal integer value; returns null when it is not one. */
export function parsePaxInteger(text: string): number | null {
  if (!/^-?\d+$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

// ---------------------------------------------------------------------------------------
// Writing

/** True when every character is ASCII (and so fits a ustar field byte for byte). */
export function isAscii(text: string): boolean {
  return Buffer.byteLength(text, "utf8") === text.length;
}

/** Writes an ASCII string (callers reduce text to ASCII first) into a field, truncated to its length. */
function putString(block: Buffer, start: number, length: number, text: string): void {
  if (text !== "") block.write(text, start, Math.min(text.length, length), "latin1");
}

/** Zero-padded octal digits filling all but the last byte of the field, which stays NUL. */
function putOctal(block: Uint8Array, start: number, length: number, value: number): void {
  let v = value;
  for (let i = start + length - 2; i >= start; i--) {
    block[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  block[start + length - 1] = 0;
}

function putBase256(block: Uint8Array, start: number, length: number, value: bigint): void {
  let v = value < 0n ? (1n << BigInt(length * 8)) + value : value;
  for (let i = start + length - 1; i > start; i--) {
    block[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  block[start] = value < 0n ? 0xff : 0x80;
}

/** A number field: octal when it fits, else base-256. */
function putNumber(block: Uint8Array, start: number, length: number, value: number): void {
  if (value >= 0 && value < 8 ** (length - 1)) putOctal(block, start, length, value);
  else putBase256(block, start, length, BigInt(value));
}

/** Values for one ustar block, already reduced to what the fields can hold (ASCII text; 0 where a PAX record carries a number). */
export interface BlockValues {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSeconds: number;
  typeflag: number;
  linkname: string;
  uname: string;
  gname: string;
  devMajor: number;
  devMinor: number;
}

/** Formats a ustar header block ("ustar\0" "00") with its checksum into a zeroed 512-byte view. */
export function formatUstarBlock(v: BlockValues, into: Uint8Array): void {
  const block = Buffer.from(into.buffer, into.byteOffset, BLOCK_SIZE);
  putString(block, 0, 100, v.name);
  putOctal(block, 100, 8, v.mode);
  putNumber(block, 108, 8, v.uid);
  putNumber(block, 116, 8, v.gid);
  putNumber(block, 124, 12, v.size);
  putNumber(block, 136, 12, v.mtimeSeconds);
  block[156] = v.typeflag;
  putString(block, 157, 100, v.linkname);
  block.set(USTAR_MAGIC, 257);
  block[263] = 0x30;
  block[264] = 0x30;
  putString(block, 265, 32, v.uname);
  putString(block, 297, 32, v.gname);
  putNumber(block, 329, 8, v.devMajor);
  putNumber(block, 337, 8, v.devMinor);
  putString(block, 345, 155, v.prefix);
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK_SIZE; i++) sum += block[i]!;
  putOctal(block, 148, 7, sum);
  block[155] = 0x20;
}

/**
 * Splits a name into ustar prefix and name fields, or returns null when it cannot be split
 * (Go's writer does the same before falling back to PAX).
 */
export function splitUstarName(name: string): { prefix: string; name: string } | null {
  if (name.length <= 100) return { prefix: "", name };
  let length = name.length;
  if (length > 156) length = 156;
  else if (name.endsWith("/")) length--;
  const slash = name.lastIndexOf("/", length - 1);
  const nameLength = name.length - slash - 1;
  if (slash <= 0 || nameLength > 100 || nameLength === 0 || slash > 155) return null;
  return { prefix: name.slice(0, slash), name: name.slice(slash + 1) };
}

/** Encodes PAX records, sorted by key, into the data of an 'x' header. */
export function formatPaxRecords(records: Map<string, string | Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const key of [...records.keys()].sort()) {
    const raw = records.get(key)!;
    const value = typeof raw === "string" ? utf8Encoder.encode(raw) : raw;
    const keyBytes = utf8Encoder.encode(key);
    const rest = keyBytes.length + value.length + 3; // ' ', '=', '\n'
    let length = rest + String(rest).length;
    if (String(length).length !== String(rest).length) length = rest + String(length).length;
    const head = utf8Encoder.encode(`${length} ${key}=`);
    const record = new Uint8Array(length);
    record.set(head, 0);
    record.set(value, head.length);
    record[length - 1] = 0x0a;
    parts.push(record);
    total += length;
  }
  const data = new Uint8Array(total);
  let pos = 0;
  for (const part of parts) {
    data.set(part, pos);
    pos += part.length;
  }
  return data;
}
