/**
 * Concurrent workers for the concurrency suite: each runs real `oci-storage` processes one after
 * another (Bun.spawn, so all workers' processes run at once) doing a random mix of commands on
 * one store, and records every command with its real-time interval, its outcome and, for
 * successes, its effect on the store.
 */
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, type TestStore } from "../helpers/cli.ts";
import { makeTar } from "../helpers/fixtures.ts";
import type { Effect, FinalState, Kind, OperationRecord, Outcome } from "./history.ts";

/** Refusals another process's work can legitimately cause; anything else is a defect. */
const EXPECTED_REFUSALS: Array<{ pattern: RegExp; unknown?: boolean }> = [
  { pattern: /^layer not known/, unknown: true },
  { pattern: /^image not known/, unknown: true },
  { pattern: /^locating image with ID "[^"]*": image not known/, unknown: true },
  { pattern: /^container not known/, unknown: true },
  { pattern: /^identifier is not a layer, image, or container/, unknown: true },
  { pattern: /^identifier is not a (layer|container|an image)/, unknown: true },
  { pattern: /^identifier is not an image/, unknown: true },
  { pattern: /that name is already in use/ },
  { pattern: /layer has children$/ },
  { pattern: /layer is in use by an image$/ },
  { pattern: /layer is in use by a container$/ },
  { pattern: /image is in use by a container$/ },
];

/** A small seeded PRNG (mulberry32), so a failing run can be told apart by its seed. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAME_POOLS: Record<Kind, string[]> = {
  layer: ["layer-name-0", "layer-name-1", "layer-name-2", "layer-name-3", "layer-name-4"],
  image: ["image-name-0", "image-name-1", "image-name-2", "image-name-3", "image-name-4"],
  container: ["container-name-0", "container-name-1", "container-name-2", "container-name-3", "container-name-4"],
};
const DATA_KEYS = ["manifest", "config", "extra"];
/** What import-layer applies: a small tree, so that layers also get applied content and a recorded layout. */
export const LAYER_TREE = { "etc/": "", "etc/hostname": "concurrent\n", "bin/": "", "bin/tool": "#!/bin/sh\necho hi\n", "bin/alias": "-> tool" };

/** What the workers know about the store, shared between them (the test process is single-threaded). */
class Registry {
  readonly alive: Record<Kind, string[]> = { layer: [], image: [], container: [] };
  readonly dead: Record<Kind, string[]> = { layer: [], image: [], container: [] };
  /** Top layer of each image and layer of each container, for "unknown" refusals and mounts. */
  readonly imageTop = new Map<string, string>();
  readonly containerLayer = new Map<string, string>();

  add(kind: Kind, id: string): void {
    this.alive[kind].push(id);
  }

  remove(kind: Kind, id: string): void {
    const i = this.alive[kind].indexOf(id);
    if (i >= 0) this.alive[kind].splice(i, 1);
    if (!this.dead[kind].includes(id)) this.dead[kind].push(id);
  }
}

export interface RunOptions {
  workers: number;
  rounds: number;
  seed: number;
}

interface Spawned {
  code: number;
  stdout: string;
  stderr: string;
  start: number;
  end: number;
}

async function spawnBinary(argv: string[]): Promise<Spawned> {
  const start = performance.now();
  const proc = Bun.spawn([BINARY, ...argv], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr, start, end: performance.now() };
}

function refusal(message: string): { expected: boolean; unknown: boolean } {
  const found = EXPECTED_REFUSALS.find((r) => r.pattern.test(message));
  return { expected: found !== undefined, unknown: found?.unknown === true };
}

/** One worker: `rounds` commands chosen at random, recorded in `history`. */
class Worker {
  private step = 0;
  /** Mounts this worker holds, as [reference it mounted by, layer ID]. */
  private readonly holds: Array<[string, string]> = [];

  constructor(
    private readonly index: number,
    private readonly store: TestStore,
    private readonly registry: Registry,
    private readonly history: OperationRecord[],
    private readonly random: () => number,
    private readonly scratch: string,
    private readonly layerTar: string,
  ) {}

  private pick<T>(items: T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.random() * items.length)];
  }

  /** Mostly a live object, sometimes one that is gone (to provoke "not known" refusals). */
  private target(kind: Kind): string | undefined {
    const pool = this.random() < 0.85 || this.registry.dead[kind].length === 0 ? this.registry.alive[kind] : this.registry.dead[kind];
    return this.pick(pool);
  }

  private names(kind: Kind, max: number): string[] {
    const count = Math.floor(this.random() * (max + 1));
    return [...new Set(Array.from({ length: count }, () => this.pick(NAME_POOLS[kind])!))];
  }

  private uniqueValue(what: string): string {
    return `${what} by worker ${this.index} step ${this.step} ${Math.floor(this.random() * 1e9)}`;
  }

  /** Runs a command and records it; `onSuccess` turns its output into effects, `onRefusal` adds effects for expected refusals. */
  private async command(
    args: string[],
    onSuccess: (out: Spawned) => Effect[],
    onRefusal: (message: string, unknown: boolean) => Effect[] = () => [],
    errorOf: (out: Spawned) => string = (out) => out.stderr.trim(),
  ): Promise<OperationRecord> {
    const out = await spawnBinary([...this.store.globals, ...args]);
    let outcome: Outcome = "ok";
    let effects: Effect[] = [];
    if (out.code === 0) {
      try {
        effects = onSuccess(out);
      } catch (e) {
        outcome = "unexpected";
        out.stderr += `(output not understood: ${(e as Error).message})`;
      }
    } else {
      const message = errorOf(out);
      const { expected, unknown } = refusal(message);
      outcome = expected && out.code === 1 && !message.includes("\n") ? "refused" : "unexpected";
      if (outcome === "refused") effects = onRefusal(message, unknown);
    }
    const record: OperationRecord = { worker: this.index, step: this.step, argv: args, start: out.start, end: out.end, code: out.code, stdout: out.stdout, stderr: out.stderr, outcome, effects };
    this.history.push(record);
    return record;
  }

  async run(rounds: number): Promise<void> {
    for (this.step = 0; this.step < rounds; this.step++) await this.once();
    // Release what this worker still holds, so the final counts only reflect finished work.
    while (this.holds.length > 0 && this.random() < 0.5) await this.unmount();
  }

  private async once(): Promise<void> {
    const r = this.random();
    if (this.registry.alive.layer.length < 2 || r < 0.14) return this.createLayer();
    if (r < 0.24) return this.createImage();
    if (r < 0.32) return this.createContainer();
    if (r < 0.42) return this.changeNames("add");
    if (r < 0.5) return this.changeNames("set");
    if (r < 0.56) return this.setMetadata();
    if (r < 0.62) return this.setData();
    if (r < 0.68) return this.mount();
    if (r < 0.72 && this.holds.length > 0) return this.unmount();
    if (r < 0.78) return this.deleteLayer();
    if (r < 0.83) return this.deleteImage();
    if (r < 0.88) return this.deleteContainer();
    if (r < 0.95) return this.list();
    return this.exists();
  }

  private async createLayer(): Promise<void> {
    const names = this.names("layer", 2);
    const parent = this.random() < 0.3 ? this.target("layer") : undefined;
    const command = this.random() < 0.25 ? ["import-layer", "-f", this.layerTar] : ["create-layer"];
    const args = [...command, "-j", ...names.flatMap((n) => ["-n", n]), ...(parent ? [parent] : [])];
    await this.command(
      args,
      (out) => {
        const layer = JSON.parse(out.stdout);
        this.registry.add("layer", layer.id);
        return [{ type: "create", kind: "layer", id: layer.id, names: layer.names ?? [] }];
      },
      (message, unknown) => (unknown && parent ? [{ type: "unknown", refs: [{ kind: "layer", id: parent }] }] : nameTaken("layer", names, message)),
    );
  }

  private async createImage(): Promise<void> {
    const names = this.names("image", 1);
    const top = this.target("layer");
    const metadata = this.random() < 0.5 ? this.uniqueValue("image metadata") : undefined;
    const args = ["create-image", "-j", ...names.flatMap((n) => ["-n", n]), ...(metadata ? ["--metadata", metadata] : []), ...(top ? [top] : [])];
    await this.command(
      args,
      (out) => {
        const image = JSON.parse(out.stdout);
        this.registry.add("image", image.id);
        this.registry.imageTop.set(image.id, image.layer ?? "");
        return [{ type: "create", kind: "image", id: image.id, names: image.names ?? [], metadata: metadata ?? "" }];
      },
      (message, unknown) => (unknown && top ? [{ type: "unknown", refs: [{ kind: "layer", id: top }] }] : nameTaken("image", names, message)),
    );
  }

  private async createContainer(): Promise<void> {
    const image = this.target("image");
    if (!image) return this.createImage();
    const names = this.names("container", 1);
    const metadata = this.random() < 0.5 ? this.uniqueValue("container metadata") : undefined;
    const args = ["create-container", "-j", ...names.flatMap((n) => ["-n", n]), ...(metadata ? ["--metadata", metadata] : []), image];
    const top = this.registry.imageTop.get(image);
    await this.command(
      args,
      (out) => {
        const container = JSON.parse(out.stdout);
        this.registry.add("container", container.id);
        this.registry.containerLayer.set(container.id, container.layer);
        return [
          { type: "create", kind: "layer", id: container.layer, names: [] },
          { type: "create", kind: "container", id: container.id, names: container.names ?? [], metadata: metadata ?? "" },
        ];
      },
      (message, unknown) =>
        unknown
          ? [
              {
                type: "unknown",
                refs: [
                  { kind: "image", id: image },
                  ...(top ? [{ kind: "layer" as const, id: top }] : []),
                ],
              },
            ]
          : nameTaken("container", names, message),
    );
  }

  private anyTarget(): { kind: Kind; id: string } | undefined {
    const kind = this.pick<Kind>(["layer", "image", "container"])!;
    const id = this.target(kind);
    return id ? { kind, id } : undefined;
  }

  private async changeNames(mode: "add" | "set"): Promise<void> {
    const target = this.anyTarget();
    if (!target) return this.createLayer();
    const names = this.names(target.kind, 2);
    if (mode === "add" && names.length === 0) names.push(this.pick(NAME_POOLS[target.kind])!);
    await this.command(
      [`${mode}-names`, ...names.flatMap((n) => ["-n", n]), target.id],
      () => [{ type: "names", kind: target.kind, id: target.id, mode, names }],
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [target] }] : []),
    );
  }

  private async setMetadata(): Promise<void> {
    const target = this.anyTarget();
    if (!target) return this.createLayer();
    const value = this.uniqueValue("metadata");
    await this.command(
      ["set-metadata", "-m", value, target.id],
      () => [{ type: "metadata", kind: target.kind, id: target.id, value }],
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [target] }] : []),
    );
  }

  private async setData(): Promise<void> {
    const kind: Kind = this.random() < 0.6 ? "image" : "container";
    const id = this.target(kind);
    if (!id) return this.createImage();
    const key = this.pick(DATA_KEYS)!;
    const value = this.uniqueValue(`data ${key}`);
    const file = join(this.scratch, `data-${this.index}-${this.step}`);
    writeFileSync(file, value);
    const digest = `sha256:${new Bun.CryptoHasher("sha256").update(value).digest("hex")}`;
    await this.command(
      [`set-${kind}-data`, "-f", file, id, key],
      () => [{ type: "data", kind, id, key, digest }],
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [{ kind, id }] }] : []),
    );
  }

  private async mount(): Promise<void> {
    const kind: Kind = this.random() < 0.5 ? "layer" : "container";
    const id = this.target(kind);
    if (!id) return this.createLayer();
    const layer = kind === "container" ? this.registry.containerLayer.get(id)! : id;
    let mountError = "";
    await this.command(
      ["mount", "-j", id],
      (out) => {
        const [result] = JSON.parse(out.stdout);
        if (!result?.mountpoint) throw new Error("no mount point");
        this.holds.push([id, layer]);
        return [{ type: "mount", layer }];
      },
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [{ kind, id }] }] : []),
      (out) => {
        try {
          mountError = JSON.parse(out.stdout)[0]?.error ?? "";
        } catch {
          mountError = out.stderr.trim();
        }
        return mountError;
      },
    );
  }

  private async unmount(): Promise<void> {
    const index = Math.floor(this.random() * this.holds.length);
    const [ref, layer] = this.holds.splice(index, 1)[0]!;
    const kind: Kind = ref === layer ? "layer" : "container";
    await this.command(
      ["unmount", ref],
      () => [{ type: "unmount", layer }],
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [{ kind, id: ref }] }] : []),
      (out) => out.stderr.trim().replace(/ while unmounting \S+$/, ""),
    );
  }

  /** delete-* -j prints {"REF": error-or-result}; the error is the refusal to classify. */
  private deletionError(out: Spawned, ref: string): string {
    try {
      const value = JSON.parse(out.stdout)[ref];
      return typeof value === "string" ? value : (value?.error ?? out.stderr.trim());
    } catch {
      return out.stderr.trim();
    }
  }

  private async deleteLayer(): Promise<void> {
    const id = this.target("layer");
    if (!id) return this.createLayer();
    await this.command(
      ["delete-layer", "-j", id],
      () => {
        this.registry.remove("layer", id);
        return [{ type: "delete", kind: "layer", id }];
      },
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [{ kind: "layer", id }] }] : []),
      (out) => this.deletionError(out, id),
    );
  }

  private async deleteImage(): Promise<void> {
    const id = this.target("image");
    if (!id) return this.createImage();
    await this.command(
      ["delete-image", "-j", id],
      (out) => {
        const layers: string[] = JSON.parse(out.stdout)[id]?.["deleted-layers"] ?? [];
        this.registry.remove("image", id);
        for (const layer of layers) this.registry.remove("layer", layer);
        return [{ type: "delete", kind: "image", id }, ...layers.map((layer): Effect => ({ type: "delete", kind: "layer", id: layer }))];
      },
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [{ kind: "image", id }] }] : []),
      (out) => this.deletionError(out, id),
    );
  }

  private async deleteContainer(): Promise<void> {
    const id = this.target("container");
    if (!id) return this.createContainer();
    const layer = this.registry.containerLayer.get(id)!;
    await this.command(
      ["delete-container", "-j", id],
      () => {
        this.registry.remove("container", id);
        this.registry.remove("layer", layer);
        return [
          { type: "delete", kind: "container", id },
          { type: "delete", kind: "layer", id: layer },
        ];
      },
      (_, unknown) => (unknown ? [{ type: "unknown", refs: [{ kind: "container", id }] }] : []),
      (out) => this.deletionError(out, id),
    );
  }

  private async list(): Promise<void> {
    const kind = this.pick<Kind>(["layer", "image", "container"])!;
    await this.command([`${kind}s`, "-j"], (out) => {
      const items: Array<{ id: string; names?: string[] }> = JSON.parse(out.stdout) ?? [];
      return [{ type: "listing", kind, ids: items.map((i) => i.id), names: items.flatMap((i) => i.names ?? []) }];
    });
  }

  private async exists(): Promise<void> {
    const kind = this.pick<Kind>(["layer", "image", "container"])!;
    const id = this.target(kind);
    if (!id) return this.list();
    const flag = { layer: "-l", image: "-i", container: "-c" }[kind];
    // exists prints plain existence and exits 1 when the (restricted) match is missing: both are answers.
    const out = await spawnBinary([...this.store.globals, "exists", "-j", flag, id]);
    const found = out.code === 0;
    const understood = (out.code === 0 || out.code === 1) && out.stderr === "" && JSON.parse(out.stdout)[id] === found;
    this.history.push({
      worker: this.index,
      step: this.step,
      argv: ["exists", "-j", flag, id],
      start: out.start,
      end: out.end,
      code: out.code,
      stdout: out.stdout,
      stderr: out.stderr,
      outcome: understood ? "ok" : "unexpected",
      effects: understood ? [{ type: "exists", kind, id, found }] : [],
    });
  }
}

/** For a creation refused because a name was taken: with exactly one name, which one is known. */
function nameTaken(kind: Kind, names: string[], message: string): Effect[] {
  return /already in use/.test(message) && names.length === 1 ? [{ type: "name-taken", kind, name: names[0]! }] : [];
}

/** Runs the workers at once on one store and returns every command they ran. */
export async function runWorkers(store: TestStore, options: RunOptions): Promise<OperationRecord[]> {
  const registry = new Registry();
  const history: OperationRecord[] = [];
  const scratch = mkdtempSync(join(tmpdir(), "oci-concurrency-data-"));
  try {
    const seeds = randomSource(options.seed);
    const layerTar = makeTar(LAYER_TREE);
    const workers = Array.from({ length: options.workers }, (_, i) => new Worker(i, store, registry, history, randomSource(Math.floor(seeds() * 2 ** 32)), scratch, layerTar));
    await Promise.all(workers.map((w) => w.run(options.rounds)));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return history;
}

/** Reads the store's final state through the binary (listings) and the run root's mount counts. */
export function readFinalState(store: TestStore): FinalState {
  const objects = { layer: new Map(), image: new Map(), container: new Map() } as FinalState["objects"];
  for (const kind of ["layer", "image", "container"] as Kind[]) {
    const items: any[] = store.json([`${kind}s`, "-j"]) ?? [];
    for (const item of items) {
      const data = new Map<string, string>(Object.entries(item["big-data-digests"] ?? {}) as Array<[string, string]>);
      objects[kind].set(item.id, { names: item.names ?? [], metadata: item.metadata ?? "", data });
    }
  }
  return { objects, mountCounts: mountCounts(store) };
}

/** Mount counts as the run root records them (rows with a count above zero). */
export function mountCounts(store: TestStore): Map<string, number> {
  const counts = new Map<string, number>();
  const path = join(store.run, "mounts.db");
  if (!existsSync(path)) return counts;
  const db = new Database(path, { readonly: true });
  try {
    for (const row of db.query("SELECT layer, count FROM mounts WHERE count > 0").all() as Array<{ layer: string; count: number }>) counts.set(row.layer, row.count);
  } finally {
    db.close();
  }
  return counts;
}
