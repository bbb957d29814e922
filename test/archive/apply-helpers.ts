/** Helpers shared by the apply, changes and export tests: temp dirs, external tools, tree snapshots. */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { applyLayerTar } from "../../src/archive/apply.ts";
import type { ApplyOptions, ApplyResult } from "../../src/archive/types.ts";
import { NO_ID_MAPS } from "../../src/idmap.ts";
import { getXattr, listXattrs } from "../../src/sys/libc.ts";

/** A fresh directory under /tmp; remove it with rmSync(dir, { recursive: true, force: true }). */
export function makeTempDir(prefix: string): string {
  return mkdtempSync(`/tmp/${prefix}-`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs a program and returns its stdout; throws with its stderr when it fails. */
export function run(argv: string[], options: { cwd?: string; stdin?: Uint8Array } = {}): string {
  const result = Bun.spawnSync(argv, { cwd: options.cwd, stdin: options.stdin ?? "ignore", stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${result.exitCode}): ${result.stderr.toString()}`);
  return result.stdout.toString();
}

/** Runs a shell script with bash -e. */
export function sh(script: string, cwd?: string): string {
  return run(["bash", "-e", "-c", script], cwd === undefined ? {} : { cwd });
}

/**
 * Writes tars with Python's tarfile in one python3 run (starting Python is slow on a busy machine).
 * Each spec is [path, code]: the code runs with `tf` (an open TarFile, PAX format),
 * `add(name, type=tarfile.REGTYPE, data=b"", **attrs)` and `tarfile` in scope.
 */
export function pythonTars(specs: Array<[string, string]>): void {
  if (specs.length === 0) return;
  const bodies = specs
    .map(([, code], index) => {
      const lines = code.split("\n").map((line) => line.trim()).filter((line) => line !== "");
      return `def build_${index}(tf, add):\n${[...lines, "pass"].map((line) => `    ${line}`).join("\n")}\n`;
    })
    .join("\n");
  const script = `
import io, json, sys, tarfile
${bodies}
def write(path, build):
    tf = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
    def add(name, type=tarfile.REGTYPE, data=b"", **attrs):
        info = tarfile.TarInfo(name)
        info.type = type
        info.mtime = attrs.pop("mtime", 1600000000)
        info.mode = attrs.pop("mode", 0o755 if type == tarfile.DIRTYPE else 0o644)
        for key, value in attrs.items():
            setattr(info, key, value)
        if type == tarfile.REGTYPE:
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        else:
            tf.addfile(info)
    build(tf, add)
    tf.close()
paths = json.loads(sys.argv[1])
for index, path in enumerate(paths):
    write(path, globals()["build_%d" % index])
`;
  run(["python3", "-c", script, JSON.stringify(specs.map(([path]) => path))]);
}

/** One tar written with Python's tarfile; see pythonTars. */
export function pythonTar(path: string, code: string): void {
  pythonTars([[path, code]]);
}

/** Collects tar specs at module load and writes them all at once in beforeAll. */
export class TarSet {
  private readonly specs: Array<[string, string]> = [];

  constructor(private readonly dir: string) {}

  /** Registers a tar and returns the path it will have. */
  add(name: string, code: string): string {
    const path = `${this.dir}/${name}.tar`;
    this.specs.push([path, code]);
    return path;
  }

  build(): void {
    mkdirSync(this.dir, { recursive: true });
    pythonTars(this.specs);
  }
}

export async function applyFile(root: string, tarPath: string, options: Partial<ApplyOptions> = {}): Promise<ApplyResult> {
  return applyLayerTar(root, Bun.file(tarPath).stream(), { whiteouts: "remove", idMaps: NO_ID_MAPS, ...options });
}

/**
 * One line per path below root describing what a user can observe: type, mode, owner, mtime (ns; directories
 * too unless skipDirTimes), size and content digest, link target, device numbers, xattrs and which paths share
 * an inode.
 */
export function snapshotTree(root: string, options: { skipDirTimes?: boolean; skipRoot?: boolean } = {}): Record<string, string> {
  const lines: Record<string, string> = {};
  const inodes = new Map<bigint, string>();
  const visit = (rel: string) => {
    const path = rel === "" ? root : `${root}/${rel}`;
    const stats = lstatSync(path, { bigint: true });
    const parts = [`mode=${stats.mode.toString(8)}`, `owner=${stats.uid}:${stats.gid}`];
    if (!(stats.isDirectory() && options.skipDirTimes)) parts.push(`mtime=${stats.mtimeNs}`);
    if (stats.isFile()) parts.push(`size=${stats.size}`, `sha=${new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex").slice(0, 16)}`);
    if (stats.isSymbolicLink()) parts.push(`target=${readlinkSync(path)}`);
    if (stats.isCharacterDevice() || stats.isBlockDevice()) parts.push(`rdev=${stats.rdev}`);
    const xattrs = listXattrs(path).sort();
    for (const name of xattrs) parts.push(`xattr:${name}=${Buffer.from(getXattr(path, name) ?? []).toString("hex")}`);
    if (!stats.isDirectory() && stats.nlink > 1n) {
      const first = inodes.get(stats.ino);
      if (first === undefined) inodes.set(stats.ino, rel);
      else parts.push(`linked-to=${first}`);
    }
    if (!(rel === "" && options.skipRoot)) lines[rel === "" ? "." : rel] = parts.join(" ");
    if (stats.isDirectory()) for (const name of readdirSync(path).sort()) visit(rel === "" ? name : `${rel}/${name}`);
  };
  visit("");
  return lines;
}

/** Paths, types, sizes, modes and mtimes of everything below dir except `except` (a child name), for sentinel checks. */
export function sentinelState(dir: string, except: string): string[] {
  const lines: string[] = [];
  const visit = (rel: string) => {
    const path = rel === "" ? dir : `${dir}/${rel}`;
    const stats = lstatSync(path, { bigint: true });
    lines.push(`${rel} ${stats.mode.toString(8)} ${stats.size} ${stats.nlink} ${stats.mtimeNs}`);
    if (stats.isDirectory()) for (const name of readdirSync(path).sort()) if (!(rel === "" && name === except)) visit(rel === "" ? name : `${rel}/${name}`);
  };
  visit("");
  return lines;
}

export function sha256Hex(path: string): string {
  return `sha256:${run(["sha256sum", path]).split(" ")[0]}`;
}
