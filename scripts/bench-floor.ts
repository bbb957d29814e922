/**
 * The floor of the quick commands in scripts/bench.ts: a Bun program, compiled like the binary,
 * that only opens a store's database (as an existing file, with the busy timeout every writer
 * sets), reads its schema version and prints it. Whatever oci-storage takes beyond this is its own.
 *
 * Usage: floor DATABASE
 */
import { Database } from "bun:sqlite";

const db = new Database(process.argv[2]!, { strict: true });
db.run("PRAGMA busy_timeout = 60000");
const { user_version } = db.query("PRAGMA user_version").get() as { user_version: number };
console.log(user_version);
db.close();
