/** manifest.ts against real umoci and skopeo output (made here, not hand-written). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh } from "../helpers/fixtures.ts";
import { checkDiffIdCount, choosePlatform, imageDataItems, imageIdOf, layerCompression, layerIdChain, MEDIA, parseConfig, parseManifest, parsePlatform, sha256Hex, type ManifestIndex } from "../../src/transports/manifest.ts";
import type { RawManifest } from "../../src/transports/types.ts";

let dir: string;
const raw = (bytes: Uint8Array, mediaType = ""): RawManifest => ({ bytes, mediaType, digest: `sha256:${sha256Hex(bytes)}` });
const blob = (layout: string, digest: string) => new Uint8Array(readFileSync(join(layout, "blobs", "sha256", digest.slice(7))));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "oci-manifest-"));
  sh(["umoci", "init", "--layout", "L"], dir);
  sh(["umoci", "new", "--image", "L:t"], dir);
  for (const [i, file] of ["a", "b"].entries()) {
    sh(["umoci", "unpack", "--rootless", "--image", "L:t", `B${i}`], dir);
    writeFileSync(join(dir, `B${i}`, "rootfs", file), file);
    sh(["umoci", "repack", "--image", "L:t", `B${i}`], dir);
  }
  sh(["skopeo", "copy", "--format", "v2s2", "oci:L:t", "dir:D"], dir);
  sh(["skopeo", "copy", "--dest-compress-format", "zstd", "oci:L:t", "oci:Z:t"], dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ociManifest(layout: string) {
  const index = parseManifest(raw(new Uint8Array(readFileSync(join(dir, layout, "index.json")))), "index.json") as ManifestIndex;
  expect(index.kind).toBe("index");
  const entry = index.manifests[0]!;
  expect(entry.annotations?.["org.opencontainers.image.ref.name"]).toBe("t");
  return raw(blob(join(dir, layout), entry.digest), entry.mediaType);
}

describe("parseManifest and parseConfig", () => {
  test("an umoci OCI manifest: config, two gzip layers, diffIDs that match the uncompressed tars", () => {
    const manifestRaw = ociManifest("L");
    const manifest = parseManifest(manifestRaw);
    if (manifest.kind !== "image") throw new Error("not an image");
    expect(manifest.mediaType).toBe(MEDIA.ociManifest);
    expect(manifest.layers.map((l) => layerCompression(l, "x"))).toEqual(["gzip", "gzip"]);
    const config = parseConfig(blob(join(dir, "L"), manifest.config.digest));
    checkDiffIdCount(manifest, config);
    const gunzipped = Bun.gunzipSync(blob(join(dir, "L"), manifest.layers[0]!.digest));
    expect(config.diffIds[0]).toBe(`sha256:${sha256Hex(gunzipped)}`);
    expect(config.platform.os).toBe("linux");
  });

  test("a skopeo Docker schema 2 manifest parses to the same config and layers", () => {
    const docker = parseManifest(raw(new Uint8Array(readFileSync(join(dir, "D", "manifest.json")))));
    const oci = parseManifest(ociManifest("L"));
    if (docker.kind !== "image" || oci.kind !== "image") throw new Error("not images");
    expect(docker.mediaType).toBe(MEDIA.dockerManifest);
    expect(docker.layers.map((l) => l.digest)).toEqual(oci.layers.map((l) => l.digest));
    expect(docker.layers.map((l) => layerCompression(l, "x"))).toEqual(["gzip", "gzip"]);
  });

  test("zstd layers written by skopeo are recognised", () => {
    const manifest = parseManifest(ociManifest("Z"));
    if (manifest.kind !== "image") throw new Error("not an image");
    expect(manifest.layers.map((l) => layerCompression(l, "x"))).toEqual(["zstd", "zstd"]);
  });

  test("bad manifests are refused with the field named", () => {
    const good = JSON.parse(new TextDecoder().decode(ociManifest("L").bytes));
    const bad = (change: (m: any) => void) => {
      const copy = structuredClone(good);
      change(copy);
      return () => parseManifest(raw(new TextEncoder().encode(JSON.stringify(copy)), MEDIA.ociManifest), "manifest");
    };
    expect(() => parseManifest(raw(new TextEncoder().encode("{not json")), "manifest")).toThrow("manifest does not parse as JSON");
    expect(bad((m) => (m.layers[1].digest = "sha256:12"))).toThrow("manifest: layers[1].digest");
    expect(bad((m) => (m.layers[0].size = -1))).toThrow("manifest: layers[0].size");
    expect(bad((m) => (m.layers[0].mediaType = "application/x-thing"))).toThrow('manifest: layers[0]: unknown layer media type "application/x-thing"');
    expect(bad((m) => (m.layers[0].mediaType = MEDIA.dockerForeignLayerGzip))).toThrow("foreign (non-distributable) layer");
    expect(bad((m) => (m.mediaType = "application/x-other"))).toThrow('unknown manifest media type "application/x-other"');
    expect(bad((m) => (m.schemaVersion = 1))).toThrow("schemaVersion 1 is not supported");
    expect(bad((m) => delete m.config)).toThrow("manifest: config: not a descriptor object");
    expect(bad((m) => (m.config.mediaType = "application/vnd.cncf.helm.config.v1+json"))).toThrow('manifest: config.mediaType "application/vnd.cncf.helm.config.v1+json" is not an image config: an artifact, not an image');
  });

  test("a config whose diff_ids do not fit is refused", () => {
    const manifest = parseManifest(ociManifest("L"));
    if (manifest.kind !== "image") throw new Error("not an image");
    const config = JSON.parse(new TextDecoder().decode(blob(join(dir, "L"), manifest.config.digest)));
    config.rootfs.diff_ids.pop();
    expect(() => checkDiffIdCount(manifest, parseConfig(new TextEncoder().encode(JSON.stringify(config))))).toThrow("rootfs.diff_ids has 1 entries for 2 layers");
    config.rootfs.diff_ids = ["md5:abc"];
    expect(() => parseConfig(new TextEncoder().encode(JSON.stringify(config)))).toThrow("config: rootfs.diff_ids[0]");
  });
});

describe("IDs and data items", () => {
  test("layer IDs chain as containers/image chains them", () => {
    const a = `sha256:${"a".repeat(64)}`;
    const b = `sha256:${"b".repeat(64)}`;
    const [first, second] = layerIdChain([a, b]);
    expect(first).toBe("a".repeat(64));
    expect(second).toBe(sha256Hex(`${"a".repeat(64)}+${"b".repeat(64)}`));
    expect(imageIdOf(b)).toBe("b".repeat(64));
  });

  test("data items are keyed by config digest, manifest digest, manifest and signature", () => {
    const manifest = ociManifest("L");
    const items = imageDataItems(manifest, `sha256:${"c".repeat(64)}`, new Uint8Array([1]));
    expect(items.map(([key]) => key)).toEqual([`sha256:${"c".repeat(64)}`, `manifest-${manifest.digest}`, "manifest", `signature-${manifest.digest.slice(7)}`]);
  });
});

describe("choosePlatform", () => {
  const entry = (platform: object, n: number) => ({ mediaType: MEDIA.ociManifest, digest: `sha256:${String(n).repeat(64)}`, size: 1, platform: platform as any });
  const index: ManifestIndex = {
    kind: "index",
    mediaType: MEDIA.ociIndex,
    manifests: [entry({ os: "linux", architecture: "amd64" }, 1), entry({ os: "linux", architecture: "arm", variant: "v6" }, 2), entry({ os: "linux", architecture: "arm", variant: "v7" }, 3), entry({ os: "linux", architecture: "arm64", variant: "v8" }, 4), entry({ os: "windows", architecture: "amd64" }, 5)],
  };
  test("OS, architecture and variant match; an older arm variant is taken when the exact one is missing", () => {
    expect(choosePlatform(index, parsePlatform("linux/amd64")).digest).toBe(`sha256:${"1".repeat(64)}`);
    expect(choosePlatform(index, parsePlatform("linux/arm/v7")).digest).toBe(`sha256:${"3".repeat(64)}`);
    expect(choosePlatform(index, parsePlatform("linux/arm/v8")).digest).toBe(`sha256:${"3".repeat(64)}`);
    expect(choosePlatform(index, parsePlatform("linux/arm/v6")).digest).toBe(`sha256:${"2".repeat(64)}`);
    expect(choosePlatform(index, parsePlatform("linux/arm64")).digest).toBe(`sha256:${"4".repeat(64)}`);
    expect(choosePlatform(index, parsePlatform("windows/amd64")).digest).toBe(`sha256:${"5".repeat(64)}`);
    expect(() => choosePlatform(index, parsePlatform("linux/s390x"))).toThrow("no image for linux/s390x in the index");
    expect(() => parsePlatform("linux")).toThrow('invalid platform "linux"');
  });
});
