/** Reading an overlay upper dir natively: changes against lower dirs, diffsize, and the diff tar's whiteout translation (docs/cli-contract.md §3.7.3, §3.7.4, §4.4). */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OVERLAY_OPAQUE_XATTR, exportOverlayDiff, overlayChanges, overlayDiffSize } from "../../src/archive/overlay-diff.ts";
import { ChangeKind, type ByteSink, type Change } from "../../src/archive/types.ts";
import { NO_ID_MAPS } from "../../src/idmap.ts";
import { mknod, setTimes, setXattr } from "../../src/sys/libc.ts";

const made: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "oci-overlay-diff-"));
  made.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** Makes a tree: "dir/" a directory, "name" => "!wh" an overlay whiteout, "!opq" on a dir key marks it opaque, "-> t" a symlink. */
function tree(spec: Record<string, string>): string {
  const root = tempDir();
  for (const [path, value] of Object.entries(spec)) {
    const full = join(root, path);
    if (path.endsWith("/")) {
      mkdirSync(full, { recursive: true });
      if (value === "!opq") setXattr(full, OVERLAY_OPAQUE_XATTR, new TextEncoder().encode("y"));
    } else if (value === "!wh") mknod(full, "char", 0, 0, 0);
    else if (value.startsWith("-> ")) symlinkSync(value.slice(3), full);
    else writeFileSync(full, value);
  }
  return root;
}

function show(changes: Change[]): string[] {
  return changes.map((c) => `${ChangeKind[c.kind]} ${c.path}`);
}

async function tarOf(upper: string, lowers: string[]): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const sink: ByteSink = { write: (c) => void chunks.push(c.slice()), close: async () => {} };
  await exportOverlayDiff(upper, lowers, sink, NO_ID_MAPS);
  return new Uint8Array(Buffer.concat(chunks));
}

/** Members of a tar as Python's tarfile reads them. */
function members(bytes: Uint8Array): Array<{ name: string; type: string; mode: number; uid: number; gid: number; mtime: number; size: number }> {
  const script = `
import json, sys, tarfile, io
t = tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()))
print(json.dumps([{"name": m.name + ("/" if m.isdir() else ""), "type": "dir" if m.isdir() else "file" if m.isfile() else "other", "mode": m.mode, "uid": m.uid, "gid": m.gid, "mtime": m.mtime, "size": m.size} for m in t]))`;
  const proc = Bun.spawnSync(["python3", "-c", script], { stdin: bytes, stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) throw new Error(proc.stderr.toString());
  return JSON.parse(proc.stdout.toString());
}

const asRoot = process.getuid?.() === 0;

describe.skipIf(!asRoot)("overlay upper dirs read natively", () => {
  test("changes follow the naive rules: whiteouts of names below are deletions, opaque dirs delete the rest, unchanged copied-up dirs only frame their changes", () => {
    const lower = tree({ "a/": "", "a/keep": "k", "a/gone": "g", "b/": "", "b/x": "x", "b/y": "y", "c/": "", "c/f": "f", "top": "t" });
    const upper = tree({ "a/": "", "a/gone": "!wh", "a/never-there": "!wh", "a/new": "n", "b/": "!opq", "b/y": "yy", "c/": "", "top": "!wh" });
    expect(show(overlayChanges(upper, [lower], NO_ID_MAPS))).toEqual(["Modify /a", "Add /a/new", "Delete /a/gone", "Modify /b", "Modify /b/y", "Delete /b/x", "Delete /top"]);
    // Without lower layers every entry is new and whiteouts hide nothing.
    expect(show(overlayChanges(upper, [], NO_ID_MAPS))).toEqual(["Add /a", "Add /a/new", "Add /b", "Add /b/y", "Add /c"]);
  });

  test("lower layers merge as overlayfs does: a whiteout or an opaque dir in a nearer lower layer hides what is further down", () => {
    const deepest = tree({ "d/": "", "d/old": "o", "d/hidden-by-opaque": "h", "w": "w" });
    const middle = tree({ "d/": "!opq", "d/old": "o", "w": "!wh" });
    const nearest = tree({ "d/": "", "d/near": "n" });
    const upper = tree({ "d/": "!opq", "w": "again" });
    expect(show(overlayChanges(upper, [nearest, middle, deepest], NO_ID_MAPS))).toEqual(["Modify /d", "Delete /d/near", "Delete /d/old", "Add /w"]);
  });

  test("a file whose metadata or content differs from the one below is modified; overlayfs's own xattrs do not count", () => {
    const lower = tree({ "f": "same", "g": "same", "h": "same" });
    const upper = tree({ "f": "same", "g": "longer", "h": "same" });
    for (const name of ["f", "g", "h"]) {
      setTimes(join(lower, name), 1_700_000_000_000_000_000n, 1_700_000_000_000_000_000n);
      setTimes(join(upper, name), 1_700_000_000_000_000_000n, 1_700_000_000_000_000_000n);
    }
    setXattr(join(upper, "f"), "trusted.overlay.origin", new Uint8Array([1, 2, 3]));
    chmodSync(join(upper, "h"), 0o600);
    expect(show(overlayChanges(upper, [lower], NO_ID_MAPS))).toEqual(["Modify /g", "Modify /h"]);
  });

  test("diffsize sums the upper dir's files and symlinks, hard links once, whiteouts nothing", () => {
    const upper = tree({ "d/": "", "d/f": "12345", "link": "-> target", "gone": "!wh" });
    linkSync(join(upper, "d", "f"), join(upper, "d", "f2"));
    expect(overlayDiffSize(upper)).toBe(5 + "target".length);
  });

  test("the diff tar turns whiteouts into .wh. files and opaque dirs that exist below into .wh..wh..opq markers, byte-stable", async () => {
    const lower = tree({ "d/": "", "d/x": "x" });
    const upper = tree({ "d/": "!opq", "d/new": "n", "e/": "!opq", "e/f": "f", "gone": "!wh" });
    chmodSync(join(upper, "d"), 0o750);
    chownSync(join(upper, "d"), 5, 6);
    chownSync(join(upper, "gone"), 3, 4);
    setTimes(join(upper, "gone"), 1_700_000_000_400_000_000n, 1_700_000_000_400_000_000n);
    const bytes = await tarOf(upper, [lower]);
    const list = members(bytes);
    expect(list.map((m) => m.name)).toEqual(["d/", "d/.wh..wh..opq", "d/new", "e/", "e/f", ".wh.gone"]);
    expect(list[1]).toMatchObject({ type: "file", mode: 0o750, uid: 5, gid: 6, mtime: 0, size: 0 });
    expect(list[5]).toMatchObject({ type: "file", mode: 0, uid: 3, gid: 4, mtime: 1_700_000_000, size: 0 });
    expect(Buffer.from(await tarOf(upper, [lower])).equals(Buffer.from(bytes))).toBe(true);
  });
});

if (!asRoot) {
  test.skip("overlay upper dirs read natively [skipped: whiteout devices and trusted.* xattrs need root]", () => {});
}
