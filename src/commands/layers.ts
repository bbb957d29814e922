/** Layer commands: create-layer, import-layer, layer, layers (docs/cli-contract.md §3.1). */
import type { ContainerRecord, ImageSummary, LayerRecord } from "../store/records.ts";
import type { Store } from "../store/store.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { ID_OPTION, JSON_OPTION, NAME_OPTION, NO_PROGRESS_OPTION, listOption, printJson, progressDisplay, stringOption, trackedInput, wantsJson } from "./common.ts";
import { ID_MAP_OPTIONS, idMapsFromOptions } from "./idmap-options.ts";
import { layerJson } from "./render.ts";

const LAYER_CREATE_OPTIONS = [
  ID_OPTION,
  NAME_OPTION,
  { names: ["label", "l"], type: "string" as const, description: "SELinux mount label for the layer" },
  { names: ["readonly", "r"], type: "bool" as const, description: "Create the layer read-only" },
  JSON_OPTION,
  ...ID_MAP_OPTIONS,
];

function printCreated(ctx: CommandContext, layer: LayerRecord): void {
  if (wantsJson(ctx)) return printJson(ctx, layerJson(layer));
  ctx.stdout(`${layer.id}\n${layer.names.map((n) => `\t${n}\n`).join("")}`);
}

async function createOptions(ctx: CommandContext) {
  return {
    id: stringOption(ctx, "id"),
    names: listOption(ctx, "name"),
    parent: ctx.args[0],
    mountLabel: stringOption(ctx, "label"),
    readOnly: ctx.options.readonly === true,
    idMaps: await idMapsFromOptions(ctx),
  };
}

export const createLayer: CommandDef = {
  names: ["create-layer", "createlayer"],
  namesIoFailures: true,
  synopsis: "[options [...]] [parentLayerNameOrID]",
  description: "Create a new layer",
  minArgs: 0,
  maxArgs: 1,
  options: LAYER_CREATE_OPTIONS,
  async run(ctx) {
    printCreated(ctx, await ctx.store.createLayer(await createOptions(ctx)));
    return 0;
  },
};

export const importLayer: CommandDef = {
  names: ["import-layer", "importlayer"],
  namesIoFailures: true,
  synopsis: "[options [...]] [parentLayerNameOrID]",
  description: "Import a new layer",
  minArgs: 0,
  maxArgs: 1,
  options: [...LAYER_CREATE_OPTIONS, { names: ["file", "f"], type: "string", description: "Read the layer tar from a file instead of standard input", valueHint: "file" }, NO_PROGRESS_OPTION],
  async run(ctx) {
    const progress = progressDisplay(ctx);
    let layer: LayerRecord;
    try {
      const source = await trackedInput(ctx, progress, `Importing ${stringOption(ctx, "file") ?? "standard input"}`);
      layer = await ctx.store.importLayer(await createOptions(ctx), source);
    } finally {
      progress?.end();
    }
    printCreated(ctx, layer);
    return 0;
  },
};

export const layer: CommandDef = {
  names: ["layer"],
  synopsis: "[options [...]] layerNameOrID [...]",
  description: "Examine a layer",
  minArgs: 1,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    const found: LayerRecord[] = [];
    for (const ref of ctx.args) {
      const l = ctx.store.findLayer(ref);
      if (l) found.push(l);
    }
    if (wantsJson(ctx)) printJson(ctx, found.map(layerJson));
    else {
      for (const l of found) {
        const lines = [`ID: ${l.id}`];
        for (const m of l.uidMap) lines.push(`UID mapping: (container=${m.containerId}, host=${m.hostId}, size=${m.size})`);
        for (const m of l.gidMap) lines.push(`GID mapping: (container=${m.containerId}, host=${m.hostId}, size=${m.size})`);
        if (l.parent) lines.push(`Parent: ${l.parent}`);
        for (const n of l.names) lines.push(`Name: ${n}`);
        if (l.fromReadOnlyStore) lines.push("Read Only: true");
        ctx.stdout(`${lines.join("\n")}\n`);
      }
    }
    return found.length === ctx.args.length ? 0 : 1;
  },
};

/** Which images and containers use each layer, for the listings. */
function layerUsers(store: Store): { images: Map<string, ImageSummary[]>; containers: Map<string, ContainerRecord> } {
  const images = new Map<string, ImageSummary[]>();
  for (const image of store.imageSummaries()) {
    for (const id of new Set([image.topLayer, ...image.mappedLayers])) {
      if (!id) continue;
      const list = images.get(id);
      if (list) list.push(image);
      else images.set(id, [image]);
    }
  }
  const containers = new Map(store.containers().map((c) => [c.layer, c]));
  return { images, containers };
}

export const layers: CommandDef = {
  names: ["layers"],
  synopsis: "[options [...]]",
  description: "List layers",
  minArgs: 0,
  maxArgs: Infinity,
  options: [JSON_OPTION, { names: ["tree", "t"], type: "bool", description: "Use a tree" }],
  async run(ctx) {
    if (wantsJson(ctx)) {
      printJson(ctx, ctx.store.layers().map(layerJson));
      return 0;
    }
    if (ctx.options.tree === true) {
      const users = layerUsers(ctx.store);
      const mountPoints = await ctx.store.mountPoints();
      ctx.stdout(layerTree(ctx.store.layers(), (l) => treeNotes(l, users, mountPoints)));
      return 0;
    }
    const summaries = ctx.store.layerSummaries();
    // Without layers no image or container can use one: a store's first command reads no more.
    if (summaries.length === 0) return 0;
    const users = layerUsers(ctx.store);
    const out: string[] = [];
    for (const l of summaries) {
      out.push(`${l.id}\n`);
      for (const n of l.names) out.push(`\tname: ${n}\n`);
      for (const image of users.images.get(l.id) ?? []) {
        out.push(`\timage: ${image.id}\n`);
        for (const n of image.names) out.push(`\t\tname: ${n}\n`);
      }
      const container = users.containers.get(l.id);
      if (container) {
        out.push(`\tcontainer: ${container.id}\n`);
        for (const n of container.names) out.push(`\t\tname: ${n}\n`);
      }
    }
    ctx.stdout(out.join(""));
    return 0;
  },
};

function treeNotes(l: LayerRecord, users: ReturnType<typeof layerUsers>, mountPoints: Map<string, string>): string[] {
  const notes = l.names.map((n) => `name: ${n}`);
  const mountPoint = mountPoints.get(l.id);
  if (mountPoint !== undefined) notes.push(`mount: ${mountPoint}`);
  for (const image of users.images.get(l.id) ?? []) {
    notes.push(`image: ${image.id}`, ...image.names.map((n) => `image name: ${n}`));
  }
  const container = users.containers.get(l.id);
  if (container) notes.push(`container: ${container.id}`, ...container.names.map((n) => `container name: ${n}`));
  return notes;
}

const BASE_KEY = "(base)";

/** Renders layers as the forest of docs/cli-contract.md §3.1.4 (roots: parent keys that are not themselves layers). */
export function layerTree(all: LayerRecord[], notesOf: (l: LayerRecord) => string[]): string {
  const out: string[] = [];
  const remaining = new Map(all.map((l) => [l.id, l]));
  const keyOf = (l: LayerRecord) => l.parent || BASE_KEY;
  const byParent = new Map<string, LayerRecord[]>();
  for (const l of all) {
    const siblings = byParent.get(keyOf(l));
    if (siblings) siblings.push(l);
    else byParent.set(keyOf(l), [l]);
  }
  const printSubtree = (key: string, depth: number, continuation: Set<number>) => {
    const children = (byParent.get(key) ?? []).filter((l) => remaining.has(l.id));
    children.forEach((child, i) => {
      remaining.delete(child.id);
      const last = i === children.length - 1;
      const prefix = Array.from({ length: depth }, (_, col) => (continuation.has(col) ? "│" : " ")).join("");
      out.push(`${prefix}${last ? "└" : "├"}─${child.id}\n`);
      for (const note of notesOf(child)) out.push(`${prefix}${last ? " " : "│"} ${note}\n`);
      const next = new Set(continuation);
      if (!last) next.add(depth);
      printSubtree(child.id, depth + 2, next);
    });
  };
  while (remaining.size > 0) {
    const childCount = new Map<string, number>();
    for (const l of remaining.values()) {
      const key = keyOf(l);
      if (!remaining.has(key)) childCount.set(key, (childCount.get(key) ?? 0) + 1);
    }
    let root: string | undefined;
    for (const [key, count] of childCount) if (root === undefined || count < childCount.get(root)!) root = key;
    if (root === undefined) break;
    const before = remaining.size;
    out.push(`${root}\n`);
    printSubtree(root, 0, new Set());
    if (remaining.size === before) break;
  }
  return out.join("");
}
