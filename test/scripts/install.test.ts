/**
 * scripts/install.sh: the binary, a manual page per command and the completion scripts under a
 * prefix (and a staging DESTDIR), where man(1) and bash find them.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadAll } from "../../src/cli/dispatch.ts";
import { COMMANDS } from "../../src/commands/index.ts";
import { BINARY, runBinary } from "../helpers/cli.ts";

const ROOT = join(import.meta.dir, "..", "..");
const work = mkdtempSync(join(tmpdir(), "oci-install-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const visible = (await loadAll(COMMANDS)).filter((c) => c.hidden !== true);

function install(args: string[]) {
  const r = Bun.spawnSync(["sh", join(ROOT, "scripts/install.sh"), ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

describe("scripts/install.sh", () => {
  test("installs the binary, a page per command and completion for bash, zsh and fish under the prefix", () => {
    const prefix = join(work, "usr");
    const r = install(["--prefix", prefix, BINARY]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const bin = join(prefix, "bin/oci-storage");
    expect(statSync(bin).mode & 0o777).toBe(0o755);
    const pages = readdirSync(join(prefix, "share/man/man1")).sort();
    const expected = ["oci-storage.1", ...visible.map((c) => `oci-storage-${c.names[0]}.1`)].sort();
    expect(pages).toEqual(expected);
    for (const command of ["layers", "create-layer", "man"]) {
      expect(readFileSync(join(prefix, `share/man/man1/oci-storage-${command}.1`), "utf8")).toBe(runBinary(["man", command]).stdout);
    }
    // man finds an installed page by name through MANPATH.
    const found = Bun.spawnSync(["man", "-w", "oci-storage-create-image"], { env: { ...process.env, MANPATH: join(prefix, "share/man") }, stdout: "pipe" });
    expect(found.stdout.toString().trim()).toBe(join(prefix, "share/man/man1/oci-storage-create-image.1"));
    expect(readFileSync(join(prefix, "share/zsh/site-functions/_oci-storage"), "utf8")).toStartWith("#compdef oci-storage\n");
    expect(existsSync(join(prefix, "share/fish/vendor_completions.d/oci-storage.fish"))).toBe(true);
    // The bash file registers the completion of the installed command.
    const bash = Bun.spawnSync(["bash", "--norc", "-c", `source ${join(prefix, "share/bash-completion/completions/oci-storage")} && complete -p oci-storage`], { stdout: "pipe" });
    expect(bash.stdout.toString()).toBe("complete -F _oci_storage oci-storage\n");
  });

  test("--destdir stages the files under another root, keeping the prefix's layout", () => {
    const stage = join(work, "stage");
    expect(install(["--destdir", stage, "--prefix=/opt/oci", BINARY]).code).toBe(0);
    expect(existsSync(join(stage, "opt/oci/bin/oci-storage"))).toBe(true);
    expect(existsSync(join(stage, "opt/oci/share/man/man1/oci-storage-layers.1"))).toBe(true);
  });

  test("a missing binary or an unknown option is one line and a failure", () => {
    const missing = install(["--prefix", join(work, "x"), join(work, "nope")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`install.sh: no binary at ${join(work, "nope")} (npm run build, or name a release file)\n`);
    const unknown = install(["--frob"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.split("\n").length).toBe(2);
    expect(existsSync(join(work, "x"))).toBe(false);
  });
});
