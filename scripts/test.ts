/**
 * The test run of `npm test`: bun test over test/, its output passed through as it comes. When
 * tests fail, each one's name and message are printed again after bun's summary, so that a log
 * cut to its last lines (as CI shows it) still says what failed and why. They are read from
 * the JUnit report bun test writes on the side.
 *
 * Usage: bun scripts/test.ts [bun test arguments…]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

const reportDir = mkdtempSync(join(tmpdir(), "oci-test-report-"));
const report = join(reportDir, "junit.xml");
const run = Bun.spawn([process.execPath, "test", "--timeout", "120000", "--reporter=junit", `--reporter-outfile=${report}`, ...process.argv.slice(2)], {
  stdio: ["inherit", "inherit", "inherit"],
});
const code = await run.exited;
if (code !== 0) {
  const failures = failuresIn(readReport(report));
  if (failures.length > 0) {
    console.error(`\nFailed tests, again (${failures.length}):`);
    for (const { where, name, message } of failures) console.error(`\n(fail) ${where} ${name}\n${message.trimEnd()}`);
  }
}
rmSync(reportDir, { recursive: true, force: true });
process.exit(code);
