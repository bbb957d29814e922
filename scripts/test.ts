/**
 * The test run of `npm test`: bun test over test/, its output passed through as it comes. When
 * tests fail, each one's name and message are printed again after bun's summary, so that a log
 * cut to its last lines (as CI shows it) still says what failed and why. They are read from
 * the JUnit report bun test writes on the side.
 *
 * The tests' temp files go into one directory of this run (TMPDIR for bun test and what it
 * starts), removed at the end whatever the tests left there; mounts left below it are
 * unmounted first and named on stderr (a test should have unmounted them).
 *
 * Usage: bun scripts/test.ts [bun test arguments…]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountPointsBelow } from "../src/sys/mount-table.ts";

function readReport(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, entity: string) =>
    entity.startsWith("#x") || entity.startsWith("#X") ? String.fromCodePoint(parseInt(entity.slice(2), 16)) : entity.startsWith("#") ? String.fromCodePoint(Number(entity.slice(1))) : ENTITIES[entity.toLowerCase()]!,
  );
}

interface Failure {
  /** file:line of the test */
  where: string;
  name: string;
  message: string;
}

/** The failed test cases of a JUnit report. */
function failuresIn(xml: string): Failure[] {
  const failures: Failure[] = [];
  for (const [, attributes, body] of xml.matchAll(/<testcase\b([^>]*?)(?<!\/)>([\s\S]*?)<\/testcase>/g)) {
    const failure = /<failure\b[^>]*>([\s\S]*?)<\/failure>/.exec(body!);
    if (!failure) continue;
    const attribute = (key: string) => unescapeXml(new RegExp(`\\b${key}="([^"]*)"`).exec(attributes!)?.[1] ?? "");
    failures.push({ where: `${attribute("file")}:${attribute("line")}`, name: attribute("name"), message: unescapeXml(failure[1]!) });
  }
  return failures;
}

/** Removes the run's directory; mounts the tests left in it are detached first (and named), so that nothing mounted there is deleted through. */
function removeRunDir(dir: string): void {
  const left = mountPointsBelow(dir);
  if (left.length > 0) {
    console.error(`\nnpm test: the tests left ${left.length} mount(s) in their temp dir; unmounting:\n${left.map((point) => `  ${point}`).join("\n")}`);
    for (const point of left) Bun.spawnSync(["umount", "-l", point], { stderr: "inherit" });
  }
  if (mountPointsBelow(dir).length > 0) {
    console.error(`npm test: could not unmount everything below ${dir}; left it in place`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

const runDir = mkdtempSync(join(tmpdir(), "oci-test-"));
const report = join(runDir, "junit.xml");
const testTmp = join(runDir, "tmp");
mkdirSync(testTmp);
const run = Bun.spawn([process.execPath, "test", "--timeout", "120000", "--reporter=junit", `--reporter-outfile=${report}`, ...process.argv.slice(2)], {
  stdio: ["inherit", "inherit", "inherit"],
  env: { ...process.env, TMPDIR: testTmp },
});
// Ctrl-C reaches bun test too; this run waits for it to end, then still cleans up.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => run.kill(signal));
const code = await run.exited;
if (code !== 0) {
  const failures = failuresIn(readReport(report));
  if (failures.length > 0) {
    console.error(`\nFailed tests, again (${failures.length}):`);
    for (const { where, name, message } of failures) console.error(`\n(fail) ${where} ${name}\n${message.trimEnd()}`);
  }
}
removeRunDir(runDir);
process.exit(code);
