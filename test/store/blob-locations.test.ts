/**
 * The registry blob-location hints in the store's database (src/store/blob-locations.ts): what
 * a pull or push remembers is found again by later processes, per registry and most recent
 * first; the tables stay bounded; an old database gains them by migration; and a store whose
 * file system refuses writes skips a hint quietly instead of failing.
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_ENTRIES } from "../../src/store/blob-locations.ts";
import { openStore, type Store } from "../../src/store/store.ts";

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function digest(n: number): string {
  return `sha256:${n.toString(16).padStart(64, "0")}`;
}

async function open(dir: string): Promise<Store> {
  const store = await openStore({ graphRoot: join(dir, "graph"), runRoot: join(dir, "run"), driver: "vfs", driverOptions: [] });
  stores.push(store);
  return store;
}

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "oci-blob-locations-"));
  dirs.push(dir);
  return dir;
}

test("hints are found again by the next process: repositories per registry, blobs of a layer, most recent first", async () => {
  const dir = scratch();
  const first = await open(dir);
  const layer = digest(1);
  expect(first.rememberLayerBlob(layer, { digest: digest(2), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: 10 })).toBe(true);
  expect(first.rememberLayerBlob(layer, { digest: digest(3), mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", size: 9 })).toBe(true);
  expect(first.rememberLayerBlob(layer, layerBlob(layer))).toBe(false);
  first.rememberBlobLocation(digest(2), "127.0.0.1:5000", "app");
  first.rememberBlobLocation(digest(2), "127.0.0.1:5000", "team/app");
  first.rememberBlobLocation(digest(2), "quay.io", "other/app");
  first.rememberBlobLocation(digest(3), "127.0.0.1:5000", "app");
  first.close();
  stores.pop();

  const second = await open(dir);
  expect(second.blobRepositories(digest(2), "127.0.0.1:5000")).toEqual(["team/app", "app"]);
  expect(second.blobRepositories(digest(2), "quay.io")).toEqual(["other/app"]);
  expect(second.blobRepositories(digest(2), "docker.io")).toEqual([]);
  expect(second.knownLayerBlobs(layer, "127.0.0.1:5000")).toEqual([
    { digest: digest(3), mediaType: "application/vnd.oci.image.layer.v1.tar+zstd", size: 9, repositories: ["app"] },
    { digest: digest(2), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: 10, repositories: ["team/app", "app"] },
  ]);
  // Seeing a blob again moves it to the front.
  second.rememberBlobLocation(digest(2), "127.0.0.1:5000", "app");
  second.rememberLayerBlob(layer, { digest: digest(2), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: 10 });
  expect(second.blobRepositories(digest(2), "127.0.0.1:5000")).toEqual(["app", "team/app"]);
  expect(second.knownLayerBlobs(layer, "127.0.0.1:5000").map((b) => b.digest)).toEqual([digest(2), digest(3)]);
  expect(second.knownLayerBlobs(digest(99), "127.0.0.1:5000")).toEqual([]);
});

function layerBlob(d: string) {
  return { digest: d, mediaType: "application/vnd.oci.image.layer.v1.tar", size: 1 };
}

test(`each table keeps the ${MAX_ENTRIES} most recently seen rows`, async () => {
  const store = await open(scratch());
  for (let i = 0; i < MAX_ENTRIES + 3; i++) {
    store.rememberBlobLocation(digest(i), "r", "repo");
    store.rememberLayerBlob(digest(1_000_000 + i), layerBlob(digest(i)));
  }
  for (const i of [0, 1, 2]) {
    expect(store.blobRepositories(digest(i), "r")).toEqual([]);
    expect(store.knownLayerBlobs(digest(1_000_000 + i), "r")).toEqual([]);
  }
  for (const i of [3, MAX_ENTRIES + 2]) {
    expect(store.blobRepositories(digest(i), "r")).toEqual(["repo"]);
    expect(store.knownLayerBlobs(digest(1_000_000 + i), "r").map((b) => b.digest)).toEqual([digest(i)]);
  }
});

test("a database of schema version 2 gains the tables when it is opened", async () => {
  const dir = scratch();
  (await open(dir)).close();
  stores.pop();
  const path = join(dir, "graph", "oci-storage.db");
  const old = new Database(path);
  // What schema version 2 had: no hint tables, nor the later index of unfinished layers.
  old.run("DROP TABLE blob_locations");
  old.run("DROP TABLE layer_blobs");
  old.run("DROP INDEX IF EXISTS layers_unfinished");
  old.run("PRAGMA user_version = 2");
  old.close();
  const store = await open(dir);
  expect(store.schemaVersion).toBeGreaterThanOrEqual(3);
  const check = new Database(path, { readonly: true });
  expect((check.query("PRAGMA user_version").get() as { user_version: number }).user_version).toBe(store.schemaVersion);
  check.close();
  expect(store.rememberBlobLocation(digest(5), "r", "repo")).toBe(true);
  expect(store.blobRepositories(digest(5), "r")).toEqual(["repo"]);
});

test("a store on a full file system skips hints without an error, keeps the old ones, and records again once there is room", async () => {
  if (process.getuid?.() !== 0) {
    console.log("skipping: mounting a small tmpfs needs root");
    return;
  }
  const dir = scratch();
  const fs = join(dir, "fs");
  mkdirSync(fs);
  expect(Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", fs]).exitCode).toBe(0);
  const store = await open(fs);
  try {
    store.rememberBlobLocation(digest(7), "r", "before");
    // Fill the file system: one big file, then small ones for the last blocks.
    Bun.spawnSync(["dd", "if=/dev/zero", `of=${join(fs, "filler")}`, "bs=64k"], { stderr: "ignore" });
    for (let i = 0; ; i++) {
      try {
        writeFileSync(join(fs, `filler-${i}`), new Uint8Array(4096));
      } catch {
        break;
      }
    }
    // Each hint appends pages to the write-ahead log; once it needs a block the file system lacks, hints are skipped.
    const results: boolean[] = [];
    for (let i = 0; i < 3000 && !results.includes(false); i++) results.push(store.rememberBlobLocation(digest(100 + i), "r", `repo-${i}`));
    expect(results).toContain(false);
    expect(store.rememberLayerBlob(digest(9), layerBlob(digest(8)))).toBe(false);
    expect(store.blobRepositories(digest(7), "r")).toEqual(["before"]);
    rmSync(join(fs, "filler"));
    expect(store.rememberBlobLocation(digest(7), "r", "after")).toBe(true);
    expect(store.blobRepositories(digest(7), "r")).toEqual(["after", "before"]);
  } finally {
    store.close();
    stores.pop();
    expect(Bun.spawnSync(["umount", fs]).exitCode).toBe(0);
  }
});
