/**
 * The contract every image transport implements (oci:, oci-archive:, docker-archive:, docker://, dir:).
 *
 * A transport only moves bytes and says what they are; it never checks digests, never
 * decompresses and never touches the Store. The pull and push code above it does the checks
 * (digest, size, diffID) while it streams, so every transport gets them the same way.
 *
 * Reading (ImageSource):
 *   1. `manifest()` → the raw manifest bytes exactly as stored, with their media type. For an
 *      index / manifest list the caller picks an entry (see manifest.ts `choosePlatform`) and
 *      asks again with that entry's digest: `manifest(digest)`.
 *   2. `blob(descriptor)` → a one-pass stream of a blob (config or layer), with the size the
 *      transport knows for it. Layers are asked for in manifest order; an archive source may
 *      rely on that to read its file once.
 *   3. `close()` always, also after an error.
 *
 * Writing (ImageDestination):
 *   1. `hasBlob(digest)` → skip blobs the destination already holds (registry mounts, oci: reuse).
 *   2. `putBlob(stream, expected?, again?)` → writes a stream and returns its digest and size as
 *      measured while writing. If `expected` is given and differs, it throws and keeps nothing.
 *   3. `putManifest(bytes, mediaType)` → stores the image's manifest (after all its blobs).
 *   4. `commit()` → makes the image visible (writes index.json, finishes the archive, ...).
 *      Without commit nothing new is visible to other tools; `close()` then removes the partial
 *      output. `close()` is always called.
 */
import { NotFoundError } from "../errors.ts";

/** A content descriptor as in OCI image-spec and Docker schema 2 (mediaType, digest, size). */
export interface Descriptor {
  mediaType: string;
  /** "algorithm:hex", e.g. "sha256:…". */
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

/** OS, architecture and optional variant, as in an index entry or an image config. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

/** Raw manifest bytes with the media type they declare (or the transport knows them as). */
export interface RawManifest {
  bytes: Uint8Array;
  mediaType: string;
  /** sha256 digest of `bytes`. */
  digest: string;
}

/**
 * A blob being read: a one-pass byte stream and the size the source knows (-1 if unknown). A
 * source may reuse its buffers: a chunk stays valid until two more have been read, so a
 * consumer uses or copies each chunk before asking for the one after next.
 */
export interface BlobReader {
  stream: AsyncIterable<Uint8Array>;
  size: number;
  /**
   * Where the source can, writes the whole blob into `fd` (an empty file opened for writing)
   * instead of handing out `stream`: the bytes go from the source to the file without passing
   * through JavaScript. Settles when the blob is all there, or with the error `stream` would throw.
   */
  saveTo?(fd: number): Promise<void>;
}

/** Where an image comes from. */
export interface ImageSource {
  /** The reference as the user gave it, for messages ("oci:/tmp/l:v1"). */
  readonly description: string;
  /**
   * The manifest the reference names (no digest), or the one with this digest (an entry of an
   * index the source returned before). May be an OCI index or a Docker manifest list.
   */
  manifest(digest?: string): Promise<RawManifest>;
  /** A blob (config or layer) by its descriptor; throws BlobMissingError if the source lacks it. */
  blob(descriptor: Descriptor): Promise<BlobReader>;
  /**
   * The names the source gives the image, if any (an oci: ref, an archive's RepoTags, a
   * registry reference); the default names of the pulled image.
   */
  imageNames(): string[];
  /** True when several blobs may be read at once (a registry); archives are read in order. */
  readonly parallelBlobs?: boolean;
  /** Told after a layer read from this source was stored with this diffID (a registry remembers where the blob lives). */
  layerStored?(descriptor: Descriptor, diffId: string): void;
  close(): Promise<void>;
}

/** What push knows about a stored layer when it asks a destination to reuse a blob for it. */
export interface StoredLayer {
  /** The uncompressed digest ("sha256:…"). */
  diffId: string;
  /** The blob the layer was applied from, if it was ("" otherwise), and its size and compression. */
  compressedDigest: string;
  compressedSize: number;
  compression: "gzip" | "zstd" | "none" | "other";
}

/** The digest and size of a blob as written. */
export interface WrittenBlob {
  digest: string;
  size: number;
}

/** Where an image goes. */
export interface ImageDestination {
  readonly description: string;
  /** Manifest media types this destination accepts, preferred first. */
  readonly manifestTypes: string[];
  /** The only layer compression this destination takes (docker-archive: "none"), if it is fixed. */
  readonly layerCompression?: "gzip" | "zstd" | "none";
  /** Whether a blob with this digest is already there (then putBlob may be skipped). */
  hasBlob(digest: string): Promise<boolean>;
  /**
   * Writes one blob from a stream. `expected` (when known) is checked at the end: a digest or
   * size mismatch throws and leaves nothing behind. `again`, when given, produces the same bytes
   * anew, for a destination that retries a write that failed mid-way (a registry upload).
   */
  putBlob(stream: AsyncIterable<Uint8Array>, expected?: { digest?: string; size?: number }, again?: () => AsyncIterable<Uint8Array>): Promise<WrittenBlob>;
  /**
   * A blob the destination already has, or can get without an upload (a registry's
   * cross-repository mount), holding this layer with this compression; undefined if none.
   */
  reuseLayer?(layer: StoredLayer, manifestType: string, compression: "gzip" | "zstd" | "none"): Promise<Descriptor | undefined>;
  /** Told after a layer was written as this blob (a registry remembers it for later pushes). */
  layerPushed?(layer: StoredLayer, descriptor: Descriptor): void;
  /** Stores the manifest bytes (config and layers must have been put first). */
  putManifest(manifest: RawManifest): Promise<void>;
  /** Makes the written image visible under the destination's reference. */
  commit(): Promise<void>;
  /** Releases resources; without a commit before, removes whatever was partly written. */
  close(): Promise<void>;
}

/** What a destination is told when it is opened. */
export interface DestinationOptions {
  /** The manifest type push will write (MEDIA.ociManifest or MEDIA.dockerManifest). */
  manifestType: string;
}

/** A blob named in a manifest that the source does not have. */
export class BlobMissingError extends NotFoundError {
  override name = "BlobMissingError";
  constructor(where: string, digest: string) {
    super(`${where}: blob ${digest} is missing`);
  }
}
