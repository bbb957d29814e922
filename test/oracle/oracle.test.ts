/**
 * Side by side with containers-storage 1.43: every scenario in test/oracle/scenarios/ runs on
 * both tools and each step must show a script the same thing (harness.ts says what is compared
 * and how to add a scenario), except the deliberate differences of known-differences.json.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { availableDrivers, peerSkipReason } from "../helpers/cli.ts";
import { type Driver, type Observed, type Scenario, type Step, runSideBySide } from "./harness.ts";
import { knownDifference } from "./known-differences.ts";

const scenarios: Scenario[] = [];
for (const file of [...new Bun.Glob("*.ts").scanSync(join(import.meta.dir, "scenarios"))].sort()) {
  scenarios.push(...((await import(join(import.meta.dir, "scenarios", file))).default as Scenario[]));
}

const peerReason = peerSkipReason();
if (peerReason) console.log(`skipping the side-by-side oracle: ${peerReason}`);

/** The parts of an observation that an entry of known-differences.json pins. */
function pinned(observed: Observed, expected: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(expected).map((k) => [k, observed[k as keyof Observed]]));
}

function compareStep(step: Step, ours: Observed, peer: Observed): void {
  if (step.known === undefined) {
    const shown = (o: Observed) => ({ step: o.step, status: o.status, stdout: o.stdout, stderr: o.stderr });
    expect(shown(ours)).toEqual(shown(peer));
    return;
  }
  const entry = knownDifference(step.known);
  if (!entry.ours || !entry.peer) throw new Error(`known difference "${step.known}" names no results for a step to show`);
  expect({ step: ours.step, ours: pinned(ours, entry.ours) }).toEqual({ step: ours.step, ours: entry.ours });
  expect({ step: peer.step, peer: pinned(peer, entry.peer) }).toEqual({ step: peer.step, peer: entry.peer });
}

/** Scenario runs at a time: each waits mostly on its processes, so a few together finish the suite sooner. */
const CONCURRENT_RUNS = 4;
let running = 0;
const waiting: Array<() => void> = [];

async function limited<T>(run: () => Promise<T>): Promise<T> {
  while (running >= CONCURRENT_RUNS) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await run();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

type Outcome = { ok: Awaited<ReturnType<typeof runSideBySide>> } | { error: unknown };

/** Every run starts when the file loads (a few at a time); each test waits for its own. */
function start(scenario: Scenario, driver: Driver): Promise<Outcome> {
  return limited(() => runSideBySide(scenario, driver)).then(
    (ok) => ({ ok }),
    (error) => ({ error }),
  );
}

for (const scenario of scenarios) {
  describe(`oracle: ${scenario.name}`, () => {
    for (const driver of (scenario.drivers ?? ["vfs", "overlay"]).filter((d) => availableDrivers().includes(d)) as Driver[]) {
      const outcome = peerReason === undefined ? start(scenario, driver) : undefined;
      test.skipIf(outcome === undefined)(`on ${driver}: each step shows what containers-storage 1.43 shows`, async () => {
        const result = await outcome!;
        if ("error" in result) throw result.error;
        const { ours, peer } = result.ok;
        scenario.steps.forEach((step, i) => compareStep(step, ours.observed[i]!, peer.observed[i]!));
        expect(ours.check).toEqual({ code: 0, stdout: "" });
        expect(ours.readOnlyAfter).toEqual(ours.readOnlyBefore);
      });
    }
  });
}
