/** Layer content: changes, diffsize, diff, applydiff (docs/cli-contract.md §3.7). */
import { goQuote } from "../cli/format.ts";
import { fileSink, stdoutSink } from "../archive/compression.ts";
import { ChangeKind, Compression } from "../archive/types.ts";
import type { CommandDef } from "./command.ts";
import { JSON_OPTION, NO_PROGRESS_OPTION, printJson, progressDisplay, stringOption, trackedInput, wantsJson } from "./common.ts";

/** What changes, diffsize and diff share: a layer and an optional layer to compare it with. */
const COMPARE_TWO_LAYERS = {
  synopsis: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
  description: "Compare two layers",
  minArgs: 1,
  maxArgs: 2,
};

const KIND_WORD: Record<ChangeKind, string> = { [ChangeKind.Modify]: "Modify", [ChangeKind.Add]: "Add", [ChangeKind.Delete]: "Delete" };

export const changes: CommandDef = {
  names: ["changes"],
  ...COMPARE_TWO_LAYERS,
  options: [JSON_OPTION],
  async run(ctx) {
    const list = await ctx.store.changes(ctx.args[0]!, ctx.args[1]);
    if (wantsJson(ctx)) printJson(ctx, list.length === 0 ? null : list.map((c) => ({ Path: c.path, Kind: c.kind })));
    else ctx.stdout(list.map((c) => `${KIND_WORD[c.kind]} ${goQuote(c.path)}\n`).join(""));
    return 0;
  },
};

export const diffSize: CommandDef = {
  names: ["diffsize", "diff-size"],
  ...COMPARE_TWO_LAYERS,
  options: [],
  async run(ctx) {
    ctx.stdout(`${await ctx.store.diffSize(ctx.args[0]!, ctx.args[1])}\n`);
    return 0;
  },
};

export const diff: CommandDef = {
  names: ["diff"],
  ...COMPARE_TWO_LAYERS,
  options: [
    { names: ["file", "f"], type: "string", description: "Write to file instead of stdout", valueHint: "file" },
    { names: ["uncompressed", "u"], type: "bool", description: "Use no compression" },
    { names: ["gzip", "c"], type: "bool", description: "Compress using gzip" },
    { names: ["bzip2", "bz2", "b"], type: "bool", description: "Compress using bzip2 (not supported)" },
    { names: ["xz", "x"], type: "bool", description: "Compress using xz (not supported)" },
    NO_PROGRESS_OPTION,
  ],
  async run(ctx) {
    // The strongest requested compression wins: xz > bzip2 > gzip > none; none given: as applied.
    let compression: Compression | undefined;
    if (ctx.options.uncompressed === true) compression = Compression.None;
    if (ctx.options.gzip === true) compression = Compression.Gzip;
    if (ctx.options.bzip2 === true) compression = Compression.Bzip2;
    if (ctx.options.xz === true) compression = Compression.Xz;
    const file = stringOption(ctx, "file");
    await ctx.flushStdout();
    const sink = file !== undefined ? fileSink(file) : stdoutSink();
    const progress = progressDisplay(ctx);
    const meter = progress?.meter(`Writing the diff of ${ctx.args[0]}`);
    try {
      await ctx.store.diff(ctx.args[0]!, ctx.args[1], sink, compression, meter);
      meter?.finish();
    } finally {
      progress?.end();
    }
    return 0;
  },
};

export const applyDiff: CommandDef = {
  names: ["applydiff", "apply-diff"],
  namesIoFailures: true,
  synopsis: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
  description: "Apply a diff to a layer",
  minArgs: 1,
  maxArgs: 1,
  options: [{ names: ["file", "f"], type: "string", description: "Read from file instead of stdin", valueHint: "file" }, NO_PROGRESS_OPTION],
  async run(ctx) {
    const layer = ctx.args[0]!;
    ctx.store.layer(layer);
    const progress = progressDisplay(ctx);
    try {
      await ctx.store.applyDiff(layer, await trackedInput(ctx, progress, `Applying ${stringOption(ctx, "file") ?? "standard input"}`));
    } finally {
      progress?.end();
    }
    return 0;
  },
};
