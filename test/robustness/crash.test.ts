/**
 * Crash safety (DESIGN.md invariant 2): real oci-storage processes are SIGKILLed at every named
 * crash point and after random delays while they import, apply, copy, delete, diff, mount and
 * write data; afterwards every command works, nothing half-made is listed, the next writing
 * command leaves no orphan directory or mount, and the operation can be repeated. Each test
 * runs its rounds on every driver at once (one store per driver). scripts/crash-soak.ts runs
 * the same rounds many more times.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { straceAvailable } from "../helpers/fixtures.ts";
import {
  IMAGE_REF,
  type CrashContext,
  type CrashInputs,
  type Kill,
  SCENARIOS,
  type Scenario,
  checkJson,
  cli,
  crashRound,
  listLayers,
  makeCrashInputs,
  newId,
  ok,
  prepareContext,
  removeCrashInputs,
  timeScenario,
} from "./crash-harness.ts";

/** Size of the big layer: large enough that import, copy and delete take a while. */
const BIG_LAYER_MB = 32;
/** Random-delay rounds per scenario and driver here; the soak script runs many more. */
const RANDOM_ROUNDS = 1;
const TEST_TIMEOUT_MS = 120_000;

const drivers = availableDrivers();
let inputs: CrashInputs;
const contexts = new Map<string, CrashContext>();

beforeAll(async () => {
  inputs = await makeCrashInputs(BIG_LAYER_MB);
  await Promise.all(drivers.map(async (driver) => contexts.set(driver, await prepareContext(new TestStore(driver), inputs, false))));
}, TEST_TIMEOUT_MS);

afterAll(() => {
  for (const ctx of contexts.values()) ctx.store.destroy();
  removeCrashInputs(inputs);
});

async function round(ctx: CrashContext, scenario: Scenario, kill: Kill) {
  try {
    return await crashRound(ctx, scenario, kill);
  } catch (e) {
    throw new Error(`${scenario.name} on ${ctx.store.driver}, killed ${JSON.stringify(kill)}: ${(e as Error).message}`);
  }
}

/** Runs fn for every driver (those of the scenario, when given), all at once. */
async function onEveryDriver(fn: (ctx: CrashContext) => Promise<void>, scenario?: Scenario): Promise<void> {
  await Promise.all(drivers.filter((d) => !scenario?.drivers || scenario.drivers.includes(d)).map((d) => fn(contexts.get(d)!)));
}

describe("crash safety", () => {
  for (const scenario of SCENARIOS) {
    const points = scenario.crashPoints.length > 0 ? `at ${scenario.crashPoints.join(", ")} and ` : "";
    test(
      `${scenario.name}: killed ${points}after random delays`,
      async () => {
        await onEveryDriver(async (ctx) => {
          let duration: number | undefined;
          for (const crashAt of scenario.crashPoints) {
            const report = await round(ctx, scenario, { crashAt });
            // The point is on this operation's path: the process died there instead of finishing.
            expect({ driver: ctx.store.driver, crashAt, killed: report.killed }).toEqual({ driver: ctx.store.driver, crashAt, killed: true });
            duration ??= report.repeatMs;
          }
          duration ??= await timeScenario(ctx, scenario);
          for (let i = 0; i < RANDOM_ROUNDS; i++) await round(ctx, scenario, { delayMs: Math.random() * duration * 1.1 });
        }, scenario);
      },
      TEST_TIMEOUT_MS,
    );
  }

  test(
    "check reports what a crash left, --repair fixes it, and the next command would have too",
    async () => {
      await onEveryDriver(async (ctx) => {
        const id = newId();
        const killed = await cli(ctx.store, ["create-layer", "--id", id, ctx.bigLayer], { crashAt: "after-content-created" });
        expect(killed.signal).toBe("SIGKILL");
        const found = await checkJson(ctx.store);
        expect(found).toEqual({ code: 1, problems: [{ kind: "layer", id, problem: "left half-created by a process that died (incomplete)", repairable: true }] });
        const repair = await cli(ctx.store, ["check", "--repair"]);
        expect(repair.stdout).toBe(`layer ${id}: left half-created by a process that died (incomplete); repaired\n`);
        expect(repair.code).toBe(0);
        expect(await cli(ctx.store, ["check"])).toMatchObject({ code: 0, stdout: "" });
        expect((await listLayers(ctx.store)).some((l) => l.id === id)).toBe(false);
      });
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a pull killed before it marks its second layer complete keeps the base layer, and the next pull completes the image on it",
    async () => {
      await onEveryDriver(async (ctx) => {
        const driver = ctx.store.driver;
        const [base, upper] = inputs.pulled.layers;
        const source = `oci:${inputs.layout}:${IMAGE_REF}`;
        const imageLayers = async () => (await listLayers(ctx.store)).filter((l) => l.id === base!.id || l.id === upper!.id);
        const killed = await cli(ctx.store, ["pull", "-q", source], { crashAt: "before-complete#2" });
        expect({ driver, killed: killed.signal !== null }).toEqual({ driver, killed: true });
        const listed = await imageLayers();
        expect({ driver, listed: listed.map((l) => [l.id, l["diff-digest"]]) }).toEqual({ driver, listed: [[base!.id, base!.diffId]] });
        const created = listed[0]!.created;
        await ok(ctx.store, ["pull", "-q", source]);
        const after = await imageLayers();
        // The base layer is the one the killed pull made (not made again); the upper one is new.
        expect({ driver, layers: after.map((l) => l.id), baseCreated: after[0]!.created }).toEqual({ driver, layers: [base!.id, upper!.id], baseCreated: created });
        // delete-image removes the layers only the image used, as 1.43's does.
        await ok(ctx.store, ["delete-image", inputs.pulled.image]);
        expect(await imageLayers()).toEqual([]);
      });
    },
    TEST_TIMEOUT_MS,
  );

  test.skipIf(!straceAvailable("the syncfs ordering test"))(
    "layer content is flushed before the layer is recorded complete (syncfs; an empty overlay layer's few files fsync'd)",
    async () => {
      await onEveryDriver(async (ctx) => {
        const driver = ctx.store.driver;
        const imported = newId();
        const copy = newId();
        const target = newId();
        const [pulledBase] = inputs.pulled.layers;
        await ok(ctx.store, ["create-layer", "--id", target]);
        const cases = [
          { what: "import-layer", id: imported, args: ["import-layer", "--id", imported, "-f", inputs.tar] },
          { what: "create-layer on a big parent", id: copy, args: ["create-layer", "--id", copy, ctx.bigLayer] },
          { what: "applydiff", id: target, args: ["applydiff", "-f", inputs.tar, target] },
          // A pull flushes each layer on a thread of its own while it applies the next one; the first layer it marks complete is the base.
          { what: "pull", id: pulledBase!.id, args: ["pull", "-q", `oci:${inputs.layout}:${IMAGE_REF}`] },
        ];
        for (const c of cases) {
          // Stopped just before the step that marks the layer complete: by then its data must have been flushed.
          // One trace file per thread (-ff), so that no call is split across lines.
          const trace = join(ctx.store.dir, `strace-${c.id}`);
          const run = await cli(ctx.store, c.args, { crashAt: "before-complete" }, ["strace", "-ff", "-y", "-qq", "-e", "trace=syncfs,fsync", "-o", trace]);
          const flush = driver === "overlay" && c.what.startsWith("create-layer") ? "fsync(" : "syncfs(";
          const traces = readdirSync(ctx.store.dir).filter((name) => name.startsWith(`strace-${c.id}.`));
          const calls = traces
            .flatMap((name) => readFileSync(join(ctx.store.dir, name), "utf8").split("\n"))
            .filter((line) => line.includes(flush) && line.includes(c.id) && line.endsWith("= 0"));
          for (const name of traces) rmSync(join(ctx.store.dir, name), { force: true });
          expect({ driver, what: c.what, stoppedBeforeComplete: run.signal !== null || run.code !== 0, syncfsOfTheLayer: calls.length > 0 }).toEqual({
            driver,
            what: c.what,
            stoppedBeforeComplete: true,
            syncfsOfTheLayer: true,
          });
        }
        // None of them was recorded complete: the new layers are gone, the applied one is empty again.
        const layers = await listLayers(ctx.store);
        const made = [imported, copy, ...inputs.pulled.layers.map((l) => l.id)];
        expect(layers.filter((l) => made.includes(l.id))).toEqual([]);
        expect(layers.find((l) => l.id === target)?.["diff-digest"]).toBeUndefined();
        await ok(ctx.store, ["delete-layer", target]);
      });
    },
    TEST_TIMEOUT_MS,
  );
});
