/**
 * Layers whose content directory was removed behind the store's back. Their records stay
 * listed, `check` reports them and `delete-layer` removes them (docs/robustness.md); what
 * reads their content fails with this one line instead of whatever the read met first.
 */
import { CorruptError } from "../errors.ts";
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

/**
 * Runs a read of layer content; when it fails and one of the layers (or their parents) has no
 * content directory, that is the error. A reader that went away (EPIPE) is not asked about:
 * its error is the answer, at once.
 */
export async function readingLayers<T>(parts: StoreParts, ids: Array<string | undefined>, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if ((e as { code?: unknown } | null)?.code === "EPIPE") throw e;
    throw vanishedAmong(parts, ids) ?? e;
  }
}
