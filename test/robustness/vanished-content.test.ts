/**
 * A layer whose directory was removed behind the store's back (docs/robustness.md): it stays
 * listed and `check` reports it; reading its content fails with one line saying its directory
 * is missing; no listing and no other layer is affected; it can be deleted, and
 * `check --repair` drops its record when nothing uses it.
 */
import { afterEach, beforeEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { makeTar, sha256Bytes, sha256File } from "../helpers/fixtures.ts";

setDefaultTimeout(60_000);

const BASE = makeTar({ "etc/": "", "etc/hostname": "base\n", "usr/": "", "usr/tool": "tool\n" });
const MIDDLE = makeTar({ "opt/": "", "opt/middle": "middle\n" });
const OTHER = makeTar({ "srv/": "", "srv/other": "other\n" });

for (const driver of availableDrivers()) {
  describe(`vanished layer content on ${driver}`, () => {
    let s: TestStore;
    beforeEach(() => {
      s = new TestStore(driver);
      s.ok(["import-layer", "-i", "base", "-f", BASE]);
      s.ok(["import-layer", "-i", "middle", "-f", MIDDLE, "base"]);
      s.ok(["create-image", "-i", "image", "middle"]);
      s.ok(["import-layer", "-i", "other", "-f", OTHER]);
      s.ok(["import-layer", "-i", "lonely", "-f", OTHER]);
    });
    afterEach(() => s.destroy());

    /** The directory the driver keeps the layer in. */
    const layerDir = (id: string) => join(s.graph, driver === "vfs" ? join("vfs", "dir") : "overlay", id);
    const missing = (id: string) => `layer ${id}: content directory ${join(layerDir(id), driver === "vfs" ? "" : "diff").replace(/\/$/, "")} is missing`;

    test("listings and other layers are unaffected; reading the layer says its directory is missing", () => {
      rmSync(layerDir("middle"), { recursive: true });
      expect(s.json(["layers", "-j"]).map((l: { id: string }) => l.id)).toEqual(["base", "middle", "other", "lonely"]);
      expect(s.ok(["layers", "-t"])).toContain("middle");
      expect(s.ok(["images", "-q"])).toBe("image\n");
      expect(s.ok(["image", "image"])).toContain("Top Layer: middle\n");
      expect(s.ok(["layer", "middle"])).toContain("Parent: base\n");
      expect(sha256Bytes(s.cli(["diff", "-u", "base"]).stdoutBytes)).toBe(sha256File(BASE));
      expect(sha256Bytes(s.cli(["diff", "-u", "other"]).stdoutBytes)).toBe(sha256File(OTHER));
      const path = s.ok(["mount", "other"]).trim();
      expect(readFileSync(join(path, "srv", "other"), "utf8")).toBe("other\n");
      s.ok(["unmount", "other"]);
      for (const args of [["diff", "-u", "middle"], ["changes", "middle"], ["diffsize", "middle"]]) {
        const r = s.cli(args);
        expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 1, stderr: `${missing("middle")}\n` });
      }
      expect(s.cli(["mount", "middle"])).toMatchObject({ code: 1, stderr: `${missing("middle")} while mounting middle\n` });
      expect(s.cli(["check"]).stdout).toBe("layer middle: content directory is missing (still used by image image)\n");
    });

    test("the layer can be deleted, alone or with its image, and check --repair drops a record nothing uses", () => {
      rmSync(layerDir("lonely"), { recursive: true });
      rmSync(layerDir("other"), { recursive: true });
      rmSync(layerDir("middle"), { recursive: true });
      s.ok(["delete-layer", "other"]);
      expect(s.ok(["delete-image", "image"])).toBe("");
      expect(s.json(["layers", "-j"]).map((l: { id: string }) => l.id)).toEqual(["lonely"]);
      const repair = s.cli(["check", "--repair"]);
      expect({ code: repair.code, stdout: repair.stdout }).toEqual({ code: 0, stdout: "layer lonely: content directory is missing; repaired\n" });
      expect(s.json(["layers", "-j"])).toEqual([]);
      expect(s.cli(["check"])).toMatchObject({ code: 0, stdout: "" });
      s.ok(["import-layer", "-i", "again", "-f", BASE]);
      expect(sha256Bytes(s.cli(["diff", "-u", "again"]).stdoutBytes)).toBe(sha256File(BASE));
    });
  });
}
