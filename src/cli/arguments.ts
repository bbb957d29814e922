/**
 * A command's positional arguments, read from its synopsis (the text `--help` prints), so that
 * completion and manual pages describe the same arguments as the usage line: a word such as
 * `layerNameOrID` or `parentImageNameOrID` names what it refers to, `[word]` is optional,
 * `[...]` repeats the word before it, and `a | b` are alternatives for one argument (optional when
 * one alternative is an option).
 */
import type { CommandSpec } from "./command-spec.ts";

/** The kinds of stored objects an argument can refer to by name or ID. */
export type ReferenceKind = "layer" | "image" | "container";

export interface PositionalArgument {
  /** The word as the synopsis writes it, brackets removed (alternatives joined by " | "). */
  word: string;
  optional: boolean;
  /** Followed by `[...]`: more arguments of the same kind may follow. */
  repeats: boolean;
  /** The kinds of objects it names (empty: not a reference, such as a path or a data item name). */
  references: ReferenceKind[];
  /** The words it may be, when the synopsis lists them as `a|b|c`. */
  choices?: string[];
}

const OPTIONS_WORD = "[options [...]]";
const REFERENCE_WORD = /^([A-Za-z]*)NameOrID$/;

/** The kinds a `…NameOrID` word names: `layerOrImageOrContainer` → all three, `parentLayer` → layer. */
function referenceKinds(word: string): ReferenceKind[] {
  const match = REFERENCE_WORD.exec(word);
  if (!match) return [];
  const parts = match[1]!.split(/(?=[A-Z])/).map((part) => part.toLowerCase());
  return (["layer", "image", "container"] as const).filter((kind) => parts.includes(kind));
}

/** The positional arguments of a command, in order. */
export function positionalArguments(spec: CommandSpec): PositionalArgument[] {
  const text = spec.synopsis.startsWith(OPTIONS_WORD) ? spec.synopsis.slice(OPTIONS_WORD.length) : spec.synopsis;
  const words = text.split(" ").filter((word) => word !== "");
  const args: PositionalArgument[] = [];
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === "[...]") {
      if (args.length > 0) args[args.length - 1]!.repeats = true;
      continue;
    }
    if (word === "|" && args.length > 0 && i + 1 < words.length) {
      const previous = args[args.length - 1]!;
      const alternative = words[++i]!;
      previous.word += ` | ${alternative}`;
      // `NAME | --all`: an option in place of the argument makes the argument optional.
      if (alternative.startsWith("-")) previous.optional = true;
      continue;
    }
    const optional = word.startsWith("[") && word.endsWith("]") && !word.slice(1, -1).includes("]");
    const bare = optional ? word.slice(1, -1) : word;
    const arg: PositionalArgument = { word: bare, optional, repeats: false, references: referenceKinds(bare) };
    if (/^[a-z0-9-]+(\|[a-z0-9-]+)+$/.test(bare)) arg.choices = bare.split("|");
    args.push(arg);
  }
  return args;
}

/** The argument at a 0-based position, the repeated last one past the end, or undefined when none is taken there. */
export function argumentAt(args: PositionalArgument[], position: number): PositionalArgument | undefined {
  if (position < args.length) return args[position];
  const last = args[args.length - 1];
  return last?.repeats ? last : undefined;
}
