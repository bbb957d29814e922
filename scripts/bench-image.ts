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
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { fileDigest, type WrittenImage, writeOciLayout } from "./oci-layout.ts";

/** Bump when the recipe below changes, so that old images are remade. */
const RECIPE_VERSION = 2;
export const BENCH_IMAGE_REF = "debian:bench";

/** The image made from the bench data: pull it as `oci:${layout}:${ref}`. */
export interface BenchImage extends WrittenImage {
  /** The OCI layout directory. */
  layout: string;
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
  mkdirSync(staging, { recursive: true });
  const upperGz = join(staging, "upper.tar.gz");
  const gzip = Bun.spawnSync(["gzip", "-6", "--no-name", "--stdout", join(dataDir, "upper.tar")], { stdout: Bun.file(upperGz), stderr: "pipe" });
  if (gzip.exitCode !== 0) throw new Error(`gzip of upper.tar failed: ${gzip.stderr.toString().trim()}`);
  const created = "2024-01-01T00:00:00Z";
  const layer = async (file: string, tar: string) => ({ file, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: await fileDigest(join(dataDir, tar)) });
  const written = await writeOciLayout(staging, BENCH_IMAGE_REF, [await layer(join(dataDir, "base.tar.gz"), "base.tar"), await layer(upperGz, "upper.tar")], {
    created,
    architecture: goArch(),
    os: "linux",
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/bash"] },
    history: [
      { created, created_by: "debootstrap --variant=minbase bookworm" },
      { created, created_by: "scripts/bench-data.sh upper layer" },
    ],
  });
  rmSync(upperGz);
  const image: BenchImage = { layout, ...written };
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
