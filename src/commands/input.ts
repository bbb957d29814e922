/** Layer input for applydiff and import-layer: a file or standard input as a stream of chunks. */
import { accessSync, closeSync, constants, fstatSync, openSync, readSync, statSync } from "node:fs";
import type { ByteSource } from "../archive/types.ts";
import { ioError } from "../errors.ts";

/** Bytes read from a regular file at a time. */
const FILE_CHUNK_SIZE = 1 << 20;

/**
 * A stream of the file, else (undefined) of standard input; a missing file fails before any work starts.
 * A regular file (also as standard input) is read into two buffers used in turn, so a chunk stays valid
 * until two more have been read: consumers must use or copy a chunk before asking for the one after next.
 */
export function openInput(file: string | undefined): ByteSource {
  if (file === undefined) {
    if (!isRegularFile(0)) return Bun.stdin.stream() as unknown as ByteSource;
    return { [Symbol.asyncIterator]: () => readRegularFile(0, "/dev/stdin") };
  }
  try {
    accessSync(file, constants.R_OK);
  } catch (e) {
    throw ioError("open", file, e);
  }
  return { [Symbol.asyncIterator]: () => readFileChunks(file) };
}

/** How many bytes openInput(file) will give, when it reads a regular file; undefined otherwise. */
export function inputSize(file: string | undefined): number | undefined {
  try {
    const stat = file === undefined ? fstatSync(0) : statSync(file);
    return stat.isFile() ? stat.size : undefined;
  } catch {
    return undefined;
  }
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

/** A regular file through readRegularFile; anything else (a FIFO, a device) through Bun.file().stream(). */
async function* readFileChunks(path: string): AsyncGenerator<Uint8Array> {
  let regular: boolean;
  try {
    regular = statSync(path).isFile();
  } catch (e) {
    throw ioError("open", path, e);
  }
  if (!regular) {
    yield* Bun.file(path).stream() as unknown as AsyncIterable<Uint8Array>;
    return;
  }
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw ioError("open", path, e);
  }
  try {
    yield* readRegularFile(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** Reads an open regular file from its current offset with readSync into two alternating buffers (no allocation per chunk). */
async function* readRegularFile(fd: number, path: string): AsyncGenerator<Uint8Array> {
  const buffers = [new Uint8Array(FILE_CHUNK_SIZE), new Uint8Array(FILE_CHUNK_SIZE)];
  for (let turn = 0; ; turn ^= 1) {
    const buffer = buffers[turn]!;
    let length: number;
    try {
      length = readSync(fd, buffer, 0, buffer.length, null);
    } catch (e) {
      throw ioError("read", path, e);
    }
    if (length === 0) return;
    yield buffer.subarray(0, length);
  }
}
