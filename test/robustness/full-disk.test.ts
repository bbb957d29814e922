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
import { type TestRegistry, registrySkipReason, startRegistry } from "../helpers/registry.ts";
import { RESERVE_FILE } from "../../src/store/space-reserve.ts";
import { MiB, expectClean, expectUnchanged, expectWriteFault, expectUsableAgain, randomTree, snapshot, tarOf } from "./disk-faults.ts";

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
  /** An OCI layout (made by umoci) whose image has a small layer and then one of about half the file system. */
  layout: string;
}

/** An OCI layout holding `image`: a small first layer, then a second one holding `tree` (in /big). */
function makeLayout(dir: string, tree: string): string {
  const layout = join(dir, "layout");
  sh(["umoci", "init", "--layout", layout]);
  sh(["umoci", "new", "--image", `${layout}:image`]);
  for (const [i, fill] of [(root: string) => writeFileSync(join(root, "small"), "the first layer\n"), (root: string) => sh(["cp", "-a", tree, join(root, "big")])].entries()) {
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
  const halfTree = randomTree(join(dir, "half"), Math.floor(FS_MEGABYTES * 0.55));
  const bigItem = join(dir, "big-item.bin");
  sh(["sh", "-c", 'cat "$1" "$1" > "$2"', "sh", bigTar, bigItem]);
  return {
    dir,
    baseTar: tarOf(base, join(dir, "base.tar")),
    item,
    bigTar,
    bigTarGz: `${bigTar}.gz`,
    halfTar: tarOf(halfTree, join(dir, "half.tar")),
    bigItem,
    bigTree,
    layout: makeLayout(dir, halfTree),
  };
}

const skip = smallFsSkipReason();
const inputs = skip ? undefined : makeInputs();
/** A registry on 127.0.0.1 holding the layout's image as full-disk:1, for pulls from docker://. */
const registrySkip = skip ? undefined : registrySkipReason();
if (registrySkip) console.log(`skipping the full-disk pulls from a registry: ${registrySkip}`);
let registry: TestRegistry | undefined;
beforeAll(async () => {
  if (!inputs || registrySkip) return;
  registry = await startRegistry(join(inputs.dir, "registry"));
  sh(["skopeo", "copy", "-q", "--dest-tls-verify=false", `oci:${inputs.layout}:image`, `docker://${registry.host}/full-disk:1`]);
});
afterAll(async () => {
  await registry?.stop();
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
        s.ok(["set-layer-data", "base", "note"], { stdin: "a layer's data item\n" });
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
          expectWriteFault(s.cli(["import-layer", "-n", "big", "-f", input.bigTar, "base"]), "import-layer", s);
          expectUnchanged(s, before);
          expectUsableAgain(fs, s, input.baseTar);
        });
      }

      test("import-layer of a big gzip tar runs out of space: no layer is left", () => {
        storeWithBase();
        const before = snapshot(s);
        fs.fill(6 * MiB);
        expectWriteFault(s.cli(["import-layer", "-f", input.bigTarGz]), "import-layer", s);
        expectUnchanged(s, before);
        expectUsableAgain(fs, s, input.baseTar);
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
          expectWriteFault(s.cli(["applydiff", "-f", input.bigTarGz, layer]), "applydiff", s);
          expectUnchanged(s, before);
          expect(s.ok(["changes", layer])).toBe("");
          expect(s.ok(["diffsize", layer]).trim()).toBe("0");
          // The apply can simply be repeated once there is room.
          fs.free();
          s.ok(["applydiff", "-f", input.baseTar, layer]);
          expect(sha256Bytes(s.cli(["diff", "-u", layer]).stdoutBytes)).toBe(sha256File(input.baseTar));
          expectUsableAgain(fs, s, input.baseTar, layer);
        });
      }

      for (const [what, owner, leave] of [
        ["image", "image", 4 * MiB],
        ["layer", "base", 14 * MiB],
        ["container", "ctr", 8 * MiB],
      ] as const) {
        // A container's item is stored as the others are: on ext4 only, to keep the suite short.
        if (what === "container" && kind !== "ext4") continue;
        test(`set-${what}-data of an item bigger than the disk, with ${leave / MiB} MiB free, fails and keeps the items before it`, () => {
          storeWithBase();
          if (what === "container") {
            s.ok(["create-container", "-n", "ctr", "image"]);
            s.ok(["set-container-data", "ctr", "state"], { stdin: "a container's data item\n" });
          }
          const before = snapshot(s);
          fs.fill(leave);
          expectWriteFault(s.cli([`set-${what}-data`, "-f", input.bigItem, owner, "huge"]), `set-${what}-data`, s);
          expectUnchanged(s, before);
          expect(s.cli([`get-${what}-data`, owner, "huge"]).code).toBe(1);
          // Nothing of the failed item is left holding space: what was free before is free again.
          expect(fs.freeBytes).toBeGreaterThan(leave - MiB);
          expectUsableAgain(fs, s, input.baseTar);
        });
      }

      test("copy of a tree bigger than the disk into a layer removes what it copied", () => {
        storeWithBase();
        const layer = s.ok(["create-layer", "base"]).split("\n")[0]!;
        const before = snapshot(s);
        fs.fill(8 * MiB);
        const r = s.cli(["copy", input.bigTree, `${layer}:/copied`]);
        expectWriteFault(r, "copy", s);
        expectUnchanged(s, before);
        expect(s.ok(["changes", layer])).toBe("");
        expectUsableAgain(fs, s, input.baseTar, layer);
      });

      // From a registry on ext4 only, to keep the suite short: the transport matters to running
      // out of space, not the file system, and the oci: pull runs on both.
      for (const transport of kind === "ext4" && !registrySkip ? ["oci", "docker"] : ["oci"]) {
        test(`a pull (${transport}:) whose second layer does not fit removes the layer it had stored, and succeeds once there is room`, () => {
          storeWithBase();
          const before = snapshot(s);
          const pull = transport === "oci" ? ["pull", `oci:${input.layout}:image`] : ["pull", "--tls-verify=false", `docker://${registry!.host}/full-disk:1`];
          fs.fill(6 * MiB);
          expectWriteFault(s.cli(pull), "pull", s);
          expectUnchanged(s, before);
          expect(s.json(["images", "-j"])).toHaveLength(1);
          expectUsableAgain(fs, s, input.baseTar);
          const id = s.ok(pull).trim();
          const top = (s.json(["images", "-j"]) as Array<{ id: string; layer: string }>).find((i) => i.id === id)!.layer;
          expect(s.ok(["changes", top])).toContain(`Add "/big/usr/README"\n`);
          expectClean(s);
        });
      }

      if (driver === "vfs") {
        // The copy runs out of space near its end, and (filled beforehand) near its start.
        for (const [command, leave] of [
          [["create-layer", "parent"], undefined],
          [["create-container", "parent-image"], 2 * MiB],
        ] as const) {
          test(`${command[0]} on a parent too big to copy${leave ? `, with ${leave / MiB} MiB free,` : ""} fails and leaves nothing`, () => {
            storeWithBase();
            s.ok(["import-layer", "-n", "parent", "-f", input.halfTar, "base"]);
            s.ok(["create-image", "-n", "parent-image", "parent"]);
            const before = snapshot(s);
            if (leave !== undefined) fs.fill(leave);
            expectWriteFault(s.cli([...command]), command[0], s);
            expectUnchanged(s, before);
            expect(s.json(["containers", "-j"])).toEqual([]);
            s.ok(["delete-image", "parent-image"]);
            expectUsableAgain(fs, s, input.baseTar);
          });
        }
      }

      test("a disk full before the command starts: reading works, writing fails with one line, deleting frees space", () => {
        storeWithBase();
        s.ok(["import-layer", "-n", "second", "-f", input.halfTar, "base"]);
        s.ok(["create-image", "-n", "second-image", "second"]);
        s.ok(["create-container", "-n", "ctr", "image"]);
        s.ok(["set-container-data", "-f", input.item, "ctr", "state"]);
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
        expectWriteFault(s.cli(["set-image-data", "-f", input.item, "image", "another"]), "set-image-data", s);
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
        expectUsableAgain(fs, s, input.baseTar);
      });

      // Every delete on a full disk, killed between its mark and its row: the next command finishes
      // it. The file system matters to running out of space, not to the order of a delete: the
      // deletes that share delete-layer's path run on ext4 only, to keep the suite short.
      for (const [args, point, gone] of [
        [["delete-layer", "doomed"], "after-delete-mark", "doomed"],
        [["delete-layer", "doomed"], "after-content-removed", "doomed"],
        [["delete-image", "doomed-image"], "after-delete-mark", "doomed"],
        [["delete-container", "ctr"], "mid-container-delete", "ctr"],
        [["wipe"], "after-content-removed", "doomed"],
      ] as const) {
        if (kind === "tmpfs" && args[0] !== "delete-layer") continue;
        test(`${args[0]} killed at ${point} on a full disk is finished by the next command`, () => {
          storeWithBase();
          s.ok(["import-layer", "-n", "doomed", "-f", input.halfTar, "base"]);
          if (args[0] !== "delete-layer") s.ok(["create-image", "-n", "doomed-image", "doomed"]);
          if (args[0] !== "delete-layer" && args[0] !== "delete-image") {
            s.ok(["create-container", "-n", "ctr", "image"]);
            s.ok(["set-container-data", "ctr", "state"], { stdin: "running\n" });
          }
          const before = snapshot(s);
          fs.fill(0);
          const killed = s.cli([...args], { env: { OCI_STORAGE_CRASH_AT: point } });
          expect({ code: killed.code === 0, stderr: killed.stderr }).toEqual({ code: false, stderr: "" });
          // The object is marked: check (which does not recover) reports it as half-deleted.
          const check = s.cli(["check"]);
          expect(check.code).toBe(1);
          expect(check.stdout).toMatch(/^layer [0-9a-f]{64}: left half-deleted by a process that died \(incomplete\)\n$/);
          const marked = check.stdout.slice(6, 70);
          // The next command recovers first, on the full disk: the marked layer is gone for good, nothing else is.
          const listed = s.cli(["layers", "-j"]);
          expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: "" });
          expect(JSON.parse(listed.stdout).map((l: { id: string }) => l.id)).toEqual(before.layers.map((l) => l.id).filter((id) => id !== marked));
          expectClean(s);
          // What the command had not reached yet (the rest of a wipe) it does when repeated.
          if (s.cli(["exists", gone]).code === 0) s.ok([...args]);
          expect(s.cli(["exists", gone]).code).toBe(1);
          if (gone === "doomed") expect(fs.freeBytes).toBeGreaterThan(10 * MiB);
          expectClean(s);
          expectUsableAgain(fs, s, input.baseTar);
        });
      }

      test("recovery that finds no free block and no space reserve waits, says so once, and runs once there is room", () => {
        storeWithBase();
        const doomed = s.ok(["import-layer", "-n", "doomed", "-f", input.halfTar, "base"]).split("\n")[0]!;
        const before = snapshot(s);
        fs.fill(0);
        expect(s.cli(["delete-layer", "doomed"], { env: { OCI_STORAGE_CRASH_AT: "after-content-removed" } }).code).not.toBe(0);
        // The delete gave up the space reserve and freed the layer's content; now that space is taken too.
        expect(existsSync(join(s.graph, RESERVE_FILE))).toBe(false);
        fs.fill(0);
        // check, the last to close the database, also gives back its write-ahead log file: now not even one row can be written.
        expect(s.cli(["check"]).stdout).toBe(`layer ${doomed}: left half-deleted by a process that died (incomplete)\n`);
        const listed = s.cli(["layers", "-j"]);
        expect(listed.code).toBe(0);
        expect(listed.stderr).toMatch(/^cleaning up after interrupted commands \(1 layer\) must wait for a command that can write: [^\n]*no space left on device\n$/);
        expect(JSON.parse(listed.stdout).map((l: { id: string }) => l.id)).toEqual(before.layers.map((l) => l.id).filter((id) => id !== doomed));
        expect(s.cli(["check"]).stdout).toBe(`layer ${doomed}: left half-deleted by a process that died (incomplete)\n`);
        fs.free();
        const after = s.cli(["layers"]);
        expect({ code: after.code, stderr: after.stderr }).toEqual({ code: 0, stderr: "" });
        expectUnchanged(s, { ...before, layers: before.layers.filter((l) => l.id !== doomed), diffs: new Map([...before.diffs].filter(([id]) => id !== doomed)) });
        expectUsableAgain(fs, s, input.baseTar);
      });

      test("an import killed part-way on a disk that then filled up is cleaned up by the next command", () => {
        // The issue's first report: a half-applied layer's files fill the disk and the process dies.
        storeWithBase();
        const before = snapshot(s);
        const killed = s.cli(["import-layer", "-n", "killed", "-f", input.halfTar, "base"], { env: { OCI_STORAGE_CRASH_AT: "mid-apply" } });
        expect(killed.code).not.toBe(0);
        fs.fill(0);
        expect(s.cli(["check"]).stdout).toMatch(/^layer [0-9a-f]{64}: left half-created by a process that died \(incomplete\)\n$/);
        const listed = s.cli(["layers"]);
        expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: "" });
        expectUnchanged(s, before);
        expectUsableAgain(fs, s, input.baseTar);
      });
    });
  }
}

describe.skipIf(skip !== undefined || registrySkip !== undefined)("a full temporary directory", () => {
  test("a pull from a registry whose $TMPDIR is full: one line naming the file it could not write, at once, and nothing stored", () => {
    const tmp = new SmallFs("tmpfs", 1);
    const s = new TestStore("vfs");
    try {
      s.ok(["import-layer", "-n", "base", "-f", inputs!.baseTar]);
      s.ok(["create-image", "-n", "image", "base"]);
      const before = snapshot(s);
      tmp.fill(0);
      const r = s.cli(["pull", "--tls-verify=false", `docker://${registry!.host}/full-disk:1`], { env: { TMPDIR: tmp.path } });
      expect(r.code).toBe(1);
      // A local write that failed is not retried as a network failure would be ("gave up after 5 attempts").
      const where = RegExp.escape(`${tmp.path}/oci-storage-blob-`);
      expect(r.stderr).toMatch(new RegExp(`^pull: docker://${registry!.host}/full-disk:1: layer sha256:[0-9a-f]{64}: write ${where}\\S+: no space left on device\\n$`));
      expect(readdirSync(tmp.path).filter((name) => !name.startsWith(".filler-"))).toEqual([]);
      expectUnchanged(s, before);
      expect(s.json(["images", "-j"])).toHaveLength(1);
    } finally {
      s.destroy();
      tmp.destroy();
    }
  });
});
