/** Store-level commands: status, version, wipe, shutdown (docs/cli-contract.md §3.8). */
import { messageOf } from "../errors.ts";
import { BUILD } from "./build-info.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { JSON_OPTION, printJson, wantsJson } from "./common.ts";

/** Key/value pairs: text on stderr as "Key: Value" lines (as containers-storage does), JSON as [[k,v],...] on stdout. */
function printPairs(ctx: CommandContext, pairs: Array<[string, string]>): void {
  if (wantsJson(ctx)) printJson(ctx, pairs);
  else ctx.stderr(pairs.map(([k, v]) => `${k}: ${v}\n`).join(""));
}

/** Reports a store-level failure as "<command>: <error>" (JSON: {}), exit 1. */
function failure(ctx: CommandContext, command: string, e: unknown): number {
  ctx.stderr(`${command}: ${messageOf(e)}\n`);
  if (wantsJson(ctx)) printJson(ctx, {});
  return 1;
}

export const status: CommandDef = {
  names: ["status"],
  synopsis: "[options [...]]",
  description: "Check on graph driver status",
  minArgs: 0,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    try {
      printPairs(ctx, await ctx.store.status());
      return 0;
    } catch (e) {
      return failure(ctx, "status", e);
    }
  },
};

export const version: CommandDef = {
  names: ["version"],
  synopsis: "[options [...]]",
  description: "Return oci-storage version information",
  minArgs: 0,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    const pairs: Array<[string, string]> = [
      ["Version", BUILD.version],
      ["Build", BUILD.commit],
      ["Target", BUILD.target],
      ["Bun", Bun.version],
      ["SQLite", ctx.store.sqliteVersion],
      ["Schema", String(ctx.store.schemaVersion)],
    ];
    // Unlike containers-storage 1.43 (which prints nothing), the pairs go to stdout: they are the answer.
    if (wantsJson(ctx)) printJson(ctx, pairs);
    else ctx.stdout(pairs.map(([k, v]) => `${k}: ${v}\n`).join(""));
    return 0;
  },
};

export const wipe: CommandDef = {
  names: ["wipe"],
  synopsis: "[options [...]]",
  description: "Wipe all layers, images, and containers",
  minArgs: 0,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    try {
      await ctx.store.wipe();
      if (wantsJson(ctx)) printJson(ctx, "");
      return 0;
    } catch (e) {
      return failure(ctx, "wipe", e);
    }
  },
};

export const shutdown: CommandDef = {
  names: ["shutdown"],
  synopsis: "[options [...]]",
  description: "Shut down layer storage",
  minArgs: 0,
  maxArgs: Infinity,
  options: [{ names: ["force", "f"], type: "bool", description: "Unmount mounted layers first" }, JSON_OPTION],
  async run(ctx) {
    try {
      await ctx.store.shutdown(ctx.options.force === true);
      if (wantsJson(ctx)) printJson(ctx, "");
      return 0;
    } catch (e) {
      return failure(ctx, "shutdown", e);
    }
  },
};
