/**
 * The processing order of docs/cli-contract.md §1.1 up to running a command: global options, command
 * lookup, command options, argument counts — with 1.43's messages, output streams and exit codes.
 * It never touches the store.
 */
import { ArgumentCountError, GlobalOptionError, UnknownCommandError, type UsageError, exitStatusOf } from "../errors.ts";
import type { CommandEntry, CommandSpec, ParsedOptions } from "./command-spec.ts";
import { FlagError, GLOBAL_OPTIONS, HELP_OPTION, parseFlags } from "./flags.ts";
import { goList } from "./format.ts";
import { COMMAND_GLOBAL_OPTIONS, commandUsage, globalUsage } from "./usage.ts";

export interface DispatchIO {
  stdout(s: string): void;
  stderr(s: string): void;
}

export type Dispatch<C extends CommandSpec = CommandSpec> =
  /** Help was printed (code 0), or the command line failed: `error` says how, `code` is its exit status. */
  | { kind: "exit"; code: number; error?: UsageError }
  | {
      kind: "run";
      command: C;
      invokedAs: string;
      args: string[];
      /** The command's own options. */
      options: ParsedOptions;
      /** Global options: before-command values (after `defaultGlobals`), overridden by after-command values; lists accumulate. */
      globals: ParsedOptions;
      /** Global options given before the command name (§1.4: phase A when none of the store options is here). */
      globalsBeforeCommand: string[];
    };

export interface DispatchHooks {
  /** §1.1 step 3: fills in configured defaults (phase A) given the before-command globals; its result shows in command help. */
  defaultGlobals?: (globals: ParsedOptions, givenBeforeCommand: string[]) => ParsedOptions | Promise<ParsedOptions>;
}

/** What mflag prints while parsing fails: usage for a help request, else the error and a "See '… --help'." hint. */
function reportFlagError(error: FlagError, helpCommand: string, printUsage: () => void, io: DispatchIO): void {
  if (error.inner !== undefined) reportFlagError(error.inner, helpCommand, printUsage, io);
  if (error.kind === "help") printUsage();
  else io.stderr(`${error.message}\nSee '${helpCommand}'.\n`);
}

/** The outcome of a command line that failed; dispatch has already printed what 1.43 prints for it. */
function failed(error: UsageError): { kind: "exit"; code: number; error: UsageError } {
  return { kind: "exit", code: exitStatusOf(error), error };
}

/** Finds a command by primary name or alias (a plain loop: a callback run once per command at every start would be JIT-compiled on a thread). */
export function findCommand<C extends { names: string[] }>(commands: C[], name: string): C | undefined {
  for (const command of commands) if (command.names.includes(name)) return command;
  return undefined;
}

/** Every command's definition, in registry order (for the global usage). */
export function loadAll<C extends CommandSpec>(entries: CommandEntry<C>[]): Promise<C[]> {
  return Promise.all(entries.map((entry) => entry.load()));
}

/** Global options given after the command name override those before it; lists accumulate. */
export function mergeGlobals(before: ParsedOptions, after: ParsedOptions, givenAfter: string[]): ParsedOptions {
  const globals: ParsedOptions = { ...before };
  for (const def of COMMAND_GLOBAL_OPTIONS) {
    const key = def.names[0]!;
    if (!givenAfter.includes(key)) continue;
    const value = after[key];
    const earlier = globals[key];
    globals[key] = def.type === "list" ? [...(Array.isArray(earlier) ? earlier : []), ...(value as string[])] : value;
  }
  return globals;
}

/**
 * Runs steps 1, 2, 4, 5, 6, 7 of §1.1 (and step 3 through `hooks`); prints usage and errors
 * itself. Only the command named is loaded, unless the global usage lists them all.
 */
export async function dispatch<C extends CommandSpec>(
  program: string,
  argv: string[],
  entries: CommandEntry<C>[],
  io: DispatchIO,
  hooks: DispatchHooks = {},
): Promise<Dispatch<C>> {
  const printGlobalUsage = async (allToStdout: boolean, includeHelp = true) => {
    const usage = globalUsage(program, await loadAll(entries), includeHelp);
    io.stdout(usage.commands);
    (allToStdout ? io.stdout : io.stderr)(usage.options);
  };

  if (argv.length === 0) {
    await printGlobalUsage(false, false);
    return failed(new GlobalOptionError("no command given"));
  }

  let global: ReturnType<typeof parseFlags>;
  try {
    global = parseFlags(GLOBAL_OPTIONS, argv, (warning) => io.stderr(`${warning}\n`));
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    // mflag prints the usage for -h, before the error line and the usage again.
    const usage = globalUsage(program, await loadAll(entries));
    reportFlagError(error, `${program} --help`, () => (io.stdout(usage.commands), io.stderr(usage.options)), io);
    io.stdout(`${error.message} while parsing arguments (1)\n`);
    await printGlobalUsage(false);
    return failed(new GlobalOptionError(error.message));
  }
  if (global.options[HELP_OPTION] === true) {
    await printGlobalUsage(true);
    return { kind: "exit", code: 0 };
  }

  const before: ParsedOptions = { ...global.options };
  delete before[HELP_OPTION];
  const globalsBefore = hooks.defaultGlobals ? await hooks.defaultGlobals(before, global.given) : before;

  const invokedAs = global.rest[0];
  if (invokedAs === undefined) {
    await printGlobalUsage(false);
    return failed(new GlobalOptionError("no command given"));
  }
  const entry = findCommand(entries, invokedAs);
  if (entry === undefined) {
    const error = new UnknownCommandError(`${invokedAs}: unrecognized command.`);
    io.stdout(`${error.message}\n`);
    return failed(error);
  }
  const command = await entry.load();

  const printCommandUsage = () => {
    const usage = commandUsage(program, command, invokedAs, globalsBefore);
    io.stdout(usage.head);
    io.stderr(usage.options);
  };

  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags([...command.options, ...COMMAND_GLOBAL_OPTIONS], global.rest.slice(1));
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    reportFlagError(error, `${program} ${invokedAs} --help`, printCommandUsage, io);
    return failed(error);
  }

  const args = parsed.rest;
  const countError =
    args.length < command.minArgs ? `${invokedAs}: more arguments required.` : args.length > command.maxArgs ? `${invokedAs}: too many arguments (${goList(args)}).` : undefined;
  if (countError !== undefined) {
    io.stdout(`${countError}\n`);
    printCommandUsage();
    return failed(new ArgumentCountError(countError));
  }

  const globals = mergeGlobals(globalsBefore, parsed.options, parsed.given);
  const options: ParsedOptions = {};
  for (const def of command.options) options[def.names[0]!] = parsed.options[def.names[0]!];

  return { kind: "run", command, invokedAs, args, options, globals, globalsBeforeCommand: global.given };
}
