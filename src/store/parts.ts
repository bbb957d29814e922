/**
 * The one internal interface the parts of the Store share (layer lifecycle, recovery, check,
 * images, containers, data items, names, mounts). The Store front (store.ts) builds it once and
 * hands it to each part; no part reaches the Store itself, so the parts import one another
 * one way only and never store.ts.
 */
import type { Database } from "bun:sqlite";
import type { Driver } from "../drivers/driver.ts";
import type { Mounter } from "../drivers/mounter.ts";
import { processToken } from "../sys/liveness.ts";
import type { Catalog } from "./catalog.ts";
import { immediate } from "./database.ts";
import type { StoreOptions } from "./options.ts";
import { ReadOnlyStores } from "./read-only-stores.ts";

export interface StoreParts {
  readonly options: StoreOptions;
  /** The writable store's records. */
  readonly catalog: Catalog;
  /** Layer content. */
  readonly driver: Driver;
  /** Mount counts in the run root; the only thing that mounts and unmounts. */
  readonly mounter: Mounter;
  /** The read-only image stores, and lookups that span them and the writable catalog. */
  readonly roots: ReadOnlyStores;
  /** This process's liveness token, stamped on rows it is creating or deleting (read from /proc on first use). */
  readonly token: string;
  /** Runs fn in one `BEGIN IMMEDIATE` transaction of the writable store. */
  tx<T>(fn: () => T): T;
}

/** The parts of a store whose database, catalog, driver and mounter are open. */
export function storeParts(options: StoreOptions, db: Database, catalog: Catalog, driver: Driver, mounter: Mounter): StoreParts {
  const roots = new ReadOnlyStores(catalog, options.driverOptions);
  return {
    options,
    catalog,
    driver,
    mounter,
    roots,
    get token() {
      return processToken();
    },
    tx: (fn) => immediate(db, fn),
  };
}
