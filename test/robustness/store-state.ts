/** Looks at a test store from outside (its database, directories and the kernel mount table) for leftovers. */
import { Database } from "bun:sqlite";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TestStore } from "../helpers/cli.ts";

const LAYER_ID = /^[0-9a-f]{64}$/;

/** Rows a finished store must not have: unfinished layers, and names or data items of objects that are gone. */
export function databaseLeftovers(store: TestStore): string[] {
  const db = new Database(join(store.graph, "oci-storage.db"), { readonly: true });
  try {
    const problems: string[] = [];
    for (const row of db.query("SELECT id, state FROM layers WHERE state != 'complete'").all() as Array<{ id: string; state: string }>) {
      problems.push(`layer ${row.id} left in state ${row.state}`);
    }
    for (const [kind, table] of [
      ["layer", "layers"],
      ["image", "images"],
      ["container", "containers"],
    ]) {
      for (const what of ["names", "big_data"]) {
        const rows = db.query(`SELECT owner FROM ${what} WHERE kind = ? AND owner NOT IN (SELECT id FROM ${table})`).all(kind!) as Array<{ owner: string }>;
        for (const row of rows) problems.push(`${what} row of missing ${kind} ${row.owner}`);
      }
    }
    for (const row of db.query("SELECT id FROM containers WHERE layer NOT IN (SELECT id FROM layers)").all() as Array<{ id: string }>) {
      problems.push(`container ${row.id} has no layer`);
    }
    for (const row of db.query("SELECT id FROM containers WHERE image != '' AND image NOT IN (SELECT id FROM images)").all() as Array<{ id: string }>) {
      problems.push(`container ${row.id} refers to a missing image`);
    }
    for (const row of db.query("SELECT id FROM images WHERE top_layer != '' AND top_layer NOT IN (SELECT id FROM layers)").all() as Array<{ id: string }>) {
      problems.push(`image ${row.id} refers to a missing top layer`);
    }
    for (const row of db.query("SELECT id FROM layers WHERE parent IS NOT NULL AND parent NOT IN (SELECT id FROM layers)").all() as Array<{ id: string }>) {
      problems.push(`layer ${row.id} refers to a missing parent`);
    }
    return problems;
  } finally {
    db.close();
  }
}

/** Names of layer directories (64 hex digits) at most two levels below the driver's home. */
function layerDirectories(home: string): Set<string> {
  const found = new Set<string>();
  if (!existsSync(home)) return found;
  for (const entry of readdirSync(home, { withFileTypes: true })) {
    if (LAYER_ID.test(entry.name)) found.add(entry.name);
    else if (entry.isDirectory()) for (const inner of readdirSync(join(home, entry.name))) if (LAYER_ID.test(inner)) found.add(inner);
  }
  return found;
}

/** Directories and links on disk that no layer or container owns, and layers without a directory. */
export function directoryLeftovers(store: TestStore, layers: Set<string>, containers: Set<string>): string[] {
  const problems: string[] = [];
  const home = join(store.graph, store.driver);
  const dirs = layerDirectories(home);
  for (const id of dirs) if (!layers.has(id)) problems.push(`orphan layer directory ${id} under ${home}`);
  for (const id of layers) if (!dirs.has(id)) problems.push(`layer ${id} has no directory under ${home}`);
  const links = join(home, "l");
  if (existsSync(links)) {
    for (const name of readdirSync(links)) if (!existsSync(join(links, name))) problems.push(`dangling link ${join(links, name)}`);
  }
  for (const base of [store.graph, store.run]) {
    const dir = join(base, `${store.driver}-containers`);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) if (!containers.has(name)) problems.push(`orphan container directory ${join(dir, name)}`);
  }
  return problems;
}

/** Mount points below a directory in this mount namespace. */
export function kernelMountsBelow(dir: string): string[] {
  const points: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const field = line.split(" ")[4];
    if (!field) continue;
    const point = field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
    if (point === dir || point.startsWith(`${dir}/`)) points.push(point);
  }
  return points;
}
