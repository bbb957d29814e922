/**
 * pull refuses a broken image with one line naming the blob or field, and nothing of that pull
 * stays in the store: no image, no layer it made; a layer that was there before (the shared
 * base) stays. The broken images are copies of a real umoci image (and of the archives skopeo
 * makes of it) with one thing changed each.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TestStore, availableDrivers } from "../helpers/cli.ts";
import { sh } from "../helpers/fixtures.ts";
import { addMultiPlatformIndex, makeUmociImage } from "../helpers/images.ts";

let work: string;
const LAYOUT = () => join(work, "layout");
const REF = "org.opencontainers.image.ref.name";
/** The image's base layer: its blob in the layout and its layer ID. */
let base: { blob: string; id: string };

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oci-refusals-"));
  makeUmociImage(work, LAYOUT(), "app:v1");
  addMultiPlatformIndex(LAYOUT(), "app:v1", "multi");
  const original = new BrokenLayout("original");
  base = { blob: join(LAYOUT(), "blobs/sha256", original.manifest.layers[0].digest.slice(7)), id: original.config.rootfs.diff_ids[0].slice(7) };
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const digestOf = (bytes: string | Uint8Array) => `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;

/** A copy of the test layout, and what its image app:v1 is made of. */
class BrokenLayout {
  readonly dir: string;
  readonly manifest: any;
  readonly config: any;

  constructor(name: string) {
    this.dir = join(work, name);
    sh(["cp", "-a", LAYOUT(), this.dir]);
    const entry = this.index().manifests.find((m: any) => m.annotations?.[REF] === "app:v1");
    this.manifest = JSON.parse(readFileSync(this.blob(entry.digest), "utf8"));
    this.config = JSON.parse(readFileSync(this.blob(this.manifest.config.digest), "utf8"));
  }

  blob(digest: string): string {
    return join(this.dir, "blobs/sha256", digest.slice(7));
  }

  index(): any {
    return JSON.parse(readFileSync(join(this.dir, "index.json"), "utf8"));
  }

  /** Writes bytes as a blob; returns its descriptor fields. */
  put(text: string): { digest: string; size: number } {
    writeFileSync(this.blob(digestOf(text)), text);
    return { digest: digestOf(text), size: Buffer.byteLength(text) };
  }

  /** Points ref app:v1 at this manifest (and config, if given), written as new blobs. */
  rewrite(manifest: any, config?: any, mediaType = "application/vnd.oci.image.manifest.v1+json"): void {
    if (config) manifest = { ...manifest, config: { ...manifest.config, ...this.put(JSON.stringify(config)) } };
    this.pointAt({ mediaType, ...this.put(JSON.stringify(manifest)) });
  }

  /** Points ref app:v1 at this descriptor. */
  pointAt(descriptor: object): void {
    const index = this.index();
    index.manifests = index.manifests.map((m: any) => (m.annotations?.[REF] === "app:v1" ? { ...descriptor, annotations: { [REF]: "app:v1" } } : m));
    writeFileSync(join(this.dir, "index.json"), JSON.stringify(index));
  }
}

/** Flips bytes in the middle of a file, keeping its size. */
function corrupt(path: string): void {
  const bytes = readFileSync(path);
  for (let i = bytes.length >> 1; i < (bytes.length >> 1) + 8; i++) bytes[i]! ^= 0xff;
  writeFileSync(path, bytes);
}

interface Case {
  name: string;
  /** Makes the broken source; returns the pull arguments. */
  make(): string[];
  message: string;
}

const CASES: Case[] = [
  {
    name: "a layer blob whose bytes do not match its digest (same size)",
    make() {
      const l = new BrokenLayout("digest");
      corrupt(l.blob(l.manifest.layers[1].digest));
      return [`oci:${l.dir}:app:v1`];
    },
    message: "layer sha256:*: digest mismatch (read sha256:",
  },
  {
    name: "a layer blob of another size than its descriptor says",
    make() {
      const l = new BrokenLayout("size");
      writeFileSync(l.blob(l.manifest.layers[1].digest), Bun.gzipSync(new Uint8Array(4096)));
      return [`oci:${l.dir}:app:v1`];
    },
    message: "layer sha256:*: size mismatch (the blob has ",
  },
  {
    name: "a layer whose uncompressed digest is not the config's diffID",
    make() {
      const l = new BrokenLayout("diffid");
      l.rewrite(l.manifest, { ...l.config, rootfs: { type: "layers", diff_ids: [l.config.rootfs.diff_ids[0], l.config.rootfs.diff_ids[0]] } });
      return [`oci:${l.dir}:app:v1`];
    },
    message: "does not match the config's rootfs.diff_ids[1]",
  },
  {
    name: "a missing layer blob",
    make() {
      const l = new BrokenLayout("missing-layer");
      unlinkSync(l.blob(l.manifest.layers[1].digest));
      return [`oci:${l.dir}:app:v1`];
    },
    message: "blob sha256:* is missing",
  },
  {
    name: "a missing config blob",
    make() {
      const l = new BrokenLayout("missing-config");
      unlinkSync(l.blob(l.manifest.config.digest));
      return [`oci:${l.dir}:app:v1`];
    },
    message: "blob sha256:* is missing",
  },
  {
    name: "a config blob whose bytes do not match its digest",
    make() {
      const l = new BrokenLayout("config-digest");
      corrupt(l.blob(l.manifest.config.digest));
      return [`oci:${l.dir}:app:v1`];
    },
    message: "config sha256:*: digest mismatch (read sha256:",
  },
  {
    name: "a manifest blob whose bytes do not match index.json's digest",
    make() {
      const l = new BrokenLayout("manifest-digest");
      corrupt(l.blob(l.index().manifests.find((m: any) => m.annotations?.[REF] === "app:v1").digest));
      return [`oci:${l.dir}:app:v1`];
    },
    message: "manifest sha256:*: digest mismatch (the blob's is sha256:",
  },
  {
    name: "a manifest blob of another size than index.json says",
    make() {
      const l = new BrokenLayout("manifest-size");
      const entry = l.index().manifests.find((m: any) => m.annotations?.[REF] === "app:v1");
      l.pointAt({ ...entry, size: entry.size + 1 });
      return [`oci:${l.dir}:app:v1`];
    },
    message: "manifest sha256:*: size mismatch (read ",
  },
  {
    name: "a manifest that does not parse",
    make() {
      const l = new BrokenLayout("manifest-json");
      l.pointAt({ mediaType: "application/vnd.oci.image.manifest.v1+json", ...l.put("{oops") });
      return [`oci:${l.dir}:app:v1`];
    },
    message: "manifest sha256:* does not parse as JSON",
  },
  {
    name: "an index.json that does not parse",
    make() {
      const l = new BrokenLayout("index-json");
      writeFileSync(join(l.dir, "index.json"), '{"schemaVersion":2,"manifests":[');
      return [`oci:${l.dir}:app:v1`];
    },
    message: "index.json does not parse as JSON",
  },
  {
    name: "an image index that does not parse",
    make() {
      const l = new BrokenLayout("image-index-json");
      l.pointAt({ mediaType: "application/vnd.oci.image.index.v1+json", ...l.put('{"schemaVersion":2,"manifests":{}}') });
      return [`oci:${l.dir}:app:v1`];
    },
    message: "manifests: missing",
  },
  {
    name: "an unknown layer media type",
    make() {
      const l = new BrokenLayout("layer-type");
      l.rewrite({ ...l.manifest, layers: [l.manifest.layers[0], { ...l.manifest.layers[1], mediaType: "application/x-foo" }] });
      return [`oci:${l.dir}:app:v1`];
    },
    message: 'layers[1]: unknown layer media type "application/x-foo"',
  },
  {
    name: "an unknown manifest media type",
    make() {
      const l = new BrokenLayout("manifest-type");
      l.rewrite({ ...l.manifest, mediaType: "application/x-bogus" }, undefined, "application/x-bogus");
      return [`oci:${l.dir}:app:v1`];
    },
    message: 'unknown manifest media type "application/x-bogus"',
  },
  {
    name: "an OCI manifest whose config is not an image config (an artifact)",
    make() {
      const l = new BrokenLayout("artifact");
      l.rewrite({ ...l.manifest, config: { ...l.manifest.config, mediaType: "application/vnd.cncf.helm.config.v1+json" } });
      return [`oci:${l.dir}:app:v1`];
    },
    message: 'config.mediaType "application/vnd.cncf.helm.config.v1+json" is not an image config',
  },
  {
    name: "a config that does not parse",
    make() {
      const l = new BrokenLayout("config-json");
      l.rewrite({ ...l.manifest, config: { ...l.manifest.config, ...l.put("{oops") } });
      return [`oci:${l.dir}:app:v1`];
    },
    message: "config sha256:* does not parse as JSON",
  },
  {
    name: "a foreign (non-distributable) layer",
    make() {
      const l = new BrokenLayout("foreign");
      l.rewrite({ ...l.manifest, layers: [l.manifest.layers[0], { ...l.manifest.layers[1], mediaType: "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" }] });
      return [`oci:${l.dir}:app:v1`];
    },
    message: "foreign (non-distributable) layer sha256:",
  },
  {
    name: "a Docker foreign layer in a schema 2 manifest",
    make() {
      const l = new BrokenLayout("docker-foreign");
      const schema2 = {
        schemaVersion: 2,
        mediaType: "application/vnd.docker.distribution.manifest.v2+json",
        config: { ...l.manifest.config, mediaType: "application/vnd.docker.container.image.v1+json" },
        layers: [
          { ...l.manifest.layers[0], mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip" },
          { ...l.manifest.layers[1], mediaType: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", urls: ["https://example.invalid/layer"] },
        ],
      };
      l.rewrite(schema2, undefined, schema2.mediaType);
      return [`oci:${l.dir}:app:v1`];
    },
    message: "layers[1]: foreign (non-distributable) layer sha256:",
  },
  {
    name: "an index with no image for the platform asked for",
    make: () => ["--platform", "linux/s390x", `oci:${LAYOUT()}:multi`],
    message: "no image for linux/s390x in the index (it has: linux/amd64, linux/arm64/v8)",
  },
  {
    name: "an oci-archive: missing a layer blob",
    make() {
      const l = new BrokenLayout("archive-missing");
      unlinkSync(l.blob(l.manifest.layers[1].digest));
      const archive = join(work, "missing.oci.tar");
      sh(["tar", "-C", l.dir, "-cf", archive, "."]);
      return [`oci-archive:${archive}:app:v1`];
    },
    message: "blob sha256:* is missing",
  },
  {
    name: "a docker-archive: whose layer tar was changed",
    make() {
      const archive = join(work, "changed.docker.tar");
      sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `docker-archive:${archive}:foo:bar`]);
      const unpacked = join(work, "changed-docker");
      mkdirSync(unpacked);
      sh(["tar", "-C", unpacked, "-xf", archive]);
      const upper = JSON.parse(readFileSync(join(unpacked, "manifest.json"), "utf8"))[0].Layers[1];
      corrupt(join(unpacked, upper));
      sh(["tar", "-C", unpacked, "-cf", archive, "."]);
      return [`docker-archive:${archive}`];
    },
    message: "layer sha256:*: digest mismatch (read sha256:",
  },
  {
    name: "a docker-archive: whose manifest.json does not parse",
    make() {
      const unpacked = skopeoDockerArchive("docker-manifest-json");
      writeFileSync(join(unpacked, "manifest.json"), "[{oops");
      return [`docker-archive:${tarOf(unpacked)}`];
    },
    message: "manifest.json does not parse as JSON",
  },
  {
    name: "a docker-archive: missing a layer tar",
    make() {
      const unpacked = skopeoDockerArchive("docker-missing-layer");
      unlinkSync(join(unpacked, JSON.parse(readFileSync(join(unpacked, "manifest.json"), "utf8"))[0].Layers[1]));
      return [`docker-archive:${tarOf(unpacked)}`];
    },
    message: "blob *.tar is missing",
  },
  {
    name: "a dir: without manifest.json",
    make() {
      const dir = join(work, "dir-no-manifest");
      sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `dir:${dir}`]);
      unlinkSync(join(dir, "manifest.json"));
      return [`dir:${dir}`];
    },
    message: "not a dir: image (no manifest.json)",
  },
  {
    name: "a dir: missing its upper layer's blob",
    make() {
      const dir = join(work, "dir-missing-layer");
      sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `dir:${dir}`]);
      unlinkSync(join(dir, JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")).layers[1].digest.slice(7)));
      return [`dir:${dir}`];
    },
    message: "blob sha256:* is missing",
  },
];

/** The docker-archive skopeo makes of the test image, unpacked into a directory named `name`. */
function skopeoDockerArchive(name: string): string {
  const archive = join(work, `${name}.source.tar`);
  sh(["skopeo", "copy", "-q", `oci:${LAYOUT()}:app:v1`, `docker-archive:${archive}:foo:bar`]);
  const unpacked = join(work, name);
  mkdirSync(unpacked);
  sh(["tar", "-C", unpacked, "-xf", archive]);
  return unpacked;
}

/** A tar of a directory's contents (as docker save writes one). */
function tarOf(dir: string): string {
  sh(["tar", "-C", dir, "-cf", `${dir}.tar`, "."]);
  return `${dir}.tar`;
}

/** Each case's broken source, made once (the tests on several stores share it). */
const made = new Map<Case, string[]>();
const sourceOf = (c: Case) => made.get(c) ?? made.set(c, c.make()).get(c)!;

/** Runs a pull that must be refused; checks the one line of the refusal. */
function expectRefused(store: TestStore, c: Case): void {
  const result = store.cli(["pull", "-q", ...sourceOf(c)]);
  expect(result.code).toBe(1);
  const lines = result.stderr.trimEnd().split("\n");
  expect(lines.length).toBe(1);
  const pattern = c.message.split("*").map((part) => RegExp.escape(part)).join("[0-9a-f]{64}");
  expect(lines[0]).toMatch(new RegExp(pattern));
}

describe("pull refuses broken images with one line and keeps nothing of them", () => {
  for (const c of CASES) {
    test(c.name, () => {
      const store = new TestStore("vfs");
      try {
        // The base layer, shared with the broken image, was there before the pull.
        store.ok(["import-layer", "--id", base.id, "-f", base.blob]);
        expectRefused(store, c);
        expect(store.json(["images", "--json"]) ?? []).toEqual([]);
        expect(store.json(["layers", "--json"]).map((l: any) => l.id)).toEqual([base.id]);
        expect(store.ok(["check"])).toBe("");
      } finally {
        store.destroy();
      }
    });
  }
});

/** The cases that fail on the upper layer, after the pull has stored the base layer itself. */
const FAILING_ON_THE_UPPER_LAYER = [
  "a layer blob whose bytes do not match its digest (same size)",
  "a layer whose uncompressed digest is not the config's diffID",
  "a missing layer blob",
  "a docker-archive: missing a layer tar",
  "a dir: missing its upper layer's blob",
];

for (const driver of availableDrivers()) {
  describe(`a refused pull removes the layers it stored itself (${driver})`, () => {
    for (const c of CASES.filter((c) => FAILING_ON_THE_UPPER_LAYER.includes(c.name))) {
      test(c.name, () => {
        const store = new TestStore(driver);
        try {
          expectRefused(store, c);
          expect(store.json(["images", "--json"]) ?? []).toEqual([]);
          expect(store.json(["layers", "--json"]) ?? []).toEqual([]);
          expect(store.ok(["check"])).toBe("");
        } finally {
          store.destroy();
        }
      });
    }
  });
}
