/**
 * `npm run release` (scripts/release.ts): the release binaries for every target with their
 * SHA256SUMS, each naming its target and commit; without network, one clear line and nothing
 * half-built left behind. Running the binaries on bare systems is scripts/release-check.sh's job.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RELEASE_TARGETS, releaseFileName } from "../../scripts/release.ts";

const ROOT = join(import.meta.dir, "..", "..");
const work = mkdtempSync(join(tmpdir(), "oci-release-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function run(command: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const proc = Bun.spawnSync(command, { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env }, stdout: "pipe", stderr: "pipe" });
  return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}

function gitCommit(): string {
  return run(["git", "rev-parse", "--short", "HEAD"]).stdout.trim();
}

describe("npm run release", () => {
  test("without the npm registry, one line names the runtime that could not be fetched and no output is left", () => {
    const out = join(work, "offline");
    const cache = join(work, "empty-cache");
    mkdirSync(cache);
    // An empty cache and a proxy nothing listens on: Bun must download the baseline runtime and cannot.
    const unreachable = "http://127.0.0.1:9";
    const r = run([process.execPath, "scripts/release.ts", "--out", out], {
      env: { BUN_INSTALL_CACHE_DIR: cache, HTTPS_PROXY: unreachable, https_proxy: unreachable, HTTP_PROXY: unreachable, http_proxy: unreachable },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^release: cannot build linux-x64-baseline: downloading Bun's runtime bun-linux-x64-baseline-v[\d.]+ from the npm registry failed \(\w+\); .*\n$/);
    expect(r.stdout).toBe("");
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((name) => name.startsWith("offline"))).toEqual([]);
  });

  test(
    "builds x64, x64-baseline and arm64 binaries with SHA256SUMS; each names its target and commit",
    () => {
      const out = join(work, "release");
      const r = run([process.execPath, "scripts/release.ts", "--out", out]);
      if (r.code !== 0) throw new Error(`release failed: ${r.stderr}`);
      const names = RELEASE_TARGETS.map((t) => releaseFileName(t.name));
      expect(names).toEqual(["oci-storage-linux-x64", "oci-storage-linux-x64-baseline", "oci-storage-linux-arm64"]);
      expect(readdirSync(out).sort()).toEqual([...names, "SHA256SUMS"].sort());

      const sums = run(["sha256sum", "-c", "--strict", "SHA256SUMS"], { cwd: out });
      expect(sums.code).toBe(0);
      expect(sums.stdout).toBe(names.map((n) => `${n}: OK\n`).join(""));

      const store = join(work, "store");
      for (const target of ["linux-x64", "linux-x64-baseline"]) {
        const v = run([join(out, releaseFileName(target)), "--graph", store, "--run", `${store}-run`, "-s", "vfs", "version"]);
        expect(v.code).toBe(0);
        expect(v.stdout).toContain(`\nTarget: ${target}\n`);
        expect(v.stdout).toMatch(new RegExp(`^Version: \\d+\\.\\d+\\.\\d+\\nBuild: ${gitCommit()}(-dirty)?\\nTarget: `));
      }
      // The arm64 binary runs on arm64 only (release-check.sh runs it through qemu): here, its ELF header and
      // the target name its code carries (the string literal "linux-arm64", which the x64 build does not have).
      const arm = join(out, releaseFileName("linux-arm64"));
      expect(run(["readelf", "-h", arm]).stdout).toMatch(/Machine:\s+AArch64/);
      const literal = (file: string) => run(["grep", "-c", "-a", "-F", `"linux-arm64"`, file]).stdout.trim();
      expect([literal(arm), literal(join(out, releaseFileName("linux-x64")))]).toEqual(["1", "0"]);
    },
    600_000,
  );
});
