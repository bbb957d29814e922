/**
 * Opening the store's database (src/store/database.ts): the graph root is made on first use,
 * the connection settings hold on every open (they are sent in one statement), WAL mode is in
 * the file from its creation on, and an older schema gains the index that lets every command
 * ask "is anything unfinished?" with one lookup instead of reading every layer.
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Catalog } from "../../src/store/catalog.ts";
import { SCHEMA_VERSION, openDatabase } from "../../src/store/database.ts";

const dirs: string[] = [];
const opened: Database[] = [];
afterEach(() => {
  for (const db of opened.splice(0)) db.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "oci-database-"));
  dirs.push(dir);
  return dir;
}

async function open(dir: string): Promise<Database> {
  const { db } = await openDatabase(dir, "oci-storage.db");
  opened.push(db);
  return db;
}

const pragma = (db: Database, name: string) => Object.values(db.query(`PRAGMA ${name}`).get() as Record<string, unknown>)[0];

test("the first open makes the graph root (0700) and a WAL database of the current schema", async () => {
  const graph = join(scratch(), "a", "graph");
  const db = await open(graph);
  expect(statSync(graph).mode & 0o777).toBe(0o700);
  expect(pragma(db, "journal_mode")).toBe("wal");
  expect(pragma(db, "user_version")).toBe(SCHEMA_VERSION);
});

test("every open sets the busy timeout, synchronous=NORMAL, foreign keys and the memory map; WAL mode stays in the file", async () => {
  const graph = scratch();
  (await open(graph)).close();
  opened.pop();
  const db = await open(graph);
  expect([pragma(db, "busy_timeout"), pragma(db, "synchronous"), pragma(db, "foreign_keys"), pragma(db, "mmap_size"), pragma(db, "journal_mode")]).toEqual([
    60000,
    1,
    1,
    4 * 1024 * 1024,
    "wal",
  ]);
});

test("a database of schema version 3 gains the index of unfinished layers, and the unfinished-layer check reads only that index", async () => {
  const graph = scratch();
  (await open(graph)).close();
  opened.pop();
  const old = new Database(join(graph, "oci-storage.db"));
  old.run("DROP INDEX layers_unfinished");
  old.run("PRAGMA user_version = 3");
  old.close();
  const db = await open(graph);
  expect(pragma(db, "user_version")).toBe(SCHEMA_VERSION);
  const plan = (db.query("EXPLAIN QUERY PLAN SELECT 1 FROM layers WHERE state <> 'complete' LIMIT 1").all() as Array<{ detail: string }>).map((row) => row.detail);
  expect(plan).toEqual(["SCAN layers USING INDEX layers_unfinished"]);
  const catalog = new Catalog(db);
  expect(catalog.hasUnfinishedLayers()).toBe(false);
  db.run("INSERT INTO layers (id, created_ns, state) VALUES ('x', 0, 'creating')");
  expect(catalog.hasUnfinishedLayers()).toBe(true);
  catalog.finalize();
});

test("a graph root that cannot be made fails naming it", async () => {
  const file = join(scratch(), "file");
  await Bun.write(file, "not a directory");
  await expect(openDatabase(join(file, "graph"), "oci-storage.db")).rejects.toThrow(`creating ${join(file, "graph")}: not a directory`);
});
