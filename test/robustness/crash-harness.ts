/**
 * The crash-safety harness: real oci-storage processes on a throw-away store, killed with
 * SIGKILL at a random moment or at a named crash point (OCI_STORAGE_CRASH_AT), followed by the
 * checks DESIGN.md invariant 2 promises. Shared by test/robustness/crash.test.ts (few rounds)
 * and scripts/crash-soak.ts (many rounds). Everything is asynchronous so that stores of
 * different drivers can be worked on at the same time.
 */
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeOciLayout } from "../../scripts/oci-layout.ts";
import { layerIdChain } from "../../src/transports/manifest.ts";
import { BINARY, type TestStore } from "../helpers/cli.ts";

/** The big layer tar made by GNU tar, and the other inputs the scenarios use. */
export interface CrashInputs {
  tar: string;
  digest: string;
  /** Entries below the tar's root: files, directories and a symlink. */
  entries: number;
  /** A small tar, and an item of data too. */
  smallTar: string;
  smallDigest: string;
  /** A data item big enough that writing it takes a while. */
  dataFile: string;
  dataDigest: string;
  /** An OCI layout holding IMAGE_REF: the big tar as it is, then the small tar gzipped. */
  layout: string;
  /** The same layout as an oci-archive: tar. */
  ociArchive: string;
  /** The layer IDs and image ID a pull of it stores. */
  pulled: { layers: Array<{ id: string; diffId: string }>; image: string };
  dir: string;
}

/** The ref of the image in CrashInputs.layout, and the name a pull gives it. */
/** The tag of the image in the crash inputs' OCI layout. */
export const IMAGE_REF = "crash:1";

function fail(message: string): never {
  throw new Error(message);
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}

/** sha256 of a file, streamed. */
export async function fileDigest(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return `sha256:${hasher.digest("hex")}`;
}

function tarTree(root: string, out: string): void {
  const p = Bun.spawnSync(["tar", "-C", root, "--owner=0", "--group=0", "--mtime=2024-05-01 10:00:00", "--sort=name", "-cf", out, "."], { stderr: "pipe" });
  if (p.exitCode !== 0) fail(`tar failed: ${p.stderr.toString()}`);
}

const DIRECTORIES = 16;

/** Writes the inputs once: a tar of `megabytes` of random files in 16 directories, a small tar and a data item. */
export async function makeCrashInputs(megabytes: number): Promise<CrashInputs> {
  const dir = mkdtempSync(join(tmpdir(), "oci-crash-"));
  const tree = join(dir, "tree");
  const fileBytes = 256 * 1024;
  const files = Math.max(DIRECTORIES, Math.round((megabytes * 1024 * 1024) / fileBytes));
  for (let i = 0; i < files; i++) {
    const sub = join(tree, `d${i % DIRECTORIES}`);
    if (i < DIRECTORIES) mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `f${i}.bin`), randomBytes(fileBytes));
  }
  symlinkSync("d0/f0.bin", join(tree, "link"));
  const tar = join(dir, "big.tar");
  tarTree(tree, tar);
  rmSync(tree, { recursive: true, force: true });
  const small = join(dir, "small");
  mkdirSync(join(small, "etc"), { recursive: true });
  writeFileSync(join(small, "etc", "hostname"), "crash-test\n");
  const smallTar = join(dir, "small.tar");
  tarTree(small, smallTar);
  const dataFile = join(dir, "data.bin");
  writeFileSync(dataFile, randomBytes(8 * 1024 * 1024));
  const digest = await fileDigest(tar);
  const smallDigest = await fileDigest(smallTar);
  const layout = join(dir, "layout");
  const smallGz = `${smallTar}.gz`;
  writeFileSync(smallGz, Bun.gzipSync(readFileSync(smallTar)));
  const written = await writeOciLayout(
    layout,
    IMAGE_REF,
    [
      { file: tar, mediaType: "application/vnd.oci.image.layer.v1.tar", diffId: digest },
      { file: smallGz, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: smallDigest },
    ],
    { architecture: "amd64", os: "linux" },
  );
  const ociArchive = join(dir, "image.oci.tar");
  tarTree(layout, ociArchive);
  const layerIds = layerIdChain([digest, smallDigest]);
  return {
    tar,
    digest,
    entries: files + DIRECTORIES + 1,
    smallTar,
    smallDigest,
    dataFile,
    dataDigest: await fileDigest(dataFile),
    layout,
    ociArchive,
    pulled: { layers: layerIds.map((id, i) => ({ id, diffId: [digest, smallDigest][i]! })), image: written.configDigest.slice(7) },
    dir,
  };
}

/** Removes the inputs' files. */
export function removeCrashInputs(inputs: CrashInputs): void {
  rmSync(inputs.dir, { recursive: true, force: true });
}

export interface CliResult {
  code: number;
  /** The signal that ended the process, if one did. */
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** How a process is stopped: after a delay, or at a named crash point. */
export type Kill = { delayMs: number } | { crashAt: string };

/** Runs oci-storage on a store without blocking; optionally killed as asked. */
export async function cli(store: TestStore, args: string[], kill?: Kill, prefix: string[] = []): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== "OCI_STORAGE_CRASH_AT") env[k] = v;
  if (kill && "crashAt" in kill) env.OCI_STORAGE_CRASH_AT = kill.crashAt;
  const proc = Bun.spawn([...prefix, BINARY, ...store.globals, ...args], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const stdout = new Response(proc.stdout).text();
  const stderr = new Response(proc.stderr).text();
  if (kill && "delayMs" in kill) {
    await Bun.sleep(kill.delayMs);
    proc.kill("SIGKILL");
  }
  const code = await proc.exited;
  return { code, signal: proc.signalCode === null ? null : String(proc.signalCode), stdout: await stdout, stderr: await stderr };
}

/** Runs a command that must succeed; returns its stdout. */
export async function ok(store: TestStore, args: string[]): Promise<string> {
  const r = await cli(store, args);
  if (r.code !== 0) fail(`oci-storage ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function json<T>(store: TestStore, args: string[]): Promise<T> {
  return JSON.parse(await ok(store, args));
}

export function newId(): string {
  return randomBytes(32).toString("hex");
}

export interface LayerJson {
  id: string;
  parent?: string;
  "diff-digest"?: string;
  created?: string;
  uidmap?: unknown[];
}

export async function listLayers(store: TestStore): Promise<LayerJson[]> {
  return (await json<LayerJson[] | null>(store, ["layers", "--json"])) ?? [];
}

async function listContainers(store: TestStore): Promise<Array<{ id: string; layer: string; image: string }>> {
  return (await json<Array<{ id: string; layer: string; image: string }> | null>(store, ["containers", "--json"])) ?? [];
}

/** Number of changes of a layer against its parent. */
async function changeCount(store: TestStore, layer: string): Promise<number> {
  return ((await json<unknown[] | null>(store, ["changes", "--json", layer])) ?? []).length;
}

/** The directory holding a layer's own files (vfs: the whole tree; overlay: its upper dir). */
export function layerContentDir(store: TestStore, layer: string): string {
  return store.driver === "vfs" ? join(store.graph, "vfs", "dir", layer) : join(store.graph, "overlay", layer, "diff");
}

function entryCount(dir: string): number {
  return readdirSync(dir, { recursive: true }).length;
}

/** The state a store's rounds share. */
export interface CrashContext {
  store: TestStore;
  inputs: CrashInputs;
  /** A layer holding the big tree, parent of the layers whose creation copies it (vfs). */
  bigLayer: string;
  /** An image whose top layer is bigLayer. */
  image: string;
  /** Checks content byte for byte (diff of whole layers) instead of by record and entry count. */
  thorough: boolean;
}

/** Imports the big layer and makes an image of it. */
export async function prepareContext(store: TestStore, inputs: CrashInputs, thorough: boolean): Promise<CrashContext> {
  const bigLayer = newId();
  await ok(store, ["import-layer", "--id", bigLayer, "-f", inputs.tar]);
  const image = newId();
  await ok(store, ["create-image", "--id", image, bigLayer]);
  return { store, inputs, bigLayer, image, thorough };
}

export type RoundState = Record<string, string>;

/** One killable operation: set-up, the command to kill, what must hold after, and clean-up. */
export interface Scenario {
  name: string;
  /** Crash points this operation passes through. */
  crashPoints: string[];
  /** Drivers the scenario applies to (default: all). */
  drivers?: string[];
  prepare(ctx: CrashContext): Promise<RoundState>;
  command(ctx: CrashContext, round: RoundState): string[];
  /** Checks what is visible after the crash and recovery; returns true when the operation had finished. */
  verify(ctx: CrashContext, round: RoundState, layers: LayerJson[]): Promise<boolean>;
  /** Checks the result once the operation has finished (after a repeat when it had not). */
  verifyDone(ctx: CrashContext, round: RoundState): Promise<void>;
  /** Removes what the round made, keeping the shared state. */
  cleanup(ctx: CrashContext, round: RoundState): Promise<void>;
}

/** A layer an applied tar made: its record and its content both say so. */
async function expectApplied(ctx: CrashContext, id: string, layers?: LayerJson[]): Promise<void> {
  const layer = (layers ?? (await listLayers(ctx.store))).find((l) => l.id === id);
  check(layer, `layer ${id} is not listed`);
  check(layer["diff-digest"] === ctx.inputs.digest, `layer ${id} records diff digest ${layer["diff-digest"]}, not ${ctx.inputs.digest}`);
  if (ctx.thorough) {
    const out = join(ctx.store.dir, `diff-${id}.tar`);
    await ok(ctx.store, ["diff", "-u", "-f", out, id]);
    const actual = await fileDigest(out);
    rmSync(out, { force: true });
    check(actual === ctx.inputs.digest, `layer ${id} diffs to ${actual}, not to the applied tar`);
  } else {
    const entries = entryCount(layerContentDir(ctx.store, id));
    check(entries === ctx.inputs.entries, `layer ${id} holds ${entries} entries, not the tar's ${ctx.inputs.entries}`);
  }
}

/** The maps the ID-mapped scenarios ask for, and the host ID of container root under them. */
const SHIFTED_MAPS = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"];
const SHIFTED_ROOT = 100000;

/** A mapped top layer of the big image: the whole big tree, each file re-owned to SHIFTED_MAPS. */
function expectShiftedCopy(ctx: CrashContext, id: string): void {
  const dir = layerContentDir(ctx.store, id);
  const entries = entryCount(dir);
  check(entries === ctx.inputs.entries, `mapped top layer ${id} holds ${entries} entries, not the image's ${ctx.inputs.entries}`);
  const owner = lstatSync(join(dir, "d0", "f0.bin")).uid;
  check(owner === SHIFTED_ROOT, `a file of mapped top layer ${id} is owned by ${owner}, not ${SHIFTED_ROOT}`);
}

/** The mapped top layers an image lists. */
async function mappedLayersOf(store: TestStore, image: string): Promise<string[]> {
  const images = (await json<Array<{ id: string; "mapped-layers"?: string[] }> | null>(store, ["images", "--json"])) ?? [];
  return images.find((i) => i.id === image)?.["mapped-layers"] ?? [];
}

/** Points on the way of every new layer; create-layer passes all, others only the ones their own code adds to. */
const CREATE_POINTS = ["after-row-insert", "after-content-created", "before-complete"];

/** The operations the suite kills. */
/** A pull of the inputs' two-layer image from `source`, killed at `crashPoints` and after random delays. */
function pullScenario(name: string, crashPoints: string[], source: (inputs: CrashInputs) => string): Scenario {
  return {
    name,
    crashPoints,
    prepare: async () => ({}),
    command: (ctx) => ["pull", "-q", source(ctx.inputs)],
    async verify(ctx, _r, layers) {
      const { pulled } = ctx.inputs;
      for (const layer of pulled.layers) {
        const listed = layers.find((l) => l.id === layer.id);
        if (listed) check(listed["diff-digest"] === layer.diffId, `pulled layer ${layer.id} is listed with diff digest ${listed["diff-digest"]}, not ${layer.diffId}: half-made`);
      }
      const image = ((await json<Array<{ id: string; layer: string }> | null>(ctx.store, ["images", "--json"])) ?? []).find((i) => i.id === pulled.image);
      if (!image) return false;
      check(pulled.layers.every((layer) => layers.some((l) => l.id === layer.id)), `image ${pulled.image} is listed without all its layers`);
      return true;
    },
    async verifyDone(ctx) {
      const { pulled } = ctx.inputs;
      const image = (await json<Array<{ id: string; names?: string[]; layer: string }>>(ctx.store, ["images", "--json"])).find((i) => i.id === pulled.image);
      check(image && image.layer === pulled.layers[1]!.id && image.names?.includes(`localhost/${IMAGE_REF}`), `image ${pulled.image} is not there whole after the pull: ${JSON.stringify(image)}`);
      const layers = await listLayers(ctx.store);
      await expectApplied(ctx, pulled.layers[0]!.id, layers);
      check(layers.find((l) => l.id === pulled.layers[1]!.id)?.["diff-digest"] === ctx.inputs.smallDigest, "the upper layer of the pulled image is not the small tar");
    },
    async cleanup(ctx) {
      await ok(ctx.store, ["delete-image", ctx.inputs.pulled.image]);
      const left = new Set((await listLayers(ctx.store)).map((l) => l.id));
      for (const layer of [...ctx.inputs.pulled.layers].reverse()) if (left.has(layer.id)) await ok(ctx.store, ["delete-layer", layer.id]);
    },
  };
}

export const SCENARIOS: Scenario[] = [
  {
    name: "import-layer of a big tar",
    crashPoints: ["after-content-created", "mid-apply", "before-complete"],
    prepare: async () => ({ id: newId() }),
    command: (ctx, r) => ["import-layer", "--id", r.id!, "-f", ctx.inputs.tar],
    async verify(ctx, r, layers) {
      if (!layers.some((l) => l.id === r.id)) return false;
      await expectApplied(ctx, r.id!, layers);
      return true;
    },
    verifyDone: (ctx, r) => expectApplied(ctx, r.id!),
    cleanup: async (ctx, r) => void (await ok(ctx.store, ["delete-layer", r.id!])),
  },
  {
    name: "applydiff of a big tar to an empty layer",
    crashPoints: ["mid-apply", "before-complete"],
    async prepare(ctx) {
      const id = newId();
      await ok(ctx.store, ["create-layer", "--id", id, "-n", `target-${id.slice(0, 12)}`]);
      await ok(ctx.store, ["set-layer-data", "-f", ctx.inputs.smallTar, id, "note"]);
      return { id };
    },
    command: (ctx, r) => ["applydiff", "-f", ctx.inputs.tar, r.id!],
    async verify(ctx, r, layers) {
      const layer = layers.find((l) => l.id === r.id);
      check(layer, `layer ${r.id} that applydiff was changing is gone`);
      const data = await ok(ctx.store, ["get-layer-data", `target-${r.id!.slice(0, 12)}`, "note"]);
      check(data.length > 0, `layer ${r.id} lost its name or its data item`);
      if (layer["diff-digest"] === ctx.inputs.digest) {
        await expectApplied(ctx, r.id!, layers);
        return true;
      }
      check(layer["diff-digest"] === undefined, `layer ${r.id} records diff digest ${layer["diff-digest"]} after an interrupted apply`);
      const entries = entryCount(layerContentDir(ctx.store, r.id!));
      check(entries === 0, `layer ${r.id} holds ${entries} half-applied entries after an interrupted apply`);
      return false;
    },
    verifyDone: (ctx, r) => expectApplied(ctx, r.id!),
    cleanup: async (ctx, r) => void (await ok(ctx.store, ["delete-layer", r.id!])),
  },
  {
    name: "create-layer on a big parent",
    crashPoints: CREATE_POINTS,
    prepare: async () => ({ id: newId() }),
    command: (ctx, r) => ["create-layer", "--id", r.id!, ctx.bigLayer],
    async verify(ctx, r, layers) {
      const layer = layers.find((l) => l.id === r.id);
      if (!layer) return false;
      check(layer.parent === ctx.bigLayer, `layer ${r.id} has parent ${layer.parent}`);
      check((await changeCount(ctx.store, r.id!)) === 0, `listed layer ${r.id} differs from its parent: a half-made copy`);
      return true;
    },
    async verifyDone(ctx, r) {
      check((await changeCount(ctx.store, r.id!)) === 0, `layer ${r.id} differs from its parent`);
    },
    cleanup: async (ctx, r) => void (await ok(ctx.store, ["delete-layer", r.id!])),
  },
  {
    name: "delete-layer of a big layer",
    crashPoints: ["after-delete-mark", "after-content-removed"],
    async prepare(ctx) {
      const id = newId();
      await ok(ctx.store, ["create-layer", "--id", id, ctx.bigLayer]);
      return { id };
    },
    command: (_ctx, r) => ["delete-layer", r.id!],
    async verify(ctx, r, layers) {
      if (!layers.some((l) => l.id === r.id)) return true;
      check((await changeCount(ctx.store, r.id!)) === 0, `layer ${r.id} is still listed with part of its content deleted`);
      return false;
    },
    async verifyDone(ctx, r) {
      check(!(await listLayers(ctx.store)).some((l) => l.id === r.id), `deleted layer ${r.id} is still listed`);
    },
    cleanup: async () => {},
  },
  {
    name: "create-container from a big image",
    crashPoints: ["after-content-created", "before-complete"],
    prepare: async () => ({ id: newId() }),
    command: (ctx, r) => ["create-container", "--id", r.id!, ctx.image],
    async verify(ctx, r, layers) {
      const container = (await listContainers(ctx.store)).find((c) => c.id === r.id);
      if (!container) return false;
      check(layers.some((l) => l.id === container.layer), `container ${r.id} is listed but its layer is not`);
      check((await changeCount(ctx.store, container.layer)) === 0, `container ${r.id}'s new layer differs from the image`);
      return true;
    },
    async verifyDone(ctx, r) {
      const container = (await listContainers(ctx.store)).find((c) => c.id === r.id);
      check(container, `container ${r.id} is not listed`);
      check(existsSync(layerContentDir(ctx.store, container.layer)), `container ${r.id}'s layer has no content directory`);
    },
    cleanup: async (ctx, r) => void (await ok(ctx.store, ["delete-container", r.id!])),
  },
  {
    name: "create-container with other ID maps than its image (a mapped top layer)",
    crashPoints: ["after-row-insert", "after-content-created", "before-mapped-layer-complete", "before-complete"],
    async prepare(ctx) {
      const image = newId();
      await ok(ctx.store, ["create-image", "--id", image, ctx.bigLayer]);
      return { id: newId(), image };
    },
    command: (_ctx, r) => ["create-container", "--id", r.id!, ...SHIFTED_MAPS, r.image!],
    async verify(ctx, r, layers) {
      const mapped = await mappedLayersOf(ctx.store, r.image!);
      check(mapped.length <= 1, `image ${r.image} lists ${mapped.length} mapped top layers for one set of maps`);
      for (const id of mapped) {
        check(layers.some((l) => l.id === id), `image ${r.image} lists mapped top layer ${id}, which is not listed`);
        expectShiftedCopy(ctx, id);
      }
      const containers = await listContainers(ctx.store);
      const unowned = layers.filter((l) => l.uidmap && !mapped.includes(l.id) && !containers.some((c) => c.layer === l.id));
      check(unowned.length === 0, `layers ${JSON.stringify(unowned.map((l) => l.id))} with maps belong to no image and no container`);
      const container = containers.find((c) => c.id === r.id);
      if (!container) return false;
      check(layers.find((l) => l.id === container.layer)?.parent === mapped[0], `container ${r.id}'s layer is not on the image's mapped top layer`);
      return true;
    },
    async verifyDone(ctx, r) {
      const mapped = await mappedLayersOf(ctx.store, r.image!);
      check(mapped.length === 1, `image ${r.image} lists ${mapped.length} mapped top layers, not 1`);
      expectShiftedCopy(ctx, mapped[0]!);
      const container = (await listContainers(ctx.store)).find((c) => c.id === r.id);
      check(container, `container ${r.id} is not listed`);
      check((await listLayers(ctx.store)).find((l) => l.id === container.layer)?.parent === mapped[0], `container ${r.id}'s layer is not on the mapped top layer`);
    },
    async cleanup(ctx, r) {
      await ok(ctx.store, ["delete-container", r.id!]);
      await ok(ctx.store, ["delete-image", r.image!]);
    },
  },
  {
    name: "delete-image with a mapped top layer",
    crashPoints: ["after-delete-mark", "after-content-removed"],
    async prepare(ctx) {
      const image = newId();
      await ok(ctx.store, ["create-image", "--id", image, ctx.bigLayer]);
      const container = newId();
      await ok(ctx.store, ["create-container", "--id", container, ...SHIFTED_MAPS, image]);
      await ok(ctx.store, ["delete-container", container]);
      const mapped = await mappedLayersOf(ctx.store, image);
      check(mapped.length === 1, `image ${image} lists ${mapped.length} mapped top layers, not 1`);
      return { image, mapped: mapped[0]! };
    },
    command: (_ctx, r) => ["delete-image", r.image!],
    async verify(ctx, r, layers) {
      const images = (await json<Array<{ id: string }> | null>(ctx.store, ["images", "--json"])) ?? [];
      const listed = layers.some((l) => l.id === r.mapped);
      if (!images.some((i) => i.id === r.image)) {
        check(!listed, `image ${r.image} is gone but its mapped top layer ${r.mapped} is still listed`);
        return true;
      }
      check(listed, `image ${r.image} is listed without its mapped top layer ${r.mapped}`);
      expectShiftedCopy(ctx, r.mapped!);
      return false;
    },
    async verifyDone(ctx, r) {
      check(!(await listLayers(ctx.store)).some((l) => l.id === r.mapped), `mapped top layer ${r.mapped} outlived its image`);
      check(!existsSync(layerContentDir(ctx.store, r.mapped!)), `mapped top layer ${r.mapped} left its content`);
    },
    cleanup: async () => {},
  },
  {
    name: "delete-container",
    crashPoints: ["after-delete-mark", "mid-container-delete", "after-content-removed"],
    async prepare(ctx) {
      const id = newId();
      await ok(ctx.store, ["create-container", "--id", id, ctx.image]);
      // What get-container-dir and get-container-run-dir would create, with a file in each.
      for (const root of [ctx.store.graph, ctx.store.run]) {
        const dir = join(root, `${ctx.store.driver}-containers`, id, "userdata");
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, "state"), "x");
      }
      return { id };
    },
    command: (_ctx, r) => ["delete-container", r.id!],
    async verify(ctx, r, layers) {
      const container = (await listContainers(ctx.store)).find((c) => c.id === r.id);
      if (!container) {
        for (const root of [ctx.store.graph, ctx.store.run]) {
          const dir = join(root, `${ctx.store.driver}-containers`, r.id!);
          check(!existsSync(dir), `deleted container ${r.id} left its directory ${dir}`);
        }
        return true;
      }
      check(layers.some((l) => l.id === container.layer), `container ${r.id} is listed but its layer is gone`);
      return false;
    },
    async verifyDone(ctx, r) {
      check(!(await listContainers(ctx.store)).some((c) => c.id === r.id), `deleted container ${r.id} is still listed`);
    },
    cleanup: async () => {},
  },
  {
    name: "set-image-data of a big item",
    crashPoints: [],
    async prepare(ctx) {
      await ok(ctx.store, ["set-image-data", "-f", ctx.inputs.smallTar, ctx.image, "blob"]);
      return {};
    },
    command: (ctx) => ["set-image-data", "-f", ctx.inputs.dataFile, ctx.image, "blob"],
    async verify(ctx) {
      const digest = (await ok(ctx.store, ["get-image-data-digest", ctx.image, "blob"])).trim();
      if (digest === ctx.inputs.dataDigest) return true;
      check(digest === ctx.inputs.smallDigest, `image data item has digest ${digest}: neither the old nor the new value`);
      return false;
    },
    async verifyDone(ctx) {
      const out = join(ctx.store.dir, "data.out");
      await ok(ctx.store, ["get-image-data", "-f", out, ctx.image, "blob"]);
      const digest = await fileDigest(out);
      rmSync(out, { force: true });
      check(digest === ctx.inputs.dataDigest, "the image data item does not hold what was written");
    },
    cleanup: async () => {},
  },
  {
    name: "diff of a big layer",
    crashPoints: [],
    prepare: async (ctx) => ({ out: join(ctx.store.dir, "killed-diff.tar") }),
    command: (ctx, r) => ["diff", "-u", "-f", r.out!, ctx.bigLayer],
    verify: async () => false,
    async verifyDone(ctx, r) {
      check((await fileDigest(r.out!)) === ctx.inputs.digest, "diff of the big layer does not reproduce its tar");
    },
    cleanup: async (_ctx, r) => rmSync(r.out!, { force: true }),
  },
  {
    name: "mount of a layer",
    crashPoints: ["after-kernel-mount"],
    drivers: ["overlay"],
    async prepare(ctx) {
      const id = newId();
      await ok(ctx.store, ["create-layer", "--id", id, ctx.bigLayer]);
      return { id };
    },
    command: (_ctx, r) => ["mount", r.id!],
    verify: async (ctx, r) => (await mountedLayers(ctx.store, [r.id!])).length === 1,
    async verifyDone(ctx, r) {
      check((await mountedLayers(ctx.store, [r.id!])).length === 1, `layer ${r.id} is not mounted after mount`);
      await ok(ctx.store, ["unmount", r.id!]);
    },
    cleanup: async (ctx, r) => void (await ok(ctx.store, ["delete-layer", r.id!])),
  },
  pullScenario("pull of a two-layer image", ["after-row-insert", "mid-apply", "before-complete", "before-image-commit"], (inputs) => `oci:${inputs.layout}:${IMAGE_REF}`),
  // The archive is read by seeking to its members; the crash points are the ones the layers and the image pass.
  pullScenario("pull of a two-layer image from an OCI archive", ["mid-apply", "before-image-commit"], (inputs) => `oci-archive:${inputs.ociArchive}:${IMAGE_REF}`),
  {
    name: "recovery after an interrupted import",
    crashPoints: ["after-recovery-claim"],
    async prepare(ctx) {
      const id = newId();
      const killed = await cli(ctx.store, ["import-layer", "--id", id, "-f", ctx.inputs.tar], { crashAt: "before-complete" });
      check(killed.signal === "SIGKILL", "the import to recover from was not stopped");
      return { id };
    },
    // Any command recovers when it opens the store; this one is killed while it does.
    command: () => ["layers"],
    async verify(_ctx, r, layers) {
      check(!layers.some((l) => l.id === r.id), `half-imported layer ${r.id} is listed`);
      return true;
    },
    verifyDone: async () => {},
    cleanup: async () => {},
  },
  {
    name: "recovery after an interrupted applydiff",
    crashPoints: ["after-recovery-claim"],
    async prepare(ctx) {
      const id = newId();
      await ok(ctx.store, ["create-layer", "--id", id]);
      const killed = await cli(ctx.store, ["applydiff", "-f", ctx.inputs.tar, id], { crashAt: "before-complete" });
      check(killed.signal === "SIGKILL", "the applydiff to recover from was not stopped");
      return { id };
    },
    command: () => ["layers"],
    async verify(ctx, r, layers) {
      const layer = layers.find((l) => l.id === r.id);
      check(layer && layer["diff-digest"] === undefined, `layer ${r.id} is not listed as empty after its interrupted apply was recovered`);
      const entries = entryCount(layerContentDir(ctx.store, r.id!));
      check(entries === 0, `layer ${r.id} holds ${entries} entries after its interrupted apply was recovered`);
      return true;
    },
    verifyDone: async () => {},
    cleanup: async (ctx, r) => void (await ok(ctx.store, ["delete-layer", r.id!])),
  },
];

/** Scenarios that apply to a driver. */
export function scenariosFor(driver: string): Scenario[] {
  return SCENARIOS.filter((s) => !s.drivers || s.drivers.includes(driver));
}

/** The layers among ids that `mounted` says are mounted. */
export async function mountedLayers(store: TestStore, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  return (await ok(store, ["mounted", ...ids]))
    .split("\n")
    .filter((line) => line.endsWith(" mounted"))
    .map((line) => line.slice(0, -" mounted".length));
}

/** Overlay-type mounts below a directory, from this process's mount table. */
export function kernelMountsUnder(dir: string): string[] {
  const points: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    const path = fields[4]?.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    const fsType = fields[fields.indexOf("-") + 1];
    if (path && path.startsWith(`${dir}/`) && (fsType === "overlay" || fsType?.startsWith("fuse."))) points.push(path);
  }
  return points;
}

/** The layer IDs the driver has directories for, read from the graph root directly. */
export function driverLayerDirs(store: TestStore): string[] {
  if (store.driver === "vfs") return readdirSync(join(store.graph, "vfs", "dir")).sort();
  const home = join(store.graph, "overlay");
  return readdirSync(home)
    .filter((name) => name !== "l" && lstatSync(join(home, name)).isDirectory())
    .sort();
}

/** What `check --json` reports. */
export interface CheckProblem {
  kind: string;
  id: string;
  problem: string;
  repairable: boolean;
}

export async function checkJson(store: TestStore): Promise<{ code: number; problems: CheckProblem[] }> {
  const r = await cli(store, ["check", "--json"]);
  return { code: r.code, problems: JSON.parse(r.stdout) };
}

/** Read-only commands run after a crash; each round runs one (the soak script all of them). */
function readCommands(ctx: CrashContext): string[][] {
  return [["images"], ["containers"], ["status"], ["mounted", ctx.bigLayer], ["layer", ctx.bigLayer], ["image", ctx.image], ["diffsize", ctx.bigLayer]];
}

let roundCounter = 0;

/** What one round saw. */
export interface RoundReport {
  killed: boolean;
  finishedBeforeKill: boolean;
  problemsBeforeRecovery: CheckProblem[];
  /** How long the repeated operation ran, when it was repeated. */
  repeatMs?: number;
}

/**
 * One round: prepare, run and kill, then check invariant 2: `check` finds only repairable
 * problems, commands work, nothing half-made is listed, after the next writing command `check`
 * is clean and no orphan directory or mount is left, and repeating the operation succeeds.
 */
export async function crashRound(ctx: CrashContext, scenario: Scenario, kill: Kill): Promise<RoundReport> {
  const { store } = ctx;
  const round = await scenario.prepare(ctx);
  const args = scenario.command(ctx, round);
  const result = await cli(store, args, kill);
  const killed = result.signal === "SIGKILL";
  check(killed || result.code === 0, `${args.join(" ")} failed on its own (exit ${result.code}): ${result.stderr}`);

  // Before any other command recovers, whatever the crash left is found, and can be repaired.
  const before = await checkJson(store);
  check(before.code === (before.problems.length === 0 ? 0 : 1), `check exited ${before.code} with ${before.problems.length} problems`);
  for (const p of before.problems) check(p.repairable, `the crash left a problem check cannot repair: ${p.kind} ${p.id}: ${p.problem}`);

  // Commands work (the first one to open the store recovers), and nothing half-made is listed.
  const layers = await listLayers(store);
  const reads = readCommands(ctx);
  for (const command of ctx.thorough ? reads : [reads[roundCounter++ % reads.length]!]) await ok(store, command);
  const finished = await scenario.verify(ctx, round, layers);

  // After the next writing command, check is clean and no orphan directory or mount is left.
  await ok(store, ["set-metadata", "-m", `after ${scenario.name}`, ctx.image]);
  const after = await checkJson(store);
  check(after.code === 0 && after.problems.length === 0, `after recovery check still finds: ${JSON.stringify(after.problems)}`);
  const listed = layers.map((l) => l.id).sort();
  const dirs = driverLayerDirs(store);
  check(JSON.stringify(dirs) === JSON.stringify(listed), `driver directories ${JSON.stringify(dirs)} differ from the listed layers ${JSON.stringify(listed)}`);
  const kernelMounts = kernelMountsUnder(store.dir);
  if (kernelMounts.length > 0) {
    const counted = await mountedLayers(store, listed);
    check(kernelMounts.length <= counted.length, `kernel mounts ${JSON.stringify(kernelMounts)} are left that no counted mount explains`);
  }

  // Repeating the operation succeeds (when it had not finished before the kill).
  let repeatMs: number | undefined;
  if (!finished) {
    const started = performance.now();
    await ok(store, args);
    repeatMs = performance.now() - started;
  }
  await scenario.verifyDone(ctx, round);
  await scenario.cleanup(ctx, round);
  return { killed, finishedBeforeKill: finished, problemsBeforeRecovery: before.problems, repeatMs };
}

/** How long a scenario's command runs when not killed, to spread random kill delays over it. */
export async function timeScenario(ctx: CrashContext, scenario: Scenario): Promise<number> {
  const round = await scenario.prepare(ctx);
  const started = performance.now();
  const result = await cli(ctx.store, scenario.command(ctx, round));
  const elapsed = performance.now() - started;
  check(result.code === 0, `${scenario.name} failed: ${result.stderr}`);
  await scenario.verifyDone(ctx, round);
  await scenario.cleanup(ctx, round);
  return elapsed;
}
