/** What the oracle compares of trees and tars: the parts a script sees, none of the times. */
import { lstatSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../helpers/fixtures.ts";

const DUMP_TAR = join(import.meta.dir, "..", "archive", "fixtures", "dump_tar.py");

function typeOf(mode: number): string {
  const kinds: Record<number, string> = { 0o040000: "dir", 0o100000: "file", 0o120000: "symlink", 0o020000: "char", 0o060000: "block", 0o010000: "fifo", 0o140000: "socket" };
  return kinds[mode & 0o170000] ?? "unknown";
}

/** Every entry below root (root itself as "."): type, permission bits, owner, size and content hash of files, link target, device numbers. */
export function listTree(root: string): string[] {
  const entries = [".", ...readdirSync(root, { recursive: true, encoding: "utf8" })].sort();
  return entries.map((rel) => {
    const path = join(root, rel);
    const st = lstatSync(path);
    const type = typeOf(st.mode);
    const fields = [rel, type, (st.mode & 0o7777).toString(8), `${st.uid}:${st.gid}`];
    if (type === "file") fields.push(String(st.size), sha256File(path), `links=${st.nlink}`);
    if (type === "symlink") fields.push(`-> ${readlinkSync(path)}`);
    if (type === "char" || type === "block") fields.push(`dev=${st.rdev}`);
    return fields.join(" ");
  });
}

/**
 * A tar's members as Python's tarfile reads them, without modification times, and without a
 * link target on members that are not links (1.43's overlay whiteout files carry a stale one that
 * no reader uses: known difference overlay-whiteout-link-name).
 */
export function listTar(file: string): unknown[] {
  const proc = Bun.spawnSync(["python3", DUMP_TAR, file], { stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) return [`not a tar: ${proc.stderr.toString().trim().split("\n").at(-1)}`];
  return (JSON.parse(proc.stdout.toString()) as Array<Record<string, unknown>>).map(({ mtimeNs: _, paxKeys, linkTarget, ...rest }) => ({
    ...rest,
    linkTarget: rest.type === "symlink" || rest.type === "hardlink" ? linkTarget : "",
    paxKeys: (paxKeys as string[]).filter((k) => !["mtime", "atime", "ctime"].includes(k)),
  }));
}
