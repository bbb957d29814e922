/**
 * What the command line machinery needs to know about a command: its names, synopsis, options
 * and argument counts. src/commands/command.ts extends it with what running a command takes, so
 * that the parser, dispatcher and help texts here never depend on commands or the Store.
 */

export type OptionType = "bool" | "string" | "list";

/** What a string or list option's value names: a file, a directory, or one of a few words (for completion and manual pages). */
export type OptionValueHint = "file" | "directory" | readonly string[];

export interface OptionDef {
  /** Spellings without dashes, long ones first: ["json", "j"]. One-letter names are short options. */
  names: string[];
  type: OptionType;
  description: string;
  /** Shown in help as =default for string options; "true" makes a bool option default to true. */
  defaultValue?: string;
  valueHint?: OptionValueHint;
}

/** Parsed options: bools are booleans, strings are strings (absent: undefined), lists are arrays. */
export type ParsedOptions = Record<string, boolean | string | string[] | undefined>;

/** A command as the dispatcher and the help texts see it. */
export interface CommandSpec {
  /** Primary name first, then aliases. */
  names: string[];
  /** Argument synopsis for "Usage: oci-storage NAME <synopsis>". */
  synopsis: string;
  description: string;
  minArgs: number;
  /** Infinity when extra arguments are accepted and ignored. */
  maxArgs: number;
  options: OptionDef[];
  /** An internal command (`__complete`): it runs, but usage, manual pages and completion leave it out. */
  hidden?: boolean;
}

/**
 * A command as the registry lists it: its names, and how to load its definition. Only the
 * command that runs is loaded (its module and what that imports); the global usage loads all.
 */
export interface CommandEntry<C extends CommandSpec = CommandSpec> {
  /** Primary name first, then aliases: the same as the loaded definition's names. */
  names: string[];
  load(): Promise<C>;
}
