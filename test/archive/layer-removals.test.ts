/**
 * Reading a layer's removals ahead (src/archive/layer-removals.ts): which whiteouts and opaque
 * directories a copy of the parent may leave out, and which it must not.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { omissionsIn, scanLayerRemovals } from "../../src/archive/layer-removals.ts";
import { type LayerEntry, writeLayerTar } from "../helpers/layer-tars.ts";
import { removeTempDirs, sourceOf, tempDir } from "./tar-fixtures.ts";

afterAll(removeTempDirs);

const file = (path: string): LayerEntry => ({ path, type: "file", content: `${path}\n` });

/** The layer's gzip bytes and their digest. */
function layer(entries: LayerEntry[]): { bytes: Uint8Array; digest: string } {
  const tar = join(tempDir(), "layer.tar");
  writeLayerTar(tar, entries);
  const bytes = gzipSync(readFileSync(tar));
  return { bytes, digest: `sha256:${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}` };
}

async function scan(entries: LayerEntry[]) {
  const { bytes, digest } = layer(entries);
  return scanLayerRemovals(sourceOf(bytes, 1000), digest);
}

test("whiteouts and opaque directories nothing reaches before them are left out; the others are not", async () => {
  const removals = await scan([
    { path: "etc/", type: "dir" },
    file("usr/share/.wh.doc"),
    { path: "usr/share/zoneinfo/", type: "dir" },
    file("usr/share/zoneinfo/.wh..wh..opq"),
    file("usr/share/zoneinfo/UTC"),
    file("opt/early/f2"),
    file("opt/.wh.early"),
    { path: "opt/hl", type: "hardlink", target: "opt/linked/target" },
    file("opt/.wh.linked"),
    file("var/.wh..wh..opq"),
    file("var/.wh.gone"),
    file(".wh.topgone"),
    file(".wh..wh.plnk/1"),
  ]);
  expect(removals?.paths.sort()).toEqual(["topgone", "usr/share/doc", "var/gone"]);
  expect(removals?.contentsOf.sort()).toEqual(["usr/share/zoneinfo", "var"]);
  expect(removals?.passesThrough).toContain("usr/share/zoneinfo");
});

test("an entry below an opaque directory before its marker keeps the directory's contents", async () => {
  const removals = await scan([file("d/kept"), file("d/.wh..wh..opq"), file("x/.wh.y")]);
  expect(removals?.contentsOf).toEqual([]);
  expect(removals?.paths).toEqual(["x/y"]);
});

test("a layer with a symlink or hard link above another of its entries removes nothing ahead", async () => {
  expect(await scan([{ path: "l", type: "symlink", target: "usr" }, file("l/x"), file(".wh.gone")])).toBeUndefined();
  expect(await scan([{ path: "h", type: "hardlink", target: "s" }, file("h/x"), file(".wh.gone")])).toBeUndefined();
});

test("bytes that are not the digest given are not trusted", async () => {
  const { bytes } = layer([file(".wh.gone")]);
  expect(await scanLayerRemovals(sourceOf(bytes), `sha256:${"0".repeat(64)}`)).toBeUndefined();
});

test("a parent in which an entry's directory is a symlink gets no omissions", async () => {
  const removals = (await scan([file("usr/lib/new"), file("usr/share/.wh.doc")]))!;
  const plain = tempDir();
  mkdirSync(join(plain, "usr/lib"), { recursive: true });
  expect(omissionsIn(removals, plain)).toEqual({ paths: new Set(["usr/share/doc"]), contentsOf: new Set() });
  const linked = tempDir();
  mkdirSync(join(linked, "usr/lib64"), { recursive: true });
  symlinkSync("lib64", join(linked, "usr/lib"));
  expect(omissionsIn(removals, linked)).toBeUndefined();
});
