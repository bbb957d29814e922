/**
 * Concurrency suite (DESIGN.md invariant 3): eight or more real oci-storage processes at once on
 * one store, each doing a random mix of commands; afterwards the store must be exactly what the
 * successful commands imply, and no command may have failed for any reason but a refusal that
 * another process's work explains.
 *
 * OCI_STORAGE_CONCURRENCY_ROUNDS, _WORKERS and _SEED make longer or repeatable runs.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeOciLayout } from "../../scripts/oci-layout.ts";
import { layerIdChain } from "../../src/transports/manifest.ts";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sha256Bytes, sha256File } from "../helpers/fixtures.ts";
import { type OperationRecord, checkHistory } from "./history.ts";
import { type Finished, type Running, databaseHas, hasStoreOpen, manyFilesTar, start, waitFor, waitUntilStopped } from "./races.ts";
import { databaseLeftovers, directoryLeftovers, kernelMountsBelow } from "./store-state.ts";
import { readFinalState, runWorkers } from "./workers.ts";

const WORKERS = Number(process.env.OCI_STORAGE_CONCURRENCY_WORKERS ?? 8);
const ROUNDS = Number(process.env.OCI_STORAGE_CONCURRENCY_ROUNDS ?? 10);
const SEED = Number(process.env.OCI_STORAGE_CONCURRENCY_SEED ?? Math.floor(Math.random() * 2 ** 31));

function summary(history: OperationRecord[]): string {
  const counts = new Map<string, number>();
  for (const op of history) {
    const key = `${op.argv[0]} ${op.outcome}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].sort().map(([k, n]) => `${k}: ${n}`).join(", ");
}

for (const driver of availableDrivers()) {
  describe(`concurrency on ${driver}`, () => {
    let store: TestStore | undefined;
    afterEach(() => store?.destroy(), 60_000);

    test(
      `${WORKERS} processes at once leave the store exactly as their successes imply (seed ${SEED})`,
      async () => {
        store = new TestStore(driver);
        store.ok(["layers"]);
        const history = await runWorkers(store, { workers: WORKERS, rounds: ROUNDS, seed: SEED });
        const final = readFinalState(store);
        const problems = checkHistory(history, final);
        problems.push(...databaseLeftovers(store));
        const liveLayers = new Set(final.objects.layer.keys());
        problems.push(...directoryLeftovers(store, liveLayers, new Set(final.objects.container.keys())));

        const mountPoints = kernelMountsBelow(store.dir);
        if (driver === "vfs") expect(mountPoints).toEqual([]);
        else {
          const mountedLayers = [...final.mountCounts.keys()];
          if (mountPoints.length !== mountedLayers.length) problems.push(`kernel mounts ${mountPoints.join(", ")} for counted layers ${mountedLayers.join(", ")}`);
        }
        if (liveLayers.size > 0) {
          // `mounted` agrees with the counts.
          const refs = [...liveLayers];
          const said = store.cli(["mounted", ...refs]).stdout;
          for (const id of refs) {
            if (said.includes(`${id} mounted`) !== (final.mountCounts.get(id) ?? 0) > 0) problems.push(`mounted disagrees with the count of ${id}`);
          }
        }
        // Every imported layer that is still there re-exports exactly what was applied.
        const imported = history.filter((op) => op.argv[0] === "import-layer" && op.outcome === "ok").map((op) => JSON.parse(op.stdout));
        for (const layer of imported) {
          if (!liveLayers.has(layer.id)) continue;
          if (sha256Bytes(store.cli(["diff", "-u", layer.id]).stdoutBytes) !== layer["diff-digest"].slice("sha256:".length)) problems.push(`layer ${layer.id} lost its content`);
        }
        // The store keeps working: a fresh layer, a name taken from any holder, a clean listing.
        const fresh = store.json(["create-layer", "-j"]).id;
        store.ok(["set-names", "-n", "layer-name-0", fresh]);
        expect(store.json(["layers", "-j"]).filter((l: any) => l.names?.includes("layer-name-0")).map((l: any) => l.id)).toEqual([fresh]);

        if (problems.length > 0) console.log(`seed ${SEED}; ${summary(history)}\n${problems.join("\n")}`);
        expect(problems).toEqual([]);
        expect(history.filter((op) => op.outcome === "ok").length).toBeGreaterThan(history.length / 2);
      },
      120_000,
    );
  });
}

let bigTar: string;
beforeAll(() => {
  bigTar = manyFilesTar();
}, 60_000);
afterAll(() => rmSync(dirname(bigTar), { recursive: true, force: true }), 60_000);

/** Everything the store holds is consistent: no dangling references, no leftover rows or directories. */
function leftovers(store: TestStore): string[] {
  const layers = new Set<string>(store.json(["layers", "-j"]).map((l: any) => l.id));
  const containers = new Set<string>(store.json(["containers", "-j"]).map((c: any) => c.id));
  return [...databaseLeftovers(store), ...directoryLeftovers(store, layers, containers)];
}

for (const driver of availableDrivers()) {
  describe(`races on ${driver}`, () => {
    let store: TestStore;
    /** A layer with many files, so that copying it (vfs children, which each test makes its own) takes a while. */
    let big: string;
    beforeAll(() => {
      store = new TestStore(driver);
      big = store.json(["import-layer", "-j", "-f", bigTar]).id;
    }, 60_000);
    afterAll(() => store.destroy(), 60_000);

    test("twelve processes creating layers on a store that does not exist yet all succeed", async () => {
      const fresh = new TestStore(driver);
      try {
        const runs = Array.from({ length: 12 }, (_, i) => start(fresh, ["create-layer", "-j", "-n", `first-${i}`]).done);
        const results = await Promise.all(runs);
        expect(results.filter((r) => r.code !== 0 || r.stderr !== "")).toEqual([]);
        expect(fresh.json(["layers", "-j"]).flatMap((l: any) => l.names).sort()).toEqual(Array.from({ length: 12 }, (_, i) => `first-${i}`).sort());
      } finally {
        fresh.destroy();
      }
    }, 60_000);

    test("delete-layer of a parent whose child is being created is refused, and the child gets its parent", async () => {
      const parent = store.json(["create-layer", "-j", big]).id;
      const child = start(store, ["create-layer", "-j", parent]);
      await waitFor("the child's row", () => databaseHas(store, "SELECT 1 FROM layers WHERE parent = ?", parent));
      const deletion = await start(store, ["delete-layer", "-j", parent]).done;
      const made = await child.done;
      expect(made.stderr).toBe("");
      expect(made.code).toBe(0);
      expect(deletion.code).toBe(1);
      expect(JSON.parse(deletion.stdout)[parent]).toMatch(/layer has children$/);
      expect(store.json(["layer", "-j", JSON.parse(made.stdout).id])[0].parent).toBe(parent);
      expect(leftovers(store)).toEqual([]);
    }, 60_000);

    test("delete-image while a container is being made from it: the container is refused, no layer is left without its parent", async () => {
      const top = store.json(["create-layer", "-j", big]).id;
      const image = store.json(["create-image", "-j", top]).id;
      const creation = start(store, ["create-container", "-j", "-n", "racer", image]);
      await waitFor("the container layer's row", () => databaseHas(store, "SELECT 1 FROM layers WHERE parent = ?", top));
      const deletion = await start(store, ["delete-image", "-j", image]).done;
      const made = await creation.done;
      expect(deletion.stderr).toBe("");
      const result = JSON.parse(deletion.stdout)[image];
      if (deletion.code === 0) {
        // The image went first: the container is refused, and the top layer, which the
        // container's layer being made still used, stays.
        expect(made.stderr).toBe(`locating image with ID "${image}": image not known\n`);
        expect(made.code).toBe(1);
        expect(result["deleted-layers"]).toBeUndefined();
        expect(store.json(["containers", "-j"])).toEqual([]);
        expect(store.json(["layer", "-j", top])).toHaveLength(1);
      } else {
        // The container was recorded first (a fast driver): the image is in use.
        expect(result.error).toMatch(/image is in use by a container$/);
        expect(made.code).toBe(0);
        store.ok(["delete-container", JSON.parse(made.stdout).id]);
      }
      expect(leftovers(store)).toEqual([]);
    }, 60_000);

    test("two pulls of one image at once both succeed: the second waits for the layer the first is making, and uses it", async () => {
      const layout = join(dirname(bigTar), `layout-${driver}`);
      const layer = { file: bigTar, mediaType: "application/vnd.oci.image.layer.v1.tar", diffId: `sha256:${sha256File(bigTar)}` };
      const image = await writeOciLayout(layout, "many:1", [layer], { architecture: "amd64", os: "linux" });
      const fresh = new TestStore(driver);
      try {
        // The first stops itself once its layer's row is written ('creating') and its directory made.
        const first = start(fresh, ["pull", "-q", `oci:${layout}:many:1`], { stopAt: "after-content-created" });
        let second: Running;
        try {
          await waitUntilStopped(first.pid);
          second = start(fresh, ["pull", "-q", `oci:${layout}:many:1`]);
          await waitFor("the second pull to open the store", () => hasStoreOpen(fresh, second.pid));
          await Bun.sleep(300);
        } finally {
          process.kill(first.pid, "SIGCONT");
        }
        const [a, b] = await Promise.all([first.done, second.done]);
        expect({ first: a.code, second: b.code, stderr: a.stderr + b.stderr }).toEqual({ first: 0, second: 0, stderr: "" });
        const imageId = image.configDigest.slice("sha256:".length);
        expect([a.stdout.trim(), b.stdout.trim()]).toEqual([imageId, imageId]);
        expect(fresh.json(["layers", "-j"]).map((l: any) => l.id)).toEqual(layerIdChain(image.layers.map((l) => l.diffId)));
        expect(leftovers(fresh)).toEqual([]);
      } finally {
        fresh.destroy();
        rmSync(layout, { recursive: true, force: true });
      }
    }, 60_000);

    test("two delete-container of one container: the one that comes second while the first is deleting it is refused", async () => {
      const top = store.json(["create-layer", "-j", big]).id;
      const image = store.json(["create-image", "-j", top]).id;
      const container = store.json(["create-container", "-j", image]);
      // The first deleter stops itself once it has marked the container's layer, before it removes files.
      const first = start(store, ["delete-container", "-j", container.id], { stopAt: "after-delete-mark" });
      let second: Finished;
      try {
        await waitUntilStopped(first.pid);
        expect(databaseHas(store, "SELECT 1 FROM layers WHERE id = ? AND state = 'deleting'", container.layer)).toBe(true);
        second = await start(store, ["delete-container", "-j", container.id]).done;
      } finally {
        process.kill(first.pid, "SIGCONT");
      }
      const done = await first.done;
      expect(done.code).toBe(0);
      expect(second.code).toBe(1);
      expect(JSON.parse(second.stdout)[container.id]).toBe("identifier is not a container");
      expect(store.json(["containers", "-j"])).toEqual([]);
      store.ok(["delete-image", image]);
      expect(leftovers(store)).toEqual([]);
    }, 60_000);

    test("set-image-data on an image deleted while it read its input fails, and a new image with that ID has no stale item", async () => {
      const id = "b".repeat(64);
      store.ok(["create-image", "--id", id]);
      const setter = start(store, ["set-image-data", id, "manifest"], { input: true });
      await waitFor("the store to be open", () => hasStoreOpen(store, setter.pid));
      await Bun.sleep(100);
      expect(store.cli(["delete-image", id]).code).toBe(0);
      await setter.finishInput("written after the deletion");
      const set = await setter.done;
      expect(set.code).toBe(1);
      expect(set.stderr).toBe(`locating image with ID "${id}": image not known\n`);
      store.ok(["create-image", "--id", id]);
      expect(store.json(["image", "-j", id])[0]["big-data-names"]).toBeUndefined();
      expect(leftovers(store)).toEqual([]);
    }, 60_000);
  });
}
