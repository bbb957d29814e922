/** The records the Store hands to commands. Field meanings follow docs/cli-contract.md §2.7. */
import { type ApplyResult, Compression } from "../archive/types.ts";
import type { IdMapping, IdMaps } from "../idmap.ts";

export type ObjectKind = "layer" | "image" | "container";

/** A layer; the values of the tar last applied to it are those of its ApplyResult. */
export interface LayerRecord extends ApplyResult {
  id: string;
  names: string[];
  parent: string;
  metadata: string;
  mountLabel: string;
  createdNs: bigint;
  flags: Record<string, unknown>;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  bigDataNames: string[];
  /** Created with create-layer --readonly. */
  readOnly: boolean;
  /** True when the tar last applied can be re-exported byte for byte. */
  hasLayout: boolean;
  /** Set for layers found in a read-only additional image store; that store's graph root. */
  fromReadOnlyStore?: string;
}

export interface ImageRecord {
  id: string;
  /** The primary digest (docs/cli-contract.md §3.2.6). */
  digest: string;
  names: string[];
  namesHistory: string[];
  topLayer: string;
  mappedLayers: string[];
  metadata: string;
  bigData: BigDataInfo[];
  createdNs: bigint;
  flags: Record<string, unknown>;
  fromReadOnlyStore?: string;
}

export interface ContainerRecord {
  id: string;
  names: string[];
  image: string;
  layer: string;
  metadata: string;
  bigData: BigDataInfo[];
  createdNs: bigint;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  flags: Record<string, unknown>;
}

/** What the text listing of layers shows of a layer. */
export type LayerSummary = Pick<LayerRecord, "id" | "names" | "fromReadOnlyStore">;

/** What the text listing of layers shows of an image: which layers it uses, and its names. */
export type ImageSummary = Pick<ImageRecord, "id" | "names" | "topLayer" | "mappedLayers" | "fromReadOnlyStore">;

/**
 * How a text listing (`images`, `containers`) shows each object after its ID line: one line per
 * name, per digest (images) and per data item, each the prefix and the value; a kind of line
 * without a prefix is left out.
 */
export interface ListingLines {
  name?: string;
  digest?: string;
  data?: string;
}

/** A named data item attached to an object, without its bytes. */
export interface BigDataInfo {
  name: string;
  size: number;
  digest: string;
}

/** What the catalog records about a layer's applied tar: its ApplyResult and whether its layout can reproduce it. */
export type AppliedValues = ApplyResult & Pick<LayerRecord, "hasLayout">;

/** The values of a layer no tar has been applied to. */
export const NOTHING_APPLIED: AppliedValues = {
  compressedDigest: "",
  compressedSize: 0,
  diffDigest: "",
  diffSize: 0,
  compression: Compression.None,
  uidset: [],
  gidset: [],
  hasLayout: false,
};

/** A new, empty layer record: the given fields over empty defaults (no parent, names, maps or content). */
export function newLayerRecord(id: string, fields: Partial<LayerRecord> = {}): LayerRecord {
  return {
    id,
    names: [],
    parent: "",
    metadata: "",
    mountLabel: "",
    createdNs: 0n,
    ...NOTHING_APPLIED,
    flags: {},
    uidMap: [],
    gidMap: [],
    bigDataNames: [],
    readOnly: false,
    ...fields,
  };
}

/** The ID maps of a layer or container. */
export function mapsOf(record: { uidMap: IdMapping[]; gidMap: IdMapping[] }): IdMaps {
  return { uidMap: record.uidMap, gidMap: record.gidMap };
}
