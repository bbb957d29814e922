/** Options and helpers several commands share. */
import { goJson } from "../cli/format.ts";
import type { ByteSource } from "../archive/types.ts";
import { ioError } from "../errors.ts";
import { Progress } from "../util/progress.ts";
import type { CommandContext, OptionDef } from "./command.ts";

export const JSON_OPTION: OptionDef = { names: ["json", "j"], type: "bool", description: "Prefer JSON output" };
export const QUIET_OPTION: OptionDef = { names: ["quiet", "q"], type: "bool", description: "Print only what was asked for" };
/** --quiet of the commands that show progress on a terminal (pull, push, applydiff, import-layer, diff). */
export const NO_PROGRESS_OPTION: OptionDef = { names: ["quiet", "q"], type: "bool", description: "Do not show progress (shown only when stderr is a terminal)" };
export const NAME_OPTION: OptionDef = { names: ["name", "n"], type: "list", description: "Name to give the object (repeatable)" };
export const ID_OPTION: OptionDef = { names: ["id", "i"], type: "string", description: "ID to use instead of a random one" };
export const METADATA_OPTION: OptionDef = { names: ["metadata", "m"], type: "string", description: "Metadata to set" };
export const METADATA_FILE_OPTION: OptionDef = { names: ["metadata-file", "f"], type: "string", description: "Read metadata from a file (wins over --metadata)", valueHint: "file" };

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
export async function readUserFile(path: string): Promise<Uint8Array> {
  try {
    return await Bun.file(path).bytes();
  } catch (e) {
    throw ioError("open", path, e);
  }
}

/** Metadata from --metadata-file (wins) or --metadata; undefined when neither is given. */
export async function metadataOption(ctx: CommandContext): Promise<string | undefined> {
  const file = stringOption(ctx, "metadata-file");
  if (file !== undefined) return new TextDecoder().decode(await readUserFile(file));
  return stringOption(ctx, "metadata");
}

/**
 * A stream of the file named by --file, else of standard input (input.ts, with node:fs, is
 * loaded only by the commands that read a stream); a missing file fails before any work starts.
 */
export async function inputStream(ctx: CommandContext, fileOption = "file"): Promise<ByteSource> {
  return (await import("./input.ts")).openInput(stringOption(ctx, fileOption));
}

/** The progress display of a command with NO_PROGRESS_OPTION: on a terminal and without --quiet, else none. */
export function progressDisplay(ctx: CommandContext): Progress | undefined {
  return Progress.forStderr(ctx.options.quiet === true);
}

/** inputStream, counted on a progress line ("LABEL  read / size  rate") when the command shows progress. */
export async function trackedInput(ctx: CommandContext, progress: Progress | undefined, label: string, fileOption = "file"): Promise<ByteSource> {
  const source = await inputStream(ctx, fileOption);
  if (!progress) return source;
  const { inputSize } = await import("./input.ts");
  return progress.item(label, inputSize(stringOption(ctx, fileOption))).track(source);
}

/** All bytes of the file named by --file, else of standard input. */
export async function inputBytes(ctx: CommandContext, fileOption = "file"): Promise<Uint8Array> {
  const file = stringOption(ctx, fileOption);
  if (file !== undefined) return readUserFile(file);
  return new Uint8Array(await Bun.stdin.arrayBuffer());
}
