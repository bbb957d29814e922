/** Names and metadata of layers, images and containers: unique per kind, resolvable wherever an ID is. */
import { ImageUnknownError, LayerUnknownError, NameInUseError, NotAnyObjectError } from "../errors.ts";
import { unique } from "../util/lists.ts";
import { findAny } from "./lookup.ts";
import type { StoreParts } from "./parts.ts";
import type { ObjectKind } from "./records.ts";

/** Fails when a name is held by another object of the kind (creation never steals names); call inside a transaction. */
export function checkNamesFree(parts: StoreParts, kind: ObjectKind, names: string[]): void {
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

export function namesOf(parts: StoreParts, ref: string): string[] {
  const found = findAny(parts, ref);
  if (!found) throw new LayerUnknownError();
  return found.catalog.namesOf(found.kind, found.id);
}

/** Adds names (or replaces them all) on the object a reference names; names move from other objects of its kind. */
export function changeNames(parts: StoreParts, ref: string, names: string[], mode: "add" | "set"): string[] {
  return parts.tx(() => {
    const found = findAny(parts, ref);
    if (!found) throw new LayerUnknownError();
    // Unlike containers-storage 1.43, objects of read-only stores are never given a writable twin.
    if (found.readOnly) throw found.kind === "image" ? new ImageUnknownError() : new LayerUnknownError();
    const current = parts.catalog.namesOf(found.kind, found.id);
    const next = unique(mode === "add" ? [...current, ...names] : names);
    parts.catalog.setNames(found.kind, found.id, next);
    if (found.kind === "image" && names.length > 0) {
      const history = parts.catalog.getImage(found.id)!.namesHistory;
      const added = unique([...names].reverse());
      parts.catalog.setNamesHistory(found.id, unique([...added, ...history]));
    }
    return next;
  });
}

export function metadataOf(parts: StoreParts, ref: string): string | undefined {
  const found = findAny(parts, ref);
  return found ? found.catalog.getMetadata(found.kind, found.id) : undefined;
}

export function setMetadata(parts: StoreParts, ref: string, metadata: string): void {
  parts.tx(() => {
    const found = findAny(parts, ref);
    if (!found || found.readOnly) throw new NotAnyObjectError();
    parts.catalog.setMetadata(found.kind, found.id, metadata);
  });
}
