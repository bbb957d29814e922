/**
 * Crash soak: the crash-safety rounds of test/robustness/crash.test.ts, many more times, with
 * a bigger layer and byte-for-byte content checks. Each round picks a scenario and kills its
 * process at a random crash point or after a random delay; the first failure stops the run and
 * keeps its store for inspection. See docs/robustness.md.
 *
 *   bun scripts/build.ts && bun scripts/crash-soak.ts [--rounds N] [--megabytes M] [--drivers vfs,overlay] [--scenario TEXT] [--seed N]
 */
import { parseArgs } from "node:util";
import { TestStore, availableDrivers } from "../test/helpers/cli.ts";
import { randomSource } from "../test/robustness/workers.ts";
import {
  type CrashContext,
  type Kill,
  type Scenario,
  crashRound,
  makeCrashInputs,
  prepareContext,
  removeCrashInputs,
  scenariosFor,
  timeScenario,
} from "../test/robustness/crash-harness.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "200" },
    megabytes: { type: "string", default: "96" },
    drivers: { type: "string" },
    scenario: { type: "string" },
    seed: { type: "string" },
  },
});

const rounds = Number(values.rounds);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const random = randomSource(seed);
const drivers = values.drivers ? values.drivers.split(",") : availableDrivers();
console.log(`crash soak: ${rounds} rounds per driver on ${drivers.join(", ")}, ${values.megabytes} MB layer, seed ${seed}`);

const inputs = await makeCrashInputs(Number(values.megabytes));
const tally = new Map<string, { rounds: number; killed: number; finished: number }>();
const problemsSeen = new Map<string, number>();

async function soak(driver: string): Promise<void> {
  const store = new TestStore(driver);
  const ctx: CrashContext = await prepareContext(store, inputs, true);
  const scenarios = scenariosFor(driver).filter((s) => !values.scenario || s.name.includes(values.scenario));
  const durations = new Map<Scenario, number>();
  for (const scenario of scenarios) durations.set(scenario, await timeScenario(ctx, scenario));
  for (let i = 0; i < rounds; i++) {
    const scenario = scenarios[Math.floor(random() * scenarios.length)]!;
    const kill: Kill =
      scenario.crashPoints.length > 0 && random() < 0.4
        ? { crashAt: scenario.crashPoints[Math.floor(random() * scenario.crashPoints.length)]! }
        : { delayMs: random() * durations.get(scenario)! * 1.2 };
    try {
      const report = await crashRound(ctx, scenario, kill);
      const key = `${driver}: ${scenario.name}`;
      const entry = tally.get(key) ?? { rounds: 0, killed: 0, finished: 0 };
      entry.rounds++;
      if (report.killed) entry.killed++;
      if (report.finishedBeforeKill) entry.finished++;
      tally.set(key, entry);
      for (const p of report.problemsBeforeRecovery) {
        const kind = `${p.kind}: ${p.problem.replace(/[0-9a-f]{64}/g, "<id>").replace(/\/\S+/g, "<path>")}`;
        problemsSeen.set(kind, (problemsSeen.get(kind) ?? 0) + 1);
      }
    } catch (e) {
      console.error(`FAILED on ${driver}, round ${i + 1}, ${scenario.name}, killed ${JSON.stringify(kill)} (seed ${seed}):\n${(e as Error).message}`);
      console.error(`the store is kept for inspection: ${store.dir}`);
      process.exit(1);
    }
    if ((i + 1) % 25 === 0) console.log(`${driver}: ${i + 1}/${rounds} rounds`);
  }
  store.destroy();
}

const started = performance.now();
await Promise.all(drivers.map(soak));
removeCrashInputs(inputs);
console.log(`\nall rounds passed in ${((performance.now() - started) / 1000).toFixed(0)} s`);
for (const [key, t] of [...tally].sort()) console.log(`  ${key}: ${t.rounds} rounds, ${t.killed} killed, ${t.finished} done without a repeat (finished before the kill, or completed by recovery)`);
console.log("what check found right after the kills (all repaired by the next command):");
for (const [kind, count] of [...problemsSeen].sort()) console.log(`  ${count} × ${kind}`);
