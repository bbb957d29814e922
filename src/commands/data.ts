/**
 * Big-data item commands, made once for each kind (docs/cli-contract.md §2.9, §3.1.6, §3.2.5, §3.3.4):
 * list-, get-, set- and, for images and containers, get-...-data-size and -digest.
 */
import { ContainerUnknownError, DataItemUnknownError, ImageUnknownError, LayerUnknownError } from "../errors.ts";
import type { BigDataInfo, ObjectKind } from "../store/records.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { JSON_OPTION, inputBytes, printJson, stringOption, wantsJson } from "./common.ts";

interface DataOwner {
  id: string;
  items: BigDataInfo[];
  /** Set when the owner lives in a read-only image store. */
  fromReadOnlyStore?: string;
}

/** Resolves the owner of data items of a kind, with the error containers-storage gives for each kind. */
function resolveOwner(ctx: CommandContext, kind: ObjectKind, ref: string): DataOwner {
  const record = kind === "layer" ? ctx.store.findLayer(ref) : kind === "image" ? ctx.store.findImage(ref) : ctx.store.findContainer(ref);
  if (!record) {
    if (kind === "layer") throw new LayerUnknownError();
    if (kind === "image") throw new ImageUnknownError(`locating image with ID "${ref}": image not known`);
    throw new ContainerUnknownError();
  }
  const fromReadOnlyStore = "fromReadOnlyStore" in record ? record.fromReadOnlyStore : undefined;
  return { id: record.id, items: ctx.store.bigDataItems(kind, record), fromReadOnlyStore };
}

function missingItem(kind: ObjectKind, name: string, id: string): DataItemUnknownError {
  const hint = kind === "image" ? " (consider removing the image to resolve the issue)" : "";
  return new DataItemUnknownError(`locating item named "${name}" for ${kind} with ID "${id}"${hint}: file does not exist`);
}

/** The data commands of one kind; aliases drop the dashes (listimagedata). */
export function dataCommands(kind: ObjectKind): CommandDef[] {
  const alias = (name: string) => name.replaceAll("-", "");
  const refWord = `${kind}NameOrID`;
  const aKind = kind === "image" ? "an image" : `a ${kind}`;
  const list: CommandDef = {
    names: [`list-${kind}-data`, alias(`list-${kind}-data`)],
    synopsis: `[options [...]] ${refWord}`,
    description: `List data items that are attached to ${aKind}`,
    minArgs: 1,
    maxArgs: 1,
    options: [JSON_OPTION],
    async run(ctx) {
      const names = resolveOwner(ctx, kind, ctx.args[0]!).items.map((i) => i.name);
      if (wantsJson(ctx)) printJson(ctx, names.length === 0 ? null : names);
      else ctx.stdout(names.map((n) => `${n}\n`).join(""));
      return 0;
    },
  };
  const get: CommandDef = {
    names: [`get-${kind}-data`, alias(`get-${kind}-data`)],
    synopsis: `[options [...]] ${refWord} dataName`,
    description: `Get data that is attached to ${aKind}`,
    minArgs: 2,
    maxArgs: Infinity,
    options: [{ names: ["file", "f"], type: "string", description: "Write data to file", valueHint: "file" }],
    async run(ctx) {
      const owner = resolveOwner(ctx, kind, ctx.args[0]!);
      const out = stringOption(ctx, "file");
      const fs = out === undefined ? undefined : await import("node:fs");
      if (out !== undefined) fs!.writeFileSync(out, "");
      const data = ctx.store.bigData(kind, owner, ctx.args[1]!);
      if (!data) throw missingItem(kind, ctx.args[1]!, owner.id);
      if (out !== undefined) fs!.writeFileSync(out, data);
      else await ctx.stdoutBytes(data);
      return 0;
    },
  };
  const set: CommandDef = {
    names: [`set-${kind}-data`, alias(`set-${kind}-data`)],
    namesIoFailures: true,
    synopsis: `[options [...]] ${refWord} dataName`,
    description: `Set data that is attached to ${aKind}`,
    minArgs: 2,
    maxArgs: Infinity,
    options: [{ names: ["file", "f"], type: "string", description: "Read data from file", valueHint: "file" }],
    async run(ctx) {
      const owner = resolveOwner(ctx, kind, ctx.args[0]!);
      if (owner.fromReadOnlyStore !== undefined) {
        throw kind === "image" ? new ImageUnknownError(`locating image with ID "${owner.id}": image not known`) : new LayerUnknownError();
      }
      ctx.store.setBigData(kind, owner.id, ctx.args[1]!, await inputBytes(ctx));
      return 0;
    },
  };
  if (kind === "layer") return [list, get, set];
  const item = (ctx: CommandContext) => ctx.store.bigDataItem(kind, resolveOwner(ctx, kind, ctx.args[0]!), ctx.args[1]!);
  const size: CommandDef = {
    names: [`get-${kind}-data-size`, alias(`get-${kind}-data-size`)],
    synopsis: `[options [...]] ${refWord} dataName`,
    description: `Get size of data that is attached to ${aKind}`,
    minArgs: 2,
    maxArgs: Infinity,
    options: [],
    async run(ctx) {
      const found = item(ctx);
      if (!found) throw new DataItemUnknownError("size is not known");
      ctx.stdout(`${found.size}\n`);
      return 0;
    },
  };
  const digest: CommandDef = {
    names: [`get-${kind}-data-digest`, alias(`get-${kind}-data-digest`)],
    synopsis: `[options [...]] ${refWord} dataName`,
    description: `Get digest of data that is attached to ${aKind}`,
    minArgs: 2,
    maxArgs: Infinity,
    options: [],
    async run(ctx) {
      const found = item(ctx);
      if (!found) throw new DataItemUnknownError("could not compute digest of item");
      ctx.stdout(`${found.digest}\n`);
      return 0;
    },
  };
  return [list, get, size, digest, set];
}
