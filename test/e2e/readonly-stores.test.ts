/** End-to-end: read-only additional image stores (docs/cli-contract.md §2.8). */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type RunResult, TestStore, availableDrivers, runBinary } from "../helpers/cli.ts";
import { makeTar, sha256Bytes, sha256File, snapshotFiles as snapshot } from "../helpers/fixtures.ts";

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
      const before = snapshot(shared.graph);
      expect(cli(["delete-layer", "ROL"]).stderr).toBe("ROL: identifier is not a layer\n");
      expect(cli(["delete-image", "ROI"]).stderr).toBe("ROI: identifier is not an image\n");
      expect(cli(["delete", "roimage"]).stderr).toBe("roimage: layer not known\n");
      expect(cli(["set-metadata", "-m", "x", "ROI"]).stderr).toBe("identifier is not a layer, image, or container\n");
      expect(cli(["set-image-data", "ROI", "x"], "data").stderr).toBe('locating image with ID "ROI": image not known\n');
      expect(cli(["add-names", "-n", "new", "ROL"]).stderr).toBe("layer not known\n");
      expect(cli(["mount", "ROL"]).stderr).toBe("layer not known while mounting ROL\n");
      expect(cli(["applydiff", "ROL"], "").stderr).toBe("layer not known\n");
      expect(snapshot(shared.graph)).toEqual(before);
      expect(JSON.parse(shared.ok(["images", "-j"])).length).toBe(1);
      expect(existsSync(join(shared.graph, "oci-storage.db"))).toBe(true);
    });
  });
}

/**
 * add-names/set-names on an image only a read-only store has, as containers-storage 1.43 does
 * them (what 1.43 writes was read from its images.json): a record of the image goes into the
 * writable store under the new names, and from then on the ID resolves to that record first.
 */
for (const driver of availableDrivers()) {
  describe(`names on images of a read-only store, on ${driver}`, () => {
    const shared = new TestStore(driver);
    const tar = makeTar({ "etc/": "", "etc/os-release": "ID=test\n" });
    shared.ok(["import-layer", "-i", "ROL", "-f", tar]);
    shared.ok(["create-image", "-i", "ROI", "-n", "roimage", "-m", "ro meta", "-d", `sha256:${"a".repeat(64)}`, "ROL"]);
    shared.ok(["set-image-data", "ROI", "manifest"], { stdin: "{}" });
    shared.ok(["shutdown"]);
    const [roRecord] = JSON.parse(shared.ok(["images", "-j"]));
    const writable: TestStore[] = [];
    afterAll(() => {
      for (const s of writable) s.destroy();
      shared.destroy();
    });
    /** A fresh writable store over the shared read-only one. */
    const fresh = () => {
      const s = new TestStore(driver);
      writable.push(s);
      return (args: string[]): RunResult => runBinary([...s.globals, "--storage-opt", `${driver}.imagestore=${shared.graph}`, ...args]);
    };
    const expectClean = (cli: (args: string[]) => RunResult) => expect(cli(["check"])).toMatchObject({ code: 0, stdout: "" });

    test("add-names writes a record of the image under the new name; it is listed first, named, used and deleted without touching the read-only store", () => {
      const before = snapshot(shared.graph);
      const cli = fresh();
      expect(cli(["add-names", "-n", "NEW", "roimage"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
      const record = { id: "ROI", digest: roRecord.digest, names: ["NEW"], layer: "ROL", metadata: "ro meta", created: roRecord.created };
      expect(JSON.parse(cli(["images", "-j"]).stdout)).toEqual([record, roRecord]);
      const layerSize = JSON.parse(cli(["layer", "-j", "ROL"]).stdout)[0]["diff-size"];
      expect(cli(["image", "NEW"]).stdout).toBe(`ID: ROI\nName: NEW\nTop Layer: ROL\nDigest: ${roRecord.digest}\nSize: ${layerSize}\n`);
      // The ID resolves to the writable record first (the read-only record's size is the writable one's, as 1.43 sizes by ID);
      // data items come from the read-only image.
      expect(cli(["image", "roimage"]).stdout).toContain(`Data: manifest\nSize: ${layerSize}\nRead Only: true\n`);
      expect(cli(["get-names", "roimage"]).stdout).toBe("NEW\n");
      expect(cli(["list-image-data", "NEW"]).stdout).toBe("");
      expect(cli(["get-image-data", "NEW", "manifest"]).stdout).toBe("{}");
      expect(cli(["get-image-data-size", "NEW", "manifest"]).stdout).toBe("2\n");
      expect(cli(["add-names", "-j", "-n", "NEW2", "roimage"]).stdout).toBe('["NEW","NEW2"]\n');
      expect(JSON.parse(cli(["image", "-j", "NEW2"]).stdout)[0]["names-history"]).toEqual(["NEW2", "NEW"]);

      const container = cli(["create-container", "-n", "ctr", "NEW"]).stdout.split("\n")[0]!;
      expect(JSON.parse(cli(["container", "-j", "ctr"]).stdout)[0].image).toBe("ROI");
      const mountPoint = cli(["mount", "ctr"]).stdout.trim();
      expect(readFileSync(join(mountPoint, "etc", "os-release"), "utf8")).toBe("ID=test\n");
      writeFileSync(join(mountPoint, "written"), "in the container\n");
      expect(cli(["unmount", "ctr"]).code).toBe(0);
      expect(cli(["delete-image", "NEW"])).toMatchObject({ code: 1, stderr: `NEW: image used by ${container}: image is in use by a container\n` });
      expect(cli(["delete-container", "ctr"]).code).toBe(0);
      expectClean(cli);
      // 1.43 deletes the record too, then fails trying to delete the read-only layer (docs/cli.md).
      expect(cli(["delete-image", "NEW"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
      expect(JSON.parse(cli(["images", "-j"]).stdout)).toEqual([roRecord]);
      expect(cli(["get-names", "roimage"]).stdout).toBe("roimage\n");
      expectClean(cli);
      expect(snapshot(shared.graph)).toEqual(before);
    });

    test("set-names writes the record with the names given, less the first when there are several; with none, a record with no names", () => {
      const before = snapshot(shared.graph);
      let cli = fresh();
      expect(cli(["set-names", "-n", "A", "-n", "B", "roimage"]).code).toBe(0);
      expect(JSON.parse(cli(["images", "-j"]).stdout).map((i: any) => i.names)).toEqual([["B"], ["roimage"]]);
      expect(cli(["set-names", "-n", "C", "ROI"]).code).toBe(0);
      expect(JSON.parse(cli(["image", "-j", "ROI"]).stdout)[0]).toMatchObject({ names: ["C"], "names-history": ["C"] });
      cli = fresh();
      expect(cli(["set-names", "roimage"]).code).toBe(0);
      const [unnamed] = JSON.parse(cli(["images", "-j"]).stdout);
      expect(unnamed).toEqual({ id: "ROI", digest: roRecord.digest, layer: "ROL", metadata: "ro meta", created: roRecord.created });
      expectClean(cli);
      expect(snapshot(shared.graph)).toEqual(before);
    });

    test("a name another writable image holds is refused, and no record is written", () => {
      const cli = fresh();
      const other = cli(["create-image", "-n", "taken", ""]).stdout.split("\n")[0];
      expect(cli(["add-names", "-n", "taken", "roimage"])).toMatchObject({
        code: 1,
        stderr: `image name "taken" is already associated with image "${other}": that name is already in use\n`,
      });
      expect(JSON.parse(cli(["images", "-j"]).stdout).map((i: any) => i.id)).toEqual([other, "ROI"]);
    });
  });
}
