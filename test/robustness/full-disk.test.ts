/**
 * A full disk must not brick the store (docs/robustness.md, "Full disks, read-only roots and
 * vanished content"). Each store's graph root lives on a small real file system made here — a
 * size-limited tmpfs and a loop-mounted ext4 image — while its run root stays on the normal
 * temp dir. Writes run out of space at several points of a large GNU tar (plain and gzip), of
 * a vfs copy of a big parent, of a big data item, of a copy and of a pull, and on a disk that
 * is full before the command starts. Every time the store must still list, earlier layers must
 * export byte for byte as before, data items must read back unchanged, no layer may be
 * half-applied, `check` must find nothing, and once space is freed a new layer can be made and
 * the failed one deleted.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sh, sha256Bytes, sha256File } from "../helpers/fixtures.ts";
import { SmallFs, type SmallFsKind, smallFsSkipReason } from "../helpers/small-fs.ts";
import { RESERVE_FILE } from "../../src/store/space-reserve.ts";

const MiB = 1024 * 1024;
/** The small file system, and the big inputs that cannot fit on it. */
const FS_MEGABYTES = 24;
const BIG_MEGABYTES = 32;

interface Inputs {
  dir: string;
  /** A small layer made before the failures, and its data item. */
  baseTar: string;
  item: string;
  /** GNU tar of BIG_MEGABYTES of random files in a few directories, and the same gzipped. */
  bigTar: string;
  bigTarGz: string;
  /** A tar of about half the file system: a parent a vfs copy of which does not fit. */
  halfTar: string;
  /** A data item bigger than the file system. */
  bigItem: string;
  /** A directory tree bigger than the file system, for `copy`. */
  bigTree: string;
  /** An OCI layout (made by umoci) whose image has a small layer and then one bigger than the file system. */
  layout: string;
}

function tarOf(root: string, out: string): string {
  sh(["tar", "-C", root, "--owner=0", "--group=0", "--mtime=2024-05-01 10:00:00", "--sort=name", "-cf", out, "."]);
  return out;
}

/** A tree of `megabytes` MiB of random files (1 MiB each) under a few directories. */
function randomTree(root: string, megabytes: number): string {
  for (let i = 0; i < megabytes; i++) {
    const dir = join(root, "usr", "lib", `pkg${i % 6}`);
    mkdirSync(dir, { recursive: true });
    const blob = new Uint8Array(MiB);
    for (let at = 0; at < MiB; at += 65536) crypto.getRandomValues(blob.subarray(at, at + 65536));
    writeFileSync(join(dir, `blob${i}.bin`), blob);
  }
  writeFileSync(join(root, "usr", "README"), "a tree too big for its file system\n");
  return root;
}

/** An OCI layout holding `image`: a small first layer, then a second one holding `bigTree`. */
function makeLayout(dir: string, bigTree: string): string {
  const layout = join(dir, "layout");
  sh(["umoci", "init", "--layout", layout]);
  sh(["umoci", "new", "--image", `${layout}:image`]);
  for (const [i, fill] of [(root: string) => writeFileSync(join(root, "small"), "the first layer\n"), (root: string) => sh(["cp", "-a", bigTree, join(root, "big")])].entries()) {
    const bundle = join(dir, `bundle${i}`);
    sh(["umoci", "unpack", "--image", `${layout}:image`, bundle]);
    fill(join(bundle, "rootfs"));
    sh(["umoci", "repack", "--image", `${layout}:image`, bundle]);
    rmSync(bundle, { recursive: true, force: true });
  }
  return layout;
}

function makeInputs(): Inputs {
  const dir = mkdtempSync(join(tmpdir(), "oci-full-disk-"));
  const base = join(dir, "base");
  mkdirSync(join(base, "etc"), { recursive: true });
  writeFileSync(join(base, "etc", "hostname"), "before the disk filled up\n");
  writeFileSync(join(base, "etc", "motd"), crypto.getRandomValues(new Uint8Array(64 * 1024)));
  const bigTree = randomTree(join(dir, "big"), BIG_MEGABYTES);
  const bigTar = tarOf(bigTree, join(dir, "big.tar"));
  sh(["sh", "-c", 'gzip -1 -c "$1" > "$1.gz"', "sh", bigTar]);
  const item = join(dir, "item.bin");
  writeFileSync(item, crypto.getRandomValues(new Uint8Array(48 * 1024)));
  const bigItem = join(dir, "big-item.bin");
  sh(["sh", "-c", 'cat "$1" "$1" > "$2"', "sh", bigTar, bigItem]);
  return {
    dir,
    baseTar: tarOf(base, join(dir, "base.tar")),
    item,
    bigTar,
    bigTarGz: `${bigTar}.gz`,
    halfTar: tarOf(randomTree(join(dir, "half"), Math.floor(FS_MEGABYTES * 0.55)), join(dir, "half.tar")),
    bigItem,
    bigTree,
    layout: makeLayout(dir, bigTree),
  };
}

/** What a store held before a failure, to compare with after it. */
interface Snapshot {
  layers: Array<{ id: string; names: string[] }>;
  diffs: Map<string, string>;
  items: Map<string, string>;
}

function snapshot(s: TestStore): Snapshot {
  const layers = (s.json(["layers", "-j"]) as Array<{ id: string; names?: string[] }>).map((l) => ({ id: l.id, names: l.names ?? [] }));
  const diffs = new Map(layers.map((l) => [l.id, sha256Bytes(s.cli(["diff", "-u", l.id]).stdoutBytes)] as const));
  const items = new Map<string, string>();
  for (const image of s.json(["images", "-j"]) as Array<{ id: string; "big-data-names"?: string[] }>) {
    for (const name of image["big-data-names"] ?? []) items.set(`${image.id}/${name}`, sha256Bytes(s.cli(["get-image-data", image.id, name]).stdoutBytes));
  }
  return { layers, diffs, items };
}

/** The store lists, exports and reads back exactly what it held before, and check finds nothing. */
function expectUnchanged(s: TestStore, before: Snapshot): void {
  const after = snapshot(s);
  expect(after.layers).toEqual(before.layers);
  expect(after.diffs).toEqual(before.diffs);
  expect(after.items).toEqual(before.items);
  expectClean(s);
}

function expectClean(s: TestStore): void {
  const check = s.cli(["check"]);
  expect(`${check.stdout}${check.stderr}`).toBe("");
  expect(check.code).toBe(0);
}

/** The one-line failure of a write that ran out of space. */
function expectNoSpace(r: { code: number; stderr: string }, command: string): void {
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr.startsWith(`${command}: `)).toBe(true);
  expect(r.stderr).toMatch(/: no space left on device\n$/);
}

/** After freeing space: a new layer can be made, and the layer given (if any) deleted. */
function expectUsableAgain(fs: SmallFs, s: TestStore, inputs: Inputs, failed?: string): void {
  fs.free();
  const fresh = s.ok(["import-layer", "-f", inputs.baseTar]).split("\n")[0]!;
  expect(sha256Bytes(s.cli(["diff", "-u", fresh]).stdoutBytes)).toBe(sha256File(inputs.baseTar));
  if (failed !== undefined) s.ok(["delete-layer", failed]);
  expectClean(s);
  expect(existsSync(join(s.graph, RESERVE_FILE))).toBe(true);
}

const skip = smallFsSkipReason();
const inputs = skip ? undefined : makeInputs();
afterAll(() => {
  if (inputs) rmSync(inputs.dir, { recursive: true, force: true });
});

for (const kind of ["tmpfs", "ext4"] as SmallFsKind[]) {
  for (const driver of availableDrivers()) {
    describe.skipIf(skip !== undefined)(`full disk: ${driver} on ${kind}`, () => {
      let fs: SmallFs;
      let s: TestStore;
      const input = inputs!;
      beforeAll(() => {
        fs = new SmallFs(kind, FS_MEGABYTES);
      });
      afterAll(() => fs?.destroy());
      afterEach(() => {
        fs.setReadOnly(false);
        fs.free();
        s?.destroy();
      });

      /** A store whose graph root is on the small file system, holding a layer, an image and a data item. */
      function storeWithBase(): TestStore {
        s = new TestStore(driver, undefined, join(fs.path, "graph"));
        s.ok(["import-layer", "-n", "base", "-f", input.baseTar]);
        s.ok(["create-image", "-n", "image", "base"]);
        s.ok(["set-image-data", "-f", input.item, "image", "config"]);
        return s;
      }

      test("a store without a space reserve (made before there was one) gets it with its next layer", () => {
        storeWithBase();
        rmSync(join(s.graph, RESERVE_FILE));
        s.ok(["create-layer", "base"]);
        expect(existsSync(join(s.graph, RESERVE_FILE))).toBe(true);
      });

      for (const [label, leave] of [
        ["with no room left at all", 0],
        ["early in the tar", 2 * MiB],
        ["half-way through the tar", 8 * MiB],
        ["near the end of what fits", 16 * MiB],
      ] as const) {
        test(`import-layer of a big tar runs out of space ${label}: no layer is left`, () => {
          storeWithBase();
          const before = snapshot(s);
          fs.fill(leave);
          expectNoSpace(s.cli(["import-layer", "-n", "big", "-f", input.bigTar, "base"]), "import-layer");
          expectUnchanged(s, before);
          expectUsableAgain(fs, s, input);
        });
      }

      test("import-layer of a big gzip tar runs out of space: no layer is left", () => {
        storeWithBase();
        const before = snapshot(s);
        fs.fill(6 * MiB);
        expectNoSpace(s.cli(["import-layer", "-f", input.bigTarGz]), "import-layer");
        expectUnchanged(s, before);
        expectUsableAgain(fs, s, input);
      });

      for (const [label, leave] of [
        ["early", MiB],
        ["late", 14 * MiB],
      ] as const) {
        test(`applydiff of a big tar runs out of space ${label}: the layer is empty again, and can be deleted`, () => {
          storeWithBase();
          const layer = s.ok(["create-layer", "-n", "target", "base"]).split("\n")[0]!;
          const before = snapshot(s);
          fs.fill(leave);
          expectNoSpace(s.cli(["applydiff", "-f", input.bigTarGz, layer]), "applydiff");
          expectUnchanged(s, before);
          expect(s.ok(["changes", layer])).toBe("");
          expect(s.ok(["diffsize", layer]).trim()).toBe("0");
          // The apply can simply be repeated once there is room.
          fs.free();
          s.ok(["applydiff", "-f", input.baseTar, layer]);
          expect(sha256Bytes(s.cli(["diff", "-u", layer]).stdoutBytes)).toBe(sha256File(input.baseTar));
          expectUsableAgain(fs, s, input, layer);
        });
      }

      test("set-image-data of an item bigger than the disk fails and keeps the items before it", () => {
        storeWithBase();
        const before = snapshot(s);
        fs.fill(4 * MiB);
        expectNoSpace(s.cli(["set-image-data", "-f", input.bigItem, "image", "huge"]), "set-image-data");
        expectUnchanged(s, before);
        expect(s.cli(["get-image-data", "image", "huge"]).code).toBe(1);
        // Nothing of the failed item is left holding space: what was free before is free again.
        expect(fs.freeBytes).toBeGreaterThan(3 * MiB);
        expectUsableAgain(fs, s, input);
      });

      test("copy of a tree bigger than the disk into a layer removes what it copied", () => {
        storeWithBase();
        const layer = s.ok(["create-layer", "base"]).split("\n")[0]!;
        const before = snapshot(s);
        fs.fill(8 * MiB);
        const r = s.cli(["copy", input.bigTree, `${layer}:/copied`]);
        expectNoSpace(r, "copy");
        expectUnchanged(s, before);
        expect(s.ok(["changes", layer])).toBe("");
        expectUsableAgain(fs, s, input, layer);
      });

      test("a pull whose second layer does not fit removes the layer it had stored", () => {
        storeWithBase();
        const before = snapshot(s);
        fs.fill(6 * MiB);
        expectNoSpace(s.cli(["pull", `oci:${input.layout}:image`]), "pull");
        expectUnchanged(s, before);
        expect(s.json(["images", "-j"])).toHaveLength(1);
        expectUsableAgain(fs, s, input);
      });

      if (driver === "vfs") {
        for (const command of [["create-layer", "parent"], ["create-container", "parent-image"]]) {
          test(`${command[0]} on a parent too big to copy fails and leaves nothing`, () => {
            storeWithBase();
            s.ok(["import-layer", "-n", "parent", "-f", input.halfTar, "base"]);
            s.ok(["create-image", "-n", "parent-image", "parent"]);
            const before = snapshot(s);
            expectNoSpace(s.cli(command), command[0]!);
            expectUnchanged(s, before);
            expect(s.json(["containers", "-j"])).toEqual([]);
            s.ok(["delete-image", "parent-image"]);
            expectUsableAgain(fs, s, input);
          });
        }
      }

      test("a disk full before the command starts: reading works, writing fails with one line, deleting frees space", () => {
        storeWithBase();
        s.ok(["import-layer", "-n", "second", "-f", input.halfTar, "base"]);
        s.ok(["create-image", "-n", "second-image", "second"]);
        s.ok(["create-container", "-n", "ctr", "image"]);
        s.ok(["import-layer", "-n", "third", "-f", input.baseTar]);
        const before = snapshot(s);
        fs.fill(0);
        expect(fs.freeBytes).toBeLessThan(64 * 1024);
        // Reading.
        for (const args of [["layers"], ["images"], ["containers"], ["layer", "base"], ["image", "image"], ["container", "ctr"], ["exists", "base"], ["metadata", "image"], ["list-image-data", "image"], ["changes", "second"], ["diffsize", "second"]]) {
          const r = s.cli(args);
          expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" });
        }
        expectUnchanged(s, before);
        if (driver === "vfs") {
          const path = s.ok(["mount", "base"]).trim();
          expect(readdirSync(join(path, "etc")).sort()).toEqual(["hostname", "motd"]);
          s.ok(["unmount", "base"]);
        }
        // Writing that needs space fails with one line naming the cause.
        expectNoSpace(s.cli(["set-image-data", "-f", input.item, "image", "another"]), "set-image-data");
        // Deleting frees space, from the very first delete on.
        s.ok(["delete-layer", "third"]);
        s.ok(["delete-container", "ctr"]);
        s.ok(["delete-image", "second-image"]);
        expect(s.json(["layers", "-j"]).map((l: { id: string }) => l.id)).toEqual([before.layers[0]!.id]);
        expect(fs.freeBytes).toBeGreaterThan(10 * MiB);
        expectClean(s);
        fs.fill(0);
        s.ok(["delete", "image"]);
        s.ok(["wipe"]);
        expect(s.json(["layers", "-j"])).toEqual([]);
        expectUsableAgain(fs, s, input);
      });

      for (const point of ["after-delete-mark", "after-content-removed"]) {
        test(`a delete killed at ${point} on a full disk is finished by the next command`, () => {
          storeWithBase();
          const doomed = s.ok(["import-layer", "-n", "doomed", "-f", input.halfTar, "base"]).split("\n")[0]!;
          const before = snapshot(s);
          fs.fill(0);
          const killed = s.cli(["delete-layer", "doomed"], { env: { OCI_STORAGE_CRASH_AT: point } });
          expect(killed.code).not.toBe(0);
          expect(killed.stderr).toBe("");
          // The layer is marked: hidden from every command, reported by check as half-deleted.
          const check = s.cli(["check"]);
          expect(check.stdout).toBe(`layer ${doomed}: left half-deleted by a process that died (incomplete)\n`);
          expect(s.json(["layers", "-j"]).map((l: { id: string }) => l.id)).toEqual(before.layers.filter((l) => l.id !== doomed).map((l) => l.id));
          // That listing ran recovery, which finished the delete even on the full disk.
          expectClean(s);
          expect(fs.freeBytes).toBeGreaterThan(10 * MiB);
          expectUsableAgain(fs, s, input);
        });
      }
    });
  }
}
