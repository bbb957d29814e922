/**
 * Where registry blobs were seen, kept in the store's database so that a later push can skip or
 * mount them instead of uploading (the role of containers/image's blob-info cache,
 * docs/decisions/0005-registry-transport.md). Two tables:
 *   - blob_locations: a blob digest → the registry repositories known to hold it;
 *   - layer_blobs: a layer's uncompressed digest (diffID) → compressed blobs known to hold it.
 * Everything here is a hint, checked against the registry before it is used. So a write is one
 * short transaction of its own, and a store that cannot be written (read-only, full, busy) only
 * loses the hint: the write is skipped without an error. Each table keeps the most recently
 * seen MAX_ENTRIES rows.
 */
import type { Database } from "bun:sqlite";
import { asStorageError } from "../errors.ts";
import type { CatalogParts } from "./parts.ts";

/** Rows kept per table; the least recently seen go first. */
export const MAX_ENTRIES = 5000;

/** A compressed blob known to hold a layer. */
export interface LayerBlob {
  digest: string;
  mediaType: string;
  size: number;
}

/** A compressed blob known to hold a layer, with the repositories of one registry known to hold it. */
export interface KnownLayerBlob extends LayerBlob {
  /** Repository paths at the registry asked about, most recently seen first. */
  repositories: string[];
}

function db(parts: CatalogParts): Database {
  return parts.catalog.db;
}

/** Milliseconds since the epoch, strictly increasing within this process (so rows of one run keep their order). */
let lastSeen = 0;
function seenNow(): number {
  lastSeen = Math.max(Date.now(), lastSeen + 1);
  return lastSeen;
}

/** Runs a hint write in its own transaction; a store that refuses it (read-only, full, locked) is told nothing. Returns whether it was written. */
function writeHint(parts: CatalogParts, write: (db: Database) => void): boolean {
  try {
    parts.tx(() => write(db(parts)));
    return true;
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (asStorageError(error) !== undefined || (typeof code === "string" && code.startsWith("SQLITE_"))) return false;
    throw error;
  }
}

/** Drops the oldest rows of a table beyond MAX_ENTRIES. */
function trim(db: Database, table: "blob_locations" | "layer_blobs"): void {
  db.query(`DELETE FROM ${table} WHERE seen < (SELECT seen FROM ${table} ORDER BY seen DESC LIMIT 1 OFFSET ${MAX_ENTRIES - 1})`).run();
}

/** Remembers that registry/repository holds the blob. Returns whether the hint was written. */
export function rememberBlobLocation(parts: CatalogParts, digest: string, registry: string, repository: string): boolean {
  return writeHint(parts, (db) => {
    db.query("INSERT INTO blob_locations (digest, registry, repository, seen) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET seen = excluded.seen").run(digest, registry, repository, seenNow());
    trim(db, "blob_locations");
  });
}

/** Remembers that the compressed blob holds the layer with this diffID. Returns whether the hint was written. */
export function rememberLayerBlob(parts: CatalogParts, diffId: string, blob: LayerBlob): boolean {
  if (blob.digest === diffId) return false;
  return writeHint(parts, (db) => {
    db.query("INSERT INTO layer_blobs (diff_id, digest, media_type, size, seen) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET media_type = excluded.media_type, size = excluded.size, seen = excluded.seen").run(
      diffId,
      blob.digest,
      blob.mediaType,
      blob.size,
      seenNow(),
    );
    trim(db, "layer_blobs");
  });
}

/** The repositories of `registry` known to hold the blob, most recently seen first. */
export function blobRepositories(parts: CatalogParts, digest: string, registry: string): string[] {
  const rows = db(parts).query("SELECT repository FROM blob_locations WHERE digest = ? AND registry = ? ORDER BY seen DESC").values(digest, registry);
  return rows.map((row) => row[0] as string);
}

/** The compressed blobs known to hold the layer with this diffID, most recently seen first, each with the repositories of `registry` holding it. */
export function knownLayerBlobs(parts: CatalogParts, diffId: string, registry: string): KnownLayerBlob[] {
  const rows = db(parts).query("SELECT digest, media_type, size FROM layer_blobs WHERE diff_id = ? ORDER BY seen DESC").values(diffId);
  return rows.map(([digest, mediaType, size]) => ({
    digest: digest as string,
    mediaType: mediaType as string,
    size: size as number,
    repositories: blobRepositories(parts, digest as string, registry),
  }));
}
