/**
 * The docker:// transport (a registry, over the Distribution HTTP API). Placeholder until the
 * registry transport lands (issue 12): it implements `openRegistrySource` /
 * `openRegistryDestination` against the contract in types.ts.
 */
import { NotSupportedError } from "../errors.ts";
import { formatReference, type RegistryReference } from "./reference.ts";
import type { DestinationOptions, ImageDestination, ImageSource } from "./types.ts";

function notYet(reference: RegistryReference): never {
  throw new NotSupportedError(`${formatReference(reference)}: the docker:// (registry) transport is not implemented yet`);
}

/** A registry image to read. */
export async function openRegistrySource(reference: RegistryReference): Promise<ImageSource> {
  return notYet(reference);
}

/** A registry repository to write to. */
export async function openRegistryDestination(reference: RegistryReference, _options: DestinationOptions): Promise<ImageDestination> {
  return notYet(reference);
}
