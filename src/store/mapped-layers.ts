/**
 * An image's mapped top layers: a container whose ID maps differ from those of the image's top
 * layer goes on a re-owned copy of that layer instead, made once per set of maps and shared by
 * every container with those maps, as containers-storage 1.43 makes them. A mapped top layer
 * has the top layer's parent as its parent, the top layer's recorded values (digests, sizes,
 * ID sets, metadata, the layout of its tar), its own maps, and as content the top layer's whole
 * tree re-owned (layer-lifecycle's template); the image lists it (`image` prints it as another
 * `Top Layer:`) and deleting the image deletes it.
 *
 * It is made with the crash protocol of every layer (begin → build → complete): it joins the
 * image's list in the transaction that marks it complete, so a crash before that leaves only an
 * unfinished row that recovery removes.
 */
import { ImageUnknownError, LayerUnknownError } from "../errors.ts";
import { type IdMaps, sameMaps } from "../idmap.ts";
import { crashPoint } from "../util/crash-points.ts";
import { abandonLayer, beginLayer, buildLayer } from "./layer-lifecycle.ts";
import { layerById } from "./lookup.ts";
import type { StoreParts } from "./parts.ts";
import { type ImageRecord, type LayerRecord, mapsOf } from "./records.ts";

/**
 * The layer a new container with these maps goes on: the image's top layer or one of its mapped
 * top layers whose maps are exactly these; else, for an image of this store, a new mapped top
 * layer; else (an image of a read-only store, whose record cannot be changed) the top layer,
 * and the container's own layer is then a re-owned copy of it.
 */
export async function imageLayerForMaps(parts: StoreParts, image: ImageRecord, maps: IdMaps): Promise<LayerRecord> {
  const candidates = [image.topLayer, ...image.mappedLayers].map((id) => layerById(parts, id)).filter((l): l is LayerRecord => l !== undefined && parentPresent(parts, l));
  const template = candidates[0];
  if (!template) throw new LayerUnknownError();
  const match = candidates.find((l) => sameMaps(mapsOf(l), maps));
  if (match) return match;
  if (image.fromReadOnlyStore || template.fromReadOnlyStore) return template;
  return makeMappedTopLayer(parts, image, template, maps);
}

/** A layer whose parent is gone cannot be stacked on (as containers-storage, such a candidate is skipped). */
function parentPresent(parts: StoreParts, layer: LayerRecord): boolean {
  return layer.parent === "" || layerById(parts, layer.parent) !== undefined;
}

/** Makes a mapped copy of template with maps and lists it on the image; another process's copy with the same maps, made meanwhile, is used instead. */
async function makeMappedTopLayer(parts: StoreParts, image: ImageRecord, template: LayerRecord, maps: IdMaps): Promise<LayerRecord> {
  const { catalog } = parts;
  const layer = beginLayer(parts, {
    names: [],
    parent: template.parent || undefined,
    idMaps: maps,
    mountLabel: template.mountLabel,
    metadata: template.metadata,
  });
  const recordAsTemplate = async () => {
    parts.driver.flushCreated(layer.id);
    const source = parts.roots.catalogOf(template);
    parts.tx(() => {
      let seq = 0;
      for (const chunk of source.layoutChunks(template.id)) catalog.addLayoutChunk(layer.id, seq++, chunk);
      catalog.recordApplied(layer.id, template);
    });
  };
  await buildLayer(parts, layer, recordAsTemplate, { template });
  crashPoint("before-mapped-layer-complete");
  let outcome: { use: string } | { imageGone: true };
  try {
    outcome = parts.tx(() => {
      const current = catalog.getImage(image.id);
      if (!current) return { imageGone: true as const };
      const madeMeanwhile = current.mappedLayers.map((id) => catalog.getLayer(id)).find((l) => l !== undefined && sameMaps(mapsOf(l), maps));
      if (madeMeanwhile) return { use: madeMeanwhile.id };
      catalog.setMappedLayers(image.id, [...current.mappedLayers, layer.id]);
      catalog.setLayerState(layer.id, "complete", "");
      return { use: layer.id };
    });
  } catch (e) {
    // A failing cleanup must not hide why: the row then stays 'creating' for recovery.
    await abandonLayer(parts, layer.id).catch(() => {});
    throw e;
  }
  if ("imageGone" in outcome || outcome.use !== layer.id) await abandonLayer(parts, layer.id);
  if ("imageGone" in outcome) throw new ImageUnknownError(`locating image with ID "${image.id}": image not known`);
  return catalog.getLayer(outcome.use)!;
}
