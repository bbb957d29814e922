/** What a layer changed: its changes, diff size and diff, compared with its parent or another layer. */
import type { ByteSink, Change, TarMeter } from "../archive/types.ts";
import { Compression } from "../archive/types.ts";
import type { CompareRequest } from "../drivers/driver.ts";
import { NotSupportedError } from "../errors.ts";
import { NO_ID_MAPS } from "../idmap.ts";
import { findLayer, requireLayer } from "./lookup.ts";
import type { CatalogParts, StoreParts } from "./parts.ts";
import { type LayerRecord, mapsOf } from "./records.ts";
import { readingLayers } from "./vanished-content.ts";

/** The layer and what a diff, changes or diffsize of it compares with (an unresolvable FROM means the parent). */
function compareRequest(parts: CatalogParts, ref: string, fromRef: string | undefined): { layer: LayerRecord; request: CompareRequest } {
  const layer = requireLayer(parts, ref);
  // An unresolvable FROM falls back to the parent, like containers-storage.
  const from = fromRef !== undefined ? findLayer(parts, fromRef) : undefined;
  const fromLayer = from ?? (layer.parent ? findLayer(parts, layer.parent) : undefined);
  const fromId = fromLayer?.id;
  const request = {
    id: layer.id,
    from: fromId,
    fromIsParent: fromId === (layer.parent || undefined),
    idMaps: mapsOf(layer),
    fromIdMaps: fromLayer ? mapsOf(fromLayer) : NO_ID_MAPS,
  };
  return { layer, request };
}

export function changes(parts: StoreParts, ref: string, fromRef?: string): Promise<Change[]> {
  const { request } = compareRequest(parts, ref, fromRef);
  return readingLayers(parts, [request.id, request.from], () => parts.driver.changes(request));
}

export function diffSize(parts: StoreParts, ref: string, fromRef?: string): Promise<number> {
  const { request } = compareRequest(parts, ref, fromRef);
  return readingLayers(parts, [request.id, request.from], () => parts.driver.diffSize(request));
}

/**
 * Writes a layer's diff. Without an explicit compression the layer's last applied input's
 * compression is used; an applied layer compared with its parent is reproduced byte for byte.
 * meter counts the uncompressed tar's bytes (expecting the applied size when reproducing).
 */
export async function diff(parts: StoreParts, ref: string, fromRef: string | undefined, sink: ByteSink, compression?: Compression, meter?: TarMeter): Promise<void> {
  const { layer, request } = compareRequest(parts, ref, fromRef);
  const wanted = compression ?? layer.compression;
  if (wanted === Compression.Bzip2) throw new NotSupportedError("unsupported compression format tar.bz2");
  if (wanted === Compression.Xz) throw new NotSupportedError("unsupported compression format tar.xz");
  const reproduced = layer.hasLayout && request.fromIsParent;
  meter?.expect(reproduced && layer.diffSize >= 0 ? layer.diffSize : undefined);
  // The archive code is loaded only by diff, not by the commands that merely size a layer.
  const { compressingSink, meteredSink } = await import("../archive/compression.ts");
  const compressed = compressingSink(sink, wanted);
  const out = meter ? meteredSink(compressed, meter) : compressed;
  await readingLayers(parts, [request.id, request.from], async () => {
    if (reproduced) {
      await (await import("../archive/layout.ts")).reproduceTar(parts.roots.catalogOf(layer).layoutChunks(layer.id), parts.driver.contentDir(layer.id), out);
    } else {
      await parts.driver.diff(request, out);
    }
  });
  await out.close();
}
