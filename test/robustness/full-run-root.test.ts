/**
 * A full run root (docs/robustness.md). The run root holds the mount counts (mounts.db) and is
 * assumed writable (invariant 7: usually a tmpfs of its own). When it fills up anyway, the
 * commands that only read records and layer content work; the commands that count mounts
 * (mount, unmount, check, deleting a container) fail with one line naming the counts database,
 * leave no uncounted mount behind, and work again once there is room.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sha256Bytes, sha256File } from "../helpers/fixtures.ts";
import { SmallFs, smallFsSkipReason } from "../helpers/small-fs.ts";
import { expectClean, tarOf } from "./disk-faults.ts";
import { kernelMountsBelow } from "./store-state.ts";

const skip = smallFsSkipReason();

for (const driver of availableDrivers()) {
  describe.skipIf(skip !== undefined)(`full run root: ${driver}${skip ? ` [skipped: ${skip}]` : ""}`, () => {
    let fs: SmallFs | undefined;
    let s: TestStore | undefined;
    afterEach(() => {
      fs?.free();
      s?.destroy();
      fs?.destroy();
      fs = s = undefined;
    });

    test("reading works, counting mounts fails with one line naming the counts database, and all works once there is room", () => {
      fs = new SmallFs("tmpfs", 1);
      const store = new TestStore(driver, undefined, undefined, join(fs.path, "run"));
      s = store;
      const tree = mkdtempSync(join(tmpdir(), "oci-full-run-root-"));
      mkdirSync(join(tree, "etc"));
      writeFileSync(join(tree, "etc", "hostname"), "a full run root\n");
      const tar = tarOf(tree, join(store.dir, "base.tar"));
      rmSync(tree, { recursive: true });
      const base = store.ok(["import-layer", "-n", "base", "-f", tar]).split("\n")[0]!;
      store.ok(["create-image", "-n", "image", "base"]);
      store.ok(["create-container", "-n", "ctr", "image"]);
      store.ok(["set-container-data", "ctr", "state"], { stdin: "running\n" });
      // A mounted container, as when the run root fills up in real life (overlay: a kernel mount).
      const mounted = store.ok(["mount", "ctr"]).trim();
      const mountsBefore = kernelMountsBelow(store.graph);
      expect(mountsBefore).toEqual(driver === "overlay" ? [mounted] : []);
      fs.fill(0);

      for (const args of [["layers"], ["images"], ["containers"], ["layer", "base"], ["image", "image"], ["container", "ctr"], ["exists", "ctr"], ["get-container-data", "ctr", "state"], ["changes", "base"], ["diffsize", "base"]]) {
        const r = store.cli(args);
        expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: "" });
      }
      expect(sha256Bytes(store.cli(["diff", "-u", "base"]).stdoutBytes)).toBe(sha256File(tar));
      // Writing to the graph root does not need the run root.
      const child = store.ok(["create-layer", "base"]).split("\n")[0]!;

      const counts = `writing database ${store.run}/mounts.db: no space left on device`;
      for (const args of [["mount", "base"], ["mount", "ctr"], ["unmount", "ctr"], ["check"]]) {
        const r = store.cli(args);
        expect({ args, code: r.code }).toEqual({ args, code: 1 });
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stderr).toContain(counts);
      }
      expect(kernelMountsBelow(store.graph)).toEqual(mountsBefore);

      fs.free();
      expect(store.ok(["mount", "base"]).trim()).not.toBe("");
      store.ok(["unmount", "base"]);
      expect(store.ok(["mount", "ctr"]).trim()).toBe(mounted);
      // Counted twice now (before and after the run root filled up): two unmounts release it.
      store.ok(["unmount", "ctr"]);
      store.ok(["unmount", "ctr"]);
      expect(kernelMountsBelow(store.graph)).toEqual([]);
      expectClean(store);
      store.ok(["delete-layer", child]);

      // Deleting a container counts its mounts too: on a full run root it fails with one line,
      // after removing its directories; the next command with room finishes the delete.
      fs.fill(0);
      const deleted = store.cli(["delete-container", "ctr"]);
      expect(deleted.code).toBe(1);
      expect(deleted.stderr).toBe(`ctr: ${counts}\n`);
      fs.free();
      expect(store.json(["containers", "-j"])).toEqual([]);
      expect(store.json(["layers", "-j"]).map((l: { id: string }) => l.id)).toEqual([base]);
      expectClean(store);
    });
  });
}
