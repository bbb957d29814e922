/**
 * One `BEGIN IMMEDIATE` ... `COMMIT` on a bun:sqlite connection, as two plain statements. Bun's
 * `db.transaction()` prepares nine statements on a connection's first use (~0.3M instructions,
 * as much as opening the database); a short command runs one transaction, so it pays that for
 * nothing. Inside a transaction already, Bun's savepoints do the nesting.
 */
import type { Database } from "bun:sqlite";

/** Runs fn inside BEGIN IMMEDIATE ... COMMIT (rolled back on error) and returns its result. */
export function immediateTransaction<T>(db: Database, fn: () => T): T {
  if (db.inTransaction) return db.transaction(fn).immediate();
  db.run("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.run("COMMIT");
    return result;
  } catch (e) {
    if (db.inTransaction) db.run("ROLLBACK");
    throw e;
  }
}
