/**
 * The layering rule of docs/architecture.md: no import cycle in src/, no import from a lower
 * layer up to a higher one, no file over 500 lines, and no node: module that every command
 * would load at start (scripts/check-imports.ts).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { checkSourceTree } from "../scripts/check-imports.ts";

const REPO = join(import.meta.dir, "..");

test("src/ has no import cycle, no upward import, no file over 500 lines (but those being split, which may not grow) and no node: module at start", () => {
  expect(checkSourceTree(join(REPO, "src")).map((f) => f.message)).toEqual([]);
});

test("the check runs as a script and says what it checked", () => {
  const run = Bun.spawnSync([process.execPath, join(REPO, "scripts", "check-imports.ts")], { stdout: "pipe", stderr: "pipe" });
  expect(run.stderr.toString()).toBe("");
  expect(run.stdout.toString()).toContain("no import cycle, no upward import");
  expect(run.exitCode).toBe(0);
});

describe("the check finds what breaks the rule", () => {
  const trees: string[] = [];
  afterAll(() => {
    for (const dir of trees) rmSync(dir, { recursive: true, force: true });
  });

  /** A src/ tree of the given files in a temp dir. */
  function tree(files: Record<string, string>): string {
    const root = mkdtempSync(join(tmpdir(), "oci-architecture-"));
    trees.push(root);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return root;
  }

  test("a driver importing the store, and the store importing the CLI (type-only imports count)", () => {
    const root = tree({
      "drivers/vfs.ts": 'import { Store } from "../store/store.ts";\n',
      "store/store.ts": 'import type { OptionDef } from "../cli/command-spec.ts";\n',
      "cli/command-spec.ts": "export interface OptionDef {}\n",
    });
    expect(checkSourceTree(root, {}).map((f) => f.message)).toEqual([
      "src/drivers/vfs.ts (drivers) imports src/store/store.ts (store, a higher layer)",
      "src/store/store.ts (store) imports src/cli/command-spec.ts (cli, a higher layer)",
    ]);
  });

  test("the CLI importing commands, through a re-export or a dynamic import", () => {
    const root = tree({
      "cli/dispatch.ts": 'export { x } from "../commands/command.ts";\nconst later = () => import("../commands/index.ts");\n',
      "commands/command.ts": "export const x = 1;\n",
      "commands/index.ts": "export {};\n",
    });
    expect(checkSourceTree(root, {}).map((f) => f.kind)).toEqual(["upward", "upward"]);
  });

  test("a cycle inside one layer, shown as the path that closes it", () => {
    const root = tree({
      "store/a.ts": 'import { b } from "./b.ts";\nexport const a = 1;\n',
      "store/b.ts": 'import { c } from "./c.ts";\nexport const b = 1;\n',
      "store/c.ts": 'import { a } from "./a.ts";\nexport const c = 1;\n',
      "store/d.ts": 'import { a } from "./a.ts";\n',
    });
    expect(checkSourceTree(root, {}).map((f) => f.message)).toEqual([`import cycle: src/store/a.ts -> src/store/b.ts -> src/store/c.ts -> src/store/a.ts`]);
  });

  test("a node: module that every command would load at start, named with the chain of static imports from main.ts; type-only and dynamic imports load nothing", () => {
    const root = tree({
      "main.ts": 'import { open } from "./store/store.ts";\nimport type { X } from "./store/types.ts";\nconst later = () => import("./store/heavy.ts");\n',
      "store/store.ts": 'import { join } from "./paths.ts";\nimport { type Stats } from "node:fs";\nexport const open = 1;\n',
      "store/paths.ts": 'import { join as j } from "node:path";\nexport const join = j;\n',
      "store/types.ts": 'import { readFileSync } from "node:fs";\nexport type X = 1;\n',
      "store/heavy.ts": 'import { readFileSync } from "node:fs";\nexport const heavy = readFileSync;\n',
    });
    expect(checkSourceTree(root, {}).map((f) => f.message)).toEqual([
      "src/main.ts -> src/store/store.ts -> src/store/paths.ts imports node:path at every start: load it with import() (or import.meta.require) where it is used",
    ]);
  });

  test("an import written in a comment is not an import", () => {
    const root = tree({ "drivers/vfs.ts": '/** Unlike `import { x } from "../store/store.ts"`. */\n// import "../store/store.ts";\nexport {};\n', "store/store.ts": "export {};\n" });
    expect(checkSourceTree(root, {})).toEqual([]);
  });

  test("a file being split may not grow, and must leave the list once it is small enough", () => {
    const root = tree({ "archive/tar.ts": "export {};\n".repeat(502), "archive/apply.ts": "export {};\n".repeat(20), "archive/copy.ts": "export {};\n".repeat(501) });
    expect(checkSourceTree(root, { "archive/tar.ts": 501, "archive/apply.ts": 600, "archive/copy.ts": 501 }).map((f) => f.message)).toEqual([
      "src/archive/apply.ts is within 500 lines now: remove it from OVERSIZE_UNTIL_SPLIT in scripts/check-imports.ts",
      "src/archive/tar.ts has 502 lines, more than the 501 it may have until it is split",
    ]);
  });

  test("a file over 500 lines, and a folder in no layer", () => {
    const root = tree({ "archive/tar.ts": "export {};\n".repeat(501), "helpers/x.ts": "export {};\n" });
    expect(checkSourceTree(root, {}).map((f) => f.message)).toEqual([
      "src/archive/tar.ts has 501 lines (at most 500)",
      "src/helpers/x.ts is in no layer: add its folder to LAYERS in scripts/check-imports.ts",
    ]);
  });
});
