/**
 * Option parser compatible with the Docker "mflag" package used by containers-storage 1.43
 * (docs/cli-contract.md §1.2): `--x v`, `--x=v`, `-x v`, grouped short flags, parsing stops at the first
 * non-option word.
 */
import type { OptionDef, ParsedOptions } from "./command-spec.ts";
import { UsageError } from "../errors.ts";
import { goQuote } from "./format.ts";

/** The global options (§1.3). `help` is accepted before the command name only. */
export const GLOBAL_OPTIONS: OptionDef[] = [
  { names: ["graph", "g"], type: "string", description: "Root of the storage tree", valueHint: "directory" },
  { names: ["run", "R"], type: "string", description: "Root of the runtime state tree", valueHint: "directory" },
  { names: ["storage-driver", "s"], type: "string", description: "Storage driver to use ($STORAGE_DRIVER)", valueHint: ["overlay", "vfs"] },
  { names: ["storage-opt"], type: "list", description: "Set storage driver options ($STORAGE_OPTS)" },
  { names: ["debug", "D"], type: "bool", description: "Print debugging information" },
  { names: ["help"], type: "bool", description: "Print usage" },
];

/** The name of the global help option, which is also accepted spelled `-help` (deprecated). */
export const HELP_OPTION = "help";

export const DEPRECATED_HELP_WARNING = "Warning: '-help' is deprecated, it will be replaced by '--help' soon. See usage.";

export type FlagErrorKind = "undefined" | "needs-argument" | "bad-bool" | "bad-syntax" | "help";

/** Bad command-line options; the message is mflag's. Kind "help" means -h/-help/--help was given where help is not an option. */
export class FlagError extends UsageError {
  override name = "FlagError";
  constructor(
    readonly kind: FlagErrorKind,
    /** The option as typed, without any `=value`. */
    readonly flag: string,
    message: string,
    /** For a failed letter group (`-ji`, `-jh`): the letter's own failure, which mflag reports first. */
    readonly inner?: FlagError,
  ) {
    super(message);
  }
}

const TRUE_WORDS = ["1", "t", "T", "true", "TRUE", "True"];
const FALSE_WORDS = ["0", "f", "F", "false", "FALSE", "False"];

function parseBool(value: string, typed: string): boolean {
  if (TRUE_WORDS.includes(value)) return true;
  if (FALSE_WORDS.includes(value)) return false;
  const quoted = goQuote(value);
  throw new FlagError(
    "bad-bool",
    typed,
    `invalid boolean value ${quoted} for  ${typed}: strconv.ParseBool: parsing ${quoted}: invalid syntax`,
  );
}

/** Strips one pair of surrounding double or single quotes. */
function trimQuotes(value: string): string {
  if (value.length < 2) return value;
  const first = value[0];
  if ((first === '"' || first === "'") && value[value.length - 1] === first) return value.slice(1, -1);
  return value;
}

/** The ParsedOptions a command sees when no option is given: false, the default or undefined, []. */
export function initialOptions(defs: OptionDef[]): ParsedOptions {
  const options: ParsedOptions = {};
  for (const def of defs) {
    const key = def.names[0]!;
    if (def.type === "bool") options[key] = def.defaultValue === "true";
    else if (def.type === "list") options[key] = [];
    else options[key] = def.defaultValue;
  }
  return options;
}

interface ParseState {
  options: ParsedOptions;
  /** The first names of the options given, each once. */
  given: string[];
  /** Remaining words, consumed from `next`. */
  words: string[];
  next: number;
}

function applyOption(state: ParseState, def: OptionDef, typed: string, value: string | undefined): void {
  const key = def.names[0]!;
  if (def.type === "bool") {
    state.options[key] = value === undefined ? true : parseBool(value, typed);
  } else {
    if (value === undefined) {
      if (state.next >= state.words.length) throw new FlagError("needs-argument", typed, `flag needs an argument: ${typed}`);
      value = state.words[state.next++]!;
    }
    if (def.type === "list") (state.options[key] as string[]).push(value);
    else state.options[key] = value;
  }
  if (!state.given.includes(key)) state.given.push(key);
}

/** The option spelled `--name` (long) or `-n` (not long); the first one defined wins. */
export function findOption(defs: OptionDef[], name: string, long: boolean): OptionDef | undefined {
  return long === name.length > 1 ? defs.find((def) => def.names.includes(name)) : undefined;
}

function isHelpRequest(name: string): boolean {
  return name === "-help" || name === "help" || name === "h";
}

/**
 * Parses options up to the first non-option word. Returns parsed values, the remaining words, and which option
 * names (first names) were given explicitly (needed for "phase A/B" config loading, §1.4). Throws FlagError on bad input.
 * When `defs` holds the global `help` option, `-help` sets it too and `onWarning` receives mflag's deprecation warning.
 */
export function parseFlags(
  defs: OptionDef[],
  argv: string[],
  onWarning?: (message: string) => void,
): { options: ParsedOptions; rest: string[]; given: string[] } {
  const helpDef = findOption(defs, HELP_OPTION, true);
  const state: ParseState = { options: initialOptions(defs), given: [], words: argv, next: 0 };

  while (state.next < argv.length) {
    const word = argv[state.next]!;
    if (word.length < 2 || word[0] !== "-") break;
    if (word === "--") {
      state.next++;
      break;
    }
    state.next++;
    let name = word.slice(1);
    if (name[0] === "=") throw new FlagError("bad-syntax", word, `bad flag syntax: ${word}`);
    let value: string | undefined;
    const equals = name.indexOf("=");
    if (equals !== -1) {
      value = trimQuotes(name.slice(equals + 1));
      name = name.slice(0, equals);
    }
    const typed = `-${name}`;

    let def: OptionDef | undefined;
    if (name[0] === "-") def = findOption(defs, name.slice(1), true);
    else if (name.length === 1) def = findOption(defs, name, false);
    else if (name === HELP_OPTION) def = helpDef;

    if (def !== undefined) {
      applyOption(state, def, typed, value);
      if (def === helpDef && name === HELP_OPTION) onWarning?.(DEPRECATED_HELP_WARNING);
      continue;
    }
    if (isHelpRequest(name)) throw new FlagError("help", typed, "flag: help requested");
    if (name[0] === "-" || name.length === 1) {
      throw new FlagError("undefined", typed, `flag provided but not defined: ${typed}`);
    }
    parseShortGroup(state, defs, name);
  }
  return { options: state.options, rest: argv.slice(state.next), given: state.given };
}

/** `-jt`: each letter is an option; a string letter takes the next word; any failure names the whole group (any `=value` is ignored, as in mflag). */
function parseShortGroup(state: ParseState, defs: OptionDef[], group: string): void {
  const groupError = (inner?: FlagError) =>
    new FlagError("undefined", `-${group}`, `flag provided but not defined: -${group}`, inner);
  for (const letter of group) {
    if (letter === "-") continue; // mflag reads this as a "--" word that ends nothing inside a group
    const def = findOption(defs, letter, false);
    if (def === undefined) {
      throw groupError(isHelpRequest(letter) ? new FlagError("help", "-h", "flag: help requested") : undefined);
    }
    try {
      applyOption(state, def, `-${letter}`, undefined);
    } catch (error) {
      if (error instanceof FlagError) throw groupError(error);
      throw error;
    }
  }
}
