/** End-to-end: commands containers-storage gained after the seed set — copy, layer data, parent owners, ID maps. */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { makeTar, sh, sha256Bytes, sha256File } from "../helpers/fixtures.ts";

for (const driver of availableDrivers()) {
  describe(`later commands on ${driver}`, () => {
    let s: TestStore;
    beforeEach(() => {
      s = new TestStore(driver);
    });
    afterEach(() => s.destroy());

    test("layer data items: set, list, get; missing items and empty names fail clearly", () => {
      s.ok(["create-layer", "-i", "L"]);
      expect(s.ok(["list-layer-data", "-j", "L"])).toBe("null\n");
      s.ok(["set-layer-data", "L", "notes"], { stdin: "hello" });
      expect(s.ok(["list-layer-data", "L"])).toBe("notes\n");
      expect(s.ok(["get-layer-data", "L", "notes"])).toBe("hello");
      expect(s.json(["layer", "-j", "L"])[0]["big-data-names"]).toEqual(["notes"]);
      const out = join(s.dir, "out");
      const r = s.cli(["get-layer-data", "-f", out, "L", "nope"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('locating item named "nope" for layer with ID "L": file does not exist\n');
      expect(existsSync(out)).toBe(true); // created before the lookup, as containers-storage does
      expect(s.cli(["set-layer-data", "L", ""], { stdin: "x" }).stderr).toBe("can't set empty name for layer big data item: not a valid name for a big data item\n");
    });

    test("container data size and digest", () => {
      s.ok(["create-image", "-i", "I"]);
      s.ok(["create-container", "-i", "C", "I"]);
      s.ok(["set-container-data", "C", "cfg"], { stdin: "12345" });
      expect(s.ok(["get-container-data-size", "C", "cfg"])).toBe("5\n");
      expect(s.ok(["get-container-data-digest", "C", "cfg"])).toBe(`sha256:${sha256Bytes(new TextEncoder().encode("12345"))}\n`);
      expect(s.ok(["list-container-data", "-j", "C"])).toBe('["cfg"]\n');
      expect(s.cli(["get-container-data-size", "C", "x"]).stderr).toBe("size is not known\n");
    });

    test("copy: host files into a layer, between layers, with --chown, and out to the host", () => {
      const host = join(s.dir, "src");
      mkdirSync(join(host, "dir", "sub"), { recursive: true });
      writeFileSync(join(host, "dir", "a.txt"), "A");
      writeFileSync(join(host, "dir", "sub", "b.txt"), "B");
      writeFileSync(join(host, "single"), "S");
      chownSync(join(host, "single"), 1234, 5678);
      s.ok(["create-layer", "-i", "L1"]);
      s.ok(["create-layer", "-i", "L2"]);
      expect(s.ok(["copy", join(host, "dir"), "L1:/data"])).toBe("");
      s.ok(["copy", join(host, "single"), "L1:/etc/single"]);
      s.ok(["copy", "--chown", "7:8", "L1:/data", "L2:/copied"]);
      const m1 = s.ok(["mount", "L1"]).trim();
      expect(readFileSync(join(m1, "data", "sub", "b.txt"), "utf8")).toBe("B");
      const single = lstatSync(join(m1, "etc", "single"));
      expect([single.uid, single.gid]).toEqual([1234, 5678]);
      s.ok(["unmount", "L1"]);
      const m2 = s.ok(["mount", "L2"]).trim();
      const b = lstatSync(join(m2, "copied", "sub", "b.txt"));
      expect(readFileSync(join(m2, "copied", "a.txt"), "utf8")).toBe("A");
      expect([b.uid, b.gid]).toEqual([7, 8]);
      s.ok(["unmount", "L2"]);
      const back = join(s.dir, "back");
      s.ok(["copy", "L2:/copied/a.txt", back]);
      expect(readFileSync(back, "utf8")).toBe("A");
      expect(s.ok(["mounted", "L1"])).toBe(""); // copy's own mounts are released
    });

    test("copy errors: unknown layer, file onto a directory, bad --chown", () => {
      s.ok(["create-layer", "-i", "L"]);
      const file = join(s.dir, "f");
      writeFileSync(file, "x");
      expect(s.cli(["copy", file, "nope:/x"]).stderr).toBe('error finding layer "nope": layer not known\n');
      s.ok(["copy", join(s.dir), "L:/d"]);
      const r = s.cli(["copy", file, "L:/d"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("cannot overwrite directory");
      const chown = s.cli(["copy", "--chown", "x", file, "L:/y"]);
      expect(chown.code).toBe(1);
      expect(chown.stderr).toBe('error "x" as a numeric UID: strconv.ParseUint: parsing "x": invalid syntax\n');
      expect(s.cli(["copy", "--help"]).code).toBe(125);
      expect(s.cli(["copy", "one"]).code).toBe(1);
      // A host path is named as given (as 1.43 does), the file looked at by its full path.
      const missing = s.cli(["copy", "missing.txt", "L:/x"], { cwd: s.dir });
      const mountPoint = join(s.graph, s.driver, s.driver === "vfs" ? "dir/L" : "L/merged");
      expect(missing.stderr).toBe(`error copying "missing.txt" to "${mountPoint}/x": stat ${join(s.dir, "missing.txt")}: no such file or directory\n`);
    });

    test("copy cannot write outside the destination layer through a symlink", () => {
      const tar = makeTar({ "escape": "-> /", "up": "-> ../../../.." });
      s.ok(["import-layer", "-i", "L", "-f", tar]);
      const file = join(s.dir, "payload");
      writeFileSync(file, "p");
      const sentinel = join(s.dir, "sentinel-should-not-exist");
      s.ok(["copy", file, `L:/escape${sentinel}`]);
      s.ok(["copy", file, `L:/up${sentinel}`]);
      expect(existsSync(sentinel)).toBe(false);
      const m = s.ok(["mount", "L"]).trim();
      expect(readFileSync(join(m, sentinel), "utf8")).toBe("p");
    });

    test("ID maps: content is stored shifted, shown mapped when mounted, and diffs back to the original", () => {
      const tar = makeTar({ "etc/": "", "etc/hosts": "h\n", "home/": "" });
      s.ok(["import-layer", "-i", "plain", "-f", tar]);
      const mapped = s.json(["import-layer", "-j", "-i", "mapped", "--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536", "-f", tar]);
      expect(mapped.uidmap).toEqual([{ container_id: 0, host_id: 100000, size: 65536 }]);
      expect(mapped.uidset).toEqual([0]);
      expect(s.ok(["layer", "mapped"])).toBe("ID: mapped\nUID mapping: (container=0, host=100000, size=65536)\nGID mapping: (container=0, host=200000, size=65536)\n");
      const m = s.ok(["mount", "mapped"]).trim();
      const st = lstatSync(join(m, "etc", "hosts"));
      expect([st.uid, st.gid]).toEqual([100000, 200000]);
      s.ok(["unmount", "mapped"]);
      expect(sha256Bytes(s.cli(["diff", "-u", "mapped"]).stdoutBytes)).toBe(sha256File(tar));
      // A child inherits the maps; on vfs its copy of the parent is shifted too.
      const child = s.json(["create-layer", "-j", "mapped"]);
      expect(child.uidmap).toEqual(mapped.uidmap);
      expect(s.cli(["create-layer", "--uidmap", "0:1000"]).stderr).toBe('initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: ["0:1000"]\n');
      expect(s.cli(["create-layer", "--hostuidmap", "--uidmap", "0:1:1"]).stderr).toBe("host uid map specified along with UID mapping\n");
    });

    test("containers with other ID maps than their image get a mapped copy of the image's tree", () => {
      s.ok(["import-layer", "-i", "B", "-f", makeTar({ "bin/": "", "bin/sh": "#!" })]);
      s.ok(["import-layer", "-i", "T", "-f", makeTar({ "etc/": "", "etc/hosts": "h\n" }), "B"]);
      s.ok(["create-image", "-i", "I", "T"]);
      const maps = ["--uidmap", "0:100000:65536", "--gidmap", "0:200000:65536"];
      const c1 = s.json(["create-container", "-j", "-i", "C1", ...maps, "I"]);
      expect(c1.uidmap).toEqual([{ container_id: 0, host_id: 100000, size: 65536 }]);
      const image = s.json(["image", "-j", "I"])[0];
      expect(image["mapped-layers"]).toHaveLength(1);
      const mapped = image["mapped-layers"][0];
      expect(s.ok(["image", "I"])).toContain(`Top Layer: T\nTop Layer: ${mapped}\n`);
      expect(s.json(["layer", "-j", c1.layer])[0].parent).toBe(mapped);
      const root = s.ok(["mount", "C1"]).trim();
      for (const path of ["bin/sh", "etc/hosts"]) {
        const st = lstatSync(join(root, path));
        expect([st.uid, st.gid]).toEqual([100000, 200000]);
      }
      s.ok(["unmount", "C1"]);
      // The copy diffs as the original top layer; a second container with the same maps reuses it.
      expect(sha256Bytes(s.cli(["diff", "-u", mapped]).stdoutBytes)).toBe(sha256Bytes(s.cli(["diff", "-u", "T"]).stdoutBytes));
      const c2 = s.json(["create-container", "-j", ...maps, "I"]);
      expect(s.json(["layer", "-j", c2.layer])[0].parent).toBe(mapped);
      expect(s.json(["image", "-j", "I"])[0]["mapped-layers"]).toEqual([mapped]);
      const plain = s.json(["create-container", "-j", "I"]);
      expect(s.json(["layer", "-j", plain.layer])[0].parent).toBe("T");
      for (const c of ["C1", c2.id, plain.id]) s.ok(["delete-container", c]);
      const r = s.cli(["delete-image", "I"]);
      expect(r.stderr).toBe(`I: ${mapped}\nI: T\nI: B\n`);
      expect(s.json(["layers", "-j"])).toEqual([]);
    });

    test("layer-parent-owners and container-parent-owners", () => {
      s.ok(["create-layer", "-i", "plain"]);
      expect(s.ok(["layer-parent-owners", "plain"])).toBe("ID: plain\n");
      expect(s.ok(["layer-parent-owners", "-j", "plain"])).toBe('{"ID":"plain","UIDs":null,"GIDs":null}\n');
      s.ok(["create-layer", "-i", "mapped", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"]);
      const r = s.cli(["layer-parent-owners", "mapped"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe("LayerParentOwner: layer is not mounted\n");
      s.ok(["mount", "mapped"]);
      // The directories above the mount point are owned by root (0), which the map does not cover.
      expect(s.ok(["layer-parent-owners", "mapped"])).toBe("ID: mapped\nUIDs: [0]\nGIDs: [0]\n");
      s.ok(["create-image", "-i", "I"]);
      s.ok(["create-container", "-i", "C", "I"]);
      expect(s.ok(["container-parent-owners", "C"])).toBe("ID: C\nUIDs: []\nGIDs: []\n");
      expect(s.cli(["layer-parent-owners", "nope"]).code).toBe(1);
    });

    test("import-layer gives a parent and removes the layer again when the tar is bad", () => {
      s.ok(["create-layer", "-i", "P"]);
      const rec = s.json(["import-layer", "-j", "-n", "child", "-f", makeTar({ f: "x" }), "P"]);
      expect(rec.parent).toBe("P");
      const bad = join(s.dir, "bad.tar");
      writeFileSync(bad, new Uint8Array(1024).fill(7));
      const r = s.cli(["import-layer", "-n", "broken", "-f", bad, "P"]);
      expect(r.code).toBe(1);
      expect(s.cli(["layer", "broken"]).code).toBe(1);
      expect(sh(["ls", join(s.graph)]).length).toBeGreaterThan(0);
    });
  });
}
