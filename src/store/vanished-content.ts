/**
 * Layers whose content went away while it was read: removed behind the store's back (their
 * records stay listed, `check` reports them and `delete-layer` removes them, docs/robustness.md),
 * or deleted by another command meanwhile. What reads their content then fails with one line
 * saying so instead of whatever the read met first.
 */
import { CorruptError, NotFoundError } from "../errors.ts";
import { layerById } from "./lookup.ts";
import type { StoreParts } from "./parts.ts";
import { nodeFs } from "../sys/node-fs.ts";

/** The error for a layer whose content directory is gone. */
export function contentMissing(parts: StoreParts, id: string): CorruptError {
  return new CorruptError(`layer ${id}: content directory ${parts.driver.contentDir(id)} is missing`);
}

/** The first of the layers, and of their parents, whose content directory is gone: the error saying so, else undefined. */
export function vanishedAmong(parts: StoreParts, ids: Array<string | undefined>): CorruptError | undefined {
  // node:fs loaded here, when a read failed or check asks, not at every start.
  const { existsSync } = nodeFs();
  const seen = new Set<string>();
  const pending = ids.filter((id): id is string => id !== undefined);
  while (pending.length > 0) {
    const id = pending.shift()!;
    if (seen.has(id)) continue;
    seen.add(id);
    if (!existsSync(parts.driver.contentDir(id))) return contentMissing(parts, id);
    const parent = layerById(parts, id)?.parent;
    if (parent) pending.push(parent);
  }
  return undefined;
}

/** The first of the layers that is no longer a complete layer: another command deleted it (or is deleting it). */
function deletedAmong(parts: StoreParts, ids: Array<string | undefined>): NotFoundError | undefined {
  const gone = ids.find((id) => id !== undefined && layerById(parts, id) === undefined);
  return gone === undefined ? undefined : new NotFoundError(`layer ${gone} was deleted by another command while this one read it`);
}

/**
 * Runs a read of layer content; when it fails and one of the layers was deleted meanwhile, or
 * one of them (or their parents) has no content directory, that is the error. A reader that
 * went away (EPIPE) is not asked about: its error is the answer, at once.
 */
export async function readingLayers<T>(parts: StoreParts, ids: Array<string | undefined>, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if ((e as { code?: unknown } | null)?.code === "EPIPE") throw e;
    throw deletedAmong(parts, ids) ?? vanishedAmong(parts, ids) ?? e;
  }
}
