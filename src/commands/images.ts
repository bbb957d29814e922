/** Image commands: create-image, image, images, images-by-digest (docs/cli-contract.md §3.2). */
import { messageOf } from "../errors.ts";
import type { ImageRecord, ListingLines } from "../store/records.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { ID_OPTION, JSON_OPTION, METADATA_FILE_OPTION, METADATA_OPTION, NAME_OPTION, QUIET_OPTION, listOption, metadataOption, printJson, stringOption, wantsJson } from "./common.ts";
import { imageJson } from "./render.ts";

export const createImage: CommandDef = {
  names: ["create-image", "createimage"],
  synopsis: "[options [...]] [topLayerNameOrID]",
  description: "Create a new image using layers",
  minArgs: 0,
  maxArgs: 1,
  options: [
    ID_OPTION,
    NAME_OPTION,
    { names: ["digest", "d"], type: "string", description: "Digest of the image (algorithm:hex)" },
    METADATA_OPTION,
    METADATA_FILE_OPTION,
    JSON_OPTION,
  ],
  async run(ctx) {
    const image = ctx.store.createImage({
      id: stringOption(ctx, "id"),
      names: listOption(ctx, "name"),
      topLayer: ctx.args[0],
      metadata: await metadataOption(ctx),
      digest: stringOption(ctx, "digest"),
    });
    if (wantsJson(ctx)) printJson(ctx, imageJson(image));
    else ctx.stdout(`${image.id}\n${image.names.map((n) => `\t${n}\n`).join("")}`);
    return 0;
  },
};

export const image: CommandDef = {
  names: ["image"],
  synopsis: "[options [...]] imageNameOrID [...]",
  description: "Examine an image",
  minArgs: 1,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    const found: ImageRecord[] = [];
    for (const ref of ctx.args) {
      const i = ctx.store.findImage(ref);
      if (i) found.push(i);
    }
    if (wantsJson(ctx)) printJson(ctx, found.map(imageJson));
    else {
      for (const i of found) {
        const lines = [`ID: ${i.id}`, ...i.names.map((n) => `Name: ${n}`), `Top Layer: ${i.topLayer}`];
        for (const mapped of i.mappedLayers) lines.push(`Top Layer: ${mapped}`);
        for (const d of ctx.store.imageDigests(i)) lines.push(`Digest: ${d}`);
        for (const item of i.bigData) lines.push(`Data: ${item.name}`);
        try {
          lines.push(`Size: ${await ctx.store.imageSize(i)}`);
        } catch (e) {
          lines.push(`Size unknown: ${messageOf(e)}`);
        }
        if (i.fromReadOnlyStore) lines.push("Read Only: true");
        ctx.stdout(`${lines.join("\n")}\n`);
      }
    }
    return found.length === ctx.args.length ? 0 : 1;
  },
};

/** The lines `images` prints under each image's ID. */
const IMAGE_LINES = { name: "\tname: ", digest: "\tdigest: ", data: "\tdata: " } as const;

/** What `images` (and `images-by-digest`) print under each image's ID: nothing with -q. */
function imageLines(ctx: CommandContext): ListingLines {
  return ctx.options.quiet === true ? {} : IMAGE_LINES;
}

/** Prints images in the `images` formats (text, -q, JSON with null for none). */
function printImages(ctx: CommandContext, list: ImageRecord[]): void {
  if (wantsJson(ctx)) return printJson(ctx, list.length === 0 ? null : list.map(imageJson));
  const lines = imageLines(ctx);
  const out: string[] = [];
  for (const i of list) {
    out.push(`${i.id}\n`);
    if (lines.name !== undefined) for (const n of i.names) out.push(`${lines.name}${n}\n`);
    if (lines.digest !== undefined) for (const d of ctx.store.imageDigests(i)) out.push(`${lines.digest}${d}\n`);
    if (lines.data !== undefined) for (const item of i.bigData) out.push(`${lines.data}${item.name}\n`);
  }
  ctx.stdout(out.join(""));
}

export const images: CommandDef = {
  names: ["images"],
  synopsis: "[options [...]]",
  description: "List images",
  minArgs: 0,
  maxArgs: Infinity,
  options: [JSON_OPTION, QUIET_OPTION],
  async run(ctx) {
    // The text listing is made by the database: decoding every record costs more than the rest of the command.
    if (wantsJson(ctx)) printImages(ctx, ctx.store.images());
    else ctx.stdout(ctx.store.imageListing(imageLines(ctx)));
    return 0;
  },
};

export const imagesByDigest: CommandDef = {
  names: ["images-by-digest"],
  synopsis: "[options [...]] DIGEST",
  description: "List images by digest",
  minArgs: 1,
  maxArgs: 1,
  options: [JSON_OPTION, QUIET_OPTION],
  async run(ctx) {
    const list = ctx.store.imagesByDigest(ctx.args[0]!);
    if (wantsJson(ctx) && list.length === 0) printJson(ctx, []);
    else printImages(ctx, list);
    return 0;
  },
};
