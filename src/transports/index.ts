/**
 * Opens the source or destination a transport reference names. Each transport is loaded only
 * when used (`await import`), so commands that do not move images never load them.
 */
import { parseReference, type TransportReference } from "./reference.ts";
import type { DestinationOptions, ImageDestination, ImageSource } from "./types.ts";

/** An image source for a reference (string in transport syntax, or parsed). */
export async function openSource(reference: string | TransportReference): Promise<ImageSource> {
  const parsed = typeof reference === "string" ? parseReference(reference) : reference;
  switch (parsed.transport) {
    case "oci":
    case "oci-archive":
      return (await import("./oci.ts")).openOciSource(parsed);
    case "docker-archive":
      return (await import("./docker-archive.ts")).openDockerArchiveSource(parsed);
    case "docker":
      return (await import("./registry.ts")).openRegistrySource(parsed);
  }
}

/** An image destination for a reference. */
export async function openDestination(reference: string | TransportReference, options: DestinationOptions): Promise<ImageDestination> {
  const parsed = typeof reference === "string" ? parseReference(reference) : reference;
  switch (parsed.transport) {
    case "oci":
    case "oci-archive":
      return (await import("./oci.ts")).openOciDestination(parsed, options);
    case "docker-archive":
      return (await import("./docker-archive.ts")).openDockerArchiveDestination(parsed, options);
    case "docker":
      return (await import("./registry.ts")).openRegistryDestination(parsed, options);
  }
}
