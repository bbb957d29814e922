/**
 * A failing disk under the graph root (docs/robustness.md, "Full disks, read-only roots and
 * failing file systems"). The graph root is an ext4 image on a loop device whose backing file
 * is sparse on a tmpfs much smaller than the image: once that tmpfs is full, every block ext4
 * sends the device fails, as on a disk that went bad. Mounted `sync`, the write(2) of a file's
 * data meets the failure itself (EIO); mounted as usual, the write lands in the page cache and
 * the failure comes back from the syncfs(2) the store runs before it marks a layer complete
 * (the loop device passes on the tmpfs's ENOSPC). Either way ext4 then aborts its journal and
 * turns read-only. An ext4 shut down as when its disk is gone (EXT4_IOC_SHUTDOWN) fails every
 * read too. Each time the command says one line and exits 1; nothing half-written is listed;
 * reading works while the file system is read-only; and once the device is healthy again
 * (tmpfs freed, e2fsck, mounted again) the store is exactly as before and works.
 */
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeOciLayout } from "../../scripts/oci-layout.ts";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sha256Bytes, sha256File } from "../helpers/fixtures.ts";
import { SmallFs, smallFsSkipReason } from "../helpers/small-fs.ts";
import { MiB, type Snapshot, expectClean, expectUnchanged, expectWriteFault, randomTree, snapshot, tarOf } from "./disk-faults.ts";

/** The ext4 image, the tmpfs (its device) holding it sparse, and what is left free on that device before a failure. */
const IMAGE_MEGABYTES = 160;
const DEVICE_MEGABYTES = 40;
const DEVICE_LEFT = 6 * MiB;
const BIG_MEGABYTES = 16;

const skip = smallFsSkipReason() ?? (Bun.which("python3") ? undefined : "python3 is missing (it shuts ext4 down with an ioctl)");
const work = mkdtempSync(join(tmpdir(), "oci-io-error-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The tag of the one-layer image (the big tar) in the inputs' OCI layout. */
const LAYOUT_REF = "big:1";

async function makeInputs(): Promise<{ baseTar: string; bigTar: string; layout: string }> {
  const base = join(work, "base");
  mkdirSync(join(base, "etc"), { recursive: true });
  writeFileSync(join(base, "etc", "hostname"), "before the disk failed\n");
  writeFileSync(join(base, "etc", "motd"), crypto.getRandomValues(new Uint8Array(64 * 1024)));
  const bigTar = tarOf(randomTree(join(work, "big"), BIG_MEGABYTES), join(work, "big.tar"));
  const layout = join(work, "layout");
  const layer = { file: bigTar, mediaType: "application/vnd.oci.image.layer.v1.tar", diffId: `sha256:${sha256File(bigTar)}` };
  await writeOciLayout(layout, LAYOUT_REF, [layer], { architecture: "amd64", os: "linux" });
  return { baseTar: tarOf(base, join(work, "base.tar")), bigTar, layout };
}
const inputs = skip ? undefined : await makeInputs();

/** What `layers` says while recovery cannot run on the file system ext4 turned read-only. */
const RECOVERY_WAITS = /^cleaning up after interrupted commands \(1 layer\) must wait for a command that can write: [^\n]*: read-only file system\n$/;

for (const driver of availableDrivers()) {
  describe.skipIf(skip !== undefined)(`failing disk: ${driver}${skip ? ` [skipped: ${skip}]` : ""}`, () => {
    let fs: SmallFs | undefined;
    let s: TestStore | undefined;
    const input = inputs!;
    afterEach(() => {
      // The file system first (with any overlay mount left inside): the store's graph root goes with it.
      fs?.destroy();
      if (s) rmSync(s.dir, { recursive: true, force: true });
      fs = s = undefined;
    });

    /** A store on an ext4 whose device fails once filled, holding a layer, an image and data items. */
    function storeOnFailingDisk(mountOptions: string[]): { fs: SmallFs; s: TestStore; before: Snapshot } {
      fs = new SmallFs("ext4", IMAGE_MEGABYTES, { onDeviceOf: DEVICE_MEGABYTES, mountOptions });
      s = new TestStore(driver, undefined, join(fs.path, "graph"));
      s.ok(["import-layer", "-n", "base", "-f", input.baseTar]);
      s.ok(["create-image", "-n", "image", "base"]);
      s.ok(["set-image-data", "image", "config"], { stdin: "an image's data item\n" });
      s.ok(["set-layer-data", "base", "note"], { stdin: "a layer's data item\n" });
      return { fs, s, before: snapshot(s) };
    }

    /**
     * While the file system is broken (ext4 aborted its journal when the device failed a write,
     * and is read-only from then on): every layer, export and data item of before reads back
     * the same, and writing is refused with one line. What the failed command could not clean
     * up on the read-only file system (`leftover`: nothing, a new layer, or the layer with this
     * id, an applydiff's target, hidden until recovery has emptied it) waits for recovery: each
     * command says so once, and `check` shows it.
     */
    function expectReadableWhileBroken(fs: SmallFs, s: TestStore, before: Snapshot, leftover: "nothing" | "new layer" | string): void {
      expect(fs.kernelOptions).toMatch(/(^|,)(ro|emergency_ro)(,|$)/);
      const first = s.cli(["layers", "-j"]);
      expect(first.code).toBe(0);
      if (leftover === "nothing") expect(first.stderr).toBe("");
      else expect(first.stderr).toMatch(RECOVERY_WAITS);
      const now = snapshot(s, first.stderr);
      const listed = (id: string) => id !== leftover;
      const diffs = new Map([...before.diffs].filter(([id]) => listed(id)));
      const items = new Map([...before.items].filter(([key]) => listed(key.split(" ")[1]!.split("/")[0]!)));
      expect({ layers: now.layers, diffs: now.diffs, items: now.items }).toEqual({ layers: before.layers.filter((l) => listed(l.id)), diffs, items });
      const check = s.cli(["check"]);
      const id = leftover === "new layer" ? "[0-9a-f]{64}" : leftover;
      if (leftover === "nothing") expect({ code: check.code, out: check.stdout + check.stderr }).toEqual({ code: 0, out: "" });
      else expect(check.stdout).toMatch(new RegExp(`^layer ${id}: left half-created by a process that died \\(incomplete\\)\n$`));
      const write = s.cli(["create-layer", "base"]);
      expect(write.code).toBe(1);
      expect(write.stderr.slice(first.stderr.length)).toMatch(/^[^\n]*: read-only file system\n$/);
    }

    /** After the device is healthy again and ext4 repaired: recovery runs quietly, the store is as before, and it takes the big tar. */
    function expectHealed(fs: SmallFs, s: TestStore, before: Snapshot): void {
      fs.device!.free();
      fs.repair();
      const listed = s.cli(["layers"]);
      expect({ code: listed.code, stderr: listed.stderr }).toEqual({ code: 0, stderr: "" });
      expectUnchanged(s, before);
      const fresh = s.ok(["import-layer", "-f", input.baseTar, "base"]).split("\n")[0]!;
      expect(sha256Bytes(s.cli(["diff", "-u", fresh]).stdoutBytes)).toBe(sha256File(input.baseTar));
      expectClean(s);
    }

    test("import-layer whose write(2) gets EIO part-way through the tar (ext4 mounted sync): one line, no layer, as before once repaired", () => {
      const { fs, s, before } = storeOnFailingDisk(["sync"]);
      fs.device!.fill(DEVICE_LEFT);
      expectWriteFault(s.cli(["import-layer", "-n", "big", "-f", input.bigTar, "base"]), "import-layer", s, ["input/output error"]);
      expectReadableWhileBroken(fs, s, before, "new layer");
      expectHealed(fs, s, before);
    });

    test("applydiff whose write(2) gets EIO (ext4 mounted sync): one line, the layer empty again once repaired", () => {
      const { fs, s } = storeOnFailingDisk(["sync"]);
      const target = s.ok(["create-layer", "-n", "target", "base"]).split("\n")[0]!;
      const before = snapshot(s);
      fs.device!.fill(DEVICE_LEFT);
      expectWriteFault(s.cli(["applydiff", "-f", input.bigTar, target]), "applydiff", s, ["input/output error"]);
      expectReadableWhileBroken(fs, s, before, target);
      expectHealed(fs, s, before);
      expect(s.ok(["changes", target])).toBe("");
      s.ok(["applydiff", "-f", input.baseTar, target]);
      expect(sha256Bytes(s.cli(["diff", "-u", target]).stdoutBytes)).toBe(sha256File(input.baseTar));
    });

    // The database and the opening of the store do not depend on the driver: these two run on vfs only, to keep the suite short.
    if (driver === "vfs") test("set-image-data of an item the failing device cannot take (ext4 mounted sync): one line, no item", () => {
      const { fs, s, before } = storeOnFailingDisk(["sync"]);
      fs.device!.fill(DEVICE_LEFT);
      // SQLite's word for a failed write(2) of the database: it keeps no errno for the caller.
      expectWriteFault(s.cli(["set-image-data", "-f", input.bigTar, "image", "huge"]), "set-image-data", s, ["disk I/O error"]);
      expectReadableWhileBroken(fs, s, before, "nothing");
      expectHealed(fs, s, before);
      expect(s.cli(["get-image-data", "image", "huge"]).code).toBe(1);
    });

    test("import-layer whose syncfs(2) fails (the device failed the page cache's writeback): the layer is never complete", () => {
      const { fs, s, before } = storeOnFailingDisk([]);
      fs.device!.fill(DEVICE_LEFT);
      const r = s.cli(["import-layer", "-n", "big", "-f", input.bigTar, "base"]);
      // The loop device passes on its backing tmpfs's ENOSPC; ext4 says EIO or read-only for what it meets after.
      expectWriteFault(r, "import-layer", s, ["no space left on device", "input/output error", "read-only file system"]);
      expectReadableWhileBroken(fs, s, before, "new layer");
      expectHealed(fs, s, before);
    });

    test("pull whose syncfs(2) of a layer fails (flushed on a thread of its own): no layer or image of it is complete", () => {
      const { fs, s, before } = storeOnFailingDisk([]);
      const images = s.ok(["images", "-q"]);
      fs.device!.fill(DEVICE_LEFT);
      const r = s.cli(["pull", "-q", `oci:${input.layout}:${LAYOUT_REF}`]);
      expectWriteFault(r, "pull", s, ["no space left on device", "input/output error", "read-only file system"]);
      expect(s.ok(["images", "-q"])).toBe(images);
      expectReadableWhileBroken(fs, s, before, "new layer");
      expectHealed(fs, s, before);
    });

    if (driver === "vfs") test("a disk that is gone (ext4 shut down): every command fails with one line naming the database, and the store is as before once repaired", () => {
      const { fs, s, before } = storeOnFailingDisk([]);
      fs.shutDown();
      for (const args of [["layers"], ["images"], ["layer", "base"], ["exists", "base"], ["get-image-data", "image", "config"], ["diff", "-u", "base"], ["check"], ["create-layer", "base"], ["delete-layer", "base"]]) {
        const r = s.cli(args);
        // The store cannot be opened: 1.43's "error initializing: …" on stdout.
        expect({ args, code: r.code, out: `${r.stdout}${r.stderr}` }).toEqual({ args, code: 1, out: `error initializing: opening database ${s.graph}/oci-storage.db: input/output error\n` });
      }
      fs.repair();
      expectUnchanged(s, before);
      expectHealed(fs, s, before);
    });
  });
}
