/**
 * How a command is declared. Each file in src/commands exports one or more CommandDefs; the
 * registry (src/commands/index.ts) lists them in the order of the global usage.
 */
import type { Store } from "../store/store.ts";

export type OptionType = "bool" | "string" | "list";

export interface OptionDef {
  /** Spellings without dashes, long ones first: ["json", "j"]. One-letter names are short options. */
  names: string[];
  type: OptionType;
  description: string;
  /** Shown in help as =default for string options. */
  defaultValue?: string;
}

/** Parsed options: bools are booleans, strings are strings (absent: undefined), lists are arrays. */
export type ParsedOptions = Record<string, boolean | string | string[] | undefined>;

export interface CommandContext {
  /** The command word as typed (alias included). */
  invokedAs: string;
  args: string[];
  /** Options keyed by their first (long) name. */
  options: ParsedOptions;
  /** Opens the store lazily; every command opens it (spec/cli.md §1.1 step 8). */
  store: Store;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Raw stdout for binary output (text written before it is flushed first). */
  stdoutBytes: (bytes: Uint8Array) => Promise<void>;
  /** Flushes buffered text, before a command streams to stdout by other means. */
  flushStdout: () => Promise<void>;
}

export interface CommandDef {
  /** Primary name first, then aliases. */
  names: string[];
  /** Argument synopsis for "Usage: oci-storage NAME <synopsis>". */
  synopsis: string;
  description: string;
  minArgs: number;
  /** Infinity when extra arguments are accepted and ignored. */
  maxArgs: number;
  options: OptionDef[];
  /** False for commands that must see the store as crashed writers left it (check); others open it after recovery. */
  recoversStore?: boolean;
  /** Runs the command and returns the process exit status. */
  run(ctx: CommandContext): Promise<number>;
}
