/**
 * Read-only image stores (`<driver>.imagestore=` / `.additionalimagestore=`): other stores'
 * catalogs, opened read-only on first use. Their layers and images are visible beside the
 * writable store's, tagged with their root, and never written.
 */
import { InitError, sqliteFailure } from "../errors.ts";
import { imageStorePaths } from "../drivers/options.ts";
import { Catalog } from "./catalog.ts";
import { openUntouched } from "./read-only-database.ts";
import { nodeFs } from "../sys/node-fs.ts";

export { imageStorePaths };


/** Another store's catalog, opened read-only. */
interface ReadOnlyStore {
  root: string;
  catalog: Catalog;
}

/** The catalog of the store at root, opened so that nothing is written beside it (openUntouched); undefined when it has no database. */
export function openCatalogReadOnly(root: string, context: string): Catalog | undefined {
  const path = `${root}/oci-storage.db`;
  if (!nodeFs().existsSync(path)) return undefined;
  try {
    return new Catalog(openUntouched(path));
  } catch (e) {
    throw sqliteFailure(e, context) ?? e;
  }
}

/** A record that may come from a read-only store (then tagged with that store's root). */
export type Tagged<T> = T & { fromReadOnlyStore?: string };

/** The writable catalog and the read-only stores behind it, searched in that order. */
export class ReadOnlyStores {
  private opened: ReadOnlyStore[] | undefined;

  constructor(
    private readonly writable: Catalog,
    private readonly driverOptions: string[],
  ) {}

  /** The read-only image stores, opened on first use. */
  private get stores(): ReadOnlyStore[] {
    if (this.opened) return this.opened;
    this.opened = [];
    for (const root of imageStorePaths(this.driverOptions)) {
      if (!nodeFs().existsSync(root)) throw new InitError(`image store ${root}: no such directory`);
      const catalog = openCatalogReadOnly(root, `image store ${root}`);
      if (catalog) this.opened.push({ root, catalog });
    }
    return this.opened;
  }

  /** The catalog a record came from. */
  catalogOf(record: { fromReadOnlyStore?: string }): Catalog {
    if (record.fromReadOnlyStore === undefined) return this.writable;
    return this.stores.find((s) => s.root === record.fromReadOnlyStore)!.catalog;
  }

  /** The first record lookup finds in the writable catalog, else in a read-only store (marked as that store's). */
  firstFound<T extends object>(lookup: (catalog: Catalog) => T | undefined): Tagged<T> | undefined {
    const own = lookup(this.writable);
    if (own) return own;
    for (const ro of this.stores) {
      const found = lookup(ro.catalog);
      if (found) return { ...found, fromReadOnlyStore: ro.root };
    }
    return undefined;
  }

  /** A text listing of the writable store followed by each read-only store's. */
  textEverywhere(list: (catalog: Catalog) => string): string {
    return list(this.writable) + this.stores.map((ro) => list(ro.catalog)).join("");
  }

  /** A listing of the writable store, then of each read-only store with its records tagged by that store's root. */
  listEverywhere<T extends { fromReadOnlyStore?: string }>(list: (catalog: Catalog) => T[]): T[] {
    return [...list(this.writable), ...this.stores.flatMap((ro) => list(ro.catalog).map((record) => ({ ...record, fromReadOnlyStore: ro.root })))];
  }
}
