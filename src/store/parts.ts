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
import { createDriver } from "../drivers/index.ts";
import type { Mounter } from "../drivers/mounter.ts";
import { SystemError, ioError, sqliteFailure } from "../errors.ts";
import type { Catalog } from "./catalog.ts";
import { type StoreDatabase, immediate } from "./database.ts";
import type { StoreOptions } from "./options.ts";
import { pathExists } from "../sys/path-exists.ts";
import { isOutOfSpace } from "./read-only-database.ts";
import { ReadOnlyStores } from "./read-only-stores.ts";
import { SpaceReserve } from "./space-reserve.ts";
import { nodeFs } from "../sys/node-fs.ts";

/** What every part gets: the store's options and records, and its write transactions. */
export interface CatalogParts {
  readonly options: StoreOptions;
  /** The writable store's records. */
  readonly catalog: Catalog;
  /** The read-only image stores, and lookups that span them and the writable catalog. */
  readonly roots: ReadOnlyStores;
  /**
   * Runs fn in one `BEGIN IMMEDIATE` transaction of the writable store. A full disk or a
   * read-only store fails it with an IoError naming the database ("writing database P: no
   * space left on device").
   */
  tx<T>(fn: () => T): T;
  /**
   * tx for work that frees space (deleting, recovering, repairing): when the disk is too full
   * for its rows, the space reserve is given up and fn runs once more (space-reserve.ts).
   */
  freeingTx<T>(fn: () => T): T;
  /**
   * Runs fn holding the store's write lock, so that no deletion starts meanwhile (writing
   * nothing itself); on a read-only store, which nobody can change, fn just runs.
   */
  locked<T>(fn: () => T): T;
  /** Why the store can only be read (its file system is read-only), or undefined when it can be written. */
  readonly readOnly: SystemError | undefined;
  /** The graph root's space reserve. */
  readonly reserve: SpaceReserve;
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

/** The parts of a store whose database (at path) and catalog are open. */
export function catalogParts(options: StoreOptions, database: StoreDatabase & { path: string }, catalog: Catalog): CatalogParts {
  const reserve = new SpaceReserve(options.graphRoot);
  const tx = <T>(fn: () => T): T => transaction(database, fn);
  return {
    options,
    catalog,
    roots: new ReadOnlyStores(catalog, options.driverOptions),
    tx,
    freeingTx: (fn) => {
      reserve.noteFreeing();
      try {
        return tx(fn);
      } catch (e) {
        if (!isOutOfSpace(e) || !reserve.release()) throw e;
        return tx(fn);
      }
    },
    locked: (fn) => (database.readOnly ? fn() : tx(fn)),
    readOnly: database.readOnly,
    reserve,
  };
}

/** One write transaction; SQLite's refusals (full, read-only, I/O) become IoErrors naming the database. */
function transaction<T>({ db, path, readOnly }: StoreDatabase & { path: string }, fn: () => T): T {
  if (readOnly) throw new SystemError(readOnly.message, readOnly.code);
  try {
    return immediate(db, fn);
  } catch (e) {
    // The frames of a transaction that ran out of space still fill the -wal file: give them back.
    if (isOutOfSpace(e)) truncateWal(db);
    throw sqliteFailure(e, `writing database ${path}`) ?? e;
  }
}

function truncateWal(db: Database): void {
  try {
    db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch {
    // Another process reading keeps the WAL; its last close truncates it.
  }
}

/**
 * Adds layer content to a store's parts: loads the driver's module and the Mounter's, makes the
 * run root, and starts the driver (driverName: the store's driver, already chosen).
 */
export async function withContent(base: CatalogParts, driverName: string): Promise<StoreParts> {
  const [{ Mounter }, { processToken }] = await Promise.all([
    import("../drivers/mounter.ts"),
    import("../sys/liveness.ts"),
  ]);
  const { graphRoot, runRoot, driverOptions } = base.options;
  // node:fs only when the run root is new: most commands find it made.
  if (!pathExists(runRoot)) {
    try {
      nodeFs().mkdirSync(runRoot, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw ioError("creating", runRoot, e);
    }
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
