/** Options and helpers several commands share. */
import { accessSync, closeSync, constants, fstatSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { goJson } from "../cli/format.ts";
import type { ByteSource } from "../archive/types.ts";
import { ioError } from "../errors.ts";
import type { CommandContext, OptionDef } from "./command.ts";

export const JSON_OPTION: OptionDef = { names: ["json", "j"], type: "bool", description: "Prefer JSON output" };
export const QUIET_OPTION: OptionDef = { names: ["quiet", "q"], type: "bool", description: "Print only what was asked for" };
export const NAME_OPTION: OptionDef = { names: ["name", "n"], type: "list", description: "Name to give the object (repeatable)" };
export const ID_OPTION: OptionDef = { names: ["id", "i"], type: "string", description: "ID to use instead of a random one" };
export const METADATA_OPTION: OptionDef = { names: ["metadata", "m"], type: "string", description: "Metadata to set" };
export const METADATA_FILE_OPTION: OptionDef = { names: ["metadata-file", "f"], type: "string", description: "Read metadata from a file (wins over --metadata)" };

export function wantsJson(ctx: CommandContext): boolean {
  return ctx.options.json === true;
}

export function stringOption(ctx: CommandContext, name: string): string | undefined {
  const value = ctx.options[name];
  return typeof value === "string" ? value : undefined;
}

export function listOption(ctx: CommandContext, name: string): string[] {
  const value = ctx.options[name];
  return Array.isArray(value) ? value : [];
}

/** Prints a value as one line of Go-style JSON. */
export function printJson(ctx: CommandContext, value: unknown): void {
  ctx.stdout(`${goJson(value)}\n`);
}

/** Reads a whole file given by the user, with a one-line error naming it. */
export function readUserFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw ioError("open", path, e);
  }
}

/** Metadata from --metadata-file (wins) or --metadata; undefined when neither is given. */
export function metadataOption(ctx: CommandContext): string | undefined {
  const file = stringOption(ctx, "metadata-file");
  if (file !== undefined) return new TextDecoder().decode(readUserFile(file));
  return stringOption(ctx, "metadata");
}

/** Bytes read from a regular file at a time. */
const FILE_CHUNK_SIZE = 1 << 20;

/**
 * A stream of the file named by --file, else of standard input; a missing file fails before any work starts.
 * A regular file (also as standard input) is read into two buffers used in turn, so a chunk stays valid
 * until two more have been read: consumers must use or copy a chunk before asking for the one after next.
 */
export function inputStream(ctx: CommandContext, fileOption = "file"): ByteSource {
  const file = stringOption(ctx, fileOption);
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

/** All bytes of the file named by --file, else of standard input. */
export async function inputBytes(ctx: CommandContext, fileOption = "file"): Promise<Uint8Array> {
  const file = stringOption(ctx, fileOption);
  if (file !== undefined) return readUserFile(file);
  return new Uint8Array(await Bun.stdin.arrayBuffer());
}
