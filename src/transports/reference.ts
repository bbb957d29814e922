/**
 * Transport references as containers-transports(5) writes them, parsed into typed values:
 *   oci:PATH[:REF]                  an OCI image layout directory, REF = org.opencontainers.image.ref.name
 *   oci-archive:FILE[:REF]          the same, as a tar file
 *   docker-archive:FILE[:NAME:TAG]  a `docker save` tarball, the image tagged NAME:TAG
 *   docker-archive:FILE:@INDEX      … its INDEX-th image (from 0)
 *   docker://NAME[:TAG|@DIGEST]     a registry (see registry.ts)
 *   dir:PATH                        skopeo's directory of a manifest and its blobs
 * As in containers/image, the path ends at the first ":" after the transport name (dir:'s
 * path is all that follows it).
 */
import { InvalidArgumentError } from "../errors.ts";
import { formatImageName, normalizeDockerName, type ImageName } from "./names.ts";

export class InvalidReferenceError extends InvalidArgumentError {
  override name = "InvalidReferenceError";
}

export interface OciReference {
  transport: "oci" | "oci-archive";
  path: string;
  /** The ref name in index.json, if given. */
  ref?: string;
}

export interface DockerArchiveReference {
  transport: "docker-archive";
  path: string;
  /** NAME:TAG, completed as docker does (docker.io/library/…), if given. */
  name?: ImageName;
  /** The position of the image in the archive's manifest.json, if given. */
  index?: number;
}

export interface RegistryReference {
  transport: "docker";
  /** The completed name: domain (docker.io if none), path, tag (latest) or digest. */
  name: ImageName;
}

export interface DirReference {
  transport: "dir";
  path: string;
}

export type TransportReference = OciReference | DockerArchiveReference | RegistryReference | DirReference;

/** The transport names this binary knows, for messages. */
export const TRANSPORT_NAMES = ["oci", "oci-archive", "docker-archive", "docker", "dir"] as const;

/** An OCI ref name (org.opencontainers.image.ref.name), as containers/image accepts it. */
const OCI_REF = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** Parses a TRANSPORT:DETAILS reference. */
export function parseReference(text: string): TransportReference {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new InvalidReferenceError(`invalid image reference "${text}": expected TRANSPORT:DETAILS with TRANSPORT one of ${TRANSPORT_NAMES.join(", ")}`);
  const transport = text.slice(0, colon);
  const details = text.slice(colon + 1);
  switch (transport) {
    case "oci":
    case "oci-archive":
      return parseOci(transport, details, text);
    case "docker-archive":
      return parseDockerArchive(details, text);
    case "docker":
      return parseRegistry(details, text);
    case "dir":
      if (details === "") throw new InvalidReferenceError(`invalid image reference "${text}": the path is empty`);
      return { transport: "dir", path: details };
    default:
      throw new InvalidReferenceError(`invalid image reference "${text}": unknown transport "${transport}" (known: ${TRANSPORT_NAMES.join(", ")})`);
  }
}

function splitPath(details: string, text: string): [string, string | undefined] {
  const colon = details.indexOf(":");
  const path = colon < 0 ? details : details.slice(0, colon);
  if (path === "") throw new InvalidReferenceError(`invalid image reference "${text}": the path is empty`);
  return [path, colon < 0 ? undefined : details.slice(colon + 1)];
}

function parseOci(transport: "oci" | "oci-archive", details: string, text: string): OciReference {
  const [path, ref] = splitPath(details, text);
  if (ref === undefined || ref === "") return { transport, path };
  if (!OCI_REF.test(ref)) throw new InvalidReferenceError(`invalid image reference "${text}": "${ref}" is not a valid OCI ref name`);
  return { transport, path, ref };
}

function parseDockerArchive(details: string, text: string): DockerArchiveReference {
  const [path, rest] = splitPath(details, text);
  if (rest === undefined || rest === "") return { transport: "docker-archive", path };
  if (rest.startsWith("@")) {
    const digits = rest.slice(1);
    if (!/^[0-9]+$/.test(digits)) throw new InvalidReferenceError(`invalid image reference "${text}": "@${digits}" is not an image index`);
    return { transport: "docker-archive", path, index: Number(digits) };
  }
  let name: ImageName;
  try {
    name = normalizeDockerName(rest);
  } catch (error) {
    throw new InvalidReferenceError(`invalid image reference "${text}": ${(error as Error).message}`);
  }
  if (name.digest !== undefined) throw new InvalidReferenceError(`invalid image reference "${text}": a docker-archive name may not have a digest`);
  if (!/:[^/]+$/.test(rest)) throw new InvalidReferenceError(`invalid image reference "${text}": a docker-archive name needs a tag (NAME:TAG)`);
  return { transport: "docker-archive", path, name };
}

function parseRegistry(details: string, text: string): RegistryReference {
  if (!details.startsWith("//")) throw new InvalidReferenceError(`invalid image reference "${text}": expected docker://NAME`);
  try {
    return { transport: "docker", name: normalizeDockerName(details.slice(2)) };
  } catch (error) {
    throw new InvalidReferenceError(`invalid image reference "${text}": ${(error as Error).message}`);
  }
}

/** The reference written back in transport syntax (completed names included). */
export function formatReference(reference: TransportReference): string {
  switch (reference.transport) {
    case "oci":
    case "oci-archive":
      return `${reference.transport}:${reference.path}${reference.ref ? `:${reference.ref}` : ""}`;
    case "docker-archive":
      return `docker-archive:${reference.path}${reference.name ? `:${formatImageName(reference.name)}` : reference.index !== undefined ? `:@${reference.index}` : ""}`;
    case "docker":
      return `docker://${formatImageName(reference.name)}`;
    case "dir":
      return `dir:${reference.path}`;
  }
}
