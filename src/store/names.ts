/** Names and metadata of layers, images and containers: unique per kind, resolvable wherever an ID is. */
import { LayerUnknownError, NameInUseError, NotAnyObjectError } from "../errors.ts";
import { unique } from "../util/lists.ts";
import { type Located, findAny } from "./lookup.ts";
import type { CatalogParts } from "./parts.ts";
import type { ObjectKind } from "./records.ts";

/** Fails when a name is held by another object of the kind (creation never steals names); call inside a transaction. */
export function checkNamesFree(parts: CatalogParts, kind: ObjectKind, names: string[]): void {
  for (const name of names) {
    const owner = parts.catalog.nameOwner(kind, name);
    if (owner === undefined) continue;
    if (kind === "image") throw new NameInUseError(`image name "${name}" is already associated with image "${owner}": that name is already in use`);
    if (kind === "container") {
      throw new NameInUseError(
        `the container name "${name}" is already in use by ${owner}. You have to remove that container to be able to reuse that name: that name is already in use`,
      );
    }
    throw new NameInUseError();
  }
}

/**
 * The object a names command acts on. As in containers-storage 1.43, a reference resolves to an
 * ID first (layers, then images, then containers; read-only stores after the writable one), and
 * the writable store's record with that ID comes before a read-only store's: an image of a
 * read-only store that add-names has given a writable record is named through that record.
 */
function namesTarget(parts: CatalogParts, ref: string): Located {
  const found = findAny(parts, ref);
  if (!found) throw new LayerUnknownError();
  if (found.readOnly && found.kind === "image" && parts.catalog.imageExists(found.id)) return { ...found, catalog: parts.catalog, readOnly: false };
  return found;
}

export function namesOf(parts: CatalogParts, ref: string): string[] {
  const found = namesTarget(parts, ref);
  return found.catalog.namesOf(found.kind, found.id);
}

/**
 * Adds names (or replaces them all) on the object a reference names, as containers-storage 1.43
 * does: adding sets the current names followed by the new ones, names move from other objects
 * of the kind, and an image's names history gets every name set, last first. An image only a
 * read-only store has gets a writable record instead (recordReadOnlyImage); other objects of
 * read-only stores cannot be named.
 */
export function changeNames(parts: CatalogParts, ref: string, names: string[], mode: "add" | "set"): string[] {
  return parts.tx(() => {
    const found = namesTarget(parts, ref);
    const next = unique(mode === "add" ? [...found.catalog.namesOf(found.kind, found.id), ...names] : names);
    if (found.readOnly) {
      if (found.kind !== "image") throw new LayerUnknownError();
      // 1.43 takes the first name for the read-only image's own and leaves it out, when there are several.
      return recordReadOnlyImage(parts, found.id, next.length > 1 ? next.slice(1) : next);
    }
    parts.catalog.setNames(found.kind, found.id, next);
    if (found.kind === "image") {
      const history = parts.catalog.getImage(found.id)!.namesHistory;
      parts.catalog.setNamesHistory(found.id, unique([...[...next].reverse(), ...history]));
    }
    return next;
  });
}

/**
 * Names an image that only a read-only store has, as containers-storage 1.43 does: a record of
 * it goes into the writable store — same ID, top layer, metadata, digest and creation time; no
 * data items (reads of those fall through to the read-only store), no names history — holding
 * the names given, which no other writable image may hold. The read-only store is not written.
 * Call inside a transaction.
 */
function recordReadOnlyImage(parts: CatalogParts, id: string, names: string[]): string[] {
  const image = parts.roots.firstFound((c) => c.getImage(id))!;
  checkNamesFree(parts, "image", names);
  parts.catalog.insertImage({ ...image, names, namesHistory: [], mappedLayers: [], bigData: [], flags: {} });
  return names;
}

export function metadataOf(parts: CatalogParts, ref: string): string | undefined {
  const found = findAny(parts, ref);
  return found ? found.catalog.getMetadata(found.kind, found.id) : undefined;
}

export function setMetadata(parts: CatalogParts, ref: string, metadata: string): void {
  parts.tx(() => {
    const found = findAny(parts, ref);
    if (!found || found.readOnly) throw new NotAnyObjectError();
    parts.catalog.setMetadata(found.kind, found.id, metadata);
  });
}
