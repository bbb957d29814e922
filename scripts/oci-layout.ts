/**
 * Writes an OCI image layout (image-spec image-layout.md) holding one image made of layer
 * files as they are (a GNU tar, or one gzip or zstd compressed): the blobs copied under
 * blobs/sha256/, a config with the given fields and rootfs.diff_ids, an OCI manifest, and
 * index.json naming the image by `ref`. Used by scripts/bench-image.ts and by tests that need
 * an image of their own large layers.
 */
import { copyFileSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** One layer: its blob as stored, its media type, and the digest of its uncompressed tar. */
export interface LayoutLayerInput {
  file: string;
  mediaType: string;
  diffId: string;
}

/** What was written: enough to pull it and to know the IDs a store will give it. */
export interface WrittenImage {
  ref: string;
  manifestDigest: string;
  configDigest: string;
  /** Base first: the blobs' digests and sizes, and the uncompressed tars' digests. */
  layers: Array<{ digest: string; size: number; diffId: string }>;
}

/** sha256 of a file, streamed, as "sha256:hex". */
export async function fileDigest(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return `sha256:${hasher.digest("hex")}`;
}

/** Writes the layout into dir (made if missing). `config` holds the config's fields but rootfs. */
export async function writeOciLayout(dir: string, ref: string, layers: LayoutLayerInput[], config: Record<string, unknown>): Promise<WrittenImage> {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const putJson = (value: unknown) => {
    const text = JSON.stringify(value);
    const digest = `sha256:${new Bun.CryptoHasher("sha256").update(text).digest("hex")}`;
    writeFileSync(join(blobs, digest.slice(7)), text);
    return { digest, size: Buffer.byteLength(text) };
  };
  const written: WrittenImage["layers"] = [];
  for (const layer of layers) {
    const digest = await fileDigest(layer.file);
    copyFileSync(layer.file, join(blobs, digest.slice(7)));
    written.push({ digest, size: statSync(layer.file).size, diffId: layer.diffId });
  }
  const configBlob = putJson({ ...config, rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) } });
  const manifest = putJson({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...configBlob },
    layers: layers.map((layer, i) => ({ mediaType: layer.mediaType, digest: written[i]!.digest, size: written[i]!.size })),
  });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": ref } }],
    }),
  );
  return { ref, manifestDigest: manifest.digest, configDigest: configBlob.digest, layers: written };
}
