/** Helpers of the driver conformance suite: stores opened in-process, layer tars from Python's tarfile, tree snapshots. */
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ByteSink, ByteSource } from "../../src/archive/types.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { devMajorMinor, getXattr, listXattrs } from "../../src/sys/libc.ts";

/** One entry of a layer tar (see fixtures/layer_tar.py). */
export interface TarSpecEntry {
  name: string;
  type?: "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";
  data?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Decimal seconds, e.g. "1714557600.123456789". */
  mtime?: string;
  link?: string;
  major?: number;
  minor?: number;
  xattrs?: Record<string, string>;
}

const scratch: string[] = [];

/** A temp dir removed by removeScratch(). */
export function scratchDir(prefix = "oci-driver-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

export function removeScratch(): void {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Writes a PAX layer tar with Python's tarfile and returns its path. */
export function layerTar(entries: TarSpecEntry[]): string {
  const out = join(scratchDir("oci-layer-tar-"), "layer.tar");
  const proc = Bun.spawnSync(["python3", join(import.meta.dir, "fixtures", "layer_tar.py"), out], { stdin: new TextEncoder().encode(JSON.stringify(entries)), stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(`layer_tar.py failed: ${proc.stderr.toString()}`);
  return out;
}

/** A file as a byte source. */
export function fileSource(path: string): ByteSource {
  return Bun.file(path).stream() as unknown as ByteSource;
}

/** A sink that keeps what is written. */
export function memorySink(): ByteSink & { bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    write(chunk: Uint8Array) {
      chunks.push(chunk.slice());
    },
    async close() {},
    bytes: () => new Uint8Array(Buffer.concat(chunks)),
  };
}

/** A store in a temp dir, opened in-process. */
export interface DriverStore {
  store: Store;
  graph: string;
  run: string;
  /** Releases mounts, closes the store and removes its directories. */
  destroy(): Promise<void>;
}

export async function openDriverStore(driver: string, driverOptions: string[] = []): Promise<DriverStore> {
  const dir = mkdtempSync(join(tmpdir(), `oci-conformance-${driver}-`));
  const graph = join(dir, "root");
  const run = join(dir, "run");
  const store = await openStore({ graphRoot: graph, runRoot: run, driver, driverOptions });
  return {
    store,
    graph,
    run,
    async destroy() {
      await store.shutdown(true);
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The directory holding a layer's own files, where the driver keeps it (vfs: the full tree; overlay: diff/). */
export function layerContentDir(store: Store, id: string): string {
  return store.driverName === "vfs" ? join(store.graphRoot, "vfs", "dir", id) : join(store.graphRoot, "overlay", id, "diff");
}

/**
 * Everything a user can observe of a tree, one line per path: type, permission bits, owner,
 * mtime in ns (not for the root, which each driver touches when it is made), size and content
 * hash, link target, device number, xattrs, and which hard-link group a file belongs to.
 */
export function describeTree(root: string): string[] {
  const lines: string[] = [];
  const firstNameOfInode = new Map<bigint, string>();
  const walk = (rel: string) => {
    const path = rel === "" ? root : join(root, rel);
    const st = lstatSync(path, { bigint: true });
    const kind = st.isDirectory() ? "d" : st.isFile() ? "f" : st.isSymbolicLink() ? "l" : st.isCharacterDevice() ? "c" : st.isBlockDevice() ? "b" : st.isFIFO() ? "p" : "?";
    const parts = [`/${rel}`, kind, (Number(st.mode) & 0o7777).toString(8), `${st.uid}:${st.gid}`];
    if (rel !== "") parts.push(`mtime=${st.mtimeNs}`);
    if (kind === "f") parts.push(`size=${st.size}`, `sha256=${new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex")}`);
    if (kind === "l") parts.push(`-> ${readlinkSync(path)}`);
    if (kind === "c" || kind === "b") parts.push(`dev=${devMajorMinor(st.rdev).join(":")}`);
    for (const name of listXattrs(path).sort()) parts.push(`xattr ${name}=${Buffer.from(getXattr(path, name) ?? []).toString("hex")}`);
    if (kind === "f" && st.nlink > 1n) {
      const first = firstNameOfInode.get(st.ino);
      if (first === undefined) firstNameOfInode.set(st.ino, `/${rel}`);
      else parts.push(`hardlink-of ${first}`);
    }
    lines.push(parts.join(" "));
    if (kind === "d") for (const name of readdirSync(path).sort()) walk(rel === "" ? name : `${rel}/${name}`);
  };
  walk("");
  return lines;
}

/** Writes a file and returns its path. */
export function writeText(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}
