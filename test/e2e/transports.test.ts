/**
 * pull and push against the real tools: skopeo + containers-storage 1.43 as the oracle for the
 * store a pull makes, skopeo and umoci as the judges of what push writes. Images are made here
 * with umoci (two layers, whiteouts in the upper one).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";
import { makeUmociImage, treeListing } from "../helpers/images.ts";
import { imageRecord, peer, withoutTimes } from "../helpers/peer.ts";

let work: string;
const LAYOUT = () => join(work, "layout");

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oci-transports-"));
  makeUmociImage(work, LAYOUT(), "app:v1");
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Pulls the test image: its ID, its layer IDs and the listing of its mounted tree. */
function pullTestImage(store: TestStore): { id: string; layers: string[]; mounted: string } {
  const id = store.ok(["pull", "-q", `oci:${LAYOUT()}:app:v1`]).trim();
  const layers = store.json(["layers", "--json"]).map((l: any) => l.id);
  const top = imageRecord(store, id).layer;
  const mounted = treeListing(store.ok(["mount", top]).trim());
  store.ok(["unmount", top]);
  return { id, layers, mounted };
}

for (const driver of availableDrivers()) {
  describe(`pull and push on ${driver}`, () => {
    test("pull oci: makes the store skopeo copy makes in containers-storage 1.43: layers, image, data items, mounted tree", () => {
      const ours = new TestStore(driver);
      const theirs = peer(mkdtempSync(join(tmpdir(), "oci-peer-")), driver);
      try {
        sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `containers-storage:[${theirs.spec}]localhost/app:v1`]);
        const id = ours.ok(["pull", "-q", `oci:${LAYOUT()}:app:v1`]).trim();
        const theirImages = JSON.parse(theirs.run(["images", "--json"]));
        expect(id).toBe(theirImages[0].id);
        expect(withoutTimes(ours.json(["images", "--json"]))).toEqual(withoutTimes(theirImages));
        expect(withoutTimes(ours.json(["layers", "--json"]))).toEqual(withoutTimes(JSON.parse(theirs.run(["layers", "--json"]))));
        expect(ours.ok(["list-image-data", "localhost/app:v1"])).toBe(theirs.run(["list-image-data", "localhost/app:v1"]));
        expect(withoutTimes(ours.json(["image", "--json", id]))).toEqual(withoutTimes(JSON.parse(theirs.run(["image", "--json", id]))));
        for (const item of ["manifest", `sha256:${id}`]) expect(ours.ok(["get-image-data", id, item])).toBe(theirs.run(["get-image-data", id, item]));
        const top = theirImages[0].layer;
        const ourTree = treeListing(ours.ok(["mount", top]).trim());
        const theirTree = treeListing(theirs.run(["mount", top]).trim());
        expect(ourTree).toContain("./opt/app/run.sh");
        expect(ourTree).not.toContain("./etc/gone");
        expect(ourTree).not.toContain("doomed");
        expect(ourTree).toBe(theirTree);
        ours.ok(["unmount", top]);
        theirs.run(["unmount", top]);
        // A second pull reuses the layers and the image.
        expect(ours.ok(["pull", "-q", "-n", "localhost/other:1", `oci:${LAYOUT()}:app:v1`]).trim()).toBe(id);
        expect(ours.json(["layers", "--json"]).length).toBe(2);
        expect(imageRecord(ours, id).names).toEqual(["localhost/app:v1", "localhost/other:1"]);
      } finally {
        ours.destroy();
        theirs.destroy();
      }
    });

    test("push oci: is accepted by skopeo and umoci, the rootfs equals the mounted image, and a second pull keeps the IDs", () => {
      const ours = new TestStore(driver);
      try {
        const { id, layers, mounted } = pullTestImage(ours);
        const refused = ours.cli(["push", "--format", "v2s2", id, `oci:${join(work, "refused")}:tag`]);
        expect(refused.code).not.toBe(0);
        expect(refused.stderr).toContain("cannot hold Docker schema 2 manifests (--format v2s2)");
        for (const [compression, format] of [["gzip", "oci"], ["zstd", "oci"], ["none", "oci"]] as const) {
          const out = join(work, `out-${driver}-${compression}-${format}`);
          ours.ok(["push", "-q", "--compression-format", compression, "--format", format, id, `oci:${out}:tag`]);
          const inspected = JSON.parse(sh(["skopeo", "inspect", `oci:${out}:tag`]));
          expect(inspected.Layers.length).toBe(2);
          const raw = JSON.parse(sh(["skopeo", "inspect", "--raw", `oci:${out}:tag`]));
          expect(raw.mediaType).toBe(format === "oci" ? "application/vnd.oci.image.manifest.v1+json" : "application/vnd.docker.distribution.manifest.v2+json");
          const suffix = { gzip: "+gzip", zstd: "+zstd", none: "" }[compression];
          expect(raw.layers.every((l: any) => l.mediaType.endsWith(`tar${suffix}`))).toBe(true);
          sh(["skopeo", "copy", "-q", `oci:${out}:tag`, `dir:${out}-dir`]);
          if (compression !== "zstd") {
            sh(["umoci", "unpack", "--image", `${out}:tag`, `${out}-bundle`]);
            expect(treeListing(join(`${out}-bundle`, "rootfs"))).toBe(mounted);
          }
          const again = new TestStore(driver);
          try {
            expect(again.ok(["pull", "-q", `oci:${out}:tag`]).trim()).toBe(id);
            expect(again.json(["layers", "--json"]).map((l: any) => l.id)).toEqual(layers);
          } finally {
            again.destroy();
          }
        }
      } finally {
        ours.destroy();
      }
    });
  });
}

describe("pull refuses bad images with one line and leaves nothing behind", () => {
  /** A copy of the layout with index, manifest or blobs changed by `change`. */
  function brokenLayout(name: string, change: (dir: string, manifest: any, config: any) => void): string {
    const dir = join(work, name);
    sh(["cp", "-a", LAYOUT(), dir]);
    const blob = (digest: string) => join(dir, "blobs/sha256", digest.slice(7));
    const index = JSON.parse(readFileSync(join(dir, "index.json"), "utf8"));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), "utf8"));
    const config = JSON.parse(readFileSync(blob(manifest.config.digest), "utf8"));
    change(dir, manifest, config);
    return dir;
  }
  const digestOf = (bytes: string) => `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;
  /** Writes manifest (and config) back as new blobs and points index.json at them. */
  function rewrite(dir: string, manifest: any, config?: any) {
    if (config) {
      const text = JSON.stringify(config);
      writeFileSync(join(dir, "blobs/sha256", digestOf(text).slice(7)), text);
      manifest.config = { ...manifest.config, digest: digestOf(text), size: text.length };
    }
    const text = JSON.stringify(manifest);
    writeFileSync(join(dir, "blobs/sha256", digestOf(text).slice(7)), text);
    writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digestOf(text), size: text.length, annotations: { "org.opencontainers.image.ref.name": "app:v1" } }] }));
  }
  const cases: Array<[string, (dir: string, manifest: any, config: any) => void, string]> = [
    ["corrupt-upper", (dir, m) => writeFileSync(join(dir, "blobs/sha256", m.layers[1].digest.slice(7)), Bun.gzipSync(new Uint8Array(4096))), "size mismatch"],
    ["diffid", (dir, m, c) => rewrite(dir, m, { ...c, rootfs: { type: "layers", diff_ids: [c.rootfs.diff_ids[0], c.rootfs.diff_ids[0]] } }), "does not match the config's rootfs.diff_ids[1]"],
    ["missing", (dir, m) => rmSync(join(dir, "blobs/sha256", m.layers[1].digest.slice(7))), "is missing"],
    ["unparseable", (dir, m) => {
      writeFileSync(join(dir, "blobs/sha256", digestOf("{oops").slice(7)), "{oops");
      writeFileSync(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: digestOf("{oops"), size: 5, annotations: { "org.opencontainers.image.ref.name": "app:v1" } }] }));
      void m;
    }, "does not parse as JSON"],
    ["mediatype", (dir, m) => rewrite(dir, { ...m, layers: [m.layers[0], { ...m.layers[1], mediaType: "application/x-foo" }] }), 'unknown layer media type "application/x-foo"'],
    ["foreign", (dir, m) => rewrite(dir, { ...m, layers: [m.layers[0], { ...m.layers[1], mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" }] }), "foreign (non-distributable) layer"],
  ];
  for (const [name, change, message] of cases) {
    test(`${name}: "${message}"`, () => {
      const layout = brokenLayout(`broken-${name}`, change);
      const store = new TestStore("vfs");
      try {
        // A layer that existed before (the shared base) stays; the pull's own layers go.
        store.ok(["pull", "-q", `oci:${LAYOUT()}:app:v1`]);
        const before = store.json(["layers", "--json"]);
        store.ok(["delete-image", "localhost/app:v1"]);
        store.ok(["import-layer", "--id", before[0].id, "-f", join(layout, "blobs/sha256", before[0]["compressed-diff-digest"].slice(7))]);
        const result = store.cli(["pull", "-q", `oci:${layout}:app:v1`]);
        expect(result.code).not.toBe(0);
        expect(result.stderr).toContain(message);
        expect(result.stderr.trim().split("\n").length).toBe(1);
        expect(store.json(["images", "--json"]) ?? []).toEqual([]);
        expect(store.json(["layers", "--json"]).map((l: any) => l.id)).toEqual([before[0].id]);
      } finally {
        store.destroy();
      }
    });
  }
});

describe("archives: oci-archive: and docker-archive:", () => {
  test("pull docker-archive: stores what skopeo copy stores (IDs, generated manifest digest, names from the archive)", () => {
    const archive = join(work, "skopeo-made.tar");
    sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `docker-archive:${archive}:foo:bar`]);
    const ours = new TestStore("vfs");
    const theirs = peer(mkdtempSync(join(tmpdir(), "oci-peer-")), "vfs");
    try {
      sh(["skopeo", "copy", "-q", `docker-archive:${archive}`, `containers-storage:[${theirs.spec}]docker.io/library/foo:bar`]);
      ours.ok(["pull", "-q", `docker-archive:${archive}`]);
      expect(withoutTimes(ours.json(["images", "--json"]))).toEqual(withoutTimes(JSON.parse(theirs.run(["images", "--json"]))));
      expect(withoutTimes(ours.json(["layers", "--json"]))).toEqual(withoutTimes(JSON.parse(theirs.run(["layers", "--json"]))));
      // @INDEX and NAME:TAG pick the same image.
      expect(ours.ok(["pull", "-q", `docker-archive:${archive}:@0`])).toBe(ours.ok(["pull", "-q", `docker-archive:${archive}:foo:bar`]));
      const wrong = ours.cli(["pull", `docker-archive:${archive}:foo:nope`]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr.trim()).toEndWith("no image tagged docker.io/library/foo:nope in the archive");
    } finally {
      ours.destroy();
      theirs.destroy();
    }
  });

  test("push oci-archive: and docker-archive: are read by skopeo and umoci, and pull back with the same IDs", () => {
    const ours = new TestStore("vfs");
    try {
      const { id, layers, mounted } = pullTestImage(ours);
      const ociArchive = join(work, "pushed-oci.tar");
      const dockerArchive = join(work, "pushed-docker.tar");
      ours.ok(["push", "-q", id, `oci-archive:${ociArchive}:tag`]);
      ours.ok(["push", "-q", id, `docker-archive:${dockerArchive}:me/app:v2`]);
      expect(JSON.parse(sh(["skopeo", "inspect", `oci-archive:${ociArchive}:tag`])).Layers.length).toBe(2);
      expect(JSON.parse(sh(["skopeo", "inspect", `docker-archive:${dockerArchive}`])).Layers.length).toBe(2);
      sh(["skopeo", "copy", "-q", `oci-archive:${ociArchive}:tag`, `dir:${join(work, "from-oci-archive")}`]);
      sh(["skopeo", "copy", "-q", `docker-archive:${dockerArchive}`, `oci:${join(work, "from-docker-archive")}:t`]);
      const unpacked = join(work, "oci-archive-layout");
      sh(["mkdir", unpacked]);
      sh(["tar", "-xf", ociArchive, "-C", unpacked]);
      sh(["umoci", "unpack", "--image", `${unpacked}:tag`, `${unpacked}-bundle`]);
      expect(treeListing(join(`${unpacked}-bundle`, "rootfs"))).toBe(mounted);
      const refused = ours.cli(["push", "--compression-format", "gzip", id, `docker-archive:${join(work, "never.tar")}:a:b`]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain("layers are stored uncompressed");
      for (const source of [`oci-archive:${ociArchive}:tag`, `docker-archive:${dockerArchive}`]) {
        const again = new TestStore("vfs");
        try {
          expect(again.ok(["pull", "-q", source]).trim()).toBe(id);
          expect(again.json(["layers", "--json"]).map((l: any) => l.id)).toEqual(layers);
        } finally {
          again.destroy();
        }
      }
    } finally {
      ours.destroy();
    }
  });
});
