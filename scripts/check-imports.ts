/**
 * The layering rule of docs/architecture.md, checked: reads every import in src/ (type-only
 * ones included) and reports
 *   - an import cycle between modules,
 *   - an import from a lower layer up to a higher one (order below),
 *   - a file over MAX_LINES lines,
 *   - a node: module loaded at every start: imported, directly or through other modules, by
 *     the static imports of main.ts (what every command loads before its own module; node:
 *     modules cost a command milliseconds each, docs/benchmarks.md).
 * Run `bun scripts/check-imports.ts` (exit status 1 on any finding); test/architecture.test.ts
 * runs it as part of `npm test`. Written here rather than taken from npm (madge, dependency-cruiser)
 * because the rule is a dozen lines and those pull in a parser and many packages.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/** Layers from top to bottom; a module may import its own layer and any layer below it, never one above. */
export const LAYERS: ReadonlyArray<{ name: string; paths: string[] }> = [
  { name: "main", paths: ["main.ts"] },
  { name: "commands", paths: ["commands"] },
  { name: "cli", paths: ["cli"] },
  { name: "transports", paths: ["transports"] },
  { name: "store", paths: ["store"] },
  { name: "drivers", paths: ["drivers"] },
  { name: "archive", paths: ["archive"] },
  { name: "sys/util", paths: ["sys", "util"] },
  { name: "shared", paths: ["errors.ts", "idmap.ts"] },
];

export const MAX_LINES = 500;

/**
 * Files over MAX_LINES that another change is splitting right now, each with the line count it
 * may not exceed meanwhile. An entry must go once its file is within MAX_LINES (the check then
 * says so); nothing is added here.
 */
export const OVERSIZE_UNTIL_SPLIT: Readonly<Record<string, number>> = {};

export interface Finding {
  kind: "cycle" | "upward" | "size" | "unplaced" | "startup";
  message: string;
}

/** Every .ts file below dir, as absolute paths in a stable order. */
function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...sourceFiles(path));
    else if (name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** The text with comments blanked out, so that an import shown in a doc comment is not read as one. */
function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/(^|[\s;{}(),])\/\/.*$/gm, "$1");
}

const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*["']([^"'\n]+)["']/g;

/** The src/ files a file imports (static, type-only, re-exports and dynamic imports of relative paths). */
export function importsOf(file: string): string[] {
  const found = new Set<string>();
  for (const match of withoutComments(readFileSync(file, "utf8")).matchAll(SPECIFIER)) {
    const spec = match[1]!;
    if (!spec.startsWith("./") && !spec.startsWith("../")) continue;
    const target = resolve(dirname(file), spec);
    if (existsSync(target) && statSync(target).isFile()) found.add(target);
  }
  return [...found];
}

const STATIC_IMPORT = /^\s*(?:import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']([^"'\n]+)["']|^\s*import\s*["']([^"'\n]+)["']/gm;

/** What a file loads when it is loaded: its imports that are neither type-only nor dynamic (relative paths resolved; other specifiers as written). */
export function staticImportsOf(file: string): { files: string[]; modules: string[] } {
  const files = new Set<string>();
  const modules = new Set<string>();
  for (const match of withoutComments(readFileSync(file, "utf8")).matchAll(STATIC_IMPORT)) {
    const [, typeOnly, clause = "", spec = match[4]!] = match;
    if (typeOnly) continue;
    const braced = /^\{([^}]*)\}$/.exec(clause.trim());
    if (braced && braced[1]!.split(",").map((name) => name.trim()).filter(Boolean).every((name) => name.startsWith("type "))) continue;
    if (!spec.startsWith("./") && !spec.startsWith("../")) {
      modules.add(spec);
      continue;
    }
    const target = resolve(dirname(file), spec);
    if (existsSync(target) && statSync(target).isFile()) files.add(target);
  }
  return { files: [...files], modules: [...modules] };
}

/**
 * node: modules in what every command loads at start: main.ts and, transitively, its static
 * imports. Each finding names the chain of imports from main.ts to the module that needs it.
 */
function startupFindings(root: string): Finding[] {
  const entry = join(root, "main.ts");
  if (!existsSync(entry)) return [];
  const findings: Finding[] = [];
  const via = new Map<string, string | undefined>([[entry, undefined]]);
  const queue = [entry];
  const chain = (file: string): string[] => {
    const path: string[] = [];
    for (let at: string | undefined = file; at !== undefined; at = via.get(at)) path.unshift(`src/${relative(root, at)}`);
    return path;
  };
  while (queue.length > 0) {
    const file = queue.shift()!;
    const { files, modules } = staticImportsOf(file);
    for (const module of modules.filter((m) => m.startsWith("node:"))) {
      findings.push({ kind: "startup", message: `${chain(file).join(" -> ")} imports ${module} at every start: load it with import() (or import.meta.require) where it is used` });
    }
    for (const next of files) {
      if (via.has(next)) continue;
      via.set(next, file);
      queue.push(next);
    }
  }
  return findings;
}

/** The index in LAYERS of the layer a file (relative to src/) belongs to, or -1. */
function layerIndex(rel: string): number {
  const first = rel.split(sep)[0]!;
  return LAYERS.findIndex((layer) => layer.paths.includes(first));
}

/** Strongly connected components with more than one module (or a module importing itself), each as a cycle path. */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const result: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node)!, index.get(to)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) result.push(cyclePath(graph, new Set(component), node));
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return result;
}

/** One concrete cycle through start inside a strongly connected component (breadth-first, so it is a shortest one). */
function cyclePath(graph: Map<string, string[]>, component: Set<string>, start: string): string[] {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const to of graph.get(node) ?? []) {
      if (!component.has(to)) continue;
      if (to === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return [...path, start];
      }
      if (!cameFrom.has(to)) {
        cameFrom.set(to, node);
        queue.push(to);
      }
    }
  }
  return [start, start];
}

/** Everything in the tree at srcDir that breaks the layering rule or the size limit. */
export function checkSourceTree(srcDir: string, oversize: Readonly<Record<string, number>> = OVERSIZE_UNTIL_SPLIT): Finding[] {
  const root = resolve(srcDir);
  const findings: Finding[] = [];
  const graph = new Map<string, string[]>();
  const rel = (file: string) => relative(root, file);
  for (const file of sourceFiles(root)) {
    const imports = importsOf(file).filter((target) => target.startsWith(root + sep));
    graph.set(file, imports);
    const lines = readFileSync(file, "utf8").split("\n").length - 1;
    const ceiling = oversize[rel(file)];
    if (ceiling === undefined && lines > MAX_LINES) findings.push({ kind: "size", message: `src/${rel(file)} has ${lines} lines (at most ${MAX_LINES})` });
    if (ceiling !== undefined && lines > ceiling) findings.push({ kind: "size", message: `src/${rel(file)} has ${lines} lines, more than the ${ceiling} it may have until it is split` });
    if (ceiling !== undefined && lines <= MAX_LINES) {
      findings.push({ kind: "size", message: `src/${rel(file)} is within ${MAX_LINES} lines now: remove it from OVERSIZE_UNTIL_SPLIT in scripts/check-imports.ts` });
    }
    const from = layerIndex(rel(file));
    if (from < 0) {
      findings.push({ kind: "unplaced", message: `src/${rel(file)} is in no layer: add its folder to LAYERS in scripts/check-imports.ts` });
      continue;
    }
    for (const target of imports) {
      const to = layerIndex(rel(target));
      if (to >= 0 && to < from) {
        findings.push({ kind: "upward", message: `src/${rel(file)} (${LAYERS[from]!.name}) imports src/${rel(target)} (${LAYERS[to]!.name}, a higher layer)` });
      }
    }
  }
  for (const cycle of cycles(graph)) findings.push({ kind: "cycle", message: `import cycle: ${cycle.map((f) => `src/${rel(f)}`).join(" -> ")}` });
  findings.push(...startupFindings(root));
  return findings;
}

if (import.meta.main) {
  const srcDir = process.argv[2] ?? join(import.meta.dir, "..", "src");
  const findings = checkSourceTree(srcDir);
  for (const finding of findings) process.stderr.write(`${finding.message}\n`);
  if (findings.length > 0) process.exit(1);
  const splitting = Object.keys(OVERSIZE_UNTIL_SPLIT).length;
  process.stdout.write(`${srcDir}: no import cycle, no upward import, no file over ${MAX_LINES} lines${splitting ? ` (but ${splitting} being split)` : ""}, no node: module at start\n`);
}
