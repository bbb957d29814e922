/** Real layer tars for tests, made with GNU tar from files written in a temp dir. */
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/** File contents by path; a value ending in "/" makes a directory, "-> target" a symlink. */
export type TreeSpec = Record<string, string>;

/** Writes a tree spec into a new temp dir and returns the dir. */
export function writeTree(spec: TreeSpec, root = mkdtempSync(join(tmpdir(), "oci-tree-"))): string {
  for (const [path, content] of Object.entries(spec)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    if (path.endsWith("/")) mkdirSync(full, { recursive: true });
    else if (content.startsWith("-> ")) symlinkSync(content.slice(3), full);
    else writeFileSync(full, content);
  }
  return root;
}

/** Runs a command, failing loudly. */
export function sh(argv: string[], cwd?: string): string {
  const p = Bun.spawnSync(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`${argv.join(" ")} failed: ${p.stderr.toString()}`);
  return p.stdout.toString();
}

/** A GNU tar (default format) of a tree spec, with fixed mtimes and owner root; returns the tar file path. */
export function makeTar(spec: TreeSpec, extraTarArgs: string[] = []): string {
  const root = writeTree(spec);
  const out = join(mkdtempSync(join(tmpdir(), "oci-tar-")), "layer.tar");
  sh(["tar", "-C", root, "--owner=0", "--group=0", "--mtime=2024-05-01 10:00:00", "--sort=name", ...extraTarArgs, "-cf", out, "."]);
  return out;
}

export function sha256File(path: string): string {
  return new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
}

export function sha256Bytes(bytes: Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
}

/** Every path below root with its mode, size, modification time (ns) and content hash: equal snapshots mean nothing there was written. */
export function snapshotFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: "utf8" })
    .map((rel) => {
      const path = join(root, rel);
      const st = lstatSync(path, { bigint: true });
      const content = st.isFile() ? sha256File(path) : "";
      return `${rel} ${st.mode.toString(8)} ${st.size} ${st.mtimeNs} ${content}`;
    })
    .sort();
}

/** Whether strace is installed; when not, prints that `what` (a test) is skipped and why. */
export function straceAvailable(what: string): boolean {
  const found = Bun.which("strace") !== null;
  if (!found) console.log(`skipping ${what}: strace is not installed`);
  return found;
}
