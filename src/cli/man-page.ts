/**
 * Manual pages in roff (man(7) macros), made from the same command specs as `--help`: the
 * main page oci-storage(1) and one page per command, oci-storage-COMMAND(1).
 */
import { type PositionalArgument, positionalArguments } from "./arguments.ts";
import type { CommandSpec, OptionDef } from "./command-spec.ts";
import { GLOBAL_OPTIONS } from "./flags.ts";
import { COMMAND_GLOBAL_OPTIONS } from "./usage.ts";

/** Text made safe for roff: backslashes and dashes escaped, a leading control character neutralised. */
function roff(text: string): string {
  const escaped = text.replace(/\\/g, "\\e").replace(/-/g, "\\-");
  return /^[.']/.test(escaped) ? `\\&${escaped}` : escaped;
}

function bold(text: string): string {
  return `\\fB${roff(text)}\\fR`;
}

function italic(text: string): string {
  return `\\fI${roff(text)}\\fR`;
}

/** The placeholder of an option's value: FILE, DIR, a|b, or the option's name in capitals. */
function valuePlaceholder(def: OptionDef): string {
  const hint = def.valueHint;
  if (hint === "file") return "FILE";
  if (hint === "directory") return "DIR";
  if (hint !== undefined) return hint.join("|");
  return def.names[0]!.toUpperCase();
}

function optionSpelling(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** A .TP entry per option, sorted by name as `--help` sorts them. */
function optionList(defs: OptionDef[]): string[] {
  const lines: string[] = [];
  for (const def of [...defs].sort((a, b) => (a.names[0]! < b.names[0]! ? -1 : 1))) {
    if (def.description === "") continue;
    const value = def.type === "bool" ? undefined : italic(valuePlaceholder(def));
    const spell = (name: string) => bold(optionSpelling(name)) + (value === undefined ? "" : name.length === 1 ? ` ${value}` : `=${value}`);
    lines.push(".TP", def.names.map(spell).join(", "));
    let text = def.description;
    if (def.defaultValue !== undefined && def.defaultValue !== "") text += ` (default: ${def.defaultValue})`;
    if (def.type === "list" && !/repeat/i.test(text)) text += " (may be given more than once)";
    lines.push(roff(text));
  }
  return lines;
}

function header(title: string, version: string): string[] {
  return [`.TH ${roff(title.toUpperCase())} 1 "" "${roff(`oci-storage ${version}`)}" "oci-storage Manual"`, ".nh", ".ad l"];
}

/** What the synopsis words that name no stored object stand for. */
const PLAIN_WORDS: ReadonlyArray<[RegExp, string]> = [
  [/^dataName$/, "the name of a data item"],
  [/^DIGEST$/, "an image digest, algorithm:hex"],
  [/^\[source[A-Za-z]*:\]\/path$/, "a path on the host, or inside the layer or container named before the colon"],
  [/^\[destination[A-Za-z]*:\]\/path$/, "the destination path on the host, or inside the layer or container named before the colon"],
  [/^(docker|oci|oci-archive|docker-archive|dir):/, "an image location in containers-transports(5) syntax"],
  [/^REGISTRY/, "a registry host, with a repository to name one repository's credentials only"],
  [/^command$/, "the name of a command"],
];

/** What a positional argument takes, in words; undefined for a word nobody has described yet. */
export function argumentDescription(arg: PositionalArgument): string | undefined {
  const what =
    arg.references.length > 0
      ? `the name, ID or unique ID prefix of a ${arg.references.join(" or ")}`
      : arg.choices
        ? `one of ${arg.choices.join(", ")}`
        : PLAIN_WORDS.find(([pattern]) => pattern.test(arg.word))?.[1];
  if (what === undefined) return undefined;
  const notes = [arg.optional ? "optional" : "", arg.repeats ? "may be repeated" : ""].filter((note) => note !== "");
  return `${what}${notes.length > 0 ? ` (${notes.join(", ")})` : ""}`;
}

/** oci-storage-COMMAND(1) for one command. */
export function commandManPage(program: string, spec: CommandSpec, version: string): string {
  const name = spec.names[0]!;
  const lines = [
    ...header(`${program}-${name}`, version),
    ".SH NAME",
    `${roff(`${program}-${name}`)} \\- ${roff(spec.description)}`,
    ".SH SYNOPSIS",
    `${bold(program)} [${italic("global options")}] ${bold(name)} ${roff(spec.synopsis)}`,
    ".SH DESCRIPTION",
    `${roff(spec.description)}.`,
  ];
  if (spec.names.length > 1) lines.push(".PP", `Also available as ${spec.names.slice(1).map(bold).join(", ")}.`);
  const args = positionalArguments(spec);
  if (args.length > 0) {
    lines.push(".SH ARGUMENTS");
    for (const arg of args) lines.push(".TP", italic(arg.word), `${roff(argumentDescription(arg) ?? arg.word)}.`);
  }
  if (spec.options.length > 0) lines.push(".SH OPTIONS", ...optionList(spec.options));
  lines.push(
    ".SH GLOBAL OPTIONS",
    `These may also come before the command name; see ${bold(program)}(1).`,
    ...optionList(COMMAND_GLOBAL_OPTIONS),
    ".SH EXIT STATUS",
    "0 on success, 125 when an option cannot be parsed (and for",
    `${bold("--help")}), 1 for every other failure.`,
    ".SH SEE ALSO",
    `${bold(program)}(1)`,
  );
  return `${lines.join("\n")}\n`;
}

/** oci-storage(1): the global options, every command, the environment and files. */
export function mainManPage(program: string, commands: CommandSpec[], version: string): string {
  const listed = commands.filter((command) => command.hidden !== true);
  const lines = [
    ...header(program, version),
    ".SH NAME",
    `${roff(program)} \\- manage a container layer store: layers, images and containers`,
    ".SH SYNOPSIS",
    `${bold(program)} [${italic("global options")}] ${italic("command")} [${italic("options")}] [${italic("arguments")}]`,
    ".SH DESCRIPTION",
    `${bold(program)} manages a store of ${bold("layers")} (copy\\-on\\-write file system trees with parents),`,
    `${bold("images")} (a top layer with metadata and named data items) and ${bold("containers")}`,
    "(a writable layer on an image). Its command line follows containers\\-storage 1.43.",
    "Each command has its own page, listed below.",
    ".SH GLOBAL OPTIONS",
    ...optionList(GLOBAL_OPTIONS),
    ".SH COMMANDS",
    ...listed.flatMap((command) => [".TP", `${bold(`${program}-${command.names[0]}`)}(1)`, `${roff(command.description)}.`]),
    ".SH ENVIRONMENT",
    ".TP",
    bold("OCI_STORAGE_CONF"),
    "The configuration file to read instead of the default ones.",
    ".TP",
    bold("STORAGE_DRIVER"),
    `The storage driver, as ${bold("--storage-driver")}.`,
    ".TP",
    bold("STORAGE_OPTS"),
    `Comma\\-separated storage options, as ${bold("--storage-opt")}.`,
    ".PP",
    "The configuration file and these variables are ignored when a store option",
    `(${bold("--graph")}, ${bold("--run")}, ${bold("--storage-driver")}, ${bold("--storage-opt")}) comes before the command name.`,
    ".SH FILES",
    ".TP",
    `${italic("$XDG_CONFIG_HOME/oci-storage/storage.conf")}, ${italic("/etc/oci-storage/storage.conf")}`,
    "The configuration, in the TOML layout of containers\\-storage's storage.conf.",
    ".TP",
    `${italic("/var/lib/oci-storage")}, ${italic("/run/oci-storage")}`,
    "The default graph root and run root for root; other users get",
    `${italic("$XDG_DATA_HOME/oci-storage")} and ${italic("$XDG_RUNTIME_DIR/oci-storage")}.`,
    ".SH EXIT STATUS",
    "0 on success, 125 when a command's option cannot be parsed, 1 for every other failure.",
    ".SH NOTES",
    `${bold(program)} is a compiled Bun program: it needs ${italic("/proc")} mounted. Run without it`,
    `(a plain ${bold("chroot")}) it aborts with \\(lqBun has crashed\\(rq before any command runs.`,
    ".SH SEE ALSO",
    listed.map((command) => `${bold(`${program}-${command.names[0]}`)}(1)`).join(",\n"),
  ];
  return `${lines.join("\n")}\n`;
}
