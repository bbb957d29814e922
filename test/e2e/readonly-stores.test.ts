/** End-to-end: read-only additional image stores (docs/cli-contract.md §2.8). */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TestStore, availableDrivers, runBinary } from "../helpers/cli.ts";
import { makeTar, sha256Bytes, sha256File } from "../helpers/fixtures.ts";

for (const driver of availableDrivers()) {
  describe(`read-only image stores on ${driver}`, () => {
    const shared = new TestStore(driver);
    const tar = makeTar({ "etc/": "", "etc/os-release": "ID=test\n" });
    shared.ok(["import-layer", "-i", "ROL", "-n", "rolayer", "-f", tar]);
    shared.ok(["create-image", "-i", "ROI", "-n", "roimage", "-m", "ro meta", "ROL"]);
    shared.ok(["set-image-data", "ROI", "manifest"], { stdin: "{}" });
    shared.ok(["shutdown", "-f"]);
    const s = new TestStore(driver);
    const cli = (args: string[], stdin?: string) => runBinary([...s.globals, "--storage-opt", `${driver}.imagestore=${shared.graph}`, ...args], stdin === undefined ? {} : { stdin });
    afterAll(() => {
      s.destroy();
      shared.destroy();
    });

    test("layers and images of the read-only store are listed after the writable ones and can be examined", () => {
      expect(cli(["create-layer", "-i", "OWN"]).code).toBe(0);
      const layers = JSON.parse(cli(["layers", "-j"]).stdout);
      expect(layers.map((l: any) => l.id)).toEqual(["OWN", "ROL"]);
      expect(cli(["layer", "rolayer"]).stdout).toBe("ID: ROL\nName: rolayer\nRead Only: true\n");
      expect(cli(["image", "roimage"]).stdout).toContain("Read Only: true\n");
      expect(cli(["images", "-q"]).stdout).toBe("ROI\n");
      expect(cli(["exists", "-i", "roimage"]).code).toBe(0);
      expect(cli(["metadata", "-q", "roimage"]).stdout).toBe("ro meta\n");
      expect(cli(["get-image-data", "roimage", "manifest"]).stdout).toBe("{}");
      expect(cli(["get-names", "ROL"]).stdout).toBe("rolayer\n");
      expect(sha256Bytes(cli(["diff", "-u", "ROL"]).stdoutBytes)).toBe(sha256File(tar));
    });

    test("they serve as parents and images of new objects, which go to the writable store", () => {
      expect(cli(["create-layer", "-i", "CHILD", "rolayer"]).code).toBe(0);
      expect(cli(["create-container", "-i", "CTR", "roimage"]).code).toBe(0);
      const path = cli(["mount", "CTR"]).stdout.trim();
      expect(readFileSync(join(path, "etc", "os-release"), "utf8")).toBe("ID=test\n");
      expect(cli(["unmount", "CTR"]).code).toBe(0);
    });

    test("they are never written", () => {
      const before = readFileSync(join(shared.graph, "oci-storage.db"));
      expect(cli(["delete-layer", "ROL"]).stderr).toBe("ROL: identifier is not a layer\n");
      expect(cli(["delete-image", "ROI"]).stderr).toBe("ROI: identifier is not an image\n");
      expect(cli(["delete", "roimage"]).stderr).toBe("roimage: layer not known\n");
      expect(cli(["set-metadata", "-m", "x", "ROI"]).stderr).toBe("identifier is not a layer, image, or container\n");
      expect(cli(["set-image-data", "ROI", "x"], "data").stderr).toBe('locating image with ID "ROI": image not known\n');
      expect(cli(["add-names", "-n", "new", "ROI"]).code).toBe(1);
      expect(cli(["mount", "ROL"]).stderr).toBe("layer not known while mounting ROL\n");
      expect(readFileSync(join(shared.graph, "oci-storage.db"))).toEqual(before);
      expect(JSON.parse(shared.ok(["images", "-j"])).length).toBe(1);
      expect(existsSync(join(shared.graph, "oci-storage.db"))).toBe(true);
    });
  });
}
