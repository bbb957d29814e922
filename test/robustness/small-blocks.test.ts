/**
 * A graph root on a file system whose blocks are smaller than a memory page (ext4 made on a
 * device under 512 MiB has 1 KiB blocks). SQLite grows its memory-mapped WAL index there one
 * block per page, and on a full disk its first write into the rest of a page killed the
 * process with SIGBUS (docs/robustness.md). Such a store must read, and make layers once space
 * is freed, like any other.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";
import { SmallFs, smallFsSkipReason } from "../helpers/small-fs.ts";

const skip = smallFsSkipReason();
const work = mkdtempSync(join(tmpdir(), "oci-small-blocks-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(skip !== undefined)(`ext4 with 1 KiB blocks${skip ? ` [skipped: ${skip}]` : ""}`, () => {
  let fs: SmallFs;
  let s: TestStore;
  let tar: string;
  beforeAll(() => {
    fs = new SmallFs("ext4", 16, { blockBytes: 1024 });
    s = new TestStore("vfs", undefined, join(fs.path, "graph"));
    mkdirSync(join(work, "tree", "etc"), { recursive: true });
    writeFileSync(join(work, "tree", "etc", "motd"), "hello\n");
    tar = join(work, "layer.tar");
    sh(["tar", "-C", join(work, "tree"), "--owner=0", "--group=0", "-cf", tar, "."]);
  });
  afterAll(() => {
    s?.destroy();
    fs?.destroy();
  });

  test("full to the last few blocks, with the space reserve given up, the store still lists and exports; freed, it takes a new layer", () => {
    const base = s.ok(["import-layer", "-n", "base", "-f", tar]).split("\n")[0]!;
    const before = s.ok(["diff", "-u", "base"]);
    // Where SIGBUS struck: a few blocks free (a page's last block found, the others not), or none.
    for (const leave of [12 * 1024, 8 * 1024, 4 * 1024, 0]) {
      fs.free();
      fs.fill(leave);
      rmSync(join(s.graph, "oci-storage.reserve"), { force: true });
      const layers = s.cli(["layers"]);
      expect({ leave, code: layers.code, stderr: layers.stderr }).toEqual({ leave, code: 0, stderr: "" });
      expect(layers.stdout).toContain(base);
      expect(s.cli(["diff", "-u", "base"]).stdout).toBe(before);
      expect(s.cli(["exists", "-l", "base"]).code).toBe(0);
    }
    fs.free();
    const next = s.cli(["import-layer", "-n", "next", "-f", tar, "base"]);
    expect(next.code).toBe(0);
    expect(s.ok(["layers"])).toContain("next");
    expect(s.cli(["check"])).toMatchObject({ code: 0, stdout: "" });
  });
});
