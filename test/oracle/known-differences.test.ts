/** known-differences.json is the one list of deliberate differences the oracle allows: each is recorded in docs/cli.md and used by a scenario. */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Scenario } from "./harness.ts";
import { KNOWN_DIFFERENCES } from "./known-differences.ts";

const cliMd = readFileSync(join(import.meta.dir, "..", "..", "docs", "cli.md"), "utf8");

test("every known difference has a reason, a unique id, and its row in docs/cli.md", () => {
  expect(new Set(KNOWN_DIFFERENCES.map((d) => d.id)).size).toBe(KNOWN_DIFFERENCES.length);
  for (const difference of KNOWN_DIFFERENCES) {
    expect({ id: difference.id, reason: difference.reason.length > 20 }).toEqual({ id: difference.id, reason: true });
    expect({ id: difference.id, inDocs: cliMd.includes(difference.docs) }).toEqual({ id: difference.id, inDocs: true });
  }
});

test("every known difference is named by an oracle step or scenario (or the harness normalisation that leaves it out), so none outlives its reason", async () => {
  const named = new Set<string>();
  for (const file of new Bun.Glob("*.ts").scanSync(join(import.meta.dir, "scenarios"))) {
    const scenarios = (await import(join(import.meta.dir, "scenarios", file))).default as Scenario[];
    for (const scenario of scenarios) {
      if (scenario.known) named.add(scenario.known);
      for (const step of [...scenario.steps, ...(scenario.readOnlyStore ?? [])]) if (step.known) named.add(step.known);
    }
  }
  for (const difference of KNOWN_DIFFERENCES) {
    if (difference.harness && readFileSync(join(import.meta.dir, difference.harness), "utf8").includes(difference.id)) named.add(difference.id);
  }
  expect(KNOWN_DIFFERENCES.map((d) => d.id).filter((id) => !named.has(id))).toEqual([]);
});
