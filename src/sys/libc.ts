/**
 * The few system calls Bun lacks (mknod, xattrs, nanosecond utimensat, syncfs, flock), called
 * through bun:ffi into libc. libc is opened on first use; strings are encoded into one reused
 * scratch buffer whose address is taken once, so each operation costs one foreign call.
 * Every failure throws SystemError with an errno name as code, e.g. "ENOENT".
 */
import type { dlopen, Pointer } from "bun:ffi";
import { SystemError } from "../errors.ts";
import { nodeFs } from "./node-fs.ts";

/** A path or xattr name: a string, or raw bytes for names that are not valid UTF-8. */
export type CPath = string | Uint8Array;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const EINTR = 4;
const EAGAIN = 11;
const ERANGE = 34;
const ENODATA = 61;
const ENOTSUP = 95;

type Ffi = typeof import("bun:ffi");

/** The libc functions used, typed with bun:ffi's FFIType. */
const symbols = (FFIType: Ffi["FFIType"]) => ({
  __errno_location: { args: [], returns: FFIType.ptr },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  lsetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  lgetxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
  llistxattr: { args: [FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i64_fast },
  lremovexattr: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  utimensat: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  syncfs: { args: [FFIType.i32], returns: FFIType.i32 },
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
}) as const;

interface Libc {
  call: ReturnType<typeof dlopen<ReturnType<typeof symbols>>>["symbols"];
  mknod: (path: Pointer, mode: number, dev: bigint) => number;
  errnoAt: Pointer;
}

let loaded: Libc | undefined;
let ffiModule: Ffi | undefined;

/** bun:ffi, loaded on first use: importing it would cost every command milliseconds at start. */
function ffi(): Ffi {
  ffiModule ??= require("bun:ffi") as Ffi;
  return ffiModule;
}

/** Candidate sonames: glibc first, then musl for this architecture. */
export function libcNames(): string[] {
  const muslArch = process.arch === "arm64" ? "aarch64" : process.arch === "x64" ? "x86_64" : process.arch;
  return ["libc.so.6", `libc.musl-${muslArch}.so.1`, "libc.so"];
}

function openLibc(): Libc {
  const failures: string[] = [];
  for (const soname of libcNames()) {
    let lib;
    try {
      lib = ffi().dlopen(soname, symbols(ffi().FFIType));
    } catch (error) {
      failures.push(`${soname}: ${(error as Error).message}`);
      continue;
    }
    return { call: lib.symbols, mknod: openMknod(soname), errnoAt: lib.symbols.__errno_location() as Pointer };
  }
  throw new SystemError(`cannot load libc for system calls (${failures.join("; ")})`, "ENOSYS");
}

/** glibc before 2.33 exports mknod only as __xmknod(version 0, ...). */
function openMknod(soname: string): Libc["mknod"] {
  try {
    const { FFIType, dlopen } = ffi();
    const { mknod } = dlopen(soname, { mknod: { args: [FFIType.ptr, FFIType.u32, FFIType.u64], returns: FFIType.i32 } }).symbols;
    return (path, mode, dev) => mknod(path, mode, dev);
  } catch {
    const { FFIType, dlopen, ptr } = ffi();
    const devCell = new BigUint64Array(1);
    const devAt = ptr(devCell);
    const { __xmknod } = dlopen(soname, {
      __xmknod: { args: [FFIType.i32, FFIType.ptr, FFIType.u32, FFIType.ptr], returns: FFIType.i32 },
    }).symbols;
    return (path, mode, dev) => {
      devCell[0] = dev;
      return __xmknod(0, path, mode, devAt);
    };
  }
}

function libc(): Libc {
  if (loaded === undefined) {
    loaded = openLibc();
    takeScratchPointers();
  }
  return loaded;
}

/** Scratch space for NUL-terminated strings (path, then name) and for xattr values/lists. */
const VALUE_SCRATCH_BYTES = 64 * 1024; // XATTR_SIZE_MAX and XATTR_LIST_MAX on Linux
let stringScratch = Buffer.alloc(16 * 1024);
const valueScratch = Buffer.alloc(VALUE_SCRATCH_BYTES);
const timesScratch = new BigInt64Array(4);
let stringScratchAt = 0 as Pointer;
let valueScratchAt = 0 as Pointer;
let timesScratchAt = 0 as Pointer;

function takeScratchPointers(): void {
  stringScratchAt = ffi().ptr(stringScratch);
  valueScratchAt = ffi().ptr(valueScratch);
  timesScratchAt = ffi().ptr(timesScratch);
}

function byteBound(text: CPath): number {
  return typeof text === "string" ? text.length * 3 + 1 : text.length + 1;
}

function put(text: CPath, offset: number): number {
  if (typeof text === "string") {
    if (text.includes("\0")) throw new SystemError(`invalid name ${JSON.stringify(text)}: contains a NUL byte`, "EINVAL");
    const end = offset + stringScratch.write(text, offset, "utf8");
    stringScratch[end] = 0;
    return end + 1;
  }
  if (text.includes(0)) throw new SystemError(`invalid name ${show(text)}: contains a NUL byte`, "EINVAL");
  stringScratch.set(text, offset);
  stringScratch[offset + text.length] = 0;
  return offset + text.length + 1;
}

/** Encodes one or two strings NUL-terminated into the scratch buffer and returns their addresses. */
function encode(first: CPath, second?: CPath): [Pointer, Pointer] {
  const needed = byteBound(first) + (second === undefined ? 0 : byteBound(second));
  if (needed > stringScratch.length) {
    stringScratch = Buffer.alloc(Math.max(needed, stringScratch.length * 2));
    stringScratchAt = ffi().ptr(stringScratch);
  }
  const secondOffset = put(first, 0);
  if (second !== undefined) put(second, secondOffset);
  return [stringScratchAt, (stringScratchAt + secondOffset) as Pointer];
}

function show(text: CPath): string {
  return typeof text === "string" ? text : Buffer.from(text).toString();
}

function lastErrno(): number {
  return ffi().read.i32(libc().errnoAt);
}

/** The errno's symbolic name, e.g. 2 -> "ENOENT". */
export function errnoName(errno: number): string {
  // node:os only when a call has failed.
  const { constants } = import.meta.require("node:os") as typeof import("node:os");
  for (const [name, value] of Object.entries(constants.errno)) if (value === errno) return name;
  return `errno ${errno}`;
}

/** The errno's description in lower case, as Go prints it, e.g. "operation not supported". */
function errnoMessage(errno: number): string {
  const text = String(libc().call.strerror(errno) ?? `errno ${errno}`);
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function fail(what: string, errno = lastErrno()): never {
  throw new SystemError(`${what}: ${errnoMessage(errno)}`, errnoName(errno));
}

function majorMinorToDev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** Splits a device number (stat's rdev) into [major, minor], glibc encoding. */
export function devMajorMinor(rdev: number | bigint): [number, number] {
  const dev = BigInt(rdev);
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return [Number(major & 0xffffffffn), Number(minor & 0xffffffffn)];
}

/** Creates a device node or FIFO; mode is the permission bits (the umask still applies, as for mknod(2)). */
export function mknod(path: CPath, type: "char" | "block" | "fifo", mode: number, major: number, minor: number): void {
  const lib = libc();
  const [pathAt] = encode(path);
  const typeBits = type === "char" ? S_IFCHR : type === "block" ? S_IFBLK : S_IFIFO;
  const dev = type === "fifo" ? 0n : majorMinorToDev(major, minor);
  if (lib.mknod(pathAt, typeBits | (mode & 0o7777), dev) !== 0) fail(`mknod ${show(path)}`);
}

/** Sets an extended attribute on the path itself (lsetxattr: symlinks are not followed). */
export function setXattr(path: CPath, name: CPath, value: Uint8Array): void {
  const lib = libc();
  const [pathAt, nameAt] = encode(path, name);
  let valueAt = valueScratchAt;
  if (value.length <= VALUE_SCRATCH_BYTES) valueScratch.set(value);
  else valueAt = ffi().ptr(value);
  if (lib.call.lsetxattr(pathAt, nameAt, valueAt, value.length, 0) !== 0) fail(`lsetxattr ${show(path)} ${show(name)}`);
}

/** Reads an extended attribute (lgetxattr); null when the attribute is absent or xattrs are unsupported. */
export function getXattr(path: CPath, name: CPath): Uint8Array | null {
  const lib = libc();
  const [pathAt, nameAt] = encode(path, name);
  const size = lib.call.lgetxattr(pathAt, nameAt, valueScratchAt, VALUE_SCRATCH_BYTES) as number;
  if (size >= 0) return new Uint8Array(valueScratch.subarray(0, size));
  const errno = lastErrno();
  if (errno === ENODATA || errno === ENOTSUP) return null;
  if (errno === ERANGE) return getLargeXattr(path, name);
  fail(`lgetxattr ${show(path)} ${show(name)}`, errno);
}

/** For a value larger than the scratch buffer (not possible on Linux today): ask the size, then read. */
function getLargeXattr(path: CPath, name: CPath): Uint8Array | null {
  const lib = libc();
  for (;;) {
    const [pathAt, nameAt] = encode(path, name);
    const needed = lib.call.lgetxattr(pathAt, nameAt, valueScratchAt, 0) as number;
    if (needed < 0) fail(`lgetxattr ${show(path)} ${show(name)}`);
    const value = new Uint8Array(Math.max(needed, 1));
    const size = lib.call.lgetxattr(pathAt, nameAt, ffi().ptr(value), value.length) as number;
    if (size >= 0) return value.subarray(0, size);
    if (lastErrno() !== ERANGE) fail(`lgetxattr ${show(path)} ${show(name)}`);
  }
}

/** Names of the path's extended attributes (llistxattr); empty when xattrs are unsupported. */
export function listXattrs(path: CPath): string[] {
  const lib = libc();
  const [pathAt] = encode(path);
  const size = lib.call.llistxattr(pathAt, valueScratchAt, VALUE_SCRATCH_BYTES) as number;
  if (size === 0) return [];
  if (size < 0) {
    const errno = lastErrno();
    if (errno === ENOTSUP) return [];
    fail(`llistxattr ${show(path)}`, errno);
  }
  const names = valueScratch.toString("utf8", 0, size).split("\0");
  names.pop();
  return names;
}

/** Removes an extended attribute (lremovexattr); an absent one fails with ENODATA. */
export function removeXattr(path: CPath, name: CPath): void {
  const lib = libc();
  const [pathAt, nameAt] = encode(path, name);
  if (lib.call.lremovexattr(pathAt, nameAt) !== 0) fail(`lremovexattr ${show(path)} ${show(name)}`);
}

const NS_PER_SECOND = 1_000_000_000n;

function putTimespec(index: number, ns: bigint): void {
  let seconds = ns / NS_PER_SECOND;
  let rest = ns % NS_PER_SECOND;
  if (rest < 0n) {
    rest += NS_PER_SECOND;
    seconds -= 1n;
  }
  timesScratch[index] = seconds;
  timesScratch[index + 1] = rest;
}

/** Sets access and modification times to the nanosecond, on the path itself (symlinks not followed). */
export function setTimes(path: CPath, atimeNs: bigint, mtimeNs: bigint): void {
  const lib = libc();
  const [pathAt] = encode(path);
  putTimespec(0, atimeNs);
  putTimespec(2, mtimeNs);
  if (lib.call.utimensat(AT_FDCWD, pathAt, timesScratchAt, AT_SYMLINK_NOFOLLOW) !== 0) fail(`utimensat ${show(path)}`);
}

/** Flushes the whole filesystem holding `path` to disk (syncfs). */
export function syncFilesystem(path: string): void {
  // node:fs loaded here, not by every importer of this module (a vfs mount imports it, never syncs).
  const { closeSync } = nodeFs();
  const fd = openForSync(path);
  try {
    syncFilesystemOf(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** A descriptor of `path` for syncfs; a path that cannot be opened throws the SystemError syncfs would. */
export function openForSync(path: string): number {
  try {
    return nodeFs().openSync(path, "r");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SystemError(`syncfs ${path}: ${(error as Error).message}`, code);
  }
}

/**
 * syncfs of an open descriptor of `path`. It also reports a write-back error of the filesystem
 * that happened since the descriptor was opened, even one another descriptor's syncfs reported.
 */
export function syncFilesystemOf(fd: number, path: string): void {
  if (libc().call.syncfs(fd) !== 0) fail(`syncfs ${path}`);
}

/** Takes a flock on fd; with wait=false returns false instead of waiting when another holder has it. */
export function lockFile(fd: number, exclusive: boolean, wait: boolean): boolean {
  const lib = libc();
  const operation = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  for (;;) {
    if (lib.call.flock(fd, operation) === 0) return true;
    const errno = lastErrno();
    if (errno === EINTR) continue;
    if (errno === EAGAIN && !wait) return false;
    fail(`flock fd ${fd}`, errno);
  }
}

/** Releases a flock taken with lockFile. */
export function unlockFile(fd: number): void {
  const lib = libc();
  if (lib.call.flock(fd, LOCK_UN) !== 0) fail(`flock fd ${fd} unlock`);
}
