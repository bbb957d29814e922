/**
 * The internal interfaces the parts of the Store share (layer lifecycle, recovery, check,
 * images, containers, data items, names, mounts). The Store front (store.ts) builds them and
 * hands them to each part; no part reaches the Store itself, so the parts import one another
 * one way only and never store.ts.
 *
 * Two levels, so that a command pays only for what it uses: CatalogParts (the records) are
 * there as soon as the database is open; StoreParts add layer content (the driver, started,
 * and the Mounter), whose modules are loaded by the first command that needs them.
 */
import type { Database } from "bun:sqlite";
import type { Driver } from "../drivers/driver.ts";
import type { Mounter } from "../drivers/mounter.ts";
import { ioError } from "../errors.ts";
import type { Catalog } from "./catalog.ts";
import { immediate } from "./database.ts";
import type { StoreOptions } from "./options.ts";
import { ReadOnlyStores } from "./read-only-stores.ts";

/** What every part gets: the store's options and records, and its write transactions. */
export interface CatalogParts {
  readonly options: StoreOptions;
  /** The writable store's records. */
  readonly catalog: Catalog;
  /** The read-only image stores, and lookups that span them and the writable catalog. */
  readonly roots: ReadOnlyStores;
  /** Runs fn in one `BEGIN IMMEDIATE` transaction of the writable store. */
  tx<T>(fn: () => T): T;
}

/** CatalogParts and layer content: what parts that make, remove, compare or mount layers get. */
export interface StoreParts extends CatalogParts {
  /** Layer content. */
  readonly driver: Driver;
  /** Mount counts in the run root; the only thing that mounts and unmounts. */
  readonly mounter: Mounter;
  /** This process's liveness token, stamped on rows it is creating or deleting (read from /proc on first use). */
  readonly token: string;
}

/** The parts of a store whose database and catalog are open. */
export function catalogParts(options: StoreOptions, db: Database, catalog: Catalog): CatalogParts {
  return { options, catalog, roots: new ReadOnlyStores(catalog, options.driverOptions), tx: (fn) => immediate(db, fn) };
}

/**
 * Adds layer content to a store's parts: loads the driver's module and the Mounter's, makes the
 * run root, and starts the driver (driverName: the store's driver, already chosen).
 */
export async function withContent(base: CatalogParts, driverName: string): Promise<StoreParts> {
  const [{ createDriver }, { Mounter }, { processToken }, { mkdirSync }] = await Promise.all([
    import("../drivers/index.ts"),
    import("../drivers/mounter.ts"),
    import("../sys/liveness.ts"),
    import("node:fs"),
  ]);
  const { graphRoot, runRoot, driverOptions } = base.options;
  try {
    mkdirSync(runRoot, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError("creating", runRoot, e);
  }
  const mounter = new Mounter(runRoot);
  const driver = await createDriver(driverName, { graphRoot, runRoot, options: driverOptions, mounter });
  await driver.init();
  return {
    ...base,
    driver,
    mounter,
    get token() {
      return processToken();
    },
  };
}
