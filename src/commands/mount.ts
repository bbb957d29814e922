/** Mounting: mount, unmount, mounted (docs/cli-contract.md §3.6). */
import { messageOf } from "../errors.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { JSON_OPTION, printJson, stringOption, wantsJson } from "./common.ts";

export const mount: CommandDef = {
  names: ["mount"],
  synopsis: "[options [...]] LayerOrContainerNameOrID",
  description: "Mount a layer or container",
  minArgs: 1,
  maxArgs: Infinity,
  options: [
    { names: ["label", "l"], type: "string", description: "Mount Label" },
    { names: ["ro", "r"], type: "bool", description: "Mount image read-only" },
    { names: ["opt", "o"], type: "string", description: "Extra mount options, comma-separated (overlay)" },
    JSON_OPTION,
  ],
  async run(ctx) {
    const results: Array<{ id: string; mountpoint: string; error: string }> = [];
    for (const ref of ctx.args) {
      try {
        const opt = stringOption(ctx, "opt");
        const options = opt ? opt.split(",").filter(Boolean) : [];
        const path = await ctx.store.mount(ref, { readOnly: ctx.options.ro === true, mountLabel: stringOption(ctx, "label"), options });
        results.push({ id: ref, mountpoint: path, error: "" });
      } catch (e) {
        results.push({ id: ref, mountpoint: "", error: messageOf(e) });
      }
    }
    if (wantsJson(ctx)) printJson(ctx, results);
    else {
      for (const r of results) {
        // The error first, then the (empty) mount point line, in 1.43's order.
        if (r.error) ctx.stderr(`${r.error} while mounting ${r.id}\n`);
        ctx.stdout(`${r.mountpoint}\n`);
      }
    }
    return results.some((r) => r.error) ? 1 : 0;
  },
};

export const unmount: CommandDef = {
  names: ["unmount", "umount"],
  synopsis: "[options [...]] LayerOrContainerNameOrID",
  description: "Unmount a layer or container",
  minArgs: 1,
  maxArgs: Infinity,
  options: [{ names: ["force", "f"], type: "bool", description: "Force the umount" }, JSON_OPTION],
  async run(ctx) {
    const results: Array<{ id: string; error: string }> = [];
    for (const ref of ctx.args) {
      try {
        const outcome = await ctx.store.unmount(ref, ctx.options.force === true);
        // Printed even with --json, before the JSON document (docs/cli-contract.md §3.6.2).
        if (outcome === "unmounted") ctx.stdout(`${ref} mountpoint unmounted\n`);
        results.push({ id: ref, error: "" });
      } catch (e) {
        results.push({ id: ref, error: messageOf(e) });
      }
    }
    return reportFailures(ctx, results, (r) => `${r.error} while unmounting ${r.id}\n`);
  },
};

export const mounted: CommandDef = {
  names: ["mounted"],
  synopsis: "[options [...]] LayerOrContainerNameOrID",
  description: "Check if a file system is mounted",
  minArgs: 1,
  maxArgs: Infinity,
  options: [JSON_OPTION],
  async run(ctx) {
    const results: Array<{ id: string; error: string }> = [];
    for (const ref of ctx.args) {
      try {
        if ((await ctx.store.mountCount(ref)) > 0) ctx.stdout(`${ref} mounted\n`);
        results.push({ id: ref, error: "" });
      } catch (e) {
        results.push({ id: ref, error: messageOf(e) });
      }
    }
    return reportFailures(ctx, results, (r) => `${r.error} checking if ${r.id} is mounted\n`);
  },
};

/**
 * The end of unmount and mounted, as in 1.43: every result as JSON, or else the failures on
 * stderr after the lines of those that worked. Exit status 1 when any failed.
 */
function reportFailures(ctx: CommandContext, results: Array<{ id: string; error: string }>, line: (failed: { id: string; error: string }) => string): number {
  if (wantsJson(ctx)) printJson(ctx, results);
  else for (const r of results) if (r.error) ctx.stderr(line(r));
  return results.some((r) => r.error) ? 1 : 0;
}
