/**
 * Shell completion, decided once for every shell: given the words typed after the program name
 * (the last one being the word under the cursor), what may come next — a command, an option, an
 * option's value, or an argument, read from the same command specs and synopses as `--help`.
 * The shell scripts (scripts.ts) only pass the words in and show the answer.
 */
import { type ReferenceKind, argumentAt, positionalArguments } from "../arguments.ts";
import type { CommandEntry, CommandSpec, OptionDef, ParsedOptions } from "../command-spec.ts";
import { findCommand, loadAll } from "../dispatch.ts";
import { GLOBAL_OPTIONS, findOption, initialOptions } from "../flags.ts";
import { COMMAND_GLOBAL_OPTIONS } from "../usage.ts";

export interface Candidate {
  value: string;
  description?: string;
}

export interface CompletionReply {
  /** "words": offer the candidates; "files"/"directories": the shell completes paths for the current word after `prefix`. */
  kind: "words" | "files" | "directories";
  /** What precedes the path or value in the current word (`--file=`, `oci:`); "" when nothing does. */
  prefix: string;
  candidates: Candidate[];
  /** The candidates are beginnings (`oci:`), so the shell should not add a space after one. */
  noSpace: boolean;
}

/** The global options typed before and after the command name, parsed as the command line would be. */
export interface TypedGlobals {
  before: ParsedOptions;
  givenBefore: string[];
  after: ParsedOptions;
  givenAfter: string[];
}

/** A stored object a reference argument can name. */
export interface NamedObject {
  kind: ReferenceKind;
  id: string;
  names: string[];
}

/** The stored objects of some kinds in the store the typed global options select. */
export type ObjectLister = (kinds: ReferenceKind[], globals: TypedGlobals) => Promise<NamedObject[]>;

const NOTHING: CompletionReply = { kind: "words", prefix: "", candidates: [], noSpace: false };

function words(candidates: Candidate[], current: string, noSpace = false): CompletionReply {
  return { kind: "words", prefix: "", candidates: candidates.filter((c) => c.value.startsWith(current)), noSpace };
}

/** A word as the shell would pass it to the program: surrounding quotes removed, a leading ~ expanded. */
export function shellWord(word: string): string {
  if (word.length >= 2 && word[0] === "'" && word.endsWith("'")) return word.slice(1, -1);
  if (word.length >= 2 && word[0] === '"' && word.endsWith('"')) return word.slice(1, -1).replace(/\\(["\\$`])/g, "$1");
  const unescaped = word.replace(/\\(.)/g, "$1");
  const home = process.env.HOME;
  if (home && (unescaped === "~" || unescaped.startsWith("~/"))) return home + unescaped.slice(1);
  return unescaped;
}

interface OptionScan {
  /** Index of the first word that is not an option (or not yet typed). */
  next: number;
  /** An option whose value is the word under the cursor. */
  pending?: OptionDef;
  /** `--` ended the options. */
  ended: boolean;
}

function record(options: ParsedOptions, given: string[], def: OptionDef, value: string | undefined): void {
  const key = def.names[0]!;
  if (def.type === "bool") options[key] = value === undefined || value === "true" || value === "1";
  else if (def.type === "list") (options[key] as string[]).push(value ?? "");
  else options[key] = value;
  if (!given.includes(key)) given.push(key);
}

/** Reads options from words[start] on as mflag does (up to the first non-option word), telling each to `found`. */
function scanOptions(defs: OptionDef[], typed: string[], start: number, found: (def: OptionDef, value: string | undefined) => void): OptionScan {
  let i = start;
  while (i < typed.length) {
    const word = typed[i]!;
    if (word === "--") return { next: i + 1, ended: true };
    if (word.length < 2 || word[0] !== "-") break;
    i++;
    const body = word.startsWith("--") ? word.slice(2) : word.slice(1);
    const equals = body.indexOf("=");
    const name = equals === -1 ? body : body.slice(0, equals);
    const inline = equals === -1 ? undefined : shellWord(body.slice(equals + 1));
    // A one-dash word of several letters is a group of short options; the last may take the next word.
    const letters = word.startsWith("--") ? [name] : [...name];
    for (const [index, letter] of letters.entries()) {
      const def = findOption(defs, letter, word.startsWith("--"));
      if (def === undefined) continue;
      const last = index === letters.length - 1;
      if (def.type === "bool" || (last && inline !== undefined)) {
        found(def, last ? inline : undefined);
      } else if (i < typed.length) {
        found(def, shellWord(typed[i++]!));
      } else {
        return { next: i, pending: def, ended: false };
      }
    }
  }
  return { next: i, ended: false };
}

function optionSpellings(defs: OptionDef[]): Candidate[] {
  return defs
    .filter((def) => def.description !== "")
    .flatMap((def) => def.names.filter((name) => name.length > 1).map((name) => ({ value: `--${name}`, description: def.description })));
}

/** The value of an option, typed after `prefix` (`--file=` when given in the same word). */
function valueReply(def: OptionDef, current: string, prefix: string): CompletionReply {
  const hint = def.valueHint;
  if (hint === "file") return { kind: "files", prefix, candidates: [], noSpace: false };
  if (hint === "directory") return { kind: "directories", prefix, candidates: [], noSpace: false };
  if (hint === undefined) return NOTHING;
  return words(hint.map((value) => ({ value: `${prefix}${value}` })), `${prefix}${current}`);
}

/** Options, or the value of one typed as `--name=`. */
function optionReply(defs: OptionDef[], current: string): CompletionReply {
  const equals = current.indexOf("=");
  if (current.startsWith("--") && equals !== -1) {
    const def = findOption(defs, current.slice(2, equals), true);
    return def === undefined || def.type === "bool" ? NOTHING : valueReply(def, current.slice(equals + 1), current.slice(0, equals + 1));
  }
  return words(optionSpellings(defs), current);
}

/** Command names (with their descriptions, so every command's definition is loaded). */
async function commandNames(entries: CommandEntry<CommandSpec>[], current: string): Promise<CompletionReply> {
  const visible = (await loadAll(entries)).filter((command) => command.hidden !== true);
  return words(visible.map((command) => ({ value: command.names[0]!, description: command.description })), current);
}

function objectCandidates(objects: NamedObject[], current: string): Candidate[] {
  const candidates: Candidate[] = [];
  for (const object of objects) {
    for (const name of object.names) candidates.push({ value: name, description: `${object.kind} ${object.id.slice(0, 12)}` });
    // IDs only once something is typed: 64 hex digits per object would bury the names.
    if (current !== "") candidates.push({ value: object.id, description: [object.kind, ...object.names].join(" ") });
  }
  return candidates;
}

/** What may be typed at the cursor, for the words typed after the program name (the last is the word being typed). */
export async function completeCommandLine(entries: CommandEntry<CommandSpec>[], typedWords: string[], listObjects: ObjectLister): Promise<CompletionReply> {
  const current = typedWords[typedWords.length - 1] ?? "";
  const typed = typedWords.slice(0, -1);
  const globals: TypedGlobals = {
    before: initialOptions(GLOBAL_OPTIONS),
    givenBefore: [],
    after: initialOptions(COMMAND_GLOBAL_OPTIONS),
    givenAfter: [],
  };
  const beforeCommand = scanOptions(GLOBAL_OPTIONS, typed, 0, (def, value) => record(globals.before, globals.givenBefore, def, value));
  if (beforeCommand.pending) return valueReply(beforeCommand.pending, current, "");
  if (beforeCommand.next >= typed.length) {
    return current.startsWith("-") ? optionReply(GLOBAL_OPTIONS, current) : commandNames(entries, current);
  }
  // Only the command typed is loaded, as when it runs.
  const command = await findCommand(entries, typed[beforeCommand.next]!)?.load();
  if (command === undefined || command.hidden === true) return NOTHING;

  const defs = [...command.options, ...COMMAND_GLOBAL_OPTIONS];
  const afterCommand = scanOptions(defs, typed, beforeCommand.next + 1, (def, value) => {
    if (COMMAND_GLOBAL_OPTIONS.includes(def)) record(globals.after, globals.givenAfter, def, value);
  });
  if (afterCommand.pending) return valueReply(afterCommand.pending, current, "");
  const position = typed.length - afterCommand.next;
  if (position === 0 && !afterCommand.ended && current.startsWith("-")) return optionReply(defs, current);

  const arg = argumentAt(positionalArguments(command), position);
  if (arg === undefined) return NOTHING;
  if (arg.references.length > 0) return words(objectCandidates(await listObjects(arg.references, globals), current), current);
  if (arg.word === "command") return commandNames(entries, current);
  if (arg.choices) return words(arg.choices.map((value) => ({ value })), current);
  // Transports (`oci:PATH`, `docker://HOST/NAME`): first the prefix, then a path where the synopsis names one.
  const transports = [...arg.word.matchAll(/(?:^| )([a-z-]+:(?:\/\/)?)(PATH|FILE)?/g)].map((match) => ({ prefix: match[1]!, path: match[2] !== undefined }));
  if (transports.length > 0) {
    const typedTransport = transports.find((transport) => current.startsWith(transport.prefix));
    if (typedTransport === undefined) return words(transports.map((transport) => ({ value: transport.prefix })), current, true);
    return typedTransport.path ? { kind: "files", prefix: typedTransport.prefix, candidates: [], noSpace: false } : NOTHING;
  }
  if (arg.word.endsWith("/path")) return { kind: "files", prefix: "", candidates: [], noSpace: false };
  return NOTHING;
}

/**
 * The reply as `__complete` prints it, for the shell scripts: three lines (the kind, the prefix,
 * `nospace` or nothing), then one candidate per line, `VALUE<TAB>DESCRIPTION`. Values that would
 * break a line are left out.
 */
export function formatReply(reply: CompletionReply): string {
  const lines = [reply.kind, reply.prefix, reply.noSpace ? "nospace" : ""];
  for (const candidate of reply.candidates) {
    if (/[\t\n]/.test(candidate.value)) continue;
    lines.push(candidate.description ? `${candidate.value}\t${candidate.description.replace(/[\t\n]/g, " ")}` : candidate.value);
  }
  return `${lines.join("\n")}\n`;
}
