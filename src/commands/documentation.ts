/**
 * Commands about the command line itself: `man` (manual pages), `completion` (shell scripts) and
 * the hidden `__complete` those scripts call. None opens the store; like every command, their
 * module loads only when one of them runs, and what they need (page and script makers, the
 * completion engine, the store peek) loads only then too.
 */
import type { ReferenceKind } from "../cli/arguments.ts";
import type { NamedObject, TypedGlobals } from "../cli/completion/engine.ts";
import type { CommandEntry, CommandSpec } from "../cli/command-spec.ts";
import { findCommand, loadAll, mergeGlobals } from "../cli/dispatch.ts";
import { InvalidArgumentError, UnknownCommandError } from "../errors.ts";
import { BUILD } from "./build-info.ts";
import type { CommandDef } from "./command.ts";
import { configuredGlobals, selectedStore } from "./store-selection.ts";

/** The name pages and completion scripts are written for: the binary as installed. */
const PROGRAM = "oci-storage";

/** The stored objects of some kinds, in the store the typed global options select, read without changing it. */
async function storedObjects(kinds: ReferenceKind[], typed: TypedGlobals): Promise<NamedObject[]> {
  const { globals, configError } = await configuredGlobals(typed.before, typed.givenBefore);
  if (configError) throw configError;
  const { peekReferences } = await import("../store/peek.ts");
  return peekReferences(await selectedStore(mergeGlobals(globals, typed.after, typed.givenAfter)), kinds);
}

/** `man [command]`: oci-storage(1), or oci-storage-COMMAND(1) for a command of the registry `entries`. */
export function manCommand(entries: CommandEntry<CommandSpec>[]): CommandDef {
  return {
    names: ["man"],
    synopsis: "[options [...]] [command]",
    description: "Print the manual page of oci-storage or of a command, in roff",
    minArgs: 0,
    maxArgs: 1,
    options: [],
    needsStore: false,
    async run(ctx) {
      const { commandManPage, mainManPage } = await import("../cli/man-page.ts");
      const name = ctx.args[0];
      if (name === undefined) {
        ctx.stdout(mainManPage(PROGRAM, await loadAll(entries), BUILD.version));
        return 0;
      }
      const command = await findCommand(entries, name)?.load();
      if (command === undefined || command.hidden === true) throw new UnknownCommandError(`${name}: unrecognized command.`);
      ctx.stdout(commandManPage(PROGRAM, command, BUILD.version));
      return 0;
    },
  };
}

/** `completion bash|zsh|fish`: the script that makes the shell ask `__complete`. */
export const completion: CommandDef = {
  names: ["completion"],
  synopsis: "[options [...]] bash|zsh|fish",
  description: "Print the shell completion script for bash, zsh or fish",
  minArgs: 1,
  maxArgs: 1,
  options: [],
  needsStore: false,
  async run(ctx) {
    const { COMPLETION_SCRIPTS } = await import("../cli/completion/scripts.ts");
    const shell = ctx.args[0]!;
    const script = Object.hasOwn(COMPLETION_SCRIPTS, shell) ? COMPLETION_SCRIPTS[shell] : undefined;
    if (script === undefined) throw new InvalidArgumentError(`unsupported shell "${shell}": expected bash, zsh or fish`);
    ctx.stdout(script);
    return 0;
  },
};

/** `__complete -- WORD...`: what may follow the words, for the completion scripts (src/cli/completion/engine.ts). */
export function completeCommand(entries: CommandEntry<CommandSpec>[]): CommandDef {
  return {
    names: ["__complete"],
    synopsis: "-- [word [...]]",
    description: "Print what may follow the words (for the completion scripts)",
    hidden: true,
    minArgs: 0,
    maxArgs: Infinity,
    options: [],
    needsStore: false,
    async run(ctx) {
      // A completion that fails shows nothing: no message may land in the middle of the user's command line.
      try {
        const { completeCommandLine, formatReply } = await import("../cli/completion/engine.ts");
        ctx.stdout(formatReply(await completeCommandLine(entries, ctx.args, storedObjects)));
        return 0;
      } catch {
        return 1;
      }
    },
  };
}
