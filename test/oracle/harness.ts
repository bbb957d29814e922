/**
 * The side-by-side oracle: one scenario (a list of CLI steps) runs against oci-storage
 * (dist/oci-storage) and against containers-storage 1.43, each on its own fresh store, and the
 * tests compare what a script would see of each step.
 *
 * Adding a scenario: put a file in test/oracle/scenarios/ that default-exports a Scenario[]
 * (oracle.test.ts finds it). A step is
 *
 *   { args: ["create-layer", "{{base}}"], save: "child" }      one CLI call after the global options
 *   { sh: "echo hi > {{mnt}}/f" }                               a bash command (writes into a mount, say)
 *
 * `{{name}}` is what an earlier step of the same tool saved (`save: "name"`: the first line of
 * its stdout; `save: (stdout) => ({...})`: any values), `{{name:12}}` its first 12 characters;
 * `{{graph}}`, `{{run}}`, `{{ro}}` and `{{tmp}}` are the tool's store roots and a scratch dir, and
 * `{{cli}}` its command with the global options (for sh steps: `{{cli}} diff -u L > {{tmp}}/l.tar`).
 * Compared for every step: exit status (zero or not) and stdout as `stdout` says —
 *
 *   "text" (default)  IDs (64 hex, not digests) become <id1>, <id2>… per tool in order of first
 *                     appearance; roots become <graph>, <run>, <ro>, <tmp>; a layer's mount path
 *                     becomes <mount <idN>>, `<graph>/vfs-containers/` <graph>/<driver>-containers/
 *   "lines"           as text, but as a sorted list of lines (1.43 prints some lists in map order,
 *                     ours in a fixed one: known difference text-output-order)
 *   "json"            as text, then parsed; "created" times become "<time>"
 *   "json-unordered"  as json, a top-level list compared as a set (1.43's map order again)
 *   "tree"            stdout is a path: every entry below it (type, mode, owner, size, content
 *                     hash, link target, device), read right after the step
 *   "tar"             stdout is a tar: its members as Python's tarfile reads them, without times
 *   "ignore"          not compared
 *
 * and stderr too when `stderr: true`. A step whose difference is deliberate names its entry in
 * known-differences.json (`known: "id"`): each side is then held to that entry's `ours`/`peer`.
 * A scenario with `readOnlyStore` steps runs them first on a separate store, which the main
 * steps then see through `--storage-opt <driver>.imagestore=`; it must not change. After the
 * steps, `check` on our store must find nothing. On overlay, 1.43 runs on overlay too, unless the
 * scenario says `overlayPeer: "vfs"`: where 1.43 on this kernel uses idmapped mounts, or where
 * our overlay deliberately shows what vfs shows (the scenario's `known` entry says why).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, PEER_BINARY } from "../helpers/cli.ts";
import { snapshotFiles } from "../helpers/fixtures.ts";
import { listTar, listTree } from "./listings.ts";

export type Driver = "vfs" | "overlay";
export type StdoutMode = "text" | "lines" | "json" | "json-unordered" | "tree" | "tar" | "ignore";

export interface Step {
  /** A command line after the global options. */
  args?: string[];
  /** Or a bash command. */
  sh?: string;
  /** Text fed to stdin. */
  stdin?: string;
  stdout?: StdoutMode;
  /** Compare stderr (normalised) as well. */
  stderr?: boolean;
  save?: string | ((stdout: string) => Record<string, string>);
  /** An entry of known-differences.json: the step differs from 1.43 on purpose. */
  known?: string;
}

export interface Scenario {
  name: string;
  /** Default: both. */
  drivers?: Driver[];
  overlayPeer?: "vfs";
  /** The known-differences.json entry that says why overlayPeer is "vfs", when it is a difference of ours. */
  known?: string;
  /** Steps that build a store used read-only by the main steps. */
  readOnlyStore?: Step[];
  steps: Step[];
}

/** What one step showed a script, ready to compare. */
export interface Observed {
  step: string;
  status: "zero" | "non-zero";
  code: number;
  stdout: unknown;
  stderr?: string;
}

/** One tool's run of a scenario. */
export interface ToolRun {
  observed: Observed[];
  /** The read-only store's files before and after the main steps (empty without one). */
  readOnlyBefore: string[];
  readOnlyAfter: string[];
  /** `check` of the store afterwards (oci-storage only). */
  check?: { code: number; stdout: string };
}

interface Tool {
  binary: string;
  driver: Driver;
  dir: string;
  graph: string;
  run: string;
  ro: string;
  tmp: string;
  saved: Map<string, string>;
  ids: Map<string, string>;
  /** ID prefixes the steps used, by the ID they are a prefix of, so that outputs echoing them normalise too. */
  prefixes: Map<string, string>;
}

function newTool(binary: string, driver: Driver): Tool {
  const dir = mkdtempSync(join(tmpdir(), binary === BINARY ? "oracle-ours-" : "oracle-peer-"));
  const tool = { binary, driver, dir, graph: join(dir, "graph"), run: join(dir, "run"), ro: join(dir, "ro"), tmp: join(dir, "tmp"), saved: new Map(), ids: new Map(), prefixes: new Map() };
  mkdirSync(tool.tmp);
  return tool;
}

/** Replaces {{name}} and {{name:N}} by the tool's saved values and roots. */
function substitute(tool: Tool, text: string): string {
  return text.replace(/\{\{(\w+)(?::(\d+))?\}\}/g, (_, name: string, length?: string) => {
    const roots: Record<string, string> = { graph: tool.graph, run: tool.run, ro: tool.ro, tmp: tool.tmp };
    const value = roots[name] ?? tool.saved.get(name);
    if (value === undefined) throw new Error(`oracle: nothing saved as {{${name}}} before it is used`);
    if (length === undefined) return value;
    tool.prefixes.set(value.slice(0, Number(length)), value);
    return value.slice(0, Number(length));
  });
}

/** The placeholder of an ID: <id1>, <id2>… in order of first appearance. */
function placeholder(tool: Tool, id: string): string {
  if (!tool.ids.has(id)) tool.ids.set(id, `<id${tool.ids.size + 1}>`);
  return tool.ids.get(id)!;
}

/** IDs (and the prefixes of them steps used) to placeholders, roots and mount paths to names. */
export function normalise(tool: Tool, text: string): string {
  let out = text.replace(/(?<![0-9a-f:])[0-9a-f]{64}(?![0-9a-f])/g, (id) => placeholder(tool, id));
  for (const [prefix, id] of tool.prefixes) {
    out = out.replace(new RegExp(`(?<![0-9a-zA-Z])${prefix}(?![0-9a-zA-Z])`, "g"), () => `${placeholder(tool, id).slice(0, -1)}:${prefix.length}>`);
  }
  for (const [root, name] of [[tool.ro, "<ro>"], [tool.graph, "<graph>"], [tool.run, "<run>"], [tool.tmp, "<tmp>"]] as const) out = out.replaceAll(root, name);
  out = out.replace(/<graph>\/overlay\/(<id\d+>)\/merged|<graph>\/vfs\/dir\/(<id\d+>)/g, (_, a?: string, b?: string) => `<mount ${a ?? b}>`);
  return out.replace(/(<graph>|<run>)\/(?:vfs|overlay)-containers\//g, "$1/<driver>-containers/");
}

function normaliseJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normaliseJson);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === "created" ? "<time>" : normaliseJson(v)]));
}

async function runProcess(argv: string[], stdin: string | undefined): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const proc = Bun.spawn(argv, { stdin: stdin === undefined ? "ignore" : new TextEncoder().encode(stdin), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).bytes(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

function globals(tool: Tool, graph: string, run: string, readOnly: boolean): string[] {
  const options = ["--graph", graph, "--run", run, "--storage-driver", tool.driver];
  return readOnly ? [...options, "--storage-opt", `${tool.driver}.imagestore=${tool.ro}`] : options;
}

async function runStep(tool: Tool, step: Step, options: string[]): Promise<Observed> {
  const label = step.sh ?? (step.args ?? []).map((a) => (a === "" || /\s/.test(a) ? JSON.stringify(a) : a)).join(" ");
  const argv = step.sh !== undefined ? ["bash", "-c", substitute(tool, step.sh)] : [tool.binary, ...options, ...(step.args ?? []).map((a) => substitute(tool, a))];
  const result = await runProcess(argv, step.stdin === undefined ? undefined : substitute(tool, step.stdin));
  const text = new TextDecoder().decode(result.stdout);
  if (typeof step.save === "string") tool.saved.set(step.save, text.split("\n")[0]!.trim());
  else if (step.save) for (const [k, v] of Object.entries(step.save(text))) tool.saved.set(k, v);
  const observed: Observed = { step: label, status: result.code === 0 ? "zero" : "non-zero", code: result.code, stdout: undefined };
  const mode = step.stdout ?? "text";
  if (mode === "text") observed.stdout = normalise(tool, text);
  else if (mode === "lines") observed.stdout = normalise(tool, text).split("\n").sort();
  else if (mode === "json" || mode === "json-unordered") {
    const parsed = result.code === 0 ? normaliseJson(JSON.parse(normalise(tool, text))) : normalise(tool, text);
    observed.stdout = mode === "json-unordered" && Array.isArray(parsed) ? parsed.map((v) => JSON.stringify(v)).sort() : parsed;
  }
  else if (mode === "tree") observed.stdout = result.code === 0 ? listTree(text.trim()) : text;
  else if (mode === "tar") {
    const file = join(tool.tmp, "step.tar");
    writeFileSync(file, result.stdout);
    observed.stdout = result.code === 0 ? listTar(file) : text;
  }
  if (step.stderr) observed.stderr = normalise(tool, result.stderr);
  return observed;
}

/** Runs a scenario's steps with one tool on a fresh store. */
async function runTool(tool: Tool, scenario: Scenario): Promise<ToolRun> {
  const run: ToolRun = { observed: [], readOnlyBefore: [], readOnlyAfter: [] };
  const hasReadOnly = scenario.readOnlyStore !== undefined;
  if (hasReadOnly) {
    const options = globals(tool, tool.ro, join(tool.dir, "ro-run"), false);
    for (const step of scenario.readOnlyStore!) {
      const observed = await runStep(tool, step, options);
      if (observed.code !== 0) throw new Error(`oracle: building the read-only store failed at "${observed.step}" with ${tool.binary}`);
    }
    await runProcess([tool.binary, ...options, "shutdown"], undefined);
    run.readOnlyBefore = snapshotFiles(tool.ro);
  }
  const options = globals(tool, tool.graph, tool.run, hasReadOnly);
  tool.saved.set("cli", [tool.binary, ...options].join(" "));
  for (const step of scenario.steps) run.observed.push(await runStep(tool, step, options));
  if (tool.binary === BINARY) {
    const check = await runProcess([tool.binary, ...options, "check"], undefined);
    run.check = { code: check.code, stdout: new TextDecoder().decode(check.stdout) };
  }
  if (hasReadOnly) run.readOnlyAfter = snapshotFiles(tool.ro);
  return run;
}

/** Unmounts whatever is still mounted below dir (1.43 keeps its overlay home bind-mounted), then removes it. */
async function removeTool(tool: Tool, hasReadOnly: boolean): Promise<void> {
  // 1.43's shutdown -f loops forever while a layer is mounted; its plain shutdown releases the overlay home.
  await runProcess([tool.binary, ...globals(tool, tool.graph, tool.run, hasReadOnly), "shutdown", ...(tool.binary === BINARY ? ["-f"] : [])], undefined);
  const mounted = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined && point.startsWith(`${tool.dir}/`))
    .sort()
    .reverse();
  for (const point of mounted) Bun.spawnSync(["umount", "-l", point]);
  rmSync(tool.dir, { recursive: true, force: true });
}

/** Runs a scenario with both tools (at the same time) and returns what each showed. */
export async function runSideBySide(scenario: Scenario, driver: Driver): Promise<{ ours: ToolRun; peer: ToolRun }> {
  const ours = newTool(BINARY, driver);
  const peer = newTool(PEER_BINARY, driver === "overlay" && scenario.overlayPeer === "vfs" ? "vfs" : driver);
  try {
    const [oursRun, peerRun] = await Promise.all([runTool(ours, scenario), runTool(peer, scenario)]);
    return { ours: oursRun, peer: peerRun };
  } finally {
    await Promise.all([removeTool(ours, scenario.readOnlyStore !== undefined), removeTool(peer, scenario.readOnlyStore !== undefined)]);
  }
}
