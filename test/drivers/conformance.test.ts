/**
 * The driver conformance suite: every scenario runs against every driver available here
 * (vfs always; overlay as root with overlayfs), through the Store API in-process. A last group
 * builds the same layers on each driver and checks that users see the same trees and changes.
 */
import { afterAll, afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Compression } from "../../src/archive/types.ts";
import { kernelMountPoints } from "../../src/sys/mount-table.ts";
import { MAX_LOWER_LAYERS } from "../../src/drivers/overlay-mount.ts";
import { LayerInUseError } from "../../src/errors.ts";
import { availableDrivers } from "../helpers/cli.ts";
import { BASE, CHILD, CHILD_CHANGES, GRANDCHILD, GRANDCHILD_CHANGES, GRANDCHILD_FROM_BASE, T0, show } from "./scenarios.ts";
import { type DriverStore, describeTree, fileSource, layerContentDir, layerTar, memorySink, openDriverStore, removeScratch } from "./store-helpers.ts";

const DRIVERS = availableDrivers();

let sequenceTars: { base: string; child: string; grandchild: string } | undefined;

/** Imports BASE, CHILD and GRANDCHILD as layers B <- C <- G; returns the tar paths (made once per run). */
async function buildSequence(s: DriverStore): Promise<{ base: string; child: string; grandchild: string }> {
  sequenceTars ??= { base: layerTar(BASE), child: layerTar(CHILD), grandchild: layerTar(GRANDCHILD) };
  const tars = sequenceTars;
  await s.store.importLayer({ id: "B", names: [] }, fileSource(tars.base));
  await s.store.importLayer({ id: "C", names: [], parent: "B" }, fileSource(tars.child));
  await s.store.importLayer({ id: "G", names: [], parent: "C" }, fileSource(tars.grandchild));
  return tars;
}

/** The tree a user sees when mounting the layer. */
async function mountedTree(s: DriverStore, ref: string): Promise<string[]> {
  const path = await s.store.mount(ref, {});
  try {
    return describeTree(path);
  } finally {
    await s.store.unmount(ref, false);
  }
}

async function diffBytes(s: DriverStore, ref: string, from?: string): Promise<Uint8Array> {
  const sink = memorySink();
  await s.store.diff(ref, from, sink, Compression.None);
  return sink.bytes();
}

async function* bytesSource(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** Member names of a tar, by GNU tar. */
function tarNames(bytes: Uint8Array): string[] {
  const proc = Bun.spawnSync(["tar", "-tf", "-"], { stdin: bytes, stdout: "pipe" });
  return proc.stdout.toString().split("\n").filter(Boolean);
}

afterAll(removeScratch);

for (const driver of DRIVERS) {
  describe(`driver conformance: ${driver}`, () => {
    let s: DriverStore;
    beforeEach(async () => {
      s = await openDriverStore(driver);
    });
    afterEach(async () => {
      await s.destroy();
    });

    test("layers applied in sequence mount as their merged content: deletions and replaced directories hide what is below", async () => {
      await buildSequence(s);
      const child = (await mountedTree(s, "C")).join("\n");
      expect(child).toContain("/data/file1 f 640 1000:1000 mtime=1714557600123456789 size=3");
      expect(child).toContain(`xattr user.note=${Buffer.from("n1").toString("hex")}`);
      expect(child).toContain("/data/hard f 640 1000:1000 mtime=1714557600123456789 size=3");
      expect(child).toContain("hardlink-of /data/file1");
      expect(child).toContain("/data/setuid f 4755 0:0");
      expect(child).toContain("/dev/null c 666 0:0 mtime=1714557600000000000 dev=1:3");
      expect(child).toContain("/dev/fifo p 600");
      expect(child).toContain("/newdir/y f 600 7:8 mtime=1714557600020000000 size=2");
      expect(child).toContain("hardlink-of /newdir/x");
      expect(child).not.toContain("/data/link");
      expect(child).not.toContain("/data/sub/file2");
      expect(child).not.toContain("/gone");
      expect(child).not.toContain("/opaque/old1");
      expect(child).not.toContain("/opaque/inner");
      expect(child).toContain("/opaque d 711 0:0 mtime=1714557600040000000");
      const grandchild = (await mountedTree(s, "G")).join("\n");
      expect(grandchild).toContain("/opaque/inner/fresh f");
      expect(grandchild).not.toContain("/opaque/inner/deep");
      expect(grandchild).not.toContain("/etc/passwd");
      expect(grandchild).toContain("/gone/again f");
      expect(grandchild).not.toContain("/gone/a ");
      // Applying never leaves whiteout files in what users see.
      expect(grandchild).not.toContain(".wh.");
    });

    test("changes against the parent, against another layer, and diffsize", async () => {
      await buildSequence(s);
      expect(show(await s.store.changes("C"))).toEqual(CHILD_CHANGES);
      expect(show(await s.store.changes("G"))).toEqual(GRANDCHILD_CHANGES);
      expect(show(await s.store.changes("G", "B"))).toEqual(GRANDCHILD_FROM_BASE);
      expect(await s.store.changes("B", "B")).toEqual([]);
      expect(show(await s.store.changes("B")).slice(0, 3)).toEqual(['Add "/data"', 'Add "/data/file1"', 'Add "/data/hard"']);
      // file3 + hosts + x (hard link y once) + newfile + keep-name + new
      expect(await s.store.diffSize("C")).toBe(5 + 14 + 2 + 3 + 9 + 1);
      expect(await s.store.diffSize("G", "B")).toBe(9 + 5 + 14 + 5 + 2 + 3 + 5 + 9 + 1);
      // Nothing is mounted behind the user's back by comparing.
      expect(await s.store.mountCount("C")).toBe(0);
      expect([...kernelMountPoints()].filter((p) => p.startsWith(s.run) || p.startsWith(s.graph))).toEqual([]);
    });

    test("whiteouts and opaque directories round-trip: diff -u of an applied layer gives back the same bytes", async () => {
      const tars = await buildSequence(s);
      for (const [ref, tar] of [["B", tars.base], ["C", tars.child], ["G", tars.grandchild]] as const) {
        expect(Buffer.from(await diffBytes(s, ref)).equals(readFileSync(tar))).toBe(true);
      }
    });

    test("changes made through a mount diff as a tar that rebuilds the same tree on the parent", async () => {
      await buildSequence(s);
      await s.store.createLayer({ id: "W", names: [], parent: "C" });
      const path = await s.store.mount("W", {});
      rmSync(join(path, "etc", "hosts"));
      rmSync(join(path, "opaque"), { recursive: true });
      mkdirSync(join(path, "opaque"), 0o711);
      writeFileSync(join(path, "opaque", "only"), "only");
      writeFileSync(join(path, "data", "file1"), "rewritten");
      await s.store.unmount("W", false);
      const changes = show(await s.store.changes("W"));
      expect(changes).toContain('Delete "/etc/hosts"');
      expect(changes).toContain('Add "/opaque/only"');
      expect(changes).toContain('Modify "/data/file1"');
      const tar = await diffBytes(s, "W");
      const names = tarNames(tar);
      expect(names).toContain("etc/.wh.hosts");
      expect(names).toContain("opaque/only");
      await s.store.importLayer({ id: "W2", names: [], parent: "C" }, bytesSource(tar));
      const withoutTimes = (lines: string[]) => lines.map((line) => line.replace(/ mtime=\d+/, ""));
      expect(withoutTimes(await mountedTree(s, "W2"))).toEqual(withoutTimes(await mountedTree(s, "W")));
      expect(show(await s.store.changes("W2"))).toEqual(changes);
      if (driver === "overlay") {
        // Read from the layer's own directory, the output is byte-stable.
        expect(Buffer.from(await diffBytes(s, "W")).equals(Buffer.from(tar))).toBe(true);
        expect(names).toContain("opaque/.wh..wh..opq");
      }
    });

    test("mount counting: mount twice needs unmount twice; force drops the count; shutdown refuses while mounted", async () => {
      await buildSequence(s);
      const path = await s.store.mount("C", {});
      expect(await s.store.mount("C", {})).toBe(path);
      expect(await s.store.mountCount("C")).toBe(2);
      expect(await s.store.unmount("C", false)).toBe("still-mounted");
      expect(existsSync(join(path, "newfile"))).toBe(true);
      expect(await s.store.unmount("C", false)).toBe("unmounted");
      expect(await s.store.mountCount("C")).toBe(0);
      await s.store.mount("C", {});
      await s.store.mount("C", {});
      expect(await s.store.unmount("C", true)).toBe("unmounted");
      expect(await s.store.mountCount("C")).toBe(0);
      if (driver === "overlay") expect(kernelMountPoints().has(path)).toBe(false);
      await s.store.mount("G", {});
      await expect(s.store.shutdown(false)).rejects.toBeInstanceOf(LayerInUseError);
      await s.store.shutdown(true);
      expect(await s.store.mountCount("G")).toBe(0);
    });

    test("read-only image mounts show the image's top layer and share its count", async () => {
      await buildSequence(s);
      s.store.createImage({ id: "I", names: [], topLayer: "G" });
      const path = await s.store.mount("I", { readOnly: true });
      expect(readFileSync(join(path, "gone", "again"), "utf8")).toBe("again");
      expect(await s.store.mountCount("G")).toBe(1);
      if (driver === "overlay") {
        expect(() => writeFileSync(join(path, "x"), "x")).toThrow(/read-only/);
        expect(mountOptionsOf(path)).toEqual(expect.arrayContaining(["ro", "nosuid", "noexec"]));
      }
      expect(await s.store.unmount("I", false)).toBe("image");
      expect(await s.store.mountCount("G")).toBe(0);
      // Mounted read-write first, a read-only mount returns the same mount.
      const rw = await s.store.mount("G", {});
      expect(await s.store.mount("I", { readOnly: true })).toBe(rw);
      expect(await s.store.mountCount("G")).toBe(2);
    });

    test("a deep chain of layers mounts and its merged view shows every layer's file", async () => {
      // overlayfs's stacking limit is what this checks; vfs copies every parent, so a shorter chain says as much.
      const depth = driver === "overlay" ? MAX_LOWER_LAYERS : 40;
      let parent: string | undefined;
      for (let i = 1; i <= depth; i++) {
        const layer = await s.store.createLayer({ id: `L${i}`, names: [], parent });
        writeFileSync(join(layerContentDir(s.store, layer.id), `f${i}`), String(i));
        if (i === 20) await s.store.applyDiff("L20", fileSource(layerTar([{ name: ".wh.f10", mtime: T0 }])));
        parent = layer.id;
      }
      const top = `L${depth}`;
      const path = await s.store.mount(top, {});
      const names = readdirSync(path);
      expect(names).toHaveLength(depth - 1);
      expect(names).not.toContain("f10");
      expect(readFileSync(join(path, "f1"), "utf8")).toBe("1");
      expect(readFileSync(join(path, `f${depth}`), "utf8")).toBe(String(depth));
      await s.store.unmount(top, false);
      s.store.createImage({ id: "DEEP", names: [], topLayer: top });
      const readOnly = await s.store.mount("DEEP", { readOnly: true });
      expect(readdirSync(readOnly)).toHaveLength(depth - 1);
      await s.store.unmount("DEEP", false);
      if (driver === "overlay") {
        // One more layer still mounts read-write (its parents are the 500 lower dirs); past that the kernel's limit shows.
        await s.store.createLayer({ id: "OVER1", names: [], parent: top });
        expect(readdirSync(await s.store.mount("OVER1", {}))).toHaveLength(depth - 1);
        await s.store.unmount("OVER1", false);
        await s.store.createLayer({ id: "OVER2", names: [], parent: "OVER1" });
        await expect(s.store.mount("OVER2", {})).rejects.toThrow(/^max depth exceeded: layer OVER2 needs 501 lower layers/);
      }
    }, 120_000);
  });
}

/** The mount options the kernel shows for a mount point (per-mount and superblock options). */
function mountOptionsOf(path: string): string[] {
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const fields = line.split(" ");
    if (fields[4] !== path) continue;
    const dash = fields.indexOf("-");
    return [...fields[5]!.split(","), ...fields[dash + 3]!.split(",")];
  }
  return [];
}

describe("drivers agree", () => {
  const others = DRIVERS.slice(1);
  if (others.length === 0) {
    test.skip(`needs a second driver (only ${DRIVERS.join(", ")} here)`, () => {});
    return;
  }

  test("the same layers built on each driver mount as identical trees and report identical changes", async () => {
    const seen = new Map<string, { trees: string[][]; changes: string[][]; diffs: Uint8Array[] }>();
    for (const driver of DRIVERS) {
      const s = await openDriverStore(driver);
      try {
        await buildSequence(s);
        seen.set(driver, {
          trees: [await mountedTree(s, "B"), await mountedTree(s, "C"), await mountedTree(s, "G")],
          changes: [await s.store.changes("C"), await s.store.changes("G"), await s.store.changes("G", "B"), await s.store.changes("C", "G")].map(show),
          diffs: [await diffBytes(s, "C"), await diffBytes(s, "G")],
        });
      } finally {
        await s.destroy();
      }
    }
    const [first, ...rest] = [...seen.values()];
    for (const other of rest) {
      expect(other.trees).toEqual(first!.trees);
      expect(other.changes).toEqual(first!.changes);
      for (let i = 0; i < first!.diffs.length; i++) expect(Buffer.from(other.diffs[i]!).equals(Buffer.from(first!.diffs[i]!))).toBe(true);
    }
  }, 60_000);
});
