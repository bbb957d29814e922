/** Names and metadata: get-names, add-names, set-names, metadata, set-metadata (docs/cli-contract.md §3.4). */
import { InvalidArgumentError } from "../errors.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { JSON_OPTION, METADATA_FILE_OPTION, METADATA_OPTION, NAME_OPTION, QUIET_OPTION, listOption, metadataOption, printJson, wantsJson } from "./common.ts";
import { sortedRecord } from "../cli/format.ts";

export const getNames: CommandDef = {
  names: ["get-names", "getnames"],
  synopsis: "[options [...]] layerOrImageOrContainerNameOrID",
  description: "Get names of a layer/image/container",
  minArgs: 1,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    const names = ctx.store.namesOf(ctx.args[0]!);
    if (wantsJson(ctx)) printJson(ctx, names);
    else ctx.stdout(names.map((n) => `${n}\n`).join(""));
    return 0;
  },
};

function namesCommand(names: string[], mode: "add" | "set", description: string): CommandDef {
  return {
    names,
    synopsis: "[options [...]] imageOrContainerNameOrID",
    description,
    minArgs: 1,
    maxArgs: Infinity,
    options: [NAME_OPTION, JSON_OPTION],
    async run(ctx: CommandContext) {
      const result = ctx.store.changeNames(ctx.args[0]!, listOption(ctx, "name"), mode);
      if (wantsJson(ctx)) printJson(ctx, result.length === 0 ? null : result);
      return 0;
    },
  };
}

export const addNames = namesCommand(["add-names", "addnames"], "add", "Add layer, image, or container name or names");
export const setNames = namesCommand(["set-names", "setnames"], "set", "Set layer, image, or container name or names");

/** Stored metadata with one trailing newline removed, as it is displayed. */
function displayed(metadata: string): string {
  return metadata.endsWith("\n") ? metadata.slice(0, -1) : metadata;
}

export const metadata: CommandDef = {
  names: ["metadata"],
  synopsis: "[options [...]] layerOrImageOrContainerNameOrID [...]",
  description: "Retrieve layer, image, or container metadata",
  minArgs: 1,
  maxArgs: Infinity,
  options: [QUIET_OPTION, JSON_OPTION],
  async run(ctx) {
    let missing = false;
    const found: Array<[string, string]> = [];
    const lines: string[] = [];
    for (const ref of ctx.args) {
      const value = ctx.store.metadataOf(ref);
      if (value === undefined) missing = true;
      else found.push([ref, displayed(value)]);
      const shown = value === undefined ? "" : displayed(value);
      lines.push(ctx.options.quiet === true ? `${shown}\n` : `${ref}: ${shown}\n`);
    }
    if (wantsJson(ctx)) printJson(ctx, sortedRecord(found));
    else ctx.stdout(lines.join(""));
    return missing ? 1 : 0;
  },
};

export const setMetadata: CommandDef = {
  names: ["set-metadata", "setmetadata"],
  synopsis: "[options [...]] layerOrImageOrContainerNameOrID",
  description: "Set layer, image, or container metadata",
  minArgs: 1,
  maxArgs: 1,
  options: [METADATA_OPTION, METADATA_FILE_OPTION],
  async run(ctx) {
    const value = await metadataOption(ctx);
    const fromFile = ctx.options["metadata-file"] !== undefined;
    if (value === undefined || (value === "" && !fromFile)) throw new InvalidArgumentError("no new metadata provided");
    ctx.store.setMetadata(ctx.args[0]!, value);
    return 0;
  },
};
