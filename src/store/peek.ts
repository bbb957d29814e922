/**
 * A look at a store's layers, images and containers that changes nothing: no directory or
 * database is created, no driver started, no crashed work recovered. Shell completion uses it,
 * so pressing TAB never creates a store or waits for a writer.
 */
import { ReadOnlyStores, openCatalogReadOnly } from "./read-only-stores.ts";
import type { StoreOptions } from "./options.ts";
import type { ObjectKind } from "./records.ts";

/** A stored object as a reference can name it. */
export interface ObjectReference {
  kind: ObjectKind;
  id: string;
  names: string[];
}

/** The objects of the given kinds in the store (and its read-only image stores); none when there is no store yet. */
export function peekReferences(options: StoreOptions, kinds: ObjectKind[]): ObjectReference[] {
  const catalog = openCatalogReadOnly(options.graphRoot, `opening database ${options.graphRoot}`);
  if (!catalog) return [];
  try {
    const stores = new ReadOnlyStores(catalog, options.driverOptions);
    const found: ObjectReference[] = [];
    const add = (kind: ObjectKind, records: Array<{ id: string; names: string[] }>) => {
      for (const record of records) found.push({ kind, id: record.id, names: record.names });
    };
    if (kinds.includes("layer")) add("layer", stores.listEverywhere((c) => c.listLayers()));
    if (kinds.includes("image")) add("image", stores.listEverywhere((c) => c.listImages()));
    if (kinds.includes("container")) add("container", catalog.listContainers());
    return found;
  } finally {
    catalog.db.close();
  }
}
