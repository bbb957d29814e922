/**
 * A corpus of layer tars that try to escape or break the store, written by Python's tarfile (full
 * control over names and types) and then, for the corrupt ones, edited byte by byte. Paths that
 * aim outside use OUTSIDE (four levels up from a layer's content directory, on both drivers:
 * root/vfs/dir/ID and root/overlay/ID/diff, a sentinel directory beside the store) and HOST (an
 * absolute sentinel directory under /tmp).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pythonTars } from "../archive/apply-helpers.ts";

/** What a case must do: be refused (non-zero exit, one line), be accepted, or either (both confined). */
export type Expectation = "refused" | "accepted" | "either";

export interface HostileCase {
  name: string;
  file: string;
  expect: Expectation;
  /** Paths that must exist inside the layer when it is accepted (relative, "->target" for symlinks). */
  inside?: Record<string, string>;
  /** A fragment the one-line error must contain when refused. */
  error?: RegExp;
}

/** Relative climb from a layer's content directory to the sentinel beside the store. */
export const OUTSIDE = "../../../../outside";

const PY = {
  file: "tarfile.REGTYPE",
  dir: "tarfile.DIRTYPE",
  sym: "tarfile.SYMTYPE",
  link: "tarfile.LNKTYPE",
  chr: "tarfile.CHRTYPE",
  blk: "tarfile.BLKTYPE",
  fifo: "tarfile.FIFOTYPE",
};

/** Python source for one `add(...)` call. */
function add(name: string, type: keyof typeof PY = "file", extra: Record<string, string | number> = {}): string {
  const args = [JSON.stringify(name)];
  if (!("type" in extra)) args.push(`type=${PY[type]}`);
  for (const [key, value] of Object.entries(extra)) args.push(`${key}=${typeof value === "number" ? `0o${value.toString(8)}` : value}`);
  return `add(${args.join(", ")})`;
}

const data = (text: string) => ({ data: `b${JSON.stringify(text)}` });
const link = (target: string) => ({ linkname: JSON.stringify(target) });

/** Builds every corpus tar under dir; host is the absolute sentinel directory (holds victim and victimdir/). */
export function buildCorpus(dir: string, host: string): HostileCase[] {
  mkdirSync(dir, { recursive: true });
  const cases: HostileCase[] = [];
  const specs: Array<[string, string]> = [];
  const tar = (name: string, expect: Expectation, lines: string[], more: Partial<HostileCase> = {}) => {
    const file = join(dir, `${slug(name)}.tar`);
    specs.push([file, lines.join("\n")]);
    cases.push({ name, file, expect, ...more });
  };
  const climb = "../".repeat(12);

  tar("dot-dot names are clamped at the root", "accepted", [add("../pwned-dotdot", "file", data("x")), add(`${OUTSIDE}/pwned`, "file", data("x")), add(`${climb}${host.slice(1)}/pwned`, "file", data("x"))], {
    inside: { "pwned-dotdot": "file", "outside/pwned": "file" },
  });
  tar("absolute names land inside the layer", "accepted", [add("/pwned-abs", "file", data("x")), add(`${host}/pwned`, "file", data("x"))], {
    inside: { "pwned-abs": "file", [`${host.slice(1)}/pwned`]: "file" },
  });
  tar("a/../../b is clamped", "accepted", [add("a/../../b", "file", data("x")), add(`a/${OUTSIDE}/../pwned`, "file", data("x"))], { inside: { b: "file" } });
  tar("a symlink to / then a file through it", "either", [add("root", "sym", link("/")), add(`root${host}/pwned`, "file", data("x"))]);
  tar("a symlink up and out then a file through it", "either", [add("up", "sym", link(OUTSIDE)), add("up/pwned", "file", data("x")), add("up2", "sym", link("../..")), add("up2/pwned2", "file", data("x"))]);
  tar("a symlink chain ending outside then a file through it", "either", [add("a", "sym", link("b")), add("b", "sym", link("c")), add("c", "sym", link(host)), add("a/pwned", "file", data("x"))]);
  tar("a symlink loop", "refused", [add("l1", "sym", link("l2")), add("l2", "sym", link("l1")), add("l1/x", "file", data("x"))], { error: /too many levels of symbolic links/ });
  tar("a symlink replacing an extracted directory then a write through it", "either", [
    add("d", "dir"),
    add("d/e", "dir"),
    add("d/f", "file", data("f")),
    add("d", "sym", link(host)),
    add("d/pwned", "file", data("x")),
    add("d/e/pwned", "file", data("x")),
  ]);
  tar("a hard link to /etc/passwd", "refused", [add("pw", "link", link("/etc/passwd"))], { error: /does not exist in the layer/ });
  tar("a hard link to a file outside by dot-dot", "refused", [add("h", "link", link(`${OUTSIDE}/secret`))], { error: /does not exist in the layer/ });
  tar("a hard link to a symlink pointing outside, then a write to it", "accepted", [
    add("s", "sym", link(`${host}/victim`)),
    add("h", "link", link("s")),
    add("h", "file", data("pwned")),
  ], { inside: { s: `->${host}/victim`, h: "file" } });
  tar("a hard link to a symlink to an outside directory, then a write through it", "either", [add("s", "sym", link(host)), add("h", "link", link("s")), add("h/pwned", "file", data("x"))]);
  tar("a file over a symlink to an outside file", "accepted", [add("s", "sym", link(`${host}/victim`)), add("s", "file", data("pwned"))], { inside: { s: "file" } });
  tar("a directory over a symlink to an outside directory", "accepted", [add("s", "sym", link(`${host}/victimdir`)), add("s", "dir", { mode: 0o777 }), add("s/pwned", "file", data("x"))], {
    inside: { s: "dir", "s/pwned": "file" },
  });
  tar("whiteouts that climb", "either", [
    add("../.wh.outside", "file"),
    add(`${OUTSIDE}/../.wh.outside`, "file"),
    add(".wh...", "file"),
    add("sub/.wh...", "file"),
    add("up", "sym", link(OUTSIDE)),
    add("up/.wh.secret", "file"),
    add("hostlink", "sym", link(host)),
    add("hostlink/.wh.victim", "file"),
    add("hostlink/.wh.victimdir", "file"),
  ]);
  tar("an opaque whiteout at the root", "accepted", [add(".wh..wh..opq", "file"), add("kept", "file", data("k"))], { inside: { kept: "file" } });
  tar("an opaque whiteout through a symlink to outside", "either", [add("hostlink", "sym", link(host)), add("hostlink/.wh..wh..opq", "file"), add("up", "sym", link(OUTSIDE)), add("up/.wh..wh..opq", "file")]);
  tar("devices and fifos, one of them aimed outside", "accepted", [
    add("null", "chr", { devmajor: "1", devminor: "3" }),
    add("sda", "blk", { devmajor: "8", devminor: "0" }),
    add("fifo", "fifo"),
    add(`${OUTSIDE}/dev-pwned`, "chr", { devmajor: "1", devminor: "3" }),
  ], { inside: { null: "char", sda: "block", fifo: "fifo", "outside/dev-pwned": "char" } });
  tar("a fifo and a device through a symlink to outside", "either", [add("hostlink", "sym", link(host)), add("hostlink/fifo-pwned", "fifo"), add("hostlink/null-pwned", "chr", { devmajor: "1", devminor: "3" })]);
  tar("setuid and setgid files stay inside with their modes", "accepted", [add("suid", "file", { ...data("#!/bin/sh\n"), mode: 0o4755 }), add("sgid", "dir", { mode: 0o2775 }), add("sgid/f", "file", data("g"))], {
    inside: { suid: "file mode 4755", sgid: "dir mode 2775", "sgid/f": "file" },
  });
  tar("duplicate and conflicting entries", "accepted", [
    add("x", "file", data("first")),
    add("x", "file", data("second")),
    add("y", "file", data("file")),
    add("y", "dir"),
    add("y/inner", "file", data("i")),
    add("z", "dir"),
    add("z/inner", "file", data("i")),
    add("z", "file", data("file now")),
    add("self", "file", data("s")),
    add("self", "link", link("self")),
  ], { inside: { x: "file second", y: "dir", "y/inner": "file", z: "file file now", self: "file s" } });
  tar("a hard link to a directory", "refused", [add("d", "dir"), add("h", "link", link("d"))], { error: /is a directory/ });
  tar("a file replacing the layer root", "refused", [add(".", "file", data("x"))], { error: /cannot replace the layer root/ });
  tar("a symlink replacing the layer root", "refused", [add("..", "sym", link("/"))], { error: /cannot replace the layer root/ });
  tar("a name longer than PATH_MAX", "refused", [add("a".repeat(5000), "file", data("x"))]);
  tar("a component longer than NAME_MAX", "refused", [add("b".repeat(300), "file", data("x"))]);
  tar("a path nested deeper than PATH_MAX", "refused", [add(`${Array.from({ length: 25 }, () => "c".repeat(200)).join("/")}/f`, "file", data("x"))]);
  tar("a symlink target longer than PATH_MAX", "refused", [add("ls", "sym", link("t".repeat(5000)))]);
  tar("a hard link target longer than PATH_MAX", "refused", [add("lh", "link", link("u".repeat(5000)))]);
  tar("an unsupported entry type", "refused", [add("v", "file", { ...data("x"), type: 'b"V"' })], { error: /unsupported entry type/ });

  const valid = join(dir, "valid.tar");
  specs.push([valid, [add("etc", "dir"), add("etc/hosts", "file", data("127.0.0.1 localhost\n".repeat(300))), add("etc/second", "file", data("second file\n"))].join("\n")]);
  pythonTars(specs);

  const bytes = new Uint8Array(readFileSync(valid));
  const raw = (name: string, expect: Expectation, content: Uint8Array, error?: RegExp) => {
    const file = join(dir, `${slug(name)}.bin`);
    writeFileSync(file, content);
    cases.push({ name, file, expect, ...(error ? { error } : {}) });
  };
  // Offsets in valid.tar (PAX format, tarfile writes no extended headers for these plain names):
  // header "etc" at 0, header "etc/hosts" at 512, its 6000-byte body at 1024, header "etc/second" after it.
  raw("an archive truncated inside a file's content", "refused", bytes.slice(0, 1024 + 3000), /unexpected EOF/);
  raw("an archive truncated inside a header", "refused", bytes.slice(0, 512 + 100), /unexpected EOF/);
  const badChecksum = bytes.slice();
  badChecksum[512 + 3] = badChecksum[512 + 3]! ^ 0x20;
  raw("a header with a bad checksum", "refused", badChecksum, /invalid tar header|checksum/);
  raw("a size field claiming more than is there", "refused", withSize(bytes.slice(0, 1024 + 6144), 512, 10 * 1024 * 1024), /unexpected EOF/);
  const huge = bytes.slice(0, 1024 + 6144);
  huge.set([0x80, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0], 512 + 124);
  raw("a base-256 size field of 2^60 bytes", "refused", withChecksum(huge, 512));
  // A file whose size is -512 in base-256, then a valid archive: a reader that took the size
  // as 0 would accept an archive other readers reject.
  const negative = headerBlock("negative", "0", 0);
  negative.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0x00], 124);
  raw("a negative base-256 size field", "refused", concat([withChecksum(negative, 0), bytes]), /bad size field/);
  raw("random bytes", "refused", new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)));
  const gz = new Uint8Array(gzipSync(bytes));
  const gzCorrupt = gz.slice();
  for (let i = 40; i < 60; i++) gzCorrupt[i] = gzCorrupt[i]! ^ 0x5a;
  raw("a corrupt gzip stream", "refused", gzCorrupt, /gzip/);
  raw("a truncated gzip stream", "refused", gz.slice(0, Math.floor(gz.length / 2)));
  const zst = new Uint8Array(Bun.zstdCompressSync(bytes));
  const zstCorrupt = zst.slice();
  for (let i = 20; i < 40; i++) zstCorrupt[i] = zstCorrupt[i]! ^ 0x5a;
  raw("a corrupt zstd stream", "refused", zstCorrupt, /zstd/);
  raw("a truncated zstd stream", "refused", zst.slice(0, Math.floor(zst.length / 2)));
  const xz = new Uint8Array(Bun.spawnSync(["xz", "-c"], { stdin: bytes }).stdout);
  raw("a truncated xz stream", "refused", xz.slice(0, Math.floor(xz.length / 2)), /xz/);
  const paxHuge = paxHeader("path", "99999999999999999999 path=x\n");
  raw("a PAX record with an absurd length", "refused", paxHuge, /invalid tar header|PAX/i);
  const longName = gnuLongNameHeader(2 * 1024 * 1024);
  raw("a GNU long name of 2 MiB", "refused", longName, /larger than 1 MiB/);
  return cases;
}

function slug(name: string): string {
  return name.replace(/[^a-z0-9]+/gi, "-");
}

/** Sets a header's octal size field and fixes its checksum. */
function withSize(tar: Uint8Array, header: number, size: number): Uint8Array {
  const field = `${size.toString(8).padStart(11, "0")}\0`;
  tar.set(new TextEncoder().encode(field), header + 124);
  return withChecksum(tar, header);
}

/** Recomputes the checksum of the header block at offset. */
function withChecksum(tar: Uint8Array, header: number): Uint8Array {
  tar.fill(0x20, header + 148, header + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[header + i]!;
  tar.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, "0")}\0 `), header + 148);
  return tar;
}

/** A ustar header block (name, type, size), checksummed. */
function headerBlock(name: string, type: string, size: number): Uint8Array {
  const block = new Uint8Array(512);
  const text = new TextEncoder();
  block.set(text.encode(name), 0);
  block.set(text.encode("0000644\0"), 100);
  block.set(text.encode("0000000\0"), 108);
  block.set(text.encode("0000000\0"), 116);
  block.set(text.encode(`${size.toString(8).padStart(11, "0")}\0`), 124);
  block.set(text.encode("00000000000\0"), 136);
  block.set(text.encode(type), 156);
  block.set(text.encode("ustar\x0000"), 257);
  return withChecksum(block, 0);
}

function padded(content: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(content.length / 512) * 512);
  out.set(content);
  return out;
}

/** A PAX extended header with one raw record text, followed by a small file and the end blocks. */
function paxHeader(_key: string, record: string): Uint8Array {
  const body = new TextEncoder().encode(record);
  return concat([headerBlock("PaxHeaders/x", "x", body.length), padded(body), headerBlock("x", "0", 0), new Uint8Array(1024)]);
}

/** A GNU long-name header of the given size, then a file, then the end blocks. */
function gnuLongNameHeader(size: number): Uint8Array {
  return concat([headerBlock("././@LongLink", "L", size), padded(new Uint8Array(size).fill(0x61)), headerBlock("x", "0", 0), new Uint8Array(1024)]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
