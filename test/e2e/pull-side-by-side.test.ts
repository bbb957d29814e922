/**
 * pull against the oracle: for each kind of source, one store filled by `skopeo copy SOURCE
 * containers-storage:[DRIVER@G+R]NAME` and read by containers-storage 1.43, one filled by
 * `oci-storage pull SOURCE`; their `layers --json`, `images --json`, `image`,
 * `list-image-data`, every data item and the mounted tree of the image must be the same (the
 * creation times aside), on vfs and on overlay. The images are made here: a two-layer umoci
 * image (whiteouts, hard link, FIFO, setuid, owners, a long path) and what skopeo makes of it
 * (zstd and uncompressed layers, an OCI archive, a docker archive, a Docker schema 2 manifest),
 * plus an index of two platforms and the Docker manifest list skopeo makes of it. Where skopeo cannot read a layout (uncompressed layers,
 * schema 2), it reads the same manifest and blobs from the `dir:` it wrote them to.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";
import { addMultiPlatformIndex, layoutFromDir, makeUmociImage, treeListing } from "../helpers/images.ts";
import { peer, withoutTimes } from "../helpers/peer.ts";

let work: string;
const at = (name: string) => join(work, name);

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oci-side-by-side-"));
  makeUmociImage(work, at("layout"), "app:v1");
  const source = `oci:${at("layout")}:app:v1`;
  sh(["skopeo", "copy", "-q", "--dest-compress-format", "zstd", source, `oci:${at("zstd")}:app:v1`]);
  sh(["skopeo", "copy", "-q", "--dest-decompress", source, `dir:${at("plain-dir")}`]);
  layoutFromDir(at("plain-dir"), at("plain"), "app:v1");
  sh(["skopeo", "copy", "-q", source, `oci-archive:${at("image.oci.tar")}:app:v1`]);
  sh(["skopeo", "copy", "-q", source, `docker-archive:${at("image.docker.tar")}:foo:bar`]);
  sh(["skopeo", "copy", "-q", "--format", "v2s2", source, `dir:${at("schema2-dir")}`]);
  layoutFromDir(at("schema2-dir"), at("schema2"), "s2");
  addMultiPlatformIndex(at("layout"), "app:v1", "multi");
  // skopeo turns the OCI index into a Docker manifest list of schema 2 manifests.
  sh(["skopeo", "copy", "-q", "--all", "--format", "v2s2", `oci:${at("layout")}:multi`, `dir:${at("list-dir")}`]);
  layoutFromDir(at("list-dir"), at("list"), "list");
  sh(["umoci", "init", "--layout", at("empty")]);
  sh(["umoci", "new", "--image", `${at("empty")}:bare`]);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Case {
  what: string;
  /** What oci-storage pulls. */
  ours: () => string[];
  /** What skopeo copies into containers-storage, and the name it stores. */
  theirs: () => string[];
  name: string;
  /** Layer compression the stores record (containers-storage's numbering: 0 none, omitted from JSON; 2 gzip; 4 zstd). */
  compression: number;
}

const CASES: Case[] = [
  { what: "oci: gzip layers (umoci)", ours: () => [`oci:${at("layout")}:app:v1`], theirs: () => [`oci:${at("layout")}:app:v1`], name: "localhost/app:v1", compression: 2 },
  { what: "oci: zstd layers", ours: () => [`oci:${at("zstd")}:app:v1`], theirs: () => [`oci:${at("zstd")}:app:v1`], name: "localhost/app:v1", compression: 4 },
  // skopeo writes uncompressed layers to dir: only; the layout holds the same manifest and blobs.
  { what: "oci: uncompressed layers", ours: () => [`oci:${at("plain")}:app:v1`], theirs: () => [`dir:${at("plain-dir")}`], name: "localhost/app:v1", compression: 0 },
  { what: "oci-archive:", ours: () => [`oci-archive:${at("image.oci.tar")}:app:v1`], theirs: () => [`oci-archive:${at("image.oci.tar")}:app:v1`], name: "localhost/app:v1", compression: 2 },
  { what: "docker-archive: (the schema 2 manifest made for it)", ours: () => [`docker-archive:${at("image.docker.tar")}`], theirs: () => [`docker-archive:${at("image.docker.tar")}`], name: "docker.io/library/foo:bar", compression: 0 },
  // skopeo cannot read a layout holding a schema 2 manifest, so it reads the same manifest and blobs from dir:.
  { what: "Docker schema 2 manifest with gzip layers", ours: () => ["-n", "localhost/s2:1", `oci:${at("schema2")}:s2`], theirs: () => [`dir:${at("schema2-dir")}`], name: "localhost/s2:1", compression: 2 },
  { what: "an index: this host's image", ours: () => ["-n", "localhost/multi:1", `oci:${at("layout")}:multi`], theirs: () => [`oci:${at("layout")}:multi`], name: "localhost/multi:1", compression: 2 },
  // skopeo cannot read a layout holding a Docker manifest list, so it reads the same list and blobs from dir:.
  { what: "a Docker manifest list: this host's image", ours: () => ["-n", "localhost/list:1", `oci:${at("list")}:list`], theirs: () => [`dir:${at("list-dir")}`], name: "localhost/list:1", compression: 2 },
  // dir: as skopeo writes it; it gives no name (as podman names what it pulls from dir:), so -n does.
  { what: "dir: uncompressed layers", ours: () => ["-n", "localhost/app:v1", `dir:${at("plain-dir")}`], theirs: () => [`dir:${at("plain-dir")}`], name: "localhost/app:v1", compression: 0 },
  { what: "dir: Docker schema 2 manifest", ours: () => ["-n", "localhost/s2:1", `dir:${at("schema2-dir")}`], theirs: () => [`dir:${at("schema2-dir")}`], name: "localhost/s2:1", compression: 2 },
  { what: "dir: a Docker manifest list (skopeo copy --all): this host's image", ours: () => ["-n", "localhost/list:1", `dir:${at("list-dir")}`], theirs: () => [`dir:${at("list-dir")}`], name: "localhost/list:1", compression: 2 },
  {
    what: "an index: --platform linux/arm64",
    ours: () => ["--platform", "linux/arm64", "-n", "localhost/multi:arm", `oci:${at("layout")}:multi`],
    theirs: () => ["--override-arch", "arm64", "--override-variant", "v8", `oci:${at("layout")}:multi`],
    name: "localhost/multi:arm",
    compression: 2,
  },
];

/** The mounted tree of a layer in one store (ours or the peer's), unmounted again. */
function mountedTree(run: (args: string[]) => string, layer: string): string {
  const tree = treeListing(run(["mount", layer]).trim());
  run(["unmount", layer]);
  return tree;
}

for (const driver of availableDrivers()) {
  describe(`pull makes the store skopeo copy makes in containers-storage 1.43 (${driver})`, () => {
    for (const c of CASES) {
      test(c.what, () => {
        const ours = new TestStore(driver);
        const theirs = peer(mkdtempSync(join(tmpdir(), "oci-peer-")), driver);
        try {
          const skopeoSource = c.theirs();
          sh(["skopeo", ...skopeoSource.slice(0, -1), "copy", "-q", skopeoSource.at(-1)!, `containers-storage:[${theirs.spec}]${c.name}`]);
          const id = ours.ok(["pull", "-q", ...c.ours()]).trim();
          const theirImages = JSON.parse(theirs.run(["images", "--json"]));
          expect(theirImages.length).toBe(1);
          expect(id).toBe(theirImages[0].id);
          expect(theirImages[0].names).toEqual([c.name]);
          expect(withoutTimes(ours.json(["images", "--json"]))).toEqual(withoutTimes(theirImages));
          const theirLayers = JSON.parse(theirs.run(["layers", "--json"]));
          expect(theirLayers.length).toBe(2);
          expect(theirLayers.map((l: any) => l.compression ?? 0)).toEqual([c.compression, c.compression]);
          expect(withoutTimes(ours.json(["layers", "--json"]))).toEqual(withoutTimes(theirLayers));
          expect(ours.ok(["image", id])).toBe(theirs.run(["image", id]));
          const items = theirs.run(["list-image-data", id]);
          expect(ours.ok(["list-image-data", id])).toBe(items);
          for (const item of items.trim().split("\n")) expect({ item, bytes: ours.ok(["get-image-data", id, item]) }).toEqual({ item, bytes: theirs.run(["get-image-data", id, item]) });
          const top = theirImages[0].layer;
          const tree = mountedTree((args) => ours.ok(args), top);
          expect(tree).toContain("./opt/app/run.sh");
          expect(tree).toContain("./var/cache/app/four");
          expect(tree).not.toContain("./etc/gone");
          expect(tree).not.toContain("./var/cache/app/one");
          expect(tree).toMatch(/\.\/usr\/bin\/tool f 4755 1000:1000/);
          expect(tree).toMatch(/\.\/run\/ctl\.fifo p 644/);
          expect(tree).toBe(mountedTree(theirs.run, top));
        } finally {
          ours.destroy();
          theirs.destroy();
        }
      });
    }

    test("an image without layers (umoci new): stored with no top layer, and pushed back with its config and no layers", () => {
      const ours = new TestStore(driver);
      const theirs = peer(mkdtempSync(join(tmpdir(), "oci-peer-")), driver);
      try {
        const source = `oci:${at("empty")}:bare`;
        sh(["skopeo", "copy", "-q", source, `containers-storage:[${theirs.spec}]localhost/bare:latest`]);
        const id = ours.ok(["pull", "-q", source]).trim();
        const theirImages = JSON.parse(theirs.run(["images", "--json"]));
        expect(id).toBe(theirImages[0].id);
        expect(withoutTimes(ours.json(["images", "--json"]))).toEqual(withoutTimes(theirImages));
        expect(ours.ok(["image", id])).toBe(theirs.run(["image", id]));
        expect(ours.ok(["layers"])).toBe("");
        ours.ok(["push", "-q", id, `oci:${at(`empty-${driver}`)}:again`]);
        const manifest = (ref: string) => JSON.parse(sh(["skopeo", "inspect", "--raw", ref]));
        const pushed = manifest(`oci:${at(`empty-${driver}`)}:again`);
        expect({ config: pushed.config, layers: pushed.layers }).toEqual({ config: manifest(source).config, layers: [] });
      } finally {
        ours.destroy();
        theirs.destroy();
      }
    });
  });
}
