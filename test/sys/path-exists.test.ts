/** pathExists against node:fs's existsSync on real entries of every kind. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathExists } from "../../src/sys/path-exists.ts";

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "oci-path-exists-"));
  mkdirSync(join(dir, "d"));
  mkdirSync(join(dir, "old"));
  utimesSync(join(dir, "old"), 0, 0);
  writeFileSync(join(dir, "f"), "x");
  writeFileSync(join(dir, "empty"), "");
  mkdirSync(join(dir, "locked"));
  writeFileSync(join(dir, "locked", "inner"), "");
  chmodSync(join(dir, "locked"), 0);
  symlinkSync("d", join(dir, "to-dir"));
  symlinkSync("nowhere", join(dir, "dangling"));
});

afterAll(() => {
  chmodSync(join(dir, "locked"), 0o700);
  rmSync(dir, { recursive: true, force: true });
});

test("pathExists agrees with existsSync for directories, files, symlinks and missing paths", () => {
  const names = ["d", "old", "f", "empty", "locked", "locked/inner", "to-dir", "dangling", "missing", "missing/below", "f/below"];
  for (const name of names) expect({ name, exists: pathExists(join(dir, name)) }).toEqual({ name, exists: existsSync(join(dir, name)) });
  expect(pathExists(join(dir, "d"))).toBe(true);
  expect(pathExists(join(dir, "old"))).toBe(true);
  expect(pathExists(join(dir, "missing"))).toBe(false);
  expect(pathExists(join(dir, "dangling"))).toBe(false);
});
