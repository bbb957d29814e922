/** End-to-end: layers, images, containers, names, metadata and data items through the compiled binary. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";

const HEX64 = /^[0-9a-f]{64}$/;

for (const driver of availableDrivers()) {
  describe(`objects on ${driver}`, () => {
    let s: TestStore;
    beforeEach(() => {
      s = new TestStore(driver);
    });
    afterEach(() => s.destroy());

    test("create-layer prints the ID and one tab-indented line per name", () => {
      const out = s.ok(["create-layer", "-n", "foo", "-n", "bar"]);
      const [id, ...rest] = out.split("\n");
      expect(id).toMatch(HEX64);
      expect(rest).toEqual(["\tfoo", "\tbar", ""]);
    });

    test("create-layer -j prints the record with only the keys a fresh layer has", () => {
      const base = s.json(["create-layer", "-j", "--id", "base1", "-n", "b"]);
      expect(Object.keys(base)).toEqual(["id", "names", "created"]);
      expect(base.id).toBe("base1");
      expect(base.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
      const child = s.json(["create-layer", "-j", "-l", "system_u:object_r:container_file_t:s0", "b"]);
      expect(child.parent).toBe("base1");
      expect(child.mountlabel).toBe("system_u:object_r:container_file_t:s0");
    });

    test("duplicate IDs and names are refused, and nothing is created", () => {
      s.ok(["create-layer", "-i", "one", "-n", "taken"]);
      let r = s.cli(["create-layer", "-i", "one"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("that ID is already in use\n");
      r = s.cli(["create-layer", "-n", "taken"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("that name is already in use\n");
      expect(s.json(["layers", "-j"])).toHaveLength(1);
    });

    test("IDs that could escape a directory are refused", () => {
      for (const bad of ["../evil", "a/b", "..", "."]) {
        const r = s.cli(["create-layer", "-i", bad]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("invalid ID");
      }
      expect(s.json(["layers", "-j"])).toEqual([]);
    });

    test("unknown parent gives 'layer not known'", () => {
      const r = s.cli(["create-layer", "nope"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("layer not known\n");
    });

    test("layers lists names, images and containers using each layer", () => {
      s.ok(["create-layer", "-i", "L1", "-n", "base"]);
      s.ok(["create-image", "-i", "I1", "-n", "img", "L1"]);
      const c = s.ok(["create-container", "-i", "C1", "-n", "ctr", "img"]);
      expect(c).toBe("C1\n\tctr");
      const cl = s.json(["container", "-j", "C1"])[0].layer;
      const out = s.ok(["layers"]);
      expect(out).toBe(`L1\n\tname: base\n\timage: I1\n\t\tname: img\n${cl}\n\tcontainer: C1\n\t\tname: ctr\n`);
      expect(s.json(["layers", "-j"]).map((l: any) => l.id)).toEqual(["L1", cl]);
    });

    test("layers -t draws the forest with notes", () => {
      s.ok(["create-layer", "-i", "A", "-n", "base"]);
      s.ok(["create-layer", "-i", "B", "-n", "mid", "A"]);
      s.ok(["create-layer", "-i", "C", "A"]);
      s.ok(["create-image", "-i", "IMG", "-n", "imgB", "B"]);
      expect(s.ok(["layers", "-t"])).toBe(
        ["(base)", "└─A", "  name: base", "  ├─B", "  │ name: mid", "  │ image: IMG", "  │ image name: imgB", "  └─C", ""].join("\n"),
      );
    });

    test("layer REF shows details; unresolved refs are skipped with exit 1", () => {
      s.ok(["create-layer", "-i", "P"]);
      s.ok(["create-layer", "-i", "K", "-n", "kid", "P"]);
      expect(s.ok(["layer", "kid"])).toBe("ID: K\nParent: P\nName: kid\n");
      const r = s.cli(["layer", "kid", "nope"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("ID: K\nParent: P\nName: kid\n");
      expect(s.cli(["layer", "-j", "nope"]).stdout).toBe("[]\n");
    });

    test("references resolve by ID, name and unique prefix; an exact ID beats a name", () => {
      s.ok(["create-layer", "-i", "abc123"]);
      s.ok(["create-layer", "-i", "abd456", "-n", "abc123x"]);
      expect(s.json(["layer", "-j", "abc1"])[0].id).toBe("abc123");
      expect(s.cli(["layer", "ab"]).code).toBe(1); // ambiguous prefix
      s.ok(["create-layer", "-i", "zzz", "-n", "abc123"]);
      expect(s.json(["layer", "-j", "abc123"])[0].id).toBe("abc123");
    });

    test("create-image, image and images in text and JSON", () => {
      s.ok(["create-layer", "-i", "L"]);
      const img = s.json(["create-image", "-j", "-i", "I", "-n", "a", "-n", "b", "-m", "meta", "L"]);
      expect(img).toEqual({ id: "I", names: ["a", "b"], layer: "L", metadata: "meta", created: img.created });
      expect(s.ok(["images"])).toBe("I\n\tname: a\n\tname: b\n");
      expect(s.ok(["images", "-q"])).toBe("I\n");
      expect(s.ok(["image", "a"])).toBe("ID: I\nName: a\nName: b\nTop Layer: L\nSize: 0\n");
      const r = s.cli(["create-image", "-n", "a"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('image name "a" is already associated with image "I": that name is already in use\n');
    });

    test("images -j on an empty store prints null, layers and containers []", () => {
      expect(s.ok(["images", "-j"])).toBe("null\n");
      expect(s.ok(["layers", "-j"])).toBe("[]\n");
      expect(s.ok(["containers", "-j"])).toBe("[]\n");
    });

    test("create-image --digest validates the digest", () => {
      const r = s.cli(["create-image", "--digest", "bogus"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('validating digests for new image: validating image digest "bogus": invalid checksum digest format\n');
      const d = `sha256:${"a".repeat(64)}`;
      expect(s.json(["create-image", "-j", "--digest", d]).digest).toBe(d);
    });

    test("image data items: set, list, get, size, digest, and manifest digests", () => {
      s.ok(["create-image", "-i", "I"]);
      expect(s.ok(["list-image-data", "-j", "I"])).toBe("null\n");
      s.ok(["set-image-data", "I", "manifest"], { stdin: "M1" });
      s.ok(["set-image-data", "I", "config"], { stdin: "{}" });
      expect(s.ok(["list-image-data", "I"])).toBe("manifest\nconfig\n");
      expect(s.ok(["get-image-data", "I", "manifest"])).toBe("M1");
      expect(s.ok(["get-image-data-size", "I", "config"])).toBe("2\n");
      const m1 = `sha256:${new Bun.CryptoHasher("sha256").update("M1").digest("hex")}`;
      expect(s.ok(["get-image-data-digest", "I", "manifest"])).toBe(`${m1}\n`);
      s.ok(["set-image-data", "I", "manifest"], { stdin: "M2" });
      const m2 = `sha256:${new Bun.CryptoHasher("sha256").update("M2").digest("hex")}`;
      const rec = s.json(["image", "-j", "I"])[0];
      expect(rec.digest).toBe(m1);
      expect(rec["big-data-names"]).toEqual(["manifest", "config"]);
      expect(rec["big-data-sizes"]).toEqual({ config: 2, manifest: 2 });
      expect(s.ok(["image", "I"])).toContain(`Digest: ${m1}\nDigest: ${m2}\n`);
      expect(s.json(["images-by-digest", "-j", m2])[0].id).toBe("I");
      expect(s.json(["images-by-digest", "-j", m1])[0].id).toBe("I");
      let r = s.cli(["get-image-data", "I", "nope"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('locating item named "nope" for image with ID "I" (consider removing the image to resolve the issue): file does not exist\n');
      r = s.cli(["set-image-data", "nope", "x"], { stdin: "" });
      expect(r.stderr).toBe('locating image with ID "nope": image not known\n');
      expect(s.cli(["get-image-data-size", "I", "nope"]).stderr).toBe("size is not known\n");
      expect(s.cli(["get-image-data-digest", "I", "nope"]).stderr).toBe("could not compute digest of item\n");
      expect(s.cli(["set-image-data", "I", ""], { stdin: "x" }).stderr).toBe("can't set empty name for image big data item: not a valid name for a big data item\n");
    });

    test("images-by-digest validates its argument", () => {
      expect(s.cli(["images-by-digest", "bogus"]).stderr).toBe("bogus: invalid checksum digest format\n");
      expect(s.cli(["images-by-digest", "sha256:abc"]).stderr).toBe("sha256:abc: invalid checksum digest length\n");
    });

    test("data items with -f read from and write to files", () => {
      s.ok(["create-image", "-i", "I"]);
      const input = join(s.dir, "in.bin");
      const output = join(s.dir, "out.bin");
      const bytes = new Uint8Array([0, 1, 2, 255, 10]);
      writeFileSync(input, bytes);
      s.ok(["set-image-data", "-f", input, "I", "blob"]);
      s.ok(["get-image-data", "-f", output, "I", "blob"]);
      expect(new Uint8Array(require("node:fs").readFileSync(output))).toEqual(bytes);
    });

    test("containers: create, container, containers, dirs, data", () => {
      s.ok(["create-layer", "-i", "L"]);
      s.ok(["create-image", "-i", "I", "-n", "img", "L"]);
      const c = s.json(["create-container", "-j", "-i", "C", "-n", "c1", "-m", "m", "--volatile", "img"]);
      expect(c.image).toBe("I");
      expect(c.flags).toEqual({ MountLabel: "", ProcessLabel: "", Volatile: true });
      expect(Object.keys(c)).toEqual(["id", "names", "image", "layer", "metadata", "created", "flags"]);
      expect(s.json(["layer", "-j", c.layer])[0].parent).toBe("L");
      const dir = s.ok(["get-container-dir", "c1"]).trim();
      expect(dir).toBe(join(s.graph, `${driver}-containers`, "C", "userdata"));
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(s.ok(["get-container-run-dir", c.layer]).trim()).toBe(join(s.run, `${driver}-containers`, "C", "userdata"));
      s.ok(["set-container-data", "C", "state"], { stdin: "abc" });
      expect(s.ok(["containers"])).toBe("C\n\tname: c1\n\tdata: state\n");
      expect(s.ok(["container", "C"])).toBe(`ID: C\nName: c1\nImage: I\nImage name: img\nSize: 3\nLayer: ${c.layer}\nData: state\n`);
      expect(s.ok(["get-container-data-size", "C", "state"])).toBe("3\n");
      expect(s.cli(["get-container-dir", "nope"]).stderr).toBe("container not known\n");
      const r = s.cli(["create-container", "-n", "c1", "img"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('the container name "c1" is already in use by C');
      expect(s.json(["layers", "-j"])).toHaveLength(2); // the refused container's layer was removed again
      expect(s.cli(["create-container", "nope"]).stderr).toBe('locating image with ID "nope": image not known\n');
    });

    test("names: add-names and set-names move names between objects of a kind", () => {
      s.ok(["create-layer", "-i", "L1", "-n", "l1"]);
      s.ok(["create-layer", "-i", "L2"]);
      expect(s.ok(["add-names", "-n", "l1", "L2"])).toBe("");
      expect(s.ok(["get-names", "L1"])).toBe("");
      expect(s.ok(["get-names", "-j", "L1"])).toBe("[]\n");
      expect(s.ok(["get-names", "L2"])).toBe("l1\n");
      expect(s.ok(["add-names", "-j", "-n", "x", "-n", "x", "L2"])).toBe('["l1","x"]\n');
      expect(s.ok(["set-names", "-j", "L2"])).toBe("null\n");
      s.ok(["create-image", "-i", "I", "-n", "first"]);
      s.ok(["set-names", "-n", "a", "-n", "b", "I"]);
      s.ok(["set-names", "-n", "c", "I"]);
      expect(s.json(["image", "-j", "I"])[0]["names-history"]).toEqual(["c", "b", "a"]);
      // As in 1.43, add-names sets the current names and the new ones, so the history gets them all
      // (create-image records none); without -n it sets the current ones again.
      s.ok(["create-image", "-i", "J", "-n", "j1", "-n", "j2"]);
      expect(s.json(["image", "-j", "J"])[0]["names-history"]).toBeUndefined();
      s.ok(["add-names", "J"]);
      expect(s.json(["image", "-j", "J"])[0]["names-history"]).toEqual(["j2", "j1"]);
      s.ok(["add-names", "-n", "j3", "J"]);
      expect(s.json(["image", "-j", "J"])[0]["names-history"]).toEqual(["j3", "j2", "j1"]);
      expect(s.cli(["get-names", "nope"]).stderr).toBe("layer not known\n");
    });

    test("metadata and set-metadata", () => {
      s.ok(["create-image", "-i", "I", "-n", "img"]);
      s.ok(["create-layer", "-i", "L"]);
      s.ok(["set-metadata", "-m", "line1\nline2\n", "img"]);
      const file = join(s.dir, "meta");
      writeFileSync(file, "from file");
      s.ok(["set-metadata", "-m", "ignored", "-f", file, "L"]);
      const r = s.cli(["metadata", "img", "L", "nope"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("img: line1\nline2\nL: from file\nnope: \n");
      expect(s.cli(["metadata", "-q", "L"]).stdout).toBe("from file\n");
      expect(s.cli(["metadata", "-j", "L", "img", "nope"]).stdout).toBe('{"L":"from file","img":"line1\\nline2"}\n');
      expect(s.cli(["set-metadata", "L"]).stderr).toBe("no new metadata provided\n");
      expect(s.cli(["set-metadata", "-m", "x", "nope"]).stderr).toBe("identifier is not a layer, image, or container\n");
    });

    test("exists prints existence and exits by the restricted check", () => {
      s.ok(["create-layer", "-i", "l1"]);
      let r = s.cli(["exists", "-i", "l1"]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("l1: true\n");
      r = s.cli(["exists", "-j", "nope", "l1"]);
      expect(r.stdout).toBe('{"l1":true,"nope":false}\n');
      expect(r.code).toBe(1);
      expect(s.cli(["exists", "-q", "-l", "l1"]).stdout).toBe("");
      expect(s.cli(["exists", "-l", "l1"]).code).toBe(0);
    });

    test("delete-layer refuses layers in use, checked on the resolved ID (also by name)", () => {
      s.ok(["create-layer", "-i", "P", "-n", "parent"]);
      s.ok(["create-layer", "-i", "K", "P"]);
      s.ok(["create-image", "-i", "I", "K"]);
      let r = s.cli(["delete-layer", "parent"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("parent: used by layer K: layer has children\n");
      r = s.cli(["delete-layer", "-j", "K"]);
      expect(r.stdout).toBe('{"K":"layer K used by image I: layer is in use by an image"}\n');
      expect(s.cli(["delete-layer", "nope"]).stderr).toBe("nope: identifier is not a layer\n");
      s.ok(["create-container", "-i", "C", "I"]);
      const cl = s.json(["container", "-j", "C"])[0].layer;
      expect(s.cli(["delete-layer", cl]).stderr).toBe(`${cl}: layer ${cl} used by container C: layer is in use by a container\n`);
    });

    test("delete-image removes the layers only it used, reported on stderr; -t only tests", () => {
      s.ok(["create-layer", "-i", "B"]);
      s.ok(["create-layer", "-i", "T", "B"]);
      s.ok(["create-image", "-i", "I", "T"]);
      s.ok(["create-image", "-i", "J", "B"]);
      let r = s.cli(["delete-image", "-t", "I"]);
      expect(r.stderr).toBe("I: T\n");
      expect(s.json(["layers", "-j"])).toHaveLength(2);
      r = s.cli(["delete-image", "I"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe("I: T\n");
      expect(s.json(["layers", "-j"]).map((l: any) => l.id)).toEqual(["B"]);
      s.ok(["create-container", "-i", "C", "J"]);
      expect(s.cli(["delete-image", "-j", "J"]).stdout).toBe('{"J":{"error":"image used by C: image is in use by a container"}}\n');
      s.ok(["create-image", "-i", "E"]);
      expect(s.ok(["delete-image", "-j", "E"])).toBe('{"E":{}}\n');
      expect(s.cli(["delete-image", "nope"]).stderr).toBe("nope: identifier is not an image\n");
    });

    test("delete-container removes layer, record and directories", () => {
      s.ok(["create-image", "-i", "I"]);
      const c = s.json(["create-container", "-j", "-i", "C", "I"]);
      const dir = s.ok(["get-container-dir", "C"]).trim();
      const runDir = s.ok(["get-container-run-dir", "C"]).trim();
      s.ok(["delete-container", "C"]);
      expect(existsSync(join(dir, ".."))).toBe(false);
      expect(existsSync(join(runDir, ".."))).toBe(false);
      expect(s.cli(["layer", c.layer]).code).toBe(1);
      expect(s.cli(["delete-container", "C"]).stderr).toBe("C: identifier is not a container\n");
    });

    test("delete: containers first, then images (record only), then layers without checks", () => {
      s.ok(["create-layer", "-i", "X"]);
      s.ok(["create-layer", "-i", "Y", "X"]);
      s.ok(["create-image", "-i", "X", "Y"]);
      s.ok(["delete", "X"]); // the image
      expect(s.json(["images", "-j"])).toBeNull();
      s.ok(["delete", "X"]); // now the layer, although it has a child
      expect(s.json(["layers", "-j"]).map((l: any) => l.id)).toEqual(["Y"]);
      expect(s.cli(["delete", "-j", "nope"]).stdout).toBe('{"nope":"layer not known"}\n');
    });

    test("wipe removes everything", () => {
      s.ok(["create-layer", "-i", "L"]);
      s.ok(["create-image", "-i", "I", "L"]);
      s.ok(["create-container", "I"]);
      expect(s.ok(["wipe", "-j"])).toBe('""\n');
      expect(s.ok(["layers", "-j"])).toBe("[]\n");
      expect(s.ok(["images", "-j"])).toBe("null\n");
      expect(s.ok(["containers", "-j"])).toBe("[]\n");
    });
  });
}
