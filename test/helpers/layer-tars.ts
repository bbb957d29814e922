/**
 * Layer tars written entry by entry with Python's tarfile (the order of entries is the test's),
 * and an OCI layout made of such layers (gzip blobs, a config with their diff_ids), for pulls
 * that the peer (skopeo + containers-storage 1.43) makes side by side.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { sh } from "./fixtures.ts";

/** One tar entry: a file (content), a directory, a symlink or hard link (target), in the order given. */
export interface LayerEntry {
  path: string;
  type: "file" | "dir" | "symlink" | "hardlink";
  content?: string;
  target?: string;
  mode?: number;
  /** Seconds since the epoch (default 1_600_000_000). */
  mtime?: number;
}

const WRITER = `
import json, sys, tarfile, io
entries = json.load(open(sys.argv[1]))
with tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT) as tar:
    for e in entries:
        info = tarfile.TarInfo(e["path"])
        info.mtime = e.get("mtime", 1600000000)
        kind = e["type"]
        data = None
        if kind == "dir":
            info.type = tarfile.DIRTYPE
            info.mode = e.get("mode", 0o755)
        elif kind == "symlink":
            info.type = tarfile.SYMTYPE
            info.linkname = e["target"]
            info.mode = 0o777
        elif kind == "hardlink":
            info.type = tarfile.LNKTYPE
            info.linkname = e["target"]
            info.mode = e.get("mode", 0o644)
        else:
            data = e.get("content", "").encode()
            info.size = len(data)
            info.mode = e.get("mode", 0o644)
        tar.addfile(info, io.BytesIO(data) if data is not None else None)
`;

/** Writes the entries, in order, as a PAX tar at file. */
export function writeLayerTar(file: string, entries: LayerEntry[]): void {
  writeFileSync(`${file}.json`, JSON.stringify(entries));
  sh(["python3", "-c", WRITER, `${file}.json`, file]);
}

const sha256 = (bytes: Uint8Array | string) => new Bun.CryptoHasher("sha256").update(bytes).digest("hex");

/** Adds to the OCI layout at `layout` (made if missing), as `ref`, an image of these layer tars (gzip-compressed), base first. */
export function ociLayoutFromTars(layout: string, ref: string, tars: string[]): void {
  const blobs = join(layout, "blobs/sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (bytes: Uint8Array | string) => {
    const hex = sha256(bytes);
    writeFileSync(join(blobs, hex), bytes);
    return { digest: `sha256:${hex}`, size: typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.byteLength };
  };
  const layers = tars.map((tar) => {
    const plain = readFileSync(tar);
    return { diffId: `sha256:${sha256(plain)}`, blob: put(gzipSync(plain)) };
  });
  const config = put(JSON.stringify({ architecture: "amd64", os: "linux", config: {}, rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) } }));
  const manifest = put(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
      layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...l.blob })),
    }),
  );
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  const indexFile = join(layout, "index.json");
  const index = existsSync(indexFile) ? JSON.parse(readFileSync(indexFile, "utf8")) : { schemaVersion: 2, manifests: [] };
  index.manifests.push({ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations: { "org.opencontainers.image.ref.name": ref } });
  writeFileSync(indexFile, JSON.stringify(index));
}
