/**
 * How a command is declared. Each file in src/commands exports one or more CommandDefs; the
 * registry (src/commands/index.ts) lists them by name in the order of the global usage and
 * loads a command's file only when it runs.
 */
import type { CommandSpec, ParsedOptions } from "../cli/command-spec.ts";
import type { Store } from "../store/store.ts";

export type { OptionDef, OptionType, ParsedOptions } from "../cli/command-spec.ts";

export interface CommandContext {
  /** The command word as typed (alias included). */
  invokedAs: string;
  args: string[];
  /** Options keyed by their first (long) name. */
  options: ParsedOptions;
  /** Opens the store lazily; every command opens it (docs/cli-contract.md §1.1 step 8). */
  store: Store;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Raw stdout for binary output (text written before it is flushed first). */
  stdoutBytes: (bytes: Uint8Array) => Promise<void>;
  /** Flushes buffered text, before a command streams to stdout by other means. */
  flushStdout: () => Promise<void>;
  /** Writes one --debug line to stderr (nothing without --debug). */
  debug: (message: string) => void;
}

export interface CommandDef extends CommandSpec {
  /** False for commands that must see the store as crashed writers left it (check); others open it after recovery. */
  recoversStore?: boolean;
  /** False for commands that never touch the store (login, logout, man, completion): it is not opened for them. */
  needsStore?: boolean;
  /**
   * True for commands that write layer content or data items: when the file system fails a
   * write (a full disk, a read-only file system, EIO), the command's name starts the message,
   * as in "applydiff: extracting "usr/lib/x": no space left on device".
   */
  namesIoFailures?: boolean;
  /** Runs the command and returns the process exit status. */
  run(ctx: CommandContext): Promise<number>;
}
