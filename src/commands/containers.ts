/** Container commands: create-container, container, containers, get-container-dir, get-container-run-dir (docs/cli-contract.md §3.3). */
import { ContainerUnknownError, messageOf } from "../errors.ts";
import type { ContainerRecord } from "../store/records.ts";
import type { CommandDef } from "./command.ts";
import { ID_OPTION, JSON_OPTION, METADATA_FILE_OPTION, METADATA_OPTION, NAME_OPTION, listOption, metadataOption, printJson, stringOption, wantsJson } from "./common.ts";
import { ID_MAP_OPTIONS, idMapsFromOptions } from "./idmap-options.ts";
import { containerJson } from "./render.ts";

export const createContainer: CommandDef = {
  names: ["create-container", "createcontainer"],
  namesIoFailures: true,
  synopsis: "[options [...]] parentImageNameOrID",
  description: "Create a new container from an image",
  minArgs: 1,
  maxArgs: 1,
  options: [
    ID_OPTION,
    NAME_OPTION,
    METADATA_OPTION,
    METADATA_FILE_OPTION,
    { names: ["volatile"], type: "bool", description: "Mount the container's layer with the volatile option (overlay)" },
    JSON_OPTION,
    ...ID_MAP_OPTIONS,
  ],
  async run(ctx) {
    const container = await ctx.store.createContainer(ctx.args[0]!, {
      id: stringOption(ctx, "id"),
      names: listOption(ctx, "name"),
      metadata: await metadataOption(ctx),
      volatile: ctx.options.volatile === true,
      idMaps: await idMapsFromOptions(ctx),
    });
    // containers-storage prints the names without a final newline (docs/cli-contract.md §3.3.1, Q-keep).
    if (wantsJson(ctx)) printJson(ctx, containerJson(container));
    else ctx.stdout(`${container.id}\n${container.names.map((n) => `\t${n}`).join("")}`);
    return 0;
  },
};

export const container: CommandDef = {
  names: ["container"],
  synopsis: "[options [...]] containerNameOrID [...]",
  description: "Examine a container",
  minArgs: 1,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    const found: ContainerRecord[] = [];
    for (const ref of ctx.args) {
      const c = ctx.store.findContainer(ref);
      if (c) found.push(c);
    }
    if (wantsJson(ctx)) printJson(ctx, found.map(containerJson));
    else {
      for (const c of found) {
        const lines = [`ID: ${c.id}`, ...c.names.map((n) => `Name: ${n}`), `Image: ${c.image}`];
        const image = c.image ? ctx.store.findImage(c.image) : undefined;
        for (const n of image?.names ?? []) lines.push(`Image name: ${n}`);
        try {
          lines.push(`Size: ${await ctx.store.containerSize(c)}`);
        } catch (e) {
          lines.push(`Size unknown: ${messageOf(e)}`);
        }
        lines.push(`Layer: ${c.layer}`);
        for (const item of c.bigData) lines.push(`Data: ${item.name}`);
        ctx.stdout(`${lines.join("\n")}\n`);
      }
    }
    return found.length === ctx.args.length ? 0 : 1;
  },
};

export const containers: CommandDef = {
  names: ["containers"],
  synopsis: "[options [...]]",
  description: "List containers",
  minArgs: 0,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    // The text listing is made by the database: decoding every record costs more than the rest of the command.
    if (wantsJson(ctx)) printJson(ctx, ctx.store.containers().map(containerJson));
    else ctx.stdout(ctx.store.containerListing({ name: "\tname: ", data: "\tdata: " }));
    return 0;
  },
};

function containerDirCommand(names: string[], where: "data" | "run", description: string): CommandDef {
  return {
    names,
    synopsis: "[options [...]] containerNameOrID",
    description,
    minArgs: 1,
    maxArgs: Infinity,
    options: [],
    async run(ctx) {
      const c = ctx.store.findContainer(ctx.args[0]!);
      if (!c) throw new ContainerUnknownError();
      ctx.stdout(`${await ctx.store.containerDir(c, where)}\n`);
      return 0;
    },
  };
}

export const getContainerDir = containerDirCommand(["get-container-dir", "getcontainerdir"], "data", "Find the container's associated data directory");
export const getContainerRunDir = containerDirCommand(["get-container-run-dir", "getcontainerrundir"], "run", "Find the container's associated runtime directory");
