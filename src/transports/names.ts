/**
 * Image names in the Docker reference grammar ([DOMAIN/]PATH[:TAG][@DIGEST]) and the two ways
 * of completing a short one:
 *   - `normalizeDockerName`: what docker, skopeo and the containers-storage: transport do —
 *     no domain → docker.io, a single path component under docker.io → library/NAME;
 *   - `normalizeLocalName`: what podman does for names that come from a local image (an oci:
 *     ref, an oci-archive's annotation) — no domain → localhost/NAME.
 * Both add ":latest" when there is neither tag nor digest. The first component is a domain
 * when it contains "." or ":" or is "localhost", as in distribution/reference.
 */
import { InvalidArgumentError } from "../errors.ts";

export class InvalidImageNameError extends InvalidArgumentError {
  override name = "InvalidImageNameError";
  constructor(name: string, reason: string) {
    super(`invalid image name "${name}": ${reason}`);
  }
}

const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(`^${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const MAX_NAME_LENGTH = 255;

/** A parsed image reference; `domain` is empty when the name had none. */
export interface ImageName {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

/** Parses a name in the Docker reference grammar without completing it. */
export function parseImageName(text: string): ImageName {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new InvalidImageNameError(text, `"${digest}" is not a digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidImageNameError(text, `"${tag}" is not a valid tag`);
  }
  let domain = "";
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost") {
      domain = first;
      rest = rest.slice(slash + 1);
      if (!DOMAIN.test(domain)) throw new InvalidImageNameError(text, `"${domain}" is not a valid registry`);
    }
  }
  if (rest === "") throw new InvalidImageNameError(text, "the repository name is empty");
  for (const component of rest.split("/")) {
    if (!PATH_COMPONENT.test(component)) throw new InvalidImageNameError(text, `"${component}" is not a valid repository name component (lower case letters, digits and separators)`);
  }
  if (domain.length + 1 + rest.length > MAX_NAME_LENGTH) throw new InvalidImageNameError(text, `longer than ${MAX_NAME_LENGTH} characters`);
  const name: ImageName = { domain, path: rest };
  if (tag !== undefined) name.tag = tag;
  if (digest !== undefined) name.digest = digest;
  return name;
}

/** The string form of a name. */
export function formatImageName(name: ImageName): string {
  return `${name.domain ? `${name.domain}/` : ""}${name.path}${name.tag !== undefined ? `:${name.tag}` : ""}${name.digest !== undefined ? `@${name.digest}` : ""}`;
}

function withDefaultTag(name: ImageName): ImageName {
  return name.tag === undefined && name.digest === undefined ? { ...name, tag: "latest" } : name;
}

/** docker.io completion, as docker, skopeo and the containers-storage: transport complete names. */
export function normalizeDockerName(text: string): ImageName {
  const name = parseImageName(text);
  let { domain, path } = name;
  if (domain === "" || domain === "index.docker.io") domain = "docker.io";
  if (domain === "docker.io" && !path.includes("/")) path = `library/${path}`;
  return withDefaultTag({ ...name, domain, path });
}

/** localhost completion, as podman completes the names of local images. */
export function normalizeLocalName(text: string): ImageName {
  const name = parseImageName(text);
  return withDefaultTag(name.domain === "" ? { ...name, domain: "localhost" } : name);
}
