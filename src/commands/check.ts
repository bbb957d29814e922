/** `check` (beyond containers-storage 1.43): reports, and with --repair fixes, inconsistencies in the store. */
import type { Problem, RepairOutcome } from "../store/check.ts";
import type { CommandContext, CommandDef } from "./command.ts";
import { JSON_OPTION, printJson, wantsJson } from "./common.ts";

function problemJson(p: Problem | RepairOutcome): Record<string, unknown> {
  const json: Record<string, unknown> = { kind: p.kind, id: p.id, problem: p.problem, repairable: p.repairable };
  if ("repaired" in p) json.repaired = p.repaired;
  return json;
}

function problemLine(p: Problem | RepairOutcome): string {
  const outcome = "repaired" in p ? (p.repaired ? "; repaired" : "; not repaired") : "";
  return `${p.kind} ${p.id}: ${p.problem}${outcome}\n`;
}

function print(ctx: CommandContext, problems: Array<Problem | RepairOutcome>): void {
  if (wantsJson(ctx)) printJson(ctx, problems.map(problemJson));
  else ctx.stdout(problems.map(problemLine).join(""));
}

export const check: CommandDef = {
  names: ["check"],
  synopsis: "[options [...]]",
  description: "Check the store for inconsistencies",
  minArgs: 0,
  maxArgs: 0,
  options: [{ names: ["repair", "r"], type: "bool", description: "Fix what can be fixed without losing complete data" }, JSON_OPTION],
  recoversStore: false,
  async run(ctx) {
    if (ctx.options.repair === true) {
      const outcomes = await ctx.store.repair();
      print(ctx, outcomes);
      return outcomes.every((o) => o.repaired) ? 0 : 1;
    }
    const problems = (await ctx.store.check()).map(({ kind, id, problem, repairable }) => ({ kind, id, problem, repairable }));
    print(ctx, problems);
    return problems.length === 0 ? 0 : 1;
  },
};
