/**
 * scripts/start-chunk.ts: the build keeps the modules every command loads in one chunk, and
 * says when it cannot. Small source trees in a temp dir, bundled by Bun as the binary is.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startChunks, startGraphInOneChunk } from "../../scripts/start-chunk.ts";

const work = mkdtempSync(join(tmpdir(), "oci-start-chunk-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A source tree of `files` under a new directory; returns that directory. */
function tree(name: string, files: Record<string, string>): string {
  const root = join(work, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** The chunks main.ts's output loads at start, bundled with or without the plugin. */
async function chunksAtStart(root: string, withPlugin: boolean): Promise<string[]> {
  const main = join(root, "main.ts");
  const worker = join(root, "worker.ts");
  const result = await Bun.build({
    entrypoints: [main, worker],
    outdir: join(root, "out"),
    target: "bun",
    format: "esm",
    splitting: true,
    metafile: true,
    plugins: withPlugin ? [startGraphInOneChunk(main, [worker])] : [],
  });
  expect(result.success).toBe(true);
  return startChunks(result.metafile!, main);
}

// main.ts loads errors.ts and flags.ts at start; each command's module, loaded by import(), uses one of them.
const commands = {
  "errors.ts": "export class Failure extends Error {}\n",
  "flags.ts": 'import { Failure } from "./errors.ts";\nexport const parse = (s: string) => { if (!s) throw new Failure("empty"); return s; };\n',
  "list.ts": 'import { Failure } from "./errors.ts";\nexport const run = () => { throw new Failure("list"); };\n',
  "show.ts": 'import { parse } from "./flags.ts";\nexport const run = () => parse("show");\n',
  "worker.ts": "self.onmessage = () => postMessage(1);\n",
};
const main =
  'import { Failure } from "./errors.ts";\nimport { parse } from "./flags.ts";\n' +
  'const load = { list: () => import("./list.ts"), show: () => import("./show.ts") };\n' +
  "const name = parse(process.argv[2] ?? \"list\") as keyof typeof load;\n" +
  "try { await (await load[name]()).run(); } catch (e) { console.log(e instanceof Failure); }\n";

test("without the plugin the start graph is cut into chunks; with it, main loads its own chunk and one more", async () => {
  const root = tree("split", { ...commands, "main.ts": main });
  expect((await chunksAtStart(root, false)).length).toBeGreaterThan(2);
  expect(await chunksAtStart(root, true)).toHaveLength(2);
});

test("a start-graph module that is also loaded by import() still splits the start graph, and startChunks (which the build checks) sees it", async () => {
  const lazyErrors = main.replace("const load = {", 'const again = () => import("./errors.ts");\nvoid again;\nconst load = {');
  const root = tree("lazy", { ...commands, "main.ts": lazyErrors });
  expect((await chunksAtStart(root, true)).length).toBeGreaterThan(2);
});
