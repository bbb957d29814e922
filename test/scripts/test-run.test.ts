/**
 * scripts/test.ts, the test run of `npm test`: bun's own output and exit status pass through,
 * and failed tests are named again, with their messages, after the summary (where a log cut to
 * its tail still shows them). Runs it on small test files in a temp dir.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SCRIPT = join(import.meta.dir, "..", "..", "scripts", "test.ts");
const work = mkdtempSync(join(tmpdir(), "oci-test-run-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function runTests(file: string, text: string, tmp: string) {
  writeFileSync(join(work, file), text);
  const run = Bun.spawnSync([process.execPath, SCRIPT, `./${file}`], { cwd: work, env: { ...process.env, TMPDIR: tmp }, stdout: "pipe", stderr: "pipe" });
  return { code: run.exitCode, stdout: run.stdout.toString(), stderr: run.stderr.toString() };
}

test("failed tests are named again after the summary, with their messages; the exit status is bun test's", () => {
  const tmp = mkdtempSync(join(work, "tmp-"));
  const run = runTests(
    "some.test.ts",
    [
      `import { describe, expect, test } from "bun:test";`,
      `test("passes", () => expect(1).toBe(1));`,
      `describe("group", () => { test("compares <names>", () => expect({ name: "a&b" }).toEqual({ name: "a&c" })); });`,
      `test("throws", () => { throw new Error("pull exited 1: connection reset\\nsecond line"); });`,
    ].join("\n"),
    tmp,
  );
  expect(run.code).toBe(1);
  const again = run.stderr.slice(run.stderr.indexOf("Failed tests, again (2):"));
  expect(again).toStartWith("Failed tests, again (2):");
  expect(again).toContain("(fail) some.test.ts:3 compares <names>");
  expect(again).toContain('"name": "a&c"');
  expect(again).toContain("(fail) some.test.ts:4 throws\nError: pull exited 1: connection reset\nsecond line");
  expect(again).not.toContain("passes");
  // bun's own report came first, and the JUnit report is gone.
  expect(run.stderr.indexOf("(fail) throws")).toBeLessThan(run.stderr.indexOf("Failed tests, again"));
  expect(readdirSync(tmp)).toEqual([]);
});

test("a passing run prints nothing more and exits 0", () => {
  const tmp = mkdtempSync(join(work, "tmp-"));
  const run = runTests("fine.test.ts", `import { expect, test } from "bun:test";\ntest("passes", () => expect(2).toBe(2));\n`, tmp);
  expect(run.code).toBe(0);
  expect(run.stderr).toContain("1 pass");
  expect(run.stderr).not.toContain("Failed tests");
  expect(readdirSync(tmp)).toEqual([]);
});

test("the tests' temp files go into a directory of the run, removed at its end with any mount a test left there", () => {
  if (process.getuid?.() !== 0) return console.log("skipping the left-mount test: mounting a tmpfs needs root");
  const tmp = mkdtempSync(join(work, "tmp-"));
  const run = runTests(
    "leaves.test.ts",
    [
      `import { expect, test } from "bun:test";`,
      `import { mkdtempSync, writeFileSync } from "node:fs";`,
      `import { tmpdir } from "node:os";`,
      `import { join } from "node:path";`,
      `test("leaves a file and a mount behind", () => {`,
      `  const dir = mkdtempSync(join(tmpdir(), "left-"));`,
      `  writeFileSync(join(dir, "file"), "x");`,
      `  const mounted = join(dir, "mnt");`,
      `  Bun.spawnSync(["mkdir", mounted]);`,
      `  expect(Bun.spawnSync(["mount", "-t", "tmpfs", "tmpfs", mounted]).exitCode).toBe(0);`,
      `  writeFileSync(join(mounted, "inside"), "y");`,
      `  console.log("LEFT " + dir);`,
      `});`,
    ].join("\n"),
    tmp,
  );
  expect(run.code).toBe(0);
  const left = /LEFT (\S+)/.exec(run.stdout)![1]!;
  // Below the run's own directory in the TMPDIR it was given, and gone with it.
  expect(left.startsWith(`${tmp}/oci-test-`)).toBe(true);
  expect(run.stderr).toContain(`the tests left 1 mount(s) in their temp dir; unmounting:\n  ${left}/mnt`);
  expect(readdirSync(tmp)).toEqual([]);
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(tmp);
});
