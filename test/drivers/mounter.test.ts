/** Mount counting in the run root: the counts database exists only once something was mounted. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Mounter } from "../../src/drivers/mounter.ts";

describe("mounter", () => {
  let dir: string;
  let runRoot: string;
  let layerDir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "oci-mounter-"));
    runRoot = join(dir, "run");
    layerDir = join(dir, "layer");
    mkdirSync(layerDir);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("before any mount, every question is answered without creating the counts database", () => {
    const mounter = new Mounter(runRoot);
    expect(mounter.count("L")).toBe(0);
    expect(mounter.mountPoint("L")).toBeUndefined();
    expect(mounter.mounted()).toEqual([]);
    expect(mounter.staleMounts()).toEqual([]);
    expect(mounter.unmount("L", true)).toBe(true);
    mounter.close();
    expect(existsSync(join(runRoot, "mounts.db"))).toBe(false);
  });

  test("the first mount creates the database; another process's mounter sees and drops the counts", () => {
    const first = new Mounter(runRoot);
    expect(first.mount("L", { kind: "directory", path: layerDir })).toBe(layerDir);
    expect(first.mount("L", { kind: "directory", path: layerDir })).toBe(layerDir);
    first.close();
    expect(existsSync(join(runRoot, "mounts.db"))).toBe(true);

    const second = new Mounter(runRoot);
    expect(second.count("L")).toBe(2);
    expect(second.mounted()).toEqual([{ layer: "L", path: layerDir, count: 2 }]);
    expect(second.unmount("L", false)).toBe(false);
    expect(second.unmount("L", false)).toBe(true);
    expect(second.count("L")).toBe(0);
    second.close();
  });
});
