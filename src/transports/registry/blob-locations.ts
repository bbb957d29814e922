/**
 * Where blobs were seen, kept between runs so that push can skip or mount them (the role of
 * containers/image's blob-info cache, docs/decisions/0005-registry-transport.md):
 *   - locations: blob digest → the registry repositories known to hold it (pulled from there,
 *     or pushed there);
 *   - pairs: a layer's uncompressed digest (diffID) → the compressed blobs known to hold it.
 * A JSON file beside the store's database, rewritten whole (atomically) at the end of a pull
 * or push. It is only a hint: everything it says is checked against the registry (HEAD, or a
 * mount the registry may refuse), and a lost update costs an upload, never correctness.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Descriptor } from "../types.ts";

/** Entries kept per table; the least recently used go first. */
const MAX_ENTRIES = 5000;

interface CacheFile {
  version: 1;
  /** digest → { "registry/repository": last seen (ms) } */
  locations: Record<string, Record<string, number>>;
  /** diffID → { compressed digest: { mediaType, size, seen } } */
  pairs: Record<string, Record<string, { mediaType: string; size: number; seen: number }>>;
}

/** A compressed blob known to hold a layer, and where it was seen. */
export interface KnownBlob {
  digest: string;
  mediaType: string;
  size: number;
  /** "repository" paths at the asked registry. */
  repositories: string[];
}

export class BlobLocations {
  private data: CacheFile = { version: 1, locations: {}, pairs: {} };
  private dirty = false;

  constructor(private readonly path: string) {
    try {
      const parsed = JSON.parse(readFileSync(path, "utf8")) as CacheFile;
      if (parsed && parsed.version === 1 && typeof parsed.locations === "object" && typeof parsed.pairs === "object") this.data = parsed;
    } catch {
      // No cache yet, or an unreadable one: start empty.
    }
  }

  /** A blob was read from or written to registry/repository. */
  seen(digest: string, registry: string, repository: string): void {
    (this.data.locations[digest] ??= {})[`${registry}/${repository}`] = Date.now();
    this.dirty = true;
  }

  /** A layer with this diffID is held by this compressed blob. */
  pair(diffId: string, blob: Pick<Descriptor, "digest" | "mediaType" | "size">): void {
    if (blob.digest === diffId) return;
    (this.data.pairs[diffId] ??= {})[blob.digest] = { mediaType: blob.mediaType, size: blob.size, seen: Date.now() };
    this.dirty = true;
  }

  /** The compressed blobs known for a diffID, with the repositories of `registry` that hold each. */
  candidates(diffId: string, registry: string): KnownBlob[] {
    const prefix = `${registry}/`;
    return Object.entries(this.data.pairs[diffId] ?? {})
      .sort((a, b) => b[1].seen - a[1].seen)
      .map(([digest, info]) => ({
        digest,
        mediaType: info.mediaType,
        size: info.size,
        repositories: Object.entries(this.data.locations[digest] ?? {})
          .filter(([where]) => where.startsWith(prefix))
          .sort((a, b) => b[1] - a[1])
          .map(([where]) => where.slice(prefix.length)),
      }));
  }

  /** The repositories of `registry` known to hold a blob. */
  repositoriesOf(digest: string, registry: string): string[] {
    const prefix = `${registry}/`;
    return Object.keys(this.data.locations[digest] ?? {})
      .filter((where) => where.startsWith(prefix))
      .map((where) => where.slice(prefix.length));
  }

  /** Writes the cache if it changed; failures are ignored (it is only a hint). */
  save(): void {
    if (!this.dirty) return;
    trim(this.data.locations, (entry) => Math.max(...Object.values(entry)));
    trim(this.data.pairs, (entry) => Math.max(...Object.values(entry).map((info) => info.seen)));
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const temporary = `${this.path}.tmp-${process.pid}`;
      writeFileSync(temporary, JSON.stringify(this.data));
      renameSync(temporary, this.path);
      this.dirty = false;
    } catch {
      // A cache that cannot be written only costs uploads later.
    }
  }
}

function trim<T>(table: Record<string, T>, lastSeen: (entry: T) => number): void {
  const keys = Object.keys(table);
  if (keys.length <= MAX_ENTRIES) return;
  keys.sort((a, b) => lastSeen(table[b]!) - lastSeen(table[a]!));
  for (const key of keys.slice(MAX_ENTRIES)) delete table[key];
}
