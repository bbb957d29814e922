/** layer-parent-owners and container-parent-owners (docs/cli-contract.md §3.1.5, §3.3.6). */
import { goJson, goList } from "../cli/format.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { JSON_OPTION, wantsJson } from "./common.ts";

function ownersCommand(name: string, kind: "layer" | "container"): CommandDef {
  const prefix = kind === "layer" ? "LayerParentOwner" : "ContainerParentOwner";
  return {
    names: [name],
    synopsis: `[options [...]] ${kind}NameOrID [...]`,
    description: `Compute the set of unmapped parent UIDs and GIDs of the ${kind}`,
    minArgs: 1,
    maxArgs: Infinity,
    options: [JSON_OPTION],
    async run(ctx: CommandContext) {
      let failed = false;
      for (const ref of ctx.args) {
        const id = kind === "layer" ? ctx.store.findLayer(ref)?.id : ctx.store.findContainer(ref)?.layer;
        const layer = id === undefined ? undefined : ctx.store.findLayer(id);
        if (!layer) {
          failed = true;
          continue;
        }
        const owners = await ctx.store.parentOwners(layer, prefix);
        const ownerId = kind === "layer" ? layer.id : ctx.store.findContainer(ref)!.id;
        if (wantsJson(ctx)) {
          ctx.stdout(`${goJson({ ID: ownerId, UIDs: owners.uids.length ? owners.uids : null, GIDs: owners.gids.length ? owners.gids : null })}\n`);
          continue;
        }
        const lines = [`ID: ${ownerId}`];
        if (kind === "container" || owners.uids.length) lines.push(`UIDs: ${goList(owners.uids)}`);
        if (kind === "container" || owners.gids.length) lines.push(`GIDs: ${goList(owners.gids)}`);
        ctx.stdout(`${lines.join("\n")}\n`);
      }
      return failed ? 1 : 0;
    },
  };
}

export const layerParentOwners = ownersCommand("layer-parent-owners", "layer");
export const containerParentOwners = ownersCommand("container-parent-owners", "container");
