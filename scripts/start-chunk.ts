/**
 * Keeping the modules every command loads in one chunk of the binary.
 *
 * Every command loads main.ts and what it imports statically: its start graph. With
 * `--splitting`, Bun (like esbuild) puts a module into a chunk by the set of entry points that
 * reach it, and every `import()` target and worker is an entry point. A start-graph module that
 * some lazily loaded modules import and others do not has a set of its own, so the start graph
 * came out as ~20 chunks, each a module of its own to link and evaluate. Together they made
 * every short command allocate more than the 64 MarkedBlocks after which JavaScriptCore starts
 * its warm-up thread (docs/benchmarks.md, issue 13).
 *
 * The plugin makes every module outside the start graph (and outside the workers) import the
 * whole start graph first. Every entry point but the workers then reaches all of it, so it is
 * one chunk. At run time the import costs nothing: whatever loads such a module has already
 * evaluated the start graph. `checkStartChunks` verifies the result from the build's metafile.
 */
import type { BunPlugin } from "bun";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

const NAMESPACE = "oci-storage-start-graph";
const SPECIFIER = `${NAMESPACE}:all`;

/** The modules `entries` import statically (type-only imports left out, as the bundler does), the entries included. */
export function staticImportClosure(entries: string[]): Set<string> {
  const typescript = new Bun.Transpiler({ loader: "ts" });
  const javascript = new Bun.Transpiler({ loader: "js" });
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = typescript.transformSync(readFileSync(file, "utf8"));
    for (const imported of javascript.scanImports(code)) {
      if (imported.kind === "import-statement" && imported.path.startsWith(".")) visit(resolve(dirname(file), imported.path));
    }
  };
  for (const entry of entries) visit(resolve(entry));
  return seen;
}

/** The plugin described above, for a program whose entry is `main` and whose workers are `workers`. */
export function startGraphInOneChunk(main: string, workers: string[]): BunPlugin {
  const startGraph = staticImportClosure([main]);
  const untouched = new Set([...startGraph, ...staticImportClosure(workers)]);
  const importAll = [...startGraph].filter((file) => file !== resolve(main)).map((file) => `import ${JSON.stringify(file)};`);
  return {
    name: "start graph in one chunk",
    setup(build) {
      build.onResolve({ filter: new RegExp(`^${SPECIFIER}$`) }, () => ({ path: "all", namespace: NAMESPACE }));
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, () => ({ contents: importAll.join("\n"), loader: "js" }));
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        // On the first line, so that stack traces keep their line numbers.
        const contents = untouched.has(args.path) ? source : `import ${JSON.stringify(SPECIFIER)};${source}`;
        return { contents, loader: "ts" };
      });
    },
  };
}

/** What a build's metafile says about the chunks main loads at start (those it imports statically, its own included). */
interface Metafile {
  outputs: Record<string, { entryPoint?: string; imports?: Array<{ path: string; kind: string; external?: boolean }> }>;
}

/**
 * The chunks main's output loads at start; more than two (main's own and the start graph's)
 * means the plugin could not keep the start graph together, e.g. because a start-graph module is
 * also loaded by `import()` somewhere, which makes it an entry point of its own.
 */
export function startChunks(metafile: Metafile, main: string): string[] {
  const outputs = metafile.outputs;
  const names = Object.keys(outputs);
  const mainOutput = names.find((name) => outputs[name]!.entryPoint !== undefined && resolve(outputs[name]!.entryPoint!) === resolve(main));
  if (mainOutput === undefined) throw new Error(`the build's metafile has no output for ${main}`);
  const byFile = (path: string) => names.find((name) => name.replace(/^\.\//, "") === path.replace(/^\.\//, ""));
  const loaded: string[] = [];
  const visit = (name: string): void => {
    if (loaded.includes(name)) return;
    loaded.push(name);
    for (const imported of outputs[name]!.imports ?? []) {
      const chunk = imported.kind === "import-statement" && !imported.external ? byFile(imported.path) : undefined;
      if (chunk !== undefined) visit(chunk);
    }
  };
  visit(mainOutput);
  return loaded;
}
