/** Existence and deletion: exists, delete, delete-layer, delete-image, delete-container (docs/cli-contract.md §3.5). */
import { sortedRecord } from "../cli/format.ts";
import { messageOf } from "../errors.ts";
import type { Store } from "../store/store.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { JSON_OPTION, QUIET_OPTION, printJson, wantsJson } from "./common.ts";

export const exists: CommandDef = {
  names: ["exists"],
  synopsis: "[options [...]] layerOrImageOrContainerNameOrID [...]",
  description: "Check if a layer, image, or container exists",
  minArgs: 1,
  maxArgs: Infinity,
  options: [
    QUIET_OPTION,
    { names: ["layer", "l"], type: "bool", description: "Only succeed if the match is a layer" },
    { names: ["image", "i"], type: "bool", description: "Only succeed if the match is an image" },
    { names: ["container", "c"], type: "bool", description: "Only succeed if the match is a container" },
    JSON_OPTION,
  ],
  async run(ctx) {
    const results = new Map<string, boolean>();
    let allOk = true;
    for (const ref of ctx.args) {
      const isLayer = ctx.store.findLayer(ref) !== undefined;
      const isImage = ctx.store.findImage(ref) !== undefined;
      const isContainer = ctx.store.findContainer(ref) !== undefined;
      const found = isLayer || isImage || isContainer;
      const ok = found && (ctx.options.layer !== true || isLayer) && (ctx.options.image !== true || isImage) && (ctx.options.container !== true || isContainer);
      if (!ok) allOk = false;
      // The printed value is plain existence, the exit status the restricted check (docs/cli-contract.md §3.5.1, Q-keep).
      results.set(ref, found);
    }
    if (wantsJson(ctx)) printJson(ctx, sortedRecord(results));
    else if (ctx.options.quiet !== true) ctx.stdout([...results].map(([ref, found]) => `${ref}: ${found}\n`).join(""));
    return allOk ? 0 : 1;
  },
};

/** Runs a deletion per reference and reports like containers-storage: errors on stderr, or a JSON map. */
async function deleteEach(ctx: CommandContext, remove: (store: Store, ref: string) => Promise<void>): Promise<number> {
  const errors = new Map<string, string>();
  for (const ref of new Set(ctx.args)) {
    try {
      await remove(ctx.store, ref);
      errors.set(ref, "");
    } catch (e) {
      errors.set(ref, messageOf(e));
    }
  }
  if (wantsJson(ctx)) printJson(ctx, sortedRecord(errors));
  else for (const [ref, error] of errors) if (error) ctx.stderr(`${ref}: ${error}\n`);
  return [...errors.values()].some((e) => e !== "") ? 1 : 0;
}

function deleteCommand(names: string[], description: string, remove: (store: Store, ref: string) => Promise<void>): CommandDef {
  return {
    names,
    synopsis: `[options [...]] ${names[0] === "delete" ? "layerOrImageOrContainerNameOrID" : `${names[0]!.slice(7)}NameOrID`} [...]`,
    description,
    minArgs: 1,
    maxArgs: Infinity,
    options: [JSON_OPTION],
    run: (ctx) => deleteEach(ctx, remove),
  };
}

export const deleteAny = deleteCommand(["delete"], "Delete a layer or image or container, with no safety checks", (s, ref) => s.deleteAny(ref));
export const deleteLayer = deleteCommand(["delete-layer", "deletelayer"], "Delete a layer, with safety checks", (s, ref) => s.deleteLayer(ref));
export const deleteContainer = deleteCommand(["delete-container", "deletecontainer"], "Delete a container, with safety checks", (s, ref) => s.deleteContainer(ref));

export const deleteImage: CommandDef = {
  names: ["delete-image", "deleteimage"],
  synopsis: "[options [...]] imageNameOrID [...]",
  description: "Delete an image, with safety checks",
  minArgs: 1,
  maxArgs: Infinity,
  options: [{ names: ["test", "t"], type: "bool", description: "Only test removal" }, JSON_OPTION],
  async run(ctx) {
    const results = new Map<string, { "deleted-layers"?: string[]; error?: string }>();
    let failed = false;
    for (const ref of new Set(ctx.args)) {
      try {
        const { deletedLayers } = await ctx.store.deleteImage(ref, ctx.options.test === true);
        results.set(ref, deletedLayers.length > 0 ? { "deleted-layers": deletedLayers } : {});
        if (!wantsJson(ctx)) for (const id of deletedLayers) ctx.stderr(`${ref}: ${id}\n`);
      } catch (e) {
        failed = true;
        results.set(ref, { error: messageOf(e) });
        if (!wantsJson(ctx)) ctx.stderr(`${ref}: ${messageOf(e)}\n`);
      }
    }
    if (wantsJson(ctx)) printJson(ctx, sortedRecord(results));
    return failed ? 1 : 0;
  },
};
