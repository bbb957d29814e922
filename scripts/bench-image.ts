/**
 * The two-layer Debian image the image benchmarks move around (pull, push, and the registry
 * rows): an OCI image layout made once from scripts/bench-data.sh's data, in DATA/image/, ref
 * "debian:bench". Layers: base.tar.gz (the minbase tree) and upper.tar gzipped (modifications,
 * additions, whiteouts); an OCI config whose rootfs.diff_ids are the two tars' digests. Remade
 * when the data changes (DATA/bench-image.json describes it); bench-data.sh rebuilds DATA/ as a
 * whole, and this with it.
 *
 * Usage: bun scripts/bench-image.ts [--data DIR]      prints the layout's path and ref
 *   or:  import { benchImage } from "./bench-image.ts"; benchImage(dataDir) → { layout, ref, ... }
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

/** Bump when the recipe below changes, so that old images are remade. */
const RECIPE_VERSION = 1;
export const BENCH_IMAGE_REF = "debian:bench";

/** The image made from the bench data, and what describes it. */
export interface BenchImage {
  /** The OCI layout directory. */
  layout: string;
  /** Its ref name in index.json: pull it as `oci:${layout}:${ref}`. */
  ref: string;
  manifestDigest: string;
  configDigest: string;
  /** Base first: the compressed blobs' digests and sizes, and the uncompressed tars' digests. */
  layers: Array<{ digest: string; size: number; diffId: string }>;
}

/** sha256 of a file, streamed, as "sha256:hex". */
async function fileDigest(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return `sha256:${hasher.digest("hex")}`;
}

function bytesDigest(bytes: string): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}`;
}

/** Go's GOARCH for this machine, as an image config names it. */
function goArch(): string {
  return ({ x64: "amd64", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64" } as Record<string, string>)[process.arch] ?? process.arch;
}

/** What the image is made from: when any of it changes, the image is remade. */
function stampOf(dataDir: string): string {
  const inputs = ["complete", "base.tar", "base.tar.gz", "upper.tar"].map((name) => {
    const stat = statSync(join(dataDir, name));
    return `${name} ${stat.size} ${stat.mtimeMs}`;
  });
  return JSON.stringify({ recipe: RECIPE_VERSION, inputs });
}

/** Makes (or finds up to date) the bench image from the files of scripts/bench-data.sh in dataDir. */
export async function benchImage(dataDir: string): Promise<BenchImage> {
  const layout = join(dataDir, "image");
  const described = join(dataDir, "bench-image.json");
  const stamp = stampOf(dataDir);
  if (existsSync(described)) {
    const known = JSON.parse(readFileSync(described, "utf8"));
    if (known.stamp === stamp) return known.image as BenchImage;
  }
  // Made beside the layout and renamed into place, so that two benchmarks starting at once each get a whole image.
  const staging = `${layout}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const blobs = join(staging, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const putFile = async (path: string) => {
    const digest = await fileDigest(path);
    copyFileSync(path, join(blobs, digest.slice(7)));
    return { digest, size: statSync(path).size };
  };
  const putJson = (value: unknown) => {
    const text = JSON.stringify(value);
    const digest = bytesDigest(text);
    writeFileSync(join(blobs, digest.slice(7)), text);
    return { digest, size: Buffer.byteLength(text) };
  };

  const upperGz = join(staging, "upper.tar.gz");
  const gzip = Bun.spawnSync(["gzip", "-6", "--no-name", "--stdout", join(dataDir, "upper.tar")], { stdout: Bun.file(upperGz), stderr: "pipe" });
  if (gzip.exitCode !== 0) throw new Error(`gzip of upper.tar failed: ${gzip.stderr.toString().trim()}`);
  const base = { ...(await putFile(join(dataDir, "base.tar.gz"))), diffId: await fileDigest(join(dataDir, "base.tar")) };
  const upper = { ...(await putFile(upperGz)), diffId: await fileDigest(join(dataDir, "upper.tar")) };
  rmSync(upperGz);

  const created = "2024-01-01T00:00:00Z";
  const config = putJson({
    created,
    architecture: goArch(),
    os: "linux",
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/bash"] },
    rootfs: { type: "layers", diff_ids: [base.diffId, upper.diffId] },
    history: [
      { created, created_by: "debootstrap --variant=minbase bookworm" },
      { created, created_by: "scripts/bench-data.sh upper layer" },
    ],
  });
  const manifest = putJson({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [base, upper].map((layer) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layer.digest, size: layer.size })),
  });
  writeFileSync(join(staging, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(staging, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": BENCH_IMAGE_REF } }],
    }),
  );
  const image: BenchImage = { layout, ref: BENCH_IMAGE_REF, manifestDigest: manifest.digest, configDigest: config.digest, layers: [base, upper] };
  rmSync(layout, { recursive: true, force: true });
  try {
    renameSync(staging, layout);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process put the same image in place meanwhile
  }
  writeFileSync(`${described}.${process.pid}`, `${JSON.stringify({ stamp, image }, null, 1)}\n`);
  renameSync(`${described}.${process.pid}`, described);
  return image;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { data: { type: "string" } } });
  const dataDir = resolve(values.data ?? (process.env.BENCH_DIR ? join(process.env.BENCH_DIR, "data") : join(import.meta.dir, "..", ".bench", "data")));
  if (!existsSync(join(dataDir, "complete"))) {
    console.error(`bench-image: no bench data in ${dataDir}; run scripts/bench-data.sh first`);
    process.exit(1);
  }
  const image = await benchImage(dataDir);
  console.log(`oci:${image.layout}:${image.ref}`);
}
