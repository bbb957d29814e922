/**
 * Benchmarks oci-storage against containers-storage 1.43 on the same real data
 * (docs/benchmarks.md). The two tools run in turns (A B A B ...) on their own fresh stores;
 * GNU tar extracting the same file is the reference for applying a layer, and a compiled Bun
 * program that only opens the store's database and prints (scripts/bench-floor.ts) the floor
 * of the quick commands. Prints, per workload, the median time of each tool, the median of the
 * per-run ratios oci/cs with their spread, oci-storage's time over the floor, and the peak
 * memory of each tool.
 *
 * Usage: bun scripts/bench.ts [--runs N] [--quick-runs N] [--only NAME[,NAME...]] [--driver vfs|overlay]
 *                             [--data DIR] [--tmp DIR] [--json FILE] [--no-build] [--keep] [--verbose]
 */
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type BenchImage, benchImage } from "./bench-image.ts";
import { compileProgram } from "./compile.ts";
import { mountPointsBelow } from "../src/sys/mount-table.ts";
import { type TestRegistry, startRegistry } from "../test/helpers/registry.ts";

type DriverName = "vfs" | "overlay";
type ToolName = "oci" | "cs";
type Participant = ToolName | "tar" | "floor";

interface Options {
  /** Timed runs per tool of heavy workloads (applying, diffing, copying). */
  runs: number;
  /** Timed runs per tool of quick ones (startup, listings, mounts). */
  quickRuns: number;
  only: string[];
  driver: DriverName;
  dataDir: string;
  tmpRoot: string;
  jsonFile: string | undefined;
  build: boolean;
  keep: boolean;
  verbose: boolean;
}

const REPO = resolve(import.meta.dir, "..");
const BUILT = join(REPO, "dist", "oci-storage");
/** The binaries run; oci-storage is a private copy of the build, so that a rebuild meanwhile changes nothing. */
const TOOLS: Record<ToolName, string> = { oci: BUILT, cs: "containers-storage" };
/** The floor program, compiled into the benchmark's temp dir like the binary (scripts/bench-floor.ts). */
let FLOOR = "";

function parseOptions(): Options {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      runs: { type: "string", default: "5" },
      "quick-runs": { type: "string", default: "20" },
      only: { type: "string", default: "" },
      driver: { type: "string", default: "vfs" },
      data: { type: "string", default: process.env.BENCH_DIR ? join(process.env.BENCH_DIR, "data") : join(REPO, ".bench", "data") },
      tmp: { type: "string", default: process.env.BENCH_TMP ?? tmpdir() },
      json: { type: "string" },
      "no-build": { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      verbose: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(readFileSync(import.meta.path, "utf8").split("\n").slice(1, 9).map((l) => l.replace(/^ \* ?/, "")).join("\n"));
    process.exit(0);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) fail(`--runs wants a positive whole number, not ${values.runs}`);
  const quickRuns = Number(values["quick-runs"]);
  if (!Number.isInteger(quickRuns) || quickRuns < 1) fail(`--quick-runs wants a positive whole number, not ${values["quick-runs"]}`);
  if (values.driver !== "vfs" && values.driver !== "overlay") fail(`--driver wants vfs or overlay, not ${values.driver}`);
  return {
    runs,
    quickRuns,
    only: values.only.split(",").filter(Boolean),
    driver: values.driver,
    dataDir: resolve(values.data),
    tmpRoot: resolve(values.tmp),
    jsonFile: values.json,
    build: !values["no-build"],
    keep: values.keep,
    verbose: values.verbose,
  };
}

function fail(message: string): never {
  console.error(`bench: ${message}`);
  process.exit(2);
}

function log(message: string): void {
  console.error(`bench: ${message}`);
}

/** Runs a command untimed; throws with its stderr when it fails. */
function run(argv: string[], input?: string): string {
  const result = Bun.spawnSync(argv, { stdin: input ? Bun.file(input) : "ignore", stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) {
    throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.toString().trim() || result.stdout.toString().trim()}`);
  }
  return result.stdout.toString();
}

/** Flushes dirty pages so that no command pays for the writes of the one before it. */
function flushDisks(): void {
  Bun.spawnSync(["sync"]);
}

interface Sample {
  ms: number;
  /** User plus system CPU time. */
  cpuMs: number;
  rssKb: number;
}

/** Times one command (wall clock around spawn and exit) and reads its CPU time and peak RSS from GNU time. */
function measure(argv: string[], scratch: string): Sample {
  const rssFile = join(scratch, "rss");
  const started = performance.now();
  const result = Bun.spawnSync(["/usr/bin/time", "-f", "%M %U %S", "-o", rssFile, ...argv], { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const ms = performance.now() - started;
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${result.exitCode}: ${result.stderr.toString().trim()}`);
  const [rssKb, user, system] = readFileSync(rssFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number);
  return { ms, cpuMs: (user! + system!) * 1000, rssKb: rssKb! };
}

/** A deterministic 64-hex-digit ID for a label, so setups need not parse command output. */
function idFor(label: string): string {
  return createHash("sha256").update(`oci-storage bench ${label}`).digest("hex");
}

/** One tool's store: its own graph and run roots under the benchmark's temp dir. */
class StoreDir {
  readonly graph: string;
  readonly runRoot: string;

  constructor(
    readonly tool: ToolName,
    readonly driver: DriverName,
    readonly dir: string,
  ) {
    this.graph = join(dir, "graph");
    this.runRoot = join(dir, "run");
    mkdirSync(dir, { recursive: true });
  }

  argv(args: string[]): string[] {
    return [TOOLS[this.tool], "-g", this.graph, "-R", this.runRoot, "-s", this.driver, ...args];
  }

  /** oci-storage's database in this store. */
  get database(): string {
    return join(this.graph, "oci-storage.db");
  }

  cli(...args: string[]): string {
    return run(this.argv(args));
  }

  async cliAsync(...args: string[]): Promise<void> {
    const proc = Bun.spawn(this.argv(args), { stdin: "ignore", stdout: "ignore", stderr: "pipe" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    if (code !== 0) throw new Error(`${args.join(" ")} exited ${code}: ${stderr.trim()}`);
  }

  /** Releases the driver (overlay keeps a private bind mount) and every leftover mount, then deletes the store. */
  remove(): void {
    try {
      Bun.spawnSync(this.argv(["shutdown"]), { stdout: "ignore", stderr: "ignore", timeout: 30_000 });
    } catch (e) {
      log(`shutdown of ${this.dir} failed: ${(e as Error).message}`);
    }
    unmountBelow(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Unmounts everything mounted at or below dir, deepest first. */
function unmountBelow(dir: string): void {
  for (const point of mountPointsBelow(dir)) Bun.spawnSync(["umount", "-l", point]);
}

/** Files made by scripts/bench-data.sh (only when a workload selected needs them: ensureData). */
interface Data {
  baseTar: string;
  baseGz: string;
  baseZst: string;
  upperTar: string;
  /** The two-layer image made of them (scripts/bench-image.ts); set by ensureData. */
  image?: BenchImage;
}

/** The data files' paths in dataDir, built or not. */
function dataPaths(dataDir: string): Data {
  return { baseTar: join(dataDir, "base.tar"), baseGz: join(dataDir, "base.tar.gz"), baseZst: join(dataDir, "base.tar.zst"), upperTar: join(dataDir, "upper.tar") };
}

const BASE = idFor("base");
const UPPER = idFor("upper");
const TOP = idFor("top");
const LARGE_LAYERS = 1000;
const LARGE_IMAGES = 300;
const LARGE_CONTAINERS = 100;
const CHAIN_LENGTH = 10;
/** Commands run at once while populating the large store (both tools allow concurrent writers). */
const POPULATE_PROCESSES = 4;

async function inParallel(tasks: Array<() => Promise<void>>, width: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!();
  };
  await Promise.all(Array.from({ length: width }, worker));
}

const largeLayerId = (i: number) => idFor(`large layer ${i}`);
const largeLayerName = (i: number) => `layer-${Math.floor(i / CHAIN_LENGTH)}-${i % CHAIN_LENGTH}`;
const largeImageId = (i: number) => idFor(`large image ${i}`);

/** The name both tools give the bench image in their stores. */
const BENCH_IMAGE_NAME = "localhost/debian:bench";

/** skopeo's name for an image in a containers-storage store. */
function peerImage(store: StoreDir): string {
  return `containers-storage:[${store.driver}@${store.graph}+${store.runRoot}]${BENCH_IMAGE_NAME}`;
}

/** The command that takes the bench image into a store: oci-storage pull, or skopeo copy for containers-storage. */
function pullArgv(store: StoreDir, image: BenchImage): string[] {
  const source = `oci:${image.layout}:${image.ref}`;
  return store.tool === "oci" ? store.argv(["pull", "-q", source]) : ["skopeo", "copy", "-q", source, peerImage(store)];
}

/** The command that writes the bench image from a store to a new OCI layout: oci-storage push, or skopeo copy. */
function pushArgv(store: StoreDir, out: string): string[] {
  const destination = `oci:${out}:bench`;
  return store.tool === "oci" ? store.argv(["push", "-q", BENCH_IMAGE_NAME, destination]) : ["skopeo", "copy", "-q", peerImage(store), destination];
}

/** Shared, lazily built stores: one per tool, driver and kind, reused by the workloads that only read them. */
class Stores {
  private readonly made = new Map<string, StoreDir>();
  readonly populateMs = new Map<string, number>();
  private counter = 0;

  constructor(
    private readonly root: string,
    private readonly data: Data,
  ) {}

  /** A new empty store (its database created by one untimed command). */
  fresh(tool: ToolName, driver: DriverName): StoreDir {
    const store = new StoreDir(tool, driver, join(this.root, `${tool}-${driver}-fresh-${this.counter++}`));
    store.cli("layers");
    return store;
  }

  /** A store with a 3-layer stack: base (the minbase tar), upper (the upper tar) and an empty top. */
  base(tool: ToolName, driver: DriverName): StoreDir {
    return this.memo(`${tool}-${driver}-base`, tool, driver, (store) => {
      log(`${tool}: populating a ${driver} store with the 3-layer stack`);
      store.cli("create-layer", "--id", BASE, "-n", "base");
      store.cli("applydiff", "-f", this.data.baseTar, BASE);
      store.cli("create-layer", "--id", UPPER, "-n", "upper", BASE);
      store.cli("applydiff", "-f", this.data.upperTar, UPPER);
      store.cli("create-layer", "--id", TOP, "-n", "top", UPPER);
    });
  }

  /** A store with 1000 named layers (chains of 10), 300 images and 100 containers, made through the CLI. */
  async large(tool: ToolName, driver: DriverName): Promise<StoreDir> {
    const key = `${tool}-${driver}-large`;
    const known = this.made.get(key);
    if (known) return known;
    const store = new StoreDir(tool, driver, join(this.root, key));
    log(`${tool}: populating a ${driver} store with ${LARGE_LAYERS} layers, ${LARGE_IMAGES} images, ${LARGE_CONTAINERS} containers`);
    const started = performance.now();
    store.cli("layers");
    const chains = Array.from({ length: LARGE_LAYERS / CHAIN_LENGTH }, (_, chain) => async () => {
      for (let i = chain * CHAIN_LENGTH; i < (chain + 1) * CHAIN_LENGTH; i++) {
        const parent = i % CHAIN_LENGTH === 0 ? [] : [largeLayerId(i - 1)];
        await store.cliAsync("create-layer", "--id", largeLayerId(i), "-n", largeLayerName(i), ...parent);
      }
    });
    await inParallel(chains, POPULATE_PROCESSES);
    const images = Array.from({ length: LARGE_IMAGES }, (_, i) => () => {
      const top = largeLayerId((i * 7) % LARGE_LAYERS);
      const metadata = JSON.stringify({ index: i, created: "2026-11-29T00:00:00Z" });
      return store.cliAsync("create-image", "--id", largeImageId(i), "-n", `image-${i}`, "-n", `registry.example/app-${i}:latest`, "-m", metadata, top);
    });
    await inParallel(images, POPULATE_PROCESSES);
    const containers = Array.from({ length: LARGE_CONTAINERS }, (_, i) => () =>
      store.cliAsync("create-container", "--id", idFor(`large container ${i}`), "-n", `ctr-${i}`, "-m", `{"index":${i}}`, largeImageId(i * 3)),
    );
    await inParallel(containers, POPULATE_PROCESSES);
    this.populateMs.set(`${tool} ${driver}`, performance.now() - started);
    this.made.set(key, store);
    return store;
  }

  private memo(key: string, tool: ToolName, driver: DriverName, fill: (store: StoreDir) => void): StoreDir {
    let store = this.made.get(key);
    if (!store) {
      store = new StoreDir(tool, driver, join(this.root, key));
      fill(store);
      this.made.set(key, store);
    }
    return store;
  }

  /** A store holding the bench image, pulled by the tool's own way (oci-storage pull, skopeo copy). */
  withImage(tool: ToolName, driver: DriverName): StoreDir {
    return this.memo(`${tool}-${driver}-image`, tool, driver, (store) => {
      log(`${tool}: pulling the bench image into a ${driver} store`);
      run(pullArgv(store, this.data.image!));
    });
  }

  removeAll(): void {
    for (const store of this.made.values()) store.remove();
    this.made.clear();
  }
}

/**
 * Registries for the registry rows: Debian's docker-registry on 127.0.0.1 (plain http), one
 * holding the bench image (pushed once by skopeo) for pulls, and an empty one per push so that
 * neither tool can skip or mount a blob.
 */
class BenchRegistries {
  private source: Promise<string> | undefined;
  private readonly running: TestRegistry[] = [];
  private counter = 0;

  constructor(
    private readonly root: string,
    private readonly data: Data,
  ) {}

  /** docker://HOST/debian:12 holding the bench image. */
  sourceReference(): Promise<string> {
    this.source ??= (async () => {
      const registry = await this.fresh();
      const reference = `docker://${registry.host}/debian:12`;
      log(`pushing the bench image to ${registry.host} with skopeo`);
      run(["skopeo", "copy", "-q", "--dest-tls-verify=false", `oci:${this.data.image!.layout}:${this.data.image!.ref}`, reference]);
      return reference;
    })();
    return this.source;
  }

  /** A new empty registry. */
  async fresh(): Promise<TestRegistry> {
    const registry = await startRegistry(join(this.root, `registry-${this.counter++}`));
    this.running.push(registry);
    return registry;
  }

  /** Stops a registry and removes its data. */
  discard(registry: TestRegistry): void {
    void registry.stop();
    this.running.splice(this.running.indexOf(registry), 1);
    rmSync(registry.dir, { recursive: true, force: true });
  }

  stopAll(): void {
    for (const registry of this.running.splice(0)) void registry.stop();
  }
}

/** What a workload must reach: median ratio oci/cs at most `ratio`, and oci/GNU tar at most `vsTar`. */
interface Target {
  ratio: number;
  vsTar?: number;
}

const TARGETS = {
  startup: { ratio: 1.5 },
  work: { ratio: 0.8 },
  mount: { ratio: 1.0 },
  applyBase: { ratio: 0.8, vsTar: 1.2 },
  pull: { ratio: 0.6 },
} satisfies Record<string, Target>;

/**
 * The command to time for one run. `after` runs right after it (untimed, restoring what the
 * next run needs); `later` runs once all runs of the workload are done, so that deleting big
 * trees does not load the disk while the next command is timed.
 */
interface Round {
  argv: string[];
  after?: () => void;
  later?: () => void;
}

interface Workload {
  name: string;
  description: string;
  target: Target;
  driver: DriverName;
  /** Run each tool once untimed first (cheap workloads, to load the binary and caches). */
  warmup: boolean;
  /** Heavy writers: flush dirty pages before each timed run, so that no run pays for the one before. */
  flush?: boolean;
  /** Untimed preparation of one run for a tool; returns what to time. */
  round(tool: ToolName): Round | Promise<Round>;
  /** GNU tar doing the same work, timed in the same turns. */
  reference?: () => Round;
  /** The database of oci-storage's store in this workload: the floor program opens it in the same turns. */
  floorDatabase?: () => string | Promise<string>;
  /** Needs none of the files scripts/bench-data.sh makes. */
  dataFree?: boolean;
}

function workloads(stores: Stores, registries: BenchRegistries, data: Data, scratch: string, driver: DriverName): Workload[] {
  const list: Workload[] = [];
  let serial = 0;
  const uniqueId = (label: string) => idFor(`${label} ${serial++}`);

  const startup = (name: string, args: string[]): Workload => {
    const made = new Map<ToolName, StoreDir>();
    const storeOf = (tool: ToolName): StoreDir => {
      let store = made.get(tool);
      if (!store) made.set(tool, (store = stores.fresh(tool, driver)));
      return store;
    };
    return {
      name,
      description: `\`${args.join(" ")}\` on an empty store`,
      target: TARGETS.startup,
      driver,
      warmup: true,
      dataFree: true,
      round(tool) {
        return { argv: storeOf(tool).argv(args) };
      },
      floorDatabase: () => storeOf("oci").database,
    };
  };
  list.push(startup("version", ["version"]), startup("layers-empty", ["layers"]));

  const applyFresh = (name: string, file: string, target: Target, withReference: boolean): Workload => ({
    name,
    description: `applydiff of ${file.split("/").pop()} to a new layer in a fresh store`,
    target,
    driver,
    warmup: false,
    flush: true,
    round(tool) {
      const store = stores.fresh(tool, driver);
      store.cli("create-layer", "--id", BASE);
      return { argv: store.argv(["applydiff", "-f", file, BASE]), later: () => store.remove() };
    },
    reference: withReference
      ? () => {
          const dir = join(scratch, `tar-${serial++}`);
          mkdirSync(dir);
          return { argv: ["tar", "-xf", file, "-C", dir, "--numeric-owner"], later: () => rmSync(dir, { recursive: true, force: true }) };
        }
      : undefined,
  });
  list.push(
    applyFresh("applydiff-tar", data.baseTar, TARGETS.applyBase, true),
    applyFresh("applydiff-tar.gz", data.baseGz, TARGETS.work, false),
    applyFresh("applydiff-tar.zst", data.baseZst, TARGETS.work, false),
  );

  list.push({
    name: "applydiff-upper",
    description: "applydiff of upper.tar (modify, add, delete, opaque) to a new child of the base layer",
    target: TARGETS.work,
    driver,
    warmup: false,
    flush: true,
    round(tool) {
      const store = stores.base(tool, driver);
      const id = uniqueId("upper child");
      store.cli("create-layer", "--id", id, BASE);
      return { argv: store.argv(["applydiff", "-f", data.upperTar, id]), later: () => store.cli("delete-layer", id) };
    },
  });

  const diff = (name: string, layer: string, flag: string, what: string): Workload => ({
    name,
    description: `diff ${flag} of ${what} to a file`,
    target: TARGETS.work,
    driver,
    warmup: false,
    flush: true,
    round(tool) {
      const store = stores.base(tool, driver);
      const out = join(scratch, `diff-${serial++}`);
      return { argv: store.argv(["diff", flag, "-f", out, layer]), later: () => rmSync(out, { force: true }) };
    },
  });
  list.push(
    diff("diff-base-tar", BASE, "-u", "the base layer (whole tree)"),
    diff("diff-base-gzip", BASE, "-c", "the base layer (whole tree)"),
    diff("diff-upper-tar", UPPER, "-u", "the upper layer against the base"),
  );

  const createOnBase = (name: string, on: DriverName): Workload => ({
    name,
    description: `create-layer with the populated base as parent (${on === "vfs" ? "copies the tree" : "overlay"})`,
    target: TARGETS.work,
    driver: on,
    warmup: false,
    flush: true,
    round(tool) {
      const store = stores.base(tool, on);
      const id = uniqueId("child");
      return { argv: store.argv(["create-layer", "--id", id, BASE]), later: () => store.cli("delete-layer", id) };
    },
  });
  const mountStack = (name: string, on: DriverName): Workload => ({
    name,
    description: `mount of the top of a 3-layer stack (${on})`,
    target: TARGETS.mount,
    driver: on,
    warmup: true,
    round(tool) {
      const store = stores.base(tool, on);
      return { argv: store.argv(["mount", TOP]), after: () => store.cli("unmount", TOP) };
    },
    floorDatabase: () => stores.base("oci", on).database,
  });
  const unmountStack = (name: string, on: DriverName): Workload => ({
    name,
    description: `unmount of the top of a 3-layer stack (${on})`,
    target: TARGETS.mount,
    driver: on,
    warmup: true,
    round(tool) {
      const store = stores.base(tool, on);
      store.cli("mount", TOP);
      return { argv: store.argv(["unmount", TOP]) };
    },
    floorDatabase: () => stores.base("oci", on).database,
  });
  list.push(createOnBase(`create-layer-${driver}`, driver), mountStack(`mount-${driver}`, driver), unmountStack(`unmount-${driver}`, driver));
  if (driver === "vfs") list.push(createOnBase("create-layer-overlay", "overlay"), mountStack("mount-overlay", "overlay"), unmountStack("unmount-overlay", "overlay"));

  const onLarge = (name: string, args: string[]): Workload => ({
    name,
    description: `\`${args.join(" ")}\` on the large store`,
    target: TARGETS.work,
    driver,
    warmup: true,
    dataFree: true,
    round: async (tool) => ({ argv: (await stores.large(tool, driver)).argv(args) }),
    floorDatabase: async () => (await stores.large("oci", driver)).database,
  });
  list.push(
    onLarge("large-layers", ["layers"]),
    onLarge("large-layers-json", ["layers", "-j"]),
    onLarge("large-images", ["images"]),
    onLarge("large-containers", ["containers"]),
    onLarge("large-exists", ["exists", largeLayerName(555)]),
    onLarge("large-image", ["image", "image-150"]),
    {
      name: "large-create-layer",
      description: "`create-layer -n NAME` on the large store",
      target: TARGETS.work,
      driver,
      warmup: true,
      dataFree: true,
      floorDatabase: async () => (await stores.large("oci", driver)).database,
      async round(tool) {
        const store = await stores.large(tool, driver);
        const id = uniqueId("large new");
        return { argv: store.argv(["create-layer", "--id", id, "-n", `new-${id.slice(0, 8)}`]), after: () => store.cli("delete-layer", id) };
      },
    },
    {
      name: "large-delete-layer",
      description: "`delete-layer` of a fresh layer on the large store",
      target: TARGETS.work,
      driver,
      warmup: true,
      dataFree: true,
      floorDatabase: async () => (await stores.large("oci", driver)).database,
      async round(tool) {
        const store = await stores.large(tool, driver);
        const id = uniqueId("large victim");
        store.cli("create-layer", "--id", id, "-n", `victim-${id.slice(0, 8)}`);
        return { argv: store.argv(["delete-layer", id]) };
      },
    },
  );

  /** A pull row: from the OCI layout, or from the registry holding the same image. */
  function pullRow(name: string, on: DriverName, from: "oci" | "registry"): Workload {
    const what = from === "oci" ? "`pull oci:` of the two-layer Debian image (gzip)" : "`pull docker://127.0.0.1:PORT/debian:12` (the two-layer Debian image, plain http)";
    return {
      name,
      description: `${what} into a fresh ${on} store; containers-storage: \`skopeo copy ${from === "oci" ? "oci:" : "docker://"}… containers-storage:[…]\``,
      target: TARGETS.pull,
      driver: on,
      warmup: false,
      flush: true,
      async round(tool) {
        const store = stores.fresh(tool, on);
        if (from === "oci") return { argv: pullArgv(store, data.image!), later: () => store.remove() };
        const source = await registries.sourceReference();
        const argv = tool === "oci" ? store.argv(["pull", "-q", "--tls-verify=false", source]) : ["skopeo", "copy", "-q", "--src-tls-verify=false", source, peerImage(store)];
        return { argv, later: () => store.remove() };
      },
    };
  }
  list.push(
    pullRow("pull-oci", driver, "oci"),
    // On vfs a child layer starts as a copy of its parent's tree (both tools): the overlay row shows pull without it.
    ...(driver === "vfs" ? [pullRow("pull-oci-overlay", "overlay", "oci")] : []),
    {
      name: "push-oci",
      description: "`push` of the two-layer Debian image to a new `oci:` layout (gzip); containers-storage: `skopeo copy containers-storage:[…] oci:…`",
      target: TARGETS.work,
      driver,
      warmup: false,
      flush: true,
      round(tool) {
        const store = stores.withImage(tool, driver);
        const out = join(scratch, `push-${serial++}`);
        return { argv: pushArgv(store, out), later: () => rmSync(out, { recursive: true, force: true }) };
      },
    },
    pullRow("pull-registry", driver, "registry"),
    // As for pull-oci: the overlay row shows the pull without vfs's copy of the parent layer.
    ...(driver === "vfs" ? [pullRow("pull-registry-overlay", "overlay", "registry")] : []),
    {
      name: "push-registry",
      description: "`push` of the two-layer Debian image to an empty registry (plain http, gzip); containers-storage: `skopeo copy containers-storage:[…] docker://…`",
      target: TARGETS.work,
      driver,
      warmup: false,
      flush: true,
      async round(tool) {
        const store = stores.withImage(tool, driver);
        const registry = await registries.fresh();
        const destination = `docker://${registry.host}/debian:12`;
        const argv = tool === "oci" ? store.argv(["push", "-q", "--tls-verify=false", BENCH_IMAGE_NAME, destination]) : ["skopeo", "copy", "-q", "--dest-tls-verify=false", peerImage(store), destination];
        return { argv, later: () => registries.discard(registry) };
      },
    },
  );
  return list;
}

/** Why oci-storage cannot run a driver here, or undefined when it can. */
function driverUnsupported(root: string, driver: DriverName): string | undefined {
  for (const tool of ["oci", "cs"] as const) {
    const store = new StoreDir(tool, driver, join(root, `probe-${tool}-${driver}`));
    const result = Bun.spawnSync(store.argv(["layers"]), { stdout: "pipe", stderr: "pipe" });
    store.remove();
    if (result.exitCode !== 0) {
      const why = (result.stdout.toString() + result.stderr.toString()).trim().split("\n")[0];
      return `${tool === "oci" ? "oci-storage" : "containers-storage"} -s ${driver} fails here: ${why}`;
    }
  }
  return undefined;
}

interface Result {
  workload: string;
  description: string;
  driver: DriverName;
  target: Target;
  samples: Partial<Record<Participant, Sample[]>>;
  skipped?: string;
  error?: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function ratios(a: Sample[], b: Sample[]): number[] {
  return a.map((s, i) => s.ms / b[i]!.ms);
}

async function runWorkload(w: Workload, runs: number, scratch: string, verbose: boolean): Promise<Result> {
  const result: Result = { workload: w.name, description: w.description, driver: w.driver, target: w.target, samples: {} };
  const participants: Participant[] = ["oci", "cs", ...(w.reference ? ["tar" as const] : []), ...(w.floorDatabase ? ["floor" as const] : [])];
  const deferred: Array<() => void> = [];
  const timeOne = async (who: Participant): Promise<Sample> => {
    const round = who === "tar" ? w.reference!() : who === "floor" ? { argv: [FLOOR, await w.floorDatabase!()] } : await w.round(who);
    if (round.later) deferred.push(round.later);
    if (w.flush) flushDisks();
    try {
      return measure(round.argv, scratch);
    } finally {
      round.after?.();
    }
  };
  try {
    if (w.warmup) for (const who of participants) await timeOne(who);
    for (let i = 0; i < runs; i++) {
      for (const who of participants) {
        const sample = await timeOne(who);
        (result.samples[who] ??= []).push(sample);
        if (verbose) log(`  ${w.name} run ${i + 1} ${who}: ${fmtMs(sample.ms)} ms, CPU ${fmtMs(sample.cpuMs)} ms, ${fmtMb(sample.rssKb)} MB`);
      }
    }
  } catch (e) {
    result.error = (e as Error).message.split("\n")[0];
  } finally {
    for (const cleanUp of deferred) cleanUp();
    if (w.flush) flushDisks();
  }
  return result;
}

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
const fmtRatio = (r: number) => r.toFixed(2);
const fmtMb = (kb: number) => (kb / 1024).toFixed(0);

/** Markdown table of the results. */
function table(results: Result[]): string {
  const lines = [
    "| workload | target | oci-storage ms | containers-storage ms | oci/cs median (min–max) | oci/GNU tar (tar ms) | floor ms | oci − floor ms | CPU ms oci / cs | peak RSS MB oci / cs | at target |",
    "|---|---|---:|---:|---|---|---:|---:|---|---|---|",
  ];
  for (const r of results) {
    if (r.skipped || r.error) {
      lines.push(`| ${r.workload} | | | | ${r.skipped ? `skipped: ${r.skipped}` : `failed: ${r.error}`} | | | | | | |`);
      continue;
    }
    const oci = r.samples.oci ?? [];
    const cs = r.samples.cs ?? [];
    const tar = r.samples.tar;
    const rs = ratios(oci, cs);
    const medianRatio = median(rs);
    const target = `≤ ${r.target.ratio}${r.target.vsTar ? `, ≤ ${r.target.vsTar}× tar` : ""}`;
    let vsTar = "";
    let tarOk = true;
    if (tar) {
      const rt = median(ratios(oci, tar));
      tarOk = rt <= r.target.vsTar!;
      vsTar = `${fmtRatio(rt)} (${fmtMs(median(tar.map((s) => s.ms)))})`;
    }
    const floor = r.samples.floor;
    // The median of the per-run differences: each oci run against the floor run of the same turn.
    const overFloor = floor ? fmtMs(median(oci.map((s, i) => s.ms - floor[i]!.ms))) : "";
    const floorMs = floor ? fmtMs(median(floor.map((s) => s.ms))) : "";
    const peak = (s: Sample[]) => fmtMb(Math.max(...s.map((x) => x.rssKb)));
    const cpu = (s: Sample[]) => fmtMs(median(s.map((x) => x.cpuMs)));
    const ok = medianRatio <= r.target.ratio && tarOk && Math.max(...oci.map((s) => s.rssKb)) < 100 * 1024;
    lines.push(
      `| ${r.workload} | ${target} | ${fmtMs(median(oci.map((s) => s.ms)))} | ${fmtMs(median(cs.map((s) => s.ms)))} | ` +
        `${fmtRatio(medianRatio)} (${fmtRatio(Math.min(...rs))}–${fmtRatio(Math.max(...rs))}) | ${vsTar} | ${floorMs} | ${overFloor} | ${cpu(oci)} / ${cpu(cs)} | ${peak(oci)} / ${peak(cs)} | ${ok ? "yes" : "**no**"} |`,
    );
  }
  return lines.join("\n");
}

/**
 * A warning when the temp dir is on an ext4 without a journal (this VM's root file system): there
 * ext4 checks every free inode it considers for a new file against recent deletions, so creating
 * files gets slower with every store a run removes, and the rows that create many (pull, import,
 * applydiff) drift during a run. `--tmp` on a journaled file system avoids it.
 */
function journalNote(fsType: string, source: string): string {
  if (fsType !== "ext4" || !source.startsWith("/dev/")) return "";
  const device = source.slice("/dev/".length).replaceAll("/", "!");
  let journals: string[];
  try {
    journals = readdirSync("/proc/fs/jbd2");
  } catch {
    journals = [];
  }
  return journals.some((name) => name.startsWith(`${device}-`)) ? "" : " **without a journal: file creation slows as stores are removed (see docs/benchmarks.md; --tmp on a journaled file system avoids it)**";
}

function machine(tmp: string): string {
  const cpu = cpus();
  // findmnt names ext4 as such (stat -f reports ext2/ext3 for every ext file system) and shows its mount options.
  const [fsType = "", source = "", options = ""] = run(["findmnt", "-n", "-T", tmp, "-o", "FSTYPE,SOURCE,OPTIONS"]).trim().split(/\s+/);
  const fs = `${fsType} (${options})${journalNote(fsType, source)}`;
  const kernel = run(["uname", "-r"]).trim();
  const version = (pkg: string) => run(["dpkg-query", "-W", "-f", "${Version}", pkg]).trim();
  return `${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, kernel ${kernel}, temp dir on ${fs}, containers-storage ${version("containers-storage")}, skopeo ${version("skopeo")}, Bun ${Bun.version}`;
}

/** Runs scripts/bench-data.sh, which installs missing tools and builds the data unless it is up to date, and makes the bench image. */
async function ensureData(dataDir: string, data: Data): Promise<void> {
  const made = Bun.spawnSync(["bash", join(REPO, "scripts", "bench-data.sh"), "--out", resolve(dataDir, "..")], { stdout: "inherit", stderr: "inherit" });
  if (made.exitCode !== 0) fail("scripts/bench-data.sh failed");
  data.image = await benchImage(dataDir);
}

async function main(): Promise<void> {
  const options = parseOptions();
  if (options.build) {
    log("building dist/oci-storage");
    run([process.execPath, join(REPO, "scripts", "build.ts")]);
  }
  const data = dataPaths(options.dataDir);
  const root = mkdtempSync(join(options.tmpRoot, "oci-bench-"));
  const scratch = join(root, "scratch");
  mkdirSync(scratch);
  TOOLS.oci = join(root, "oci-storage");
  copyFileSync(BUILT, TOOLS.oci);
  FLOOR = join(root, "floor");
  await compileProgram(join(REPO, "scripts", "bench-floor.ts"), FLOOR);
  const stores = new Stores(root, data);
  const registries = new BenchRegistries(root, data);
  const cleanUp = () => {
    registries.stopAll();
    if (options.keep) return log(`kept ${root}`);
    stores.removeAll();
    unmountBelow(root);
    rmSync(root, { recursive: true, force: true });
  };
  process.on("SIGINT", () => {
    cleanUp();
    process.exit(130);
  });

  const all = workloads(stores, registries, data, scratch, options.driver);
  const unknown = options.only.filter((name) => !all.some((w) => w.name === name));
  if (unknown.length > 0) fail(`unknown workload ${unknown.join(", ")}; known: ${all.map((w) => w.name).join(", ")}`);
  const selected = options.only.length > 0 ? all.filter((w) => options.only.includes(w.name)) : all;

  const unsupported = new Map<DriverName, string | undefined>();
  const results: Result[] = [];
  const loadBefore = loadavg();
  const started = new Date();
  try {
    if (selected.some((w) => !w.dataFree)) await ensureData(options.dataDir, data);
    for (const w of selected) {
      if (!unsupported.has(w.driver)) unsupported.set(w.driver, driverUnsupported(root, w.driver));
      const why = unsupported.get(w.driver);
      if (why) {
        log(`skipping ${w.name}: ${why}`);
        results.push({ workload: w.name, description: w.description, driver: w.driver, target: w.target, samples: {}, skipped: why });
        continue;
      }
      const runs = w.warmup ? options.quickRuns : options.runs;
      log(`${w.name}: ${runs} runs`);
      const result = await runWorkload(w, runs, scratch, options.verbose);
      if (result.error) log(`${w.name} failed: ${result.error}`);
      results.push(result);
    }
  } finally {
    cleanUp();
  }
  const loadAfter = loadavg();
  const header = [
    `Run ${started.toISOString()}: ${options.runs} runs per tool of heavy workloads, ${options.quickRuns} of quick ones, driver ${options.driver}.`,
    `Machine: ${machine(options.tmpRoot)}.`,
    `Load average (1 min) before ${loadBefore[0]!.toFixed(2)}, after ${loadAfter[0]!.toFixed(2)}.`,
    ...[...stores.populateMs].map(([key, ms]) => `Populating the large store through the CLI took ${(ms / 1000).toFixed(1)} s (${key}).`),
  ];
  console.log(`${header.join("\n")}\n\n${table(results)}`);
  if (options.jsonFile) writeFileSync(options.jsonFile, `${JSON.stringify({ started, header, results }, null, 1)}\n`);
}

await main();
