/**
 * Mount counting in the run root: the counts database exists only once something was mounted,
 * and a damaged one (what a machine that stopped while it was written can leave, as it is
 * written without fsync) is started again empty.
 */
import { Database } from "bun:sqlite";
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from "node:fs";
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

  /** A counts database in the run root with layer L counted `count` times at layerDir. */
  function countsWith(count: number): string {
    mkdirSync(runRoot, { recursive: true });
    const path = join(runRoot, "mounts.db");
    const db = new Database(path, { create: true });
    db.run("PRAGMA journal_mode = WAL");
    db.run("CREATE TABLE mounts (layer TEXT PRIMARY KEY, path TEXT NOT NULL, count INTEGER NOT NULL, kernel INTEGER NOT NULL)");
    db.run("INSERT INTO mounts VALUES ('L', ?, ?, 0)", [layerDir, count]);
    db.close();
    return path;
  }

  test("a counts file that is not a database is started again empty; mounting and counting go on", () => {
    const path = countsWith(3);
    writeFileSync(path, "SQLite format 3\0 and then a page cut short");
    writeFileSync(`${path}-wal`, "half a frame");
    const mounter = new Mounter(runRoot);
    expect(mounter.count("L")).toBe(0);
    expect(mounter.mount("L", { kind: "directory", path: layerDir })).toBe(layerDir);
    expect(mounter.mount("L", { kind: "directory", path: layerDir })).toBe(layerDir);
    mounter.close();
    expect(new Mounter(runRoot).mounted()).toEqual([{ layer: "L", path: layerDir, count: 2 }]);
  });

  test("a counts file with a broken page is started again empty, by mount, unmount, listings and the lock check takes", () => {
    const breakTablePage = (path: string) => {
      // Page 2 (4096 bytes in) holds the table: a b-tree page type no page has.
      const fd = openSync(path, "r+");
      writeSync(fd, Buffer.alloc(64, 0xee), 0, 64, 4096);
      closeSync(fd);
    };
    const uses: Array<[string, (m: Mounter) => unknown, unknown]> = [
      ["count", (m) => m.count("L"), 0],
      ["mounted", (m) => m.mounted(), []],
      ["staleMounts", (m) => m.staleMounts(new Set()), []],
      ["unmount", (m) => m.unmount("L", false), true],
      ["mount", (m) => m.mount("L", { kind: "directory", path: layerDir }), layerDir],
      ["whileLocked", (m) => m.whileLocked((rows) => rows.length), 0],
    ];
    for (const [what, use, expected] of uses) {
      breakTablePage(countsWith(3));
      const broken = new Database(join(runRoot, "mounts.db"));
      expect(() => broken.query("SELECT * FROM mounts").all()).toThrow("malformed");
      broken.close();
      const mounter = new Mounter(runRoot);
      expect({ what, result: use(mounter) }).toEqual({ what, result: expected });
      mounter.close();
      rmSync(runRoot, { recursive: true, force: true });
    }
  });
});
