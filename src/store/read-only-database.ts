/**
 * Opening a store's database when it cannot be written: the file system is full, or mounted
 * read-only, or the directory is not ours to write. Reading must still work then
 * (docs/robustness.md, "Full disks and read-only roots").
 *
 * A WAL database normally needs its `-shm` index file (32 KiB) and its `-wal` file before the
 * first read. Without space, SQLite can neither create nor extend the index; on a read-only
 * file system it cannot create either file. Two ways around it, tried in this order:
 *
 *   1. exclusive: the file opened for writing with `locking_mode=EXCLUSIVE`, which keeps the
 *      WAL index in memory instead of the -shm file. It reads everything, the WAL included,
 *      and can still write once space is freed (a delete uses the space reserve for its first
 *      rows). The exclusive lock keeps other processes waiting until this one ends.
 *   2. immutable: `immutable=1`, no locks, no -shm, no -wal. Correct only when the WAL holds no
 *      committed frames, so it is used only when the -wal file is missing or empty: on a
 *      read-only file system nobody can add any.
 *
 * Read-only image stores are always opened so that nothing is written beside them (openUntouched).
 */
import { Database, constants as sqlite } from "bun:sqlite";
import { SystemError, ioError } from "../errors.ts";
import { nodeFs } from "../sys/node-fs.ts";


/** SQLite codes (extended ones included) and errno names that mean the file system would not take a write. */
const NO_SPACE_CODES = ["SQLITE_FULL", "SQLITE_IOERR_SHMSIZE", "ENOSPC", "EDQUOT"];
const READ_ONLY_CODES = /^(SQLITE_READONLY|SQLITE_CANTOPEN|SQLITE_IOERR_SHMOPEN|SQLITE_IOERR_SHMMAP|EROFS$|EACCES$|EPERM$)/;

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : "";
}

/** True when a failure says the file system has no room for a write (SQLite's SQLITE_FULL, a -shm that cannot grow, ENOSPC, EDQUOT). */
export function isOutOfSpace(error: unknown): boolean {
  return NO_SPACE_CODES.includes(codeOf(error));
}

/** True when a failure to open or write the database means it can only be read here: no space, or a read-only or unwritable place. */
export function isWriteRefused(error: unknown): boolean {
  return isOutOfSpace(error) || READ_ONLY_CODES.test(codeOf(error));
}

/** Why the database at path could not be opened for writing, worded as a file operation: "opening database P for writing: <reason>". */
export function writeRefusal(path: string, error: unknown): SystemError {
  const op = "opening database";
  const target = `${path} for writing`;
  if (isOutOfSpace(error)) return ioError(op, target, { code: codeOf(error) === "EDQUOT" ? "EDQUOT" : "ENOSPC" });
  // The file opened for writing says what a failing disk says (EIO) where access(2) would not.
  try {
    nodeFs().closeSync(nodeFs().openSync(path, "r+"));
    nodeFs().accessSync(path.slice(0, path.lastIndexOf("/")) || "/", nodeFs().constants.W_OK);
  } catch (why) {
    return ioError(op, target, why);
  }
  return ioError(op, target, { code: "EROFS" });
}

/**
 * Opens the database for reading when opening it the normal way failed with a write refusal
 * (cause): exclusively if the file can still be opened for writing, else immutable if the WAL
 * holds nothing. Throws cause when neither can read it.
 */
export function openWithoutShm(path: string, busyTimeoutMs: number, cause: SystemError): { db: Database; writable: boolean } {
  let db: Database | undefined;
  try {
    db = new Database(path, { readwrite: true, strict: true });
    db.run(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
    db.run("PRAGMA locking_mode = EXCLUSIVE");
    // The first read takes the lock; a read-only file descriptor cannot take it (SQLITE_IOERR_LOCK).
    db.query("PRAGMA user_version").get();
    db.run("PRAGMA synchronous = NORMAL");
    db.run("PRAGMA foreign_keys = ON");
    return { db, writable: true };
  } catch {
    db?.close();
  }
  return { db: openImmutable(path, cause), writable: false };
}

/**
 * Opens another store's database so that nothing beside it is written: as an immutable file
 * (no -shm or -wal file made, no lock taken; a plain read-only open of a WAL database makes
 * both, and cannot on a read-only file system), unless it has a non-empty -wal — left by a
 * writer that runs or died — whose commits only a plain read-only open sees.
 */
export function openUntouched(path: string): Database {
  if (walHasFrames(path)) return new Database(path, { readonly: true, strict: true });
  return new Database(immutableUri(path), sqlite.SQLITE_OPEN_READONLY | sqlite.SQLITE_OPEN_URI);
}

function immutableUri(path: string): string {
  return `file:${path.replace(/[%?#]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`)}?immutable=1`;
}

/** The database opened with immutable=1, when its WAL holds nothing that would be missed; else cause is thrown. */
function openImmutable(path: string, cause: unknown): Database {
  if (walHasFrames(path)) throw cause;
  const db = new Database(immutableUri(path), sqlite.SQLITE_OPEN_READONLY | sqlite.SQLITE_OPEN_URI);
  try {
    db.query("PRAGMA user_version").get();
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

function walHasFrames(path: string): boolean {
  try {
    return nodeFs().statSync(`${path}-wal`).size > 0;
  } catch {
    return false;
  }
}
