/**
 * Manifests, configs and digests of OCI and Docker schema 2 images: parsing with one-line
 * errors naming the field, media types, platform choice in an index, the diffID rules and the
 * layer / image IDs containers/image gives an image in containers-storage.
 */
import { CorruptError, InvalidArgumentError } from "../errors.ts";
import { validateDigest } from "../store/digest.ts";
import type { Descriptor, Platform, RawManifest } from "./types.ts";

/** A manifest, index, config or blob that is malformed or does not match what describes it. */
export class ImageFormatError extends CorruptError {
  override name = "ImageFormatError";
}

export const MEDIA = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerForeignLayerGzip: "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

/** How a layer blob is compressed, from its media type. */
export type LayerCompression = "gzip" | "zstd" | "none";

const LAYER_TYPES: Record<string, LayerCompression> = {
  [MEDIA.ociLayer]: "none",
  [MEDIA.ociLayerGzip]: "gzip",
  [MEDIA.ociLayerZstd]: "zstd",
  [MEDIA.dockerLayer]: "none",
  [MEDIA.dockerLayerGzip]: "gzip",
};

/** Layer types that point at content elsewhere (Windows base layers); never fetched. */
const FOREIGN_LAYER_TYPES = new Set<string>([
  MEDIA.dockerForeignLayerGzip,
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
]);

/** The layer media type for a manifest type and a compression. */
export function layerMediaType(manifestType: string, compression: LayerCompression): string {
  if (manifestType === MEDIA.dockerManifest) {
    if (compression === "zstd") throw new ImageFormatError("Docker schema 2 manifests cannot describe zstd layers; use --format oci");
    return compression === "gzip" ? MEDIA.dockerLayerGzip : MEDIA.dockerLayer;
  }
  return compression === "gzip" ? MEDIA.ociLayerGzip : compression === "zstd" ? MEDIA.ociLayerZstd : MEDIA.ociLayer;
}

/** The compression a layer descriptor's media type says; refuses foreign and unknown types. */
export function layerCompression(layer: Descriptor, field: string): LayerCompression {
  if (FOREIGN_LAYER_TYPES.has(layer.mediaType)) {
    throw new ImageFormatError(`${field}: foreign (non-distributable) layer ${layer.digest} (${layer.mediaType}) is not supported`);
  }
  const compression = LAYER_TYPES[layer.mediaType];
  if (compression === undefined) throw new ImageFormatError(`${field}: unknown layer media type "${layer.mediaType}"`);
  return compression;
}

/** An image manifest (OCI or Docker schema 2): one config and the layers, base first. */
export interface ImageManifest {
  kind: "image";
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** An OCI index or Docker manifest list. */
export interface ManifestIndex {
  kind: "index";
  mediaType: string;
  manifests: Descriptor[];
}

/** The JSON of bytes, or a one-line error naming `what`. */
export function parseJsonObject(bytes: Uint8Array, what: string): Record<string, any> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (error) {
    throw new ImageFormatError(`${what} does not parse as JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ImageFormatError(`${what} is not a JSON object`);
  return value as Record<string, any>;
}

/** Checks one descriptor object found at `field`. */
export function parseDescriptor(value: any, field: string): Descriptor {
  if (typeof value !== "object" || value === null) throw new ImageFormatError(`${field}: not a descriptor object`);
  if (typeof value.mediaType !== "string" || value.mediaType === "") throw new ImageFormatError(`${field}.mediaType: missing`);
  if (typeof value.digest !== "string") throw new ImageFormatError(`${field}.digest: missing`);
  try {
    validateDigest(value.digest);
  } catch (error) {
    throw new ImageFormatError(`${field}.digest: "${value.digest}": ${(error as Error).message}`);
  }
  if (!Number.isSafeInteger(value.size) || value.size < 0) throw new ImageFormatError(`${field}.size: not a non-negative integer`);
  return value as Descriptor;
}

const INDEX_TYPES = new Set<string>([MEDIA.ociIndex, MEDIA.dockerList]);
const IMAGE_TYPES = new Set<string>([MEDIA.ociManifest, MEDIA.dockerManifest]);

/** The media type of manifest bytes: the declared one, else guessed as containers/image does. */
export function manifestMediaType(json: Record<string, any>, declared?: string): string {
  if (typeof json.mediaType === "string" && json.mediaType !== "") return json.mediaType;
  if (declared) return declared;
  if (json.schemaVersion === 1) return MEDIA.dockerSchema1;
  if (Array.isArray(json.manifests)) return MEDIA.ociIndex;
  if (json.config !== undefined) return MEDIA.ociManifest;
  return "";
}

/** Parses a manifest or index; `what` names it in errors ("manifest sha256:…"). */
export function parseManifest(raw: RawManifest, what = `manifest ${raw.digest}`): ImageManifest | ManifestIndex {
  const json = parseJsonObject(raw.bytes, what);
  const mediaType = manifestMediaType(json, raw.mediaType);
  if (json.schemaVersion !== 2) throw new ImageFormatError(`${what}: schemaVersion ${JSON.stringify(json.schemaVersion)} is not supported (only 2)`);
  if (INDEX_TYPES.has(mediaType)) {
    if (!Array.isArray(json.manifests)) throw new ImageFormatError(`${what}: manifests: missing`);
    return { kind: "index", mediaType, manifests: json.manifests.map((entry: any, i: number) => parseDescriptor(entry, `${what}: manifests[${i}]`)) };
  }
  if (!IMAGE_TYPES.has(mediaType)) throw new ImageFormatError(`${what}: unknown manifest media type "${mediaType}"`);
  if (!Array.isArray(json.layers)) throw new ImageFormatError(`${what}: layers: missing`);
  const config = parseDescriptor(json.config, `${what}: config`);
  // As containers/image: an OCI manifest whose config is not an image config is an artifact (a Helm chart, a signature), not an image.
  if (mediaType === MEDIA.ociManifest && config.mediaType !== MEDIA.ociConfig) throw new ImageFormatError(`${what}: config.mediaType "${config.mediaType}" is not an image config: an artifact, not an image`);
  const layers = json.layers.map((layer: any, i: number) => parseDescriptor(layer, `${what}: layers[${i}]`));
  layers.forEach((layer: Descriptor, i: number) => layerCompression(layer, `${what}: layers[${i}]`));
  return { kind: "image", mediaType, config, layers };
}

/** What pull needs from an image config. */
export interface ImageConfig {
  diffIds: string[];
  platform: Platform;
}

/** Parses an image config (OCI or Docker; the same JSON) and checks rootfs.diff_ids. */
export function parseConfig(bytes: Uint8Array, what = "config"): ImageConfig {
  const json = parseJsonObject(bytes, what);
  const rootfs = json.rootfs;
  if (typeof rootfs !== "object" || rootfs === null) throw new ImageFormatError(`${what}: rootfs: missing`);
  if (rootfs.type !== "layers") throw new ImageFormatError(`${what}: rootfs.type: ${JSON.stringify(rootfs.type)} is not "layers"`);
  if (!Array.isArray(rootfs.diff_ids)) throw new ImageFormatError(`${what}: rootfs.diff_ids: missing`);
  const diffIds = rootfs.diff_ids.map((id: unknown, i: number) => {
    try {
      if (typeof id !== "string") throw new Error("not a string");
      validateDigest(id);
      return id;
    } catch (error) {
      throw new ImageFormatError(`${what}: rootfs.diff_ids[${i}]: ${(error as Error).message}`);
    }
  });
  const platform: Platform = { os: String(json.os ?? ""), architecture: String(json.architecture ?? "") };
  if (typeof json.variant === "string" && json.variant !== "") platform.variant = json.variant;
  return { diffIds, platform };
}

/** Checks that a config's diffIDs fit its manifest's layers (one per layer). */
export function checkDiffIdCount(manifest: ImageManifest, config: ImageConfig): void {
  if (config.diffIds.length !== manifest.layers.length) {
    throw new ImageFormatError(`config ${manifest.config.digest}: rootfs.diff_ids has ${config.diffIds.length} entries for ${manifest.layers.length} layers`);
  }
}

/** The hex part of "algorithm:hex". */
export function digestHex(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1);
}

/** The first 12 hex digits of a digest, as progress lines and messages show it. */
export function shortDigest(digest: string): string {
  return digestHex(digest).slice(0, 12);
}

/** sha256 of a string or bytes as hex. */
export function sha256Hex(data: string | Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/**
 * The layer IDs containers/image gives a chain of diffIDs in containers-storage: the base
 * layer's ID is its diffID's hex, each next one sha256(parentID + "+" + diffID hex).
 */
export function layerIdChain(diffIds: string[]): string[] {
  const ids: string[] = [];
  for (const diffId of diffIds) {
    const parent = ids.at(-1);
    ids.push(parent === undefined ? digestHex(diffId) : sha256Hex(`${parent}+${digestHex(diffId)}`));
  }
  return ids;
}

/** The image ID containers/image gives an image: its config digest's hex. */
export function imageIdOf(configDigest: string): string {
  return digestHex(configDigest);
}

/**
 * The data items containers/image attaches to a pulled image, keyed and ordered as it does:
 * the config, the index it was picked from (if any), its manifest under its digest and as
 * "manifest", and an empty signature list.
 */
export function imageDataItems(manifest: RawManifest, configDigest: string, config: Uint8Array, list?: RawManifest): Array<[string, Uint8Array]> {
  const hex = digestHex(manifest.digest);
  return [
    [configDigest, config],
    ...(list ? ([[`manifest-${list.digest}`, list.bytes]] as Array<[string, Uint8Array]>) : []),
    [`manifest-${manifest.digest}`, manifest.bytes],
    ["manifest", manifest.bytes],
    [`signature-${hex}`, new Uint8Array()],
  ];
}

/** The image metadata containers/image writes (no signatures). */
export function imageMetadata(manifestDigest: string): string {
  return JSON.stringify({ "signatures-sizes": { [manifestDigest]: [] } });
}

/** Go's GOARCH for the running process. */
function hostArchitecture(): string {
  const map: Record<string, string> = { x64: "amd64", ia32: "386", arm64: "arm64", arm: "arm", ppc64: "ppc64le", s390x: "s390x", riscv64: "riscv64", mips: "mips", mipsel: "mipsle", loong64: "loong64" };
  return map[process.arch] ?? process.arch;
}

/** The platform of this host (linux, GOARCH, and v8 on arm64 as containers/image assumes). */
export function hostPlatform(): Platform {
  const architecture = hostArchitecture();
  const platform: Platform = { os: "linux", architecture };
  if (architecture === "arm64") platform.variant = "v8";
  if (architecture === "arm") platform.variant = "v7";
  return platform;
}

/** Parses `OS/ARCH[/VARIANT]` as given to --platform. */
export function parsePlatform(text: string): Platform {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => part === "")) throw new InvalidArgumentError(`invalid platform "${text}": expected OS/ARCH[/VARIANT]`);
  const platform: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2] !== undefined) platform.variant = parts[2];
  else if (platform.architecture === "arm64") platform.variant = "v8";
  return platform;
}

/** Variants an image may have and still run on `variant` of `architecture`, preferred first. */
function compatibleVariants(architecture: string, variant: string | undefined): string[] {
  const arm = ["v8", "v7", "v6", "v5"];
  if (architecture === "arm" && variant !== undefined && arm.includes(variant)) return arm.slice(arm.indexOf(variant));
  return variant === undefined ? [] : [variant];
}

/**
 * The index entry to pull for `wanted`: the first entry with the same OS and architecture and
 * the most preferred compatible variant, else one with no variant, as containers/image picks.
 */
export function choosePlatform(index: ManifestIndex, wanted: Platform): Descriptor {
  const entries = index.manifests.filter((entry) => entry.platform?.os === wanted.os && entry.platform?.architecture === wanted.architecture);
  for (const variant of compatibleVariants(wanted.architecture, wanted.variant)) {
    const found = entries.find((entry) => entry.platform?.variant === variant);
    if (found) return found;
  }
  const plain = entries.find((entry) => !entry.platform?.variant);
  if (plain) return plain;
  const listed = index.manifests.map((entry) => formatPlatform(entry.platform)).join(", ");
  throw new ImageFormatError(`no image for ${formatPlatform(wanted)} in the index (it has: ${listed || "none"})`);
}

/** "os/arch[/variant]" of a platform, "unknown" without one. */
export function formatPlatform(platform: Platform | undefined): string {
  if (!platform) return "unknown";
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join("/");
}
