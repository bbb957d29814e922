/**
 * Output helpers that reproduce Go's formatting where scripts can see it (docs/cli-contract.md §2.5, §2.6):
 * encoding/json, strconv.Quote (%q), RFC 3339 nanosecond timestamps and %v of string slices.
 */
import { compareBytes } from "../util/byte-order.ts";

/** Marks objects made by sortedRecord: goJson writes their keys in byte order, like a Go map. */
const SORTED_KEYS = Symbol("sortedKeys");

const JSON_FIXUPS: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
  "\\b": "\\u0008",
  "\\f": "\\u000c",
  "\\\\": "\\\\",
};
/** What JSON.stringify writes differently from Go: <>&, U+2028/9, \b, \f, lone surrogates (escaped backslashes matched to skip them). */
const JSON_FIXUP_PATTERN = /\\(?:\\|[bf]|u[dD][89a-fA-F][0-9a-fA-F]{2})|[<>&\u2028\u2029]/g;
const JSON_NEEDS_FIXUP = /[<>&\u2028\u2029\\]/;

/** Rewrites JSON text from JSON.stringify the way Go writes it; applies to whole documents, since only string literals hold these. */
function goJsonFixups(json: string): string {
  if (!JSON_NEEDS_FIXUP.test(json)) return json;
  return json.replace(JSON_FIXUP_PATTERN, (match) => JSON_FIXUPS[match] ?? "\\ufffd");
}

/** A JSON string literal exactly as Go encoding/json (1.19, HTML-safe) writes it. */
export function goJsonString(s: string): string {
  return goJsonFixups(JSON.stringify(s));
}

/** Thrown by the fast writer's replacer at a value that JSON.stringify would write differently from Go. */
const NEEDS_CAREFUL_WRITER = new Error("needs the careful JSON writer");

/** True when keys are in byte order already (JSON.stringify writes them in this order). */
function inByteOrder(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (compareBytes(keys[i - 1]!, keys[i]!) > 0) return false;
  return true;
}

/** Lets JSON.stringify write what it writes as Go does; stops it at anything else: big or non-finite numbers, Maps, unsorted sorted records. */
function fastJsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") {
    const n = Number(value);
    if (Number.isSafeInteger(n)) return n;
    throw NEEDS_CAREFUL_WRITER;
  }
  if (typeof value === "number" && !Number.isFinite(value)) throw NEEDS_CAREFUL_WRITER;
  if (typeof value === "object" && value !== null) {
    if (value instanceof Map) throw NEEDS_CAREFUL_WRITER;
    if ((value as Record<symbol, unknown>)[SORTED_KEYS] === true && !inByteOrder(Object.keys(value))) throw NEEDS_CAREFUL_WRITER;
  }
  return value;
}

/**
 * JSON exactly like Go encoding/json: compact, <>& as \u003c \u003e \u0026, U+2028/2029 escaped, raw UTF-8 otherwise. Keys in insertion order (callers order them); no trailing newline.
 * JSON.stringify writes it (several times faster) unless a value needs the careful writer.
 */
export function goJson(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value, fastJsonReplacer);
  } catch (e) {
    if (e !== NEEDS_CAREFUL_WRITER) throw e;
    const parts: string[] = [];
    appendJson(value, parts);
    return parts.join("");
  }
  return json === undefined ? "null" : goJsonFixups(json);
}

function appendJson(value: unknown, out: string[]): void {
  switch (typeof value) {
    case "string":
      out.push(goJsonString(value));
      return;
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`json: unsupported value: ${value}`);
      out.push(String(value));
      return;
    case "bigint":
      out.push(value.toString());
      return;
    case "boolean":
      out.push(value ? "true" : "false");
      return;
    case "undefined":
    case "function":
    case "symbol":
      out.push("null");
      return;
  }
  if (value === null) {
    out.push("null");
    return;
  }
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === "function") {
    appendJson(withToJson.toJSON(), out);
    return;
  }
  if (Array.isArray(value)) {
    out.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(",");
      appendJson(value[i], out);
    }
    out.push("]");
    return;
  }
  if (value instanceof Map) {
    const keys = [...value.keys()].map(String).sort(compareBytes);
    const byKey = new Map([...value].map(([k, v]) => [String(k), v]));
    appendObjectEntries(keys.map((k) => [k, byKey.get(k)]), out);
    return;
  }
  const record = value as Record<string | symbol, unknown>;
  let keys = Object.keys(record);
  if (record[SORTED_KEYS] === true) keys = keys.sort(compareBytes);
  appendObjectEntries(
    keys.map((k) => [k, record[k]]),
    out,
  );
}

function appendObjectEntries(entries: Array<[string, unknown]>, out: string[]): void {
  out.push("{");
  let first = true;
  for (const [key, member] of entries) {
    if (member === undefined || typeof member === "function" || typeof member === "symbol") continue;
    if (!first) out.push(",");
    first = false;
    out.push(goJsonString(key), ":");
    appendJson(member, out);
  }
  out.push("}");
}

/** Sorted-by-bytes key object for map-shaped JSON outputs (goJson keeps byte order even for keys like "10" and "9"). */
export function sortedRecord<T>(entries: Iterable<[string, T]>): Record<string, T> {
  const sorted = [...entries].sort((x, y) => compareBytes(x[0], y[0]));
  const record: Record<string, T> = {};
  for (const [key, value] of sorted) record[key] = value;
  Object.defineProperty(record, SORTED_KEYS, { value: true, enumerable: false });
  return record;
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const SHORT_ESCAPES: Record<number, string> = {
  0x07: "\\a",
  0x08: "\\b",
  0x0c: "\\f",
  0x0a: "\\n",
  0x0d: "\\r",
  0x09: "\\t",
  0x0b: "\\v",
  0x22: '\\"',
  0x5c: "\\\\",
};

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, "0");
}

function quoteRune(codePoint: number): string {
  const short = SHORT_ESCAPES[codePoint];
  if (short !== undefined) return short;
  if (codePoint === 0x20) return " ";
  if (codePoint < 0x80) return codePoint < 0x20 || codePoint === 0x7f ? `\\x${hex(codePoint, 2)}` : String.fromCharCode(codePoint);
  if (codePoint >= 0xd800 && codePoint <= 0xdfff) {
    // A lone surrogate: Go would see its 3 (invalid) UTF-8 bytes.
    return `\\x${hex(0xe0 | (codePoint >> 12), 2)}\\x${hex(0x80 | ((codePoint >> 6) & 0x3f), 2)}\\x${hex(0x80 | (codePoint & 0x3f), 2)}`;
  }
  const char = String.fromCodePoint(codePoint);
  if (PRINTABLE.test(char)) return char;
  return codePoint < 0x10000 ? `\\u${hex(codePoint, 4)}` : `\\U${hex(codePoint, 8)}`;
}

/** Go %q quoting (strconv.Quote): used by `changes`. Bytes that are not valid UTF-8 are written as \xNN. */
export function goQuote(s: string | Uint8Array): string {
  if (typeof s !== "string") return quoteBytes(s);
  if (PLAIN_ASCII.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    let codePoint = s.charCodeAt(i);
    if (codePoint >= 0xd800 && codePoint <= 0xdbff && i + 1 < s.length) {
      const low = s.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        codePoint = 0x10000 + ((codePoint - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    out += quoteRune(codePoint);
  }
  return out + '"';
}

/** Decodes one UTF-8 sequence at i by Go's rules; returns [codePoint, length] or null when invalid. */
function decodeUtf8(bytes: Uint8Array, i: number): [number, number] | null {
  const b0 = bytes[i]!;
  if (b0 < 0x80) return [b0, 1];
  let length: number;
  let codePoint: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, codePoint, min] = [2, b0 & 0x1f, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, codePoint, min] = [3, b0 & 0x0f, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [length, codePoint, min] = [4, b0 & 0x07, 0x10000];
  else return null;
  if (i + length > bytes.length) return null;
  for (let k = 1; k < length; k++) {
    const b = bytes[i + k]!;
    if ((b & 0xc0) !== 0x80) return null;
    codePoint = (codePoint << 6) | (b & 0x3f);
  }
  if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return null;
  return [codePoint, length];
}

function quoteBytes(bytes: Uint8Array): string {
  let out = '"';
  for (let i = 0; i < bytes.length; ) {
    const decoded = decodeUtf8(bytes, i);
    if (decoded === null) {
      out += `\\x${hex(bytes[i]!, 2)}`;
      i++;
      continue;
    }
    out += quoteRune(decoded[0]);
    i += decoded[1];
  }
  return out + '"';
}

const NS_PER_SECOND = 1_000_000_000n;

/** RFC 3339 UTC with up to 9 fractional digits, trailing zeros trimmed, no fraction when zero: 2024-05-01T10:00:00.25073788Z. */
export function formatTimestamp(ns: bigint): string {
  let seconds = ns / NS_PER_SECOND;
  let fraction = ns % NS_PER_SECOND;
  if (fraction < 0n) {
    seconds -= 1n;
    fraction += NS_PER_SECOND;
  }
  const wholeSeconds = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  if (fraction === 0n) return `${wholeSeconds}Z`;
  const digits = fraction.toString().padStart(9, "0");
  let end = digits.length;
  while (digits.charCodeAt(end - 1) === 0x30) end--;
  return `${wholeSeconds}.${digits.slice(0, end)}Z`;
}

/** Go's default %v formatting of a string list: "[a b c]". */
export function goList(items: Array<string | number>): string {
  return `[${items.join(" ")}]`;
}
