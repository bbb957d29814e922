/**
 * Opens the source or destination a transport reference names. Each transport is loaded only
 * when used (`await import`), so commands that do not move images never load them.
 */
import { parseReference, type TransportReference } from "./reference.ts";
import type { RegistryTransportOptions } from "./registry.ts";
import type { DestinationOptions, ImageDestination, ImageSource } from "./types.ts";

/** How transports that reach other hosts (docker://) are to do it; others ignore it. */
export interface TransportOptions {
  registry?: RegistryTransportOptions;
}

/** An image source for a reference (string in transport syntax, or parsed). */
export async function openSource(reference: string | TransportReference, transport: TransportOptions = {}): Promise<ImageSource> {
  const parsed = typeof reference === "string" ? parseReference(reference) : reference;
  switch (parsed.transport) {
    case "oci":
    case "oci-archive":
      return (await import("./oci.ts")).openOciSource(parsed);
    case "docker-archive":
      return (await import("./docker-archive.ts")).openDockerArchiveSource(parsed);
    case "docker":
      return (await import("./registry.ts")).openRegistrySource(parsed, transport.registry);
    case "dir":
      return (await import("./dir.ts")).openDirSource(parsed);
  }
}

/** An image destination for a reference. */
export async function openDestination(reference: string | TransportReference, options: DestinationOptions, transport: TransportOptions = {}): Promise<ImageDestination> {
  const parsed = typeof reference === "string" ? parseReference(reference) : reference;
  switch (parsed.transport) {
    case "oci":
    case "oci-archive":
      return (await import("./oci.ts")).openOciDestination(parsed, options);
    case "docker-archive":
      return (await import("./docker-archive.ts")).openDockerArchiveDestination(parsed, options);
    case "docker":
      return (await import("./registry.ts")).openRegistryDestination(parsed, options, transport.registry);
    case "dir":
      return (await import("./dir.ts")).openDirDestination(parsed);
  }
}
