/**
 * What the tests of a failing graph root (full-disk, io-error, and the registry pull that runs
 * out of space) share: big inputs of random bytes, a snapshot of everything a store holds, and
 * the checks that a failed write said one line and left the store as it was.
 */
import { expect } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestStore } from "../helpers/cli.ts";
import { sh, sha256Bytes, sha256File } from "../helpers/fixtures.ts";
import type { SmallFs } from "../helpers/small-fs.ts";
import { RESERVE_FILE } from "../../src/store/space-reserve.ts";

export const MiB = 1024 * 1024;

/** A GNU tar of the tree at root (fixed owner and times, sorted), written to out. */
export function tarOf(root: string, out: string): string {
  sh(["tar", "-C", root, "--owner=0", "--group=0", "--mtime=2024-05-01 10:00:00", "--sort=name", "-cf", out, "."]);
  return out;
}

/** A tree of `megabytes` MiB of random files (1 MiB each) under a few directories. */
export function randomTree(root: string, megabytes: number): string {
  for (let i = 0; i < megabytes; i++) {
    const dir = join(root, "usr", "lib", `pkg${i % 6}`);
    mkdirSync(dir, { recursive: true });
    const blob = new Uint8Array(MiB);
    for (let at = 0; at < MiB; at += 65536) crypto.getRandomValues(blob.subarray(at, at + 65536));
    writeFileSync(join(dir, `blob${i}.bin`), blob);
  }
  writeFileSync(join(root, "usr", "README"), "a tree too big for its file system\n");
  return root;
}

/** What a store held before a failure, to compare with after it. */
export interface Snapshot {
  layers: Array<{ id: string; names: string[] }>;
  diffs: Map<string, string>;
  /** The digest of every layer's, image's and container's data item, by "kind id/name". */
  items: Map<string, string>;
}

/** Every layer with its names and the digest of its `diff -u`, and every data item's digest; each read says nothing but `notice` on stderr. */
export function snapshot(s: TestStore, notice = ""): Snapshot {
  const layers = (s.json(["layers", "-j"]) as Array<{ id: string; names?: string[] }>).map((l) => ({ id: l.id, names: l.names ?? [] }));
  const diffs = new Map(layers.map((l) => [l.id, sha256Bytes(s.cli(["diff", "-u", l.id]).stdoutBytes)] as const));
  const items = new Map<string, string>();
  for (const kind of ["layer", "image", "container"]) {
    for (const owner of s.json([`${kind}s`, "-j"]) as Array<{ id: string; "big-data-names"?: string[] }>) {
      for (const name of owner["big-data-names"] ?? []) {
        const r = s.cli([`get-${kind}-data`, owner.id, name]);
        expect({ kind, name, code: r.code, stderr: r.stderr }).toEqual({ kind, name, code: 0, stderr: notice });
        items.set(`${kind} ${owner.id}/${name}`, sha256Bytes(r.stdoutBytes));
      }
    }
  }
  return { layers, diffs, items };
}

/** The store lists, exports and reads back exactly what it held before, and check finds nothing. */
export function expectUnchanged(s: TestStore, before: Snapshot): void {
  const after = snapshot(s);
  expect(after.layers).toEqual(before.layers);
  expect(after.diffs).toEqual(before.diffs);
  expect(after.items).toEqual(before.items);
  expectClean(s);
}

/** `check` finds nothing. */
export function expectClean(s: TestStore): void {
  const check = s.cli(["check"]);
  expect(`${check.stdout}${check.stderr}`).toBe("");
  expect(check.code).toBe(0);
}

/**
 * The one-line failure of a write the file system refused: exit 1, the command's name first,
 * the path it was writing (a file of the tar or tree, quoted, or a path in the graph root), then
 * one of the causes given (by default the full disk's).
 */
export function expectWriteFault(r: { code: number; stderr: string }, command: string, s: TestStore, causes = ["no space left on device"]): void {
  expect(r.code).toBe(1);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr.startsWith(`${command}: `)).toBe(true);
  const graph = RegExp.escape(s.graph);
  expect(r.stderr).toMatch(new RegExp(`(extracting "[^"]+"|${graph}/\\S+): (${causes.join("|")})\n$`));
}

/** After freeing space: a new layer can be made from `tar`, and the layer given (if any) deleted. */
export function expectUsableAgain(fs: SmallFs, s: TestStore, tar: string, failed?: string): void {
  fs.free();
  const fresh = s.ok(["import-layer", "-f", tar]).split("\n")[0]!;
  expect(sha256Bytes(s.cli(["diff", "-u", fresh]).stdoutBytes)).toBe(sha256File(tar));
  if (failed !== undefined) s.ok(["delete-layer", failed]);
  expectClean(s);
  expect(existsSync(join(s.graph, RESERVE_FILE))).toBe(true);
}
