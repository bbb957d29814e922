/**
 * The docker:// transport: images in registries, over the Distribution HTTP API (v2). The
 * pieces live in registry/: the HTTP client with authentication and retries (client.ts,
 * auth.ts), credentials and auth files (credentials.ts), TLS settings (tls-config.ts), the
 * source (source.ts) and the destination (destination.ts), which keep the locations of blobs
 * between runs in the Store (blob-hints.ts) for skips and cross-repository mounts.
 */
import type { BlobHints } from "./registry/blob-hints.ts";
import type { RegistryOptions } from "./registry/client.ts";
import { openRegistryImageDestination } from "./registry/destination.ts";
import { openRegistryImageSource } from "./registry/source.ts";
import { formatReference, type RegistryReference } from "./reference.ts";
import type { DestinationOptions, ImageDestination, ImageSource } from "./types.ts";

export type { RegistryOptions } from "./registry/client.ts";

/** What opening a docker:// reference takes beyond the reference. */
export interface RegistryTransportOptions extends RegistryOptions {
  /** Where blob locations are remembered (the Store); none: nothing is remembered. */
  blobHints?: BlobHints;
}

/** A registry image to read. */
export async function openRegistrySource(reference: RegistryReference, options: RegistryTransportOptions = {}): Promise<ImageSource> {
  return openRegistryImageSource(formatReference(reference), reference.name, options, options.blobHints);
}

/** A registry repository to write to. */
export async function openRegistryDestination(reference: RegistryReference, _options: DestinationOptions, transport: RegistryTransportOptions = {}): Promise<ImageDestination> {
  return openRegistryImageDestination(formatReference(reference), reference.name, transport, transport.blobHints);
}
