/**
 * End-to-end: manual pages. `oci-storage man COMMAND` prints oci-storage-COMMAND(1) in roff for
 * every command, made from the same specs as `--help`; groff renders each without a warning.
 * `man` and `completion` run without opening a store.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COMMAND_GLOBAL_OPTIONS } from "../../src/cli/usage.ts";
import { loadAll } from "../../src/cli/dispatch.ts";
import { COMMANDS } from "../../src/commands/index.ts";
import { runBinary } from "../helpers/cli.ts";

const work = mkdtempSync(join(tmpdir(), "oci-man-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const visible = (await loadAll(COMMANDS)).filter((command) => command.hidden !== true);

/** The page rendered as plain text by groff, with every warning enabled (-ww); warnings come back separately. */
function render(roff: string): { text: string; warnings: string } {
  const r = Bun.spawnSync(["groff", "-man", "-Tutf8", "-ww", "-rLL=200n", "-P-cbou"], { stdin: new TextEncoder().encode(roff), stdout: "pipe", stderr: "pipe", env: { ...process.env, MANWIDTH: "200" } });
  expect(r.exitCode).toBe(0);
  return { text: r.stdout.toString(), warnings: r.stderr.toString() };
}

describe("man", () => {
  test("every command has its page: name, synopsis, arguments, every option, rendered without warnings", () => {
    for (const command of visible) {
      const name = command.names[0]!;
      const r = runBinary(["man", name]);
      expect([name, r.code, r.stderr]).toEqual([name, 0, ""]);
      expect(r.stdout).toStartWith(`.TH OCI\\-STORAGE\\-${name.toUpperCase().replace(/-/g, "\\-")} 1 `);
      const { text, warnings } = render(r.stdout);
      expect([name, warnings]).toEqual([name, ""]);
      expect(text).toContain(`oci-storage-${name} - ${command.description}`);
      expect(text).toContain(`oci-storage [global options] ${name} ${command.synopsis}`);
      for (const option of [...command.options, ...COMMAND_GLOBAL_OPTIONS]) {
        for (const spelling of option.names) expect([name, text]).toEqual([name, expect.stringContaining(spelling.length === 1 ? `-${spelling}` : `--${spelling}`)]);
        expect([name, text]).toEqual([name, expect.stringContaining(option.description)]);
      }
      for (const alias of command.names.slice(1)) expect(text).toContain(alias);
    }
  }, 600_000);

  test("an alias gives its command's page; the main page lists every command's page; man -l reads it", () => {
    expect(runBinary(["man", "createlayer"]).stdout).toBe(runBinary(["man", "create-layer"]).stdout);
    const main = runBinary(["man"]);
    expect(main.code).toBe(0);
    const { text, warnings } = render(main.stdout);
    expect(warnings).toBe("");
    for (const command of visible) expect(text).toContain(`oci-storage-${command.names[0]}(1)`);
    expect(text).toContain("/proc");
    const page = join(work, "oci-storage.1");
    writeFileSync(page, main.stdout);
    const man = Bun.spawnSync(["man", "-l", page], { env: { ...process.env, MANPAGER: "cat", MANWIDTH: "100" }, stdout: "pipe", stderr: "pipe" });
    expect(man.stderr.toString()).toBe("");
    expect(man.stdout.toString()).toContain("manage a container layer store");
  });

  test("an unknown command is one line and exit 1", () => {
    expect(runBinary(["man", "nosuch"])).toMatchObject({ code: 1, stdout: "", stderr: "nosuch: unrecognized command.\n" });
  });

  test("man and completion never open a store: no store is made, and a broken configuration does not matter", () => {
    const graph = join(work, "never-made");
    const conf = join(work, "broken.conf");
    writeFileSync(conf, "[storage\n");
    const globals = ["--graph", graph, "--run", `${graph}-run`, "-s", "vfs"];
    expect(runBinary([...globals, "man", "layers"]).code).toBe(0);
    expect(runBinary([...globals, "completion", "bash"]).code).toBe(0);
    expect(runBinary(["man"], { env: { OCI_STORAGE_CONF: conf } }).code).toBe(0);
    expect(existsSync(graph)).toBe(false);
    expect(existsSync(`${graph}-run`)).toBe(false);
  });
});
