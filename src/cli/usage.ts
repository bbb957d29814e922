/**
 * Help texts in the formats of containers-storage 1.43 (docs/cli-contract.md §1.5): the global usage with
 * its command list, a command's usage, and mflag's option list (tab-aligned, sorted by name).
 */
import type { CommandSpec, OptionDef, ParsedOptions } from "./command-spec.ts";
import { GLOBAL_OPTIONS, HELP_OPTION } from "./flags.ts";
import { compareBytes } from "../util/byte-order.ts";
import { goList } from "./format.ts";

/** Global options a command accepts again after its name (all but --help). */
export const COMMAND_GLOBAL_OPTIONS: OptionDef[] = GLOBAL_OPTIONS.filter((def) => def.names[0] !== HELP_OPTION);

/**
 * "Usage: ..." + "Commands:" block; the option list separately (it goes to stderr or stdout by case).
 * 1.43 lists --help only once it has started parsing options, i.e. not when run without arguments.
 */
export function globalUsage(
  program: string,
  commands: CommandSpec[],
  includeHelp = true,
): { commands: string; options: string } {
  const lines = commands.filter((command) => command.hidden !== true).map((command) => `  ${padRight(command.names[0]!, 30)}${command.description}\n`);
  return {
    commands: `Usage: ${program} command [options [...]]\n\nCommands:\n\n${lines.join("")}\nOptions:\n`,
    options: formatOptionList(includeHelp ? GLOBAL_OPTIONS : COMMAND_GLOBAL_OPTIONS),
  };
}

/** A command's usage head (stdout) and option list (stderr); the global options show their current values. */
export function commandUsage(
  program: string,
  cmd: CommandSpec,
  invokedAs: string,
  globals: ParsedOptions,
): { head: string; options: string } {
  return {
    head: `Usage: ${program} ${invokedAs} ${cmd.synopsis}\n\n${cmd.description}\n\nOptions:\n`,
    options: formatOptionList([...COMMAND_GLOBAL_OPTIONS, ...cmd.options], globals),
  };
}

/** Go's isZeroValue in mflag: such values are not shown as `=value`. */
function isZeroText(text: string): boolean {
  return text === "" || text === "false" || text === "0";
}

/** The `=value` text mflag shows: current value if given in `values`, else the option's default. */
function shownValue(def: OptionDef, values: ParsedOptions | undefined): string {
  const value = values?.[def.names[0]!];
  let text: string;
  if (def.type === "list") text = goList(Array.isArray(value) ? value : []);
  else if (def.type === "bool") text = String(value === true || (value === undefined && def.defaultValue === "true"));
  else text = typeof value === "string" ? value : (def.defaultValue ?? "");
  if (isZeroText(text)) return "";
  // mflag abbreviates the home directory to "~" (a plain string prefix test, unless HOME is "/").
  const home = process.env.HOME ?? "";
  if (home !== "" && home !== "/" && text.startsWith(home)) text = `~${text.slice(home.length)}`;
  return text;
}

function spelling(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/**
 * mflag's PrintDefaults: a blank line, then per option (sorted by first name) "  --debug, -D" and the description,
 * aligned like Go's tabwriter(minwidth 20, padding 3).
 */
export function formatOptionList(defs: OptionDef[], values?: ParsedOptions): string {
  const rows: Array<[string, string]> = [];
  const sorted = [...defs].sort((a, b) => compareBytes(a.names[0]!, b.names[0]!));
  for (const def of sorted) {
    if (def.description.length === 0) continue;
    const value = shownValue(def, values);
    const cell = `  ${def.names.map(spelling).join(", ")}${value === "" ? "" : `=${value}`}`;
    def.description.split("\n").forEach((line, index) => rows.push([index === 0 ? cell : "", line]));
  }
  const width = rows.reduce((max, [cell]) => Math.max(max, runeCount(cell) + 3), 20);
  return `\n${rows.map(([cell, line]) => `${padRight(cell, width)} ${line}\n`).join("")}`;
}

function runeCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function padRight(text: string, width: number): string {
  const length = runeCount(text);
  return length >= width ? text : text + " ".repeat(width - length);
}
