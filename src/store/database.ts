/**
 * The store's SQLite database: one file per graph root, WAL mode, a generous busy timeout so
 * that concurrent processes wait instead of failing, foreign keys on, and forward-only
 * migrations numbered by PRAGMA user_version. Every mutation runs in BEGIN IMMEDIATE.
 */
import { Database } from "bun:sqlite";
import { NotSupportedError, StorageError, SystemError, ioError, sqliteFailure } from "../errors.ts";
import { immediateTransaction } from "../util/sqlite-transaction.ts";
import { isWriteRefused, openWithoutShm, writeRefusal } from "./read-only-database.ts";
import { markIfSmallBlocks, walIndexMayFault } from "./wal-index-room.ts";

/** How long a writer waits for another process's write transaction before giving up. */
const BUSY_TIMEOUT_MS = 60_000;

/**
 * Reads of the database's first bytes go through a memory map instead of a read(2) per page
 * (the catalog of a 1000-layer store, 1 MB, is read about 2 ms faster). Small, so that reading
 * big layout data never adds more than this to the memory in use.
 */
const MMAP_BYTES = 4 * 1024 * 1024;

/**
 * What every connection sets, in one round trip: the busy timeout; synchronous=NORMAL, which in
 * WAL mode is durable across application crashes and keeps the database consistent across power
 * loss (layer data itself is synced before it is marked complete); foreign keys; the memory map.
 */
const CONNECTION_PRAGMAS = `PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = ${MMAP_BYTES}`;

/** Each entry upgrades the schema by one version; never edit a released entry, append a new one. */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE store_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE layers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    parent TEXT,
    metadata TEXT NOT NULL DEFAULT '',
    mount_label TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    compressed_digest TEXT NOT NULL DEFAULT '',
    compressed_size INTEGER NOT NULL DEFAULT 0,
    diff_digest TEXT NOT NULL DEFAULT '',
    diff_size INTEGER NOT NULL DEFAULT 0,
    compression INTEGER NOT NULL DEFAULT 0,
    uidset TEXT NOT NULL DEFAULT '[]',
    gidset TEXT NOT NULL DEFAULT '[]',
    uidmap TEXT NOT NULL DEFAULT '[]',
    gidmap TEXT NOT NULL DEFAULT '[]',
    flags TEXT NOT NULL DEFAULT '{}',
    read_only INTEGER NOT NULL DEFAULT 0,
    has_layout INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('creating', 'complete', 'deleting')),
    owner TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX layers_parent ON layers(parent);
  CREATE TABLE images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    digest TEXT NOT NULL DEFAULT '',
    top_layer TEXT NOT NULL DEFAULT '',
    mapped_layers TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '',
    names_history TEXT NOT NULL DEFAULT '[]',
    created_ns INTEGER NOT NULL,
    flags TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX images_top_layer ON images(top_layer);
  CREATE TABLE containers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    image TEXT NOT NULL DEFAULT '',
    layer TEXT NOT NULL UNIQUE,
    metadata TEXT NOT NULL DEFAULT '',
    created_ns INTEGER NOT NULL,
    uidmap TEXT NOT NULL DEFAULT '[]',
    gidmap TEXT NOT NULL DEFAULT '[]',
    flags TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX containers_image ON containers(image);
  CREATE TABLE names (
    kind TEXT NOT NULL CHECK (kind IN ('layer', 'image', 'container')),
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
  ) WITHOUT ROWID;
  CREATE INDEX names_owner ON names(kind, owner, position);
  CREATE TABLE big_data (
    kind TEXT NOT NULL CHECK (kind IN ('layer', 'image', 'container')),
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    size INTEGER NOT NULL,
    digest TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (kind, owner, name)
  );
  CREATE TABLE layer_layout (
    layer TEXT NOT NULL,
    seq INTEGER NOT NULL,
    chunk BLOB NOT NULL,
    PRIMARY KEY (layer, seq)
  ) WITHOUT ROWID;
  `,
  // What recovery does with a 'creating' row whose writer died: remove a layer being made, or
  // reset a complete layer that an applydiff was changing to an empty layer (keeping its record).
  `ALTER TABLE layers ADD COLUMN on_interrupt TEXT NOT NULL DEFAULT 'remove' CHECK (on_interrupt IN ('remove', 'reset'));`,
  // Hints for registry pushes (blob-locations.ts): which repositories hold a blob, and which
  // compressed blobs hold a layer's uncompressed digest; \`seen\` in ms, for trimming.
  `
  CREATE TABLE blob_locations (
    digest TEXT NOT NULL,
    registry TEXT NOT NULL,
    repository TEXT NOT NULL,
    seen INTEGER NOT NULL,
    PRIMARY KEY (digest, registry, repository)
  ) WITHOUT ROWID;
  CREATE INDEX blob_locations_seen ON blob_locations(seen);
  CREATE TABLE layer_blobs (
    diff_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    seen INTEGER NOT NULL,
    PRIMARY KEY (diff_id, digest)
  ) WITHOUT ROWID;
  CREATE INDEX layer_blobs_seen ON layer_blobs(seen);
  `,
  // Recovery asks at every start whether any layer is unfinished: this index holds only those
  // rows (normally none), so the answer costs one lookup instead of a scan of every layer.
  `CREATE INDEX layers_unfinished ON layers(seq) WHERE state <> 'complete';`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** The store's database, and why it cannot be written when it cannot. */
export interface StoreDatabase {
  db: Database;
  /** Set when the database could only be opened for reading (a read-only file system): the refusal every write gets. */
  readOnly?: SystemError;
}

/**
 * Opens the database file `name` in directory dir, creating both on first use, and brings its
 * schema up to date; a failure names the path. An open costs two round trips: the connection's
 * PRAGMAs, and reading the schema version. WAL mode is kept in the file itself, so it is set
 * only when the schema is made or upgraded, not at every open. When the file system refuses
 * the writes that opening needs (no space for the WAL index, a read-only mount), the database
 * is opened for reading instead (read-only-database.ts, loaded only then).
 */
export async function openDatabase(dir: string, name: string): Promise<StoreDatabase> {
  const path = `${dir}/${name}`;
  if (walIndexMayFault(dir)) return openRefusingWrites(path, { code: "ENOSPC" });
  let db: Database | undefined;
  try {
    db = await openCreatingDirectory(dir, path);
    db.run(CONNECTION_PRAGMAS);
    const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (version !== MIGRATIONS.length) {
      migrate(db, path, version);
      markIfSmallBlocks(dir);
    }
    return { db };
  } catch (e) {
    db?.close();
    if (!(e instanceof StorageError)) {
      const { existsSync } = await import("node:fs");
      if (isWriteRefused(e) && existsSync(path)) return openRefusingWrites(path, e);
    }
    throw await databaseError(path, e);
  }
}

/**
 * The database opened without its -shm file (read-only-database.ts) when the file system refused,
 * or would fault on, the writes a normal open needs (cause); its schema must be current already.
 */
async function openRefusingWrites(path: string, cause: unknown): Promise<StoreDatabase> {
  const why = writeRefusal(path, cause);
  let opened: { db: Database; writable: boolean };
  try {
    opened = openWithoutShm(path, BUSY_TIMEOUT_MS, why);
  } catch (e) {
    throw await databaseError(path, e);
  }
  const { db, writable } = opened;
  try {
    const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (version > MIGRATIONS.length) throw newerSchema(path, version);
    if (version < MIGRATIONS.length) throw ioError("upgrading database", `${path} from schema version ${version}`, why);
  } catch (e) {
    db.close();
    throw e;
  }
  return writable ? { db } : { db, readOnly: why };
}

function newerSchema(path: string, version: number): NotSupportedError {
  return new NotSupportedError(`database ${path} has schema version ${version}, newer than this oci-storage understands (${MIGRATIONS.length}); upgrade oci-storage`);
}

/** The database at path, opened (created if missing); the directory is made only when opening fails for want of it. */
async function openCreatingDirectory(dir: string, path: string): Promise<Database> {
  try {
    return new Database(path, { create: true, strict: true });
  } catch (e) {
    if ((e as { code?: unknown }).code !== "SQLITE_CANTOPEN") throw e;
    // Made (or found made by another process meanwhile) and opened again; a directory that is
    // there but unusable fails the second open, and databaseError says why.
    const { mkdirSync } = await import("node:fs");
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (why) {
      throw ioError("creating", dir, why);
    }
    return new Database(path, { create: true, strict: true });
  }
}

/**
 * A failure while opening, naming the file; when SQLite only says it cannot open it, the file
 * (a failing disk, a permission) or else its directory (read-only, permission) tells why.
 */
async function databaseError(path: string, e: unknown): Promise<unknown> {
  if (e instanceof StorageError) return e;
  const context = `opening database ${path}`;
  if ((e as { code?: unknown }).code === "SQLITE_CANTOPEN") {
    const { accessSync, closeSync, constants, openSync } = await import("node:fs");
    try {
      closeSync(openSync(path, "r"));
    } catch (why) {
      if ((why as NodeJS.ErrnoException).code !== "ENOENT") return ioError("opening database", path, why);
    }
    try {
      accessSync(path.slice(0, path.lastIndexOf("/")) || "/", constants.W_OK);
    } catch (why) {
      return ioError("opening database", path, why);
    }
  }
  return sqliteFailure(e, context) ?? e;
}

/** Upgrades the schema from version current (0: a new file) to this build's, in WAL mode. */
function migrate(db: Database, path: string, current: number): void {
  if (current > MIGRATIONS.length) throw newerSchema(path, current);
  // Outside any transaction, as SQLite requires; a no-op on a file that is in WAL mode already.
  const mode = db.query("PRAGMA journal_mode = WAL").get() as { journal_mode: string } | null;
  if (mode?.journal_mode !== "wal") throw new SystemError(`database ${path}: cannot switch to WAL mode`);
  immediate(db, () => {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    const version = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
    for (let v = version; v < MIGRATIONS.length; v++) {
      db.run(MIGRATIONS[v]!);
      db.run(`PRAGMA user_version = ${v + 1}`);
    }
  });
}

/** Runs fn inside BEGIN IMMEDIATE ... COMMIT (rolled back on error) and returns its result. */
export function immediate<T>(db: Database, fn: () => T): T {
  return immediateTransaction(db, fn);
}
