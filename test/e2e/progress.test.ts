/**
 * Progress on a terminal: pull, push, applydiff, import-layer and diff run in a real
 * pseudo-terminal (script(1)) show one line per blob or input on stderr with bytes done / total
 * and a rate, redrawn in place; with stderr piped, or with --quiet, they show nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, TestStore } from "../helpers/cli.ts";
import { makeTar, sh } from "../helpers/fixtures.ts";
import { makeUmociImage } from "../helpers/images.ts";

let work: string;
let layout: string;
let store: TestStore;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oci-progress-"));
  layout = join(work, "layout");
  makeUmociImage(work, layout, "app:v1", 1_000_000);
  store = new TestStore("vfs");
});
afterAll(() => {
  store.destroy();
  rmSync(work, { recursive: true, force: true });
});

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

/**
 * Runs the binary on the store in a pseudo-terminal with standard output sent to a file:
 * what the terminal shows is standard error only. Returns both.
 */
function inTerminal(args: string[]): { screen: string; stdout: string; code: number } {
  const out = join(work, "stdout");
  const commandLine = `${[BINARY, ...store.globals, ...args].map(quote).join(" ")} >${quote(out)}`;
  const run = Bun.spawnSync(["script", "-qfec", commandLine, "/dev/null"], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  return { screen: run.stdout.toString(), stdout: readFileSync(out, "utf8"), code: run.exitCode ?? -1 };
}

/** Every line a label had on the screen, in the order drawn (a line is redrawn in place many times). */
function drawsOf(screen: string, label: string): string[] {
  return screen
    .split(/\r?\n/)
    .flatMap((line) => line.split("\r"))
    .map((line) => line.replace(/\x1b\[[0-9]*[AK]/g, ""))
    .filter((line) => line.startsWith(label));
}

/** A size as the progress line writes it. */
const SIZE = String.raw`[0-9.]+ (?:B|KiB|MiB|GiB)`;
/** The final draw of a line with a known total: all bytes done, a rate, "done". */
const FINISHED = new RegExp(String.raw`^.+  (${SIZE}) / \1  ${SIZE}/s  done$`);

/** Checks that the screen redraws lines in place and that label's last draw is finished. */
function expectFinished(screen: string, label: string): void {
  const draws = drawsOf(screen, label);
  expect(draws.length).toBeGreaterThan(0);
  expect(draws.at(-1)).toMatch(FINISHED);
  expect(screen).toContain("\r\x1b[2K");
  expect(screen).toMatch(/\x1b\[[0-9]+A/);
}

describe("progress on a terminal", () => {
  test("pull: one line per layer blob with bytes, total and rate, redrawn in place; the second pull says the layers were there", () => {
    const pulled = inTerminal(["pull", `oci:${layout}:app:v1`]);
    expect(pulled.code).toBe(0);
    expect(pulled.stdout).toMatch(/^[0-9a-f]{64}\n$/);
    const manifest = JSON.parse(sh(["skopeo", "inspect", "--raw", `oci:${layout}:app:v1`]));
    for (const layer of manifest.layers) expectFinished(pulled.screen, `Copying blob ${layer.digest.slice(7, 19)}`);
    expect(new Set(drawsOf(pulled.screen, "Copying blob").map((line) => line.slice(0, 25))).size).toBe(2);

    const again = inTerminal(["pull", "-n", "localhost/again:1", `oci:${layout}:app:v1`]);
    for (const layer of manifest.layers) expect(drawsOf(again.screen, `Copying blob ${layer.digest.slice(7, 19)}`).at(-1)).toEndWith("already present");
  });

  test("push: one line per layer, its uncompressed bytes against the layer's size", () => {
    const out = join(work, "pushed");
    const pushed = inTerminal(["push", "localhost/app:v1", `oci:${out}:t`]);
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const layers = store.json(["layers", "--json"]);
    expect(layers.length).toBe(2);
    for (const layer of layers) expectFinished(pushed.screen, `Copying blob ${layer["diff-digest"].slice(7, 19)}`);
  });

  test("import-layer, applydiff and diff: the input read (or the diff written) against its size", () => {
    const tar = makeTar({ "etc/hostname": "progress\n", "data.bin": "x".repeat(3_000_000) });
    sh(["gzip", "-k", tar]);
    const imported = inTerminal(["import-layer", "-f", `${tar}.gz`]);
    expect(imported.code).toBe(0);
    expectFinished(imported.screen, `Importing ${tar}.gz`);
    const layer = imported.stdout.trim();

    const target = store.ok(["create-layer"]).trim();
    const applied = inTerminal(["applydiff", "-f", tar, target]);
    expect(applied.code).toBe(0);
    expectFinished(applied.screen, `Applying ${tar}`);

    const diffed = inTerminal(["diff", "-c", "-f", join(work, "diff.tar.gz"), layer]);
    expect(diffed.code).toBe(0);
    expectFinished(diffed.screen, `Writing the diff of ${layer}`);
    // The total is the uncompressed tar's size: the layer's, reproduced byte for byte.
    const [done] = drawsOf(diffed.screen, "Writing the diff").at(-1)!.match(new RegExp(SIZE))!;
    const size = store.json(["layers", "--json"]).find((l: any) => l.id === layer)["diff-size"];
    expect(done).toBe(`${(size / (1 << 20)).toFixed(1)} MiB`);
  });

  test("--quiet shows nothing on a terminal", () => {
    const tar = makeTar({ "quiet.txt": "q\n" });
    const layer = store.json(["layers", "--json"])[0].id;
    for (const args of [
      ["pull", "-q", "-n", "localhost/quiet:1", `oci:${layout}:app:v1`],
      ["push", "-q", "localhost/app:v1", `oci:${join(work, "quiet")}:t`],
      ["import-layer", "-q", "-f", tar],
      ["diff", "-q", "-f", join(work, "quiet.tar"), layer],
    ]) {
      const run = inTerminal(args);
      expect({ args, code: run.code, screen: run.screen }).toEqual({ args, code: 0, screen: "" });
    }
  });
});

describe("progress with stderr not a terminal", () => {
  test("pull, push, import-layer, applydiff and diff write nothing to a piped stderr", () => {
    const piped = new TestStore("vfs");
    try {
      const tar = makeTar({ "piped.txt": "p\n" });
      const results = [
        piped.cli(["pull", `oci:${layout}:app:v1`]),
        piped.cli(["push", "localhost/app:v1", `oci:${join(work, "piped")}:t`]),
        piped.cli(["import-layer", "--id", "a".repeat(64), "-f", tar]),
        piped.cli(["create-layer", "--id", "b".repeat(64)]),
        piped.cli(["applydiff", "-f", tar, "b".repeat(64)]),
        piped.cli(["diff", "-f", join(work, "piped.tar"), "a".repeat(64)]),
      ];
      expect(results.map((r) => [r.code, r.stderr])).toEqual(results.map(() => [0, ""]));
    } finally {
      piped.destroy();
    }
  });
});
